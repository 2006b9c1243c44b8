//! Keyed rate limiting on `governor` with bounded memory.
//!
//! It knows nothing of HTTP: callers give it a key (usually a client IP, see [`Ipv6Prefix::key`])
//! and get an answer, plus how long to wait when the answer is no. It must never grow without
//! bound: keys whose state is indistinguishable from a fresh key are evicted, and the number of
//! keys is capped, so a flood from many distinct addresses costs at most `max_keys` entries (and
//! a quarter more for senders the caller vouches for with [`KeyedLimiter::admit`]).
//!
//! A [`Quota`] of `max_requests` per `window` is a GCRA quota: one cell is replenished every
//! `window / max_requests`, and a burst of `max_requests` is allowed from a rested key.
//!
//! When the table is full, keys already in it are served as usual; a key that is not shares one
//! overflow state, as if all newcomers were one client, until keys rest and are evicted. A
//! newcomer refused by that shared state is told so ([`Refusal::Overflowed`]) rather than
//! refused like a key that spent its own quota: the caller may let it prove itself (verify its
//! signature) and then [`KeyedLimiter::admit`] it, so that a flood of newcomers cannot lock an
//! authentic one out.
//!
//! ```
//! use std::time::Duration;
//! use clawlet_ratelimit::{KeyedLimiter, Quota, Refusal};
//!
//! let limiter = KeyedLimiter::new(Quota { max_requests: 2, window: Duration::from_secs(60) })?;
//! assert!(limiter.check(&"198.51.100.7").is_ok());
//! assert!(limiter.check(&"198.51.100.7").is_ok());
//! let Err(Refusal::Limited(retry)) = limiter.check(&"198.51.100.7") else { unreachable!() };
//! assert!(retry.after <= Duration::from_secs(30));
//! assert!(limiter.check(&"203.0.113.9").is_ok()); // other keys are not affected
//! # Ok::<(), clawlet_ratelimit::RateLimitError>(())
//! ```

use std::fmt;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::{DashMapStateStore, ShrinkableKeyedStateStore};
use governor::state::{InMemoryState, NotKeyed, StateStore};
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

/// How many leading bits of an IPv6 address name one client: 1 to 128, 64 by default.
///
/// One host, or one home connection, is routinely given a whole /64 and may pick any address in
/// it (privacy addresses change by the hour), so keying IPv6 by the full address would let one
/// sender take as many quotas as it likes. IPv4 addresses are always keyed whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Prefix(u8);

impl Ipv6Prefix {
    /// A /64, the smallest network a site is normally given.
    pub const DEFAULT: Self = Self(64);

    /// A prefix of `bits` leading bits.
    ///
    /// # Errors
    /// `bits` is 0 (every IPv6 client would be one key) or above 128.
    pub fn new(bits: u8) -> Result<Self, RateLimitError> {
        if (1..=128).contains(&bits) {
            Ok(Self(bits))
        } else {
            Err(RateLimitError::Ipv6Prefix { bits })
        }
    }

    /// The number of leading bits kept.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// The key `ip` is limited under: an IPv4 address (IPv4-mapped IPv6 included) as it is, an
    /// IPv6 address with every bit past the prefix cleared.
    pub fn key(self, ip: IpAddr) -> IpAddr {
        match ip.to_canonical() {
            IpAddr::V4(v4) => IpAddr::V4(v4),
            IpAddr::V6(v6) => {
                // `new` keeps the prefix within 1..=128, so the shift stays below 128.
                let mask = u128::MAX << (128 - u32::from(self.0));
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
            }
        }
    }
}

impl Default for Ipv6Prefix {
    fn default() -> Self {
        Self::DEFAULT
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
    /// An IPv6 prefix length outside 1 to 128.
    #[error(
        "ipv6_prefix {bits} is not a prefix length; use 1 to 128 (64 keys each /64 as one client)"
    )]
    Ipv6Prefix {
        /// The refused length.
        bits: u8,
    },
}

/// The answer when a key has spent its quota: try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// How long until the key may send one more request.
    pub after: Duration,
}

/// Why [`KeyedLimiter::check`] said no.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The key has spent its own quota.
    Limited(Retry),
    /// The key is new, the table is full of busy keys, and the overflow quota that all such
    /// newcomers share is spent. The key itself has done nothing yet: a caller that can tell an
    /// authentic sender from the flood may serve it after all, and then [`KeyedLimiter::admit`]
    /// it.
    Overflowed(Retry),
}

impl Refusal {
    /// When one more request would pass.
    pub fn retry(self) -> Retry {
        match self {
            Self::Limited(retry) | Self::Overflowed(retry) => retry,
        }
    }
}

/// The per-key states, and the one state that keys arriving at a full table share.
///
/// The limiter and [`KeyedLimiter`] both hold it: the limiter to measure, the owner to ask
/// whether a key is known before it decides to evict or admit.
struct Table<K: Hash + Eq + Clone>(Arc<TableInner<K>>);

