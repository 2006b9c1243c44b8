//! `clawlet-webhookd`: the daemon operators run.
//!
//! A thin binary that turns configuration into each crate's constructor arguments and wires them
//! together. It must hold no business logic of its own.

fn main() {}
