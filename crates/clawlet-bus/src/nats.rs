//! The NATS JetStream backend: events are stream messages, dedup is JetStream's `Nats-Msg-Id`
//! window, and each agent reads through its own durable pull consumer so that several daemons
//! share the work and each event reaches each agent once across all of them.
//!
//! The stream keeps what it is given (limits retention, no age limit) and refuses a publish
//! rather than drop an old message when `max_bytes` is reached (`discard: new`). Delivered events
//! go by [`NatsStore::prune`]: only those below every agent consumer's ack floor, and older than
//! `queue.retention`. ARCHITECTURE.md says why.

mod layout;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::context::{ConsumerInfoErrorKind, GetStreamErrorKind, PublishErrorKind};
use async_nats::jetstream::{self, consumer, stream};
use clawlet_events::Envelope;
use futures_util::StreamExt;

use crate::store::{FULL_RETRY_AFTER, Shared};
use crate::{AgentStart, BusError, Published};

pub use layout::server_addrs;
#[allow(
    unused_imports,
    reason = "the layout is shared with the `events` commands, which need not use all of it"
)]
pub(crate) use layout::{
    AGENT_HEADER, ATTEMPTS_HEADER, CONSUMER_PREFIX, DEFAULT_STREAM, ERROR_HEADER, MSG_ID_HEADER,
    REPLAY_FOR_HEADER, ROUTE_HEADER, consumer_name, dead_stream, dead_subject, dead_subjects,
    decode_envelope, event_id, subject, subject_prefix, token,
};

/// What a client is told to wait when NATS is unreachable or the stream has no room.
pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(5);
/// Longest a publish waits for its ack: a lost connection must not hold a request for long.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the consumers' backlog and the stream's state are read for `/health`.
const DEPTH_REFRESH: Duration = Duration::from_secs(1);
/// A publish that finds the queue full reads the backlog again, unless it was read this recently.
const DEPTH_REREAD: Duration = Duration::from_millis(20);
/// Above any stream's last sequence: a publish that expects it is stored nowhere, but a
/// duplicate is still recognised (the server checks the dedup window first).
const NEVER_LAST_SEQUENCE: &str = "9223372036854775807";

pub(crate) fn unavailable(reason: impl std::fmt::Display) -> BusError {
    BusError::Unavailable {
        retry_after: RETRY_AFTER,
        reason: reason.to_string(),
    }
}

/// What the dispatcher wants of one agent's consumer.
#[derive(Debug, Clone)]
pub(crate) struct ConsumerPlan {
    pub(crate) name: String,
    pub(crate) ack_wait: Duration,
    pub(crate) start: AgentStart,
}

/// How the event stream is set up.
pub(crate) struct StreamLimits {
    pub(crate) name: String,
    pub(crate) duplicate_window: Duration,
    pub(crate) max_bytes: Option<u64>,
    pub(crate) replicas: usize,
}

pub(crate) struct NatsStore {
    core: Arc<Core>,
}

/// The connection, the stream and the agents' consumers, shared by the publish path, the state
/// watcher and the dispatcher's consumer loops.
pub(crate) struct Core {
    client: async_nats::Client,
    js: jetstream::Context,
    stream: String,
    prefix: String,
    limits: StreamLimits,
    shared: Arc<Shared>,
    depth: Depth,
    /// The agent consumers the dispatcher runs; `None` while no dispatcher does, and then no
    /// consumer is created or removed.
    plan: ArcSwapOption<Vec<ConsumerPlan>>,
    /// One reconciliation of streams and consumers at a time.
    reconciling: tokio::sync::Mutex<()>,
    /// False after a publish failed, until the stream is seen to have room again.
    storable: AtomicBool,
    /// This process created the event stream and has not yet made the agents' consumers for it:
    /// they start at its first event, even if another daemon made consumers for it first.
    fresh: AtomicBool,
}

