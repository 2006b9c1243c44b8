//! Senders whose event type, action and delivery id sit at fixed places (a header or a JSON
//! pointer), handed over as data in a [`Layout`]; and one-line summaries for their common events.
//!
//! Where each sender puts those fields is configuration of the handler, not code here: the
//! binary builds each preset's `Layout` and this module only reads it.

use std::borrow::Cow;

use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::headers::{self, Headers};
use crate::text::{MAX_FIELD, clean};
use crate::{ParseError, Source, pointer};

/// Where a field of a delivery is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A request header, by name in any case.
    Header(String),
    /// A JSON pointer (RFC 6901) into the body: a string, or a number taken as written.
    Pointer(String),
}

/// Where one preset's deliveries carry their event type, action and delivery id, and what shape
/// their bodies have.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Layout {
    /// Places tried in order for the event type.
    pub event_type: Vec<Place>,
    /// The event type when no place holds one (senders whose body has no type field).
    pub fallback_type: String,
    /// Places tried in order for the action (a sub-type, such as `opened`).
    pub action: Vec<Place>,
    /// Places tried in order for the delivery id; when none holds one, the hex SHA-256 of the
    /// body is the id, so a resend of the same bytes is still deduplicated.
    pub delivery_id: Vec<Place>,
    /// Whether a form-encoded body is taken: its `payload` field when it has one (JSON text),
    /// else its fields as a JSON object of strings.
    pub form: bool,
    /// Whether the body may be a JSON array (senders that batch events) besides an object, read
    /// by [`parse`](crate::parse) as one event.
    pub array: bool,
    /// Whether an array body is a batch whose elements are events of their own: each element is
    /// read at these places, relative to the element, into an envelope of its own by
    /// [`parse_batch`](crate::parse_batch). [`parse`](crate::parse) takes an array body only
    /// when [`Layout::array`] is set as well.
    pub split: bool,
    /// Headers copied into the envelope.
    pub kept_headers: Vec<String>,
    /// When no place holds a delivery id, take a fresh one rather than the body's hash: for
    /// senders that send the same bytes for two different changes (a bare "something changed"
    /// notice), where a hash would drop the second as a duplicate.
    pub fresh_id: bool,
}

impl Layout {
    /// Checks every JSON pointer, so that a mistake is reported at start-up.
    pub fn validate(&self) -> Result<(), ParseError> {
        for place in self
            .event_type
            .iter()
            .chain(&self.action)
            .chain(&self.delivery_id)
        {
            if let Place::Pointer(p) = place {
                pointer::validate(p)?;
            }
        }
        Ok(())
    }
}

/// The first text found at `places`; `None` when none holds one.
pub(crate) fn first<'a>(
    places: &[Place],
    body: &'a RawValue,
    headers: Headers<'a>,
) -> Result<Option<Cow<'a, str>>, ParseError> {
    for place in places {
        let found = match place {
            Place::Header(name) => headers::one(headers, name)?.map(Cow::Borrowed),
            Place::Pointer(p) => pointer::id_at(body, p)?,
        };
        if let Some(text) = found.filter(|t| !t.trim().is_empty()) {
            return Ok(Some(text));
        }
    }
    Ok(None)
}

/// Event type, action and delivery id of a preset delivery.
pub(crate) struct Read<'a> {
    pub(crate) event_type: Cow<'a, str>,
    pub(crate) action: Option<Cow<'a, str>>,
    pub(crate) delivery_id: Cow<'a, str>,
}

pub(crate) fn read<'a>(
    layout: &Layout,
    raw_body: &[u8],
    body: &'a RawValue,
    headers: Headers<'a>,
) -> Result<Read<'a>, ParseError> {
    let event_type = match first(&layout.event_type, body, headers)? {
        Some(t) => t,
        None if !layout.fallback_type.is_empty() => Cow::Owned(layout.fallback_type.clone()),
        None => return Err(ParseError::MissingEventType),
    };
    let action = first(&layout.action, body, headers)?;
    let delivery_id = match first(&layout.delivery_id, body, headers)? {
        Some(id) => id,
        None if layout.fresh_id => Cow::Owned(uuid::Uuid::now_v7().to_string()),
        None => Cow::Owned(hex::encode(Sha256::digest(raw_body))),
    };
    Ok(Read {
        event_type,
        action,
        delivery_id,
    })
}

