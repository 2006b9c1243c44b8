//! `clawlet-ceiling`: the least a webhook receiver can do, as the yardstick for `clawlet-webhookd`.
//!
//! The same HTTP stack (axum on hyper and tokio, HTTP/1.1 keep-alive), the same allocator
//! (mimalloc) and the same signature check (`clawlet_verify::github::verify`, HMAC-SHA-256 of the
//! body against `X-Hub-Signature-256`, compared in constant time), and then nothing but the hand-off:
//!
//! - `--mode memory`: the body goes into a bounded in-memory channel that a task drains; the answer
//!   follows the send.
//! - `--mode durable`: the body is appended, length-prefixed, to a flat file by one writer thread
//!   that commits whatever is queued together (group commit) with one `fdatasync`; each request is
//!   answered only after the sync that covers its body.
//!
//! No parsing, no dedup, no delivery: what the daemon spends beyond this is the price of its
//! features. It listens on loopback only and is started and stopped by `cargo xtask bench`:
//!
//! ```text
//! clawlet-ceiling --port 8099 --secret "$S" --mode durable --file /tmp/ceiling.log
//! ```
#![allow(
    clippy::print_stdout,
    reason = "the listening line on stdout is this tool's output"
)]

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use tokio::sync::{mpsc, oneshot};

/// The daemon's allocator, so that the comparison is of the work and not of malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Bodies above this are refused, as the daemon's `max_body_bytes` default does.
const MAX_BODY: usize = 32 * 1024 * 1024;
/// Bodies queued in the memory channel before a sender waits.
const CHANNEL_DEPTH: usize = 65_536;
/// A batch larger than this is written body by body rather than gathered into one buffer first.
const GATHER_LIMIT: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Answer once the body is in an in-memory channel.
    Memory,
    /// Answer once the body is in a flat file and `fdatasync` has returned.
    Durable,
}

/// A bare receiver: axum, the HMAC check, and a channel or a synced append.
#[derive(Debug, Parser)]
#[command(name = "clawlet-ceiling", version)]
struct Args {
    /// Port on 127.0.0.1.
    #[arg(long)]
    port: u16,
    /// Shared secret of the GitHub signature.
    #[arg(long)]
    secret: String,
    /// Where an accepted body goes.
    #[arg(long, value_enum)]
    mode: Mode,
    /// The file bodies are appended to (durable mode).
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
}

/// Where a verified body is handed over.
enum Sink {
    Memory(mpsc::Sender<Bytes>),
    Durable(std_mpsc::Sender<(Bytes, oneshot::Sender<bool>)>),
}

struct Receiver {
    secret: clawlet_verify::Secret,
    sink: Sink,
}

fn main() -> Result<()> {
    let args = Args::parse();
    // The daemon's runtime: multi-threaded, one worker per CPU.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> Result<()> {
    let sink = match args.mode {
        Mode::Memory => {
            let (tx, mut rx) = mpsc::channel::<Bytes>(CHANNEL_DEPTH);
            tokio::spawn(async move { while rx.recv().await.is_some() {} });
            Sink::Memory(tx)
        }
        Mode::Durable => {
            let path = args.file.as_ref().context("--mode durable needs --file")?;
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening {}", path.display()))?;
            let (tx, rx) = std_mpsc::channel();
            std::thread::Builder::new()
                .name("ceiling-writer".to_owned())
                .spawn(move || writer(&file, &rx))
                .context("starting the writer thread")?;
            Sink::Durable(tx)
        }
    };
    let state = Arc::new(Receiver {
        secret: clawlet_verify::Secret::new(args.secret)
            .map_err(|e| anyhow::anyhow!("--secret: {e}"))?,
        sink,
    });
    let app = Router::new()
        .route("/webhook/github", post(receive))
        .route("/health", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state);
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    println!("listening on {addr}");
    axum::serve(listener, app).await.context("serving HTTP")?;
    Ok(())
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let signature = headers
        .get(clawlet_verify::github::SIGNATURE_256_HEADER)
        .map(|v| v.as_bytes());
    let signatures = clawlet_verify::github::Signatures {
        sha256: signature,
        sha1: None,
    };
    let verified = clawlet_verify::github::verify(
        std::slice::from_ref(&receiver.secret),
        signatures,
        &body,
        clawlet_verify::github::Legacy::Refuse,
    );
    if verified.is_err() {
        return (StatusCode::UNAUTHORIZED, r#"{"status":"unauthorized"}"#);
    }
    let stored = match &receiver.sink {
        Sink::Memory(tx) => tx.send(body).await.is_ok(),
        Sink::Durable(tx) => {
            let (done, synced) = oneshot::channel();
            tx.send((body, done)).is_ok() && synced.await.unwrap_or(false)
        }
    };
    if stored {
        (StatusCode::OK, r#"{"status":"accepted"}"#)
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"status":"unavailable"}"#,
        )
    }
}

/// Group commit: wait for one body, take every other one already queued, append them all, sync
/// once, then answer them all.
fn writer(file: &File, queue: &std_mpsc::Receiver<(Bytes, oneshot::Sender<bool>)>) {
    let mut out = file;
    let mut batch = Vec::new();
    let mut gathered = Vec::with_capacity(GATHER_LIMIT);
    while let Ok(first) = queue.recv() {
        batch.push(first);
        while let Ok(next) = queue.try_recv() {
            batch.push(next);
        }
        let written = batch.iter().try_for_each(|(body, _)| {
            let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
            if body.len() > GATHER_LIMIT {
                out.write_all(&gathered)?;
                gathered.clear();
                out.write_all(&len.to_le_bytes())?;
                return out.write_all(body);
            }
            gathered.extend_from_slice(&len.to_le_bytes());
            gathered.extend_from_slice(body);
            if gathered.len() > GATHER_LIMIT {
                out.write_all(&gathered)?;
                gathered.clear();
            }
            Ok(())
        });
        let synced = written
            .and_then(|()| out.write_all(&gathered))
            .and_then(|()| file.sync_data())
            .is_ok();
        gathered.clear();
        for (_, done) in batch.drain(..) {
            // The request may have gone away; its body is stored all the same.
            let _ = done.send(synced);
        }
    }
}
