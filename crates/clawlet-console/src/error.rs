//! The console's one error type: a status and a short message for the client (as JSON), the
//! detail in the log.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use clawlet_bus::BusError;

/// Why a console request failed.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The request is malformed (a bad filter, cursor or body); the message says what to fix.
    #[error("{0}")]
    BadRequest(String),
    /// No such event, or it is not routed to that agent.
    #[error("not found")]
    NotFound,
    /// A bulk action's confirmation no longer matches what the filter selects.
    #[error("{0}")]
    Conflict(String),
    /// The backend cannot do this (see the capabilities).
    #[error("{0}")]
    Unsupported(String),
    /// The backend failed; the detail goes to the log only.
    #[error("the event store failed: {0}")]
    Bus(#[from] BusError),
}

impl ConsoleError {
    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unsupported(_) | Self::Bus(BusError::Unsupported { .. }) => {
                StatusCode::NOT_IMPLEMENTED
            }
            Self::Bus(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// What the client reads: fixed for backend failures, whose detail may name files or servers.
    pub fn public_message(&self) -> String {
        match self {
            Self::Bus(BusError::Unsupported { backend }) => {
                format!("not available on the {backend} backend")
            }
            Self::Bus(_) => "the event store is unavailable; see the daemon's log".to_owned(),
            other => other.to_string(),
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        if let Self::Bus(e) = &self {
            tracing::warn!(error = %e, "console request failed");
        }
        let body = serde_json::json!({ "error": self.public_message() });
        (self.status(), Json(body)).into_response()
    }
}
