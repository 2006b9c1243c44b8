//! The CLI's `events` commands on the nats backend, run from another process beside the daemons.
//!
//! JetStream keeps no per-event delivery table, so an event's state is derived from what the
//! server does keep: a delivery is dead when the dead-letter stream holds a copy of the event for
//! that agent; delivered when the agent's consumer has finished the event's stream sequence (acked
//! it, or terminated it after its dead letter was stored); pending otherwise. A replay republishes
//! the stored message with a fresh `Nats-Msg-Id`, so that the stream's dedup window, which still
//! holds the delivery's own id, does not swallow it. A purge removes, through the stream API, only
//! what every agent consumer on the stream has finished, as the daemons' prune does. The names of streams, subjects, consumers and headers
//! are the daemons' own (`nats/layout.rs`).

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, stream};
use clawlet_events::Envelope;
use futures_util::StreamExt;
use time::OffsetDateTime;

use crate::nats::{
    AGENT_HEADER, ATTEMPTS_HEADER, CONSUMER_PREFIX, ERROR_HEADER, MSG_ID_HEADER, REPLAY_FOR_HEADER,
    ROUTE_HEADER, consumer_name, dead_stream, decode_envelope, finished_floor, server_addrs,
    subject, subject_prefix,
};
use crate::spec::Routes;
use crate::{
    AgentSpec, BusError, DeliveryRecord, DeliveryStatus, ListFilter, ReplaySelector, RouteSpec,
    StoredEvent,
};

/// Longest one request to the server may take before the command gives up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Message reads in flight while scanning a stream: a round trip each, so a scan of a large
/// stream is bound by latency unless many are outstanding.
const READS_IN_FLIGHT: usize = 64;
/// Sequences read per step of a scan.
const SCAN_WINDOW: u64 = 512;
/// How far the daemons' clocks (which stamp `received_at`) may run ahead of the server's (which
/// stamps the stream message): scans that stop at a time keep reading this much further.
const CLOCK_SLACK: Duration = Duration::from_secs(2);

fn unavailable(what: impl std::fmt::Display) -> BusError {
    BusError::Unavailable {
        retry_after: REQUEST_TIMEOUT,
        reason: what.to_string(),
    }
}

/// One event message read from the stream.
struct Stored {
    seq: u64,
    time: OffsetDateTime,
    subject: String,
    headers: HeaderMap,
    payload: bytes::Bytes,
    envelope: Envelope,
}

/// One dead letter: the event as it was when `agent` gave up on it.
struct DeadLetter {
    seq: u64,
    /// When the dead letter was stored.
    time: OffsetDateTime,
    agent: String,
    error: Option<String>,
    attempts: Option<u32>,
    payload: bytes::Bytes,
    envelope: Envelope,
}

/// Which stream sequences an agent's consumer is responsible for.
#[derive(Debug, Clone, Copy)]
enum Start {
    /// The whole stream.
    All,
    /// Messages from this sequence on.
    Seq(u64),
    /// Messages stored at or after this time.
    Time(OffsetDateTime),
}

/// What one agent's consumer had finished when it was read.
#[derive(Debug, Clone, Copy)]
struct Progress {
    /// Every message at or below this sequence is finished: acked, or terminated after its dead
    /// letter was stored.
    finished: u64,
    start: Start,
}

impl Progress {
    fn from_info(info: &consumer::Info) -> Self {
        let start = match info.config.deliver_policy {
            consumer::DeliverPolicy::All => Start::All,
            consumer::DeliverPolicy::ByStartSequence { start_sequence } => {
                Start::Seq(start_sequence)
            }
            consumer::DeliverPolicy::ByStartTime { start_time } => Start::Time(start_time),
            // `new` and its kin start just after what the stream held when the consumer was made.
            consumer::DeliverPolicy::New
            | consumer::DeliverPolicy::Last
            | consumer::DeliverPolicy::LastPerSubject => Start::Time(info.created),
        };
        Self {
            finished: finished_floor(info),
            start,
        }
    }

