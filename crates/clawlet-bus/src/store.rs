//! The seam between the bus and its backends. `bus` and `dispatch` choose a backend (an enum,
//! `bus::Store`, matched on each call: no boxed future or allocation on the publish path) and
//! call it; the backends (`local` with `sql`, `mem`, `nats`) implement their side with what is
//! here and never import `bus` or `dispatch`. So dependencies run one way: bus and dispatch, then
//! the backends, then this module.
//!
//! - [`Shared`]: the state a backend keeps current for the bus (backlog, liveness, routes).
//! - Publish: [`Fresh`] (the event as published), [`Placement`] (where each delivery goes),
//!   [`Inserted`] (what was stored).
//! - Claim and finish: [`Work`], [`Payload`], [`Claimed`], [`Finish`].
//! - Time as the journal keeps it: unix milliseconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use clawlet_events::{Envelope, EnvelopeJson};
use tokio::sync::Notify;

use crate::admin::AgentActivity;
use crate::spec::Routes;
use crate::{BusError, Published};

/// What a client is told to wait when the queue is full.
pub(crate) const FULL_RETRY_AFTER: Duration = Duration::from_secs(5);

/// State shared by the bus handle, the backend (the writer thread, the NATS watcher) and the
/// dispatcher.
pub(crate) struct Shared {
    /// Routes applied at publish time; `None` until a dispatcher registers them.
    pub(crate) routes: ArcSwapOption<Routes>,
    /// Undelivered events (sqlite, memory), or the stream's backlog as last seen (nats).
    pub(crate) pending: AtomicU64,
    /// Journal transactions committed, to show that publishes are committed in groups.
    pub(crate) transactions: AtomicU64,
    /// Set by the checkpointer when the WAL is large: the writer copies the rest between batches.
    pub(crate) restart_wal: AtomicBool,
    /// False once the writer stopped or the NATS connection is down.
    pub(crate) alive: AtomicBool,
    /// Wakes the dispatcher when new work was committed.
    pub(crate) notify: Notify,
    pub(crate) max_pending: u64,
    pub(crate) dedup_window: Duration,
    pub(crate) retention: Duration,
    /// What the dispatcher saw of each agent since start (the console's overview).
    pub(crate) activity: std::sync::Mutex<std::collections::HashMap<String, AgentActivity>>,
    /// Every event stored, without its payload, for the console's live tail. Sent only while
    /// someone listens, so publish pays nothing otherwise.
    pub(crate) published: tokio::sync::broadcast::Sender<Arc<Envelope>>,
}

impl Shared {
    pub(crate) fn new(max_pending: u64, dedup_window: Duration, retention: Duration) -> Self {
        Self {
            routes: ArcSwapOption::empty(),
            pending: AtomicU64::new(0),
            transactions: AtomicU64::new(0),
            restart_wal: AtomicBool::new(false),
            alive: AtomicBool::new(true),
            notify: Notify::new(),
            max_pending,
            dedup_window,
            retention,
            activity: std::sync::Mutex::default(),
            published: tokio::sync::broadcast::channel(PUBLISHED_BACKLOG).0,
        }
    }
}

/// Events a slow live-tail reader may fall behind by before it is told it lagged.
const PUBLISHED_BACKLOG: usize = 1024;

pub(crate) fn now_ms() -> i64 {
    to_ms(time::OffsetDateTime::now_utc())
}

pub(crate) fn to_ms(t: time::OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub(crate) fn dur_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Where publish puts the delivery of one agent an event is routed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    /// Due now; the dispatcher claims it.
    Pending,
    /// Written in flight: the dispatcher reserved a slot, and gets the event right after the
    /// commit without reading it back.
    InFlight,
    /// Already made while the event was being stored (a log line, see
    /// [`Routes::delivers_inline`]): recorded delivered after one attempt.
    Delivered,
}

#[cfg(test)]
impl Placement {
    /// In flight where `take` says yes (a dispatcher slot was free), pending elsewhere.
    pub(crate) fn taking(take: impl Fn(&str) -> bool) -> impl Fn(&str) -> Placement {
        move |agent| {
            if take(agent) {
                Placement::InFlight
            } else {
                Placement::Pending
            }
        }
    }

