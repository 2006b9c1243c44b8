//! The journal's schema and every statement run against it, shared by the bus's writer thread and
//! by [`crate::Journal`] (the CLI, in another process).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clawlet_events::Envelope;
use rusqlite::{Connection, OptionalExtension, params};

use crate::dedup::{Dedup, DedupKey, EventRef, dedup_key};
use crate::spec::Routes;
use crate::{
    BusError, DeliveryRecord, DeliveryStatus, ListFilter, Published, ReplaySelector, StoredEvent,
};

/// Delivery rows claimed by a dispatcher; reset to pending when the process restarts.
const INFLIGHT: &str = "inflight";

/// The schema this build reads and writes, kept in `PRAGMA user_version`. A journal of version 2
/// or 3 is migrated when it is opened (see [`migrate`]); any other version is refused rather than
/// misread.
pub(crate) const SCHEMA_VERSION: i64 = 4;

/// Every index below is there for a statement in this file; the partial ones hold only rows that
/// are still moving (pending or in-flight deliveries, pending events), so they stay small and a
/// delivered event stops costing index writes. The envelope lives in its own table so that the
/// small, often-updated `events` rows share pages instead of each sitting next to 8 KB of JSON;
/// `codec` says how it is stored (see [`Codec`]).
///
/// The delivery ids seen within the dedup window are looked up in memory (a [`Dedup`] the writer
/// keeps, loaded by [`load_dedup`] when the journal opens): a B-tree keyed by random delivery ids
/// would dirty one more page per event, written to the WAL at each commit and again by each
/// checkpoint. The `events` rows are where those ids are kept on disk; the `dedup` table keeps only
/// the ids of events deleted (pruned or purged) before their dedup window ended.
const SCHEMA: &str = "
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    handler     TEXT NOT NULL,
    source      TEXT NOT NULL,
    type        TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    routed      INTEGER NOT NULL,
    state       TEXT NOT NULL
);
CREATE INDEX events_received ON events (received_at);
CREATE INDEX events_pending ON events (received_at) WHERE state = 'pending';
CREATE INDEX events_unrouted ON events (routed) WHERE routed = 0;
CREATE TABLE envelopes (
    seq      INTEGER PRIMARY KEY,
    envelope BLOB NOT NULL,
    codec    INTEGER NOT NULL
);
CREATE TABLE dedup (
    handler     TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    first_seen  INTEGER NOT NULL,
    PRIMARY KEY (handler, delivery_id)
) WITHOUT ROWID;
CREATE INDEX dedup_seen ON dedup (first_seen);
CREATE TABLE deliveries (
    event_id        TEXT NOT NULL,
    agent           TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (event_id, agent)
) WITHOUT ROWID;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_agent_due ON deliveries (agent, next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_inflight ON deliveries (agent) WHERE status = 'inflight';
CREATE INDEX deliveries_dead ON deliveries (event_id) WHERE status = 'dead';
";

pub(crate) fn now_ms() -> i64 {
    to_ms(time::OffsetDateTime::now_utc())
}

pub(crate) fn to_ms(t: time::OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub(crate) fn dur_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Sets the pragmas and creates the schema on a fresh database; refuses one written with another
/// schema version. A journal file gets WAL and a full fsync per commit, so that an acknowledged
/// event survives power loss; an in-memory database (the tests') can have neither.
pub(crate) fn configure(conn: &Connection) -> Result<(), BusError> {
    let durable = conn.path().is_some_and(|p| !p.is_empty());
    conn.busy_timeout(Duration::from_secs(5))?;
    // Before any pragma that writes to the file: an old journal is left exactly as it was.
    let create = check_schema(conn)?;
    if durable {
        if create {
            // 8 KiB pages for a new journal (before WAL mode, which fixes the page size): a
            // compressed push envelope (about 2.6 KB) took a 4 KiB page of its own, and three
            // share an 8 KiB one. Per event that is a third less file (2.8 KB instead of 4.2 KB)
            // and half the `pwrite` calls (2.3 instead of 4.4). Written into an existing journal,
            // this changes nothing.
            conn.pragma_update(None, "page_size", 8192)?;
        }
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(BusError::Storage(format!(
                "the journal cannot use WAL (mode {mode})"
            )));
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        // Checkpoint less often (16 MB of WAL rather than 4 MB) when a connection checkpoints
        // itself (the CLI; the daemon's writer leaves it to its checkpointer thread): the hot
        // pages every commit rewrites are copied back once per checkpoint instead of four times.
        conn.pragma_update(None, "wal_autocheckpoint", 4000)?;
        // Truncate the WAL only beyond 64 MiB: a WAL cut shorter at each restart is extended
        // again by the next commits, and allocating its blocks cost more than writing the frames.
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    }
    // 4 MiB of page cache (the default is 2 MiB) keeps the indexes' upper levels in memory. More
    // bought nothing measurable now that fresh deliveries are not read back (16 MiB: 79.5 and
    // 83.5 µs/request, 4 MiB: 82.4 and 81.2), and a large envelope passing through fills the
    // cache, which then stays allocated: 16 MiB put a 25 MB delivery's peak at 3.3x its size.
    conn.pragma_update(None, "cache_size", -4 * 1024)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    if create {
        create_schema(conn)?;
    }
    Ok(())
}

/// Names the journal file in the error of opening it.
pub(crate) fn open_failed(path: &std::path::Path) -> impl FnOnce(rusqlite::Error) -> BusError + '_ {
    move |e| BusError::Storage(format!("cannot open journal {}: {e}", path.display()))
}

/// Names the journal file in a storage error from [`configure`].
pub(crate) fn at_path(path: &std::path::Path) -> impl FnOnce(BusError) -> BusError + '_ {
    move |e| match e {
        BusError::Storage(message) => {
            BusError::Storage(format!("journal {}: {message}", path.display()))
        }
        other => other,
    }
}

