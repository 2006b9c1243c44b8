//! The one error type of the crate and the proof of a passed check.

use alloc::borrow::Cow;
use core::fmt;

/// Why a delivery failed verification.
///
/// Each variant is a reason an operator can act on; [`VerifyError::code`] gives a stable
/// `snake_case` string for logs and metric labels. Neither the code nor the [`Display`](fmt::Display)
/// text ever contains a secret or a signature value, so both are safe to log.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum VerifyError {
    /// A required header (signature, id or timestamp) or, for a scheme that signs inside the
    /// body, a required body field is absent or empty.
    MissingHeader {
        /// The header name (as the scheme spells it) or the JSON pointer of the body field.
        header: Cow<'static, str>,
    },
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
    /// A configured key does not fit the scheme's algorithm (an HMAC secret given to an Ed25519
    /// scheme), or a public key is not a valid key of its kind.
    UnsupportedKey,
    /// A scheme's signed-payload template does not parse: an unknown `{placeholder}`, an
    /// unclosed brace, or a placeholder the scheme cannot fill.
    InvalidTemplate,
    /// The body does not match the digest the signed URL carries for it (Twilio's `bodySHA256`):
    /// the signature is authentic but the body was changed.
    BodyHashMismatch,
}

/// What a caller should do about a [`VerifyError`]: the three groups an HTTP receiver answers
/// differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is malformed (a missing or unparseable header): answer 400, the sender has a
    /// bug or is not the expected sender.
    BadRequest,
    /// The request is well formed but not authentic or not fresh: answer 401.
    Unauthenticated,
    /// This receiver is misconfigured (no secret, an empty secret, a key of the wrong kind):
    /// answer 500 and alert the operator, no request can ever pass.
    Misconfigured,
}

impl VerifyError {
    /// Every variant, in declaration order: handy for pre-registering metric label values.
    pub const ALL: &'static [VerifyError] = &[
        VerifyError::MissingHeader {
            header: Cow::Borrowed("signature"),
        },
        VerifyError::MalformedHeader,
        VerifyError::NoSignatureForScheme,
        VerifyError::Mismatch,
        VerifyError::TimestampTooOld,
        VerifyError::TimestampTooNew,
        VerifyError::LegacySchemeRefused,
        VerifyError::InvalidSecret,
        VerifyError::NoSecrets,
        VerifyError::EmptyBody,
        VerifyError::UnsupportedKey,
        VerifyError::InvalidTemplate,
        VerifyError::BodyHashMismatch,
    ];

    /// A missing header or body field, by name.
    pub(crate) fn missing(header: impl Into<Cow<'static, str>>) -> Self {
        VerifyError::MissingHeader {
            header: header.into(),
        }
    }

    /// Groups the error by what the caller should do about it.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            VerifyError::MissingHeader { .. }
            | VerifyError::MalformedHeader
            | VerifyError::NoSignatureForScheme
            | VerifyError::EmptyBody => ErrorKind::BadRequest,
            VerifyError::Mismatch
            | VerifyError::TimestampTooOld
            | VerifyError::TimestampTooNew
            | VerifyError::LegacySchemeRefused
            | VerifyError::BodyHashMismatch => ErrorKind::Unauthenticated,
            VerifyError::InvalidSecret
            | VerifyError::NoSecrets
            | VerifyError::UnsupportedKey
            | VerifyError::InvalidTemplate => ErrorKind::Misconfigured,
        }
    }

    /// A stable `snake_case` reason code for logs and metric labels.
    ///
    /// These strings are part of the public API: they never change for an existing variant.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::MissingHeader { .. } => "missing_header",
            VerifyError::MalformedHeader => "malformed_header",
            VerifyError::NoSignatureForScheme => "no_signature_for_scheme",
            VerifyError::Mismatch => "mismatch",
            VerifyError::TimestampTooOld => "timestamp_too_old",
            VerifyError::TimestampTooNew => "timestamp_too_new",
            VerifyError::LegacySchemeRefused => "legacy_scheme_refused",
            VerifyError::InvalidSecret => "invalid_secret",
            VerifyError::NoSecrets => "no_secrets",
            VerifyError::EmptyBody => "empty_body",
            VerifyError::UnsupportedKey => "unsupported_key",
            VerifyError::InvalidTemplate => "invalid_template",
            VerifyError::BodyHashMismatch => "body_hash_mismatch",
        }
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let VerifyError::MissingHeader { header } = self {
            // A header name comes from the scheme, never from the request, so it is safe to print.
            return write!(f, "the {header} header or body field is missing or empty");
        }
        f.write_str(match self {
            VerifyError::MissingHeader { .. } => "a header is missing or empty",
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
            VerifyError::UnsupportedKey => {
                "a configured key does not fit the scheme's algorithm or is not a valid key"
            }
            VerifyError::InvalidTemplate => "the scheme's signed-payload template does not parse",
            VerifyError::BodyHashMismatch => {
                "the body does not match the body digest carried by the signed URL"
            }
        })
    }
}

impl core::error::Error for VerifyError {}

/// Proof that a delivery passed verification.
///
/// Only this crate can construct a `Verified`, so a function that takes one cannot be called with
/// an unchecked delivery.
///
/// A verification that passed proves the sender knew the secret and, where the scheme signs a
/// timestamp, that the delivery is recent. It does not prove the delivery is new: a replay inside
/// the tolerance window passes again, so deduplicate on the delivery id (or the one-time token)
/// the scheme names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Verified {
    secret_index: usize,
    timestamp: Option<i64>,
}

impl Verified {
    pub(crate) fn new(secret_index: usize) -> Self {
        Verified {
            secret_index,
            timestamp: None,
        }
    }

    pub(crate) fn with_timestamp(mut self, unix_secs: i64) -> Self {
        self.timestamp = Some(unix_secs);
        self
    }

    /// The signed timestamp that was checked, in Unix seconds (a millisecond timestamp is
    /// truncated), or `None` when the scheme signs none.
    #[must_use]
    pub fn timestamp(&self) -> Option<i64> {
        self.timestamp
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
    fn verified_reports_its_index_and_timestamp() {
        assert_eq!(Verified::new(3).secret_index(), 3);
        assert_eq!(Verified::new(3).timestamp(), None);
        assert_eq!(Verified::new(0).with_timestamp(7).timestamp(), Some(7));
    }

    #[test]
    fn kinds_group_every_error() {
        let table: String = VerifyError::ALL
            .iter()
            .map(|e| format!("{}: {:?}\n", e.code(), e.kind()))
            .collect();
        insta::assert_snapshot!(table);
    }

    #[test]
    fn missing_header_names_the_header() {
        let e = VerifyError::missing("x-slack-signature");
        assert_eq!(e.code(), "missing_header");
        assert_eq!(
            e.to_string(),
            "the x-slack-signature header or body field is missing or empty"
        );
    }
}
