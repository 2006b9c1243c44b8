use std::path::PathBuf;
use std::time::Duration;

use clawlet_events::Envelope;
use serde::Serialize;

/// Where published events are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite journal file (WAL, `synchronous=FULL`); its directory is created when missing.
    Sqlite {
        /// The journal file. `~` is not expanded here.
        path: PathBuf,
    },
    /// The journal's bookkeeping in this process's memory: not durable, for development and
    /// tests. A delivered event is forgotten at once (its dedup entry lasts the dedup window), so
    /// memory stays bounded under load whatever `retention` says.
    Memory,
    /// A NATS JetStream stream shared by any number of daemons.
    Nats {
        /// Server URL, such as `nats://127.0.0.1:4222`, or the URLs of a cluster's servers
        /// separated by commas.
        url: String,
        /// `url` as log lines and errors show it, its credentials hidden. The caller redacts
        /// (the daemon with `clawlet_config::redact_url`, each server of the list).
        shown_url: String,
        /// Stream name, such as `CLAWLET_WEBHOOKS`.
        stream: String,
        /// JetStream's dedup window for `Nats-Msg-Id`.
        duplicate_window: Duration,
        /// The stream's size cap in bytes: beyond it publishes are refused (503), and no stored
        /// message is discarded. `None` leaves the stream unbounded.
        max_bytes: Option<u64>,
        /// Copies of the stream JetStream keeps on different servers (1 to 5); only a stream
        /// created by the daemon gets it, an existing one is updated to it.
        replicas: usize,
    },
}

impl Backend {
    /// The backend's name for logs, metrics and health.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sqlite { .. } => "sqlite",
            Self::Memory => "memory",
            Self::Nats { .. } => "nats",
        }
    }
}

/// How [`crate::Bus::open`] sets up the queue.
#[derive(Debug, Clone)]
pub struct BusOptions {
    /// Where events are kept.
    pub backend: Backend,
    /// How long a delivery id is remembered for dedup (sqlite, memory).
    pub dedup_window: Duration,
    /// Undelivered events beyond which publish fails fast with [`crate::BusError::Full`].
    pub max_pending: u64,
    /// How long delivered events are kept before they are pruned. On nats, an event goes only
    /// once every agent consumer on the stream has finished with it.
    pub retention: Duration,
}

impl BusOptions {
    /// Defaults from the issue: dedup 72h, 100 000 pending, retention 7 days.
    pub fn new(backend: Backend) -> Self {
        Self {
            backend,
            dedup_window: Duration::from_secs(72 * 3600),
            max_pending: 100_000,
            retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// The answer to a publish that succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// The event is durable and will be delivered.
    Accepted {
        /// The stored event's id (the envelope's id).
        event_id: String,
    },
    /// The handler already stored this delivery id within the dedup window; nothing was stored.
    Duplicate {
        /// The id of the event first stored. (The nats backend derives event ids from the
        /// handler and delivery id, so that every daemon knows it without reading it back.)
        event_id: String,
    },
}

/// A cheap snapshot for `/health` and metrics.
#[derive(Debug, Clone)]
pub struct Health {
    /// Whether a publish would be tried now (the backend is up and the queue is not full).
    pub accepting: bool,
    /// Undelivered events.
    pub depth: u64,
    /// The backend's name.
    pub backend: &'static str,
}

/// Where an event, or one delivery of it, stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Not yet delivered (waiting, being delivered, or waiting for a retry).
    Pending,
    /// Delivered (for an event: to every agent its routes name).
    Delivered,
    /// Given up after `max_attempts`; kept and replayable.
    Dead,
}

impl DeliveryStatus {
    /// The lower-case name used by the CLI and the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }
}

/// One agent's delivery of a stored event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryRecord {
    /// The agent's name.
    pub agent: String,
    /// Where this delivery stands.
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// The last failure, when the last attempt failed.
    pub last_error: Option<String>,
    /// When the next attempt is due (pending only), RFC 3339.
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<time::OffsetDateTime>,
}

/// A journal entry: the envelope plus its delivery state. Serialises as the envelope's fields
/// followed by `status` and `deliveries` (the `events list --json` line).
#[derive(Debug, Clone, Serialize)]
pub struct StoredEvent {
    /// The event as agents receive it.
    #[serde(flatten)]
    pub envelope: Envelope,
    /// Pending while any delivery is pending (or no route has been applied yet), dead when any
    /// delivery is dead, delivered otherwise.
    pub status: DeliveryStatus,
    /// One record per agent its routes named.
    pub deliveries: Vec<DeliveryRecord>,
}

/// Which events `events list` shows. `Default` shows the newest 100 of everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListFilter {
    /// Only this handler.
    pub handler: Option<String>,
    /// Only this event type.
    pub event_type: Option<String>,
    /// Only events in this state.
    pub status: Option<DeliveryStatus>,
    /// Only events received within this long before now.
    pub since: Option<Duration>,
    /// At most this many, newest first.
    pub limit: usize,
}

impl Default for ListFilter {
    fn default() -> Self {
        Self {
            handler: None,
            event_type: None,
            status: None,
            since: None,
            limit: 100,
        }
    }
}

/// Which events `events replay` sends again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplaySelector {
    /// One event, to every agent it was routed to.
    Id(String),
    /// Every dead delivery.
    Dead,
    /// Every event received within this long before now, to every agent again.
    Since(Duration),
}
