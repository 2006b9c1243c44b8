//! `clawlet-webhookd serve`: start everything, reload on SIGHUP or file change, drain on SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use clawlet_bus::{AttemptOutcome, Bus, CancellationToken, DeliveryObserver, Dispatcher};
use clawlet_config::{LoadOptions, Loaded, Webhooks};
use clawlet_http::{App, Clock, Metrics, TlsReloader};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::cli::ServeArgs;
use crate::{Failure, telemetry, wiring};

/// How often idle rate-limit keys are evicted and delivered events past retention pruned.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(60);
/// How often the configuration file is checked for changes.
const WATCH_EVERY: Duration = Duration::from_secs(1);
/// File-change events arrive in bursts (an editor's write-rename-chmod); this long a quiet spell
/// ends a burst before the reload runs.
const RELOAD_DEBOUNCE: Duration = Duration::from_millis(250);

pub(crate) async fn run(args: ServeArgs) -> Result<(), Failure> {
    let opts = wiring::load_options(&args.config, args.host.clone(), args.webhook_port);
    let loaded =
        clawlet_config::load(&opts).map_err(|errors| Failure::Config(errors.to_string()))?;
    // What the watcher compares against: taken now, so an edit made while the daemon starts is
    // still seen as a change.
    let baseline = loaded
        .source
        .as_deref()
        .and_then(|path| std::fs::read(path).ok());
    let _telemetry = telemetry::init(&wiring::telemetry(&loaded.config))
        .map_err(|err| Failure::Config(format!("{err:#}")))?;
    for warning in &loaded.warnings {
        warn!("{warning}");
    }
    let w = &loaded.config.webhooks;
    if !w.enabled {
        info!("webhooks.enabled is false: nothing to serve");
        return Ok(());
    }
    // Reject configurations the library crates refuse (say, a malformed Standard Webhooks key)
    // before anything is opened, with the configuration's exit code.
    let runtime = wiring::runtime(w).map_err(|err| Failure::Config(format!("{err:#}")))?;
    clawlet_http::install_crypto_provider();
    let tls = wiring::tls(w)
        .map(TlsReloader::new)
        .transpose()
        .map_err(|err| Failure::Config(format!("webhooks.ssl: {err}")))?;

    let bus = Bus::open(wiring::bus_options(w))
        .await
        .context("opening the event queue")?;
    if bus.is_durable() {
        info!(backend = bus.backend_name(), "event queue open");
    } else {
        warn!(
            backend = bus.backend_name(),
            "the event queue is NOT durable: events are lost when the daemon stops; use the sqlite or nats backend in production"
        );
    }
    let app = App::new(runtime, bus.clone(), clock()).context("building the HTTP application")?;
    let shutdown = CancellationToken::new();
    let observer = Arc::new(Observer {
        metrics: app.metrics(),
    });
    let dispatcher = Dispatcher::start(
        bus.clone(),
        wiring::agents(w),
        wiring::routes(w),
        observer,
        shutdown.clone(),
    )
    .context("starting delivery to agents")?;

    let listener = tokio::net::TcpListener::bind((w.host.as_str(), w.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", w.host, w.port))?;
    let addr = listener
        .local_addr()
        .context("reading the listening address")?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    info!("listening on {scheme}://{addr}");
    announce(w);

    let (reload_tx, reload_rx) = mpsc::channel(4);
    spawn_signals(shutdown.clone(), reload_tx.clone()).context("installing signal handlers")?;
    if let Some(path) = loaded.source.clone() {
        tokio::spawn(watch(path, baseline, reload_tx, shutdown.clone()));
    }
    let limits = wiring::server_limits(w);
    let dispatcher = Arc::new(dispatcher);
    let live = Live {
        opts,
        current: loaded,
        app: app.clone(),
        dispatcher: Arc::clone(&dispatcher),
        tls: tls.clone(),
    };
    let reloads = tokio::spawn(live.run(reload_rx, shutdown.clone()));
    tokio::spawn(housekeeping(app.clone(), bus, shutdown.clone()));

    let served = clawlet_http::serve(
        listener,
        tls.as_ref().map(TlsReloader::acceptor),
        clawlet_http::router(app),
        limits,
        shutdown.clone(),
    )
    .await;
    shutdown.cancel();
    // The reload task holds a reference to the dispatcher; it ends on cancellation.
    let _ = reloads.await;
    match Arc::try_unwrap(dispatcher) {
        Ok(dispatcher) => dispatcher.join().await,
        Err(_) => warn!("delivery did not stop cleanly; pending work stays in the journal"),
    }
    info!("stopped");
    served.context("serving HTTP").map_err(Failure::from)
}

/// Logs what is being served, one line per handler, and warns loudly about unverified ones.
fn announce(w: &Webhooks) {
    for h in w.handlers.values() {
        if !h.enabled {
            info!(handler = %h.name, "handler disabled");
            continue;
        }
        let events = if h.events.is_empty() {
            "all".to_owned()
        } else {
            h.events.join(",")
        };
        info!(
            handler = %h.name,
            path = %h.path,
            kind = wiring::source(h.kind).as_str(),
            verification = if h.verify { "on" } else { "OFF" },
            events = %events,
            "handler ready"
        );
        if !h.verify {
            warn!(
                handler = %h.name,
                path = %h.path,
                "handler accepts UNVERIFIED deliveries: anyone who can reach {} can inject events; configure a secret",
                h.path
            );
        }
    }
}

fn clock() -> Clock {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    })
}

