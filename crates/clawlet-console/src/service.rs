//! What the pages and the API ask of the console: the data methods on [`Console`], each over
//! whichever backend the bus runs on. Where the nats backend cannot answer (no delivery table,
//! no attempts history), the capabilities say so and the methods answer what the stream holds.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clawlet_bus::{
    DeliveryStatus, EventCursor, EventQuery, EventSummary, EventsPage, ListFilter, ReplaySelector,
    StoredEvent,
};
use time::OffsetDateTime;

use crate::data::{
    AgentOverview, AttemptView, BulkAction, BulkPreview, Capabilities, DeliveryView, EventDetail,
    EventFilter, EventPage, EventRow, Overview, ReplayTarget,
};
use crate::error::ConsoleError;
use crate::state::Console;
use crate::traffic::unix_now;

/// Events per page when the filter gives no limit, and the most it may ask.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;
/// Bytes of an agent's error shown in listings and the attempts table.
const ERROR_EXCERPT_BYTES: usize = 300;
/// Events the nats backend reads for one listing: it has no index to seek in.
const NATS_SCAN: usize = 10_000;

/// The request log's rule ([`clawlet_events::is_credential_header`]). The envelope keeps only
/// the sender's event headers, never its signature or authorization; this is the second guard.
pub(crate) fn redact_header(name: &str, value: &str) -> String {
    if clawlet_events::is_credential_header(name) {
        "[redacted]".to_owned()
    } else {
        value.to_owned()
    }
}

fn excerpt(text: &str) -> String {
    if text.len() <= ERROR_EXCERPT_BYTES {
        return text.to_owned();
    }
    let cut = text.floor_char_boundary(ERROR_EXCERPT_BYTES);
    format!("{}…", &text[..cut])
}

fn encode_cursor(c: &EventCursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}.{}", c.received_at_ms, c.id))
}

fn decode_cursor(text: &str) -> Result<EventCursor, ConsoleError> {
    let bad = || ConsoleError::BadRequest("the cursor is not one this console made".to_owned());
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (at, id) = text.split_once('.').ok_or_else(bad)?;
    Ok(EventCursor {
        received_at_ms: at.parse().map_err(|_| bad())?,
        id: id.to_owned(),
    })
}

fn ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn row(s: EventSummary) -> EventRow {
    EventRow {
        id: s.id,
        handler: s.handler,
        event_type: s.event_type,
        action: s.action,
        delivery_id: s.delivery_id,
        received_at: s.received_at,
        summary: s.summary,
        status: s.status,
    }
}

fn row_of(e: &StoredEvent) -> EventRow {
    let env = &e.envelope;
    EventRow {
        id: env.id.clone(),
        handler: env.handler.clone(),
        event_type: env.event_type.clone(),
        action: env.action.clone(),
        delivery_id: env.delivery_id.clone(),
        received_at: env.received_at,
        summary: env.summary.clone(),
        status: e.status,
    }
}

impl Console {
    /// Configured handler names (for filter choices).
    pub fn handlers(&self) -> Vec<String> {
        self.0.live.load().handlers.clone()
    }

    /// Configured agent names (for filter and replay choices).
    pub fn agents(&self) -> Vec<String> {
        self.0.live.load().agents.clone()
    }

    /// What this backend can show and do.
    pub fn capabilities(&self) -> Capabilities {
        let backend = self.0.bus.backend_name();
        match backend {
            "nats" => Capabilities {
                backend,
                events: self.0.nats.is_some(),
                attempt_history: false,
                keeps_delivered: true,
                replay_to_agent: false,
                purge: false,
                agent_backlog: false,
                notes: vec![
                    "NATS keeps no attempts history: each delivery shows its state, and a dead one its attempts count and last error.".to_owned(),
                    "On NATS a replay goes to every agent the event is routed to (or, for a dead event, to the agents it died for); it cannot target one agent.".to_owned(),
                    "Dead letters on NATS are purged with the stream's retention (`events purge`), not from here.".to_owned(),
                    format!("Listings on NATS read the newest {NATS_SCAN} events of the stream."),
                    "Per-agent backlogs live in the JetStream consumers; the queue depth is the largest of them.".to_owned(),
                ],
            },
            "memory" => Capabilities {
                backend,
                events: true,
                attempt_history: true,
                keeps_delivered: false,
                replay_to_agent: true,
                purge: true,
                agent_backlog: true,
                notes: vec![
                    "The memory backend forgets an event once every agent has it: only pending and dead events are listed, with their latest attempts.".to_owned(),
                ],
            },
            _ => Capabilities {
                backend,
                events: true,
                attempt_history: true,
                keeps_delivered: true,
                replay_to_agent: true,
                purge: true,
                agent_backlog: true,
                notes: Vec::new(),
            },
        }
    }

