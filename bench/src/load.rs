//! The load itself: each worker owns one HTTP/1.1 keep-alive connection and sends the next request
//! as soon as the previous answer is read (a closed loop), until the shared budget runs out.

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hmac::{Hmac, KeyInit as _, Mac};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use sha2::Sha256;
use tokio::net::{TcpSocket, TcpStream};

use crate::target::Target;

/// How requests are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Scheme {
    /// GitHub: `X-Hub-Signature-256: sha256=<hex HMAC>`, `X-GitHub-Event: push` and a fresh
    /// `X-GitHub-Delivery` UUID per request.
    Github,
    /// No signature headers, only the body as `application/json`.
    Plain,
}

/// Everything about a request that does not change between requests, built once.
#[derive(Debug)]
pub(crate) struct Template {
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    /// The header that gets a fresh UUID on every request, when the scheme has one.
    delivery: Option<HeaderName>,
}

impl Template {
    /// Pre-builds the headers; with `bad_signature` the signature is well-formed but wrong.
    pub(crate) fn new(
        target: &Target,
        scheme: Scheme,
        secret: &[u8],
        bad_signature: bool,
        body: Bytes,
    ) -> anyhow::Result<Self> {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_str(&target.authority)?);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            header::USER_AGENT,
            HeaderValue::from_static("GitHub-Hookshot/clawlet-loadgen"),
        );
        let delivery = match scheme {
            Scheme::Plain => None,
            Scheme::Github => {
                let mut signature = sign(secret, &body)?;
                if bad_signature {
                    flip_last_hex_digit(&mut signature);
                }
                headers.insert("x-github-event", HeaderValue::from_static("push"));
                headers.insert("x-github-hook-id", HeaderValue::from_static("1"));
                headers.insert(
                    "x-hub-signature-256",
                    HeaderValue::from_str(&format!("sha256={signature}"))?,
                );
                Some(HeaderName::from_static("x-github-delivery"))
            }
        };
        Ok(Self {
            uri: target.path.parse()?,
            headers,
            body,
            delivery,
        })
    }

    fn request(&self, rng: &mut SplitMix64) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        if let Some(name) = &self.delivery {
            let mut bytes = [0u8; 16];
            bytes[..8].copy_from_slice(&rng.next().to_le_bytes());
            bytes[8..].copy_from_slice(&rng.next().to_le_bytes());
            let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
            let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
            if let Ok(value) = HeaderValue::from_str(id.hyphenated().encode_lower(&mut text)) {
                request.headers_mut().insert(name.clone(), value);
            }
        }
        request
    }
}

/// The lowercase hex HMAC-SHA-256 of the body, as GitHub sends it after `sha256=`.
pub(crate) fn sign(secret: &[u8], body: &[u8]) -> anyhow::Result<String> {
    // HMAC takes keys of any length; the error exists only for fixed-key MACs.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret)?;
    mac.update(body);
    Ok(hex::encode(mac.finalize().into_bytes()))
}

fn flip_last_hex_digit(signature: &mut String) {
    let flipped = match signature.pop() {
        Some('0') => '1',
        Some(_) | None => '0',
    };
    signature.push(flipped);
}

/// When to stop: after a number of requests, at a deadline, whichever comes first.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: u64,
    taken: AtomicU64,
    deadline: Instant,
    /// Requests still in flight at this instant are abandoned, so that the run ends on time even
    /// when the server stops answering.
    hard_stop: Instant,
}

impl Budget {
    /// A budget of at most `limit` requests started before `deadline` and answered before
    /// `hard_stop`.
    pub(crate) fn new(limit: u64, deadline: Instant, hard_stop: Instant) -> Self {
        Self {
            limit,
            taken: AtomicU64::new(0),
            deadline,
            hard_stop,
        }
    }

    /// Claims one request; false once the budget is spent.
    fn take(&self) -> bool {
        Instant::now() < self.deadline && self.taken.fetch_add(1, Ordering::Relaxed) < self.limit
    }
}

/// Which local address each new connection comes from, and how long a connection is kept.
///
/// Linux routes all of 127.0.0.0/8 to the loopback device without any set-up, so a connection bound
/// to 127.1.x.y reaches a server on 127.0.0.1 and is seen as coming from 127.1.x.y: one machine can
/// play many clients, which is what a per-client table (the rate limiter's) is measured with.
#[derive(Debug)]
pub(crate) struct Sources {
    /// Distinct source addresses to cycle through; 0 leaves the choice to the kernel.
    count: u32,
    next: AtomicU32,
    /// Requests sent on one connection before it is closed and the next one opened.
    per_connection: u64,
}

