//! The two error types: [`HttpError`] for building the server, [`ApiError`] for answering a
//! request.

use std::path::PathBuf;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use clawlet_bus::BusError;
use clawlet_events::ParseError;
use clawlet_verify::VerifyError;

use crate::client_ip::Unresolved;
use crate::spec::ResponseType;

/// A server setting that cannot work; the message names the handler or file to fix.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Two handlers share a name.
    #[error("handler {name}: the name is used twice")]
    DuplicateName {
        /// The repeated name.
        name: String,
    },
    /// A handler name is empty.
    #[error("a handler has an empty name")]
    EmptyName,
    /// Two handlers share a path.
    #[error("handler {name}: path {path} is already used by handler {other}")]
    DuplicatePath {
        /// The handler defined second.
        name: String,
        /// The shared path.
        path: String,
        /// The handler defined first.
        other: String,
    },
    /// A path that does not start with `/`, or that `/health` or `/metrics` already answer.
    #[error(
        "handler {name}: path {path} is not allowed (it must start with / and not be /health or /metrics)"
    )]
    BadPath {
        /// The handler.
        name: String,
        /// The refused path.
        path: String,
    },
    /// A rate limit that cannot work.
    #[error("{scope}: rate limit: {source}")]
    RateLimit {
        /// `rate_limit` or `handler NAME`.
        scope: String,
        /// Why.
        source: clawlet_ratelimit::RateLimitError,
    },
    /// A custom handler's JSON pointers are malformed.
    #[error("handler {name}: {source}")]
    CustomOptions {
        /// The handler.
        name: String,
        /// What is wrong.
        source: ParseError,
    },
    /// A verifying handler has no secret, or an empty one: every delivery would be refused.
    #[error("handler {name}: signature verification needs at least one non-empty secret")]
    MissingSecret {
        /// The handler.
        name: String,
    },
    /// `max_body_bytes` is zero.
    #[error("max_body_bytes must be at least 1")]
    ZeroBodyLimit,
    /// A TLS file cannot be read.
    #[error("{}: cannot read: {source}", path.display())]
    TlsFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A TLS file holds no usable certificate or key, or they do not match.
    #[error("{}: {reason}", path.display())]
    Tls {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// Why a request was refused or failed. The client gets the status and a short fixed message;
/// the detail goes to the request log and metrics.
#[derive(Debug)]
pub(crate) enum ApiError {
    NotFound,
    MethodNotAllowed,
    Forbidden,
    /// A trusted proxy sent no usable client address: refused like an address not on the
    /// allowlist, since no allowlist or rate limit can be applied to it.
    ClientUnknown(Unresolved),
    RateLimited {
        retry_after: Duration,
    },
    /// Taking this body would put more than `limits.max_inflight_body_bytes` in memory.
    BodyBudget,
    PayloadTooLarge,
    BadBody,
    /// A handshake parameter that cannot be echoed (too long, control characters, repeated).
    BadHandshake,
    Unauthorized(VerifyError),
    Parse(ParseError),
    Unavailable(BusError),
    RequestTimeout,
    NoPeerAddress,
}

/// The wait given when the bus fails without saying how long to wait.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(10);

/// The wait given when the in-flight body budget is spent: bodies in flight finish within the
/// request timeout, most far sooner, and a sender that retries costs us only a request head.
const BODY_BUDGET_RETRY_AFTER: Duration = Duration::from_secs(2);

impl ApiError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Forbidden | Self::ClientUnknown(_) => StatusCode::FORBIDDEN,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::BodyBudget => StatusCode::SERVICE_UNAVAILABLE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BadBody | Self::BadHandshake => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Parse(err) if err.is_unsupported_media_type() => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            Self::Parse(_) => StatusCode::BAD_REQUEST,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::NoPeerAddress => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The fixed message the client reads.
    fn message(&self) -> &'static str {
        match self {
            Self::NotFound => "not found",
            Self::MethodNotAllowed => "method not allowed",
            Self::Forbidden | Self::ClientUnknown(_) => "forbidden",
            Self::RateLimited { .. } => "too many requests",
            Self::BodyBudget => "temporarily unavailable",
            Self::PayloadTooLarge => "payload too large",
            Self::BadBody => "could not read the request body",
            Self::BadHandshake => "invalid handshake",
            Self::Unauthorized(_) => "invalid signature",
            Self::Parse(err) if err.is_unsupported_media_type() => "unsupported media type",
            Self::Parse(_) => "invalid payload",
            Self::Unavailable(_) => "temporarily unavailable",
            Self::RequestTimeout => "request timeout",
            Self::NoPeerAddress => "internal error",
        }
    }

    /// The detailed reason for logs and metrics labels.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Forbidden => "ip_not_allowed",
            Self::ClientUnknown(why) => why.code(),
            Self::RateLimited { .. } => "rate_limited",
            Self::BodyBudget => "body_budget_exhausted",
            Self::PayloadTooLarge => "payload_too_large",
            Self::BadBody => "body_read_failed",
            Self::BadHandshake => "bad_handshake",
            Self::Unauthorized(err) => err.code(),
            Self::Parse(err) => err.code(),
            Self::Unavailable(err) => err.code(),
            Self::RequestTimeout => "request_timeout",
            Self::NoPeerAddress => "no_peer_address",
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after } => Some(*retry_after),
            Self::BodyBudget => Some(BODY_BUDGET_RETRY_AFTER),
            Self::Unavailable(err) => Some(err.retry_after().unwrap_or(DEFAULT_RETRY_AFTER)),
            _ => None,
        }
    }

    pub(crate) fn render(&self, kind: ResponseType) -> Response {
        let mut response = match kind {
            ResponseType::Json => (
                self.status(),
                axum::Json(serde_json::json!({ "error": self.message() })),
            )
                .into_response(),
            ResponseType::Text => (self.status(), format!("{}\n", self.message())).into_response(),
        };
        if let Some(wait) = self.retry_after() {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs(wait)),
            );
        }
        if matches!(self, Self::MethodNotAllowed) {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        response
    }
}

/// `Retry-After` takes whole seconds; rounding down would invite a retry that is refused again.
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.render(ResponseType::Json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up() {
        fn check(wait: Duration, expected: u64) {
            assert_eq!(retry_after_secs(wait), expected, "{wait:?}");
        }
        check(Duration::ZERO, 1);
        check(Duration::from_millis(1), 1);
        check(Duration::from_millis(600), 1);
        check(Duration::from_secs(1), 1);
        check(Duration::from_millis(1001), 2);
        check(Duration::from_secs(59), 59);
    }

    #[test]
    fn refusals_at_the_edge() {
        fn check(err: &ApiError, status: u16, retry_after: Option<&str>, reason: &str) {
            let response = err.render(ResponseType::Json);
            assert_eq!(response.status().as_u16(), status, "{err:?}");
            assert_eq!(
                response
                    .headers()
                    .get(header::RETRY_AFTER)
                    .map(|v| v.to_str().unwrap()),
                retry_after,
                "{err:?}"
            );
            assert_eq!(err.reason(), reason);
        }
        check(
            &ApiError::BodyBudget,
            503,
            Some("2"),
            "body_budget_exhausted",
        );
        for (why, reason) in [
            (Unresolved::Missing, "forwarded_missing"),
            (Unresolved::Unreadable, "forwarded_unreadable"),
            (Unresolved::Conflict, "forwarded_conflict"),
        ] {
            check(&ApiError::ClientUnknown(why), 403, None, reason);
        }
        check(&ApiError::Forbidden, 403, None, "ip_not_allowed");
    }
}