fn schema_version(conn: &Connection) -> Result<i64, BusError> {
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
}

/// Fails when the database holds tables of another schema version. Returns whether the schema
/// is still to be created.
fn check_schema(conn: &Connection) -> Result<bool, BusError> {
    let found = schema_version(conn)?;
    if found == SCHEMA_VERSION {
        return Ok(false);
    }
    if found == 2 || found == 3 {
        migrate(conn)?;
        return Ok(false);
    }
    let tables: i64 = conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'",
        [],
        |r| r.get(0),
    )?;
    if found != 0 || tables > 0 {
        return Err(BusError::Storage(format!(
            "written with schema version {}, but this build reads version {SCHEMA_VERSION}; \
             move the file (and its -wal and -shm files) aside to start a new journal",
            found.max(1)
        )));
    }
    Ok(true)
}

/// Version 2 stored every envelope uncompressed, as TEXT or, from 1 MiB, as a BLOB; both read
/// back as [`Codec::Raw`], so going to version 3 only adds the `codec` column. Version 3 wrote
/// every delivery id to `dedup`; those rows are still valid entries (loaded beside the `events`
/// rows), so going to version 4 changes no data. The number moves all the same: a build that reads
/// version 3 looks delivery ids up in `dedup` alone and would miss those stored since.
fn migrate(conn: &Connection) -> Result<(), BusError> {
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    // Checked again under the write lock: another process may have migrated it meanwhile.
    let found = schema_version(&tx)?;
    if found == 2 {
        tx.execute_batch("ALTER TABLE envelopes ADD COLUMN codec INTEGER NOT NULL DEFAULT 0;")?;
    }
    if found == 2 || found == 3 {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tracing::info!(
            from = found,
            to = SCHEMA_VERSION,
            "journal migrated to a new schema version"
        );
    }
    tx.commit()?;
    Ok(())
}

fn create_schema(conn: &Connection) -> Result<(), BusError> {
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    // Checked again under the write lock: another process may have created it meanwhile.
    if check_schema(&tx)? {
        tx.execute_batch(SCHEMA)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    }
    tx.commit()?;
    Ok(())
}

/// The delivery ids first seen at or after `cutoff`: those of the events stored, and those the
/// `dedup` table kept for deleted events (a version 3 journal's table also names stored events;
/// each id is loaded once). Both are read in the order of their time index and merged, so that the
/// entries are recorded oldest first, as expiry expects, without sorting them all first.
pub(crate) fn load_dedup(conn: &Connection, cutoff: i64) -> Result<Dedup, BusError> {
    type Seen = (String, String, String, i64);
    fn seen(row: &rusqlite::Row<'_>) -> rusqlite::Result<Seen> {
        Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
    }
    let mut stored = conn.prepare(
        "SELECT handler, delivery_id, id, received_at FROM events
         WHERE received_at >= ?1 ORDER BY received_at",
    )?;
    let mut kept = conn.prepare(
        "SELECT handler, delivery_id, event_id, first_seen FROM dedup
         WHERE first_seen >= ?1 ORDER BY first_seen",
    )?;
    let mut stored = stored.query_map([cutoff], seen)?.peekable();
    let mut kept = kept.query_map([cutoff], seen)?.peekable();
    let mut dedup = Dedup::default();
    loop {
        let take_stored = match (stored.peek(), kept.peek()) {
            (None, None) => break,
            (Some(Ok(a)), Some(Ok(b))) => a.3 <= b.3,
            (Some(_), _) => true,
            (None, Some(_)) => false,
        };
        let next = if take_stored {
            stored.next()
        } else {
            kept.next()
        };
        let Some(row) = next else { break };
        let (handler, delivery_id, event_id, first_seen) = row?;
        let key = dedup_key(&handler, &delivery_id);
        if dedup.get(&key).is_none() {
            dedup.insert(key, EventRef::new(&event_id), first_seen);
        }
    }
    Ok(dedup)
}

