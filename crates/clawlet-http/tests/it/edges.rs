//! The edges around the pipeline: client addresses behind a proxy, IPv6 rate-limit keys,
//! credentials in logged headers, and the in-flight body budget.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use clawlet_http::{App, LogSpec, RuntimeSpec, ServerLimits};
use clawlet_ratelimit::Quota;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::ServiceExt;

use crate::{LogCapture, Server, clock, memory_bus, open_handler, runtime, start};

const BODY: &str = r#"{"event_type":"user.created","data":{"id":1}}"#;
/// Bounds every wait on the server (a bound, not an expectation).
const PATIENCE: Duration = Duration::from_secs(20);

async fn router(spec: RuntimeSpec) -> Router {
    let app = App::new(spec, memory_bus(10_000).await, clock()).unwrap();
    clawlet_http::router(app)
}

/// Posts [`BODY`] to `/webhook/open` as `peer` with `headers`; returns the status.
async fn post_as(router: &Router, peer: &str, headers: &[(&str, &str)]) -> u16 {
    let mut request = Request::post("/webhook/open").header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut request = request.body(Body::from(BODY)).unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
    router
        .clone()
        .oneshot(request)
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn metrics(router: &Router) -> String {
    let response = router
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

fn quota(max_requests: u32) -> Option<Quota> {
    Some(Quota {
        max_requests,
        window: Duration::from_secs(60),
    })
}

#[tokio::test]
async fn three_hundred_addresses_in_one_64_share_one_quota() {
    async fn passed(prefix: u8, peers: &[String]) -> (usize, Router) {
        let mut spec = runtime(vec![open_handler("open")]);
        spec.rate_limit = quota(100);
        spec.rate_limit_ipv6_prefix = prefix;
        let router = router(spec).await;
        let mut ok = 0;
        for peer in peers {
            match post_as(&router, peer, &[]).await {
                200 => ok += 1,
                429 => {}
                other => panic!("{peer}: {other}"),
            }
        }
        (ok, router)
    }
    let peers: Vec<String> = (1..=300u32)
        .map(|i| format!("[2001:db8:1:2:{:x}:{:x}::{i:x}]:40000", i * 7, i % 5))
        .collect();
    let (ok, router) = passed(64, &peers).await;
    assert_eq!(ok, 100, "one /64, one quota of 100");
    // The next /64 is another client, and IPv4 clients are keyed whole as before.
    assert_eq!(post_as(&router, "[2001:db8:1:3::1]:40000", &[]).await, 200);
    assert_eq!(post_as(&router, "192.0.2.1:40000", &[]).await, 200);
    assert_eq!(post_as(&router, "192.0.2.2:40000", &[]).await, 200);
    // Keyed by the whole address, every one of them has a quota of its own.
    assert_eq!(passed(128, &peers).await.0, 300);
    // A /48 puts the neighbouring /64s in one bucket too.
    let neighbours: Vec<String> = (1..=150u32)
        .map(|i| format!("[2001:db8:1:{i:x}::1]:40000"))
        .collect();
    assert_eq!(passed(48, &neighbours).await.0, 100);
    assert_eq!(passed(64, &neighbours).await.0, 150);
}

#[tokio::test]
async fn an_ipv6_prefix_outside_1_to_128_is_refused() {
    for prefix in [0, 129] {
        let mut spec = runtime(vec![open_handler("open")]);
        spec.rate_limit_ipv6_prefix = prefix;
        let err = App::new(spec, memory_bus(10).await, clock()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "rate_limit: rate limit: ipv6_prefix {prefix} is not a prefix length; use 1 to 128 (64 keys each /64 as one client)"
            )
        );
    }
}

#[tokio::test]
async fn a_trusted_proxy_that_names_no_client_is_refused_not_believed() {
    let capture = LogCapture::start();
    let mut spec = runtime(vec![open_handler("open")]);
    spec.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    spec.allowed_ips = vec![
        "127.0.0.1/32".parse().unwrap(),
        "192.30.252.0/22".parse().unwrap(),
    ];
    spec.rate_limit = quota(2);
    let router = router(spec).await;
    const PROXY: &str = "127.0.0.1:50000";
    let refused: &[(&str, &[(&str, &str)])] = &[
        ("nothing forwarded", &[]),
        (
            "conflict",
            &[
                ("x-forwarded-for", "203.0.113.9"),
                ("forwarded", "for=192.30.252.1"),
            ],
        ),
        (
            "conflict, the other way",
            &[
                ("x-forwarded-for", "192.30.252.1"),
                ("forwarded", "for=203.0.113.9"),
            ],
        ),
        ("unknown", &[("x-forwarded-for", "unknown")]),
        ("empty", &[("x-forwarded-for", "")]),
        ("garbage", &[("x-forwarded-for", "192.30.252.1, garbage")]),
        ("obfuscated", &[("forwarded", "for=_proxy1")]),
        ("Forwarded unknown", &[("forwarded", "for=unknown")]),
        (
            "one readable, one not",
            &[
                ("x-forwarded-for", "192.30.252.1"),
                ("forwarded", "for=unknown"),
            ],
        ),
    ];
    for (name, headers) in refused {
        assert_eq!(post_as(&router, PROXY, headers).await, 403, "{name}");
    }
    // The refusals spent nothing of anyone's quota: a client the proxy names, the proxy's own
    // address included, still has its whole burst of two.
    for forwarded in ["192.30.252.1", "127.0.0.1"] {
        for i in 0..2 {
            assert_eq!(
                post_as(&router, PROXY, &[("x-forwarded-for", forwarded)]).await,
                200,
                "{forwarded}, request {i}"
            );
        }
        assert_eq!(
            post_as(&router, PROXY, &[("x-forwarded-for", forwarded)]).await,
            429,
            "{forwarded}"
        );
    }
    // Both headers naming the same client are believed.
    assert_eq!(
        post_as(
            &router,
            PROXY,
            &[
                ("x-forwarded-for", "192.30.252.7"),
                ("forwarded", "for=192.30.252.7;proto=https"),
            ],
        )
        .await,
        200
    );
    let metrics = metrics(&router).await;
    for expected in [
        r#"clawlet_webhook_client_unknown_total{handler="open",reason="forwarded_conflict"} 2"#,
        r#"clawlet_webhook_client_unknown_total{handler="open",reason="forwarded_missing"} 1"#,
        r#"clawlet_webhook_client_unknown_total{handler="open",reason="forwarded_unreadable"} 6"#,
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected} in\n{metrics}"
        );
    }
    assert!(!metrics.contains("allowlist_refused_total{"), "{metrics}");
    let log = capture.finish();
    let conflict = log
        .lines()
        .find(|line| line.contains("reason=\"forwarded_conflict\""))
        .unwrap_or_else(|| panic!("no refusal logged: {log}"));
    assert!(conflict.contains("status=403"), "{conflict}");
    assert!(conflict.contains("proxy=127.0.0.1"), "{conflict}");
    assert!(!conflict.contains("client_ip="), "{conflict}");
}

