//! Delivery: the dispatcher's claim loop for the sqlite and memory backends (here) and its
//! consumer loops for nats (`nats`), both deciding each attempt with [`attempt_once`].

mod nats;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use clawlet_events::{Envelope, EnvelopeJson};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::admin::AttemptNote;
use crate::agent::{self, Agent};
use crate::bus::Store;
use crate::spec::Routes;
use crate::store::{Finish, Payload, Work, dur_ms, now_ms};
use crate::{AgentSpec, AttemptOutcome, Bus, BusError, DeliveryObserver, RetryPolicy, RouteSpec};

/// Attempts for a delivery whose agent was removed by a reload: it fails visibly, then goes dead.
const ORPHAN_MAX_ATTEMPTS: u32 = 10;
/// Deliveries of removed agents claimed at once.
const ORPHAN_BATCH: usize = 16;
/// Deliveries claimed ahead per unit of an agent's concurrency. Each claim is a journal write that
/// waits for a commit, so claiming only what the agent can run right now caps delivery at
/// `concurrency` events per two commits, far below what publish accepts; the claimed rows wait
/// for the agent's permits in memory (in flight in the journal, so a restart makes them due again).
const CLAIM_AHEAD: usize = 16;

/// Tuning for a [`Dispatcher`]; the defaults suit the daemon.
#[derive(Debug, Clone)]
pub struct DispatcherOptions {
    /// Backoff between failed attempts.
    pub retry: RetryPolicy,
    /// How often the journal is checked for work that another process (the CLI) queued.
    pub poll_interval: Duration,
}

impl Default for DispatcherOptions {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            poll_interval: Duration::from_secs(1),
        }
    }
}

pub(crate) struct State {
    pub(crate) bus: Bus,
    pub(crate) agents: ArcSwap<HashMap<String, Arc<Agent>>>,
    pub(crate) observer: Arc<dyn DeliveryObserver>,
    client: reqwest::Client,
    pub(crate) opts: DispatcherOptions,
    pub(crate) shutdown: CancellationToken,
    pub(crate) tracker: TaskTracker,
    /// Deliveries held per agent (running or waiting for a permit).
    slots: Arc<Slots>,
    /// Set when the last claim left due deliveries behind for want of a free slot: a finishing
    /// delivery then wakes the claim loop.
    backlog: AtomicBool,
}

/// Deliveries held in memory per agent, running or waiting for a permit, each agent capped at
/// `CLAIM_AHEAD` times its concurrency. Taken by publish (a delivery handed over straight away)
/// and by claims; given back when an attempt is recorded.
pub(crate) struct Slots {
    held: Mutex<HashMap<String, usize>>,
    capacity: ArcSwap<HashMap<String, usize>>,
}

impl Slots {
    fn new(agents: &HashMap<String, Arc<Agent>>) -> Self {
        Self {
            held: Mutex::new(HashMap::new()),
            capacity: ArcSwap::from_pointee(Self::capacities(agents)),
        }
    }

    fn capacities(agents: &HashMap<String, Arc<Agent>>) -> HashMap<String, usize> {
        agents
            .iter()
            .map(|(name, a)| (name.clone(), a.spec.concurrency.saturating_mul(CLAIM_AHEAD)))
            .collect()
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        // A poisoned map only holds counters; keep using it.
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn capacity(&self, agent: &str) -> usize {
        self.capacity
            .load()
            .get(agent)
            .copied()
            .unwrap_or(ORPHAN_BATCH)
    }

    /// Takes one slot of `agent` when it has one free.
    pub(crate) fn try_take(&self, agent: &str) -> bool {
        let capacity = self.capacity(agent);
        let mut held = self.held();
        match held.get_mut(agent) {
            Some(n) if *n >= capacity => false,
            Some(n) => {
                *n += 1;
                true
            }
            None if capacity == 0 => false,
            None => {
                held.insert(agent.to_owned(), 1);
                true
            }
        }
    }

    /// Takes one slot of `agent` for a delivery claimed within its free slots.
    fn hold(&self, agent: &str) {
        *self.held().entry(agent.to_owned()).or_insert(0) += 1;
    }

    /// How many slots `agent` has free.
    fn free(&self, agent: &str) -> usize {
        let busy = self.held().get(agent).copied().unwrap_or(0);
        self.capacity(agent).saturating_sub(busy)
    }

    pub(crate) fn release(&self, agent: &str) {
        if let Some(n) = self.held().get_mut(agent) {
            *n = n.saturating_sub(1);
        }
    }

    /// Gives back one slot for each of `agents`.
    pub(crate) fn release_all(&self, agents: &[String]) {
        for agent in agents {
            self.release(agent);
        }
    }
}

/// Where publish hands over deliveries whose slot it took.
pub(crate) struct Handoff {
    pub(crate) slots: Arc<Slots>,
    tx: tokio::sync::mpsc::UnboundedSender<Work>,
    /// Told about the deliveries publish makes itself (see `Placer` in `bus`).
    pub(crate) observer: Arc<dyn DeliveryObserver>,
}

impl Handoff {
    /// Passes `work` to the dispatcher. If it has stopped, the row stays in flight in the journal
    /// and is due again at the next start.
    pub(crate) fn send(&self, work: Work) {
        let _ = self.tx.send(work);
    }
}

/// Delivers stored events to agents, with retries, backoff, dead letters and per-agent limits.
pub struct Dispatcher {
    state: Arc<State>,
    main: JoinHandle<()>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("bus", &self.state.bus)
            .finish_non_exhaustive()
    }
}

