//! Turns the configuration into each crate's own constructor arguments. This is the one place
//! where the YAML schema meets the library crates.

use std::time::Duration;

use anyhow::{Context, Result};
use clawlet_bus::{AgentKind, AgentSpec, Backend, BusOptions, RouteSpec};
use clawlet_config::{
    Agent, Algorithm, Config, Encoding, Env, Handler, HandlerKind, LoadOptions, RateLimit,
    ResponseType, Webhooks,
};
use clawlet_events::{CustomOptions, Source};
use clawlet_http::{HandlerSpec, LogSpec, RuntimeSpec, ServerLimits, TlsSpec, Verifier};
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
            stream: w.queue.nats.stream.clone(),
            duplicate_window: w.queue.nats.duplicate_window,
        },
    };
    let mut opts = BusOptions::new(backend);
    opts.dedup_window = w.queue.dedup_window;
    opts.max_pending = w.queue.max_pending;
    opts.retention = w.queue.retention;
    opts
}

pub(crate) fn server_limits(w: &Webhooks) -> ServerLimits {
    ServerLimits {
        header_read_timeout: w.limits.header_read_timeout,
        request_timeout: w.limits.request_timeout,
        max_connections: w.limits.max_connections,
        max_header_bytes: w.limits.max_header_bytes,
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

/// The HTTP runtime: handlers, allowlists, limits and logging. Rebuilt on every reload.
pub(crate) fn runtime(w: &Webhooks) -> Result<RuntimeSpec> {
    let handlers = w
        .handlers
        .values()
        .filter(|h| h.enabled)
        .map(handler)
        .collect::<Result<Vec<_>>>()?;
    Ok(RuntimeSpec {
        handlers,
        allowed_ips: w.allowed_ips.clone(),
        trusted_proxies: w.trusted_proxies.clone(),
        rate_limit: quota(&w.rate_limit),
        max_body_bytes: usize::try_from(w.max_body_bytes).unwrap_or(usize::MAX),
        logging: LogSpec {
            enabled: w.logging.enabled,
            include_headers: w.logging.include_headers,
            include_payload: w.logging.include_payload,
        },
    })
}

pub(crate) fn source(kind: HandlerKind) -> Source {
    match kind {
        HandlerKind::Github => Source::Github,
        HandlerKind::Stripe => Source::Stripe,
        HandlerKind::Custom => Source::Custom,
        HandlerKind::Standard => Source::Standard,
    }
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
            HandlerKind::Custom => Verifier::Custom {
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
        rate_limit: h.rate_limit.as_ref().and_then(quota),
        custom: CustomOptions {
            event_type_pointer: h.event_type_field.clone(),
            delivery_id_header: h.delivery_id_header.clone(),
            delivery_id_pointer: h.delivery_id_field.clone(),
        },
    })
}

pub(crate) fn agents(w: &Webhooks) -> Vec<AgentSpec> {
    w.agents.values().map(agent).collect()
}

fn agent(a: &Agent) -> AgentSpec {
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
        let agent_names: Vec<String> = agents(w).into_iter().map(|a| a.name).collect();
        assert_eq!(agent_names, ["inbox", "log", "notify"]);
        assert_eq!(routes(w).len(), 3);
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
            ("nats://127.0.0.1:4222", "CLAWLET_WEBHOOKS")
        );
        assert_eq!(runtime(&config.webhooks).unwrap().handlers.len(), 2);
    }

    #[test]
    fn a_standard_handler_with_a_key_that_is_not_base64_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, "webhooks:\n  handlers:\n    svix:\n      kind: standard\n      secret: \"whsec_***\"\n").unwrap();
        let opts = LoadOptions {
            path: Some(path),
            env: Env::empty().with("HOME", "/nonexistent"),
            ..LoadOptions::default()
        };
        let config = load(&opts).unwrap().config;
        let err = runtime(&config.webhooks).unwrap_err().to_string();
        assert!(err.starts_with("webhooks.handlers.svix.secret:"), "{err}");
        assert!(!err.contains("***"), "the secret must not be echoed: {err}");
    }
}