impl Sources {
    /// 127.1.0.0 to 127.255.255.255.
    pub(crate) const MAX_COUNT: u32 = 0x00FF_0000;

    /// `count` addresses from 127.1.0.0 up (0: the kernel's choice), `per_connection` requests
    /// on each connection (0: no limit).
    pub(crate) fn new(count: u32, per_connection: u64) -> Self {
        Self {
            count: count.min(Self::MAX_COUNT),
            next: AtomicU32::new(0),
            per_connection: if per_connection == 0 {
                u64::MAX
            } else {
                per_connection
            },
        }
    }

    /// The address the next connection binds to, if any.
    fn next_source(&self) -> Option<Ipv4Addr> {
        (self.count > 0).then(|| {
            let i = self.next.fetch_add(1, Ordering::Relaxed) % self.count;
            // 127.1.0.0 + i: never 127.0.0.1, and within 127.0.0.0/8 (`new` caps the count).
            Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 1, 0, 0)) + i)
        })
    }
}

/// What one worker saw.
#[derive(Debug, Default)]
pub(crate) struct WorkerStats {
    /// Latency of every answered request, in microseconds, connect time included when it had to
    /// reconnect.
    pub(crate) latencies_us: Vec<u32>,
    /// Answers by status code.
    pub(crate) statuses: BTreeMap<u16, u64>,
    /// Answers that carried `Retry-After`.
    pub(crate) retry_after: u64,
    /// Connections that could not be opened.
    pub(crate) connect_errors: u64,
    /// Requests that failed on an open connection (reset, closed early).
    pub(crate) io_errors: u64,
    /// Requests that got no answer within the timeout.
    pub(crate) timeouts: u64,
    /// Requests abandoned at the end of the run, still waiting for their answer.
    pub(crate) unfinished: u64,
    /// Connections opened.
    pub(crate) connections: u64,
}

impl WorkerStats {
    /// Adds another worker's figures to these.
    pub(crate) fn merge(&mut self, other: Self) {
        self.latencies_us.extend_from_slice(&other.latencies_us);
        for (status, count) in other.statuses {
            *self.statuses.entry(status).or_default() += count;
        }
        self.retry_after += other.retry_after;
        self.connect_errors += other.connect_errors;
        self.io_errors += other.io_errors;
        self.timeouts += other.timeouts;
        self.unfinished += other.unfinished;
        self.connections += other.connections;
    }
}

enum Failure {
    Connect,
    Io,
}

struct Answer {
    status: u16,
    retry_after: bool,
    close: bool,
}

/// Runs requests on one connection (reopened when the server closes it) until the budget is spent.
pub(crate) async fn worker(
    target: Arc<Target>,
    template: Arc<Template>,
    budget: Arc<Budget>,
    sources: Arc<Sources>,
    timeout: Duration,
    seed: u64,
) -> WorkerStats {
    let mut stats = WorkerStats {
        latencies_us: Vec::with_capacity(4096),
        ..WorkerStats::default()
    };
    let mut rng = SplitMix64(seed);
    let mut sender = None;
    let mut sent_on_connection = 0;
    while budget.take() {
        if sent_on_connection >= sources.per_connection {
            sender = None;
            sent_on_connection = 0;
        }
        sent_on_connection += 1;
        let request = template.request(&mut rng);
        let start = Instant::now();
        let give_up = (start + timeout).min(budget.hard_stop);
        let exchanged = exchange(&mut sender, &target, &sources, request, &mut stats);
        let outcome = tokio::time::timeout_at(give_up.into(), exchanged).await;
        match outcome {
            Ok(Ok(answer)) => {
                let micros = u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX);
                stats.latencies_us.push(micros);
                *stats.statuses.entry(answer.status).or_default() += 1;
                stats.retry_after += u64::from(answer.retry_after);
                if answer.close {
                    sender = None;
                }
            }
            Ok(Err(Failure::Connect)) => {
                stats.connect_errors += 1;
                sender = None;
                // Do not spin on a refused port: the budget still bounds the run.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(Err(Failure::Io)) => {
                stats.io_errors += 1;
                sender = None;
            }
            Err(_elapsed) if Instant::now() >= budget.hard_stop => {
                stats.unfinished += 1;
                break;
            }
            Err(_elapsed) => {
                stats.timeouts += 1;
                sender = None;
            }
        }
    }
    stats
}

