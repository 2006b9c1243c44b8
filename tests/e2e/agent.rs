//! An HTTP agent inside the test: it records every envelope the daemon delivers and checks the
//! Standard Webhooks signature the daemon puts on it. And what an exec agent's command inherits
//! from the daemon.

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
        standard::Delivery {
            id: get("webhook-id"),
            timestamp: get("webhook-timestamp"),
            signature: get("webhook-signature"),
            body: &body,
        },
        clawlet_verify::UnixTime::from_secs(now),
        Some(Duration::from_secs(300)),
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

/// The daemon's credentials stay with the daemon: an exec agent's command inherits PATH and the
/// rest of the environment, but not a variable the configuration interpolated into a handler
/// secret, an agent header, or a `CLAWLET_WEBHOOKS__…` override.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_agents_do_not_inherit_the_credentials_the_configuration_read() {
    const SECRET: &str = "exec-env-github-secret";
    let config = r#"webhooks:
  host: 127.0.0.1
  port: 0
  queue: { backend: memory }
  handlers:
    github: { secret: "${E2E_EXEC_GITHUB_SECRET}" }
  agents:
    notify:
      kind: exec
      command: ["/bin/sh", "-c", "env > {dir}/agent.env.new && mv {dir}/agent.env.new {dir}/agent.env"]
      timeout: 10s
    inbox:
      kind: http
      url: "http://127.0.0.1:9/events"
      headers: { X-Api-Key: "${E2E_EXEC_AGENT_KEY}" }
      max_attempts: 1
  routes:
    - agent: notify
"#;
    let daemon = crate::harness::Daemon::start_with_env(
        config,
        &[
            ("E2E_EXEC_GITHUB_SECRET", SECRET),
            ("E2E_EXEC_AGENT_KEY", "exec-env-agent-key"),
            ("E2E_EXEC_UNRELATED", "kept"),
            ("CLAWLET_WEBHOOKS__RATE_LIMIT__ENABLED", "false"),
        ],
    );
    let url = daemon.url("/webhook/github");
    let out = tokio::task::block_in_place(|| {
        crate::harness::send(&["github", "--url", &url, "--secret", SECRET])
    });
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(status.starts_with("200"), "{status}{}", daemon.logs());
    let written = daemon.config.with_file_name("agent.env");
    let ran = crate::operate::wait_until(Duration::from_secs(20), || written.exists()).await;
    assert!(ran, "the exec agent did not run; log:\n{}", daemon.logs());
    let env = std::fs::read_to_string(&written).unwrap();
    let names: Vec<&str> = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, _)| k)
        .collect();
    for withheld in [
        "E2E_EXEC_GITHUB_SECRET",
        "E2E_EXEC_AGENT_KEY",
        "CLAWLET_WEBHOOKS__RATE_LIMIT__ENABLED",
    ] {
        assert!(!names.contains(&withheld), "{withheld} reached the agent");
    }
    assert!(
        !env.contains(SECRET),
        "the handler secret reached the agent"
    );
    for kept in ["PATH", "E2E_EXEC_UNRELATED", "CLAWLET_EVENT_ID"] {
        assert!(
            names.contains(&kept),
            "{kept} is missing from the agent's environment"
        );
    }
}
