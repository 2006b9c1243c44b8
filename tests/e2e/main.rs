//! End-to-end tests: the real `clawlet-webhookd` binary on 127.0.0.1, driven the way an operator
//! and a provider would drive it.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]
#![allow(
    clippy::print_stdout,
    reason = "skipped tests say why on the test output"
)]

mod agent;
mod console;
mod console_api;
mod crash;
mod faults;
mod firstrun;
mod harness;
mod hostile;
mod nats;
mod nats_cli;
mod nats_cluster;
mod operate;
mod providers;
mod providers_presets;
mod quickstart;
mod reload;
mod settings;
mod version;
