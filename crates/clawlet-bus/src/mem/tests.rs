//! The memory backend held to the SQLite journal's behaviour (see `sql/tests.rs`), with explicit
//! clocks: every `now` below is a plain number of milliseconds.

use std::cell::RefCell;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clawlet_events::{Envelope, Source};

use super::*;
use crate::spec::{handler_route, log_routes as routes};

const WINDOW_MS: i64 = 60_000;

/// A store and the state the bus shares with it.
struct Fixture {
    store: MemStore,
    shared: Shared,
}

impl Fixture {
    fn new(max_pending: u64) -> Self {
        Self {
            store: MemStore::default(),
            shared: Shared::new(
                max_pending,
                Duration::from_millis(WINDOW_MS.unsigned_abs()),
                Duration::ZERO,
            ),
        }
    }

    fn try_insert(
        &self,
        ev: &Arc<Fresh>,
        routes: Option<&Routes>,
        now: i64,
        take: &dyn Fn(&str) -> bool,
    ) -> Result<Inserted, BusError> {
        self.try_place(ev, routes, now, &Placement::taking(take))
    }

    fn try_place(
        &self,
        ev: &Arc<Fresh>,
        routes: Option<&Routes>,
        now: i64,
        place: &dyn Fn(&str) -> Placement,
    ) -> Result<Inserted, BusError> {
        self.store.insert(&self.shared, ev, routes, now, place)
    }

    /// Inserts with no dispatcher slot free, as a publish without a dispatcher does.
    fn insert(&self, ev: &Arc<Fresh>, routes: Option<&Routes>, now: i64) -> Published {
        self.try_insert(ev, routes, now, &|_| false)
            .unwrap()
            .published
    }

    fn pending(&self) -> u64 {
        self.shared.pending.load(Ordering::Relaxed)
    }

    fn finish(&self, id: &str, agent: &str, outcome: &Finish, now: i64) {
        self.store.finish(&self.shared, id, agent, outcome, now);
    }

    /// Claims everything due at `now`, as (event id, agent, attempts).
    fn claim_all(&self, now: i64) -> Vec<(String, String, u32)> {
        work(&self.store.claim(&all, now))
    }

    fn ids(&self, filter: &ListFilter, now: i64) -> Vec<String> {
        self.store
            .list(filter, now)
            .unwrap()
            .into_iter()
            .map(|e| e.envelope.id)
            .collect()
    }

    fn status(&self, id: &str) -> Option<DeliveryStatus> {
        self.store.show(id).unwrap().map(|e| e.status)
    }

    /// The event's deliveries as (agent, status, attempts, last error, next attempt in ms).
    fn deliveries(&self, id: &str) -> Vec<Record> {
        self.store
            .show(id)
            .unwrap()
            .unwrap()
            .deliveries
            .into_iter()
            .map(|d| {
                let next = d
                    .next_attempt_at
                    .map(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap());
                (d.agent, d.status, d.attempts, d.last_error, next)
            })
            .collect()
    }
}

type Record = (String, DeliveryStatus, u32, Option<String>, Option<i64>);

fn record(
    agent: &str,
    status: DeliveryStatus,
    attempts: u32,
    last_error: Option<&str>,
    next: Option<i64>,
) -> Record {
    (
        agent.to_owned(),
        status,
        attempts,
        last_error.map(str::to_owned),
        next,
    )
}

fn all(_: &str) -> usize {
    100
}

/// The claimed work as (event id, agent, attempts); each carries the envelope as published.
fn work(claimed: &Claimed) -> Vec<(String, String, u32)> {
    claimed
        .work
        .iter()
        .map(|w| {
            match &w.payload {
                Payload::Fresh(fresh) => assert_eq!(fresh.envelope.id, w.event_id),
                Payload::Stored(_) | Payload::Damaged(_) => {
                    panic!("{}: the memory backend re-read JSON", w.event_id)
                }
            }
            (w.event_id.clone(), w.agent.clone(), w.attempts)
        })
        .collect()
}