fn build_agents(agents: Vec<AgentSpec>) -> Result<HashMap<String, Arc<Agent>>, BusError> {
    agents
        .into_iter()
        .map(|spec| Ok((spec.name.clone(), Arc::new(Agent::new(spec)?))))
        .collect()
}

impl Dispatcher {
    /// Registers the routes with the bus (events stored before are routed now) and starts
    /// delivering. Must be called inside a Tokio runtime.
    pub fn start(
        bus: Bus,
        agents: Vec<AgentSpec>,
        routes: Vec<RouteSpec>,
        observer: Arc<dyn DeliveryObserver>,
        shutdown: CancellationToken,
    ) -> Result<Dispatcher, BusError> {
        Self::start_with_options(
            bus,
            agents,
            routes,
            observer,
            shutdown,
            DispatcherOptions::default(),
        )
    }

    /// [`Dispatcher::start`] with explicit tuning (tests use tiny retry delays).
    pub fn start_with_options(
        bus: Bus,
        agents: Vec<AgentSpec>,
        routes: Vec<RouteSpec>,
        observer: Arc<dyn DeliveryObserver>,
        shutdown: CancellationToken,
        opts: DispatcherOptions,
    ) -> Result<Dispatcher, BusError> {
        let routes = Routes::new(routes, &agents)?;
        let agents = build_agents(agents)?;
        let client = reqwest::Client::builder().build().map_err(|e| {
            BusError::Config(format!("cannot build the HTTP client for agents: {e}"))
        })?;
        let slots = Arc::new(Slots::new(&agents));
        let state = Arc::new(State {
            bus,
            agents: ArcSwap::from_pointee(agents),
            observer,
            client,
            opts,
            shutdown,
            tracker: TaskTracker::new(),
            slots: Arc::clone(&slots),
            backlog: AtomicBool::new(false),
        });
        let main = match state.bus.store() {
            Store::Local(_) | Store::Memory(_) => {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                state.bus.set_handoff(Some(Arc::new(Handoff {
                    slots,
                    tx,
                    observer: Arc::clone(&state.observer),
                })));
                state.bus.set_routes(routes);
                tokio::spawn(run_local(Arc::clone(&state), rx))
            }
            Store::Nats(_) => {
                state.bus.set_routes(routes);
                tokio::spawn(nats::run(Arc::clone(&state)))
            }
        };
        Ok(Dispatcher { state, main })
    }

    /// Swaps agents and routes atomically for new events. Deliveries already queued keep their
    /// agent; one whose agent was removed fails until it is dead-lettered.
    pub fn reload(&self, agents: Vec<AgentSpec>, routes: Vec<RouteSpec>) -> Result<(), BusError> {
        let routes = Routes::new(routes, &agents)?;
        let agents = build_agents(agents)?;
        // Agents first, so that no event is routed to an agent the dispatcher does not know yet.
        self.state
            .slots
            .capacity
            .store(Arc::new(Slots::capacities(&agents)));
        self.state.agents.store(Arc::new(agents));
        self.state.bus.set_routes(routes);
        self.state.bus.shared().notify.notify_one();
        Ok(())
    }

    /// Waits, after `shutdown` was cancelled, for the deliveries in flight to finish (each within
    /// its agent's timeout). What was not attempted stays pending in the journal.
    pub async fn join(self) {
        if let Err(e) = self.main.await {
            tracing::error!(error = %e, "dispatcher task failed");
        }
        self.state.tracker.close();
        self.state.tracker.wait().await;
    }
}

/// The result of one attempt, decided against the agent's `max_attempts`.
pub(crate) enum Decision {
    Delivered,
    Retry { after: Duration, error: String },
    Dead { error: String },
}

