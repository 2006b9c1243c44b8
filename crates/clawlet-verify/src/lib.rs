//! Webhook signature verification as pure functions over bytes.
//!
//! This crate checks the signatures that GitHub, Stripe, Standard Webhooks senders and custom HMAC
//! senders attach to their deliveries. It must never do I/O, never read the clock itself, never know
//! about HTTP or configuration types, and never put a secret into an error or `Debug` output.
