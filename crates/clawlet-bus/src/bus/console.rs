//! [`Bus`] methods for the operator console (types in `crate::admin`). The nats backend keeps
//! no per-delivery table, so these answer [`BusError::Unsupported`] there; the console reads
//! the stream through [`crate::NatsAdmin`] instead, and says what it cannot show.

use std::sync::Arc;

use clawlet_events::Envelope;
use tokio::sync::broadcast;

use super::{Bus, Store};
use crate::admin::{
    AgentActivity, AgentBacklog, AttemptRecord, EventCursor, EventQuery, EventsPage,
};
use crate::sql;
use crate::store::now_ms;
use crate::{AttemptOutcome, BusError, StoredEvent};

/// The envelope without its payload: what the live tail needs.
pub(super) fn head(envelope: &Envelope) -> Envelope {
    Envelope {
        id: envelope.id.clone(),
        handler: envelope.handler.clone(),
        source: envelope.source,
        event_type: envelope.event_type.clone(),
        action: envelope.action.clone(),
        delivery_id: envelope.delivery_id.clone(),
        received_at: envelope.received_at,
        summary: envelope.summary.clone(),
        headers: std::collections::BTreeMap::new(),
        payload: clawlet_events::Payload::null(),
    }
}

/// The longest error kept per agent for the overview.
const ACTIVITY_ERROR_BYTES: usize = 512;

impl Bus {
    /// Every event this process stores from now on (its payload and headers left out), on any
    /// backend. A receiver that falls more than 1024 events behind is told how many it missed.
    pub fn subscribe_published(&self) -> broadcast::Receiver<Arc<Envelope>> {
        self.inner.shared.published.subscribe()
    }

    /// At most `limit` events matching `query` after `after`, newest first (sqlite, memory).
    /// On sqlite the filters are served by indexes, and a delivery id is looked up in the dedup
    /// index under `query.handler` or `query.handlers_hint` before the journal is scanned for it.
    pub async fn events_page(
        &self,
        query: &EventQuery,
        after: Option<&EventCursor>,
        limit: usize,
    ) -> Result<EventsPage, BusError> {
        match &self.inner.store {
            Store::Local(store) => {
                let ids = self.delivery_ids(query).await?;
                let (query, after) = (query.clone(), after.cloned());
                store
                    .read(move |conn| {
                        sql::page(conn, &query, ids.as_deref(), after.as_ref(), limit)
                    })
                    .await
            }
            Store::Memory(store) => Ok(store.page(query, after, limit)),
            Store::Nats(_) => Err(self.unsupported()),
        }
    }

    /// One event with its deliveries, as [`Bus::show`], but read on sqlite by the reader
    /// connection rather than the writer thread, so that a busy writer does not hold it up.
    pub async fn event(&self, event_id: &str) -> Result<Option<StoredEvent>, BusError> {
        match &self.inner.store {
            Store::Local(store) => {
                let id = event_id.to_owned();
                store.read(move |conn| sql::show(conn, &id)).await
            }
            _ => self.show(event_id).await,
        }
    }

    /// How many events match `query` (sqlite, memory).
    pub async fn count_events(&self, query: &EventQuery) -> Result<u64, BusError> {
        match &self.inner.store {
            Store::Local(store) => {
                let ids = self.delivery_ids(query).await?;
                let query = query.clone();
                store
                    .read(move |conn| sql::count(conn, &query, ids.as_deref()))
                    .await
            }
            Store::Memory(store) => Ok(store.count(query)),
            Store::Nats(_) => Err(self.unsupported()),
        }
    }

    /// The recorded attempts of one event, oldest first (sqlite: all of them; memory: the
    /// latest ones, while the event is remembered).
    pub async fn event_attempts(&self, event_id: &str) -> Result<Vec<AttemptRecord>, BusError> {
        match &self.inner.store {
            Store::Local(store) => {
                let id = event_id.to_owned();
                store.read(move |conn| sql::attempts(conn, &id)).await
            }
            Store::Memory(store) => Ok(store.attempts(event_id)),
            Store::Nats(_) => Err(self.unsupported()),
        }
    }