#[tokio::test]
async fn credentials_in_headers_never_reach_the_log() {
    let capture = LogCapture::start();
    let mut spec = runtime(vec![open_handler("open")]);
    spec.logging = LogSpec {
        enabled: true,
        include_headers: true,
        include_payload: false,
    };
    let router = router(spec).await;
    let status = post_as(
        &router,
        "203.0.113.7:40000",
        &[
            ("x-api-key", "hunter2-api-key"),
            ("x-gitlab-token", "hunter2-gitlab-token"),
            ("x-auth-token", "hunter2-auth"),
            ("x-client-secret", "hunter2-secret"),
            ("x-trace", "visible-trace"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    let log = capture.finish();
    let line = log
        .lines()
        .find(|line| line.contains("webhook request"))
        .unwrap_or_else(|| panic!("no request logged: {log}"));
    assert!(!log.contains("hunter2"), "a credential leaked: {log}");
    for shown in [
        "x-api-key: [redacted]",
        "x-gitlab-token: [redacted]",
        "x-auth-token: [redacted]",
        "x-client-secret: [redacted]",
        "x-trace: visible-trace",
    ] {
        assert!(line.contains(shown), "missing {shown} in {line}");
    }
}

/// A request head for `/webhook/open` declaring a body of `len` bytes.
fn head(len: usize) -> String {
    format!(
        "POST /webhook/open HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Content-Length: {len}\r\nConnection: close\r\n\r\n"
    )
}

/// A JSON body of exactly `len` bytes, distinct per `tag`.
fn body_of(len: usize, tag: &str) -> String {
    let start = format!(r#"{{"event_type":"{tag}","pad":""#);
    let pad = len - start.len() - 2;
    format!("{start}{}\"}}", "a".repeat(pad))
}

/// Sends a whole request on a fresh connection and returns the response's head.
async fn exchange(addr: SocketAddr, len: usize, tag: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("{}{}", head(len), body_of(len, tag)).as_bytes())
        .await
        .unwrap();
    read_response(&mut stream).await
}

async fn read_response(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    match tokio::time::timeout(PATIENCE, stream.read_to_end(&mut out)).await {
        Ok(_) => String::from_utf8_lossy(&out).into_owned(),
        Err(_) => panic!("no answer within {PATIENCE:?}"),
    }
}

/// A server whose one handler, `open`, verifies nothing, with an in-flight body budget of
/// `budget` bytes.
async fn open_server_with_budget(budget: u64) -> Server {
    let limits = ServerLimits {
        max_inflight_body_bytes: budget,
        ..ServerLimits::default()
    };
    let app = App::new(
        runtime(vec![open_handler("open")]),
        memory_bus(10_000).await,
        clock(),
    )
    .unwrap();
    start(app, limits, None).await
}

#[tokio::test]
async fn a_body_past_the_inflight_budget_gets_503_before_it_is_read() {
    let server = open_server_with_budget(2_000).await;

    // A sender that declares 800 bytes and sends 750 of them holds what it sent (the joined
    // buffer may be sized to the whole 800): at least 750 of the 2000.
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    let slow_body = body_of(800, "slow");
    slow.write_all(head(800).as_bytes()).await.unwrap();
    slow.write_all(&slow_body.as_bytes()[..750]).await.unwrap();

    // Once the server has read them, a declared 1300 does not fit in what is free: 503 with
    // Retry-After, unread.
    let deadline = Instant::now() + PATIENCE;
    let refused = loop {
        let reply = exchange(server.addr, 1_300, "later").await;
        if reply.starts_with("HTTP/1.1 503") {
            break reply;
        }
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(
            Instant::now() < deadline,
            "the slow body never took its share of the budget"
        );
        tokio::task::yield_now().await;
    };
    assert!(
        refused.to_ascii_lowercase().contains("retry-after: 2"),
        "{refused}"
    );
    assert!(
        refused.ends_with(r#"{"error":"temporarily unavailable"}"#),
        "{refused}"
    );
    // 1200 more still fit, beside the slow body.
    let fits = exchange(server.addr, 1_200, "small").await;
    assert!(fits.starts_with("HTTP/1.1 200"), "{fits}");

    // The slow body completes and is accepted (joining its frames holds the first while the
    // copy fills, 750 + 800); its share comes back, and 1300 fit again.
    slow.write_all(&slow_body.as_bytes()[750..]).await.unwrap();
    let done = read_response(&mut slow).await;
    assert!(done.starts_with("HTTP/1.1 200"), "{done}");
    let again = exchange(server.addr, 1_300, "again").await;
    assert!(again.starts_with("HTTP/1.1 200"), "{again}");

    server.shutdown.cancel();
    server.task.await.unwrap().unwrap();
}

/// A request head for `/webhook/open` declaring `len` bytes and asking to be told when the
/// server starts reading them: its `100 Continue` says the body is being read.
fn expecting_head(len: usize) -> String {
    format!(
        "POST /webhook/open HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Content-Length: {len}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
    )
}

/// Reads until the server says `100 Continue`, that is, until it has started reading the body.
async fn await_continue(stream: &mut TcpStream) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    let deadline = Instant::now() + PATIENCE;
    while !seen.windows(12).any(|w| w == b"100 Continue") {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) => panic!(
                "closed before 100 Continue: {}",
                String::from_utf8_lossy(&seen)
            ),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Ok(Err(err)) => panic!("read: {err}"),
            Err(_) => panic!("no 100 Continue within {PATIENCE:?}"),
        }
    }
}

/// Senders that declare large bodies and then send nothing hold nothing of the budget: a
/// declared length is checked against what is free, never reserved, so a handful of stalled
/// connections cannot turn every other sender away with 503 until they time out.
#[tokio::test]
async fn senders_that_declare_large_bodies_and_stall_hold_none_of_the_budget() {
    let server = open_server_with_budget(1_000).await;

    // Two senders declare 500 bytes each, the whole budget between them, and stall once the
    // server has started reading their bodies.
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream
            .write_all(expecting_head(500).as_bytes())
            .await
            .unwrap();
        await_continue(&mut stream).await;
        stalled.push(stream);
    }

    // A small delivery still fits.
    let small = exchange(server.addr, 300, "small").await;
    assert!(small.starts_with("HTTP/1.1 200"), "{small}");

    // The stalled senders still get their bodies read and accepted once they send them.
    for (i, stream) in stalled.iter_mut().enumerate() {
        stream
            .write_all(body_of(500, &format!("stalled-{i}")).as_bytes())
            .await
            .unwrap();
        let reply = read_response(stream).await;
        assert!(reply.contains("HTTP/1.1 200"), "{reply}");
    }

    server.shutdown.cancel();
    server.task.await.unwrap().unwrap();
}

