//! Integration tests of `clawlet_events::parse` through its public API: the recorded provider
//! payloads, every source's rules and errors, and properties over arbitrary input.

// This whole crate is tests, helpers included: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod payloads;
mod props;
mod rules;

use clawlet_events::{CustomOptions, Envelope, ParseError, Request, Source, parse};
use time::macros::datetime;

/// A fixed receipt time so that snapshots are stable.
const RECEIVED_AT: time::OffsetDateTime = datetime!(2026-01-02 03:04:05.678 UTC);

/// Parses one delivery with a test handler name and the fixed receipt time.
fn run(
    source: Source,
    headers: &[(&str, &[u8])],
    body: &[u8],
    custom: &CustomOptions,
) -> Result<Envelope, ParseError> {
    parse(&Request {
        handler: "test-handler",
        source,
        headers,
        body: &bytes::Bytes::copy_from_slice(body),
        received_at: RECEIVED_AT,
        custom,
    })
}
