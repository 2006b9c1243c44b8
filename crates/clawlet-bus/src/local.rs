//! The SQLite backend: one writer thread owns the connection and commits
//! whatever is queued in one transaction (group commit), answering each caller after COMMIT.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clawlet_events::Envelope;
use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use crate::admin::AttemptNote;
use crate::dedup::{Dedup, dedup_key};
use crate::sql;
use crate::store::{Claimed, Finish, Shared, dur_ms, now_ms};
use crate::{BusError, ListFilter, ReplaySelector, StoredEvent};

/// Runs inside the batch transaction; returns what to tell the caller once the commit is known.
/// Called with `None` when the transaction could not even begin.
type Job = Box<dyn FnOnce(Option<&mut Tx<'_>>) -> Responder + Send>;
type Responder = Box<dyn FnOnce(Option<&BusError>) + Send>;

/// Most jobs committed together; bounds the latency one batch adds to the first caller.
const MAX_BATCH: usize = 1024;

/// How often the checkpointer copies committed WAL frames back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// WAL frames (pages) beyond which the checkpointer makes the WAL start over: about 32 MiB.
const RESTART_FRAMES: i64 = 8192;

/// Frames appended during one checkpoint pass below which the writer is asked to copy the rest
/// itself (a pause of a few milliseconds, plus the database file's fsync).
const HANDOVER_FRAMES: i64 = 512;

/// Waits this long for another process to release the journal before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(5);

pub(crate) struct LocalStore {
    jobs: mpsc::Sender<Job>,
    /// The console's reads, on a connection of their own: WAL lets them run beside the writer,
    /// and they never queue behind (or hold up) a batch of publishes.
    reader: Arc<std::sync::Mutex<Connection>>,
}

/// What a job gets on the writer thread: the open transaction, and the dedup index of the
/// delivery ids seen within the window (entries a job records are taken out again should the
/// transaction not commit).
pub(crate) struct Tx<'a> {
    pub(crate) conn: &'a Connection,
    pub(crate) shared: &'a Shared,
    pub(crate) dedup: &'a mut Dedup,
}

/// The journal file itself, wherever `path` leads: created (empty, which SQLite takes as a new
/// database) when missing, then resolved through every symlink. The lock is named after this
/// path, not after the text of the configured one, so that two daemons configured with two
/// spellings of one file (a symlink, `..`) take the same lock.
fn real_journal_path(path: &Path) -> Result<PathBuf, BusError> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|_| std::fs::canonicalize(path))
        .map_err(|e| BusError::Storage(format!("cannot open journal {}: {e}", path.display())))
}

/// Takes the journal's lock file (`<journal>.lock`, next to the real file: see
/// [`real_journal_path`]), held until the writer ends, waiting up to `wait` for another holder.
/// Only one daemon may write a journal: the delivery ids it dedups against live in its memory,
/// so a second writer would store duplicates the first one refuses. The CLI takes no lock: it
/// never stores an event, and purging keeps the ids it deletes.
fn lock_journal(path: &Path, wait: Duration) -> Result<std::fs::File, BusError> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = std::path::PathBuf::from(lock_path);
    let failed = |e: &dyn std::fmt::Display| {
        BusError::Storage(format!("cannot lock journal {}: {e}", lock_path.display()))
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| failed(&e))?;
    let deadline = Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                // A writer of this process that is still shutting down, or another daemon.
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(failed(&format_args!(
                    "another process holds it (waited {} ms); only one daemon may use a journal",
                    wait.as_millis()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(failed(&e)),
        }
    }
}

