//! The HTTP face of `clawlet-webhookd`: routes, the request pipeline, status codes, TLS and the
//! accept loop with its limits.
//!
//! It is the only crate that knows axum. It must never parse a body before its signature is
//! verified, never buffer more of a body than `max_body_bytes`, and never answer 2xx for an
//! event that the bus has not stored. Clients get a status and a short fixed message; why a
//! request was refused goes to the request log and to `/metrics`.
//!
//! Decisions a caller should know:
//! - Order per request, cheapest first: client IP → allowlist (403) → rate limit (429 with
//!   `Retry-After`; a newcomer refused only because a flood spent the overflow quota of a full
//!   key table goes on to verification, and gets 429 only if its signature fails) → body size (413: a declared length over the limit is refused unread, a
//!   chunked body is dropped at the first chunk past it) → in-flight body budget (503 with
//!   `Retry-After`, see [`ServerLimits::max_inflight_body_bytes`]) → signature (401) → parse
//!   (400/415) → event filter → publish. 2xx only for `accepted` (stored), `duplicate` (stored before),
//!   `ignored` (verified, not in the handler's `events`) and `pong` (GitHub's `ping`, verified and
//!   never queued, whatever `events` says). A bus failure is 503 with `Retry-After`. A batch
//!   (SendGrid's array of events) is filtered and published per event, and answered 2xx only
//!   when each selected event is stored now or was before; one failure makes it 503.
//! - A handler's own `allowed_ips` and `rate_limit` replace the global ones; the global limiter
//!   is shared by every handler without its own, and a handler whose limit is
//!   [`HandlerRateLimit::Off`] is not limited at all.
//! - `X-Forwarded-For`/`Forwarded` are read only from peers in `trusted_proxies`, right to left,
//!   skipping trusted hops. A request from a trusted proxy whose headers are missing, unreadable
//!   or disagree is refused with 403: the proxy's own address is never taken for the client's.
//! - Rate limits key IPv6 clients by their network (`RuntimeSpec::rate_limit_ipv6_prefix`, a /64
//!   by default), since one host may use any address of its /64.
//! - With `include_headers`, every header whose name holds `token`, `key`, `secret`,
//!   `signature`, `auth`, `password`, `cookie`, `hmac`, `sign`, `credential` or `session`, and a
//!   custom handler's signature header, is logged as `[redacted]`.
//! - `/health` and `/metrics` are not behind the allowlist: bind them to a private listener (or
//!   filter them at the proxy) where that matters.
//! - Handler paths are looked up per request, so [`App::reload`] can add, move or drop handlers
//!   without rebuilding the router or touching connections.
//!
//! ```no_run
//! # async fn demo(spec: clawlet_http::RuntimeSpec, bus: clawlet_bus::Bus) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use clawlet_http::{App, ServerLimits, router, serve};
//!
//! let clock: clawlet_http::Clock = Arc::new(|| {
//!     std::time::SystemTime::now()
//!         .duration_since(std::time::UNIX_EPOCH)
//!         .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
//! });
//! let app = App::new(spec, bus, clock)?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! serve(listener, None, router(app), ServerLimits::default(), shutdown).await?;
//! # Ok(()) }
//! ```

mod app;
mod budget;
mod client_ip;
mod error;
mod handshake;
mod metrics;
mod pipeline;
mod server;
mod spec;
mod tls;

pub use app::{App, Clock, PreparedRuntime, router};
pub use error::HttpError;
pub use metrics::{CONTENT_TYPE as METRICS_CONTENT_TYPE, Metrics, RequestTap};
pub use server::{ServerLimits, serve};
pub use spec::{
    HandlerRateLimit, HandlerSpec, Handshake, LogSpec, ResponseType, RuntimeSpec, SchemeSpec,
    Verifier,
};
pub use tls::{PreparedCert, TlsAcceptorHandle, TlsReloader, TlsSpec, install_crypto_provider};
