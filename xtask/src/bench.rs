//! `cargo xtask bench`: the load run against the release binary, side by side with the incumbent.
//!
//! Builds `clawlet-webhookd` and `clawlet-loadgen` in release mode, starts the daemon on a free
//! loopback port with a generated configuration, waits for `GET /health`, drives it with
//! `clawlet-loadgen` for a bounded time, stops it, and prints a markdown table for BENCHMARKS.md.
//! When the Go `webhook` server (Debian package `webhook`) is installed it runs in the same
//! session with an equivalent hook, in alternating rounds, and the table ends with the ratios.
//! Networking lives in `clawlet-loadgen`; this file only writes files and starts processes.

use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::{capture, cargo, exec, workspace_root};

mod costs;
mod deliver;

const USAGE: &str = "\
usage: cargo xtask bench [OPTIONS]

Builds the release binaries, then load-tests clawlet-webhookd on 127.0.0.1 and, when
/usr/bin/webhook is installed, the Go webhook server with an equivalent hook.

options:
  --scenario NAME    compare (default): the ceilings (clawlet-ceiling: axum, the same HMAC
                       check, then an in-memory channel or a group-committed fdatasync append),
                       the daemon on memory and sqlite, webhook, and wrong signatures, in
                       alternating rounds, with every ratio
                     deliver: intake with a fast HTTP agent and with an exec agent attached,
                       against none, and how fast and how completely events reach the agent
                     sizes: 1 KB, 8 KB, 64 KB, 1 MB and 25 MB bodies; CPU per request, peak RSS
                     connections: p99 at 64, 256 and 1024 connections, daemon and ceilings
                     stored: /health and `events list --limit 50` with --events stored events
                     clients: peak RSS with 10,000 distinct client addresses against one
                     costs: sizes, connections, stored and clients
                     overload: 4x the connections, a small queue and a slow agent; expect
                       fast 503 with Retry-After and bounded memory
                     slow-agent: latency with an agent that sleeps 1 s, against none
                     all: every scenario above
                     nats: the daemon on one JetStream server beside raw JetStream publishes
                       (64 in flight, the same payload), and how fast the stream is delivered
                       to the log agent and to a fast HTTP agent (needs /usr/sbin/nats-server)
                     nats-cluster: req/s and p99 with 1, 2 and 3 daemons on a three-node
                       cluster, stream of three replicas
  --duration SECS    length of each run (default 10)
  --connections N    concurrent keep-alive connections (default 64)
  --rounds N         compare, deliver: how many times to alternate the runs (default 1)
  --events N         stored: how many events the journal holds (default 1000000)
  --profile NAME     cargo profile to build and run (default release; `bench` keeps symbols
                       for perf, and builds into target/release as cargo does)
  --no-build         use the binaries already built";

/// The shared secret both servers verify with; a benchmark secret, not a real one.
const SECRET: &str = "clawlet-bench-secret";
/// How long a server may take to answer its first health check.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a server may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Entry point for `cargo xtask bench`.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let Some(options) = Options::parse(args)? else {
        println!("{USAGE}");
        return Ok(());
    };
    let root = workspace_root();
    if options.build {
        exec(
            cargo()
                .args([
                    "build",
                    "--profile",
                    &options.profile,
                    "-p",
                    "clawlet-webhookd",
                    "-p",
                    "clawlet-bench",
                ])
                .current_dir(&root),
        )?;
    }
    let target_dir =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let release = target_dir.join(profile_dir(&options.profile));
    let work = WorkDir::create()?;
    let bench = Bench {
        daemon: release.join("clawlet-webhookd"),
        loadgen: release.join("clawlet-loadgen"),
        natsbench: release.join("clawlet-natsbench"),
        ceiling: release.join("clawlet-ceiling"),
        webhook: find_webhook(),
        push_body: root.join("testdata/payloads/github_push.json"),
        work: work.path.clone(),
        options,
    };
    for binary in [
        &bench.daemon,
        &bench.loadgen,
        &bench.natsbench,
        &bench.ceiling,
    ] {
        if !binary.exists() {
            bail!("{} is missing: run without --no-build", binary.display());
        }
    }

    // The markdown goes to stdout section by section, so that a failure keeps what was measured;
    // progress goes to stderr.
    let mut header = String::new();
    write_header(&mut header, &bench, args)?;
    println!("{header}");
    for scenario in &bench.options.scenarios {
        let section = match scenario {
            Scenario::Compare => compare(&bench)?,
            Scenario::Sizes => sizes(&bench)?,
            Scenario::Deliver => deliver::deliver(&bench)?,
            Scenario::Connections => costs::connections(&bench)?,
            Scenario::Stored => costs::stored(&bench)?,
            Scenario::Clients => costs::clients(&bench)?,
            Scenario::Overload => overload(&bench)?,
            Scenario::SlowAgent => slow_agent(&bench)?,
            Scenario::Nats => nats(&bench)?,
            Scenario::NatsCluster => nats_cluster(&bench)?,
        };
        println!("{section}");
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Compare,
    Deliver,
    Sizes,
    Connections,
    Stored,
    Clients,
    Overload,
    SlowAgent,
    Nats,
    NatsCluster,
}

#[derive(Debug)]
struct Options {
    scenarios: Vec<Scenario>,
    duration: u64,
    connections: u32,
    rounds: u32,
    events: u64,
    profile: String,
    build: bool,
}

impl Options {
    /// `None` when help was asked for.
    fn parse(args: &[String]) -> Result<Option<Self>> {
        let mut options = Self {
            scenarios: vec![Scenario::Compare],
            duration: 10,
            connections: 64,
            rounds: 1,
            events: 1_000_000,
            profile: "release".to_owned(),
            build: true,
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let mut value = || {
                args.next()
                    .with_context(|| format!("{flag} needs a value\n\n{USAGE}"))
            };
            match flag.as_str() {
                "-h" | "--help" => return Ok(None),
                "--no-build" => options.build = false,
                "--scenario" => {
                    options.scenarios = match value()?.as_str() {
                        "compare" => vec![Scenario::Compare],
                        "sizes" => vec![Scenario::Sizes],
                        "deliver" => vec![Scenario::Deliver],
                        "connections" => vec![Scenario::Connections],
                        "stored" => vec![Scenario::Stored],
                        "clients" => vec![Scenario::Clients],
                        "costs" => vec![
                            Scenario::Sizes,
                            Scenario::Connections,
                            Scenario::Stored,
                            Scenario::Clients,
                        ],
                        "overload" => vec![Scenario::Overload],
                        "slow-agent" => vec![Scenario::SlowAgent],
                        "nats" => vec![Scenario::Nats],
                        "nats-cluster" => vec![Scenario::NatsCluster],
                        "all" => vec![
                            Scenario::Compare,
                            Scenario::Deliver,
                            Scenario::SlowAgent,
                            Scenario::Overload,
                            Scenario::Sizes,
                            Scenario::Connections,
                            Scenario::Stored,
                            Scenario::Clients,
                        ],
                        other => bail!("unknown scenario {other:?}\n\n{USAGE}"),
                    }
                }
                "--duration" => options.duration = parse_positive(flag, value()?)?,
                "--connections" => options.connections = parse_positive(flag, value()?)?,
                "--rounds" => options.rounds = parse_positive(flag, value()?)?,
                "--events" => options.events = parse_positive(flag, value()?)?,
                "--profile" => options.profile.clone_from(value()?),
                other => bail!("unknown option {other:?}\n\n{USAGE}"),
            }
        }
        if options.duration > 300 {
            bail!("--duration is capped at 300 seconds per run");
        }
        Ok(Some(options))
    }
}