impl NatsStore {
    /// Connects and creates (or updates) the event stream and its dead-letter stream.
    pub(crate) async fn open(
        url: &str,
        shown_url: &str,
        limits: StreamLimits,
        shared: Arc<Shared>,
    ) -> Result<Self, BusError> {
        // The reason names the position in the list, never the URL: only the shown form of the
        // list may be printed.
        let addrs = server_addrs(url).map_err(|e| match e {
            BusError::Config(reason) => BusError::Config(format!("`{shown_url}`: {reason}")),
            other => other,
        })?;
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(ACK_TIMEOUT)
            .connect(addrs)
            .await
            .map_err(|e| unavailable(format!("cannot connect to NATS at {shown_url}: {e}")))?;
        tracing::info!(servers = %shown_url, stream = %limits.name, "connected to NATS");
        let js = jetstream::ContextBuilder::new()
            .timeout(ACK_TIMEOUT)
            .build(client.clone());
        let stream = limits.name.clone();
        let core = Arc::new(Core {
            client,
            js,
            prefix: subject_prefix(&stream),
            stream,
            limits,
            depth: Depth::new(shared.max_pending),
            shared,
            plan: ArcSwapOption::empty(),
            reconciling: tokio::sync::Mutex::new(()),
            storable: AtomicBool::new(true),
            fresh: AtomicBool::new(false),
        });
        match core.js.get_stream(&core.stream).await {
            Ok(_) => {}
            Err(e) if is_stream_not_found(&e) => core.fresh.store(true, Ordering::Release),
            Err(e) => {
                return Err(unavailable(format!(
                    "cannot read stream {}: {e}",
                    core.stream
                )));
            }
        }
        // Create or update: a stream made by an earlier version gets the limits of this one.
        core.js
            .create_or_update_stream(core.stream_config())
            .await
            .map_err(|e| unavailable(format!("cannot create stream {}: {e}", core.stream)))?;
        core.js
            .create_or_update_stream(core.dead_stream_config())
            .await
            .map_err(|e| {
                unavailable(format!(
                    "cannot create stream {}: {e}",
                    dead_stream(&core.stream)
                ))
            })?;
        tokio::spawn(watch(Arc::downgrade(&core)));
        Ok(Self { core })
    }

    /// The stream and its consumers, for the dispatcher.
    pub(crate) fn core(&self) -> Arc<Core> {
        Arc::clone(&self.core)
    }

    /// Stores `envelope` under the event id its delivery derives ([`event_id`]): a resend, from
    /// any daemon, is answered with the id of the event first stored.
    pub(crate) async fn publish(&self, mut envelope: Envelope) -> Result<Published, BusError> {
        let core = &self.core;
        if !core.connected() {
            core.set_alive(false);
            return Err(unavailable("not connected to NATS"));
        }
        let event_id = event_id(&envelope.handler, &envelope.delivery_id);
        let subject = async_nats::Subject::from(subject(&core.prefix, &envelope));
        let Some(slot) = core.reserve().await else {
            // No room, except for a resend of a stored delivery, which is answered as before. The
            // server checks the dedup window before the expected sequence, and stores nothing
            // either way: an empty body learns as much as the event would.
            let probe = Outgoing {
                subject,
                msg_id: &event_id,
                route: None,
                probe: true,
                body: bytes::Bytes::new(),
            };
            return match core.send(&probe).await {
                Ok(ack) if ack.duplicate => Ok(Published::Duplicate { event_id }),
                Ok(ack) => Err(BusError::Storage(format!(
                    "stream {} stored an empty probe at sequence {}, expecting its last sequence to be {NEVER_LAST_SEQUENCE}",
                    core.stream, ack.sequence
                ))),
                Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => Err(BusError::Full {
                    retry_after: FULL_RETRY_AFTER,
                }),
                Err(e) => Err(core.failed(&e)),
            };
        };
        // The agents owed the event are decided now, as the journal writes its deliveries.
        let route = core.shared.routes.load().as_deref().map(|routes| {
            routes
                .agents_for(
                    &envelope.handler,
                    &envelope.event_type,
                    envelope.action.as_deref(),
                )
                .join(",")
        });
        envelope.id.clone_from(&event_id);
        let body: bytes::Bytes = envelope
            .to_json()
            .map_err(|e| BusError::Storage(format!("cannot serialise the envelope: {e}")))?
            .into();
        drop(envelope);
        let message = Outgoing {
            subject,
            msg_id: &event_id,
            route: route.as_deref(),
            probe: false,
            body,
        };
        let ack = match core.send(&message).await {
            Ok(ack) => ack,
            Err(e) => return Err(core.failed(&e)),
        };
        if !ack.duplicate {
            core.depth.stored(ack.sequence);
        }
        drop(message);
        drop(slot);
        core.storable.store(true, Ordering::Relaxed);
        core.set_alive(true);
        core.publish_depth();
        Ok(if ack.duplicate {
            Published::Duplicate { event_id }
        } else {
            Published::Accepted { event_id }
        })
    }

