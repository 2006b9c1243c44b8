//! Tests that need a real socket: limits, timeouts, allowlists behind proxies, shutdown.

use std::time::Duration;

use clawlet_http::{App, ServerLimits};
use clawlet_ratelimit::Quota;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{clock, memory_bus, open_handler, runtime, start};

/// Bounds every wait on the server so that a broken server fails the test instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(20);

const BODY: &str = r#"{"event_type":"user.created","data":{"id":1}}"#;

async fn read_all(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut out)).await;
    match read {
        Ok(Ok(_)) | Ok(Err(_)) => String::from_utf8_lossy(&out).into_owned(),
        Err(_) => panic!("server neither answered nor closed within {PATIENCE:?}"),
    }
}

fn status_line(response: &str) -> &str {
    response.lines().next().unwrap_or("")
}

#[tokio::test]
async fn the_101st_request_in_a_burst_gets_429_with_retry_after() {
    let mut spec = runtime(vec![open_handler("burst")]);
    spec.rate_limit = Some(Quota {
        max_requests: 100,
        window: Duration::from_secs(60),
    });
    let app = App::new(spec, memory_bus(10_000).await, clock()).unwrap();
    let server = start(app, ServerLimits::default(), None).await;
    let client = reqwest::Client::new();
    for i in 0..100 {
        let response = client
            .post(server.url("/webhook/burst"))
            .header("content-type", "application/json")
            .body(BODY)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "request {}", i + 1);
    }
    let response = client
        .post(server.url("/webhook/burst"))
        .header("content-type", "application/json")
        .body(BODY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // One cell comes back every 600 ms; whole seconds round up.
    assert_eq!(retry_after, 1);
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"error":"too many requests"}"#
    );
    server.shutdown.cancel();
    server.task.await.unwrap().unwrap();
}

