//! What the CLI and the bus ask of the journal besides publishing and delivering: list, show,
//! replay, purge, and pruning past retention.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use clawlet_events::Envelope;
use rusqlite::{Connection, OptionalExtension, params};

use super::codec::envelope_json;
use super::{INFLIGHT, refresh_state};
use crate::store::{dur_ms, from_ms};
use crate::{BusError, DeliveryRecord, DeliveryStatus, ListFilter, ReplaySelector, StoredEvent};

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
            "DELETE FROM attempts WHERE event_id IN (SELECT id FROM events WHERE {where_clause})"
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

/// Deletes at most `batch` of the delivered and dead events received before `cutoff` (unix ms),
/// oldest first; pending ones are kept, and dedup entries stay until their window ends. Returns
/// how many were deleted: fewer than `batch` means none is left.
pub(crate) fn purge_batch(conn: &Connection, cutoff: i64, batch: usize) -> Result<u64, BusError> {
    // The CLI does not know the daemon's dedup window: every id is kept, and the daemon's next
    // pruning drops those past it. The batch is chosen anew by each statement below, and chosen
    // the same way, since the `events` rows only change in the last one.
    let batch = i64::try_from(batch).unwrap_or(i64::MAX);
    delete_events(
        conn,
        &format!(
            "seq IN (SELECT seq FROM events WHERE state != 'pending' AND received_at < ?1
                     ORDER BY received_at, seq LIMIT {batch})"
        ),
        cutoff,
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

pub(super) fn parse_status(s: &str) -> DeliveryStatus {
    match s {
        "delivered" => DeliveryStatus::Delivered,
        "dead" => DeliveryStatus::Dead,
        _ => DeliveryStatus::Pending,
    }
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

/// Where a listing stands: the last event returned, in the listing's order (newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListCursor {
    received_at: i64,
    id: String,
}

impl ListCursor {
    /// Before the newest event.
    pub(crate) fn start() -> Self {
        Self {
            received_at: i64::MAX,
            id: String::new(),
        }
    }
}

/// The next at most `page` events matching `filter` after `cursor` in [`list`]'s order: their
/// ids, and the cursor after the last. `since` is the filter's age already turned into a time,
/// so that every page of one listing uses the same one.
pub(crate) fn list_page(
    conn: &Connection,
    filter: &ListFilter,
    since: Option<i64>,
    cursor: &ListCursor,
    page: usize,
) -> Result<Vec<(String, ListCursor)>, BusError> {
    // The bounds on `received_at` are plain ranges, so that each page starts where the last one
    // ended in the `events_received` index instead of scanning from the newest event again.
    Ok(conn
        .prepare_cached(
            "SELECT e.id, e.received_at FROM events e
             WHERE e.received_at >= ?4 AND e.received_at <= ?5
               AND (e.received_at < ?5 OR e.id < ?6)
               AND (?1 IS NULL OR e.handler = ?1) AND (?2 IS NULL OR e.type = ?2)
               AND (?3 IS NULL OR e.state = ?3)
             ORDER BY e.received_at DESC, e.id DESC LIMIT ?7",
        )?
        .query_map(
            params![
                filter.handler,
                filter.event_type,
                filter.status.map(DeliveryStatus::as_str),
                since.unwrap_or(i64::MIN),
                cursor.received_at,
                cursor.id,
                i64::try_from(page).unwrap_or(i64::MAX)
            ],
            |r| {
                let id: String = r.get(0)?;
                let cursor = ListCursor {
                    received_at: r.get(1)?,
                    id: id.clone(),
                };
                Ok((id, cursor))
            },
        )?
        .collect::<Result<_, _>>()?)
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
