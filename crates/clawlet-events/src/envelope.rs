use std::fmt;

use bytes::Bytes;
use bytestring::ByteString;

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
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
    /// Slack Events API, interactivity and slash commands.
    Slack,
    /// Zoom event subscriptions.
    Zoom,
    /// Shopify webhooks.
    Shopify,
    /// GitLab project and group webhooks.
    Gitlab,
    /// Linear webhooks.
    Linear,
    /// Paddle Billing notifications.
    Paddle,
    /// Twilio status callbacks and incoming messages.
    Twilio,
    /// Square webhooks.
    Square,
    /// HubSpot webhooks (v3 signatures).
    Hubspot,
    /// PagerDuty v3 webhooks.
    Pagerduty,
    /// Mailgun event webhooks.
    Mailgun,
    /// Meta (Facebook, Instagram, WhatsApp) webhooks.
    Meta,
    /// Bitbucket Cloud webhooks.
    Bitbucket,
    /// Gitea webhooks.
    Gitea,
    /// Forgejo webhooks.
    Forgejo,
    /// Typeform webhooks.
    Typeform,
    /// Sentry integration webhooks.
    Sentry,
    /// Vercel webhooks.
    Vercel,
    /// Calendly webhooks.
    Calendly,
    /// Intercom webhooks.
    Intercom,
    /// Coinbase Commerce webhooks.
    Coinbase,
    /// X (Twitter) Account Activity webhooks.
    Twitter,
    /// Microsoft Graph change notifications.
    Msgraph,
    /// Dropbox webhooks.
    Dropbox,
    /// Discord interactions and webhook events.
    Discord,
    /// SendGrid (Twilio) event webhooks.
    Sendgrid,
}

impl Source {
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

    /// The lower-case name used in configuration, logs, metrics and the envelope.
    pub fn as_str(self) -> &'static str {
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
    /// The sub-type of the event where the sender has one (GitHub's and GitLab's `action`), else `None`.
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
    /// The body's JSON exactly as received. Always the last field of the JSON form.
    pub payload: Payload,
}

/// [`Envelope`]'s fields before the payload, borrowed, for [`Envelope::to_json`]. Kept in step
/// with `Envelope` by the test `to_json_matches_serde`.
#[derive(Serialize)]
struct Head<'a> {
    id: &'a str,
    handler: &'a str,
    source: Source,
    #[serde(rename = "type")]
    event_type: &'a str,
    action: &'a Option<String>,
    delivery_id: &'a str,
    #[serde(with = "time::serde::rfc3339")]
    received_at: time::OffsetDateTime,
    summary: &'a str,
    headers: &'a std::collections::BTreeMap<String, String>,
}

impl Envelope {
    /// The envelope's JSON form, as stored by the bus and handed to agents: the same as its
    /// `Serialize` output, with the payload copied in as it is rather than checked again.
    pub fn to_json(&self) -> Result<String, crate::EnvelopeError> {
        Ok(self.json_pieces()?.joined())
    }

    /// [`Envelope::to_json`]'s text in pieces: the fields before the payload, then the payload,
    /// which stays in the buffer it lives in (for a fresh delivery, the request body's), so that
    /// a large body is never copied to be stored or sent.
    pub fn json_pieces(&self) -> Result<EnvelopeJson, crate::EnvelopeError> {
        let head = Head {
            id: &self.id,
            handler: &self.handler,
            source: self.source,
            event_type: &self.event_type,
            action: &self.action,
            delivery_id: &self.delivery_id,
            received_at: self.received_at,
            summary: &self.summary,
            headers: &self.headers,
        };
        let mut json = serde_json::to_string(&head).map_err(crate::EnvelopeError::Encode)?;
        // `{...}` becomes `{...,"payload":`, to be followed by the payload and `}`.
        json.pop();
        json.push_str(r#","payload":"#);
        Ok(EnvelopeJson::Pieces {
            head: ByteString::from(json),
            payload: self.payload.0.clone(),
        })
    }

    /// Reads an envelope back from [`Envelope::to_json`]'s form.
    pub fn from_json(bytes: &[u8]) -> Result<Self, crate::EnvelopeError> {
        serde_json::from_slice(bytes).map_err(crate::EnvelopeError::Decode)
    }
}

/// An envelope's JSON text (see [`Envelope::to_json`]), whole or in the pieces it is made of.
///
/// The pieces are the fields before the payload (`{...,"payload":`), the payload, and the closing
/// `}`: a writer that takes them one after the other (a journal's blob, a pipe) never needs the
/// payload copied next to the rest. Small envelopes are worth joining once ([`EnvelopeJson::join`]):
/// one buffer is what compression, a bound parameter or an HTTP body wants.
#[derive(Clone)]
pub enum EnvelopeJson {
    /// The text in one buffer.
    Whole(ByteString),
    /// The text before the payload, and the payload; a `}` follows them.
    Pieces {
        /// `{...,"payload":`.
        head: ByteString,
        /// The payload's JSON.
        payload: ByteString,
    },
}

impl EnvelopeJson {
    /// The text in one buffer, copied once if it is in pieces.
    pub fn join(self) -> Self {
        match self {
            whole @ Self::Whole(_) => whole,
            pieces => Self::Whole(ByteString::from(pieces.joined())),
        }
    }

