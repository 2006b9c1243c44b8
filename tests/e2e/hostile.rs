//! Hostile input against the running binary: every malformed, oversized, slow or odd request gets
//! the right status or a closed connection, the daemon stays up, and its memory stays bounded.
//!
//! Requests are written by hand on a raw TCP connection, so that they can be as wrong as an
//! attacker makes them (invalid UTF-8, repeated headers, bodies that never end).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{Daemon, peak_rss_kib, rss_kib};

const GITHUB_SECRET: &str = "gh-hostile-secret";
const STRIPE_SECRET: &str = "whsec_hostile_stripe_secret";
const CUSTOM_SECRET: &str = "custom-hostile-secret";
/// The body limit of the test configuration.
const MAX_BODY: usize = 256 * 1024;
/// The longest any single exchange may take before the test fails (a bound, not an expectation).
const BOUND: Duration = Duration::from_secs(10);
/// Far above what the daemon needs; a leak or an unbounded buffer would cross it.
const RSS_BOUND_KIB: u64 = 256 * 1024;

fn config() -> String {
    format!(
        r#"webhooks:
  host: 127.0.0.1
  port: 0
  rate_limit:
    enabled: false
  max_body_bytes: {MAX_BODY}
  limits:
    header_read_timeout: 1s
    request_timeout: 1s
  queue:
    backend: sqlite
    path: "{{dir}}/journal.db"
  handlers:
    github:
      secret: "{GITHUB_SECRET}"
    stripe:
      secret: "{STRIPE_SECRET}"
    custom:
      secret: "{CUSTOM_SECRET}"
      delivery_id_header: X-Delivery-Id
"#
    )
}

/// What came back on one raw connection.
#[derive(Debug)]
pub(crate) struct Reply {
    /// The status of the first response, `None` when the server sent none.
    pub(crate) status: Option<u16>,
    /// Whether the server closed the connection (or reset it) within [`BOUND`].
    pub(crate) closed: bool,
    /// Everything received, lossily decoded.
    pub(crate) text: String,
}

/// Writes `chunks` on a fresh connection, pausing `pause` between them, while reading whatever
/// comes back until the server closes the connection or [`BOUND`] passes. The server may answer
/// and close before reading everything (413, 431): a failed write just ends the writing.
pub(crate) async fn exchange_in_chunks(
    addr: SocketAddr,
    chunks: Vec<Vec<u8>>,
    pause: Duration,
) -> Reply {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        for (i, chunk) in chunks.iter().enumerate() {
            if i > 0 && !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            if write.write_all(chunk).await.is_err() {
                break;
            }
        }
        // Keep the write half open: the server decides when the exchange ends.
        write
    });
    let mut received = Vec::new();
    let closed = tokio::time::timeout(BOUND, async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    writer.abort();
    let text = String::from_utf8_lossy(&received).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok());
    Reply {
        status,
        closed,
        text,
    }
}

/// Writes `request` on a fresh connection and reads the answer (see [`exchange_in_chunks`]).
pub(crate) async fn exchange(addr: SocketAddr, request: Vec<u8>) -> Reply {
    exchange_in_chunks(addr, vec![request], Duration::ZERO).await
}

/// An HTTP/1.1 request with `Connection: close` and a `Content-Length` for `body`; header values
/// are bytes so that they can be anything.
pub(crate) fn request(method: &str, path: &str, headers: &[(&str, &[u8])], body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    )
    .into_bytes();
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// A GitHub push delivery with `headers` after the usual ones.
fn github(body: &[u8], signature: &[u8], extra: &[(&str, &[u8])]) -> Vec<u8> {
    let mut headers: Vec<(&str, &[u8])> = vec![
        ("Content-Type", b"application/json"),
        ("X-GitHub-Event", b"push"),
        ("X-GitHub-Delivery", b"hostile-1"),
        ("X-Hub-Signature-256", signature),
    ];
    headers.extend_from_slice(extra);
    request("POST", "/webhook/github", &headers, body)
}

