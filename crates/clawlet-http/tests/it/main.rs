//! The HTTP layer from the outside: in-process `Router::oneshot` tests for every status code,
//! and socket tests on 127.0.0.1:0 for what needs a real connection (limits, timeouts, TLS).
#![allow(
    clippy::unwrap_used,
    reason = "a test that cannot set up should fail loudly"
)]

mod batch;
mod edges;
mod handshakes;
mod oneshot;
mod socket;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use clawlet_bus::{Backend, Bus, BusOptions};
use clawlet_events::{CustomOptions, Source};
use clawlet_http::{
    App, Clock, HandlerRateLimit, HandlerSpec, LogSpec, ResponseType, RuntimeSpec, ServerLimits,
    TlsAcceptorHandle, Verifier,
};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The Unix time the Stripe and Standard Webhooks fixtures are signed at.
pub(crate) const NOW: i64 = 1_767_225_600;

pub(crate) fn payload(name: &str) -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/payloads/");
    std::fs::read(format!("{path}{name}")).unwrap()
}

pub(crate) fn clock() -> Clock {
    Arc::new(|| NOW)
}

pub(crate) async fn memory_bus(max_pending: u64) -> Bus {
    init_tracing();
    let mut options = BusOptions::new(Backend::Memory);
    options.max_pending = max_pending;
    Bus::open(options).await.unwrap()
}

/// A handler that takes any JSON body unverified: for the socket tests, where what is tested
/// comes before verification.
pub(crate) fn open_handler(name: &str) -> HandlerSpec {
    HandlerSpec {
        name: name.to_owned(),
        path: format!("/webhook/{name}"),
        source: Source::Custom,
        verifier: Verifier::Unverified,
        events: Vec::new(),
        response_type: ResponseType::Json,
        allowed_ips: None,
        rate_limit: HandlerRateLimit::Global,
        custom: CustomOptions::default(),
    }
}

pub(crate) fn runtime(handlers: Vec<HandlerSpec>) -> RuntimeSpec {
    RuntimeSpec {
        handlers,
        allowed_ips: Vec::new(),
        trusted_proxies: Vec::new(),
        rate_limit: None,
        rate_limit_ipv6_prefix: 64,
        max_body_bytes: 25 * 1024 * 1024,
        logging: LogSpec::default(),
    }
}

pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    pub(crate) shutdown: CancellationToken,
    pub(crate) task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

pub(crate) async fn start(
    app: App,
    limits: ServerLimits,
    tls: Option<TlsAcceptorHandle>,
) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(clawlet_http::serve(
        listener,
        tls,
        clawlet_http::router(app),
        limits,
        shutdown.clone(),
    ));
    Server {
        addr,
        shutdown,
        task,
    }
}

thread_local! {
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

/// One global subscriber, installed before any test sends a request: tracing caches per call
/// site whether anyone listens, and a subscriber set later for one thread can miss that cache
/// when tests run in parallel.
fn init_tracing() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(|| ThreadWriter)
            .with_ansi(false)
            .without_time()
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
    });
}

/// Captures what this thread logs (tests run on a current-thread runtime, so the handlers they
/// call log on the test's thread).
pub(crate) struct LogCapture;

impl LogCapture {
    pub(crate) fn start() -> Self {
        init_tracing();
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
