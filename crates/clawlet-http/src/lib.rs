//! The HTTP face of `clawlet-webhookd`: routes, the request pipeline and status codes.
//!
//! It is the only crate that knows axum. It must never parse a body before its signature is
//! verified, and never answer 2xx for an event that the bus has not stored.
