//! Custom senders (the spec's `event_type` / `timestamp` / `data` payload) and Standard Webhooks
//! senders (Svix and others), whose type and delivery id come from configuration and convention.

use std::borrow::Cow;

use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::headers::{self, Headers};
use crate::{CustomOptions, ParseError, pointer};

/// The header custom senders may name their event type in.
const EVENT_TYPE_HEADER: &str = "x-event-type";

/// Standard Webhooks' headers, and the `svix-` spelling Svix itself still sends.
pub(crate) const STANDARD_HEADERS: &[&str] = &[
    "webhook-id",
    "webhook-timestamp",
    "svix-id",
    "svix-timestamp",
];

/// The event type by the custom rules: the configured pointer, else `X-Event-Type`, else
/// `fallback`.
pub(crate) fn event_type<'a>(
    body: &'a RawValue,
    headers: Headers<'a>,
    opts: &CustomOptions,
    fallback: &'static str,
) -> Result<Cow<'a, str>, ParseError> {
    if let Some(t) = pointer::string_at(body, &opts.event_type_pointer)?.filter(|t| !t.is_empty()) {
        return Ok(t);
    }
    if let Some(t) = headers::one(headers, EVENT_TYPE_HEADER)? {
        return Ok(Cow::Borrowed(t));
    }
    Ok(Cow::Borrowed(fallback))
}

/// The dedup key of a custom delivery: the configured header, else the configured pointer, else
/// the SHA-256 of the body, so that a sender retrying the same bytes is still deduplicated.
pub(crate) fn delivery_id<'a>(
    raw_body: &[u8],
    body: &'a RawValue,
    headers: Headers<'a>,
    opts: &CustomOptions,
) -> Result<Cow<'a, str>, ParseError> {
    if let Some(name) = &opts.delivery_id_header
        && let Some(id) = headers::one(headers, name)?
    {
        return Ok(Cow::Borrowed(id));
    }
    if let Some(p) = &opts.delivery_id_pointer
        && let Some(id) = pointer::id_at(body, p)?.filter(|id| !id.is_empty())
    {
        return Ok(id);
    }
    Ok(Cow::Owned(hex::encode(Sha256::digest(raw_body))))
}

/// The header names a custom delivery keeps in its envelope.
pub(crate) fn kept_headers(opts: &CustomOptions) -> Vec<&str> {
    let mut names = vec![EVENT_TYPE_HEADER];
    names.extend(opts.delivery_id_header.as_deref());
    names
}

/// The Standard Webhooks event type: the body's `type` (the Svix convention), else the custom
/// rules ending in `standard`.
pub(crate) fn standard_event_type<'a>(
    body: &'a RawValue,
    headers: Headers<'a>,
    opts: &CustomOptions,
) -> Result<Cow<'a, str>, ParseError> {
    if let Some(t) = pointer::string_at(body, "/type")?.filter(|t| !t.is_empty()) {
        return Ok(t);
    }
    event_type(body, headers, opts, "standard")
}

/// The Standard Webhooks delivery id: `webhook-id` (or Svix's `svix-id`), which the scheme
/// requires and signs, so its absence is an error.
pub(crate) fn standard_delivery_id<'a>(headers: Headers<'a>) -> Result<&'a str, ParseError> {
    match headers::one(headers, "webhook-id")? {
        Some(id) => Ok(id),
        None => headers::one(headers, "svix-id")?.ok_or(ParseError::MissingDeliveryId),
    }
}
