use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use clawlet_bus::{
    AgentKind, AttemptOutcome, Backend, Bus, BusOptions, DeliveryStatus, Journal, Published,
    ReplaySelector,
};
use tokio::sync::mpsc;

use crate::{Seen, agent, envelope, recorder, route_all, sqlite_bus, start, wait_all, wait_for};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// An in-test agent endpoint that answers 500 while `failures_left` is above zero.
struct Endpoint {
    failures_left: AtomicU32,
    received: mpsc::UnboundedSender<(HeaderMap, Bytes)>,
}

async fn receive(State(ep): State<Arc<Endpoint>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let _ = ep.received.send((headers, body));
    let failing = ep
        .failures_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    }
}

async fn endpoint(
    failures: u32,
) -> (
    String,
    Arc<Endpoint>,
    mpsc::UnboundedReceiver<(HeaderMap, Bytes)>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let ep = Arc::new(Endpoint {
        failures_left: AtomicU32::new(failures),
        received: tx,
    });
    let app = axum::Router::new()
        .route("/events", axum::routing::post(receive))
        .with_state(Arc::clone(&ep));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, ep, rx)
}

/// Checks the Standard Webhooks signature an HTTP agent's delivery carries.
fn assert_signed(headers: &HeaderMap, body: &[u8]) {
    let key = clawlet_verify::standard::Key::from_secret(SECRET).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    clawlet_verify::standard::verify_headers(
        &[key],
        headers,
        body,
        clawlet_verify::UnixTime::from_secs(now),
        Some(clawlet_verify::standard::DEFAULT_TOLERANCE),
    )
    .unwrap();
}

fn http_agent(url: &str, max_attempts: u32) -> clawlet_bus::AgentSpec {
    let kind = AgentKind::Http {
        url: url.to_owned(),
        shown_url: url.to_owned(),
        secret: Some(SECRET.to_owned()),
        headers: vec![("x-agent-token".to_owned(), "t0k".to_owned())],
    };
    agent("inbox", kind, max_attempts)
}

#[tokio::test]
async fn http_agent_receives_signed_event_after_two_failures() {
    let (url, _ep, mut received) = endpoint(2).await;
    let dir = tempfile::tempdir().unwrap();
    let bus = sqlite_bus(&dir).await;
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let (observer, mut seen) = recorder(Some(tp));
    let (dispatcher, shutdown) = start(
        &bus,
        vec![http_agent(&url, 5)],
        vec![route_all("inbox")],
        observer,
    );
    let env = envelope("github", "pull_request", "d-1");
    bus.publish(&env).await.unwrap();

    let seen = wait_for(
        &mut seen,
        &Seen::Attempt("inbox".into(), AttemptOutcome::Delivered),
    )
    .await;
    let failed = Seen::Attempt("inbox".into(), AttemptOutcome::Failed);
    assert_eq!(
        seen,
        vec![
            failed.clone(),
            failed,
            Seen::Attempt("inbox".into(), AttemptOutcome::Delivered)
        ]
    );
    let mut last = None;
    while let Ok(r) = received.try_recv() {
        last = Some(r);
    }
    let (headers, body) = last.unwrap();
    let h = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(h("content-type").as_deref(), Some("application/json"));
    assert_eq!(h("webhook-id"), Some(env.id.clone()));
    assert_eq!(h("x-agent-token").as_deref(), Some("t0k"));
    assert_eq!(h("traceparent").as_deref(), Some(tp));
    assert_signed(&headers, &body);
    let forwarded: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(forwarded["id"], env.id.as_str());
    assert_eq!(forwarded["type"], "pull_request");
    assert_eq!(forwarded["payload"]["delivery"], "d-1");

    let stored = bus.show(&env.id).await.unwrap().unwrap();
    assert_eq!(stored.status, DeliveryStatus::Delivered);
    assert_eq!(stored.deliveries[0].attempts, 3);
    assert_eq!(stored.deliveries[0].last_error, None);
    shutdown.cancel();
    dispatcher.join().await;
}

