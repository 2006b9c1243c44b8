use std::time::Duration;

use clawlet_bus::{AgentKind, AttemptOutcome, Backend, Bus, BusOptions, Published};

use crate::{Seen, agent, envelope, recorder, route_all, start, wait_all};

/// The NATS server to test against, or `None` after saying why the test skips.
fn nats_url(test: &str) -> Option<String> {
    match std::env::var("CLAWLET_TEST_NATS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!(
                    "skipping {test}: CLAWLET_TEST_NATS_URL is not set (e.g. nats://127.0.0.1:4222)"
                );
            }
            None
        }
    }
}

fn options(url: &str, stream: &str) -> BusOptions {
    BusOptions::new(Backend::Nats {
        url: url.to_owned(),
        stream: stream.to_owned(),
        duplicate_window: Duration::from_secs(120),
    })
}

/// Deletes the test's streams even when an assertion failed.
struct Cleanup {
    url: String,
    stream: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let (url, stream) = (self.url.clone(), self.stream.clone());
        // A fresh runtime on a fresh thread: Drop may run inside the test's runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let client = async_nats::connect(url).await.unwrap();
                let js = async_nats::jetstream::new(client);
                let _ = js.delete_stream(&stream).await;
                let _ = js.delete_stream(format!("{stream}_DEAD")).await;
            });
        })
        .join();
    }
}

#[tokio::test]
async fn two_buses_on_one_stream_store_a_delivery_once_and_agents_get_every_event() {
    let Some(url) = nats_url("nats two_buses_on_one_stream") else {
        return;
    };
    let stream = format!("CLAWLET_TEST_{}", uuid::Uuid::now_v7().simple());
    let _cleanup = Cleanup {
        url: url.clone(),
        stream: stream.clone(),
    };
    let a = Bus::open(options(&url, &stream)).await.unwrap();
    let b = Bus::open(options(&url, &stream)).await.unwrap();
    assert_eq!(a.backend_name(), "nats");
    assert!(a.is_durable());

    let first = envelope("github", "pull_request", "gh-1");
    let resent = envelope("github", "pull_request", "gh-1");
    assert_eq!(
        a.publish(&first).await.unwrap(),
        Published::Accepted {
            event_id: first.id.clone()
        }
    );
    assert_eq!(
        b.publish(&resent).await.unwrap(),
        Published::Duplicate {
            event_id: resent.id.clone()
        }
    );
    let other_handler = envelope("custom.hook", "user created", "gh-1");
    assert!(matches!(
        b.publish(&other_handler).await.unwrap(),
        Published::Accepted { .. }
    ));

    // Two daemons, one durable consumer per agent: each event reaches the agent once in all.
    let (observer, mut seen) = recorder(None);
    let (da, sa) = start(
        &a,
        vec![agent("log", AgentKind::Log, 3)],
        vec![route_all("log")],
        observer.clone(),
    );
    let (db, sb) = start(
        &b,
        vec![agent("log", AgentKind::Log, 3)],
        vec![route_all("log")],
        observer,
    );
    let delivered = Seen::Attempt("log".into(), AttemptOutcome::Delivered);
    let got = crate::wait_for(&mut seen, &delivered).await;
    let mut count = got.iter().filter(|s| **s == delivered).count();
    if count < 2 {
        crate::wait_for(&mut seen, &delivered).await;
        count += 1;
    }
    assert_eq!(count, 2);
    sa.cancel();
    sb.cancel();
    da.join().await;
    db.join().await;
    assert!(seen.try_recv().is_err(), "no third delivery");
}

#[tokio::test]
async fn failing_agent_is_retried_then_dead_lettered_on_nats() {
    let Some(url) = nats_url("nats failing_agent") else {
        return;
    };
    let stream = format!("CLAWLET_TEST_{}", uuid::Uuid::now_v7().simple());
    let _cleanup = Cleanup {
        url: url.clone(),
        stream: stream.clone(),
    };
    let bus = Bus::open(options(&url, &stream)).await.unwrap();
    let failing = vec!["/bin/sh".to_owned(), "-c".to_owned(), "exit 1".to_owned()];
    let (observer, mut seen) = recorder(None);
    let (d, s) = start(
        &bus,
        vec![agent("fails", AgentKind::Exec { command: failing }, 2)],
        vec![route_all("fails")],
        observer,
    );
    let env = envelope("stripe", "invoice.paid", "evt_9");
    bus.publish(&env).await.unwrap();
    let failed = Seen::Attempt("fails".into(), AttemptOutcome::Failed);
    let got = wait_all(&mut seen, &[Seen::Dead("fails".into())]).await;
    assert_eq!(
        got,
        vec![failed.clone(), failed, Seen::Dead("fails".into())]
    );

    let client = async_nats::connect(&url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut dead = js.get_stream(format!("{stream}_DEAD")).await.unwrap();
    assert_eq!(dead.info().await.unwrap().state.messages, 1);
    s.cancel();
    d.join().await;
}

#[tokio::test]
async fn unreachable_nats_is_unavailable_with_retry_after() {
    // Port 1 on loopback refuses at once; no server is needed.
    let err = Bus::open(options("nats://127.0.0.1:1", "CLAWLET_UNREACHABLE"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, clawlet_bus::BusError::Unavailable { .. }),
        "{err:?}"
    );
    assert_eq!(err.code(), "queue_unavailable");
    assert!(err.retry_after().is_some());
}
