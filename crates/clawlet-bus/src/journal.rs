use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::sql;
use crate::{BusError, ListFilter, ReplaySelector, StoredEvent};

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

    /// Events matching `filter`, newest first.
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<StoredEvent>, BusError> {
        self.read(|conn| sql::list(conn, filter, sql::now_ms()))
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
        self.write(|conn| sql::replay(conn, &selector, None, sql::now_ms()))
    }

    /// Deletes delivered and dead events received more than `age` ago (pending ones are kept, and
    /// so are dedup entries within their window); returns the events deleted.
    pub fn purge_older_than(&self, age: Duration) -> Result<u64, BusError> {
        self.write(|conn| sql::purge(conn, age, sql::now_ms()))
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