#[tokio::test]
async fn always_failing_agent_dead_letters_then_replay_delivers() {
    let (url, ep, _received) = endpoint(u32::MAX).await;
    let dir = tempfile::tempdir().unwrap();
    let bus = sqlite_bus(&dir).await;
    let (observer, mut seen) = recorder(None);
    let (dispatcher, shutdown) = start(
        &bus,
        vec![http_agent(&url, 3)],
        vec![route_all("inbox")],
        observer,
    );
    let env = envelope("stripe", "invoice.paid", "evt_1");
    bus.publish(&env).await.unwrap();

    let seen_until_dead = wait_for(&mut seen, &Seen::Dead("inbox".into())).await;
    assert_eq!(
        seen_until_dead.len(),
        4,
        "three attempts, then dead: {seen_until_dead:?}"
    );
    let journal = Journal::open(&dir.path().join("journal/webhooks.db")).unwrap();
    let dead = journal.show(&env.id).unwrap().unwrap();
    assert_eq!(dead.status, DeliveryStatus::Dead);
    assert_eq!(dead.deliveries[0].attempts, 3);
    assert!(
        dead.deliveries[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("HTTP 500"),
        "{:?}",
        dead.deliveries
    );
    assert_eq!(bus.health().depth, 0, "dead events are not pending");

    // The agent recovers; the CLI replays from its own connection and the daemon polls it in.
    ep.failures_left.store(0, Ordering::SeqCst);
    assert_eq!(journal.replay(ReplaySelector::Dead).unwrap(), 1);
    wait_for(
        &mut seen,
        &Seen::Attempt("inbox".into(), AttemptOutcome::Delivered),
    )
    .await;
    let delivered = journal.show(&env.id).unwrap().unwrap();
    assert_eq!(delivered.status, DeliveryStatus::Delivered);
    assert_eq!(
        delivered.deliveries[0].attempts, 1,
        "replay resets the attempts"
    );
    assert_eq!(journal.replay(ReplaySelector::Dead).unwrap(), 0);
    shutdown.cancel();
    dispatcher.join().await;
}

/// An envelope past the journal's streaming size is kept in pieces around its payload; the
/// journal, an exec agent and a signed HTTP agent all get the same JSON, byte for byte.
#[tokio::test]
async fn a_large_event_reaches_every_agent_and_the_journal_whole() {
    let (url, _ep, mut received) = endpoint(0).await;
    let dir = tempfile::tempdir().unwrap();
    let command = script(dir.path(), "cat > stdin.json");
    let bus = sqlite_bus(&dir).await;
    let (observer, mut seen) = recorder(None);
    let (dispatcher, shutdown) = start(
        &bus,
        vec![
            http_agent(&url, 2),
            agent("script", AgentKind::Exec { command }, 2),
        ],
        vec![route_all("inbox"), route_all("script")],
        observer,
    );
    let mut env = envelope("github", "push", "d-large");
    // Over the 1 MiB streaming size, under the test endpoint's 2 MB body limit.
    let pad = "é0123456789abcdef".repeat(90_000);
    env.payload = clawlet_events::Payload::from_json(&format!(r#"{{"pad":"{pad}"}}"#)).unwrap();
    let json = env.to_json().unwrap();
    assert!(json.len() > 1024 * 1024, "{}", json.len());
    bus.publish(&env).await.unwrap();
    wait_all(
        &mut seen,
        &[
            Seen::Attempt("inbox".into(), AttemptOutcome::Delivered),
            Seen::Attempt("script".into(), AttemptOutcome::Delivered),
        ],
    )
    .await;

    let written = std::fs::read(dir.path().join("stdin.json")).unwrap();
    assert!(written == json.as_bytes(), "the exec agent's input differs");
    let (headers, body) = received.try_recv().unwrap();
    assert!(body == json.as_bytes(), "the HTTP agent's body differs");
    assert_signed(&headers, &body);
    let stored = bus.show(&env.id).await.unwrap().unwrap();
    assert_eq!(stored.envelope.payload, env.payload);
    assert_eq!(stored.status, DeliveryStatus::Delivered);
    shutdown.cancel();
    dispatcher.join().await;
}

fn script(dir: &std::path::Path, body: &str) -> Vec<String> {
    let path = dir.join("agent.sh");
    std::fs::write(&path, format!("set -e\ncd '{}'\n{body}\n", dir.display())).unwrap();
    vec!["/bin/sh".to_owned(), path.display().to_string()]
}

#[tokio::test]
async fn exec_agent_gets_json_on_stdin_and_env() {
    let dir = tempfile::tempdir().unwrap();
    let command = script(
        dir.path(),
        r#"n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count
cat > stdin.json
printf '%s\n%s\n%s\n%s\n' "$CLAWLET_EVENT_ID" "$CLAWLET_EVENT_TYPE" "$CLAWLET_EVENT_SOURCE" "$TRACEPARENT" > env.txt
if [ $n -lt 3 ]; then echo "not yet $n" >&2; exit 3; fi"#,
    );
    let bus = Bus::open(BusOptions::new(Backend::Memory)).await.unwrap();
    let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let (observer, mut seen) = recorder(Some(tp));
    let (dispatcher, shutdown) = start(
        &bus,
        vec![agent("notify", AgentKind::Exec { command }, 5)],
        vec![route_all("notify")],
        observer,
    );
    let env = envelope("github", "issues", "d-9");
    bus.publish(&env).await.unwrap();
    let seen = wait_for(
        &mut seen,
        &Seen::Attempt("notify".into(), AttemptOutcome::Delivered),
    )
    .await;
    assert_eq!(seen.len(), 3, "{seen:?}");

    let stdin: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("stdin.json")).unwrap()).unwrap();
    assert_eq!(stdin["id"], env.id.as_str());
    assert_eq!(stdin["delivery_id"], "d-9");
    let envs = std::fs::read_to_string(dir.path().join("env.txt")).unwrap();
    assert_eq!(envs, format!("{}\nissues\ngithub\n{tp}\n", env.id));
    shutdown.cancel();
    dispatcher.join().await;
}

#[tokio::test]
async fn exec_failure_and_timeout_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let failing = script(dir.path(), "echo 'disk on fire' >&2; exit 7");
    let slow_dir = tempfile::tempdir().unwrap();
    let slow = script(slow_dir.path(), "exec sleep 30");
    let bus = Bus::open(BusOptions::new(Backend::Memory)).await.unwrap();
    let (observer, mut seen) = recorder(None);
    let mut slow_agent = agent("slow", AgentKind::Exec { command: slow }, 1);
    slow_agent.timeout = Duration::from_millis(200);
    let agents = vec![
        agent("failing", AgentKind::Exec { command: failing }, 1),
        slow_agent,
    ];
    let routes = vec![route_all("failing"), route_all("slow")];
    let (dispatcher, shutdown) = start(&bus, agents, routes, observer);
    let env = envelope("github", "push", "d-2");
    bus.publish(&env).await.unwrap();
    let dead = crate::wait_all(
        &mut seen,
        &[Seen::Dead("failing".into()), Seen::Dead("slow".into())],
    )
    .await;
    assert!(
        dead.contains(&Seen::Attempt("slow".into(), AttemptOutcome::TimedOut)),
        "{dead:?}"
    );
    let stored = bus.show(&env.id).await.unwrap().unwrap();
    assert_eq!(stored.status, DeliveryStatus::Dead);
    let errors: Vec<_> = stored
        .deliveries
        .iter()
        .map(|d| (d.agent.as_str(), d.last_error.clone().unwrap()))
        .collect();
    assert_eq!(errors[0].0, "failing");
    assert!(
        errors[0].1.contains("exit status: 7") && errors[0].1.contains("disk on fire"),
        "{errors:?}"
    );
    assert_eq!(errors[1], ("slow", "timed out after 200ms".to_owned()));
    shutdown.cancel();
    dispatcher.join().await;
}

