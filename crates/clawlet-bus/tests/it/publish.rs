use clawlet_bus::{AgentKind, Backend, Bus, BusError, BusOptions, ListFilter, Published};

use crate::{Seen, agent, envelope, recorder, route_all, sqlite_bus, start, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishes_share_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let bus = sqlite_bus(&dir).await;
    assert!(bus.is_durable());
    let tasks: Vec<_> = (0..500)
        .map(|i| {
            let bus = bus.clone();
            tokio::spawn(async move {
                bus.publish(&envelope("github", "push", &format!("d{i}")))
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert!(matches!(
            task.await.unwrap().unwrap(),
            Published::Accepted { .. }
        ));
    }
    let stored = bus
        .list(ListFilter {
            limit: 1000,
            ..ListFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(stored.len(), 500);
    let transactions = bus.transactions();
    assert!(
        transactions < 500,
        "{transactions} transactions for 500 publishes"
    );
    assert_eq!(bus.health().depth, 500);
}

/// Publishes `(handler, delivery_id)` in order and checks each answer: `Ok(None)` accepted,
/// `Ok(Some(i))` a duplicate of the i-th publish.
async fn check(bus: &Bus, input: &[(&str, &str)], expected: &[Option<usize>]) {
    let mut ids: Vec<String> = Vec::new();
    for ((handler, delivery), want) in input.iter().zip(expected) {
        let env = envelope(handler, "push", delivery);
        let got = bus.publish(&env).await.unwrap();
        let want = match want {
            None => Published::Accepted {
                event_id: env.id.clone(),
            },
            Some(i) => Published::Duplicate {
                event_id: ids[*i].clone(),
            },
        };
        assert_eq!(got, want, "publishing {handler}/{delivery}");
        ids.push(env.id);
    }
}

#[tokio::test]
async fn dedup_is_per_handler_and_delivery_id() {
    let bus = Bus::open(BusOptions::new(Backend::Memory)).await.unwrap();
    check(
        &bus,
        &[
            ("github", "a"),
            ("github", "a"),
            ("stripe", "a"),
            ("github", "b"),
            ("stripe", "a"),
            ("github", "a"),
        ],
        &[None, Some(0), None, None, Some(2), Some(0)],
    )
    .await;
}

#[tokio::test]
async fn dedup_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let first = envelope("github", "push", "delivery-1");
    {
        let bus = sqlite_bus(&dir).await;
        assert_eq!(
            bus.publish(&first).await.unwrap(),
            Published::Accepted {
                event_id: first.id.clone()
            }
        );
    }
    let bus = sqlite_bus(&dir).await;
    let again = envelope("github", "push", "delivery-1");
    assert_eq!(
        bus.publish(&again).await.unwrap(),
        Published::Duplicate {
            event_id: first.id.clone()
        }
    );
    assert_eq!(
        bus.health().depth,
        1,
        "the pending counter is read back from the journal"
    );
}

#[tokio::test]
async fn full_queue_refuses_then_accepts_after_delivery() {
    let mut opts = BusOptions::new(Backend::Memory);
    opts.max_pending = 3;
    let bus = Bus::open(opts).await.unwrap();
    for i in 0..3 {
        bus.publish(&envelope("github", "push", &format!("d{i}")))
            .await
            .unwrap();
    }
    let err = bus
        .publish(&envelope("github", "push", "d3"))
        .await
        .unwrap_err();
    assert!(matches!(err, BusError::Full { .. }), "{err:?}");
    assert_eq!(err.code(), "queue_full");
    assert!(err.retry_after().is_some());
    assert!(!bus.health().accepting);
    assert_eq!(bus.health().depth, 3);

    let (observer, mut seen) = recorder(None);
    let (dispatcher, shutdown) = start(
        &bus,
        vec![agent("log", AgentKind::Log, 3)],
        vec![route_all("log")],
        observer,
    );
    for _ in 0..3 {
        wait_for(
            &mut seen,
            &Seen::Attempt("log".into(), clawlet_bus::AttemptOutcome::Delivered),
        )
        .await;
    }
    assert_eq!(bus.health().depth, 0);
    assert!(bus.health().accepting);
    assert!(matches!(
        bus.publish(&envelope("github", "push", "d3"))
            .await
            .unwrap(),
        Published::Accepted { .. }
    ));
    shutdown.cancel();
    dispatcher.join().await;
}

/// A sender that resends a delivery the queue already holds gets `duplicate`, full queue or not:
/// a 503 would only make it retry something that is stored.
#[tokio::test]
async fn a_full_queue_still_answers_duplicate_for_a_stored_delivery() {
    let dir = tempfile::tempdir().unwrap();
    for backend in [
        Backend::Memory,
        Backend::Sqlite {
            path: dir.path().join("journal.db"),
        },
    ] {
        let name = backend.name();
        let mut opts = BusOptions::new(backend);
        opts.max_pending = 2;
        let bus = Bus::open(opts).await.unwrap();
        let mut stored = Vec::new();
        for i in 0..2 {
            let env = envelope("github", "push", &format!("d{i}"));
            assert!(
                matches!(bus.publish(&env).await.unwrap(), Published::Accepted { .. }),
                "{name}"
            );
            stored.push(env.id);
        }
        assert!(!bus.health().accepting, "{name}");
        for (i, id) in stored.iter().enumerate() {
            let resent = bus
                .publish(&envelope("github", "push", &format!("d{i}")))
                .await;
            assert_eq!(
                resent.unwrap(),
                Published::Duplicate {
                    event_id: id.clone()
                },
                "{name}"
            );
        }
        let err = bus
            .publish(&envelope("github", "push", "d2"))
            .await
            .unwrap_err();
        assert!(matches!(err, BusError::Full { .. }), "{name}: {err:?}");
        assert_eq!(bus.health().depth, 2, "{name}");
    }
}

#[tokio::test]
async fn journal_directory_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/c/webhooks.db");
    let bus = Bus::open(BusOptions::new(Backend::Sqlite { path: path.clone() }))
        .await
        .unwrap();
    bus.publish(&envelope("github", "push", "x")).await.unwrap();
    assert!(path.exists());
}

/// The memory backend forgets an event once it is delivered, whatever the retention, so it cannot
/// grow without bound under load; the delivery id is still remembered for dedup.
#[tokio::test]
async fn memory_forgets_delivered_events_but_not_their_delivery_ids() {
    let mut opts = BusOptions::new(Backend::Memory);
    opts.retention = std::time::Duration::from_secs(7 * 24 * 3600);
    let bus = Bus::open(opts).await.unwrap();
    let (observer, mut seen) = recorder(None);
    let (_dispatcher, shutdown) = start(
        &bus,
        vec![agent("log", AgentKind::Log, 3)],
        vec![route_all("log")],
        observer,
    );
    let first = bus
        .publish(&envelope("github", "push", "mem-1"))
        .await
        .unwrap();
    wait_for(
        &mut seen,
        &Seen::Attempt("log".to_owned(), clawlet_bus::AttemptOutcome::Delivered),
    )
    .await;

    assert!(bus.list(ListFilter::default()).await.unwrap().is_empty());
    assert_eq!(bus.health().depth, 0);
    assert_eq!(bus.prune().await.unwrap(), 0, "nothing was left to prune");
    let again = bus
        .publish(&envelope("github", "push", "mem-1"))
        .await
        .unwrap();
    let Published::Accepted { event_id } = first else {
        panic!("first publish: {first:?}")
    };
    assert_eq!(again, Published::Duplicate { event_id });
    shutdown.cancel();
}