    /// Deletes the events every agent consumer on the stream has finished with (acked, or
    /// terminated after its dead letter was stored) and that are older than `retention`.
    /// An event some agent has not finished with stays, however old. Returns the events deleted.
    pub(crate) async fn prune(&self, retention: Duration) -> Result<u64, BusError> {
        let core = &self.core;
        let stream = core.stream().await?;
        let state = &stream.cached_info().state;
        if state.messages == 0 {
            return Ok(0);
        }
        // Everything at or below the lowest floor is finished for every agent.
        let mut finished: Option<u64> = None;
        let mut consumers = stream.consumers();
        while let Some(info) = consumers.next().await {
            let info = info.map_err(|e| unavailable(format!("cannot list consumers: {e}")))?;
            if info.name.starts_with(CONSUMER_PREFIX) {
                let floor = finished_floor(&info);
                finished = Some(finished.map_or(floor, |f| f.min(floor)));
            }
        }
        let Some(finished) = finished else {
            return Ok(0);
        };
        let cutoff = time::OffsetDateTime::now_utc() - retention;
        let older = last_stored_before(&stream, cutoff).await?;
        let upto = finished.min(older);
        if upto < state.first_sequence {
            return Ok(0);
        }
        let purged = stream
            .purge()
            .sequence(upto + 1)
            .await
            .map_err(|e| unavailable(format!("cannot purge stream {}: {e}", core.stream)))?;
        if purged.purged > 0 {
            tracing::debug!(stream = %core.stream, events = purged.purged, "pruned delivered events past retention");
        }
        Ok(purged.purged)
    }
}

/// The highest stream sequence at or below which this consumer has finished every message:
/// acked, or terminated after its dead letter was stored. Acks may come out of order, so this is
/// the ack floor unless none is outstanding.
pub(crate) fn finished_floor(info: &consumer::Info) -> u64 {
    if info.num_ack_pending == 0 {
        // Nothing awaits an ack: all it was sent is finished, and what follows was never sent.
        info.delivered.stream_sequence
    } else {
        info.ack_floor.stream_sequence
    }
}

/// The sequence of the last message stored before `cutoff` (0 if none): an ephemeral consumer
/// starting at `cutoff` reports, on creation, the sequence just before its first message.
async fn last_stored_before(
    stream: &stream::Stream,
    cutoff: time::OffsetDateTime,
) -> Result<u64, BusError> {
    let mut probe: consumer::PullConsumer = stream
        .create_consumer(consumer::pull::Config {
            deliver_policy: consumer::DeliverPolicy::ByStartTime { start_time: cutoff },
            ack_policy: consumer::AckPolicy::None,
            inactive_threshold: Duration::from_secs(30),
            ..Default::default()
        })
        .await
        .map_err(|e| unavailable(format!("cannot find where retention ends: {e}")))?;
    let seq = probe
        .info()
        .await
        .map(|i| i.delivered.stream_sequence)
        .map_err(|e| unavailable(format!("cannot find where retention ends: {e}")));
    let name = probe.cached_info().name.clone();
    // It would expire by itself; deleting it keeps the consumer list short meanwhile.
    let _ = stream.delete_consumer(&name).await;
    seq
}

/// What the dispatcher (`dispatch::nats`) drives: the consumer plan and each agent's consumer.
impl Core {
    /// Sets the agent consumers the dispatcher runs, for the next reconciliation.
    pub(crate) fn set_plan(&self, plan: Vec<ConsumerPlan>) {
        self.plan.store(Some(Arc::new(plan)));
    }

    /// The agent's durable consumer; a missing one (or a missing stream) is made by reconciling.
    pub(crate) async fn open_consumer(&self, agent: &str) -> Result<PullConsumer, BusError> {
        let name = consumer_name(agent);
        let stream = self.stream().await?;
        match stream.consumer_info(&name).await {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    ConsumerInfoErrorKind::NotFound | ConsumerInfoErrorKind::StreamNotFound
                ) =>
            {
                self.reconcile().await?;
            }
            Err(e) => return Err(unavailable(format!("cannot read consumer {name}: {e}"))),
        }
        stream
            .get_consumer(&name)
            .await
            .map_err(|e| unavailable(format!("cannot open consumer {name}: {e}")))
    }

    pub(crate) fn js(&self) -> &jetstream::Context {
        &self.js
    }

    /// Where `agent`'s dead letters go.
    pub(crate) fn dead_subject(&self, agent: &str) -> String {
        dead_subject(&self.stream, agent)
    }
}

