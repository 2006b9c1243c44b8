use std::collections::HashSet;
use std::time::Duration;

/// How an agent receives events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentKind {
    /// Run `command` (no shell) with the envelope JSON on stdin and `CLAWLET_EVENT_ID`,
    /// `CLAWLET_EVENT_TYPE`, `CLAWLET_EVENT_SOURCE` (and `TRACEPARENT`) in the environment;
    /// exit status 0 is success.
    Exec {
        /// Program and arguments.
        command: Vec<String>,
    },
    /// POST the envelope JSON, signed with Standard Webhooks headers; any 2xx is success.
    Http {
        /// Where to POST.
        url: String,
        /// The `whsec_…` signing secret; `None` sends no `webhook-signature`.
        secret: Option<String>,
        /// Extra headers sent with every request.
        headers: Vec<(String, String)>,
    },
    /// Write the summary line to the log (tracing, info); always succeeds. While a dispatcher
    /// runs, publish writes the line itself, before the event's commit, and records the delivery
    /// made; replays and events stored without a dispatcher go through the dispatcher.
    Log,
}

/// One configured agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSpec {
    /// The name routes refer to.
    pub name: String,
    /// How it receives events.
    pub kind: AgentKind,
    /// Longest one attempt may take; the exec child is killed, the HTTP request dropped.
    pub timeout: Duration,
    /// Attempts in flight at once for this agent (at least 1).
    pub concurrency: usize,
    /// Attempts before the event is dead-lettered for this agent (at least 1; default 10).
    pub max_attempts: u32,
}

impl AgentSpec {
    /// An agent with the defaults: 30s timeout, concurrency 4, 10 attempts.
    pub fn new(name: impl Into<String>, kind: AgentKind) -> Self {
        Self {
            name: name.into(),
            kind,
            timeout: Duration::from_secs(30),
            concurrency: 4,
            max_attempts: 10,
        }
    }
}

/// Which events go to an agent. Every route that matches an event delivers it, and an agent named
/// by several matching routes receives the event once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// Handler names to match; empty matches every handler.
    pub handlers: Vec<String>,
    /// Event types to match; empty matches every type.
    pub events: Vec<String>,
    /// The agent that receives matching events.
    pub agent: String,
}

impl RouteSpec {
    fn matches(&self, handler: &str, event_type: &str) -> bool {
        (self.handlers.is_empty() || self.handlers.iter().any(|h| h == handler))
            && (self.events.is_empty() || self.events.iter().any(|e| e == event_type))
    }
}

/// Routes with their agents checked, applied at publish time.
#[derive(Debug, Clone, Default)]
pub(crate) struct Routes {
    routes: Vec<RouteSpec>,
    /// The agents of kind [`AgentKind::Log`]: their delivery is made while the event is stored.
    inline: HashSet<String>,
}

impl Routes {
    pub(crate) fn new(
        routes: Vec<RouteSpec>,
        agents: &[AgentSpec],
    ) -> Result<Self, crate::BusError> {
        let mut names = HashSet::new();
        for agent in agents {
            if agent.name.is_empty() {
                return Err(crate::BusError::Config(
                    "an agent has an empty name".to_owned(),
                ));
            }
            if !names.insert(agent.name.as_str()) {
                return Err(crate::BusError::Config(format!(
                    "agent {} is defined twice",
                    agent.name
                )));
            }
            if agent.concurrency == 0 {
                return Err(crate::BusError::Config(format!(
                    "agent {}: concurrency must be at least 1",
                    agent.name
                )));
            }
            if agent.max_attempts == 0 {
                return Err(crate::BusError::Config(format!(
                    "agent {}: max_attempts must be at least 1",
                    agent.name
                )));
            }
            if let AgentKind::Exec { command } = &agent.kind
                && command.is_empty()
            {
                return Err(crate::BusError::Config(format!(
                    "agent {}: command is empty",
                    agent.name
                )));
            }
        }
        for (i, route) in routes.iter().enumerate() {
            if !names.contains(route.agent.as_str()) {
                return Err(crate::BusError::Config(format!(
                    "routes[{i}]: agent {} is not defined",
                    route.agent
                )));
            }
        }
        let inline = agents
            .iter()
            .filter(|a| a.kind == AgentKind::Log)
            .map(|a| a.name.clone())
            .collect();
        Ok(Self { routes, inline })
    }

    /// Whether `agent` writes a log line, which cannot fail: publish makes that delivery itself,
    /// in the transaction that stores the event, instead of handing it to the dispatcher.
    pub(crate) fn delivers_inline(&self, agent: &str) -> bool {
        self.inline.contains(agent)
    }

    /// The distinct agents, in route order, that receive an event.
    pub(crate) fn agents_for(&self, handler: &str, event_type: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for route in &self.routes {
            if route.matches(handler, event_type) && !out.contains(&route.agent) {
                out.push(route.agent.clone());
            }
        }
        out
    }
}

