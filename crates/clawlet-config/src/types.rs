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
    /// The operator console's listener.
    pub admin: Admin,
}

/// `webhooks.admin`: the operator console, on a listener of its own (never the webhook port).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Admin {
    /// Whether the console is served (default false).
    pub enabled: bool,
    /// Address to listen on (default `127.0.0.1`).
    pub host: String,
    /// Port to listen on (default 8081; 0 for any free port).
    pub port: u16,
    /// The token that opens the console: `webhooks.admin.token`, else `CLAWLET_ADMIN_TOKEN`.
    /// `None` when the file says `token: none` (allowed only on a loopback address), or when
    /// the console is disabled and no token is given.
    pub token: Option<Secret>,
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
    /// Largest age (and lead) of a signed timestamp in seconds, for every kind whose sender signs
    /// one (default [`HandlerKind::default_tolerance_seconds`]; 0 disables the check).
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
    /// Custom: a declarative signature (`signature:`), replacing `signature_header`,
    /// `algorithm`, `encoding` and `prefix`.
    pub signature: Option<Signature>,
    /// Discord (hex), SendGrid (base64 SPKI), Standard Webhooks (`whpk_…`), or a custom
    /// signature with an Ed25519 or ECDSA algorithm: the sender's public key.
    pub public_key: Option<String>,
    /// Twilio, Square, HubSpot, or a custom signature over `{url}`: the URL the sender posts to,
    /// exactly as configured there (it is signed).
    pub public_url: Option<String>,
    /// Meta: the token its subscribe request must carry.
    pub verify_token: Option<Secret>,
    /// Microsoft Graph: the `clientState` each notification must carry.
    pub client_state: Option<Secret>,
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
        if kind.needs().timestamp
            || self
                .signature
                .as_ref()
                .is_some_and(|s| s.timestamp_header.is_some())
        {
            out.serialize_field("tolerance_seconds", &self.tolerance_seconds)?;
        }
        if self.public_key.is_some() {
            out.serialize_field("public_key", &self.public_key)?;
        }
        if self.public_url.is_some() {
            out.serialize_field("public_url", &self.public_url)?;
        }
        if self.verify_token.is_some() {
            out.serialize_field("verify_token", &self.verify_token)?;
        }
        if self.client_state.is_some() {
            out.serialize_field("client_state", &self.client_state)?;
        }
        if kind == HandlerKind::Github {
            out.serialize_field("allow_legacy_sha1", &self.allow_legacy_sha1)?;
        }
        if kind == HandlerKind::Custom && self.signature.is_some() {
            out.serialize_field("signature", &self.signature)?;
        } else if kind == HandlerKind::Custom {
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
    /// Configurable HMAC header, the spec's custom webhooks, or a `signature:` block.
    Custom,
    /// Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`), with a
    /// `whsec_` secret or a `whpk_` Ed25519 public key.
    Standard,
    /// `X-Slack-Signature` over `v0:<timestamp>:<body>`; answers `url_verification`.
    Slack,
    /// `x-zm-signature` over `v0:<timestamp>:<body>`; answers `endpoint.url_validation`.
    Zoom,
    /// `X-Shopify-Hmac-Sha256`, base64 over the body.
    Shopify,
    /// `X-Gitlab-Token` equal to the secret.
    Gitlab,
    /// `Linear-Signature` over the body; `webhookTimestamp` in the body.
    Linear,
    /// `Paddle-Signature: ts=…;h1=…`.
    Paddle,
    /// `X-Twilio-Signature`, HMAC-SHA1 over the public URL and the form; needs `public_url`.
    Twilio,
    /// `x-square-hmacsha256-signature` over the public URL and the body; needs `public_url`.
    Square,
    /// `X-HubSpot-Signature-v3` over method, public URL, body and timestamp; needs `public_url`.
    Hubspot,
    /// `X-PagerDuty-Signature: v1=…`.
    Pagerduty,
    /// the body's `signature` object; each token accepted once.
    Mailgun,
    /// `X-Hub-Signature-256` (Facebook, Instagram, WhatsApp); answers the subscribe GET; needs `verify_token`.
    Meta,
    /// `X-Hub-Signature: sha256=…`.
    Bitbucket,
    /// `X-Gitea-Signature`.
    Gitea,
    /// `X-Forgejo-Signature`.
    Forgejo,
    /// `Typeform-Signature: sha256=<base64>`.
    Typeform,
    /// `Sentry-Hook-Signature`.
    Sentry,
    /// `x-vercel-signature`, HMAC-SHA1.
    Vercel,
    /// `Calendly-Webhook-Signature: t=…,v1=…`.
    Calendly,
    /// `X-Hub-Signature: sha1=…`.
    Intercom,
    /// `X-CC-Webhook-Signature`.
    Coinbase,
    /// `x-twitter-webhooks-signature`; answers the CRC GET.
    Twitter,
    /// Microsoft Graph: `clientState` in each notification; answers `validationToken`; needs `client_state`.
    Msgraph,
    /// `X-Dropbox-Signature`; answers the `challenge` GET.
    Dropbox,
    /// Ed25519 over `<timestamp><body>`; answers PING; needs `public_key` (hex).
    Discord,
    /// ECDSA P-256 over `<timestamp><body>`; needs `public_key` (base64 SPKI).
    Sendgrid,
}

/// What a handler of some kind must be configured with to verify its deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// `secret:` or `secrets:`.
    Secret,
    /// `public_key:`.
    PublicKey,
    /// `client_state:`.
    ClientState,
    /// `secret:`/`secrets:`, or `public_key:`.
    SecretOrPublicKey,
}

