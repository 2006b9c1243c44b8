//! Provider event models, the event envelope handed to agents, and one-line summaries.
//!
//! [`parse`] turns a verified delivery (its handler, headers and body) into an [`Envelope`]: the
//! event type, GitHub's action, the delivery id used as the dedup key, a summary a person reads,
//! the provider's own event headers, and the body's JSON byte for byte. It reads only the fields it
//! needs, through borrowed partial views, and never builds a whole JSON tree.
//!
//! This crate must never do I/O, never see a body its caller has not verified, and never copy a
//! signature, cookie or authorization header into an envelope. Malformed input is an error, never
//! a panic; an authenticated body whose fields have an unexpected shape still gets a generic summary
//! rather than a refusal, since refusing would only make the sender retry it.
//!
//! ```
//! use clawlet_events::{parse, CustomOptions, Request, Source};
//!
//! let body = bytes::Bytes::from_static(br#"{"event_type":"user.created","timestamp":"2024-01-15T10:30:00Z","data":{"user_id":"123"}}"#);
//! let headers: &[(&str, &[u8])] = &[("Content-Type", b"application/json"), ("X-Request-Id", b"req-1")];
//! let custom = CustomOptions { delivery_id_header: Some("X-Request-Id".into()), ..CustomOptions::default() };
//! let req = Request {
//!     handler: "my_service",
//!     source: Source::Custom,
//!     headers,
//!     body: &body,
//!     received_at: time::OffsetDateTime::UNIX_EPOCH,
//!     custom: &custom,
//! };
//! let envelope = parse(&req)?;
//! assert_eq!(envelope.event_type, "user.created");
//! assert_eq!(envelope.delivery_id, "req-1");
//! assert_eq!(envelope.summary, "Event user.created received by my_service");
//! assert_eq!(envelope.payload.get().as_bytes(), body);
//! # Ok::<(), clawlet_events::ParseError>(())
//! ```
//!
//! A sender that posts several events in one request (SendGrid's array of events) is read by
//! [`parse_batch`], which gives one envelope per element when the handler's [`Layout`] says so.

mod batch;
mod custom;
mod envelope;
mod error;
mod escape;
mod filter;
mod form;
mod github;
mod headers;
mod money;
mod pointer;
mod preset;
mod redact;
mod stripe;
mod text;

use std::borrow::Cow;
use std::collections::BTreeMap;

use bytes::Bytes;
use bytestring::ByteString;
use serde_json::value::RawValue;

pub use batch::{MAX_BATCH, Parsed, parse_batch};
pub use envelope::{Envelope, EnvelopeJson, Payload, Source};
pub use error::{EnvelopeError, ParseError};
pub use filter::{entry_selects, selects};
pub use preset::{Layout, Place};
pub use redact::is_credential_header;

use headers::BodyKind;
use text::{MAX_FIELD, MAX_SUMMARY, clean, is_valid_id};

/// Per-handler options for how custom (and Standard Webhooks) deliveries name their event type
/// and delivery id, and where a preset's deliveries carry them ([`Layout`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomOptions {
    /// JSON pointer (RFC 6901) to the event type in the body; `/event_type` by default.
    pub event_type_pointer: String,
    /// Header carrying the delivery id, tried first.
    pub delivery_id_header: Option<String>,
    /// JSON pointer to the delivery id in the body (a string or a number), tried second.
    pub delivery_id_pointer: Option<String>,
    /// Where a preset sender (every [`Source`] but GitHub, Stripe, Standard Webhooks and custom)
    /// puts its event type, action and delivery id.
    pub layout: Layout,
}

impl Default for CustomOptions {
    fn default() -> Self {
        Self {
            event_type_pointer: "/event_type".to_owned(),
            delivery_id_header: None,
            delivery_id_pointer: None,
            layout: Layout::default(),
        }
    }
}

