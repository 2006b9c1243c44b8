//! The cost tables: how the daemon's cost grows with connections, stored events and clients.
//!
//! - `connections`: p99 at 64, 256 and 1024 connections, the daemon beside its ceilings.
//! - `stored`: a journal filled with `--events` events through the daemon itself (the log agent
//!   records each as delivered at publish), then the restart, `GET /health` and `events list
//!   --limit 50` on it.
//! - `clients`: peak RSS with 10,000 distinct client addresses against one, the rate limiter on.

use std::fmt::Write as _;
use std::fs;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use super::{
    Backend, Bench, CeilingMode, Load, OursConfig, Row, Server, http_get_status, load_average,
    load_run, measure, median, next_run_id, opt, start, table,
};

/// The connection counts of the `connections` scenario.
const CONNECTIONS: [u32; 3] = [64, 256, 1024];
/// `GET /health` requests timed on the full journal.
const HEALTH_SAMPLES: usize = 200;
/// `events list --limit 50` commands timed on the full journal.
const LIST_SAMPLES: usize = 15;
/// Distinct client addresses of the `clients` scenario.
const CLIENTS: u32 = 10_000;
/// Requests per connection there: 200,000 requests open 10,000 connections, one per address.
const CLIENT_REQUESTS: u64 = 200_000;
const REQUESTS_PER_CONNECTION: u64 = 20;
/// A rate limit no run reaches, so that every client gets its entry and no answer is a 429.
const UNREACHED_LIMIT: u64 = 100_000_000;

pub(super) fn connections(bench: &Bench) -> Result<String> {
    let mut rows = Vec::new();
    for conns in CONNECTIONS {
        let load = Load::signed(conns, &bench.push_body);
        for (server, case) in [
            (Server::Ceiling(CeilingMode::Durable), "durable"),
            (Server::ours(Backend::Sqlite), "sqlite"),
            (Server::Ceiling(CeilingMode::Memory), "memory"),
            (Server::ours(Backend::Memory), "memory"),
        ] {
            rows.push(measure(bench, &server, &load, case)?);
        }
    }
    let mut out = String::from("### Connections: the tail as they grow (signed 7.3 KB pushes)\n\n");
    table(&mut out, &rows);
    out.push_str("| server | case | p99 ms at 64 | at 256 | at 1024 |\n|---|---|--:|--:|--:|\n");
    for (server, case) in [
        ("clawlet-ceiling", "durable"),
        ("clawlet-webhookd", "sqlite"),
        ("clawlet-ceiling", "memory"),
        ("clawlet-webhookd", "memory"),
    ] {
        let p99: Vec<String> = CONNECTIONS
            .iter()
            .map(|conns| {
                rows.iter()
                    .find(|r| r.server == server && r.case == case && r.conns == *conns)
                    .map_or_else(
                        || "n/a".to_owned(),
                        |r| format!("{:.2}", f64::from(r.measured.p99_us) / 1000.0),
                    )
            })
            .collect();
        let _ = writeln!(out, "| {server} | {case} | {} |", p99.join(" | "));
    }
    let _ = writeln!(out, "\nLoad average at the end: {}.\n", load_average());
    Ok(out)
}

