//! Each provider end to end: `clawlet-webhookd send` signs a delivery as the provider would, the
//! daemon verifies and journals it, `events list` shows it and the agent receives it.

use std::time::Duration;

use serde_json::Value;

use crate::agent::{AGENT_SECRET, Agent};
use crate::harness::{Daemon, send};

pub(crate) const GITHUB_SECRET: &str = "gh-e2e-secret";
pub(crate) const STRIPE_SECRET: &str = "whsec_stripe_e2e_secret";
pub(crate) const STANDARD_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
pub(crate) const CUSTOM_SECRET: &str = "custom-e2e-secret";

/// A daemon with one handler per provider, an SQLite journal in its state directory, and every
/// event routed to `agent`.
pub(crate) fn config(agent: &Agent, extra: &str) -> String {
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
    stripe:
      secret: "{STRIPE_SECRET}"
    svix:
      kind: standard
      secret: "{STANDARD_SECRET}"
    my_service:
      path: /webhook/myservice
      secret: "{CUSTOM_SECRET}"
      delivery_id_header: X-Delivery-Id
  agents:
    inbox:
      kind: http
      url: "{url}"
      secret: "{AGENT_SECRET}"
      timeout: 5s
  routes:
    - agent: inbox
{extra}"#,
        url = agent.url
    )
}

/// Events in the journal, as `events list --json` prints them.
pub(crate) fn journal(daemon: &Daemon) -> Vec<Value> {
    let out = daemon.cli(&["events", "list", "--json", "--limit", "100000"]);
    assert!(
        out.status.success(),
        "events list failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("events list --json prints JSON lines"))
        .collect()
}

fn check(
    daemon: &Daemon,
    agent: &Agent,
    provider: &str,
    path: &str,
    secret: &str,
    event: &str,
) -> Value {
    let url = daemon.url(path);
    let out = send(&[
        provider, "--url", &url, "--secret", secret, "--event", event,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{provider}: send failed: {stdout} {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        daemon.logs()
    );
    assert!(stdout.starts_with("200"), "{provider}: {stdout}");
    let reply: Value = serde_json::from_str(stdout.lines().nth(1).unwrap()).unwrap();
    assert_eq!(reply["status"], "accepted", "{provider}: {stdout}");
    let id = reply["event_id"].as_str().unwrap().to_owned();

    let stored = journal(daemon);
    let entry = stored
        .iter()
        .find(|e| e["id"] == id.as_str())
        .unwrap_or_else(|| panic!("{provider}: event {id} is not in events list: {stored:?}"));
    assert_eq!(entry["type"], event, "{provider}");

    let delivered = tokio::runtime::Handle::current().block_on(async {
        agent
            .wait_for(Duration::from_secs(20), |got| {
                got.iter().any(|e| e["id"] == id.as_str())
            })
            .await
    });
    assert!(
        delivered,
        "{provider}: the agent never received {id}\n{}",
        daemon.logs()
    );
    entry.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_provider_reaches_the_journal_and_the_agent() {
    let agent = Agent::start().await;
    let daemon = Daemon::start(&config(&agent, ""));
    let cases = [
        (
            "github",
            "/webhook/github",
            GITHUB_SECRET,
            "pull_request",
            "github",
        ),
        (
            "stripe",
            "/webhook/stripe",
            STRIPE_SECRET,
            "invoice.paid",
            "stripe",
        ),
        (
            "standard",
            "/webhook/svix",
            STANDARD_SECRET,
            "user.created",
            "standard",
        ),
        (
            "custom",
            "/webhook/myservice",
            CUSTOM_SECRET,
            "user.created",
            "custom",
        ),
    ];
    for (provider, path, secret, event, source) in cases {
        let entry =
            tokio::task::block_in_place(|| check(&daemon, &agent, provider, path, secret, event));
        assert_eq!(entry["source"], source);
        assert!(
            entry["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{entry}"
        );
    }
    let received = agent.received();
    assert_eq!(received.len(), 4, "{received:?}");
    assert_eq!(agent.bad_signatures(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_delivery_is_a_duplicate_and_a_forged_one_is_refused() {
    let agent = Agent::start().await;
    let daemon = Daemon::start(&config(&agent, ""));
    let url = daemon.url("/webhook/github");
    let args = [
        "github",
        "--url",
        &url,
        "--secret",
        GITHUB_SECRET,
        "--delivery-id",
        "7a1c0d9e-e2e-dup",
    ];
    let first = tokio::task::block_in_place(|| send(&args));
    assert!(String::from_utf8_lossy(&first.stdout).contains("\"accepted\""));
    let second = tokio::task::block_in_place(|| send(&args));
    let text = String::from_utf8_lossy(&second.stdout);
    assert!(
        text.starts_with("200") && text.contains("\"duplicate\""),
        "{text}"
    );

    let forged = tokio::task::block_in_place(|| {
        send(&["github", "--url", &url, "--secret", "not-the-secret"])
    });
    assert!(!forged.status.success());
    assert!(String::from_utf8_lossy(&forged.stdout).starts_with("401"));
    let stored = tokio::task::block_in_place(|| journal(&daemon));
    assert_eq!(stored.len(), 1, "{stored:?}");
}
