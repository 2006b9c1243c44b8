//! The console's shared state: the bus it reads, the admin token, the sessions, the per-minute
//! traffic counts and the live tail. Cheap to clone.

use std::sync::Arc;

use arc_swap::ArcSwap;
use clawlet_bus::{Bus, NatsAdmin};
use subtle::ConstantTimeEq;

use crate::auth::Sessions;
use crate::traffic::Traffic;

/// The admin token. Its `Debug` never shows it, and it is compared in constant time.
#[derive(Clone)]
pub struct AdminToken(Arc<str>);

impl AdminToken {
    /// Wraps the configured token.
    pub fn new(token: impl Into<Arc<str>>) -> Self {
        Self(token.into())
    }

    /// Whether `offered` is this token, in time that does not depend on where they differ.
    pub(crate) fn matches(&self, offered: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(offered).into()
    }

    /// A digest of the token, so that sessions opened with an old token end when it changes.
    pub(crate) fn fingerprint(&self) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(self.0.as_bytes()).into()
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// What the console is built from. `handlers` and `agents` are the configured names: the
/// overview lists them even before they see traffic. No secret but the admin token is here.
#[derive(Debug, Clone)]
pub struct ConsoleOptions {
    /// The daemon's bus (any backend).
    pub bus: Bus,
    /// The admin token; `None` only when the configuration says `token: none` on loopback.
    pub token: Option<AdminToken>,
    /// Configured handler names.
    pub handlers: Vec<String>,
    /// Configured agent names.
    pub agents: Vec<String>,
    /// Request outcomes per handler and minute, fed by the HTTP layer.
    pub traffic: Traffic,
    /// On the nats backend: the stream read as the CLI reads it (events, dead letters).
    pub nats: Option<Arc<NatsAdmin>>,
}

impl ConsoleOptions {
    /// A console over `bus` guarded by `token`, with no configured names and fresh counters.
    pub fn new(bus: Bus, token: AdminToken) -> Self {
        Self {
            bus,
            token: Some(token),
            handlers: Vec::new(),
            agents: Vec::new(),
            traffic: Traffic::default(),
            nats: None,
        }
    }
}

/// What a reload may change without restarting the listener.
#[derive(Debug)]
pub(crate) struct Live {
    pub(crate) token: Option<AdminToken>,
    pub(crate) handlers: Vec<String>,
    pub(crate) agents: Vec<String>,
}

pub(crate) struct Inner {
    pub(crate) bus: Bus,
    pub(crate) live: ArcSwap<Live>,
    pub(crate) sessions: Sessions,
    pub(crate) traffic: Traffic,
    pub(crate) nats: Option<Arc<NatsAdmin>>,
    /// Cancelled when the listener drains: ends the live tails.
    pub(crate) shutdown: tokio_util::sync::CancellationToken,
}

/// The console's state, shared by every route (the API's and the pages'). Its methods in
/// `data` (`overview`, `events`, `event`, `dead_letters`, `replay`, `bulk_preview`, `bulk_run`,
/// `tail`) are what pages render from.
#[derive(Clone)]
pub struct Console(pub(crate) Arc<Inner>);

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("backend", &self.0.bus.backend_name())
            .finish_non_exhaustive()
    }
}

impl Console {
    /// Builds the console's state.
    pub fn new(opts: ConsoleOptions) -> Self {
        Self(Arc::new(Inner {
            live: ArcSwap::from_pointee(Live {
                token: opts.token,
                handlers: opts.handlers,
                agents: opts.agents,
            }),
            sessions: Sessions::default(),
            bus: opts.bus,
            traffic: opts.traffic,
            nats: opts.nats,
            shutdown: tokio_util::sync::CancellationToken::new(),
        }))
    }

    /// Applies a reloaded configuration: a new token (which ends every session opened with the
    /// old one) and the configured names. The listener's address does not follow reloads.
    pub fn reload(&self, token: Option<AdminToken>, handlers: Vec<String>, agents: Vec<String>) {
        let old = self.0.live.load();
        let changed = match (&old.token, &token) {
            (Some(a), Some(b)) => a.fingerprint() != b.fingerprint(),
            (None, None) => false,
            _ => true,
        };
        if changed {
            self.0.sessions.clear();
        }
        self.0.live.store(Arc::new(Live {
            token,
            handlers,
            agents,
        }));
    }

    /// The backend's name.
    pub fn backend(&self) -> &'static str {
        self.0.bus.backend_name()
    }

    /// Whether the console asks for a token at all (`false` only with `token: none`).
    pub fn requires_token(&self) -> bool {
        self.0.live.load().token.is_some()
    }
}