    /// Delivered for `made` (as publish does for a log agent), pending elsewhere.
    pub(crate) fn made_for(made: &'static str) -> impl Fn(&str) -> Placement {
        move |agent| {
            if agent == made {
                Placement::Delivered
            } else {
                Placement::Pending
            }
        }
    }
}

/// What [`insert_event`] stored.
#[derive(Debug)]
pub(crate) struct Inserted {
    pub(crate) published: Published,
    /// The agents whose delivery row was written in flight, for the caller to hand over.
    pub(crate) taken: Vec<String>,
    /// Whether a delivery row was left pending for the dispatcher to claim.
    pub(crate) left_pending: bool,
}

impl Inserted {
    /// Stored before within the dedup window: nothing written, nothing to hand over.
    pub(crate) fn duplicate(event_id: String) -> Self {
        Self {
            published: Published::Duplicate { event_id },
            taken: Vec::new(),
            left_pending: false,
        }
    }
}

/// The event a delivery carries: read back from the journal, or handed over by publish.
#[derive(Debug)]
pub(crate) enum Payload {
    /// The stored JSON, parsed when the delivery is attempted.
    Stored(EnvelopeJson),
    /// A stored envelope that cannot be decoded, and why: its delivery goes dead rather than
    /// failing every claim that meets it.
    Damaged(String),
    /// The envelope as published, with its stored JSON.
    Fresh(Arc<Fresh>),
}

/// An envelope published by this process, shared by its deliveries.
#[derive(Debug)]
pub(crate) struct Fresh {
    /// The envelope without its payload (`null`): what agents need besides the JSON.
    pub(crate) envelope: Arc<Envelope>,
    /// The whole envelope's JSON, payload included: the journal stores it, agents receive it.
    /// Whole when small; a large one stays in pieces around the request body's own buffer.
    pub(crate) json: EnvelopeJson,
}

/// An envelope at least this long is a large one: its JSON is kept in pieces (the request body is
/// not copied next to the fields before it), and the journal writes it uncompressed, piece by
/// piece. Smaller ones are joined once, since compression and a bound parameter want one buffer.
pub(crate) const LARGE_ENVELOPE_BYTES: usize = 1024 * 1024;

impl Fresh {
    /// Serialises the envelope once, then drops its payload, which lives on in the JSON: a large
    /// body is held once, in the buffer it arrived in, until its deliveries are done.
    pub(crate) fn new(mut envelope: Envelope) -> Result<Self, BusError> {
        let json = envelope
            .json_pieces()
            .map_err(|e| BusError::Storage(format!("cannot serialise the envelope: {e}")))?;
        let json = if json.len() < LARGE_ENVELOPE_BYTES {
            json.join()
        } else {
            json
        };
        envelope.payload = clawlet_events::Payload::null();
        Ok(Self {
            envelope: Arc::new(envelope),
            json,
        })
    }

    /// The envelope with its payload, read back from the JSON.
    pub(crate) fn full_envelope(&self) -> Result<Envelope, BusError> {
        serde_json::from_str(&self.json.text()).map_err(|e| {
            BusError::Storage(format!(
                "event {}: unreadable envelope: {e}",
                self.envelope.id
            ))
        })
    }
}

/// A delivery handed to the dispatcher.
#[derive(Debug)]
pub(crate) struct Work {
    pub(crate) event_id: String,
    pub(crate) agent: String,
    pub(crate) attempts: u32,
    pub(crate) payload: Payload,
}

/// What [`claim`] found.
#[derive(Debug, Default)]
pub(crate) struct Claimed {
    pub(crate) work: Vec<Work>,
    /// When the next not-yet-due delivery is due (unix ms).
    pub(crate) next_due: Option<i64>,
    /// Whether due deliveries were left because an agent had no free slot.
    pub(crate) more: bool,
}

/// How an attempt ends for the journal.
#[derive(Debug, Clone)]
pub(crate) enum Finish {
    Delivered,
    Retry {
        at: i64,
        error: String,
    },
    Dead {
        error: String,
    },
    /// Not attempted (shutdown): back to pending without counting an attempt.
    Release,
}

pub(crate) fn from_ms(ms: i64) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}
