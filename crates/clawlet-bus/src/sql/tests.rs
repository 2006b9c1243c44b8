use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::Connection;

use super::codec::{Codec, STREAM_ENVELOPE_BYTES};
use super::schema::{SCHEMA_VERSION, schema_version};
use super::*;
use crate::dedup::{Dedup, dedup_key};
use crate::spec::{Routes, handler_route, log_routes as routes};
use crate::store::{Claimed, Finish, Inserted, Payload, Placement};
use crate::{DeliveryStatus, ListFilter, Published, ReplaySelector};

const WINDOW_MS: i64 = 60_000;

/// A journal connection with the dedup index its writer would keep.
struct Db {
    conn: Connection,
    dedup: std::cell::RefCell<Dedup>,
}

impl std::ops::Deref for Db {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl Db {
    fn open(conn: Connection) -> Self {
        configure(&conn).unwrap();
        Self {
            conn,
            dedup: std::cell::RefCell::default(),
        }
    }

    /// [`insert_event_placing`] with this journal's index.
    fn place(
        &self,
        ev: &NewEvent,
        routes: Option<&Routes>,
        limits: &InsertLimits<'_>,
        now: i64,
        place: &dyn Fn(&str) -> Placement,
    ) -> Result<Inserted, BusError> {
        let mut dedup = self.dedup.borrow_mut();
        insert_event_placing(&self.conn, &mut dedup, ev, routes, limits, now, place)
    }
}

fn db() -> Db {
    Db::open(Connection::open_in_memory().unwrap())
}

fn event(id: &str, handler: &str, delivery: &str, received_at: i64) -> NewEvent {
    let json = clawlet_events::EnvelopeJson::from(format!(
        r#"{{"id":"{id}","handler":"{handler}","source":"github","type":"push","action":null,"delivery_id":"{delivery}","received_at":"2026-01-01T00:00:00Z","summary":"s","headers":{{}},"payload":{{}}}}"#
    ));
    NewEvent {
        id: id.to_owned(),
        handler: handler.to_owned(),
        source: "github",
        event_type: "push".to_owned(),
        action: None,
        delivery_id: delivery.to_owned(),
        received_at,
        packed: Codec::pack(&json),
        json,
        dedup_key: dedup_key(handler, delivery),
    }
}

/// Room for ten pending events, a dedup window of [`WINDOW_MS`].
fn limits(pending: &AtomicU64) -> InsertLimits<'_> {
    InsertLimits {
        pending,
        max_pending: 10,
        dedup_window_ms: WINDOW_MS,
        retry_after: Duration::from_secs(1),
    }
}

fn insert(
    conn: &Db,
    pending: &AtomicU64,
    ev: &NewEvent,
    routes: Option<&Routes>,
    now: i64,
) -> Published {
    let mut dedup = conn.dedup.borrow_mut();
    insert_event(conn, &mut dedup, ev, routes, &limits(pending), now).unwrap()
}

/// The agents of the deliveries a claim at `now` hands out, in its order.
fn claimed_agents(conn: &Connection, now: i64) -> Vec<String> {
    claim(conn, &all, now)
        .unwrap()
        .work
        .into_iter()
        .map(|w| w.agent)
        .collect()
}

fn state(conn: &Connection, id: &str) -> String {
    conn.query_row("SELECT state FROM events WHERE id = ?1", [id], |r| r.get(0))
        .unwrap()
}

fn all(_: &str) -> usize {
    100
}

#[test]
fn dedup_window_is_measured_from_first_sight() {
    let conn = db();
    let pending = AtomicU64::new(0);
    let check = |id: &str, now: i64, expected: Published| {
        assert_eq!(
            insert(&conn, &pending, &event(id, "github", "d", 0), None, now),
            expected,
            "{id} at {now}"
        );
    };
    check(
        "e1",
        1_000,
        Published::Accepted {
            event_id: "e1".into(),
        },
    );
    check(
        "e2",
        1_000 + WINDOW_MS,
        Published::Duplicate {
            event_id: "e1".into(),
        },
    );
    check(
        "e3",
        1_001 + WINDOW_MS,
        Published::Accepted {
            event_id: "e3".into(),
        },
    );
    check(
        "e4",
        1_002 + WINDOW_MS,
        Published::Duplicate {
            event_id: "e3".into(),
        },
    );
    assert_eq!(pending.load(Ordering::Relaxed), 2);
}

