use std::time::Duration;

use governor::clock::FakeRelativeClock;
use proptest::prelude::*;

use super::*;

fn quota(max_requests: u32, window_secs: u64) -> Quota {
    Quota {
        max_requests,
        window: Duration::from_secs(window_secs),
    }
}

fn fake(q: Quota, max_keys: usize) -> (KeyedLimiter<u32, FakeRelativeClock>, FakeRelativeClock) {
    let clock = FakeRelativeClock::default();
    let limiter = KeyedLimiter::with_clock(q, max_keys, clock.clone()).unwrap();
    (limiter, clock)
}

#[test]
fn quota_validation() {
    fn check(q: Quota, expected: Result<Duration, RateLimitError>) {
        assert_eq!(q.replenish_interval(), expected, "{q:?}");
        assert_eq!(
            KeyedLimiter::<u8>::new(q).map(|l| l.quota()),
            expected.map(|_| q),
            "{q:?}"
        );
    }
    check(quota(100, 60), Ok(Duration::from_millis(600)));
    check(quota(1, 1), Ok(Duration::from_secs(1)));
    check(quota(3, 1), Ok(Duration::from_nanos(333_333_333)));
    check(quota(0, 60), Err(RateLimitError::ZeroRequests));
    check(
        quota(5, 0),
        Err(RateLimitError::WindowTooShort {
            max_requests: 5,
            window: Duration::ZERO,
        }),
    );
    check(
        Quota {
            max_requests: 10,
            window: Duration::from_nanos(9),
        },
        Err(RateLimitError::WindowTooShort {
            max_requests: 10,
            window: Duration::from_nanos(9),
        }),
    );
}

#[test]
fn zero_max_keys_is_refused() {
    let err = KeyedLimiter::<u8>::with_max_keys(quota(1, 1), 0).unwrap_err();
    assert_eq!(err, RateLimitError::ZeroMaxKeys);
    assert_eq!(err.to_string(), "max_keys must be at least 1");
}

#[test]
fn burst_then_retry_after_one_interval() {
    let (limiter, clock) = fake(quota(100, 60), 10);
    for i in 0..100 {
        assert_eq!(limiter.check(&1), Ok(()), "request {i}");
    }
    assert_eq!(
        limiter.check(&1),
        Err(Retry {
            after: Duration::from_millis(600)
        })
    );
    clock.advance(Duration::from_millis(200));
    assert_eq!(
        limiter.check(&1),
        Err(Retry {
            after: Duration::from_millis(400)
        })
    );
    clock.advance(Duration::from_millis(400));
    assert_eq!(limiter.check(&1), Ok(()));
    assert!(limiter.check(&1).is_err());
    // Another key has its own budget.
    assert_eq!(limiter.check(&2), Ok(()));
}

#[test]
fn a_full_window_restores_the_whole_burst() {
    let (limiter, clock) = fake(quota(5, 10), 10);
    for _ in 0..5 {
        limiter.check(&7).unwrap();
    }
    assert!(limiter.check(&7).is_err());
    clock.advance(Duration::from_secs(10));
    for i in 0..5 {
        assert_eq!(limiter.check(&7), Ok(()), "request {i}");
    }
    assert!(limiter.check(&7).is_err());
}

#[test]
fn evict_idle_forgets_rested_keys_only() {
    let (limiter, clock) = fake(quota(10, 10), 100_000);
    for key in 0..5_000 {
        limiter.check(&key).unwrap();
    }
    // Key 0 goes on sending; the others go quiet.
    for _ in 0..9 {
        limiter.check(&0).unwrap();
    }
    assert_eq!(limiter.len(), 5_000);
    clock.advance(Duration::from_secs(2));
    limiter.evict_idle();
    assert_eq!(limiter.len(), 1, "only the busy key remains");
    assert!(!limiter.is_empty());
    clock.advance(Duration::from_secs(10));
    limiter.evict_idle();
    assert!(limiter.is_empty());
}

#[test]
fn key_count_is_capped() {
    let (limiter, clock) = fake(quota(10, 10), 50);
    for key in 0..50 {
        limiter.check(&key).unwrap();
    }
    // Table full of keys that are not yet rested: a new client is shed.
    assert_eq!(
        limiter.check(&1_000),
        Err(Retry {
            after: Duration::from_secs(1)
        })
    );
    assert_eq!(limiter.len(), 50);
    // Once the keys have rested, the next check evicts them and lets the newcomer in.
    clock.advance(Duration::from_secs(2));
    assert_eq!(limiter.check(&1_000), Ok(()));
    assert_eq!(limiter.len(), 1);
    for key in 2_000..10_000 {
        let _ = limiter.check(&key);
        assert!(limiter.len() <= 50);
    }
}

#[test]
fn debug_shows_settings_not_keys() {
    let (limiter, _) = fake(quota(2, 1), 3);
    limiter.check(&1).unwrap();
    assert_eq!(
        format!("{limiter:?}"),
        "KeyedLimiter { quota: Quota { max_requests: 2, window: 1s }, max_keys: 3, len: 1, .. }"
    );
}

proptest! {
    #[test]
    fn a_rested_key_gets_exactly_its_burst(max in 1u32..200, window_ms in 1u64..100_000, extra in 1u32..20) {
        let q = Quota { max_requests: max, window: Duration::from_millis(window_ms) };
        prop_assume!(q.replenish_interval().is_ok());
        let (limiter, _) = fake(q, 4);
        let passed = (0..max + extra).filter(|_| limiter.check(&9).is_ok()).count();
        prop_assert_eq!(passed, max as usize);
        let retry = limiter.check(&9).unwrap_err();
        prop_assert!(retry.after > Duration::ZERO);
        prop_assert!(retry.after <= q.replenish_interval().unwrap());
    }
}
