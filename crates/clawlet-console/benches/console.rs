//! The console's events list and detail endpoints on an SQLite journal of one million events,
//! through the router as a client calls them (Bearer token, JSON out).
//!
//! The journal is generated once (rows written directly in large transactions, a few seconds)
//! under the target directory and reused by later runs. `cargo bench -p clawlet-console`.
#![allow(
    clippy::print_stderr,
    reason = "the bench says how long generating its journal took"
)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use clawlet_bus::{Backend, Bus, BusOptions};
use clawlet_console::{AdminToken, Console, ConsoleOptions};
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use tower::ServiceExt;

const EVENTS: i64 = 1_000_000;
const TOKEN: &str = "bench-admin-token-0123456789";
/// Every hundredth event is dead for its agent; every tenth comes from the `stripe` handler.
const DEAD_EVERY: i64 = 100;
const STRIPE_EVERY: i64 = 10;

fn journal_path() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-bench");
    std::fs::create_dir_all(&dir).expect("creating the bench directory");
    dir.join(format!("journal-{EVENTS}.db"))
}

fn id(i: i64) -> String {
    format!("0193a0f0-0000-7000-8000-{i:012}")
}

/// Writes the journal unless a complete one is there: the schema as the daemon creates it
/// (through `Journal::open`), then rows in transactions of 100 000.
fn generate(path: &Path, now_ms: i64) {
    if path.exists() {
        let conn = rusqlite::Connection::open(path).expect("opening the bench journal");
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
            .unwrap_or(0);
        if n == EVENTS {
            return;
        }
        drop(conn);
        std::fs::remove_file(path).expect("removing an incomplete bench journal");
    }
    std::fs::File::create(path).expect("creating the bench journal");
    drop(clawlet_bus::Journal::open(path).expect("creating the schema"));
    let mut conn = rusqlite::Connection::open(path).expect("opening the bench journal");
    conn.pragma_update(None, "synchronous", "OFF")
        .expect("pragma");
    // Six days back to now, one event every half second or so.
    let span = 6 * 24 * 3600 * 1000_i64;
    for chunk in 0..EVENTS / 100_000 {
        let tx = conn.transaction().expect("begin");
        {
            let mut event = tx
                .prepare(
                    "INSERT INTO events (seq, id, handler, source, type, delivery_id, received_at, routed, state)
                     VALUES (?1, ?2, ?3, 'github', ?4, ?5, ?6, 1, ?7)",
                )
                .expect("prepare");
            let mut envelope = tx
                .prepare("INSERT INTO envelopes (seq, envelope, codec) VALUES (?1, ?2, 0)")
                .expect("prepare");
            let mut delivery = tx
                .prepare(
                    "INSERT INTO deliveries (event_id, agent, status, attempts, next_attempt_at, last_error, updated_at)
                     VALUES (?1, 'hook', ?2, ?3, ?4, ?5, ?4)",
                )
                .expect("prepare");
            for i in chunk * 100_000..(chunk + 1) * 100_000 {
                let seq = i + 1;
                let at = now_ms - span + i * (span / EVENTS);
                let handler = if i % STRIPE_EVERY == 0 {
                    "stripe"
                } else {
                    "github"
                };
                let event_type = ["push", "pull_request", "issues", "release"][(i % 4) as usize];
                let dead = i % DEAD_EVERY == 0;
                let (id, delivery_id) = (id(i), format!("delivery-{i}"));
                let json = format!(
                    r#"{{"id":"{id}","handler":"{handler}","source":"github","type":"{event_type}","action":null,"delivery_id":"{delivery_id}","received_at":"2026-01-01T00:00:00Z","summary":"octo/repo {event_type} #{i} by someone","headers":{{"x-github-event":"{event_type}"}},"payload":{{"ref":"refs/heads/main","number":{i},"repository":{{"full_name":"octo/repo","private":false}},"sender":{{"login":"someone"}},"commits":[{{"id":"abc","message":"a change"}}]}}}}"#
                );
                let state = if dead { "dead" } else { "delivered" };
                event
                    .execute(rusqlite::params![
                        seq,
                        id,
                        handler,
                        event_type,
                        delivery_id,
                        at,
                        state
                    ])
                    .expect("insert event");
                envelope
                    .execute(rusqlite::params![seq, json.as_bytes()])
                    .expect("insert envelope");
                delivery
                    .execute(rusqlite::params![
                        id,
                        state,
                        if dead { 10 } else { 1 },
                        at,
                        dead.then_some("agent answered 500")
                    ])
                    .expect("insert delivery");
            }
        }
        tx.commit().expect("commit");
    }
}

fn get(path: &str) -> Request<Body> {
    Request::builder()
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .expect("a request")
}

async fn call(app: &axum::Router, path: &str) -> bytes::Bytes {
    let response = app
        .clone()
        .oneshot(get(path))
        .await
        .expect("the router answers");
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes()
}

fn bench(c: &mut Criterion) {
    let now_ms = i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
        .expect("a time");
    let path = journal_path();
    let started = std::time::Instant::now();
    generate(&path, now_ms);
    eprintln!(
        "journal of {EVENTS} events ready in {:.1?}",
        started.elapsed()
    );
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let bus = rt
        .block_on(Bus::open(BusOptions::new(Backend::Sqlite { path })))
        .expect("opening the journal");
    let mut opts = ConsoleOptions::new(bus, AdminToken::new(TOKEN));
    opts.handlers = vec!["github".to_owned(), "stripe".to_owned()];
    let app = clawlet_console::router(Console::new(opts));
    // A cursor half way down the listing, as after many "older" clicks.
    let deep: serde_json::Value = serde_json::from_slice(&rt.block_on(call(
        &app,
        &format!(
            "/api/events?limit=1&to={}",
            rfc3339(now_ms - 3 * 24 * 3600 * 1000)
        ),
    )))
    .expect("JSON");
    let deep = deep["next_cursor"].as_str().expect("a cursor").to_owned();
    let middle = id(EVENTS / 2);
    let cases = [
        ("events/first_page", "/api/events?limit=50".to_owned()),
        (
            "events/deep_page",
            format!("/api/events?limit=50&cursor={deep}"),
        ),
        (
            "events/handler",
            "/api/events?handler=stripe&limit=50".to_owned(),
        ),
        (
            "events/type_and_range",
            format!(
                "/api/events?type=release&limit=50&from={}&to={}",
                rfc3339(now_ms - 4 * 24 * 3600 * 1000),
                rfc3339(now_ms - 2 * 24 * 3600 * 1000)
            ),
        ),
        (
            "events/delivery_id",
            format!("/api/events?delivery_id=delivery-{}", EVENTS - 7),
        ),
        ("dead/first_page", "/api/dead?limit=50".to_owned()),
        ("events/detail", format!("/api/events/{middle}")),
    ];
    let mut group = c.benchmark_group("console_1m");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));
    for (name, path) in &cases {
        group.bench_function(*name, |b| b.iter(|| rt.block_on(call(&app, path))));
    }
    group.finish();
}

fn rfc3339(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .expect("a time");
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("formatting")
}

criterion_group!(benches, bench);
criterion_main!(benches);