/// A handler at `/webhook/open` that checks an HMAC-SHA256 in `x-signature`.
fn signed_handler() -> clawlet_http::HandlerSpec {
    clawlet_http::HandlerSpec {
        verifier: clawlet_http::Verifier::Custom {
            header: axum::http::HeaderName::from_static("x-signature"),
            scheme: signing_scheme(),
            secrets: vec![SIGNING_SECRET.to_vec()],
        },
        ..open_handler("open")
    }
}

const SIGNING_SECRET: &[u8] = b"edge-secret";

fn signing_scheme() -> clawlet_verify::custom::Scheme {
    clawlet_verify::custom::Scheme {
        algorithm: clawlet_verify::custom::Algorithm::Sha256,
        encoding: clawlet_verify::custom::Encoding::Hex,
        prefix: "sha256=".to_owned(),
    }
}

/// Posts [`BODY`] as `peer`, signed or not; returns the status and `Retry-After`.
async fn post_signed(router: &Router, peer: &str, signed: bool) -> (u16, Option<String>) {
    let mut request = Request::post("/webhook/open").header("content-type", "application/json");
    if signed {
        request = request.header(
            "x-signature",
            signing_scheme().sign(SIGNING_SECRET, BODY.as_bytes()),
        );
    }
    let mut request = request.body(Body::from(BODY)).unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
    let response = router.clone().oneshot(request).await.unwrap();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().to_owned());
    (response.status().as_u16(), retry)
}

