//! Loads every YAML block of the spec, `config/example.yaml`, and one file per error class.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clawlet_config::{
    Agent, AgentKind, AgentStart, Algorithm, Config, ConfigError, Encoding, Env, Handler,
    HandlerKind, LoadOptions, Loaded, LogFormat, LogLevel, QueueBackend, ResponseType, Route,
    Secret, Webhooks, load,
};

mod admin;
mod presets;

const HOME: &str = "/home/operator";
const CONFIG_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config");

fn fixture(name: &str) -> PathBuf {
    Path::new(CONFIG_DIR).join("fixtures").join(name)
}

fn example() -> PathBuf {
    Path::new(CONFIG_DIR).join("example.yaml")
}

/// The variables the spec's blocks and the example reference, and a HOME without a config file.
fn spec_env() -> Env {
    Env::empty()
        .with("HOME", HOME)
        .with("GITHUB_WEBHOOK_SECRET", "gh-secret")
        .with("STRIPE_WEBHOOK_SECRET", "whsec_stripe")
        .with("CUSTOM_WEBHOOK_SECRET", "custom-secret")
        .with("MYSERVICE_SECRET", "whsec_bXlzZXJ2aWNl")
        .with("AGENT_SECRET", "whsec_YWdlbnQ=")
}

fn opts(path: Option<PathBuf>, env: Env) -> LoadOptions {
    LoadOptions {
        path,
        env,
        ..LoadOptions::default()
    }
}

fn load_ok(opts: &LoadOptions) -> Loaded {
    load(opts).unwrap_or_else(|e| panic!("expected the config to load, got:\n{e}"))
}

fn defaults() -> Webhooks {
    load_ok(&opts(None, spec_env())).config.webhooks
}