    /// Whether the event stored at `seq`, `time` is this consumer's to deliver at all.
    fn covers(&self, seq: u64, time: OffsetDateTime) -> bool {
        match self.start {
            Start::All => true,
            Start::Seq(first) => seq >= first,
            Start::Time(first) => time >= first,
        }
    }
}

/// The server's delivery bookkeeping, read before the events it is applied to: a message stored
/// after this read is simply pending, and an event that dies meanwhile shows as dead.
struct View {
    /// Per configured agent; `None` while no daemon has created its consumer yet.
    progress: HashMap<String, Option<Progress>>,
    /// Per event id.
    dead: HashMap<String, Vec<DeadLetter>>,
}

/// The JetStream event stream of one configuration, opened from another process.
pub struct NatsAdmin {
    js: jetstream::Context,
    stream: String,
    agents: Vec<AgentSpec>,
    routes: Routes,
}

impl std::fmt::Debug for NatsAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsAdmin")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl NatsAdmin {
    /// Connects to `urls` (one URL, or several separated by commas) and checks that `stream`
    /// exists; errors show `shown_urls`, the URLs with their credentials hidden. `agents` and
    /// `routes` are the configured ones: they say which agents each event is owed to.
    ///
    /// # Errors
    ///
    /// [`BusError::Config`] for a bad URL or inconsistent routes, [`BusError::Unavailable`] when
    /// no server answers, [`BusError::Storage`] when the stream does not exist.
    pub async fn connect(
        urls: &str,
        shown_urls: &str,
        stream: &str,
        agents: Vec<AgentSpec>,
        routes: Vec<RouteSpec>,
    ) -> Result<Self, BusError> {
        let addrs = server_addrs(urls)?;
        let routes = Routes::new(routes, &agents)?;
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(REQUEST_TIMEOUT)
            .connect(addrs)
            .await
            .map_err(|e| unavailable(format!("cannot connect to NATS at {shown_urls}: {e}")))?;
        let js = jetstream::ContextBuilder::new()
            .timeout(REQUEST_TIMEOUT)
            .build(client);
        let admin = Self {
            js,
            stream: stream.to_owned(),
            agents,
            routes,
        };
        admin.main_stream().await?;
        Ok(admin)
    }

    /// Events matching `filter`, newest first, one entry per event id (a replayed event is shown
    /// once, with the state of its latest copy).
    ///
    /// # Errors
    ///
    /// [`BusError::Unavailable`] or [`BusError::Storage`] when the server fails a request.
    pub async fn list(&self, filter: &ListFilter) -> Result<Vec<StoredEvent>, BusError> {
        if filter.limit == 0 {
            return Ok(Vec::new());
        }
        let now = OffsetDateTime::now_utc();
        let since = filter.since.map(|age| now - age);
        let view = self.view().await?;
        let main = self.main_stream().await?;
        let keeps = |e: &Envelope| {
            filter.handler.as_ref().is_none_or(|h| *h == e.handler)
                && filter
                    .event_type
                    .as_ref()
                    .is_none_or(|t| *t == e.event_type)
                && since.is_none_or(|s| e.received_at >= s)
        };
        let mut seen = HashSet::new();
        let mut found = Newest::new(filter.limit);
        scan_back(&main, |m| {
            // Each event's latest copy comes first; older copies of it are replays' originals.
            if !seen.insert(m.envelope.id.clone()) {
                return ControlFlow::Continue(());
            }
            // Stream times rise with the sequence, and an event is received before it is stored:
            // once the stream is older than what is still wanted, nothing before it qualifies.
            let oldest_wanted = match (since, found.floor) {
                (Some(s), Some(f)) => Some(s.max(f)),
                (s, f) => s.or(f),
            };
            if oldest_wanted.is_some_and(|t| m.time + CLOCK_SLACK < t) {
                return ControlFlow::Break(());
            }
            if keeps(&m.envelope) {
                let event = self.stored_event(&view, m.seq, m.time, &m.headers, m.envelope);
                if filter.status.is_none_or(|s| s == event.status) {
                    found.push(event);
                }
            }
            ControlFlow::Continue(())
        })
        .await?;
        // Dead events whose stream copy is gone (pruned after every agent acked it).
        for (id, letters) in &view.dead {
            let Some(first) = letters.first() else {
                continue;
            };
            if seen.contains(id) || !keeps(&first.envelope) {
                continue;
            }
            let event = dead_only_event(&first.envelope, letters, &self.agents);
            if filter.status.is_none_or(|s| s == event.status) {
                found.push(event);
            }
        }
        Ok(found.into_sorted())
    }

    /// One event by id, with the state of its latest copy.
    ///
    /// # Errors
    ///
    /// [`BusError::Unavailable`] or [`BusError::Storage`] when the server fails a request.
    pub async fn show(&self, id: &str) -> Result<Option<StoredEvent>, BusError> {
        let view = self.view().await?;
        let main = self.main_stream().await?;
        match find_latest(&main, id).await? {
            Some(m) => Ok(Some(
                self.stored_event(&view, m.seq, m.time, &m.headers, m.envelope),
            )),
            None => Ok(view.dead.get(id).and_then(|letters| {
                let last = letters.last()?;
                Some(dead_only_event(&last.envelope, letters, &self.agents))
            })),
        }
    }

    /// Republishes the selected events with fresh message ids, and removes the dead letters they
    /// replace; returns the events republished.
    ///
    /// # Errors
    ///
    /// [`BusError::Unavailable`] or [`BusError::Storage`] when the server fails a request; the
    /// events republished before the failure stay republished.
    pub async fn replay(&self, selector: ReplaySelector) -> Result<u64, BusError> {
        let view = self.view().await?;
        let main = self.main_stream().await?;
        let dead = self.dead_stream().await?;
        let mut count = 0;
        match selector {
            ReplaySelector::Id(id) => {
                let copy = match find_latest(&main, &id).await? {
                    Some(m) => Some((m.subject, m.headers, m.payload)),
                    None => view.dead.get(&id).and_then(|l| l.first()).map(|letter| {
                        (
                            self.subject_of(&letter.envelope),
                            HeaderMap::new(),
                            letter.payload.clone(),
                        )
                    }),
                };
                if let Some((subject, headers, payload)) = copy {
                    self.republish(subject, &headers, None, payload).await?;
                    forget_dead_letters(&dead, view.dead.get(&id)).await?;
                    count = 1;
                }
            }
            ReplaySelector::Dead => {
                let mut ids: Vec<&String> = view.dead.keys().collect();
                ids.sort_by_key(|id| view.dead[*id].first().map_or(0, |l| l.seq));
                for id in ids {
                    let letters = &view.dead[id];
                    let Some(first) = letters.first() else {
                        continue;
                    };
                    let mut agents: Vec<&str> = letters.iter().map(|l| l.agent.as_str()).collect();
                    agents.sort_unstable();
                    agents.dedup();
                    self.republish(
                        self.subject_of(&first.envelope),
                        &HeaderMap::new(),
                        Some(&agents.join(",")),
                        first.payload.clone(),
                    )
                    .await?;
                    forget_dead_letters(&dead, Some(letters)).await?;
                    count += 1;
                }
            }
            ReplaySelector::Since(age) => {
                let cutoff = OffsetDateTime::now_utc() - age;
                let mut seen = HashSet::new();
                let mut picked = Vec::new();
                scan_back(&main, |m| {
                    if m.time + CLOCK_SLACK < cutoff {
                        return ControlFlow::Break(());
                    }
                    if seen.insert(m.envelope.id.clone()) && m.envelope.received_at >= cutoff {
                        picked.push(m);
                    }
                    ControlFlow::Continue(())
                })
                .await?;
                // Oldest first, as they were received.
                for m in picked.into_iter().rev() {
                    self.republish(m.subject, &m.headers, None, m.payload)
                        .await?;
                    forget_dead_letters(&dead, view.dead.get(&m.envelope.id)).await?;
                    count += 1;
                }
            }
        }
        Ok(count)
    }

    /// Removes events stored more than `age` ago that every agent consumer on the stream has
    /// finished, whether or not this configuration names its agent (delivered or dead; an event
    /// pending for any agent is kept), and the dead letters of
    /// events received more than `age` ago whose stream copy is gone. Returns the stream messages
    /// removed: a replayed event counts once per copy.
    /// The stream's dedup window is not touched: a delivery purged within it is still refused as
    /// a duplicate.
    ///
    /// # Errors
    ///
    /// [`BusError::Unavailable`] or [`BusError::Storage`] when the server fails a request;
    /// [`BusError::Storage`] when the stream has no agent consumer, which leaves nothing to say
    /// what is finished.
    pub async fn purge_older_than(&self, age: Duration) -> Result<u64, BusError> {
        let cutoff = OffsetDateTime::now_utc() - age;
        let view = self.view().await?;
        let mut main = self.main_stream().await?;
        let state = main
            .info()
            .await
            .map_err(|e| unavailable(format!("cannot read stream {}: {e}", self.stream)))?
            .state
            .clone();
        // Everything at or below every agent consumer's floor is finished for all of them (a
        // consumer that started after the stream is owed nothing below its floor either: the
        // server sets it just below the consumer's first message). The consumers of agents this
        // configuration does not name count too: another daemon's agents are owed their events.
        let Some(floor) = self.consumers_floor(&main).await? else {
            return Err(BusError::Storage(format!(
                "stream {} has no agent consumer, so nothing shows which events were delivered; \
                 start a daemon with agents on this stream before purging",
                self.stream
            )));
        };
        let mut acked_below = floor.saturating_add(1);
        // A configured agent whose consumer does not exist yet has finished nothing it is owed.
        for progress in view.progress.values() {
            let floor = match progress {
                Some(p) => p.finished,
                None => state.first_sequence.saturating_sub(1),
            };
            acked_below = acked_below.min(floor.saturating_add(1));
        }
        let older_below = first_at_or_after(
            &main,
            &self.subject_filter(),
            state.first_sequence,
            acked_below,
            cutoff,
        )
        .await?;
        let mut purged = 0;
        if older_below > state.first_sequence {
            purged = main
                .purge()
                .sequence(older_below)
                .await
                .map_err(|e| {
                    BusError::Storage(format!("cannot purge stream {}: {e}", self.stream))
                })?
                .purged;
        }
        // A dead letter goes with its event: once the event's stream copy is gone, which the
        // dead letter (written after that copy was stored) shows by being older than the oldest
        // message left. An event still pending for another agent keeps its dead letters, as the
        // journal keeps a pending event whole. (The two streams' clocks are the servers'.)
        let left = main
            .info()
            .await
            .map_err(|e| unavailable(format!("cannot read stream {}: {e}", self.stream)))?
            .state
            .clone();
        let copy_gone =
            |letter: &DeadLetter| left.messages == 0 || letter.time < left.first_timestamp;
        let dead = self.dead_stream().await?;
        for letter in view.dead.values().flatten() {
            if letter.envelope.received_at < cutoff && copy_gone(letter) {
                delete_message(&dead, letter.seq).await?;
            }
        }
        Ok(purged)
    }

    /// The lowest finished floor of the stream's agent consumers; `None` when it has none.
    async fn consumers_floor(&self, main: &stream::Stream) -> Result<Option<u64>, BusError> {
        let mut floor: Option<u64> = None;
        let mut consumers = main.consumers();
        while let Some(info) = consumers.next().await {
            let info = info.map_err(|e| unavailable(format!("cannot list consumers: {e}")))?;
            if info.name.starts_with(CONSUMER_PREFIX) {
                let finished = finished_floor(&info);
                floor = Some(floor.map_or(finished, |f| f.min(finished)));
            }
        }
        Ok(floor)
    }

    async fn main_stream(&self) -> Result<stream::Stream, BusError> {
        get_stream(&self.js, &self.stream).await
    }

    async fn dead_stream(&self) -> Result<stream::Stream, BusError> {
        get_stream(&self.js, &dead_stream(&self.stream)).await
    }

    fn subject_filter(&self) -> String {
        format!("{}.>", subject_prefix(&self.stream))
    }

    /// The subject an event of this stream is published on (the daemons' own rule).
    fn subject_of(&self, envelope: &Envelope) -> String {
        subject(&subject_prefix(&self.stream), envelope)
    }

    /// Reads the consumers first and the dead letters second (see [`View`]).
    async fn view(&self) -> Result<View, BusError> {
        let main = self.main_stream().await?;
        let mut progress = HashMap::new();
        for agent in &self.agents {
            let info = match main.consumer_info(consumer_name(&agent.name)).await {
                Ok(info) => Some(Progress::from_info(&info)),
                Err(e) if e.kind() == jetstream::context::ConsumerInfoErrorKind::NotFound => None,
                Err(e) => {
                    return Err(unavailable(format!(
                        "cannot read the consumer of agent {}: {e}",
                        agent.name
                    )));
                }
            };
            progress.insert(agent.name.clone(), info);
        }
        let mut dead: HashMap<String, Vec<DeadLetter>> = HashMap::new();
        match self.dead_stream().await {
            Ok(stream) => {
                scan_forward(&stream, |m| {
                    let Some(agent) = header(&m.headers, AGENT_HEADER) else {
                        return;
                    };
                    let letter = DeadLetter {
                        seq: m.seq,
                        time: m.time,
                        agent,
                        error: header(&m.headers, ERROR_HEADER),
                        attempts: header(&m.headers, ATTEMPTS_HEADER).and_then(|a| a.parse().ok()),
                        payload: m.payload,
                        envelope: m.envelope,
                    };
                    dead.entry(letter.envelope.id.clone())
                        .or_default()
                        .push(letter);
                })
                .await?;
            }
            // No daemon has run yet against this stream's configuration: nothing is dead.
            Err(BusError::Storage(_)) => {}
            Err(e) => return Err(e),
        }
        Ok(View { progress, dead })
    }

    /// The event stored at `seq` with each routed agent's delivery, as the view sees it.
    fn stored_event(
        &self,
        view: &View,
        seq: u64,
        time: OffsetDateTime,
        headers: &HeaderMap,
        envelope: Envelope,
    ) -> StoredEvent {
        let meant_for = header(headers, REPLAY_FOR_HEADER);
        // The agents the routes named when it was stored, as the daemons deliver it; a dead
        // letter's replay, the agents it names; else (stored by an earlier version) the routes.
        let mut agents = match header(headers, ROUTE_HEADER).or_else(|| meant_for.clone()) {
            Some(routed) => routed
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect(),
            None => self.routes.agents_for(
                &envelope.handler,
                &envelope.event_type,
                envelope.action.as_deref(),
            ),
        };
        if let Some(only) = &meant_for {
            let only: Vec<&str> = only.split(',').map(str::trim).collect();
            agents.retain(|a| only.contains(&a.as_str()));
        }
        agents.sort();
        let letters = view.dead.get(&envelope.id);
        let mut deliveries = Vec::with_capacity(agents.len());
        for agent in agents {
            let letter = letters.and_then(|l| l.iter().rev().find(|l| l.agent == agent));
            let record = |status, attempts, last_error| DeliveryRecord {
                agent: agent.clone(),
                status,
                attempts,
                last_error,
                next_attempt_at: None,
            };
            if let Some(letter) = letter {
                deliveries.push(record(
                    DeliveryStatus::Dead,
                    letter
                        .attempts
                        .unwrap_or_else(|| budget(&self.agents, &agent)),
                    letter.error.clone(),
                ));
                continue;
            }
            match view.progress.get(&agent).copied().flatten() {
                Some(p) if !p.covers(seq, time) => {}
                Some(p) if seq <= p.finished => {
                    deliveries.push(record(DeliveryStatus::Delivered, 0, None));
                }
                _ => deliveries.push(record(DeliveryStatus::Pending, 0, None)),
            }
        }
        StoredEvent {
            status: event_status(&deliveries),
            envelope,
            deliveries,
        }
    }

    /// Publishes a copy under a message id of its own: the original's is still in the stream's
    /// dedup window, and a republish under it would be acked as a duplicate and stored nowhere.
    async fn republish(
        &self,
        subject: String,
        original: &HeaderMap,
        meant_for: Option<&str>,
        payload: bytes::Bytes,
    ) -> Result<(), BusError> {
        let mut headers = HeaderMap::new();
        for (name, values) in original.iter() {
            let name: &str = name.as_ref();
            // Nats-* headers are instructions to the server about the original publish.
            if name.starts_with("Nats-") || name == REPLAY_FOR_HEADER {
                continue;
            }
            for value in values {
                headers.append(name, value.as_str());
            }
        }
        headers.insert(
            MSG_ID_HEADER,
            format!("replay:{}", uuid::Uuid::now_v7()).as_str(),
        );
        if let Some(agents) = meant_for {
            headers.insert(REPLAY_FOR_HEADER, agents);
        }
        let ack = self
            .js
            .publish_with_headers(subject, headers, payload)
            .await
            .map_err(|e| unavailable(format!("cannot republish an event: {e}")))?
            .await
            .map_err(|e| unavailable(format!("the server did not store a replayed event: {e}")))?;
        if ack.duplicate {
            return Err(BusError::Storage(
                "a replayed event was taken for a duplicate".to_owned(),
            ));
        }
        Ok(())
    }
}

