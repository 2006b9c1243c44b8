//! Batches: senders that post several events in one request (SendGrid's Event Webhook posts a
//! JSON array of them). Each element becomes an envelope of its own, with its own delivery id, so
//! that each event is deduplicated on its own and a resent batch stores only what is new.
//!
//! The whole batch is read before any envelope is handed out: an element that is not an event
//! refuses the request, so that "2xx" keeps meaning "every event of it is stored" and the sender,
//! which resends a refused batch whole, loses nothing.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;

use bytestring::ByteString;
use serde::de::{self, Deserializer as _, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::headers::{self, BodyKind};
use crate::text::{MAX_SUMMARY, clean, is_valid_id};
use crate::{
    Envelope, ParseError, Payload, Request, check_ids, escape, is_preset, parse, preset, utf8,
};

/// The most elements one batch may hold; a longer one is refused
/// ([`ParseError::BatchTooLarge`]).
///
/// `max_body_bytes` already bounds a batch, but each element costs an envelope and a publish,
/// several times the bytes it takes in the body; this keeps what one request can cost small
/// whatever the body limit is. SendGrid posts a batch once it reaches 768 KB (or after about 30
/// seconds), and each of its events carries two ids, an address and a timestamp, over 100 bytes,
/// so its batches stay well below the bound.
pub const MAX_BATCH: usize = 10_000;

/// What one verified delivery holds: see [`parse_batch`].
#[derive(Debug)]
pub enum Parsed {
    /// One event: every delivery of a handler whose [`Layout`](crate::Layout) does not split
    /// batches, and a splitting handler's delivery whose body is not an array.
    One(Envelope),
    /// The events of a batch, one per element, in the order of the body; empty for `[]`.
    Batch(Vec<Envelope>),
}

/// Turns one verified delivery into its events: [`Parsed::Batch`] when the handler's layout
/// splits batches ([`Layout::split`](crate::Layout::split)) and the body is a JSON array, else
/// [`Parsed::One`] with what [`parse`] gives.
///
/// Each element of a batch must be a JSON object. Its event type, action and delivery id are
/// read at the layout's places inside the element (a header place reads the request's header);
/// when no place holds a delivery id, the hex SHA-256 of the element's bytes is the id (SendGrid
/// documents `sg_event_id` as unique wherever it is present, not as always present), so that a
/// resent element is still deduplicated. Every envelope of a batch gets the same kept headers
/// and receipt time, a fresh UUIDv7, and the element's JSON byte for byte as its payload.
///
/// An element that is not an object, has no event type, or has an id that
/// [`parse`] would refuse makes the whole batch an error ([`ParseError::BatchElement`], naming
/// the element); so does a batch of more than [`MAX_BATCH`] elements. An empty array is a batch
/// of no events, not an error: it is authentic and holds nothing, and refusing it would only make
/// the sender retry it.
///
/// ```
/// use clawlet_events::{parse_batch, CustomOptions, Layout, Parsed, Place, Request, Source};
///
/// let layout = Layout {
///     event_type: vec![Place::Pointer("/event".into())],
///     delivery_id: vec![Place::Pointer("/sg_event_id".into())],
///     split: true,
///     ..Layout::default()
/// };
/// let custom = CustomOptions { layout, ..CustomOptions::default() };
/// let body = bytes::Bytes::from_static(br#"[{"event":"processed","sg_event_id":"e1"}, {"event":"open","sg_event_id":"e2"}]"#);
/// let req = Request {
///     handler: "mail",
///     source: Source::Sendgrid,
///     headers: &[("content-type", b"application/json")],
///     body: &body,
///     received_at: time::OffsetDateTime::UNIX_EPOCH,
///     custom: &custom,
/// };
/// let Parsed::Batch(events) = parse_batch(&req)? else { unreachable!() };
/// assert_eq!(events.len(), 2);
/// assert_eq!(events[1].event_type, "open");
/// assert_eq!(events[1].delivery_id, "e2");
/// assert_eq!(events[1].payload.get(), r#"{"event":"open","sg_event_id":"e2"}"#);
/// # Ok::<(), clawlet_events::ParseError>(())
/// ```
pub fn parse_batch(req: &Request<'_>) -> Result<Parsed, ParseError> {
    let layout = &req.custom.layout;
    if !(is_preset(req.source) && layout.split) {
        return parse(req).map(Parsed::One);
    }
    headers::check_encoding(req.headers)?;
    let text = match headers::body_kind(req.headers, layout.form)? {
        BodyKind::Json => utf8(req.body)?,
        BodyKind::Form => return parse(req).map(Parsed::One),
    };
    if !text.trim_start().starts_with('[') {
        return parse(req).map(Parsed::One);
    }
    escape::check_surrogates(&text).map_err(ParseError::InvalidJson)?;
    let elements = elements(&text)?;
    let names: Vec<&str> = layout.kept_headers.iter().map(String::as_str).collect();
    let mut kept = BTreeMap::new();
    headers::keep(req.headers, &names, &mut kept);
    let received_at = req.received_at.to_offset(time::UtcOffset::UTC);
    elements
        .iter()
        .enumerate()
        .map(|(index, raw)| {
            element(req, &text, raw, &kept, received_at).map_err(|source| {
                ParseError::BatchElement {
                    index,
                    source: Box::new(source),
                }
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Parsed::Batch)
}

/// The elements of a JSON array, each as it is in `text`; at most [`MAX_BATCH`] of them.
fn elements(text: &str) -> Result<Vec<&RawValue>, ParseError> {
    let too_many = Cell::new(false);
    let mut de = serde_json::Deserializer::from_str(text);
    let read = de
        .deserialize_seq(Elements {
            too_many: &too_many,
        })
        .and_then(|elements| de.end().map(|()| elements));
    read.map_err(|err| {
        if too_many.get() {
            ParseError::BatchTooLarge(MAX_BATCH)
        } else {
            ParseError::InvalidJson(err)
        }
    })
}

/// Reads an array's elements without decoding them, and stops at the first one past
/// [`MAX_BATCH`] rather than collect an unbounded list first.
struct Elements<'f> {
    too_many: &'f Cell<bool>,
}

impl<'de> Visitor<'de> for Elements<'_> {
    type Value = Vec<&'de RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_BATCH));
        while let Some(element) = seq.next_element::<&'de RawValue>()? {
            if out.len() == MAX_BATCH {
                self.too_many.set(true);
                return Err(de::Error::custom("too many events in one batch"));
            }
            out.push(element);
        }
        Ok(out)
    }
}

/// One element's envelope.
fn element(
    req: &Request<'_>,
    body: &ByteString,
    raw: &RawValue,
    kept: &BTreeMap<String, String>,
    received_at: time::OffsetDateTime,
) -> Result<Envelope, ParseError> {
    let text = raw.get();
    if !text.starts_with('{') {
        return Err(ParseError::NotAnObject);
    }
    let read = preset::read(&req.custom.layout, text.as_bytes(), raw, req.headers)?;
    check_ids(&read.event_type, &read.delivery_id)?;
    let summary = preset::summary(
        req.source,
        &read.event_type,
        read.action.as_deref(),
        raw,
        req.handler,
    );
    Ok(Envelope {
        id: uuid::Uuid::now_v7().to_string(),
        handler: req.handler.to_owned(),
        source: req.source,
        event_type: read.event_type.into_owned(),
        action: read.action.map(Cow::into_owned).filter(|a| is_valid_id(a)),
        delivery_id: read.delivery_id.into_owned(),
        received_at,
        summary: clean(&summary, MAX_SUMMARY),
        headers: kept.clone(),
        // The element was read whole, as a raw value, on the way here: a slice of the body.
        payload: Payload::within(body, text),
    })
}

#[cfg(test)]
mod tests;
