use std::time::Duration;

use clawlet_bus::{
    AgentKind, DeliveryStatus, Journal, ListFilter, Published, RouteSpec, StoredEvent,
};

use crate::{Seen, agent, envelope, envelope_at, recorder, sqlite_bus, start, wait_all};

fn ago(d: Duration) -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() - d
}

const HOUR: Duration = Duration::from_secs(3600);

fn check(journal: &Journal, filter: ListFilter, expected: &[&str], names: &[(&str, &str)]) {
    let got: Vec<StoredEvent> = journal.list(&filter).unwrap();
    let got: Vec<&str> = got
        .iter()
        .map(|e| {
            names
                .iter()
                .find(|(_, id)| *id == e.envelope.id)
                .map_or("?", |(n, _)| *n)
        })
        .collect();
    assert_eq!(got, expected, "{filter:?}");
}

#[tokio::test]
async fn list_show_purge_from_another_connection() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal/webhooks.db");
    let bus = sqlite_bus(&dir).await;
    let e1 = envelope_at("github", "push", "1", ago(2 * HOUR));
    let e2 = envelope_at("github", "issues", "2", ago(240 * HOUR));
    let e3 = envelope_at("stripe", "invoice.paid", "3", ago(3 * HOUR));
    let e4 = envelope("github", "push", "4");

    let failing = vec!["/bin/sh".to_owned(), "-c".to_owned(), "exit 1".to_owned()];
    let agents = vec![
        agent("log", AgentKind::Log, 1),
        agent("fails", AgentKind::Exec { command: failing }, 1),
    ];
    let routes = vec![
        RouteSpec {
            handlers: vec!["github".into()],
            events: vec![],
            agent: "log".into(),
        },
        RouteSpec {
            handlers: vec!["stripe".into()],
            events: vec!["invoice.paid".into()],
            agent: "fails".into(),
        },
    ];
    let (observer, mut seen) = recorder(None);
    let (dispatcher, shutdown) = start(&bus, agents, routes, observer);
    for e in [&e1, &e2, &e3] {
        bus.publish(e).await.unwrap();
    }
    let delivered = Seen::Attempt("log".into(), clawlet_bus::AttemptOutcome::Delivered);
    let seen_all = wait_all(&mut seen, &[Seen::Dead("fails".into()), delivered.clone()]).await;
    if seen_all.iter().filter(|s| **s == delivered).count() < 2 {
        crate::wait_for(&mut seen, &delivered).await;
    }
    shutdown.cancel();
    dispatcher.join().await;
    bus.publish(&e4).await.unwrap();

    let journal = Journal::open(&path).unwrap();
    let names = [
        ("e1", e1.id.as_str()),
        ("e2", e2.id.as_str()),
        ("e3", e3.id.as_str()),
        ("e4", e4.id.as_str()),
    ];
    let f = ListFilter::default;
    check(&journal, f(), &["e4", "e1", "e3", "e2"], &names);
    check(
        &journal,
        ListFilter {
            handler: Some("github".into()),
            ..f()
        },
        &["e4", "e1", "e2"],
        &names,
    );
    check(
        &journal,
        ListFilter {
            event_type: Some("push".into()),
            ..f()
        },
        &["e4", "e1"],
        &names,
    );
    check(
        &journal,
        ListFilter {
            status: Some(DeliveryStatus::Dead),
            ..f()
        },
        &["e3"],
        &names,
    );
    check(
        &journal,
        ListFilter {
            status: Some(DeliveryStatus::Pending),
            ..f()
        },
        &["e4"],
        &names,
    );
    check(
        &journal,
        ListFilter {
            status: Some(DeliveryStatus::Delivered),
            ..f()
        },
        &["e1", "e2"],
        &names,
    );
    check(
        &journal,
        ListFilter {
            since: Some(150 * Duration::from_secs(60)),
            ..f()
        },
        &["e4", "e1"],
        &names,
    );
    check(
        &journal,
        ListFilter { limit: 2, ..f() },
        &["e4", "e1"],
        &names,
    );
    check(
        &journal,
        ListFilter {
            handler: Some("nobody".into()),
            ..f()
        },
        &[],
        &names,
    );

    assert!(journal.show("no-such-id").unwrap().is_none());
    let dead = journal.show(&e3.id).unwrap().unwrap();
    let line = serde_json::to_value(&dead).unwrap();
    assert_eq!(line["id"], e3.id.as_str());
    assert_eq!(line["type"], "invoice.paid");
    assert_eq!(line["status"], "dead");
    assert_eq!(line["deliveries"][0]["agent"], "fails");
    assert_eq!(line["deliveries"][0]["status"], "dead");
    assert_eq!(line["deliveries"][0]["attempts"], 1);
    assert_eq!(line["payload"]["delivery"], "3");

    assert_eq!(journal.purge_older_than(24 * HOUR).unwrap(), 1, "e2");
    assert_eq!(
        journal.purge_older_than(HOUR).unwrap(),
        2,
        "e1 and e3; e4 is pending"
    );
    check(&journal, f(), &["e4"], &names);
    // Purging events keeps their dedup entries within the window.
    let again = envelope("github", "push", "1");
    assert_eq!(
        bus.publish(&again).await.unwrap(),
        Published::Duplicate {
            event_id: e1.id.clone()
        }
    );
}

#[test]
fn opening_a_missing_journal_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.db");
    let err = Journal::open(&path).unwrap_err();
    assert!(err.to_string().contains("missing.db"), "{err}");
    assert_eq!(err.code(), "storage");
}