impl CustomOptions {
    /// Checks the configured JSON pointers, so that a mistake is reported at start-up instead of
    /// failing every delivery with [`ParseError::InvalidPointer`].
    pub fn validate(&self) -> Result<(), ParseError> {
        pointer::validate(&self.event_type_pointer)?;
        self.layout.validate()?;
        self.delivery_id_pointer
            .as_deref()
            .map_or(Ok(()), pointer::validate)
    }
}

/// One verified delivery, as the transport hands it over. Header names may be in any case.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The configured handler name that received the delivery.
    pub handler: &'a str,
    /// Which kind of sender the handler speaks to.
    pub source: Source,
    /// All request headers, names in any case, values as received.
    pub headers: &'a [(&'a str, &'a [u8])],
    /// The verified body. An envelope's payload shares its buffer rather than copying it.
    pub body: &'a Bytes,
    /// When the delivery was received; stored in UTC.
    pub received_at: time::OffsetDateTime,
    /// How a custom or Standard Webhooks sender names its type and delivery id.
    pub custom: &'a CustomOptions,
}

/// Turns one verified delivery into an [`Envelope`] with a fresh UUIDv7 id.
///
/// GitHub: type from `X-GitHub-Event`, delivery id from `X-GitHub-Delivery` (both required: GitHub
/// always sends them, so their absence means something other than GitHub is talking), JSON or
/// form-encoded bodies. Stripe: `type` and `id` from the body. Standard Webhooks: the body's
/// `type`, else the custom rules; delivery id from `webhook-id`. Custom: type from the configured
/// pointer, else `X-Event-Type`, else `custom`; delivery id from the configured header, else the
/// configured pointer, else the hex SHA-256 of the body. Every other source: the places its
/// [`Layout`] names, a form body when the layout takes one, an array body when it allows one.
pub fn parse(req: &Request<'_>) -> Result<Envelope, ParseError> {
    headers::check_encoding(req.headers)?;
    let allow_form =
        req.source == Source::Github || (is_preset(req.source) && req.custom.layout.form);
    // A JSON body is checked to be UTF-8 once, as the string its payload will be cut from.
    let mut shared = ByteString::new();
    let text: Cow<'_, str> = match headers::body_kind(req.headers, allow_form)? {
        BodyKind::Json => {
            shared = utf8(req.body)?;
            Cow::Borrowed(&shared)
        }
        BodyKind::Form if req.source == Source::Github => {
            Cow::Owned(form::payload_field(req.body)?)
        }
        BodyKind::Form => Cow::Owned(form::as_json(req.body)?),
    };
    escape::check_surrogates(&text).map_err(ParseError::InvalidJson)?;
    let mut kept = BTreeMap::new();
    let (event_type, action, delivery_id, summary) = match req.source {
        Source::Github => {
            // GitHub's typed read reads the whole body, which checks it too: one pass.
            let read = github::read(&text).map_err(ParseError::InvalidJson)?;
            an_object(&text)?;
            let event =
                headers::one(req.headers, "x-github-event")?.ok_or(ParseError::MissingEventType)?;
            let delivery = headers::one(req.headers, "x-github-delivery")?
                .ok_or(ParseError::MissingDeliveryId)?;
            check_ids(event, delivery)?;
            headers::keep(req.headers, github::KEPT_HEADERS, &mut kept);
            let (action, summary) = github::describe(event, read);
            (event.to_owned(), action, delivery.to_owned(), summary)
        }
        Source::Stripe => {
            let d = stripe::describe(whole(&text)?)?;
            check_ids(&d.event_type, &d.delivery_id)?;
            (
                d.event_type.into_owned(),
                None,
                d.delivery_id.into_owned(),
                d.summary,
            )
        }
        Source::Standard => {
            let body = whole(&text)?;
            let event = custom::standard_event_type(body, req.headers, req.custom)?;
            let delivery = custom::standard_delivery_id(req.headers)?;
            check_ids(&event, delivery)?;
            headers::keep(req.headers, custom::STANDARD_HEADERS, &mut kept);
            let summary = custom_summary(&event, req.handler);
            (event.into_owned(), None, delivery.to_owned(), summary)
        }
        Source::Custom => {
            let body = whole(&text)?;
            let event = custom::event_type(body, req.headers, req.custom, "custom")?;
            let delivery = custom::delivery_id(req.body, body, req.headers, req.custom)?;
            check_ids(&event, &delivery)?;
            headers::keep(req.headers, &custom::kept_headers(req.custom), &mut kept);
            let summary = custom_summary(&event, req.handler);
            (event.into_owned(), None, delivery.into_owned(), summary)
        }
        source => {
            let layout = &req.custom.layout;
            let body = serde_json::from_str::<&RawValue>(&text).map_err(ParseError::InvalidJson)?;
            let shape = text.trim_start();
            if !(shape.starts_with('{') || (layout.array && shape.starts_with('['))) {
                return Err(ParseError::NotAnObject);
            }
            let read = preset::read(layout, req.body, body, req.headers)?;
            check_ids(&read.event_type, &read.delivery_id)?;
            let names: Vec<&str> = layout.kept_headers.iter().map(String::as_str).collect();
            headers::keep(req.headers, &names, &mut kept);
            let summary = preset::summary(
                source,
                &read.event_type,
                read.action.as_deref(),
                body,
                req.handler,
            );
            (
                read.event_type.into_owned(),
                read.action.map(Cow::into_owned),
                read.delivery_id.into_owned(),
                summary,
            )
        }
    };
    Ok(Envelope {
        id: uuid::Uuid::now_v7().to_string(),
        handler: req.handler.to_owned(),
        source: req.source,
        event_type,
        action: action.filter(|a| is_valid_id(a)),
        delivery_id,
        received_at: req.received_at.to_offset(time::UtcOffset::UTC),
        summary: clean(&summary, MAX_SUMMARY),
        headers: kept,
        payload: match &text {
            Cow::Borrowed(json) => Payload::within(&shared, json),
            Cow::Owned(json) => Payload::checked(json),
        },
    })
}

