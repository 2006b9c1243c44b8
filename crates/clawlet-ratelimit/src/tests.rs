use std::net::IpAddr;
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
        Err(Refusal::Limited(Retry {
            after: Duration::from_millis(600)
        }))
    );
    clock.advance(Duration::from_millis(200));
    assert_eq!(
        limiter.check(&1),
        Err(Refusal::Limited(Retry {
            after: Duration::from_millis(400)
        }))
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
    // Table full of keys that are not yet rested: newcomers share the overflow, and take no key.
    for key in 1_000..10_000 {
        let _ = limiter.check(&key);
        assert_eq!(limiter.len(), 50);
    }
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
fn a_full_table_keeps_serving_the_keys_it_holds() {
    let (limiter, _) = fake(quota(10, 10), 50);
    for key in 0..50 {
        limiter.check(&key).unwrap();
    }
    // Newcomers spend the overflow to the last cell.
    for key in 1_000..1_100 {
        let _ = limiter.check(&key);
    }
    assert!(limiter.check(&1_100).is_err(), "the overflow is spent");
    // A key in the table still has the rest of its own burst.
    for i in 0..9 {
        assert_eq!(limiter.check(&7), Ok(()), "request {i} of key 7");
    }
    assert!(limiter.check(&7).is_err());
}

#[test]
fn newcomers_at_a_full_table_share_one_quota() {
    let (limiter, clock) = fake(quota(10, 10), 50);
    for key in 0..50 {
        limiter.check(&key).unwrap();
    }
    // Ten distinct newcomers get the overflow's burst of ten, the eleventh waits one interval.
    for key in 1_000..1_010 {
        assert_eq!(limiter.check(&key), Ok(()), "newcomer {key}");
    }
    assert_eq!(
        limiter.check(&1_010),
        Err(Refusal::Overflowed(Retry {
            after: Duration::from_secs(1)
        }))
    );
    assert_eq!(limiter.len(), 50);
    // The overflow replenishes like any key; rested table keys are not evicted more than once
    // per interval, so the key table stays as it was.
    clock.advance(Duration::from_millis(999));
    assert!(limiter.check(&1_011).is_err());
    clock.advance(Duration::from_millis(1));
    // Evicting now frees the table, so the newcomer gets a key of its own.
    assert_eq!(limiter.check(&1_012), Ok(()));
}

/// A newcomer refused at a full table is told apart from a key that spent its own quota: the
/// caller may serve it once it proves itself, and admit it.
#[test]
fn a_newcomer_refused_by_the_spent_overflow_is_overflowed_not_limited() {
    let (limiter, _) = fake(quota(2, 10), 3);
    for key in 0..3 {
        limiter.check(&key).unwrap();
    }
    // Key 0 spends its own burst of two: that is its own limit.
    limiter.check(&0).unwrap();
    assert!(matches!(limiter.check(&0), Err(Refusal::Limited(_))));
    // Newcomers spend the overflow's burst of two, then are overflowed.
    for key in 100..102 {
        assert_eq!(limiter.check(&key), Ok(()), "newcomer {key}");
    }
    let refusal = limiter.check(&102).unwrap_err();
    assert_eq!(
        refusal,
        Refusal::Overflowed(Retry {
            after: Duration::from_secs(5)
        })
    );
    assert_eq!(refusal.retry().after, Duration::from_secs(5));
    // Once admitted, the same key is measured on its own state: its next refusal is its own.
    limiter.admit(&102);
    assert_eq!(limiter.len(), 4);
    assert_eq!(limiter.check(&102), Ok(()));
    assert!(matches!(limiter.check(&102), Err(Refusal::Limited(_))));
    // Keys in the table are still limited, not overflowed, while the table is full.
    assert!(matches!(limiter.check(&0), Err(Refusal::Limited(_))));
}

#[test]
fn an_admitted_key_keeps_its_own_quota_beyond_the_cap() {
    fn check(max_keys: usize, admitted: u32, expected_len: usize) {
        let (limiter, _) = fake(quota(10, 10), max_keys);
        for key in 0..max_keys as u32 {
            limiter.check(&key).unwrap();
        }
        for key in 1_000..1_000 + admitted {
            let _ = limiter.check(&key);
            limiter.admit(&key);
        }
        assert_eq!(
            limiter.len(),
            expected_len,
            "{max_keys} keys, {admitted} admitted"
        );
    }
    // A quarter above the cap (at least one), no further.
    check(40, 5, 45);
    check(40, 10, 50);
    check(40, 30, 50);
    check(3, 5, 4);

    let (limiter, _) = fake(quota(10, 10), 40);
    for key in 0..40 {
        limiter.check(&key).unwrap();
    }
    assert_eq!(limiter.check(&1_000), Ok(()));
    limiter.admit(&1_000);
    // Admitting a known key is a no-op.
    limiter.admit(&1_000);
    assert_eq!(limiter.len(), 41);
    // A flood spends the overflow ...
    for key in 2_000..2_100 {
        let _ = limiter.check(&key);
    }
    assert!(limiter.check(&2_100).is_err());
    // ... and the admitted key, whose first request was counted on the overflow and again on
    // its own state, has nine cells of its own left.
    for i in 0..9 {
        assert_eq!(limiter.check(&1_000), Ok(()), "request {i}");
    }
    assert!(limiter.check(&1_000).is_err());
}

#[test]
fn ipv6_clients_are_keyed_by_their_prefix() {
    fn check(bits: u8, ip: &str, expected: &str) {
        let prefix = Ipv6Prefix::new(bits).unwrap();
        assert_eq!(
            prefix.key(ip.parse().unwrap()),
            expected.parse::<IpAddr>().unwrap(),
            "/{bits} {ip}"
        );
    }
    check(64, "2001:db8:1:2:a:b:c:d", "2001:db8:1:2::");
    check(64, "2001:db8:1:2::", "2001:db8:1:2::");
    check(64, "2001:db8:1:3::1", "2001:db8:1:3::");
    check(56, "2001:db8:1:2ff:a:b:c:d", "2001:db8:1:200::");
    check(48, "2001:db8:1:2:a:b:c:d", "2001:db8:1::");
    check(128, "2001:db8::1", "2001:db8::1");
    check(127, "2001:db8::3", "2001:db8::2");
    check(1, "ffff::1", "8000::");
    // IPv4 is keyed whole, whether it arrives plain or IPv4-mapped.
    check(64, "192.0.2.7", "192.0.2.7");
    check(1, "192.0.2.7", "192.0.2.7");
    check(64, "::ffff:192.0.2.7", "192.0.2.7");
    assert_eq!(Ipv6Prefix::default().bits(), 64);
}

#[test]
fn ipv6_prefix_lengths_outside_1_to_128_are_refused() {
    for bits in [0, 129, 200, 255] {
        let err = Ipv6Prefix::new(bits).unwrap_err();
        assert_eq!(err, RateLimitError::Ipv6Prefix { bits });
        assert_eq!(
            err.to_string(),
            format!(
                "ipv6_prefix {bits} is not a prefix length; use 1 to 128 (64 keys each /64 as one client)"
            )
        );
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
        let retry = limiter.check(&9).unwrap_err().retry();
        prop_assert!(retry.after > Duration::ZERO);
        prop_assert!(retry.after <= q.replenish_interval().unwrap());
    }
}