fn parse_positive<T: std::str::FromStr + Default + PartialEq>(flag: &str, text: &str) -> Result<T> {
    match text.parse::<T>() {
        Ok(n) if n != T::default() => Ok(n),
        _ => bail!("{flag} takes a positive whole number, not {text:?}"),
    }
}

/// The folder under the target directory where cargo puts a profile's binaries: `bench`
/// builds into `release` and `test` into `debug`, as their parents do.
fn profile_dir(profile: &str) -> &str {
    match profile {
        "dev" | "test" => "debug",
        "bench" => "release",
        other => other,
    }
}

/// Paths and options shared by every run.
#[derive(Debug)]
struct Bench {
    daemon: PathBuf,
    loadgen: PathBuf,
    /// The JetStream side of the nats scenarios, and the fast HTTP agent.
    natsbench: PathBuf,
    /// The bare receiver the daemon is measured against.
    ceiling: PathBuf,
    webhook: Option<PathBuf>,
    push_body: PathBuf,
    work: PathBuf,
    options: Options,
}

// ---------------------------------------------------------------------------------------------
// Scenarios

fn compare(bench: &Bench) -> Result<String> {
    let signed = Load::signed(bench.options.connections, &bench.push_body);
    let wrong = signed.clone().bad_signature();
    let mut rows = Vec::new();
    let mut load_averages = Vec::new();
    for round in 1..=bench.options.rounds {
        // Each case runs next to its ceiling, and the incumbent follows, so that drift in the
        // machine's load hits every server of a round alike.
        let mut runs = vec![
            (Server::Ceiling(CeilingMode::Memory), &signed, "memory"),
            (Server::ours(Backend::Memory), &signed, "memory"),
            (Server::Ceiling(CeilingMode::Durable), &signed, "durable"),
            (Server::ours(Backend::Sqlite), &signed, "sqlite"),
        ];
        if bench.webhook.is_some() {
            runs.push((Server::Webhook, &signed, "hook, no command"));
        }
        runs.push((Server::ours(Backend::Memory), &wrong, "wrong signature"));
        if bench.webhook.is_some() {
            runs.push((Server::Webhook, &wrong, "wrong signature"));
        }
        for (server, load, case) in runs {
            rows.push(Row {
                round,
                ..measure(bench, &server, load, case)?
            });
        }
        load_averages.push(format!("{round}: {}", load_average()));
    }
    let mut out = String::from(
        "### Throughput against the ceilings: signed 7.3 KB push deliveries\n\n\
         `clawlet-ceiling` is the floor of the work: the daemon's HTTP stack (axum, hyper, tokio), \
         allocator (mimalloc) and signature check (`clawlet_verify::github::verify`), then only \
         a hand-off: an in-memory channel (`memory`), or an append to a flat file by one writer \
         thread that commits what is queued with one `fdatasync` and answers each request after \
         the sync that covers it (`durable`).\n\n",
    );
    table(&mut out, &rows);
    let _ = writeln!(
        out,
        "Load average after each round: {}.\n",
        load_averages.join("; ")
    );
    ratios(&mut out, &rows);
    Ok(out)
}

fn sizes(bench: &Bench) -> Result<String> {
    const KIB: usize = 1024;
    // Fewer connections for bigger bodies, so that peak RSS says what one delivery costs.
    let cases: [(usize, u32, u64); 5] = [
        (KIB, 64, 1_000_000),
        (8 * KIB, 64, 1_000_000),
        (64 * KIB, 16, 100_000),
        (KIB * KIB, 4, 2_000),
        (25 * KIB * KIB, 1, 40),
    ];
    let mut rows = Vec::new();
    for (size, conns, max_requests) in cases {
        let path = bench.work.join(format!("push-{size}.json"));
        fs::write(&path, push_payload(size))
            .with_context(|| format!("writing {}", path.display()))?;
        let mut load = Load::signed(conns.min(bench.options.connections), &path);
        load.max_requests = Some(max_requests);
        for server in bench.servers(Backend::Sqlite) {
            rows.push(measure(bench, &server, &load, &human_size(size))?);
        }
        if size > 4 * KIB * KIB {
            let tuned = OursConfig {
                deploy_allocator: true,
                ..OursConfig::plain(Backend::Sqlite)
            };
            let case = format!("{}, the unit's allocator settings", human_size(size));
            rows.push(measure(bench, &Server::Ours(tuned), &load, &case)?);
        }
        fs::remove_file(&path).ok();
    }
    let mut out = String::from("### Body sizes (sqlite backend for clawlet)\n\n");
    out.push_str("| server | body | conns | req/s | MB/s | p99 ms | server CPU µs/req | µs per KB | peak RSS MiB | RSS / body | answers |\n");
    out.push_str("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|\n");
    for row in &rows {
        let m = &row.measured;
        let kib = row.body as f64 / 1024.0;
        let peak_mib = m.peak_rss_kib.map(|k| k as f64 / 1024.0);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} | {:.1} | {:.2} | {} | {} | {} | {} | {} |",
            row.server,
            row.case,
            row.conns,
            m.rps,
            m.rps * row.body as f64 / 1e6,
            f64::from(m.p99_us) / 1000.0,
            opt(m.cpu_us_per_request, 0),
            opt(m.cpu_us_per_request.map(|us| us / kib), 2),
            opt(peak_mib, 1),
            // The ratio says something only once the body outweighs the process itself.
            opt(
                m.peak_rss_kib
                    .filter(|_| row.body >= 1024 * 1024)
                    .map(|k| k as f64 * 1024.0 / row.body as f64),
                1
            ),
            m.answers(),
        );
    }
    out.push('\n');
    Ok(out)
}

fn overload(bench: &Bench) -> Result<String> {
    let conns = bench.options.connections * 4;
    let push = bench.push_body.clone();
    let mut rows = Vec::new();
    let small_queue = Server::Ours(OursConfig {
        max_pending: Some(64),
        agent_sleep: Some(2),
        ..OursConfig::plain(Backend::Sqlite)
    });
    for (server, case) in [
        (Server::ours(Backend::Sqlite), "sqlite, no limit reached"),
        (small_queue, "sqlite, max_pending 64, agent sleeps 2 s"),
    ] {
        rows.push(measure(bench, &server, &Load::signed(conns, &push), case)?);
    }
    if bench.webhook.is_some() {
        let load = Load::signed(conns, &push);
        rows.push(measure(bench, &Server::Webhook, &load, "hook, no command")?);
    }
    let mut out = format!("### Overload: {conns} connections, a queue that fills\n\n");
    table(&mut out, &rows);
    Ok(out)
}

fn slow_agent(bench: &Bench) -> Result<String> {
    let conns = bench.options.connections;
    let push = bench.push_body.clone();
    let mut rows = Vec::new();
    let slow = Server::Ours(OursConfig {
        // Far above what a run can queue, so that no answer is a 503.
        max_pending: Some(10_000_000),
        agent_sleep: Some(1),
        ..OursConfig::plain(Backend::Sqlite)
    });
    for (server, case) in [
        (Server::ours(Backend::Sqlite), "sqlite, default route (log)"),
        (slow, "sqlite, agent sleeps 1 s"),
    ] {
        rows.push(measure(bench, &server, &Load::signed(conns, &push), case)?);
    }
    let mut out = String::from("### Slow agent: accepting must not wait for delivery\n\n");
    table(&mut out, &rows);
    Ok(out)
}