/// A handler with every per-handler default the spec and the issue give.
fn handler(name: &str, kind: HandlerKind, secret: Option<&str>) -> Handler {
    Handler {
        name: name.to_owned(),
        enabled: true,
        path: format!("/webhook/{name}"),
        kind,
        secrets: secret.map(Secret::new).into_iter().collect(),
        verify: secret.is_some(),
        events: Vec::new(),
        response_type: ResponseType::Json,
        tolerance_seconds: 300,
        allow_legacy_sha1: false,
        signature_header: "X-Signature".to_owned(),
        algorithm: Algorithm::Sha256,
        encoding: Encoding::Hex,
        prefix: "sha256=".to_owned(),
        event_type_field: "/event_type".to_owned(),
        delivery_id_header: None,
        delivery_id_field: None,
        signature: None,
        public_key: None,
        public_url: None,
        verify_token: None,
        client_state: None,
        allowed_ips: None,
        rate_limit: None,
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn built_in_defaults_are_the_spec_defaults() {
    let loaded = load_ok(&opts(None, spec_env()));
    assert_eq!(loaded.source, None);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let w = loaded.config.webhooks;
    assert!(w.enabled);
    assert_eq!((w.host.as_str(), w.port), ("0.0.0.0", 8080));
    assert!(w.rate_limit.enabled);
    assert_eq!(
        (w.rate_limit.max_requests, w.rate_limit.window_seconds),
        (100, 60)
    );
    assert!(!w.ssl.enabled);
    assert_eq!((w.ssl.cert, w.ssl.key), (None, None));
    assert!(w.allowed_ips.is_empty() && w.trusted_proxies.is_empty());
    assert_eq!(w.max_body_bytes, 26_214_400);
    assert!(w.logging.enabled && !w.logging.include_headers && !w.logging.include_payload);
    assert_eq!(
        (w.logging.level, w.logging.format),
        (LogLevel::Info, LogFormat::Human)
    );
    assert_eq!(w.limits.header_read_timeout, Duration::from_secs(10));
    assert_eq!(w.limits.request_timeout, Duration::from_secs(30));
    assert_eq!(
        (w.limits.max_connections, w.limits.max_header_bytes),
        (10_000, 65_536)
    );
    assert_eq!(w.queue.backend, QueueBackend::Sqlite);
    assert_eq!(
        w.queue.path,
        Path::new("/home/operator/.clawlet/webhooks.db")
    );
    assert_eq!(w.queue.dedup_window, Duration::from_secs(72 * 3600));
    assert_eq!(w.queue.retention, Duration::from_secs(7 * 86_400));
    assert_eq!(w.queue.max_pending, 100_000);
    assert_eq!(w.queue.nats.url, "nats://127.0.0.1:4222");
    assert_eq!(w.queue.nats.stream, "CLAWLET_WEBHOOKS");
    assert_eq!(
        w.queue.nats.duplicate_window,
        Duration::from_secs(24 * 3600)
    );
    assert_eq!(w.queue.nats.replicas, 1);
    assert!(w.handlers.is_empty());
    let log = Agent {
        name: "log".to_owned(),
        kind: AgentKind::Log,
        timeout: Duration::from_secs(10),
        concurrency: 4,
        max_attempts: 10,
        start: AgentStart::New,
    };
    assert_eq!(w.agents.into_values().collect::<Vec<_>>(), [log]);
    let everything = Route {
        handlers: Vec::new(),
        events: Vec::new(),
        agent: "log".to_owned(),
    };
    assert_eq!(w.routes, [everything]);
    assert_eq!(w.telemetry.otlp.endpoint, None);
    assert_eq!(w.telemetry.otlp.service_name, "clawlet-webhookd");
}

/// Loads a fixture and compares the whole effective `webhooks:` with the defaults plus `edit`.
fn check(name: &str, env: Env, edit: impl FnOnce(&mut Webhooks)) -> Vec<String> {
    let mut expected = defaults();
    edit(&mut expected);
    let loaded = load_ok(&opts(Some(fixture(name)), env));
    assert_eq!(loaded.source, Some(fixture(name)));
    assert_eq!(loaded.config.webhooks, expected, "fixture {name}");
    loaded.warnings
}

fn add(w: &mut Webhooks, h: Handler) {
    w.handlers.insert(h.name.clone(), h);
}

#[test]
fn every_spec_block_loads_with_the_spec_defaults() {
    let github = |events: &[&str]| Handler {
        events: strings(events),
        ..handler("github", HandlerKind::Github, Some("gh-secret"))
    };
    let stripe = || Handler {
        events: strings(&[
            "checkout.session.completed",
            "payment_intent.succeeded",
            "invoice.paid",
        ]),
        ..handler("stripe", HandlerKind::Stripe, Some("whsec_stripe"))
    };
    let gh_events = ["push", "pull_request", "issues", "issue_comment"];

    check("spec-basic.yaml", spec_env(), |w| {
        add(w, handler("github", HandlerKind::Github, Some("gh-secret")));
        add(
            w,
            handler("stripe", HandlerKind::Stripe, Some("whsec_stripe")),
        );
    });
    check("spec-github.yaml", spec_env(), |w| {
        add(w, github(&gh_events))
    });
    check("spec-stripe.yaml", spec_env(), |w| add(w, stripe()));
    check("spec-custom.yaml", spec_env(), |w| {
        add(
            w,
            handler("custom", HandlerKind::Custom, Some("custom-secret")),
        );
    });
    check("spec-my-service.yaml", spec_env(), |w| {
        add(
            w,
            Handler {
                path: "/webhook/myservice".to_owned(),
                events: strings(&["event_type_1", "event_type_2"]),
                ..handler(
                    "my_service",
                    HandlerKind::Custom,
                    Some("whsec_bXlzZXJ2aWNl"),
                )
            },
        );
    });
    check("spec-secrets.yaml", spec_env(), |w| {
        add(w, handler("github", HandlerKind::Github, Some("gh-secret")));
    });
    check("spec-rate-limit.yaml", spec_env(), |_| {});
    check("spec-allowed-ips.yaml", spec_env(), |w| {
        w.allowed_ips = vec![
            "192.0.2.0/24".parse().unwrap(),
            "203.0.113.0/24".parse().unwrap(),
        ];
    });
    check("spec-logging.yaml", spec_env(), |_| {});
    check("spec-debug.yaml", spec_env(), |w| {
        w.logging.level = LogLevel::Debug;
        w.logging.include_headers = true;
        w.logging.include_payload = true;
    });
    check("spec-reference.yaml", spec_env(), |w| {
        add(w, github(&gh_events));
        add(w, stripe());
        add(w, handler("custom", HandlerKind::Custom, None));
    });
}

#[test]
fn spec_https_block_loads_and_warns_that_tls_stays_off() {
    let warnings = check("spec-https.yaml", spec_env(), |w| {
        w.port = 443;
        w.ssl.cert = Some("/path/to/cert.pem".into());
        w.ssl.key = Some("/path/to/key.pem".into());
    });
    insta::assert_snapshot!(warnings.join("\n").replace(CONFIG_DIR, "<config>"));
}

#[test]
fn custom_handler_without_secret_loads_with_a_warning() {
    let warnings = check("spec-reference.yaml", spec_env(), |w| {
        add(
            w,
            Handler {
                events: strings(&["push", "pull_request", "issues", "issue_comment"]),
                ..handler("github", HandlerKind::Github, Some("gh-secret"))
            },
        );
        add(
            w,
            Handler {
                events: strings(&[
                    "checkout.session.completed",
                    "payment_intent.succeeded",
                    "invoice.paid",
                ]),
                ..handler("stripe", HandlerKind::Stripe, Some("whsec_stripe"))
            },
        );
        add(w, handler("custom", HandlerKind::Custom, None));
    });
    insta::assert_snapshot!(warnings.join("\n").replace(CONFIG_DIR, "<config>"));
}

/// The spec's "validate event types" block only adds `events` to the github handler of the earlier
/// blocks; on its own it has no secret, which is refused, and a secret from the environment completes it.
#[test]
fn spec_event_filter_block_needs_the_secret_from_elsewhere() {
    let env = spec_env().with("CLAWLET_WEBHOOKS__HANDLERS__GITHUB__SECRET", "from-env");
    check("spec-event-filter.yaml", env, |w| {
        add(
            w,
            Handler {
                events: strings(&["push", "pull_request"]),
                ..handler("github", HandlerKind::Github, Some("from-env"))
            },
        );
    });
    let err = load(&opts(Some(fixture("spec-event-filter.yaml")), spec_env())).unwrap_err();
    assert!(
        matches!(err.errors(), [ConfigError::Invalid { key, .. }] if key == "webhooks.handlers.github.secret"),
        "{err}"
    );
}

#[test]
fn example_loads_with_its_variables() {
    let loaded = load_ok(&opts(Some(example()), spec_env()));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let w = loaded.config.webhooks;
    assert_eq!(
        w.handlers.keys().collect::<Vec<_>>(),
        ["custom", "github", "my_service", "stripe"]
    );
    assert_eq!(w.handlers["my_service"].kind, HandlerKind::Standard);
    assert_eq!(w.handlers["custom"].secrets, [Secret::new("custom-secret")]);
    assert_eq!(
        w.handlers["custom"].delivery_id_header.as_deref(),
        Some("X-Delivery-Id")
    );
    assert!(w.handlers.values().all(|h| h.verify));
    // As shipped, everything goes to the log agent, which works on any machine.
    assert_eq!(w.agents.keys().collect::<Vec<_>>(), ["log"]);
    assert_eq!(w.agents["log"].kind, AgentKind::Log);
    assert_eq!(w.routes.len(), 1);
    assert_eq!(w.routes[0].agent, "log");
    assert!(w.routes[0].handlers.is_empty() && w.routes[0].events.is_empty());
    assert_eq!(
        w.queue.path,
        Path::new("/home/operator/.clawlet/webhooks.db")
    );

    // With no variable set it still loads, on its published development fallbacks: the README's
    // run command depends on that.
    let fallback = load_ok(&opts(Some(example()), Env::empty().with("HOME", HOME)));
    assert_eq!(
        fallback.config.webhooks.handlers["github"].secrets,
        [Secret::new("insecure-example-github-secret")]
    );
}

/// The example's commented-out exec and http agents, with their routes, are valid once
/// uncommented: an operator who follows the comment gets a file that loads.
#[test]
fn example_agents_load_when_uncommented() {
    let text = std::fs::read_to_string(example()).unwrap();
    // The agent and route examples are the lines commented out at the agents' own indentation.
    let uncommented: String = text
        .lines()
        .map(|line| match line.strip_prefix("    # ") {
            Some(rest) if rest.starts_with(' ') || rest.ends_with(':') || rest.starts_with('-') => {
                format!("    {rest}\n")
            }
            _ => format!("{line}\n"),
        })
        .collect();
    let (_dir, path) = write_config(&uncommented);
    let w = load_ok(&opts(Some(path), spec_env())).config.webhooks;
    assert_eq!(
        w.agents.keys().collect::<Vec<_>>(),
        ["inbox", "log", "notify"]
    );
    let AgentKind::Http {
        headers, secret, ..
    } = &w.agents["inbox"].kind
    else {
        panic!("inbox is http")
    };
    assert_eq!(headers["Authorization"].expose(), "Bearer dev-token");
    assert_eq!(secret.as_ref().map(Secret::expose), Some("whsec_YWdlbnQ="));
    assert_eq!(w.routes.len(), 3);
}

#[test]
fn check_prints_the_example_with_secrets_redacted() {
    let (out, code) = clawlet_config::check(&opts(Some(example()), spec_env()));
    assert_eq!(code, 0, "{out}");
    for (name, value) in [
        ("GITHUB_WEBHOOK_SECRET", "gh-secret"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_stripe"),
        ("CUSTOM_WEBHOOK_SECRET", "custom-secret"),
        ("MYSERVICE_SECRET", "whsec_bXlzZXJ2aWNl"),
        ("AGENT_SECRET", "whsec_YWdlbnQ="),
        ("INBOX_TOKEN default", "dev-token"),
    ] {
        assert!(!out.contains(value), "{name} leaked");
    }
    insta::assert_snapshot!(out.replace(CONFIG_DIR, "<config>"));
}

/// `config check` prints a file that loads back to the same configuration (secrets aside).
#[test]
fn check_output_loads_back() {
    let (out, code) = clawlet_config::check(&opts(Some(example()), spec_env()));
    assert_eq!(code, 0, "{out}");
    // Every secret prints as [redacted]; a Standard Webhooks secret must still be whsec_<base64>
    // to load, so each becomes the same valid stand-in.
    let out = out.replace("[redacted]", "whsec_cmVkYWN0ZWQ=");
    let (_dir, path) = write_config(&out);
    let again = load_ok(&opts(Some(path), Env::empty().with("HOME", "/elsewhere")));
    let original = load_ok(&opts(Some(example()), spec_env()));
    // Debug shows everything but secret values, which check redacts.
    assert_eq!(
        format!("{:#?}", again.config),
        format!("{:#?}", original.config)
    );
}

#[test]
fn check_prints_every_error_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, "webhooks:\n  prot: 1\n  port: 65536\n").unwrap();
    let (out, code) = clawlet_config::check(&opts(Some(path), spec_env()));
    assert_eq!(code, 2);
    assert_eq!(
        out.replace(&dir.path().display().to_string(), "<dir>"),
        concat!(
            "<dir>/config.yaml: webhooks.prot: unknown key; did you mean `port`?\n",
            "<dir>/config.yaml: webhooks.port: 65536 is not a port to listen on; use a number from 1 to 65535 (or 0 for any free port)\n",
        )
    );
}

/// An agent URL refused for its scheme is quoted in the error, its credentials hidden: the
/// value came from the environment as often as not.
#[test]
fn a_refused_agent_url_is_quoted_redacted() {
    let (_dir, path) = write_config(
        "webhooks:\n  agents:\n    inbox:\n      kind: http\n      \
         url: \"ftp://svc:ftp-pw-1@files.test/in?token=tk-2\"\n",
    );
    let (out, code) = clawlet_config::check(&opts(Some(path), spec_env()));
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("webhooks.agents.inbox.url: `ftp://[redacted]@files.test/in?token=[redacted]` is not an http:// or https:// URL"),
        "{out}"
    );
    assert!(!out.contains("ftp-pw-1") && !out.contains("tk-2"), "{out}");
}

