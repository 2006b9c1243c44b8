//! The in-flight body budget: how many bytes of request bodies the server holds at once, across
//! every connection.
//!
//! `max_body_bytes` bounds one body, `max_connections` bounds how many arrive at once, but their
//! product (25 MiB × 10,000) is no bound at all: bodies are read whole before their signature is
//! checked, so unsigned bodies alone could fill memory. Each request therefore reserves the bytes
//! it holds as they arrive, and gives them back when its [`Reservation`] is dropped. A request
//! whose declared length does not fit in what is free is answered 503 unread, and one whose next
//! frame does not fit is answered 503 without reading further. Only bytes that arrived are
//! reserved, never a declared length: a sender that declares 25 MiB and sends nothing holds
//! nothing, so a few stalled connections cannot lock every other sender out.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A shared count of body bytes held, and the most it may reach; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct BodyBudget(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    limit: u64,
    used: AtomicU64,
}

impl BodyBudget {
    /// A budget of `limit` bytes.
    pub(crate) fn new(limit: u64) -> Self {
        Self(Arc::new(Inner {
            limit,
            used: AtomicU64::new(0),
        }))
    }

    /// An empty reservation, to grow as bytes arrive.
    pub(crate) fn hold(&self) -> Reservation<'_> {
        Reservation {
            budget: self,
            bytes: 0,
        }
    }

    /// Whether `bytes` more would fit now. Nothing is taken: another request may take the room
    /// before this one grows into it, and is then the one refused at its own frame.
    pub(crate) fn has_free(&self, bytes: u64) -> bool {
        let inner = &self.0;
        inner
            .used
            .load(Ordering::Acquire)
            .checked_add(bytes)
            .is_some_and(|total| total <= inner.limit)
    }

    /// Takes `bytes` from the budget, or nothing when that would pass the limit.
    #[cfg(test)]
    pub(crate) fn reserve(&self, bytes: u64) -> Option<Reservation<'_>> {
        let mut reservation = self.hold();
        reservation.grow(bytes).then_some(reservation)
    }

    /// Bytes reserved now.
    #[cfg(test)]
    pub(crate) fn used(&self) -> u64 {
        self.0.used.load(Ordering::Acquire)
    }
}

/// Bytes taken from a [`BodyBudget`]; given back when dropped.
#[derive(Debug)]
pub(crate) struct Reservation<'b> {
    budget: &'b BodyBudget,
    bytes: u64,
}

impl Reservation<'_> {
    /// Takes `more` bytes on top of what is held; `false`, and nothing taken, when that would
    /// pass the limit.
    pub(crate) fn grow(&mut self, more: u64) -> bool {
        if more == 0 {
            return true;
        }
        let inner = &self.budget.0;
        // A compare-and-swap loop rather than add-then-check: a request that does not fit must
        // not, even for an instant, make a concurrent one that would fit look over the limit.
        let taken = inner
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(more).filter(|total| *total <= inner.limit)
            })
            .is_ok();
        if taken {
            self.bytes += more;
        }
        taken
    }

    /// Gives `bytes` of what is held back (at most all of it): memory that was freed early.
    pub(crate) fn release(&mut self, bytes: u64) {
        let bytes = bytes.min(self.bytes);
        if bytes > 0 {
            self.budget.0.used.fetch_sub(bytes, Ordering::AcqRel);
            self.bytes -= bytes;
        }
    }

    /// Bytes held by this reservation.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.budget.0.used.fetch_sub(self.bytes, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_are_bounded_and_given_back_on_drop() {
        let budget = BodyBudget::new(100);
        let a = budget.reserve(60).unwrap();
        assert_eq!(a.bytes(), 60);
        assert!(budget.reserve(41).is_none(), "60 + 41 is over 100");
        assert_eq!(budget.used(), 60, "a refused reservation takes nothing");
        let mut b = budget.reserve(40).unwrap();
        assert_eq!(budget.used(), 100);
        assert!(!b.grow(1));
        assert!(b.grow(0));
        drop(a);
        assert_eq!(budget.used(), 40);
        assert!(b.grow(60));
        assert_eq!(b.bytes(), 100);
        b.release(30);
        assert_eq!((b.bytes(), budget.used()), (70, 70));
        b.release(1_000);
        assert_eq!((b.bytes(), budget.used()), (0, 0));
        assert!(b.grow(100));
        drop(b);
        assert_eq!(budget.used(), 0);
        // An empty body always fits, even in a spent budget.
        let full = budget.reserve(100).unwrap();
        assert!(budget.reserve(0).is_some());
        assert!(budget.has_free(0));
        assert!(!budget.has_free(1));
        drop(full);
        // Asking takes nothing.
        assert!(budget.has_free(100));
        assert!(!budget.has_free(101));
        assert!(!budget.has_free(u64::MAX));
        assert_eq!(budget.used(), 0);
        // Sizes near u64::MAX cannot wrap the count around.
        let one = budget.reserve(1).unwrap();
        assert!(budget.reserve(u64::MAX).is_none());
        drop(one);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn concurrent_reservations_never_pass_the_limit() {
        let budget = BodyBudget::new(1_000);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..10_000 {
                        if let Some(held) = budget.reserve(300) {
                            assert!(budget.used() <= 1_000);
                            drop(held);
                        }
                    }
                });
            }
        });
        assert_eq!(budget.used(), 0);
    }
}
