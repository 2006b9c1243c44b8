//! SIGKILL under load: every delivery that got a 2xx is in the journal exactly once after a restart,
//! reaches the agent, and is answered `duplicate` when resent.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::agent::Agent;
use crate::harness::{Daemon, testdata};
use crate::providers::{GITHUB_SECRET, config, journal};

const DELIVERIES: usize = 3000;
const CONNECTIONS: usize = 64;
/// The daemon is killed once this many deliveries were acknowledged.
const KILL_AFTER: usize = 800;

/// The push payload and its signature, shared by every request.
struct Body {
    bytes: Vec<u8>,
    signature: String,
}

fn signed_push(
    client: &reqwest::Client,
    url: &str,
    body: &Body,
    id: &str,
) -> reqwest::RequestBuilder {
    client
        .post(url)
        .header("content-type", "application/json")
        .header("x-github-event", "push")
        .header("x-github-delivery", id)
        .header("x-hub-signature-256", body.signature.as_str())
        .body(body.bytes.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_nothing_that_was_acknowledged() {
    let agent = Agent::start().await;
    let mut daemon = Daemon::start(&config(&agent, ""));
    let url = daemon.url("/webhook/github");
    let bytes = std::fs::read(testdata("payloads/github_push.json")).unwrap();
    let signature = clawlet_verify::github::sign(GITHUB_SECRET.as_bytes(), &bytes);
    let body = Arc::new(Body { bytes, signature });
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();

    let acked: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let next = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(tokio::sync::Notify::new());
    let mut workers = Vec::new();
    for _ in 0..CONNECTIONS {
        let (client, url, body, acked, next, killed) = (
            client.clone(),
            url.clone(),
            body.clone(),
            acked.clone(),
            next.clone(),
            killed.clone(),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= DELIVERIES {
                    return;
                }
                let id = format!("crash-{i:05}");
                let Ok(response) = signed_push(&client, &url, &body, &id).send().await else {
                    continue;
                };
                if response.status().is_success() {
                    let mut acked = acked.lock().unwrap();
                    acked.insert(id);
                    if acked.len() == KILL_AFTER {
                        killed.notify_one();
                    }
                }
            }
        }));
    }
    tokio::time::timeout(Duration::from_secs(120), killed.notified())
        .await
        .expect("the daemon never acknowledged enough deliveries to be killed");
    daemon.signal("KILL");
    for worker in workers {
        worker.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= KILL_AFTER);

    tokio::task::block_in_place(|| daemon.restart());
    let stored = tokio::task::block_in_place(|| journal(&daemon));
    let mut per_delivery: BTreeMap<String, usize> = BTreeMap::new();
    for event in &stored {
        *per_delivery
            .entry(event["delivery_id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    for id in &acked {
        assert_eq!(
            per_delivery.get(id),
            Some(&1),
            "acknowledged delivery {id} is not stored exactly once"
        );
    }
    assert!(
        per_delivery.values().all(|&n| n == 1),
        "a delivery id is stored twice"
    );

    let everything_arrived = agent
        .wait_for(Duration::from_secs(90), |got| {
            let seen: BTreeSet<&str> = got
                .iter()
                .filter_map(|e| e["delivery_id"].as_str())
                .collect();
            acked.iter().all(|id| seen.contains(id.as_str()))
        })
        .await;
    assert!(
        everything_arrived,
        "some acknowledged deliveries never reached the agent\n{}",
        daemon.logs()
    );

    let url = daemon.url("/webhook/github");
    for id in acked.iter().take(50) {
        let response = signed_push(&client, &url, &body, id).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let reply: serde_json::Value = response.json().await.unwrap();
        assert_eq!(reply["status"], "duplicate", "{id}");
    }
}