/// How one delivery attempt ended.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttemptOutcome {
    /// The agent took the event.
    Delivered,
    /// The agent refused it or could not be reached; it will be retried or dead-lettered.
    Failed,
    /// The attempt ran past the agent's timeout.
    TimedOut,
}

impl AttemptOutcome {
    /// The lower-case name for metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
        }
    }
}

/// Hooks the binary implements for metrics and trace context. Every method has a no-op default.
pub trait DeliveryObserver: Send + Sync + 'static {
    /// One attempt finished.
    fn attempt(&self, agent: &str, outcome: AttemptOutcome, latency: Duration) {
        let _ = (agent, outcome, latency);
    }
    /// An event was dead-lettered for `agent`.
    fn dead_lettered(&self, agent: &str) {
        let _ = agent;
    }
    /// The W3C `traceparent` of the current span. Called inside the delivery span; sent to http
    /// agents as the `traceparent` header and to exec agents as `TRACEPARENT`.
    fn traceparent(&self) -> Option<String> {
        None
    }
}

/// An observer that records nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopObserver;

impl DeliveryObserver for NoopObserver {}

/// Routes sending every event to a `log` agent named after each of `agents`, for the storage
/// backends' tests.
#[cfg(test)]
pub(crate) fn log_routes(agents: &[&str]) -> Routes {
    let specs: Vec<AgentSpec> = agents
        .iter()
        .map(|a| AgentSpec::new(*a, AgentKind::Log))
        .collect();
    let routes = agents
        .iter()
        .map(|a| RouteSpec {
            handlers: vec![],
            events: vec![],
            agent: (*a).to_owned(),
        })
        .collect();
    Routes::new(routes, &specs).unwrap()
}

/// Routes sending only `handler`'s events to one `log` agent named `agent`, for the storage
/// backends' tests.
#[cfg(test)]
pub(crate) fn handler_route(handler: &str, agent: &str) -> Routes {
    Routes::new(
        vec![RouteSpec {
            handlers: vec![handler.to_owned()],
            events: vec![],
            agent: agent.to_owned(),
        }],
        &[AgentSpec::new(agent, AgentKind::Log)],
    )
    .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(agents: &[AgentSpec], routes: &[(&[&str], &[&str], &str)], expected: &str) {
        let routes = routes
            .iter()
            .map(|(h, e, a)| RouteSpec {
                handlers: h.iter().map(|s| (*s).to_owned()).collect(),
                events: e.iter().map(|s| (*s).to_owned()).collect(),
                agent: (*a).to_owned(),
            })
            .collect();
        let got = match Routes::new(routes, agents) {
            Ok(r) => ["github/push", "github/issues", "stripe/invoice.paid"]
                .iter()
                .map(|k| {
                    let (h, e) = k.split_once('/').unwrap();
                    format!("{k}={}", r.agents_for(h, e).join("+"))
                })
                .collect::<Vec<_>>()
                .join(" "),
            Err(e) => e.to_string(),
        };
        assert_eq!(got, expected);
    }

    fn log(name: &str) -> AgentSpec {
        AgentSpec::new(name, AgentKind::Log)
    }

    #[test]
    fn routes_match_and_validate() {
        let both = [log("inbox"), log("log")];
        check(
            &both,
            &[
                (&["github"], &["push", "issues"], "inbox"),
                (&[], &[], "log"),
            ],
            "github/push=inbox+log github/issues=inbox+log stripe/invoice.paid=log",
        );
        check(
            &both,
            &[
                (&[], &["invoice.paid"], "inbox"),
                (&[], &["invoice.paid"], "inbox"),
            ],
            "github/push= github/issues= stripe/invoice.paid=inbox",
        );
        check(
            &both,
            &[],
            "github/push= github/issues= stripe/invoice.paid=",
        );
        check(
            &both,
            &[(&[], &[], "nobody")],
            "invalid agent or route: routes[0]: agent nobody is not defined",
        );
        check(
            &[log("a"), log("a")],
            &[],
            "invalid agent or route: agent a is defined twice",
        );
        check(
            &[log("")],
            &[],
            "invalid agent or route: an agent has an empty name",
        );
        check(
            &[AgentSpec {
                concurrency: 0,
                ..log("a")
            }],
            &[],
            "invalid agent or route: agent a: concurrency must be at least 1",
        );
        check(
            &[AgentSpec {
                max_attempts: 0,
                ..log("a")
            }],
            &[],
            "invalid agent or route: agent a: max_attempts must be at least 1",
        );
        check(
            &[AgentSpec::new("x", AgentKind::Exec { command: vec![] })],
            &[],
            "invalid agent or route: agent x: command is empty",
        );
    }
}