    /// The overview: traffic per handler, queue depth, agents.
    pub async fn overview(&self) -> Result<Overview, ConsoleError> {
        let live = self.0.live.load_full();
        let health = self.0.bus.health();
        let backlog = match self.0.bus.backlog().await {
            Ok(b) => Some(b),
            Err(clawlet_bus::BusError::Unsupported { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let activity = self.0.bus.agent_activity();
        let mut names: Vec<String> = live.agents.clone();
        names.extend(activity.iter().map(|a| a.agent.clone()));
        names.extend(backlog.iter().flatten().map(|b| b.agent.clone()));
        names.sort();
        names.dedup();
        let agents = names
            .into_iter()
            .map(|agent| {
                let seen = activity.iter().find(|a| a.agent == agent);
                let owed = backlog
                    .as_ref()
                    .map(|b| b.iter().find(|b| b.agent == agent));
                let attempts = seen.map_or(0, |a| a.attempts);
                let delivered = seen.map_or(0, |a| a.delivered);
                let last = seen.and_then(|a| a.last_error.clone());
                AgentOverview {
                    backlog: owed.map(|b| b.map_or(0, |b| b.pending)),
                    dead: owed.map(|b| b.map_or(0, |b| b.dead)),
                    attempts,
                    delivered,
                    success_rate: (attempts > 0).then(|| delivered as f64 / attempts as f64),
                    last_error: last.as_ref().map(|(_, e)| excerpt(e)),
                    last_error_at: last.map(|(at, _)| at),
                    agent,
                }
            })
            .collect();
        Ok(Overview {
            generated_at: OffsetDateTime::now_utc(),
            queue_depth: health.depth,
            accepting: health.accepting,
            handlers: self.0.traffic.snapshot(&live.handlers, unix_now()),
            agents,
            capabilities: self.capabilities(),
        })
    }

    fn query(&self, filter: &EventFilter) -> EventQuery {
        EventQuery {
            handler: filter.handler.clone(),
            event_type: filter.event_type.clone(),
            status: filter.status,
            delivery_id: filter.delivery_id.clone(),
            agent: filter.agent.clone(),
            from_ms: filter.from.map(ms),
            to_ms: filter.to.map(ms),
            handlers_hint: self.0.live.load().handlers.clone(),
        }
    }

    /// A page of events matching `filter`, newest first.
    pub async fn events(&self, filter: &EventFilter) -> Result<EventPage, ConsoleError> {
        let limit = filter.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
        let after = filter.cursor.as_deref().map(decode_cursor).transpose()?;
        let query = self.query(filter);
        let page = match &self.0.nats {
            Some(nats) => nats_page(nats, &query, after.as_ref(), limit).await?,
            None => {
                self.0
                    .bus
                    .events_page(&query, after.as_ref(), limit)
                    .await?
            }
        };
        Ok(EventPage {
            events: page.events.into_iter().map(row).collect(),
            next_cursor: page.next.as_ref().map(encode_cursor),
        })
    }

    /// Dead letters: the events with a dead delivery (for `filter.agent`, dead for that agent).
    pub async fn dead_letters(&self, filter: &EventFilter) -> Result<EventPage, ConsoleError> {
        let filter = EventFilter {
            status: Some(DeliveryStatus::Dead),
            ..filter.clone()
        };
        self.events(&filter).await
    }

    /// One event with its headers (redacted), payload, deliveries and attempts.
    pub async fn event(&self, id: &str) -> Result<Option<EventDetail>, ConsoleError> {
        let (stored, attempts) = match &self.0.nats {
            Some(nats) => (nats.show(id).await?, Vec::new()),
            None => {
                let Some(stored) = self.0.bus.event(id).await? else {
                    return Ok(None);
                };
                (Some(stored), self.0.bus.event_attempts(id).await?)
            }
        };
        let Some(stored) = stored else {
            return Ok(None);
        };
        let payload = stored.envelope.payload.get().to_owned();
        let payload_pretty = serde_json::from_str::<serde_json::Value>(&payload)
            .and_then(|v| serde_json::to_string_pretty(&v))
            .unwrap_or_else(|_| payload.clone());
        let mut attempts: Vec<AttemptView> = attempts
            .into_iter()
            .map(|a| AttemptView {
                agent: a.agent,
                at: a.at,
                outcome: a.outcome,
                latency_ms: a.latency.as_secs_f64() * 1000.0,
                error: a.error.as_deref().map(excerpt),
            })
            .collect();
        if self.capabilities().attempt_history {
            // A delivery made at publish (a log line) has no attempt row: shown as one.
            for d in &stored.deliveries {
                let delivered = d.status == DeliveryStatus::Delivered && d.attempts > 0;
                if delivered && !attempts.iter().any(|a| a.agent == d.agent) {
                    attempts.push(AttemptView {
                        agent: d.agent.clone(),
                        at: stored.envelope.received_at,
                        outcome: "logged".to_owned(),
                        latency_ms: 0.0,
                        error: None,
                    });
                }
            }
        }
        let headers = stored
            .envelope
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), redact_header(k, v)))
            .collect();
        Ok(Some(EventDetail {
            row: row_of(&stored),
            headers,
            payload,
            payload_pretty,
            deliveries: stored
                .deliveries
                .iter()
                .map(|d| DeliveryView {
                    agent: d.agent.clone(),
                    status: d.status,
                    attempts: d.attempts,
                    last_error: d.last_error.as_deref().map(excerpt),
                    next_attempt_at: d.next_attempt_at,
                })
                .collect(),
            attempts,
        }))
    }

