//! The memory backend's side of the console (see `crate::admin`): listings over the events
//! still remembered (pending and dead ones: a delivered event is forgotten at once), the latest
//! attempts of each, replays and purges.

use std::collections::BTreeMap;

use super::{Event, MemStore, State, Status};
use crate::DeliveryStatus;
use crate::admin::{
    AgentBacklog, AttemptNote, AttemptRecord, EventCursor, EventQuery, EventSummary, EventsPage,
    MEM_ATTEMPTS_PER_DELIVERY,
};
use crate::store::{Shared, from_ms, to_ms};

/// Attempts kept per event (the latest), whatever its number of deliveries.
pub(super) const MEM_ATTEMPTS: usize = 2 * MEM_ATTEMPTS_PER_DELIVERY;

impl Event {
    fn matches(&self, q: &EventQuery) -> bool {
        let env = &self.fresh.envelope;
        let at = to_ms(env.received_at);
        let status = self.status();
        q.handler.as_ref().is_none_or(|h| *h == env.handler)
            && q.event_type.as_ref().is_none_or(|t| *t == env.event_type)
            && q.status.is_none_or(|s| s == status)
            && q.delivery_id.as_ref().is_none_or(|d| *d == env.delivery_id)
            && q.from_ms.is_none_or(|from| at >= from)
            && q.to_ms.is_none_or(|to| at < to)
            && q.agent.as_ref().is_none_or(|agent| {
                self.deliveries.iter().any(|d| {
                    d.agent == *agent
                        && (q.status != Some(DeliveryStatus::Dead) || d.status == Status::Dead)
                })
            })
    }

    fn summary(&self) -> EventSummary {
        let env = &self.fresh.envelope;
        EventSummary {
            id: env.id.clone(),
            handler: env.handler.clone(),
            event_type: env.event_type.clone(),
            action: env.action.clone(),
            delivery_id: env.delivery_id.clone(),
            received_at: env.received_at,
            summary: env.summary.clone(),
            status: self.status(),
        }
    }

    /// The listing's order key: newest first, ties by id descending.
    fn key(&self) -> (i64, &str) {
        (
            to_ms(self.fresh.envelope.received_at),
            &self.fresh.envelope.id,
        )
    }
}

impl State {
    /// The matching events in the listing's order. Memory holds only what is still moving or
    /// dead, so a scan is the whole of it.
    fn matching<'a>(&'a self, q: &EventQuery) -> Vec<(u64, &'a Event)> {
        let mut found: Vec<(u64, &Event)> = self
            .events
            .iter()
            .filter(|(_, e)| e.matches(q))
            .map(|(seq, e)| (*seq, e))
            .collect();
        found.sort_by(|(_, a), (_, b)| b.key().cmp(&a.key()));
        found
    }
}

impl MemStore {
    pub(crate) fn page(
        &self,
        q: &EventQuery,
        after: Option<&EventCursor>,
        limit: usize,
    ) -> EventsPage {
        let state = self.lock();
        let mut rows = state
            .matching(q)
            .into_iter()
            .map(|(_, e)| e)
            .filter(|e| after.is_none_or(|c| e.key() < (c.received_at_ms, c.id.as_str())));
        let events: Vec<EventSummary> = rows.by_ref().take(limit).map(Event::summary).collect();
        let next = if rows.next().is_some() {
            events.last().map(|last| EventCursor {
                received_at_ms: to_ms(last.received_at),
                id: last.id.clone(),
            })
        } else {
            None
        };
        EventsPage { events, next }
    }

    pub(crate) fn count(&self, q: &EventQuery) -> u64 {
        self.lock().matching(q).len() as u64
    }