/// The number of pending events, to seed the back-pressure counter.
pub(crate) fn count_pending(conn: &Connection) -> Result<u64, BusError> {
    let n: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM events WHERE state = 'pending'")?
        .query_row([], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// A previous process died while these were being delivered: they are due again.
pub(crate) fn reset_inflight(conn: &Connection) -> Result<usize, BusError> {
    // The literal (not a parameter) lets SQLite use the partial index `deliveries_inflight`.
    Ok(conn.execute(
        "UPDATE deliveries SET status = 'pending' WHERE status = 'inflight'",
        [],
    )?)
}

fn adjust(counter: Option<&AtomicU64>, old: Option<&str>, new: &str) {
    let Some(counter) = counter else { return };
    let was = old == Some("pending");
    let is = new == "pending";
    if was && !is {
        // Saturating: another process (the CLI) may have changed states behind our back.
        let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            Some(n.saturating_sub(1))
        });
    } else if !was && is {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Recomputes an event's state from its delivery rows.
fn refresh_state(conn: &Connection, id: &str, counter: Option<&AtomicU64>) -> Result<(), BusError> {
    let row: Option<(String, String)> = conn
        .prepare_cached(
            "SELECT e.state, CASE
                WHEN e.routed = 0 OR EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id
                                              AND d.status IN ('pending', 'inflight')) THEN 'pending'
                WHEN EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.status = 'dead')
                    THEN 'dead'
                ELSE 'delivered' END
             FROM events e WHERE e.id = ?1",
        )?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((old, new)) = row else {
        return Ok(());
    };
    if new != old {
        conn.prepare_cached("UPDATE events SET state = ?2 WHERE id = ?1")?
            .execute(params![id, new])?;
        adjust(counter, Some(&old), &new);
    }
    Ok(())
}

/// What the writer needs to insert one event.
pub(crate) struct NewEvent {
    pub(crate) id: String,
    pub(crate) handler: String,
    pub(crate) source: &'static str,
    pub(crate) event_type: String,
    pub(crate) delivery_id: String,
    pub(crate) received_at: i64,
    /// The envelope's JSON, shared with deliveries handed straight to the dispatcher.
    pub(crate) json: Arc<String>,
    /// The JSON compressed, when that is how it is stored (see [`Codec::pack`]).
    pub(crate) packed: Option<Vec<u8>>,
    /// The handler and delivery id as the dedup index keys them (a SHA-256 digest).
    pub(crate) dedup_key: DedupKey,
}

impl NewEvent {
    /// `compress`: whether to compress the JSON now, for the journal (see [`Codec::pack`]).
    pub(crate) fn new(fresh: &Fresh, compress: bool) -> Self {
        let envelope = &fresh.envelope;
        Self {
            id: envelope.id.clone(),
            handler: envelope.handler.clone(),
            source: envelope.source.as_str(),
            event_type: envelope.event_type.clone(),
            delivery_id: envelope.delivery_id.clone(),
            received_at: to_ms(envelope.received_at),
            json: Arc::clone(&fresh.json),
            // Compressed by the publishing task, not by the writer thread that every event
            // passes through.
            packed: if compress {
                Codec::pack(&fresh.json)
            } else {
                None
            },
            // Hashed here too, like the compression: the writer thread only looks it up.
            dedup_key: dedup_key(&envelope.handler, &envelope.delivery_id),
        }
    }
}

pub(crate) struct InsertLimits<'a> {
    pub(crate) pending: &'a AtomicU64,
    pub(crate) max_pending: u64,
    pub(crate) dedup_window_ms: i64,
    pub(crate) retry_after: Duration,
}

/// Where publish puts the delivery of one agent an event is routed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    /// Due now; the dispatcher claims it.
    Pending,
    /// Written in flight: the dispatcher reserved a slot, and gets the event right after the
    /// commit without reading it back.
    InFlight,
    /// Already made while the event was being stored (a log line, see
    /// [`Routes::delivers_inline`]): recorded delivered after one attempt.
    Delivered,
}

#[cfg(test)]
impl Placement {
    /// In flight where `take` says yes (a dispatcher slot was free), pending elsewhere.
    pub(crate) fn taking(take: impl Fn(&str) -> bool) -> impl Fn(&str) -> Placement {
        move |agent| {
            if take(agent) {
                Placement::InFlight
            } else {
                Placement::Pending
            }
        }
    }

    /// Delivered for `made` (as publish does for a log agent), pending elsewhere.
    pub(crate) fn made_for(made: &'static str) -> impl Fn(&str) -> Placement {
        move |agent| {
            if agent == made {
                Placement::Delivered
            } else {
                Placement::Pending
            }
        }
    }
}