/// A provider's name as people write it, and where its common events name what they are about.
struct Described {
    name: &'static str,
    subjects: &'static [&'static str],
}

/// One row per preset: the summary reads `<name> <type>[ <action>]: <subject>` with the first
/// subject found, so that a person scanning `events list` sees what each event is about.
fn described(source: Source) -> Described {
    let (name, subjects): (&'static str, &'static [&'static str]) = match source {
        Source::Slack => ("Slack", &["/event/channel", "/channel/name", "/command"]),
        Source::Zoom => ("Zoom", &["/payload/object/topic", "/payload/object/id"]),
        Source::Shopify => ("Shopify", &["/name", "/title", "/id"]),
        Source::Gitlab => ("GitLab", &["/project/path_with_namespace"]),
        Source::Linear => ("Linear", &["/data/identifier", "/data/name", "/url"]),
        Source::Paddle => ("Paddle", &["/data/id"]),
        Source::Twilio => ("Twilio", &["/MessageSid", "/CallSid", "/Sid"]),
        Source::Square => ("Square", &["/data/id"]),
        Source::Hubspot => ("HubSpot", &["/0/objectId"]),
        Source::Pagerduty => ("PagerDuty", &["/event/data/title", "/event/data/id"]),
        Source::Mailgun => ("Mailgun", &["/event-data/id"]),
        Source::Meta => ("Meta", &["/entry/0/id"]),
        Source::Bitbucket => ("Bitbucket", &["/repository/full_name"]),
        Source::Gitea => ("Gitea", &["/repository/full_name"]),
        Source::Forgejo => ("Forgejo", &["/repository/full_name"]),
        Source::Typeform => (
            "Typeform",
            &["/form_response/definition/title", "/form_response/form_id"],
        ),
        Source::Sentry => (
            "Sentry",
            &[
                "/data/issue/title",
                "/data/error/title",
                "/data/alert/title",
            ],
        ),
        Source::Vercel => ("Vercel", &["/payload/deployment/url", "/payload/name"]),
        Source::Calendly => (
            "Calendly",
            &["/payload/scheduled_event/name", "/payload/name"],
        ),
        Source::Intercom => ("Intercom", &["/data/item/id"]),
        Source::Coinbase => ("Coinbase", &["/event/data/code", "/event/data/name"]),
        Source::Twitter => ("X", &["/for_user_id"]),
        Source::Msgraph => ("Microsoft Graph", &["/value/0/resource"]),
        Source::Dropbox => ("Dropbox", &[]),
        Source::Discord => ("Discord", &["/data/name", "/event/data/guild/name"]),
        Source::Sendgrid => ("SendGrid", &["/sg_message_id"]),
        Source::Github | Source::Stripe | Source::Custom | Source::Standard => ("", &[]),
    };
    Described { name, subjects }
}

/// The summary of a preset delivery.
pub(crate) fn summary(
    source: Source,
    event_type: &str,
    action: Option<&str>,
    body: &RawValue,
    handler: &str,
) -> String {
    let d = described(source);
    let mut out = format!("{} {}", d.name, clean(event_type, MAX_FIELD));
    if let Some(action) = action {
        out.push(' ');
        out.push_str(&clean(action, MAX_FIELD));
    }
    let subject = d.subjects.iter().find_map(|p| {
        pointer::id_at(body, p)
            .ok()
            .flatten()
            .filter(|s| !s.is_empty())
    });
    match subject {
        Some(subject) => {
            out.push_str(": ");
            out.push_str(&clean(&subject, MAX_FIELD));
        }
        None => {
            out.push_str(" received by ");
            out.push_str(&clean(handler, MAX_FIELD));
        }
    }
    out
}

#[cfg(test)]
mod tests;
