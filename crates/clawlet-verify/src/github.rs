//! GitHub: `X-Hub-Signature-256: sha256=<hex>` over the raw body, and the legacy
//! `X-Hub-Signature: sha1=<hex>` when explicitly allowed.
//!
//! Matching is exact, like `@octokit/webhooks-methods`: the value must be the prefix followed by
//! lower-case hex of the full digest, with nothing around it (upper-case hex, a missing prefix or
//! trailing whitespace reject with [`VerifyError::MalformedHeader`]).
//!
//! When `X-Hub-Signature-256` is present it alone decides; the SHA-1 header is then never
//! consulted, so a forged SHA-1 value cannot downgrade the check. An empty body is rejected with
//! [`VerifyError::EmptyBody`]: GitHub never sends one and octokit refuses it.

use alloc::string::String;

use crate::custom::{Algorithm, Encoding};
use crate::mac::{self, Encoded};
use crate::{Headers, Secret, Verified, VerifyError};

/// The header carrying the HMAC-SHA256 signature, lower-case as HTTP/2 sends it.
pub const SIGNATURE_256_HEADER: &str = "x-hub-signature-256";
/// The legacy header carrying the HMAC-SHA1 signature, lower-case as HTTP/2 sends it.
pub const SIGNATURE_SHA1_HEADER: &str = "x-hub-signature";

const PREFIX_256: &[u8] = b"sha256=";
const PREFIX_SHA1: &[u8] = b"sha1=";

/// Whether the legacy SHA-1 header may stand in when `X-Hub-Signature-256` is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Legacy {
    /// Only `X-Hub-Signature-256` is accepted; a delivery carrying only the SHA-1 header fails
    /// with [`VerifyError::LegacySchemeRefused`].
    #[default]
    Refuse,
    /// `X-Hub-Signature` (HMAC-SHA1) is checked when `X-Hub-Signature-256` is absent (needs the
    /// `sha1` feature; without it this behaves as [`Legacy::Refuse`]).
    AllowSha1,
}

/// The raw values of the two signature headers of a delivery (absent or empty counts as
/// missing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Signatures<'a> {
    /// The value of [`SIGNATURE_256_HEADER`].
    pub sha256: Option<&'a [u8]>,
    /// The value of the legacy [`SIGNATURE_SHA1_HEADER`].
    pub sha1: Option<&'a [u8]>,
}

impl<'a> Signatures<'a> {
    /// Reads both headers.
    ///
    /// # Errors
    ///
    /// [`VerifyError::MalformedHeader`] when either header is repeated.
    pub fn from_headers(headers: &'a dyn Headers) -> Result<Signatures<'a>, VerifyError> {
        if headers.is_repeated(SIGNATURE_256_HEADER) || headers.is_repeated(SIGNATURE_SHA1_HEADER) {
            return Err(VerifyError::MalformedHeader);
        }
        Ok(Signatures {
            sha256: headers.get(SIGNATURE_256_HEADER),
            sha1: headers.get(SIGNATURE_SHA1_HEADER),
        })
    }
}

/// Verifies a GitHub delivery against each secret in turn.
///
/// The SHA-1 header is used only when the SHA-256 one is missing and `legacy` is
/// [`Legacy::AllowSha1`]; when it is the only one sent and legacy is refused the result is
/// [`VerifyError::LegacySchemeRefused`].
///
/// # Errors
///
/// [`VerifyError::NoSecrets`], [`VerifyError::MissingHeader`],
/// [`VerifyError::LegacySchemeRefused`], [`VerifyError::EmptyBody`],
/// [`VerifyError::MalformedHeader`] or [`VerifyError::Mismatch`].
pub fn verify(
    secrets: &[Secret],
    signatures: Signatures<'_>,
    body: &[u8],
    legacy: Legacy,
) -> Result<Verified, VerifyError> {
    if secrets.is_empty() {
        return Err(VerifyError::NoSecrets);
    }
    let allow_sha1 = legacy == Legacy::AllowSha1 && cfg!(feature = "sha1");
    let (algorithm, prefix, value) = match (
        mac::present(signatures.sha256, SIGNATURE_256_HEADER),
        signatures.sha1,
    ) {
        (Ok(value), _) => (Algorithm::Sha256, PREFIX_256, value),
        (Err(missing), legacy) => match mac::present(legacy, SIGNATURE_SHA1_HEADER) {
            Ok(_) if !allow_sha1 => return Err(VerifyError::LegacySchemeRefused),
            Ok(value) => (Algorithm::Sha1, PREFIX_SHA1, value),
            Err(_) => return Err(missing),
        },
    };
    if body.is_empty() {
        return Err(VerifyError::EmptyBody);
    }
    let digest = value
        .strip_prefix(prefix)
        .filter(|hex| mac::well_formed(hex, Encoding::Hex, algorithm.digest_len()))
        .ok_or(VerifyError::MalformedHeader)?;
    for (index, secret) in secrets.iter().enumerate() {
        if mac::matches(&expected(algorithm, secret.expose(), body), digest) {
            return Ok(Verified::new(index));
        }
    }
    Err(VerifyError::Mismatch)
}

/// [`verify`] reading the headers from a request (an `http::HeaderMap` with the `http`
/// feature, or pairs).
///
/// # Errors
///
/// As [`verify`], and [`VerifyError::MalformedHeader`] for a repeated signature header.
pub fn verify_headers(
    secrets: &[Secret],
    headers: &dyn Headers,
    body: &[u8],
    legacy: Legacy,
) -> Result<Verified, VerifyError> {
    verify(secrets, Signatures::from_headers(headers)?, body, legacy)
}

fn expected(algorithm: Algorithm, secret: &[u8], body: &[u8]) -> Encoded {
    mac::encode(&mac::hmac(algorithm, secret, &[body]), Encoding::Hex)
}

/// The value of [`SIGNATURE_256_HEADER`] for `body`: `sha256=<lower-case hex>`.
#[must_use]
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    render("sha256=", &expected(Algorithm::Sha256, secret, body))
}

/// The value of the legacy [`SIGNATURE_SHA1_HEADER`] for `body`: `sha1=<lower-case hex>`.
#[must_use]
pub fn sign_sha1(secret: &[u8], body: &[u8]) -> String {
    render("sha1=", &expected(Algorithm::Sha1, secret, body))
}

fn render(prefix: &str, encoded: &Encoded) -> String {
    let mut out = String::with_capacity(prefix.len() + encoded.as_bytes().len());
    out.push_str(prefix);
    encoded.push_to(&mut out);
    out
}

#[cfg(test)]
mod tests;