/// What [`insert_event`] stored.
#[derive(Debug)]
pub(crate) struct Inserted {
    pub(crate) published: Published,
    /// The agents whose delivery row was written in flight, for the caller to hand over.
    pub(crate) taken: Vec<String>,
    /// Whether a delivery row was left pending for the dispatcher to claim.
    pub(crate) left_pending: bool,
}

impl Inserted {
    /// Stored before within the dedup window: nothing written, nothing to hand over.
    pub(crate) fn duplicate(event_id: String) -> Self {
        Self {
            published: Published::Duplicate { event_id },
            taken: Vec::new(),
            left_pending: false,
        }
    }
}

/// Dedups and stores one event with a delivery row per agent its routes name (`routes` is `None`
/// until a dispatcher registered routes; such events are routed when it starts).
#[cfg(test)]
pub(crate) fn insert_event(
    conn: &Connection,
    dedup: &mut Dedup,
    ev: &NewEvent,
    routes: Option<&Routes>,
    limits: &InsertLimits<'_>,
    now: i64,
) -> Result<Published, BusError> {
    insert_event_placing(conn, dedup, ev, routes, limits, now, &|_| {
        Placement::Pending
    })
    .map(|i| i.published)
}

/// [`insert_event`], with `place` choosing each routed agent's [`Placement`]. It is asked only
/// for an event that is stored (not for a duplicate, nor when the queue is full).
pub(crate) fn insert_event_placing(
    conn: &Connection,
    dedup: &mut Dedup,
    ev: &NewEvent,
    routes: Option<&Routes>,
    limits: &InsertLimits<'_>,
    now: i64,
    place: &dyn Fn(&str) -> Placement,
) -> Result<Inserted, BusError> {
    dedup.expire(now.saturating_sub(limits.dedup_window_ms));
    if let Some(event_id) = dedup.get(&ev.dedup_key) {
        return Ok(Inserted::duplicate(event_id.to_string()));
    }
    if limits.pending.load(Ordering::Relaxed) >= limits.max_pending {
        return Err(BusError::Full {
            retry_after: limits.retry_after,
        });
    }
    let placed: Option<Vec<(String, Placement)>> = routes.map(|r| {
        r.agents_for(&ev.handler, &ev.event_type)
            .into_iter()
            .map(|agent| {
                let placement = place(&agent);
                (agent, placement)
            })
            .collect()
    });
    let state = match &placed {
        Some(p) if p.iter().all(|(_, at)| *at == Placement::Delivered) => "delivered",
        _ => "pending",
    };
    let (taken, left_pending) = write_event(conn, ev, placed, state, now)?;
    adjust(Some(limits.pending), None, state);
    // Last, once every row is written: the writer takes the entries of a transaction that did not
    // commit back out (see `Dedup::rollback`).
    dedup.insert(ev.dedup_key, EventRef::new(&ev.id), now);
    Ok(Inserted {
        published: Published::Accepted {
            event_id: ev.id.clone(),
        },
        taken,
        left_pending,
    })
}

/// The rows of a new event: the event, its envelope, a delivery per routed agent. Returns the
/// agents whose delivery was written in flight, and whether one was left pending.
fn write_event(
    conn: &Connection,
    ev: &NewEvent,
    placed: Option<Vec<(String, Placement)>>,
    state: &str,
    now: i64,
) -> Result<(Vec<String>, bool), BusError> {
    conn.prepare_cached(
        "INSERT INTO events (id, handler, source, type, delivery_id, received_at, routed, state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        ev.id,
        ev.handler,
        ev.source,
        ev.event_type,
        ev.delivery_id,
        ev.received_at,
        placed.is_some(),
        state,
    ])?;
    let seq = conn.last_insert_rowid();
    let rest = || -> Result<(Vec<String>, bool), BusError> {
        insert_envelope(conn, ev)?;
        let mut taken = Vec::new();
        let mut left_pending = false;
        for (agent, placement) in placed.into_iter().flatten() {
            let (status, attempts) = match placement {
                Placement::Pending => ("pending", 0),
                Placement::InFlight => (INFLIGHT, 0),
                Placement::Delivered => ("delivered", 1),
            };
            insert_delivery(conn, &ev.id, &agent, status, attempts, now)?;
            match placement {
                Placement::Pending => left_pending = true,
                Placement::InFlight => taken.push(agent),
                Placement::Delivered => {}
            }
        }
        Ok((taken, left_pending))
    };
    rest().inspect_err(|_| unwrite_event(conn, seq, &ev.id))
}

/// Deletes what [`write_event`] wrote after the event's row (`seq`, `id`) before it failed (when
/// that row itself is refused, nothing was written). A statement that fails (on a full disk,
/// say) ends only itself: the rows written before it would otherwise commit with the batch, an
/// event without its envelope or deliveries. A savepoint around every event would do the same on
/// the error path, but costs on every event (SQLite keeps a copy of each page it changes within
/// a savepoint): about a tenth of the journal's throughput.
fn unwrite_event(conn: &Connection, seq: i64, id: &str) {
    let undone = conn
        .execute("DELETE FROM deliveries WHERE event_id = ?1", [id])
        .and_then(|_| conn.execute("DELETE FROM envelopes WHERE seq = ?1", [seq]))
        .and_then(|_| conn.execute("DELETE FROM events WHERE seq = ?1", [seq]));
    if let Err(e) = undone {
        // The batch's commit, on the same full disk, most likely fails as well and takes the
        // rows with it; the sender is answered with an error either way.
        tracing::error!(event_id = id, error = %e, "could not remove a partly stored event");
    }
}

