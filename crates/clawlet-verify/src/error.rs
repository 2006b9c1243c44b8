//! The one error type of the crate and the proof of a passed check.

use core::fmt;

/// Why a delivery failed verification.
///
/// Each variant is a reason an operator can act on; [`VerifyError::code`] gives a stable
/// `snake_case` string for logs and metric labels. Neither the code nor the [`Display`](fmt::Display)
/// text ever contains a secret or a signature value, so both are safe to log.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VerifyError {
    /// A required header (signature, id or timestamp) is absent or empty.
    MissingHeader,
    /// A header is present but does not have the shape the scheme requires (wrong prefix, wrong
    /// length, upper-case or non-hex digits, a non-integer or duplicated timestamp).
    MalformedHeader,
    /// The signature header parses but carries no entry for the scheme this crate checks
    /// (a Stripe header with only `v0`, a Standard Webhooks header with only `v2` entries).
    NoSignatureForScheme,
    /// A signature is present but none matches the body under any configured secret: a wrong
    /// secret, a tampered body or a forgery.
    Mismatch,
    /// The signature is authentic but its timestamp is older than the tolerance allows: a replay,
    /// a delivery retried late, or this machine's clock runs fast.
    TimestampTooOld,
    /// The signature is authentic but its timestamp lies further in the future than the tolerance
    /// allows: the sender's clock runs fast or this machine's clock runs slow.
    TimestampTooNew,
    /// Only the legacy GitHub `X-Hub-Signature` (HMAC-SHA1) was sent and legacy signatures are not
    /// allowed for this webhook.
    LegacySchemeRefused,
    /// A configured secret is empty, or (Standard Webhooks) is not valid base64.
    InvalidSecret,
    /// The list of secrets is empty, so nothing could ever verify.
    NoSecrets,
    /// The body is empty; the scheme (GitHub) never signs an empty body.
    EmptyBody,
}

impl VerifyError {
    /// Every variant, in declaration order: handy for pre-registering metric label values.
    pub const ALL: &'static [VerifyError] = &[
        VerifyError::MissingHeader,
        VerifyError::MalformedHeader,
        VerifyError::NoSignatureForScheme,
        VerifyError::Mismatch,
        VerifyError::TimestampTooOld,
        VerifyError::TimestampTooNew,
        VerifyError::LegacySchemeRefused,
        VerifyError::InvalidSecret,
        VerifyError::NoSecrets,
        VerifyError::EmptyBody,
    ];

    /// A stable `snake_case` reason code for logs and metric labels.
    ///
    /// These strings are part of the public API: they never change for an existing variant.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::MissingHeader => "missing_header",
            VerifyError::MalformedHeader => "malformed_header",
            VerifyError::NoSignatureForScheme => "no_signature_for_scheme",
            VerifyError::Mismatch => "mismatch",
            VerifyError::TimestampTooOld => "timestamp_too_old",
            VerifyError::TimestampTooNew => "timestamp_too_new",
            VerifyError::LegacySchemeRefused => "legacy_scheme_refused",
            VerifyError::InvalidSecret => "invalid_secret",
            VerifyError::NoSecrets => "no_secrets",
            VerifyError::EmptyBody => "empty_body",
        }
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VerifyError::MissingHeader => "a signature, id or timestamp header is missing or empty",
            VerifyError::MalformedHeader => "a signature or timestamp header is malformed",
            VerifyError::NoSignatureForScheme => {
                "the signature header carries no signature for the expected scheme"
            }
            VerifyError::Mismatch => "no signature matches the body under any configured secret",
            VerifyError::TimestampTooOld => {
                "the signed timestamp is older than the tolerance allows"
            }
            VerifyError::TimestampTooNew => {
                "the signed timestamp is further in the future than the tolerance allows"
            }
            VerifyError::LegacySchemeRefused => {
                "only a legacy SHA-1 signature was sent and legacy signatures are not allowed"
            }
            VerifyError::InvalidSecret => {
                "a configured secret is empty or not valid for the scheme"
            }
            VerifyError::NoSecrets => "no secret is configured",
            VerifyError::EmptyBody => "the body is empty and the scheme never signs an empty body",
        })
    }
}

impl std::error::Error for VerifyError {}

/// Proof that a delivery passed verification.
///
/// Only this crate can construct a `Verified`, so a function that takes one cannot be called with
/// an unchecked delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Verified {
    secret_index: usize,
}

impl Verified {
    pub(crate) fn new(secret_index: usize) -> Self {
        Verified { secret_index }
    }

    /// The position, in the slice passed to `verify`, of the secret that matched.
    ///
    /// During a rotation this tells whether senders still use the old secret.
    #[must_use]
    pub fn secret_index(&self) -> usize {
        self.secret_index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_messages_are_stable() {
        let table: String = VerifyError::ALL
            .iter()
            .map(|e| format!("{}: {e}\n", e.code()))
            .collect();
        insta::assert_snapshot!(table);
    }

    #[test]
    fn codes_are_unique_snake_case_and_messages_have_no_trailing_period() {
        let mut seen = std::collections::HashSet::new();
        for e in VerifyError::ALL {
            let code = e.code();
            assert!(seen.insert(code), "duplicate code {code}");
            assert!(
                code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{code} is not snake_case"
            );
            let msg = e.to_string();
            assert!(!msg.ends_with('.'), "{code}: message ends with a period");
            assert!(!msg.is_empty(), "{code}: empty message");
        }
    }

    #[test]
    fn verified_reports_its_index() {
        assert_eq!(Verified::new(3).secret_index(), 3);
    }
}
