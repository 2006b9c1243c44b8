/// Why a verified delivery could not be turned into an [`Envelope`](crate::Envelope).
///
/// [`ParseError::is_unsupported_media_type`] tells the transport to answer 415; every other
/// variant is the sender's malformed request (400). Messages never quote the body, so they are safe
/// to log.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The `Content-Type` is not one this source sends (JSON, or form-encoded for GitHub).
    #[error("unsupported content type {0:?}")]
    UnsupportedContentType(String),
    /// The body is compressed or otherwise encoded (`Content-Encoding` other than `identity`);
    /// no parser decodes it.
    #[error("unsupported content encoding {0:?}")]
    UnsupportedContentEncoding(String),
    /// The body (or GitHub's form-encoded `payload` field) is not one JSON value.
    #[error("body is not valid JSON: {0}")]
    InvalidJson(#[source] serde_json::Error),
    /// The body is JSON but not a JSON object, which no supported sender delivers.
    #[error("body is JSON but not an object")]
    NotAnObject,
    /// A form-encoded GitHub body has no single, UTF-8 `payload` field.
    #[error("form-encoded body is invalid: {0}")]
    InvalidForm(&'static str),
    /// The sender did not say which event this is (`X-GitHub-Event`, Stripe's `type`).
    #[error("the event type is missing")]
    MissingEventType,
    /// The event type is longer than 256 bytes or contains control characters.
    #[error("the event type is too long or contains control characters")]
    InvalidEventType,
    /// The sender's delivery id (`X-GitHub-Delivery`, Stripe's `id`, `webhook-id`) is missing.
    #[error("the delivery id is missing")]
    MissingDeliveryId,
    /// The delivery id is longer than 256 bytes or contains control characters.
    #[error("the delivery id is too long or contains control characters")]
    InvalidDeliveryId,
    /// A header this parser reads is empty or not valid UTF-8.
    #[error("header {0} is empty or not valid UTF-8")]
    InvalidHeader(String),
    /// A header this parser reads appears more than once, so which one counts is ambiguous.
    #[error("header {0} appears more than once")]
    DuplicateHeader(String),
    /// A configured JSON pointer does not start with `/` (RFC 6901); a configuration mistake.
    #[error("JSON pointer {0:?} must be empty or start with '/'")]
    InvalidPointer(String),
    /// One element of a batch ([`Layout::split`](crate::Layout::split)) is not an event the
    /// parser can read; the whole batch is refused. `index` counts from 0.
    #[error("batch element {index}: {source}")]
    BatchElement {
        /// Where the element is in the batch, from 0.
        index: usize,
        /// What is wrong with it.
        #[source]
        source: Box<ParseError>,
    },
    /// A batch holds more elements than [`MAX_BATCH`](crate::MAX_BATCH).
    #[error("the batch holds more than {0} events")]
    BatchTooLarge(usize),
}

impl ParseError {
    /// Whether the transport should answer 415 Unsupported Media Type rather than 400.
    pub fn is_unsupported_media_type(&self) -> bool {
        matches!(
            self,
            Self::UnsupportedContentType(_) | Self::UnsupportedContentEncoding(_)
        )
    }

    /// A stable snake_case name for logs and metric labels.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnsupportedContentType(_) => "unsupported_content_type",
            Self::UnsupportedContentEncoding(_) => "unsupported_content_encoding",
            Self::InvalidJson(_) => "invalid_json",
            Self::NotAnObject => "not_an_object",
            Self::InvalidForm(_) => "invalid_form",
            Self::MissingEventType => "missing_event_type",
            Self::InvalidEventType => "invalid_event_type",
            Self::MissingDeliveryId => "missing_delivery_id",
            Self::InvalidDeliveryId => "invalid_delivery_id",
            Self::InvalidHeader(_) => "invalid_header",
            Self::DuplicateHeader(_) => "duplicate_header",
            Self::InvalidPointer(_) => "invalid_pointer",
            // The element's own reason: a batch refused for a missing event type is counted
            // with the single deliveries refused for one.
            Self::BatchElement { source, .. } => source.code(),
            Self::BatchTooLarge(_) => "batch_too_large",
        }
    }
}

/// Why an [`Envelope`](crate::Envelope) could not be written to or read from its JSON form.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// The envelope holds a value JSON cannot carry (a `received_at` outside years 0 to 9999).
    #[error("cannot encode the envelope as JSON: {0}")]
    Encode(#[source] serde_json::Error),
    /// The stored bytes are not an envelope (corrupt row, or written by an incompatible version).
    #[error("cannot decode the envelope from JSON: {0}")]
    Decode(#[source] serde_json::Error),
}