    /// Sends one event again; returns the deliveries (sqlite, memory) or events (nats)
    /// requeued. `NotFound` when the event, or its delivery to that agent, does not exist.
    pub async fn replay(&self, id: &str, target: ReplayTarget) -> Result<u64, ConsoleError> {
        let agent = match &target {
            ReplayTarget::AllRoutes => None,
            ReplayTarget::Agent(a) => Some(a.as_str()),
        };
        let n = match &self.0.nats {
            Some(nats) => {
                if agent.is_some() {
                    return Err(ConsoleError::Unsupported(
                        "on NATS a replay goes to every route of the event; leave the agent out"
                            .to_owned(),
                    ));
                }
                nats.replay(ReplaySelector::Id(id.to_owned())).await?
            }
            None => self.0.bus.replay_to(id, agent).await?,
        };
        if n == 0 {
            return Err(ConsoleError::NotFound);
        }
        Ok(n)
    }

    /// Step one of a bulk action: how many dead events `filter` selects now.
    pub async fn bulk_preview(
        &self,
        action: BulkAction,
        filter: &EventFilter,
    ) -> Result<BulkPreview, ConsoleError> {
        let count = self.count_dead(filter).await?;
        Ok(BulkPreview { action, count })
    }

    /// Step two: runs the action if `filter` still selects `confirm` dead events; returns how
    /// many were replayed or purged.
    pub async fn bulk_run(
        &self,
        action: BulkAction,
        filter: &EventFilter,
        confirm: u64,
    ) -> Result<u64, ConsoleError> {
        let count = self.count_dead(filter).await?;
        if count != confirm {
            return Err(ConsoleError::Conflict(format!(
                "the filter now selects {count} dead events, not {confirm}: check again and confirm the new count"
            )));
        }
        let query = EventQuery {
            status: Some(DeliveryStatus::Dead),
            ..self.query(filter)
        };
        match (action, &self.0.nats) {
            (BulkAction::Replay, Some(nats)) => {
                if query != nats_dead_query(&query) {
                    return Err(ConsoleError::Unsupported(
                        "on NATS a bulk replay sends every dead letter again; clear the filters"
                            .to_owned(),
                    ));
                }
                Ok(nats.replay(ReplaySelector::Dead).await?)
            }
            (BulkAction::Purge, Some(_)) => Err(ConsoleError::Unsupported(
                "dead letters on NATS are purged with `events purge`".to_owned(),
            )),
            (BulkAction::Replay, None) => Ok(self.0.bus.replay_dead(&query).await?),
            (BulkAction::Purge, None) => Ok(self.0.bus.purge_dead(&query).await?),
        }
    }

