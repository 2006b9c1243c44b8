use std::time::Duration;

use clawlet_bus::{AgentKind, AttemptOutcome, Backend, Bus, BusOptions, Published};

use crate::{Seen, agent, envelope, recorder, route_all, start, wait_all};

/// The NATS server to test against, or `None` after saying why the test skips.
fn nats_url(test: &str) -> Option<String> {
    match std::env::var("CLAWLET_TEST_NATS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            crate::skip_or_fail(
                test,
                "CLAWLET_TEST_NATS_URL is not set (e.g. nats://127.0.0.1:4222)",
            );
            None
        }
    }
}

fn options(url: &str, stream: &str) -> BusOptions {
    BusOptions::new(Backend::Nats {
        url: url.to_owned(),
        shown_url: url.to_owned(),
        stream: stream.to_owned(),
        duplicate_window: Duration::from_secs(120),
        max_bytes: None,
        replicas: 1,
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
    let Some(f) = fixture("nats two_buses_on_one_stream").await else {
        return;
    };
    let a = Bus::open(f.options()).await.unwrap();
    let b = Bus::open(f.options()).await.unwrap();
    assert_eq!(a.backend_name(), "nats");
    assert!(a.is_durable());

    let first = envelope("github", "pull_request", "gh-1");
    let resent = envelope("github", "pull_request", "gh-1");
    let Published::Accepted { event_id } = a.publish(&first).await.unwrap() else {
        panic!("the first publish must be accepted");
    };
    assert_eq!(
        b.publish(&resent).await.unwrap(),
        Published::Duplicate { event_id }
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
    let Some(f) = fixture("nats failing_agent").await else {
        return;
    };
    let bus = Bus::open(f.options()).await.unwrap();
    let (observer, mut seen) = recorder(None);
    let (d, s) = start(
        &bus,
        vec![agent("fails", exec_failing(), 2)],
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

    let mut dead = f.js.get_stream(format!("{}_DEAD", f.stream)).await.unwrap();
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

/// A unique stream for one test, deleted when the test ends.
struct Fixture {
    url: String,
    stream: String,
    js: async_nats::jetstream::Context,
    _cleanup: Cleanup,
}

async fn fixture(test: &str) -> Option<Fixture> {
    let url = nats_url(test)?;
    let stream = format!("CLAWLET_TEST_{}", uuid::Uuid::now_v7().simple());
    let client = async_nats::connect(&url).await.unwrap();
    Some(Fixture {
        js: async_nats::jetstream::new(client),
        _cleanup: Cleanup {
            url: url.clone(),
            stream: stream.clone(),
        },
        url,
        stream,
    })
}

impl Fixture {
    fn options(&self) -> BusOptions {
        options(&self.url, &self.stream)
    }

    /// The consumers on the stream, by name.
    async fn consumers(&self) -> Vec<String> {
        use futures_util::StreamExt as _;
        let Ok(stream) = self.js.get_stream(&self.stream).await else {
            return Vec::new();
        };
        let mut names: Vec<String> = stream
            .consumer_names()
            .filter_map(|n| async move { n.ok() })
            .collect()
            .await;
        names.sort();
        names
    }

    async fn consumer(&self, name: &str) -> Option<async_nats::jetstream::consumer::Info> {
        let stream = self.js.get_stream(&self.stream).await.ok()?;
        stream.consumer_info(name).await.ok()
    }

    /// Starts a dispatcher whose one agent, `down`, fails every attempt and retries only after a
    /// minute, and waits until the agent's consumer exists: its events stay pending.
    async fn agent_down(
        &self,
        bus: &Bus,
    ) -> (clawlet_bus::Dispatcher, clawlet_bus::CancellationToken) {
        let started = start_slow(
            bus,
            vec![agent("down", exec_failing(), 100)],
            vec![route_all("down")],
        );
        until("the agent's consumer exists", || async {
            self.consumer("clawlet-agent-down").await.is_some()
        })
        .await;
        started
    }

    /// Runs a dispatcher with the log agent `a`, routed everything, until the agent's consumer
    /// exists, then stops it: what is published next waits in that consumer.
    async fn consumer_of_a_then_stop(&self, bus: &Bus) {
        let (observer, _) = recorder(None);
        let (d, s) = start(
            bus,
            vec![agent("a", AgentKind::Log, 3)],
            vec![route_all("a")],
            observer,
        );
        until("the agent's consumer exists", || async {
            self.consumer("clawlet-agent-a").await.is_some()
        })
        .await;
        s.cancel();
        d.join().await;
    }

    async fn stream_state(&self) -> async_nats::jetstream::stream::State {
        let mut stream = self.js.get_stream(&self.stream).await.unwrap();
        stream.info().await.unwrap().state.clone()
    }
}

/// Polls `check` until it holds; fails the test with `what` after [`crate::WAIT`].
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + crate::WAIT;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn exec_failing() -> AgentKind {
    AgentKind::Exec {
        command: vec!["/bin/sh".to_owned(), "-c".to_owned(), "exit 1".to_owned()],
    }
}

/// Dispatcher options whose retries wait long: an agent that fails keeps its events pending
/// without spinning.
fn slow_retries() -> clawlet_bus::DispatcherOptions {
    clawlet_bus::DispatcherOptions {
        retry: clawlet_bus::RetryPolicy {
            base: Duration::from_secs(60),
            max: Duration::from_secs(120),
        },
        poll_interval: Duration::from_millis(20),
    }
}

fn start_slow(
    bus: &Bus,
    agents: Vec<clawlet_bus::AgentSpec>,
    routes: Vec<clawlet_bus::RouteSpec>,
) -> (clawlet_bus::Dispatcher, clawlet_bus::CancellationToken) {
    let shutdown = clawlet_bus::CancellationToken::new();
    let d = clawlet_bus::Dispatcher::start_with_options(
        bus.clone(),
        agents,
        routes,
        std::sync::Arc::new(clawlet_bus::NoopObserver),
        shutdown.clone(),
        slow_retries(),
    )
    .unwrap();
    (d, shutdown)
}

#[tokio::test]
async fn a_duplicate_answers_the_id_of_the_event_first_stored() {
    let Some(f) = fixture("nats a_duplicate_answers_the_original_id").await else {
        return;
    };
    let a = Bus::open(f.options()).await.unwrap();
    let b = Bus::open(f.options()).await.unwrap();
    let first = envelope("stripe", "invoice.paid", "evt_dup");
    let Published::Accepted { event_id } = a.publish(&first).await.unwrap() else {
        panic!("the first publish must be accepted");
    };
    for bus in [&a, &b] {
        let resent = envelope("stripe", "invoice.paid", "evt_dup");
        assert_eq!(
            bus.publish(&resent).await.unwrap(),
            Published::Duplicate {
                event_id: event_id.clone()
            }
        );
    }
}

#[tokio::test]
async fn dedup_keys_of_different_handlers_never_collide() {
    let Some(f) = fixture("nats dedup_keys_never_collide").await else {
        return;
    };
    let bus = Bus::open(f.options()).await.unwrap();
    for (handler, delivery) in [("a", "b:c"), ("a:b", "c"), ("a", "b"), ("ab", "")] {
        let got = bus
            .publish(&envelope(handler, "push", delivery))
            .await
            .unwrap();
        assert!(
            matches!(got, Published::Accepted { .. }),
            "handler {handler:?} delivery {delivery:?}: {got:?}"
        );
    }
}

#[tokio::test]
async fn a_removed_agent_leaves_no_consumer_that_holds_back_publishes() {
    let Some(f) = fixture("nats a_removed_agent_leaves_no_consumer").await else {
        return;
    };
    // A consumer left by an agent of an earlier configuration, with a backlog nobody reads.
    let mut opts = f.options();
    opts.max_pending = 3;
    let bus = Bus::open(opts).await.unwrap();
    let stream = f.js.get_stream(&f.stream).await.unwrap();
    stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some("clawlet-agent-gone".to_owned()),
            ..Default::default()
        })
        .await
        .unwrap();
    let (observer, mut seen) = recorder(None);
    let (d, s) = start(
        &bus,
        vec![agent("old", AgentKind::Log, 3)],
        vec![route_all("old")],
        observer,
    );
    until(
        "the consumer of the unconfigured agent is removed",
        || async {
            !f.consumers()
                .await
                .contains(&"clawlet-agent-gone".to_owned())
        },
    )
    .await;
    bus.publish(&envelope("github", "push", "before-rename"))
        .await
        .unwrap();
    crate::wait_for(
        &mut seen,
        &Seen::Attempt("old".into(), AttemptOutcome::Delivered),
    )
    .await;

    // The agent is renamed: its old consumer goes, and the new agent's backlog alone counts.
    d.reload(
        vec![agent("new", AgentKind::Log, 3)],
        vec![route_all("new")],
    )
    .unwrap();
    until("only the renamed agent's consumer is left", || async {
        f.consumers().await == ["clawlet-agent-new"]
    })
    .await;
    let delivered = Seen::Attempt("new".into(), AttemptOutcome::Delivered);
    for n in 0..10 {
        let got = bus
            .publish(&envelope("github", "push", &format!("after-rename-{n}")))
            .await;
        assert!(
            matches!(got, Ok(Published::Accepted { .. })),
            "publish {n}: {got:?}"
        );
        crate::wait_for(&mut seen, &delivered).await;
    }
    until("the depth counts the configured agent only", || async {
        bus.health().accepting && bus.health().depth < 3
    })
    .await;
    s.cancel();
    d.join().await;
}

#[tokio::test]
async fn a_lost_stream_is_created_again_with_its_consumers() {
    let Some(f) = fixture("nats a_lost_stream_is_created_again").await else {
        return;
    };
    let bus = Bus::open(f.options()).await.unwrap();
    let (observer, mut seen) = recorder(None);
    let (d, s) = start(
        &bus,
        vec![agent("inbox", AgentKind::Log, 3)],
        vec![route_all("inbox")],
        observer,
    );
    let delivered = Seen::Attempt("inbox".into(), AttemptOutcome::Delivered);
    bus.publish(&envelope("github", "push", "before-loss"))
        .await
        .unwrap();
    crate::wait_for(&mut seen, &delivered).await;

    // The server's store is wiped: the stream and its consumers are gone.
    f.js.delete_stream(&f.stream).await.unwrap();
    let got = bus.publish(&envelope("github", "push", "after-loss")).await;
    assert!(
        matches!(got, Ok(Published::Accepted { .. })),
        "a publish after the stream was lost: {got:?}"
    );
    crate::wait_for(&mut seen, &delivered).await;
    assert_eq!(f.consumers().await, ["clawlet-agent-inbox"]);
    assert!(bus.health().accepting);
    s.cancel();
    d.join().await;
}

#[tokio::test]
async fn a_stream_created_again_numbers_from_one_and_the_queue_has_room() {
    let Some(f) = fixture("nats a_stream_created_again_numbers_from_one").await else {
        return;
    };
    let mut opts = f.options();
    opts.max_pending = 3;
    let bus = Bus::open(opts).await.unwrap();
    let (observer, mut seen) = recorder(None);
    let (d, s) = start(
        &bus,
        vec![agent("inbox", AgentKind::Log, 3)],
        vec![route_all("inbox")],
        observer,
    );
    let delivered = Seen::Attempt("inbox".into(), AttemptOutcome::Delivered);
    // The lost stream had numbered well past max_pending.
    for n in 0..20 {
        let got = bus
            .publish(&envelope("github", "push", &format!("before-loss-{n}")))
            .await;
        assert!(
            matches!(got, Ok(Published::Accepted { .. })),
            "publish {n}: {got:?}"
        );
        crate::wait_for(&mut seen, &delivered).await;
    }

    // The stream is created again (by whichever of the backlog watcher and the consumer loop
    // finds it gone first); it numbers from 1.
    f.js.delete_stream(&f.stream).await.unwrap();
    until("the stream and its consumer are created again", || async {
        f.consumer("clawlet-agent-inbox").await.is_some()
    })
    .await;
    // Nobody reads now: the backlog is what is published from here on.
    s.cancel();
    d.join().await;
    for n in 0..2 {
        let got = bus
            .publish(&envelope("github", "push", &format!("after-loss-{n}")))
            .await;
        assert!(
            matches!(got, Ok(Published::Accepted { .. })),
            "publish {n} to the stream created again: {got:?}"
        );
    }
    assert_eq!(f.stream_state().await.last_sequence, 2);
    // Before and after the next read of the backlog alike: two events, room for a third.
    until("the backlog counts the two events", || async {
        bus.health().depth == 2 && bus.health().accepting
    })
    .await;
    let got = bus.publish(&envelope("github", "push", "third")).await;
    assert!(matches!(got, Ok(Published::Accepted { .. })), "{got:?}");
}

#[tokio::test]
async fn an_event_goes_to_the_agents_routed_when_it_was_stored() {
    let Some(f) = fixture("nats an_event_goes_to_the_agents_routed_when_stored").await else {
        return;
    };
    let bus = Bus::open(f.options()).await.unwrap();
    // A dispatcher registers the routes and makes the agent's consumer, then stops: the event
    // waits in the consumer while the routes change.
    f.consumer_of_a_then_stop(&bus).await;
    bus.publish(&envelope("github", "push", "routed-to-a"))
        .await
        .unwrap();

    // The configuration now sends pushes elsewhere; `a` still owes the event stored for it.
    let (observer, mut seen) = recorder(None);
    let only_issues = clawlet_bus::RouteSpec {
        events: vec!["issues".to_owned()],
        ..route_all("a")
    };
    let (d, s) = start(
        &bus,
        vec![agent("a", AgentKind::Log, 3), agent("b", AgentKind::Log, 3)],
        vec![only_issues, route_all("b")],
        observer,
    );
    crate::wait_for(
        &mut seen,
        &Seen::Attempt("a".into(), AttemptOutcome::Delivered),
    )
    .await;
    // `b` was not routed the event when it was stored.
    bus.publish(&envelope("github", "push", "routed-to-b"))
        .await
        .unwrap();
    let seen_after = crate::wait_for(
        &mut seen,
        &Seen::Attempt("b".into(), AttemptOutcome::Delivered),
    )
    .await;
    assert!(
        !seen_after.contains(&Seen::Attempt("a".into(), AttemptOutcome::Delivered)),
        "{seen_after:?}"
    );
    s.cancel();
    d.join().await;
}

#[tokio::test]
async fn an_event_routed_to_no_agent_is_stored_and_attempted_by_none() {
    let Some(f) = fixture("nats an_event_routed_to_no_agent").await else {
        return;
    };
    let bus = Bus::open(f.options()).await.unwrap();
    let (observer, mut seen) = recorder(None);
    let issues_only = clawlet_bus::RouteSpec {
        events: vec!["issues".to_owned()],
        ..route_all("a")
    };
    let (d, s) = start(
        &bus,
        vec![agent("a", AgentKind::Log, 3)],
        vec![issues_only],
        observer,
    );
    // Stored with an empty list of agents.
    let got = bus.publish(&envelope("github", "push", "nobody")).await;
    assert!(matches!(got, Ok(Published::Accepted { .. })), "{got:?}");
    bus.publish(&envelope("github", "issues", "for-a"))
        .await
        .unwrap();
    let reports = crate::wait_for(
        &mut seen,
        &Seen::Attempt("a".into(), AttemptOutcome::Delivered),
    )
    .await;
    until("both events are finished", || async {
        f.consumer("clawlet-agent-a")
            .await
            .is_some_and(|c| c.num_pending == 0 && c.num_ack_pending == 0)
    })
    .await;
    // Joined, the dispatcher has sent every report it will send.
    s.cancel();
    d.join().await;
    let mut reports = reports;
    while let Ok(r) = seen.try_recv() {
        reports.push(r);
    }
    assert_eq!(
        reports,
        [Seen::Attempt("a".into(), AttemptOutcome::Delivered)]
    );
    assert_eq!(f.stream_state().await.messages, 2);
}

#[tokio::test]
async fn a_dispatcher_with_no_agents_leaves_the_consumers_alone() {
    let Some(f) = fixture("nats a_dispatcher_with_no_agents_leaves_the_consumers").await else {
        return;
    };
    let bus = Bus::open(f.options()).await.unwrap();
    f.consumer_of_a_then_stop(&bus).await;
    // A dispatcher reconciles once before it looks at its shutdown: joining it means it ran.
    let (observer, _) = recorder(None);
    let (d, s) = start(&bus, vec![], vec![], observer);
    s.cancel();
    d.join().await;
    assert_eq!(f.consumers().await, ["clawlet-agent-a"]);
}

#[tokio::test]
async fn a_purge_keeps_what_any_agent_consumer_has_not_finished() {
    let Some(f) = fixture("nats a_purge_keeps_what_any_agent_consumer").await else {
        return;
    };
    let bus = Bus::open(f.options()).await.unwrap();
    bus.publish(&envelope("github", "push", "stored-before-any-agent"))
        .await
        .unwrap();
    // No agent consumer on the stream: nothing says what is finished, so nothing goes.
    let admin = clawlet_bus::NatsAdmin::connect(&f.url, &f.url, &f.stream, vec![], vec![])
        .await
        .unwrap();
    let err = admin
        .purge_older_than(Duration::ZERO)
        .await
        .expect_err("a purge with no agent consumer must be refused");
    assert!(err.to_string().contains("no agent"), "{err}");
    assert_eq!(f.stream_state().await.messages, 1);

    // An agent that keeps failing holds its event; the CLI's configuration names no agent.
    let (d, s) = f.agent_down(&bus).await;
    bus.publish(&envelope("github", "push", "undelivered"))
        .await
        .unwrap();
    until("the agent was sent both events", || async {
        f.consumer("clawlet-agent-down")
            .await
            .is_some_and(|c| c.num_pending == 0)
    })
    .await;
    assert_eq!(admin.purge_older_than(Duration::ZERO).await.unwrap(), 0);
    assert_eq!(f.stream_state().await.messages, 2);
    s.cancel();
    d.join().await;
}

#[tokio::test]
async fn delivered_events_past_retention_are_pruned_and_undelivered_ones_kept() {
    let Some(f) = fixture("nats delivered_events_past_retention_are_pruned").await else {
        return;
    };
    let mut opts = f.options();
    // Everything delivered is past retention by the time prune runs.
    opts.retention = Duration::from_millis(1);
    let bus = Bus::open(opts).await.unwrap();
    let (observer, mut seen) = recorder(None);
    let (d, s) = start(
        &bus,
        vec![agent("inbox", AgentKind::Log, 3)],
        vec![route_all("inbox")],
        observer,
    );
    let delivered = Seen::Attempt("inbox".into(), AttemptOutcome::Delivered);
    for n in 0..3 {
        bus.publish(&envelope("github", "push", &format!("delivered-{n}")))
            .await
            .unwrap();
        crate::wait_for(&mut seen, &delivered).await;
    }
    until("the agent's acks are recorded", || async {
        f.consumer("clawlet-agent-inbox")
            .await
            .is_some_and(|c| c.ack_floor.stream_sequence == 3)
    })
    .await;
    s.cancel();
    d.join().await;
    // The agent is down now: these two wait for it.
    for n in 0..2 {
        bus.publish(&envelope("github", "push", &format!("waiting-{n}")))
            .await
            .unwrap();
    }
    let pruned = bus.prune().await.unwrap();
    assert_eq!(pruned, 3);
    let state = f.stream_state().await;
    assert_eq!((state.messages, state.first_sequence), (2, 4));
    // Nothing more to prune: the rest is undelivered.
    assert_eq!(bus.prune().await.unwrap(), 0);
    assert_eq!(f.stream_state().await.messages, 2);
}

#[tokio::test]
async fn a_burst_cannot_overshoot_max_pending_beyond_what_is_in_flight() {
    let Some(f) = fixture("nats a_burst_cannot_overshoot_max_pending").await else {
        return;
    };
    const MAX_PENDING: u64 = 1000;
    const IN_FLIGHT: usize = 64;
    let mut opts = f.options();
    opts.max_pending = MAX_PENDING;
    let bus = Bus::open(opts).await.unwrap();
    // The agent is down: every attempt fails, and the retry waits a minute.
    let (d, s) = f.agent_down(&bus).await;
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let next = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let (bus, accepted, next) = (bus.clone(), accepted.clone(), next.clone());
        tasks.spawn(async move {
            use std::sync::atomic::Ordering::Relaxed;
            loop {
                let n = next.fetch_add(1, Relaxed);
                if n >= 20_000 {
                    return;
                }
                let env = envelope("github", "push", &format!("burst-{n}"));
                match bus.publish(&env).await {
                    Ok(Published::Accepted { .. }) => {
                        accepted.fetch_add(1, Relaxed);
                    }
                    Ok(Published::Duplicate { .. }) => panic!("burst-{n} is no duplicate"),
                    Err(e) => assert_eq!(e.code(), "queue_full", "{e}"),
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let accepted = accepted.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        accepted <= MAX_PENDING + IN_FLIGHT as u64,
        "{accepted} of 20000 accepted with max_pending {MAX_PENDING}"
    );
    assert!(accepted >= MAX_PENDING / 2, "only {accepted} accepted");
    assert!(!bus.health().accepting);
    s.cancel();
    d.join().await;
}

#[tokio::test]
async fn a_resend_to_a_full_queue_is_a_duplicate() {
    let Some(f) = fixture("nats a_resend_to_a_full_queue_is_a_duplicate").await else {
        return;
    };
    let mut opts = f.options();
    opts.max_pending = 1;
    let bus = Bus::open(opts).await.unwrap();
    let (d, s) = f.agent_down(&bus).await;
    let first = envelope("github", "push", "stored-once");
    let Published::Accepted { event_id } = bus.publish(&first).await.unwrap() else {
        panic!("the first publish must be accepted");
    };
    until("the queue is full", || async { !bus.health().accepting }).await;
    let other = bus.publish(&envelope("github", "push", "no-room")).await;
    assert_eq!(other.map_err(|e| e.code()), Err("queue_full"));
    assert_eq!(
        bus.publish(&envelope("github", "push", "stored-once"))
            .await
            .unwrap(),
        Published::Duplicate { event_id }
    );
    s.cancel();
    d.join().await;
}

#[tokio::test]
async fn an_agent_added_later_starts_with_new_events() {
    let Some(f) = fixture("nats an_agent_added_later_starts_with_new_events").await else {
        return;
    };
    let bus = Bus::open(f.options()).await.unwrap();
    let (observer, mut seen) = recorder(None);
    let (d, s) = start(
        &bus,
        vec![agent("first", AgentKind::Log, 3)],
        vec![route_all("first")],
        observer,
    );
    let first = Seen::Attempt("first".into(), AttemptOutcome::Delivered);
    for n in 0..3 {
        bus.publish(&envelope("github", "push", &format!("history-{n}")))
            .await
            .unwrap();
        crate::wait_for(&mut seen, &first).await;
    }
    // `later` starts at new events; `everything` asked for the whole stream.
    d.reload(
        vec![
            agent("first", AgentKind::Log, 3),
            agent("later", AgentKind::Log, 3),
            clawlet_bus::AgentSpec {
                start: clawlet_bus::AgentStart::All,
                ..agent("everything", AgentKind::Log, 3)
            },
        ],
        vec![
            route_all("first"),
            route_all("later"),
            route_all("everything"),
        ],
    )
    .unwrap();
    until("the new agents' consumers exist", || async {
        f.consumer("clawlet-agent-later").await.is_some()
            && f.consumer("clawlet-agent-everything").await.is_some()
    })
    .await;
    bus.publish(&envelope("github", "push", "new-event"))
        .await
        .unwrap();
    crate::wait_all(
        &mut seen,
        &[
            Seen::Attempt("later".into(), AttemptOutcome::Delivered),
            first.clone(),
        ],
    )
    .await;
    for name in ["clawlet-agent-later", "clawlet-agent-everything"] {
        until(&format!("{name} has nothing left to read"), || async {
            f.consumer(name)
                .await
                .is_some_and(|c| c.num_pending == 0 && c.num_ack_pending == 0)
        })
        .await;
    }
    let later = f.consumer("clawlet-agent-later").await.unwrap();
    assert_eq!(
        later.delivered.consumer_sequence, 1,
        "the new agent was sent the history"
    );
    let everything = f.consumer("clawlet-agent-everything").await.unwrap();
    assert_eq!(everything.delivered.consumer_sequence, 4);
    s.cancel();
    d.join().await;
}

#[tokio::test]
async fn a_stream_at_max_bytes_refuses_new_events_and_keeps_the_old() {
    let Some(f) = fixture("nats a_stream_at_max_bytes_refuses_new_events").await else {
        return;
    };
    let mut opts = f.options();
    if let Backend::Nats { max_bytes, .. } = &mut opts.backend {
        *max_bytes = Some(16 * 1024);
    }
    let bus = Bus::open(opts).await.unwrap();
    let mut stored = Vec::new();
    let refused = loop {
        let n = stored.len();
        assert!(n < 1000, "16 KiB took {n} events");
        let env = envelope("github", "push", &format!("fill-{n}"));
        match bus.publish(&env).await {
            Ok(Published::Accepted { event_id }) => stored.push(event_id),
            Ok(other) => panic!("fill-{n}: {other:?}"),
            Err(e) => break e,
        }
    };
    assert_eq!(refused.code(), "queue_unavailable", "{refused}");
    assert!(refused.retry_after().is_some());
    assert!(refused.to_string().contains("max_bytes"), "{refused}");
    assert!(!bus.health().accepting, "/health must say publishes fail");
    // Nothing old was discarded to make room.
    let state = f.stream_state().await;
    assert_eq!(
        (state.messages, state.first_sequence),
        (stored.len() as u64, 1)
    );
    // A resend of a stored delivery is still recognised.
    assert_eq!(
        bus.publish(&envelope("github", "push", "fill-0"))
            .await
            .unwrap(),
        Published::Duplicate {
            event_id: stored[0].clone()
        }
    );
}
