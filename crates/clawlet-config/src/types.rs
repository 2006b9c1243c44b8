//! The effective configuration: every default applied, every value checked and typed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::Serialize;

use crate::secret::Secret;

/// The whole effective configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Config {
    /// Everything under `webhooks:`.
    pub webhooks: Webhooks,
}

/// The `webhooks:` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Webhooks {
    /// Whether the daemon serves webhooks at all (default true).
    pub enabled: bool,
    /// Address to listen on (default `0.0.0.0`).
    pub host: String,
    /// Port to listen on, 1 to 65535 (default 8080).
    pub port: u16,
    /// Global per-client-IP rate limit.
    pub rate_limit: RateLimit,
    /// TLS on the listener.
    pub ssl: Ssl,
    /// Networks allowed to send; empty allows every address. Bare IPs are /32 or /128.
    pub allowed_ips: Vec<IpNet>,
    /// Proxies whose `X-Forwarded-For` / `Forwarded` is believed; empty believes none.
    pub trusted_proxies: Vec<IpNet>,
    /// Largest accepted body (default 25 MiB, GitHub's cap).
    pub max_body_bytes: u64,
    /// Request logging.
    pub logging: Logging,
    /// Timeouts and connection limits against slow or hostile clients.
    pub limits: Limits,
    /// The durable event queue.
    pub queue: Queue,
    /// The configured handlers by name, disabled ones included.
    pub handlers: BTreeMap<String, Handler>,
    /// The agents by name. Always holds `log` (kind log) unless the file defines its own `log`.
    pub agents: BTreeMap<String, Agent>,
    /// Which events go to which agents. When the file gives none, this is one route sending every
    /// event to the built-in `log` agent.
    pub routes: Vec<Route>,
    /// Tracing export.
    pub telemetry: Telemetry,
}

/// `max_requests` per `window_seconds`, per client IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RateLimit {
    /// Whether requests are limited (default true).
    pub enabled: bool,
    /// Requests allowed per window, at least 1 (default 100).
    pub max_requests: u32,
    /// Window length in seconds, at least 1 (default 60).
    pub window_seconds: u64,
    /// How many leading bits of an IPv6 client address name one client, 1 to 128 (default 64:
    /// one host may use any address of its /64). Set at the global level only, and used by every
    /// limiter; `None` in a handler's own `rate_limit`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_prefix: Option<u8>,
}

/// TLS settings. When `enabled`, both files were readable at load time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ssl {
    /// Whether the listener speaks TLS (default false).
    pub enabled: bool,
    /// PEM certificate chain (`~` expanded).
    pub cert: Option<PathBuf>,
    /// PEM private key (`~` expanded).
    pub key: Option<PathBuf>,
}

/// Request logging.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Logging {
    /// Whether requests are logged (default true).
    pub enabled: bool,
    /// Log level (default INFO).
    pub level: LogLevel,
    /// Log request headers (any whose name holds `token`, `key`, `secret`, `signature`, `auth`,
    /// `password` or `cookie`, and a custom handler's signature header, stay redacted).
    pub include_headers: bool,
    /// Log request bodies; they may hold personal data.
    pub include_payload: bool,
    /// Line format (default human).
    pub format: LogFormat,
}

/// Log level; the file accepts any case, and Python's `WARNING` and `CRITICAL` as well.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LogLevel {
    /// Everything.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something to look at.
    Warn,
    /// Failures only.
    Error,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per event.
    Human,
    /// One JSON object per line.
    Json,
}

/// Limits on connections and requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Time allowed to receive the request head (default 10s).
    #[serde(serialize_with = "serialize_duration")]
    pub header_read_timeout: Duration,
    /// Time allowed for the whole request (default 30s).
    #[serde(serialize_with = "serialize_duration")]
    pub request_timeout: Duration,
    /// Open connections at most (default 10000).
    pub max_connections: usize,
    /// Size of the request head at most (default 65536).
    pub max_header_bytes: usize,
    /// Bytes of request bodies held in memory at once, across all requests; a request whose
    /// body would pass it gets 503 with `Retry-After` before its body is read. At least
    /// `max_body_bytes` (default 268435456, 256 MiB, or `max_body_bytes` when that is larger).
    pub max_inflight_body_bytes: u64,
}

