//! The console's statements: filtered listings in keyset pages, counts, the attempts history,
//! replay to one agent, and bulk replay and purge of dead letters.
//!
//! A listing's SQL is assembled from the filters actually set, with the state as a literal,
//! so that SQLite can pick the index that fits (`events_handler`, `events_type`, the partial
//! `events_pending` and `events_dead`, or `events_received`) instead of one plan with every
//! filter optional; `plans_use_indexes` in the tests holds every combination to that.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{Connection, params, params_from_iter};

use super::codec::envelope_json;
use super::queries::parse_status;
use super::{INFLIGHT, refresh_state};
use crate::admin::{
    AgentBacklog, AttemptNote, AttemptRecord, EventCursor, EventQuery, EventSummary, EventsPage,
};
use crate::store::from_ms;
use crate::{BusError, DeliveryStatus};

/// Deleted per statement group by a bulk purge, so that no statement builds a huge list.
const PURGE_CHUNK: usize = 500;

/// The `WHERE` of a listing and its parameters. `ids` replaces the delivery id filter with the
/// event ids the dedup index gave for it.
fn conditions(
    q: &EventQuery,
    ids: Option<&[String]>,
    after: Option<&EventCursor>,
) -> (String, Vec<Value>) {
    let mut sql = Vec::new();
    let mut values = Vec::new();
    let bind = |clause: &str, value: Value, values: &mut Vec<Value>| {
        values.push(value);
        clause.replace('?', &format!("?{}", values.len()))
    };
    if let Some(h) = &q.handler {
        sql.push(bind("e.handler = ?", Value::Text(h.clone()), &mut values));
    }
    if let Some(t) = &q.event_type {
        sql.push(bind("e.type = ?", Value::Text(t.clone()), &mut values));
    }
    if let Some(status) = q.status {
        // A literal, so that a partial index on the state can be chosen.
        sql.push(format!("e.state = '{}'", status.as_str()));
    }
    match (ids, &q.delivery_id) {
        (Some(ids), _) => {
            let list: Vec<String> = ids
                .iter()
                .map(|id| bind("?", Value::Text(id.clone()), &mut values))
                .collect();
            sql.push(format!("e.id IN ({})", list.join(", ")));
        }
        (None, Some(d)) => sql.push(bind(
            "e.delivery_id = ?",
            Value::Text(d.clone()),
            &mut values,
        )),
        (None, None) => {}
    }
    if let Some(agent) = &q.agent {
        let dead = if q.status == Some(DeliveryStatus::Dead) {
            " AND d.status = 'dead'"
        } else {
            ""
        };
        let clause = bind(
            "EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.agent = ?",
            Value::Text(agent.clone()),
            &mut values,
        );
        sql.push(format!("{clause}{dead})"));
    }
    if let Some(from) = q.from_ms {
        sql.push(bind(
            "e.received_at >= ?",
            Value::Integer(from),
            &mut values,
        ));
    }
    if let Some(to) = q.to_ms {
        sql.push(bind("e.received_at < ?", Value::Integer(to), &mut values));
    }
    match after {
        Some(c) => {
            // A plain range on `received_at` first, so the scan starts where the last page ended.
            let at = bind("?", Value::Integer(c.received_at_ms), &mut values);
            let id = bind("?", Value::Text(c.id.clone()), &mut values);
            sql.push(format!(
                "e.received_at <= {at} AND (e.received_at < {at} OR e.id < {id})"
            ));
        }
        // Always a range on `received_at`, even an open one: without it, SQLite may take a
        // filter on the state for a reason to scan the table and sort every match.
        None => sql.push(bind(
            "e.received_at <= ?",
            Value::Integer(i64::MAX),
            &mut values,
        )),
    }
    let clause = if sql.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", sql.join(" AND "))
    };
    (clause, values)
}

/// The statement behind [`page`], for the query-plan tests.
pub(crate) fn page_sql(
    q: &EventQuery,
    ids: Option<&[String]>,
    after: Option<&EventCursor>,
    limit: usize,
) -> (String, Vec<Value>) {
    let (clause, values) = conditions(q, ids, after);
    let sql = format!(
        "SELECT e.id, e.handler, e.type, e.delivery_id, e.received_at, e.state, b.envelope, b.codec
         FROM events e JOIN envelopes b ON b.seq = e.seq {clause}
         ORDER BY e.received_at DESC, e.id DESC LIMIT {}",
        limit.saturating_add(1)
    );
    (sql, values)
}

