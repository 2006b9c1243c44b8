//! The dispatcher for the NATS backend: one consumer loop per configured agent, and the consumers
//! on the server reconciled with the configuration at start and on every reload. The backend
//! ([`crate::nats`]) owns the stream and its consumers; this drives them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::{Attempted, Decision, State, attempt_once};
use crate::agent::Agent;
use crate::bus::Store;
use crate::nats::{
    AGENT_HEADER, ATTEMPTS_HEADER, ConsumerPlan, Core, ERROR_HEADER, REPLAY_FOR_HEADER,
    ROUTE_HEADER, consumer_name, decode_envelope, unavailable,
};
use crate::{AgentKind, BusError};

/// Messages a `log` agent's consumer pulls at once. Its attempts cannot fail or wait, so a
/// large batch costs nothing in redeliveries and saves a round trip per few events.
const LOG_BATCH: usize = 256;
/// Slack on top of an attempt's timeout before JetStream hands an unacked message out again.
const ACK_SLACK: Duration = Duration::from_secs(30);
/// A consumer loop that ran this long before failing starts its backoff over.
const HEALTHY_RUN: Duration = Duration::from_secs(30);

/// What the agent's consumer must look like.
fn plan(agent: &Agent) -> ConsumerPlan {
    ConsumerPlan {
        name: consumer_name(&agent.spec.name),
        // Longer than one attempt, so that a slow agent is not raced by a redelivery.
        ack_wait: agent.spec.timeout + ACK_SLACK,
        start: agent.spec.start,
    }
}

/// The dispatcher for the nats backend: one consumer loop per agent, reconciled on reload.
pub(crate) async fn run(state: Arc<State>) {
    let Store::Nats(store) = state.bus.store() else {
        return;
    };
    let core = store.core();
    let mut loops: HashMap<String, CancellationToken> = HashMap::new();
    loop {
        let agents = state.agents.load_full();
        core.set_plan(agents.values().map(|a| plan(a)).collect());
        // Failing here (NATS down) is retried by each consumer loop when it finds no consumer.
        if let Err(e) = core.reconcile().await {
            tracing::warn!(error = %e, "cannot set up the agents' NATS consumers; retrying");
        }
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
                let consumer =
                    consumer_loop(Arc::clone(&state), Arc::clone(&core), name.clone(), token);
                state.tracker.spawn(consumer);
            }
        }
        tokio::select! {
            () = state.shutdown.cancelled() => return,
            () = state.bus.shared().notify.notified() => {}
        }
    }
}

async fn consumer_loop(state: Arc<State>, core: Arc<Core>, agent: String, stop: CancellationToken) {
    let mut backoff = Duration::from_millis(200);
    while !stop.is_cancelled() {
        let started = Instant::now();
        match consume(&state, &core, &agent, &stop).await {
            Ok(()) => return,
            Err(e) => {
                if started.elapsed() > HEALTHY_RUN {
                    backoff = Duration::from_millis(200);
                }
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
    core: &Arc<Core>,
    agent: &str,
    stop: &CancellationToken,
) -> Result<(), BusError> {
    let Some(spec) = state.agents.load().get(agent).map(|a| a.spec.clone()) else {
        return Ok(());
    };
    let consumer = core.open_consumer(agent).await?;
    let inline = spec.kind == AgentKind::Log;
    let batch = if inline {
        LOG_BATCH
    } else {
        spec.concurrency.max(1)
    };
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(batch)
        .messages()
        .await
        .map_err(unavailable)?;
    let dead_subject = core.dead_subject(agent);
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
        if inline {
            // A log line neither fails nor waits: writing it here keeps the batch's order and
            // spares a task per event.
            handle(state, core.js(), agent, &dead_subject, message).await;
            continue;
        }
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
        let js = core.js().clone();
        let dead_subject = dead_subject.clone();
        state.tracker.clone().spawn(async move {
            let _permit = permit;
            handle(&state, &js, &agent, &dead_subject, message).await;
        });
    }
}

/// Whether `agent` is owed the event: the routes named it when the event was stored (or, for an
/// event stored by an earlier version, they name it now), and a replayed copy names it. A dead
/// letter's replay names the agents that gave up on it, which were owed it.
fn owed(
    state: &State,
    agent: &str,
    message: &jetstream::Message,
    envelope: &clawlet_events::Envelope,
) -> bool {
    let names = |header: &str| {
        message
            .headers
            .as_ref()
            .and_then(|h| h.get(header))
            .map(|v| v.as_str().split(',').any(|a| a.trim() == agent))
    };
    let meant_for = names(REPLAY_FOR_HEADER);
    if meant_for == Some(false) {
        return false;
    }
    if let Some(routed) = names(ROUTE_HEADER) {
        return routed;
    }
    if meant_for == Some(true) {
        return true;
    }
    state.bus.shared().routes.load().as_ref().is_some_and(|r| {
        r.agents_for(
            &envelope.handler,
            &envelope.event_type,
            envelope.action.as_deref(),
        )
        .iter()
        .any(|a| a == agent)
    })
}

async fn handle(
    state: &State,
    js: &jetstream::Context,
    agent: &str,
    dead_subject: &str,
    message: jetstream::Message,
) {
    let (json, parsed) = decode_envelope(&message.payload);
    let routed = match &parsed {
        Ok(envelope) => owed(state, agent, &message, envelope),
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
    let json = clawlet_events::EnvelopeJson::from(json);
    let attempted = match &parsed {
        Ok(envelope) => attempt_once(state, agent, envelope, &json, attempts).await,
        Err(e) => Attempted::unreadable(e),
    };
    let acked = match &attempted.decision {
        Decision::Delivered => message.ack().await,
        Decision::Retry { after, .. } => message.ack_with(AckKind::Nak(Some(*after))).await,
        Decision::Dead { error } => {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(AGENT_HEADER, agent);
            headers.insert(ERROR_HEADER, error.replace(['\r', '\n'], " ").as_str());
            headers.insert(
                ATTEMPTS_HEADER,
                attempts.saturating_add(1).to_string().as_str(),
            );
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
