//! The file's shape as serde sees it: lenient types (strings for enums and durations, options for
//! name-dependent defaults) so that validation, not deserialisation, reports the problems, all at once.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct RawConfig {
    pub(crate) webhooks: RawWebhooks,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct RawWebhooks {
    pub(crate) enabled: bool,
    pub(crate) host: String,
    // Signed and wide so that `port: 70000` or `-1` gets the config's own message.
    pub(crate) port: i64,
    pub(crate) rate_limit: RawRateLimit,
    pub(crate) ssl: RawSsl,
    pub(crate) allowed_ips: Vec<String>,
    pub(crate) trusted_proxies: Vec<String>,
    pub(crate) max_body_bytes: u64,
    pub(crate) logging: RawLogging,
    pub(crate) limits: RawLimits,
    pub(crate) queue: RawQueue,
    pub(crate) handlers: BTreeMap<String, RawHandler>,
    pub(crate) agents: BTreeMap<String, RawAgent>,
    pub(crate) routes: Vec<RawRoute>,
    pub(crate) telemetry: RawTelemetry,
    pub(crate) admin: RawAdmin,
}

/// `webhooks.admin`: the operator console's listener. `token` stays `None` when the key is
/// absent, so that resolution can tell "not written" (read `CLAWLET_ADMIN_TOKEN`) from `none`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct RawAdmin {
    pub(crate) enabled: bool,
    pub(crate) host: String,
    pub(crate) port: i64,
    pub(crate) token: Option<String>,
}

impl Default for RawAdmin {
    fn default() -> Self {
        Self {
            enabled: false,
            host: "127.0.0.1".to_owned(),
            port: 8081,
            token: None,
        }
    }
}

