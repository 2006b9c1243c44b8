//! The dispatcher's side: claiming due deliveries, and recording how each attempt ended.

use rusqlite::{Connection, params};

use super::codec::stored_json;
use super::{INFLIGHT, refresh_state};
use crate::BusError;
use crate::store::{Claimed, Finish, Payload, Work};
use std::sync::atomic::AtomicU64;

/// A previous process died while these were being delivered: they are due again.
pub(crate) fn reset_inflight(conn: &Connection) -> Result<usize, BusError> {
    // The literal (not a parameter) lets SQLite use the partial index `deliveries_inflight`.
    Ok(conn.execute(
        "UPDATE deliveries SET status = 'pending' WHERE status = 'inflight'",
        [],
    )?)
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
                        Ok(json) => Payload::Stored(json.into()),
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
