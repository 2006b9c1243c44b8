//! The journal's schema, its pragmas, and the migrations from older schema versions.

use std::time::Duration;

use rusqlite::Connection;

use crate::BusError;

/// The schema this build reads and writes, kept in `PRAGMA user_version`. A journal of version 2,
/// 3 or 4 is migrated when it is opened (see [`migrate`]); any other version is refused rather
/// than misread.
pub(crate) const SCHEMA_VERSION: i64 = 5;

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

/// What version 5 added for the operator console: the attempts history, and the indexes its
/// filtered listings need to stay fast on a large journal. `events_handler` and `events_type`
/// grow at their ends (a handler's or a type's events arrive in time order), so unlike an index
/// on random delivery ids they dirty few pages per commit; `events_dead` holds only dead events.
/// An attempt row is written only by the dispatcher recording an outcome, never on publish.
const CONSOLE_SCHEMA: &str = "
CREATE INDEX IF NOT EXISTS events_handler ON events (handler, received_at);
CREATE INDEX IF NOT EXISTS events_type ON events (type, received_at);
CREATE INDEX IF NOT EXISTS events_dead ON events (received_at) WHERE state = 'dead';
CREATE TABLE IF NOT EXISTS attempts (
    event_id   TEXT NOT NULL,
    agent      TEXT NOT NULL,
    at         INTEGER NOT NULL,
    outcome    TEXT NOT NULL,
    latency_us INTEGER NOT NULL,
    error      TEXT
);
CREATE INDEX IF NOT EXISTS attempts_event ON attempts (event_id);
";

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

pub(super) fn schema_version(conn: &Connection) -> Result<i64, BusError> {
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
}

/// Fails when the database holds tables of another schema version. Returns whether the schema
/// is still to be created.
fn check_schema(conn: &Connection) -> Result<bool, BusError> {
    let found = schema_version(conn)?;
    if found == SCHEMA_VERSION {
        return Ok(false);
    }
    if (2..=4).contains(&found) {
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
/// version 3 looks delivery ids up in `dedup` alone and would miss those stored since. Version 5
/// adds the attempts history and the console's indexes ([`CONSOLE_SCHEMA`]).
fn migrate(conn: &Connection) -> Result<(), BusError> {
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    // Checked again under the write lock: another process may have migrated it meanwhile.
    let found = schema_version(&tx)?;
    if found == 2 {
        tx.execute_batch("ALTER TABLE envelopes ADD COLUMN codec INTEGER NOT NULL DEFAULT 0;")?;
    }
    if (2..=4).contains(&found) {
        tx.execute_batch(CONSOLE_SCHEMA)?;
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
        tx.execute_batch(CONSOLE_SCHEMA)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    }
    tx.commit()?;
    Ok(())
}