/// The fields of the stored envelope a listing shows besides the row's columns.
#[derive(serde::Deserialize)]
struct Head {
    summary: String,
    action: Option<String>,
}

/// At most `limit` events matching `q` after `after`, newest first.
pub(crate) fn page(
    conn: &Connection,
    q: &EventQuery,
    ids: Option<&[String]>,
    after: Option<&EventCursor>,
    limit: usize,
) -> Result<EventsPage, BusError> {
    let (sql, values) = page_sql(q, ids, after, limit);
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(values), |r| {
        let received_at: i64 = r.get(4)?;
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            received_at,
            r.get::<_, String>(5)?,
            envelope_json(r, 6)?,
        ))
    })?;
    let mut events = Vec::with_capacity(limit.min(512));
    let mut more = false;
    for row in rows {
        let (id, handler, event_type, delivery_id, received_at, state, json) = row?;
        if events.len() == limit {
            more = true;
            break;
        }
        let head: Head = serde_json::from_str(&json)
            .map_err(|e| BusError::Storage(format!("event {id}: unreadable envelope: {e}")))?;
        events.push(EventSummary {
            id,
            handler,
            event_type,
            action: head.action,
            delivery_id,
            received_at: from_ms(received_at).unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
            summary: head.summary,
            status: parse_status(&state),
        });
    }
    let next = more
        .then(|| events.last())
        .flatten()
        .map(|last: &EventSummary| EventCursor {
            received_at_ms: crate::store::to_ms(last.received_at),
            id: last.id.clone(),
        });
    Ok(EventsPage { events, next })
}

