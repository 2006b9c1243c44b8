use std::time::Duration;

use rand::Rng;

/// Exponential backoff with full jitter: attempt `n` waits a uniform random time in
/// `[0, min(max, base * 2^(n-1))]`, so that many failing deliveries do not retry in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The ceiling after the first failed attempt.
    pub base: Duration,
    /// The largest ceiling.
    pub max: Duration,
}

impl Default for RetryPolicy {
    /// 1s doubling up to 10 minutes: ten attempts span roughly a quarter of an hour at most.
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            max: Duration::from_secs(600),
        }
    }
}

impl RetryPolicy {
    /// The wait after `attempts` failed attempts (1 for the first failure). The RNG is a parameter
    /// so that tests can seed it.
    pub fn backoff(&self, attempts: u32, rng: &mut impl Rng) -> Duration {
        let doublings = attempts.saturating_sub(1).min(32);
        let ceiling = self
            .base
            .saturating_mul(1_u32 << doublings.min(31))
            .min(self.max);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.random_range(0..=nanos))
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn check(policy: RetryPolicy, attempts: u32, expected_ceiling: Duration) {
        let mut rng = StdRng::seed_from_u64(u64::from(attempts));
        let mut largest = Duration::ZERO;
        for _ in 0..2000 {
            let wait = policy.backoff(attempts, &mut rng);
            assert!(
                wait <= expected_ceiling,
                "attempt {attempts}: {wait:?} > {expected_ceiling:?}"
            );
            largest = largest.max(wait);
        }
        // Full jitter spreads over the whole range: the largest of 2000 draws is near the top.
        assert!(
            largest * 10 >= expected_ceiling * 9,
            "attempt {attempts}: largest {largest:?}"
        );
    }

    #[test]
    fn ceiling_doubles_up_to_max() {
        let policy = RetryPolicy {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        check(policy, 1, Duration::from_millis(100));
        check(policy, 2, Duration::from_millis(200));
        check(policy, 3, Duration::from_millis(400));
        check(policy, 4, Duration::from_millis(800));
        check(policy, 5, Duration::from_secs(1));
        check(policy, 40, Duration::from_secs(1));
        check(policy, u32::MAX, Duration::from_secs(1));
    }

    #[test]
    fn zero_base_never_waits() {
        let policy = RetryPolicy {
            base: Duration::ZERO,
            max: Duration::from_secs(1),
        };
        let mut rng = StdRng::seed_from_u64(7);
        assert_eq!(policy.backoff(3, &mut rng), Duration::ZERO);
    }
}
