//! One delivery attempt to one agent.

use std::process::Stdio;
use std::sync::Arc;

use clawlet_events::Envelope;
use clawlet_verify::standard::{Key, sign};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

use crate::{AgentKind, AgentSpec, AttemptOutcome, BusError};

/// Longest stderr (exec) or body (http) excerpt kept in `last_error`.
const ERROR_EXCERPT: usize = 512;

/// An agent ready to deliver: its secret parsed, its concurrency limit in place.
pub(crate) struct Agent {
    pub(crate) spec: AgentSpec,
    key: Option<Key>,
    pub(crate) permits: Arc<Semaphore>,
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
        Ok(Self { spec, key, permits })
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

fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    match text.char_indices().nth(ERROR_EXCERPT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

pub(crate) async fn attempt(
    agent: &Agent,
    client: &reqwest::Client,
    envelope: &Envelope,
    json: &str,
    traceparent: Option<String>,
) -> Result<(), AttemptError> {
    match &agent.spec.kind {
        AgentKind::Exec { command } => {
            exec(&agent.spec, command, envelope, json, traceparent).await
        }
        AgentKind::Http { url, headers, .. } => {
            http(agent, client, url, headers, envelope, json, traceparent).await
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
    json: &str,
    traceparent: Option<String>,
) -> Result<(), AttemptError> {
    let Some((program, args)) = command.split_first() else {
        return Err(AttemptError::failed("empty command".to_owned()));
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Dropping the future at the timeout kills the child.
        .kill_on_drop(true)
        .env("CLAWLET_EVENT_ID", &envelope.id)
        .env("CLAWLET_EVENT_TYPE", &envelope.event_type)
        .env("CLAWLET_EVENT_SOURCE", envelope.source.as_str());
    if let Some(tp) = traceparent {
        cmd.env("TRACEPARENT", tp);
    }
    let run = async {
        let mut child = cmd
            .spawn()
            .map_err(|e| AttemptError::failed(format!("cannot start {program}: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A command that exits without reading its input is judged by its exit status.
            if let Err(e) = stdin.write_all(json.as_bytes()).await
                && e.kind() != std::io::ErrorKind::BrokenPipe
            {
                return Err(AttemptError::failed(format!(
                    "cannot write to {program}: {e}"
                )));
            }
        }
        let output = child
            .wait_with_output()
            .await
            .map_err(|e| AttemptError::failed(format!("waiting for {program}: {e}")))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(AttemptError::failed(format!(
                "{program} {}: {}",
                output.status,
                excerpt(&output.stderr)
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
    if let Some(key) = key {
        headers.push(("webhook-signature", sign(key, id, timestamp, body)));
    }
    headers
}

async fn http(
    agent: &Agent,
    client: &reqwest::Client,
    url: &str,
    headers: &[(String, String)],
    envelope: &Envelope,
    json: &str,
    traceparent: Option<String>,
) -> Result<(), AttemptError> {
    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut request = client
        .post(url)
        .timeout(agent.spec.timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    for (name, value) in
        standard_headers(agent.key.as_ref(), &envelope.id, timestamp, json.as_bytes())
    {
        request = request.header(name, value);
    }
    for (name, value) in headers {
        request = request.header(name, value);
    }
    if let Some(tp) = traceparent {
        request = request.header("traceparent", tp);
    }
    let response = request.body(json.to_owned()).send().await.map_err(|e| {
        if e.is_timeout() {
            AttemptError::timed_out(&agent.spec)
        } else {
            AttemptError::failed(format!("POST {url}: {e}"))
        }
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.bytes().await.unwrap_or_default();
    Err(AttemptError::failed(format!(
        "POST {url}: HTTP {status}: {}",
        excerpt(&body)
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

    #[test]
    fn no_key_no_signature() {
        let names: Vec<_> = standard_headers(None, "msg_1", 1, b"{}")
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, ["webhook-id", "webhook-timestamp"]);
    }
}