async fn post_from(server_url: &str, forwarded_for: Option<&str>) -> u16 {
    let client = reqwest::Client::new();
    let mut request = client
        .post(server_url)
        .header("content-type", "application/json")
        .body(BODY);
    if let Some(xff) = forwarded_for {
        request = request.header("x-forwarded-for", xff);
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn allowlist_with_and_without_a_trusted_proxy() {
    struct Case {
        allowed: &'static [&'static str],
        trusted: &'static [&'static str],
        forwarded_for: Option<&'static str>,
        expected: u16,
    }
    let cases = [
        // The test client is 127.0.0.1.
        Case {
            allowed: &[],
            trusted: &[],
            forwarded_for: None,
            expected: 200,
        },
        Case {
            allowed: &["127.0.0.0/8"],
            trusted: &[],
            forwarded_for: None,
            expected: 200,
        },
        Case {
            allowed: &["192.0.2.0/24"],
            trusted: &[],
            forwarded_for: None,
            expected: 403,
        },
        // Not a trusted proxy: the header is a forgery and changes nothing.
        Case {
            allowed: &["192.0.2.0/24"],
            trusted: &[],
            forwarded_for: Some("192.0.2.10"),
            expected: 403,
        },
        // Behind a trusted proxy, the forwarded client counts.
        Case {
            allowed: &["192.0.2.0/24"],
            trusted: &["127.0.0.1/32"],
            forwarded_for: Some("192.0.2.10"),
            expected: 200,
        },
        Case {
            allowed: &["192.0.2.0/24"],
            trusted: &["127.0.0.1/32"],
            forwarded_for: Some("198.51.100.1"),
            expected: 403,
        },
        // The client prepends an allowed address; the proxy appends the real one.
        Case {
            allowed: &["192.0.2.0/24"],
            trusted: &["127.0.0.1/32"],
            forwarded_for: Some("192.0.2.10, 198.51.100.1"),
            expected: 403,
        },
        // The proxy itself is not an allowed sender.
        Case {
            allowed: &["192.0.2.0/24"],
            trusted: &["127.0.0.1/32"],
            forwarded_for: None,
            expected: 403,
        },
    ];
    for (i, case) in cases.iter().enumerate() {
        let mut spec = runtime(vec![open_handler("allow")]);
        spec.allowed_ips = case.allowed.iter().map(|n| n.parse().unwrap()).collect();
        spec.trusted_proxies = case.trusted.iter().map(|n| n.parse().unwrap()).collect();
        let app = App::new(spec, memory_bus(10_000).await, clock()).unwrap();
        let server = start(app, ServerLimits::default(), None).await;
        let status = post_from(&server.url("/webhook/allow"), case.forwarded_for).await;
        assert_eq!(
            status, case.expected,
            "case {i}: allowed {:?}, trusted {:?}, x-forwarded-for {:?}",
            case.allowed, case.trusted, case.forwarded_for
        );
        server.shutdown.cancel();
        server.task.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn a_declared_26_mib_body_is_refused_before_it_is_sent() {
    let app = App::new(
        runtime(vec![open_handler("big")]),
        memory_bus(10).await,
        clock(),
    )
    .unwrap();
    let server = start(app, ServerLimits::default(), None).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    // Only the head: the server must answer without waiting for 26 MiB that never come.
    let head = format!(
        "POST /webhook/big HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        26 * 1024 * 1024
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let response = read_all(&mut stream).await;
    assert_eq!(status_line(&response), "HTTP/1.1 413 Payload Too Large");
    assert!(
        response.ends_with(r#"{"error":"payload too large"}"#),
        "{response}"
    );
    server.shutdown.cancel();
    server.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_chunked_body_is_cut_off_once_over_the_limit() {
    let mut spec = runtime(vec![open_handler("chunked")]);
    spec.max_body_bytes = 1024 * 1024;
    let app = App::new(spec, memory_bus(10).await, clock()).unwrap();
    let server = start(app, ServerLimits::default(), None).await;
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    // The writer would send 1 GiB; the server must answer long before, having read little more
    // than the limit.
    let sender = tokio::spawn(async move {
        let head = "POST /webhook/chunked HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
        writer.write_all(head.as_bytes()).await?;
        let chunk = vec![b' '; 64 * 1024];
        let mut sent = 0usize;
        while sent < 1024 * 1024 * 1024 {
            writer
                .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await?;
            writer.write_all(&chunk).await?;
            writer.write_all(b"\r\n").await?;
            sent += chunk.len();
        }
        Ok::<usize, std::io::Error>(sent)
    });
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    // Read until the status line and body are in; the server closes after answering.
    loop {
        let n = tokio::time::timeout(PATIENCE, reader.read(&mut buf))
            .await
            .expect("no answer while the body was still streaming")
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        response.extend_from_slice(&buf[..n]);
    }
    let response = String::from_utf8_lossy(&response);
    assert_eq!(status_line(&response), "HTTP/1.1 413 Payload Too Large");
    // The writer stops with an error (connection closed) well before its gigabyte.
    let sent = tokio::time::timeout(PATIENCE, sender)
        .await
        .unwrap()
        .unwrap();
    assert!(sent.is_err(), "the whole gigabyte was accepted: {sent:?}");
    server.shutdown.cancel();
    server.task.await.unwrap().unwrap();
}

fn short_header_timeout() -> ServerLimits {
    ServerLimits {
        header_read_timeout: Duration::from_millis(300),
        ..ServerLimits::default()
    }
}

#[tokio::test]
async fn a_slow_client_is_cut_off_by_the_header_timeout() {
    let app = App::new(
        runtime(vec![open_handler("slow")]),
        memory_bus(10).await,
        clock(),
    )
    .unwrap();
    let server = start(app, short_header_timeout(), None).await;
    for partial in [
        "",
        "POST /webhook/sl",
        "POST /webhook/slow HTTP/1.1\r\nhost: te",
        "PRI * HTTP/2.0\r\n",
    ] {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(partial.as_bytes()).await.unwrap();
        let mut buf = [0u8; 1024];
        // The server closes the connection; a partial request gets no answer, or a 408.
        let read = tokio::time::timeout(PATIENCE, async {
            let mut seen = Vec::new();
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return seen,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("connection with {partial:?} still open after {PATIENCE:?}"));
        let text = String::from_utf8_lossy(&read);
        assert!(
            text.is_empty() || text.starts_with("HTTP/1.1 408"),
            "{partial:?}: {text}"
        );
    }
    // The server still serves clients that are not slow.
    assert_eq!(post_from(&server.url("/webhook/slow"), None).await, 200);
    server.shutdown.cancel();
    server.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish() {
    let app = App::new(
        runtime(vec![open_handler("drain")]),
        memory_bus(10).await,
        clock(),
    )
    .unwrap();
    let server = start(app, ServerLimits::default(), None).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    // `expect: 100-continue` makes the server say when the handler starts reading the body:
    // from then on the request is in flight.
    let head = format!(
        "POST /webhook/drain HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\nexpect: 100-continue\r\ncontent-length: {}\r\n\r\n",
        BODY.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(PATIENCE, stream.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"HTTP/1.1 100 Continue\r\n\r\n");
    let (first, rest) = BODY.split_at(10);
    stream.write_all(first.as_bytes()).await.unwrap();
    server.shutdown.cancel();
    stream.write_all(rest.as_bytes()).await.unwrap();
    let response = read_all(&mut stream).await;
    assert_eq!(status_line(&response), "HTTP/1.1 200 OK", "{response}");
    assert!(response.contains(r#""status":"accepted""#), "{response}");
    tokio::time::timeout(PATIENCE, server.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    // No longer accepting.
    assert!(TcpStream::connect(server.addr).await.is_err());
}

#[tokio::test]
async fn a_request_whose_body_never_ends_gets_408() {
    let limits = ServerLimits {
        request_timeout: Duration::from_millis(300),
        ..ServerLimits::default()
    };
    let app = App::new(
        runtime(vec![open_handler("stall")]),
        memory_bus(10).await,
        clock(),
    )
    .unwrap();
    let server = start(app, limits, None).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /webhook/stall HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{}",
        BODY.len(),
        &BODY[..10]
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(PATIENCE, stream.read(&mut buf))
        .await
        .expect("no answer to a stalled body")
        .unwrap();
    let response = String::from_utf8_lossy(&buf[..n]);
    assert_eq!(
        status_line(&response),
        "HTTP/1.1 408 Request Timeout",
        "{response}"
    );
    server.shutdown.cancel();
    server.task.await.unwrap().unwrap();
}
