//! `clawlet-webhookd serve`: start everything, reload on SIGHUP or file change, drain on SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use clawlet_bus::{AttemptOutcome, Bus, CancellationToken, DeliveryObserver, Dispatcher};
use clawlet_config::{LoadOptions, Loaded, Webhooks};
use clawlet_http::{App, Clock, Metrics, TlsReloader};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;
use tracing::{error, info, warn};

use crate::cli::ServeArgs;
use crate::{Failure, telemetry, wiring};

/// How often idle rate-limit keys are evicted and delivered events past retention pruned.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(60);
/// How often the configuration file is checked for changes.
const WATCH_EVERY: Duration = Duration::from_secs(1);
/// A save is a burst of writes (an editor's write-rename-chmod, or a truncate and a write), and
/// the watcher may have read the middle of it: a reload for a file change alone waits this long
/// once, then reads the file afresh. It is never extended by further requests, so a stream of
/// them cannot hold reloads back.
const RELOAD_SETTLE: Duration = Duration::from_millis(250);

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
    // The validation `config check` and reloads run, before anything is opened, with the
    // configuration's exit code.
    let plan = wiring::plan(&loaded).map_err(|errors| Failure::Config(errors.to_string()))?;
    let w = &loaded.config.webhooks;
    if !w.enabled {
        info!("webhooks.enabled is false: nothing to serve");
        return Ok(());
    }
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
    let app =
        App::new(plan.runtime, bus.clone(), clock()).context("building the HTTP application")?;
    let console = start_console(&loaded, &bus, &app).await?;
    let shutdown = CancellationToken::new();
    let observer = Arc::new(Observer {
        metrics: app.metrics(),
    });
    let dispatcher = Dispatcher::start(
        bus.clone(),
        plan.agents,
        plan.routes,
        observer,
        shutdown.clone(),
    )
    .context("starting delivery to agents")?;

    // Before the listening line, which tells tests and supervisors the daemon is up: a SIGHUP
    // sent after it must find its handler in place rather than end the process.
    let reloads = Arc::new(ReloadRequests::default());
    spawn_signals(shutdown.clone(), Arc::clone(&reloads)).context("installing signal handlers")?;
    let listener = tokio::net::TcpListener::bind((w.host.as_str(), w.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", w.host, w.port))?;
    let addr = listener
        .local_addr()
        .context("reading the listening address")?;
    // Bound before the listening line, which tells tests the daemon is up.
    let console_task = match console.clone() {
        Some((console, admin)) => {
            let listener = tokio::net::TcpListener::bind((admin.host.as_str(), admin.port))
                .await
                .with_context(|| {
                    format!(
                        "cannot listen on {}:{} (webhooks.admin)",
                        admin.host, admin.port
                    )
                })?;
            let addr = listener
                .local_addr()
                .context("reading the console's listening address")?;
            // Not "listening on", which names the webhook listener to tests and supervisors.
            info!("operator console at http://{addr}");
            Some(tokio::spawn(clawlet_console::serve(
                listener,
                console,
                shutdown.clone(),
            )))
        }
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    info!("listening on {scheme}://{addr}");
    announce(w);

    if let Some(path) = loaded.source.clone() {
        tokio::spawn(watch(
            path,
            baseline,
            Arc::clone(&reloads),
            shutdown.clone(),
        ));
    }
    let limits = wiring::server_limits(w);
    let dispatcher = Arc::new(dispatcher);
    let live = Live {
        opts,
        running: loaded.config.webhooks.clone(),
        current: loaded,
        app: app.clone(),
        dispatcher: Arc::clone(&dispatcher),
        tls: tls.clone(),
        console: console.map(|(console, _)| console),
    };
    let reloads = tokio::spawn(live.run(reloads, shutdown.clone()));
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
    if let Some(task) = console_task {
        match task.await {
            Ok(Err(err)) => warn!("the console's listener failed: {err}"),
            Err(err) => warn!("the console's listener task failed: {err}"),
            Ok(Ok(())) => {}
        }
    }
    // The reload task holds a reference to the dispatcher; it ends on cancellation.
    let _ = reloads.await;
    match Arc::try_unwrap(dispatcher) {
        Ok(dispatcher) => dispatcher.join().await,
        Err(_) => warn!("delivery did not stop cleanly; pending work stays in the journal"),
    }
    info!("stopped");
    served.context("serving HTTP").map_err(Failure::from)
}

/// The settings a reload cannot change in a running daemon, by key, when they differ.
fn needs_restart(old: &Webhooks, new: &Webhooks) -> Vec<&'static str> {
    let changed = [
        ("webhooks.enabled", old.enabled != new.enabled),
        ("webhooks.host", old.host != new.host),
        ("webhooks.port", old.port != new.port),
        ("webhooks.queue", old.queue != new.queue),
        ("webhooks.ssl", old.ssl != new.ssl),
        ("webhooks.limits", old.limits != new.limits),
        ("webhooks.telemetry", old.telemetry != new.telemetry),
        // The console's listener stays as started; its token and names follow reloads.
        (
            "webhooks.admin",
            (old.admin.enabled, &old.admin.host, old.admin.port)
                != (new.admin.enabled, &new.admin.host, new.admin.port),
        ),
        (
            "webhooks.logging.level",
            old.logging.level != new.logging.level,
        ),
        (
            "webhooks.logging.format",
            old.logging.format != new.logging.format,
        ),
    ];
    changed
        .into_iter()
        .filter_map(|(key, differs)| differs.then_some(key))
        .collect()
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
    // One line with every path, so that a 404 in a sender's log (counted in /metrics as
    // webhook_unmatched_requests, logged at debug) can be checked against it at a glance.
    let paths: Vec<&str> = w
        .handlers
        .values()
        .filter(|h| h.enabled)
        .map(|h| h.path.as_str())
        .collect();
    info!(
        "webhook paths: {}; any other path is answered 404",
        paths.join(" ")
    );
}

/// The console's state, when `webhooks.admin.enabled`: fed request outcomes by the HTTP
/// layer's metrics, and on nats a reader of the stream as the CLI's.
async fn start_console(
    loaded: &Loaded,
    bus: &Bus,
    app: &App,
) -> Result<Option<(clawlet_console::Console, clawlet_config::Admin)>> {
    let w = &loaded.config.webhooks;
    if !w.admin.enabled {
        return Ok(None);
    }
    if w.admin.token.is_none() {
        warn!(
            "the console runs WITHOUT a token (webhooks.admin.token: none): anyone who can reach {}:{} can replay and purge events",
            w.admin.host, w.admin.port
        );
    }
    let traffic = clawlet_console::Traffic::default();
    app.metrics().set_tap(Arc::new(TrafficTap(traffic.clone())));
    let nats = match &w.queue.backend {
        clawlet_config::QueueBackend::Nats => {
            let nats = &w.queue.nats;
            let admin = clawlet_bus::NatsAdmin::connect(
                &nats.url,
                &wiring::shown_urls(&nats.url),
                &nats.stream,
                wiring::agents(w, &loaded.credential_vars),
                wiring::routes(w),
            )
            .await
            .context("opening the NATS stream for the console")?;
            Some(Arc::new(admin))
        }
        _ => None,
    };
    let names = wiring::console_names(w);
    let console = clawlet_console::Console::new(clawlet_console::ConsoleOptions {
        bus: bus.clone(),
        token: names.token,
        handlers: names.handlers,
        agents: names.agents,
        traffic,
        nats,
    });
    Ok(Some((console, w.admin.clone())))
}

/// Counts each request the HTTP layer answers into the console's per-minute table.
struct TrafficTap(clawlet_console::Traffic);

impl clawlet_http::RequestTap for TrafficTap {
    fn answered(&self, handler: &str, outcome: Result<&'static str, &'static str>) {
        use clawlet_console::RequestOutcome;
        let outcome = match outcome {
            Ok("accepted") => RequestOutcome::Accepted,
            Ok("duplicate") => RequestOutcome::Duplicate,
            Ok(_) => RequestOutcome::Ignored,
            Err(reason) => RequestOutcome::Refused(reason),
        };
        self.0.record(handler, outcome);
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

fn spawn_signals(shutdown: CancellationToken, reload: Arc<ReloadRequests>) -> Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => { info!("SIGTERM: draining in-flight requests"); break; }
                _ = int.recv() => { info!("SIGINT: draining in-flight requests"); break; }
                _ = hup.recv() => reload.request(Reason::Signal),
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
    Signal = 1,
    FileChanged = 2,
}

/// The reasons gathered for the next reload.
#[derive(Debug, Clone, Copy, Default)]
struct Reasons(u8);

impl Reasons {
    fn has(self, reason: Reason) -> bool {
        self.0 & reason as u8 != 0
    }

    fn label(self) -> &'static str {
        match (self.has(Reason::Signal), self.has(Reason::FileChanged)) {
            (true, true) => "Signal+FileChanged",
            (true, false) => "Signal",
            _ => "FileChanged",
        }
    }
}

/// Reload requests, coalesced: a flag per reason and one wake-up, never a queue.
///
/// However many signals and file changes arrive while a reload runs, they leave one more reload
/// to do, and that reload reads the file as it is when it starts, so the latest file is the one
/// applied. A bounded queue dropped requests when full (the last file could be missed) and
/// replayed stale ones one by one.
#[derive(Debug, Default)]
struct ReloadRequests {
    pending: AtomicU8,
    wake: Notify,
}

impl ReloadRequests {
    fn request(&self, reason: Reason) {
        self.pending.fetch_or(reason as u8, Ordering::AcqRel);
        // Stores a permit when the reload task is busy, so the request is not lost.
        self.wake.notify_one();
    }

    /// Takes every reason requested so far (none when there is none).
    fn take(&self) -> Reasons {
        Reasons(self.pending.swap(0, Ordering::AcqRel))
    }

    /// Waits until at least one reload is requested and takes the reasons.
    async fn next(&self) -> Reasons {
        loop {
            let reasons = self.take();
            if reasons.0 != 0 {
                return reasons;
            }
            self.wake.notified().await;
        }
    }
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
    reload: Arc<ReloadRequests>,
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
            reload.request(Reason::FileChanged);
        }
    }
}