// ---- layering -------------------------------------------------------------------------------------

fn write_config(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, text).expect("the config file is written");
    (dir, path)
}

#[test]
fn env_overrides_the_file_and_cli_overrides_env() {
    let (_dir, path) = write_config("webhooks:\n  port: 8081\n  host: 127.0.0.1\n");
    let port = |env: Env, cli: Option<u16>| {
        let o = LoadOptions {
            port: cli,
            ..opts(Some(path.clone()), env)
        };
        load_ok(&o).config.webhooks.port
    };
    assert_eq!(port(spec_env(), None), 8081);
    assert_eq!(
        port(spec_env().with("CLAWLET_WEBHOOKS__PORT", "9000"), None),
        9000
    );
    assert_eq!(
        port(
            spec_env().with("CLAWLET_WEBHOOKS__PORT", "9000"),
            Some(9100)
        ),
        9100
    );
    assert_eq!(port(spec_env(), Some(9100)), 9100);

    let o = LoadOptions {
        host: Some("::1".to_owned()),
        ..opts(Some(path.clone()), spec_env())
    };
    assert_eq!(load_ok(&o).config.webhooks.host, "::1");
    // Unrelated CLAWLET_ variables are not keys.
    let env = spec_env()
        .with("CLAWLET_TEST_NATS_URL", "nats://x")
        .with("CLAWLET_WEBHOOKS__LOGGING__FORMAT", "json");
    assert_eq!(
        load_ok(&opts(Some(path), env))
            .config
            .webhooks
            .logging
            .format,
        LogFormat::Json
    );
}

