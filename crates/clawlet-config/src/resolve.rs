//! Raw values to the effective [`Config`]: defaults that depend on names and kinds, parsing of
//! durations, addresses and enums, and every cross-field rule. All problems are collected.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

use crate::check;
use crate::env::Env;
use crate::error::ConfigError;
use crate::raw::{RawAgent, RawConfig, RawHandler, RawRateLimit, RawRoute, RawSignature};
use crate::secret::Secret;
use crate::types::{
    Admin, Agent, AgentKind, AgentStart, Algorithm, Config, Credential, Encoding, Handler,
    HandlerKind, Limits, LogFormat, LogLevel, Logging, NatsQueue, Otlp, Queue, QueueBackend,
    RateLimit, ResponseType, Route, Signature, SignatureAlgorithm, Ssl, Telemetry, TimestampUnit,
    Webhooks,
};

/// Paths the server itself answers.
const RESERVED_PATHS: [&str; 2] = ["/health", "/metrics"];

/// The agent that receives every event when the file has no routes.
pub(crate) const BUILTIN_LOG_AGENT: &str = "log";

/// Where each value came from, so an error points at what to edit.
#[derive(Debug, Default)]
pub(crate) struct Origins {
    pub(crate) file: Option<String>,
    /// Dotted key → the `CLAWLET_WEBHOOKS__…` variable that set it.
    pub(crate) env: BTreeMap<String, String>,
    /// Dotted key → the CLI flag that set it.
    pub(crate) cli: BTreeMap<String, &'static str>,
}

impl Origins {
    pub(crate) fn of(&self, key: &str) -> String {
        if let Some(flag) = self.cli.get(key) {
            return (*flag).to_owned();
        }
        let under = |k: &String| {
            key == k
                || key
                    .strip_prefix(k.as_str())
                    .is_some_and(|r| r.starts_with('.'))
        };
        if let Some((_, var)) = self.env.iter().find(|(k, _)| under(k)) {
            return format!("environment variable {var}");
        }
        self.file
            .clone()
            .unwrap_or_else(|| "built-in defaults".to_owned())
    }
}

struct Ctx<'a> {
    origins: &'a Origins,
    env: &'a Env,
    errors: Vec<ConfigError>,
    warnings: Vec<String>,
}

impl Ctx<'_> {
    fn invalid(&mut self, key: &str, message: impl Into<String>) {
        self.errors.push(ConfigError::Invalid {
            origin: self.origins.of(key),
            key: key.to_owned(),
            message: message.into(),
        });
    }

    fn warn(&mut self, key: &str, message: &str) {
        self.warnings
            .push(format!("{}: {key}: {message}", self.origins.of(key)));
    }

    fn duration(&mut self, key: &str, text: &str) -> Duration {
        match humantime::parse_duration(text.trim()) {
            Ok(d) if !d.is_zero() => d,
            Ok(_) => {
                self.invalid(
                    key,
                    format!("`{text}` is zero; give a positive duration like 30s, 10m, 72h or 7d"),
                );
                Duration::ZERO
            }
            Err(_) => {
                self.invalid(
                    key,
                    format!("`{text}` is not a duration; write it like 30s, 10m, 72h or 7d"),
                );
                Duration::ZERO
            }
        }
    }

    fn networks(&mut self, key: &str, items: &[String]) -> Vec<IpNet> {
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let text = item.trim();
            if let Ok(net) = text.parse::<IpNet>() {
                out.push(net);
            } else if let Ok(ip) = text.parse::<IpAddr>() {
                out.push(IpNet::from(ip));
            } else {
                self.invalid(
                    &format!("{key}[{i}]"),
                    format!(
                        "`{item}` is not an IP address or CIDR; write it like 192.0.2.10, 192.0.2.0/24 or 2001:db8::/32"
                    ),
                );
            }
        }
        out
    }

    fn rate_limit(&mut self, key: &str, raw: &RawRateLimit) -> RateLimit {
        if raw.enabled && raw.max_requests == 0 {
            self.invalid(
                &format!("{key}.max_requests"),
                "must be at least 1; to turn rate limiting off, set enabled: false",
            );
        }
        if raw.enabled && raw.window_seconds == 0 {
            self.invalid(&format!("{key}.window_seconds"), "must be at least 1");
        }
        // The limiter refills one request every window / max_requests, and cannot do so faster
        // than once a nanosecond.
        if raw.enabled
            && raw.window_seconds > 0
            && u64::from(raw.max_requests) > raw.window_seconds.saturating_mul(1_000_000_000)
        {
            self.invalid(
                &format!("{key}.max_requests"),
                format!(
                    "{} per {} s is more than one request per nanosecond; lower it, lengthen window_seconds, or set enabled: false",
                    raw.max_requests, raw.window_seconds
                ),
            );
        }
        RateLimit {
            enabled: raw.enabled,
            max_requests: raw.max_requests,
            window_seconds: raw.window_seconds,
            ipv6_prefix: None,
        }
    }

    /// `~` and `~/…` against `HOME`.
    fn expand_home(&mut self, key: &str, text: &str) -> PathBuf {
        let rest = if text == "~" {
            Some("")
        } else {
            text.strip_prefix("~/")
        };
        match rest {
            None => PathBuf::from(text),
            Some(rest) => match self.env.get("HOME").filter(|h| !h.is_empty()) {
                Some(home) => PathBuf::from(home).join(rest),
                None => {
                    self.invalid(
                        key,
                        format!(
                            "`{text}` starts with ~ but HOME is not set; give an absolute path"
                        ),
                    );
                    PathBuf::from(text)
                }
            },
        }
    }
}