/// The running configuration and the pieces a reload swaps.
struct Live {
    opts: LoadOptions,
    /// The configuration started with: what the listener, the queue and the other restart-only
    /// settings run, whatever reloads applied since. The needs-restart warning compares a new
    /// file with it, so the warning lasts while the file differs from what runs and stops when
    /// the file goes back to it.
    running: Webhooks,
    /// The last configuration applied (restart-only values as written, not as running).
    current: Loaded,
    app: App,
    dispatcher: Arc<Dispatcher>,
    tls: Option<TlsReloader>,
    /// The console, when `webhooks.admin.enabled` was set at start.
    console: Option<clawlet_console::Console>,
}

impl Live {
    async fn run(mut self, requests: Arc<ReloadRequests>, shutdown: CancellationToken) {
        loop {
            let mut reasons = tokio::select! {
                r = requests.next() => r,
                () = shutdown.cancelled() => return,
            };
            if !reasons.has(Reason::Signal) {
                tokio::select! {
                    () = tokio::time::sleep(RELOAD_SETTLE) => {}
                    () = shutdown.cancelled() => return,
                }
                reasons = Reasons(reasons.0 | requests.take().0);
            }
            match self.reload(reasons) {
                Ok(Some(next)) => self.current = next,
                Ok(None) => {}
                Err(errors) => {
                    // One line per error, each saying what happened, so that a search for the
                    // refusal finds every reason.
                    for error in errors {
                        error!(
                            reason = %reasons.label(),
                            "configuration reload refused, the running configuration stays: {error}"
                        );
                    }
                }
            }
        }
    }

