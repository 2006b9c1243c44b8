//! Latency percentiles over every recorded sample: no histogram, so no binning error.

/// Latency figures in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Latency {
    /// Median.
    pub(crate) p50: u32,
    /// 90th percentile.
    pub(crate) p90: u32,
    /// 99th percentile.
    pub(crate) p99: u32,
    /// 99.9th percentile.
    pub(crate) p999: u32,
    /// The slowest request.
    pub(crate) max: u32,
    /// Arithmetic mean.
    pub(crate) mean: u32,
}

impl Latency {
    /// Sorts the samples in place and reads the percentiles off them; all zero when empty.
    pub(crate) fn from_samples(samples: &mut [u32]) -> Self {
        samples.sort_unstable();
        let sum: u64 = samples.iter().map(|&s| u64::from(s)).sum();
        let mean = match u64::try_from(samples.len()) {
            Ok(n) if n > 0 => u32::try_from(sum / n).unwrap_or(u32::MAX),
            _ => 0,
        };
        Self {
            p50: percentile(samples, 50.0).unwrap_or(0),
            p90: percentile(samples, 90.0).unwrap_or(0),
            p99: percentile(samples, 99.0).unwrap_or(0),
            p999: percentile(samples, 99.9).unwrap_or(0),
            max: samples.last().copied().unwrap_or(0),
            mean,
        }
    }
}

/// The nearest-rank percentile of sorted samples: the smallest sample that at least `p` percent of
/// the samples are less than or equal to. `None` when there are no samples.
pub(crate) fn percentile(sorted: &[u32], p: f64) -> Option<u32> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    // Rank in 1..=n. The float-to-int cast saturates; the ranks in play are far below 2^52.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "n is a sample count, far below 2^52, and the rank is clamped to 1..=n"
    )]
    // The small slack keeps 99.9 % of 1000 at rank 999 despite binary floating point.
    let rank = ((p / 100.0) * n as f64 - 1e-9).ceil() as usize;
    sorted.get(rank.clamp(1, n) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(samples: &[u32], p: f64, expected: Option<u32>) {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        assert_eq!(percentile(&sorted, p), expected, "p{p} of {samples:?}");
    }

    #[test]
    fn nearest_rank_percentiles() {
        let hundred: Vec<u32> = (1..=100).collect();
        check(&hundred, 50.0, Some(50));
        check(&hundred, 99.0, Some(99));
        check(&hundred, 99.9, Some(100));
        check(&hundred, 100.0, Some(100));
        check(&hundred, 0.0, Some(1));
        check(&[7], 50.0, Some(7));
        check(&[7], 99.0, Some(7));
        check(&[30, 10, 20], 50.0, Some(20));
        check(&[30, 10, 20, 40], 50.0, Some(20));
        check(&[30, 10, 20, 40], 75.0, Some(30));
        check(&[], 50.0, None);
    }

    #[test]
    fn summary_of_samples() {
        let mut samples: Vec<u32> = (1..=1000).rev().collect();
        let latency = Latency::from_samples(&mut samples);
        assert_eq!(
            latency,
            Latency {
                p50: 500,
                p90: 900,
                p99: 990,
                p999: 999,
                max: 1000,
                mean: 500
            }
        );
        assert_eq!(Latency::from_samples(&mut []), Latency::default());
    }
}