fn nats(bench: &Bench) -> Result<String> {
    let conns = bench.options.connections;
    let push = bench.push_body.clone();
    let nodes = NatsNodes::start(bench, 1)?;
    let url = nodes.urls[0].clone();
    let sink = Sink::start(bench)?;
    let mut rows = Vec::new();
    let mut dispatch = String::new();
    let mut split = String::new();
    let mut model_stream = None;
    for (agent, http, case) in [
        ("log", None, "log agent (the default route)"),
        (
            "fast",
            Some((sink.url.clone(), 64)),
            "fast HTTP agent, concurrency 64",
        ),
    ] {
        let stream = format!("BENCH_{}_{}", agent.to_uppercase(), std::process::id());
        let server = Server::Ours(OursConfig {
            nats: Some(NatsQueue {
                url: url.clone(),
                stream: stream.clone(),
                replicas: 1,
            }),
            http_agent: http,
            // Far above what a run can queue: intake is measured, not back-pressure.
            max_pending: Some(10_000_000),
            ..OursConfig::plain(Backend::Sqlite)
        });
        let mut running = start(bench, &server, next_run_id())?;
        let started = unix_ms();
        let cpu = CpuSplit::before(&[running.pid()], &nodes.pids());
        let row = load_run(
            bench,
            std::slice::from_ref(&running),
            &Load::signed(conns, &push),
            case,
            "clawlet-webhookd",
        )?;
        cpu.row(&mut split, case, row.measured.answered);
        let drained = capture(
            Command::new(&bench.natsbench)
                .args(["drain", "--nats", &url, "--stream", &stream])
                .args(["--consumer", &format!("clawlet-agent-{agent}")])
                .args(["--timeout", "300s"]),
        )
        .with_context(|| {
            format!(
                "the {agent} agent's backlog did not drain; the daemon's log:\n{}",
                tail(&running.log)
            )
        })?;
        running.stop();
        let messages = json_field(&drained, "messages")
            .and_then(|v| v.parse::<f64>().ok())
            .context("natsbench drain: no message count")?;
        let drained_at = json_field(&drained, "drained_at_unix_ms")
            .and_then(|v| v.parse::<f64>().ok())
            .context("natsbench drain: no time")?;
        let took = (drained_at - started as f64) / 1000.0;
        let intake = row.measured.rps;
        let rate = messages / took.max(1e-3);
        let _ = writeln!(
            dispatch,
            "| {case} | {intake:.0} | {messages:.0} | {took:.1} | {rate:.0} | **{:.2}x** |",
            rate / intake
        );
        rows.push(row);
        model_stream.get_or_insert(stream);
    }
    drop(sink);
    let model = model_stream.context("no daemon run")?;
    eprintln!(
        "==> raw JetStream publishes, 64 in flight, {} s",
        bench.options.duration
    );
    let cpu = CpuSplit::before(&[], &nodes.pids());
    let raw = capture(
        Command::new(&bench.natsbench)
            .args(["publish", "--nats", &url, "--from-stream", &model])
            .args(["--stream", &format!("BENCH_RAW_{}", std::process::id())])
            .args(["--in-flight", "64"])
            .args(["--duration", &format!("{}s", bench.options.duration)]),
    )?;
    let field = |key: &str| -> Result<f64> {
        json_field(&raw, key)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("natsbench publish: no {key}: {raw}"))
    };
    let acks = field("acks_per_s")?;
    let p99_ms = field("p99")? / 1000.0;
    let payload = field("payload_bytes")?;
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "an ack count"
    )]
    let acked = field("acked")? as u64;
    cpu.row(&mut split, "raw publishes (no consumer)", acked);
    drop(nodes);

    let mut out =
        String::from("### NATS JetStream: the daemon against raw publishes, one server\n\n");
    table(&mut out, &rows);
    let _ = writeln!(
        out,
        "Raw JetStream on the same server: **{acks:.0} acks/s**, p99 {p99_ms:.2} ms (async-nats, \
         64 publishes awaiting their ack, the stored {payload:.0}-byte envelope, a fresh \
         `Nats-Msg-Id` each, a stream configured as the daemon's)."
    );
    if let Some(log) = rows.first() {
        let ratio = log.measured.rps / acks;
        let verdict = if ratio >= 0.8 { "meets" } else { "misses" };
        let _ = writeln!(
            out,
            "\n- daemon (log agent) / raw: **{ratio:.2}x** ({:.0} req/s vs {acks:.0} acks/s; target 0.8x: {verdict})",
            log.measured.rps
        );
    }
    out.push_str(
        "\nDelivery from the stream, timed from the start of the load until the agent's consumer \
         had finished every event (intake stops after the run; the backlog then drains):\n\n\
         | agent | intake req/s | events | all delivered after s | dispatch events/s | dispatch / intake |\n\
         |---|--:|--:|--:|--:|--:|\n",
    );
    out.push_str(&dispatch);
    out.push_str(CpuSplit::HEADER);
    out.push_str(&split);
    out.push('\n');
    Ok(out)
}

fn nats_cluster(bench: &Bench) -> Result<String> {
    let conns = bench.options.connections;
    let push = bench.push_body.clone();
    let nodes = NatsNodes::start(bench, 3)?;
    let urls = nodes.urls.join(",");
    let mut rows = Vec::new();
    let mut split = String::new();
    for daemons in 1..=3 {
        let server = Server::Ours(OursConfig {
            nats: Some(NatsQueue {
                url: urls.clone(),
                stream: format!("BENCH_CLUSTER_{daemons}_{}", std::process::id()),
                replicas: 3,
            }),
            max_pending: Some(10_000_000),
            ..OursConfig::plain(Backend::Sqlite)
        });
        let mut running = Vec::new();
        for _ in 0..daemons {
            running.push(start(bench, &server, next_run_id())?);
        }
        let case = format!("{daemons} daemon(s), R3 stream, log agent");
        let pids: Vec<u32> = running.iter().map(Running::pid).collect();
        let cpu = CpuSplit::before(&pids, &nodes.pids());
        let row = load_run(
            bench,
            &running,
            &Load::signed(conns, &push),
            &case,
            "clawlet-webhookd",
        )?;
        cpu.row(&mut split, &case, row.measured.answered);
        rows.push(row);
        for mut daemon in running {
            daemon.stop();
        }
    }
    drop(nodes);
    let mut out = String::from(
        "### NATS JetStream cluster: three nodes on loopback, stream of three replicas\n\n\
         The load's connections are spread over the daemons in turn; server CPU and memory are \
         measured in the one-daemon run only.\n\n",
    );
    table(&mut out, &rows);
    out.push_str(CpuSplit::HEADER);
    out.push_str(&split);
    out.push('\n');
    Ok(out)
}

/// Where the machine's CPU went during one run: the daemons' processes and the nats-servers'.
struct CpuSplit {
    daemons: Vec<u32>,
    servers: Vec<u32>,
    daemons_before: Option<u64>,
    servers_before: Option<u64>,
}

impl CpuSplit {
    const HEADER: &'static str = "\nCPU per stored event, from `/proc/PID/stat` of each process:\n\n\
         | run | daemons µs/event | nats-server µs/event (all nodes) |\n|---|--:|--:|\n";