/// The `n`th IPv4 peer of a flood: each a client of its own.
fn flood_peer(n: u32) -> String {
    let [_, b, c, d] = n.to_be_bytes();
    format!("10.{b}.{c}.{d}:40000")
}

/// A flood from as many addresses as the key table holds, and then some, spends the overflow
/// quota that newcomers share; a new sender whose delivery verifies is served all the same (and
/// given a key of its own), while an unsigned newcomer is still refused with 429.
#[tokio::test]
async fn a_signed_newcomer_is_served_while_a_flood_spends_the_overflow_quota() {
    let mut spec = runtime(vec![signed_handler()]);
    // One request per client per hour: a flood key never rests during the test.
    spec.rate_limit = Some(Quota {
        max_requests: 1,
        window: Duration::from_secs(3600),
    });
    spec.logging.enabled = false;
    let router = router(spec).await;
    // The table fills: every flood address takes a key, and is refused at verification.
    let capacity = u32::try_from(clawlet_ratelimit::DEFAULT_MAX_KEYS).unwrap();
    for n in 0..capacity {
        assert_eq!(post_signed(&router, &flood_peer(n), false).await.0, 401);
    }
    // The next newcomer spends the overflow's burst of one ...
    assert_eq!(
        post_signed(&router, &flood_peer(capacity), false).await.0,
        401
    );
    // ... and the next one finds it spent: unsigned, it is refused as rate limited.
    let (status, retry) = post_signed(&router, &flood_peer(capacity + 1), false).await;
    assert_eq!(status, 429);
    assert!(retry.is_some(), "429 without Retry-After");

    // A newcomer whose delivery verifies is served, and keeps a quota of its own afterwards.
    let genuine = "192.0.2.50:40000";
    assert_eq!(post_signed(&router, genuine, true).await.0, 200);
    assert_eq!(post_signed(&router, genuine, true).await.0, 429);
    // Another signed newcomer is served too; unsigned ones still are not.
    assert_eq!(post_signed(&router, "192.0.2.51:40000", true).await.0, 200);
    assert_eq!(
        post_signed(&router, &flood_peer(capacity + 2), false)
            .await
            .0,
        429
    );
    // A known flood key keeps its own (spent) quota, signed or not.
    assert_eq!(post_signed(&router, &flood_peer(0), true).await.0, 429);

    let metrics = metrics(&router).await;
    assert!(
        metrics.contains(r#"clawlet_webhook_rate_limited_total{handler="open"} 4"#),
        "{metrics}"
    );
}
