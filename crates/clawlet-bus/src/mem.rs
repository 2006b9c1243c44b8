//! The memory backend: the journal's bookkeeping in plain maps behind one mutex. Nothing survives
//! the process, so it only suits development and tests; it is bounded all the same: a delivered
//! event is forgotten as soon as its last delivery is recorded (its delivery id stays for dedup
//! until the dedup window ends), and `max_pending` caps the rest.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use clawlet_events::Envelope;

use crate::dedup::{Dedup, EventRef, dedup_key};
use crate::spec::Routes;
use crate::store::{
    Claimed, FULL_RETRY_AFTER, Finish, Fresh, Inserted, Payload, Placement, Shared, Work, dur_ms,
    from_ms, to_ms,
};
use crate::{
    BusError, DeliveryRecord, DeliveryStatus, ListFilter, Published, ReplaySelector, StoredEvent,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pending,
    InFlight,
    Delivered,
    Dead,
}

#[derive(Debug)]
struct Delivery {
    agent: String,
    status: Status,
    attempts: u32,
    next_attempt_at: i64,
    last_error: Option<String>,
}

#[derive(Debug)]
struct Event {
    fresh: Arc<Fresh>,
    routed: bool,
    deliveries: Vec<Delivery>,
    /// The latest attempts, oldest first, at most `console::MEM_ATTEMPTS`.
    attempts: std::collections::VecDeque<crate::admin::AttemptRecord>,
}

impl Event {
    /// The event's state, as the SQLite journal computes it from its delivery rows.
    fn status(&self) -> DeliveryStatus {
        let moving = self
            .deliveries
            .iter()
            .any(|d| matches!(d.status, Status::Pending | Status::InFlight));
        if !self.routed || moving {
            DeliveryStatus::Pending
        } else if self.deliveries.iter().any(|d| d.status == Status::Dead) {
            DeliveryStatus::Dead
        } else {
            DeliveryStatus::Delivered
        }
    }

    fn stored(&self) -> Result<StoredEvent, BusError> {
        let mut deliveries: Vec<DeliveryRecord> = self
            .deliveries
            .iter()
            .map(|d| {
                let status = match d.status {
                    Status::Pending | Status::InFlight => DeliveryStatus::Pending,
                    Status::Delivered => DeliveryStatus::Delivered,
                    Status::Dead => DeliveryStatus::Dead,
                };
                DeliveryRecord {
                    agent: d.agent.clone(),
                    status,
                    attempts: d.attempts,
                    last_error: d.last_error.clone(),
                    next_attempt_at: (status == DeliveryStatus::Pending)
                        .then(|| from_ms(d.next_attempt_at))
                        .flatten(),
                }
            })
            .collect();
        deliveries.sort_by(|a, b| a.agent.cmp(&b.agent));
        Ok(StoredEvent {
            envelope: self.fresh.full_envelope()?,
            status: self.status(),
            deliveries,
        })
    }
}

#[derive(Debug, Default)]
struct State {
    next_seq: u64,
    /// Events still remembered, by arrival order.
    events: BTreeMap<u64, Event>,
    ids: HashMap<String, u64>,
    /// Delivery ids seen within the dedup window.
    dedup: Dedup,
    /// Pending deliveries by due time: (due, event seq, agent).
    due: BTreeSet<(i64, u64, String)>,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct MemStore {
    state: Mutex<State>,
}

impl MemStore {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change below completes before it can panic; keep serving after one.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Dedups and stores an event; `place` chooses each routed agent's [`Placement`] (in flight
    /// when the dispatcher has a slot for it now, due otherwise, or delivered already).
    pub(crate) fn insert(
        &self,
        shared: &Shared,
        fresh: &Arc<Fresh>,
        routes: Option<&Routes>,
        now: i64,
        place: &dyn Fn(&str) -> Placement,
    ) -> Result<Inserted, BusError> {
        let env = &fresh.envelope;
        let key = dedup_key(&env.handler, &env.delivery_id);
        let mut state = self.lock();
        state
            .dedup
            .expire(now.saturating_sub(dur_ms(shared.dedup_window)));
        if let Some(event_id) = state.dedup.get(&key) {
            return Ok(Inserted::duplicate(event_id.to_string()));
        }
        if shared.pending.load(Ordering::Relaxed) >= shared.max_pending {
            return Err(BusError::Full {
                retry_after: FULL_RETRY_AFTER,
            });
        }
        let agents =
            routes.map(|r| r.agents_for(&env.handler, &env.event_type, env.action.as_deref()));
        let seq = state.next_seq;
        state.next_seq += 1;
        let mut taken = Vec::new();
        let mut deliveries = Vec::new();
        let mut left_pending = false;
        for agent in agents.iter().flatten() {
            let (status, attempts) = match place(agent) {
                Placement::InFlight => {
                    taken.push(agent.clone());
                    (Status::InFlight, 0)
                }
                Placement::Pending => {
                    state.due.insert((now, seq, agent.clone()));
                    left_pending = true;
                    (Status::Pending, 0)
                }
                Placement::Delivered => (Status::Delivered, 1),
            };
            deliveries.push(Delivery {
                agent: agent.clone(),
                status,
                attempts,
                next_attempt_at: now,
                last_error: None,
            });
        }
        state.dedup.insert(key, EventRef::new(&env.id), now);
        let event = Event {
            fresh: Arc::clone(fresh),
            routed: agents.is_some(),
            deliveries,
            attempts: std::collections::VecDeque::new(),
        };
        // An event no route wants, or whose every delivery was made already, is delivered at
        // once, and forgotten like any delivered one.
        if event.status() == DeliveryStatus::Pending {
            shared.pending.fetch_add(1, Ordering::Relaxed);
            state.ids.insert(env.id.clone(), seq);
            state.events.insert(seq, event);
        }
        Ok(Inserted {
            published: Published::Accepted {
                event_id: env.id.clone(),
            },
            taken,
            left_pending,
        })
    }

