//! An HTTP agent inside the test: it records every envelope the daemon delivers and checks the
//! Standard Webhooks signature the daemon puts on it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use clawlet_verify::standard;
use serde_json::Value;
use tokio::sync::Notify;

/// The agent's signing secret, as configured in the daemon.
pub(crate) const AGENT_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[derive(Default)]
struct Inner {
    received: Mutex<Vec<Value>>,
    bad_signatures: Mutex<u32>,
    notify: Notify,
}

/// A running agent; dropped with the test.
#[derive(Clone)]
pub(crate) struct Agent {
    pub(crate) url: String,
    inner: Arc<Inner>,
}

impl Agent {
    pub(crate) async fn start() -> Agent {
        let inner = Arc::new(Inner::default());
        let app = Router::new()
            .route("/events", post(receive))
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Agent {
            url: format!("http://{addr}/events"),
            inner,
        }
    }

    /// Every envelope received so far, in arrival order.
    pub(crate) fn received(&self) -> Vec<Value> {
        self.inner.received.lock().unwrap().clone()
    }

    pub(crate) fn bad_signatures(&self) -> u32 {
        *self.inner.bad_signatures.lock().unwrap()
    }

    /// Waits until `done` holds for the received envelopes, at most `bound`.
    pub(crate) async fn wait_for(&self, bound: Duration, done: impl Fn(&[Value]) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let notified = self.inner.notify.notified();
            if done(&self.received()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return done(&self.received());
            }
        }
    }
}

async fn receive(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let key = standard::Key::from_secret(AGENT_SECRET).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let get = |name: &str| headers.get(name).map(|v| v.as_bytes());
    let verified = standard::verify(
        &[key],
        get("webhook-id"),
        get("webhook-timestamp"),
        get("webhook-signature"),
        &body,
        now,
        300,
    );
    if verified.is_err() {
        *inner.bad_signatures.lock().unwrap() += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(envelope) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    inner.received.lock().unwrap().push(envelope);
    inner.notify.notify_waiters();
    StatusCode::NO_CONTENT
}