    pub(crate) fn attempts(&self, event_id: &str) -> Vec<AttemptRecord> {
        let state = self.lock();
        state
            .ids
            .get(event_id)
            .and_then(|seq| state.events.get(seq))
            .map(|e| e.attempts.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Keeps an attempt in its event's history, the oldest dropped beyond [`MEM_ATTEMPTS`]. An
    /// event already forgotten (delivered) keeps nothing.
    pub(crate) fn record_attempt(&self, event_id: &str, agent: &str, note: &AttemptNote) {
        let mut state = self.lock();
        let Some(&seq) = state.ids.get(event_id) else {
            return;
        };
        if let Some(event) = state.events.get_mut(&seq) {
            if event.attempts.len() >= MEM_ATTEMPTS {
                event.attempts.pop_front();
            }
            event.attempts.push_back(AttemptRecord {
                agent: agent.to_owned(),
                at: from_ms(note.at).unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
                outcome: note.outcome.to_owned(),
                latency: note.latency,
                error: note.error.clone(),
            });
        }
    }

    /// Sets `event_id`'s deliveries (only `agent`'s when given) pending again; returns how many.
    pub(crate) fn replay_to(
        &self,
        shared: &Shared,
        event_id: &str,
        agent: Option<&str>,
        now: i64,
    ) -> u64 {
        let mut state = self.lock();
        let Some(&seq) = state.ids.get(event_id) else {
            return 0;
        };
        state.requeue(shared, seq, now, |d| {
            d.status != Status::InFlight && agent.is_none_or(|a| d.agent == a)
        })
    }

    /// Sends the dead deliveries of the matching dead events again; returns how many events.
    pub(crate) fn replay_dead(&self, shared: &Shared, q: &EventQuery, now: i64) -> u64 {
        let q = EventQuery {
            status: Some(DeliveryStatus::Dead),
            ..q.clone()
        };
        let mut state = self.lock();
        let seqs: Vec<u64> = state.matching(&q).into_iter().map(|(s, _)| s).collect();
        let agent = q.agent.as_deref();
        seqs.into_iter()
            .filter(|&seq| {
                state.requeue(shared, seq, now, |d| {
                    d.status == Status::Dead && agent.is_none_or(|a| d.agent == a)
                }) > 0
            })
            .count() as u64
    }

    /// Forgets the matching dead events (their delivery ids stay for dedup); returns how many.
    pub(crate) fn purge_dead(&self, q: &EventQuery) -> u64 {
        let q = EventQuery {
            status: Some(DeliveryStatus::Dead),
            ..q.clone()
        };
        let mut state = self.lock();
        let seqs: Vec<u64> = state.matching(&q).into_iter().map(|(s, _)| s).collect();
        for &seq in &seqs {
            state.forget(seq);
        }
        seqs.len() as u64
    }

    pub(crate) fn backlog(&self) -> Vec<AgentBacklog> {
        let state = self.lock();
        let mut out: BTreeMap<&str, AgentBacklog> = BTreeMap::new();
        for d in state.events.values().flat_map(|e| &e.deliveries) {
            let entry = out.entry(&d.agent).or_insert_with(|| AgentBacklog {
                agent: d.agent.clone(),
                pending: 0,
                dead: 0,
            });
            match d.status {
                Status::Pending | Status::InFlight => entry.pending += 1,
                Status::Dead => entry.dead += 1,
                Status::Delivered => {}
            }
        }
        out.into_values().collect()
    }

    pub(crate) fn lookup_delivery(&self, handlers: &[String], delivery_id: &str) -> Vec<String> {
        let state = self.lock();
        handlers
            .iter()
            .filter_map(|h| state.dedup.get(&crate::dedup::dedup_key(h, delivery_id)))
            .map(|id| id.to_string())
            .collect()
    }
}

impl State {
    /// Sets the deliveries of event `seq` that `pick` selects pending and due now, attempts
    /// reset; returns how many.
    fn requeue(
        &mut self,
        shared: &Shared,
        seq: u64,
        now: i64,
        pick: impl Fn(&super::Delivery) -> bool,
    ) -> u64 {
        let Some(event) = self.events.get_mut(&seq) else {
            return 0;
        };
        let was = event.status();
        let mut old_due = Vec::new();
        let mut reset = Vec::new();
        for d in event.deliveries.iter_mut().filter(|d| pick(d)) {
            if d.status == Status::Pending {
                old_due.push((d.next_attempt_at, d.agent.clone()));
            }
            d.status = Status::Pending;
            d.attempts = 0;
            d.next_attempt_at = now;
            d.last_error = None;
            reset.push(d.agent.clone());
        }
        let is = event.status();
        for (at, agent) in old_due {
            self.due.remove(&(at, seq, agent));
        }
        let n = reset.len() as u64;
        for agent in reset {
            self.due.insert((now, seq, agent));
        }
        self.moved(shared, was, is);
        n
    }
}
