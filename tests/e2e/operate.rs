//! What an operator relies on: hot reload, `/metrics`, OpenTelemetry export.

use std::time::Duration;

use crate::agent::Agent;
use crate::harness::{Daemon, send};
use crate::providers::{CUSTOM_SECRET, GITHUB_SECRET, config};

fn post_github(daemon: &Daemon, secret: &str) -> String {
    let url = daemon.url("/webhook/github");
    let out = send(&["github", "--url", &url, "--secret", secret]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Sends signed custom deliveries without pause until `stop` is set, and counts the answers that
/// were not 200.
async fn steady_traffic(
    daemon_url: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (u32, u32) {
    let client = reqwest::Client::new();
    let scheme = clawlet_verify::custom::Scheme::default();
    let (mut ok, mut failed) = (0, 0);
    let mut n = 0u32;
    // Bounded: at most this many requests even if `stop` never comes.
    while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 20_000 {
        n += 1;
        let body = format!(r#"{{"event_type":"tick","data":{{"n":{n}}}}}"#);
        let signature = scheme.sign(CUSTOM_SECRET.as_bytes(), body.as_bytes());
        let response = client
            .post(&daemon_url)
            .header("content-type", "application/json")
            .header("x-signature", signature)
            .header("x-delivery-id", format!("tick-{n}"))
            .body(body)
            .send()
            .await;
        match response {
            Ok(r) if r.status().is_success() => ok += 1,
            _ => failed += 1,
        }
    }
    (ok, failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_swaps_the_secret_without_failing_a_request_and_refuses_a_broken_file() {
    let agent = Agent::start().await;
    let daemon = Daemon::start(&config(&agent, ""));
    assert!(tokio::task::block_in_place(|| post_github(&daemon, GITHUB_SECRET)).starts_with("200"));

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let traffic = tokio::spawn(steady_traffic(
        daemon.url("/webhook/myservice"),
        stop.clone(),
    ));

    let text = std::fs::read_to_string(&daemon.config).unwrap();
    std::fs::write(
        &daemon.config,
        text.replace(GITHUB_SECRET, "rotated-secret"),
    )
    .unwrap();
    daemon.signal("HUP");
    let reloaded = wait_until(Duration::from_secs(20), || {
        tokio::task::block_in_place(|| post_github(&daemon, "rotated-secret")).starts_with("200")
    })
    .await;
    assert!(
        reloaded,
        "the new secret was never accepted\n{}",
        daemon.logs()
    );
    assert!(tokio::task::block_in_place(|| post_github(&daemon, GITHUB_SECRET)).starts_with("401"));

    // A broken edit is refused and the running configuration stays.
    std::fs::write(
        &daemon.config,
        "webhooks:\n  handlers: [this is not a map\n",
    )
    .unwrap();
    daemon.signal("HUP");
    let refused = wait_until(Duration::from_secs(20), || {
        daemon.logs().contains("reload refused")
    })
    .await;
    assert!(refused, "{}", daemon.logs());
    assert!(
        tokio::task::block_in_place(|| post_github(&daemon, "rotated-secret")).starts_with("200")
    );

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = traffic.await.unwrap();
    assert!(ok > 0);
    assert_eq!(
        failed,
        0,
        "requests failed during reloads\n{}",
        daemon.logs()
    );
}

/// Polls `condition` until it holds or `bound` passes.
pub(crate) async fn wait_until(bound: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + bound;
    let mut interval = tokio::time::interval(Duration::from_millis(50));
    while tokio::time::Instant::now() < deadline {
        interval.tick().await;
        if condition() {
            return true;
        }
    }
    false
}

/// The value of the sample of `name` whose labels include every pair in `labels`.
fn sample(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            if metric != name {
                return None;
            }
            labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
                .then(|| value.parse().ok())
                .flatten()
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_happened() {
    let agent = Agent::start().await;
    let daemon = Daemon::start(&config(&agent, ""));
    tokio::task::block_in_place(|| {
        let url = daemon.url("/webhook/github");
        let dup = [
            "github",
            "--url",
            &url,
            "--secret",
            GITHUB_SECRET,
            "--delivery-id",
            "metrics-dup",
        ];
        assert!(send(&dup).status.success());
        assert!(send(&dup).status.success());
        assert!(
            !send(&["github", "--url", &url, "--secret", "wrong"])
                .status
                .success()
        );
        assert!(
            !send(&["github", "--url", &url, "--secret", "wrong"])
                .status
                .success()
        );
    });
    let client = reqwest::Client::new();
    let missing = client
        .post(daemon.url("/webhook/nowhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert!(
        agent
            .wait_for(Duration::from_secs(20), |got| !got.is_empty())
            .await
    );

    let metrics = client
        .get(daemon.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let get = |name: &str, labels: &[(&str, &str)]| sample(&metrics, name, labels);
    assert_eq!(
        get(
            "clawlet_webhook_requests_total",
            &[("handler", "github"), ("status", "200")]
        ),
        Some(2.0),
        "{metrics}"
    );
    assert_eq!(
        get(
            "clawlet_webhook_requests_total",
            &[("handler", "github"), ("status", "401")]
        ),
        Some(2.0),
        "{metrics}"
    );
    assert_eq!(
        get(
            "clawlet_webhook_verification_failures_total",
            &[("handler", "github"), ("reason", "mismatch")]
        ),
        Some(2.0),
        "{metrics}"
    );
    assert_eq!(
        get("clawlet_webhook_duplicates_total", &[("handler", "github")]),
        Some(1.0),
        "{metrics}"
    );
    // The delivery counters are fed by the dispatcher, which reports after the agent answered.
    let delivered = wait_until(Duration::from_secs(20), || {
        let text = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async {
                client
                    .get(daemon.url("/metrics"))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap()
            })
        });
        sample(
            &text,
            "clawlet_delivery_successes_total",
            &[("agent", "inbox")],
        ) == Some(1.0)
    })
    .await;
    assert!(delivered, "{metrics}");
    assert!(get("clawlet_queue_depth", &[]).is_some(), "{metrics}");
}

mod otlp {
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
        TraceService, TraceServiceServer,
    };
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
    };
    use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
    use opentelemetry_proto::tonic::trace::v1::Span;
    use tokio::sync::mpsc;

    /// An OTLP/gRPC trace collector that hands every received span to the test.
    pub(crate) struct Collector {
        tx: mpsc::UnboundedSender<Span>,
    }

    #[tonic::async_trait]
    impl TraceService for Collector {
        async fn export(
            &self,
            request: tonic::Request<ExportTraceServiceRequest>,
        ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
            for resource in request.into_inner().resource_spans {
                for scope in resource.scope_spans {
                    for span in scope.spans {
                        let _ = self.tx.send(span);
                    }
                }
            }
            Ok(tonic::Response::new(ExportTraceServiceResponse {
                partial_success: None,
            }))
        }
    }

    /// Starts the collector on loopback; returns its endpoint and the stream of spans.
    pub(crate) async fn start() -> (String, mpsc::UnboundedReceiver<Span>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(Collector { tx }))
                .serve_with_incoming(incoming)
                .await
                .unwrap();
        });
        (endpoint, rx)
    }

    /// The span's attribute `key` as text.
    pub(crate) fn attribute(span: &Span, key: &str) -> Option<String> {
        span.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                AnyValue::StringValue(s) => Some(s.clone()),
                AnyValue::IntValue(i) => Some(i.to_string()),
                AnyValue::BoolValue(b) => Some(b.to_string()),
                other => Some(format!("{other:?}")),
            })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_is_exported_as_an_otlp_span() {
    let (endpoint, mut spans) = otlp::start().await;
    let agent = Agent::start().await;
    let extra = format!("  telemetry:\n    otlp:\n      endpoint: \"{endpoint}\"\n");
    // Export promptly rather than on the SDK's default five-second schedule.
    let daemon = Daemon::start_with_env(
        &config(&agent, &extra),
        &[("OTEL_BSP_SCHEDULE_DELAY", "100")],
    );
    let url = daemon.url("/webhook/github");
    let out = tokio::task::block_in_place(|| {
        send(&[
            "github",
            "--url",
            &url,
            "--secret",
            GITHUB_SECRET,
            "--event",
            "issues",
            "--delivery-id",
            "otlp-1",
        ])
    });
    assert!(out.status.success(), "{}", daemon.logs());

    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(span) = spans.recv().await {
            if otlp::attribute(&span, "delivery_id").as_deref() == Some("otlp-1") {
                return Some(span);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .unwrap_or_else(|| panic!("no request span reached the collector\n{}", daemon.logs()));
    assert_eq!(
        otlp::attribute(&found, "handler").as_deref(),
        Some("github")
    );
    assert_eq!(
        otlp::attribute(&found, "event_type").as_deref(),
        Some("issues")
    );
    assert_eq!(otlp::attribute(&found, "status").as_deref(), Some("200"));
    assert_eq!(
        otlp::attribute(&found, "verification").as_deref(),
        Some("ok")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saving_the_file_reloads_it_without_a_signal_even_by_atomic_rename() {
    let agent = Agent::start().await;
    let daemon = Daemon::start(&config(&agent, ""));
    let text = std::fs::read_to_string(&daemon.config).unwrap();
    // Editors write a new file and rename it over the old one: the path now names another inode.
    let staged = daemon.config.with_extension("yaml.tmp");
    std::fs::write(&staged, text.replace(GITHUB_SECRET, "renamed-secret")).unwrap();
    std::fs::rename(&staged, &daemon.config).unwrap();
    let reloaded = wait_until(Duration::from_secs(20), || {
        tokio::task::block_in_place(|| post_github(&daemon, "renamed-secret")).starts_with("200")
    })
    .await;
    assert!(
        reloaded,
        "the renamed file was never picked up\n{}",
        daemon.logs()
    );
    assert!(
        daemon.logs().contains("reason=FileChanged"),
        "{}",
        daemon.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_check_prints_the_effective_config_redacted_or_every_error() {
    let agent = Agent::start().await;
    let daemon = Daemon::start(&config(&agent, ""));
    let out = daemon.cli(&["config", "check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("[redacted]"), "{text}");
    assert!(
        !text.contains(GITHUB_SECRET) && !text.contains(CUSTOM_SECRET),
        "a secret leaked:\n{text}"
    );

    std::fs::write(
        &daemon.config,
        "webhooks:\n  prot: 1\n  handlers:\n    github: {}\n",
    )
    .unwrap();
    let out = daemon.cli(&["config", "check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("webhooks.prot"), "{text}");
    assert!(text.contains("webhooks.handlers.github.secret"), "{text}");
}

/// A daemon with a GitHub handler, an SQLite journal in its state directory, and no routes.
fn github_on_a_journal() -> String {
    format!(
        r#"webhooks:
  host: 127.0.0.1
  port: 0
  rate_limit:
    enabled: false
  queue:
    backend: sqlite
    path: "{{dir}}/journal.db"
  handlers:
    github:
      secret: "{GITHUB_SECRET}"
"#
    )
}

/// With no routes, every event goes to the built-in log agent. Publish writes its line before the
/// commit, so it is in the log once the delivery is answered, spelled like every other line
/// (`agent=log`, the event id, the summary), and the journal shows that delivery made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_route_logs_each_event_and_records_the_delivery() {
    let daemon = Daemon::start(&github_on_a_journal());
    let answer = tokio::task::block_in_place(|| post_github(&daemon, GITHUB_SECRET));
    let body: serde_json::Value = answer
        .lines()
        .nth(1)
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("no JSON answer: {answer}"));
    let id = body["event_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no event id: {answer}"))
        .to_owned();
    let line_for = |logs: &str| {
        logs.lines()
            .find(|l| l.contains(&format!("event_id={id}")) && l.contains("agent=log"))
            .map(str::to_owned)
    };
    // The line is written before the answer; the harness reads stderr on its own thread.
    let logged = wait_until(Duration::from_secs(10), || {
        line_for(&daemon.logs()).is_some()
    })
    .await;
    assert!(logged, "no log agent line for {id}:\n{}", daemon.logs());

    let entry = tokio::task::block_in_place(|| crate::providers::journal(&daemon))
        .into_iter()
        .find(|e| e["id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} is not in the journal"));
    assert_eq!(entry["status"], "delivered", "{entry}");
    let deliveries = entry["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "{entry}");
    assert_eq!(deliveries[0]["agent"], "log", "{entry}");
    assert_eq!(deliveries[0]["status"], "delivered", "{entry}");
    assert_eq!(deliveries[0]["attempts"], 1, "{entry}");
}

/// The journal's dedup index lives in the daemon's memory, so a second daemon pointed at the same
/// journal must not start: it waits a few seconds for the lock, then exits with an error naming
/// the lock file, while the first one goes on answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_on_the_same_journal_is_refused() {
    let daemon = Daemon::start(&github_on_a_journal());
    let mut second = std::process::Command::new(crate::harness::binary())
        .args(["serve", "--config"])
        .arg(&daemon.config)
        .env_remove("CLAWLET_CONFIG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting a second daemon");
    // A bound, not an expectation: the lock is waited for 5 s.
    let exited = wait_until(Duration::from_secs(30), || {
        matches!(second.try_wait(), Ok(Some(_)))
    })
    .await;
    if !exited {
        let _ = second.kill();
    }
    let output = second
        .wait_with_output()
        .expect("the second daemon's output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(exited, "the second daemon kept running:\n{stderr}");
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("journal.db.lock") && stderr.contains("only one daemon may use a journal"),
        "{stderr}"
    );

    let first = tokio::task::block_in_place(|| post_github(&daemon, GITHUB_SECRET));
    assert!(first.starts_with("200"), "{first}");
}