pub(crate) fn resolve(
    raw: RawConfig,
    origins: &Origins,
    env: &Env,
) -> Result<(Config, Vec<String>), Vec<ConfigError>> {
    let mut cx = Ctx {
        origins,
        env,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let w = raw.webhooks;

    // Port 0 asks the kernel for any free port; the daemon logs the one it got. Tests rely on it.
    let port = match u16::try_from(w.port) {
        Ok(p) => p,
        _ => {
            cx.invalid(
                "webhooks.port",
                format!(
                    "{} is not a port to listen on; use a number from 1 to 65535 (or 0 for any free port)",
                    w.port
                ),
            );
            0
        }
    };
    if w.host.trim().is_empty() {
        cx.invalid(
            "webhooks.host",
            "is empty; use an address like 0.0.0.0 or 127.0.0.1",
        );
    }
    let mut rate_limit = cx.rate_limit("webhooks.rate_limit", &w.rate_limit);
    rate_limit.ipv6_prefix = Some(ipv6_prefix(&mut cx, w.rate_limit.ipv6_prefix));
    let ssl = resolve_ssl(&mut cx, &w.ssl);
    let allowed_ips = cx.networks("webhooks.allowed_ips", &w.allowed_ips);
    let trusted_proxies = cx.networks("webhooks.trusted_proxies", &w.trusted_proxies);
    if w.max_body_bytes == 0 {
        cx.invalid(
            "webhooks.max_body_bytes",
            "must be at least 1; the default is 26214400 (25 MiB)",
        );
    }

    let level = match w.logging.level.to_ascii_uppercase().as_str() {
        "TRACE" => LogLevel::Trace,
        "DEBUG" => LogLevel::Debug,
        "INFO" => LogLevel::Info,
        "WARN" | "WARNING" => LogLevel::Warn,
        "ERROR" | "CRITICAL" => LogLevel::Error,
        _ => {
            cx.invalid(
                "webhooks.logging.level",
                format!(
                    "`{}` is not a log level; use TRACE, DEBUG, INFO, WARNING or ERROR",
                    w.logging.level
                ),
            );
            LogLevel::Info
        }
    };
    let format = match w.logging.format.as_str() {
        "human" => LogFormat::Human,
        "json" => LogFormat::Json,
        other => {
            cx.invalid(
                "webhooks.logging.format",
                format!("`{other}` is not a log format; use human or json"),
            );
            LogFormat::Human
        }
    };
    let logging = Logging {
        enabled: w.logging.enabled,
        level,
        include_headers: w.logging.include_headers,
        include_payload: w.logging.include_payload,
        format,
    };

    let limits = Limits {
        header_read_timeout: cx.duration(
            "webhooks.limits.header_read_timeout",
            &w.limits.header_read_timeout,
        ),
        request_timeout: cx.duration("webhooks.limits.request_timeout", &w.limits.request_timeout),
        max_connections: w.limits.max_connections,
        max_header_bytes: w.limits.max_header_bytes,
        max_inflight_body_bytes: inflight_body_bytes(
            &mut cx,
            w.limits.max_inflight_body_bytes,
            w.max_body_bytes,
        ),
    };
    if limits.max_connections == 0 {
        cx.invalid("webhooks.limits.max_connections", "must be at least 1");
    }
    if limits.max_header_bytes == 0 {
        cx.invalid("webhooks.limits.max_header_bytes", "must be at least 1");
    }

    let backend = match w.queue.backend.as_str() {
        "sqlite" => QueueBackend::Sqlite,
        "memory" => QueueBackend::Memory,
        "nats" => QueueBackend::Nats,
        other => {
            cx.invalid(
                "webhooks.queue.backend",
                format!("`{other}` is not a queue backend; use sqlite, memory or nats"),
            );
            QueueBackend::Sqlite
        }
    };
    let queue = Queue {
        backend,
        // Only the sqlite backend opens the file, so only it needs HOME for a `~` path.
        path: if backend == QueueBackend::Sqlite {
            cx.expand_home("webhooks.queue.path", &w.queue.path)
        } else {
            PathBuf::from(&w.queue.path)
        },
        dedup_window: cx.duration("webhooks.queue.dedup_window", &w.queue.dedup_window),
        max_pending: w.queue.max_pending,
        retention: cx.duration("webhooks.queue.retention", &w.queue.retention),
        nats: NatsQueue {
            url: w.queue.nats.url.clone(),
            stream: w.queue.nats.stream.clone(),
            duplicate_window: cx.duration(
                "webhooks.queue.nats.duplicate_window",
                &w.queue.nats.duplicate_window,
            ),
            replicas: w.queue.nats.replicas,
            max_bytes: w.queue.nats.max_bytes,
        },
    };
    if queue.max_pending == 0 {
        cx.invalid("webhooks.queue.max_pending", "must be at least 1");
    }
    if queue.nats.max_bytes == Some(0) {
        cx.invalid(
            "webhooks.queue.nats.max_bytes",
            "must be at least 1; remove the key to leave the stream without a byte cap",
        );
    }
    if !(1..=5).contains(&queue.nats.replicas) {
        cx.invalid(
            "webhooks.queue.nats.replicas",
            "must be 1 to 5 (JetStream's limit); use 3 on a three-node cluster",
        );
    }
    if backend == QueueBackend::Nats && queue.nats.url.trim().is_empty() {
        cx.invalid(
            "webhooks.queue.nats.url",
            "is empty; the nats backend needs a server URL like nats://127.0.0.1:4222",
        );
    }

    for (section, empty) in [
        ("webhooks.handlers", w.handlers.contains_key("")),
        ("webhooks.agents", w.agents.contains_key("")),
    ] {
        if empty {
            cx.invalid(
                section,
                "has an entry with an empty name; give it a name of letters, digits, - and _",
            );
        }
    }
    let handlers: BTreeMap<String, Handler> = w
        .handlers
        .iter()
        .map(|(name, h)| (name.clone(), resolve_handler(&mut cx, name, h)))
        .collect();
    check_paths(&mut cx, &handlers);

    let mut agents: BTreeMap<String, Agent> = w
        .agents
        .iter()
        .map(|(name, a)| (name.clone(), resolve_agent(&mut cx, name, a)))
        .collect();
    agents
        .entry(BUILTIN_LOG_AGENT.to_owned())
        .or_insert_with(|| Agent {
            name: BUILTIN_LOG_AGENT.to_owned(),
            kind: AgentKind::Log,
            timeout: Duration::from_secs(10),
            concurrency: 4,
            max_attempts: 10,
            start: AgentStart::New,
        });
    let routes = resolve_routes(&mut cx, &w.routes, &handlers, &agents);

    let otlp = Otlp {
        endpoint: w.telemetry.otlp.endpoint.filter(|e| !e.trim().is_empty()),
        service_name: w.telemetry.otlp.service_name,
    };
    if otlp.service_name.trim().is_empty() {
        cx.invalid(
            "webhooks.telemetry.otlp.service_name",
            "is empty; the default is clawlet-webhookd",
        );
    }

    let admin = resolve_admin(&mut cx, &w.admin, &w.host, port);

    if !cx.errors.is_empty() {
        return Err(cx.errors);
    }
    let webhooks = Webhooks {
        enabled: w.enabled,
        host: w.host,
        port,
        rate_limit,
        ssl,
        allowed_ips,
        trusted_proxies,
        max_body_bytes: w.max_body_bytes,
        logging,
        limits,
        queue,
        handlers,
        agents,
        routes,
        telemetry: Telemetry { otlp },
        admin,
    };
    Ok((Config { webhooks }, cx.warnings))
}

/// The environment variable an admin token is read from when the file gives none.
const ADMIN_TOKEN_VAR: &str = "CLAWLET_ADMIN_TOKEN";
/// The shortest admin token accepted: it is the console's only password.
const ADMIN_TOKEN_MIN: usize = 16;

/// `webhooks.admin`: a port of its own, and a token unless `none` is written on loopback.
fn resolve_admin(
    cx: &mut Ctx<'_>,
    raw: &crate::raw::RawAdmin,
    web_host: &str,
    web_port: u16,
) -> Admin {
    let port = u16::try_from(raw.port).unwrap_or_else(|_| {
        cx.invalid(
            "webhooks.admin.port",
            format!(
                "{} is not a port to listen on; use a number from 1 to 65535 (or 0 for any free port)",
                raw.port
            ),
        );
        0
    });
    let host = raw.host.trim().to_owned();
    let loopback = host == "localhost"
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let written = raw.token.as_deref().map(str::trim);
    let token = match written {
        Some(t) if t.eq_ignore_ascii_case("none") => None,
        Some(t) => Some(t.to_owned()),
        None => cx.env.get(ADMIN_TOKEN_VAR).map(|t| t.trim().to_owned()),
    };
    if !raw.enabled {
        return Admin {
            enabled: false,
            host,
            port,
            token: token.filter(|t| !t.is_empty()).map(Secret::new),
        };
    }
    if host.is_empty() {
        cx.invalid(
            "webhooks.admin.host",
            "is empty; use 127.0.0.1 and reach the console through an SSH tunnel",
        );
    }
    let overlaps = |a: &str, b: &str| {
        a == b || ["0.0.0.0", "::", "[::]"].contains(&a) || ["0.0.0.0", "::", "[::]"].contains(&b)
    };
    if port != 0 && port == web_port && overlaps(&host, web_host.trim()) {
        cx.invalid(
            "webhooks.admin.port",
            format!(
                "{port} is also the webhook listener's port; the console needs a port of its own (the default is 8081)"
            ),
        );
    }
    match (&written, &token) {
        (Some(t), None) if t.eq_ignore_ascii_case("none") && !loopback => cx.invalid(
            "webhooks.admin.token",
            format!(
                "is none, but the console listens on {host}, which is not a loopback address; set a token, or bind webhooks.admin.host to 127.0.0.1"
            ),
        ),
        (_, None) if written.is_none() => cx.invalid(
            "webhooks.admin.token",
            format!(
                "is not set and {ADMIN_TOKEN_VAR} is not in the environment; set one (for example `openssl rand -hex 32`), or write `token: none` to run without one on 127.0.0.1"
            ),
        ),
        (_, Some(t)) if t.chars().count() < ADMIN_TOKEN_MIN => cx.invalid(
            "webhooks.admin.token",
            format!(
                "is shorter than {ADMIN_TOKEN_MIN} characters; use a long random one, for example `openssl rand -hex 32`"
            ),
        ),
        _ => {}
    }
    Admin {
        enabled: true,
        host,
        port,
        token: token.map(Secret::new),
    }
}

/// `webhooks.rate_limit.ipv6_prefix`: 64 unless set, and a prefix length when set.
fn ipv6_prefix(cx: &mut Ctx<'_>, raw: Option<i64>) -> u8 {
    const DEFAULT: u8 = 64;
    let Some(bits) = raw else { return DEFAULT };
    match u8::try_from(bits) {
        Ok(bits @ 1..=128) => bits,
        _ => {
            cx.invalid(
                "webhooks.rate_limit.ipv6_prefix",
                format!(
                    "{bits} is not an IPv6 prefix length; use 1 to 128 (the default, 64, counts each /64 as one client)"
                ),
            );
            DEFAULT
        }
    }
}

/// The default in-flight body budget: ten bodies of the default 25 MiB limit. Real deliveries
/// are mostly a few KiB, so this leaves room for thousands at once, while a flood of unsigned
/// 25 MiB bodies costs at most this much memory.
const DEFAULT_INFLIGHT_BODY_BYTES: u64 = 256 * 1024 * 1024;

/// `webhooks.limits.max_inflight_body_bytes`: at least twice `max_body_bytes`. A body that
/// arrives in several pieces is held in a buffer that grows as they come, and while it grows the
/// old and the new buffer are both held; below twice the largest allowed body, such a body could
/// never be read.
fn inflight_body_bytes(cx: &mut Ctx<'_>, raw: Option<u64>, max_body_bytes: u64) -> u64 {
    let least = max_body_bytes.saturating_mul(2);
    let Some(bytes) = raw else {
        return DEFAULT_INFLIGHT_BODY_BYTES.max(least);
    };
    if bytes < least {
        cx.invalid(
            "webhooks.limits.max_inflight_body_bytes",
            format!(
                "{bytes} is below twice webhooks.max_body_bytes ({max_body_bytes}), so a body of the largest allowed size, which needs up to twice its size while it arrives, could never be read; raise it (the default is {DEFAULT_INFLIGHT_BODY_BYTES}, 256 MiB) or lower max_body_bytes"
            ),
        );
    }
    bytes
}

fn resolve_ssl(cx: &mut Ctx<'_>, raw: &crate::raw::RawSsl) -> Ssl {
    let file = |cx: &mut Ctx<'_>, which: &str, value: &Option<String>| -> Option<PathBuf> {
        let key = format!("webhooks.ssl.{which}");
        let text = value.as_deref().filter(|t| !t.trim().is_empty());
        let Some(text) = text else {
            if raw.enabled {
                cx.invalid(&key, format!("is not set but ssl is enabled; give the PEM {which} file, or set ssl.enabled: false"));
            }
            return None;
        };
        let path = cx.expand_home(&key, text);
        // Opening proves readability; a directory opens too on Unix, hence the metadata check.
        let readable = std::fs::File::open(&path)
            .and_then(|f| f.metadata())
            .and_then(|m| {
                if m.is_file() {
                    Ok(())
                } else {
                    Err(std::io::Error::other("not a regular file"))
                }
            });
        if raw.enabled
            && let Err(e) = readable
        {
            cx.invalid(
                &key,
                format!(
                    "cannot read {}: {e}; fix the path or its permissions",
                    path.display()
                ),
            );
        }
        Some(path)
    };
    let cert = file(cx, "cert", &raw.cert);
    let key = file(cx, "key", &raw.key);
    if !raw.enabled && (cert.is_some() || key.is_some()) {
        cx.warn("webhooks.ssl.enabled", "is false, so the cert and key are not used and the listener speaks plain HTTP; set enabled: true for TLS");
    }
    Ssl {
        enabled: raw.enabled,
        cert,
        key,
    }
}