/// An agent's output reaches `last_error` as an excerpt of its start and end, however much it
/// wrote: the end is where a failing program says why.
#[tokio::test]
async fn last_error_holds_only_an_excerpt_of_a_flood_of_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let command = script(
        dir.path(),
        "exec >&2\necho 'first line'\nhead -c 20000000 /dev/zero | tr '\\0' x\necho\necho 'why it failed'\nexit 4",
    );
    let bus = Bus::open(BusOptions::new(Backend::Memory)).await.unwrap();
    let (observer, mut seen) = recorder(None);
    let (dispatcher, shutdown) = start(
        &bus,
        vec![agent("flood", AgentKind::Exec { command }, 1)],
        vec![route_all("flood")],
        observer,
    );
    let env = envelope("github", "push", "flood-1");
    bus.publish(&env).await.unwrap();
    wait_for(&mut seen, &Seen::Dead("flood".into())).await;
    let stored = bus.show(&env.id).await.unwrap().unwrap();
    let error = stored.deliveries[0].last_error.clone().unwrap();
    assert!(error.len() < 4096, "last_error holds {} bytes", error.len());
    assert!(error.contains("exit status: 4"), "{error}");
    assert!(error.contains("first line"), "{error}");
    assert!(error.ends_with("why it failed"), "{error}");
    assert!(error.contains("bytes left out"), "{error}");
    shutdown.cancel();
    dispatcher.join().await;
}