pub(super) fn stored(bench: &Bench) -> Result<String> {
    let events = bench.options.events;
    let dir = bench.work.join("stored");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let journal = dir.join("journal.sqlite");
    let server = Server::Ours(OursConfig {
        journal: Some(journal.clone()),
        max_pending: Some(10_000_000),
        ..OursConfig::plain(Backend::Sqlite)
    });

    let mut fill = Load::signed(64, &bench.push_body);
    fill.max_requests = Some(events);
    fill.duration = Some(600);
    let mut running = start(bench, &server, next_run_id())?;
    let filled = load_run(
        bench,
        std::slice::from_ref(&running),
        &fill,
        "fill",
        "clawlet-webhookd",
    )?;
    running.stop();
    if filled.measured.ok < events {
        bail!(
            "only {} of {events} events were stored in 600 s; lower --events",
            filled.measured.ok
        );
    }
    let journal_mib = fs::metadata(&journal)
        .map(|m| m.len() as f64 / (1024.0 * 1024.0))
        .ok();

    let began = Instant::now();
    let mut running = start(bench, &server, next_run_id())?;
    let ready_s = began.elapsed().as_secs_f64();
    let rss_mib = rss_kib(running.pid()).map(|k| k as f64 / 1024.0);

    let mut health_ms = Vec::with_capacity(HEALTH_SAMPLES);
    for _ in 0..HEALTH_SAMPLES {
        let began = Instant::now();
        let status = http_get_status(running.port, "/health")?;
        if status != 200 {
            bail!("GET /health answered {status} on the full journal");
        }
        health_ms.push(began.elapsed().as_secs_f64() * 1000.0);
    }
    let mut list_ms = Vec::with_capacity(LIST_SAMPLES);
    for _ in 0..LIST_SAMPLES {
        let began = Instant::now();
        let status = Command::new(&bench.daemon)
            .args(["events", "list", "--limit", "50", "--journal"])
            .arg(&journal)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("running events list")?;
        if !status.success() {
            bail!("`events list --limit 50` failed with {status}");
        }
        list_ms.push(began.elapsed().as_secs_f64() * 1000.0);
    }
    running.stop();
    let list_verdict = verdict_at_most(median(&list_ms), 50.0);

    let mut out = format!(
        "### A journal of {events} events\n\n\
         Filled through the daemon at {:.0} req/s ({} events accepted, server CPU {} µs/req); \
         journal file {} MiB. The restarted daemon answered `/health` after {ready_s:.2} s (it \
         loads the dedup window's ids), with {} MiB resident.\n\n\
         | measure | p50 ms | p90 ms | max ms | samples | target |\n|---|--:|--:|--:|--:|---|\n",
        filled.measured.rps,
        filled.measured.ok,
        opt(filled.measured.cpu_us_per_request, 1),
        opt(journal_mib, 0),
        opt(rss_mib, 1),
    );
    for (measure, samples, target) in [
        (
            "`GET /health` (a new connection each)",
            &mut health_ms,
            String::new(),
        ),
        (
            "`clawlet-webhookd events list --limit 50` (the whole process)",
            &mut list_ms,
            list_verdict,
        ),
    ] {
        samples.sort_by(f64::total_cmp);
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        let _ = writeln!(
            out,
            "| {measure} | {:.2} | {:.2} | {:.2} | {} | {target} |",
            at(0.5),
            at(0.9),
            at(1.0),
            samples.len(),
        );
    }
    let _ = writeln!(out, "\nLoad average at the end: {}.\n", load_average());
    Ok(out)
}

fn verdict_at_most(value: Option<f64>, bound: f64) -> String {
    match value {
        Some(v) if v <= bound => format!("≤ {bound}: met"),
        Some(_) => format!("≤ {bound}: missed"),
        None => String::new(),
    }
}

pub(super) fn clients(bench: &Bench) -> Result<String> {
    let limited = Server::Ours(OursConfig {
        rate_limit: Some(UNREACHED_LIMIT),
        ..OursConfig::plain(Backend::Sqlite)
    });
    let mut rows: Vec<(u32, Row)> = Vec::new();
    for addresses in [1, CLIENTS] {
        let mut load = Load::signed(bench.options.connections, &bench.push_body);
        load.max_requests = Some(CLIENT_REQUESTS);
        load.per_connection = REQUESTS_PER_CONNECTION;
        load.duration = Some(120);
        if addresses > 1 {
            load.source_ips = addresses;
        }
        let case = format!("{addresses} client address(es), a connection per 20 requests");
        rows.push((addresses, measure(bench, &limited, &load, &case)?));
    }
    let mut out = String::from(
        "### Clients: memory with 10,000 distinct client addresses\n\n\
         sqlite backend, the per-client rate limit on (at a rate no client reaches, so every \
         address gets its entry), 200,000 requests in connections of 20 requests each; \
         `clawlet-loadgen --source-ips` binds each new connection to the next of 127.1.0.0 and \
         up.\n\n\
         | client addresses | req/s | p99 ms | server CPU µs/req | peak RSS MiB | answers |\n\
         |--:|--:|--:|--:|--:|---|\n",
    );
    for (addresses, row) in &rows {
        let m = &row.measured;
        let _ = writeln!(
            out,
            "| {addresses} | {:.0} | {:.2} | {} | {} | {} |",
            m.rps,
            f64::from(m.p99_us) / 1000.0,
            opt(m.cpu_us_per_request, 1),
            opt(m.peak_rss_kib.map(|k| k as f64 / 1024.0), 1),
            m.answers(),
        );
    }
    if let [(_, one), (many, spread)] = rows.as_slice()
        && let (Some(a), Some(b)) = (one.measured.peak_rss_kib, spread.measured.peak_rss_kib)
    {
        let per_client = (b as f64 - a as f64) * 1024.0 / f64::from(*many);
        let _ = writeln!(
            out,
            "\nPeak RSS difference per extra client address: {per_client:.0} bytes."
        );
    }
    let _ = writeln!(out, "\nLoad average at the end: {}.\n", load_average());
    Ok(out)
}

/// Resident memory of a process, from `/proc/PID/status`.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        l.strip_prefix("VmRSS:")
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    })
}