struct TableInner<K: Hash + Eq + Clone> {
    keys: DashMapStateStore<K>,
    overflow: InMemoryState,
    max_keys: usize,
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn knows(&self, key: &K) -> bool {
        self.0.keys.contains_key(key)
    }

    fn len(&self) -> usize {
        self.0.keys.len()
    }
}

impl<K: Hash + Eq + Clone> StateStore for Table<K> {
    type Key = K;

    fn measure_and_replace<T, F, E>(&self, key: &K, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let table = &self.0;
        if let Some(state) = table.keys.get(key) {
            return state.measure_and_replace(&NotKeyed::NonKey, f);
        }
        // Two newcomers racing here may both see room: the cap is exceeded by at most the number
        // of threads checking at once, which keeps memory bounded all the same.
        if table.keys.len() < table.max_keys {
            return table.keys.measure_and_replace(key, f);
        }
        table.overflow.measure_and_replace(&NotKeyed::NonKey, f)
    }
}

impl<K: Hash + Eq + Clone> ShrinkableKeyedStateStore<K> for Table<K> {
    fn retain_recent(&self, drop_below: Nanos) {
        self.0.keys.retain_recent(drop_below);
    }

    fn shrink_to_fit(&self) {
        ShrinkableKeyedStateStore::shrink_to_fit(&self.0.keys);
    }

    fn len(&self) -> usize {
        self.0.keys.len()
    }

    fn is_empty(&self) -> bool {
        self.0.keys.is_empty()
    }
}

/// A GCRA rate limiter with one state per key and a cap on the number of keys.
///
/// Cheap to share behind an `Arc`; all methods take `&self`.
pub struct KeyedLimiter<K, C = DefaultClock>
where
    K: Hash + Eq + Clone,
    C: Clock,
{
    limiter: RateLimiter<K, Table<K>, C, NoOpMiddleware<C::Instant>>,
    table: Table<K>,
    clock: C,
    quota: Quota,
    replenish: Duration,
    max_keys: usize,
    /// How many keys [`KeyedLimiter::admit`] may hold in all: a quarter above `max_keys`.
    admitted_cap: usize,
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
    /// When the table is full and no key is idle, keys already in it keep their own quota, and
    /// every other key shares one overflow quota (the same `quota`, as if all newcomers were one
    /// client): a flood from that many distinct clients is an attack, and memory stays bounded,
    /// but neither known clients nor every newcomer are shut out.
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
        let table = Arc::new(TableInner {
            keys: DashMapStateStore::default(),
            overflow: InMemoryState::default(),
            max_keys,
        });
        Ok(Self {
            limiter: RateLimiter::new(governor_quota, Table(Arc::clone(&table)), clock.clone()),
            table: Table(table),
            clock,
            quota,
            replenish,
            max_keys,
            admitted_cap: max_keys.saturating_add((max_keys / 4).max(1)),
            last_forced_eviction: Mutex::new(None),
        })
    }

    /// Spends one cell of `key`'s quota, or of the shared overflow quota when `key` is new and
    /// the table is full even after evicting rested keys.
    ///
    /// # Errors
    /// [`Refusal::Limited`] when the key has no cell left, [`Refusal::Overflowed`] when the key
    /// is new and the overflow has none; [`Retry::after`] says when one more request would pass.
    pub fn check(&self, key: &K) -> Result<(), Refusal> {
        let mut newcomer_at_full = !self.table.knows(key) && self.table.len() >= self.max_keys;
        if newcomer_at_full {
            self.evict_when_full();
            newcomer_at_full = self.table.len() >= self.max_keys;
        }
        self.limiter.check_key(key).map_err(|not_until| {
            let retry = Retry {
                after: not_until.wait_time_from(self.clock.now()),
            };
            // A key that another request added in between is measured on its own state but
            // still called overflowed here: the caller then asks for proof it would not have
            // needed, which errs on the strict side.
            if newcomer_at_full {
                Refusal::Overflowed(retry)
            } else {
                Refusal::Limited(retry)
            }
        })
    }

    /// Gives `key` a state of its own even when the table is full, and counts one request on it.
    ///
    /// Call it once a request from `key` has proven itself (its signature verified): an
    /// authentic sender that arrived while the table was full then no longer competes with a
    /// flood for the overflow quota. Admitted keys may take the table a quarter above
    /// `max_keys`, no further, and are evicted like any other once they rest.
    pub fn admit(&self, key: &K) {
        if self.table.knows(key) || self.table.len() >= self.admitted_cap {
            return;
        }
        self.table.0.keys.entry(key.clone()).or_default();
        // The request was counted on the overflow already (unless the overflow refused it);
        // counting it again on the key's own state errs on the strict side and marks the entry
        // as recent, so that the next eviction does not take it for a fresh key.
        let _ = self.limiter.check_key(key);
    }

    /// The number of keys held now.
    pub fn len(&self) -> usize {
        self.table.len()
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
    /// once per replenish interval, when a new key finds the table full.
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
            .field("len", &self.table.len())
            .finish_non_exhaustive()
    }
}