/// The durable queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Queue {
    /// Storage backend (default sqlite).
    pub backend: QueueBackend,
    /// SQLite journal file, `~` expanded (default `~/.clawlet/webhooks.db`).
    pub path: PathBuf,
    /// How long a delivery id is remembered for dedup (default 72h).
    #[serde(serialize_with = "serialize_duration")]
    pub dedup_window: Duration,
    /// Undelivered events at most before publishing is refused (default 100000).
    pub max_pending: u64,
    /// How long delivered events are kept (default 7d).
    #[serde(serialize_with = "serialize_duration")]
    pub retention: Duration,
    /// JetStream settings, used when `backend` is nats.
    pub nats: NatsQueue,
}

/// Queue backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueBackend {
    /// Embedded SQLite journal: durable on one machine.
    Sqlite,
    /// In memory: not durable; for development and tests.
    Memory,
    /// NATS JetStream: durable and shared by several daemons.
    Nats,
}

/// JetStream settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NatsQueue {
    /// Server URL (default `nats://127.0.0.1:4222`), or several separated by commas. Each is
    /// shown with its userinfo and query values redacted.
    #[serde(serialize_with = "crate::redact::serialize_url_list")]
    pub url: String,
    /// Stream name (default `CLAWLET_WEBHOOKS`).
    pub stream: String,
    /// JetStream's duplicate window (default 24h).
    #[serde(serialize_with = "serialize_duration")]
    pub duplicate_window: Duration,
    /// Copies of the stream that JetStream keeps on different servers of a cluster (default 1;
    /// 3 on a three-node cluster, so that an acknowledged event survives the loss of one server).
    pub replicas: usize,
    /// The stream's size cap in bytes: at the cap a publish is refused with 503 and
    /// `Retry-After`, and no stored event is discarded (default none: unbounded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
}

/// One webhook endpoint. Serialised (for `config check`) with only the fields its kind reads:
/// a GitHub handler never shows the custom-HMAC header or prefix, which it does not use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handler {
    /// The key under `handlers:`.
    pub name: String,
    /// Whether the endpoint is served (default true).
    pub enabled: bool,
    /// URL path, starting with `/` (default `/webhook/<name>`).
    pub path: String,
    /// Signature scheme and payload format.
    pub kind: HandlerKind,
    /// Accepted signing secrets, any of which may match (rotation); `secret:` is the one-element form.
    pub secrets: Vec<Secret>,
    /// True when every request must carry a valid signature: `verify` was not turned off and a
    /// secret is configured. When false the daemon warns at every start.
    pub verify: bool,
    /// Event types accepted; empty accepts all.
    pub events: Vec<String>,
    /// Body of the answer (default json).
    pub response_type: ResponseType,
    /// Largest age of a signed timestamp in seconds, Stripe and Standard Webhooks (default 300; 0
    /// disables the check).
    pub tolerance_seconds: u64,
    /// GitHub: also accept legacy `X-Hub-Signature: sha1=` (default false).
    pub allow_legacy_sha1: bool,
    /// Custom: header holding the signature (default `X-Signature`).
    pub signature_header: String,
    /// Custom: HMAC digest (default sha256).
    pub algorithm: Algorithm,
    /// Custom: digest encoding (default hex).
    pub encoding: Encoding,
    /// Custom: text before the digest in the header (default `<algorithm>=`, so `sha256=`).
    pub prefix: String,
    /// Custom: JSON pointer to the event type in the body (default `/event_type`).
    pub event_type_field: String,
    /// Custom: header holding the delivery id used for dedup.
    pub delivery_id_header: Option<String>,
    /// Custom: JSON pointer to the delivery id in the body.
    pub delivery_id_field: Option<String>,
    /// Per-handler allowlist, replacing the global one when set.
    pub allowed_ips: Option<Vec<IpNet>>,
    /// Per-handler rate limit, replacing the global one when set (absent fields take the built-in
    /// defaults, not the global values).
    pub rate_limit: Option<RateLimit>,
}

