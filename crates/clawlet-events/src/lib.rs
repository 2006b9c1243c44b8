//! Provider event models, the event envelope handed to agents, and one-line summaries.
//!
//! [`parse`] turns a verified body and its headers into an [`Envelope`]. This crate must never do
//! I/O and never see a body that its caller has not verified.

mod envelope;

pub use envelope::{Envelope, Source};