    /// The id of the event stored for `envelope`'s handler and delivery id within the dedup
    /// window, if any.
    pub(crate) fn stored(&self, shared: &Shared, envelope: &Envelope, now: i64) -> Option<String> {
        let key = dedup_key(&envelope.handler, &envelope.delivery_id);
        let mut state = self.lock();
        state
            .dedup
            .expire(now.saturating_sub(dur_ms(shared.dedup_window)));
        state.dedup.get(&key).map(|id| id.to_string())
    }

    /// Marks due deliveries in flight, at most `limit(agent)` per agent.
    pub(crate) fn claim(&self, limit: &dyn Fn(&str) -> usize, now: i64) -> Claimed {
        let mut state = self.lock();
        let mut claimed = Claimed::default();
        let mut counts: HashMap<String, usize> = HashMap::new();
        let mut picked = Vec::new();
        for (due, seq, agent) in &state.due {
            if *due > now {
                claimed.next_due = Some(*due);
                break;
            }
            let count = counts.entry(agent.clone()).or_insert(0);
            if *count >= limit(agent) {
                claimed.more = true;
                continue;
            }
            *count += 1;
            picked.push((*due, *seq, agent.clone()));
        }
        for key in picked {
            state.due.remove(&key);
            let (_, seq, agent) = key;
            let Some(event) = state.events.get_mut(&seq) else {
                continue;
            };
            // A due entry left behind for a delivery no longer pending is stale: skip it rather
            // than hand the delivery out twice.
            let Some(d) = event
                .deliveries
                .iter_mut()
                .find(|d| d.agent == agent && d.status == Status::Pending)
            else {
                continue;
            };
            d.status = Status::InFlight;
            claimed.work.push(Work {
                event_id: event.fresh.envelope.id.clone(),
                agent,
                attempts: d.attempts,
                payload: Payload::Fresh(Arc::clone(&event.fresh)),
            });
        }
        claimed
    }

    /// Records an attempt's outcome; a delivered event is forgotten.
    pub(crate) fn finish(
        &self,
        shared: &Shared,
        event_id: &str,
        agent: &str,
        outcome: &Finish,
        now: i64,
    ) {
        let mut state = self.lock();
        let Some(&seq) = state.ids.get(event_id) else {
            return;
        };
        let Some(event) = state.events.get_mut(&seq) else {
            return;
        };
        let was = event.status();
        let Some(d) = event.deliveries.iter_mut().find(|d| d.agent == agent) else {
            return;
        };
        if d.status != Status::InFlight {
            return;
        }
        let due_at = match outcome {
            Finish::Delivered => {
                d.status = Status::Delivered;
                d.attempts += 1;
                d.last_error = None;
                None
            }
            Finish::Retry { at, error } => {
                d.status = Status::Pending;
                d.attempts += 1;
                d.next_attempt_at = *at;
                d.last_error = Some(error.clone());
                Some(*at)
            }
            Finish::Dead { error } => {
                d.status = Status::Dead;
                d.attempts += 1;
                d.last_error = Some(error.clone());
                None
            }
            Finish::Release => {
                d.status = Status::Pending;
                Some(d.next_attempt_at.min(now))
            }
        };
        let is = event.status();
        if let Some(at) = due_at {
            state.due.insert((at, seq, agent.to_owned()));
        }
        state.moved(shared, was, is);
        if is == DeliveryStatus::Delivered {
            state.forget(seq);
        }
    }