#[test]
fn file_is_found_by_flag_then_env_then_home() {
    let (dir, path) = write_config("webhooks:\n  port: 8001\n");
    let (_other, other) = write_config("webhooks:\n  port: 8002\n");
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".clawlet")).unwrap();
    let home_config = home.path().join(".clawlet/config.yaml");
    std::fs::write(&home_config, "webhooks:\n  port: 8003\n").unwrap();
    let env = || spec_env().with("HOME", home.path().display().to_string());

    let loaded = load_ok(&opts(
        Some(path.clone()),
        env().with("CLAWLET_CONFIG", other.display().to_string()),
    ));
    assert_eq!(
        (loaded.source, loaded.config.webhooks.port),
        (Some(path), 8001)
    );
    let loaded = load_ok(&opts(
        None,
        env().with("CLAWLET_CONFIG", other.display().to_string()),
    ));
    assert_eq!(
        (loaded.source, loaded.config.webhooks.port),
        (Some(other), 8002)
    );
    let loaded = load_ok(&opts(None, env()));
    assert_eq!(
        (loaded.source, loaded.config.webhooks.port),
        (Some(home_config), 8003)
    );
    drop(dir);
}

#[test]
fn missing_default_file_means_defaults_and_missing_explicit_file_is_an_error() {
    let home = tempfile::tempdir().unwrap();
    let env = spec_env().with("HOME", home.path().display().to_string());
    let loaded = load_ok(&opts(None, env.clone()));
    assert_eq!(loaded.source, None);
    assert_eq!(loaded.config.webhooks.port, 8080);
    // Where it looked is kept, for the daemon and `config check` to say.
    let default_path = home.path().join(".clawlet").join("config.yaml");
    assert_eq!(loaded.looked_for.as_deref(), Some(default_path.as_path()));
    let (out, _) = clawlet_config::show(&loaded);
    assert!(
        out.starts_with(&format!(
            "# effective configuration from built-in defaults: no config file at {} ",
            default_path.display()
        )),
        "{out}"
    );

    let missing = home.path().join("nope.yaml");
    for o in [
        opts(Some(missing.clone()), env.clone()),
        opts(
            None,
            env.with("CLAWLET_CONFIG", missing.display().to_string()),
        ),
    ] {
        let err = load(&o).unwrap_err();
        assert_eq!(
            err.errors(),
            [ConfigError::NotFound {
                path: missing.clone()
            }]
        );
    }
}