/// One attempt's decision plus what the observer hears once the result is recorded (recording
/// first means an observer that saw an attempt also sees its effect in the journal).
pub(crate) struct Attempted {
    pub(crate) decision: Decision,
    report: Option<(AttemptOutcome, Duration)>,
}

impl Attempted {
    /// No attempt: the stored envelope cannot be read, so the delivery can never be made.
    pub(crate) fn unreadable(error: &dyn std::fmt::Display) -> Self {
        Self {
            decision: Decision::Dead {
                error: format!("unreadable envelope: {error}"),
            },
            report: None,
        }
    }

    pub(crate) fn report(&self, state: &State, agent: &str) {
        if let Some((outcome, latency)) = self.report {
            state.observer.attempt(agent, outcome, latency);
            state.bus.note_activity(agent, outcome, self.error());
        }
        if matches!(self.decision, Decision::Dead { .. }) {
            state.observer.dead_lettered(agent);
        }
    }
}

impl Attempted {
    /// The attempt's error, when it failed.
    fn error(&self) -> Option<&str> {
        match &self.decision {
            Decision::Delivered => None,
            Decision::Retry { error, .. } | Decision::Dead { error } => Some(error),
        }
    }

    /// The attempt for the history; `None` when none was made (an unreadable envelope).
    fn note(&self) -> Option<AttemptNote> {
        let (outcome, latency) = self.report?;
        Some(AttemptNote {
            at: now_ms(),
            outcome: outcome.as_str(),
            latency,
            error: self.error().map(str::to_owned),
        })
    }
}

/// Runs one attempt inside its span and decides what happens next. `attempts` is the number made
/// before this one.
pub(crate) async fn attempt_once(
    state: &State,
    agent_name: &str,
    envelope: &Envelope,
    json: &EnvelopeJson,
    attempts: u32,
) -> Attempted {
    let agent = state.agents.load().get(agent_name).cloned();
    let attempt_no = attempts.saturating_add(1);
    let max = agent
        .as_ref()
        .map_or(ORPHAN_MAX_ATTEMPTS, |a| a.spec.max_attempts);
    let (result, report) = match &agent {
        None => (Err(format!("agent {agent_name} is not configured")), None),
        Some(agent) => {
            let span = tracing::info_span!(
                "deliver",
                agent = %agent_name,
                event_id = %envelope.id,
                attempt = attempt_no
            );
            async {
                let traceparent = state.observer.traceparent();
                let started = Instant::now();
                let result =
                    agent::attempt(agent, &state.client, envelope, json, traceparent).await;
                let outcome = result
                    .as_ref()
                    .map_or_else(|e| e.outcome, |()| AttemptOutcome::Delivered);
                (
                    result.map_err(|e| e.message),
                    Some((outcome, started.elapsed())),
                )
            }
            .instrument(span)
            .await
        }
    };
    // An agent's first failure since it last delivered is a WARN with the whole cause (for HTTP,
    // the error chain down to `Connection refused`, a DNS or TLS failure, or the status): waiting
    // for the dead letter would keep a broken agent quiet for its whole retry budget.
    let first_failure = result.is_err() && agent.as_ref().is_some_and(|a| a.failed());
    let decision = match result {
        Ok(()) => {
            if agent.as_ref().is_some_and(|a| a.delivered()) {
                tracing::info!(agent = %agent_name, "agent delivers again");
            }
            Decision::Delivered
        }
        Err(error) if attempt_no >= max => {
            tracing::warn!(agent = %agent_name, attempts = attempt_no, %error, "delivery dead-lettered");
            Decision::Dead { error }
        }
        Err(error) => {
            if first_failure {
                tracing::warn!(agent = %agent_name, attempts = attempt_no, %error, "delivery failed, will retry; further failures of this agent are logged at debug until it delivers again");
            } else {
                tracing::debug!(agent = %agent_name, attempts = attempt_no, %error, "delivery failed, will retry");
            }
            let after = state.opts.retry.backoff(attempt_no, &mut rand::rng());
            Decision::Retry { after, error }
        }
    };
    Attempted { decision, report }
}

impl State {
    /// How many more deliveries `agent` can take now.
    fn free_slots(&self) -> impl Fn(&str) -> usize + Send + 'static {
        let slots = Arc::clone(&self.slots);
        move |agent| slots.free(agent)
    }
}

