//! One delivery attempt to one agent.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clawlet_events::{Envelope, EnvelopeJson};
use clawlet_verify::standard::{Key, sign};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::{AgentKind, AgentSpec, AttemptOutcome, BusError};

/// Bytes kept from each end of an agent's output (an exec agent's stderr, an HTTP agent's error
/// body) for `last_error` and the log. The rest is thrown away as it arrives: an agent that
/// writes gigabytes must not make the daemon hold them.
const EXCERPT_EDGE: usize = 1024;

/// Size of the buffer that drains an exec agent's stderr.
const DRAIN_BUFFER: usize = 64 * 1024;

/// An agent ready to deliver: its secret parsed, its concurrency limit in place.
pub(crate) struct Agent {
    pub(crate) spec: AgentSpec,
    key: Option<Key>,
    pub(crate) permits: Arc<Semaphore>,
    /// Whether the last attempt failed: the first failure after a success (or after start) is
    /// logged at WARN, so that an operator learns at once that an agent is unreachable rather
    /// than after its retry budget is spent; the ones after it only at DEBUG.
    failing: AtomicBool,
}

impl Agent {
    pub(crate) fn new(spec: AgentSpec) -> Result<Self, BusError> {
        let key = match &spec.kind {
            AgentKind::Http {
                secret: Some(secret),
                ..
            } => Some(
                Key::from_secret(secret)
                    .map_err(|e| BusError::Config(format!("agent {}: secret: {e}", spec.name)))?,
            ),
            _ => None,
        };
        let permits = Arc::new(Semaphore::new(spec.concurrency));
        Ok(Self {
            spec,
            key,
            permits,
            failing: AtomicBool::new(false),
        })
    }

    /// Records a failed attempt; true when it is the first since the agent last delivered.
    pub(crate) fn failed(&self) -> bool {
        !self.failing.swap(true, Ordering::Relaxed)
    }

    /// Records a delivery; true when the agent was failing until now.
    pub(crate) fn delivered(&self) -> bool {
        self.failing.swap(false, Ordering::Relaxed)
    }
}

/// Why an attempt failed, for `last_error` and the observer.
#[derive(Debug)]
pub(crate) struct AttemptError {
    pub(crate) outcome: AttemptOutcome,
    pub(crate) message: String,
}

impl AttemptError {
    fn failed(message: String) -> Self {
        Self {
            outcome: AttemptOutcome::Failed,
            message,
        }
    }

    fn timed_out(agent: &AgentSpec) -> Self {
        Self {
            outcome: AttemptOutcome::TimedOut,
            message: format!("timed out after {}ms", agent.timeout.as_millis()),
        }
    }
}

/// The first and last [`EXCERPT_EDGE`] bytes of an agent's output, and how much lay between.
#[derive(Debug, Default)]
struct Excerpt {
    head: Vec<u8>,
    /// The latest bytes past the head; trimmed to the last `EXCERPT_EDGE` whenever it doubles.
    tail: Vec<u8>,
    /// Bytes dropped between head and tail.
    skipped: u64,
    /// Whether reading stopped before the end (an HTTP body is read no further than the head).
    unread: bool,
}

impl Excerpt {
    fn push(&mut self, bytes: &[u8]) {
        let room = EXCERPT_EDGE.saturating_sub(self.head.len());
        let (head, rest) = bytes.split_at(room.min(bytes.len()));
        self.head.extend_from_slice(head);
        if rest.len() >= EXCERPT_EDGE {
            self.skipped += (self.tail.len() + rest.len() - EXCERPT_EDGE) as u64;
            self.tail.clear();
            self.tail
                .extend_from_slice(&rest[rest.len() - EXCERPT_EDGE..]);
        } else {
            self.tail.extend_from_slice(rest);
            if self.tail.len() >= 2 * EXCERPT_EDGE {
                self.drop_front(self.tail.len() - EXCERPT_EDGE);
            }
        }
    }

    fn drop_front(&mut self, n: usize) {
        self.tail.drain(..n);
        self.skipped += n as u64;
    }