/// `~/.clawlet/config.yaml` is shared with the rest of Clawlet: other sections are left alone.
#[test]
fn other_top_level_sections_are_left_alone() {
    let (dir, path) = write_config("channels:\n  slack: {}\nwebhooks:\n  port: 9001\n");
    let loaded = load_ok(&opts(Some(path), spec_env()));
    assert_eq!(loaded.config.webhooks.port, 9001);
    let warnings = loaded
        .warnings
        .join("\n")
        .replace(&dir.path().display().to_string(), "<dir>");
    assert_eq!(
        warnings,
        "<dir>/config.yaml: channels: not read by clawlet-webhookd (only `webhooks:` is); left alone"
    );
}

#[test]
fn ssl_with_readable_files_loads() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, "not checked beyond being readable").expect("cert written");
    std::fs::write(&key, "not checked beyond being readable").expect("key written");
    let yaml = |cert: &Path| {
        format!(
            "webhooks:\n  ssl:\n    enabled: true\n    cert: {}\n    key: {}\n",
            cert.display(),
            key.display()
        )
    };
    let (_c, path) = write_config(&yaml(&cert));
    let ssl = load_ok(&opts(Some(path), spec_env())).config.webhooks.ssl;
    assert_eq!(
        (ssl.enabled, ssl.cert, ssl.key),
        (true, Some(cert), Some(key.clone()))
    );
    // A directory is not a certificate.
    let (_c, path) = write_config(&yaml(dir.path()));
    let err = load(&opts(Some(path), spec_env())).unwrap_err();
    assert!(
        matches!(err.errors(), [ConfigError::Invalid { key, message, .. }] if key == "webhooks.ssl.cert" && message.contains("not a regular file")),
        "{err}"
    );
}