impl Core {
    fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    fn stream_config(&self) -> stream::Config {
        stream::Config {
            name: self.stream.clone(),
            subjects: vec![format!("{}.>", self.prefix)],
            duplicate_window: self.limits.duplicate_window,
            storage: stream::StorageType::File,
            num_replicas: self.limits.replicas,
            // Nothing is dropped by the server: no age or count limit, and at the byte cap a
            // publish is refused (the sender retries) rather than an old message discarded.
            retention: stream::RetentionPolicy::Limits,
            discard: stream::DiscardPolicy::New,
            max_age: Duration::ZERO,
            max_bytes: self
                .limits
                .max_bytes
                .map_or(-1, |b| i64::try_from(b).unwrap_or(i64::MAX)),
            ..Default::default()
        }
    }

    fn dead_stream_config(&self) -> stream::Config {
        stream::Config {
            name: dead_stream(&self.stream),
            subjects: vec![dead_subjects(&self.stream)],
            storage: stream::StorageType::File,
            num_replicas: self.limits.replicas,
            ..Default::default()
        }
    }

    fn set_alive(&self, alive: bool) {
        self.shared.alive.store(alive, Ordering::Relaxed);
    }

    /// Publishes and waits for the stream's ack. A stream found missing is created again (with
    /// the agents' consumers) and the publish tried once more.
    async fn send(
        &self,
        message: &Outgoing<'_>,
    ) -> Result<jetstream::publish::PublishAck, jetstream::context::PublishError> {
        match self.send_once(message).await {
            Err(e) if e.kind() == PublishErrorKind::StreamNotFound => {
                if let Err(re) = self.reconcile().await {
                    tracing::error!(stream = %self.stream, error = %re, "the stream is missing and cannot be created again");
                    return Err(e);
                }
                self.send_once(message).await
            }
            other => other,
        }
    }

    async fn send_once(
        &self,
        message: &Outgoing<'_>,
    ) -> Result<jetstream::publish::PublishAck, jetstream::context::PublishError> {
        // Subject and body share their bytes with `message`; only the headers are built anew.
        let (subject, headers, body) = (
            message.subject.clone(),
            message.headers(),
            message.body.clone(),
        );
        tokio::time::timeout(ACK_TIMEOUT, async {
            self.js
                .publish_with_headers(subject, headers, body)
                .await?
                .await
        })
        .await
        .map_err(|_| jetstream::context::PublishError::new(PublishErrorKind::TimedOut))?
    }

    /// Turns a failed publish into the sender's 503, and `/health` says so until the stream is
    /// seen to take publishes again.
    fn failed(&self, e: &jetstream::context::PublishError) -> BusError {
        self.storable.store(false, Ordering::Relaxed);
        self.set_alive(false);
        let text = e.to_string();
        let reason = match e.kind() {
            PublishErrorKind::TimedOut => "no publish ack from JetStream in time".to_owned(),
            PublishErrorKind::StreamNotFound => format!(
                "stream {} does not exist and could not be created again",
                self.stream
            ),
            _ if text.contains("maximum bytes exceeded") => format!(
                "stream {} holds queue.nats.max_bytes ({} bytes); nothing was stored",
                self.stream,
                self.limits.max_bytes.unwrap_or_default()
            ),
            _ => text,
        };
        unavailable(reason)
    }

