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
        /// `url` as log lines and `last_error` show it, its credentials hidden. The caller
        /// redacts (the daemon with `clawlet_config::redact_url`): this crate does not decide
        /// what in a configured URL is secret.
        shown_url: String,
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
    /// Where an agent new to a NATS stream starts reading it (default: new events only).
    pub start: AgentStart,
    /// Variables an exec agent's command does not inherit from the daemon's environment (the
    /// daemon passes the credentials its configuration read); the rest is inherited. Unused by
    /// the other kinds, which run no program.
    pub env_remove: Vec<String>,
}

/// Which stored events an agent receives when it first reads a NATS stream. The other backends
/// route an event when it is stored, so an agent added later receives only later events there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AgentStart {
    /// Events stored from the moment the agent is first configured.
    #[default]
    New,
    /// Every event the stream still holds, then new ones.
    All,
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
            start: AgentStart::New,
            env_remove: Vec::new(),
        }
    }
}

/// Which events go to an agent. Every route that matches an event delivers it, and an agent named
/// by several matching routes receives the event once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// Handler names to match; empty matches every handler.
    pub handlers: Vec<String>,
    /// Events to match, as a handler's `events` reads them ([`clawlet_events::selects`]): an
    /// entry names a type (`pull_request`) or a type and action (`pull_request.opened`); empty
    /// matches every event.
    pub events: Vec<String>,
    /// The agent that receives matching events.
    pub agent: String,
}

impl RouteSpec {
    fn matches(&self, handler: &str, event_type: &str, action: Option<&str>) -> bool {
        (self.handlers.is_empty() || self.handlers.iter().any(|h| h == handler))
            && clawlet_events::selects(&self.events, event_type, action)
    }

    /// Runs every check [`crate::Dispatcher::start`] and [`crate::Dispatcher::reload`] run on
    /// `agents` and `routes`, without starting or changing anything: for a configuration check,
    /// and for a reload that builds every part before it swaps any.
    ///
    /// # Errors
    /// [`crate::BusError::Config`]: an agent or route the dispatcher would refuse.
    pub fn check(agents: &[AgentSpec], routes: &[RouteSpec]) -> Result<(), crate::BusError> {
        Routes::new(routes.to_vec(), agents)?;
        for agent in agents {
            crate::agent::Agent::new(agent.clone())?;
        }
        Ok(())
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

    /// The distinct agents, in route order, that receive an event of `event_type` with GitHub's
    /// `action` (`None` for senders without one: then only entries naming the type match).
    pub(crate) fn agents_for(
        &self,
        handler: &str,
        event_type: &str,
        action: Option<&str>,
    ) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for route in &self.routes {
            if route.matches(handler, event_type, action) && !out.contains(&route.agent) {
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
                    format!("{k}={}", r.agents_for(h, e, None).join("+"))
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

    /// A route's `events` read as a handler's do: a type, or a type and action.
    #[test]
    fn route_events_match_a_type_or_a_type_and_action() {
        let agents = [log("opened"), log("prs"), log("paid")];
        let route = |events: &[&str], agent: &str| RouteSpec {
            handlers: Vec::new(),
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            agent: agent.to_owned(),
        };
        let routes = Routes::new(
            vec![
                route(&["pull_request.opened"], "opened"),
                route(&["pull_request"], "prs"),
                route(&["invoice.paid"], "paid"),
            ],
            &agents,
        )
        .unwrap();
        for (event_type, action, expected) in [
            ("pull_request", Some("opened"), "opened+prs"),
            ("pull_request", Some("closed"), "prs"),
            ("pull_request", None, "prs"),
            ("invoice.paid", None, "paid"),
            ("invoice", Some("paid"), "paid"),
            ("push", None, ""),
        ] {
            assert_eq!(
                routes.agents_for("github", event_type, action).join("+"),
                expected,
                "{event_type} {action:?}"
            );
        }
    }

    #[test]
    fn check_refuses_what_the_dispatcher_refuses() {
        let http = |secret: &str| {
            AgentSpec::new(
                "inbox",
                AgentKind::Http {
                    url: "http://127.0.0.1:9/".to_owned(),
                    shown_url: "http://127.0.0.1:9/".to_owned(),
                    secret: Some(secret.to_owned()),
                    headers: Vec::new(),
                },
            )
        };
        let to = |agent: &str| RouteSpec {
            handlers: Vec::new(),
            events: Vec::new(),
            agent: agent.to_owned(),
        };
        assert!(RouteSpec::check(&[http("whsec_YWdlbnQ=")], &[to("inbox")]).is_ok());
        let bad_key = RouteSpec::check(&[http("whsec_!!!")], &[to("inbox")]).unwrap_err();
        assert!(
            bad_key.to_string().contains("agent inbox: secret"),
            "{bad_key}"
        );
        let no_agent = RouteSpec::check(&[log("log")], &[to("nobody")]).unwrap_err();
        assert!(no_agent.to_string().contains("routes[0]"), "{no_agent}");
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