impl Serialize for Handler {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let kind = self.kind;
        let mut out = s.serialize_struct("Handler", 20)?;
        out.serialize_field("enabled", &self.enabled)?;
        out.serialize_field("path", &self.path)?;
        out.serialize_field("kind", &kind)?;
        out.serialize_field("secrets", &self.secrets)?;
        out.serialize_field("verify", &self.verify)?;
        out.serialize_field("events", &self.events)?;
        out.serialize_field("response_type", &self.response_type)?;
        if matches!(kind, HandlerKind::Stripe | HandlerKind::Standard) {
            out.serialize_field("tolerance_seconds", &self.tolerance_seconds)?;
        }
        if kind == HandlerKind::Github {
            out.serialize_field("allow_legacy_sha1", &self.allow_legacy_sha1)?;
        }
        if kind == HandlerKind::Custom {
            out.serialize_field("signature_header", &self.signature_header)?;
            out.serialize_field("algorithm", &self.algorithm)?;
            out.serialize_field("encoding", &self.encoding)?;
            out.serialize_field("prefix", &self.prefix)?;
        }
        // A Standard Webhooks body without `type` falls back to the custom event-type pointer.
        if matches!(kind, HandlerKind::Custom | HandlerKind::Standard) {
            out.serialize_field("event_type_field", &self.event_type_field)?;
        }
        if kind == HandlerKind::Custom {
            out.serialize_field("delivery_id_header", &self.delivery_id_header)?;
            out.serialize_field("delivery_id_field", &self.delivery_id_field)?;
        }
        out.serialize_field("allowed_ips", &self.allowed_ips)?;
        out.serialize_field("rate_limit", &self.rate_limit)?;
        out.end()
    }
}

/// Signature scheme and payload format of a handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HandlerKind {
    /// `X-Hub-Signature-256`.
    Github,
    /// `Stripe-Signature`.
    Stripe,
    /// Configurable HMAC header, the spec's custom webhooks.
    Custom,
    /// Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
    Standard,
}

/// How a handler answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResponseType {
    /// `application/json`.
    Json,
    /// `text/plain`.
    Text,
}

/// HMAC digest of a custom handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// HMAC-SHA-1, for old senders only.
    Sha1,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-512.
    Sha512,
}

/// Encoding of a custom handler's digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Lower-case hexadecimal.
    Hex,
    /// Standard base64.
    Base64,
}

/// One agent events are delivered to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Agent {
    /// The key under `agents:`.
    #[serde(skip_serializing)]
    pub name: String,
    /// How it receives events, with the fields that kind needs.
    #[serde(flatten)]
    pub kind: AgentKind,
    /// Longest one attempt may take (default 30s for exec, 10s for http and log).
    #[serde(serialize_with = "serialize_duration")]
    pub timeout: Duration,
    /// Attempts in flight at once, at least 1 (default 4).
    pub concurrency: usize,
    /// Attempts before dead-lettering, at least 1 (default 10).
    pub max_attempts: u32,
    /// nats: where the agent starts reading the stream when it is new to it (default new).
    #[serde(skip_serializing_if = "AgentStart::is_new")]
    pub start: AgentStart,
}

/// Which stored events an agent added to a running NATS stream receives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentStart {
    /// Only events stored from the moment it is configured.
    #[default]
    New,
    /// Every event the stream still holds, then new ones.
    All,
}

impl AgentStart {
    /// Whether this is the default, [`AgentStart::New`].
    pub fn is_new(&self) -> bool {
        *self == Self::New
    }
}

/// How an agent receives events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum AgentKind {
    /// Runs a program (no shell) with the envelope on stdin.
    Exec {
        /// Program and arguments; never empty.
        command: Vec<String>,
    },
    /// POSTs the envelope, signed with Standard Webhooks headers.
    Http {
        /// `http://` or `https://` URL. Shown with its userinfo and query values redacted.
        #[serde(serialize_with = "crate::redact::serialize_url")]
        url: String,
        /// The `whsec_…` signing secret; `None` sends no signature.
        secret: Option<Secret>,
        /// Extra request headers; values are secrets because they often carry credentials.
        headers: BTreeMap<String, Secret>,
    },
    /// Writes the summary line to the log.
    Log,
}

/// Which events go to one agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    /// Handler names to match; empty matches all. Every name is a configured handler.
    pub handlers: Vec<String>,
    /// Event types to match; empty matches all.
    pub events: Vec<String>,
    /// The agent; always a key of [`Webhooks::agents`].
    pub agent: String,
}

/// Telemetry export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Telemetry {
    /// OpenTelemetry traces over OTLP.
    pub otlp: Otlp,
}

/// OTLP trace export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Otlp {
    /// Collector endpoint (gRPC); `None` exports nothing.
    pub endpoint: Option<String>,
    /// `service.name` resource attribute (default `clawlet-webhookd`).
    pub service_name: String,
}

/// Writes a duration the way the file spells it (`30s`, `7days`), so that `config check` prints
/// values a person can paste back.
fn serialize_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_duration(*d))
}