fn resolve_handler(cx: &mut Ctx<'_>, name: &str, raw: &RawHandler) -> Handler {
    let at = |field: &str| format!("webhooks.handlers.{name}.{field}");
    let kind = match (raw.kind.as_deref(), name) {
        (None, "github") => HandlerKind::Github,
        (None, "stripe") => HandlerKind::Stripe,
        (None, _) => HandlerKind::Custom,
        (Some(text), _) => HandlerKind::from_name(text).unwrap_or_else(|| {
            let known: Vec<&str> = HandlerKind::ALL.iter().map(|k| k.name()).collect();
            cx.invalid(
                &at("kind"),
                format!(
                    "`{text}` is not a handler kind; use one of {}",
                    known.join(", ")
                ),
            );
            HandlerKind::Custom
        }),
    };

    let path = match &raw.path {
        Some(p) => {
            if !p.starts_with('/') {
                cx.invalid(
                    &at("path"),
                    format!("`{p}` must start with /, as in /webhook/{name}"),
                );
            } else if let Some(c) = check::unusable_path_char(p) {
                cx.invalid(
                    &at("path"),
                    format!(
                        "`{p}` holds `{c}`, which a request carries percent-encoded, so the path could never match; use ASCII letters, digits, / and - . _ ~"
                    ),
                );
            }
            p.clone()
        }
        None => {
            if !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                || name.is_empty()
            {
                cx.invalid(
                    &at("path"),
                    format!("the handler name `{name}` cannot form the default path /webhook/<name>; set path: explicitly"),
                );
            }
            format!("/webhook/{name}")
        }
    };

    let texts: Vec<(String, &String)> = match (&raw.secret, &raw.secrets) {
        (Some(_), Some(_)) => {
            cx.invalid(
                &at("secrets"),
                "secret and secrets are both set; put every secret under secrets",
            );
            Vec::new()
        }
        (Some(s), None) => vec![(at("secret"), s)],
        (None, Some(list)) => list
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("{}[{i}]", at("secrets")), s))
            .collect(),
        (None, None) => Vec::new(),
    };
    let mut secrets = Vec::with_capacity(texts.len());
    for (key, text) in texts {
        if text.trim().is_empty() {
            cx.invalid(&key, "is empty; set the signing secret (check that its environment variable is not empty), or remove the key");
        } else {
            if kind == HandlerKind::Standard
                && let Some(problem) = check::whsec_problem(text)
            {
                cx.invalid(&key, format!("{problem}; {}", check::WHSEC_FORMAT));
            }
            secrets.push(Secret::new(text.clone()));
        }
    }
    if raw.secrets.as_ref().is_some_and(Vec::is_empty) {
        cx.invalid(
            &at("secrets"),
            "is an empty list; give at least one secret, or remove the key",
        );
    }

    let signature = raw
        .signature
        .as_ref()
        .map(|sig| resolve_signature(cx, name, kind, raw, sig));
    let keys = resolve_keys(cx, name, kind, raw, signature.as_ref());
    let secretless = match kind.needs().credential {
        Credential::PublicKey => Some(("public_key", keys.public_key.is_some())),
        Credential::ClientState => Some(("client_state", keys.client_state.is_some())),
        Credential::SecretOrPublicKey if keys.public_key.is_some() => Some(("public_key", true)),
        _ => signature
            .as_ref()
            .filter(|sig| sig.algorithm.is_public_key())
            .map(|_| ("public_key", keys.public_key.is_some())),
    };
    if let Some((key, _)) = secretless
        && (raw.secret.is_some() || raw.secrets.is_some())
        && kind.needs().credential != Credential::SecretOrPublicKey
    {
        cx.invalid(
            &at(if raw.secret.is_some() {
                "secret"
            } else {
                "secrets"
            }),
            format!(
                "a {} handler verifies with {key}, not a shared secret; remove it",
                describe_kind(kind, signature.as_ref())
            ),
        );
    }
    let verify = raw.verify && secretless.map_or(!secrets.is_empty(), |(_, set)| set);
    if raw.enabled
        && let Some((key, false)) = secretless
        && raw.verify
    {
        cx.invalid(
            &at(key),
            format!(
                "a {} handler needs {key} to verify deliveries; set {key}: \"${{{}}}\" ({}), or verify: false to accept unsigned requests (never in production)",
                describe_kind(kind, signature.as_ref()),
                env_name(name, key),
                credential_hint(kind, key),
            ),
        );
    } else if raw.enabled && secretless.is_some() {
        if !raw.verify {
            cx.warn(&at("verify"), "is false: anyone who knows the URL can send events to this handler; never run it like this in production");
        }
    } else if raw.enabled {
        let signed_scheme = kind != HandlerKind::Custom;
        if raw.verify
            && secrets.is_empty()
            && signed_scheme
            && raw.secret.is_none()
            && raw.secrets.is_none()
        {
            cx.invalid(
                &at("secret"),
                format!(
                    "a {} handler needs a secret to verify signatures; set secret: \"${{{}_WEBHOOK_SECRET}}\", or verify: false to accept unsigned requests (never in production)",
                    kind_name(kind),
                    name.to_ascii_uppercase().replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
                ),
            );
        } else if !raw.verify {
            cx.warn(&at("verify"), "is false: anyone who knows the URL can send events to this handler; never run it like this in production");
        } else if secrets.is_empty() && raw.secret.is_none() && raw.secrets.is_none() {
            cx.warn(&at("secret"), "is not set: signatures are not verified and anyone who knows the URL can send events; set a secret");
        }
    }

    let response_type = match raw.response_type.as_str() {
        "json" => ResponseType::Json,
        "text" => ResponseType::Text,
        other => {
            cx.invalid(
                &at("response_type"),
                format!("`{other}` is not a response type; use json or text"),
            );
            ResponseType::Json
        }
    };
    let algorithm = match raw.algorithm.as_str() {
        "sha256" => Algorithm::Sha256,
        "sha1" => Algorithm::Sha1,
        "sha512" => Algorithm::Sha512,
        other => {
            cx.invalid(
                &at("algorithm"),
                format!("`{other}` is not a supported algorithm; use sha256, sha512 or sha1"),
            );
            Algorithm::Sha256
        }
    };
    let encoding = match raw.encoding.as_str() {
        "hex" => Encoding::Hex,
        "base64" => Encoding::Base64,
        other => {
            cx.invalid(
                &at("encoding"),
                format!("`{other}` is not a digest encoding; use hex or base64"),
            );
            Encoding::Hex
        }
    };
    if raw.signature_header.trim().is_empty() {
        cx.invalid(
            &at("signature_header"),
            "is empty; the default is X-Signature",
        );
    } else if !check::is_header_name(&raw.signature_header) {
        cx.invalid(
            &at("signature_header"),
            format!(
                "`{}` is not an HTTP header name; use letters, digits and -, as in X-Signature",
                raw.signature_header
            ),
        );
    }
    if let Some(header) = &raw.delivery_id_header
        && !check::is_header_name(header)
    {
        cx.invalid(
            &at("delivery_id_header"),
            format!("`{header}` is not an HTTP header name; use letters, digits and -, as in X-Delivery-Id"),
        );
    }
    let pointer = |cx: &mut Ctx<'_>, field: &str, value: &str| {
        if !value.is_empty() && !value.starts_with('/') {
            cx.invalid(
                &at(field),
                format!("`{value}` is not a JSON pointer; write it like /{value}"),
            );
        }
    };
    pointer(cx, "event_type_field", &raw.event_type_field);
    if let Some(f) = &raw.delivery_id_field {
        pointer(cx, "delivery_id_field", f);
    }
    let prefix = raw
        .prefix
        .clone()
        .unwrap_or_else(|| format!("{}=", algorithm_name(algorithm)));
    if raw.allowed_ips.as_ref().is_some_and(Vec::is_empty) {
        // An empty list could read as "nobody" or as "everybody"; neither is what an operator
        // who wrote it by accident expects, so it is refused rather than guessed.
        cx.invalid(
            &at("allowed_ips"),
            "is an empty list; remove the key to use the global webhooks.allowed_ips, or list the addresses allowed to send here",
        );
    }
    let allowed_ips = raw
        .allowed_ips
        .as_ref()
        .map(|ips| cx.networks(&at("allowed_ips"), ips));
    let rate_limit = raw
        .rate_limit
        .as_ref()
        .map(|r| cx.rate_limit(&at("rate_limit"), r));

    Handler {
        name: name.to_owned(),
        enabled: raw.enabled,
        path,
        kind,
        secrets,
        verify,
        events: raw.events.clone(),
        response_type,
        tolerance_seconds: raw
            .tolerance_seconds
            .unwrap_or(kind.default_tolerance_seconds()),
        allow_legacy_sha1: raw.allow_legacy_sha1,
        signature_header: raw.signature_header.clone(),
        algorithm,
        encoding,
        prefix,
        event_type_field: raw.event_type_field.clone(),
        delivery_id_header: raw.delivery_id_header.clone(),
        delivery_id_field: raw.delivery_id_field.clone(),
        signature,
        public_key: keys.public_key,
        public_url: keys.public_url,
        verify_token: keys.verify_token,
        client_state: keys.client_state,
        allowed_ips,
        rate_limit,
    }
}