/// Feeds delivery outcomes to the Prometheus registry and trace context to agents.
struct Observer {
    metrics: Metrics,
}

impl DeliveryObserver for Observer {
    fn attempt(&self, agent: &str, outcome: AttemptOutcome, latency: Duration) {
        self.metrics.attempt(agent, outcome, latency);
    }

    fn dead_lettered(&self, agent: &str) {
        self.metrics.dead_lettered(agent);
    }

    fn traceparent(&self) -> Option<String> {
        telemetry::current_traceparent()
    }
}

fn spawn_signals(shutdown: CancellationToken, reload: mpsc::Sender<Reason>) -> Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => { info!("SIGTERM: draining in-flight requests"); break; }
                _ = int.recv() => { info!("SIGINT: draining in-flight requests"); break; }
                _ = hup.recv() => { let _ = reload.try_send(Reason::Signal); }
                () = shutdown.cancelled() => break,
            }
        }
        shutdown.cancel();
    });
    Ok(())
}

/// Why a reload runs.
#[derive(Debug, Clone, Copy)]
enum Reason {
    Signal,
    FileChanged,
}

/// Watches the configuration file: reads it once a second and reloads when its bytes change.
///
/// Reading the path, rather than subscribing to its directory, sees what matters — an edit in
/// place, an editor's atomic rename, a Kubernetes ConfigMap symlink swap — while staying deaf to
/// the other files of the directory. The journal usually lives beside the configuration and
/// changes on every request; a directory subscription woke up for each of those writes and cost
/// tens of microseconds per request (see BENCHMARKS.md). A file that is briefly missing (between
/// the two halves of a swap) is not a change.
async fn watch(
    path: PathBuf,
    mut last: Option<Vec<u8>>,
    reload: mpsc::Sender<Reason>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(WATCH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.cancelled() => return,
        }
        let Ok(now) = tokio::fs::read(&path).await else {
            continue;
        };
        if last.as_ref() != Some(&now) {
            last = Some(now);
            let _ = reload.try_send(Reason::FileChanged);
        }
    }
}

/// The running configuration and the pieces a reload swaps.
struct Live {
    opts: LoadOptions,
    current: Loaded,
    app: App,
    dispatcher: Arc<Dispatcher>,
    tls: Option<TlsReloader>,
}

impl Live {
    async fn run(mut self, mut rx: mpsc::Receiver<Reason>, shutdown: CancellationToken) {
        loop {
            let reason = tokio::select! {
                r = rx.recv() => match r { Some(r) => r, None => return },
                () = shutdown.cancelled() => return,
            };
            if matches!(reason, Reason::FileChanged) {
                // Let the burst of events from one save settle.
                while let Ok(Some(_)) = tokio::time::timeout(RELOAD_DEBOUNCE, rx.recv()).await {}
            }
            match self.reload(reason) {
                Ok(Some(next)) => self.current = next,
                Ok(None) => {}
                Err(err) => {
                    error!("configuration reload refused, the running configuration stays: {err:#}")
                }
            }
        }
    }

    /// Loads and applies a new configuration; `Ok(None)` when the file did not change.
    fn reload(&self, reason: Reason) -> Result<Option<Loaded>> {
        let (opts, current, app, dispatcher) =
            (&self.opts, &self.current, &self.app, &self.dispatcher);
        if let Some(tls) = &self.tls
            && matches!(reason, Reason::Signal)
        {
            tls.reload().context("reloading the TLS certificate")?;
            info!("TLS certificate reloaded");
        }
        let next = clawlet_config::load(opts).map_err(|errors| anyhow::anyhow!("{errors}"))?;
        if next.config == current.config {
            return Ok(None);
        }
        let (old, new) = (&current.config.webhooks, &next.config.webhooks);
        if (old.host.as_str(), old.port) != (new.host.as_str(), new.port)
            || old.queue != new.queue
            || old.ssl != new.ssl
            || old.limits != new.limits
            || old.telemetry != new.telemetry
            || old.logging.level != new.logging.level
            || old.logging.format != new.logging.format
        {
            warn!(
                "host, port, queue, ssl, limits, telemetry and log level/format changes take effect at the next restart"
            );
        }
        let runtime = wiring::runtime(new)?;
        app.reload(runtime)
            .context("applying handlers, allowlists and rate limits")?;
        dispatcher
            .reload(wiring::agents(new), wiring::routes(new))
            .context("applying agents and routes")?;
        for warning in &next.warnings {
            warn!("{warning}");
        }
        announce(new);
        info!(?reason, "configuration reloaded");
        Ok(Some(next))
    }
}

async fn housekeeping(app: App, bus: Bus, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(HOUSEKEEPING_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.cancelled() => return,
        }
        app.evict_idle_clients();
        if let Err(err) = bus.prune().await {
            warn!("pruning delivered events failed: {err}");
        }
    }
}
