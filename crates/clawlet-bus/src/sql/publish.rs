//! Publish: dedup against the index of delivery ids, then one event's rows in the batch
//! transaction; and routing the events stored before any routes were registered.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clawlet_events::EnvelopeJson;
use rusqlite::{Connection, params};

use super::codec::{Codec, STREAM_ENVELOPE_BYTES, stored_json};
use super::{INFLIGHT, adjust, refresh_state};
use crate::dedup::{Dedup, DedupKey, EventRef, dedup_key};
use crate::spec::Routes;
use crate::store::{Fresh, Inserted, Placement, to_ms};
use crate::{BusError, Published};

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

/// What the writer needs to insert one event.
pub(crate) struct NewEvent {
    pub(crate) id: String,
    pub(crate) handler: String,
    pub(crate) source: &'static str,
    pub(crate) event_type: String,
    /// GitHub's action, which routes match as `type.action`.
    pub(crate) action: Option<String>,
    pub(crate) delivery_id: String,
    pub(crate) received_at: i64,
    /// The envelope's JSON, shared with deliveries handed straight to the dispatcher.
    pub(crate) json: EnvelopeJson,
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
            action: envelope.action.clone(),
            delivery_id: envelope.delivery_id.clone(),
            received_at: to_ms(envelope.received_at),
            json: fresh.json.clone(),
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
        r.agents_for(&ev.handler, &ev.event_type, ev.action.as_deref())
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

/// Stores the envelope of the event just inserted. A bound value is copied by SQLite and copied
/// again into the row's record, so a large envelope gets a zero-filled row and is written into it
/// through SQLite's incremental blob I/O, page by page, piece by piece: the request body is
/// written from its own buffer.
fn insert_envelope(conn: &Connection, ev: &NewEvent) -> Result<(), BusError> {
    let json = &ev.json;
    if json.len() < STREAM_ENVELOPE_BYTES {
        let text = json.text();
        let (bytes, codec) = match &ev.packed {
            Some(packed) => (packed.as_slice(), Codec::Lz4),
            None => (text.as_bytes(), Codec::Raw),
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
    for piece in json.pieces() {
        std::io::Write::write_all(&mut blob, piece)
            .map_err(|e| BusError::Storage(format!("cannot write the envelope: {e}")))?;
    }
    Ok(())
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

/// Creates delivery rows for events stored before any routes were registered. The `events` table
/// has no action column (routes matching `type.action` are what needs one), so it is read from
/// the stored envelope: this runs once when a dispatcher starts, over the events stored without
/// one. An envelope that cannot be decoded counts as having no action; its delivery goes dead
/// when claimed, as any such envelope's does.
pub(crate) fn route_unrouted(
    conn: &Connection,
    routes: &Routes,
    counter: Option<&AtomicU64>,
    now: i64,
) -> Result<u64, BusError> {
    let rows: Vec<(String, String, String, Option<String>)> = conn
        .prepare_cached(
            "SELECT e.id, e.handler, e.type, b.envelope, b.codec
             FROM events e JOIN envelopes b ON b.seq = e.seq WHERE e.routed = 0",
        )?
        .query_map([], |r| {
            let action = stored_json(r, 3)?
                .ok()
                .and_then(|json| stored_action(&json));
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, action))
        })?
        .collect::<Result<_, _>>()?;
    for (id, handler, event_type, action) in &rows {
        for agent in routes.agents_for(handler, event_type, action.as_deref()) {
            insert_delivery(conn, id, &agent, "pending", 0, now)?;
        }
        conn.prepare_cached("UPDATE events SET routed = 1 WHERE id = ?1")?
            .execute([id])?;
        refresh_state(conn, id, counter)?;
    }
    Ok(rows.len() as u64)
}

/// The `action` of a stored envelope's JSON, read without building the envelope's payload.
fn stored_action(json: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Action {
        action: Option<String>,
    }
    serde_json::from_str::<Action>(json).ok()?.action
}
