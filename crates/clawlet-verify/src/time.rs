//! The clock as a parameter: a point in Unix time, and how far a signed timestamp may drift.

use core::time::Duration;

use crate::VerifyError;

/// A point in time, in milliseconds since the Unix epoch.
///
/// Verification never reads the clock: the caller passes `now`, so tests and replays of old
/// traffic are deterministic. Build it from seconds, milliseconds or, with the `std` feature,
/// a [`std::time::SystemTime`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime {
    // i128 so that seconds convert to milliseconds exactly, whatever a caller or a header says.
    millis: i128,
}

impl UnixTime {
    /// Whole seconds since the epoch.
    #[must_use]
    pub const fn from_secs(secs: i64) -> UnixTime {
        UnixTime {
            millis: secs as i128 * 1000,
        }
    }

    /// Milliseconds since the epoch.
    #[must_use]
    pub const fn from_millis(millis: i64) -> UnixTime {
        UnixTime {
            millis: millis as i128,
        }
    }

    /// Whole seconds since the epoch, rounded towards negative infinity.
    #[must_use]
    pub const fn as_secs(self) -> i64 {
        // Exact: the value came from an i64 of seconds or of milliseconds.
        self.millis.div_euclid(1000) as i64
    }

    /// Milliseconds since the epoch, saturating beyond the range of an `i64`.
    #[must_use]
    pub const fn as_millis(self) -> i64 {
        if self.millis > i64::MAX as i128 {
            i64::MAX
        } else if self.millis < i64::MIN as i128 {
            i64::MIN
        } else {
            self.millis as i64
        }
    }
}

#[cfg(feature = "std")]
impl From<std::time::SystemTime> for UnixTime {
    /// A clock before 1970 maps to negative times; one beyond the year 292 million saturates.
    fn from(time: std::time::SystemTime) -> UnixTime {
        let millis = match time.duration_since(std::time::UNIX_EPOCH) {
            Ok(after) => i128::try_from(after.as_millis()).unwrap_or(i128::MAX),
            Err(before) => i128::try_from(before.duration().as_millis()).map_or(i128::MIN, |m| -m),
        };
        UnixTime { millis }
    }
}

/// How far a signed timestamp may lie from `now`, on each side; `None` leaves that side
/// unchecked.
///
/// A timestamp check bounds how long a captured delivery can be replayed; it does not stop a
/// replay inside the window. Deduplicate on the delivery id for that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tolerance {
    /// How old a timestamp may be.
    pub past: Option<Duration>,
    /// How far in the future a timestamp may be (the sender's clock running ahead).
    pub future: Option<Duration>,
}

impl Tolerance {
    /// No timestamp check at all.
    pub const UNCHECKED: Tolerance = Tolerance {
        past: None,
        future: None,
    };

    /// The same bound on both sides.
    #[must_use]
    pub const fn both(window: Duration) -> Tolerance {
        Tolerance {
            past: Some(window),
            future: Some(window),
        }
    }

    /// Checks a timestamp in milliseconds against `now`.
    pub(crate) fn check_millis(self, timestamp_ms: i128, now: UnixTime) -> Result<(), VerifyError> {
        // Both sides came from i64 values times at most 1000: no i128 overflow.
        let age = now.millis - timestamp_ms;
        if let Some(past) = self.past
            && age > i128::try_from(past.as_millis()).unwrap_or(i128::MAX)
        {
            return Err(VerifyError::TimestampTooOld);
        }
        if let Some(future) = self.future
            && -age > i128::try_from(future.as_millis()).unwrap_or(i128::MAX)
        {
            return Err(VerifyError::TimestampTooNew);
        }
        Ok(())
    }
}

impl From<Option<Duration>> for Tolerance {
    /// `Some(window)` bounds both sides, `None` checks nothing.
    fn from(window: Option<Duration>) -> Tolerance {
        window.map_or(Tolerance::UNCHECKED, Tolerance::both)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(
        timestamp_ms: i64,
        now_ms: i64,
        tolerance: Tolerance,
        expected: Result<(), VerifyError>,
    ) {
        assert_eq!(
            tolerance.check_millis(i128::from(timestamp_ms), UnixTime::from_millis(now_ms)),
            expected,
            "{timestamp_ms} at {now_ms} with {tolerance:?}"
        );
    }

    #[test]
    fn tolerance_table() {
        let five = Tolerance::both(Duration::from_secs(5));
        let past_only = Tolerance {
            past: Some(Duration::from_secs(5)),
            future: None,
        };
        check(10_000, 15_000, five, Ok(()));
        check(10_000, 15_001, five, Err(VerifyError::TimestampTooOld));
        check(20_000, 15_000, five, Ok(()));
        check(20_001, 15_000, five, Err(VerifyError::TimestampTooNew));
        check(i64::MAX, i64::MIN, past_only, Ok(()));
        check(
            i64::MIN,
            i64::MAX,
            past_only,
            Err(VerifyError::TimestampTooOld),
        );
        check(i64::MIN, i64::MAX, Tolerance::UNCHECKED, Ok(()));
        check(0, 0, Tolerance::from(None), Ok(()));
    }

    #[test]
    fn unix_time_units() {
        assert_eq!(UnixTime::from_secs(2).as_millis(), 2000);
        assert_eq!(UnixTime::from_millis(-1).as_secs(), -1);
        assert_eq!(UnixTime::from_millis(1999).as_secs(), 1);
        assert_eq!(UnixTime::from_secs(i64::MAX).as_millis(), i64::MAX);
        assert_eq!(UnixTime::from_secs(i64::MAX).as_secs(), i64::MAX);
        assert_eq!(UnixTime::from_secs(i64::MIN).as_secs(), i64::MIN);
    }

    #[test]
    fn from_system_time() {
        let t = std::time::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(UnixTime::from(t).as_millis(), 1_700_000_000_123);
        let before = std::time::UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(UnixTime::from(before).as_secs(), -1);
    }
}