/// The keys a preset reads besides its secrets.
struct Keys {
    public_key: Option<String>,
    public_url: Option<String>,
    verify_token: Option<Secret>,
    client_state: Option<Secret>,
}

/// Checks `public_key`, `public_url`, `verify_token` and `client_state`: present where the kind
/// needs them, refused where it does not read them, and well formed.
fn resolve_keys(
    cx: &mut Ctx<'_>,
    name: &str,
    kind: HandlerKind,
    raw: &RawHandler,
    signature: Option<&Signature>,
) -> Keys {
    let at = |field: &str| format!("webhooks.handlers.{name}.{field}");
    let needs = kind.needs();
    let shown = describe_kind(kind, signature);
    let reads_public_key = matches!(
        needs.credential,
        Credential::PublicKey | Credential::SecretOrPublicKey
    ) || signature.is_some_and(|s| s.algorithm.is_public_key());
    let reads_url =
        needs.public_url || signature.is_some_and(|s| s.signed_payload.contains("{url}"));
    let refuse = |cx: &mut Ctx<'_>, field: &str, present: bool, readers: &str| {
        if present {
            cx.invalid(
                &at(field),
                format!("a {shown} handler does not read it ({readers} do); remove it"),
            );
        }
    };
    fn text(value: &Option<String>) -> Option<&str> {
        value.as_deref().map(str::trim).filter(|v| !v.is_empty())
    }
    let empty = |cx: &mut Ctx<'_>, field: &str, value: &Option<String>| {
        if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
            cx.invalid(&at(field), "is empty; set it (check that its environment variable is not empty), or remove the key");
        }
    };
    for (field, value) in [
        ("public_key", &raw.public_key),
        ("public_url", &raw.public_url),
        ("verify_token", &raw.verify_token),
        ("client_state", &raw.client_state),
    ] {
        empty(cx, field, value);
    }

    let public_key = if reads_public_key {
        let key = text(&raw.public_key).map(str::to_owned);
        if let Some(key) = &key
            && let Some(problem) = public_key_problem(kind, signature, key)
        {
            cx.invalid(&at("public_key"), problem);
        }
        key
    } else {
        refuse(
            cx,
            "public_key",
            raw.public_key.is_some(),
            "discord, sendgrid, standard and custom Ed25519 or ECDSA signatures",
        );
        None
    };
    let public_url = if reads_url {
        let url = text(&raw.public_url).map(str::to_owned);
        match &url {
            Some(u) if !(u.starts_with("https://") || u.starts_with("http://")) || u.contains(char::is_whitespace) => {
                cx.invalid(
                    &at("public_url"),
                    format!("`{}` is not an absolute http(s) URL; write the URL the sender posts to, exactly as configured there, as in https://hooks.example.com/webhook/{name}", clawlet_url(u)),
                );
            }
            None if raw.enabled && raw.verify => cx.invalid(
                &at("public_url"),
                format!("a {shown} handler signs the URL it posts to; set public_url: to that URL exactly as configured at the sender, as in https://hooks.example.com/webhook/{name}"),
            ),
            _ => {}
        }
        url
    } else {
        refuse(
            cx,
            "public_url",
            raw.public_url.is_some(),
            "twilio, square, hubspot and custom signatures over {url}",
        );
        None
    };
    let verify_token = if needs.verify_token {
        if raw.verify_token.is_none() && raw.enabled {
            cx.invalid(
                &at("verify_token"),
                format!("a {shown} handler answers the sender's subscribe request only with the token it was given; set verify_token: \"${{{}}}\" to the token entered at the sender", env_name(name, "verify_token")),
            );
        }
        text(&raw.verify_token).map(|t| Secret::new(t.to_owned()))
    } else {
        refuse(
            cx,
            "verify_token",
            raw.verify_token.is_some(),
            "meta handlers",
        );
        None
    };
    let client_state = if needs.credential == Credential::ClientState {
        text(&raw.client_state).map(|t| Secret::new(t.to_owned()))
    } else {
        refuse(
            cx,
            "client_state",
            raw.client_state.is_some(),
            "msgraph handlers",
        );
        None
    };
    Keys {
        public_key,
        public_url,
        verify_token,
        client_state,
    }
}