    /// Takes room for one publish, reading the backlog again first if the queue looks full.
    async fn reserve(&self) -> Option<Slot<'_>> {
        if let Some(slot) = self.depth.try_reserve() {
            return Some(slot);
        }
        let seen = self.depth.refreshes.load(Ordering::Acquire);
        let guard = self.depth.refreshing.lock().await;
        // A re-read just made is good enough while nothing was stored since: the queue is full
        // (the agents are behind), and refused publishes should not each cost a read.
        let recent = self
            .depth
            .refreshed_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some_and(|at| at.elapsed() < DEPTH_REREAD)
            && self.depth.stored_since(self.depth.base().1) == 0;
        // Another publish's re-read, finished while this one waited, is as good as its own.
        if self.depth.refreshes.load(Ordering::Acquire) == seen && !recent {
            let _ = self.refresh().await;
        }
        drop(guard);
        self.depth.try_reserve()
    }

    /// Reads the stream's state and the backlog of each configured agent's consumer.
    async fn refresh(&self) -> Result<(), BusError> {
        let result = self.read_depth().await;
        self.depth.refreshes.fetch_add(1, Ordering::Release);
        *self
            .depth
            .refreshed_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
        match &result {
            Ok(room) => {
                self.storable.store(*room, Ordering::Relaxed);
                self.set_alive(*room && self.connected());
            }
            Err(_) => self.set_alive(false),
        }
        self.publish_depth();
        result.map(|_| ())
    }

    /// Sets the depth base; returns whether the stream has room below its byte cap.
    async fn read_depth(&self) -> Result<bool, BusError> {
        let stream = self.stream().await?;
        let state = &stream.cached_info().state;
        // Read before the consumers, so that a publish stored meanwhile is counted at least once.
        let last = state.last_sequence;
        let created = stream.cached_info().created;
        let room = self.limits.max_bytes.is_none_or(|cap| state.bytes < cap);
        let wanted: HashSet<String> = self
            .plan
            .load()
            .as_deref()
            .map(|p| p.iter().map(|c| c.name.clone()).collect())
            .unwrap_or_default();
        let mut depth = 0_u64;
        let mut consumers = stream.consumers();
        while let Some(info) = consumers.next().await {
            let info = info.map_err(|e| unavailable(format!("cannot list consumers: {e}")))?;
            // A consumer no configured agent reads is not this daemon's backlog.
            if wanted.contains(&info.name) {
                depth = depth.max(info.num_pending + info.num_ack_pending as u64);
            }
        }
        self.depth.set_base(depth, last, created);
        Ok(room)
    }

    fn publish_depth(&self) {
        self.shared
            .pending
            .store(self.depth.estimate(), Ordering::Relaxed);
    }

    /// The event stream, created again (with the agents' consumers) if it was lost.
    async fn stream(&self) -> Result<stream::Stream, BusError> {
        match self.js.get_stream(&self.stream).await {
            Ok(s) => Ok(s),
            Err(e) if is_stream_not_found(&e) => {
                self.reconcile().await?;
                self.js
                    .get_stream(&self.stream)
                    .await
                    .map_err(|e| unavailable(format!("cannot read stream {}: {e}", self.stream)))
            }
            Err(e) => Err(unavailable(format!(
                "cannot read stream {}: {e}",
                self.stream
            ))),
        }
    }

    /// Makes the server match the plan: the streams exist, each configured agent has its
    /// consumer, and the consumers of agents no longer configured are gone.
    ///
    /// A consumer made for an agent starts at new events, unless the agent says `start: all` or
    /// the stream is new: this process created it (first start, or created again after it was
    /// lost) and has not made its consumers yet, or it has no agent consumer at all (another
    /// daemon created it a moment ago). Then every event in it is owed to every agent. Consumers
    /// are created before stale ones are removed, and an empty plan removes nothing, so a
    /// stream that had agent consumers is never left with none by a reconciliation.
    pub(crate) async fn reconcile(&self) -> Result<(), BusError> {
        let _one = self.reconciling.lock().await;
        let created = match self.js.get_stream(&self.stream).await {
            Ok(_) => false,
            Err(e) if is_stream_not_found(&e) => {
                let stream = self
                    .js
                    .create_stream(self.stream_config())
                    .await
                    .map_err(|e| {
                        unavailable(format!("cannot create stream {}: {e}", self.stream))
                    })?;
                // The new stream numbers from 1: the old one's sequences say nothing of it.
                self.depth.restart(stream.cached_info().created);
                self.fresh.store(true, Ordering::Release);
                tracing::warn!(stream = %self.stream, "the event stream was missing (deleted, or the server lost its store); created it again");
                true
            }
            Err(e) => {
                return Err(unavailable(format!(
                    "cannot read stream {}: {e}",
                    self.stream
                )));
            }
        };
        if created {
            self.js
                .create_or_update_stream(self.dead_stream_config())
                .await
                .map_err(|e| {
                    unavailable(format!(
                        "cannot create stream {}: {e}",
                        dead_stream(&self.stream)
                    ))
                })?;
        }
        let Some(plan) = self.plan.load_full() else {
            return Ok(());
        };
        let stream = self
            .js
            .get_stream(&self.stream)
            .await
            .map_err(|e| unavailable(format!("cannot read stream {}: {e}", self.stream)))?;
        let mut existing = Vec::new();
        let mut names = stream.consumer_names();
        while let Some(name) = names.next().await {
            existing.push(name.map_err(|e| unavailable(format!("cannot list consumers: {e}")))?);
        }
        let fresh = self.fresh.load(Ordering::Acquire)
            || !existing.iter().any(|n| n.starts_with(CONSUMER_PREFIX));
        // The new consumers first: a reconciliation that fails half-way leaves the old ones.
        for p in plan.iter().filter(|p| !existing.contains(&p.name)) {
            let all = fresh || p.start == AgentStart::All;
            let config = consumer::pull::Config {
                durable_name: Some(p.name.clone()),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: p.ack_wait,
                filter_subject: format!("{}.>", self.prefix),
                deliver_policy: if all {
                    consumer::DeliverPolicy::All
                } else {
                    consumer::DeliverPolicy::New
                },
                ..Default::default()
            };
            // Another daemon may create it at the same moment; theirs serves as well.
            if let Err(e) = stream.create_consumer(config).await
                && stream.consumer_info(&p.name).await.is_err()
            {
                return Err(unavailable(format!(
                    "cannot create consumer {}: {e}",
                    p.name
                )));
            }
            tracing::info!(stream = %self.stream, consumer = %p.name, start = if all { "all" } else { "new" }, "created an agent's consumer");
        }
        if plan.is_empty() {
            return Ok(());
        }
        // Every agent of the stream this process created has its consumer now.
        self.fresh.store(false, Ordering::Release);
        for name in &existing {
            if name.starts_with(CONSUMER_PREFIX) && !plan.iter().any(|p| &p.name == name) {
                stream
                    .delete_consumer(name)
                    .await
                    .map_err(|e| unavailable(format!("cannot remove consumer {name}: {e}")))?;
                tracing::warn!(stream = %self.stream, consumer = %name, "removed the consumer of an agent that is no longer configured; the events it had not delivered stay in the stream for the other agents");
            }
        }
        Ok(())
    }
}

