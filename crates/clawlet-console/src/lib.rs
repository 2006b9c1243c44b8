//! The operator console of `clawlet-webhookd`: a JSON admin API and server-rendered pages, served
//! on a listener of its own (never the public webhook port).
//!
//! It shows what arrived, what was refused and why, what failed at the agents, and replays or
//! purges dead letters. It must never answer without the admin token (a Bearer header, or the
//! session cookie its login form sets), never change state on a request that lacks the session's
//! CSRF token (a Bearer call needs none), never serve a response without its security headers,
//! and never show a secret: handler secrets and agent credentials are not in its state at all,
//! and headers are redacted as the request log redacts them.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use clawlet_bus::{Backend, Bus, BusOptions};
//! use clawlet_console::{AdminToken, Console, ConsoleOptions};
//!
//! let bus = Bus::open(BusOptions::new(Backend::Memory)).await.unwrap();
//! let console = Console::new(ConsoleOptions::new(bus, AdminToken::new("s3cret-token")));
//! let app: axum::Router = clawlet_console::router(console);
//! # let _ = app;
//! # });
//! ```

mod api;
mod auth;
mod data;
mod error;
mod pages;
mod security;
mod service;
mod state;
mod tail;
mod traffic;

pub use auth::{CSRF_FIELD, CSRF_HEADER, SESSION_COOKIE, Session};
pub use data::{
    AgentOverview, AttemptView, BulkAction, BulkPreview, Capabilities, Counts, DeliveryView,
    EventDetail, EventFilter, EventPage, EventRow, HandlerTraffic, MinuteCounts, Overview,
    ReplayTarget,
};
pub use error::ConsoleError;
pub use state::{AdminToken, Console, ConsoleOptions};
pub use tail::{TailEvent, TailItem, TailStream};
pub use traffic::{RequestOutcome, Traffic};

/// Every route of the console: pages, assets, login, and the JSON API under `/api`.
pub fn router(console: Console) -> axum::Router {
    api::router(console)
}

/// Serves the console on `listener` until `shutdown` is cancelled; open live tails are ended
/// then, so that the drain does not wait for them.
pub async fn serve(
    listener: tokio::net::TcpListener,
    console: Console,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    let tails = console.0.shutdown.clone();
    let app = router(console);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.cancelled().await;
            tails.cancel();
        })
        .await
}
