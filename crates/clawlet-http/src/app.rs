//! The shared state behind the router, and its atomic swap on reload.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use axum::Router;
use axum::http::HeaderName;
use axum::routing::get;
use clawlet_bus::Bus;
use clawlet_ratelimit::{Ipv6Prefix, KeyedLimiter, Quota};

use crate::client_ip::NetSet;
use crate::error::HttpError;
use crate::metrics::Metrics;
use crate::spec::{HandlerRateLimit, HandlerSpec, LogSpec, RuntimeSpec};

/// The clock that signature checks with a timestamp compare against: Unix seconds.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The receiving side of the daemon; cheap to clone, every clone shares one state.
#[derive(Clone)]
pub struct App(pub(crate) Arc<AppInner>);

pub(crate) struct AppInner {
    pub(crate) runtime: ArcSwap<Runtime>,
    pub(crate) bus: Bus,
    pub(crate) clock: Clock,
    pub(crate) metrics: Metrics,
    /// Keeps 503 warnings to one a second under a flood.
    pub(crate) unavailable_log: crate::pipeline::Throttle,
    /// Reloads read the current runtime to carry rate-limit state over; two at once could
    /// each carry over from the same old one.
    reload: Mutex<()>,
}

/// A [`RuntimeSpec`] checked and built by [`App::prepare`], waiting for [`App::install`].
pub struct PreparedRuntime(Runtime);

impl fmt::Debug for PreparedRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedRuntime")
            .field("handlers", &self.0.names)
            .finish_non_exhaustive()
    }
}

impl RuntimeSpec {
    /// Runs every check [`App::new`] and [`App::reload`] run, without a bus or a server: for a
    /// configuration check that builds nothing it keeps.
    ///
    /// # Errors
    /// As for [`App::new`].
    pub fn check(&self) -> Result<(), HttpError> {
        Runtime::compile(self.clone(), None).map(drop)
    }
}

/// A [`RuntimeSpec`] checked and compiled for the request path.
pub(crate) struct Runtime {
    pub(crate) by_path: HashMap<String, Arc<Handler>>,
    pub(crate) names: Vec<String>,
    pub(crate) trusted_proxies: NetSet,
    /// How IPv6 clients are keyed in every limiter below.
    pub(crate) ipv6_prefix: Ipv6Prefix,
    pub(crate) max_body_bytes: usize,
    pub(crate) logging: LogSpec,
    global_limiter: Option<Arc<KeyedLimiter<IpAddr>>>,
}

pub(crate) struct Handler {
    pub(crate) spec: HandlerSpec,
    pub(crate) allowed_ips: NetSet,
    pub(crate) limiter: Option<Arc<KeyedLimiter<IpAddr>>>,
    /// Headers never logged for this handler besides those named like credentials: its own
    /// signature header.
    pub(crate) redacted: Vec<HeaderName>,
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let runtime = self.0.runtime.load();
        f.debug_struct("App")
            .field("handlers", &runtime.names)
            .field("bus", &self.0.bus)
            .finish_non_exhaustive()
    }
}

impl App {
    /// Checks `spec` and builds the state the router serves.
    ///
    /// `clock` gives the current Unix time in seconds for timestamped signature schemes; tests
    /// pin it to the time their fixtures were signed at.
    ///
    /// # Errors
    /// The spec is inconsistent: repeated names or paths, a reserved path, a quota that cannot
    /// work, or a zero body limit.
    pub fn new(spec: RuntimeSpec, bus: Bus, clock: Clock) -> Result<Self, HttpError> {
        let runtime = Runtime::compile(spec, None)?;
        Ok(Self(Arc::new(AppInner {
            runtime: ArcSwap::from_pointee(runtime),
            bus,
            clock,
            metrics: Metrics::new(),
            unavailable_log: crate::pipeline::Throttle::default(),
            reload: Mutex::new(()),
        })))
    }

    /// Replaces handlers, secrets, allowlists, rate limits and logging in one atomic swap:
    /// [`App::prepare`] then [`App::install`].
    ///
    /// # Errors
    /// As for [`App::new`]; the running state then stays in place.
    pub fn reload(&self, spec: RuntimeSpec) -> Result<(), HttpError> {
        // A poisoned lock only means an earlier reload panicked; the swap below is still sound.
        let _guard = self
            .0
            .reload
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let prepared = self.prepare(spec)?;
        self.install(prepared);
        Ok(())
    }

    /// Checks `spec` and builds everything a swap needs, without changing what is served.
    ///
    /// A caller that also swaps other parts (agents, routes, a certificate) prepares every part
    /// first and installs only once all of them were built, so that a refused reload leaves all
    /// of them as they were. Rate-limit state carries over for every quota that did not change.
    /// Prepare and install from one task at a time: two interleaved pairs could each carry
    /// state over from the same old runtime ([`App::reload`] serialises itself).
    ///
    /// # Errors
    /// As for [`App::new`].
    pub fn prepare(&self, spec: RuntimeSpec) -> Result<PreparedRuntime, HttpError> {
        let old = self.0.runtime.load();
        Ok(PreparedRuntime(Runtime::compile(spec, Some(&old))?))
    }

    /// Serves what [`App::prepare`] built, in one atomic swap; it cannot fail.
    ///
    /// Requests already past routing finish with the state they started with; open connections
    /// are untouched.
    pub fn install(&self, prepared: PreparedRuntime) {
        self.0.runtime.store(Arc::new(prepared.0));
    }