/// Envelopes at least this long are written into the row in place rather than bound, and stored
/// as they are: compressing one would hold a second copy of a large body in memory.
const STREAM_ENVELOPE_BYTES: usize = 1024 * 1024;

/// How an envelope's bytes are stored in `envelopes.codec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    /// The JSON's UTF-8 as it is.
    Raw = 0,
    /// An LZ4 block preceded by the JSON's length (4 bytes, little-endian). A GitHub push of
    /// 7.3 KB becomes about 2.2 KB: it fits in its table page, where the raw JSON took two
    /// overflow pages more, each written to the WAL and again to the database file.
    Lz4 = 1,
}

impl Codec {
    /// The LZ4 block to store for `json`, or `None` to store it as it is: when it is large (see
    /// [`STREAM_ENVELOPE_BYTES`]), or when compression saves less than an eighth, which is not
    /// worth a decompression on every read back.
    pub(crate) fn pack(json: &str) -> Option<Vec<u8>> {
        if json.len() >= STREAM_ENVELOPE_BYTES {
            return None;
        }
        let packed = lz4_flex::block::compress_prepend_size(json.as_bytes());
        (packed.len() <= json.len() - json.len() / 8).then_some(packed)
    }
}

/// Stores the envelope of the event just inserted. A bound value is copied by SQLite and copied
/// again into the row's record, so a large envelope gets a zero-filled row and is written into it
/// through SQLite's incremental blob I/O, page by page.
fn insert_envelope(conn: &Connection, ev: &NewEvent) -> Result<(), BusError> {
    let json = &ev.json;
    if json.len() < STREAM_ENVELOPE_BYTES {
        let (bytes, codec) = match &ev.packed {
            Some(packed) => (packed.as_slice(), Codec::Lz4),
            None => (json.as_bytes(), Codec::Raw),
        };
        conn.prepare_cached(
            "INSERT INTO envelopes (seq, envelope, codec) VALUES (last_insert_rowid(), ?1, ?2)",
        )?
        .execute(params![bytes, codec as i64])?;
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO envelopes (seq, envelope, codec) VALUES (last_insert_rowid(), zeroblob(?1), ?2)",
    )?
    .execute(params![
        i64::try_from(json.len()).unwrap_or(i64::MAX),
        Codec::Raw as i64
    ])?;
    let mut blob = conn.blob_open(
        rusqlite::MAIN_DB,
        c"envelopes",
        c"envelope",
        conn.last_insert_rowid(),
        false,
    )?;
    std::io::Write::write_all(&mut blob, json.as_bytes())
        .map_err(|e| BusError::Storage(format!("cannot write the envelope: {e}")))?;
    Ok(())
}

/// Reads the envelope's JSON from the columns `envelope` (at `at`) and `codec` (just after it);
/// a row that cannot be decoded is an error.
fn envelope_json(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<String> {
    stored_json(row, at)?.map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(at, rusqlite::types::Type::Blob, e.into())
    })
}

/// [`envelope_json`], with a row that cannot be decoded given back as the reason (the outer
/// error is SQLite's).
fn stored_json(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Result<String, String>> {
    let codec: i64 = row.get(at + 1)?;
    let bytes = row.get_ref(at)?.as_bytes()?;
    Ok(decode_envelope(bytes, codec))
}

fn decode_envelope(bytes: &[u8], codec: i64) -> Result<String, String> {
    let raw = match codec {
        c if c == Codec::Raw as i64 => bytes.to_vec(),
        c if c == Codec::Lz4 as i64 => {
            // The length is checked before it sizes a buffer: a damaged row cannot ask for 4 GiB.
            let (len, block) = lz4_flex::block::uncompressed_size(bytes)
                .map_err(|e| format!("damaged envelope: {e}"))?;
            if len >= STREAM_ENVELOPE_BYTES {
                return Err(format!("damaged envelope: claims {len} bytes"));
            }
            lz4_flex::block::decompress(block, len).map_err(|e| format!("damaged envelope: {e}"))?
        }
        other => return Err(format!("envelope stored with unknown codec {other}")),
    };
    String::from_utf8(raw).map_err(|e| format!("envelope is not UTF-8: {e}"))
}

fn insert_delivery(
    conn: &Connection,
    event_id: &str,
    agent: &str,
    status: &str,
    attempts: u32,
    now: i64,
) -> Result<(), BusError> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO deliveries (event_id, agent, status, attempts, next_attempt_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )?
    .execute(params![event_id, agent, status, attempts, now])?;
    Ok(())
}

