use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use crate::sql;
use crate::store::{dur_ms, now_ms};
use crate::{BusError, ListFilter, ReplaySelector, StoredEvent};

/// Events a listing reads per read transaction: their ids at once, then one event at a time.
const LIST_PAGE: usize = 256;

/// Events deleted per write transaction by a purge. Between two, the write lock is free for the
/// daemon's writer: a purge of a million events in one transaction held it for seconds, and
/// publishes waiting for it were answered 503.
const PURGE_BATCH: usize = 500;

/// After each purge batch, the purge waits as long as that batch held the write lock (and a
/// little more): SQLite's busy handler, which the daemon's writer waits in, retries after delays
/// that never exceed the time it has waited so far, so it gets the lock within this pause.
const PURGE_YIELD_EXTRA: Duration = Duration::from_millis(5);

/// The SQLite journal opened from another process (the CLI's `events` commands) while the daemon
/// runs. WAL lets it read alongside the daemon's writer; its writes wait for the writer's lock.
/// A running daemon notices replayed deliveries at its next poll.
#[derive(Debug)]
pub struct Journal {
    conn: Connection,
}

impl Journal {
    /// Opens an existing journal; fails with [`BusError::Storage`] naming the path when there is
    /// none (the daemon creates it).
    pub fn open(path: &Path) -> Result<Journal, BusError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags).map_err(sql::open_failed(path))?;
        sql::configure(&conn).map_err(sql::at_path(path))?;
        Ok(Journal { conn })
    }

    /// Events matching `filter`, newest first, all in memory at once: for small listings. See
    /// [`Journal::for_each`] for any size.
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<StoredEvent>, BusError> {
        self.read(|conn| sql::list(conn, filter, now_ms()))
    }

    /// Calls `each` with the events matching `filter`, newest first, one at a time, as they are
    /// read: memory stays flat whatever `filter.limit` is. The events are read in pages, each in
    /// a read transaction of its own, so that a long listing does not hold one snapshot (and
    /// keep the WAL from starting over) for as long as its reader takes; an event and its
    /// deliveries always come from one snapshot. An error from `each` stops the listing.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), clawlet_bus::BusError> {
    /// let journal = clawlet_bus::Journal::open("/var/lib/clawlet/journal.db".as_ref())?;
    /// journal.for_each(&clawlet_bus::ListFilter::default(), |event| {
    ///     println!("{}", event.envelope.id);
    ///     Ok::<(), clawlet_bus::BusError>(())
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn for_each<E: From<BusError>>(
        &self,
        filter: &ListFilter,
        each: impl FnMut(StoredEvent) -> Result<(), E>,
    ) -> Result<(), E> {
        self.for_each_in_pages(filter, LIST_PAGE, each)
    }

    fn for_each_in_pages<E: From<BusError>>(
        &self,
        filter: &ListFilter,
        page: usize,
        mut each: impl FnMut(StoredEvent) -> Result<(), E>,
    ) -> Result<(), E> {
        let since = filter.since.map(|age| now_ms().saturating_sub(dur_ms(age)));
        let mut cursor = sql::ListCursor::start();
        let mut left = filter.limit;
        while left > 0 {
            let tx = rusqlite::Transaction::new_unchecked(
                &self.conn,
                rusqlite::TransactionBehavior::Deferred,
            )
            .map_err(BusError::from)?;
            let ids = sql::list_page(&tx, filter, since, &cursor, page.min(left))?;
            let Some((_, last)) = ids.last() else {
                break;
            };
            cursor = last.clone();
            let full = ids.len() == page.min(left);
            left -= ids.len();
            for (id, _) in ids {
                // Deleted meanwhile by no one: this read shares the page's snapshot.
                if let Some(event) = sql::show(&tx, &id)? {
                    each(event)?;
                }
            }
            tx.commit().map_err(BusError::from)?;
            if !full {
                break;
            }
        }
        Ok(())
    }

    /// One event by id.
    pub fn show(&self, id: &str) -> Result<Option<StoredEvent>, BusError> {
        self.read(|conn| sql::show(conn, id))
    }

    /// Runs `f` in one read transaction. An event and its deliveries are read by separate
    /// statements; outside a transaction each would see the journal as of its own start, so a
    /// delivery the daemon finished in between could show as dead beside an event still pending.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T, BusError>) -> Result<T, BusError> {
        self.transaction(rusqlite::TransactionBehavior::Deferred, f)
    }

    /// Sets the selected deliveries pending again, attempts reset; returns the events requeued.
    pub fn replay(&self, selector: ReplaySelector) -> Result<u64, BusError> {
        self.write(|conn| sql::replay(conn, &selector, None, now_ms()))
    }

    /// Deletes delivered and dead events received more than `age` ago (pending ones are kept, and
    /// so are dedup entries within their window); returns the events deleted. It deletes in small
    /// transactions, oldest first, and leaves the write lock to the daemon between them (see
    /// [`PURGE_BATCH`]); should it fail halfway, what it deleted so far stays deleted.
    pub fn purge_older_than(&self, age: Duration) -> Result<u64, BusError> {
        let cutoff = now_ms().saturating_sub(dur_ms(age));
        self.purge_in_batches(cutoff, PURGE_BATCH, |held| {
            std::thread::sleep(held + PURGE_YIELD_EXTRA);
        })
    }

    /// Purges in transactions of at most `batch` events; `between` runs after each one that
    /// deleted a full batch, with how long it held the write lock.
    fn purge_in_batches(
        &self,
        cutoff: i64,
        batch: usize,
        mut between: impl FnMut(Duration),
    ) -> Result<u64, BusError> {
        let mut total = 0;
        loop {
            let started = Instant::now();
            let n = self.write(|conn| sql::purge_batch(conn, cutoff, batch))?;
            total += n;
            if n < batch as u64 {
                return Ok(total);
            }
            between(started.elapsed());
        }
    }

    /// Runs `f` in a write transaction taken up front: a deferred one that later needs the write
    /// lock fails at once (`SQLITE_BUSY`) when the daemon committed in between, while `BEGIN
    /// IMMEDIATE` waits for the lock through the busy timeout.
    fn write<T>(&self, f: impl FnOnce(&Connection) -> Result<T, BusError>) -> Result<T, BusError> {
        self.transaction(rusqlite::TransactionBehavior::Immediate, f)
    }

    fn transaction<T>(
        &self,
        behavior: rusqlite::TransactionBehavior,
        f: impl FnOnce(&Connection) -> Result<T, BusError>,
    ) -> Result<T, BusError> {
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, behavior)?;
        let result = f(&tx)?;
        tx.commit()?;
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A journal file with `events`, each `(id, received_at, state)`, written by a connection of
    /// its own as the daemon's writer would.
    fn journal_with(events: &[(&str, i64, &str)]) -> (tempfile::TempDir, Connection, Journal) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sqlite");
        let writer = Connection::open(&path).unwrap();
        sql::configure(&writer).unwrap();
        for (id, received_at, state) in events {
            let json = format!(
                r#"{{"id":"{id}","handler":"github","source":"github","type":"push","action":null,"delivery_id":"d-{id}","received_at":"2026-01-01T00:00:00Z","summary":"s","headers":{{}},"payload":{{}}}}"#
            );
            writer
                .execute(
                    "INSERT INTO events (id, handler, source, type, delivery_id, received_at, routed, state)
                     VALUES (?1, 'github', 'github', 'push', 'd-' || ?1, ?2, 1, ?3)",
                    rusqlite::params![id, received_at, state],
                )
                .unwrap();
            writer
                .execute(
                    "INSERT INTO envelopes (seq, envelope, codec) VALUES (last_insert_rowid(), ?1, 0)",
                    [json.as_bytes()],
                )
                .unwrap();
        }
        let journal = Journal::open(&path).unwrap();
        (dir, writer, journal)
    }

    fn ids(journal: &Journal, filter: &ListFilter, page: usize) -> Vec<String> {
        let mut seen = Vec::new();
        journal
            .for_each_in_pages(filter, page, |event| {
                seen.push(event.envelope.id);
                Ok::<(), BusError>(())
            })
            .unwrap();
        seen
    }

    /// Pages smaller than the listing, ties on `received_at` across page ends, and limits that
    /// end inside a page: every event once, in `list`'s order.
    #[test]
    fn a_listing_in_pages_yields_every_event_once_in_order() {
        let now = now_ms();
        let events: Vec<(String, i64, &str)> = (0..23)
            .map(|i| {
                (
                    format!("e{i:02}"),
                    now - 1000 + i64::from(i / 3),
                    "delivered",
                )
            })
            .collect();
        let refs: Vec<(&str, i64, &str)> = events
            .iter()
            .map(|(i, t, s)| (i.as_str(), *t, *s))
            .collect();
        let (_dir, _writer, journal) = journal_with(&refs);
        for limit in [1, 2, 5, 22, 23, 24, 1000] {
            let filter = ListFilter {
                limit,
                ..ListFilter::default()
            };
            let expected: Vec<String> = journal
                .list(&filter)
                .unwrap()
                .into_iter()
                .map(|e| e.envelope.id)
                .collect();
            assert_eq!(expected.len(), limit.min(23));
            for page in [1, 2, 3, 4, 7, 256] {
                assert_eq!(
                    ids(&journal, &filter, page),
                    expected,
                    "limit {limit}, page {page}"
                );
            }
        }
    }

    /// Each page is read by a transaction of its own: what the daemon commits between two pages
    /// is seen by the later one, and a filter applies to every page.
    #[test]
    fn a_listing_reads_each_page_in_its_own_transaction() {
        let now = now_ms();
        let (_dir, writer, journal) = journal_with(&[
            ("a", now - 50, "delivered"),
            ("b", now - 40, "dead"),
            ("c", now - 30, "delivered"),
            ("d", now - 20, "dead"),
            ("e", now - 10, "delivered"),
        ]);
        let filter = ListFilter {
            status: Some(crate::DeliveryStatus::Delivered),
            ..ListFilter::default()
        };
        let mut seen = Vec::new();
        journal
            .for_each_in_pages(&filter, 1, |event| {
                if event.envelope.id == "e" {
                    // Between the first page and the second.
                    writer
                        .execute("UPDATE events SET state = 'dead' WHERE id = 'c'", [])
                        .unwrap();
                }
                seen.push(event.envelope.id);
                Ok::<(), BusError>(())
            })
            .unwrap();
        assert_eq!(seen, ["e", "a"]);
    }

    /// An error from the callback ends the listing with that error.
    #[test]
    fn a_listing_stops_at_the_first_error() {
        let now = now_ms();
        let (_dir, _writer, journal) =
            journal_with(&[("a", now - 3, "delivered"), ("b", now - 2, "delivered")]);
        let mut calls = 0;
        let result = journal.for_each_in_pages(&ListFilter::default(), 1, |_| {
            calls += 1;
            Err(BusError::Closed)
        });
        assert!(matches!(result, Err(BusError::Closed)), "{result:?}");
        assert_eq!(calls, 1);
    }

    /// A purge larger than a batch deletes everything it selects, in transactions that leave the
    /// write lock free between them, and keeps the delivery ids of what it deleted.
    #[test]
    fn a_purge_deletes_in_batches_that_free_the_write_lock_and_keeps_the_ids() {
        let now = now_ms();
        let mut events: Vec<(String, i64, &str)> = (0..11)
            .map(|i| {
                (
                    format!("old{i:02}"),
                    now - 10_000 + i64::from(i),
                    "delivered",
                )
            })
            .collect();
        events.push(("pending".to_owned(), now - 9_000, "pending"));
        events.push(("recent".to_owned(), now, "dead"));
        let refs: Vec<(&str, i64, &str)> = events
            .iter()
            .map(|(i, t, s)| (i.as_str(), *t, *s))
            .collect();
        let (_dir, writer, journal) = journal_with(&refs);
        writer.busy_timeout(Duration::ZERO).unwrap();
        let mut pauses = 0;
        let purged = journal
            .purge_in_batches(now - 5_000, 4, |_| {
                pauses += 1;
                // The daemon's writer gets the lock at once.
                writer
                    .execute_batch("BEGIN IMMEDIATE; COMMIT;")
                    .expect("the write lock is free between batches");
            })
            .unwrap();
        assert_eq!(purged, 11);
        assert_eq!(pauses, 2, "batches of 4, 4 and 3");
        let left: Vec<String> = ids(&journal, &ListFilter::default(), 10);
        assert_eq!(left, ["recent", "pending"]);
        let kept: i64 = writer
            .query_row(
                "SELECT COUNT(*) FROM dedup WHERE delivery_id LIKE 'd-old%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(kept, 11, "the ids of purged events stay for dedup");
    }

    /// Everything read within `read` comes from one snapshot, whatever another process commits
    /// meanwhile.
    #[test]
    fn reads_see_one_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sqlite");
        let writer = Connection::open(&path).unwrap();
        sql::configure(&writer).unwrap();
        let journal = Journal::open(&path).unwrap();
        let count = |conn: &Connection| -> i64 {
            conn.query_row("SELECT COUNT(*) FROM dedup", [], |r| r.get(0))
                .unwrap()
        };
        let (before, after) = journal
            .read(|conn| {
                let before = count(conn);
                writer
                    .execute(
                        "INSERT INTO dedup (handler, delivery_id, event_id, first_seen)
                         VALUES ('github', 'd1', 'e1', 0)",
                        [],
                    )
                    .unwrap();
                Ok((before, count(conn)))
            })
            .unwrap();
        assert_eq!((before, after), (0, 0));
        assert_eq!(journal.read(|conn| Ok(count(conn))).unwrap(), 1);
    }
}
