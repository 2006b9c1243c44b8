//! The SQLite backend's journal: its schema and every statement run against it, shared by the
//! writer thread ([`crate::local`]) and by [`crate::Journal`] (the CLI, in another process). One
//! file per concern: `schema` (creation and migrations), `publish` (dedup and inserting events),
//! `claim` (handing deliveries out and recording their outcome), `queries` (list, show, replay,
//! purge and prune), and `codec` (how an envelope's bytes are stored). The delivery-state
//! bookkeeping they all share lives here.

mod admin;
mod claim;
mod codec;
mod publish;
mod queries;
mod schema;

use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::{Connection, OptionalExtension, params};

use crate::BusError;

#[cfg(test)]
pub(crate) use admin::page_sql;
pub(crate) use admin::{
    attempts, backlog, count, page, purge_dead, record_attempt, replay_dead, replay_to,
};
pub(crate) use claim::{claim, finish, reset_inflight};
#[cfg(test)]
pub(crate) use publish::insert_event;
pub(crate) use publish::{
    InsertLimits, NewEvent, insert_event_placing, load_dedup, route_unrouted,
};
pub(crate) use queries::{ListCursor, list, list_page, prune, purge_batch, replay, show};
pub(crate) use schema::{at_path, configure, open_failed};

/// Delivery rows claimed by a dispatcher; reset to pending when the process restarts.
const INFLIGHT: &str = "inflight";

/// The number of pending events, to seed the back-pressure counter.
pub(crate) fn count_pending(conn: &Connection) -> Result<u64, BusError> {
    let n: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM events WHERE state = 'pending'")?
        .query_row([], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
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

#[cfg(test)]
mod tests;
