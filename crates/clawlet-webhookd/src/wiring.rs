//! Turns the configuration into each crate's own constructor arguments. This is the one place
//! where the YAML schema meets the library crates.

use std::fmt;
use std::time::Duration;

use anyhow::{Context, Result};
use clawlet_bus::{AgentKind, AgentSpec, AgentStart, Backend, BusOptions, RouteSpec};
use clawlet_config::{
    Agent, Algorithm, Config, Encoding, Env, Handler, HandlerKind, LoadOptions, Loaded, RateLimit,
    ResponseType, Webhooks,
};
use clawlet_events::{CustomOptions, Source};
use clawlet_http::{
    HandlerRateLimit, HandlerSpec, LogSpec, RuntimeSpec, ServerLimits, TlsReloader, TlsSpec,
    Verifier,
};
use clawlet_ratelimit::Quota;
use clawlet_verify::{custom, standard};

use crate::cli::ConfigArgs;
use crate::telemetry::TelemetrySpec;

/// The loading options for a command: its `--config`, the serve flags, the process environment.
pub(crate) fn load_options(
    args: &ConfigArgs,
    host: Option<String>,
    port: Option<u16>,
) -> LoadOptions {
    LoadOptions {
        path: args.config.clone(),
        host,
        port,
        env: Env::process(),
    }
}

pub(crate) fn telemetry(config: &Config) -> TelemetrySpec {
    let w = &config.webhooks;
    TelemetrySpec {
        level: format!("{:?}", w.logging.level),
        json: matches!(w.logging.format, clawlet_config::LogFormat::Json),
        otlp_endpoint: w.telemetry.otlp.endpoint.clone(),
        service_name: w.telemetry.otlp.service_name.clone(),
    }
}

pub(crate) fn bus_options(w: &Webhooks) -> BusOptions {
    let backend = match w.queue.backend {
        clawlet_config::QueueBackend::Sqlite => Backend::Sqlite {
            path: w.queue.path.clone(),
        },
        clawlet_config::QueueBackend::Memory => Backend::Memory,
        clawlet_config::QueueBackend::Nats => Backend::Nats {
            url: w.queue.nats.url.clone(),
            shown_url: shown_urls(&w.queue.nats.url),
            stream: w.queue.nats.stream.clone(),
            duplicate_window: w.queue.nats.duplicate_window,
            max_bytes: w.queue.nats.max_bytes,
            replicas: w.queue.nats.replicas,
        },
    };
    let mut opts = BusOptions::new(backend);
    opts.dedup_window = w.queue.dedup_window;
    opts.max_pending = w.queue.max_pending;
    opts.retention = w.queue.retention;
    opts
}

/// A comma-separated list of URLs (a NATS cluster's servers) as logs show it: each redacted.
pub(crate) fn shown_urls(urls: &str) -> String {
    urls.split(',')
        .map(clawlet_config::redact_url)
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) fn server_limits(w: &Webhooks) -> ServerLimits {
    ServerLimits {
        header_read_timeout: w.limits.header_read_timeout,
        request_timeout: w.limits.request_timeout,
        max_connections: w.limits.max_connections,
        max_header_bytes: w.limits.max_header_bytes,
        max_inflight_body_bytes: w.limits.max_inflight_body_bytes,
    }
}

