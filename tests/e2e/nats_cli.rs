//! `events list/show/replay/purge` on the nats backend: the CLI reads and edits the JetStream
//! stream that the daemon writes, with the output it gives on SQLite. Needs NATS: set
//! CLAWLET_TEST_NATS_URL (CI does).

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use crate::agent::Agent;
use crate::harness::{Daemon, StreamGuard, http_worker, nats_config, nats_url, stream_name};
use crate::providers::GITHUB_SECRET;

/// How long a condition may take to come true before the test fails (a bound, not an expectation).
const BOUND: Duration = Duration::from_secs(30);

/// A GitHub `issues` delivery signed with the test secret; returns the status and the body.
pub(crate) async fn post_github(
    client: &reqwest::Client,
    url: &str,
    delivery: &str,
) -> Result<(u16, String), reqwest::Error> {
    let body = format!(
        r#"{{"action":"opened","issue":{{"number":1,"title":"{delivery}"}},"repository":{{"full_name":"o/r"}}}}"#
    );
    let signature = clawlet_verify::github::sign(GITHUB_SECRET.as_bytes(), body.as_bytes());
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("x-github-event", "issues")
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", signature)
        .body(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

/// Runs `events …` against the daemon's configuration, blocking this worker thread only.
fn cli(daemon: &Daemon, args: &[&str]) -> Output {
    tokio::task::block_in_place(|| daemon.cli(args))
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `events list --json` with `extra` arguments, one value per line; the command must succeed.
fn list(daemon: &Daemon, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["events", "list", "--json"];
    args.extend_from_slice(extra);
    let out = cli(daemon, &args);
    assert!(
        out.status.success(),
        "events list {extra:?} failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("events list --json prints JSON lines"))
        .collect()
}

/// Polls `events list --json extra` until `done` holds for it, at most [`BOUND`].
async fn list_until(
    daemon: &Daemon,
    extra: &[&str],
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let events = list(daemon, extra);
        if done(&events) {
            return events;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "events list {extra:?} never settled: {events:#?}\n{}",
            daemon.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn accept(daemon: &Daemon, delivery: &str) -> String {
    let (status, body) = post_github(
        &reqwest::Client::new(),
        &daemon.url("/webhook/github"),
        delivery,
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{delivery}: {body}\n{}", daemon.logs());
    let reply: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(reply["status"], "accepted", "{delivery}: {body}");
    reply["event_id"].as_str().unwrap().to_owned()
}

fn copies(agent: &Agent, id: &str) -> usize {
    agent.received().iter().filter(|e| e["id"] == id).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_list_show_replay_and_purge_read_and_edit_the_jetstream_stream() {
    let Some(nats) = nats_url() else { return };
    let stream = stream_name("cli");
    let _cleanup = StreamGuard {
        url: nats.clone(),
        stream: stream.clone(),
    };
    let agent = Agent::start().await;
    let daemon = Daemon::start(&nats_config(&nats, &stream, &http_worker(&agent), ""));

    let mut ids = Vec::new();
    for delivery in ["cli-1", "cli-2", "cli-3"] {
        ids.push(accept(&daemon, delivery).await);
    }
    let all_delivered =
        |events: &[Value]| events.len() == 3 && events.iter().all(|e| e["status"] == "delivered");
    let events = list_until(&daemon, &[], all_delivered).await;

    // Newest first, with the envelope's fields and one delivery per routed agent.
    let listed: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let newest_first: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(listed, newest_first);
    assert_eq!(events[0]["delivery_id"], "cli-3");
    assert_eq!(events[0]["handler"], "github");
    assert_eq!(events[0]["type"], "issues");
    assert_eq!(events[0]["deliveries"][0]["agent"], "worker");
    assert_eq!(events[0]["deliveries"][0]["status"], "delivered");

    // The filters.
    let count = |extra: &[&str]| list(&daemon, extra).len();
    assert_eq!(count(&["--limit", "2"]), 2);
    assert_eq!(count(&["--handler", "github"]), 3);
    assert_eq!(count(&["--handler", "stripe"]), 0);
    assert_eq!(count(&["--type", "issues"]), 3);
    assert_eq!(count(&["--type", "push"]), 0);
    assert_eq!(count(&["--status", "delivered"]), 3);
    assert_eq!(count(&["--status", "pending"]), 0);
    assert_eq!(count(&["--status", "dead"]), 0);
    assert_eq!(count(&["--since", "1h"]), 3);

    // The table: one line per event.
    let table = stdout(&cli(&daemon, &["events", "list"]));
    assert_eq!(table.lines().count(), 3, "{table}");
    assert!(
        table
            .lines()
            .all(|l| l.contains("delivered") && l.contains("issues")),
        "{table}"
    );

    // show: one event, pretty-printed; an unknown id is an error that names it.
    let shown = cli(&daemon, &["events", "show", &ids[0]]);
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    let shown: Value = serde_json::from_str(&stdout(&shown)).unwrap();
    assert_eq!(shown["id"], ids[0].as_str());
    assert_eq!(shown["delivery_id"], "cli-1");
    assert_eq!(shown["status"], "delivered");
    let missing = cli(&daemon, &["events", "show", "no-such-event"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no event with id no-such-event"));

    // replay: the event reaches the agent again, though its delivery id is still within the
    // stream's dedup window.
    assert_eq!(copies(&agent, &ids[0]), 1);
    let replayed = cli(&daemon, &["events", "replay", &ids[0]]);
    assert!(
        replayed.status.success(),
        "{}",
        String::from_utf8_lossy(&replayed.stderr)
    );
    assert_eq!(stdout(&replayed).trim(), "1 event(s) queued for delivery");
    let again = agent
        .wait_for(BOUND, |got| {
            got.iter().filter(|e| e["id"] == ids[0].as_str()).count() == 2
        })
        .await;
    assert!(
        again,
        "the replayed event never reached the agent\n{}",
        daemon.logs()
    );
    // Still one entry per event.
    list_until(&daemon, &[], all_delivered).await;

    // purge: everything is delivered, so everything received before now goes; the delivery ids
    // stay known, so a resent delivery is still a duplicate.
    let purged = cli(&daemon, &["events", "purge", "--older-than", "0s"]);
    assert!(
        purged.status.success(),
        "{}",
        String::from_utf8_lossy(&purged.stderr)
    );
    // Three events and the replayed copy.
    assert_eq!(stdout(&purged).trim(), "4 event(s) purged");
    assert!(list(&daemon, &[]).is_empty());
    let (status, body) = post_github(
        &reqwest::Client::new(),
        &daemon.url("/webhook/github"),
        "cli-2",
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"duplicate\""), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_events_are_listed_from_the_dead_letter_stream_and_replayed_with_dead() {
    let Some(nats) = nats_url() else { return };
    let stream = stream_name("dead");
    let _cleanup = StreamGuard {
        url: nats.clone(),
        stream: stream.clone(),
    };
    let dir = tempfile::tempdir().unwrap();
    let attempts = dir.path().join("attempts");
    // An agent that always fails, and gives up after two attempts.
    let worker = format!(
        "    worker:\n      kind: exec\n      command: [\"/bin/sh\", \"-c\", \"echo attempt >> {}; exit 3\"]\n      max_attempts: 2\n      timeout: 5s\n",
        attempts.display()
    );
    let daemon = Daemon::start(&nats_config(&nats, &stream, &worker, ""));
    let ids = [
        accept(&daemon, "dead-1").await,
        accept(&daemon, "dead-2").await,
    ];

    let both_dead = |events: &[Value]| events.len() == 2;
    let dead = list_until(&daemon, &["--status", "dead"], both_dead).await;
    for event in &dead {
        assert!(
            ids.contains(&event["id"].as_str().unwrap().to_owned()),
            "{event}"
        );
        let delivery = &event["deliveries"][0];
        assert_eq!(delivery["agent"], "worker", "{event}");
        assert_eq!(delivery["status"], "dead", "{event}");
        assert_eq!(delivery["attempts"], 2, "{event}");
        assert!(
            delivery["last_error"]
                .as_str()
                .is_some_and(|e| !e.is_empty()),
            "the dead letter keeps the last error: {event}"
        );
    }
    assert_eq!(list(&daemon, &["--status", "pending"]).len(), 0);
    let shown = cli(&daemon, &["events", "show", &ids[1]]);
    let shown: Value = serde_json::from_str(&stdout(&shown)).unwrap();
    assert_eq!(shown["status"], "dead");
    assert_eq!(attempt_lines(&attempts), 4);

    // replay --dead: each dead event is attempted again, and dies again after two attempts.
    let replayed = cli(&daemon, &["events", "replay", "--dead"]);
    assert!(
        replayed.status.success(),
        "{}",
        String::from_utf8_lossy(&replayed.stderr)
    );
    assert_eq!(stdout(&replayed).trim(), "2 event(s) queued for delivery");
    let deadline = tokio::time::Instant::now() + BOUND;
    while attempt_lines(&attempts) < 8 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the replayed dead events were not attempted again: {} attempts\n{}",
            attempt_lines(&attempts),
            daemon.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let dead = list_until(&daemon, &["--status", "dead"], both_dead).await;
    assert_eq!(
        dead.len(),
        2,
        "one entry per event, not one per copy: {dead:#?}"
    );
    assert_eq!(attempt_lines(&attempts), 8);

    // Dead events are purged like delivered ones.
    let purged = cli(&daemon, &["events", "purge", "--older-than", "0s"]);
    assert!(
        purged.status.success(),
        "{}",
        String::from_utf8_lossy(&purged.stderr)
    );
    assert!(list(&daemon, &[]).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_keeps_what_an_agent_still_owes() {
    let Some(nats) = nats_url() else { return };
    let stream = stream_name("owed");
    let _cleanup = StreamGuard {
        url: nats.clone(),
        stream: stream.clone(),
    };
    // An agent nobody listens for: its deliveries stay pending, retried for a long time. And one
    // that gives up at once: the event is dead for it, and still owed to the first.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/events", closed.local_addr().unwrap());
    drop(closed);
    let agents = format!(
        "    worker:\n      kind: http\n      url: \"{url}\"\n      timeout: 1s\n      max_attempts: 1000\n\
         \x20   quitter:\n      kind: exec\n      command: [\"/bin/false\"]\n      max_attempts: 1\n"
    );
    let daemon = Daemon::start(&nats_config(
        &nats,
        &stream,
        &agents,
        "    - agent: quitter\n",
    ));
    let id = accept(&daemon, "owed-1").await;

    let given_up = |events: &[Value]| {
        events.len() == 1
            && events[0]["deliveries"].as_array().is_some_and(|d| {
                d.iter()
                    .any(|d| d["agent"] == "quitter" && d["status"] == "dead")
            })
    };
    let pending = list_until(&daemon, &["--status", "pending"], given_up).await;
    let worker = &pending[0]["deliveries"][1];
    assert_eq!(worker["agent"], "worker", "{pending:#?}");
    assert_eq!(worker["status"], "pending", "{pending:#?}");
    let purged = cli(&daemon, &["events", "purge", "--older-than", "0s"]);
    assert!(
        purged.status.success(),
        "{}",
        String::from_utf8_lossy(&purged.stderr)
    );
    assert_eq!(stdout(&purged).trim(), "0 event(s) purged");
    let kept = list(&daemon, &[]);
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0]["id"], id.as_str());
    assert_eq!(kept[0]["status"], "pending");
    assert!(
        given_up(&kept),
        "the dead letter stays with its pending event: {kept:#?}"
    );
}

fn attempt_lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |s| s.lines().count())
}
