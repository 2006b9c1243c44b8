//! The NATS JetStream backend: events are stream messages, dedup is JetStream's `Nats-Msg-Id`
//! window, and each agent reads through its own durable pull consumer so that several daemons
//! share the work and each event reaches each agent once across all of them.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer, stream};
use clawlet_events::Envelope;
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::bus::Shared;
use crate::dispatch::{Attempted, Decision, State, attempt_once};
use crate::{BusError, Published};

/// What a client is told to wait when NATS is unreachable.
pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(5);
/// Longest a publish waits for its ack: a lost connection must not hold a request for long.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the consumers' backlog is read for `Health::depth` and back-pressure.
const DEPTH_REFRESH: Duration = Duration::from_secs(5);
/// The default stream keeps the documented subjects; others get their own prefix so that streams
/// never overlap (JetStream refuses overlapping subjects).
const DEFAULT_STREAM: &str = "CLAWLET_WEBHOOKS";

/// Replaces what NATS subjects and consumer names cannot hold.
pub(crate) fn token(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| {
            if c == '.' || c == '*' || c == '>' || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if t.is_empty() { "_".to_owned() } else { t }
}

/// `clawlet.webhooks` for the default stream, `clawlet.webhooks-<stream>` for any other.
pub(crate) fn subject_prefix(stream: &str) -> String {
    if stream == DEFAULT_STREAM {
        "clawlet.webhooks".to_owned()
    } else {
        format!("clawlet.webhooks-{}", token(stream).to_lowercase())
    }
}

fn unavailable(reason: impl std::fmt::Display) -> BusError {
    BusError::Unavailable {
        retry_after: RETRY_AFTER,
        reason: reason.to_string(),
    }
}

pub(crate) struct NatsStore {
    client: async_nats::Client,
    js: jetstream::Context,
    stream: String,
    prefix: String,
}

impl NatsStore {
    /// Connects and creates (or updates) the event stream and its dead-letter stream.
    pub(crate) async fn open(
        url: &str,
        stream: &str,
        duplicate_window: Duration,
        shared: Arc<Shared>,
    ) -> Result<Self, BusError> {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(ACK_TIMEOUT)
            .connect(url)
            .await
            .map_err(|e| unavailable(format!("cannot connect to NATS at {url}: {e}")))?;
        let js = jetstream::ContextBuilder::new()
            .timeout(ACK_TIMEOUT)
            .build(client.clone());
        let prefix = subject_prefix(stream);
        js.create_or_update_stream(stream::Config {
            name: stream.to_owned(),
            subjects: vec![format!("{prefix}.>")],
            duplicate_window,
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .map_err(|e| unavailable(format!("cannot create stream {stream}: {e}")))?;
        js.create_or_update_stream(stream::Config {
            name: format!("{stream}_DEAD"),
            subjects: vec![format!("clawlet.dead.{}.>", token(stream).to_lowercase())],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .map_err(|e| unavailable(format!("cannot create stream {stream}_DEAD: {e}")))?;
        let store = Self {
            client,
            js,
            stream: stream.to_owned(),
            prefix,
        };
        tokio::spawn(refresh_depth(
            store.js.clone(),
            store.client.clone(),
            store.stream.clone(),
            Arc::downgrade(&shared),
        ));
        Ok(store)
    }

    pub(crate) fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Publishes with `Nats-Msg-Id` = `<handler>:<delivery_id>` and waits for the stream's ack.
    pub(crate) async fn publish(&self, envelope: &Envelope) -> Result<Published, BusError> {
        if !self.connected() {
            return Err(unavailable("not connected to NATS"));
        }
        let subject = format!(
            "{}.{}.{}",
            self.prefix,
            token(&envelope.handler),
            token(&envelope.event_type)
        );
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            "Nats-Msg-Id",
            format!("{}:{}", envelope.handler, envelope.delivery_id).as_str(),
        );
        let body = envelope
            .to_json()
            .map_err(|e| BusError::Storage(format!("cannot serialise the envelope: {e}")))?;
        let ack = tokio::time::timeout(ACK_TIMEOUT, async {
            self.js
                .publish_with_headers(subject, headers, body.into())
                .await?
                .await
        })
        .await
        .map_err(|_| unavailable("no publish ack from JetStream in time"))?
        .map_err(unavailable)?;
        let event_id = envelope.id.clone();
        Ok(if ack.duplicate {
            Published::Duplicate { event_id }
        } else {
            Published::Accepted { event_id }
        })
    }
}

/// Keeps `Shared::pending` near the largest agent backlog so that `health()` stays free of I/O.
async fn refresh_depth(
    js: jetstream::Context,
    client: async_nats::Client,
    stream: String,
    shared: Weak<Shared>,
) {
    loop {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let connected = client.connection_state() == async_nats::connection::State::Connected;
        shared.alive.store(connected, Ordering::Relaxed);
        if connected && let Ok(s) = js.get_stream(&stream).await {
            let mut consumers = s.consumers();
            let mut depth = 0_u64;
            while let Some(Ok(info)) = consumers.next().await {
                if info.name.starts_with("clawlet-agent-") {
                    depth = depth.max(info.num_pending + info.num_ack_pending as u64);
                }
            }
            shared.pending.store(depth, Ordering::Relaxed);
        }
        drop(shared);
        tokio::time::sleep(DEPTH_REFRESH).await;
    }
}

/// The dispatcher for the nats backend: one consumer loop per agent, reconciled on reload.
pub(crate) async fn run(state: Arc<State>) {
    let crate::bus::Store::Nats(store) = state.bus.store() else {
        return;
    };
    let mut loops: HashMap<String, CancellationToken> = HashMap::new();
    loop {
        let agents = state.agents.load_full();
        loops.retain(|name, token| {
            let keep = agents.contains_key(name);
            if !keep {
                token.cancel();
            }
            keep
        });
        for name in agents.keys() {
            if !loops.contains_key(name) {
                let token = state.shutdown.child_token();
                loops.insert(name.clone(), token.clone());
                let consumer = consumer_loop(
                    Arc::clone(&state),
                    store.js.clone(),
                    store.stream.clone(),
                    store.prefix.clone(),
                    name.clone(),
                    token,
                );
                state.tracker.spawn(consumer);
            }
        }
        tokio::select! {
            () = state.shutdown.cancelled() => return,
            () = state.bus.shared().notify.notified() => {}
        }
    }
}

async fn consumer_loop(
    state: Arc<State>,
    js: jetstream::Context,
    stream: String,
    prefix: String,
    agent: String,
    stop: CancellationToken,
) {
    let mut backoff = Duration::from_millis(200);
    while !stop.is_cancelled() {
        match consume(&state, &js, &stream, &prefix, &agent, &stop).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(agent = %agent, error = %e, "NATS consumer failed; reconnecting");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

async fn consume(
    state: &Arc<State>,
    js: &jetstream::Context,
    stream: &str,
    prefix: &str,
    agent: &str,
    stop: &CancellationToken,
) -> Result<(), BusError> {
    let Some(spec) = state.agents.load().get(agent).map(|a| a.spec.clone()) else {
        return Ok(());
    };
    let name = format!("clawlet-agent-{}", token(agent));
    let stream_handle = js.get_stream(stream).await.map_err(unavailable)?;
    let consumer: consumer::PullConsumer = stream_handle
        .get_or_create_consumer(
            &name,
            consumer::pull::Config {
                durable_name: Some(name.clone()),
                ack_policy: consumer::AckPolicy::Explicit,
                // Longer than one attempt, so that a slow agent is not raced by a redelivery.
                ack_wait: spec.timeout + Duration::from_secs(30),
                filter_subject: format!("{prefix}.>"),
                ..Default::default()
            },
        )
        .await
        .map_err(unavailable)?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(spec.concurrency.max(1))
        .messages()
        .await
        .map_err(unavailable)?;
    loop {
        let message = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            m = messages.next() => m,
        };
        let message = match message {
            None => return Err(unavailable("consumer stream ended")),
            Some(Err(e)) => return Err(unavailable(e)),
            Some(Ok(m)) => m,
        };
        let permits = state
            .agents
            .load()
            .get(agent)
            .map(|a| Arc::clone(&a.permits));
        let permit = match permits {
            Some(p) => tokio::select! {
                () = stop.cancelled() => {
                    // Not attempted: hand it back at once rather than after ack_wait.
                    let _ = message.ack_with(AckKind::Nak(None)).await;
                    return Ok(());
                }
                p = p.acquire_owned() => p.ok(),
            },
            None => None,
        };
        let state = Arc::clone(state);
        let agent = agent.to_owned();
        let js = js.clone();
        let dead_subject = format!(
            "clawlet.dead.{}.{}",
            token(stream).to_lowercase(),
            token(&agent)
        );
        state.tracker.clone().spawn(async move {
            let _permit = permit;
            handle(&state, &js, &agent, &dead_subject, message).await;
        });
    }
}

async fn handle(
    state: &State,
    js: &jetstream::Context,
    agent: &str,
    dead_subject: &str,
    message: jetstream::Message,
) {
    let json = String::from_utf8_lossy(&message.payload).into_owned();
    let parsed = serde_json::from_str::<Envelope>(&json);
    let routed = match &parsed {
        Ok(env) => state.bus.shared().routes.load().as_ref().is_some_and(|r| {
            r.agents_for(&env.handler, &env.event_type)
                .iter()
                .any(|a| a == agent)
        }),
        Err(_) => true,
    };
    if !routed {
        if let Err(e) = message.ack().await {
            tracing::warn!(agent, error = %e, "cannot ack an event not routed to this agent");
        }
        return;
    }
    let attempts = message.info().map_or(0, |i| {
        u32::try_from(i.delivered.saturating_sub(1)).unwrap_or(u32::MAX)
    });
    let attempted = match &parsed {
        Ok(envelope) => attempt_once(state, agent, envelope, &json, attempts).await,
        Err(e) => Attempted::unreadable(e),
    };
    let acked = match &attempted.decision {
        Decision::Delivered => message.ack().await,
        Decision::Retry { after, .. } => message.ack_with(AckKind::Nak(Some(*after))).await,
        Decision::Dead { error } => {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Clawlet-Agent", agent);
            headers.insert("Clawlet-Error", error.replace(['\r', '\n'], " ").as_str());
            let dead = async {
                js.publish_with_headers(dead_subject.to_owned(), headers, message.payload.clone())
                    .await?
                    .await
            };
            match dead.await {
                Ok(_) => message.ack_with(AckKind::Term).await,
                Err(e) => {
                    // Without a dead-letter copy, keep the event: nak so it is retried later.
                    tracing::error!(agent, error = %e, "cannot store a dead letter; the event stays queued");
                    message
                        .ack_with(AckKind::Nak(Some(state.opts.retry.max)))
                        .await
                }
            }
        }
    };
    if let Err(e) = acked {
        tracing::warn!(agent, error = %e, "cannot ack a delivery; JetStream will redeliver it");
    }
    attempted.report(state, agent);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_tokens_are_sanitised() {
        let check = |input: &str, expected: &str| assert_eq!(token(input), expected, "{input:?}");
        check("github", "github");
        check("invoice.paid", "invoice_paid");
        check("a*b>c", "a_b_c");
        check("user created\t", "user_created_");
        check("tab\there", "tab_here");
        check("", "_");
        check("ünïcode", "ünïcode");
    }

    #[test]
    fn only_the_default_stream_uses_the_documented_subjects() {
        assert_eq!(subject_prefix("CLAWLET_WEBHOOKS"), "clawlet.webhooks");
        assert_eq!(subject_prefix("OTHER.ONE"), "clawlet.webhooks-other_one");
    }
}