/// A URL as an error message may show it.
fn clawlet_url(url: &str) -> String {
    crate::redact_url(url)
}

/// Why `key` cannot be the public key a `kind` handler reads, or `None`.
fn public_key_problem(
    kind: HandlerKind,
    signature: Option<&Signature>,
    key: &str,
) -> Option<String> {
    use base64::Engine as _;
    let base64 = |text: &str| base64::engine::general_purpose::STANDARD.decode(text).ok();
    let hex32 = |text: &str| text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit());
    match (kind, signature.map(|s| s.algorithm)) {
        (HandlerKind::Discord, _) => (!hex32(key)).then(|| {
            "is not 64 hexadecimal digits; copy the application's public key from the Discord developer portal".to_owned()
        }),
        (HandlerKind::Sendgrid, _) | (_, Some(SignatureAlgorithm::EcdsaP256)) => {
            base64(key).filter(|k| !k.is_empty()).is_none().then(|| {
                "is not base64; copy the verification key (a base64 public key) shown where signed event webhooks are turned on".to_owned()
            })
        }
        (HandlerKind::Standard, _) => match key.strip_prefix("whpk_").map(base64) {
            Some(Some(k)) if k.len() == 32 => None,
            Some(_) => Some("is not the base64 of a 32-byte Ed25519 key after whpk_".to_owned()),
            None => Some("does not start with whpk_; a Standard Webhooks public key is whpk_<base64>".to_owned()),
        },
        _ => {
            let decoded = if hex32(key) { Some(32) } else { base64(key).map(|k| k.len()) };
            (decoded != Some(32)).then(|| "is not a 32-byte Ed25519 public key in hex or base64".to_owned())
        }
    }
}