/// How many events match `q`.
pub(crate) fn count(
    conn: &Connection,
    q: &EventQuery,
    ids: Option<&[String]>,
) -> Result<u64, BusError> {
    let (clause, values) = conditions(q, ids, None);
    let n: i64 = conn
        .prepare_cached(&format!("SELECT COUNT(*) FROM events e {clause}"))?
        .query_row(params_from_iter(values), |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The `seq` and id of every event matching `q`, oldest first.
fn matching(
    conn: &Connection,
    q: &EventQuery,
    ids: Option<&[String]>,
) -> Result<Vec<(i64, String)>, BusError> {
    let (clause, values) = conditions(q, ids, None);
    Ok(conn
        .prepare(&format!(
            "SELECT e.seq, e.id FROM events e {clause} ORDER BY e.received_at, e.id"
        ))?
        .query_map(params_from_iter(values), |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?)
}

/// Records one attempt in the history.
pub(crate) fn record_attempt(
    conn: &Connection,
    event_id: &str,
    agent: &str,
    note: &AttemptNote,
) -> Result<(), BusError> {
    conn.prepare_cached(
        "INSERT INTO attempts (event_id, agent, at, outcome, latency_us, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        event_id,
        agent,
        note.at,
        note.outcome,
        i64::try_from(note.latency.as_micros()).unwrap_or(i64::MAX),
        note.error
    ])?;
    Ok(())
}

/// Every recorded attempt of `event_id`, oldest first.
pub(crate) fn attempts(conn: &Connection, event_id: &str) -> Result<Vec<AttemptRecord>, BusError> {
    Ok(conn
        .prepare_cached(
            "SELECT agent, at, outcome, latency_us, error FROM attempts WHERE event_id = ?1
             ORDER BY at, rowid",
        )?
        .query_map([event_id], |r| {
            let at: i64 = r.get(1)?;
            let latency: i64 = r.get(3)?;
            Ok(AttemptRecord {
                agent: r.get(0)?,
                at: from_ms(at).unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
                outcome: r.get(2)?,
                latency: Duration::from_micros(u64::try_from(latency).unwrap_or(0)),
                error: r.get(4)?,
            })
        })?
        .collect::<Result<_, _>>()?)
}

/// Sets `event_id`'s deliveries (only `agent`'s when given) pending again, attempts reset;
/// returns how many deliveries were requeued. Deliveries in flight are left alone.
pub(crate) fn replay_to(
    conn: &Connection,
    event_id: &str,
    agent: Option<&str>,
    counter: Option<&AtomicU64>,
    now: i64,
) -> Result<u64, BusError> {
    let n = conn
        .prepare_cached(
            "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?3,
                    last_error = NULL, updated_at = ?3
             WHERE event_id = ?1 AND status != ?4 AND (?2 IS NULL OR agent = ?2)",
        )?
        .execute(params![event_id, agent, now, INFLIGHT])?;
    if n > 0 {
        refresh_state(conn, event_id, counter)?;
    }
    Ok(n as u64)
}

/// Sends the dead deliveries of the dead events matching `q` (only `q.agent`'s when set) again;
/// returns how many events were requeued.
pub(crate) fn replay_dead(
    conn: &Connection,
    q: &EventQuery,
    ids: Option<&[String]>,
    counter: Option<&AtomicU64>,
    now: i64,
) -> Result<u64, BusError> {
    let q = dead_only(q);
    let events = matching(conn, &q, ids)?;
    let mut stmt = conn.prepare_cached(
        "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?3,
                last_error = NULL, updated_at = ?3
         WHERE event_id = ?1 AND status = 'dead' AND (?2 IS NULL OR agent = ?2)",
    )?;
    let mut requeued = 0;
    for (_, id) in &events {
        if stmt.execute(params![id, q.agent, now])? > 0 {
            refresh_state(conn, id, counter)?;
            requeued += 1;
        }
    }
    Ok(requeued)
}

/// Deletes the dead events matching `q`, with their envelopes, deliveries and attempts; their
/// delivery ids go to the `dedup` table, as a purge's do. Returns how many were deleted.
pub(crate) fn purge_dead(
    conn: &Connection,
    q: &EventQuery,
    ids: Option<&[String]>,
) -> Result<u64, BusError> {
    let events = matching(conn, &dead_only(q), ids)?;
    for chunk in events.chunks(PURGE_CHUNK) {
        let seqs: Vec<String> = chunk.iter().map(|(seq, _)| seq.to_string()).collect();
        let seqs = seqs.join(",");
        conn.execute_batch(&format!(
            "INSERT OR REPLACE INTO dedup (handler, delivery_id, event_id, first_seen)
               SELECT handler, delivery_id, id, received_at FROM events WHERE seq IN ({seqs});
             DELETE FROM deliveries WHERE event_id IN (SELECT id FROM events WHERE seq IN ({seqs}));
             DELETE FROM attempts WHERE event_id IN (SELECT id FROM events WHERE seq IN ({seqs}));
             DELETE FROM envelopes WHERE seq IN ({seqs});
             DELETE FROM events WHERE seq IN ({seqs});"
        ))?;
    }
    Ok(events.len() as u64)
}

fn dead_only(q: &EventQuery) -> EventQuery {
    EventQuery {
        status: Some(DeliveryStatus::Dead),
        ..q.clone()
    }
}

/// Per agent: deliveries pending or in flight, and dead ones. Read from the partial indexes
/// (only rows still moving, and dead rows), never from every delivery.
pub(crate) fn backlog(conn: &Connection) -> Result<Vec<AgentBacklog>, BusError> {
    let mut out: std::collections::BTreeMap<String, AgentBacklog> = Default::default();
    let mut add = |sql: &str, dead: bool| -> Result<(), BusError> {
        let rows: Vec<(String, i64)> = conn
            .prepare_cached(sql)?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        for (agent, n) in rows {
            let entry = out.entry(agent.clone()).or_insert(AgentBacklog {
                agent,
                pending: 0,
                dead: 0,
            });
            let n = u64::try_from(n).unwrap_or(0);
            if dead {
                entry.dead += n;
            } else {
                entry.pending += n;
            }
        }
        Ok(())
    };
    add(
        "SELECT agent, COUNT(*) FROM deliveries WHERE status = 'pending' GROUP BY agent",
        false,
    )?;
    add(
        "SELECT agent, COUNT(*) FROM deliveries WHERE status = 'inflight' GROUP BY agent",
        false,
    )?;
    add(
        "SELECT agent, COUNT(*) FROM deliveries WHERE status = 'dead' GROUP BY agent",
        true,
    )?;
    Ok(out.into_values().collect())
}