#[tokio::test]
async fn events_stored_before_the_dispatcher_are_routed_when_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let env = envelope("github", "push", "early");
    {
        let bus = sqlite_bus(&dir).await;
        assert!(matches!(
            bus.publish(&env).await.unwrap(),
            Published::Accepted { .. }
        ));
    }
    let bus = sqlite_bus(&dir).await;
    assert_eq!(bus.health().depth, 1);
    let (observer, mut seen) = recorder(None);
    let routes = vec![
        clawlet_bus::RouteSpec {
            handlers: vec!["stripe".into()],
            events: vec![],
            agent: "log".into(),
        },
        route_all("all"),
    ];
    let (dispatcher, shutdown) = start(
        &bus,
        vec![
            agent("log", AgentKind::Log, 1),
            agent("all", AgentKind::Log, 1),
        ],
        routes,
        observer,
    );
    let seen = wait_for(
        &mut seen,
        &Seen::Attempt("all".into(), AttemptOutcome::Delivered),
    )
    .await;
    assert_eq!(
        seen.len(),
        1,
        "the stripe-only route does not match: {seen:?}"
    );
    let stored = bus.show(&env.id).await.unwrap().unwrap();
    assert_eq!(stored.status, DeliveryStatus::Delivered);
    assert_eq!(stored.deliveries.len(), 1);
    assert_eq!(bus.health().depth, 0);
    shutdown.cancel();
    dispatcher.join().await;
}

#[tokio::test]
async fn shutdown_leaves_unattempted_work_pending() {
    let dir = tempfile::tempdir().unwrap();
    let bus = sqlite_bus(&dir).await;
    let (observer, _seen) = recorder(None);
    let shutdown = clawlet_bus::CancellationToken::new();
    shutdown.cancel();
    let dispatcher = clawlet_bus::Dispatcher::start_with_options(
        bus.clone(),
        vec![agent("log", AgentKind::Log, 1)],
        vec![route_all("log")],
        observer,
        shutdown,
        crate::fast(),
    )
    .unwrap();
    dispatcher.join().await;
    let env = envelope("github", "push", "after-shutdown");
    bus.publish(&env).await.unwrap();
    let stored = bus.show(&env.id).await.unwrap().unwrap();
    assert_eq!(stored.status, DeliveryStatus::Pending);
    assert_eq!(
        stored.deliveries.len(),
        1,
        "routed at publish time although nothing delivers now"
    );
    assert_eq!(stored.deliveries[0].status, DeliveryStatus::Pending);
}

/// An endpoint that holds each request until the test opens the gate.
struct Gate {
    arrived: mpsc::UnboundedSender<()>,
    open: tokio::sync::Semaphore,
}

async fn gated(State(gate): State<Arc<Gate>>) -> StatusCode {
    let _ = gate.arrived.send(());
    let _permit = gate.open.acquire().await.unwrap();
    StatusCode::OK
}