    /// Loads the file and applies it whole, or nothing of it.
    ///
    /// Every part that can be refused is built first: the configuration's own checks, the plan
    /// (verifiers, agents, routes), the HTTP runtime, and on a signal the TLS certificate. Then
    /// the dispatcher swaps agents and routes (it builds both before it swaps either, so a
    /// refusal there leaves them as they were), and only after it the HTTP runtime and the
    /// certificate, which cannot fail. `current` is the last file applied, so a file equal to it
    /// changes nothing and any other valid file is applied; restart-only settings are compared
    /// with `running` instead, and named at every applied reload while they differ. `Ok(None)`
    /// when nothing changed.
    fn reload(&self, reasons: Reasons) -> Result<Option<Loaded>, Vec<String>> {
        let (current, app, dispatcher) = (&self.current, &self.app, &self.dispatcher);
        let next = clawlet_config::load(&self.opts).map_err(|errors| {
            errors
                .errors()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        })?;
        // Errors past the configuration's own checks name the file too.
        let origin = next.source.as_ref().map_or_else(
            || "built-in defaults".to_owned(),
            |path| path.display().to_string(),
        );
        let refused =
            |key: &str, err: &dyn std::fmt::Display| vec![format!("{origin}: {key}: {err}")];
        let cert = match &self.tls {
            Some(tls) if reasons.has(Reason::Signal) => {
                Some(tls.prepare().map_err(|err| refused("webhooks.ssl", &err))?)
            }
            _ => None,
        };
        let install_cert = |cert: Option<clawlet_http::PreparedCert>| {
            if let (Some(tls), Some(cert)) = (&self.tls, cert) {
                tls.install(cert);
                info!("TLS certificate reloaded");
            }
        };
        let warn_pending = |new: &Webhooks| {
            let pending = needs_restart(&self.running, new);
            if !pending.is_empty() {
                warn!(
                    "changed settings take effect at the next restart, the running values stay until then: {}",
                    pending.join(", ")
                );
            }
        };
        if next.config == current.config {
            install_cert(cert);
            info!(reason = %reasons.label(), "configuration unchanged, nothing to apply");
            return Ok(None);
        }
        let new = &next.config.webhooks;
        let plan = wiring::plan(&next).map_err(|errors| errors.0)?;
        let runtime = app
            .prepare(plan.runtime)
            .map_err(|err| refused("webhooks.handlers", &err))?;
        dispatcher
            .reload(plan.agents, plan.routes)
            .map_err(|err| refused("webhooks.agents", &err))?;
        app.install(runtime);
        install_cert(cert);
        if let Some(console) = &self.console {
            let names = wiring::console_names(new);
            console.reload(names.token, names.handlers, names.agents);
        }
        warn_pending(new);
        for warning in &next.warnings {
            warn!("{warning}");
        }
        announce(new);
        info!(reason = %reasons.label(), "configuration reloaded");
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

#[cfg(test)]
mod tests {
    use std::future::Future as _;

    use super::*;

    /// However many requests arrive while a reload runs, they leave exactly one more reload,
    /// which knows every reason asked for.
    #[tokio::test]
    async fn reload_requests_coalesce() {
        let requests = ReloadRequests::default();
        for _ in 0..100 {
            requests.request(Reason::Signal);
        }
        requests.request(Reason::FileChanged);
        let reasons = requests.next().await;
        assert_eq!(reasons.label(), "Signal+FileChanged");
        assert_eq!(requests.take().0, 0, "one reload covers them all");
        // The wake-up left behind by the burst does not produce a reload with no reason: polled
        // once, the wait consumes it and stays pending.
        let mut waiting = std::pin::pin!(requests.next());
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(
            waiting.as_mut().poll(&mut cx).is_pending(),
            "a reload ran with nothing requested"
        );
        requests.request(Reason::FileChanged);
        assert_eq!(requests.next().await.label(), "FileChanged");
    }
}
