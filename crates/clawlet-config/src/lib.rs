//! Configuration for `clawlet-webhookd`: one YAML file, `${VAR}` interpolation, defaults, validation.
//!
//! This is the only library crate that knows the YAML schema. [`load`] finds the file (`--config`,
//! else `CLAWLET_CONFIG`, else `~/.clawlet/config.yaml`), interpolates `${VAR}`, `${VAR:-default}` and
//! `$${` in string values, layers it with figment (built-in defaults, the file,
//! `CLAWLET_WEBHOOKS__PORT=9000`-style variables, CLI flags), and checks everything, returning every
//! problem at once with the file, the key path and the fix. When the file gives no `routes`, every
//! event goes to the built-in `log` agent. It must never do I/O beyond reading the configuration file,
//! the TLS files it checks, and the injected environment, and never print a secret: secrets are
//! [`Secret`]s, which redact themselves.
//!
//! ```
//! use clawlet_config::{Env, LoadOptions, load};
//!
//! // No ~/.clawlet/config.yaml under this HOME, so the built-in defaults apply.
//! let env = Env::empty().with("HOME", "/nonexistent-home");
//! let opts = LoadOptions { port: Some(9000), env, ..LoadOptions::default() };
//! let loaded = load(&opts).expect("the built-in defaults are valid");
//! assert_eq!(loaded.source, None);
//! assert_eq!(loaded.config.webhooks.port, 9000);
//! assert_eq!(loaded.config.webhooks.host, "0.0.0.0");
//! let journal = std::path::Path::new("/nonexistent-home/.clawlet/webhooks.db");
//! assert_eq!(loaded.config.webhooks.queue.path, journal);
//! ```

use std::path::PathBuf;

mod check;
mod env;
mod error;
mod interpolate;
mod load;
mod raw;
mod redact;
mod resolve;
mod schema;
mod secret;
mod types;

pub use env::Env;
pub use error::{ConfigError, ConfigErrors};
pub use redact::redact_url;
pub use secret::Secret;
pub use types::{
    Admin, Agent, AgentKind, AgentStart, Algorithm, Config, Credential, Encoding, Handler,
    HandlerKind, Limits, LogFormat, LogLevel, Logging, NatsQueue, Needs, Otlp, Queue, QueueBackend,
    RateLimit, ResponseType, Route, Signature, SignatureAlgorithm, Ssl, Telemetry, TimestampUnit,
    Webhooks,
};

/// What the command line says about configuration, plus the environment to resolve it against.
///
/// `Default` has an empty environment; the daemon passes [`Env::process`].
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--config PATH`; must exist when given.
    pub path: Option<PathBuf>,
    /// `--host`, overriding `webhooks.host`.
    pub host: Option<String>,
    /// `--webhook-port`, overriding `webhooks.port`.
    pub port: Option<u16>,
    /// Variables for interpolation, `CLAWLET_CONFIG`, `HOME` and `CLAWLET_WEBHOOKS__…` overrides.
    pub env: Env,
}

/// A configuration that passed every check.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The effective configuration.
    pub config: Config,
    /// The file actually read; `None` when the default path does not exist and only the built-in
    /// defaults, environment and flags apply.
    pub source: Option<PathBuf>,
    /// Where the file was looked for when none was named and none was found there
    /// (`~/.clawlet/config.yaml`); `None` when a file was read or `HOME` is unset.
    pub looked_for: Option<PathBuf>,
    /// Things that load but deserve a loud log line at every start (handlers running without
    /// signature verification, ignored TLS files, ignored top-level keys).
    pub warnings: Vec<String>,
    /// The environment variables credentials were taken from: each `${VAR}` in a secret, an
    /// HTTP agent header or a URL of the file, and every `CLAWLET_WEBHOOKS__…` override (one can
    /// set a whole handler, secret included). Sorted, without repeats. The daemon withholds them from the programs
    /// it runs, which otherwise inherit its whole environment.
    pub credential_vars: Vec<String>,
}

/// Loads, layers and checks the configuration.
///
/// # Errors
///
/// Every problem found: a missing explicit file, YAML syntax, unset variables, unknown keys, values of
/// the wrong type, and every rule the values break. Display prints one per line.
pub fn load(opts: &LoadOptions) -> Result<Loaded, ConfigErrors> {
    load::load(opts)
}

/// `clawlet-webhookd config check`: the text to print and the exit code.
///
/// On success, the effective configuration as YAML with secrets shown as `[redacted]`, preceded by
/// comment lines naming the source and each warning; exit code 0. On failure, every error, one per
/// line; exit code 2.
pub fn check(opts: &LoadOptions) -> (String, i32) {
    match load(opts) {
        Ok(loaded) => show(&loaded),
        Err(errors) => (format!("{errors}\n"), 2),
    }
}

/// What `config check` prints for a configuration that loaded: the source, each warning, and
/// the effective configuration as YAML with secrets shown as `[redacted]`; exit code 0 (1 when it
/// cannot be rendered).
pub fn show(loaded: &Loaded) -> (String, i32) {
    let mut out = match &loaded.source {
        Some(path) => format!("# effective configuration from {}\n", path.display()),
        None => match &loaded.looked_for {
            Some(path) => format!(
                "# effective configuration from built-in defaults: no config file at {} \
                 (give one with --config or CLAWLET_CONFIG)\n",
                path.display()
            ),
            None => {
                "# effective configuration from built-in defaults (no config file)\n".to_owned()
            }
        },
    };
    for w in &loaded.warnings {
        out.push_str("# warning: ");
        out.push_str(w);
        out.push('\n');
    }
    match serde_saphyr::to_string(&loaded.config) {
        Ok(yaml) => {
            out.push_str(&yaml);
            (out, 0)
        }
        Err(e) => (
            format!("cannot render the effective configuration: {e}\n"),
            1,
        ),
    }
}
