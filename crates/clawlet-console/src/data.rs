//! The plain structs the JSON API serialises and the pages render. Times are UTC; every string
//! here is raw text (a payload, a summary, an error): whoever renders it as HTML escapes it.

use std::collections::BTreeMap;

use clawlet_bus::DeliveryStatus;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What this backend can show and do. The pages show `notes` where a feature is missing.
#[derive(Debug, Clone, Serialize)]
pub struct Capabilities {
    /// `sqlite`, `memory` or `nats`.
    pub backend: &'static str,
    /// Whether events can be listed and shown.
    pub events: bool,
    /// Whether each delivery attempt is kept (time, outcome, latency, error).
    pub attempt_history: bool,
    /// Whether delivered events stay listed (the memory backend forgets them at once).
    pub keeps_delivered: bool,
    /// Whether an event can be replayed to one agent only (not just to all its routes).
    pub replay_to_agent: bool,
    /// Whether dead letters can be purged from here.
    pub purge: bool,
    /// Whether per-agent backlogs are known.
    pub agent_backlog: bool,
    /// What is missing on this backend and why, for a person to read.
    pub notes: Vec<String>,
}

/// The overview page: traffic per handler, queue depth, and agents.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    /// When this was computed.
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    /// Undelivered events.
    pub queue_depth: u64,
    /// Whether the queue accepts events now.
    pub accepting: bool,
    /// One entry per handler that is configured or had traffic in the last day, by name.
    pub handlers: Vec<HandlerTraffic>,
    /// One entry per configured agent (and any agent with backlog), by name.
    pub agents: Vec<AgentOverview>,
    /// What this backend offers.
    pub capabilities: Capabilities,
}

/// Requests one handler answered.
#[derive(Debug, Clone, Serialize)]
pub struct HandlerTraffic {
    /// The handler's name.
    pub handler: String,
    /// Counts over the last 60 minutes.
    pub last_hour: Counts,
    /// Counts over the last 24 hours.
    pub last_day: Counts,
    /// The last 60 minutes, one entry per minute, oldest first (the current minute last).
    pub series: Vec<MinuteCounts>,
}

/// Request outcomes over a period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Stored and queued.
    pub accepted: u64,
    /// Already stored within the dedup window.
    pub duplicate: u64,
    /// Verified, but outside the handler's `events` list (and GitHub pings).
    pub ignored: u64,
    /// Refused, by reason (`invalid_signature`, `rate_limited`, `ip_not_allowed`, ...).
    pub refused: BTreeMap<String, u64>,
}

impl Counts {
    /// Every refusal, whatever its reason.
    pub fn refused_total(&self) -> u64 {
        self.refused.values().sum()
    }
}

/// One minute of a handler's traffic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MinuteCounts {
    /// The minute's start, unix seconds.
    pub minute: i64,
    /// Stored and queued.
    pub accepted: u64,
    /// Dedup hits.
    pub duplicate: u64,
    /// Filtered out or pings.
    pub ignored: u64,
    /// Refused for any reason.
    pub refused: u64,
}

/// One agent's state.
#[derive(Debug, Clone, Serialize)]
pub struct AgentOverview {
    /// The agent's name.
    pub agent: String,
    /// Deliveries not yet made (pending or in flight); `None` where the backend cannot tell.
    pub backlog: Option<u64>,
    /// Dead deliveries kept; `None` where the backend cannot tell.
    pub dead: Option<u64>,
    /// Attempts since the daemon started.
    pub attempts: u64,
    /// Attempts the agent accepted since the daemon started.
    pub delivered: u64,
    /// `delivered / attempts`, `None` before the first attempt.
    pub success_rate: Option<f64>,
    /// The last failed attempt's error, cut to a short excerpt.
    pub last_error: Option<String>,
    /// When that attempt ended.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_error_at: Option<OffsetDateTime>,
}

/// Which events a listing shows; every field set narrows it. The API reads it from the query
/// string (`handler`, `type`, `status`, `from`, `to`, `delivery_id`, `agent`, `cursor`, `limit`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct EventFilter {
    /// Only this handler.
    #[serde(default, deserialize_with = "empty_is_none")]
    pub handler: Option<String>,
    /// Only this event type.
    #[serde(default, rename = "type", deserialize_with = "empty_is_none")]
    pub event_type: Option<String>,
    /// Only events in this state (`pending`, `delivered`, `dead`).
    #[serde(default, deserialize_with = "status_or_none")]
    pub status: Option<DeliveryStatus>,
    /// Only events received at or after this time (RFC 3339).
    #[serde(default, deserialize_with = "time_or_none")]
    pub from: Option<OffsetDateTime>,
    /// Only events received before this time (RFC 3339).
    #[serde(default, deserialize_with = "time_or_none")]
    pub to: Option<OffsetDateTime>,
    /// Only the event with this sender delivery id.
    #[serde(default, deserialize_with = "empty_is_none")]
    pub delivery_id: Option<String>,
    /// Only events with a delivery to this agent (for dead letters: a dead one).
    #[serde(default, deserialize_with = "empty_is_none")]
    pub agent: Option<String>,
    /// Where the previous page ended ([`EventPage::next_cursor`]).
    #[serde(default, deserialize_with = "empty_is_none")]
    pub cursor: Option<String>,
    /// Events per page: 50 when absent, at most 500.
    #[serde(default)]
    pub limit: Option<usize>,
}