/// One publish, kept so that it can be sent again after the stream was created anew.
struct Outgoing<'a> {
    subject: async_nats::Subject,
    msg_id: &'a str,
    /// The agents owed the event ([`ROUTE_HEADER`]); `None` while no routes are registered.
    route: Option<&'a str>,
    /// Expects a last sequence no stream reaches: stored nowhere, but a duplicate is recognised.
    probe: bool,
    body: bytes::Bytes,
}

impl Outgoing<'_> {
    fn headers(&self) -> async_nats::HeaderMap {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(MSG_ID_HEADER, self.msg_id);
        if let Some(route) = self.route {
            headers.insert(ROUTE_HEADER, route);
        }
        if self.probe {
            headers.insert("Nats-Expected-Last-Sequence", NEVER_LAST_SEQUENCE);
        }
        headers
    }
}

fn is_stream_not_found(e: &jetstream::context::GetStreamError) -> bool {
    matches!(e.kind(), GetStreamErrorKind::JetStream(j)
        if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND)
}

/// Keeps `/health` current (connection, room in the stream, backlog) without I/O on its path,
/// and creates the stream again if it was lost while nothing was published.
async fn watch(core: Weak<Core>) {
    loop {
        let Some(core) = core.upgrade() else {
            return;
        };
        if core.connected() {
            if let Err(e) = core.refresh().await {
                tracing::warn!(stream = %core.stream, error = %e, "cannot read the stream's state");
            }
        } else {
            core.set_alive(false);
        }
        drop(core);
        tokio::time::sleep(DEPTH_REFRESH).await;
    }
}

/// The backlog as this daemon knows it: the largest configured agent's backlog when last read,
/// plus every message stored since (the stream sequence its own acks report, which counts the
/// other daemons' publishes as well), plus its publishes in flight. It never counts less than
/// there is, so a burst stops at `max_pending` plus what other daemons have in flight.
struct Depth {
    max: u64,
    /// Backlog and the stream's last sequence when it was read.
    base: Mutex<(u64, u64)>,
    /// Highest stream sequence seen in a publish ack or a read, of the stream created at `created`.
    last_seq: AtomicU64,
    /// When the stream whose sequences `last_seq` counts was created; `None` until first read.
    created: Mutex<Option<time::OffsetDateTime>>,
    in_flight: AtomicU64,
    refreshing: tokio::sync::Mutex<()>,
    refreshes: AtomicU64,
    refreshed_at: Mutex<Option<Instant>>,
}