/// The keys a kind reads besides the common ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// What verifies a delivery.
    pub credential: Credential,
    /// The URL the sender posts to, which it signs (`public_url:`).
    pub public_url: bool,
    /// The token the sender echoes when it subscribes (`verify_token:`).
    pub verify_token: bool,
    /// Whether deliveries carry a signed timestamp, checked against `tolerance_seconds`.
    pub timestamp: bool,
}

impl HandlerKind {
    /// Every kind, in the order the documentation lists them.
    pub const ALL: [Self; 30] = [
        Self::Github,
        Self::Stripe,
        Self::Custom,
        Self::Standard,
        Self::Slack,
        Self::Zoom,
        Self::Shopify,
        Self::Gitlab,
        Self::Linear,
        Self::Paddle,
        Self::Twilio,
        Self::Square,
        Self::Hubspot,
        Self::Pagerduty,
        Self::Mailgun,
        Self::Meta,
        Self::Bitbucket,
        Self::Gitea,
        Self::Forgejo,
        Self::Typeform,
        Self::Sentry,
        Self::Vercel,
        Self::Calendly,
        Self::Intercom,
        Self::Coinbase,
        Self::Twitter,
        Self::Msgraph,
        Self::Dropbox,
        Self::Discord,
        Self::Sendgrid,
    ];

    /// The name written after `kind:`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Github => "github",
            Self::Stripe => "stripe",
            Self::Custom => "custom",
            Self::Standard => "standard",
            Self::Slack => "slack",
            Self::Zoom => "zoom",
            Self::Shopify => "shopify",
            Self::Gitlab => "gitlab",
            Self::Linear => "linear",
            Self::Paddle => "paddle",
            Self::Twilio => "twilio",
            Self::Square => "square",
            Self::Hubspot => "hubspot",
            Self::Pagerduty => "pagerduty",
            Self::Mailgun => "mailgun",
            Self::Meta => "meta",
            Self::Bitbucket => "bitbucket",
            Self::Gitea => "gitea",
            Self::Forgejo => "forgejo",
            Self::Typeform => "typeform",
            Self::Sentry => "sentry",
            Self::Vercel => "vercel",
            Self::Calendly => "calendly",
            Self::Intercom => "intercom",
            Self::Coinbase => "coinbase",
            Self::Twitter => "twitter",
            Self::Msgraph => "msgraph",
            Self::Dropbox => "dropbox",
            Self::Discord => "discord",
            Self::Sendgrid => "sendgrid",
        }
    }

    /// The `tolerance_seconds` a handler of this kind gets when it sets none: the window the
    /// sender's own SDK allows (Linear a minute, Paddle five seconds, Calendly three minutes),
    /// five minutes elsewhere. The daemon checks that these match its presets.
    #[must_use]
    pub fn default_tolerance_seconds(self) -> u64 {
        match self {
            Self::Linear => 60,
            Self::Paddle => 5,
            Self::Calendly => 180,
            _ => 300,
        }
    }

    /// The kind written `name` after `kind:`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The keys this kind reads.
    #[must_use]
    pub fn needs(self) -> Needs {
        let credential = match self {
            Self::Standard => Credential::SecretOrPublicKey,
            Self::Discord | Self::Sendgrid => Credential::PublicKey,
            Self::Msgraph => Credential::ClientState,
            _ => Credential::Secret,
        };
        Needs {
            credential,
            public_url: matches!(self, Self::Twilio | Self::Square | Self::Hubspot),
            verify_token: self == Self::Meta,
            timestamp: matches!(
                self,
                Self::Stripe
                    | Self::Standard
                    | Self::Slack
                    | Self::Zoom
                    | Self::Linear
                    | Self::Paddle
                    | Self::Hubspot
                    | Self::Mailgun
                    | Self::Calendly
                    | Self::Discord
                    | Self::Sendgrid
            ),
        }
    }
}

/// A custom handler's declarative signature (`signature:`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Signature {
    /// The header holding the signature.
    pub header: String,
    /// Text before the signature (such as `v1=`); may be empty.
    pub prefix: String,
    /// How the signature is written.
    pub encoding: Encoding,
    /// What signs.
    pub algorithm: SignatureAlgorithm,
    /// What is signed: a template over `{body}`, `{timestamp}`, `{id}`, `{url}`, `{method}` and
    /// `{header:Name}` (default `{body}`).
    pub signed_payload: String,
    /// The header holding the signed timestamp; its age is checked against `tolerance_seconds`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp_header: Option<String>,
    /// Whether that timestamp counts seconds or milliseconds.
    pub timestamp_unit: TimestampUnit,
    /// The header holding the delivery id that `{id}` stands for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_header: Option<String>,
    /// What separates several signatures in the header (a rotating sender), if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub separator: Option<String>,
}

/// What signs a custom declarative signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureAlgorithm {
    /// HMAC-SHA-1 with the handler's secret.
    HmacSha1,
    /// HMAC-SHA-256 with the handler's secret.
    HmacSha256,
    /// HMAC-SHA-512 with the handler's secret.
    HmacSha512,
    /// Ed25519 with the handler's `public_key` (hex or base64).
    Ed25519,
    /// ECDSA P-256 with SHA-256, DER signature, with the handler's `public_key` (base64 SPKI).
    EcdsaP256,
}

impl SignatureAlgorithm {
    /// Whether the algorithm checks with a public key rather than a shared secret.
    #[must_use]
    pub fn is_public_key(self) -> bool {
        matches!(self, Self::Ed25519 | Self::EcdsaP256)
    }
}

/// The unit of a signed timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TimestampUnit {
    /// Seconds since the Unix epoch.
    Seconds,
    /// Milliseconds since the Unix epoch.
    Milliseconds,
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