    /// Sends one event again to `agent`, or to every agent it was routed to; returns the
    /// deliveries requeued (0 when the event, or its delivery to `agent`, does not exist or is
    /// being attempted right now). sqlite, memory.
    pub async fn replay_to(&self, event_id: &str, agent: Option<&str>) -> Result<u64, BusError> {
        let n = match &self.inner.store {
            Store::Local(store) => {
                let (id, agent) = (event_id.to_owned(), agent.map(str::to_owned));
                store
                    .call(move |conn, shared| {
                        sql::replay_to(conn, &id, agent.as_deref(), Some(&shared.pending), now_ms())
                    })
                    .await?
            }
            Store::Memory(store) => store.replay_to(&self.inner.shared, event_id, agent, now_ms()),
            Store::Nats(_) => return Err(self.unsupported()),
        };
        self.inner.shared.notify.notify_one();
        Ok(n)
    }

    /// Sends the dead deliveries of the dead events matching `query` again (only those of
    /// `query.agent` when set); returns the events requeued. sqlite, memory.
    pub async fn replay_dead(&self, query: &EventQuery) -> Result<u64, BusError> {
        let n = match &self.inner.store {
            Store::Local(store) => {
                let ids = self.delivery_ids(query).await?;
                let query = query.clone();
                store
                    .call(move |conn, shared| {
                        sql::replay_dead(
                            conn,
                            &query,
                            ids.as_deref(),
                            Some(&shared.pending),
                            now_ms(),
                        )
                    })
                    .await?
            }
            Store::Memory(store) => store.replay_dead(&self.inner.shared, query, now_ms()),
            Store::Nats(_) => return Err(self.unsupported()),
        };
        self.inner.shared.notify.notify_one();
        Ok(n)
    }

    /// Deletes the dead events matching `query`; their delivery ids stay for dedup. Returns how
    /// many were deleted. sqlite, memory.
    pub async fn purge_dead(&self, query: &EventQuery) -> Result<u64, BusError> {
        match &self.inner.store {
            Store::Local(store) => {
                let ids = self.delivery_ids(query).await?;
                let query = query.clone();
                store
                    .call(move |conn, _| sql::purge_dead(conn, &query, ids.as_deref()))
                    .await
            }
            Store::Memory(store) => Ok(store.purge_dead(query)),
            Store::Nats(_) => Err(self.unsupported()),
        }
    }

    /// Per agent, the deliveries pending or in flight and the dead ones (sqlite, memory).
    pub async fn backlog(&self) -> Result<Vec<AgentBacklog>, BusError> {
        match &self.inner.store {
            Store::Local(store) => store.read(sql::backlog).await,
            Store::Memory(store) => Ok(store.backlog()),
            Store::Nats(_) => Err(self.unsupported()),
        }
    }

    /// What this process's dispatcher saw of each agent since it started, by name (every
    /// backend).
    pub fn agent_activity(&self) -> Vec<AgentActivity> {
        let map = self
            .inner
            .shared
            .activity
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out: Vec<AgentActivity> = map.values().cloned().collect();
        out.sort_by(|a, b| a.agent.cmp(&b.agent));
        out
    }

    /// Counts one attempt for [`Bus::agent_activity`].
    pub(crate) fn note_activity(&self, agent: &str, outcome: AttemptOutcome, error: Option<&str>) {
        let mut map = self
            .inner
            .shared
            .activity
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = match map.get_mut(agent) {
            Some(entry) => entry,
            None => map
                .entry(agent.to_owned())
                .or_insert_with(|| AgentActivity {
                    agent: agent.to_owned(),
                    ..AgentActivity::default()
                }),
        };
        entry.attempts += 1;
        if outcome == AttemptOutcome::Delivered {
            entry.delivered += 1;
        } else if let Some(error) = error {
            let cut = error.floor_char_boundary(ACTIVITY_ERROR_BYTES);
            entry.last_error = Some((time::OffsetDateTime::now_utc(), error[..cut].to_owned()));
        }
    }

    /// The event ids the dedup index holds for `query.delivery_id`, or `None` to filter by a
    /// scan (no delivery id asked, or none found within the dedup window).
    async fn delivery_ids(&self, query: &EventQuery) -> Result<Option<Vec<String>>, BusError> {
        let Some(delivery_id) = &query.delivery_id else {
            return Ok(None);
        };
        let handlers = match &query.handler {
            Some(h) => vec![h.clone()],
            None => query.handlers_hint.clone(),
        };
        let found = match &self.inner.store {
            Store::Local(store) => store.lookup_delivery(handlers, delivery_id.clone()).await?,
            Store::Memory(store) => store.lookup_delivery(&handlers, delivery_id),
            Store::Nats(_) => Vec::new(),
        };
        Ok((!found.is_empty()).then_some(found))
    }
}