    fn before(daemons: &[u32], servers: &[u32]) -> Self {
        Self {
            daemons: daemons.to_vec(),
            servers: servers.to_vec(),
            daemons_before: cpu_us(daemons),
            servers_before: cpu_us(servers),
        }
    }

    /// Appends this run's table row, per event of `events`.
    #[allow(
        clippy::cast_precision_loss,
        reason = "microseconds and counts far below 2^52"
    )]
    fn row(&self, out: &mut String, case: &str, events: u64) {
        let per_event = |pids: &[u32], before: Option<u64>| {
            let spent = cpu_us(pids)?.checked_sub(before?)?;
            (events > 0 && !pids.is_empty()).then(|| spent as f64 / events as f64)
        };
        let _ = writeln!(
            out,
            "| {case} | {} | {} |",
            opt(per_event(&self.daemons, self.daemons_before), 1),
            opt(per_event(&self.servers, self.servers_before), 1),
        );
    }
}

/// User and system CPU time of these processes together, in µs (`None` if one cannot be read).
fn cpu_us(pids: &[u32]) -> Option<u64> {
    let ticks_per_second: u64 = capture(Command::new("getconf").arg("CLK_TCK"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let mut ticks = 0;
    for pid in pids {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name, which may hold spaces: state is the 3rd, utime the 14th.
        let after = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        ticks += fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    }
    Some(ticks * 1_000_000 / ticks_per_second)
}

fn unix_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

impl Bench {
    /// Ours with this backend, then the incumbent when it is installed.
    fn servers(&self, backend: Backend) -> Vec<Server> {
        let mut servers = vec![Server::ours(backend)];
        if self.webhook.is_some() {
            servers.push(Server::Webhook);
        }
        servers
    }
}

// ---------------------------------------------------------------------------------------------
// Servers

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Memory,
    Sqlite,
}

#[derive(Debug, Clone)]
struct OursConfig {
    backend: Backend,
    /// The JetStream queue, instead of `backend`.
    nats: Option<NatsQueue>,
    /// An HTTP agent that every event is routed to: its URL and concurrency.
    http_agent: Option<(String, u32)>,
    /// `webhooks.queue.max_pending`, when the run needs the queue to fill.
    max_pending: Option<u32>,
    /// An exec agent that sleeps this many seconds per event.
    agent_sleep: Option<u32>,
    /// An exec agent running this program (no arguments) at this concurrency, every event
    /// routed to it.
    exec_agent: Option<(String, u32)>,
    /// The per-client rate limit turned on, this many requests a minute.
    rate_limit: Option<u64>,
    /// The journal file, instead of a fresh one in the run's directory.
    journal: Option<PathBuf>,
    /// Run with the allocator setting of deploy/clawlet-webhookd.service.
    deploy_allocator: bool,
}

impl OursConfig {
    /// The generated configuration as it is: no routes (every event goes to the built-in `log`
    /// agent), no queue limit, default allocator.
    fn plain(backend: Backend) -> Self {
        Self {
            backend,
            nats: None,
            http_agent: None,
            max_pending: None,
            agent_sleep: None,
            exec_agent: None,
            rate_limit: None,
            journal: None,
            deploy_allocator: false,
        }
    }
}

/// The environment deploy/clawlet-webhookd.service gives the daemon's allocator, mimalloc (a test
/// keeps the two the same).
const DEPLOY_ALLOCATOR_ENV: [(&str, &str); 2] = [
    ("MIMALLOC_PURGE_DELAY", "0"),
    ("MIMALLOC_ARENA_EAGER_COMMIT", "0"),
];

/// `webhooks.queue.nats` of a run on the nats backend.
#[derive(Debug, Clone)]
struct NatsQueue {
    /// One URL, or several comma-separated.
    url: String,
    stream: String,
    replicas: u32,
}

#[derive(Debug, Clone)]
enum Server {
    Ours(OursConfig),
    /// The Go `webhook` server with a `payload-hmac-sha256` rule and no command.
    Webhook,
    /// `clawlet-ceiling`: the daemon's HTTP stack and signature check, and only a hand-off.
    Ceiling(CeilingMode),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CeilingMode {
    /// Into an in-memory channel.
    Memory,
    /// Appended to a flat file, acknowledged after the `fdatasync` that covers it.
    Durable,
}

impl CeilingMode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Durable => "durable",
        }
    }
}

impl Server {
    fn ours(backend: Backend) -> Self {
        Self::Ours(OursConfig::plain(backend))
    }

    fn name(&self) -> String {
        match self {
            Self::Ours(_) => "clawlet-webhookd".to_owned(),
            Self::Webhook => "webhook (Go)".to_owned(),
            Self::Ceiling(_) => "clawlet-ceiling".to_owned(),
        }
    }
}

/// A server process that is stopped when this is dropped, whatever happened in between.
struct Running {
    child: Child,
    url: String,
    log: PathBuf,
    /// The loopback port it listens on.
    port: u16,
}

impl Running {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, a bounded wait for a clean exit, then SIGKILL.
    fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let pid = self.child.id().to_string();
        let terminated = Command::new("kill")
            .args(["-TERM", &pid])
            .stderr(Stdio::null())
            .status();
        if terminated.is_ok_and(|s| s.success()) {
            let deadline = Instant::now() + STOP_TIMEOUT;
            while Instant::now() < deadline {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

fn start(bench: &Bench, server: &Server, run_id: usize) -> Result<Running> {
    let port = free_port()?;
    let log = bench.work.join(format!("server-{run_id}.log"));
    let log_file = fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let (mut command, url, ready_path) = match server {
        Server::Ours(config) => {
            let dir = bench.work.join(format!("ours-{run_id}"));
            fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let path = dir.join("config.yaml");
            fs::write(&path, ours_config(config, port, &dir))
                .with_context(|| format!("writing {}", path.display()))?;
            let mut command = Command::new(&bench.daemon);
            command
                .arg("--config")
                .arg(&path)
                .env("RUST_LOG", "warn")
                .current_dir(&dir);
            if config.deploy_allocator {
                command.envs(DEPLOY_ALLOCATOR_ENV);
            }
            (
                command,
                format!("http://127.0.0.1:{port}/webhook/github"),
                "/health",
            )
        }
        Server::Webhook => {
            let path = bench.work.join(format!("hooks-{run_id}.json"));
            fs::write(&path, webhook_hooks())
                .with_context(|| format!("writing {}", path.display()))?;
            let binary = bench
                .webhook
                .as_deref()
                .context("webhook is not installed")?;
            let mut command = Command::new(binary);
            command
                .arg("-hooks")
                .arg(&path)
                .args(["-ip", "127.0.0.1", "-port", &port.to_string()]);
            (
                command,
                format!("http://127.0.0.1:{port}/hooks/github"),
                "/",
            )
        }
        Server::Ceiling(mode) => {
            let mut command = Command::new(&bench.ceiling);
            command
                .args(["--port", &port.to_string(), "--secret", SECRET])
                .args(["--mode", mode.as_str(), "--file"])
                .arg(bench.work.join(format!("ceiling-{run_id}.bin")));
            (
                command,
                format!("http://127.0.0.1:{port}/webhook/github"),
                "/health",
            )
        }
    };
    let child = command
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()
        .with_context(|| format!("starting {command:?}"))?;
    let mut running = Running {
        child,
        url,
        log,
        port,
    };
    wait_ready(&mut running, port, ready_path)?;
    Ok(running)
}

/// Polls `GET path` until it answers 200, failing early when the process exits.
fn wait_ready(running: &mut Running, port: u16, path: &str) -> Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = running.child.try_wait() {
            bail!(
                "the server exited with {status} before it was ready; its log:\n{}",
                tail(&running.log)
            );
        }
        if http_get_status(port, path).is_ok_and(|status| status == 200) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "no 200 from GET {path} within {START_TIMEOUT:?}; the server's log:\n{}",
                tail(&running.log)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The status code of a plain `GET`, spoken by hand so that xtask needs no HTTP client.
fn http_get_status(port: u16, path: &str) -> std::io::Result<u16> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    // "HTTP/1.1 200"
    std::str::from_utf8(&head[9..12])
        .ok()
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other("not an HTTP status line"))
}

/// The body of a plain `GET` (a length-delimited answer, as the daemon gives), spoken by hand.
fn http_get_body(port: u16, path: &str) -> std::io::Result<String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    match answer.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200") => Ok(body.to_owned()),
        _ => Err(std::io::Error::other(format!(
            "GET {path}: not a 200 answer"
        ))),
    }
}