/// Pending while any delivery is pending, dead when any is dead, delivered otherwise (and when no
/// agent is owed the event), as the SQLite journal decides.
fn event_status(deliveries: &[DeliveryRecord]) -> DeliveryStatus {
    let any = |s| deliveries.iter().any(|d| d.status == s);
    if any(DeliveryStatus::Pending) {
        DeliveryStatus::Pending
    } else if any(DeliveryStatus::Dead) {
        DeliveryStatus::Dead
    } else {
        DeliveryStatus::Delivered
    }
}

/// An event known only from its dead letters: every agent that did not give up on it acked it
/// before its stream copy was removed.
fn dead_only_event(
    envelope: &Envelope,
    letters: &[DeadLetter],
    agents: &[AgentSpec],
) -> StoredEvent {
    let mut deliveries: Vec<DeliveryRecord> = Vec::new();
    for letter in letters.iter().rev() {
        if deliveries.iter().any(|d| d.agent == letter.agent) {
            continue;
        }
        deliveries.push(DeliveryRecord {
            agent: letter.agent.clone(),
            status: DeliveryStatus::Dead,
            attempts: letter
                .attempts
                .unwrap_or_else(|| budget(agents, &letter.agent)),
            last_error: letter.error.clone(),
            next_attempt_at: None,
        });
    }
    deliveries.sort_by(|a, b| a.agent.cmp(&b.agent));
    StoredEvent {
        envelope: envelope.clone(),
        status: DeliveryStatus::Dead,
        deliveries,
    }
}

