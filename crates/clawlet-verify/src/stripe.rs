//! Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…][,v0=…]` over `"<t>.<body>"`.
//!
//! Behaviour, as in `stripe-python` and `stripe-node`:
//! - the HMAC-SHA256 key is the whole secret string, `whsec_` included (it is *not* base64-decoded);
//! - any `v1` entry that matches accepts (Stripe sends one per active secret during a roll);
//!   `v0` (test-mode) and unknown entries are ignored, and a header without `v1` fails with
//!   [`VerifyError::NoSignatureForScheme`];
//! - elements are split on `,` and at the first `=`, with no whitespace trimming;
//! - `t` is parsed as an integer and the canonical integer is signed, so a zero-padded `t`
//!   verifies like the libraries do.
//!
//! Stricter than the libraries: a missing, non-numeric, signed or duplicated `t` fails with
//! [`VerifyError::MalformedHeader`], and a timestamp more than the tolerance *in the future*
//! fails with [`VerifyError::TimestampTooNew`] (the libraries accept any future time; Stripe
//! never sends one, and bounding both sides caps the replay window of a delivery signed by a
//! sender whose clock runs ahead). A tolerance of `None` disables both timestamp checks.
//!
//! A delivery replayed inside the tolerance passes again: deduplicate on the event id.
//!
//! The signature is checked before the timestamp, so a timestamp error always means an authentic
//! but stale delivery (a replay or a clock problem), never a forgery.

use alloc::string::String;
use core::time::Duration;

use crate::custom::{Algorithm, Encoding};
use crate::mac::{self, Decimal, Encoded};
use crate::{Headers, Secret, Tolerance, UnixTime, Verified, VerifyError};

/// The header carrying the signature, lower-case as HTTP/2 sends it.
pub const HEADER: &str = "stripe-signature";
/// The tolerance the Stripe libraries use by default: five minutes.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Verifies a Stripe delivery against each secret in turn.
///
/// `header` is the raw `Stripe-Signature` value and `tolerance` the accepted distance between
/// `t` and `now` on either side (`None` disables the check).
///
/// # Errors
///
/// [`VerifyError::NoSecrets`], [`VerifyError::MissingHeader`], [`VerifyError::MalformedHeader`],
/// [`VerifyError::NoSignatureForScheme`], [`VerifyError::Mismatch`],
/// [`VerifyError::TimestampTooOld`] or [`VerifyError::TimestampTooNew`].
pub fn verify(
    secrets: &[Secret],
    header: Option<&[u8]>,
    body: &[u8],
    now: impl Into<UnixTime>,
    tolerance: Option<Duration>,
) -> Result<Verified, VerifyError> {
    if secrets.is_empty() {
        return Err(VerifyError::NoSecrets);
    }
    let header = mac::present(header, HEADER)?;
    let timestamp = parse(header)?;
    let rendered = Decimal::new(timestamp);
    for (index, secret) in secrets.iter().enumerate() {
        let expected = expected(secret.expose(), rendered.as_bytes(), body);
        // Every v1 entry is compared, whatever its shape: a malformed one simply never matches.
        if v1_entries(header).any(|value| mac::matches(&expected, value)) {
            mac::check_timestamp(timestamp, now.into(), Tolerance::from(tolerance))?;
            return Ok(Verified::new(index).with_timestamp(timestamp));
        }
    }
    Err(VerifyError::Mismatch)
}

/// [`verify`] reading `Stripe-Signature` from a request's headers.
///
/// # Errors
///
/// As [`verify`], and [`VerifyError::MalformedHeader`] for a repeated header.
pub fn verify_headers(
    secrets: &[Secret],
    headers: &dyn Headers,
    body: &[u8],
    now: impl Into<UnixTime>,
    tolerance: Option<Duration>,
) -> Result<Verified, VerifyError> {
    if headers.is_repeated(HEADER) {
        return Err(VerifyError::MalformedHeader);
    }
    verify(secrets, headers.get(HEADER), body, now, tolerance)
}

/// Finds the single `t` and checks that at least one `v1` exists.
fn parse(header: &[u8]) -> Result<i64, VerifyError> {
    let mut timestamp = None;
    let mut has_v1 = false;
    for (key, value) in elements(header) {
        match key {
            b"t" if timestamp.is_some() => return Err(VerifyError::MalformedHeader),
            b"t" => timestamp = Some(mac::parse_timestamp(value)?),
            b"v1" => has_v1 = true,
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(VerifyError::MalformedHeader)?;
    if has_v1 {
        Ok(timestamp)
    } else {
        Err(VerifyError::NoSignatureForScheme)
    }
}

/// `key=value` elements; an element without `=` is ignored, as the libraries do.
fn elements(header: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    header.split(|&b| b == b',').filter_map(|element| {
        let eq = element.iter().position(|&b| b == b'=')?;
        Some((&element[..eq], &element[eq + 1..]))
    })
}

fn v1_entries(header: &[u8]) -> impl Iterator<Item = &[u8]> {
    elements(header).filter_map(|(key, value)| (key == b"v1").then_some(value))
}

fn expected(secret: &[u8], timestamp: &[u8], body: &[u8]) -> Encoded {
    let digest = mac::hmac(Algorithm::Sha256, secret, &[timestamp, b".", body]);
    mac::encode(&digest, Encoding::Hex)
}

/// The full `Stripe-Signature` value for `body` signed at `timestamp`: `t=<timestamp>,v1=<hex>`.
///
/// `secret` is used as is, `whsec_` prefix included, exactly as Stripe does.
#[must_use]
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let rendered = Decimal::new(timestamp);
    let encoded = expected(secret, rendered.as_bytes(), body);
    let mut out = String::with_capacity(2 + 20 + 4 + 64);
    out.push_str("t=");
    out.extend(rendered.as_bytes().iter().map(|&b| char::from(b)));
    out.push_str(",v1=");
    encoded.push_to(&mut out);
    out
}

#[cfg(test)]
mod tests;
