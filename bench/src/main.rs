//! `clawlet-loadgen`: a closed-loop HTTP/1.1 load generator for webhook receivers on this machine.
//!
//! Each of `--connections` workers keeps one keep-alive connection and sends signed deliveries back
//! to back: the same body every time, a fresh delivery id every time. It measures what the client
//! sees (requests/s, status codes, latency percentiles over every request) and, given the server's
//! `--pid`, what the server spent (CPU µs per request, peak RSS). It must never send to another
//! host: only loopback targets are accepted, and every run is bounded by `--duration` and/or
//! `--requests`. `cargo xtask bench` drives it; it is also handy alone:
//!
//! ```text
//! clawlet-loadgen --url http://127.0.0.1:8080/webhook/github --secret "$S" \
//!     --body testdata/payloads/github_push.json --connections 64 --duration 10s --pid "$PID"
//! ```
#![allow(
    clippy::print_stdout,
    reason = "the report on stdout is this tool's output"
)]

mod load;
mod procfs;
mod stats;
mod target;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Parser;

use crate::load::{Budget, Scheme, Sources, Template, WorkerStats};
use crate::stats::Latency;

/// Load-tests a webhook receiver on loopback with signed deliveries.
#[derive(Debug, Parser)]
#[command(name = "clawlet-loadgen", version)]
struct Args {
    /// Endpoint to load; only 127.0.0.0/8, [::1] and localhost are accepted. Repeat it to spread
    /// the connections over several servers, in turn.
    #[arg(long, required = true)]
    url: Vec<String>,
    /// Concurrent keep-alive connections, one request in flight on each.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Stop after this long, such as `10s` [default: 10s unless --requests is given].
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Stop after this many requests (and after 10 minutes at most when no --duration is given).
    #[arg(long)]
    requests: Option<u64>,
    /// Request body file [default: a small JSON push event].
    #[arg(long, value_name = "FILE")]
    body: Option<PathBuf>,
    /// Shared secret to sign with.
    #[arg(long, default_value = "", hide_default_value = true)]
    secret: String,
    /// How requests are signed.
    #[arg(long, value_enum, default_value_t = Scheme::Github)]
    scheme: Scheme,
    /// Send a well-formed but wrong signature, to measure the rejection path.
    #[arg(long)]
    bad_signature: bool,
    /// Server process id, to report its CPU time per request and its peak memory.
    #[arg(long)]
    pid: Option<u32>,
    /// Give up on a request after this long.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    timeout: Duration,
    /// Runtime threads for the generator [default: the number of CPUs].
    #[arg(long)]
    threads: Option<usize>,
    /// Open connections from this many distinct loopback addresses (127.1.0.0 and up), each new
    /// connection from the next one, so that the server sees that many clients; IPv4 targets only.
    #[arg(long, default_value_t = 0)]
    source_ips: u32,
    /// Close each connection after this many requests and open the next (0: keep it).
    #[arg(long, default_value_t = 0)]
    requests_per_connection: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Longest run accepted, so that a typo cannot tie up a shared machine for hours.
const MAX_DURATION: Duration = Duration::from_secs(600);
/// How long requests still in flight at the deadline may take to finish (at least a tenth of the
/// run, so that big bodies near the end are not counted as lost).
const DRAIN: Duration = Duration::from_secs(2);
/// How often the server's resident memory is sampled.
const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(20);

fn main() -> Result<()> {
    let args = Args::parse();
    if args.connections == 0 {
        bail!("--connections must be at least 1");
    }
    let duration = match (args.duration, args.requests) {
        (Some(d), _) if d > MAX_DURATION => bail!("--duration is capped at {MAX_DURATION:?}"),
        (Some(d), _) => d,
        (None, Some(_)) => MAX_DURATION,
        (None, None) => Duration::from_secs(10),
    };
    let targets = args
        .url
        .iter()
        .map(|url| target::parse_url(url))
        .collect::<Result<Vec<_>, _>>()?;
    let body = match &args.body {
        Some(path) => Bytes::from(
            std::fs::read(path).with_context(|| format!("reading --body {}", path.display()))?,
        ),
        None => Bytes::from_static(
            br#"{"ref":"refs/heads/main","commits":[],"repository":{"full_name":"o/r"}}"#,
        ),
    };
    let body_bytes = body.len();
    let templates = targets
        .iter()
        .map(|target| {
            Template::new(
                target,
                args.scheme,
                args.secret.as_bytes(),
                args.bad_signature,
                body.clone(),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(pid) = args.pid {
        procfs::cpu_ticks(pid)
            .with_context(|| format!("--pid {pid}: cannot read /proc/{pid}/stat"))?;
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let report = runtime.block_on(run(&args, targets, templates, body_bytes, duration))?;
    if args.json {
        println!("{}", report.to_json(&args));
    } else {
        report.print_text(&args);
    }
    Ok(())
}

/// Everything measured in one run.
#[derive(Debug)]
struct Report {
    elapsed: Duration,
    stats: WorkerStats,
    latency: Latency,
    body_bytes: usize,
    server_cpu_us: Option<u64>,
    client_cpu_us: Option<u64>,
    server_memory: Option<procfs::Memory>,
    server_max_rss_kib: u64,
}

async fn run(
    args: &Args,
    targets: Vec<target::Target>,
    templates: Vec<Template>,
    body_bytes: usize,
    duration: Duration,
) -> Result<Report> {
    let ticks_per_second = procfs::clock_ticks_per_second();
    let to_us = |ticks: u64| ticks * 1_000_000 / ticks_per_second;
    let targets: Vec<_> = targets.into_iter().map(Arc::new).collect();
    let templates: Vec<_> = templates.into_iter().map(Arc::new).collect();

    let stop_sampling = Arc::new(AtomicBool::new(false));
    let max_rss = Arc::new(AtomicU64::new(0));
    let sampler = args.pid.map(|pid| {
        let stop = Arc::clone(&stop_sampling);
        let max_rss = Arc::clone(&max_rss);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RSS_SAMPLE_EVERY);
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                if let Some(memory) = procfs::memory(pid) {
                    max_rss.fetch_max(memory.rss_kib, Ordering::Relaxed);
                }
            }
        })
    });

    let self_pid = std::process::id();
    let server_before = args.pid.and_then(procfs::cpu_ticks);
    let client_before = procfs::cpu_ticks(self_pid);
    let start = Instant::now();
    // Requests in flight at the deadline get a little longer to finish, then they are abandoned.
    let drain = args.timeout.min(DRAIN.max(duration / 10));
    let budget = Arc::new(Budget::new(
        args.requests.unwrap_or(u64::MAX),
        start + duration,
        start + duration + drain,
    ));
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ (u64::from(self_pid) << 32);
    let sources = Arc::new(Sources::new(args.source_ips, args.requests_per_connection));
    let workers: Vec<_> = (0..args.connections)
        .map(|i| {
            let worker_seed = seed.wrapping_add((i as u64).wrapping_mul(0xA076_1D64_78BD_642F));
            // Connection i loads server i mod n.
            let which = i % targets.len();
            tokio::spawn(load::worker(
                Arc::clone(&targets[which]),
                Arc::clone(&templates[which]),
                Arc::clone(&budget),
                Arc::clone(&sources),
                args.timeout,
                worker_seed,
            ))
        })
        .collect();
    let mut stats = WorkerStats::default();
    for worker in workers {
        stats.merge(worker.await.context("a load worker panicked")?);
    }
    let elapsed = start.elapsed();
    let server_after = args.pid.and_then(procfs::cpu_ticks);
    let client_after = procfs::cpu_ticks(self_pid);
    let server_memory = args.pid.and_then(procfs::memory);
    stop_sampling.store(true, Ordering::Relaxed);
    if let Some(sampler) = sampler {
        sampler.await.context("the memory sampler panicked")?;
    }
    let latency = Latency::from_samples(&mut stats.latencies_us);
    Ok(Report {
        elapsed,
        latency,
        body_bytes,
        server_cpu_us: server_before
            .zip(server_after)
            .map(|(b, a)| to_us(a.saturating_sub(b))),
        client_cpu_us: client_before
            .zip(client_after)
            .map(|(b, a)| to_us(a.saturating_sub(b))),
        server_memory,
        server_max_rss_kib: max_rss
            .load(Ordering::Relaxed)
            .max(server_memory.map_or(0, |m| m.rss_kib)),
        stats,
    })
}

impl Report {
    fn answered(&self) -> u64 {
        self.stats.statuses.values().sum()
    }