/// The attempts after which `agent` gives up: what a dead letter that does not record its
/// attempts took.
fn budget(agents: &[AgentSpec], agent: &str) -> u32 {
    agents
        .iter()
        .find(|a| a.name == agent)
        .map_or(0, |a| a.max_attempts)
}

/// The newest `limit` events of those pushed, as `events list` orders them.
struct Newest {
    limit: usize,
    events: Vec<StoredEvent>,
    /// The `received_at` of the `limit`-th newest, once there are that many: nothing older can
    /// make the list.
    floor: Option<OffsetDateTime>,
}

impl Newest {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            events: Vec::new(),
            floor: None,
        }
    }

    fn push(&mut self, event: StoredEvent) {
        self.events.push(event);
        // Sorting only when twice the limit has piled up keeps a long scan linear.
        if self.events.len() >= self.limit.saturating_mul(2) {
            self.settle();
        }
    }

    fn settle(&mut self) {
        self.events.sort_by(|a, b| {
            (b.envelope.received_at, &b.envelope.id).cmp(&(a.envelope.received_at, &a.envelope.id))
        });
        self.events.truncate(self.limit);
        if self.events.len() == self.limit {
            self.floor = self.events.last().map(|e| e.envelope.received_at);
        }
    }

    fn into_sorted(mut self) -> Vec<StoredEvent> {
        self.settle();
        self.events
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).map(|v| v.as_str().to_owned())
}