/// The kind as a message names it: a custom handler with a public-key signature says so.
fn describe_kind(kind: HandlerKind, signature: Option<&Signature>) -> String {
    match signature.map(|s| s.algorithm) {
        Some(SignatureAlgorithm::Ed25519) => "custom Ed25519".to_owned(),
        Some(SignatureAlgorithm::EcdsaP256) => "custom ECDSA".to_owned(),
        _ => kind.name().to_owned(),
    }
}

/// What to paste, for the message asking for a credential.
fn credential_hint(kind: HandlerKind, key: &str) -> &'static str {
    match (kind, key) {
        (HandlerKind::Discord, _) => "the application's public key, 64 hex digits",
        (HandlerKind::Sendgrid, _) => "the base64 verification key of the signed event webhook",
        (HandlerKind::Msgraph, _) => "the clientState given when the subscription was created",
        (HandlerKind::Standard, _) => "whpk_<base64>",
        _ => "the sender's public key",
    }
}

/// The environment variable a message suggests for a handler's key.
fn env_name(name: &str, key: &str) -> String {
    format!("{name}_{key}")
        .to_ascii_uppercase()
        .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
}

/// A custom handler's `signature:` block.
fn resolve_signature(
    cx: &mut Ctx<'_>,
    name: &str,
    kind: HandlerKind,
    raw: &RawHandler,
    sig: &RawSignature,
) -> Signature {
    let at = |field: &str| format!("webhooks.handlers.{name}.signature.{field}");
    if kind != HandlerKind::Custom {
        cx.invalid(
            &format!("webhooks.handlers.{name}.signature"),
            format!("a {} handler's signature is fixed by its kind; remove the block, or use kind: custom", kind.name()),
        );
    }
    if raw.prefix.is_some() {
        cx.invalid(
            &format!("webhooks.handlers.{name}.prefix"),
            "is set next to a signature: block, which replaces it; move it to signature.prefix",
        );
    }
    let header_name = |cx: &mut Ctx<'_>, field: &str, value: Option<&String>| {
        if let Some(h) = value
            && !check::is_header_name(h)
        {
            cx.invalid(
                &at(field),
                format!(
                    "`{h}` is not an HTTP header name; use letters, digits and -, as in X-Signature"
                ),
            );
        }
        value.cloned()
    };
    let header = header_name(cx, "header", sig.header.as_ref()).unwrap_or_else(|| {
        cx.invalid(
            &at("header"),
            "is missing; name the header that carries the signature, as in header: X-Signature",
        );
        String::new()
    });
    let timestamp_header = header_name(cx, "timestamp_header", sig.timestamp_header.as_ref());
    let id_header = header_name(cx, "id_header", sig.id_header.as_ref());
    let algorithm = match sig.algorithm.as_deref().unwrap_or("hmac-sha256") {
        "hmac-sha1" => SignatureAlgorithm::HmacSha1,
        "hmac-sha256" => SignatureAlgorithm::HmacSha256,
        "hmac-sha512" => SignatureAlgorithm::HmacSha512,
        "ed25519" => SignatureAlgorithm::Ed25519,
        "ecdsa-p256" => SignatureAlgorithm::EcdsaP256,
        other => {
            cx.invalid(&at("algorithm"), format!("`{other}` is not a signature algorithm; use hmac-sha256, hmac-sha512, hmac-sha1, ed25519 or ecdsa-p256"));
            SignatureAlgorithm::HmacSha256
        }
    };
    let encoding = match sig.encoding.as_deref() {
        None if algorithm == SignatureAlgorithm::EcdsaP256 => Encoding::Base64,
        None | Some("hex") => Encoding::Hex,
        Some("base64") => Encoding::Base64,
        Some(other) => {
            cx.invalid(
                &at("encoding"),
                format!("`{other}` is not a signature encoding; use hex or base64"),
            );
            Encoding::Hex
        }
    };
    let timestamp_unit = match sig.timestamp_unit.as_deref() {
        None | Some("seconds") => TimestampUnit::Seconds,
        Some("milliseconds") => TimestampUnit::Milliseconds,
        Some(other) => {
            cx.invalid(
                &at("timestamp_unit"),
                format!("`{other}` is not a timestamp unit; use seconds or milliseconds"),
            );
            TimestampUnit::Seconds
        }
    };
    let signed_payload = sig
        .signed_payload
        .clone()
        .unwrap_or_else(|| "{body}".to_owned());
    if let Err(problem) = check::template(
        &signed_payload,
        timestamp_header.is_some(),
        id_header.is_some(),
    ) {
        cx.invalid(
            &at("signed_payload"),
            format!("`{signed_payload}` {problem}"),
        );
    }
    if sig
        .separator
        .as_deref()
        .is_some_and(|s| s.chars().count() != 1)
    {
        cx.invalid(
            &at("separator"),
            "must be one character, such as \",\" or \" \"",
        );
    }
    Signature {
        header,
        prefix: sig.prefix.clone().unwrap_or_default(),
        encoding,
        algorithm,
        signed_payload,
        timestamp_header,
        timestamp_unit,
        id_header,
        separator: sig.separator.clone(),
    }
}