#[test]
fn empty_values_mean_defaults() {
    let check = |text: &str, handlers: &[&str]| {
        let (_dir, path) = write_config(text);
        let w = load_ok(&opts(Some(path), spec_env())).config.webhooks;
        let mut expected = defaults();
        for name in handlers {
            add(&mut expected, handler(name, HandlerKind::Custom, None));
        }
        assert_eq!(w, expected, "{text}");
    };
    check("", &[]);
    check("# all commented out\n", &[]);
    check("webhooks:\n", &[]);
    check(
        "webhooks:\n  ssl:\n  handlers:\n  logging:\n    level:\n",
        &[],
    );
    check(
        "webhooks:\n  handlers:\n    custom:\n    other: {}\n",
        &["custom", "other"],
    );
    check("webhooks:\n  ssl:\n    cert: null\n    key: ~\n", &[]);
}

#[test]
fn interpolation_keeps_values_strings() {
    let (_dir, path) = write_config(concat!(
        "webhooks:\n",
        "  host: \"${HOST_VAR}\"\n",
        "  handlers:\n",
        "    hook:\n",
        "      secret: \"pa$${not_a_var}ss\"\n",
        "      path: \"/in/${SEGMENT:-default-segment}\"\n",
        "      events: [\"${LIST_VAR}\", \"${EMPTY_VAR:-fallback}\"]\n",
        "      signature_header: \"${SET_VAR:-unused}\"\n",
    ));
    let env = spec_env()
        .with("HOST_VAR", "a: b")
        .with("LIST_VAR", "[x, y]")
        .with("EMPTY_VAR", "")
        .with("SET_VAR", "X-Sig");
    let w = load_ok(&opts(Some(path), env)).config.webhooks;
    assert_eq!(w.host, "a: b");
    let h = &w.handlers["hook"];
    assert_eq!(h.secrets, [Secret::new("pa${not_a_var}ss")]);
    assert_eq!(h.path, "/in/default-segment");
    assert_eq!(h.events, ["[x, y]", "fallback"]);
    assert_eq!(h.signature_header, "X-Sig");
}