/// One row of an events listing.
#[derive(Debug, Clone, Serialize)]
pub struct EventRow {
    /// The event id (UUIDv7).
    pub id: String,
    /// The handler that received it.
    pub handler: String,
    /// The event type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// GitHub's action, if any.
    pub action: Option<String>,
    /// The sender's delivery id.
    pub delivery_id: String,
    /// When it was received.
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// The one-line summary.
    pub summary: String,
    /// Pending, delivered or dead.
    pub status: DeliveryStatus,
}

/// A page of events, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct EventPage {
    /// The events of this page.
    pub events: Vec<EventRow>,
    /// Pass as `cursor` for the next page; `None` on the last one.
    pub next_cursor: Option<String>,
}

/// Everything about one event.
#[derive(Debug, Clone, Serialize)]
pub struct EventDetail {
    /// The listing's fields.
    #[serde(flatten)]
    pub row: EventRow,
    /// The sender's event headers, credentials shown as `[redacted]`, by name.
    pub headers: Vec<(String, String)>,
    /// The payload as received (JSON text).
    pub payload: String,
    /// The payload indented for reading; the payload as received when it is not JSON.
    pub payload_pretty: String,
    /// One per agent the event was routed to.
    pub deliveries: Vec<DeliveryView>,
    /// Each attempt, oldest first (empty where the backend keeps none: see
    /// [`Capabilities::attempt_history`]).
    pub attempts: Vec<AttemptView>,
}

/// One agent's delivery of an event.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryView {
    /// The agent.
    pub agent: String,
    /// Pending, delivered or dead.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: u32,
    /// The last failure's message, cut to an excerpt.
    pub last_error: Option<String>,
    /// When the next attempt is due (pending only).
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
}

/// One delivery attempt.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptView {
    /// The agent.
    pub agent: String,
    /// When the attempt ended.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// `delivered`, `failed` or `timed_out`; `logged` for a delivery with no attempt record: a
    /// `log` agent's line, written as the event was stored (shown at its receipt time, untimed),
    /// or a delivery made before the journal kept attempts.
    pub outcome: String,
    /// How long it took, in milliseconds.
    pub latency_ms: f64,
    /// The error, cut to an excerpt.
    pub error: Option<String>,
}

/// Where a replay goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayTarget {
    /// Every agent the event was routed to.
    AllRoutes,
    /// This agent only (it must be one the event was routed to).
    Agent(String),
}

/// What a bulk action over dead letters does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BulkAction {
    /// Sends the dead deliveries again.
    Replay,
    /// Deletes the dead events.
    Purge,
}

/// The first step of a bulk action: how many dead events the filter selects. The second step
/// repeats the filter with `confirm` set to this count; a different count is refused.
#[derive(Debug, Clone, Serialize)]
pub struct BulkPreview {
    /// The action.
    pub action: BulkAction,
    /// Dead events the filter selects now.
    pub count: u64,
}

fn empty_is_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    Ok(s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()))
}

fn status_or_none<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<DeliveryStatus>, D::Error> {
    match empty_is_none(d)?.as_deref() {
        None | Some("any" | "all") => Ok(None),
        Some("pending") => Ok(Some(DeliveryStatus::Pending)),
        Some("delivered") => Ok(Some(DeliveryStatus::Delivered)),
        Some("dead") => Ok(Some(DeliveryStatus::Dead)),
        Some(other) => Err(serde::de::Error::custom(format!(
            "status {other:?} is not one of pending, delivered, dead"
        ))),
    }
}

/// RFC 3339, or the `YYYY-MM-DDTHH:MM` a `datetime-local` input sends (taken as UTC).
fn time_or_none<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<OffsetDateTime>, D::Error> {
    let Some(text) = empty_is_none(d)? else {
        return Ok(None);
    };
    parse_time(&text).map(Some).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "{text:?} is not a time: use RFC 3339, such as 2026-01-31T12:00:00Z"
        ))
    })
}

pub(crate) fn parse_time(text: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(t);
    }
    let local = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let local_s =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    time::PrimitiveDateTime::parse(text, &local)
        .or_else(|_| time::PrimitiveDateTime::parse(text, &local_s))
        .ok()
        .map(time::PrimitiveDateTime::assume_utc)
}