    fn is_full(&self) -> bool {
        self.head.len() >= EXCERPT_EDGE
    }

    /// The excerpt as text, trimmed, with the gap marked.
    fn text(mut self) -> String {
        if self.tail.len() > EXCERPT_EDGE {
            self.drop_front(self.tail.len() - EXCERPT_EDGE);
        }
        let head = String::from_utf8_lossy(&self.head);
        let tail = String::from_utf8_lossy(&self.tail);
        let mut text = if self.skipped == 0 {
            format!("{head}{tail}").trim().to_owned()
        } else {
            format!(
                "{} … [{} bytes left out] … {}",
                head.trim_start(),
                self.skipped,
                tail.trim_end()
            )
        };
        if self.unread {
            text.push_str(" … [not read further]");
        }
        text
    }
}

/// Reads `output` to its end, keeping only an [`Excerpt`].
async fn drain(mut output: impl AsyncRead + Unpin) -> std::io::Result<Excerpt> {
    let mut excerpt = Excerpt::default();
    let mut buf = vec![0u8; DRAIN_BUFFER];
    loop {
        let n = output.read(&mut buf).await?;
        if n == 0 {
            return Ok(excerpt);
        }
        excerpt.push(&buf[..n]);
    }
}

pub(crate) async fn attempt(
    agent: &Agent,
    client: &reqwest::Client,
    envelope: &Envelope,
    json: &EnvelopeJson,
    traceparent: Option<String>,
) -> Result<(), AttemptError> {
    match &agent.spec.kind {
        AgentKind::Exec { command } => {
            exec(&agent.spec, command, envelope, json, traceparent).await
        }
        AgentKind::Http {
            url,
            shown_url,
            headers,
            ..
        } => {
            let target = Target {
                url,
                shown: shown_url,
            };
            http(agent, client, &target, headers, envelope, json, traceparent).await
        }
        AgentKind::Log => {
            log_line(&agent.spec.name, envelope);
            Ok(())
        }
    }
}

/// The delivery of a `log` agent: the event's summary line, at info.
pub(crate) fn log_line(agent: &str, envelope: &Envelope) {
    tracing::info!(
        agent = %agent,
        event_id = %envelope.id,
        handler = %envelope.handler,
        event_type = %envelope.event_type,
        "{}",
        envelope.summary
    );
}

async fn exec(
    spec: &AgentSpec,
    command: &[String],
    envelope: &Envelope,
    json: &EnvelopeJson,
    traceparent: Option<String>,
) -> Result<(), AttemptError> {
    let Some((program, args)) = command.split_first() else {
        return Err(AttemptError::failed("empty command".to_owned()));
    };
    let mut cmd = tokio::process::Command::new(program);
    // Standard output goes nowhere (the kernel discards it); standard error is drained into an
    // excerpt for `last_error`.
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Dropping the future at the timeout kills the child.
        .kill_on_drop(true)
        .env("CLAWLET_EVENT_ID", &envelope.id)
        .env("CLAWLET_EVENT_TYPE", &envelope.event_type)
        .env("CLAWLET_EVENT_SOURCE", envelope.source.as_str());
    // The command inherits the daemon's environment (PATH, HOME, locale) except the credentials
    // the daemon was given for itself: a script is no place for every webhook secret.
    for name in &spec.env_remove {
        cmd.env_remove(name);
    }
    if let Some(tp) = traceparent {
        cmd.env("TRACEPARENT", tp);
    }
    let run = async {
        let mut child = cmd
            .spawn()
            .map_err(|e| AttemptError::failed(format!("cannot start {program}: {e}")))?;
        let stdin = child.stdin.take();
        let stderr = child.stderr.take();
        // Input is written while stderr drains: a command that reports before it reads must not
        // wait on a full pipe while we wait on it.
        let write = async {
            if let Some(mut stdin) = stdin {
                // A command that exits without reading its input is judged by its exit status.
                for piece in json.pieces() {
                    match stdin.write_all(piece).await {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break,
                        Err(e) => {
                            return Err(AttemptError::failed(format!(
                                "cannot write to {program}: {e}"
                            )));
                        }
                    }
                }
            }
            Ok(())
        };
        let read = async {
            match stderr {
                Some(stderr) => drain(stderr).await,
                None => Ok(Excerpt::default()),
            }
        };
        let (written, excerpt) = tokio::join!(write, read);
        written?;
        let excerpt =
            excerpt.map_err(|e| AttemptError::failed(format!("reading from {program}: {e}")))?;
        let status = child
            .wait()
            .await
            .map_err(|e| AttemptError::failed(format!("waiting for {program}: {e}")))?;
        if status.success() {
            Ok(())
        } else {
            Err(AttemptError::failed(format!(
                "{program} {status}: {}",
                excerpt.text()
            )))
        }
    };
    tokio::time::timeout(spec.timeout, run)
        .await
        .map_err(|_| AttemptError::timed_out(spec))?
}