/// Creates delivery rows for events stored before any routes were registered.
pub(crate) fn route_unrouted(
    conn: &Connection,
    routes: &Routes,
    counter: Option<&AtomicU64>,
    now: i64,
) -> Result<u64, BusError> {
    let rows: Vec<(String, String, String)> = conn
        .prepare_cached("SELECT id, handler, type FROM events WHERE routed = 0")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    for (id, handler, event_type) in &rows {
        for agent in routes.agents_for(handler, event_type) {
            insert_delivery(conn, id, &agent, "pending", 0, now)?;
        }
        conn.prepare_cached("UPDATE events SET routed = 1 WHERE id = ?1")?
            .execute([id])?;
        refresh_state(conn, id, counter)?;
    }
    Ok(rows.len() as u64)
}

/// The event a delivery carries: read back from the journal, or handed over by publish.
#[derive(Debug)]
pub(crate) enum Payload {
    /// The stored JSON, parsed when the delivery is attempted.
    Stored(String),
    /// A stored envelope that cannot be decoded, and why: its delivery goes dead rather than
    /// failing every claim that meets it.
    Damaged(String),
    /// The envelope as published, with its stored JSON.
    Fresh(Arc<Fresh>),
}

/// An envelope published by this process, shared by its deliveries.
#[derive(Debug)]
pub(crate) struct Fresh {
    /// The envelope without its payload (`null`): what agents need besides the JSON.
    pub(crate) envelope: Arc<Envelope>,
    /// The whole envelope's JSON, payload included: the journal stores it, agents receive it.
    pub(crate) json: Arc<String>,
}

impl Fresh {
    /// Serialises the envelope once, then drops its payload, which lives on in the JSON: a large
    /// body is held once, not twice, until its deliveries are done.
    pub(crate) fn new(mut envelope: Envelope) -> Result<Self, BusError> {
        let json = envelope
            .to_json()
            .map_err(|e| BusError::Storage(format!("cannot serialise the envelope: {e}")))?;
        envelope.payload = clawlet_events::Payload::null();
        Ok(Self {
            envelope: Arc::new(envelope),
            json: Arc::new(json),
        })
    }

    /// The envelope with its payload, read back from the JSON.
    pub(crate) fn full_envelope(&self) -> Result<Envelope, BusError> {
        serde_json::from_str(&self.json).map_err(|e| {
            BusError::Storage(format!(
                "event {}: unreadable envelope: {e}",
                self.envelope.id
            ))
        })
    }
}

/// A delivery handed to the dispatcher.
#[derive(Debug)]
pub(crate) struct Work {
    pub(crate) event_id: String,
    pub(crate) agent: String,
    pub(crate) attempts: u32,
    pub(crate) payload: Payload,
}

/// What [`claim`] found.
#[derive(Debug, Default)]
pub(crate) struct Claimed {
    pub(crate) work: Vec<Work>,
    /// When the next not-yet-due delivery is due (unix ms).
    pub(crate) next_due: Option<i64>,
    /// Whether due deliveries were left because an agent had no free slot.
    pub(crate) more: bool,
}

/// Marks due deliveries in flight and returns them: for each agent at most `limit(agent)` (its
/// free concurrency, so that a slow agent cannot hold up the others).
pub(crate) fn claim(
    conn: &Connection,
    limit: &dyn Fn(&str) -> usize,
    now: i64,
) -> Result<Claimed, BusError> {
    // The agents with pending rows, one index seek each (a skip scan): `SELECT DISTINCT` would
    // read every pending row on each claim. Rows not yet due are filtered per agent below.
    let due_agents: Vec<String> = conn
        .prepare_cached(
            "WITH RECURSIVE a(agent) AS (
                SELECT MIN(agent) FROM deliveries WHERE status = 'pending'
                UNION ALL
                SELECT (SELECT MIN(agent) FROM deliveries WHERE status = 'pending' AND agent > a.agent)
                FROM a WHERE a.agent IS NOT NULL
             )
             SELECT agent FROM a WHERE agent IS NOT NULL",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut work = Vec::new();
    let mut select = conn.prepare_cached(
        "SELECT d.event_id, d.agent, d.attempts, b.envelope, b.codec
         FROM deliveries d JOIN events e ON e.id = d.event_id JOIN envelopes b ON b.seq = e.seq
         WHERE d.agent = ?1 AND d.status = 'pending' AND d.next_attempt_at <= ?2
         ORDER BY d.next_attempt_at LIMIT ?3",
    )?;
    let mut more = false;
    for agent in &due_agents {
        let n = limit(agent);
        if n == 0 {
            more = true;
            continue;
        }
        let before = work.len();
        let rows = select.query_map(
            params![agent, now, i64::try_from(n).unwrap_or(i64::MAX)],
            |r| {
                Ok(Work {
                    event_id: r.get(0)?,
                    agent: r.get(1)?,
                    attempts: r.get(2)?,
                    payload: match stored_json(r, 3)? {
                        Ok(json) => Payload::Stored(json),
                        Err(error) => Payload::Damaged(error),
                    },
                })
            },
        )?;
        for row in rows {
            work.push(row?);
        }
        // A full batch may have left due rows behind.
        more |= work.len() - before == n;
    }
    // Marked after reading, so that no row changes under the index scan that found it.
    let mut update = conn.prepare_cached(
        "UPDATE deliveries SET status = 'inflight', updated_at = ?3 WHERE event_id = ?1 AND agent = ?2",
    )?;
    for w in &work {
        update.execute(params![w.event_id, w.agent, now])?;
    }
    let next: Option<i64> = conn
        .prepare_cached(
            "SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 'pending' AND next_attempt_at > ?1",
        )?
        .query_row([now], |r| r.get(0))?;
    Ok(Claimed {
        work,
        next_due: next,
        more,
    })
}

