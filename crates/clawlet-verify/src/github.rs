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

use crate::custom::{Algorithm, Encoding};
use crate::mac::{self, Encoded};
use crate::{Verified, VerifyError};

/// The header carrying the HMAC-SHA256 signature, lower-case as HTTP/2 sends it.
pub const SIGNATURE_256_HEADER: &str = "x-hub-signature-256";
/// The legacy header carrying the HMAC-SHA1 signature, lower-case as HTTP/2 sends it.
pub const SIGNATURE_SHA1_HEADER: &str = "x-hub-signature";

const PREFIX_256: &[u8] = b"sha256=";
const PREFIX_SHA1: &[u8] = b"sha1=";

/// Verifies a GitHub delivery against each secret in turn.
///
/// `signature_256` and `signature_sha1` are the raw values of [`SIGNATURE_256_HEADER`] and
/// [`SIGNATURE_SHA1_HEADER`] (absent or empty counts as missing). The SHA-1 header is used only
/// when `signature_256` is missing and `allow_legacy_sha1` is true; when it is the only one sent
/// and legacy is not allowed the result is [`VerifyError::LegacySchemeRefused`].
///
/// # Errors
///
/// [`VerifyError::NoSecrets`], [`VerifyError::InvalidSecret`] (an empty secret),
/// [`VerifyError::MissingHeader`], [`VerifyError::LegacySchemeRefused`],
/// [`VerifyError::EmptyBody`], [`VerifyError::MalformedHeader`] or [`VerifyError::Mismatch`].
pub fn verify<S: AsRef<[u8]>>(
    secrets: &[S],
    signature_256: Option<&[u8]>,
    signature_sha1: Option<&[u8]>,
    body: &[u8],
    allow_legacy_sha1: bool,
) -> Result<Verified, VerifyError> {
    mac::check_secrets(secrets)?;
    let (algorithm, prefix, value) = match (mac::present(signature_256), signature_sha1) {
        (Ok(value), _) => (Algorithm::Sha256, PREFIX_256, value),
        (Err(missing), legacy) => match mac::present(legacy) {
            Ok(_) if !allow_legacy_sha1 => return Err(VerifyError::LegacySchemeRefused),
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
        if mac::matches(&expected(algorithm, secret.as_ref(), body), digest) {
            return Ok(Verified::new(index));
        }
    }
    Err(VerifyError::Mismatch)
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
