//! Integration tests: the bus and dispatcher against real SQLite files, in-test HTTP servers,
//! exec scripts, and NATS when `CLAWLET_TEST_NATS_URL` is set.
#![allow(
    clippy::unwrap_used,
    reason = "helpers of tests: a failed set-up fails the test"
)]

mod delivery;
mod journal;
mod nats;
mod publish;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use clawlet_bus::{
    AgentKind, AgentSpec, AttemptOutcome, Backend, Bus, BusOptions, CancellationToken,
    DeliveryObserver, Dispatcher, DispatcherOptions, RetryPolicy, RouteSpec,
};
use clawlet_events::{Envelope, Source};
use tokio::sync::mpsc;

/// Longest a test waits for something the dispatcher does; far above what it needs.
const WAIT: Duration = Duration::from_secs(20);

pub(crate) fn envelope(handler: &str, event_type: &str, delivery_id: &str) -> Envelope {
    envelope_at(
        handler,
        event_type,
        delivery_id,
        time::OffsetDateTime::now_utc(),
    )
}

pub(crate) fn envelope_at(
    handler: &str,
    event_type: &str,
    delivery_id: &str,
    received_at: time::OffsetDateTime,
) -> Envelope {
    Envelope {
        id: uuid::Uuid::now_v7().to_string(),
        handler: handler.to_owned(),
        source: Source::Github,
        event_type: event_type.to_owned(),
        action: None,
        delivery_id: delivery_id.to_owned(),
        received_at,
        summary: format!("{handler} {event_type} {delivery_id}"),
        headers: std::collections::BTreeMap::new(),
        payload: clawlet_events::Payload::from_json(&format!(r#"{{"delivery":"{delivery_id}"}}"#))
            .unwrap(),
    }
}

pub(crate) async fn sqlite_bus(dir: &tempfile::TempDir) -> Bus {
    Bus::open(BusOptions::new(Backend::Sqlite {
        path: dir.path().join("journal/webhooks.db"),
    }))
    .await
    .unwrap()
}

/// What the dispatcher reported, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seen {
    Attempt(String, AttemptOutcome),
    Dead(String),
}

/// Forwards every report to a channel so that tests wait on it instead of sleeping.
pub(crate) struct Recorder {
    tx: mpsc::UnboundedSender<Seen>,
    traceparent: Mutex<Option<String>>,
}

impl DeliveryObserver for Recorder {
    fn attempt(&self, agent: &str, outcome: AttemptOutcome, _latency: Duration) {
        let _ = self.tx.send(Seen::Attempt(agent.to_owned(), outcome));
    }
    fn dead_lettered(&self, agent: &str) {
        let _ = self.tx.send(Seen::Dead(agent.to_owned()));
    }
    fn traceparent(&self) -> Option<String> {
        self.traceparent.lock().unwrap().clone()
    }
}

pub(crate) fn recorder(
    traceparent: Option<&str>,
) -> (Arc<Recorder>, mpsc::UnboundedReceiver<Seen>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (
        Arc::new(Recorder {
            tx,
            traceparent: Mutex::new(traceparent.map(str::to_owned)),
        }),
        rx,
    )
}

/// Receives reports until `want` arrives; returns everything seen up to it.
pub(crate) async fn wait_for(rx: &mut mpsc::UnboundedReceiver<Seen>, want: &Seen) -> Vec<Seen> {
    let mut seen = Vec::new();
    tokio::time::timeout(WAIT, async {
        while let Some(s) = rx.recv().await {
            let done = &s == want;
            seen.push(s);
            if done {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {want:?}; saw {seen:?}"));
    seen
}

/// Receives reports until every one of `wants` arrived; returns everything seen.
pub(crate) async fn wait_all(rx: &mut mpsc::UnboundedReceiver<Seen>, wants: &[Seen]) -> Vec<Seen> {
    let mut seen = Vec::new();
    tokio::time::timeout(WAIT, async {
        while !wants.iter().all(|w| seen.contains(w)) {
            match rx.recv().await {
                Some(s) => seen.push(s),
                None => return,
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {wants:?}; saw {seen:?}"));
    seen
}

pub(crate) fn fast() -> DispatcherOptions {
    DispatcherOptions {
        retry: RetryPolicy {
            base: Duration::from_millis(1),
            max: Duration::from_millis(5),
        },
        poll_interval: Duration::from_millis(20),
    }
}

pub(crate) fn agent(name: &str, kind: AgentKind, max_attempts: u32) -> AgentSpec {
    AgentSpec {
        max_attempts,
        timeout: Duration::from_secs(10),
        ..AgentSpec::new(name, kind)
    }
}

pub(crate) fn route_all(agent: &str) -> RouteSpec {
    RouteSpec {
        handlers: vec![],
        events: vec![],
        agent: agent.to_owned(),
    }
}

pub(crate) fn start(
    bus: &Bus,
    agents: Vec<AgentSpec>,
    routes: Vec<RouteSpec>,
    observer: Arc<Recorder>,
) -> (Dispatcher, CancellationToken) {
    let shutdown = CancellationToken::new();
    let d = Dispatcher::start_with_options(
        bus.clone(),
        agents,
        routes,
        observer,
        shutdown.clone(),
        fast(),
    )
    .unwrap();
    (d, shutdown)
}
