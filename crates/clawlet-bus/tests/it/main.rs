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

/// Reports that `test` lacks a prerequisite (`what`). Under CI (`CI=true`) that is a failure: a
/// silent `ok` would hide work nobody checked. Elsewhere the skip goes straight to stderr, which
/// libtest does not capture, so that `cargo test` shows it.
pub(crate) fn skip_or_fail(test: &str, what: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test} cannot run under CI=true: {what}");
    }
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "skipping {test}: {what}");
}

thread_local! {
    /// What this thread logged since its [`LogCapture`] started; `None` when none runs.
    static CAPTURED: std::cell::RefCell<Option<Vec<u8>>> = const { std::cell::RefCell::new(None) };
}

/// Writes log output into the current thread's capture, if one is running, else nowhere.
struct ThreadWriter;

impl std::io::Write for ThreadWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURED.with(|captured| {
            if let Some(out) = captured.borrow_mut().as_mut() {
                out.extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures what this thread logs, at debug and above. A test using it runs on a current-thread
/// runtime, so the dispatcher's tasks log on the test's thread. One global subscriber serves
/// every test: tracing caches per call site whether anyone listens, and a subscriber set later
/// for one thread can miss that cache when tests run in parallel.
pub(crate) struct LogCapture;

impl LogCapture {
    pub(crate) fn start() -> Self {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            let subscriber = tracing_subscriber::fmt()
                .with_writer(|| ThreadWriter)
                .with_max_level(tracing::Level::DEBUG)
                .with_ansi(false)
                .without_time()
                .finish();
            tracing::subscriber::set_global_default(subscriber).unwrap();
        });
        CAPTURED.with(|captured| *captured.borrow_mut() = Some(Vec::new()));
        LogCapture
    }

    pub(crate) fn finish(self) -> String {
        let bytes = CAPTURED
            .with(|captured| captured.borrow_mut().take())
            .unwrap_or_default();
        String::from_utf8(bytes).unwrap()
    }
}

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