pub(crate) fn tls(w: &Webhooks) -> Option<TlsSpec> {
    match (&w.ssl.cert, &w.ssl.key) {
        (Some(cert), Some(key)) if w.ssl.enabled => Some(TlsSpec {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => None,
    }
}

fn quota(limit: &RateLimit) -> Option<Quota> {
    limit.enabled.then(|| Quota {
        max_requests: limit.max_requests,
        window: Duration::from_secs(limit.window_seconds),
    })
}

/// The console's token and the names it lists, from `webhooks.admin` and the configuration.
/// The rules on the admin listener (its own port, a token unless `none` on loopback) are
/// checked when the file loads, so `config check`, start-up and reload refuse alike.
pub(crate) struct ConsoleNames {
    pub(crate) token: Option<clawlet_console::AdminToken>,
    pub(crate) handlers: Vec<String>,
    pub(crate) agents: Vec<String>,
}

pub(crate) fn console_names(w: &Webhooks) -> ConsoleNames {
    ConsoleNames {
        token: w
            .admin
            .token
            .as_ref()
            .map(|t| clawlet_console::AdminToken::new(t.expose())),
        handlers: w
            .handlers
            .values()
            .filter(|h| h.enabled)
            .map(|h| h.name.clone())
            .collect(),
        agents: w.agents.keys().cloned().collect(),
    }
}

/// Everything the daemon builds from one configuration that can be refused, checked as a whole.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Handlers, allowlists, rate limits and logging, for the HTTP layer.
    pub(crate) runtime: RuntimeSpec,
    /// The agents, for the dispatcher.
    pub(crate) agents: Vec<AgentSpec>,
    /// The routes, for the dispatcher.
    pub(crate) routes: Vec<RouteSpec>,
}

/// Every reason a configuration that loaded cannot be built, one line each, naming the file and
/// the key.
#[derive(Debug)]
pub(crate) struct PlanErrors(pub(crate) Vec<String>);

impl fmt::Display for PlanErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("\n"))
    }
}

impl std::error::Error for PlanErrors {}

/// The one validation behind `config check`, start-up and reload, so that all three accept and
/// refuse the same files with the same words.
///
/// `clawlet_config::load` has checked every rule it knows, which is meant to be all of them;
/// this builds each part the way the library crates will (verifiers, the HTTP runtime, agents
/// and routes, the TLS certificate) and checks it with their own code, so that nothing the
/// daemon would refuse later passes here. It keeps nothing open: the certificate is read and
/// dropped.
pub(crate) fn plan(loaded: &Loaded) -> Result<Plan, PlanErrors> {
    let w = &loaded.config.webhooks;
    let origin = loaded.source.as_ref().map_or_else(
        || "built-in defaults".to_owned(),
        |path| path.display().to_string(),
    );
    let mut errors = Vec::new();
    // Each message starts with the key path it is about.
    let mut fail = |message: String| errors.push(format!("{origin}: {message}"));

    let mut handlers = Vec::new();
    for h in w.handlers.values().filter(|h| h.enabled) {
        match handler(h) {
            Ok(spec) => handlers.push(spec),
            Err(err) => fail(format!("{err:#}")),
        }
    }
    let runtime = runtime_with(w, handlers);
    if let Err(err) = runtime.check() {
        fail(format!("webhooks.handlers: {err}"));
    }
    let (agents, routes) = (agents(w, &loaded.credential_vars), routes(w));
    if let Err(err) = RouteSpec::check(&agents, &routes) {
        fail(format!("webhooks.agents: {err}"));
    }
    if let Some(spec) = tls(w)
        && let Err(err) = TlsReloader::new(spec)
    {
        fail(format!("webhooks.ssl: {err}"));
    }
    // Its message names the file itself, or says that there is none.
    if let Some(why) = no_handler(loaded) {
        errors.push(why);
    }
    if errors.is_empty() {
        Ok(Plan {
            runtime,
            agents,
            routes,
        })
    } else {
        Err(PlanErrors(errors))
    }
}

/// Why the daemon refuses a configuration that serves webhooks without an enabled handler, if
/// it has none: at start-up, on reload and in `config check` alike.
///
/// Every delivery would get 404, and a daemon that starts anyway looks healthy (`/health`
/// answers) while it drops everything: most often the configuration file was not where the
/// daemon looked. Refusing, with where it looked, turns that hour of searching into one line.
fn no_handler(loaded: &Loaded) -> Option<String> {
    let w = &loaded.config.webhooks;
    // `webhooks.enabled: false` serves nothing on purpose.
    if !w.enabled || w.handlers.values().any(|h| h.enabled) {
        return None;
    }
    let fix = "add one under webhooks.handlers (config/example.yaml shows each kind)";
    Some(match (&loaded.source, &loaded.looked_for) {
        (Some(path), _) => format!(
            "{}: webhooks.handlers: no enabled handler, so every delivery would get 404; {fix}",
            path.display()
        ),
        (None, Some(looked)) => format!(
            "no configuration file: none was given and none was found at {}, so no webhook \
             handler is configured and every delivery would get 404; give one with --config PATH \
             (or CLAWLET_CONFIG=PATH), such as --config config/example.yaml",
            looked.display()
        ),
        (None, None) => "no configuration file: none was given and HOME is unset, so no \
             webhook handler is configured and every delivery would get 404; give one with \
             --config PATH (or CLAWLET_CONFIG=PATH), such as --config config/example.yaml"
            .to_owned(),
    })
}

