//! The console in process, through `Router::oneshot`: authentication, CSRF, headers, secrets,
//! pagination, replay, bulk actions and the live tail, on the sqlite and memory backends.
#![allow(
    clippy::unwrap_used,
    reason = "helpers of tests: a failed set-up fails the test"
)]

mod api;
mod pages;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, Response, StatusCode, header};
use clawlet_bus::{
    AgentKind, AgentSpec, Backend, Bus, BusOptions, CancellationToken, Dispatcher,
    DispatcherOptions, NoopObserver, RetryPolicy, RouteSpec,
};
use clawlet_console::{AdminToken, Console, ConsoleOptions, RequestOutcome, Traffic};
use clawlet_events::{Envelope, Payload, Source};
use http_body_util::BodyExt;
use tower::ServiceExt;

pub(crate) const TOKEN: &str = "admin-token-for-tests-5b1c";
/// A credential placed in a stored event's headers: it must never come back.
pub(crate) const HEADER_SECRET: &str = "hdr-secret-value-77e1";
/// The agent's signing secret and credential header: never in the console's state at all.
pub(crate) const AGENT_SECRET: &str = "whsec_YWdlbnQtc2VjcmV0LXZhbHVl";
pub(crate) const AGENT_CREDENTIAL: &str = "agent-credential-90a2";
/// How long anything in the background may take before a test fails (a bound).
pub(crate) const BOUND: Duration = Duration::from_secs(20);

pub(crate) fn envelope(handler: &str, event_type: &str, delivery_id: &str, at_ms: i64) -> Envelope {
    let received_at =
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000).unwrap();
    let mut headers = std::collections::BTreeMap::new();
    headers.insert("x-github-event".to_owned(), event_type.to_owned());
    headers.insert("x-api-key".to_owned(), HEADER_SECRET.to_owned());
    Envelope {
        id: uuid_like(at_ms, delivery_id),
        handler: handler.to_owned(),
        source: Source::Github,
        event_type: event_type.to_owned(),
        action: None,
        delivery_id: delivery_id.to_owned(),
        received_at,
        summary: format!("{handler} {event_type} {delivery_id}"),
        headers,
        payload: Payload::from_json(&format!(
            r#"{{"delivery":"{delivery_id}","html":"<script>alert(1)</script>"}}"#
        ))
        .unwrap(),
    }
}

/// A unique, time-ordered id (the daemon's are UUIDv7).
fn uuid_like(at_ms: i64, delivery_id: &str) -> String {
    format!("{at_ms:013}-{delivery_id}")
}

pub(crate) fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap()
}

/// A test agent: an HTTP server on loopback that answers 500 until `healthy` is set, and sends
/// the id of every event it accepts.
pub(crate) struct Agent {
    pub(crate) url: String,
    pub(crate) healthy: Arc<AtomicBool>,
    pub(crate) received: tokio::sync::mpsc::UnboundedReceiver<String>,
}

pub(crate) async fn agent() -> Agent {
    let healthy = Arc::new(AtomicBool::new(false));
    let (tx, received) = tokio::sync::mpsc::unbounded_channel();
    let state = (Arc::clone(&healthy), tx);
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(
            |axum::extract::State((ok, tx)): axum::extract::State<(
                Arc<AtomicBool>,
                tokio::sync::mpsc::UnboundedSender<String>,
            )>,
             body: axum::body::Bytes| async move {
                if !ok.load(Ordering::SeqCst) {
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                let _ = tx.send(v["id"].as_str().unwrap().to_owned());
                StatusCode::OK
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app.with_state(state)).await });
    Agent {
        url,
        healthy,
        received,
    }
}

/// A bus, a dispatcher delivering to `agent` (one attempt, then dead), and the console over them.
pub(crate) struct World {
    pub(crate) bus: Bus,
    pub(crate) console: Console,
    pub(crate) traffic: Traffic,
    _dispatcher: Option<Dispatcher>,
    _dir: tempfile::TempDir,
    shutdown: CancellationToken,
}

impl Drop for World {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub(crate) async fn world(sqlite: bool, agent: Option<&Agent>) -> World {
    let dir = tempfile::tempdir().unwrap();
    let backend = if sqlite {
        Backend::Sqlite {
            path: dir.path().join("journal.db"),
        }
    } else {
        Backend::Memory
    };
    let bus = Bus::open(BusOptions::new(backend)).await.unwrap();
    let shutdown = CancellationToken::new();
    let dispatcher = agent.map(|agent| {
        let mut spec = AgentSpec::new(
            "hook",
            AgentKind::Http {
                url: agent.url.clone(),
                shown_url: agent.url.clone(),
                secret: Some(AGENT_SECRET.to_owned()),
                headers: vec![("x-agent-key".to_owned(), AGENT_CREDENTIAL.to_owned())],
            },
        );
        spec.max_attempts = 1;
        Dispatcher::start_with_options(
            bus.clone(),
            vec![spec],
            vec![RouteSpec {
                handlers: Vec::new(),
                events: Vec::new(),
                agent: "hook".to_owned(),
            }],
            Arc::new(NoopObserver),
            shutdown.clone(),
            DispatcherOptions {
                retry: RetryPolicy::default(),
                poll_interval: Duration::from_millis(50),
            },
        )
        .unwrap()
    });
    let traffic = Traffic::default();
    traffic.record("github", RequestOutcome::Accepted);
    traffic.record("github", RequestOutcome::Refused("invalid_signature"));
    let console = Console::new(ConsoleOptions {
        bus: bus.clone(),
        token: Some(AdminToken::new(TOKEN)),
        handlers: vec!["github".to_owned(), "stripe".to_owned()],
        agents: vec!["hook".to_owned()],
        traffic: traffic.clone(),
        nats: None,
    });
    World {
        bus,
        console,
        traffic,
        _dispatcher: dispatcher,
        _dir: dir,
        shutdown,
    }
}

/// A request to the console; `auth` is a full `Authorization` value, or `None`.
pub(crate) fn request(method: Method, path: &str, auth: Option<&str>, body: &str) -> Request<Body> {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "console.test");
    if let Some(auth) = auth {
        b = b.header(header::AUTHORIZATION, auth);
    }
    if !body.is_empty() {
        b = b.header(header::CONTENT_TYPE, "application/json");
    }
    b.body(Body::from(body.to_owned())).unwrap()
}

pub(crate) fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

pub(crate) async fn send(console: &Console, request: Request<Body>) -> Response<Body> {
    clawlet_console::router(console.clone())
        .oneshot(request)
        .await
        .unwrap()
}

pub(crate) async fn text(response: Response<Body>) -> String {
    String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap()
}

pub(crate) async fn json(console: &Console, path: &str) -> serde_json::Value {
    let response = send(console, request(Method::GET, path, Some(&bearer()), "")).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    serde_json::from_str(&text(response).await).unwrap()
}