fn kind_name(kind: HandlerKind) -> &'static str {
    kind.name()
}

fn algorithm_name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::Sha1 => "sha1",
        Algorithm::Sha256 => "sha256",
        Algorithm::Sha512 => "sha512",
    }
}

fn check_paths(cx: &mut Ctx<'_>, handlers: &BTreeMap<String, Handler>) {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for h in handlers.values().filter(|h| h.enabled) {
        let key = format!("webhooks.handlers.{}.path", h.name);
        if RESERVED_PATHS.contains(&h.path.as_str()) {
            cx.invalid(
                &key,
                format!(
                    "{} is reserved for the server itself; choose another path",
                    h.path
                ),
            );
        } else if let Some(first) = seen.get(h.path.as_str()) {
            cx.invalid(
                &key,
                format!("{} is already the path of handler {first}; give each enabled handler its own path", h.path),
            );
        } else {
            seen.insert(h.path.as_str(), h.name.as_str());
        }
    }
}

fn resolve_agent(cx: &mut Ctx<'_>, name: &str, raw: &RawAgent) -> Agent {
    let at = |field: &str| format!("webhooks.agents.{name}.{field}");
    let refuse_field = |cx: &mut Ctx<'_>, field: &str, present: bool, kinds: &str| {
        if present {
            cx.invalid(
                &at(field),
                format!("applies only to {kinds} agents; remove it"),
            );
        }
    };
    let (kind, default_timeout) = match raw.kind.as_deref() {
        Some("exec") => {
            refuse_field(cx, "url", raw.url.is_some(), "http");
            refuse_field(cx, "secret", raw.secret.is_some(), "http");
            refuse_field(cx, "headers", raw.headers.is_some(), "http");
            let command = raw.command.clone().unwrap_or_default();
            if command.first().is_none_or(|p| p.trim().is_empty()) {
                cx.invalid(&at("command"), "is missing or empty; an exec agent needs the program and its arguments, as in command: [\"/usr/local/bin/notify\"]");
            }
            (AgentKind::Exec { command }, Duration::from_secs(30))
        }
        Some("http") => {
            refuse_field(cx, "command", raw.command.is_some(), "exec");
            let url = raw.url.clone().unwrap_or_default();
            if raw.url.is_none() {
                cx.invalid(
                    &at("url"),
                    "is missing; an http agent needs the URL to POST events to, as in url: \"http://127.0.0.1:9000/events\"",
                );
            } else if !(url.starts_with("http://") || url.starts_with("https://")) {
                cx.invalid(&at("url"), format!("`{}` is not an http:// or https:// URL; an http agent needs the URL to POST events to", crate::redact::redact_url(&url)));
            } else if url
                .split_once("://")
                .is_none_or(|(_, rest)| rest.is_empty() || rest.starts_with('/'))
            {
                cx.invalid(
                    &at("url"),
                    "has no host; write it like http://127.0.0.1:9000/events",
                );
            }
            let secret = match raw.secret.as_deref() {
                Some(s) if s.trim().is_empty() => {
                    cx.invalid(&at("secret"), "is empty; set the whsec_ signing secret, or remove the key to send unsigned");
                    None
                }
                Some(s) => {
                    if let Some(problem) = check::whsec_problem(s) {
                        cx.invalid(&at("secret"), format!("{problem}; {}", check::WHSEC_FORMAT));
                    }
                    Some(Secret::new(s))
                }
                None => None,
            };
            for (header, value) in raw.headers.iter().flatten() {
                let key = format!("{}.{header}", at("headers"));
                if !check::is_header_name(header) {
                    cx.invalid(
                        &key,
                        "is not an HTTP header name; use letters, digits and -, as in X-Api-Key",
                    );
                }
                if !check::is_header_value(value) {
                    cx.invalid(&key, "holds a control character such as a line break; remove it (the value is not shown)");
                }
            }
            let headers = raw
                .headers
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, Secret::new(v)))
                .collect();
            (
                AgentKind::Http {
                    url,
                    secret,
                    headers,
                },
                Duration::from_secs(10),
            )
        }
        Some("log") => {
            refuse_field(cx, "command", raw.command.is_some(), "exec");
            refuse_field(cx, "url", raw.url.is_some(), "http");
            refuse_field(cx, "secret", raw.secret.is_some(), "http");
            refuse_field(cx, "headers", raw.headers.is_some(), "http");
            (AgentKind::Log, Duration::from_secs(10))
        }
        Some(other) => {
            cx.invalid(
                &at("kind"),
                format!("`{other}` is not an agent kind; use exec, http or log"),
            );
            (AgentKind::Log, Duration::from_secs(10))
        }
        None => {
            cx.invalid(&at("kind"), "is missing; set kind: exec, http or log");
            (AgentKind::Log, Duration::from_secs(10))
        }
    };
    let timeout = match &raw.timeout {
        Some(t) => cx.duration(&at("timeout"), t),
        None => default_timeout,
    };
    if raw.concurrency == 0 {
        cx.invalid(&at("concurrency"), "must be at least 1");
    }
    if raw.max_attempts == 0 {
        cx.invalid(&at("max_attempts"), "must be at least 1");
    }
    let start = match raw.start.as_deref() {
        None | Some("new") => AgentStart::New,
        Some("all") => AgentStart::All,
        Some(other) => {
            cx.invalid(
                &at("start"),
                format!("`{other}` is not a start position; use new (only events stored from now on) or all (every event the stream holds)"),
            );
            AgentStart::New
        }
    };
    Agent {
        name: name.to_owned(),
        kind,
        timeout,
        concurrency: raw.concurrency,
        max_attempts: raw.max_attempts,
        start,
    }
}