async fn get_stream(js: &jetstream::Context, name: &str) -> Result<stream::Stream, BusError> {
    js.get_stream(name).await.map_err(|e| {
        if matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(j)
            if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND)
        {
            BusError::Storage(format!(
                "stream {name} does not exist on this server; a daemon creates it when it starts"
            ))
        } else {
            unavailable(format!("cannot read stream {name}: {e}"))
        }
    })
}

async fn delete_message(stream: &stream::Stream, seq: u64) -> Result<(), BusError> {
    match stream.delete_message(seq).await {
        Ok(_) => Ok(()),
        // Already gone: removed by another purge or replay meanwhile.
        Err(e)
            if matches!(e.kind(), stream::DeleteMessageErrorKind::JetStream(j)
            if j.error_code() == jetstream::ErrorCode::NO_MESSAGE_FOUND) =>
        {
            Ok(())
        }
        Err(e) => Err(unavailable(format!(
            "cannot delete message {seq} of a dead-letter stream: {e}"
        ))),
    }
}

async fn forget_dead_letters(
    dead: &stream::Stream,
    letters: Option<&Vec<DeadLetter>>,
) -> Result<(), BusError> {
    for letter in letters.into_iter().flatten() {
        delete_message(dead, letter.seq).await?;
    }
    Ok(())
}