#[tokio::test]
async fn shutdown_finishes_in_flight_and_keeps_the_rest_pending() {
    let (tx, mut arrived) = mpsc::unbounded_channel();
    let gate = Arc::new(Gate {
        arrived: tx,
        open: tokio::sync::Semaphore::new(0),
    });
    let app = axum::Router::new()
        .route("/events", axum::routing::post(gated))
        .with_state(Arc::clone(&gate));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let bus = sqlite_bus(&dir).await;
    let (observer, mut seen) = recorder(None);
    let mut one_at_a_time = agent(
        "inbox",
        AgentKind::Http {
            shown_url: url.clone(),
            url,
            secret: None,
            headers: vec![],
        },
        3,
    );
    one_at_a_time.concurrency = 1;
    let (dispatcher, shutdown) = start(
        &bus,
        vec![one_at_a_time],
        vec![route_all("inbox")],
        observer,
    );
    let first = envelope("github", "push", "first");
    let second = envelope("github", "push", "second");
    bus.publish(&first).await.unwrap();
    tokio::time::timeout(crate::WAIT, arrived.recv())
        .await
        .unwrap()
        .unwrap();
    bus.publish(&second).await.unwrap();

    shutdown.cancel();
    let joined = tokio::spawn(dispatcher.join());
    gate.open.add_permits(1);
    tokio::time::timeout(crate::WAIT, joined)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        seen.recv().await,
        Some(Seen::Attempt("inbox".into(), AttemptOutcome::Delivered))
    );
    assert!(
        seen.try_recv().is_err(),
        "the second event was not attempted"
    );

    assert_eq!(
        bus.show(&first.id).await.unwrap().unwrap().status,
        DeliveryStatus::Delivered
    );
    let second = bus.show(&second.id).await.unwrap().unwrap();
    assert_eq!(second.status, DeliveryStatus::Pending);
    assert_eq!(second.deliveries[0].attempts, 0);
    assert_eq!(bus.health().depth, 1);
}

/// A `log` agent's delivery is made by publish itself, before the commit: once publish returns,
/// the event is delivered, the attempt counted, and the dispatcher was not needed. An agent of
/// another kind on the same event still goes through the dispatcher.
#[tokio::test]
async fn publish_makes_log_deliveries_itself() {
    let dir = tempfile::tempdir().unwrap();
    let memory = Bus::open(BusOptions::new(Backend::Memory)).await.unwrap();
    for bus in [sqlite_bus(&dir).await, memory] {
        let (observer, mut seen) = recorder(None);
        let (dispatcher, shutdown) = start(
            &bus,
            vec![
                agent("log", AgentKind::Log, 1),
                agent("audit", AgentKind::Log, 1),
                agent(
                    "hook",
                    AgentKind::Exec {
                        command: vec!["/bin/true".into()],
                    },
                    1,
                ),
            ],
            vec![
                route_all("log"),
                route_all("audit"),
                clawlet_bus::RouteSpec {
                    handlers: vec![],
                    events: vec!["issues".into()],
                    agent: "hook".into(),
                },
            ],
            observer,
        );
        let name = bus.backend_name();
        let env = envelope("github", "push", "log-only");
        bus.publish(&env).await.unwrap();
        // Already reported: no wait.
        let mut reported = vec![seen.try_recv().ok(), seen.try_recv().ok()];
        reported.sort_by_key(|s| format!("{s:?}"));
        assert_eq!(
            reported,
            [
                Some(Seen::Attempt("audit".into(), AttemptOutcome::Delivered)),
                Some(Seen::Attempt("log".into(), AttemptOutcome::Delivered)),
            ],
            "{name}"
        );
        assert_eq!(bus.health().depth, 0, "{name}");
        match bus.show(&env.id).await.unwrap() {
            // The memory backend forgets delivered events at once.
            None => assert_eq!(name, "memory"),
            Some(stored) => {
                assert_eq!(stored.status, DeliveryStatus::Delivered, "{name}");
                let mut made: Vec<(String, DeliveryStatus, u32)> = stored
                    .deliveries
                    .iter()
                    .map(|d| (d.agent.clone(), d.status, d.attempts))
                    .collect();
                made.sort_by(|a, b| a.0.cmp(&b.0));
                assert_eq!(
                    made,
                    [
                        ("audit".to_owned(), DeliveryStatus::Delivered, 1),
                        ("log".to_owned(), DeliveryStatus::Delivered, 1),
                    ],
                    "{name}"
                );
            }
        }

        // With an exec agent on the event too, the event waits for that one.
        let both = envelope("github", "issues", "log-and-exec");
        bus.publish(&both).await.unwrap();
        wait_for(
            &mut seen,
            &Seen::Attempt("hook".into(), AttemptOutcome::Delivered),
        )
        .await;
        shutdown.cancel();
        dispatcher.join().await;
        assert_eq!(bus.health().depth, 0, "{name}");
        if let Some(stored) = bus.show(&both.id).await.unwrap() {
            assert_eq!(stored.status, DeliveryStatus::Delivered, "{name}");
            assert_eq!(stored.deliveries.len(), 3, "{name}");
        }
    }
}