    fn errors(&self) -> u64 {
        let s = &self.stats;
        s.connect_errors + s.io_errors + s.timeouts + s.unfinished
    }

    fn class(&self, first_digit: u16) -> u64 {
        self.stats
            .statuses
            .iter()
            .filter(|(s, _)| **s / 100 == first_digit)
            .map(|(_, n)| n)
            .sum()
    }

    #[allow(
        clippy::cast_precision_loss,
        reason = "request counts are far below 2^52"
    )]
    fn per_second(&self) -> f64 {
        self.answered() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    #[allow(
        clippy::cast_precision_loss,
        reason = "counts and microseconds are far below 2^52"
    )]
    fn per_request(&self, micros: Option<u64>) -> Option<f64> {
        let answered = self.answered();
        micros
            .filter(|_| answered > 0)
            .map(|us| us as f64 / answered as f64)
    }

    fn to_json(&self, args: &Args) -> serde_json::Value {
        let statuses: serde_json::Map<String, serde_json::Value> = self
            .stats
            .statuses
            .iter()
            .map(|(s, n)| (s.to_string(), (*n).into()))
            .collect();
        serde_json::json!({
            "url": args.url.join(" "),
            "connections": args.connections,
            "body_bytes": self.body_bytes,
            "bad_signature": args.bad_signature,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "requests": self.answered() + self.errors(),
            "answered": self.answered(),
            "statuses": statuses,
            "status_2xx": self.class(2),
            "status_4xx": self.class(4),
            "status_5xx": self.class(5),
            "retry_after": self.stats.retry_after,
            "connect_errors": self.stats.connect_errors,
            "io_errors": self.stats.io_errors,
            "timeouts": self.stats.timeouts,
            "unfinished": self.stats.unfinished,
            "connections_opened": self.stats.connections,
            "rps": self.per_second(),
            "latency_us": {
                "p50": self.latency.p50, "p90": self.latency.p90, "p99": self.latency.p99,
                "p999": self.latency.p999, "max": self.latency.max, "mean": self.latency.mean,
            },
            "server_cpu_us": self.server_cpu_us,
            "server_cpu_us_per_request": self.per_request(self.server_cpu_us),
            "client_cpu_us_per_request": self.per_request(self.client_cpu_us),
            "server_peak_rss_kib": self.server_memory.map(|m| m.hwm_kib),
            "server_max_sampled_rss_kib": args.pid.map(|_| self.server_max_rss_kib),
            "server_final_rss_kib": self.server_memory.map(|m| m.rss_kib),
        })
    }

    fn print_text(&self, args: &Args) {
        let statuses: Vec<String> = self
            .stats
            .statuses
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect();
        let ms = |us: u32| f64::from(us) / 1000.0;
        println!(
            "target      {} ({} connections, {} B body)",
            args.url.join(" "),
            args.connections,
            self.body_bytes
        );
        println!(
            "requests    {} in {:.2} s = {:.0} req/s ({} answered, {} errors: {} connect, {} i/o, {} timeout, {} unfinished)",
            self.answered() + self.errors(),
            self.elapsed.as_secs_f64(),
            self.per_second(),
            self.answered(),
            self.errors(),
            self.stats.connect_errors,
            self.stats.io_errors,
            self.stats.timeouts,
            self.stats.unfinished,
        );
        println!(
            "statuses    {} (Retry-After on {})",
            statuses.join(", "),
            self.stats.retry_after
        );
        println!(
            "latency ms  p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}  mean {:.2}",
            ms(self.latency.p50),
            ms(self.latency.p90),
            ms(self.latency.p99),
            ms(self.latency.p999),
            ms(self.latency.max),
            ms(self.latency.mean),
        );
        if let Some(cpu) = self.per_request(self.server_cpu_us) {
            println!("server cpu  {cpu:.1} µs/request");
        }
        if let Some(memory) = self.server_memory {
            println!(
                "server rss  peak {:.1} MiB (VmHWM), max sampled {:.1} MiB, now {:.1} MiB",
                kib_to_mib(memory.hwm_kib),
                kib_to_mib(self.server_max_rss_kib),
                kib_to_mib(memory.rss_kib),
            );
        }
        if let Some(cpu) = self.per_request(self.client_cpu_us) {
            println!("client cpu  {cpu:.1} µs/request (this generator)");
        }
    }
}

#[allow(
    clippy::cast_precision_loss,
    reason = "memory sizes in KiB are far below 2^52"
)]
fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