/// Reads `seq`, `None` when it was deleted or is past the end.
async fn read(stream: &stream::Stream, seq: u64) -> Result<Option<Stored>, BusError> {
    let message = match stream.get_raw_message(seq).await {
        Ok(m) => m,
        Err(e) if e.kind() == stream::RawMessageErrorKind::NoMessageFound => return Ok(None),
        Err(e) => return Err(unavailable(format!("cannot read message {seq}: {e}"))),
    };
    let (_, parsed) = decode_envelope(&message.payload);
    let Ok(envelope) = parsed else {
        // Not an event this tool can show (written by something else, or damaged): it is left
        // where it is for the dispatcher to dead-letter.
        tracing::warn!(seq, "a stream message is not an event envelope; skipped");
        return Ok(None);
    };
    Ok(Some(Stored {
        seq,
        time: message.time,
        subject: message.subject.to_string(),
        headers: message.headers,
        payload: message.payload,
        envelope,
    }))
}

async fn bounds(stream: &stream::Stream) -> Result<(u64, u64), BusError> {
    let info = stream
        .get_info()
        .await
        .map_err(|e| unavailable(format!("cannot read a stream's state: {e}")))?;
    Ok((info.state.first_sequence, info.state.last_sequence))
}

/// Calls `visit` on each message from the newest to the oldest until it breaks.
async fn scan_back(
    stream: &stream::Stream,
    mut visit: impl FnMut(Stored) -> ControlFlow<()>,
) -> Result<(), BusError> {
    let (first, last) = bounds(stream).await?;
    let first = first.max(1);
    let mut hi = last;
    while hi >= first && hi > 0 {
        let lo = hi.saturating_sub(SCAN_WINDOW - 1).max(first);
        let mut reads = futures_util::stream::iter((lo..=hi).rev())
            .map(|seq| read(stream, seq))
            .buffered(READS_IN_FLIGHT);
        while let Some(message) = reads.next().await {
            if let Some(m) = message?
                && visit(m).is_break()
            {
                return Ok(());
            }
        }
        hi = lo - 1;
    }
    Ok(())
}

