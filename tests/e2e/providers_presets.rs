//! Every provider preset through the binary: `send <kind>` delivers a sample the daemon accepts
//! and journals with the preset's event type; a tampered body, a wrong key and (where the preset
//! signs a time) a stale timestamp are refused with 401; each handshake is answered as the
//! provider expects, never journalled, and counted in `/metrics`. Requests that must fail are
//! signed here at the current time with the preset's own scheme from clawlet-verify, since the
//! daemon reads the real clock; the SDK vectors without a time are replayed as they are.

use std::process::Output;

use clawlet_verify::presets;
use clawlet_verify::scheme::{Algorithm, Request, SigningKey};
use clawlet_verify::{Secret, UnixTime};
use serde_json::{Value, json};

use crate::harness::{Daemon, send, testdata};
use crate::providers::journal;

const SECRET: &str = "preset-e2e-secret";
const PUBLIC_URL: &str = "https://hooks.example.com/webhook/signed-url";
const VERIFY_TOKEN: &str = "meta verify/token";
/// Ed25519 seed (Discord) and P-256 scalar (SendGrid) used to sign; any 32 bytes below the
/// P-256 group order do.
const SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const OTHER_SEED: &str = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";

fn seed(hex: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

/// The key a sender of `kind` signs with in these tests; `other` gives a wrong one.
fn signing_key(kind: &str, other: bool) -> SigningKey {
    let hex = if other { OTHER_SEED } else { SEED };
    match kind {
        "discord" => SigningKey::ed25519_seed(&seed(hex)),
        "sendgrid" => SigningKey::p256_scalar(&seed(hex)).unwrap(),
        _ => {
            SigningKey::Secret(Secret::new(if other { "another-secret" } else { SECRET }).unwrap())
        }
    }
}

/// One preset: its kind, the event type the sample is journalled with, its handshake, and how
/// many events its sample holds (a batch is journalled as one event per element).
struct Row {
    kind: &'static str,
    event_type: &'static str,
    handshake: Option<&'static str>,
    events: usize,
}

const fn row(kind: &'static str, event_type: &'static str) -> Row {
    Row {
        kind,
        event_type,
        handshake: None,
        events: 1,
    }
}

const fn shaking(kind: &'static str, event_type: &'static str, label: &'static str) -> Row {
    Row {
        kind,
        event_type,
        handshake: Some(label),
        events: 1,
    }
}

const fn batch(kind: &'static str, event_type: &'static str, events: usize) -> Row {
    Row {
        kind,
        event_type,
        handshake: None,
        events,
    }
}

const ROWS: &[Row] = &[
    shaking("slack", "message", "slack_url_verification"),
    shaking("zoom", "meeting.started", "zoom_url_validation"),
    row("shopify", "orders/create"),
    row("gitlab", "merge_request"),
    row("linear", "Issue"),
    row("paddle", "transaction.completed"),
    row("twilio", "delivered"),
    row("square", "payment.updated"),
    row("hubspot", "contact.creation"),
    row("pagerduty", "incident.triggered"),
    row("mailgun", "delivered"),
    shaking("meta", "page", "meta_verify_token"),
    row("bitbucket", "repo:push"),
    row("gitea", "push"),
    row("forgejo", "push"),
    row("typeform", "form_response"),
    row("sentry", "issue"),
    row("vercel", "deployment.succeeded"),
    row("calendly", "invitee.created"),
    row("intercom", "conversation.user.created"),
    row("coinbase", "charge:confirmed"),
    shaking("twitter", "account_activity", "twitter_crc"),
    shaking("msgraph", "created", "msgraph_validation_token"),
    shaking("dropbox", "list_folder", "dropbox_challenge"),
    shaking("discord", "APPLICATION_AUTHORIZED", "discord_ping"),
    batch("sendgrid", "delivered", 2),
];

/// The keys a handler of `kind` needs besides its kind and path.
fn keys(kind: &str) -> String {
    match kind {
        "discord" | "sendgrid" => format!(
            "      public_key: \"{}\"\n",
            signing_key(kind, false).public_key_text().unwrap()
        ),
        "msgraph" => format!("      client_state: \"{SECRET}\"\n"),
        "meta" => format!("      secret: \"{SECRET}\"\n      verify_token: \"{VERIFY_TOKEN}\"\n"),
        "twilio" | "square" | "hubspot" => {
            format!("      secret: \"{SECRET}\"\n      public_url: \"{PUBLIC_URL}\"\n")
        }
        _ => format!("      secret: \"{SECRET}\"\n"),
    }
}

fn config() -> String {
    let mut yaml = String::from(
        "webhooks:\n  host: 127.0.0.1\n  port: 0\n  rate_limit:\n    enabled: false\n  queue:\n    backend: sqlite\n    path: \"{dir}/journal.db\"\n  handlers:\n",
    );
    for row in ROWS {
        yaml.push_str(&format!(
            "    {0}:\n      kind: {0}\n{1}",
            row.kind,
            keys(row.kind)
        ));
    }
    yaml
}

/// `send <kind>` with the arguments its handler needs.
fn send_preset(daemon: &Daemon, kind: &str, extra: &[&str]) -> Output {
    let url = daemon.url(&format!("/webhook/{kind}"));
    let mut args = vec![kind, "--url", url.as_str(), "--secret", SECRET];
    if matches!(kind, "discord" | "sendgrid") {
        args.extend(["--private-key", SEED]);
    }
    if matches!(kind, "twilio" | "square" | "hubspot") {
        args.extend(["--public-url", PUBLIC_URL]);
    }
    if kind == "meta" {
        args.extend(["--verify-token", VERIFY_TOKEN]);
    }
    args.extend(extra);
    send(&args)
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A body that verifies for `kind` when signed, in the shape its scheme reads.
fn body(kind: &str, now: i64, client_state: &str) -> Vec<u8> {
    let value = match kind {
        "twilio" => return b"MessageSid=SM1&MessageStatus=sent".to_vec(),
        "linear" => json!({ "type": "Issue", "action": "create", "webhookTimestamp": now * 1000 }),
        "mailgun" => {
            json!({ "signature": { "timestamp": now.to_string(), "token": "t0k3n", "signature": "" },
            "event-data": { "event": "opened" } })
        }
        "msgraph" => json!({ "value": [{ "clientState": client_state, "changeType": "updated" }] }),
        "hubspot" => json!([{ "event": "x" }]),
        "sendgrid" => json!([{ "event": "x", "sg_event_id": format!("x-{now}") }]),
        _ => json!({ "type": "x", "id": "1" }),
    };
    serde_json::to_vec(&value).unwrap()
}

/// The headers and body of a request for `kind` signed at `at` with `key`.
fn signed(kind: &str, wrong: bool, at: i64) -> (Vec<(String, String)>, Vec<u8>) {
    let preset = presets::by_name(kind).unwrap();
    let key = &signing_key(kind, wrong);
    let mut body = body(kind, at, if wrong { "another-secret" } else { SECRET });
    let content_type = if kind == "twilio" {
        "application/x-www-form-urlencoded"
    } else {
        "application/json"
    };
    let mut headers = vec![("content-type".to_owned(), content_type.to_owned())];
    let request = Request::new(&headers, &body).url(PUBLIC_URL).method("POST");
    match kind {
        "msgraph" => {}
        "mailgun" => {
            let value = preset
                .scheme
                .signature_value(key, &request, UnixTime::from_secs(at))
                .unwrap();
            let mut json: Value = serde_json::from_slice(&body).unwrap();
            json["signature"]["signature"] = Value::String(value);
            body = serde_json::to_vec(&json).unwrap();
        }
        _ => {
            let extra = preset
                .scheme
                .sign(key, &request, UnixTime::from_secs(at))
                .unwrap();
            headers.extend(extra);
        }
    }
    (headers, body)
}

async fn post(
    daemon: &Daemon,
    kind: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> (u16, String) {
    let client = reqwest::Client::new();
    let mut request = client
        .post(daemon.url(&format!("/webhook/{kind}")))
        .body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// Flips the last letter or digit of a body (inside a JSON value, so it stays JSON).
fn tamper(body: &mut [u8]) {
    if let Some(byte) = body.iter_mut().rev().find(|b| b.is_ascii_alphanumeric()) {
        *byte = if *byte == b'x' { b'y' } else { b'x' };
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_preset_accepts_its_sender_and_refuses_forgeries() {
    let daemon = Daemon::start(&config());
    for row in ROWS {
        let kind = row.kind;
        let out = send_preset(&daemon, kind, &[]);
        let shown = text(&out);
        assert!(
            out.status.success(),
            "{kind}: send failed: {shown}\n{}",
            daemon.logs()
        );
        let reply: Value =
            serde_json::from_str(shown.lines().nth(1).unwrap_or("")).unwrap_or(Value::Null);
        assert_eq!(reply["status"], "accepted", "{kind}: {shown}");
        // A batch is answered with the id of each event it was split into.
        let ids: Vec<&str> = match reply["event_ids"].as_array() {
            Some(ids) => ids.iter().map(|id| id.as_str().unwrap()).collect(),
            None => vec![reply["event_id"].as_str().unwrap()],
        };
        assert_eq!(ids.len(), row.events, "{kind}: {shown}");
        let stored = journal(&daemon);
        let mine: Vec<&Value> = stored.iter().filter(|e| e["handler"] == kind).collect();
        assert_eq!(mine.len(), row.events, "{kind}: {mine:?}");
        for id in ids {
            let entry = stored
                .iter()
                .find(|e| e["id"] == id)
                .unwrap_or_else(|| panic!("{kind}: {id} not journalled"));
            assert_eq!(entry["type"], row.event_type, "{kind}");
            assert_eq!(entry["source"], kind, "{kind}");
        }
        if row.events > 1 {
            // Each event of a batch is its element, deduplicated by the element's own id.
            for entry in &mine {
                assert!(entry["payload"].is_object(), "{kind}: {entry}");
                assert_eq!(
                    entry["delivery_id"], entry["payload"]["sg_event_id"],
                    "{kind}: {entry}"
                );
            }
            assert_ne!(mine[0]["delivery_id"], mine[1]["delivery_id"], "{kind}");

            // The same batch twice: the second time every event is a duplicate of the first.
            let mut replies = Vec::new();
            for _ in 0..2 {
                let out = send_preset(&daemon, kind, &["--delivery-id", "batch-resent"]);
                assert!(out.status.success(), "{kind}: {}", text(&out));
                let shown = text(&out);
                let reply: Value =
                    serde_json::from_str(shown.lines().nth(1).unwrap_or("")).unwrap_or(Value::Null);
                replies.push(reply);
            }
            assert_eq!(replies[0]["accepted"], row.events, "{kind}: {replies:?}");
            assert_eq!(replies[1]["status"], "duplicate", "{kind}: {replies:?}");
            assert_eq!(replies[1]["duplicate"], row.events, "{kind}: {replies:?}");
            assert_eq!(replies[1]["event_ids"], replies[0]["event_ids"], "{kind}");
            let now_stored = journal(&daemon);
            let count = now_stored.iter().filter(|e| e["handler"] == kind).count();
            assert_eq!(count, 2 * row.events, "{kind}: the resend stored events");
        }

        let now = now();
        let (headers, body) = signed(kind, false, now);
        // The body is only shaped for the scheme, not a full event: verified is what counts.
        let (status, answer) = post(&daemon, kind, &headers, body.clone()).await;
        assert_ne!(
            status,
            401,
            "{kind}: a request signed here is refused: {answer}\n{}",
            daemon.logs()
        );

        // A shared token (GitLab, Graph's clientState) does not sign the body: SECURITY.md says so.
        if presets::by_name(kind).unwrap().scheme.algorithm != Algorithm::Token {
            let mut tampered = body.clone();
            tamper(&mut tampered);
            let (status, answer) = post(&daemon, kind, &headers, tampered).await;
            assert_eq!(status, 401, "{kind}: tampered body: {answer}");
        }

        let (headers, body) = signed(kind, true, now);
        let (status, answer) = post(&daemon, kind, &headers, body).await;
        assert_eq!(status, 401, "{kind}: wrong key: {answer}");

        if presets::by_name(kind).unwrap().scheme.timestamp.is_some() {
            let stale = now - 3600;
            let (headers, body) = signed(kind, false, stale);
            let (status, answer) = post(&daemon, kind, &headers, body).await;
            assert_eq!(status, 401, "{kind}: an hour-old timestamp: {answer}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_are_answered_counted_and_never_queued() {
    let daemon = Daemon::start(&config());
    for row in ROWS.iter().filter(|r| r.handshake.is_some()) {
        let out = send_preset(&daemon, row.kind, &["--handshake"]);
        assert!(
            out.status.success(),
            "{}: {}\n{}",
            row.kind,
            text(&out),
            daemon.logs()
        );
    }
    // A Meta subscribe request with the wrong token is refused, and so is a signed handshake
    // with a wrong key.
    let wrong = send(&[
        "meta",
        "--url",
        &daemon.url("/webhook/meta"),
        "--handshake",
        "--verify-token",
        "nope",
    ]);
    assert!(!wrong.status.success(), "{}", text(&wrong));
    assert!(text(&wrong).contains("401"), "{}", text(&wrong));
    let wrong = send(&[
        "slack",
        "--url",
        &daemon.url("/webhook/slack"),
        "--handshake",
        "--secret",
        "nope",
    ]);
    assert!(text(&wrong).contains("401"), "{}", text(&wrong));

    assert!(
        journal(&daemon).is_empty(),
        "a handshake was journalled: {:?}",
        journal(&daemon)
    );
    let metrics = reqwest::get(daemon.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for row in ROWS.iter().filter(|r| r.handshake.is_some()) {
        let line = format!(
            "clawlet_webhook_handshakes_total{{handler=\"{}\",handshake=\"{}\"}} 1",
            row.kind,
            row.handshake.unwrap()
        );
        assert!(metrics.contains(&line), "missing {line} in\n{metrics}");
    }
}

/// SDK vectors (`crates/clawlet-verify/testdata/signatures`) whose scheme signs no time, sent
/// as they are to a daemon whose handlers hold the vectors' keys: each is accepted or refused
/// as the vector says. Time-bound vectors are checked at the crate level, where the clock is a
/// parameter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_vectors_without_a_time_pass_through_the_binary() {
    let cases: Vec<Value> = serde_json::from_slice(
        &std::fs::read(testdata("../crates/clawlet-verify/testdata/e2e-cases.json")).unwrap(),
    )
    .unwrap();
    let mut handlers = String::new();
    let mut runs = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let kind = case["preset"].as_str().unwrap();
        let Some(preset) = presets::by_name(kind) else {
            continue;
        };
        if preset.scheme.timestamp.is_some() || matches!(kind, "github" | "stripe" | "standard") {
            continue;
        }
        let file: Vec<Value> = serde_json::from_slice(
            &std::fs::read(testdata(&format!(
                "../crates/clawlet-verify/testdata/{}",
                case["file"].as_str().unwrap()
            )))
            .unwrap(),
        )
        .unwrap();
        let Some(vector) = file.iter().find(|v| v["name"] == case["case"]) else {
            continue;
        };
        // Handshake vectors (a GET, a query token) are the handshake tests' business.
        if vector["method"].as_str().is_some_and(|m| m != "POST")
            || vector["name"]
                .as_str()
                .is_some_and(|n| n.contains("handshake"))
        {
            continue;
        }
        let name = format!("v{i}");
        let mut keys = String::new();
        if let Some(secret) = vector["secret"].as_str() {
            let key = if kind == "msgraph" {
                "client_state"
            } else {
                "secret"
            };
            keys.push_str(&format!("      {key}: {}\n", json!(secret)));
        }
        if let Some(public_key) = vector["public_key"].as_str() {
            keys.push_str(&format!("      public_key: {}\n", json!(public_key)));
        }
        if let Some(url) = vector["url"].as_str().filter(|_| preset.needs.public_url) {
            let base = url.split('?').next().unwrap_or(url);
            keys.push_str(&format!("      public_url: {}\n", json!(base)));
        }
        if kind == "meta" {
            keys.push_str("      verify_token: unused\n");
        }
        handlers.push_str(&format!("    {name}:\n      kind: {kind}\n{keys}"));
        runs.push((
            name,
            kind.to_owned(),
            vector.clone(),
            case["expect"].as_str().unwrap().to_owned(),
        ));
    }
    assert!(!runs.is_empty(), "no vector without a time was found");
    let daemon = Daemon::start(&format!(
        "webhooks:\n  host: 127.0.0.1\n  port: 0\n  rate_limit:\n    enabled: false\n  queue:\n    backend: memory\n  handlers:\n{handlers}"
    ));
    let client = reqwest::Client::new();
    for (name, kind, vector, expect) in runs {
        let query = vector["url"]
            .as_str()
            .and_then(|u| u.split_once('?'))
            .map(|(_, q)| format!("?{q}"))
            .unwrap_or_default();
        let mut request = client.post(daemon.url(&format!("/webhook/{name}{query}")));
        if let Some(headers) = vector["headers"].as_object() {
            for (header, value) in headers {
                request = request.header(header, value.as_str().unwrap());
            }
        }
        let body = vector["body"].as_str().unwrap_or("").to_owned();
        let response = request.body(body).send().await.unwrap();
        let status = response.status().as_u16();
        let verified = status != 401;
        assert_eq!(
            verified,
            expect == "accept",
            "{kind} vector {}: answered {status}: {}",
            vector["name"],
            response.text().await.unwrap_or_default()
        );
    }
}