/// The HTTP runtime: handlers, allowlists, limits and logging. Rebuilt on every reload.
#[cfg(test)]
pub(crate) fn runtime(w: &Webhooks) -> Result<RuntimeSpec> {
    let handlers = w
        .handlers
        .values()
        .filter(|h| h.enabled)
        .map(handler)
        .collect::<Result<Vec<_>>>()?;
    Ok(runtime_with(w, handlers))
}

fn runtime_with(w: &Webhooks, handlers: Vec<HandlerSpec>) -> RuntimeSpec {
    RuntimeSpec {
        handlers,
        allowed_ips: w.allowed_ips.clone(),
        trusted_proxies: w.trusted_proxies.clone(),
        rate_limit: quota(&w.rate_limit),
        // The configuration always sets it at the global level.
        rate_limit_ipv6_prefix: w
            .rate_limit
            .ipv6_prefix
            .unwrap_or(clawlet_ratelimit::Ipv6Prefix::DEFAULT.bits()),
        max_body_bytes: usize::try_from(w.max_body_bytes).unwrap_or(usize::MAX),
        logging: LogSpec {
            enabled: w.logging.enabled,
            include_headers: w.logging.include_headers,
            include_payload: w.logging.include_payload,
        },
    }
}

pub(crate) fn source(kind: HandlerKind) -> Source {
    // The two enums list the same names; a kind without a source is a bug caught by the test
    // `every_kind_has_a_source`.
    Source::ALL
        .into_iter()
        .find(|s| s.as_str() == kind.name())
        .unwrap_or(Source::Custom)
}

