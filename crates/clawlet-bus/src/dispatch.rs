use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use clawlet_events::Envelope;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::agent::{self, Agent};
use crate::bus::Store;
use crate::spec::Routes;
use crate::sql::{self, Finish, Work};
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
    /// Claimed deliveries per agent (running or waiting for a permit), so that each claim asks
    /// only for what the agent can take within `CLAIM_AHEAD` times its concurrency.
    in_flight: Mutex<HashMap<String, usize>>,
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
        bus.set_routes(routes);
        let state = Arc::new(State {
            bus,
            agents: ArcSwap::from_pointee(agents),
            observer,
            client,
            opts,
            shutdown,
            tracker: TaskTracker::new(),
            in_flight: Mutex::new(HashMap::new()),
        });
        let main = match state.bus.store() {
            Store::Local(_) => tokio::spawn(run_local(Arc::clone(&state))),
            Store::Nats(_) => tokio::spawn(crate::nats::run(Arc::clone(&state))),
        };
        Ok(Dispatcher { state, main })
    }

    /// Swaps agents and routes atomically for new events. Deliveries already queued keep their
    /// agent; one whose agent was removed fails until it is dead-lettered.
    pub fn reload(&self, agents: Vec<AgentSpec>, routes: Vec<RouteSpec>) -> Result<(), BusError> {
        let routes = Routes::new(routes, &agents)?;
        let agents = build_agents(agents)?;
        // Agents first, so that no event is routed to an agent the dispatcher does not know yet.
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
    pub(crate) fn report(&self, state: &State, agent: &str) {
        if let Some((outcome, latency)) = self.report {
            state.observer.attempt(agent, outcome, latency);
        }
        if matches!(self.decision, Decision::Dead { .. }) {
            state.observer.dead_lettered(agent);
        }
    }
}

/// Runs one attempt inside its span and decides what happens next. `attempts` is the number made
/// before this one.
pub(crate) async fn attempt_once(
    state: &State,
    agent_name: &str,
    json: &str,
    attempts: u32,
) -> Attempted {
    let agent = state.agents.load().get(agent_name).cloned();
    let attempt_no = attempts.saturating_add(1);
    let max = agent
        .as_ref()
        .map_or(ORPHAN_MAX_ATTEMPTS, |a| a.spec.max_attempts);
    let (result, report) = match (&agent, serde_json::from_str::<Envelope>(json)) {
        (_, Err(e)) => {
            let error = format!("unreadable envelope: {e}");
            return Attempted {
                decision: Decision::Dead { error },
                report: None,
            };
        }
        (None, Ok(_)) => (Err(format!("agent {agent_name} is not configured")), None),
        (Some(agent), Ok(envelope)) => {
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
                    agent::attempt(agent, &state.client, &envelope, json, traceparent).await;
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
    let decision = match result {
        Ok(()) => Decision::Delivered,
        Err(error) if attempt_no >= max => {
            tracing::warn!(agent = %agent_name, attempts = attempt_no, %error, "delivery dead-lettered");
            Decision::Dead { error }
        }
        Err(error) => {
            tracing::debug!(agent = %agent_name, attempts = attempt_no, %error, "delivery failed, will retry");
            let after = state.opts.retry.backoff(attempt_no, &mut rand::rng());
            Decision::Retry { after, error }
        }
    };
    Attempted { decision, report }
}

impl State {
    fn in_flight(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        // A poisoned map only holds counters; keep using it.
        self.in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many more deliveries `agent` can take now.
    fn free_slots(&self) -> impl Fn(&str) -> usize + Send + 'static {
        let agents = self.agents.load_full();
        let in_flight = self.in_flight().clone();
        move |agent| {
            let busy = in_flight.get(agent).copied().unwrap_or(0);
            let capacity = agents.get(agent).map_or(ORPHAN_BATCH, |a| {
                a.spec.concurrency.saturating_mul(CLAIM_AHEAD)
            });
            capacity.saturating_sub(busy)
        }
    }
}

async fn run_local(state: Arc<State>) {
    if let Err(e) = state.bus.route_unrouted().await {
        tracing::error!(error = %e, "cannot route events stored before the dispatcher started");
    }
    let shared = Arc::clone(state.bus.shared());
    let poll = state.opts.poll_interval;
    loop {
        // Deliveries due now but not claimed belong to busy agents; a finishing delivery wakes
        // the loop for them.
        let wait = match state.bus.claim(state.free_slots()).await {
            Ok((work, next_due)) => {
                for item in work {
                    *state.in_flight().entry(item.agent.clone()).or_insert(0) += 1;
                    state.tracker.spawn(deliver_local(Arc::clone(&state), item));
                }
                next_due.map_or(poll, |due| {
                    Duration::from_millis(u64::try_from(due - sql::now_ms()).unwrap_or(0)).min(poll)
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
        tokio::select! {
            () = state.shutdown.cancelled() => break,
            () = shared.notify.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
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
    let attempted = attempt_once(&state, &work.agent, &work.envelope_json, work.attempts).await;
    drop(permit);
    let outcome = match &attempted.decision {
        Decision::Delivered => Finish::Delivered,
        Decision::Retry { after, error } => Finish::Retry {
            at: sql::now_ms().saturating_add(sql::dur_ms(*after)),
            error: error.clone(),
        },
        Decision::Dead { error } => Finish::Dead {
            error: error.clone(),
        },
    };
    let agent = work.agent.clone();
    finish(&state, work.event_id, work.agent, outcome).await;
    attempted.report(&state, &agent);
}

async fn finish(state: &State, event_id: String, agent: String, outcome: Finish) {
    if let Err(e) = state
        .bus
        .finish(event_id.clone(), agent.clone(), outcome)
        .await
    {
        // The row stays in flight; it is retried when the daemon restarts.
        tracing::error!(error = %e, %event_id, %agent, "cannot record a delivery result");
    }
    if let Some(n) = state.in_flight().get_mut(&agent) {
        *n = n.saturating_sub(1);
    }
    state.bus.shared().notify.notify_one();
}