impl LocalStore {
    /// Opens (creating) the journal and starts the writer and checkpointer threads.
    pub(crate) fn open(path: &Path, shared: Arc<Shared>) -> Result<Self, BusError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                BusError::Storage(format!(
                    "cannot create journal directory {}: {e}",
                    dir.display()
                ))
            })?;
        }
        let path = &real_journal_path(path)?;
        let lock = lock_journal(path, LOCK_WAIT)?;
        let conn = Connection::open(path).map_err(sql::open_failed(path))?;
        sql::configure(&conn).map_err(sql::at_path(path))?;
        let started = Instant::now();
        let dedup = sql::load_dedup(&conn, now_ms().saturating_sub(dur_ms(shared.dedup_window)))?;
        tracing::info!(
            delivery_ids = dedup.len(),
            elapsed_ms = started.elapsed().as_millis(),
            "delivery ids within the dedup window loaded from the journal"
        );
        let recovered = sql::reset_inflight(&conn)?;
        if recovered > 0 {
            tracing::info!(
                recovered,
                "deliveries interrupted by the last shutdown are due again"
            );
        }
        shared
            .pending
            .store(sql::count_pending(&conn)?, Ordering::Relaxed);
        // The writer holds `stop`; the checkpointer ends when the writer does.
        let (stop, stopped) = mpsc::channel::<()>();
        // Checkpoints (copying the WAL back into the database file, and its fsync) run on a
        // connection of their own, so that commits do not wait behind them; the writer's own
        // automatic checkpoints are turned off.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let checkpoints = Connection::open(path).map_err(sql::open_failed(path))?;
        checkpoints.busy_timeout(Duration::from_secs(5))?;
        {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("clawlet-bus-checkpoint".to_owned())
                .spawn(move || checkpointer(&checkpoints, &stopped, &shared))
                .map_err(|e| {
                    BusError::Storage(format!("cannot start the journal checkpointer: {e}"))
                })?;
        }
        let reader = Connection::open(path).map_err(sql::open_failed(path))?;
        reader.busy_timeout(Duration::from_secs(5))?;
        let reader = Arc::new(std::sync::Mutex::new(reader));
        let (jobs, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("clawlet-bus-writer".to_owned())
            .spawn(move || {
                let _stop = stop;
                let _lock = lock;
                writer(conn, dedup, &rx, &shared);
            })
            .map_err(|e| BusError::Storage(format!("cannot start the journal writer: {e}")))?;
        Ok(Self { jobs, reader })
    }

    /// Runs `f` in the writer's next transaction and returns its result once committed.
    pub(crate) async fn call<T, F>(&self, f: F) -> Result<T, BusError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &Shared) -> Result<T, BusError> + Send + 'static,
    {
        self.call_then(
            |tx| f(tx.conn, tx.shared),
            |result, commit_error| match commit_error {
                Some(e) => Err(e.clone()),
                None => result,
            },
        )
        .await
    }

    /// Runs `f` in the writer's next transaction; once the commit's outcome is known (`None` for
    /// committed), `then` turns `f`'s result into the caller's answer, on the writer thread. What
    /// must happen only after a commit goes there: it runs even when the caller stopped waiting.
    pub(crate) async fn call_then<U, T, F, C>(&self, f: F, then: C) -> Result<T, BusError>
    where
        U: Send + 'static,
        T: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<U, BusError> + Send + 'static,
        C: FnOnce(Result<U, BusError>, Option<&BusError>) -> Result<T, BusError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |ctx| {
            let result = match ctx {
                Some(tx) => f(tx),
                None => Err(BusError::Closed),
            };
            Box::new(move |commit_error: Option<&BusError>| {
                let _ = tx.send(then(result, commit_error));
            })
        });
        self.jobs.send(job).map_err(|_| BusError::Closed)?;
        rx.await.map_err(|_| BusError::Closed)?
    }
}

/// What the bus asks of the journal besides a publish, each run in the writer's next
/// transaction.
impl LocalStore {
    /// The id of the event stored for `envelope`'s handler and delivery id within the dedup
    /// window, if any: asked of the writer thread, which owns the dedup index.
    pub(crate) async fn stored(&self, envelope: &Envelope) -> Result<Option<String>, BusError> {
        let key = dedup_key(&envelope.handler, &envelope.delivery_id);
        self.call_then(
            move |tx| {
                let window = dur_ms(tx.shared.dedup_window);
                tx.dedup.expire(now_ms().saturating_sub(window));
                Ok(tx.dedup.get(&key).map(|id| id.to_string()))
            },
            |found, _| found,
        )
        .await
    }

