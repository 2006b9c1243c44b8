//! What the operator console asks of the bus: keyset-paginated listings with filters, the
//! attempts of one delivery, replay to one agent, bulk replay and purge of dead letters, per-agent
//! backlogs and activity, and the events as they are published. The SQLite backend answers reads
//! on a connection of its own (never the writer's), writes through the writer thread.

use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use crate::DeliveryStatus;

/// Which events a console listing selects; every field set narrows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    /// Only this handler.
    pub handler: Option<String>,
    /// Only this event type.
    pub event_type: Option<String>,
    /// Only events in this state.
    pub status: Option<DeliveryStatus>,
    /// Only the events with this sender delivery id.
    pub delivery_id: Option<String>,
    /// Only events routed to this agent; with `status: Dead`, only those dead for it.
    pub agent: Option<String>,
    /// Received at or after this time (unix ms).
    pub from_ms: Option<i64>,
    /// Received before this time (unix ms).
    pub to_ms: Option<i64>,
    /// Handlers to look `delivery_id` up under in the dedup index when `handler` is not set
    /// (the configured ones); a delivery id the index does not hold is looked for by a scan.
    pub handlers_hint: Vec<String>,
}

/// Where a page of a listing ended: the last event's receipt time and id (the listing's order
/// is newest first, ties by id descending).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventCursor {
    /// The last event's `received_at`, unix ms.
    pub received_at_ms: i64,
    /// The last event's id.
    pub id: String,
}

/// One event of a listing, without its payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventSummary {
    /// The event id.
    pub id: String,
    /// The handler that received it.
    pub handler: String,
    /// The event type.
    pub event_type: String,
    /// GitHub's action, if any.
    pub action: Option<String>,
    /// The sender's delivery id.
    pub delivery_id: String,
    /// When it was received.
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// Its one-line summary.
    pub summary: String,
    /// Where it stands.
    pub status: DeliveryStatus,
}

/// A page of a listing.
#[derive(Debug, Clone, Default)]
pub struct EventsPage {
    /// The events, newest first.
    pub events: Vec<EventSummary>,
    /// Where the next page starts; `None` when this one is the last.
    pub next: Option<EventCursor>,
}

/// One delivery attempt, as the dispatcher recorded it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptRecord {
    /// The agent.
    pub agent: String,
    /// When the attempt ended.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// `delivered`, `failed` or `timed_out`.
    pub outcome: String,
    /// How long it took.
    pub latency: Duration,
    /// Why it failed (bounded by the agent's output limits).
    pub error: Option<String>,
}

/// An agent's deliveries still owed, and those given up on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentBacklog {
    /// The agent.
    pub agent: String,
    /// Deliveries pending or in flight.
    pub pending: u64,
    /// Dead deliveries kept.
    pub dead: u64,
}

/// What this process's dispatcher saw of an agent since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AgentActivity {
    /// The agent.
    pub agent: String,
    /// Attempts made.
    pub attempts: u64,
    /// Attempts the agent accepted.
    pub delivered: u64,
    /// The last failure and when it ended.
    pub last_error: Option<(OffsetDateTime, String)>,
}

/// How one attempt went, for the attempts history.
#[derive(Debug, Clone)]
pub(crate) struct AttemptNote {
    pub(crate) at: i64,
    pub(crate) outcome: &'static str,
    pub(crate) latency: Duration,
    pub(crate) error: Option<String>,
}

/// Most attempts kept per delivery by the memory backend (the latest ones).
pub(crate) const MEM_ATTEMPTS_PER_DELIVERY: usize = 32;