    /// The metrics registry; hand it to the bus's dispatcher as its `DeliveryObserver`.
    pub fn metrics(&self) -> Metrics {
        self.0.metrics.clone()
    }

    /// The names of the handlers served now, in configuration order.
    pub fn handler_names(&self) -> Vec<String> {
        self.0.runtime.load().names.clone()
    }

    /// Forgets rate-limit state of clients that have been quiet for a full window.
    ///
    /// The limiters also evict on their own when they reach their key cap; calling this from a
    /// timer (every minute, say) keeps memory low between floods.
    pub fn evict_idle_clients(&self) {
        let runtime = self.0.runtime.load();
        if let Some(limiter) = &runtime.global_limiter {
            limiter.evict_idle();
        }
        for handler in runtime.by_path.values() {
            if let Some(limiter) = &handler.limiter {
                limiter.evict_idle();
            }
        }
    }
}

impl Runtime {
    fn compile(spec: RuntimeSpec, old: Option<&Runtime>) -> Result<Self, HttpError> {
        let ipv6_prefix = Ipv6Prefix::new(spec.rate_limit_ipv6_prefix).map_err(|source| {
            HttpError::RateLimit {
                scope: "rate_limit".to_owned(),
                source,
            }
        })?;
        // Limiter state keyed one way means nothing when keyed another: start afresh.
        let old = old.filter(|old| old.ipv6_prefix == ipv6_prefix);
        if spec.max_body_bytes == 0 {
            return Err(HttpError::ZeroBodyLimit);
        }
        let global_limiter = limiter(
            spec.rate_limit,
            old.and_then(|old| old.global_limiter.as_ref()),
            "rate_limit",
        )?;
        let global_allow = NetSet::new(&spec.allowed_ips);
        let mut by_path: HashMap<String, Arc<Handler>> = HashMap::new();
        let mut names = Vec::with_capacity(spec.handlers.len());
        for handler in spec.handlers {
            if handler.name.is_empty() {
                return Err(HttpError::EmptyName);
            }
            if names.contains(&handler.name) {
                return Err(HttpError::DuplicateName { name: handler.name });
            }
            if !handler.path.starts_with('/')
                || handler.path == "/health"
                || handler.path == "/metrics"
            {
                return Err(HttpError::BadPath {
                    name: handler.name,
                    path: handler.path,
                });
            }
            if let Some(other) = by_path.get(&handler.path) {
                return Err(HttpError::DuplicatePath {
                    name: handler.name,
                    path: handler.path,
                    other: other.spec.name.clone(),
                });
            }
            if !handler.verifier.has_usable_secrets() {
                return Err(HttpError::MissingSecret { name: handler.name });
            }
            if let Err(source) = handler.custom.validate() {
                return Err(HttpError::CustomOptions {
                    name: handler.name,
                    source,
                });
            }
            let limiter = match handler.rate_limit {
                HandlerRateLimit::Own(quota) => {
                    let previous = old
                        .and_then(|old| old.by_path.values().find(|h| h.spec.name == handler.name))
                        // Only a handler's own limiter carries over, never the shared one.
                        .filter(|h| matches!(h.spec.rate_limit, HandlerRateLimit::Own(_)))
                        .and_then(|h| h.limiter.as_ref());
                    limiter(Some(quota), previous, &format!("handler {}", handler.name))?
                }
                HandlerRateLimit::Global => global_limiter.clone(),
                HandlerRateLimit::Off => None,
            };
            let allowed_ips = handler
                .allowed_ips
                .as_deref()
                .map_or_else(|| global_allow.clone(), NetSet::new);
            let redacted: Vec<HeaderName> = handler
                .verifier
                .signature_header()
                .cloned()
                .into_iter()
                .collect();
            names.push(handler.name.clone());
            by_path.insert(
                handler.path.clone(),
                Arc::new(Handler {
                    spec: handler,
                    allowed_ips,
                    limiter,
                    redacted,
                }),
            );
        }
        Ok(Self {
            by_path,
            names,
            trusted_proxies: NetSet::new(&spec.trusted_proxies),
            ipv6_prefix,
            max_body_bytes: spec.max_body_bytes,
            logging: spec.logging,
            global_limiter,
        })
    }
}

/// A limiter for `quota`, reusing `previous` when it enforces the same quota so that a reload
/// does not hand every client a fresh burst.
fn limiter(
    quota: Option<Quota>,
    previous: Option<&Arc<KeyedLimiter<IpAddr>>>,
    scope: &str,
) -> Result<Option<Arc<KeyedLimiter<IpAddr>>>, HttpError> {
    let Some(quota) = quota else { return Ok(None) };
    if let Some(previous) = previous
        && previous.quota() == quota
    {
        return Ok(Some(previous.clone()));
    }
    KeyedLimiter::new(quota)
        .map(|limiter| Some(Arc::new(limiter)))
        .map_err(|source| HttpError::RateLimit {
            scope: scope.to_owned(),
            source,
        })
}

/// The routes: `/health`, `/metrics`, and every handler path (looked up per request, so that a
/// reload can add, move or remove handlers without rebuilding the router).
pub fn router(app: App) -> Router {
    Router::new()
        .route("/health", get(crate::pipeline::health))
        .route("/metrics", get(crate::pipeline::metrics))
        .fallback(crate::pipeline::receive)
        .with_state(app)
}