    pub(crate) async fn replay(&self, selector: ReplaySelector) -> Result<u64, BusError> {
        self.call(move |conn, shared| sql::replay(conn, &selector, Some(&shared.pending), now_ms()))
            .await
    }

    pub(crate) async fn list(&self, filter: ListFilter) -> Result<Vec<StoredEvent>, BusError> {
        self.call(move |conn, _| sql::list(conn, &filter, now_ms()))
            .await
    }

    pub(crate) async fn show(&self, id: String) -> Result<Option<StoredEvent>, BusError> {
        self.call(move |conn, _| sql::show(conn, &id)).await
    }

    pub(crate) async fn prune(&self) -> Result<u64, BusError> {
        self.call(|conn, shared| {
            let n = sql::prune(conn, shared.retention, shared.dedup_window, now_ms())?;
            shared
                .pending
                .store(sql::count_pending(conn)?, Ordering::Relaxed);
            Ok(n)
        })
        .await
    }

    /// Routes the events stored before any routes were registered, with the routes registered
    /// when the writer gets to it.
    pub(crate) async fn route_unrouted(&self) -> Result<u64, BusError> {
        self.call(|conn, shared| match shared.routes.load_full() {
            Some(routes) => sql::route_unrouted(conn, &routes, Some(&shared.pending), now_ms()),
            None => Ok(0),
        })
        .await
    }

    pub(crate) async fn claim(
        &self,
        limit: impl Fn(&str) -> usize + Send + 'static,
    ) -> Result<Claimed, BusError> {
        self.call(move |conn, _| sql::claim(conn, &limit, now_ms()))
            .await
    }

    /// Records an attempt's outcome, and the attempt in the history when there was one.
    pub(crate) async fn finish(
        &self,
        event_id: String,
        agent: String,
        outcome: Finish,
        note: Option<AttemptNote>,
    ) -> Result<(), BusError> {
        self.call(move |conn, shared| {
            sql::finish(
                conn,
                &event_id,
                &agent,
                &outcome,
                Some(&shared.pending),
                now_ms(),
            )?;
            if let Some(note) = &note {
                sql::record_attempt(conn, &event_id, &agent, note)?;
            }
            Ok(())
        })
        .await
    }

    /// Runs `f` in one read transaction on the reader connection, off the async threads.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T, BusError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, BusError> + Send + 'static,
    {
        let reader = Arc::clone(&self.reader);
        tokio::task::spawn_blocking(move || {
            let conn = reader
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let tx = rusqlite::Transaction::new_unchecked(&conn, TransactionBehavior::Deferred)?;
            let result = f(&tx)?;
            tx.commit()?;
            Ok(result)
        })
        .await
        .map_err(|e| BusError::Storage(format!("journal read task failed: {e}")))?
    }

    /// The ids of the events stored under `delivery_id` by any of `handlers` within the dedup
    /// window, from the writer's index (no scan of the journal).
    pub(crate) async fn lookup_delivery(
        &self,
        handlers: Vec<String>,
        delivery_id: String,
    ) -> Result<Vec<String>, BusError> {
        self.call_then(
            move |tx| {
                Ok(handlers
                    .iter()
                    .filter_map(|h| tx.dedup.get(&dedup_key(h, &delivery_id)))
                    .map(|id| id.to_string())
                    .collect())
            },
            |found, _| found,
        )
        .await
    }
}

/// Marks the bus closed however the writer ends, panics included.
struct AliveGuard<'a>(&'a Shared);

impl Drop for AliveGuard<'_> {
    fn drop(&mut self) {
        self.0.alive.store(false, Ordering::Relaxed);
    }
}

