//! Two daemons on one JetStream stream: a delivery sent to both is stored once, and an agent fed
//! from the stream receives it. Needs NATS: set CLAWLET_TEST_NATS_URL (CI does).

use std::time::Duration;

use crate::agent::Agent;
use crate::harness::{Daemon, StreamGuard, http_worker, nats_config, nats_url, send, stream_name};
use crate::providers::GITHUB_SECRET;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_share_one_stream_and_store_a_delivery_once() {
    let Some(nats) = nats_url() else { return };
    let stream = stream_name("shared");
    let _cleanup = StreamGuard {
        url: nats.clone(),
        stream: stream.clone(),
    };
    let agent = Agent::start().await;
    let config = nats_config(&nats, &stream, &http_worker(&agent), "");
    let a = Daemon::start(&config);
    let b = Daemon::start(&config);

    let answers: Vec<String> = tokio::task::block_in_place(|| {
        [&a, &b]
            .iter()
            .map(|d| {
                let url = d.url("/webhook/github");
                let out = send(&[
                    "github",
                    "--url",
                    &url,
                    "--secret",
                    GITHUB_SECRET,
                    "--delivery-id",
                    "nats-shared-1",
                ]);
                String::from_utf8_lossy(&out.stdout).into_owned()
            })
            .collect()
    });
    assert!(
        answers[0].contains("\"accepted\""),
        "{answers:?}\n{}",
        a.logs()
    );
    assert!(
        answers[1].contains("\"duplicate\""),
        "{answers:?}\n{}",
        b.logs()
    );

    let received = agent
        .wait_for(Duration::from_secs(30), |got| {
            got.iter().any(|e| e["delivery_id"] == "nats-shared-1")
        })
        .await;
    assert!(
        received,
        "the agent never received the event\n{}\n{}",
        a.logs(),
        b.logs()
    );
    let copies = agent
        .received()
        .iter()
        .filter(|e| e["delivery_id"] == "nats-shared-1")
        .count();
    assert!(copies >= 1);
}

/// Renaming an agent and reloading removes the old agent's consumer, says so in the log, and the
/// renamed agent's deliveries go on; before, the old consumer's backlog filled the queue for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_agent_leaves_no_consumer_behind_after_a_reload() {
    let Some(nats) = nats_url() else { return };
    let stream = stream_name("rename");
    let _cleanup = StreamGuard {
        url: nats.clone(),
        stream: stream.clone(),
    };
    let agent = Agent::start().await;
    let daemon = Daemon::start(&nats_config(&nats, &stream, &http_worker(&agent), ""));
    let client = async_nats::connect(&nats).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let consumers = || async {
        let mut found = Vec::new();
        if let Ok(s) = js.get_stream(&stream).await {
            for name in ["clawlet-agent-worker", "clawlet-agent-worker2"] {
                if s.consumer_info(name).await.is_ok() {
                    found.push(name.to_owned());
                }
            }
        }
        found
    };
    let deliver = |id: &str| {
        let url = daemon.url("/webhook/github");
        let out = tokio::task::block_in_place(|| {
            send(&[
                "github",
                "--url",
                &url,
                "--secret",
                GITHUB_SECRET,
                "--delivery-id",
                id,
            ])
        });
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(deliver("before-rename").contains("\"accepted\""));
    assert!(
        agent
            .wait_for(Duration::from_secs(30), |got| got
                .iter()
                .any(|e| e["delivery_id"] == "before-rename"))
            .await
    );

    let renamed = std::fs::read_to_string(&daemon.config)
        .unwrap()
        .replace("    worker:", "    worker2:")
        .replace("agent: worker", "agent: worker2");
    std::fs::write(&daemon.config, renamed).unwrap();
    daemon.signal("HUP");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let names = consumers().await;
        if !names.contains(&"clawlet-agent-worker".to_owned())
            && names.contains(&"clawlet-agent-worker2".to_owned())
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "consumers after the rename: {names:?}\n{}",
            daemon.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let logs = daemon.logs();
    assert!(
        logs.contains("removed the consumer of an agent that is no longer configured")
            && logs.contains("clawlet-agent-worker"),
        "{logs}"
    );
    assert!(deliver("after-rename").contains("\"accepted\""));
    assert!(
        agent
            .wait_for(Duration::from_secs(30), |got| got
                .iter()
                .any(|e| e["delivery_id"] == "after-rename"))
            .await,
        "{}",
        daemon.logs()
    );
}