async fn exchange(
    sender: &mut Option<SendRequest<Full<Bytes>>>,
    target: &Target,
    sources: &Sources,
    request: Request<Full<Bytes>>,
    stats: &mut WorkerStats,
) -> Result<Answer, Failure> {
    if sender.as_ref().is_some_and(SendRequest::is_closed) {
        *sender = None;
    }
    let open = match sender {
        Some(open) => open,
        None => {
            let opened = connect(target, sources.next_source())
                .await
                .map_err(|_| Failure::Connect)?;
            stats.connections += 1;
            sender.insert(opened)
        }
    };
    open.ready().await.map_err(|_| Failure::Io)?;
    let response = open.send_request(request).await.map_err(|_| Failure::Io)?;
    let status = response.status().as_u16();
    let headers = response.headers();
    let retry_after = headers.contains_key(header::RETRY_AFTER);
    let close = headers
        .get(header::CONNECTION)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
    response
        .into_body()
        .collect()
        .await
        .map_err(|_| Failure::Io)?;
    Ok(Answer {
        status,
        retry_after,
        close,
    })
}

async fn connect(
    target: &Target,
    source: Option<Ipv4Addr>,
) -> io::Result<SendRequest<Full<Bytes>>> {
    let stream = match (source, target.addr) {
        (Some(ip), SocketAddr::V4(_)) => {
            let socket = TcpSocket::new_v4()?;
            socket.bind(SocketAddr::from((ip, 0)))?;
            socket.connect(target.addr).await?
        }
        _ => TcpStream::connect(target.addr).await?,
    };
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(io::Error::other)?;
    // The connection gets a task of its own. Polling it from the worker's task instead (select on
    // both) measured 40 % more generator CPU per request: more wake-ups and more read attempts.
    // The task ends by itself when the sender is dropped or the server hangs up.
    tokio::spawn(async move {
        if connection.await.is_err() {
            // The request in flight sees the same error; nothing more to record here.
        }
    });
    Ok(sender)
}

/// A tiny, fast generator for delivery ids; uniqueness matters here, not unpredictability.
#[derive(Debug)]
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_signature_matches_the_published_example() {
        // The example in GitHub's "Validating webhook deliveries" documentation.
        assert_eq!(
            sign(b"It's a Secret to Everybody", b"Hello, World!")
                .ok()
                .as_deref(),
            Some("757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
        );
    }

    #[test]
    fn a_bad_signature_differs_only_in_its_last_digit() {
        for (good, bad) in [("ab0", "ab1"), ("ab1", "ab0"), ("abf", "ab0")] {
            let mut signature = good.to_owned();
            flip_last_hex_digit(&mut signature);
            assert_eq!(signature, bad);
        }
    }

    #[test]
    fn source_addresses_cycle_within_loopback() {
        let sources = Sources::new(3, 0);
        let seen: Vec<_> = (0..4).filter_map(|_| sources.next_source()).collect();
        let expected = [
            [127, 1, 0, 0],
            [127, 1, 0, 1],
            [127, 1, 0, 2],
            [127, 1, 0, 0],
        ]
        .map(Ipv4Addr::from)
        .to_vec();
        assert_eq!(seen, expected);
        assert_eq!(Sources::new(0, 5).next_source(), None);
        let widest = Sources::new(u32::MAX, 0);
        widest.next.store(Sources::MAX_COUNT - 1, Ordering::Relaxed);
        assert_eq!(
            widest.next_source(),
            Some(Ipv4Addr::new(127, 255, 255, 255))
        );
    }

    #[test]
    fn the_budget_stops_at_its_limit() {
        let later = Instant::now() + Duration::from_secs(3600);
        let budget = Budget::new(3, later, later);
        assert_eq!((0..10).filter(|_| budget.take()).count(), 3);
        let expired = Budget::new(u64::MAX, Instant::now(), later);
        assert!(!expired.take());
    }

    #[test]
    fn delivery_ids_are_fresh_v4_uuids() {
        let target = crate::target::parse_url("http://127.0.0.1:1/webhook/github").ok();
        let Some(target) = target else {
            panic!("loopback URL refused")
        };
        let template = Template::new(
            &target,
            Scheme::Github,
            b"s",
            false,
            Bytes::from_static(b"{}"),
        )
        .ok();
        let Some(template) = template else {
            panic!("template")
        };
        let mut rng = SplitMix64(1);
        let ids: Vec<String> = (0..3)
            .map(|_| {
                let request = template.request(&mut rng);
                let id = request.headers()["x-github-delivery"]
                    .to_str()
                    .map(str::to_owned);
                id.unwrap_or_default()
            })
            .collect();
        assert_ne!(ids[0], ids[1]);
        assert_ne!(ids[1], ids[2]);
        for id in &ids {
            let parsed = uuid::Uuid::parse_str(id).map(|u| u.get_version_num());
            assert_eq!(parsed, Ok(4), "{id}");
        }
    }
}