fn writer(mut conn: Connection, mut dedup: Dedup, rx: &mpsc::Receiver<Job>, shared: &Shared) {
    let _guard = AliveGuard(shared);
    let maintenance_every =
        (shared.retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let mut last_maintenance = Instant::now();
    loop {
        let first = match rx.recv_timeout(maintenance_every) {
            Ok(job) => Some(job),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        if last_maintenance.elapsed() >= maintenance_every {
            last_maintenance = Instant::now();
            maintenance(&mut conn, &mut dedup, shared);
        }
        finish_checkpoint(&conn, shared);
        let Some(first) = first else { continue };
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            Err(e) => {
                let e = BusError::Storage(format!("cannot begin a journal transaction: {e}"));
                tracing::error!(error = %e, "journal write failed");
                for job in jobs {
                    job(None)(Some(&e));
                }
                continue;
            }
        };
        let mark = dedup.mark();
        let mut ctx = Tx {
            conn: &tx,
            shared,
            dedup: &mut dedup,
        };
        let responders: Vec<Responder> = jobs.into_iter().map(|job| job(Some(&mut ctx))).collect();
        let committed = tx.commit();
        if committed.is_err() {
            dedup.rollback(mark);
        }
        match committed {
            Ok(()) => {
                shared.transactions.fetch_add(1, Ordering::Relaxed);
                for respond in responders {
                    respond(None);
                }
            }
            Err(e) => {
                let e = BusError::Storage(format!("journal commit failed: {e}"));
                tracing::error!(error = %e, "journal write failed");
                for respond in responders {
                    respond(Some(&e));
                }
                // The rolled-back jobs may have moved the counter.
                if let Ok(n) = sql::count_pending(&conn) {
                    shared.pending.store(n, Ordering::Relaxed);
                }
            }
        }
    }
}

/// Passive checkpoints: they copy what is committed without blocking the writer, which keeps
/// appending; SQLite starts the WAL over once it was copied completely.
fn checkpointer(conn: &Connection, stop: &mpsc::Receiver<()>, shared: &Shared) {
    let mut seen = shared.transactions.load(Ordering::Relaxed);
    let mut plan = RestartPlan::default();
    loop {
        let wait = if plan.hurrying {
            Duration::ZERO
        } else {
            CHECKPOINT_EVERY
        };
        match stop.recv_timeout(wait) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        let committed = shared.transactions.load(Ordering::Relaxed);
        if committed == seen {
            // Idle: the next pass copies everything and the WAL starts over by itself.
            plan.hurrying = false;
            continue;
        }
        seen = committed;
        // The second column is the number of frames in the WAL.
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1)) {
            Ok(frames) => {
                if plan.after_pass(frames) == AfterPass::HandOver {
                    shared.restart_wal.store(true, Ordering::Relaxed);
                }
            }
            Err(e) => tracing::warn!(error = %e, "journal checkpoint failed"),
        }
    }
}

/// What the checkpointer does after a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterPass {
    /// The WAL is small: the next pass after the usual pause.
    Wait,
    /// The WAL is large: the next pass at once.
    Hurry,
    /// Few frames arrived during the last pass: the writer copies the rest between two batches.
    HandOver,
}

/// Under steady load new frames arrive while a passive checkpoint copies, so the WAL is never
/// found fully copied and never starts over: it would grow without end, and every commit would
/// pay for extending a file (fresh blocks, zeroed pages). Once it is large, passes follow each
/// other without a pause until one finds that few frames were appended during the pass before it
/// (so few are left uncopied); the writer is then asked to copy those itself, so that its next
/// commit writes from the start of the file again.
#[derive(Debug, Default)]
struct RestartPlan {
    /// WAL frames at the previous pass: the difference is what was appended during that pass.
    last_frames: i64,
    hurrying: bool,
}

impl RestartPlan {
    /// Decides after a pass that found `frames` frames in the WAL.
    fn after_pass(&mut self, frames: i64) -> AfterPass {
        let appended = frames - self.last_frames;
        self.last_frames = frames;
        let was_hurrying = std::mem::take(&mut self.hurrying);
        if frames < RESTART_FRAMES {
            AfterPass::Wait
        } else if was_hurrying && appended <= HANDOVER_FRAMES {
            AfterPass::HandOver
        } else {
            self.hurrying = true;
            AfterPass::Hurry
        }
    }
}

/// Run by the writer between batches when the checkpointer asks: nothing is appended meanwhile, so
/// this passive checkpoint copies the WAL completely and the next transaction starts it over.
fn finish_checkpoint(conn: &Connection, shared: &Shared) {
    if shared.restart_wal.swap(false, Ordering::Relaxed)
        && let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
    {
        tracing::warn!(error = %e, "journal checkpoint failed");
    }
}