const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// nats-server processes on loopback, each with its own store under the work directory; stopped
/// when dropped.
struct NatsNodes {
    urls: Vec<String>,
    nodes: Vec<Running>,
}

impl NatsNodes {
    fn pids(&self) -> Vec<u32> {
        self.nodes.iter().map(Running::pid).collect()
    }

    /// One server, or a cluster of `count` with routes between them; returns once a stream of
    /// `count` replicas can be placed.
    fn start(bench: &Bench, count: usize) -> Result<Self> {
        if !Path::new(NATS_SERVER).exists() {
            bail!("{NATS_SERVER} is missing: apt-get install nats-server");
        }
        let run = next_run_id();
        let clients: Vec<u16> = (0..count).map(|_| free_port()).collect::<Result<_>>()?;
        let routes: Vec<u16> = (0..count).map(|_| free_port()).collect::<Result<_>>()?;
        let route_list = routes
            .iter()
            .map(|p| format!("nats-route://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut nodes = Vec::new();
        for i in 0..count {
            let name = format!("bench-{run}-n{i}");
            let dir = bench.work.join(&name);
            fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let mut config = format!(
                "server_name: {name}\nlisten: 127.0.0.1:{}\njetstream {{\n  store_dir: \"{}\"\n}}\n",
                clients[i],
                dir.join("store").display()
            );
            if count > 1 {
                let _ = write!(
                    config,
                    "cluster {{\n  name: clawlet-bench\n  listen: 127.0.0.1:{}\n  routes: [{route_list}]\n}}\n",
                    routes[i]
                );
            }
            let path = dir.join("nats.conf");
            fs::write(&path, config).with_context(|| format!("writing {}", path.display()))?;
            let log = dir.join("nats.log");
            let log_file =
                fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
            let child = Command::new(NATS_SERVER)
                .arg("-c")
                .arg(&path)
                .stdin(Stdio::null())
                .stdout(log_file.try_clone()?)
                .stderr(log_file)
                .spawn()
                .with_context(|| format!("starting {NATS_SERVER}"))?;
            nodes.push(Running {
                child,
                url: format!("nats://127.0.0.1:{}", clients[i]),
                log,
                port: clients[i],
            });
        }
        let urls: Vec<String> = nodes.iter().map(|n| n.url.clone()).collect();
        let ready = capture(
            Command::new(&bench.natsbench)
                .args(["ready", "--nats", &urls[0]])
                .args(["--replicas", &count.to_string()]),
        );
        if let Err(e) = ready {
            let logs: Vec<String> = nodes.iter().map(|n| tail(&n.log)).collect();
            bail!("{e:#}\nthe servers' logs:\n{}", logs.join("\n---\n"));
        }
        Ok(Self { urls, nodes })
    }
}

/// A fast HTTP agent (`clawlet-natsbench sink`); stopped when dropped.
struct Sink {
    url: String,
    _process: Running,
}

impl Sink {
    fn start(bench: &Bench) -> Result<Self> {
        let port = free_port()?;
        let log = bench.work.join(format!("sink-{port}.log"));
        let log_file =
            fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let child = Command::new(&bench.natsbench)
            .args(["sink", "--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .context("starting clawlet-natsbench sink")?;
        let url = format!("http://127.0.0.1:{port}/events");
        let process = Running {
            child,
            url: url.clone(),
            log,
            port,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline {
                bail!("the HTTP sink did not listen on {addr}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Self {
            url,
            _process: process,
        })
    }
}

fn free_port() -> Result<u16> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding a free loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// The daemon's configuration for one run (schema: config/example.yaml). Loopback only; rate
/// limiting off, since it would measure the limiter rather than the receiver; request logging off,
/// as the Go server logs nothing without -verbose; one GitHub handler for every event type. Without
/// routes every event is delivered to the built-in `log` agent (its line is below the WARNING
/// level, so nothing is written, but the delivery is recorded like any other).
fn ours_config(config: &OursConfig, port: u16, dir: &Path) -> String {
    let backend = match (&config.nats, config.backend) {
        (Some(_), _) => "nats",
        (None, Backend::Memory) => "memory",
        (None, Backend::Sqlite) => "sqlite",
    };
    let journal = config
        .journal
        .clone()
        .unwrap_or_else(|| dir.join("journal.sqlite"));
    let mut yaml = format!(
        "webhooks:
  enabled: true
  host: 127.0.0.1
  port: {port}
  rate_limit:
    enabled: {}
    max_requests: {}
    window_seconds: 60
  logging:
    enabled: false
    level: WARNING
  handlers:
    github:
      enabled: true
      secret: \"{SECRET}\"
  queue:
    backend: {backend}
    path: \"{}\"
",
        config.rate_limit.is_some(),
        config.rate_limit.unwrap_or(100),
        journal.display()
    );
    if let Some(max_pending) = config.max_pending {
        let _ = writeln!(yaml, "    max_pending: {max_pending}");
    }
    if let Some(nats) = &config.nats {
        let _ = write!(
            yaml,
            "    nats:
      url: \"{}\"
      stream: {}
      replicas: {}
",
            nats.url, nats.stream, nats.replicas
        );
    }
    if let Some((url, concurrency)) = &config.http_agent {
        let _ = write!(
            yaml,
            "  agents:
    fast:
      kind: http
      url: \"{url}\"
      concurrency: {concurrency}
  routes:
    - agent: fast
"
        );
    }
    if let Some((program, concurrency)) = &config.exec_agent {
        let _ = write!(
            yaml,
            "  agents:
    exec:
      kind: exec
      command: [\"{program}\"]
      concurrency: {concurrency}
  routes:
    - agent: exec
"
        );
    }
    if let Some(seconds) = config.agent_sleep {
        let _ = write!(
            yaml,
            "  agents:
    slow:
      kind: exec
      command: [\"/bin/sleep\", \"{seconds}\"]
      concurrency: 4
  routes:
    - agent: slow
"
        );
    }
    yaml
}

/// An equivalent hook for the Go server: the same HMAC-SHA-256 check on `X-Hub-Signature-256`, and
/// no command (webhook 2.8 then answers 200 and only logs that "" is not an executable).
fn webhook_hooks() -> String {
    format!(
        r#"[{{"id":"github","execute-command":"","response-message":"ok","trigger-rule":{{"match":{{"type":"payload-hmac-sha256","secret":"{SECRET}","parameter":{{"source":"header","name":"X-Hub-Signature-256"}}}}}}}}]"#
    )
}

fn find_webhook() -> Option<PathBuf> {
    let path = PathBuf::from("/usr/bin/webhook");
    path.exists().then_some(path)
}

fn tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

// ---------------------------------------------------------------------------------------------
// Load and measurements

#[derive(Debug, Clone)]
struct Load {
    connections: u32,
    body: PathBuf,
    bad_signature: bool,
    max_requests: Option<u64>,
    /// Seconds, instead of `--duration`.
    duration: Option<u64>,
    /// Distinct source addresses (`clawlet-loadgen --source-ips`), 0 for one.
    source_ips: u32,
    /// Requests per connection before the next is opened, 0 for no limit.
    per_connection: u64,
}

impl Load {
    fn signed(connections: u32, body: &Path) -> Self {
        Self {
            connections,
            body: body.to_owned(),
            bad_signature: false,
            max_requests: None,
            duration: None,
            source_ips: 0,
            per_connection: 0,
        }
    }

    fn bad_signature(mut self) -> Self {
        self.bad_signature = true;
        self
    }

    fn body_bytes(&self) -> Result<usize> {
        file_len(&self.body)
    }
}

fn file_len(path: &Path) -> Result<usize> {
    let len = fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    Ok(usize::try_from(len)?)
}

/// A fresh number for each server started, naming its files.
fn next_run_id() -> usize {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Starts the server, runs the load against it, stops it.
fn measure(bench: &Bench, server: &Server, load: &Load, case: &str) -> Result<Row> {
    let mut running = start(bench, server, next_run_id())?;
    let row = load_run(
        bench,
        std::slice::from_ref(&running),
        load,
        case,
        &server.name(),
    );
    running.stop();
    row
}

/// Runs the load against servers already running, its connections spread over them in turn.
/// The server's CPU and memory are measured when there is one server.
fn load_run(
    bench: &Bench,
    servers: &[Running],
    load: &Load,
    case: &str,
    name: &str,
) -> Result<Row> {
    let duration = load.duration.unwrap_or(bench.options.duration);
    eprintln!(
        "==> {name}, {case}: {} connections, {duration} s, body {}",
        load.connections,
        load.body.display(),
    );
    let mut command = Command::new(&bench.loadgen);
    for server in servers {
        command.args(["--url", &server.url]);
    }
    command
        .args(["--secret", SECRET, "--json"])
        .arg("--body")
        .arg(&load.body)
        .args(["--connections", &load.connections.to_string()])
        .args(["--duration", &format!("{duration}s")])
        // One generator thread: on the 2-core machines here a second one mostly added context
        // switches (16-17 µs of generator CPU per request rather than 11.5-13.5, side by side),
        // taken from whichever server is measured.
        .args(["--threads", "1"]);
    if let [server] = servers {
        command.args(["--pid", &server.pid().to_string()]);
    }
    if let Some(n) = load.max_requests {
        command.args(["--requests", &n.to_string()]);
    }
    if load.bad_signature {
        command.arg("--bad-signature");
    }
    if load.source_ips > 0 {
        command.args(["--source-ips", &load.source_ips.to_string()]);
    }
    if load.per_connection > 0 {
        command.args([
            "--requests-per-connection",
            &load.per_connection.to_string(),
        ]);
    }
    let output = capture(&mut command);
    let json = output.with_context(|| {
        let logs: Vec<String> = servers.iter().map(|s| tail(&s.log)).collect();
        format!(
            "the load run failed; the server's log:\n{}",
            logs.join("\n---\n")
        )
    })?;
    let measured = Measured::from_json(&json)?;
    eprintln!(
        "    {:.0} req/s, p99 {:.2} ms, {} µs/req, peak RSS {} MiB, {}",
        measured.rps,
        f64::from(measured.p99_us) / 1000.0,
        opt(measured.cpu_us_per_request, 1),
        opt(measured.peak_rss_kib.map(|k| k as f64 / 1024.0), 1),
        measured.answers()
    );
    Ok(Row {
        round: 1,
        server: name.to_owned(),
        case: case.to_owned(),
        conns: load.connections,
        body: load.body_bytes()?,
        measured,
    })
}

/// The figures of one loadgen run, read from its `--json` line.
#[derive(Debug, Clone, Default, PartialEq)]
struct Measured {
    rps: f64,
    p50_us: u32,
    p99_us: u32,
    max_us: u32,
    cpu_us_per_request: Option<f64>,
    client_cpu_us_per_request: Option<f64>,
    peak_rss_kib: Option<u64>,
    answered: u64,
    /// Answers with a 2xx status.
    ok: u64,
    statuses: String,
    retry_after: u64,
    errors: u64,
}

impl Measured {
    /// Reads the flat fields of loadgen's JSON by name; xtask keeps to std, and the keys are unique.
    fn from_json(json: &str) -> Result<Self> {
        let number = |key: &str| -> Result<Option<f64>> {
            let Some(raw) = json_field(json, key) else {
                bail!("loadgen output has no {key:?}: {json}")
            };
            if raw == "null" {
                return Ok(None);
            }
            raw.parse()
                .map(Some)
                .with_context(|| format!("loadgen's {key:?} is not a number: {raw}"))
        };
        let required = |key: &str| -> Result<f64> {
            number(key)?.with_context(|| format!("loadgen's {key:?} is null"))
        };
        let whole = |x: f64| x.max(0.0).round() as u64;
        let micros = |x: f64| u32::try_from(whole(x)).unwrap_or(u32::MAX);
        let statuses = json_field(json, "statuses").unwrap_or("{}");
        Ok(Self {
            rps: required("rps")?,
            p50_us: micros(required("p50")?),
            p99_us: micros(required("p99")?),
            max_us: micros(required("max")?),
            cpu_us_per_request: number("server_cpu_us_per_request")?,
            client_cpu_us_per_request: number("client_cpu_us_per_request")?,
            peak_rss_kib: number("server_peak_rss_kib")?.map(whole),
            answered: whole(required("answered")?),
            ok: whole(required("status_2xx")?),
            statuses: statuses
                .trim_matches(['{', '}'])
                .replace('"', "")
                .replace(',', ", "),
            retry_after: whole(required("retry_after")?),
            errors: whole(
                required("connect_errors")?
                    + required("io_errors")?
                    + required("timeouts")?
                    + required("unfinished")?,
            ),
        })
    }

    /// Status counts, errors and `Retry-After` answers, for the last column.
    fn answers(&self) -> String {
        let mut text = self.statuses.clone();
        if self.retry_after > 0 {
            let _ = write!(text, "; Retry-After on {}", self.retry_after);
        }
        if self.errors > 0 {
            let _ = write!(text, "; {} errors", self.errors);
        }
        text
    }
}

/// The raw text of `"key": value` in compact JSON: a number, `null`, or an `{...}` object without
/// nested objects.
fn json_field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let start = json.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = &json[start..];
    let end = if rest.starts_with('{') {
        rest.find('}')? + 1
    } else {
        rest.find([',', '}']).unwrap_or(rest.len())
    };
    Some(rest[..end].trim())
}

// ---------------------------------------------------------------------------------------------
// Report

struct Row {
    round: u32,
    server: String,
    case: String,
    conns: u32,
    body: usize,
    measured: Measured,
}

fn write_header(out: &mut String, bench: &Bench, args: &[String]) -> Result<()> {
    let date = capture(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))
        .map_or_else(|_| "unknown date".to_owned(), |d| d.trim().to_owned());
    let nproc = capture(&mut Command::new("nproc"))
        .map_or_else(|_| "?".to_owned(), |n| n.trim().to_owned());
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .and_then(|v| v.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    // The machine may be shared: say how busy it was, since every figure depends on it.
    let loadavg = load_average();
    let webhook = match &bench.webhook {
        Some(path) => capture(Command::new(path).arg("-version")).map_or_else(
            |_| "webhook (version unknown)".to_owned(),
            |v| v.trim().to_owned(),
        ),
        None => "not installed (no comparison)".to_owned(),
    };
    let command = std::iter::once("cargo xtask bench".to_owned())
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let _ = write!(
        out,
        "## `{command}`\n\n\
         - date: {date}; machine: `nproc` = {nproc}, {cpu}; load generator on the same machine; \
         load average before the run: {loadavg}\n\
         - load: `clawlet-loadgen`, HTTP/1.1 keep-alive, one request in flight per connection, one thread, {} s per run, \
         signed GitHub push deliveries with a fresh `X-GitHub-Delivery` each\n\
         - incumbent: {webhook}, hook with a `payload-hmac-sha256` rule on `X-Hub-Signature-256` and no command\n\
         - server CPU from `/proc/PID/stat` (utime + stime) over the run, peak RSS is `VmHWM`\n\n",
        bench.options.duration,
    );
    Ok(())
}

fn table(out: &mut String, rows: &[Row]) {
    out.push_str("| round | server | case | conns | req/s | p50 ms | p99 ms | max ms | server CPU µs/req | loadgen CPU µs/req | peak RSS MiB | answers |\n");
    out.push_str("|--:|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|\n");
    for row in rows {
        let m = &row.measured;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.1} | {} | {} | {} | {} |",
            row.round,
            row.server,
            row.case,
            row.conns,
            m.rps,
            f64::from(m.p50_us) / 1000.0,
            f64::from(m.p99_us) / 1000.0,
            f64::from(m.max_us) / 1000.0,
            opt(m.cpu_us_per_request, 1),
            opt(m.client_cpu_us_per_request, 1),
            opt(m.peak_rss_kib.map(|k| k as f64 / 1024.0), 1),
            m.answers(),
        );
    }
    out.push('\n');
}

/// The figures of one server and case in each round, in round order.
fn per_round<'a>(rows: &'a [Row], server: &str, case: &str) -> Vec<(u32, &'a Measured)> {
    rows.iter()
        .filter(|r| r.server.starts_with(server) && r.case == case)
        .map(|r| (r.round, &r.measured))
        .collect()
}

/// The middle value (the mean of the two middle ones for an even count).
fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some(f64::midpoint(sorted[n / 2 - 1], sorted[n / 2])),
    }
}

/// One line of the verdict table: a measure, its value in each round, the median, the target.
struct Verdict {
    measure: &'static str,
    values: Vec<f64>,
    decimals: usize,
    /// The bound and whether a value must be at least (true) or at most (false) it.
    target: Option<(f64, bool)>,
}

impl Verdict {
    fn write(&self, out: &mut String) {
        let Some(median) = median(&self.values) else {
            return;
        };
        let d = self.decimals;
        let each: Vec<String> = self.values.iter().map(|v| format!("{v:.d$}")).collect();
        let (target, verdict) = match self.target {
            Some((bound, at_least)) => {
                let met = if at_least {
                    median >= bound
                } else {
                    median <= bound
                };
                let sign = if at_least { "≥" } else { "≤" };
                (
                    format!("{sign} {bound}"),
                    if met { "met" } else { "missed" },
                )
            }
            None => (String::new(), ""),
        };
        let _ = writeln!(
            out,
            "| {} | **{median:.d$}** | {} | {target} | {verdict} |",
            self.measure,
            each.join(" / ")
        );
    }
}

/// Ratios of requests/s and the per-request targets, each as a median over the rounds of
/// side-by-side runs (a ratio is taken within a round, then the median of those is shown).
fn ratios(out: &mut String, rows: &[Row]) {
    let rps_ratio = |(server, case): (&str, &str), (base_server, base_case): (&str, &str)| {
        let base = per_round(rows, base_server, base_case);
        per_round(rows, server, case)
            .into_iter()
            .filter_map(|(round, m)| {
                let b = base.iter().find(|(r, _)| *r == round)?.1;
                (b.rps > 0.0).then(|| m.rps / b.rps)
            })
            .collect::<Vec<f64>>()
    };
    let field = |server: &str, case: &str, pick: fn(&Measured) -> Option<f64>| {
        per_round(rows, server, case)
            .into_iter()
            .filter_map(|(_, m)| pick(m))
            .collect::<Vec<f64>>()
    };
    let p99 = |m: &Measured| Some(f64::from(m.p99_us) / 1000.0);
    let cpu = |m: &Measured| m.cpu_us_per_request;
    let rps = |m: &Measured| Some(m.rps);
    let ours = "clawlet-webhookd";
    let ceiling = "clawlet-ceiling";
    let webhook = ("webhook", "hook, no command");
    let verdicts = [
        Verdict {
            measure: "sqlite req/s / durable ceiling",
            values: rps_ratio((ours, "sqlite"), (ceiling, "durable")),
            decimals: 2,
            target: Some((0.75, true)),
        },
        Verdict {
            measure: "memory req/s / memory ceiling",
            values: rps_ratio((ours, "memory"), (ceiling, "memory")),
            decimals: 2,
            target: Some((0.85, true)),
        },
        Verdict {
            measure: "sqlite p99 ms (64 connections)",
            values: field(ours, "sqlite", p99),
            decimals: 2,
            target: Some((10.0, false)),
        },
        Verdict {
            measure: "sqlite server CPU µs/request",
            values: field(ours, "sqlite", cpu),
            decimals: 1,
            target: Some((35.0, false)),
        },
        Verdict {
            measure: "memory server CPU µs/request",
            values: field(ours, "memory", cpu),
            decimals: 1,
            target: Some((20.0, false)),
        },
        Verdict {
            measure: "sqlite req/s / webhook",
            values: rps_ratio((ours, "sqlite"), webhook),
            decimals: 2,
            target: Some((3.0, true)),
        },
        Verdict {
            measure: "memory req/s / webhook",
            values: rps_ratio((ours, "memory"), webhook),
            decimals: 2,
            target: Some((6.0, true)),
        },
        Verdict {
            measure: "durable ceiling req/s / webhook",
            values: rps_ratio((ceiling, "durable"), webhook),
            decimals: 2,
            target: None,
        },
        Verdict {
            measure: "memory ceiling req/s / webhook",
            values: rps_ratio((ceiling, "memory"), webhook),
            decimals: 2,
            target: None,
        },
        Verdict {
            measure: "wrong signature req/s, ours / webhook",
            values: rps_ratio((ours, "wrong signature"), ("webhook", "wrong signature")),
            decimals: 2,
            target: None,
        },
        Verdict {
            measure: "durable ceiling p99 ms",
            values: field(ceiling, "durable", p99),
            decimals: 2,
            target: None,
        },
        Verdict {
            measure: "durable ceiling server CPU µs/request",
            values: field(ceiling, "durable", cpu),
            decimals: 1,
            target: None,
        },
        Verdict {
            measure: "memory ceiling server CPU µs/request",
            values: field(ceiling, "memory", cpu),
            decimals: 1,
            target: None,
        },
        Verdict {
            measure: "sqlite req/s",
            values: field(ours, "sqlite", rps),
            decimals: 0,
            target: None,
        },
        Verdict {
            measure: "memory req/s",
            values: field(ours, "memory", rps),
            decimals: 0,
            target: None,
        },
    ];
    out.push_str("| measure | median | each round | target | |\n|---|--:|---|---|---|\n");
    for verdict in &verdicts {
        verdict.write(out);
    }
    out.push('\n');
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` gives them.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".to_owned(),
        |l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    )
}

fn opt(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.decimals$}"))
}

fn human_size(bytes: usize) -> String {
    match bytes {
        b if b >= 1024 * 1024 => format!("{} MB", b / (1024 * 1024)),
        b => format!("{} KB", b / 1024),
    }
}

/// A GitHub push payload of exactly `size` bytes (a few more when `size` is below one commit):
/// real structure, as many distinct commits as fit, the last message padded to the byte.
fn push_payload(size: usize) -> String {
    let head = r#"{"ref":"refs/heads/main","before":"6113728f27ae82c7b1a177c8d03f9e96e0adf246","after":"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c","created":false,"deleted":false,"forced":false,"base_ref":null,"compare":"https://github.com/octo-org/bench/compare/6113728f27ae...0d1a26e67d8f","repository":{"id":186853002,"name":"bench","full_name":"octo-org/bench","private":false,"owner":{"login":"octo-org","id":6811672},"html_url":"https://github.com/octo-org/bench","default_branch":"main"},"pusher":{"name":"octocat","email":"octocat@example.com"},"sender":{"login":"octocat","id":21031067},"commits":["#;
    let tail = r#"],"head_commit":null}"#;
    let mut out = String::with_capacity(size + 1024);
    out.push_str(head);
    for i in 0.. {
        let separator = usize::from(i > 0);
        let commit = commit_json(i, "");
        let used = out.len() + separator + tail.len();
        if used + 2 * commit.len() + 1 > size {
            // The last commit takes up the rest with its message.
            let pad = size.saturating_sub(used + commit.len());
            if separator == 1 {
                out.push(',');
            }
            let filler: String = "Lorem ipsum dolor sit amet. "
                .chars()
                .cycle()
                .take(pad)
                .collect();
            out.push_str(&commit_json(i, &filler));
            break;
        }
        if separator == 1 {
            out.push(',');
        }
        out.push_str(&commit);
    }
    out.push_str(tail);
    out
}

fn commit_json(i: usize, extra_message: &str) -> String {
    let id = hex::encode(&Sha256::digest(i.to_le_bytes())[..20]);
    format!(
        r#"{{"id":"{id}","distinct":true,"message":"Change {i}{extra_message}","timestamp":"2026-01-01T00:00:00Z","url":"https://github.com/octo-org/bench/commit/{id}","author":{{"name":"Octo Cat","email":"octocat@example.com"}},"added":[],"removed":[],"modified":["src/m{i}.rs"]}}"#
    )
}

/// A private directory for configs, journals and logs, removed at the end of the run.
struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    fn create() -> Result<Self> {
        let path = std::env::temp_dir().join(format!("clawlet-bench-{}", std::process::id()));
        fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self { path })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        fs::remove_dir_all(&self.path).ok();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_bench_runs_with_the_allocator_setting_the_systemd_unit_ships() {
        let unit = include_str!("../../deploy/clawlet-webhookd.service");
        for (name, value) in super::DEPLOY_ALLOCATOR_ENV {
            assert!(
                unit.lines()
                    .any(|l| l.trim() == format!("Environment={name}={value}")),
                "deploy/clawlet-webhookd.service does not set {name}={value}"
            );
        }
    }

    use super::*;

    #[test]
    fn push_payloads_have_the_requested_size() {
        for size in [1024, 2048, 64 * 1024, 1024 * 1024] {
            let payload = push_payload(size);
            assert_eq!(payload.len(), size);
            assert!(payload.starts_with("{\"ref\":") && payload.ends_with('}'));
            assert_eq!(payload.matches('{').count(), payload.matches('}').count());
        }
    }

    #[test]
    fn profiles_build_into_their_cargo_folders() {
        for (profile, folder) in [
            ("release", "release"),
            ("bench", "release"),
            ("dev", "debug"),
            ("test", "debug"),
            ("profiling", "profiling"),
        ] {
            assert_eq!(profile_dir(profile), folder, "{profile}");
        }
    }

    #[test]
    fn the_median_is_the_middle_value() {
        let check = |values: &[f64], expected: Option<f64>| {
            assert_eq!(median(values), expected, "{values:?}");
        };
        check(&[], None);
        check(&[3.0], Some(3.0));
        check(&[5.0, 1.0, 3.0], Some(3.0));
        check(&[4.0, 1.0, 3.0, 2.0], Some(2.5));
        check(&[f64::NAN, 2.0], Some(2.0));
    }

    #[test]
    fn loadgen_json_is_read_by_key() {
        let json = r#"{"answered":10,"status_2xx":8,"connect_errors":0,"io_errors":1,"latency_us":{"max":900,"mean":5,"p50":3,"p90":4,"p99":800,"p999":850},"retry_after":2,"rps":1234.5,"server_cpu_us":100,"server_cpu_us_per_request":10.0,"client_cpu_us_per_request":null,"server_peak_rss_kib":null,"statuses":{"200":8,"503":2},"timeouts":0,"unfinished":0}"#;
        let measured = Measured::from_json(json).ok();
        let expected = Measured {
            rps: 1234.5,
            p50_us: 3,
            p99_us: 800,
            max_us: 900,
            cpu_us_per_request: Some(10.0),
            client_cpu_us_per_request: None,
            peak_rss_kib: None,
            answered: 10,
            ok: 8,
            statuses: "200:8, 503:2".to_owned(),
            retry_after: 2,
            errors: 1,
        };
        assert_eq!(measured, Some(expected));
        assert!(Measured::from_json("{}").is_err());
    }

    #[test]
    fn options_parse() {
        let args: Vec<String> = ["--scenario", "sizes", "--duration", "3", "--no-build"]
            .map(String::from)
            .to_vec();
        let options = Options::parse(&args).ok().flatten();
        assert!(
            options
                .is_some_and(|o| o.scenarios == [Scenario::Sizes] && o.duration == 3 && !o.build)
        );
        for (name, scenario) in [
            ("nats", Scenario::Nats),
            ("nats-cluster", Scenario::NatsCluster),
            ("deliver", Scenario::Deliver),
            ("connections", Scenario::Connections),
            ("stored", Scenario::Stored),
            ("clients", Scenario::Clients),
        ] {
            let args = ["--scenario".to_owned(), name.to_owned()];
            let options = Options::parse(&args).ok().flatten();
            assert!(options.is_some_and(|o| o.scenarios == [scenario]), "{name}");
        }
        let args: Vec<String> = ["--events", "5000", "--profile", "bench"]
            .map(String::from)
            .to_vec();
        let options = Options::parse(&args).ok().flatten();
        assert!(options.is_some_and(|o| o.events == 5000 && o.profile == "bench"));
        assert!(Options::parse(&["--duration".to_owned(), "0".to_owned()]).is_err());
        assert!(Options::parse(&["--bogus".to_owned()]).is_err());
        assert!(matches!(Options::parse(&["--help".to_owned()]), Ok(None)));
    }
}