/// A route's `events:` entry `pull_request.opened` selects by type and action, as a handler's
/// does: an opened pull request reaches its agent, a closed one does not. Checked both for events
/// routed when published and for events stored before any routes were registered (routed when
/// the dispatcher starts, with the action read back from the stored envelope on sqlite).
#[tokio::test]
async fn route_events_select_a_type_and_action() {
    let dir = tempfile::tempdir().unwrap();
    let memory = Bus::open(BusOptions::new(Backend::Memory)).await.unwrap();
    for bus in [sqlite_bus(&dir).await, memory] {
        let name = bus.backend_name();
        let pull_request = |action: &str, delivery: &str| {
            let mut env = envelope("github", "pull_request", delivery);
            env.action = Some(action.to_owned());
            env
        };
        // Stored before the dispatcher starts: routed when it does.
        bus.publish(&pull_request("opened", "early-opened"))
            .await
            .unwrap();
        bus.publish(&pull_request("closed", "early-closed"))
            .await
            .unwrap();
        let (observer, mut seen) = recorder(None);
        let (dispatcher, shutdown) = start(
            &bus,
            vec![
                agent("opened", AgentKind::Log, 1),
                agent("all", AgentKind::Log, 1),
            ],
            vec![
                clawlet_bus::RouteSpec {
                    handlers: vec![],
                    events: vec!["pull_request.opened".into()],
                    agent: "opened".into(),
                },
                route_all("all"),
            ],
            observer,
        );
        // Routed when published.
        let late_opened = pull_request("opened", "late-opened");
        let late_closed = pull_request("closed", "late-closed");
        bus.publish(&late_opened).await.unwrap();
        bus.publish(&late_closed).await.unwrap();
        // Every event reaches `all`; what `opened` got by then is all it gets.
        let mut delivered = Vec::new();
        let all = Seen::Attempt("all".into(), AttemptOutcome::Delivered);
        while delivered.iter().filter(|s| **s == all).count() < 4 {
            delivered.extend(wait_for(&mut seen, &all).await);
        }
        shutdown.cancel();
        dispatcher.join().await;
        while let Ok(s) = seen.try_recv() {
            delivered.push(s);
        }
        let opened = Seen::Attempt("opened".into(), AttemptOutcome::Delivered);
        assert_eq!(
            delivered.iter().filter(|s| **s == opened).count(),
            2,
            "{name}: the two opened pull requests, not the closed ones: {delivered:?}"
        );
        assert_eq!(bus.health().depth, 0, "{name}");
        if let Some(stored) = bus.show(&late_closed.id).await.unwrap() {
            let agents: Vec<&str> = stored.deliveries.iter().map(|d| d.agent.as_str()).collect();
            assert_eq!(agents, ["all"], "{name}");
        }
    }
}

/// An agent's first failure is logged at WARN at once, with the cause down to the socket's
/// (`Connection refused`), not only when its retry budget is spent; the failures after it stay
/// at DEBUG until it delivers again. Without a first WARN, a misconfigured agent stays silent
/// for the whole backoff schedule, which is hours with the default policy.
#[tokio::test]
async fn an_agents_first_failure_is_a_warning_with_its_cause() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let url = format!("http://{closed}/events");
    let bus = Bus::open(BusOptions::new(Backend::Memory)).await.unwrap();
    let (observer, mut seen) = recorder(None);
    let log = crate::LogCapture::start();
    let (dispatcher, shutdown) = start(
        &bus,
        vec![agent(
            "inbox",
            AgentKind::Http {
                url: url.clone(),
                shown_url: url.clone(),
                secret: None,
                headers: vec![],
            },
            3,
        )],
        vec![route_all("inbox")],
        observer,
    );
    bus.publish(&envelope("github", "push", "refused"))
        .await
        .unwrap();
    wait_for(&mut seen, &Seen::Dead("inbox".into())).await;
    shutdown.cancel();
    dispatcher.join().await;
    let log = log.finish();
    let failures: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("delivery failed, will retry"))
        .collect();
    assert_eq!(
        failures.len(),
        2,
        "attempts 1 and 2 failed, 3 went dead:\n{log}"
    );
    assert!(
        failures[0].contains("WARN")
            && failures[0].contains("Connection refused")
            && failures[0].contains(&format!("POST {url}")),
        "the first failure, with its cause: {}",
        failures[0]
    );
    assert!(
        failures[1].contains("DEBUG"),
        "the second failure: {}",
        failures[1]
    );
}