fn owned(expected: &[(&str, &str, u32)]) -> Vec<(String, String, u32)> {
    expected
        .iter()
        .map(|(id, agent, attempts)| ((*id).to_owned(), (*agent).to_owned(), *attempts))
        .collect()
}

fn event_at(
    id: &str,
    handler: &str,
    event_type: &str,
    delivery: &str,
    received_ms: i64,
) -> Arc<Fresh> {
    let envelope = Envelope {
        id: id.to_owned(),
        handler: handler.to_owned(),
        source: Source::Github,
        event_type: event_type.to_owned(),
        action: None,
        delivery_id: delivery.to_owned(),
        received_at: time::OffsetDateTime::from_unix_timestamp_nanos(
            i128::from(received_ms) * 1_000_000,
        )
        .unwrap(),
        summary: format!("{handler} {event_type} {delivery}"),
        headers: std::collections::BTreeMap::new(),
        payload: clawlet_events::Payload::from_json(&format!(r#"{{"delivery":"{delivery}"}}"#))
            .unwrap(),
    };
    Arc::new(Fresh::new(envelope).unwrap())
}

fn event(id: &str, handler: &str, delivery: &str) -> Arc<Fresh> {
    event_at(id, handler, "push", delivery, 0)
}

fn accepted(id: &str) -> Published {
    Published::Accepted {
        event_id: id.to_owned(),
    }
}

fn duplicate(id: &str) -> Published {
    Published::Duplicate {
        event_id: id.to_owned(),
    }
}

#[test]
fn a_delivery_id_is_deduplicated_per_handler() {
    let mem = Fixture::new(10);
    let cases = [
        ("e1", "github", "d", accepted("e1")),
        ("e2", "github", "d", duplicate("e1")),
        ("e3", "stripe", "d", accepted("e3")),
        ("e4", "stripe", "d", duplicate("e3")),
        ("e5", "github", "other", accepted("e5")),
    ];
    for (id, handler, delivery, expected) in cases {
        assert_eq!(
            mem.insert(&event(id, handler, delivery), None, 1_000),
            expected,
            "{id}: {handler}/{delivery}"
        );
    }
    assert_eq!(mem.ids(&ListFilter::default(), 1_000), ["e5", "e3", "e1"]);
    assert!(
        mem.store.show("e2").unwrap().is_none(),
        "a duplicate is not stored"
    );
    assert_eq!(mem.pending(), 3);
}

#[test]
fn dedup_keys_keep_handler_and_delivery_id_apart() {
    let mem = Fixture::new(10);
    // The same concatenation "abc" from different pairs: the handler is length-prefixed.
    assert_eq!(mem.insert(&event("e1", "ab", "c"), None, 0), accepted("e1"));
    assert_eq!(mem.insert(&event("e2", "a", "bc"), None, 0), accepted("e2"));
    assert_eq!(mem.insert(&event("e3", "", "abc"), None, 0), accepted("e3"));
    assert_eq!(
        mem.insert(&event("e4", "a", "bc"), None, 0),
        duplicate("e2")
    );
}

#[test]
fn dedup_window_is_measured_from_first_sight() {
    let mem = Fixture::new(10);
    let check = |id: &str, now: i64, expected: Published| {
        assert_eq!(
            mem.insert(&event(id, "github", "d"), None, now),
            expected,
            "{id} at {now}"
        );
    };
    check("e1", 1_000, accepted("e1"));
    check("e2", 1_000 + WINDOW_MS, duplicate("e1"));
    check("e3", 1_001 + WINDOW_MS, accepted("e3"));
    check("e4", 1_002 + WINDOW_MS, duplicate("e3"));
    check("e5", 1_001 + 2 * WINDOW_MS, duplicate("e3"));
    check("e6", 1_002 + 2 * WINDOW_MS, accepted("e6"));
    assert_eq!(mem.pending(), 3);
    assert_eq!(
        mem.ids(&ListFilter::default(), 0),
        ["e6", "e3", "e1"],
        "an expired dedup entry does not forget its event"
    );
}

#[test]
fn prune_ends_dedup_entries_past_the_window_and_keeps_undelivered_events() {
    let mem = Fixture::new(10);
    let r = routes(&["a"]);
    mem.insert(&event("e1", "github", "d1"), Some(&r), 1_000);
    mem.insert(&event("e2", "github", "d2"), Some(&r), 1_000);
    mem.claim_all(1_000);
    mem.finish("e2", "a", &Finish::Dead { error: "x".into() }, 1_000);

    assert_eq!(mem.store.prune(&mem.shared, 1_000 + WINDOW_MS), 0);
    assert_eq!(
        mem.insert(&event("e3", "github", "d1"), None, 1_000),
        duplicate("e1"),
        "still inside the window"
    );
    assert_eq!(mem.store.prune(&mem.shared, 1_001 + WINDOW_MS), 0);
    // An insert with an earlier clock expires nothing itself: only prune can have ended them.
    assert_eq!(
        mem.insert(&event("e4", "github", "d1"), None, 1_000),
        accepted("e4")
    );
    assert_eq!(
        mem.insert(&event("e5", "github", "d2"), None, 1_000),
        accepted("e5")
    );
    assert_eq!(mem.ids(&ListFilter::default(), 0), ["e5", "e4", "e2", "e1"]);
}

#[test]
fn full_refuses_new_events_but_still_answers_duplicates() {
    let mem = Fixture::new(2);
    let r = routes(&["a"]);
    mem.insert(&event("e1", "github", "d1"), Some(&r), 0);
    mem.insert(&event("e2", "github", "d2"), Some(&r), 0);
    assert_eq!(mem.pending(), 2);

    let asked = RefCell::new(Vec::new());
    let take = |agent: &str| {
        asked.borrow_mut().push(agent.to_owned());
        true
    };
    let err = mem
        .try_insert(&event("e3", "github", "d3"), Some(&r), 1, &take)
        .unwrap_err();
    assert!(
        matches!(err, BusError::Full { retry_after } if retry_after == FULL_RETRY_AFTER),
        "{err:?}"
    );
    assert!(mem.store.show("e3").unwrap().is_none());
    assert_eq!(mem.ids(&ListFilter::default(), 1), ["e2", "e1"]);
    assert_eq!(mem.pending(), 2);

    // A duplicate is answered even when full, so that the sender stops retrying.
    let dup = mem
        .try_insert(&event("e4", "github", "d1"), Some(&r), 1, &take)
        .unwrap();
    assert_eq!(dup.published, duplicate("e1"));
    assert!(dup.taken.is_empty());
    assert!(!dup.left_pending);
    assert!(
        asked.borrow().is_empty(),
        "no dispatcher slot is taken for a refused or duplicate event"
    );

    // The refused event left no dedup entry: once there is room, it is accepted.
    assert_eq!(mem.claim_all(1), owned(&[("e1", "a", 0), ("e2", "a", 0)]));
    mem.finish("e1", "a", &Finish::Delivered, 1);
    assert_eq!(mem.pending(), 1);
    assert_eq!(
        mem.insert(&event("e3", "github", "d3"), Some(&r), 2),
        accepted("e3")
    );
    assert_eq!(mem.pending(), 2);
}

#[test]
fn taken_deliveries_are_in_flight_and_the_others_are_claimed() {
    let mem = Fixture::new(10);
    let r = routes(&["a", "b", "c"]);
    let inserted = mem
        .try_insert(&event("e1", "github", "d1"), Some(&r), 0, &|agent| {
            agent != "b"
        })
        .unwrap();
    assert_eq!(inserted.published, accepted("e1"));
    assert_eq!(inserted.taken, ["a", "c"]);
    assert!(inserted.left_pending);
    assert_eq!(mem.pending(), 1);
    assert_eq!(mem.status("e1"), Some(DeliveryStatus::Pending));

    assert_eq!(mem.claim_all(0), owned(&[("e1", "b", 0)]));
    assert_eq!(mem.claim_all(0), owned(&[]), "nothing is handed out twice");

    for agent in ["a", "b", "c"] {
        assert_eq!(mem.status("e1"), Some(DeliveryStatus::Pending), "{agent}");
        mem.finish("e1", agent, &Finish::Delivered, 5);
    }
    assert_eq!(mem.status("e1"), None);
    assert_eq!(mem.pending(), 0);
}

/// Publish delivered to `a` itself (a log line): that delivery is done after one attempt and
/// never claimed; an event whose every delivery was made is delivered at once and forgotten.
#[test]
fn deliveries_made_at_insert_are_delivered_and_never_claimed() {
    let mem = Fixture::new(10);
    let r = routes(&["a", "b"]);
    let inserted = mem
        .try_place(
            &event("e1", "github", "d1"),
            Some(&r),
            0,
            &Placement::made_for("a"),
        )
        .unwrap();
    assert!(inserted.taken.is_empty());
    assert!(inserted.left_pending);
    assert_eq!(mem.pending(), 1);
    assert_eq!(
        mem.deliveries("e1"),
        [
            record("a", DeliveryStatus::Delivered, 1, None, None),
            record("b", DeliveryStatus::Pending, 0, None, Some(0)),
        ]
    );
    assert_eq!(mem.claim_all(0), owned(&[("e1", "b", 0)]));

    let all_made = mem
        .try_place(&event("e2", "github", "d2"), Some(&r), 1, &|_| {
            Placement::Delivered
        })
        .unwrap();
    assert_eq!(all_made.published, accepted("e2"));
    assert!(!all_made.left_pending);
    assert_eq!(mem.status("e2"), None);
    assert_eq!(mem.pending(), 1, "only e1 is still pending");
    assert_eq!(
        mem.insert(&event("e3", "github", "d2"), Some(&r), 2),
        duplicate("e2")
    );
}

#[test]
fn all_taken_leaves_nothing_to_claim() {
    let mem = Fixture::new(10);
    let r = routes(&["a", "b"]);
    let inserted = mem
        .try_insert(&event("e1", "github", "d1"), Some(&r), 0, &|_| true)
        .unwrap();
    assert_eq!(inserted.taken, ["a", "b"]);
    assert!(!inserted.left_pending);
    let claimed = mem.store.claim(&all, 0);
    assert_eq!(work(&claimed), owned(&[]));
    assert_eq!((claimed.next_due, claimed.more), (None, false));
    assert_eq!(mem.pending(), 1);
}

#[test]
fn claim_respects_per_agent_limits_and_due_times() {
    let mem = Fixture::new(10);
    let r = routes(&["slow", "fast"]);
    for i in 0..3 {
        mem.insert(
            &event(&format!("e{i}"), "github", &format!("d{i}")),
            Some(&r),
            100,
        );
    }
    let limit = |agent: &str| if agent == "slow" { 1 } else { 5 };
    let claimed = mem.store.claim(&limit, 100);
    assert_eq!(
        work(&claimed),
        owned(&[
            ("e0", "fast", 0),
            ("e0", "slow", 0),
            ("e1", "fast", 0),
            ("e2", "fast", 0),
        ])
    );
    assert!(claimed.more, "slow had due work beyond its limit");
    assert_eq!(claimed.next_due, None);

    let again = mem.store.claim(&all, 100);
    assert_eq!(
        work(&again),
        owned(&[("e1", "slow", 0), ("e2", "slow", 0)]),
        "claimed deliveries are not handed out twice"
    );
    assert!(!again.more);

    mem.finish(
        "e0",
        "fast",
        &Finish::Retry {
            at: 500,
            error: "x".into(),
        },
        100,
    );
    let early = mem.store.claim(&all, 499);
    assert_eq!(work(&early), owned(&[]));
    assert_eq!((early.next_due, early.more), (Some(500), false));
    let due = mem.store.claim(&all, 500);
    assert_eq!(work(&due), owned(&[("e0", "fast", 1)]));
    assert_eq!((due.next_due, due.more), (None, false));
}

#[test]
fn an_agent_without_free_slots_sets_more_only_for_due_work() {
    let mem = Fixture::new(10);
    let r = routes(&["a"]);
    mem.insert(&event("e1", "github", "d1"), Some(&r), 100);
    let none = |_: &str| 0;
    let early = mem.store.claim(&none, 99);
    assert_eq!(work(&early), owned(&[]));
    assert_eq!((early.next_due, early.more), (Some(100), false));
    let due = mem.store.claim(&none, 100);
    assert_eq!(work(&due), owned(&[]));
    assert_eq!((due.next_due, due.more), (None, true));
    assert_eq!(mem.claim_all(100), owned(&[("e1", "a", 0)]));
}

#[test]
fn delivered_event_is_forgotten_but_its_delivery_id_still_deduplicated() {
    let mem = Fixture::new(10);
    let r = routes(&["a", "b"]);
    mem.insert(&event("e1", "github", "d1"), Some(&r), 0);
    assert_eq!(mem.claim_all(0), owned(&[("e1", "a", 0), ("e1", "b", 0)]));

    mem.finish("e1", "a", &Finish::Delivered, 10);
    assert_eq!(
        mem.deliveries("e1"),
        [
            record("a", DeliveryStatus::Delivered, 1, None, None),
            record("b", DeliveryStatus::Pending, 0, None, Some(0)),
        ]
    );
    assert_eq!(mem.pending(), 1);

    mem.finish("e1", "b", &Finish::Delivered, 10);
    assert!(mem.store.show("e1").unwrap().is_none());
    assert_eq!(mem.ids(&ListFilter::default(), 10), Vec::<String>::new());
    assert_eq!(mem.pending(), 0);
    // A late or repeated finish of a forgotten event changes nothing.
    mem.finish("e1", "b", &Finish::Delivered, 11);
    assert_eq!(mem.pending(), 0);

    assert_eq!(
        mem.insert(&event("e2", "github", "d1"), Some(&r), 20),
        duplicate("e1")
    );
    assert_eq!(mem.pending(), 0);
}

#[test]
fn retry_is_due_at_its_time_with_the_attempt_and_error_kept() {
    let mem = Fixture::new(10);
    let r = routes(&["a"]);
    mem.insert(&event("e1", "github", "d1"), Some(&r), 0);
    mem.claim_all(0);
    mem.finish(
        "e1",
        "a",
        &Finish::Retry {
            at: 50,
            error: "boom".into(),
        },
        10,
    );
    assert_eq!(mem.status("e1"), Some(DeliveryStatus::Pending));
    assert_eq!(
        mem.deliveries("e1"),
        [record(
            "a",
            DeliveryStatus::Pending,
            1,
            Some("boom"),
            Some(50)
        )]
    );
    assert_eq!(mem.pending(), 1);

    let early = mem.store.claim(&all, 49);
    assert_eq!(work(&early), owned(&[]));
    assert_eq!(early.next_due, Some(50));
    assert_eq!(mem.claim_all(50), owned(&[("e1", "a", 1)]));

    mem.finish(
        "e1",
        "a",
        &Finish::Retry {
            at: 90,
            error: "boom again".into(),
        },
        60,
    );
    assert_eq!(
        mem.deliveries("e1"),
        [record(
            "a",
            DeliveryStatus::Pending,
            2,
            Some("boom again"),
            Some(90)
        )]
    );
    assert_eq!(mem.claim_all(90), owned(&[("e1", "a", 2)]));
    mem.finish("e1", "a", &Finish::Delivered, 95);
    assert!(mem.store.show("e1").unwrap().is_none());
    assert_eq!(mem.pending(), 0);
}

#[test]
fn dead_delivery_keeps_the_event_listed_as_dead() {
    let mem = Fixture::new(10);
    let r = routes(&["a", "b"]);
    mem.insert(&event("e1", "github", "d1"), Some(&r), 0);
    mem.claim_all(0);
    mem.finish(
        "e1",
        "b",
        &Finish::Dead {
            error: "gone".into(),
        },
        10,
    );
    assert_eq!(
        mem.status("e1"),
        Some(DeliveryStatus::Pending),
        "a is still in flight"
    );
    assert_eq!(mem.pending(), 1);
    mem.finish("e1", "a", &Finish::Delivered, 10);

    assert_eq!(mem.status("e1"), Some(DeliveryStatus::Dead));
    assert_eq!(
        mem.deliveries("e1"),
        [
            record("a", DeliveryStatus::Delivered, 1, None, None),
            record("b", DeliveryStatus::Dead, 1, Some("gone"), None),
        ]
    );
    let dead = ListFilter {
        status: Some(DeliveryStatus::Dead),
        ..ListFilter::default()
    };
    assert_eq!(mem.ids(&dead, 10), ["e1"]);
    assert_eq!(mem.pending(), 0);
    let claimed = mem.store.claim(&all, 1_000);
    assert_eq!(work(&claimed), owned(&[]));
    assert_eq!((claimed.next_due, claimed.more), (None, false));
}

#[test]
fn release_makes_a_delivery_due_again_without_counting_an_attempt() {
    let mem = Fixture::new(10);
    let r = routes(&["a"]);
    mem.insert(&event("e1", "github", "d1"), Some(&r), 0);
    assert_eq!(mem.claim_all(0), owned(&[("e1", "a", 0)]));
    mem.finish("e1", "a", &Finish::Release, 30);
    assert_eq!(
        mem.deliveries("e1"),
        [record("a", DeliveryStatus::Pending, 0, None, Some(0))]
    );
    assert_eq!(mem.pending(), 1);
    assert_eq!(mem.claim_all(30), owned(&[("e1", "a", 0)]));

    // A retried delivery released keeps its attempts and error, and is due at once.
    mem.finish(
        "e1",
        "a",
        &Finish::Retry {
            at: 50,
            error: "boom".into(),
        },
        40,
    );
    assert_eq!(mem.claim_all(50), owned(&[("e1", "a", 1)]));
    mem.finish("e1", "a", &Finish::Release, 70);
    assert_eq!(
        mem.deliveries("e1"),
        [record(
            "a",
            DeliveryStatus::Pending,
            1,
            Some("boom"),
            Some(50)
        )]
    );
    assert_eq!(mem.claim_all(70), owned(&[("e1", "a", 1)]));
    assert_eq!(mem.pending(), 1);
}

#[test]
fn finish_of_a_delivery_not_in_flight_changes_nothing() {
    let mem = Fixture::new(10);
    let r = routes(&["a"]);
    mem.insert(&event("e1", "github", "d1"), Some(&r), 0);
    // Pending, never claimed.
    mem.finish("e1", "a", &Finish::Delivered, 5);
    mem.finish("e1", "nobody", &Finish::Delivered, 5);
    assert_eq!(
        mem.deliveries("e1"),
        [record("a", DeliveryStatus::Pending, 0, None, Some(0))]
    );
    assert_eq!(mem.pending(), 1);
    assert_eq!(mem.claim_all(5), owned(&[("e1", "a", 0)]));
}

#[test]
fn replay_dead_requeues_only_dead_deliveries() {
    let mem = Fixture::new(10);
    let r = routes(&["a", "b"]);
    mem.insert(&event("e1", "github", "d1"), Some(&r), 0);
    mem.claim_all(0);
    mem.finish("e1", "a", &Finish::Delivered, 10);
    mem.finish(
        "e1",
        "b",
        &Finish::Dead {
            error: "boom".into(),
        },
        10,
    );
    assert_eq!(mem.status("e1"), Some(DeliveryStatus::Dead));
    assert_eq!(mem.pending(), 0);

    assert_eq!(mem.store.replay(&mem.shared, &ReplaySelector::Dead, 20), 1);
    assert_eq!(mem.status("e1"), Some(DeliveryStatus::Pending));
    assert_eq!(
        mem.deliveries("e1"),
        [
            record("a", DeliveryStatus::Delivered, 1, None, None),
            record("b", DeliveryStatus::Pending, 0, None, Some(20)),
        ]
    );
    assert_eq!(mem.pending(), 1);
    assert_eq!(
        mem.claim_all(20),
        owned(&[("e1", "b", 0)]),
        "only the dead delivery is replayed"
    );
    assert_eq!(mem.store.replay(&mem.shared, &ReplaySelector::Dead, 30), 0);
    assert_eq!(
        mem.store
            .replay(&mem.shared, &ReplaySelector::Id("nope".into()), 30),
        0
    );
    assert_eq!(mem.pending(), 1);
}

#[test]
fn replay_by_id_requeues_every_delivery_but_those_in_flight() {
    let mem = Fixture::new(10);
    let r = routes(&["a", "b", "c"]);
    mem.insert(&event("e1", "github", "d1"), Some(&r), 0);
    mem.claim_all(0);
    mem.finish("e1", "a", &Finish::Delivered, 10);
    mem.finish("e1", "b", &Finish::Dead { error: "x".into() }, 10);
    // c stays in flight.
    assert_eq!(
        mem.store
            .replay(&mem.shared, &ReplaySelector::Id("e1".into()), 20),
        1
    );
    assert_eq!(
        mem.deliveries("e1"),
        [
            record("a", DeliveryStatus::Pending, 0, None, Some(20)),
            record("b", DeliveryStatus::Pending, 0, None, Some(20)),
            record("c", DeliveryStatus::Pending, 0, None, Some(0)),
        ]
    );
    assert_eq!(mem.pending(), 1);
    assert_eq!(
        mem.claim_all(20),
        owned(&[("e1", "a", 0), ("e1", "b", 0)]),
        "c is still in flight: not handed out twice"
    );
}

#[test]
fn replay_dead_leaves_other_pending_deliveries_at_their_due_time() {
    let mem = Fixture::new(10);
    let r = routes(&["a", "b"]);
    mem.insert(&event("e1", "github", "d1"), Some(&r), 0);
    mem.claim_all(0);
    mem.finish("e1", "a", &Finish::Dead { error: "x".into() }, 10);
    mem.finish(
        "e1",
        "b",
        &Finish::Retry {
            at: 500,
            error: "y".into(),
        },
        10,
    );
    assert_eq!(mem.store.replay(&mem.shared, &ReplaySelector::Dead, 20), 1);
    assert_eq!(
        mem.deliveries("e1"),
        [
            record("a", DeliveryStatus::Pending, 0, None, Some(20)),
            record("b", DeliveryStatus::Pending, 1, Some("y"), Some(500)),
        ]
    );
    let claimed = mem.store.claim(&all, 20);
    assert_eq!(
        work(&claimed),
        owned(&[("e1", "a", 0)]),
        "b is not due before 500"
    );
    assert_eq!(claimed.next_due, Some(500));
    assert_eq!(mem.claim_all(500), owned(&[("e1", "b", 1)]));
    assert_eq!(
        mem.claim_all(500),
        owned(&[]),
        "b in flight is not handed out twice"
    );
}

#[test]
fn unrouted_events_wait_for_routes() {
    let mem = Fixture::new(10);
    mem.insert(&event("e1", "github", "d1"), None, 0);
    mem.insert(&event("e2", "stripe", "d2"), None, 0);
    assert_eq!(mem.pending(), 2);
    assert_eq!(mem.status("e1"), Some(DeliveryStatus::Pending));
    assert_eq!(mem.deliveries("e1"), []);
    assert_eq!(mem.claim_all(0), owned(&[]));

    let r = handler_route("github", "gh");
    assert_eq!(mem.store.route_unrouted(&mem.shared, &r, 5), 2);
    assert_eq!(mem.status("e1"), Some(DeliveryStatus::Pending));
    assert_eq!(
        mem.deliveries("e1"),
        [record("gh", DeliveryStatus::Pending, 0, None, Some(5))]
    );
    assert!(
        mem.store.show("e2").unwrap().is_none(),
        "no route matches: delivered, so forgotten"
    );
    assert_eq!(mem.pending(), 1);
    assert_eq!(mem.store.route_unrouted(&mem.shared, &r, 6), 0);
    assert_eq!(mem.claim_all(5), owned(&[("e1", "gh", 0)]));
    assert_eq!(
        mem.insert(&event("e3", "stripe", "d2"), Some(&r), 7),
        duplicate("e2"),
        "the forgotten event's delivery id is still remembered"
    );
}

#[test]
fn an_event_no_route_wants_is_delivered_at_once() {
    let mem = Fixture::new(10);
    let r = routes(&[]);
    let inserted = mem
        .try_insert(&event("e1", "github", "d1"), Some(&r), 0, &|_| true)
        .unwrap();
    assert_eq!(inserted.published, accepted("e1"));
    assert!(inserted.taken.is_empty());
    assert!(!inserted.left_pending);
    assert!(mem.store.show("e1").unwrap().is_none());
    assert_eq!(mem.pending(), 0);
    assert_eq!(
        mem.insert(&event("e2", "github", "d1"), Some(&r), 1),
        duplicate("e1")
    );
}

#[test]
fn list_filters_newest_first_and_honours_the_limit() {
    let mem = Fixture::new(10);
    let r = routes(&["a"]);
    for (i, (handler, event_type)) in [
        ("github", "push"),
        ("stripe", "invoice.paid"),
        ("github", "issues"),
        ("github", "push"),
    ]
    .into_iter()
    .enumerate()
    {
        let n = i64::try_from(i).unwrap() + 1;
        let id = format!("e{n}");
        let ev = event_at(&id, handler, event_type, &id, n * 1_000);
        // e3 alone goes straight in flight, to be dead-lettered below.
        mem.try_insert(&ev, Some(&r), n * 1_000, &|_| id == "e3")
            .unwrap();
    }
    mem.finish("e3", "a", &Finish::Dead { error: "x".into() }, 5_000);

    let check = |filter: ListFilter, expected: &[&str]| {
        assert_eq!(mem.ids(&filter, 5_000), expected, "{filter:?}");
    };
    let every = ListFilter::default;
    check(every(), &["e4", "e3", "e2", "e1"]);
    check(
        ListFilter {
            handler: Some("github".into()),
            ..every()
        },
        &["e4", "e3", "e1"],
    );
    check(
        ListFilter {
            event_type: Some("push".into()),
            ..every()
        },
        &["e4", "e1"],
    );
    check(
        ListFilter {
            status: Some(DeliveryStatus::Dead),
            ..every()
        },
        &["e3"],
    );
    check(
        ListFilter {
            status: Some(DeliveryStatus::Pending),
            ..every()
        },
        &["e4", "e2", "e1"],
    );
    check(
        ListFilter {
            status: Some(DeliveryStatus::Delivered),
            ..every()
        },
        &[],
    );
    check(
        ListFilter {
            limit: 2,
            ..every()
        },
        &["e4", "e3"],
    );
    check(
        ListFilter {
            limit: 0,
            ..every()
        },
        &[],
    );
    check(
        ListFilter {
            handler: Some("github".into()),
            status: Some(DeliveryStatus::Pending),
            limit: 1,
            ..every()
        },
        &["e4"],
    );
    check(
        ListFilter {
            since: Some(Duration::from_secs(2)),
            ..every()
        },
        &["e4", "e3"],
    );
    check(
        ListFilter {
            handler: Some("gitlab".into()),
            ..every()
        },
        &[],
    );
}

/// A dedup entry keeps a canonical UUID in 16 bytes and any other id as text; each reads back as
/// the id it was made from.
#[test]
fn dedup_entries_give_back_the_event_id_they_were_made_from() {
    let ids = [
        "0190f5c2-7d4e-7abc-8def-0123456789ab",
        "0190F5C2-7D4E-7ABC-8DEF-0123456789AB",
        "0190f5c27d4e7abc8def0123456789ab",
        "{0190f5c2-7d4e-7abc-8def-0123456789ab}",
        "e1",
        "",
    ];
    for id in ids {
        let kept = EventRef::new(id);
        assert_eq!(kept.to_string(), id);
        assert_eq!(matches!(kept, EventRef::Uuid(_)), id == ids[0], "{id}");
    }
    assert!(std::mem::size_of::<EventRef>() <= 24);
}
