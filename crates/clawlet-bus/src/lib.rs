//! The durable event queue: publish with dedup, and at-least-once delivery to agents.
//!
//! A successful publish means the event is durable in the chosen backend. This crate must never
//! report success for an event it has not stored, and never drop an event silently.