#[test]
fn secret_rotation_list_and_kinds() {
    let (_dir, path) = write_config(concat!(
        "webhooks:\n",
        "  handlers:\n",
        "    gh2:\n",
        "      kind: github\n",
        "      secrets: [new, old]\n",
        "    open:\n",
        "      kind: stripe\n",
        "      verify: false\n",
        "    signed:\n",
        "      algorithm: sha512\n",
        "      encoding: base64\n",
        "      secret: s\n",
        "      response_type: text\n",
    ));
    let loaded = load_ok(&opts(Some(path), spec_env()));
    let h = &loaded.config.webhooks.handlers;
    assert_eq!(h["gh2"].kind, HandlerKind::Github);
    assert_eq!(h["gh2"].secrets, [Secret::new("new"), Secret::new("old")]);
    assert!(h["gh2"].verify);
    assert!(!h["open"].verify);
    assert_eq!(h["signed"].prefix, "sha512=");
    assert_eq!(
        (h["signed"].encoding, h["signed"].response_type),
        (Encoding::Base64, ResponseType::Text)
    );
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(
        loaded.warnings[0].contains("webhooks.handlers.open.verify: is false"),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn secret_never_prints() {
    let s = Secret::new("hunter2");
    let rendered = format!("{s} {s:?} {}", serde_json::to_string(&s).unwrap());
    assert_eq!(rendered, "[redacted] [redacted] \"[redacted]\"");
    let config: Config = load_ok(&opts(Some(example()), spec_env())).config;
    assert!(!format!("{config:?}").contains("gh-secret"));
    // The environment holds the secrets too: its Debug lists names only.
    let o = opts(
        None,
        Env::empty().with("GITHUB_WEBHOOK_SECRET", "gh-secret"),
    );
    assert_eq!(format!("{:?}", o.env), r#"{"GITHUB_WEBHOOK_SECRET"}"#);
    assert!(!format!("{o:?}").contains("gh-secret"));
}

// ---- error messages -------------------------------------------------------------------------------

/// Writes `yaml` as `<dir>/config.yaml`, loads it with `env`, and snapshots every error message.
fn check_error(name: &str, yaml: &str, env: Env) {
    let (dir, path) = write_config(yaml);
    let err = load(&opts(Some(path), env)).expect_err("the config should be refused");
    let text = err
        .to_string()
        .replace(&dir.path().display().to_string(), "<dir>");
    insta::assert_snapshot!(name, text, yaml);
}

#[test]
fn nats_replicas_must_be_what_jetstream_allows() {
    check_error(
        "bad_nats_replicas",
        "webhooks:\n  queue:\n    backend: nats\n    nats:\n      replicas: 7\n",
        spec_env(),
    );
}

#[test]
fn ipv6_prefix_and_inflight_body_budget() {
    let w = defaults();
    assert_eq!(w.rate_limit.ipv6_prefix, Some(64));
    assert_eq!(w.limits.max_inflight_body_bytes, 256 * 1024 * 1024);
    // Set, or derived from a larger max_body_bytes so that one such body always fits while its
    // buffer grows.
    let load_yaml = |yaml: &str| {
        let (_dir, path) = write_config(yaml);
        load_ok(&opts(Some(path), spec_env())).config.webhooks
    };
    let w = load_yaml(
        "webhooks:\n  rate_limit:\n    ipv6_prefix: 48\n  limits:\n    max_inflight_body_bytes: 67108864\n",
    );
    assert_eq!(w.rate_limit.ipv6_prefix, Some(48));
    assert_eq!(w.limits.max_inflight_body_bytes, 64 * 1024 * 1024);
    let w = load_yaml("webhooks:\n  max_body_bytes: 1073741824\n");
    assert_eq!(w.limits.max_inflight_body_bytes, 2 * 1024 * 1024 * 1024);
    check_error(
        "bad_ipv6_prefix_and_inflight_budget",
        "webhooks:\n  max_body_bytes: 1000\n  rate_limit:\n    ipv6_prefix: 129\n  limits:\n    max_inflight_body_bytes: 1999\n",
        spec_env(),
    );
    check_error(
        "zero_ipv6_prefix",
        "webhooks:\n  rate_limit:\n    ipv6_prefix: 0\n",
        spec_env(),
    );
    // How IPv6 clients are keyed is one setting for every limiter.
    check_error(
        "handler_ipv6_prefix",
        "webhooks:\n  handlers:\n    custom:\n      rate_limit:\n        ipv6_prefix: 48\n",
        spec_env(),
    );
}

#[test]
fn error_messages() {
    let env = spec_env;
    check_error(
        "unset_variable",
        "webhooks:\n  port: \"${PORT}\"\n  handlers:\n    github:\n      secret: \"${GITHUB_WEBHOOK_SECRET}\"\n      path: \"${GITHUB_PATH}\"\n    stripe:\n      secret: \"${STRIPE_KEY}\"\n",
        Env::empty().with("HOME", HOME),
    );
    check_error(
        "malformed_reference",
        "webhooks:\n  host: \"${HOST\"\n",
        env(),
    );
    check_error(
        "unknown_keys",
        "webhook:\n  enabled: true\nwebhooks:\n  prot: 9000\n  handlers:\n    github:\n      secert: x\n      secret: y\n  logging:\n    colour: true\n",
        env(),
    );
    check_error(
        "unknown_key_from_env",
        "webhooks: {}\n",
        env().with("CLAWLET_WEBHOOKS__PROT", "1"),
    );
    check_error("bad_port", "webhooks:\n  port: 70000\n", env());
    check_error("negative_port", "webhooks:\n  port: -1\n", env());
    check_error(
        "bad_port_from_env",
        "webhooks: {}\n",
        env().with("CLAWLET_WEBHOOKS__PORT", "65536"),
    );
    check_error(
        "wrong_type",
        "webhooks:\n  enabled: maybe\n  max_body_bytes: lots\n  allowed_ips: 10.0.0.1\n  handlers:\n    custom:\n      secret: 12345\n      events: push\n",
        env(),
    );
    check_error(
        "bad_path",
        "webhooks:\n  handlers:\n    custom:\n      path: webhook/custom\n",
        env(),
    );
    check_error(
        "duplicate_path",
        "webhooks:\n  handlers:\n    a:\n      path: /hook\n    b:\n      path: /hook\n    c:\n      enabled: false\n      path: /hook\n",
        env(),
    );
    check_error(
        "reserved_path",
        "webhooks:\n  handlers:\n    a:\n      path: /health\n    b:\n      path: /metrics\n",
        env(),
    );
    check_error(
        "bad_cidr",
        "webhooks:\n  allowed_ips: [\"192.0.2.0/33\", \"10.0.0.1\", \"github\"]\n  trusted_proxies: [\"::1/129\"]\n",
        env(),
    );
    check_error(
        "ssl_missing_files",
        "webhooks:\n  ssl:\n    enabled: true\n    cert: /nonexistent/cert.pem\n",
        env(),
    );
    check_error(
        "bad_response_type",
        "webhooks:\n  handlers:\n    custom:\n      response_type: xml\n",
        env(),
    );
    check_error(
        "empty_secret",
        "webhooks:\n  handlers:\n    github:\n      secret: \"${EMPTY_SECRET}\"\n    custom:\n      secrets: [\"a\", \"\"]\n",
        env().with("EMPTY_SECRET", ""),
    );
    check_error(
        "missing_github_secret",
        "webhooks:\n  handlers:\n    github:\n      events: [push]\n    stripe: {}\n    svix:\n      kind: standard\n",
        env(),
    );
    check_error(
        "unknown_agent_in_route",
        "webhooks:\n  handlers:\n    github:\n      secret: x\n  agents:\n    inbox:\n      kind: http\n      url: http://127.0.0.1:9000/\n  routes:\n    - agent: inbx\n    - handlers: [githb]\n      agent: nowhere\n",
        env(),
    );
    check_error(
        "agent_fields",
        "webhooks:\n  agents:\n    run:\n      kind: exec\n      url: http://x/\n    post:\n      kind: http\n      command: [x]\n    what: {}\n",
        env(),
    );
    check_error(
        "bad_duration",
        "webhooks:\n  limits:\n    request_timeout: 30 parsecs\n  queue:\n    dedup_window: 0s\n  agents:\n    run:\n      kind: exec\n      command: [/bin/true]\n      timeout: soon\n",
        env(),
    );
    check_error(
        "secrets_not_whsec_base64",
        "webhooks:\n  handlers:\n    a:\n      kind: standard\n      secret: plainsecret\n    b:\n      kind: standard\n      secrets: [whsec_, \"whsec_!!!\", whsec_YWdlbnQ=]\n  agents:\n    inbox:\n      kind: http\n      url: http://127.0.0.1:9000/events\n      secret: plainsecret\n    relay:\n      kind: http\n      url: http://127.0.0.1:9001/events\n      secret: whsec_\n    mirror:\n      kind: http\n      url: http://127.0.0.1:9002/events\n      secret: \"whsec_!!!\"\n",
        env(),
    );
    check_error(
        "empty_handler_allowlist",
        "webhooks:\n  allowed_ips: [192.0.2.0/24]\n  handlers:\n    custom:\n      secret: s\n      allowed_ips: []\n",
        env(),
    );
    check_error(
        "paths_a_request_cannot_match",
        "webhooks:\n  handlers:\n    a:\n      secret: s\n      path: /webhook/ünï\n    b:\n      secret: s\n      path: /webhook/a%20b\n    c:\n      secret: s\n      path: /webhook/a b\n",
        env(),
    );
    check_error(
        "what_wiring_used_to_find",
        "webhooks:\n  rate_limit:\n    max_requests: 4000000000\n    window_seconds: 1\n  handlers:\n    \"\":\n      path: /x\n      secret: s\n    custom:\n      secret: s\n      signature_header: \"X Signature\"\n      delivery_id_header: \"Id:\"\n  agents:\n    inbox:\n      kind: http\n      url: \"http:///events\"\n      headers:\n        \"X Api Key\": k\n        X-Ok: \"a\\r\\nX-Injected: 1\"\n",
        env(),
    );
    check_error("yaml_syntax", "webhooks:\n  port: [8080\n", env());
    check_error("duplicate_key", "webhooks:\n  port: 1\n  port: 2\n", env());
    check_error("top_level_not_a_mapping", "- webhooks\n", env());
    check_error(
        "every_problem_at_once",
        "webhooks:\n  port: 65536\n  allowed_ips: [nope]\n  logging:\n    level: LOUD\n    format: xml\n  queue:\n    backend: kafka\n  handlers:\n    github: {}\n    custom:\n      path: /health\n      algorithm: md5\n",
        env(),
    );
}