    /// The length of the text in bytes.
    pub fn len(&self) -> usize {
        match self {
            Self::Whole(text) => text.len(),
            Self::Pieces { head, payload } => head.len() + payload.len() + 1,
        }
    }

    /// Never true: an envelope's JSON is at least `{}`. Here because `len` is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text as one string: borrowed when whole, joined (a copy) when in pieces.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Self::Whole(text) => std::borrow::Cow::Borrowed(text),
            pieces => std::borrow::Cow::Owned(pieces.joined()),
        }
    }

    /// The text as `Bytes`: shared, without a copy, when whole; joined when in pieces.
    pub fn to_bytes(&self) -> Bytes {
        match self {
            Self::Whole(text) => text.as_bytes().clone(),
            pieces => Bytes::from(pieces.joined()),
        }
    }

    /// The text in a string of its own, allocated once at its length.
    fn joined(&self) -> String {
        let mut text = String::with_capacity(self.len());
        match self {
            Self::Whole(whole) => text.push_str(whole),
            Self::Pieces { head, payload } => {
                text.push_str(head);
                text.push_str(payload);
                text.push('}');
            }
        }
        text
    }

    /// The pieces to write one after the other: one when whole, three when not.
    pub fn pieces(&self) -> impl Iterator<Item = &[u8]> {
        let (first, payload, close): (&[u8], &[u8], &[u8]) = match self {
            Self::Whole(text) => (text.as_bytes(), b"", b""),
            Self::Pieces { head, payload } => (head.as_bytes(), payload.as_bytes(), b"}"),
        };
        [first, payload, close]
            .into_iter()
            .filter(|piece| !piece.is_empty())
    }
}

impl fmt::Display for EnvelopeJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Whole(text) => f.write_str(text),
            Self::Pieces { head, payload } => {
                f.write_str(head)?;
                f.write_str(payload)?;
                f.write_str("}")
            }
        }
    }
}

impl PartialEq for EnvelopeJson {
    /// The same text, however it is held.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.text() == other.text()
    }
}

impl Eq for EnvelopeJson {}

impl fmt::Debug for EnvelopeJson {
    /// The length only: the text is a whole delivery, too long for a debug line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvelopeJson")
            .field("len", &self.len())
            .field("whole", &matches!(self, Self::Whole(_)))
            .finish()
    }
}

impl From<String> for EnvelopeJson {
    /// A whole text, taken without a copy.
    fn from(text: String) -> Self {
        Self::Whole(ByteString::from(text))
    }
}

/// A delivery's body: its JSON text exactly as received (for a form-encoded GitHub delivery, the
/// decoded `payload` field), without surrounding whitespace. Always well-formed JSON: it is checked
/// when made, so that it can be copied into an envelope's JSON without being parsed again.
///
/// It shares the buffer it was cut from where it can: the payload of a fresh delivery is the
/// request body itself, not a copy of it.
#[derive(Clone, PartialEq, Eq)]
pub struct Payload(ByteString);

