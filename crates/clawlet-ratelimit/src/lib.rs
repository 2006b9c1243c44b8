//! Keyed rate limiting on `governor` with bounded memory.
//!
//! It knows nothing of HTTP: callers give it a key (usually a client IP) and get an answer, plus
//! how long to wait when the answer is no. It must never grow without bound: keys whose state is
//! indistinguishable from a fresh key are evicted, and the number of keys is capped, so a flood
//! from many distinct addresses costs at most `max_keys` entries.
//!
//! A [`Quota`] of `max_requests` per `window` is a GCRA quota: one cell is replenished every
//! `window / max_requests`, and a burst of `max_requests` is allowed from a rested key.
//!
//! ```
//! use std::time::Duration;
//! use clawlet_ratelimit::{KeyedLimiter, Quota};
//!
//! let limiter = KeyedLimiter::new(Quota { max_requests: 2, window: Duration::from_secs(60) })?;
//! assert!(limiter.check(&"198.51.100.7").is_ok());
//! assert!(limiter.check(&"198.51.100.7").is_ok());
//! let retry = limiter.check(&"198.51.100.7").unwrap_err();
//! assert!(retry.after <= Duration::from_secs(30));
//! assert!(limiter.check(&"203.0.113.9").is_ok()); // other keys are not affected
//! # Ok::<(), clawlet_ratelimit::RateLimitError>(())
//! ```

use std::fmt;
use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota as GovernorQuota, RateLimiter};

#[cfg(test)]
mod tests;

/// The number of keys a limiter holds at most unless told otherwise.
///
/// About 100 bytes per key (address, GCRA state, map overhead), so roughly 10 MB at the cap.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// `max_requests` per `window`, as a GCRA quota with a burst of `max_requests`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Requests allowed in one window, and the size of the burst a rested key may send at once.
    pub max_requests: u32,
    /// The time in which a fully spent key regains all of its `max_requests`.
    pub window: Duration,
}

impl Quota {
    /// The time between two replenished cells: `window / max_requests`.
    ///
    /// # Errors
    /// The quota allows nothing or replenishes nothing (zero requests, or a window shorter than
    /// one nanosecond per request).
    pub fn replenish_interval(&self) -> Result<Duration, RateLimitError> {
        if self.max_requests == 0 {
            return Err(RateLimitError::ZeroRequests);
        }
        let interval = self.window / self.max_requests;
        if interval.is_zero() {
            return Err(RateLimitError::WindowTooShort {
                max_requests: self.max_requests,
                window: self.window,
            });
        }
        Ok(interval)
    }

    fn to_governor(self) -> Result<GovernorQuota, RateLimitError> {
        let interval = self.replenish_interval()?;
        let burst = NonZeroU32::new(self.max_requests).ok_or(RateLimitError::ZeroRequests)?;
        let quota = GovernorQuota::with_period(interval).ok_or(RateLimitError::WindowTooShort {
            max_requests: self.max_requests,
            window: self.window,
        })?;
        Ok(quota.allow_burst(burst))
    }
}

/// A quota or limiter setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateLimitError {
    /// `max_requests` is zero: nothing would ever pass; disable rate limiting instead.
    #[error("max_requests must be at least 1")]
    ZeroRequests,
    /// The window is too short to replenish even one request (zero, or below 1 ns per request).
    #[error("window of {window:?} is too short for {max_requests} requests")]
    WindowTooShort {
        /// The configured request count.
        max_requests: u32,
        /// The configured window.
        window: Duration,
    },
    /// `max_keys` is zero: the limiter could not remember a single client.
    #[error("max_keys must be at least 1")]
    ZeroMaxKeys,
}

/// The answer when a key has spent its quota: try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// How long until the key may send one more request.
    pub after: Duration,
}

/// A GCRA rate limiter with one state per key and a cap on the number of keys.
///
/// Cheap to share behind an `Arc`; all methods take `&self`.
pub struct KeyedLimiter<K, C = DefaultClock>
where
    K: Hash + Eq + Clone,
    C: Clock,
{
    limiter: RateLimiter<K, DashMapStateStore<K>, C, NoOpMiddleware<C::Instant>>,
    clock: C,
    quota: Quota,
    replenish: Duration,
    max_keys: usize,
    /// When the last eviction forced by a full table ran; evicting walks every key, so a client
    /// that keeps the table full must not make each request pay for a full walk.
    last_forced_eviction: Mutex<Option<C::Instant>>,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    /// A limiter for `quota` that holds at most [`DEFAULT_MAX_KEYS`] keys.
    ///
    /// # Errors
    /// The quota cannot work (see [`RateLimitError`]).
    pub fn new(quota: Quota) -> Result<Self, RateLimitError> {
        Self::with_max_keys(quota, DEFAULT_MAX_KEYS)
    }

    /// A limiter for `quota` that holds at most `max_keys` keys.
    ///
    /// When the table is full and no key is idle, every key is refused until keys become idle:
    /// a flood from that many distinct clients is an attack, and shedding it keeps memory bounded.
    ///
    /// # Errors
    /// The quota cannot work, or `max_keys` is zero.
    pub fn with_max_keys(quota: Quota, max_keys: usize) -> Result<Self, RateLimitError> {
        Self::with_clock(quota, max_keys, DefaultClock::default())
    }
}

impl<K: Hash + Eq + Clone, C: Clock + Clone> KeyedLimiter<K, C> {
    pub(crate) fn with_clock(
        quota: Quota,
        max_keys: usize,
        clock: C,
    ) -> Result<Self, RateLimitError> {
        if max_keys == 0 {
            return Err(RateLimitError::ZeroMaxKeys);
        }
        let governor_quota = quota.to_governor()?;
        let replenish = quota.replenish_interval()?;
        Ok(Self {
            limiter: RateLimiter::dashmap_with_clock(governor_quota, clock.clone()),
            clock,
            quota,
            replenish,
            max_keys,
            last_forced_eviction: Mutex::new(None),
        })
    }

    /// Spends one cell of `key`'s quota.
    ///
    /// # Errors
    /// The key has no cell left (or the table is full of busy keys); [`Retry::after`] says when
    /// one more request would pass.
    pub fn check(&self, key: &K) -> Result<(), Retry> {
        if self.limiter.len() >= self.max_keys {
            self.evict_when_full();
            if self.limiter.len() >= self.max_keys {
                return Err(Retry {
                    after: self.replenish,
                });
            }
        }
        self.limiter.check_key(key).map_err(|not_until| Retry {
            after: not_until.wait_time_from(self.clock.now()),
        })
    }

    /// The number of keys held now.
    pub fn len(&self) -> usize {
        self.limiter.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.limiter.is_empty()
    }

    /// The quota this limiter enforces.
    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// Forgets every key whose state equals that of a fresh key, and releases the memory.
    ///
    /// Call it now and then (a timer every window is plenty); `check` also calls it, at most
    /// once per replenish interval, when the table is full.
    pub fn evict_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    fn evict_when_full(&self) {
        // A busy lock means another caller is evicting right now; no need to wait for it.
        let Ok(mut last) = self.last_forced_eviction.try_lock() else {
            return;
        };
        let now = self.clock.now();
        let due = last.is_none_or(|at| Duration::from(now.duration_since(at)) >= self.replenish);
        if due {
            *last = Some(now);
            self.evict_idle();
        }
    }
}

impl<K: Hash + Eq + Clone, C: Clock> fmt::Debug for KeyedLimiter<K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedLimiter")
            .field("quota", &self.quota)
            .field("max_keys", &self.max_keys)
            .field("len", &self.limiter.len())
            .finish_non_exhaustive()
    }
}
