use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The kind of sender a handler speaks to, which decides how its deliveries are parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// GitHub repository and organisation webhooks.
    Github,
    /// Stripe event webhooks.
    Stripe,
    /// Any sender that signs with a plain HMAC header, per the handler's configuration.
    Custom,
    /// Senders that follow the Standard Webhooks specification (Svix and others).
    Standard,
}

impl Source {
    /// The lower-case name used in configuration, logs, metrics and the envelope.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Github => "github",
            Self::Stripe => "stripe",
            Self::Custom => "custom",
            Self::Standard => "standard",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One accepted delivery, as agents receive it.
///
/// The JSON field names are a contract with agents and with `events list --json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    /// Unique, time-ordered identifier (UUIDv7) assigned on receipt.
    pub id: String,
    /// The configured handler name that received the delivery.
    pub handler: String,
    /// The sender kind.
    pub source: Source,
    /// Event type, such as `pull_request`, `invoice.paid` or `user.created`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// GitHub's `action` field; `None` for other senders.
    pub action: Option<String>,
    /// The sender's delivery identifier, used as the dedup key.
    pub delivery_id: String,
    /// When the delivery was received, RFC 3339 in UTC.
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: time::OffsetDateTime,
    /// A one-line summary a person reads.
    pub summary: String,
    /// The sender's own event headers (never signatures, cookies or authorization).
    pub headers: std::collections::BTreeMap<String, String>,
    /// The body's JSON exactly as received.
    pub payload: Box<RawValue>,
}

impl Envelope {
    /// The envelope's JSON form, as stored by the bus and handed to agents.
    pub fn to_json(&self) -> Result<Vec<u8>, crate::EnvelopeError> {
        serde_json::to_vec(self).map_err(crate::EnvelopeError::Encode)
    }

    /// Reads an envelope back from [`Envelope::to_json`]'s form.
    pub fn from_json(bytes: &[u8]) -> Result<Self, crate::EnvelopeError> {
        serde_json::from_slice(bytes).map_err(crate::EnvelopeError::Decode)
    }
}