impl Payload {
    /// Checks that `json` is one JSON value.
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str::<IgnoredAny>(json)?;
        Ok(Self::checked(json))
    }

    /// `json`, which the caller parsed completely, copied.
    pub(crate) fn checked(json: &str) -> Self {
        Self(ByteString::from(json.trim_matches(is_json_whitespace)))
    }

    /// `json`, which the caller parsed completely: a slice of `whole` when it lies inside it,
    /// else a copy.
    pub(crate) fn within(whole: &ByteString, json: &str) -> Self {
        let json = json.trim_matches(is_json_whitespace);
        let outer = whole.as_bytes().as_ptr_range();
        let inner = json.as_bytes().as_ptr_range();
        if outer.start <= inner.start && inner.end <= outer.end {
            Self(whole.slice_ref(json))
        } else {
            Self(ByteString::from(json))
        }
    }

    /// JSON `null`: what an envelope holds once its payload lives elsewhere.
    pub fn null() -> Self {
        Self(ByteString::from_static("null"))
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        &self.0
    }
}

fn is_json_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Payload").field(&self.get()).finish()
    }
}

impl Serialize for Payload {
    /// serde_json writes the text as it is; other formats get the value it spells.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw =
            RawValue::from_string(self.get().to_owned()).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        let text: Box<str> = raw.into();
        Ok(Self(ByteString::from(String::from(text))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(payload: &str) -> Envelope {
        Envelope {
            id: "0190a5e4-0000-7000-8000-000000000000".to_owned(),
            handler: "gh \"main\"".to_owned(),
            source: Source::Github,
            event_type: "push".to_owned(),
            action: Some("opened".to_owned()),
            delivery_id: "d-1".to_owned(),
            received_at: time::OffsetDateTime::UNIX_EPOCH,
            summary: "é ✓ \u{1F600}".to_owned(),
            headers: [("x-github-event".to_owned(), "push".to_owned())].into(),
            payload: Payload::from_json(payload).unwrap(),
        }
    }

    #[test]
    fn to_json_matches_serde() {
        for payload in [
            "{}",
            r#"{"a":[1,2.5e3,null,true],"b":{"c":"\u00e9\n"}}"#,
            "  {\"spaced\" : [ 1 , 2 ] }\n",
            "null",
        ] {
            let e = envelope(payload);
            let json = e.to_json().unwrap();
            assert_eq!(json, serde_json::to_string(&e).unwrap(), "{payload}");
            let back = Envelope::from_json(json.as_bytes()).unwrap();
            assert_eq!(back.payload.get(), payload.trim(), "{payload}");
            let mut no_action = e.clone();
            no_action.action = None;
            assert_eq!(
                no_action.to_json().unwrap(),
                serde_json::to_string(&no_action).unwrap()
            );
        }
    }

    #[test]
    fn the_pieces_spell_the_same_text_as_to_json() {
        for payload in ["{}", r#"{"a":"\u00e9","b":[1,2]}"#, "null"] {
            let e = envelope(payload);
            let text = e.to_json().unwrap();
            let pieces = e.json_pieces().unwrap();
            assert_eq!(pieces.pieces().count(), 3, "{payload}");
            let joined: Vec<u8> = pieces.pieces().flatten().copied().collect();
            assert_eq!(joined, text.as_bytes(), "{payload}");
            assert_eq!(pieces.len(), text.len(), "{payload}");
            assert_eq!(pieces.text(), text, "{payload}");
            assert_eq!(&pieces.to_bytes()[..], text.as_bytes(), "{payload}");
            let whole = pieces.clone().join();
            assert_eq!(whole.pieces().collect::<Vec<_>>(), [text.as_bytes()]);
            assert_eq!(whole.len(), text.len());
            assert_eq!(whole, EnvelopeJson::from(text.clone()));
            assert!(!whole.is_empty());
            // Shared, not copied: two calls hand out the same buffer.
            assert_eq!(whole.to_bytes().as_ptr(), whole.to_bytes().as_ptr());
        }
    }

    #[test]
    fn a_payload_is_checked_when_made() {
        for bad in ["", "{", "{} {}", "[1,]", "nul"] {
            assert!(Payload::from_json(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Payload::from_json(" \t{}\r\n").unwrap().get(), "{}");
        assert_eq!(Payload::null().get(), "null");
    }
}
