//! Configuration for `clawlet-webhookd`: one YAML file, `${VAR}` interpolation, defaults, validation.
//!
//! This is the only library crate that knows the YAML schema. It must never do I/O beyond reading the
//! configuration file and the environment, and never print a secret.
