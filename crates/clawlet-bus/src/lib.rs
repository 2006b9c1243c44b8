//! The durable event queue: publish with dedup, and at-least-once delivery to agents.
//!
//! [`Bus::publish`] stores an [`Envelope`](clawlet_events::Envelope) in one of three backends
//! (an SQLite journal with group commit, memory, or NATS JetStream), dedups it by handler and
//! delivery id, and answers only once the event is durable. A [`Dispatcher`] delivers stored events
//! to agents (exec, HTTP signed with Standard Webhooks, log) with retries, backoff with jitter, dead
//! letters and per-agent concurrency limits; [`Journal`] serves the CLI's `events` commands from
//! another process, and [`NatsAdmin`] serves them on the JetStream stream. This crate must never report success for an event it has not stored, and never
//! drop an event silently: a full queue or an unreachable backend is an error the caller sees.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use clawlet_bus::{Backend, Bus, BusOptions};
//!
//! let bus = Bus::open(BusOptions::new(Backend::Memory)).await.unwrap();
//! assert_eq!(bus.backend_name(), "memory");
//! assert!(bus.health().accepting);
//! # });
//! ```

mod admin;
mod agent;
mod bus;
mod dedup;
mod dispatch;
mod error;
mod journal;
mod local;
mod mem;
mod nats;
mod nats_admin;
mod retry;
mod spec;
mod sql;
mod store;
mod types;

pub use admin::{
    AgentActivity, AgentBacklog, AttemptRecord, EventCursor, EventQuery, EventSummary, EventsPage,
};
pub use bus::Bus;
pub use dispatch::{Dispatcher, DispatcherOptions};
pub use error::BusError;
pub use journal::Journal;
pub use nats::server_addrs;
pub use nats_admin::NatsAdmin;
pub use retry::RetryPolicy;
pub use spec::{
    AgentKind, AgentSpec, AgentStart, AttemptOutcome, DeliveryObserver, NoopObserver, RouteSpec,
};
pub use tokio_util::sync::CancellationToken;
pub use types::{
    Backend, BusOptions, DeliveryRecord, DeliveryStatus, Health, ListFilter, Published,
    ReplaySelector, StoredEvent,
};