    /// Sets the selected deliveries pending again; returns how many events were requeued.
    pub(crate) fn replay(&self, shared: &Shared, selector: &ReplaySelector, now: i64) -> u64 {
        let mut state = self.lock();
        let seqs: Vec<u64> = match selector {
            ReplaySelector::Id(id) => state.ids.get(id).copied().into_iter().collect(),
            ReplaySelector::Dead => state
                .events
                .iter()
                .filter(|(_, e)| e.deliveries.iter().any(|d| d.status == Status::Dead))
                .map(|(seq, _)| *seq)
                .collect(),
            ReplaySelector::Since(age) => {
                let since = now.saturating_sub(dur_ms(*age));
                state
                    .events
                    .iter()
                    .filter(|(_, e)| to_ms(e.fresh.envelope.received_at) >= since)
                    .map(|(seq, _)| *seq)
                    .collect()
            }
        };
        let only_dead = matches!(selector, ReplaySelector::Dead);
        let mut requeued = 0;
        for seq in seqs {
            let Some(event) = state.events.get_mut(&seq) else {
                continue;
            };
            let was = event.status();
            let mut old_due = Vec::new();
            let mut reset = Vec::new();
            for d in &mut event.deliveries {
                let eligible = match d.status {
                    Status::InFlight => false,
                    Status::Dead => true,
                    Status::Pending | Status::Delivered => !only_dead,
                };
                if eligible {
                    if d.status == Status::Pending {
                        old_due.push((d.next_attempt_at, d.agent.clone()));
                    }
                    d.status = Status::Pending;
                    d.attempts = 0;
                    d.next_attempt_at = now;
                    d.last_error = None;
                    reset.push(d.agent.clone());
                }
            }
            if !reset.is_empty() {
                requeued += 1;
            }
            let is = event.status();
            // Only the deliveries reset here move to `now`; others keep their due time.
            for (at, agent) in old_due {
                state.due.remove(&(at, seq, agent));
            }
            for agent in reset {
                state.due.insert((now, seq, agent));
            }
            state.moved(shared, was, is);
        }
        requeued
    }

    pub(crate) fn list(&self, filter: &ListFilter, now: i64) -> Result<Vec<StoredEvent>, BusError> {
        let since = filter.since.map(|d| now.saturating_sub(dur_ms(d)));
        let state = self.lock();
        state
            .events
            .values()
            .rev()
            .filter(|e| {
                let env = &e.fresh.envelope;
                filter.handler.as_ref().is_none_or(|h| *h == env.handler)
                    && filter
                        .event_type
                        .as_ref()
                        .is_none_or(|t| *t == env.event_type)
                    && filter.status.is_none_or(|s| s == e.status())
                    && since.is_none_or(|since| to_ms(e.fresh.envelope.received_at) >= since)
            })
            .take(filter.limit)
            .map(Event::stored)
            .collect()
    }

    pub(crate) fn show(&self, id: &str) -> Result<Option<StoredEvent>, BusError> {
        let state = self.lock();
        let Some(seq) = state.ids.get(id) else {
            return Ok(None);
        };
        state.events.get(seq).map(Event::stored).transpose()
    }

    /// Ends dedup entries past the window. No event is removed: delivered ones are forgotten when
    /// their last delivery is recorded, and dead ones stay (as in the journal), so this returns 0.
    pub(crate) fn prune(&self, shared: &Shared, now: i64) -> u64 {
        self.lock()
            .dedup
            .expire(now.saturating_sub(dur_ms(shared.dedup_window)));
        0
    }

    /// Routes the events published before any routes were registered.
    pub(crate) fn route_unrouted(&self, shared: &Shared, routes: &Routes, now: i64) -> u64 {
        let mut state = self.lock();
        let unrouted: Vec<u64> = state
            .events
            .iter()
            .filter(|(_, e)| !e.routed)
            .map(|(seq, _)| *seq)
            .collect();
        for &seq in &unrouted {
            let Some(event) = state.events.get_mut(&seq) else {
                continue;
            };
            let was = event.status();
            let env = Arc::clone(&event.fresh.envelope);
            let agents = routes.agents_for(&env.handler, &env.event_type, env.action.as_deref());
            event.routed = true;
            for agent in &agents {
                event.deliveries.push(Delivery {
                    agent: agent.clone(),
                    status: Status::Pending,
                    attempts: 0,
                    next_attempt_at: now,
                    last_error: None,
                });
            }
            let is = event.status();
            for agent in agents {
                state.due.insert((now, seq, agent));
            }
            state.moved(shared, was, is);
            if is == DeliveryStatus::Delivered {
                state.forget(seq);
            }
        }
        unrouted.len() as u64
    }
}

impl State {
    /// Keeps the pending counter in step with an event's move between states.
    fn moved(&self, shared: &Shared, was: DeliveryStatus, is: DeliveryStatus) {
        let pending = DeliveryStatus::Pending;
        if was == pending && is != pending {
            let _ = shared
                .pending
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    Some(n.saturating_sub(1))
                });
        } else if was != pending && is == pending {
            shared.pending.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn forget(&mut self, seq: u64) {
        if let Some(event) = self.events.remove(&seq) {
            self.ids.remove(&event.fresh.envelope.id);
        }
    }
}

mod console;
#[cfg(test)]
mod tests;
