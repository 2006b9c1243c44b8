//! Which header names mark a credential: the one rule the request log and the operator console
//! redact by, so that a header hidden in one is hidden in the other.

/// Words that mark a header as a credential wherever they appear in its name: a rule rather
/// than a list, because every provider and every operator names its token header differently
/// (`X-Api-Key`, `X-Gitlab-Token`, `X-Shopify-Hmac-Sha256`, `Authorization`,
/// `X-Slack-Signature`, `X-Session-Id`).
const CREDENTIAL_WORDS: [&str; 11] = [
    "token",
    "key",
    "secret",
    "signature",
    "auth",
    "password",
    "cookie",
    "hmac",
    "sign",
    "credential",
    "session",
];

/// Whether a header called `name` (any case) may hold a credential, so that its value is shown
/// as `[redacted]`.
///
/// ```
/// assert!(clawlet_events::is_credential_header("X-Hub-Signature-256"));
/// assert!(!clawlet_events::is_credential_header("X-GitHub-Event"));
/// ```
pub fn is_credential_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    CREDENTIAL_WORDS.iter().any(|word| lower.contains(word))
}
