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

use crate::{LogCapture, clock, memory_bus, open_handler, runtime, start};

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

#[tokio::test]
async fn a_body_past_the_inflight_budget_gets_503_before_it_is_read() {
    let limits = ServerLimits {
        max_inflight_body_bytes: 1_000,
        ..ServerLimits::default()
    };
    let app = App::new(
        runtime(vec![open_handler("open")]),
        memory_bus(10_000).await,
        clock(),
    )
    .unwrap();
    let server = start(app, limits, None).await;

    // A sender that declares 800 bytes and sends only half of them holds 800 of the 1000.
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    let slow_body = body_of(800, "slow");
    slow.write_all(head(800).as_bytes()).await.unwrap();
    slow.write_all(&slow_body.as_bytes()[..400]).await.unwrap();

    // Once the server has reserved it, 300 more do not fit: 503 with Retry-After, unread.
    let deadline = Instant::now() + PATIENCE;
    let refused = loop {
        let reply = exchange(server.addr, 300, "later").await;
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
    // 200 more still fit, beside the 800.
    let fits = exchange(server.addr, 200, "small").await;
    assert!(fits.starts_with("HTTP/1.1 200"), "{fits}");

    // The slow body completes and is accepted; its share comes back, and 300 fit again.
    slow.write_all(&slow_body.as_bytes()[400..]).await.unwrap();
    let done = read_response(&mut slow).await;
    assert!(done.starts_with("HTTP/1.1 200"), "{done}");
    let again = exchange(server.addr, 300, "again").await;
    assert!(again.starts_with("HTTP/1.1 200"), "{again}");

    server.shutdown.cancel();
    server.task.await.unwrap().unwrap();
}