/// Whether `source` is read by its [`Layout`] rather than by code of its own.
fn is_preset(source: Source) -> bool {
    !matches!(
        source,
        Source::Github | Source::Stripe | Source::Standard | Source::Custom
    )
}

/// The body's text, sharing its buffer; a body that is not UTF-8 is not JSON.
fn utf8(body: &Bytes) -> Result<ByteString, ParseError> {
    ByteString::try_from(body.clone()).map_err(|e| {
        ParseError::InvalidJson(serde::de::Error::custom(format_args!(
            "not UTF-8 at byte {}",
            e.valid_up_to()
        )))
    })
}

/// The body checked to be one JSON object, as a raw value to look into.
fn whole(text: &str) -> Result<&RawValue, ParseError> {
    let raw = serde_json::from_str::<&RawValue>(text).map_err(ParseError::InvalidJson)?;
    an_object(text)?;
    Ok(raw)
}

fn an_object(json: &str) -> Result<(), ParseError> {
    if json.trim_start().starts_with('{') {
        Ok(())
    } else {
        Err(ParseError::NotAnObject)
    }
}

fn check_ids(event_type: &str, delivery_id: &str) -> Result<(), ParseError> {
    if event_type.is_empty() {
        return Err(ParseError::MissingEventType);
    }
    if !is_valid_id(event_type) {
        return Err(ParseError::InvalidEventType);
    }
    if delivery_id.is_empty() {
        return Err(ParseError::MissingDeliveryId);
    }
    if !is_valid_id(delivery_id) {
        return Err(ParseError::InvalidDeliveryId);
    }
    Ok(())
}

fn custom_summary(event_type: &str, handler: &str) -> String {
    format!(
        "Event {} received by {}",
        clean(event_type, MAX_FIELD),
        clean(handler, MAX_FIELD)
    )
}