fn github_signature(body: &[u8]) -> Vec<u8> {
    clawlet_verify::github::sign(GITHUB_SECRET.as_bytes(), body).into_bytes()
}

fn custom_signature(body: &[u8]) -> Vec<u8> {
    clawlet_verify::custom::Scheme::default()
        .sign(CUSTOM_SECRET.as_bytes(), body)
        .into_bytes()
}

/// The daemon still answers `/health` and its memory stays under [`RSS_BOUND_KIB`].
async fn assert_healthy(daemon: &Daemon, after: &str) {
    let reply = exchange(daemon.addr, request("GET", "/health", &[], b"")).await;
    assert_eq!(
        reply.status,
        Some(200),
        "after {after}: /health {reply:?}\n{}",
        daemon.logs()
    );
    let rss = rss_kib(daemon.pid());
    assert!(
        rss < RSS_BOUND_KIB,
        "after {after}: the daemon uses {rss} KiB"
    );
}

/// A named request and the statuses it may get (`None`: closed without an answer).
type Case<'a> = (&'a str, Vec<u8>, &'a [Option<u16>]);

/// Sends each case and checks that its status is one of `expected` (`None`: the connection was
/// closed without an answer) and that the connection was closed.
async fn check_all(daemon: &Daemon, cases: Vec<Case<'_>>) {
    for (name, bytes, expected) in cases {
        let reply = exchange(daemon.addr, bytes).await;
        assert!(
            expected.contains(&reply.status),
            "{name}: expected one of {expected:?}, got {:?}: {}",
            reply.status,
            reply.text
        );
        assert!(reply.closed, "{name}: the connection was left open");
        assert_healthy(daemon, name).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_repeated_signature_headers_are_refused() {
    let daemon = Daemon::start(&config());
    let body = br#"{"ref":"refs/heads/main","repository":{"full_name":"o/r"}}"#;
    let good = github_signature(body);
    let wrong = clawlet_verify::github::sign(b"not-the-secret", body).into_bytes();
    let huge = [b"sha256=".as_slice(), &[b'a'; 8192]].concat();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let stripe_body = br#"{"id":"evt_hostile","type":"invoice.paid","data":{"object":{}}}"#;
    let stripe_good = clawlet_verify::stripe::sign(STRIPE_SECRET.as_bytes(), now, stripe_body);
    let stripe = |signatures: &[&[u8]]| {
        let mut headers: Vec<(&str, &[u8])> = vec![("Content-Type", b"application/json")];
        headers.extend(signatures.iter().map(|s| ("Stripe-Signature", *s)));
        request("POST", "/webhook/stripe", &headers, stripe_body)
    };
    let unauthorized: &[Option<u16>] = &[Some(401)];
    let cases = vec![
        // The control: the same request, correctly signed, is accepted.
        ("valid", github(body, &good, &[]), &[Some(200)][..]),
        (
            "no signature",
            request(
                "POST",
                "/webhook/github",
                &[("X-GitHub-Event", b"push"), ("X-GitHub-Delivery", b"x")],
                body,
            ),
            unauthorized,
        ),
        ("empty", github(body, b"", &[]), unauthorized),
        ("prefix only", github(body, b"sha256=", &[]), unauthorized),
        (
            "wrong scheme",
            github(body, b"md5=abcdef", &[]),
            unauthorized,
        ),
        (
            "not hex",
            github(body, &[b"sha256=".as_slice(), &[b'z'; 64]].concat(), &[]),
            unauthorized,
        ),
        (
            "upper-case hex",
            github(body, good.to_ascii_uppercase().as_slice(), &[]),
            unauthorized,
        ),
        ("8 KiB value", github(body, &huge, &[]), unauthorized),
        (
            "invalid UTF-8",
            github(body, b"sha256=\xff\xfe\x80", &[]),
            unauthorized,
        ),
        ("wrong secret", github(body, &wrong, &[]), unauthorized),
        // Two signature headers are ambiguous, whatever they hold: a proxy may have checked the
        // other one.
        (
            "repeated, both valid",
            github(body, &good, &[("X-Hub-Signature-256", &good)]),
            unauthorized,
        ),
        (
            "repeated, valid first",
            github(body, &good, &[("X-Hub-Signature-256", &wrong)]),
            unauthorized,
        ),
        (
            "repeated, valid second",
            github(body, &wrong, &[("X-Hub-Signature-256", &good)]),
            unauthorized,
        ),
        (
            "stripe: repeated header",
            stripe(&[stripe_good.as_bytes(), stripe_good.as_bytes()]),
            unauthorized,
        ),
        (
            "stripe: timestamp not a number",
            stripe(&[b"t=abc,v1=00"]),
            unauthorized,
        ),
        ("stripe: garbage", stripe(&[b",,,==,t,v1"]), unauthorized),
        (
            "stripe: valid",
            stripe(&[stripe_good.as_bytes()]),
            &[Some(200)][..],
        ),
    ];
    check_all(&daemon, cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_in_headers_and_bodies_is_a_400() {
    let daemon = Daemon::start(&config());
    let body = br#"{"ref":"refs/heads/main"}"#;
    let signature = github_signature(body);
    let bad_body = b"{\"event_type\":\"\xff\xfe\",\"x\":\"\xc3\x28\"}";
    let custom = |body: &[u8], event_id: &[u8]| {
        request(
            "POST",
            "/webhook/custom",
            &[
                ("Content-Type", b"application/json"),
                ("X-Delivery-Id", event_id),
                ("X-Signature", &custom_signature(body)),
            ],
            body,
        )
    };
    let mut bad_event = github(body, &signature, &[]);
    // Same request with an X-GitHub-Event that is not UTF-8.
    let at = find(&bad_event, b"X-GitHub-Event: push").unwrap();
    bad_event.splice(
        at..at + b"X-GitHub-Event: push".len(),
        b"X-GitHub-Event: p\xffsh".iter().copied(),
    );
    let mut bad_delivery = github(body, &signature, &[]);
    let at = find(&bad_delivery, b"X-GitHub-Delivery: hostile-1").unwrap();
    bad_delivery.splice(
        at..at + b"X-GitHub-Delivery: hostile-1".len(),
        b"X-GitHub-Delivery: \xc0\xafhostile".iter().copied(),
    );
    let bad_request: &[Option<u16>] = &[Some(400)];
    let cases = vec![
        ("event header", bad_event, bad_request),
        ("delivery id header", bad_delivery, bad_request),
        ("custom: body", custom(bad_body, b"utf8-1"), bad_request),
        (
            "custom: delivery id header",
            custom(br#"{"event_type":"x"}"#, b"\xff\xff"),
            bad_request,
        ),
        (
            "github: body",
            github(
                b"{\"ref\":\"\xff\"}",
                &github_signature(b"{\"ref\":\"\xff\"}"),
                &[],
            ),
            bad_request,
        ),
        // A header nothing reads may hold anything.
        (
            "unread header",
            github(body, &signature, &[("X-Ignored", b"\xff")]),
            &[Some(200)][..],
        ),
    ];
    check_all(&daemon, cases).await;
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_heads_are_refused() {
    let daemon = Daemon::start(&config());
    let body = br#"{"ref":"refs/heads/main"}"#;
    let signature = github_signature(body);
    let megabyte = vec![b'a'; 1024 * 1024];
    let many: Vec<(String, Vec<u8>)> = (0..5000)
        .map(|i| (format!("X-Filler-{i}"), b"v".to_vec()))
        .collect();
    let many: Vec<(&str, &[u8])> = many
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    let same: Vec<(&str, &[u8])> = (0..5000).map(|_| ("X-Same", b"v".as_slice())).collect();
    let too_large: &[Option<u16>] = &[Some(431), None];
    let before = rss_kib(daemon.pid());
    for _ in 0..5 {
        let cases = vec![
            (
                "1 MiB header value",
                github(body, &signature, &[("X-Big", &megabyte)]),
                too_large,
            ),
            (
                "1 MiB signature value",
                github(body, &megabyte, &[]),
                too_large,
            ),
            ("5000 headers", github(body, &signature, &many), too_large),
            (
                "5000 repeats of one header",
                github(body, &signature, &same),
                too_large,
            ),
            (
                "1 MiB request target",
                request(
                    "POST",
                    &format!("/webhook/{}", "a".repeat(1024 * 1024)),
                    &[],
                    b"",
                ),
                &[Some(414), Some(431), Some(400), None][..],
            ),
        ];
        check_all(&daemon, cases).await;
    }
    let after = rss_kib(daemon.pid());
    assert!(
        after < RSS_BOUND_KIB,
        "{before} KiB before, {after} KiB after"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_json_with_a_valid_signature_is_a_400() {
    let daemon = Daemon::start(&config());
    let arrays = vec![b'['; 100_000];
    let objects = br#"{"a":"#.repeat(30_000);
    let mixed = [br#"{"event_type":"x","data":"#.as_slice(), &arrays].concat();
    let mut cases = Vec::new();
    for (name, body) in [
        ("100 000 [", &arrays),
        ("30 000 {\"a\":", &objects),
        ("nested under a valid prefix", &mixed),
    ] {
        cases.push((
            name,
            github(body, &github_signature(body), &[]),
            &[Some(400)][..],
        ));
        cases.push((
            name,
            request(
                "POST",
                "/webhook/custom",
                &[
                    ("Content-Type", b"application/json"),
                    ("X-Delivery-Id", b"deep"),
                    ("X-Signature", &custom_signature(body)),
                ],
                body,
            ),
            &[Some(400)][..],
        ));
    }
    check_all(&daemon, cases).await;
}

/// A chunked request head for the GitHub handler (the body follows in chunks).
fn chunked_head() -> Vec<u8> {
    b"POST /webhook/github HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
      Content-Type: application/json\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: chunked\r\n\
      X-Hub-Signature-256: sha256=00\r\nTransfer-Encoding: chunked\r\n\r\n"
        .to_vec()
}

fn chunk(data: &[u8]) -> Vec<u8> {
    [format!("{:x}\r\n", data.len()).as_bytes(), data, b"\r\n"].concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_are_refused() {
    let daemon = Daemon::start(&config());
    let over = vec![b' '; MAX_BODY + 1];
    let big = vec![b' '; 4 * 1024 * 1024];
    let too_large: &[Option<u16>] = &[Some(413), None];
    let before = rss_kib(daemon.pid());
    for _ in 0..5 {
        let mut chunked = chunked_head();
        for piece in big.chunks(64 * 1024) {
            chunked.extend(chunk(piece));
        }
        chunked.extend(b"0\r\n\r\n");
        // Declares 1 GiB and sends only the head and a little: refused before reading.
        let mut lying = request("POST", "/webhook/github", &[], b"");
        let at = find(&lying, b"Content-Length: 0").unwrap();
        lying.splice(
            at..at + b"Content-Length: 0".len(),
            b"Content-Length: 1073741824".iter().copied(),
        );
        lying.extend_from_slice(&[b' '; 1024]);
        let cases = vec![
            (
                "one byte over, with Content-Length",
                github(&over, &github_signature(&over), &[]),
                too_large,
            ),
            (
                "4 MiB with Content-Length",
                github(&big, b"sha256=00", &[]),
                too_large,
            ),
            ("declares 1 GiB", lying, too_large),
            ("4 MiB chunked", chunked, too_large),
        ];
        check_all(&daemon, cases).await;
    }
    let after = rss_kib(daemon.pid());
    assert!(
        after < RSS_BOUND_KIB,
        "{before} KiB before, {after} KiB after"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_that_never_ends_is_cut_off_by_the_request_timeout() {
    let daemon = Daemon::start(&config());
    let mut start = chunked_head();
    start.extend(chunk(br#"{"ref":"#));
    // The body stops here, and the connection stays open from this side.
    let reply = exchange(daemon.addr, start).await;
    assert!(reply.closed, "the request was never cut off: {reply:?}");
    assert!(
        matches!(reply.status, Some(408) | None),
        "{reply:?}\n{}",
        daemon.logs()
    );
    assert_healthy(&daemon, "a never-ending body").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_connection_is_cut_off_by_the_header_timeout() {
    let daemon = Daemon::start(&config());
    // One header byte every 100 ms for up to 10 s: ten times the header timeout.
    let mut chunks = vec![b"POST /webhook/github HTTP/1.1\r\n".to_vec()];
    chunks.extend(
        b"X-Slow-Header-Name: "
            .repeat(5)
            .into_iter()
            .map(|b| vec![b]),
    );
    let reply = exchange_in_chunks(daemon.addr, chunks, Duration::from_millis(100)).await;
    assert!(reply.closed, "the slow client was never cut off: {reply:?}");
    assert!(matches!(reply.status, Some(408) | None), "{reply:?}");

    // Before the first request line too.
    let chunks: Vec<Vec<u8>> = b"POST /webhook/github HT"
        .iter()
        .map(|b| vec![*b])
        .collect();
    let reply = exchange_in_chunks(daemon.addr, chunks, Duration::from_millis(200)).await;
    assert!(reply.closed, "the slow client was never cut off: {reply:?}");
    assert!(matches!(reply.status, Some(408) | None), "{reply:?}");

    // A connection that sends nothing at all.
    let reply = exchange(daemon.addr, Vec::new()).await;
    assert!(reply.closed, "an idle connection was never closed");
    assert_healthy(&daemon, "slowloris").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_encoding_is_refused_not_parsed_undecoded() {
    let daemon = Daemon::start(&config());
    let json = br#"{"ref":"refs/heads/main"}"#;
    // A gzip member holding `json` (stored, not compressed: still a valid gzip stream).
    let gzip: Vec<u8> = [
        &[0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff, 0x01][..],
        &(json.len() as u16).to_le_bytes(),
        &(!(json.len() as u16)).to_le_bytes(),
        json,
        &[0, 0, 0, 0],
        &(json.len() as u32).to_le_bytes(),
    ]
    .concat();
    let unsupported: &[Option<u16>] = &[Some(415)];
    let cases = vec![
        (
            "gzip body",
            github(
                &gzip,
                &github_signature(&gzip),
                &[("Content-Encoding", b"gzip")],
            ),
            unsupported,
        ),
        // The body is plain JSON but says it is compressed: it must not be taken as it is.
        (
            "plain JSON labelled gzip",
            github(
                json,
                &github_signature(json),
                &[("Content-Encoding", b"gzip")],
            ),
            unsupported,
        ),
        (
            "br",
            github(
                json,
                &github_signature(json),
                &[("Content-Encoding", b"br")],
            ),
            unsupported,
        ),
        // Verification still comes first.
        (
            "gzip, unsigned",
            github(&gzip, b"sha256=00", &[("Content-Encoding", b"gzip")]),
            &[Some(401)][..],
        ),
        (
            "identity",
            github(
                json,
                &github_signature(json),
                &[("Content-Encoding", b"identity")],
            ),
            &[Some(200)][..],
        ),
    ];
    check_all(&daemon, cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_garbage_closes_the_connection_and_nothing_else() {
    let daemon = Daemon::start(&config());
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    /// A frame header: 24-bit length, type, flags, 31-bit stream id.
    fn frame(len: u32, kind: u8, flags: u8, stream: u32) -> Vec<u8> {
        let mut out = len.to_be_bytes()[1..].to_vec();
        out.extend([kind, flags]);
        out.extend(stream.to_be_bytes());
        out
    }
    let settings = frame(0, 0x4, 0, 0);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "garbage after the preface",
            [PREFACE, &[0xde; 512]].concat(),
        ),
        (
            "a 16 MiB frame",
            [PREFACE, &settings, &frame(0xff_ffff, 0x0, 0, 1), &[0; 64]].concat(),
        ),
        (
            "HEADERS on stream 0",
            [
                PREFACE,
                &settings,
                &frame(4, 0x1, 0x4, 0),
                &[0x82, 0x84, 0x86, 0x41],
            ]
            .concat(),
        ),
        (
            "undecodable HPACK",
            [PREFACE, &settings, &frame(4, 0x1, 0x5, 1), &[0xff; 4]].concat(),
        ),
        (
            "SETTINGS of odd length",
            [PREFACE, &frame(5, 0x4, 0, 0), &[0; 5]].concat(),
        ),
        ("half a preface", PREFACE[..10].to_vec()),
    ];
    for (name, bytes) in cases {
        let reply = exchange(daemon.addr, bytes).await;
        assert!(reply.closed, "{name}: the connection was left open");
        assert!(
            !reply.text.starts_with("HTTP/1.1 2"),
            "{name}: {}",
            reply.text
        );
        assert_healthy(&daemon, name).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_traversal_reaches_nothing() {
    let daemon = Daemon::start(&config());
    let body = br#"{"ref":"refs/heads/main"}"#;
    let signature = github_signature(body);
    let headers: &[(&str, &[u8])] = &[
        ("Content-Type", b"application/json"),
        ("X-GitHub-Event", b"push"),
        ("X-GitHub-Delivery", b"traversal"),
        ("X-Hub-Signature-256", &signature),
    ];
    let refused: &[Option<u16>] = &[Some(404), Some(400)];
    let mut cases = Vec::new();
    for path in [
        "/webhook/../health",
        "/webhook/github/../../etc/passwd",
        "/webhook/github/..",
        "/webhook/%2e%2e/health",
        "/webhook/%2E%2E/%2e%2e/etc/passwd",
        "/webhook/github/..%2f..%2fhealth",
        "/webhook/github%2f..%2f..%2fetc%2fpasswd",
        "/webhook/x/../github",
        "//webhook/github",
        "/webhook//github",
        "/webhook/github/",
        "/webhook/github%00",
        "/./webhook/github",
        "/WEBHOOK/GITHUB",
    ] {
        for method in ["POST", "GET"] {
            cases.push((path, request(method, path, headers, body), refused));
        }
    }
    check_all(&daemon, cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_methods_are_refused() {
    let daemon = Daemon::start(&config());
    let not_allowed: &[Option<u16>] = &[Some(405)];
    let mut cases = Vec::new();
    for method in [
        "GET",
        "PUT",
        "DELETE",
        "PATCH",
        "OPTIONS",
        "TRACE",
        "HEAD",
        "BREW",
        "X-MADE-UP",
    ] {
        cases.push((
            method,
            request(method, "/webhook/github", &[], b"{}"),
            not_allowed,
        ));
    }
    for method in ["POST", "PUT", "DELETE", "TRACE", "BREW"] {
        cases.push((method, request(method, "/health", &[], b""), not_allowed));
        cases.push((method, request(method, "/metrics", &[], b""), not_allowed));
    }
    cases.push((
        "unknown path",
        request("BREW", "/nowhere", &[], b""),
        &[Some(404), Some(405)][..],
    ));
    cases.push((
        "method with a space",
        b"PO ST /webhook/github HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
        &[Some(400), None][..],
    ));
    cases.push((
        "method with control bytes",
        b"P\x01ST /webhook/github HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
        &[Some(400), None][..],
    ));
    check_all(&daemon, cases).await;
}

/// The issue's proxy set-up: nginx on 127.0.0.1 in front, GitHub's hook range allowed, and a
/// small rate limit so that a request charged to the proxy's own bucket shows.
fn behind_a_proxy() -> String {
    format!(
        r#"webhooks:
  host: 127.0.0.1
  port: 0
  trusted_proxies: ["127.0.0.1/32"]
  allowed_ips: ["127.0.0.1/32", "192.30.252.0/22"]
  rate_limit:
    max_requests: 2
    window_seconds: 60
  queue:
    backend: sqlite
    path: "{{dir}}/journal.db"
  handlers:
    github:
      secret: "{GITHUB_SECRET}"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_headers_that_do_not_name_the_client_are_refused() {
    let daemon = Daemon::start(&behind_a_proxy());
    let body = br#"{"ref":"refs/heads/main"}"#;
    let signature = github_signature(body);
    let unsigned = |extra: &[(&str, &[u8])]| github(body, b"sha256=00", extra);
    let forbidden: &[Option<u16>] = &[Some(403)];
    let cases = vec![
        // Not on the allowlist: refused as before.
        (
            "XFF alone, not allowed",
            unsigned(&[("X-Forwarded-For", b"203.0.113.9")]),
            forbidden,
        ),
        // The client adds its own Forwarded naming an allowed address: the two disagree, and
        // neither they nor the proxy's own address are believed (it used to be 401 as 127.0.0.1).
        (
            "XFF and a forged Forwarded",
            unsigned(&[
                ("X-Forwarded-For", b"203.0.113.9"),
                ("Forwarded", b"for=192.30.252.1"),
            ]),
            forbidden,
        ),
        (
            "Forwarded and a forged XFF",
            unsigned(&[
                ("X-Forwarded-For", b"192.30.252.1"),
                ("Forwarded", b"for=203.0.113.9"),
            ]),
            forbidden,
        ),
        (
            "XFF unknown",
            unsigned(&[("X-Forwarded-For", b"unknown")]),
            forbidden,
        ),
        (
            "XFF empty",
            unsigned(&[("X-Forwarded-For", b"")]),
            forbidden,
        ),
        (
            "XFF garbage",
            unsigned(&[("X-Forwarded-For", b"192.30.252.1, not-an-ip")]),
            forbidden,
        ),
        (
            "XFF not UTF-8",
            unsigned(&[("X-Forwarded-For", b"192.30.252.\xff")]),
            forbidden,
        ),
        (
            "Forwarded obfuscated",
            unsigned(&[("Forwarded", b"for=_hidden")]),
            forbidden,
        ),
        (
            "Forwarded unknown",
            unsigned(&[("Forwarded", b"for=unknown")]),
            forbidden,
        ),
        ("no forwarding header", unsigned(&[]), forbidden),
    ];
    check_all(&daemon, cases).await;

    // None of those was charged to the proxy's bucket: a client the proxy names as 127.0.0.1
    // still has its burst of two (unsigned, so 401), and only then is limited.
    let from_proxy_host = || unsigned(&[("X-Forwarded-For", b"127.0.0.1")]);
    for (i, expected) in [401, 401, 429].into_iter().enumerate() {
        let reply = exchange(daemon.addr, from_proxy_host()).await;
        assert_eq!(reply.status, Some(expected), "request {i}: {}", reply.text);
    }
    // A real sender behind the proxy, named the same way by both headers, gets through.
    let reply = exchange(
        daemon.addr,
        github(
            body,
            &signature,
            &[
                ("X-Forwarded-For", b"192.30.252.1"),
                ("Forwarded", b"for=192.30.252.1;proto=https"),
            ],
        ),
    )
    .await;
    assert_eq!(reply.status, Some(200), "{}", reply.text);
}

/// The in-flight body budget of the flood test, and what the daemon may use beyond it.
const FLOOD_BUDGET: u64 = 64 * 1024 * 1024;
const FLOOD_SLACK_KIB: u64 = 64 * 1024;

/// Sends `head` and then `body` on a fresh connection, reading the answer as it comes: a sender
/// that is answered before it finished stops sending, as HTTP clients do. Returns the answer.
async fn send_large(addr: SocketAddr, head: Vec<u8>, body: std::sync::Arc<Vec<u8>>) -> Reply {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        if write.write_all(&head).await.is_err() {
            return;
        }
        for piece in body.chunks(256 * 1024) {
            if write.write_all(piece).await.is_err() {
                return;
            }
        }
        // Keep the write half open until the answer is read.
        std::future::pending::<()>().await;
    });
    let mut received = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(120), async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    writer.abort();
    let text = String::from_utf8_lossy(&received).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok());
    Reply {
        status,
        closed,
        text,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unsigned_25_mb_bodies_stays_within_the_body_budget() {
    let config = format!(
        r#"webhooks:
  host: 127.0.0.1
  port: 0
  rate_limit:
    enabled: false
  max_body_bytes: 26214400
  limits:
    request_timeout: 120s
    max_inflight_body_bytes: {FLOOD_BUDGET}
  queue:
    backend: sqlite
    path: "{{dir}}/journal.db"
  handlers:
    github:
      secret: "{GITHUB_SECRET}"
"#
    );
    // As the shipped systemd unit runs it: mimalloc gives freed memory back at once.
    let daemon = Daemon::start_with_env(
        &config,
        &[
            ("MIMALLOC_PURGE_DELAY", "0"),
            ("MIMALLOC_ARENA_EAGER_COMMIT", "0"),
        ],
    );
    // The flood is held to the budget plus the slack over what the idle daemon holds, its
    // journal, runtime and allocator arenas, which the budget does not cover.
    let idle = rss_kib(daemon.pid());
    const SIZE: usize = 25_000_000;
    let body = std::sync::Arc::new(vec![b' '; SIZE]);
    let head = |i: usize| {
        format!(
            "POST /webhook/github HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
             Content-Type: application/json\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: flood-{i}\r\n\
             X-Hub-Signature-256: sha256=00\r\nContent-Length: {SIZE}\r\n\r\n"
        )
        .into_bytes()
    };
    let senders: Vec<_> = (0..100)
        .map(|i| tokio::spawn(send_large(daemon.addr, head(i), body.clone())))
        .collect();
    let mut replies = Vec::new();
    for sender in senders {
        replies.push(sender.await.unwrap());
    }

    let mut refused_with_retry = 0;
    let mut read_and_refused = 0;
    for reply in &replies {
        match reply.status {
            Some(503) => {
                assert!(
                    reply
                        .text
                        .to_ascii_lowercase()
                        .contains("\r\nretry-after: "),
                    "503 without Retry-After: {}",
                    reply.text
                );
                refused_with_retry += 1;
            }
            Some(401) => read_and_refused += 1,
            // The server may close on a sender still writing the body it will not read.
            None => {}
            Some(other) => panic!("unexpected {other}: {}", reply.text),
        }
    }
    let peak = peak_rss_kib(daemon.pid());
    let bound = idle + FLOOD_BUDGET / 1024 + FLOOD_SLACK_KIB;
    let summary = format!(
        "idle {idle} KiB, peak {peak} KiB, {refused_with_retry} × 503, {read_and_refused} × 401, {} closed unanswered",
        replies.len() - refused_with_retry - read_and_refused
    );
    eprintln!("flood: {summary}");
    assert!(
        peak < bound,
        "the flood took more than the {FLOOD_BUDGET}-byte budget plus {FLOOD_SLACK_KIB} KiB over the idle daemon: {summary}"
    );
    assert!(
        refused_with_retry > 0,
        "no request was turned away by the budget: {summary}"
    );
    assert!(
        read_and_refused > 0,
        "no body was read at all, so the budget was never exercised: {summary}"
    );
    assert_healthy(&daemon, "a flood of 25 MB bodies").await;
}
