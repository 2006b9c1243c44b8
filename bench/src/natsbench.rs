//! `clawlet-natsbench`: the JetStream side of `cargo xtask bench --scenario nats`.
//!
//! - `publish`: raw JetStream, the yardstick for the daemon: publishes the payload of a message
//!   the daemon stored, each under a fresh `Nats-Msg-Id`, with a fixed number of publishes
//!   awaiting their ack, into a stream configured like the daemon's; reports acks/s.
//! - `drain`: waits until an agent's consumer has finished every message of a stream, and says
//!   when, so that the dispatch rate can be set beside the intake rate.
//! - `sink`: a fast HTTP agent: answers 204 to every request at once.
//! - `ready`: waits until a server, or a cluster, can place a stream of the given replicas.
//!
//! Like `clawlet-loadgen` it only talks to loopback addresses, and every mode is bounded in time.
#![allow(
    clippy::print_stdout,
    reason = "the report on stdout is this tool's output"
)]

#[path = "stats.rs"]
mod stats;

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use async_nats::jetstream::{self, stream};
use clap::{Parser, Subcommand};

use crate::stats::Latency;

#[derive(Debug, Parser)]
#[command(name = "clawlet-natsbench", version)]
struct Args {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Publish straight to JetStream and report acks/s.
    Publish {
        /// NATS server; loopback only.
        #[arg(long)]
        nats: String,
        /// The daemon's stream: its first message is the payload, its configuration the model.
        #[arg(long)]
        from_stream: String,
        /// The stream to create and publish into.
        #[arg(long)]
        stream: String,
        /// Publishes awaiting their ack at once.
        #[arg(long, default_value_t = 64)]
        in_flight: usize,
        /// How long to publish.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
        duration: Duration,
    },
    /// Wait until a consumer has finished every message of its stream.
    Drain {
        /// NATS server; loopback only.
        #[arg(long)]
        nats: String,
        #[arg(long)]
        stream: String,
        #[arg(long)]
        consumer: String,
        /// Give up after this long.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "120s")]
        timeout: Duration,
    },
    /// Wait until a stream of --replicas copies can be created (a cluster has its meta leader and
    /// its routes).
    Ready {
        /// NATS server; loopback only.
        #[arg(long)]
        nats: String,
        #[arg(long, default_value_t = 1)]
        replicas: usize,
        /// Give up after this long.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
        timeout: Duration,
    },
    /// Answer 204 to every HTTP request on 127.0.0.1:PORT, for at most --duration.
    Sink {
        #[arg(long)]
        port: u16,
        #[arg(long, value_parser = humantime::parse_duration, default_value = "15m")]
        duration: Duration,
    },
}

/// Longest any mode runs, so that a typo cannot tie up a shared machine.
const MAX_RUN: Duration = Duration::from_secs(900);

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async {
        match args.mode {
            Mode::Publish {
                nats,
                from_stream,
                stream,
                in_flight,
                duration,
            } => publish(&nats, &from_stream, &stream, in_flight, duration).await,
            Mode::Drain {
                nats,
                stream,
                consumer,
                timeout,
            } => drain(&nats, &stream, &consumer, timeout).await,
            Mode::Ready {
                nats,
                replicas,
                timeout,
            } => ready(&nats, replicas, timeout).await,
            Mode::Sink { port, duration } => sink(port, duration).await,
        }
    })
}

/// Connects, refusing any server that is not on this machine.
async fn connect(url: &str) -> Result<jetstream::Context> {
    let addr: async_nats::ServerAddr = url.parse().context("--nats is not a NATS URL")?;
    let host = addr.host();
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        bail!("refusing NATS server {host}: only loopback addresses are benchmarked");
    }
    let client = async_nats::connect(addr)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    Ok(jetstream::new(client))
}