/// How an attempt ends for the journal.
#[derive(Debug, Clone)]
pub(crate) enum Finish {
    Delivered,
    Retry {
        at: i64,
        error: String,
    },
    Dead {
        error: String,
    },
    /// Not attempted (shutdown): back to pending without counting an attempt.
    Release,
}

pub(crate) fn finish(
    conn: &Connection,
    event_id: &str,
    agent: &str,
    outcome: &Finish,
    counter: Option<&AtomicU64>,
    now: i64,
) -> Result<(), BusError> {
    let mut stmt = conn.prepare_cached(
        "UPDATE deliveries SET status = ?3, attempts = attempts + ?4, next_attempt_at = ?5,
                last_error = ?6, updated_at = ?7
         WHERE event_id = ?1 AND agent = ?2",
    )?;
    let n = match outcome {
        Finish::Delivered => stmt.execute(params![event_id, agent, "delivered", 1, now, None::<String>, now])?,
        Finish::Retry { at, error } => stmt.execute(params![event_id, agent, "pending", 1, at, error, now])?,
        Finish::Dead { error } => stmt.execute(params![event_id, agent, "dead", 1, now, error, now])?,
        Finish::Release => conn
            .prepare_cached(
                "UPDATE deliveries SET status = 'pending' WHERE event_id = ?1 AND agent = ?2 AND status = ?3",
            )?
            .execute(params![event_id, agent, INFLIGHT])?,
    };
    if n > 0 {
        refresh_state(conn, event_id, counter)?;
    }
    Ok(())
}

/// Sets the selected deliveries pending again; returns how many events were requeued.
pub(crate) fn replay(
    conn: &Connection,
    selector: &ReplaySelector,
    counter: Option<&AtomicU64>,
    now: i64,
) -> Result<u64, BusError> {
    let ids: Vec<String> = match selector {
        ReplaySelector::Id(id) => conn
            .prepare(
                "SELECT DISTINCT event_id FROM deliveries WHERE event_id = ?1 AND status != ?2",
            )?
            .query_map(params![id, INFLIGHT], |r| r.get(0))?
            .collect::<Result<_, _>>()?,
        ReplaySelector::Dead => conn
            .prepare("SELECT DISTINCT event_id FROM deliveries WHERE status = 'dead'")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?,
        ReplaySelector::Since(age) => conn
            .prepare(
                "SELECT DISTINCT d.event_id FROM deliveries d JOIN events e ON e.id = d.event_id
                 WHERE e.received_at >= ?1 AND d.status != ?2",
            )?
            .query_map(params![now.saturating_sub(dur_ms(*age)), INFLIGHT], |r| {
                r.get(0)
            })?
            .collect::<Result<_, _>>()?,
    };
    let only_dead = matches!(selector, ReplaySelector::Dead);
    for id in &ids {
        conn.execute(
            "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?2,
                    last_error = NULL, updated_at = ?2
             WHERE event_id = ?1 AND status != ?3 AND (?4 = 0 OR status = 'dead')",
            params![id, now, INFLIGHT, only_dead],
        )?;
        refresh_state(conn, id, counter)?;
    }
    Ok(ids.len() as u64)
}

/// Deletes the events `where_clause` selects, with their envelopes and deliveries. The delivery
/// ids of those received at `seen_since` or later move to the `dedup` table, so that a journal
/// opened later still knows them until their window ends (pruning deletes them then).
fn delete_events(
    conn: &Connection,
    where_clause: &str,
    cutoff: i64,
    seen_since: i64,
) -> Result<u64, BusError> {
    conn.execute(
        &format!(
            "INSERT OR REPLACE INTO dedup (handler, delivery_id, event_id, first_seen)
             SELECT handler, delivery_id, id, received_at FROM events
             WHERE ({where_clause}) AND received_at >= ?2"
        ),
        [cutoff, seen_since],
    )?;
    conn.execute(
        &format!(
            "DELETE FROM deliveries WHERE event_id IN (SELECT id FROM events WHERE {where_clause})"
        ),
        [cutoff],
    )?;
    conn.execute(
        &format!(
            "DELETE FROM envelopes WHERE seq IN (SELECT seq FROM events WHERE {where_clause})"
        ),
        [cutoff],
    )?;
    let n = conn.execute(
        &format!("DELETE FROM events WHERE {where_clause}"),
        [cutoff],
    )?;
    Ok(n as u64)
}