#[test]
fn full_is_checked_after_dedup() {
    let conn = db();
    let pending = AtomicU64::new(10);
    insert(
        &conn,
        &AtomicU64::new(0),
        &event("e1", "github", "d", 0),
        None,
        0,
    );
    // A duplicate is answered even when full, so that the sender stops retrying.
    assert_eq!(
        insert(&conn, &pending, &event("e2", "github", "d", 0), None, 1),
        Published::Duplicate {
            event_id: "e1".into()
        }
    );
    let limits = InsertLimits {
        pending: &pending,
        max_pending: 10,
        dedup_window_ms: WINDOW_MS,
        retry_after: Duration::from_secs(3),
    };
    let err = conn
        .place(
            &event("e3", "github", "other", 0),
            None,
            &limits,
            1,
            &|_| Placement::Pending,
        )
        .unwrap_err();
    assert!(matches!(err, BusError::Full { retry_after } if retry_after == Duration::from_secs(3)));
}

#[test]
fn event_state_follows_its_deliveries() {
    let conn = db();
    let pending = AtomicU64::new(0);
    let r = routes(&["a", "b"]);
    insert(
        &conn,
        &pending,
        &event("e1", "github", "d1", 0),
        Some(&r),
        0,
    );
    assert_eq!(pending.load(Ordering::Relaxed), 1);
    let Claimed { work, .. } = claim(&conn, &all, 0).unwrap();
    assert_eq!(
        work.iter().map(|w| w.agent.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );

    let steps: &[(&str, Finish, &str, u64)] = &[
        ("a", Finish::Delivered, "pending", 1),
        (
            "b",
            Finish::Retry {
                at: 50,
                error: "boom".into(),
            },
            "pending",
            1,
        ),
        (
            "b",
            Finish::Dead {
                error: "boom again".into(),
            },
            "dead",
            0,
        ),
    ];
    for (agent, outcome, expected, expected_pending) in steps {
        finish(&conn, "e1", agent, outcome, Some(&pending), 10).unwrap();
        assert_eq!(state(&conn, "e1"), *expected, "after {agent} {outcome:?}");
        assert_eq!(
            pending.load(Ordering::Relaxed),
            *expected_pending,
            "after {agent} {outcome:?}"
        );
    }
    let stored = show(&conn, "e1").unwrap().unwrap();
    assert_eq!(stored.status, DeliveryStatus::Dead);
    let b = &stored.deliveries[1];
    assert_eq!(
        (
            b.agent.as_str(),
            b.status,
            b.attempts,
            b.last_error.as_deref()
        ),
        ("b", DeliveryStatus::Dead, 2, Some("boom again"))
    );

    assert_eq!(
        replay(&conn, &ReplaySelector::Dead, Some(&pending), 20).unwrap(),
        1
    );
    assert_eq!(state(&conn, "e1"), "pending");
    assert_eq!(pending.load(Ordering::Relaxed), 1);
    let Claimed { work, .. } = claim(&conn, &all, 20).unwrap();
    assert_eq!(work.len(), 1, "only the dead delivery is replayed");
    assert_eq!((work[0].agent.as_str(), work[0].attempts), ("b", 0));
}

#[test]
fn claim_respects_per_agent_limits_and_due_times() {
    let conn = db();
    let pending = AtomicU64::new(0);
    let r = routes(&["slow", "fast"]);
    for i in 0..3 {
        insert(
            &conn,
            &pending,
            &event(&format!("e{i}"), "github", &format!("d{i}"), 0),
            Some(&r),
            100,
        );
    }
    let limit = |agent: &str| if agent == "slow" { 1 } else { 5 };
    let Claimed { work, .. } = claim(&conn, &limit, 100).unwrap();
    let count = |name: &str| work.iter().filter(|w| w.agent == name).count();
    assert_eq!((count("slow"), count("fast")), (1, 3));
    let Claimed { work: again, .. } = claim(&conn, &all, 100).unwrap();
    assert_eq!(again.len(), 2, "claimed rows are not handed out twice");
    finish(
        &conn,
        "e0",
        "fast",
        &Finish::Retry {
            at: 500,
            error: "x".into(),
        },
        None,
        100,
    )
    .unwrap();
    let Claimed {
        work: none,
        next_due: next,
        ..
    } = claim(&conn, &all, 100).unwrap();
    assert!(none.is_empty());
    assert_eq!(next, Some(500));
    let Claimed { work: due, .. } = claim(&conn, &all, 500).unwrap();
    assert_eq!(due.len(), 1);
}

#[test]
fn interrupted_deliveries_are_due_again_after_restart() {
    let conn = db();
    let pending = AtomicU64::new(0);
    insert(
        &conn,
        &pending,
        &event("e1", "github", "d1", 0),
        Some(&routes(&["a"])),
        0,
    );
    assert_eq!(claim(&conn, &all, 0).unwrap().work.len(), 1);
    assert_eq!(claim(&conn, &all, 0).unwrap().work.len(), 0);
    assert_eq!(reset_inflight(&conn).unwrap(), 1);
    assert_eq!(claim(&conn, &all, 0).unwrap().work.len(), 1);
}

/// A delivery handed to the dispatcher at publish is in flight in the same transaction: no claim
/// hands it out a second time, and after a crash it is due again like any interrupted one.
#[test]
fn deliveries_taken_at_insert_are_in_flight_until_a_restart() {
    let conn = db();
    let pending = AtomicU64::new(0);
    let limits = limits(&pending);
    let r = routes(&["a", "b"]);
    let inserted = conn
        .place(
            &event("e1", "github", "d1", 0),
            Some(&r),
            &limits,
            0,
            &Placement::taking(|agent| agent == "a"),
        )
        .unwrap();
    assert_eq!(inserted.taken, ["a"]);
    assert!(inserted.left_pending);
    assert_eq!(pending.load(Ordering::Relaxed), 1);
    assert_eq!(state(&conn, "e1"), "pending");

    assert_eq!(
        claimed_agents(&conn, 0),
        ["b"],
        "the taken delivery is not claimable"
    );

    assert_eq!(reset_inflight(&conn).unwrap(), 2);
    let mut again = claimed_agents(&conn, 0);
    again.sort();
    assert_eq!(again, ["a", "b"]);

    // A duplicate takes nothing.
    let dup = conn
        .place(
            &event("e2", "github", "d1", 0),
            Some(&r),
            &limits,
            1,
            &Placement::taking(|_| true),
        )
        .unwrap();
    assert!(dup.taken.is_empty() && !dup.left_pending);
}

/// Publish delivered to `a` itself (a log line): its row is written delivered after one attempt
/// and never claimed; an event whose every delivery was made is delivered and not pending.
#[test]
fn deliveries_made_at_insert_are_recorded_delivered() {
    let conn = db();
    let pending = AtomicU64::new(0);
    let limits = limits(&pending);
    let r = routes(&["a", "b"]);
    let rows = |id: &str| -> Vec<(String, String, u32)> {
        conn.prepare(
            "SELECT agent, status, attempts FROM deliveries WHERE event_id = ?1 ORDER BY agent",
        )
        .unwrap()
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    };
    let one = conn
        .place(
            &event("e1", "github", "d1", 0),
            Some(&r),
            &limits,
            0,
            &Placement::made_for("a"),
        )
        .unwrap();
    assert!(one.taken.is_empty() && one.left_pending);
    assert_eq!(state(&conn, "e1"), "pending");
    assert_eq!(pending.load(Ordering::Relaxed), 1);
    assert_eq!(
        rows("e1"),
        [
            ("a".to_owned(), "delivered".to_owned(), 1),
            ("b".to_owned(), "pending".to_owned(), 0)
        ]
    );
    assert_eq!(claimed_agents(&conn, 0), ["b"]);

    let both = conn
        .place(
            &event("e2", "github", "d2", 0),
            Some(&r),
            &limits,
            0,
            &|_| Placement::Delivered,
        )
        .unwrap();
    assert!(both.taken.is_empty() && !both.left_pending);
    assert_eq!(state(&conn, "e2"), "delivered");
    assert_eq!(
        pending.load(Ordering::Relaxed),
        1,
        "only e1 is still pending"
    );
    assert!(claim(&conn, &all, 0).unwrap().work.is_empty());
}

/// An envelope past the streaming size is written into its row in place; every reader gets the
/// same JSON back as text.
#[test]
fn a_large_envelope_reads_back_as_it_was_written() {
    let conn = db();
    let pad = "x".repeat(STREAM_ENVELOPE_BYTES);
    let ev = event_with_payload(&format!(r#"{{"pad":"{pad}"}}"#));
    assert!(ev.json.len() > STREAM_ENVELOPE_BYTES);
    assert_eq!(ev.json.pieces().count(), 3, "written piece by piece");
    assert_eq!(
        store_and_read_back(&conn, &ev),
        (Codec::Raw as i64, ev.json.len()),
        "written in place as it is, however well it would compress"
    );
}

/// A push-sized envelope is stored as an LZ4 block, a good deal shorter than its JSON.
#[test]
fn a_compressible_envelope_is_stored_compressed() {
    let conn = db();
    let commits: Vec<String> = (0..40)
        .map(|i| {
            format!(
                r#"{{"id":"{i:040x}","url":"https://github.com/octo-org/repo/commit/{i:040x}"}}"#
            )
        })
        .collect();
    let ev = event_with_payload(&format!(r#"{{"commits":[{}]}}"#, commits.join(",")));
    let (codec, stored) = store_and_read_back(&conn, &ev);
    assert_eq!(codec, Codec::Lz4 as i64);
    assert!(
        stored * 2 < ev.json.len(),
        "{stored} of {} bytes",
        ev.json.len()
    );
}

/// An envelope that compression would shorten by less than an eighth is stored as it is.
#[test]
fn an_incompressible_envelope_is_stored_as_it_is() {
    let conn = db();
    // Hex digits of a pseudo-random sequence: LZ4 finds no repeats to shorten.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: String = (0..64)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            format!("{x:016x}")
        })
        .collect();
    let ev = event_with_payload(&format!(r#"{{"n":"{noise}"}}"#));
    assert_eq!(
        store_and_read_back(&conn, &ev),
        (Codec::Raw as i64, ev.json.len())
    );
}

/// A damaged row is an error for the reader, not a panic or a huge allocation.
#[test]
fn a_damaged_envelope_is_refused() {
    let conn = db();
    insert(
        &conn,
        &AtomicU64::new(0),
        &event("e1", "github", "d1", 0),
        None,
        0,
    );
    let damage = |envelope: &[u8], codec: i64| {
        conn.execute(
            "UPDATE envelopes SET envelope = ?1, codec = ?2",
            params![envelope, codec],
        )
        .unwrap();
        show(&conn, "e1").unwrap_err().to_string()
    };
    let huge = [&u32::MAX.to_le_bytes()[..], b"\x00"].concat();
    assert!(damage(&huge, Codec::Lz4 as i64).contains("claims 4294967295 bytes"));
    assert!(damage(b"\x10\x00\x00\x00\xff", Codec::Lz4 as i64).contains("damaged envelope"));
    assert!(damage(b"{}", 7).contains("unknown codec 7"));
    assert!(damage(b"\xff\xfe", Codec::Raw as i64).contains("not UTF-8"));
}

/// A claim that meets a damaged envelope hands its delivery out as damaged (to go dead) and
/// still hands out the others: one bad row must not stop every claim.
#[test]
fn a_claim_hands_out_a_damaged_envelope_beside_the_others() {
    let conn = db();
    let pending = AtomicU64::new(0);
    let r = routes(&["a"]);
    insert(
        &conn,
        &pending,
        &event("e1", "github", "d1", 0),
        Some(&r),
        0,
    );
    insert(
        &conn,
        &pending,
        &event("e2", "github", "d2", 1),
        Some(&r),
        1,
    );
    conn.execute(
        "UPDATE envelopes SET envelope = ?1, codec = ?2 WHERE seq = 1",
        params![&b"\x10\x00\x00\x00\xff"[..], Codec::Lz4 as i64],
    )
    .unwrap();
    let mut work = claim(&conn, &all, 5).unwrap().work;
    work.sort_by(|a, b| a.event_id.cmp(&b.event_id));
    match &work[..] {
        [damaged, good] => {
            assert_eq!(damaged.event_id, "e1");
            assert!(
                matches!(&damaged.payload, Payload::Damaged(e) if e.contains("damaged envelope")),
                "{:?}",
                damaged.payload
            );
            assert!(
                matches!(&good.payload, Payload::Stored(json) if json.text().contains(r#""id":"e2""#))
            );
        }
        other => panic!("claimed {other:?}"),
    }
}

/// An event whose payload is `payload`.
fn event_with_payload(payload: &str) -> NewEvent {
    let mut ev = event("e1", "github", "d1", 0);
    let mut envelope: clawlet_events::Envelope = serde_json::from_str(&ev.json.text()).unwrap();
    envelope.payload = clawlet_events::Payload::from_json(payload).unwrap();
    let json = envelope.json_pieces().unwrap();
    // Joined below the streaming size, as publishing does; a large one stays in pieces.
    let json = if json.len() < STREAM_ENVELOPE_BYTES {
        json.join()
    } else {
        json
    };
    ev.packed = Codec::pack(&json);
    ev.json = json;
    ev
}

/// Stores `ev` routed to one agent, checks that show, list and claim return its JSON unchanged,
/// and returns its row's codec and stored length.
fn store_and_read_back(conn: &Db, ev: &NewEvent) -> (i64, usize) {
    insert(conn, &AtomicU64::new(0), ev, Some(&routes(&["a"])), 0);
    let shown = show(conn, &ev.id).unwrap().unwrap();
    assert_eq!(
        serde_json::to_string(&shown.envelope).unwrap(),
        *ev.json.text(),
        "show"
    );
    let listed = list(conn, &ListFilter::default(), 0).unwrap();
    assert_eq!(listed.len(), 1);
    let work = claim(conn, &all, 0).unwrap().work;
    match &work[..] {
        [w] => match &w.payload {
            Payload::Stored(json) => assert_eq!(json, &ev.json, "claim"),
            other => panic!("a claim reads the journal, and gave {other:?}"),
        },
        other => panic!("claimed {other:?}"),
    }
    conn.query_row("SELECT codec, length(envelope) FROM envelopes", [], |r| {
        Ok((r.get(0)?, r.get::<_, i64>(1)? as usize))
    })
    .unwrap()
}

#[test]
fn unrouted_events_wait_for_routes() {
    let conn = db();
    let pending = AtomicU64::new(0);
    insert(&conn, &pending, &event("e1", "github", "d1", 0), None, 0);
    insert(&conn, &pending, &event("e2", "stripe", "d2", 0), None, 0);
    assert_eq!(claim(&conn, &all, 0).unwrap().work.len(), 0);
    let r = handler_route("github", "gh");
    assert_eq!(route_unrouted(&conn, &r, Some(&pending), 0).unwrap(), 2);
    assert_eq!(state(&conn, "e1"), "pending");
    assert_eq!(
        state(&conn, "e2"),
        "delivered",
        "no route matches: nothing to deliver"
    );
    assert_eq!(pending.load(Ordering::Relaxed), 1);
    assert_eq!(route_unrouted(&conn, &r, Some(&pending), 0).unwrap(), 0);
}

/// Pruning deletes delivered events past retention, and keeps dead and pending ones. A deleted
/// event's delivery id moves to the `dedup` table, where a journal opened later finds it, until
/// its window ends.
#[test]
fn prune_keeps_dead_and_pending_events_and_the_ids_of_deleted_ones() {
    let conn = db();
    let pending = AtomicU64::new(0);
    let r = routes(&["a"]);
    let day = 86_400_000;
    for (id, received) in [
        ("old-delivered", 0),
        ("old-dead", 0),
        ("old-pending", 0),
        ("new-delivered", 9 * day),
    ] {
        insert(
            &conn,
            &pending,
            &event(id, "github", id, received),
            Some(&r),
            9 * day,
        );
    }
    claim(&conn, &all, 9 * day).unwrap();
    for (id, outcome) in [
        ("old-delivered", Finish::Delivered),
        ("old-dead", Finish::Dead { error: "x".into() }),
        ("new-delivered", Finish::Delivered),
    ] {
        finish(&conn, id, "a", &outcome, None, 9 * day).unwrap();
    }
    finish(&conn, "old-pending", "a", &Finish::Release, None, 9 * day).unwrap();
    let kept = |conn: &Db| -> Vec<(String, i64)> {
        conn.prepare("SELECT delivery_id, first_seen FROM dedup")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert!(
        kept(&conn).is_empty(),
        "stored events' ids stay in `events`"
    );
    let n = prune(
        &conn,
        Duration::from_secs(7 * 86_400),
        Duration::from_secs(10 * 86_400),
        10 * day,
    )
    .unwrap();
    assert_eq!(n, 1);
    let left: Vec<String> = list(&conn, &ListFilter::default(), 10 * day)
        .unwrap()
        .into_iter()
        .map(|e| e.envelope.id)
        .collect();
    assert_eq!(left.len(), 3);
    assert!(!left.contains(&"old-delivered".to_owned()));
    assert_eq!(
        kept(&conn),
        [("old-delivered".to_owned(), 0)],
        "first seen when received, still inside the window"
    );
    let loaded = load_dedup(&conn, 0).unwrap();
    assert_eq!(loaded.len(), 4);
    for id in ["old-delivered", "old-dead", "new-delivered"] {
        assert_eq!(
            loaded
                .get(&dedup_key("github", id))
                .map(|e| e.to_string())
                .as_deref(),
            Some(id)
        );
    }

    prune(
        &conn,
        Duration::from_secs(7 * 86_400),
        Duration::from_secs(3600),
        10 * day,
    )
    .unwrap();
    assert!(kept(&conn).is_empty());
    assert_eq!(
        load_dedup(&conn, 10 * day - 3_600_000).unwrap().len(),
        0,
        "every id is past the window"
    );
}

/// The index a journal opens with holds the ids of stored and of deleted events, each once, in
/// the order they were first seen, so that expiry ends exactly those past the window.
#[test]
fn the_dedup_index_is_loaded_oldest_first_from_both_tables() {
    let conn = db();
    let pending = AtomicU64::new(0);
    for (id, received) in [("s1", 10), ("s2", 30), ("s3", 50)] {
        insert(
            &conn,
            &pending,
            &event(id, "github", id, received),
            None,
            received,
        );
    }
    // Ids of deleted events, one of them also still stored (as version 3 wrote every id).
    for (id, seen) in [("k1", 20), ("k2", 40), ("s3", 50)] {
        conn.execute(
            "INSERT INTO dedup (handler, delivery_id, event_id, first_seen) VALUES ('github', ?1, ?1, ?2)",
            params![id, seen],
        )
        .unwrap();
    }
    let mut loaded = load_dedup(&conn, 0).unwrap();
    assert_eq!(loaded.len(), 5);
    let held = |dedup: &Dedup| -> Vec<&str> {
        ["s1", "k1", "s2", "k2", "s3"]
            .into_iter()
            .filter(|id| dedup.get(&dedup_key("github", id)).is_some())
            .collect()
    };
    for (cutoff, left) in [
        (11, vec!["k1", "s2", "k2", "s3"]),
        (21, vec!["s2", "k2", "s3"]),
        (41, vec!["s3"]),
        (51, vec![]),
    ] {
        loaded.expire(cutoff);
        assert_eq!(held(&loaded), left, "cutoff {cutoff}");
    }
    assert_eq!(
        load_dedup(&conn, 40).unwrap().len(),
        2,
        "only ids first seen at the cutoff or later"
    );
}

#[test]
fn a_journal_of_another_schema_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.sqlite");
    let old = Connection::open(&path).unwrap();
    old.execute_batch("CREATE TABLE events (id TEXT PRIMARY KEY, envelope TEXT NOT NULL);")
        .unwrap();
    drop(old);
    let conn = Connection::open(&path).unwrap();
    let err = configure(&conn).map_err(at_path(&path)).unwrap_err();
    let message = err
        .to_string()
        .replace(&path.display().to_string(), "[path]");
    insta::assert_snapshot!(message, @"journal storage error: journal [path]: written with schema version 1, but this build reads version 5; move the file (and its -wal and -shm files) aside to start a new journal");
    let tables: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 1, "nothing was created next to the old tables");
    assert_eq!(schema_version(&conn).unwrap(), 0);

    let fresh = db();
    configure(&fresh).unwrap();
    let version: i64 = fresh
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}

/// A version 2 journal (no `codec` column; envelopes as TEXT, or BLOB from 1 MiB) is migrated in
/// place when opened, and what it held reads back unchanged.
#[test]
fn a_version_2_journal_is_migrated_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.sqlite");
    let small = event("e1", "github", "d1", 0);
    let large = {
        let pad = "x".repeat(STREAM_ENVELOPE_BYTES);
        let mut ev = event_with_payload(&format!(r#"{{"pad":"{pad}"}}"#));
        ev.id = "e2".to_owned();
        ev.delivery_id = "d2".to_owned();
        ev.dedup_key = dedup_key("github", "d2");
        ev
    };
    {
        // The current version taken back to version 2: the column dropped, the envelopes stored
        // as that version wrote them.
        let conn = Db::open(Connection::open(&path).unwrap());
        let pending = AtomicU64::new(0);
        insert(&conn, &pending, &small, None, 0);
        insert(&conn, &pending, &large, None, 0);
        conn.execute(
            "UPDATE envelopes SET envelope = CAST(?1 AS TEXT) WHERE seq = 1",
            [small.json.text().as_ref()],
        )
        .unwrap();
        conn.execute_batch("ALTER TABLE envelopes DROP COLUMN codec; PRAGMA user_version = 2;")
            .unwrap();
    }
    let conn = Db::open(Connection::open(&path).unwrap());
    assert_eq!(schema_version(&conn).unwrap(), SCHEMA_VERSION);
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal", "a journal file is durable");
    for ev in [&small, &large] {
        let shown = show(&conn, &ev.id).unwrap().unwrap();
        assert_eq!(
            serde_json::to_string(&shown.envelope).unwrap(),
            *ev.json.text()
        );
    }
    // New events are written the current way beside the old ones.
    let third = event("e3", "github", "d3", 0);
    insert(&conn, &AtomicU64::new(0), &third, None, 0);
    assert!(show(&conn, "e3").unwrap().is_some());
    // Opening it again finds the current version and changes nothing.
    drop(conn);
    let again = Connection::open(&path).unwrap();
    configure(&again).unwrap();
    assert_eq!(list(&again, &ListFilter::default(), 0).unwrap().len(), 3);
}

/// A version 3 journal wrote every delivery id to `dedup`, beside its event: opened, it is marked
/// with the current version (which an older build refuses), and each id is loaded once.
#[test]
fn a_version_3_journal_is_migrated_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v3.sqlite");
    {
        let conn = Db::open(Connection::open(&path).unwrap());
        insert(
            &conn,
            &AtomicU64::new(0),
            &event("e1", "github", "d1", 5),
            None,
            5,
        );
        conn.execute_batch(
            "INSERT INTO dedup (handler, delivery_id, event_id, first_seen)
                 VALUES ('github', 'd1', 'e1', 5), ('github', 'd0', 'e0', 4);
             PRAGMA user_version = 3;",
        )
        .unwrap();
    }
    let conn = Db::open(Connection::open(&path).unwrap());
    assert_eq!(schema_version(&conn).unwrap(), SCHEMA_VERSION);
    let loaded = load_dedup(&conn, 0).unwrap();
    assert_eq!(loaded.len(), 2);
    for (delivery, id) in [("d0", "e0"), ("d1", "e1")] {
        assert_eq!(
            loaded
                .get(&dedup_key("github", delivery))
                .map(|e| e.to_string())
                .as_deref(),
            Some(id)
        );
    }
}

/// A new journal file gets 8 KiB pages, which three compressed push envelopes share; one made
/// before keeps the size it was made with.
#[test]
fn a_new_journal_file_has_8_kib_pages() {
    let dir = tempfile::tempdir().unwrap();
    let page_size = |conn: &Connection| -> i64 {
        conn.pragma_query_value(None, "page_size", |r| r.get(0))
            .unwrap()
    };
    let new = Db::open(Connection::open(dir.path().join("new.sqlite")).unwrap());
    insert(
        &new,
        &AtomicU64::new(0),
        &event("e1", "github", "d1", 0),
        None,
        0,
    );
    assert_eq!(page_size(&new), 8192);

    let path = dir.path().join("old.sqlite");
    {
        let old = Db::open(Connection::open(&path).unwrap());
        old.execute_batch("PRAGMA journal_mode = DELETE; PRAGMA page_size = 4096; VACUUM;")
            .unwrap();
        assert_eq!(page_size(&old), 4096);
    }
    let reopened = Db::open(Connection::open(&path).unwrap());
    assert_eq!(page_size(&reopened), 4096);
    insert(
        &reopened,
        &AtomicU64::new(0),
        &event("e2", "github", "d2", 0),
        None,
        0,
    );
    assert!(show(&reopened, "e2").unwrap().is_some());
}

/// A statement that fails halfway through an event (here the envelope's, as on a full disk) takes
/// the event's other rows back with it, and its delivery id is not recorded: the sender's retry
/// is stored, not answered as a duplicate of an event that is not there.
#[test]
fn an_event_is_stored_whole_or_not_at_all() {
    let conn = db();
    let pending = AtomicU64::new(0);
    conn.execute_batch(
        "BEGIN;
         CREATE TRIGGER full BEFORE INSERT ON envelopes BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
    )
    .unwrap();
    let err = conn
        .place(
            &event("e1", "github", "d1", 0),
            Some(&routes(&["a"])),
            &limits(&pending),
            0,
            &|_| Placement::Pending,
        )
        .unwrap_err();
    assert!(err.to_string().contains("disk full"), "{err}");
    let count = |table: &str| -> i64 {
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!((count("events"), count("deliveries")), (0, 0));
    assert_eq!(pending.load(Ordering::Relaxed), 0);
    // The batch's transaction goes on for the others.
    conn.execute_batch("DROP TRIGGER full;").unwrap();
    assert_eq!(
        insert(&conn, &pending, &event("e2", "github", "d1", 0), None, 1),
        Published::Accepted {
            event_id: "e2".into()
        }
    );
    conn.execute_batch("COMMIT;").unwrap();
    assert_eq!(count("events"), 1);
}

/// An event whose id is already stored is refused, and the stored one keeps its rows.
#[test]
fn an_event_refused_for_its_id_leaves_the_stored_one_alone() {
    let conn = db();
    let pending = AtomicU64::new(0);
    let r = routes(&["a"]);
    insert(
        &conn,
        &pending,
        &event("e1", "github", "d1", 0),
        Some(&r),
        0,
    );
    let err = conn
        .place(
            &event("e1", "github", "d2", 0),
            Some(&r),
            &limits(&pending),
            0,
            &|_| Placement::Pending,
        )
        .unwrap_err();
    assert!(err.to_string().contains("UNIQUE"), "{err}");
    let shown = show(&conn, "e1").unwrap().expect("e1 is still stored");
    assert_eq!(shown.envelope.delivery_id, "d1");
    assert_eq!(shown.deliveries.len(), 1);
}

/// Every listing the console makes, for each combination of filters (the delivery id aside,
/// which the dedup index answers), is served by an index: no plan scans `events` whole, and
/// none sorts all of it.
#[test]
fn console_listings_use_indexes() {
    use crate::admin::{EventCursor, EventQuery};
    let conn = db();
    for i in 0..50 {
        insert(
            &conn,
            &AtomicU64::new(0),
            &event(&format!("e{i}"), "github", &format!("d{i}"), i),
            None,
            i,
        );
    }
    // No ANALYZE: the daemon never runs it, so the planner goes by the schema alone.
    let cursor = EventCursor {
        received_at_ms: 25,
        id: "e25".to_owned(),
    };
    let statuses = [
        None,
        Some(DeliveryStatus::Pending),
        Some(DeliveryStatus::Delivered),
        Some(DeliveryStatus::Dead),
    ];
    for handler in [None, Some("github".to_owned())] {
        for event_type in [None, Some("push".to_owned())] {
            for status in statuses {
                for agent in [None, Some("log".to_owned())] {
                    for range in [false, true] {
                        for after in [None, Some(&cursor)] {
                            let q = EventQuery {
                                handler: handler.clone(),
                                event_type: event_type.clone(),
                                status,
                                agent: agent.clone(),
                                from_ms: range.then_some(10),
                                to_ms: range.then_some(40),
                                ..EventQuery::default()
                            };
                            let (sql, values) = page_sql(&q, None, after, 50);
                            let plan: Vec<String> = conn
                                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                                .unwrap()
                                .query_map(rusqlite::params_from_iter(values), |r| {
                                    r.get::<_, String>(3)
                                })
                                .unwrap()
                                .collect::<Result<_, _>>()
                                .unwrap();
                            let scans_all = plan.iter().any(|p| {
                                p == "SCAN e" || p.starts_with("SCAN e ") && !p.contains("INDEX")
                            });
                            assert!(!scans_all, "{q:?}: {plan:?}");
                            assert!(
                                !plan.iter().any(|p| p == "USE TEMP B-TREE FOR ORDER BY"),
                                "{q:?} sorts every match: {plan:?}"
                            );
                        }
                    }
                }
            }
        }
    }
}

/// A version 4 journal gets the attempts table and the console's indexes when opened; its
/// events stay listed.
#[test]
fn a_version_4_journal_is_migrated_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v4.sqlite");
    {
        let conn = Db::open(Connection::open(&path).unwrap());
        insert(
            &conn,
            &AtomicU64::new(0),
            &event("e1", "github", "d1", 5),
            None,
            5,
        );
        conn.execute_batch(
            "DROP TABLE attempts; DROP INDEX events_handler; DROP INDEX events_type;
             DROP INDEX events_dead; PRAGMA user_version = 4;",
        )
        .unwrap();
    }
    let conn = Db::open(Connection::open(&path).unwrap());
    assert_eq!(schema_version(&conn).unwrap(), SCHEMA_VERSION);
    let names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE name IN ('attempts', 'attempts_event', 'events_handler', 'events_type', 'events_dead') ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        names,
        [
            "attempts",
            "attempts_event",
            "events_dead",
            "events_handler",
            "events_type"
        ]
    );
    let page = super::page(&conn, &crate::admin::EventQuery::default(), None, None, 10).unwrap();
    assert_eq!(page.events.len(), 1);
}

/// Attempts are kept in order and go with their event when it is purged; a replay to one agent
/// leaves the others' deliveries alone.
#[test]
fn attempts_replays_and_purges_of_the_console() {
    use crate::admin::{AttemptNote, EventQuery};
    let conn = db();
    let pending = AtomicU64::new(0);
    let route = |agent: &str| crate::RouteSpec {
        handlers: vec!["github".to_owned()],
        events: vec![],
        agent: agent.to_owned(),
    };
    let routes = Routes::new(
        vec![route("a"), route("b")],
        &[
            crate::AgentSpec::new("a", crate::AgentKind::Log),
            crate::AgentSpec::new("b", crate::AgentKind::Log),
        ],
    )
    .unwrap();
    insert(
        &conn,
        &pending,
        &event("e1", "github", "d1", 5),
        Some(&routes),
        5,
    );
    for (agent, at, outcome) in [
        ("a", 7, "failed"),
        ("b", 8, "failed"),
        ("a", 9, "delivered"),
    ] {
        let note = AttemptNote {
            at,
            outcome,
            latency: Duration::from_millis(3),
            error: (outcome == "failed").then(|| "boom".to_owned()),
        };
        record_attempt(&conn, "e1", agent, &note).unwrap();
    }
    let got: Vec<(String, String)> = attempts(&conn, "e1")
        .unwrap()
        .into_iter()
        .map(|a| (a.agent, a.outcome))
        .collect();
    assert_eq!(
        got,
        [
            ("a".into(), "failed".into()),
            ("b".into(), "failed".into()),
            ("a".into(), "delivered".into())
        ]
    );
    conn.execute_batch("UPDATE deliveries SET status = 'dead', attempts = 3, last_error = 'x'")
        .unwrap();
    refresh_state(&conn, "e1", Some(&pending)).unwrap();
    assert_eq!(state(&conn, "e1"), "dead");
    assert_eq!(
        replay_to(&conn, "e1", Some("b"), Some(&pending), 10).unwrap(),
        1
    );
    let statuses: Vec<(String, String)> = conn
        .prepare("SELECT agent, status FROM deliveries ORDER BY agent")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        statuses,
        [("a".into(), "dead".into()), ("b".into(), "pending".into())]
    );
    assert_eq!(state(&conn, "e1"), "pending");
    let dead = EventQuery {
        status: Some(DeliveryStatus::Dead),
        ..EventQuery::default()
    };
    assert_eq!(
        count(&conn, &dead, None).unwrap(),
        0,
        "pending while one delivery moves"
    );
    conn.execute_batch("UPDATE deliveries SET status = 'dead'")
        .unwrap();
    refresh_state(&conn, "e1", Some(&pending)).unwrap();
    assert_eq!(
        backlog(&conn).unwrap().iter().map(|b| b.dead).sum::<u64>(),
        2
    );
    assert_eq!(purge_dead(&conn, &dead, None).unwrap(), 1);
    assert!(attempts(&conn, "e1").unwrap().is_empty());
    assert!(show(&conn, "e1").unwrap().is_none());
    let kept: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM dedup WHERE delivery_id = 'd1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(kept, 1, "a purged event's delivery id stays for dedup");
}