fn resolve_routes(
    cx: &mut Ctx<'_>,
    raw: &[RawRoute],
    handlers: &BTreeMap<String, Handler>,
    agents: &BTreeMap<String, Agent>,
) -> Vec<Route> {
    if raw.is_empty() {
        return vec![Route {
            handlers: Vec::new(),
            events: Vec::new(),
            agent: BUILTIN_LOG_AGENT.to_owned(),
        }];
    }
    let known_agents: BTreeSet<&str> = agents.keys().map(String::as_str).collect();
    let mut out = Vec::with_capacity(raw.len());
    for (i, r) in raw.iter().enumerate() {
        let at = |field: &str| format!("webhooks.routes[{i}].{field}");
        let agent = r.agent.clone().unwrap_or_default();
        if r.agent.is_none() {
            cx.invalid(
                &at("agent"),
                "is missing; name the agent that receives these events",
            );
        } else if !known_agents.contains(agent.as_str()) {
            let hint = crate::schema::suggest(&agent, known_agents.iter().copied())
                .map(|s| format!("did you mean `{s}`? "))
                .unwrap_or_default();
            cx.invalid(
                &at("agent"),
                format!(
                    "agent `{agent}` is not defined; {hint}define it under webhooks.agents or use one of: {}",
                    known_agents.iter().copied().collect::<Vec<_>>().join(", ")
                ),
            );
        }
        for (j, h) in r.handlers.iter().enumerate() {
            if !handlers.contains_key(h) {
                let hint = crate::schema::suggest(h, handlers.keys().map(String::as_str))
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_else(|| {
                        "; define it under webhooks.handlers or remove it here".to_owned()
                    });
                cx.invalid(
                    &format!("{}[{j}]", at("handlers")),
                    format!("handler `{h}` is not defined{hint}"),
                );
            }
        }
        out.push(Route {
            handlers: r.handlers.clone(),
            events: r.events.clone(),
            agent,
        });
    }
    out
}