/// The Standard Webhooks headers for `body` sent as message `id` at `timestamp`; without a key
/// there is no `webhook-signature`.
fn standard_headers(
    key: Option<&Key>,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let mut headers = vec![
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
    ];
    // `Key::from_secret` builds only HMAC keys, and those always sign.
    if let Some(signature) = key.and_then(|key| sign(key, id, timestamp, body).ok()) {
        headers.push(("webhook-signature", signature));
    }
    headers
}

/// Where an HTTP agent posts, and how messages show that URL.
struct Target<'a> {
    url: &'a str,
    shown: &'a str,
}

impl Target<'_> {
    /// A request error as text, without the URL reqwest puts in it (the shown one goes in front),
    /// with its causes, which name what failed (`Connection refused`).
    fn describe(&self, error: reqwest::Error) -> String {
        let error = error.without_url();
        let mut text = format!("POST {}: {error}", self.shown);
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        // A cause that quotes the URL after all is given the shown one.
        if !self.url.is_empty() && text.contains(self.url) {
            text = text.replace(self.url, self.shown);
        }
        text
    }
}

/// Reads at most an [`Excerpt`]'s head of an error response's body. The rest is not read:
/// dropping the response closes its connection, which costs a reconnect on the next attempt
/// rather than downloading whatever the agent sends.
async fn body_excerpt(mut response: reqwest::Response) -> Excerpt {
    let mut excerpt = Excerpt::default();
    while !excerpt.is_full() {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = EXCERPT_EDGE - excerpt.head.len();
                excerpt.push(&chunk[..room.min(chunk.len())]);
            }
            Ok(None) => return excerpt,
            Err(_) => break,
        }
    }
    excerpt.unread = true;
    excerpt
}