async fn publish(
    url: &str,
    from: &str,
    name: &str,
    in_flight: usize,
    duration: Duration,
) -> Result<()> {
    if duration > MAX_RUN {
        bail!("--duration is capped at {MAX_RUN:?}");
    }
    let js = connect(url).await?;
    let mut model = js
        .get_stream(from)
        .await
        .with_context(|| format!("stream {from}"))?;
    let config = model.info().await?.config.clone();
    let first = model.info().await?.state.first_sequence;
    let sample = model
        .get_raw_message(first)
        .await
        .with_context(|| format!("reading message {first} of {from}"))?;
    let payload = sample.payload;
    let subject_prefix = format!("clawlet-bench-raw-{}", std::process::id());
    js.create_stream(stream::Config {
        name: name.to_owned(),
        subjects: vec![format!("{subject_prefix}.>")],
        ..config
    })
    .await
    .with_context(|| format!("creating stream {name}"))?;
    let subject = format!("{subject_prefix}.github.push");
    let mut pending = VecDeque::with_capacity(in_flight);
    let mut latencies = Vec::new();
    let mut acked = 0_u64;
    let mut failed = 0_u64;
    let start = Instant::now();
    let stop = start + duration;
    let mut n = 0_u64;
    while Instant::now() < stop || !pending.is_empty() {
        if Instant::now() < stop && pending.len() < in_flight {
            n += 1;
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(
                "Nats-Msg-Id",
                format!("raw-{}-{n}", std::process::id()).as_str(),
            );
            let ack = js
                .publish_with_headers(subject.clone(), headers, payload.clone())
                .await
                .context("publishing")?;
            pending.push_back((Instant::now(), ack));
            continue;
        }
        let Some((sent, ack)) = pending.pop_front() else {
            break;
        };
        match ack.await {
            Ok(a) if !a.duplicate => {
                acked += 1;
                latencies.push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
            }
            _ => failed += 1,
        }
    }
    let elapsed = start.elapsed();
    let latency = Latency::from_samples(&mut latencies);
    let _ = js.delete_stream(name).await;
    #[allow(clippy::cast_precision_loss, reason = "ack counts are far below 2^52")]
    let rate = acked as f64 / elapsed.as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "payload_bytes": payload.len(),
            "in_flight": in_flight,
            "acked": acked,
            "failed": failed,
            "elapsed_s": elapsed.as_secs_f64(),
            "acks_per_s": rate,
            "latency_us": { "p50": latency.p50, "p99": latency.p99, "max": latency.max },
        })
    );
    Ok(())
}

async fn drain(url: &str, name: &str, consumer: &str, timeout: Duration) -> Result<()> {
    let js = connect(url).await?;
    let deadline = Instant::now() + timeout.min(MAX_RUN);
    let mut stream = js
        .get_stream(name)
        .await
        .with_context(|| format!("stream {name}"))?;
    let last = stream.info().await?.state.last_sequence;
    loop {
        let info = stream
            .consumer_info(consumer)
            .await
            .with_context(|| format!("consumer {consumer}"))?;
        // Acks may arrive out of order: with none outstanding, all that was sent is finished.
        let finished = if info.num_ack_pending == 0 {
            info.delivered.stream_sequence
        } else {
            info.ack_floor.stream_sequence
        };
        if finished >= last {
            let at_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            println!(
                "{}",
                serde_json::json!({ "messages": last, "drained_at_unix_ms": at_ms })
            );
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("consumer {consumer} finished {finished} of {last} messages within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn ready(url: &str, replicas: usize, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout.min(MAX_RUN);
    let probe = format!("CLAWLET_BENCH_PROBE_{}", std::process::id());
    loop {
        let attempt = async {
            let js = connect(url).await?;
            js.create_or_update_stream(stream::Config {
                name: probe.clone(),
                subjects: vec![format!("clawlet-bench-probe-{}", std::process::id())],
                num_replicas: replicas,
                storage: stream::StorageType::Memory,
                ..Default::default()
            })
            .await?;
            js.delete_stream(&probe).await?;
            anyhow::Ok(())
        };
        match tokio::time::timeout(Duration::from_secs(5), attempt).await {
            Ok(Ok(())) => return Ok(()),
            _ if Instant::now() > deadline => {
                bail!("{url} could not place a stream of {replicas} replicas within {timeout:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn sink(port: u16, duration: Duration) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .await
        .with_context(|| format!("binding 127.0.0.1:{port}"))?;
    println!("listening on 127.0.0.1:{port}");
    let serve = async {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    |request: hyper::Request<hyper::body::Incoming>| async move {
                        // Read to the end, so that the connection stays open for the next one.
                        let _ = http_body_util::BodyExt::collect(request.into_body()).await;
                        hyper::Response::builder()
                            .status(204)
                            .body(http_body_util::Empty::<bytes::Bytes>::new())
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(socket), service)
                    .await;
            });
        }
    };
    let _ = tokio::time::timeout(duration.min(MAX_RUN), serve).await;
    Ok(())
}