/// Calls `visit` on every message, oldest first.
async fn scan_forward(
    stream: &stream::Stream,
    mut visit: impl FnMut(Stored),
) -> Result<(), BusError> {
    let (first, last) = bounds(stream).await?;
    if last == 0 {
        return Ok(());
    }
    let mut reads = futures_util::stream::iter(first.max(1)..=last)
        .map(|seq| read(stream, seq))
        .buffered(READS_IN_FLIGHT);
    while let Some(message) = reads.next().await {
        if let Some(m) = message? {
            visit(m);
        }
    }
    Ok(())
}

/// The latest copy of event `id`.
async fn find_latest(stream: &stream::Stream, id: &str) -> Result<Option<Stored>, BusError> {
    let mut found = None;
    scan_back(stream, |m| {
        if m.envelope.id == id {
            found = Some(m);
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .await?;
    Ok(found)
}

/// The first sequence in `lo..hi` whose message was stored at or after `time` (`hi` when none
/// was), by bisection: stream times rise with the sequence.
async fn first_at_or_after(
    stream: &stream::Stream,
    filter: &str,
    mut lo: u64,
    mut hi: u64,
    time: OffsetDateTime,
) -> Result<u64, BusError> {
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        // The first message at or after `mid`: `mid` itself may have been deleted.
        let next = match stream.get_first_raw_message_by_subject(filter, mid).await {
            Ok(m) => Some((m.sequence, m.time)),
            Err(e) if e.kind() == stream::RawMessageErrorKind::NoMessageFound => None,
            Err(e) => return Err(unavailable(format!("cannot read message {mid}: {e}"))),
        };
        match next {
            Some((seq, t)) if seq < hi && t < time => lo = seq + 1,
            // At or after `time`, or nothing left before `hi`: the answer is at or below `mid`.
            _ => hi = mid,
        }
    }
    Ok(lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_pending_before_dead_before_delivered() {
        let record = |status| DeliveryRecord {
            agent: "a".to_owned(),
            status,
            attempts: 0,
            last_error: None,
            next_attempt_at: None,
        };
        let check = |statuses: &[DeliveryStatus], expected| {
            let deliveries: Vec<_> = statuses.iter().map(|s| record(*s)).collect();
            assert_eq!(event_status(&deliveries), expected, "{statuses:?}");
        };
        use DeliveryStatus::{Dead, Delivered, Pending};
        check(&[], Delivered);
        check(&[Delivered, Delivered], Delivered);
        check(&[Delivered, Dead], Dead);
        check(&[Dead, Pending], Pending);
        check(&[Pending], Pending);
    }

    #[test]
    fn a_consumer_is_owed_what_follows_its_start() {
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::from_secs(1000);
        let at = |start| Progress { finished: 0, start };
        assert!(at(Start::All).covers(1, t0));
        assert!(!at(Start::Seq(5)).covers(4, t0));
        assert!(at(Start::Seq(5)).covers(5, t0));
        assert!(!at(Start::Time(t0)).covers(9, t0 - Duration::from_secs(1)));
        assert!(at(Start::Time(t0)).covers(9, t0));
    }
}
