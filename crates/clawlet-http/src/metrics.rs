//! Prometheus metrics for requests (fed by the pipeline) and deliveries (fed by the bus through
//! [`clawlet_bus::DeliveryObserver`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use clawlet_bus::{AttemptOutcome, DeliveryObserver};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandlerStatus {
    handler: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandlerReason {
    handler: String,
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandlerHandshake {
    handler: String,
    handshake: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandlerLabel {
    handler: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabel {
    method: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AgentLabel {
    agent: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AgentOutcome {
    agent: String,
    outcome: &'static str,
}

/// Told how each request to a handler was answered, where the metrics count it: the operator
/// console keeps its per-minute counts from this.
pub trait RequestTap: Send + Sync + 'static {
    /// `Ok` with `accepted`, `duplicate`, `ignored` or `pong` for a 2xx; `Err` with the
    /// refusal's reason code (`invalid_signature`, `rate_limited`, ...) otherwise.
    fn answered(&self, handler: &str, outcome: Result<&'static str, &'static str>);
}

/// Every metric the daemon exports; cheap to clone, all clones count into the same registry.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    requests: Family<HandlerStatus, Counter>,
    request_seconds: Family<HandlerLabel, Histogram, fn() -> Histogram>,
    verification_failures: Family<HandlerReason, Counter>,
    rate_limited: Family<HandlerLabel, Counter>,
    allowlist_refused: Family<HandlerLabel, Counter>,
    client_unknown: Family<HandlerReason, Counter>,
    body_budget_refused: Family<HandlerLabel, Counter>,
    duplicates: Family<HandlerLabel, Counter>,
    ignored: Family<HandlerLabel, Counter>,
    handshakes: Family<HandlerHandshake, Counter>,
    unmatched: Family<MethodLabel, Counter>,
    queue_depth: Gauge,
    delivery_attempts: Family<AgentOutcome, Counter>,
    delivery_successes: Family<AgentLabel, Counter>,
    delivery_failures: Family<AgentOutcome, Counter>,
    delivery_seconds: Family<AgentLabel, Histogram, fn() -> Histogram>,
    dead_letters: Family<AgentLabel, Counter>,
    tap: std::sync::OnceLock<Arc<dyn RequestTap>>,
}

/// 1 ms to about 33 s: from an in-memory accept to an agent at its timeout.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// A fresh registry with every metric registered (under the `clawlet_` prefix).
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("clawlet");
        let inner = Inner {
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(latency_histogram),
            verification_failures: Family::default(),
            rate_limited: Family::default(),
            allowlist_refused: Family::default(),
            client_unknown: Family::default(),
            body_budget_refused: Family::default(),
            duplicates: Family::default(),
            ignored: Family::default(),
            handshakes: Family::default(),
            unmatched: Family::default(),
            queue_depth: Gauge::default(),
            delivery_attempts: Family::default(),
            delivery_successes: Family::default(),
            delivery_failures: Family::default(),
            delivery_seconds: Family::new_with_constructor(latency_histogram),
            dead_letters: Family::default(),
            tap: std::sync::OnceLock::new(),
            registry: Registry::default(),
        };
        registry.register(
            "webhook_requests",
            "Webhook requests by handler and response status",
            inner.requests.clone(),
        );
        registry.register(
            "webhook_request_duration_seconds",
            "Time from request to response, by handler",
            inner.request_seconds.clone(),
        );
        registry.register(
            "webhook_verification_failures",
            "Requests refused with 401, by handler and reason",
            inner.verification_failures.clone(),
        );
        registry.register(
            "webhook_rate_limited",
            "Requests refused with 429, by handler",
            inner.rate_limited.clone(),
        );
        registry.register(
            "webhook_allowlist_refused",
            "Requests refused with 403 by an IP allowlist, by handler",
            inner.allowlist_refused.clone(),
        );
        registry.register(
            "webhook_client_unknown",
            "Requests refused with 403 because a trusted proxy named no usable client address, by handler and reason",
            inner.client_unknown.clone(),
        );
        registry.register(
            "webhook_body_budget_refused",
            "Requests refused with 503 because their body would exceed the in-flight body budget, by handler",
            inner.body_budget_refused.clone(),
        );
        registry.register(
            "webhook_duplicates",
            "Deliveries whose id was already stored (dedup hits), by handler",
            inner.duplicates.clone(),
        );
        registry.register(
            "webhook_ignored",
            "Verified deliveries not queued because of the handler's event filter",
            inner.ignored.clone(),
        );
        registry.register(
            "webhook_handshakes",
            "Registration and liveness handshakes answered (never queued), by handler and handshake",
            inner.handshakes.clone(),
        );
        registry.register(
            "webhook_unmatched_requests",
            "Requests to a path no handler serves (404), by method; never by path, which the client chooses",
            inner.unmatched.clone(),
        );
        registry.register(
            "queue_depth",
            "Stored events not yet delivered to every agent",
            inner.queue_depth.clone(),
        );
        registry.register(
            "delivery_attempts",
            "Delivery attempts by agent and outcome",
            inner.delivery_attempts.clone(),
        );
        registry.register(
            "delivery_successes",
            "Delivery attempts the agent accepted",
            inner.delivery_successes.clone(),
        );
        registry.register(
            "delivery_failures",
            "Delivery attempts that failed or timed out, by agent and outcome",
            inner.delivery_failures.clone(),
        );
        registry.register(
            "delivery_duration_seconds",
            "Time one delivery attempt took, by agent",
            inner.delivery_seconds.clone(),
        );
        registry.register(
            "dead_letters",
            "Events given up on after the agent's last attempt",
            inner.dead_letters.clone(),
        );
        Self(Arc::new(Inner { registry, ..inner }))
    }

    /// The registry in the OpenMetrics text format, with the queue depth set to `queue_depth`.
    pub fn encode(&self, queue_depth: u64) -> String {
        self.0
            .queue_depth
            .set(i64::try_from(queue_depth).unwrap_or(i64::MAX));
        let mut out = String::with_capacity(4096);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.0.registry);
        out
    }

    /// Sets where each request's outcome is told besides the counters; only the first call
    /// takes effect (the daemon sets it once, at start).
    pub fn set_tap(&self, tap: Arc<dyn RequestTap>) {
        let _ = self.0.tap.set(tap);
    }

    pub(crate) fn answered(&self, handler: &str, outcome: Result<&'static str, &'static str>) {
        if let Some(tap) = self.0.tap.get() {
            tap.answered(handler, outcome);
        }
    }

    pub(crate) fn request(&self, handler: &str, status: u16, latency: Duration) {
        let handler = handler.to_owned();
        self.0
            .request_seconds
            .get_or_create(&HandlerLabel {
                handler: handler.clone(),
            })
            .observe(latency.as_secs_f64());
        self.0
            .requests
            .get_or_create(&HandlerStatus { handler, status })
            .inc();
    }

    pub(crate) fn verification_failure(&self, handler: &str, reason: &'static str) {
        self.0
            .verification_failures
            .get_or_create(&HandlerReason {
                handler: handler.to_owned(),
                reason,
            })
            .inc();
    }

    pub(crate) fn rate_limited(&self, handler: &str) {
        inc(&self.0.rate_limited, handler);
    }

    pub(crate) fn allowlist_refused(&self, handler: &str) {
        inc(&self.0.allowlist_refused, handler);
    }

    pub(crate) fn client_unknown(&self, handler: &str, reason: &'static str) {
        self.0
            .client_unknown
            .get_or_create(&HandlerReason {
                handler: handler.to_owned(),
                reason,
            })
            .inc();
    }

    pub(crate) fn body_budget_refused(&self, handler: &str) {
        inc(&self.0.body_budget_refused, handler);
    }

    pub(crate) fn duplicate(&self, handler: &str) {
        inc(&self.0.duplicates, handler);
    }

    pub(crate) fn handshake(&self, handler: &str, handshake: &'static str) {
        self.0
            .handshakes
            .get_or_create(&HandlerHandshake {
                handler: handler.to_owned(),
                handshake,
            })
            .inc();
    }

    pub(crate) fn ignored(&self, handler: &str) {
        inc(&self.0.ignored, handler);
    }

    /// A batch answered 2xx: its events already stored and those the event filter left out,
    /// each counted as one delivery would be.
    pub(crate) fn batch(&self, handler: &str, duplicates: u64, ignored: u64) {
        for (family, n) in [(&self.0.duplicates, duplicates), (&self.0.ignored, ignored)] {
            if n > 0 {
                family
                    .get_or_create(&HandlerLabel {
                        handler: handler.to_owned(),
                    })
                    .inc_by(n);
            }
        }
    }

    /// A request no handler serves; `method` is one of a fixed set of labels.
    pub(crate) fn unmatched(&self, method: &'static str) {
        self.0
            .unmatched
            .get_or_create(&MethodLabel { method })
            .inc();
    }
}

fn inc(family: &Family<HandlerLabel, Counter>, handler: &str) {
    family
        .get_or_create(&HandlerLabel {
            handler: handler.to_owned(),
        })
        .inc();
}

impl DeliveryObserver for Metrics {
    fn attempt(&self, agent: &str, outcome: AttemptOutcome, latency: Duration) {
        let labels = AgentOutcome {
            agent: agent.to_owned(),
            outcome: outcome.as_str(),
        };
        self.0.delivery_attempts.get_or_create(&labels).inc();
        let agent_label = AgentLabel {
            agent: labels.agent.clone(),
        };
        if outcome == AttemptOutcome::Delivered {
            self.0.delivery_successes.get_or_create(&agent_label).inc();
        } else {
            self.0.delivery_failures.get_or_create(&labels).inc();
        }
        self.0
            .delivery_seconds
            .get_or_create(&agent_label)
            .observe(latency.as_secs_f64());
    }

    fn dead_lettered(&self, agent: &str) {
        self.0
            .dead_letters
            .get_or_create(&AgentLabel {
                agent: agent.to_owned(),
            })
            .inc();
    }
}