async fn run_local(state: Arc<State>, mut handed: tokio::sync::mpsc::UnboundedReceiver<Work>) {
    if let Err(e) = state.bus.route_unrouted().await {
        tracing::error!(error = %e, "cannot route events stored before the dispatcher started");
    }
    let shared = Arc::clone(state.bus.shared());
    let poll = state.opts.poll_interval;
    let mut claim_now = true;
    let mut next_claim = tokio::time::Instant::now();
    loop {
        if claim_now {
            // Deliveries due now but not claimed belong to busy agents; a finishing delivery
            // wakes the loop for them.
            let free = state.free_slots();
            let wait = match state.bus.claim(move |agent| free(agent)).await {
                Ok(claimed) => {
                    state.backlog.store(claimed.more, Ordering::Relaxed);
                    for item in claimed.work {
                        state.slots.hold(&item.agent);
                        state.tracker.spawn(deliver_local(Arc::clone(&state), item));
                    }
                    claimed.next_due.map_or(poll, |due| {
                        Duration::from_millis(u64::try_from(due - now_ms()).unwrap_or(0)).min(poll)
                    })
                }
                Err(BusError::Closed) => {
                    tracing::error!("the journal writer stopped; the dispatcher stops");
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim deliveries");
                    poll
                }
            };
            next_claim = tokio::time::Instant::now() + wait;
        }
        tokio::select! {
            () = state.shutdown.cancelled() => break,
            // Deliveries publish handed over (their slots taken, their rows in flight) need no
            // claim; the claim timer keeps running.
            Some(work) = handed.recv() => {
                state.tracker.spawn(deliver_local(Arc::clone(&state), work));
                while let Ok(work) = handed.try_recv() {
                    state.tracker.spawn(deliver_local(Arc::clone(&state), work));
                }
                claim_now = false;
            }
            () = shared.notify.notified() => claim_now = true,
            () = tokio::time::sleep_until(next_claim) => claim_now = true,
        }
    }
    // Publish stops handing over, and what was handed over but not started goes back to
    // pending, so that a restart (or this journal's next dispatcher) delivers it.
    state.bus.set_handoff(None);
    handed.close();
    while let Ok(work) = handed.try_recv() {
        finish(&state, work.event_id, work.agent, Finish::Release).await;
    }
}

async fn deliver_local(state: Arc<State>, work: Work) {
    let permits = state
        .agents
        .load()
        .get(&work.agent)
        .map(|a| Arc::clone(&a.permits));
    let permit = match permits {
        // Biased: once shutdown began, a claimed delivery that was waiting is not attempted, even
        // when a permit is free at the same moment.
        Some(permits) => tokio::select! {
            biased;
            () = state.shutdown.cancelled() => {
                finish(&state, work.event_id, work.agent, Finish::Release).await;
                return;
            }
            permit = permits.acquire_owned() => permit.ok(),
        },
        None => None,
    };
    let attempted = match &work.payload {
        Payload::Fresh(f) => {
            attempt_once(&state, &work.agent, &f.envelope, &f.json, work.attempts).await
        }
        Payload::Stored(json) => match serde_json::from_str::<Envelope>(&json.text()) {
            Ok(envelope) => attempt_once(&state, &work.agent, &envelope, json, work.attempts).await,
            Err(e) => Attempted::unreadable(&e),
        },
        Payload::Damaged(error) => Attempted::unreadable(error),
    };
    drop(permit);
    let outcome = match &attempted.decision {
        Decision::Delivered => Finish::Delivered,
        Decision::Retry { after, error } => Finish::Retry {
            at: now_ms().saturating_add(dur_ms(*after)),
            error: error.clone(),
        },
        Decision::Dead { error } => Finish::Dead {
            error: error.clone(),
        },
    };
    let agent = work.agent.clone();
    let note = attempted.note();
    finish_noted(&state, work.event_id, work.agent, outcome, note).await;
    attempted.report(&state, &agent);
}

async fn finish(state: &State, event_id: String, agent: String, outcome: Finish) {
    finish_noted(state, event_id, agent, outcome, None).await;
}

async fn finish_noted(
    state: &State,
    event_id: String,
    agent: String,
    outcome: Finish,
    note: Option<AttemptNote>,
) {
    // A retry or a release leaves a pending row whose due time the claim loop must learn; a
    // delivered or dead one matters only when due deliveries wait for this agent's slot.
    let pending_again = matches!(outcome, Finish::Retry { .. } | Finish::Release);
    if let Err(e) = state
        .bus
        .finish(event_id.clone(), agent.clone(), outcome, note)
        .await
    {
        // The row stays in flight; it is retried when the daemon restarts.
        tracing::error!(error = %e, %event_id, %agent, "cannot record a delivery result");
    }
    state.slots.release(&agent);
    if pending_again || state.backlog.load(Ordering::Relaxed) {
        state.bus.shared().notify.notify_one();
    }
}