async fn http(
    agent: &Agent,
    client: &reqwest::Client,
    target: &Target<'_>,
    headers: &[(String, String)],
    envelope: &Envelope,
    json: &EnvelopeJson,
    traceparent: Option<String>,
) -> Result<(), AttemptError> {
    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
    // Shared with the journal's copy, not copied for each attempt (a large envelope is joined).
    let body = json.to_bytes();
    let mut request = client
        .post(target.url)
        .timeout(agent.spec.timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    for (name, value) in standard_headers(agent.key.as_ref(), &envelope.id, timestamp, &body) {
        request = request.header(name, value);
    }
    for (name, value) in headers {
        request = request.header(name, value);
    }
    if let Some(tp) = traceparent {
        request = request.header("traceparent", tp);
    }
    let response = request.body(body).send().await.map_err(|e| {
        if e.is_timeout() {
            AttemptError::timed_out(&agent.spec)
        } else {
            AttemptError::failed(target.describe(e))
        }
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    Err(AttemptError::failed(format!(
        "POST {}: HTTP {status}: {}",
        target.shown,
        body_excerpt(response).await.text()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTORS: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/signatures/standard-webhooks.json"
    ));

    /// Signs like the HTTP agent does and expects one of the signatures the vector carries.
    fn check(case: &serde_json::Value) {
        let name = case["name"].as_str().unwrap();
        let header = |h: &str| case["headers"][h].as_str().unwrap();
        let key = Key::from_secret(case["secret"].as_str().unwrap()).unwrap();
        let timestamp: i64 = header("webhook-timestamp").parse().unwrap();
        let body = case["body"].as_str().unwrap();
        let ours = standard_headers(Some(&key), header("webhook-id"), timestamp, body.as_bytes());
        assert_eq!(
            ours[0],
            ("webhook-id", header("webhook-id").to_owned()),
            "{name}"
        );
        assert_eq!(
            ours[1],
            ("webhook-timestamp", header("webhook-timestamp").to_owned()),
            "{name}"
        );
        let (_, signature) = &ours[2];
        assert!(
            header("webhook-signature")
                .split(' ')
                .any(|s| s == signature),
            "{name}: {signature}"
        );
    }

    #[test]
    fn signatures_match_the_standard_webhooks_vectors() {
        let cases: Vec<serde_json::Value> = serde_json::from_str(VECTORS).unwrap();
        let accepted: Vec<_> = cases
            .iter()
            .filter(|c| {
                c["expect"] == "accept"
                    && c["headers"]["webhook-signature"].is_string()
                    && c["body"].is_string()
            })
            .collect();
        assert!(accepted.len() >= 5, "{} usable vectors", accepted.len());
        for case in accepted {
            check(case);
        }
    }

    /// Output in any chunking keeps the first and last `EXCERPT_EDGE` bytes and counts the rest.
    #[test]
    fn an_excerpt_keeps_both_ends_of_any_output() {
        let check = |total: usize, chunk: usize, expected: &str| {
            let output: Vec<u8> = (0..total).map(|i| b'a' + (i % 26) as u8).collect();
            let mut excerpt = Excerpt::default();
            for piece in output.chunks(chunk) {
                excerpt.push(piece);
                assert!(excerpt.head.len() <= EXCERPT_EDGE);
                assert!(excerpt.tail.len() < 2 * EXCERPT_EDGE);
            }
            let text = excerpt.text();
            let kept = total.min(2 * EXCERPT_EDGE);
            assert!(
                text.len() <= kept + 40,
                "{total}/{chunk}: {} bytes",
                text.len()
            );
            let first = String::from_utf8_lossy(&output[..total.min(10)]).into_owned();
            let last = String::from_utf8_lossy(&output[total.saturating_sub(10)..]).into_owned();
            assert!(text.starts_with(&first) && text.ends_with(&last), "{text}");
            assert!(text.contains(expected), "{total}/{chunk}: {text}");
        };
        check(10, 3, "abcdefghij");
        check(2 * EXCERPT_EDGE, 7, "xyzabc");
        let gap = format!("[{} bytes left out]", 10 * EXCERPT_EDGE);
        check(12 * EXCERPT_EDGE, 1, &gap);
        check(12 * EXCERPT_EDGE, 100, &gap);
        check(12 * EXCERPT_EDGE, 3 * EXCERPT_EDGE, &gap);
        check(12 * EXCERPT_EDGE, 12 * EXCERPT_EDGE, &gap);
    }

    /// An exec agent's stderr is read to its end (so the child never blocks on a full pipe) and
    /// only the excerpt is kept.
    #[tokio::test]
    async fn draining_reads_everything_and_keeps_an_excerpt() {
        use tokio::io::AsyncReadExt as _;
        let flood = tokio::io::repeat(b'z')
            .take(50_000_000)
            .chain(&b"the last line"[..]);
        let excerpt = drain(flood).await.unwrap();
        assert_eq!(excerpt.head.len(), EXCERPT_EDGE);
        let text = excerpt.text();
        assert!(text.len() < 3 * EXCERPT_EDGE, "{} bytes", text.len());
        assert!(text.ends_with("the last line"), "{text}");
        let skipped = 50_000_000 + "the last line".len() - 2 * EXCERPT_EDGE;
        assert!(
            text.contains(&format!("[{skipped} bytes left out]")),
            "{text}"
        );
    }

    #[test]
    fn no_key_no_signature() {
        let names: Vec<_> = standard_headers(None, "msg_1", 1, b"{}")
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, ["webhook-id", "webhook-timestamp"]);
    }
}