/// Room for one publish in flight; given back when dropped.
struct Slot<'a>(&'a AtomicU64);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Depth {
    fn new(max: u64) -> Self {
        Self {
            max,
            base: Mutex::new((0, 0)),
            last_seq: AtomicU64::new(0),
            created: Mutex::new(None),
            in_flight: AtomicU64::new(0),
            refreshing: tokio::sync::Mutex::new(()),
            refreshes: AtomicU64::new(0),
            refreshed_at: Mutex::new(None),
        }
    }

    fn base(&self) -> (u64, u64) {
        *self
            .base
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A read of the stream created at `created`: its backlog and last sequence.
    fn set_base(&self, depth: u64, last: u64, created: time::OffsetDateTime) {
        let mut known = self
            .created
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if known.is_some_and(|k| k != created) {
            // Another stream of the same name (created again, perhaps by another daemon): its
            // sequences start over, and the higher ones seen were the old stream's.
            self.last_seq.store(last, Ordering::Release);
        } else {
            self.last_seq.fetch_max(last, Ordering::AcqRel);
        }
        *known = Some(created);
        *self
            .base
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = (depth, last);
    }

    /// The stream was created again, at `created`, and holds nothing yet.
    fn restart(&self, created: time::OffsetDateTime) {
        let mut known = self
            .created
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *known = Some(created);
        self.last_seq.store(0, Ordering::Release);
        *self
            .base
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = (0, 0);
    }

    /// Stored events the base does not count yet.
    fn stored_since(&self, base_seq: u64) -> u64 {
        self.last_seq
            .load(Ordering::Acquire)
            .saturating_sub(base_seq)
    }

    fn estimate(&self) -> u64 {
        let (depth, seq) = self.base();
        depth
            .saturating_add(self.stored_since(seq))
            .saturating_add(self.in_flight.load(Ordering::Acquire))
    }

    fn try_reserve(&self) -> Option<Slot<'_>> {
        let before = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(&self.in_flight);
        let (depth, seq) = self.base();
        let queued = depth
            .saturating_add(self.stored_since(seq))
            .saturating_add(before);
        (queued < self.max).then_some(slot)
    }

    /// A publish was stored at `seq`: counted before its slot is given back, so that it is never
    /// counted by neither.
    fn stored(&self, seq: u64) {
        self.last_seq.fetch_max(seq, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_depth_counts_the_base_what_was_stored_since_and_what_is_in_flight() {
        let at = time::OffsetDateTime::UNIX_EPOCH;
        let depth = Depth::new(5);
        depth.set_base(2, 10, at);
        let a = depth.try_reserve().expect("room for a third");
        let b = depth.try_reserve().expect("room for a fourth");
        let c = depth.try_reserve().expect("room for a fifth");
        assert!(depth.try_reserve().is_none(), "five queued or in flight");
        depth.stored(11);
        drop(a);
        assert_eq!(depth.estimate(), 5);
        // Another daemon stored two more: this one learns it from its next ack.
        depth.stored(14);
        drop((b, c));
        assert_eq!(depth.estimate(), 6);
        assert!(depth.try_reserve().is_none());
        // The agent caught up.
        depth.set_base(0, 14, at);
        assert_eq!(depth.estimate(), 0);
        assert!(depth.try_reserve().is_some());
    }

    #[test]
    fn a_stream_created_again_counts_from_its_own_sequences() {
        let old = time::OffsetDateTime::UNIX_EPOCH;
        let new = old + Duration::from_secs(60);
        let depth = Depth::new(3);
        depth.set_base(0, 100, old);
        depth.stored(101);
        // Created again by another daemon: read with its own, lower sequences.
        depth.set_base(0, 2, new);
        assert_eq!(depth.estimate(), 0);
        depth.stored(3);
        assert_eq!(depth.estimate(), 1);
        // Created again by this one.
        depth.restart(old);
        assert_eq!(depth.estimate(), 0);
        depth.stored(1);
        assert_eq!(depth.estimate(), 1);
        assert!(depth.try_reserve().is_some());
    }
}
