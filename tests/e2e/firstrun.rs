//! What an operator meets in the first hour: a daemon with nothing to serve says so and why,
//! 404s are counted and logged, request lines are readable, a full queue is a warning, and a
//! reload that needs a restart names the key.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Daemon, binary, send};
use crate::operate::wait_until;

const SECRET: &str = "firstrun-secret";

/// Runs the binary with `args` under `home`, and kills it if it is still running after a bound:
/// a daemon that starts where it should refuse would otherwise hang the test.
fn run_bounded(home: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(binary())
        .args(args)
        .env("HOME", home)
        .env_remove("CLAWLET_CONFIG")
        .env("CLAWLET_WEBHOOKS__HOST", "127.0.0.1")
        .env("CLAWLET_WEBHOOKS__PORT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting clawlet-webhookd");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("waiting for the daemon").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the daemon kept running instead of refusing; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn no_configuration_file_refuses_to_serve_and_says_where_it_looked() {
    let home = tempfile::tempdir().unwrap();
    let out = run_bounded(home.path(), &[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr =
        String::from_utf8_lossy(&out.stderr).replace(&home.path().display().to_string(), "<home>");
    insta::assert_snapshot!(stderr.trim_end());
}

#[test]
fn a_configuration_without_an_enabled_handler_refuses_to_serve() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("config.yaml");
    std::fs::write(
        &path,
        "webhooks:\n  queue: { backend: memory }\n  handlers:\n    github: { enabled: false, secret: x }\n",
    )
    .unwrap();
    let out = run_bounded(home.path(), &["--config", &path.display().to_string()]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr =
        String::from_utf8_lossy(&out.stderr).replace(&home.path().display().to_string(), "<home>");
    insta::assert_snapshot!(stderr.trim_end());
}

fn config(extra_queue: &str, agent: &str) -> String {
    format!(
        r#"webhooks:
  host: 127.0.0.1
  port: 0
  rate_limit: {{ enabled: false }}
  queue:
    backend: sqlite
    path: "{{dir}}/journal.db"
{extra_queue}
  handlers:
    github:
      secret: "{SECRET}"
      events: [push, pull_request]
{agent}"#
    )
}

fn post(daemon: &Daemon, extra: &[&str]) -> String {
    let url = daemon.url("/webhook/github");
    let mut args = vec!["github", "--url", &url, "--secret", SECRET];
    args.extend_from_slice(extra);
    let out = send(&args);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The request lines of the daemon's log: one per answered request, and the 404s' own.
fn request_lines(daemon: &Daemon) -> Vec<String> {
    daemon
        .logs()
        .lines()
        .filter(|l| l.contains("webhook request") || l.contains("no handler at this path"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_are_counted_by_method_and_logged_at_debug() {
    let daemon = Daemon::start_with_env(
        &config("", ""),
        &[("RUST_LOG", "info,clawlet_http::request=debug")],
    );
    let listed = wait_until(Duration::from_secs(10), || {
        daemon
            .logs()
            .contains("webhook paths: /webhook/github; any other path is answered 404")
    })
    .await;
    assert!(listed, "{}", daemon.logs());
    let client = reqwest::Client::new();
    for _ in 0..2 {
        let r = client
            .post(daemon.url("/webhook/githb"))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
    }
    let r = client
        .get(daemon.url("/secret-admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let metrics = client
        .get(daemon.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"clawlet_webhook_unmatched_requests_total{method="POST"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"clawlet_webhook_unmatched_requests_total{method="GET"} 1"#),
        "{metrics}"
    );
    assert!(
        !metrics.contains("githb") && !metrics.contains("secret-admin"),
        "a path reached /metrics"
    );
    let logged = wait_until(Duration::from_secs(10), || {
        let lines = request_lines(&daemon);
        lines.iter().any(|l| {
            l.contains("DEBUG")
                && l.contains("no handler at this path")
                && l.contains("/webhook/githb")
        }) && lines.iter().any(|l| l.contains("/secret-admin"))
    })
    .await;
    assert!(logged, "{}", daemon.logs());
}

/// `latency_ms` has at most two decimals, and a 200 says which 200 it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_lines_round_the_latency_and_name_the_outcome() {
    let daemon = Daemon::start(&config("", ""));
    let id = "0190c6a0-0000-7000-8000-00000000f1f1";
    let first = tokio::task::block_in_place(|| post(&daemon, &["--delivery-id", id]));
    assert!(first.starts_with("200"), "{first}");
    let again = tokio::task::block_in_place(|| post(&daemon, &["--delivery-id", id]));
    assert!(again.contains("duplicate"), "{again}");
    let ignored = tokio::task::block_in_place(|| post(&daemon, &["--event", "issues"]));
    assert!(ignored.contains("ignored"), "{ignored}");

    let all_logged = wait_until(Duration::from_secs(10), || {
        request_lines(&daemon).len() >= 3
    })
    .await;
    assert!(all_logged, "{}", daemon.logs());
    let lines = request_lines(&daemon);
    for outcome in ["accepted", "duplicate", "ignored"] {
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!("outcome=\"{outcome}\""))),
            "no request line says outcome {outcome}:\n{}",
            lines.join("\n")
        );
    }
    for line in &lines {
        let value = line
            .split("latency_ms=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no latency in {line}"));
        let decimals = value.split_once('.').map_or(0, |(_, d)| d.len());
        assert!(decimals <= 2, "latency_ms={value} in {line}");
        assert!(value.parse::<f64>().is_ok(), "latency_ms={value} in {line}");
    }
}

/// A delivery refused because the queue is full is logged at WARN, not among the INFO lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_is_logged_as_a_warning() {
    // An exec agent that always fails keeps the first event pending, so the second finds the
    // queue full.
    let agents = "  agents:\n    stuck: { kind: exec, command: [\"/bin/false\"], max_attempts: 100 }\n  routes:\n    - agent: stuck\n";
    let daemon = Daemon::start(&config("    max_pending: 1", agents));
    let first = tokio::task::block_in_place(|| post(&daemon, &[]));
    assert!(first.starts_with("200"), "{first}");
    let second = tokio::task::block_in_place(|| post(&daemon, &[]));
    assert!(second.starts_with("503"), "{second}");
    let warned = wait_until(Duration::from_secs(10), || {
        request_lines(&daemon)
            .iter()
            .any(|l| l.contains("WARN") && l.contains("status=503") && l.contains("queue_full"))
    })
    .await;
    assert!(warned, "{}", daemon.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_needs_a_restart_names_the_key() {
    let daemon = Daemon::start(&config("", ""));
    let text = std::fs::read_to_string(&daemon.config).unwrap();
    let staged = daemon.config.with_extension("yaml.new");
    std::fs::write(
        &staged,
        text.replace("port: 0", "port: 1").replace(
            "rate_limit: { enabled: false }",
            "rate_limit: { enabled: true }",
        ),
    )
    .unwrap();
    std::fs::rename(&staged, &daemon.config).unwrap();
    daemon.signal("HUP");
    let named = wait_until(Duration::from_secs(20), || {
        daemon.logs().lines().any(|l| {
            l.contains("WARN") && l.contains("next restart") && l.contains("webhooks.port")
        })
    })
    .await;
    assert!(named, "{}", daemon.logs());
    let line = daemon
        .logs()
        .lines()
        .find(|l| l.contains("next restart"))
        .unwrap()
        .to_owned();
    // The rate limit applies at once, so it is not among the keys that wait for a restart.
    assert!(!line.contains("rate_limit"), "{line}");
}
