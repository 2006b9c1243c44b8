//! End-to-end tests: the real `clawlet-webhookd` binary on 127.0.0.1, driven the way an operator
//! and a provider would drive it.

mod agent;
mod crash;
mod harness;
mod nats;
mod operate;
mod providers;