impl Default for RawWebhooks {
    fn default() -> Self {
        Self {
            enabled: true,
            host: "0.0.0.0".to_owned(),
            port: 8080,
            rate_limit: RawRateLimit::default(),
            ssl: RawSsl::default(),
            allowed_ips: Vec::new(),
            trusted_proxies: Vec::new(),
            // GitHub caps payloads at 25 MiB.
            max_body_bytes: 25 * 1024 * 1024,
            logging: RawLogging::default(),
            limits: RawLimits::default(),
            queue: RawQueue::default(),
            handlers: BTreeMap::new(),
            agents: BTreeMap::new(),
            routes: Vec::new(),
            telemetry: RawTelemetry::default(),
            admin: RawAdmin::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct RawRateLimit {
    pub(crate) enabled: bool,
    pub(crate) max_requests: u32,
    pub(crate) window_seconds: u64,
    /// Read at the global level only (the handler-level schema has no such key); wide and signed
    /// so that `300` or `-1` gets the config's own message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ipv6_prefix: Option<i64>,
}

impl Default for RawRateLimit {
    fn default() -> Self {
        Self {
            enabled: true,
            max_requests: 100,
            window_seconds: 60,
            ipv6_prefix: None,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct RawSsl {
    pub(crate) enabled: bool,
    pub(crate) cert: Option<String>,
    pub(crate) key: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct RawLogging {
    pub(crate) enabled: bool,
    pub(crate) level: String,
    pub(crate) include_headers: bool,
    pub(crate) include_payload: bool,
    pub(crate) format: String,
}

impl Default for RawLogging {
    fn default() -> Self {
        Self {
            enabled: true,
            level: "INFO".to_owned(),
            include_headers: false,
            include_payload: false,
            format: "human".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct RawLimits {
    pub(crate) header_read_timeout: String,
    pub(crate) request_timeout: String,
    pub(crate) max_connections: usize,
    pub(crate) max_header_bytes: usize,
    /// `None`: derived from `max_body_bytes` (see `resolve`).
    pub(crate) max_inflight_body_bytes: Option<u64>,
}

impl Default for RawLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: "10s".to_owned(),
            request_timeout: "30s".to_owned(),
            max_connections: 10_000,
            max_header_bytes: 65_536,
            max_inflight_body_bytes: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct RawQueue {
    pub(crate) backend: String,
    pub(crate) path: String,
    pub(crate) dedup_window: String,
    pub(crate) max_pending: u64,
    pub(crate) retention: String,
    pub(crate) nats: RawNats,
}

impl Default for RawQueue {
    fn default() -> Self {
        Self {
            backend: "sqlite".to_owned(),
            path: "~/.clawlet/webhooks.db".to_owned(),
            // Stripe retries for up to three days.
            dedup_window: "72h".to_owned(),
            max_pending: 100_000,
            retention: "7d".to_owned(),
            nats: RawNats::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct RawNats {
    pub(crate) url: String,
    pub(crate) stream: String,
    pub(crate) duplicate_window: String,
    pub(crate) replicas: usize,
    pub(crate) max_bytes: Option<u64>,
}

impl Default for RawNats {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".to_owned(),
            stream: "CLAWLET_WEBHOOKS".to_owned(),
            duplicate_window: "24h".to_owned(),
            replicas: 1,
            max_bytes: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct RawHandler {
    pub(crate) enabled: bool,
    pub(crate) path: Option<String>,
    pub(crate) kind: Option<String>,
    pub(crate) secret: Option<String>,
    pub(crate) secrets: Option<Vec<String>>,
    pub(crate) verify: bool,
    pub(crate) events: Vec<String>,
    pub(crate) response_type: String,
    pub(crate) tolerance_seconds: Option<u64>,
    pub(crate) allow_legacy_sha1: bool,
    pub(crate) signature_header: String,
    pub(crate) algorithm: String,
    pub(crate) encoding: String,
    pub(crate) prefix: Option<String>,
    pub(crate) event_type_field: String,
    pub(crate) delivery_id_header: Option<String>,
    pub(crate) delivery_id_field: Option<String>,
    pub(crate) signature: Option<RawSignature>,
    pub(crate) public_key: Option<String>,
    pub(crate) public_url: Option<String>,
    pub(crate) verify_token: Option<String>,
    pub(crate) client_state: Option<String>,
    pub(crate) allowed_ips: Option<Vec<String>>,
    pub(crate) rate_limit: Option<RawRateLimit>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct RawSignature {
    pub(crate) header: Option<String>,
    pub(crate) prefix: Option<String>,
    pub(crate) encoding: Option<String>,
    pub(crate) algorithm: Option<String>,
    pub(crate) signed_payload: Option<String>,
    pub(crate) timestamp_header: Option<String>,
    pub(crate) timestamp_unit: Option<String>,
    pub(crate) id_header: Option<String>,
    pub(crate) separator: Option<String>,
}

impl Default for RawHandler {
    fn default() -> Self {
        Self {
            enabled: true,
            path: None,
            kind: None,
            secret: None,
            secrets: None,
            verify: true,
            events: Vec::new(),
            response_type: "json".to_owned(),
            tolerance_seconds: None,
            allow_legacy_sha1: false,
            signature_header: "X-Signature".to_owned(),
            algorithm: "sha256".to_owned(),
            encoding: "hex".to_owned(),
            prefix: None,
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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct RawAgent {
    pub(crate) kind: Option<String>,
    pub(crate) command: Option<Vec<String>>,
    pub(crate) url: Option<String>,
    pub(crate) secret: Option<String>,
    pub(crate) headers: Option<BTreeMap<String, String>>,
    pub(crate) timeout: Option<String>,
    pub(crate) concurrency: usize,
    pub(crate) max_attempts: u32,
    pub(crate) start: Option<String>,
}

impl Default for RawAgent {
    fn default() -> Self {
        Self {
            kind: None,
            command: None,
            url: None,
            secret: None,
            headers: None,
            timeout: None,
            concurrency: 4,
            max_attempts: 10,
            start: None,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct RawRoute {
    pub(crate) handlers: Vec<String>,
    pub(crate) events: Vec<String>,
    pub(crate) agent: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct RawTelemetry {
    pub(crate) otlp: RawOtlp,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct RawOtlp {
    pub(crate) endpoint: Option<String>,
    pub(crate) service_name: String,
}

impl Default for RawOtlp {
    fn default() -> Self {
        Self {
            endpoint: None,
            service_name: "clawlet-webhookd".to_owned(),
        }
    }
}