fn maintenance(conn: &mut Connection, dedup: &mut Dedup, shared: &Shared) {
    let now = now_ms();
    dedup.expire(now.saturating_sub(dur_ms(shared.dedup_window)));
    let pruned = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(BusError::from)
        .and_then(|tx| {
            let n = sql::prune(&tx, shared.retention, shared.dedup_window, now)?;
            tx.commit()?;
            Ok(n)
        });
    match pruned {
        Ok(0) => {}
        Ok(pruned) => tracing::debug!(pruned, "pruned delivered events past retention"),
        Err(e) => tracing::warn!(error = %e, "journal pruning failed"),
    }
    // The CLI may have replayed or purged events from another process.
    if let Ok(n) = sql::count_pending(conn) {
        shared.pending.store(n, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_takes_one_writer_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sqlite");
        let first = lock_journal(&path, Duration::ZERO).unwrap();
        let err = lock_journal(&path, Duration::from_millis(50)).unwrap_err();
        assert!(
            err.to_string()
                .contains("only one daemon may use a journal"),
            "{err}"
        );
        drop(first);
        lock_journal(&path, Duration::ZERO).expect("free again once the holder is gone");
    }

    /// Two spellings of one journal, a symlink and the file it points to, take one lock.
    #[test]
    fn a_symlinked_journal_takes_the_lock_of_the_file_it_points_to() {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["real", "other"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        let real = dir.path().join("real/journal.db");
        let other = dir.path().join("other/journal.db");
        std::os::unix::fs::symlink(&real, &other).unwrap();
        // The link dangles until the first open creates its target.
        let first = lock_journal(&real_journal_path(&other).unwrap(), Duration::ZERO).unwrap();
        assert!(real.is_file());
        let err = lock_journal(&real_journal_path(&real).unwrap(), Duration::ZERO).unwrap_err();
        assert!(err.to_string().contains("real/journal.db.lock"), "{err}");
        drop(first);
        let dotted = dir.path().join("other/../real/./journal.db");
        let _second = lock_journal(&real_journal_path(&dotted).unwrap(), Duration::ZERO).unwrap();
        let err = lock_journal(&real_journal_path(&other).unwrap(), Duration::ZERO).unwrap_err();
        assert!(err.to_string().contains("only one daemon"), "{err}");
    }

    #[test]
    fn a_small_wal_is_left_to_the_usual_passes() {
        let mut plan = RestartPlan::default();
        for frames in [10, 500, RESTART_FRAMES - 1] {
            assert_eq!(plan.after_pass(frames), AfterPass::Wait);
            assert!(!plan.hurrying);
        }
    }

    #[test]
    fn a_large_wal_is_copied_back_to_back_until_the_writer_can_finish_it() {
        let mut plan = RestartPlan::default();
        let start = RESTART_FRAMES + 10_000;
        assert_eq!(plan.after_pass(start), AfterPass::Hurry);
        // Many frames arrived during the hurried pass: another one at once.
        let busy = start + HANDOVER_FRAMES + 1;
        assert_eq!(plan.after_pass(busy), AfterPass::Hurry);
        // Few arrived: the writer copies the rest.
        assert_eq!(plan.after_pass(busy + HANDOVER_FRAMES), AfterPass::HandOver);
        assert!(!plan.hurrying);
        // The WAL started over and filled up again: hurried passes first, never a hand-over
        // straight after an ordinary pass.
        assert_eq!(plan.after_pass(RESTART_FRAMES + 1), AfterPass::Hurry);
    }

    #[test]
    fn a_hand_over_needs_a_hurried_pass_before_it() {
        let mut plan = RestartPlan::default();
        assert_eq!(plan.after_pass(RESTART_FRAMES - 1), AfterPass::Wait);
        // Only a few frames more than last time, but that pass was an ordinary one.
        assert_eq!(plan.after_pass(RESTART_FRAMES + 1), AfterPass::Hurry);
    }
}
