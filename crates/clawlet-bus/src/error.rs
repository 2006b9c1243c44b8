use std::time::Duration;

/// Why the bus refused or failed an operation.
///
/// The HTTP layer turns [`BusError::Full`] and [`BusError::Unavailable`] into 503 with
/// `Retry-After` ([`BusError::retry_after`]); every other variant is an internal error.
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error)]
pub enum BusError {
    /// `max_pending` undelivered events are queued; nothing was stored.
    #[error("queue is full: too many undelivered events, retry after {}s", retry_after.as_secs())]
    Full {
        /// How long the sender should wait before retrying.
        retry_after: Duration,
    },
    /// The backend cannot be reached right now (NATS connection lost, publish ack timed out).
    #[error("queue backend unavailable: {reason}")]
    Unavailable {
        /// How long the sender should wait before retrying.
        retry_after: Duration,
        /// What failed, for logs.
        reason: String,
    },
    /// The journal could not be read or written (disk full, corrupt file, permissions).
    #[error("journal storage error: {0}")]
    Storage(String),
    /// Agents or routes are inconsistent (a route names an unknown agent, a zero limit, a bad
    /// secret). The message names the agent or route.
    #[error("invalid agent or route: {0}")]
    Config(String),
    /// The operation needs a backend feature this backend lacks (journal operations on NATS).
    #[error("operation not supported by the {backend} backend")]
    Unsupported {
        /// The backend's name.
        backend: &'static str,
    },
    /// The bus was shut down, or its writer stopped after a fatal error.
    #[error("the queue is closed")]
    Closed,
}

impl BusError {
    /// The wait a client should be told (`Retry-After`) when the error is temporary.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Full { retry_after } | Self::Unavailable { retry_after, .. } => {
                Some(*retry_after)
            }
            _ => None,
        }
    }

    /// A short stable code for metrics labels and JSON error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Full { .. } => "queue_full",
            Self::Unavailable { .. } => "queue_unavailable",
            Self::Storage(_) => "storage",
            Self::Config(_) => "config",
            Self::Unsupported { .. } => "unsupported",
            Self::Closed => "closed",
        }
    }
}

impl From<rusqlite::Error> for BusError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Storage(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_codes_and_retry_after() {
        let errors = [
            BusError::Full {
                retry_after: Duration::from_secs(5),
            },
            BusError::Unavailable {
                retry_after: Duration::from_secs(5),
                reason: "not connected to NATS".into(),
            },
            BusError::Storage("database or disk is full".into()),
            BusError::Config("routes[0]: agent inbox is not defined".into()),
            BusError::Unsupported { backend: "nats" },
            BusError::Closed,
        ];
        let lines: Vec<String> = errors
            .iter()
            .map(|e| {
                format!(
                    "{} | {} | {:?}",
                    e.code(),
                    e,
                    e.retry_after().map(|d| d.as_secs())
                )
            })
            .collect();
        insta::assert_yaml_snapshot!(lines);
    }
}