/// Deletes delivered and dead events received more than `age` ago; pending ones are kept, and
/// dedup entries stay until their window ends.
pub(crate) fn purge(conn: &Connection, age: Duration, now: i64) -> Result<u64, BusError> {
    // The CLI does not know the daemon's dedup window: every id is kept, and the daemon's next
    // pruning drops those past it.
    delete_events(
        conn,
        "state != 'pending' AND received_at < ?1",
        now.saturating_sub(dur_ms(age)),
        i64::MIN,
    )
}

/// Retention: delivered events past `retention`, dedup entries past `dedup_window`.
pub(crate) fn prune(
    conn: &Connection,
    retention: Duration,
    dedup_window: Duration,
    now: i64,
) -> Result<u64, BusError> {
    let n = delete_events(
        conn,
        "state = 'delivered' AND received_at < ?1",
        now.saturating_sub(dur_ms(retention)),
        now.saturating_sub(dur_ms(dedup_window)),
    )?;
    conn.execute(
        "DELETE FROM dedup WHERE first_seen < ?1",
        [now.saturating_sub(dur_ms(dedup_window))],
    )?;
    Ok(n)
}

fn parse_status(s: &str) -> DeliveryStatus {
    match s {
        "delivered" => DeliveryStatus::Delivered,
        "dead" => DeliveryStatus::Dead,
        _ => DeliveryStatus::Pending,
    }
}

pub(crate) fn from_ms(ms: i64) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

fn load(conn: &Connection, id: String, state: &str, json: &str) -> Result<StoredEvent, BusError> {
    let envelope: Envelope = serde_json::from_str(json)
        .map_err(|e| BusError::Storage(format!("event {id}: unreadable envelope: {e}")))?;
    let deliveries = conn
        .prepare_cached(
            "SELECT agent, status, attempts, last_error, next_attempt_at FROM deliveries
             WHERE event_id = ?1 ORDER BY agent",
        )?
        .query_map([&id], |r| {
            let status = parse_status(&r.get::<_, String>(1)?);
            let next: i64 = r.get(4)?;
            Ok(DeliveryRecord {
                agent: r.get(0)?,
                status,
                attempts: r.get(2)?,
                last_error: r.get(3)?,
                next_attempt_at: if status == DeliveryStatus::Pending {
                    from_ms(next)
                } else {
                    None
                },
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(StoredEvent {
        envelope,
        status: parse_status(state),
        deliveries,
    })
}

pub(crate) fn show(conn: &Connection, id: &str) -> Result<Option<StoredEvent>, BusError> {
    let row: Option<(String, String)> = conn
        .query_row(
            "SELECT e.state, b.envelope, b.codec FROM events e JOIN envelopes b ON b.seq = e.seq
             WHERE e.id = ?1",
            [id],
            |r| Ok((r.get(0)?, envelope_json(r, 1)?)),
        )
        .optional()?;
    row.map(|(state, json)| load(conn, id.to_owned(), &state, &json))
        .transpose()
}

pub(crate) fn list(
    conn: &Connection,
    filter: &ListFilter,
    now: i64,
) -> Result<Vec<StoredEvent>, BusError> {
    let since = filter.since.map(|d| now.saturating_sub(dur_ms(d)));
    let rows: Vec<(String, String, String)> = conn
        .prepare_cached(
            "SELECT e.id, e.state, b.envelope, b.codec FROM events e JOIN envelopes b ON b.seq = e.seq
             WHERE (?1 IS NULL OR e.handler = ?1) AND (?2 IS NULL OR e.type = ?2)
               AND (?3 IS NULL OR e.state = ?3) AND (?4 IS NULL OR e.received_at >= ?4)
             ORDER BY e.received_at DESC, e.id DESC LIMIT ?5",
        )?
        .query_map(
            params![
                filter.handler,
                filter.event_type,
                filter.status.map(DeliveryStatus::as_str),
                since,
                i64::try_from(filter.limit).unwrap_or(i64::MAX)
            ],
            |r| Ok((r.get(0)?, r.get(1)?, envelope_json(r, 2)?)),
        )?
        .collect::<Result<_, _>>()?;
    rows.into_iter()
        .map(|(id, state, json)| load(conn, id, &state, &json))
        .collect()
}

#[cfg(test)]
mod tests;