fn handler(h: &Handler) -> Result<HandlerSpec> {
    let secrets = || {
        h.secrets
            .iter()
            .map(|s| s.expose().as_bytes().to_vec())
            .collect::<Vec<_>>()
    };
    let verifier = if !h.verify {
        Verifier::Unverified
    } else if crate::providers::uses_scheme(h) {
        crate::providers::verifier(h)?
    } else {
        match h.kind {
            HandlerKind::Github => Verifier::Github {
                secrets: secrets(),
                allow_legacy_sha1: h.allow_legacy_sha1,
            },
            HandlerKind::Stripe => Verifier::Stripe {
                secrets: secrets(),
                tolerance_secs: h.tolerance_seconds,
            },
            HandlerKind::Standard => {
                let keys = h
                    .secrets
                    .iter()
                    .map(|s| standard::Key::from_secret(s.expose()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|err| {
                        anyhow::anyhow!(
                            "webhooks.handlers.{}.secret: {err} (Standard Webhooks secrets are whsec_<base64>)",
                            h.name
                        )
                    })?;
                Verifier::Standard {
                    keys,
                    tolerance_secs: h.tolerance_seconds,
                }
            }
            // `uses_scheme` took every other kind.
            _ => Verifier::Custom {
                header: h
                    .signature_header
                    .to_ascii_lowercase()
                    .parse()
                    .with_context(|| {
                        format!(
                            "webhooks.handlers.{}.signature_header: not a header name",
                            h.name
                        )
                    })?,
                scheme: custom::Scheme {
                    algorithm: match h.algorithm {
                        Algorithm::Sha1 => custom::Algorithm::Sha1,
                        Algorithm::Sha256 => custom::Algorithm::Sha256,
                        Algorithm::Sha512 => custom::Algorithm::Sha512,
                    },
                    encoding: match h.encoding {
                        Encoding::Hex => custom::Encoding::Hex,
                        Encoding::Base64 => custom::Encoding::Base64,
                    },
                    prefix: h.prefix.clone(),
                },
                secrets: secrets(),
            },
        }
    };
    Ok(HandlerSpec {
        name: h.name.clone(),
        path: h.path.clone(),
        source: source(h.kind),
        verifier,
        events: h.events.clone(),
        response_type: match h.response_type {
            ResponseType::Json => clawlet_http::ResponseType::Json,
            ResponseType::Text => clawlet_http::ResponseType::Text,
        },
        allowed_ips: h.allowed_ips.clone(),
        // A handler's own `rate_limit` replaces the global one, even when it turns limiting off.
        rate_limit: match &h.rate_limit {
            None => HandlerRateLimit::Global,
            Some(own) => quota(own).map_or(HandlerRateLimit::Off, HandlerRateLimit::Own),
        },
        custom: CustomOptions {
            event_type_pointer: h.event_type_field.clone(),
            delivery_id_header: h.delivery_id_header.clone(),
            delivery_id_pointer: h.delivery_id_field.clone(),
            layout: crate::providers::layout(h.kind).unwrap_or_default(),
        },
    })
}

/// The agents; exec agents' commands run without the variables in `env_remove` (the
/// credentials the configuration read, [`Loaded::credential_vars`]).
pub(crate) fn agents(w: &Webhooks, env_remove: &[String]) -> Vec<AgentSpec> {
    w.agents.values().map(|a| agent(a, env_remove)).collect()
}

fn agent(a: &Agent, env_remove: &[String]) -> AgentSpec {
    let kind = match &a.kind {
        clawlet_config::AgentKind::Exec { command } => AgentKind::Exec {
            command: command.clone(),
        },
        clawlet_config::AgentKind::Http {
            url,
            secret,
            headers,
        } => AgentKind::Http {
            url: url.clone(),
            shown_url: clawlet_config::redact_url(url),
            secret: secret.as_ref().map(|s| s.expose().to_owned()),
            headers: headers
                .iter()
                .map(|(k, v)| (k.clone(), v.expose().to_owned()))
                .collect(),
        },
        clawlet_config::AgentKind::Log => AgentKind::Log,
    };
    AgentSpec {
        name: a.name.clone(),
        kind,
        timeout: a.timeout,
        concurrency: a.concurrency,
        max_attempts: a.max_attempts,
        start: match a.start {
            clawlet_config::AgentStart::New => AgentStart::New,
            clawlet_config::AgentStart::All => AgentStart::All,
        },
        env_remove: match a.kind {
            clawlet_config::AgentKind::Exec { .. } => env_remove.to_vec(),
            _ => Vec::new(),
        },
    }
}

pub(crate) fn routes(w: &Webhooks) -> Vec<RouteSpec> {
    w.routes
        .iter()
        .map(|r| RouteSpec {
            handlers: r.handlers.clone(),
            events: r.events.clone(),
            agent: r.agent.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clawlet_config::{Env, LoadOptions, load};

    use super::*;

    fn load_file(relative: &str, env: Env) -> Config {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(relative);
        let opts = LoadOptions {
            path: Some(path),
            env: env.with("HOME", "/nonexistent"),
            ..LoadOptions::default()
        };
        load(&opts)
            .unwrap_or_else(|err| panic!("{relative}: {err}"))
            .config
    }

    #[test]
    fn the_example_configuration_wires_into_every_crate() {
        let config = load_file("config/example.yaml", Env::empty());
        let w = &config.webhooks;
        let runtime = runtime(w).unwrap();
        let names: Vec<&str> = runtime.handlers.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["custom", "github", "my_service", "stripe"]);
        assert!(runtime.handlers.iter().all(|h| h.verifier.is_verified()));
        let my_service = runtime
            .handlers
            .iter()
            .find(|h| h.name == "my_service")
            .unwrap();
        assert_eq!(my_service.source, Source::Standard);
        assert!(matches!(bus_options(w).backend, Backend::Sqlite { .. }));
        let agent_names: Vec<String> = agents(w, &[]).into_iter().map(|a| a.name).collect();
        assert_eq!(agent_names, ["log"]);
        assert_eq!(routes(w).len(), 1);
        assert!(tls(w).is_none());
        assert_eq!(server_limits(w).max_connections, 10_000);
    }

    #[test]
    fn the_jetstream_deployment_example_wires_into_the_nats_backend() {
        let env = Env::empty()
            .with("GITHUB_WEBHOOK_SECRET", "gh")
            .with("STRIPE_WEBHOOK_SECRET", "whsec_x")
            .with("AGENT_SECRET", "whsec_YWdlbnQ=");
        let config = load_file("deploy/jetstream-two-daemons.yaml", env);
        let Backend::Nats { url, stream, .. } = bus_options(&config.webhooks).backend else {
            panic!("expected the nats backend");
        };
        assert_eq!(
            (url.as_str(), stream.as_str()),
            (
                "nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222",
                "CLAWLET_WEBHOOKS"
            )
        );
        assert_eq!(config.webhooks.queue.nats.replicas, 3);
        assert_eq!(clawlet_bus::server_addrs(&url).unwrap().len(), 3);
        assert_eq!(runtime(&config.webhooks).unwrap().handlers.len(), 2);
    }

    #[test]
    fn the_nats_byte_cap_and_agent_start_reach_the_bus() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(
            &path,
            "webhooks:\n  queue:\n    backend: nats\n    nats:\n      max_bytes: 1048576\n  \
             agents:\n    inbox:\n      kind: log\n      start: all\n    later:\n      kind: log\n",
        )
        .unwrap();
        let opts = LoadOptions {
            path: Some(path),
            env: Env::empty().with("HOME", "/nonexistent"),
            ..LoadOptions::default()
        };
        let config = load(&opts).unwrap().config;
        let Backend::Nats { max_bytes, .. } = bus_options(&config.webhooks).backend else {
            panic!("expected the nats backend");
        };
        assert_eq!(max_bytes, Some(1_048_576));
        let starts: Vec<(String, AgentStart)> = agents(&config.webhooks, &[])
            .into_iter()
            .map(|a| (a.name, a.start))
            .collect();
        assert_eq!(
            starts,
            [
                ("inbox".to_owned(), AgentStart::All),
                ("later".to_owned(), AgentStart::New),
                ("log".to_owned(), AgentStart::New),
            ]
        );
    }

    /// The bus gets each URL twice: as configured, to connect with, and redacted, for its log
    /// lines and `last_error` (it does not decide itself what is secret).
    #[test]
    fn urls_reach_the_bus_with_their_shown_form_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(
            &path,
            "webhooks:\n  queue:\n    backend: nats\n    nats:\n      \
             url: \"nats://svc:npw-1@n1:4222,nats://n2:4222?t=tk-2\"\n  \
             agents:\n    inbox:\n      kind: http\n      \
             url: \"http://u:apw-3@agent.test/events?token=tk-4\"\n",
        )
        .unwrap();
        let opts = LoadOptions {
            path: Some(path),
            env: Env::empty().with("HOME", "/nonexistent"),
            ..LoadOptions::default()
        };
        let config = load(&opts).unwrap().config;
        let Backend::Nats { url, shown_url, .. } = bus_options(&config.webhooks).backend else {
            panic!("expected the nats backend");
        };
        assert_eq!(url, "nats://svc:npw-1@n1:4222,nats://n2:4222?t=tk-2");
        assert_eq!(
            shown_url,
            "nats://[redacted]@n1:4222,nats://n2:4222?t=[redacted]"
        );
        let inbox = agents(&config.webhooks, &[])
            .into_iter()
            .find(|a| a.name == "inbox")
            .unwrap();
        let AgentKind::Http { url, shown_url, .. } = inbox.kind else {
            panic!("expected an http agent");
        };
        assert_eq!(url, "http://u:apw-3@agent.test/events?token=tk-4");
        assert_eq!(
            shown_url,
            "http://[redacted]@agent.test/events?token=[redacted]"
        );
    }

    /// The configuration refuses a Standard Webhooks key that is not base64; should a value get
    /// past it, the plan refuses it too, naming the file and the key, never the value.
    #[test]
    fn a_standard_handler_with_a_key_that_is_not_base64_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        let yaml = |secret: &str| {
            format!(
                "webhooks:\n  handlers:\n    svix:\n      kind: standard\n      secret: \"{secret}\"\n"
            )
        };
        let opts = LoadOptions {
            path: Some(path.clone()),
            env: Env::empty().with("HOME", "/nonexistent"),
            ..LoadOptions::default()
        };
        std::fs::write(&path, yaml("whsec_***")).unwrap();
        let err = load(&opts).unwrap_err().to_string();
        assert!(err.contains("webhooks.handlers.svix.secret:"), "{err}");
        assert!(!err.contains("***"), "the secret must not be echoed: {err}");

        std::fs::write(&path, yaml("whsec_YWdlbnQ=")).unwrap();
        let mut loaded = load(&opts).unwrap();
        let svix = loaded.config.webhooks.handlers.get_mut("svix").unwrap();
        svix.secrets = vec![clawlet_config::Secret::new("whsec_***")];
        let err = plan(&loaded).unwrap_err().to_string();
        let expected = format!("{}: webhooks.handlers.svix.secret:", path.display());
        assert!(err.starts_with(&expected), "{err}");
        assert!(!err.contains("***"), "the secret must not be echoed: {err}");
    }

    /// A certificate file that reads but holds no certificate passes the configuration's own
    /// check (it only proves the file is readable) and used to fail only when the daemon started;
    /// the plan, and so `config check`, refuses it naming the file.
    #[test]
    fn a_readable_file_that_is_no_certificate_is_refused_by_the_plan() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, "not a certificate\n").unwrap();
        std::fs::write(&key, "not a key\n").unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(
            &path,
            format!(
                "webhooks:\n  ssl:\n    enabled: true\n    cert: \"{}\"\n    key: \"{}\"\n",
                cert.display(),
                key.display()
            ),
        )
        .unwrap();
        let opts = LoadOptions {
            path: Some(path.clone()),
            env: Env::empty().with("HOME", "/nonexistent"),
            ..LoadOptions::default()
        };
        let err = plan(&load(&opts).unwrap()).unwrap_err().to_string();
        let expected = format!("{}: webhooks.ssl: ", path.display());
        assert!(err.starts_with(&expected), "{err}");
        assert!(err.contains("cert.pem"), "{err}");
    }

    /// A handler's `rate_limit: {enabled: false}` turns limiting off for it; no `rate_limit`
    /// keeps the global one.
    #[test]
    fn a_handler_rate_limit_that_is_off_is_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(
            &path,
            "webhooks:\n  rate_limit: {max_requests: 2, window_seconds: 60}\n  handlers:\n    off:\n      secret: s\n      rate_limit: {enabled: false}\n    global:\n      secret: s\n    own:\n      secret: s\n      rate_limit: {max_requests: 5}\n",
        )
        .unwrap();
        let opts = LoadOptions {
            path: Some(path),
            env: Env::empty().with("HOME", "/nonexistent"),
            ..LoadOptions::default()
        };
        let plan = plan(&load(&opts).unwrap()).unwrap();
        let limit = |name: &str| {
            plan.runtime
                .handlers
                .iter()
                .find(|h| h.name == name)
                .unwrap()
                .rate_limit
        };
        assert_eq!(limit("off"), HandlerRateLimit::Off);
        assert_eq!(limit("global"), HandlerRateLimit::Global);
        assert_eq!(
            limit("own"),
            HandlerRateLimit::Own(Quota {
                max_requests: 5,
                window: Duration::from_secs(60)
            })
        );
    }

    #[test]
    fn every_kind_has_a_source() {
        for kind in HandlerKind::ALL {
            assert_eq!(source(kind).as_str(), kind.name());
        }
    }
}