    async fn count_dead(&self, filter: &EventFilter) -> Result<u64, ConsoleError> {
        let query = EventQuery {
            status: Some(DeliveryStatus::Dead),
            ..self.query(filter)
        };
        match &self.0.nats {
            Some(nats) => Ok(nats_events(nats, &query).await?.len() as u64),
            None => Ok(self.0.bus.count_events(&query).await?),
        }
    }
}

/// The dead query with no filter but the configured handlers: what `ReplaySelector::Dead` does.
fn nats_dead_query(q: &EventQuery) -> EventQuery {
    EventQuery {
        status: Some(DeliveryStatus::Dead),
        handlers_hint: q.handlers_hint.clone(),
        ..EventQuery::default()
    }
}

/// The newest events of the stream matching `q`, newest first.
async fn nats_events(
    nats: &clawlet_bus::NatsAdmin,
    q: &EventQuery,
) -> Result<Vec<EventSummary>, ConsoleError> {
    let filter = ListFilter {
        handler: q.handler.clone(),
        event_type: q.event_type.clone(),
        status: q.status,
        since: None,
        limit: NATS_SCAN,
    };
    let events = nats.list(&filter).await?;
    Ok(events
        .into_iter()
        .filter(|e| {
            let env = &e.envelope;
            let at = ms(env.received_at);
            q.delivery_id.as_ref().is_none_or(|d| *d == env.delivery_id)
                && q.from_ms.is_none_or(|f| at >= f)
                && q.to_ms.is_none_or(|t| at < t)
                && q.agent.as_ref().is_none_or(|a| {
                    e.deliveries.iter().any(|d| {
                        d.agent == *a
                            && (q.status != Some(DeliveryStatus::Dead)
                                || d.status == DeliveryStatus::Dead)
                    })
                })
        })
        .map(|e| {
            let r = row_of(&e);
            EventSummary {
                id: r.id,
                handler: r.handler,
                event_type: r.event_type,
                action: r.action,
                delivery_id: r.delivery_id,
                received_at: r.received_at,
                summary: r.summary,
                status: r.status,
            }
        })
        .collect())
}

async fn nats_page(
    nats: &clawlet_bus::NatsAdmin,
    q: &EventQuery,
    after: Option<&EventCursor>,
    limit: usize,
) -> Result<EventsPage, ConsoleError> {
    let mut all = nats_events(nats, q).await?;
    all.sort_by(|a, b| (ms(b.received_at), &b.id).cmp(&(ms(a.received_at), &a.id)));
    let mut rows = all.into_iter().filter(|e| {
        after.is_none_or(|c| (ms(e.received_at), e.id.as_str()) < (c.received_at_ms, c.id.as_str()))
    });
    let events: Vec<EventSummary> = rows.by_ref().take(limit).collect();
    let next = if rows.next().is_some() {
        events.last().map(|l| EventCursor {
            received_at_ms: ms(l.received_at),
            id: l.id.clone(),
        })
    } else {
        None
    };
    Ok(EventsPage { events, next })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let c = EventCursor {
            received_at_ms: 1_767_225_600_123,
            id: "0191e3c0-aaaa.bbbb".to_owned(),
        };
        assert_eq!(decode_cursor(&encode_cursor(&c)).unwrap(), c);
        for bad in ["", "!!!", "bm90LWEtY3Vyc29y"] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn credential_headers_are_redacted_as_the_request_log_does() {
        let check = |name: &str, shown: &str| assert_eq!(redact_header(name, "v"), shown, "{name}");
        for name in [
            "Authorization",
            "X-Hub-Signature-256",
            "Cookie",
            "X-Api-Key",
            "X-Gitlab-Token",
            "Session-Id",
        ] {
            check(name, "[redacted]");
        }
        for name in ["X-GitHub-Event", "Content-Type", "X-GitHub-Delivery"] {
            check(name, "v");
        }
    }
}
