//! Faults and secrets: a full journal disk, NATS going away and coming back, an agent that hangs
//! or floods the daemon with output, a second daemon on a symlinked journal, a CLI whose reader
//! goes away or whose listing is larger than memory should hold, and runs whose logs, metrics,
//! error bodies and `last_error` are searched for every secret, signature and payload they used.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::agent::{AGENT_SECRET, Agent};
use crate::harness::{Daemon, binary, nats_url, skip_or_fail};
use crate::providers::{CUSTOM_SECRET, GITHUB_SECRET, STANDARD_SECRET, STRIPE_SECRET, journal};

/// How long a condition may take to come true before the test fails (a bound, not an expectation).
const BOUND: Duration = Duration::from_secs(30);

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// What the daemon answered to one delivery.
#[derive(Debug)]
struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: String,
}

impl Answer {
    /// The `status` field of a JSON answer (`accepted`, `duplicate`).
    fn outcome(&self) -> String {
        serde_json::from_str::<Value>(&self.body)
            .ok()
            .and_then(|v| v["status"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

async fn post(url: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let mut request = client().post(url).body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.text().await.unwrap();
    Answer {
        status,
        retry_after,
        body,
    }
}

/// A signed custom delivery with delivery id `id` to `/webhook/myservice`.
async fn post_custom(daemon: &Daemon, id: &str) -> Answer {
    let body = format!(r#"{{"event_type":"fault.test","data":{{"id":"{id}"}}}}"#);
    let signature =
        clawlet_verify::custom::Scheme::default().sign(CUSTOM_SECRET.as_bytes(), body.as_bytes());
    post(
        &daemon.url("/webhook/myservice"),
        &[
            ("content-type", "application/json"),
            ("x-signature", &signature),
            ("x-delivery-id", id),
        ],
        body.as_bytes(),
    )
    .await
}

/// A daemon with the custom handler of the provider suite, `queue` as its queue settings and
/// `agents` and `routes` as given.
fn config(queue: &str, agents: &str, routes: &str) -> String {
    format!(
        r#"webhooks:
  host: 127.0.0.1
  port: 0
  rate_limit:
    enabled: false
  queue:
{queue}
  handlers:
    my_service:
      path: /webhook/myservice
      secret: "{CUSTOM_SECRET}"
      delivery_id_header: X-Delivery-Id
  agents:
{agents}
  routes:
{routes}
"#
    )
}

fn http_agent(name: &str, url: &str, extra: &str) -> String {
    format!(
        "    {name}:\n      kind: http\n      url: \"{url}\"\n      secret: \"{AGENT_SECRET}\"\n{extra}"
    )
}

/// The delivery ids in the journal, with how often each appears.
fn stored_ids(daemon: &Daemon) -> Vec<String> {
    tokio::task::block_in_place(|| journal(daemon))
        .iter()
        .filter_map(|e| e["delivery_id"].as_str().map(str::to_owned))
        .collect()
}

/// A small tmpfs mounted for one test, unmounted when dropped (after the daemon using it).
struct Tmpfs {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(Tmpfs {
            path: dir.path().to_owned(),
            _dir: dir,
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Fills the filesystem holding `path` with one file until a write fails for want of space.
fn fill(path: &Path, capacity: usize) {
    use std::io::Write as _;
    let mut file = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 4096];
    // Bounded: a filesystem of `capacity` bytes takes at most this many blocks.
    for _ in 0..=capacity / block.len() + 1 {
        match file.write(&block) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
    panic!("{} never filled up", path.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_journal_disk_gives_503_stores_nothing_it_acknowledged_twice_and_recovers() {
    const SIZE: usize = 4 * 1024 * 1024;
    // Running as root, permissions do not stop writes: only a full filesystem does.
    let tmpfs = match Tmpfs::mount(&SIZE.to_string()) {
        Ok(tmpfs) => tmpfs,
        Err(reason) => {
            skip_or_fail(&format!("cannot mount a small tmpfs to fill ({reason})"));
            return;
        }
    };
    let agent = Agent::start().await;
    let queue = format!(
        "    backend: sqlite\n    path: \"{}/journal.db\"",
        tmpfs.path.display()
    );
    let daemon = Daemon::start(&config(
        &queue,
        &http_agent("inbox", &agent.url, "      timeout: 5s\n"),
        "    - agent: inbox",
    ));
    let mut acked = BTreeSet::new();
    for i in 0..3 {
        let id = format!("before-{i}");
        let answer = post_custom(&daemon, &id).await;
        assert_eq!(answer.status, 200, "{answer:?}\n{}", daemon.logs());
        acked.insert(id);
    }

    let filler = tmpfs.path.join("filler");
    fill(&filler, SIZE);
    // While the disk is full every answer is a 503 with Retry-After, or a 2xx for an event that
    // did get stored; at least one 503 must come.
    let refused = refusals(&daemon, "full", 50, &mut acked).await;
    assert!(
        !refused.is_empty(),
        "a full disk never gave 503\n{}",
        daemon.logs()
    );

    std::fs::remove_file(&filler).unwrap();
    let recovered = recovers(&daemon, "after", 50, Duration::from_millis(200), &mut acked).await;
    assert!(
        recovered,
        "the daemon never recovered once space returned\n{}",
        daemon.logs()
    );
    // What was refused was not stored: the sender's retry is a new event, not a duplicate.
    for id in &refused {
        let answer = post_custom(&daemon, id).await;
        assert_eq!(answer.status, 200, "{id}: {answer:?}");
        assert_eq!(answer.outcome(), "accepted", "{id}: {answer:?}");
        acked.insert(id.clone());
    }

    let stored = stored_ids(&daemon);
    for id in &acked {
        assert_eq!(
            stored.iter().filter(|s| *s == id).count(),
            1,
            "{id} is not stored exactly once: {stored:?}"
        );
    }
    let delivered = agent
        .wait_for(BOUND, |got| {
            let seen: BTreeSet<&str> = got
                .iter()
                .filter_map(|e| e["delivery_id"].as_str())
                .collect();
            acked.iter().all(|id| seen.contains(id.as_str()))
        })
        .await;
    assert!(delivered, "{}", daemon.logs());
    drop(daemon);
    drop(tmpfs);
}

/// A TCP proxy to NATS that the test can cut and restore.
struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    pipes: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let pipes: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = tokio::spawn({
            let (up, pipes) = (up.clone(), pipes.clone());
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !up.load(Ordering::SeqCst) {
                        // Cut: the connection is closed at once.
                        continue;
                    }
                    let pipe = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    pipes.lock().unwrap().push(pipe);
                }
            }
        });
        Proxy {
            addr,
            up,
            pipes,
            accept,
        }
    }

    /// Closes every open connection and refuses new ones.
    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for pipe in self.pipes.lock().unwrap().drain(..) {
            pipe.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// The socket address in a `nats://host:port` URL.
async fn nats_addr(url: &str) -> SocketAddr {
    let rest = url.split("://").last().unwrap();
    let host_port = rest.rsplit('@').next().unwrap().trim_end_matches('/');
    tokio::net::lookup_host(host_port)
        .await
        .unwrap()
        .next()
        .expect("the NATS address resolves")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_down_gives_503_and_nothing_acknowledged_is_lost_when_it_returns() {
    let Some(nats) = nats_url() else { return };
    let proxy = Proxy::start(nats_addr(&nats).await).await;
    let stream = format!("CLAWLET_E2E_FAULT_{}", std::process::id());
    let agent = Agent::start().await;
    let queue = format!(
        "    backend: nats\n    nats:\n      url: \"nats://{}\"\n      stream: \"{stream}\"",
        proxy.addr
    );
    let daemon = Daemon::start(&config(
        &queue,
        &http_agent("inbox", &agent.url, "      timeout: 1s\n"),
        "    - agent: inbox",
    ));
    let mut acked = BTreeSet::new();
    for i in 0..3 {
        let id = format!("up-{i}");
        let answer = post_custom(&daemon, &id).await;
        assert_eq!(answer.status, 200, "{answer:?}\n{}", daemon.logs());
        acked.insert(id);
    }

    proxy.cut();
    // A publish sent before the client noticed the cut may still be acknowledged by the stream.
    let refused = refusals(&daemon, "down", 40, &mut acked).await;
    assert!(
        !refused.is_empty(),
        "NATS was cut and no 503 came\n{}",
        daemon.logs()
    );

    proxy.restore();
    let recovered = recovers(&daemon, "back", 100, Duration::from_millis(300), &mut acked).await;
    assert!(
        recovered,
        "the daemon never recovered once NATS returned\n{}",
        daemon.logs()
    );
    // The senders retry what was refused; a publish whose ack was lost may already be stored.
    for id in &refused {
        let answer = post_custom(&daemon, id).await;
        assert_eq!(answer.status, 200, "{id}: {answer:?}");
        acked.insert(id.clone());
    }

    // Every acknowledged delivery is in the stream, exactly once.
    let client = async_nats::connect(&nats).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let in_stream = stream_delivery_ids(&js, &stream).await;
    for id in &acked {
        assert_eq!(
            in_stream.iter().filter(|s| *s == id).count(),
            1,
            "{id} is not in the stream exactly once: {in_stream:?}"
        );
    }
    // And reaches the agent. A message pulled just as the connection was cut is redelivered
    // only after the consumer's ack wait (the agent's timeout + 30 s), hence the longer bound.
    let delivered = agent
        .wait_for(Duration::from_secs(60), |got| {
            let seen: BTreeSet<&str> = got
                .iter()
                .filter_map(|e| e["delivery_id"].as_str())
                .collect();
            acked.iter().all(|id| seen.contains(id.as_str()))
        })
        .await;
    let logs = daemon.logs();
    drop(daemon);
    let _ = js.delete_stream(&stream).await;
    let _ = js.delete_stream(format!("{stream}_DEAD")).await;
    assert!(
        delivered,
        "acknowledged deliveries never reached the agent: {acked:?} vs {:?}\n{logs}",
        agent.received()
    );
}

/// The delivery id of every envelope in `stream`.
async fn stream_delivery_ids(js: &async_nats::jetstream::Context, stream: &str) -> Vec<String> {
    let handle = js.get_stream(stream).await.unwrap();
    let state = handle.get_info().await.unwrap().state;
    // Bounded: the test publishes far fewer than this.
    let last = state.last_sequence.min(state.first_sequence + 10_000);
    let mut ids = Vec::new();
    for sequence in state.first_sequence..=last {
        if let Ok(message) = handle.get_raw_message(sequence).await {
            let envelope: Value = serde_json::from_slice(&message.payload).unwrap();
            ids.push(envelope["delivery_id"].as_str().unwrap().to_owned());
        }
    }
    ids
}

/// An HTTP agent that accepts connections, reads whatever comes and never answers.
async fn hanging_agent() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut stream, &mut tokio::io::sink()).await;
            });
        }
    });
    (url, connections)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_agent_is_timed_out_and_dead_lettered_without_holding_up_the_others() {
    let healthy = Agent::start().await;
    let (hang_url, connections) = hanging_agent().await;
    let agents = [
        http_agent("inbox", &healthy.url, "      timeout: 5s\n"),
        http_agent(
            "hang",
            &hang_url,
            "      timeout: 1s\n      max_attempts: 2\n",
        ),
    ]
    .concat();
    let daemon = Daemon::start(&config(
        "    backend: sqlite\n    path: \"{dir}/journal.db\"",
        &agents,
        "    - agent: inbox\n    - agent: hang",
    ));
    let ids: Vec<String> = (0..5).map(|i| format!("hang-{i}")).collect();
    for id in &ids {
        let answer = post_custom(&daemon, id).await;
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    let all_arrived = healthy
        .wait_for(BOUND, |got| {
            ids.iter()
                .all(|id| got.iter().any(|e| e["delivery_id"] == id.as_str()))
        })
        .await;
    assert!(
        all_arrived,
        "the healthy agent did not receive every event\n{}",
        daemon.logs()
    );

    let deadline = tokio::time::Instant::now() + BOUND;
    let events = loop {
        let events = tokio::task::block_in_place(|| journal(&daemon));
        let settled = events.len() == ids.len()
            && events.iter().all(|e| {
                e["deliveries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|d| d["status"] != "pending")
            });
        if settled || tokio::time::Instant::now() > deadline {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    for event in &events {
        assert_eq!(event["status"], "dead", "{event}");
        let deliveries = event["deliveries"].as_array().unwrap();
        let of = |agent: &str| {
            deliveries
                .iter()
                .find(|d| d["agent"] == agent)
                .unwrap_or_else(|| panic!("no {agent} delivery in {event}"))
        };
        assert_eq!(of("inbox")["status"], "delivered", "{event}");
        assert_eq!(of("hang")["status"], "dead", "{event}");
        assert_eq!(of("hang")["attempts"], 2, "{event}");
    }
    assert!(connections.load(Ordering::SeqCst) >= 1);
    assert_eq!(healthy.bad_signatures(), 0);
    // Exactly once each to the healthy agent: the other agent's retries are its own.
    for id in &ids {
        let copies = healthy
            .received()
            .iter()
            .filter(|e| e["delivery_id"] == id.as_str())
            .count();
        assert_eq!(copies, 1, "{id}");
    }
}

/// The provider suite's configuration: github, stripe, standard and custom handlers.
fn providers_config(agent: &Agent) -> String {
    crate::providers::config(agent, "")
}

/// A GitHub delivery.
async fn post_github(daemon: &Daemon, id: &str, body: &[u8], signature: &str) -> Answer {
    post(
        &daemon.url("/webhook/github"),
        &[
            ("content-type", "application/json"),
            ("x-github-event", "issues"),
            ("x-github-delivery", id),
            ("x-hub-signature-256", signature),
        ],
        body,
    )
    .await
}

async fn post_stripe(daemon: &Daemon, body: &[u8], signature: &str) -> Answer {
    post(
        &daemon.url("/webhook/stripe"),
        &[
            ("content-type", "application/json"),
            ("stripe-signature", signature),
        ],
        body,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_signature_or_payload_reaches_logs_metrics_or_error_bodies() {
    const CANARY: &str = "canary-payload-5d1e8f0b";
    let agent = Agent::start().await;
    let daemon = Daemon::start(&providers_config(&agent));
    let mut signatures: Vec<String> = Vec::new();
    let mut bodies: Vec<String> = Vec::new();
    let mut accepted = Vec::new();

    // GitHub: accepted, duplicate, forged.
    let github = format!(
        r#"{{"action":"opened","issue":{{"number":7,"title":"t"}},"repository":{{"full_name":"o/r"}},"note":"{CANARY}"}}"#
    );
    let good = clawlet_verify::github::sign(GITHUB_SECRET.as_bytes(), github.as_bytes());
    let forged = clawlet_verify::github::sign(b"guessed-secret", github.as_bytes());
    for (signature, expected) in [(&good, 200), (&good, 200), (&forged, 401)] {
        let answer = post_github(&daemon, "leak-gh-1", github.as_bytes(), signature).await;
        assert_eq!(answer.status, expected, "{answer:?}");
        signatures.push(signature.clone());
        bodies.push(answer.body);
    }
    accepted.push("leak-gh-1".to_owned());

    // Stripe: accepted, forged.
    let stripe = format!(
        r#"{{"id":"evt_leak_1","type":"invoice.paid","data":{{"object":{{"memo":"{CANARY}"}}}}}}"#
    );
    let good = clawlet_verify::stripe::sign(STRIPE_SECRET.as_bytes(), now(), stripe.as_bytes());
    let forged = clawlet_verify::stripe::sign(b"whsec_guess", now(), stripe.as_bytes());
    for (signature, expected) in [(&good, 200), (&forged, 401)] {
        let answer = post_stripe(&daemon, stripe.as_bytes(), signature).await;
        assert_eq!(answer.status, expected, "{answer:?}");
        signatures.push(signature.clone());
        bodies.push(answer.body);
    }
    accepted.push("evt_leak_1".to_owned());

    // Standard Webhooks: accepted, forged.
    let standard = format!(r#"{{"type":"user.created","data":{{"note":"{CANARY}"}}}}"#);
    let key = clawlet_verify::standard::Key::from_secret(STANDARD_SECRET).unwrap();
    let other = clawlet_verify::standard::Key::from_secret("whsec_Z3Vlc3NlZC1zZWNyZXQ=").unwrap();
    for (key, expected) in [(&key, 200), (&other, 401)] {
        let timestamp = now();
        let signature =
            clawlet_verify::standard::sign(key, "msg_leak_1", timestamp, standard.as_bytes())
                .unwrap();
        let answer = post(
            &daemon.url("/webhook/svix"),
            &[
                ("content-type", "application/json"),
                ("webhook-id", "msg_leak_1"),
                ("webhook-timestamp", &timestamp.to_string()),
                ("webhook-signature", &signature),
            ],
            standard.as_bytes(),
        )
        .await;
        assert_eq!(answer.status, expected, "{answer:?}");
        signatures.push(signature);
        bodies.push(answer.body);
    }
    accepted.push("msg_leak_1".to_owned());

    // Custom: accepted, forged, and a body that is not JSON.
    let custom = format!(r#"{{"event_type":"user.created","note":"{CANARY}"}}"#);
    let scheme = clawlet_verify::custom::Scheme::default();
    let not_json = format!("not json {CANARY}");
    for (secret, body, expected) in [
        (CUSTOM_SECRET, &custom, 200),
        ("guessed-secret", &custom, 401),
        (CUSTOM_SECRET, &not_json, 400),
    ] {
        let signature = scheme.sign(secret.as_bytes(), body.as_bytes());
        let answer = post(
            &daemon.url("/webhook/myservice"),
            &[
                ("content-type", "application/json"),
                ("x-signature", &signature),
                ("x-delivery-id", "leak-custom-1"),
            ],
            body.as_bytes(),
        )
        .await;
        assert_eq!(answer.status, expected, "{answer:?}");
        signatures.push(signature);
        bodies.push(answer.body);
    }
    accepted.push("leak-custom-1".to_owned());

    let delivered = agent
        .wait_for(BOUND, |got| {
            accepted
                .iter()
                .all(|id| got.iter().any(|e| e["delivery_id"] == id.as_str()))
        })
        .await;
    assert!(delivered, "{}", daemon.logs());
    let metrics = client()
        .get(daemon.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    let mut needles: Vec<String> = [
        GITHUB_SECRET,
        STRIPE_SECRET,
        STANDARD_SECRET,
        CUSTOM_SECRET,
        AGENT_SECRET,
        CANARY,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for signature in &signatures {
        needles.push(signature.clone());
        // The digest alone, without the scheme's prefix or timestamp.
        needles.extend(
            signature
                .split(['=', ','])
                .filter(|part| part.len() >= 16)
                .map(str::to_owned),
        );
    }
    // Secrets without the `whsec_` prefix, as they might be printed once decoded.
    for secret in [STRIPE_SECRET, STANDARD_SECRET, AGENT_SECRET] {
        needles.push(secret.trim_start_matches("whsec_").to_owned());
    }
    assert!(needles.iter().all(|n| n.len() >= 8), "{needles:?}");
    let logs = daemon.logs();
    assert!(
        logs.contains("leak-gh-1"),
        "the request log is missing: {logs}"
    );
    for needle in &needles {
        assert!(
            !logs.contains(needle.as_str()),
            "{needle:?} is in the log:\n{logs}"
        );
        assert!(
            !metrics.contains(needle.as_str()),
            "{needle:?} is in /metrics"
        );
        for body in &bodies {
            assert!(!body.contains(needle.as_str()), "{needle:?} in {body}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_are_refused_after_the_tolerance_and_duplicate_within_the_window() {
    let agent = Agent::start().await;
    let daemon = Daemon::start(&providers_config(&agent));
    let body = br#"{"id":"evt_replay_1","type":"invoice.paid","data":{"object":{}}}"#;

    // Captured ten minutes ago: the signature is authentic but too old.
    let old = clawlet_verify::stripe::sign(STRIPE_SECRET.as_bytes(), now() - 600, body);
    let answer = post_stripe(&daemon, body, &old).await;
    assert_eq!(answer.status, 401, "{answer:?}");

    let fresh = clawlet_verify::stripe::sign(STRIPE_SECRET.as_bytes(), now(), body);
    let first = post_stripe(&daemon, body, &fresh).await;
    assert_eq!(
        (first.status, first.outcome().as_str()),
        (200, "accepted"),
        "{first:?}"
    );
    // The same captured bytes, replayed within the tolerance and the dedup window.
    let replay = post_stripe(&daemon, body, &fresh).await;
    assert_eq!(
        (replay.status, replay.outcome().as_str()),
        (200, "duplicate"),
        "{replay:?}"
    );
    // Re-signed later (as Stripe does on its own retries): still the same event.
    let resigned = clawlet_verify::stripe::sign(STRIPE_SECRET.as_bytes(), now() + 1, body);
    let retry = post_stripe(&daemon, body, &resigned).await;
    assert_eq!(retry.outcome(), "duplicate", "{retry:?}");

    // Any provider: a GitHub delivery replayed is a duplicate too.
    let github = br#"{"action":"opened","issue":{"number":1}}"#;
    let signature = clawlet_verify::github::sign(GITHUB_SECRET.as_bytes(), github);
    let first = post_github(&daemon, "replay-gh-1", github, &signature).await;
    assert_eq!(first.outcome(), "accepted", "{first:?}");
    let replay = post_github(&daemon, "replay-gh-1", github, &signature).await;
    assert_eq!(replay.outcome(), "duplicate", "{replay:?}");

    let stored = stored_ids(&daemon);
    for id in ["evt_replay_1", "replay-gh-1"] {
        assert_eq!(
            stored.iter().filter(|s| *s == id).count(),
            1,
            "{id}: {stored:?}"
        );
    }
    assert_eq!(stored.len(), 2, "{stored:?}");
}

/// Runs `serve` on `yaml` and waits (bounded) for it to exit; `None` if it kept running.
fn serve_exit(yaml: &str) -> Option<(i32, String)> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, yaml).unwrap();
    let mut child = Command::new(binary())
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .env_remove("CLAWLET_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + BOUND;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    Some((status.code().unwrap_or(-1), stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unverified_handlers_need_the_explicit_opt_out() {
    let base =
        "webhooks:\n  host: 127.0.0.1\n  port: 0\n  queue:\n    backend: memory\n  handlers:\n";
    for (handler, key) in [
        ("    github: {}\n", "webhooks.handlers.github.secret"),
        ("    stripe: {}\n", "webhooks.handlers.stripe.secret"),
        (
            "    svix:\n      kind: standard\n",
            "webhooks.handlers.svix.secret",
        ),
    ] {
        let yaml = format!("{base}{handler}");
        let (code, stderr) = tokio::task::block_in_place(|| serve_exit(&yaml))
            .unwrap_or_else(|| panic!("the daemon started without a secret:\n{yaml}"));
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(key), "{key} not named in: {stderr}");
    }

    let daemon = Daemon::start(&format!(
        "{base}    github:\n      verify: false\n    stripe:\n      verify: false\n"
    ));
    // One warning per handler, written one after the other: wait for both.
    let deadline = tokio::time::Instant::now() + BOUND;
    while daemon.logs().matches("UNVERIFIED").count() < 2 && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let logs = daemon.logs();
    assert!(logs.contains("UNVERIFIED"), "{logs}");
    let warned: Vec<&str> = logs.lines().filter(|l| l.contains("UNVERIFIED")).collect();
    for handler in ["github", "stripe"] {
        assert!(
            warned
                .iter()
                .any(|l| l.contains(handler) && l.contains("WARN")),
            "{handler}: {warned:?}"
        );
    }
}

/// Sends fresh deliveries (ids `<prefix>-<n>`) at most `tries` times, `pause` apart, until one is
/// accepted; every other answer must be 503. Records the accepted id in `acked`.
async fn recovers(
    daemon: &Daemon,
    prefix: &str,
    tries: usize,
    pause: Duration,
    acked: &mut BTreeSet<String>,
) -> bool {
    for i in 0..tries {
        let id = format!("{prefix}-{i}");
        let answer = post_custom(daemon, &id).await;
        if answer.status == 200 {
            acked.insert(id);
            return true;
        }
        assert_eq!(answer.status, 503, "{answer:?}");
        tokio::time::sleep(pause).await;
    }
    false
}

/// Sends fresh deliveries (ids `<prefix>-<n>`, at most `tries`) until three were refused. Every
/// answer must be a 503 with `Retry-After` or a 2xx, whose id is recorded in `acked`. Returns the
/// refused ids.
async fn refusals(
    daemon: &Daemon,
    prefix: &str,
    tries: usize,
    acked: &mut BTreeSet<String>,
) -> Vec<String> {
    let mut refused = Vec::new();
    for i in 0..tries {
        let id = format!("{prefix}-{i}");
        let answer = post_custom(daemon, &id).await;
        match answer.status {
            503 => {
                assert!(answer.retry_after.is_some(), "{answer:?}");
                refused.push(id);
                if refused.len() == 3 {
                    break;
                }
            }
            200..=299 => {
                acked.insert(id);
            }
            _ => panic!("{id}: {answer:?}\n{}", daemon.logs()),
        }
    }
    refused
}

/// How far the daemon's resident memory may move while an agent floods it with output: what it
/// keeps of that output is a few KiB, so this is room for allocator noise, not for the output.
const OUTPUT_RSS_SLACK_KIB: u64 = 64 * 1024;

/// Bytes an agent writes in the output tests: far more than the slack, so that buffering it whole
/// cannot pass unnoticed.
const FLOOD_BYTES: u64 = 500_000_000;

/// Waits until `n` events sit in the journal and none is pending; returns them.
async fn settle(daemon: &Daemon, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let events = tokio::task::block_in_place(|| journal(daemon));
        if events.len() == n && events.iter().all(|e| e["status"] != "pending") {
            return events;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the deliveries never settled: {events:?}\n{}",
            daemon.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Checks that the daemon's memory, at its peak (`VmHWM`) and now, stayed within the slack of
/// `before`.
fn assert_rss_bounded(daemon: &Daemon, before: u64) {
    let peak = crate::harness::peak_rss_kib(daemon.pid());
    let after = crate::harness::rss_kib(daemon.pid());
    assert!(
        peak.saturating_sub(before) < OUTPUT_RSS_SLACK_KIB
            && after.saturating_sub(before) < OUTPUT_RSS_SLACK_KIB,
        "agent output was held in memory: RSS {before} KiB before, {peak} KiB at the peak, \
         {after} KiB after"
    );
}

/// The `last_error` of each event's only delivery.
fn last_errors(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let delivery = &e["deliveries"][0];
            assert_eq!(delivery["status"], "dead", "{e}");
            delivery["last_error"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exec_agent_flooding_stdout_and_stderr_leaves_the_daemon_memory_unchanged() {
    let script = format!(
        "head -c {FLOOD_BYTES} /dev/zero; head -c {FLOOD_BYTES} /dev/zero >&2; \
         echo 'flood done' >&2; exit 3"
    );
    let agents = format!(
        "    flood:\n      kind: exec\n      command: [\"/bin/sh\", \"-c\", \"{script}\"]\n      \
         timeout: 60s\n      concurrency: 1\n      max_attempts: 1\n"
    );
    let daemon = Daemon::start(&config(
        "    backend: sqlite\n    path: \"{dir}/journal.db\"",
        &agents,
        "    - agent: flood",
    ));
    let before = crate::harness::rss_kib(daemon.pid());
    for id in ["flood-1", "flood-2"] {
        let answer = post_custom(&daemon, id).await;
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    let events = settle(&daemon, 2).await;
    assert_rss_bounded(&daemon, before);
    for error in last_errors(&events) {
        assert!(error.contains("exit status: 3"), "{error}");
        // The end of the output is kept: that is where a failing program says why.
        assert!(
            error.contains("bytes left out") && error.ends_with("flood done"),
            "{error}"
        );
        assert!(
            error.len() <= 4096,
            "last_error holds {} bytes",
            error.len()
        );
    }
}

/// An HTTP agent that answers every request with a 500 whose body is `len` zero bytes, streamed.
async fn flooding_agent(len: u64) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                // The request: headers, then the body its Content-Length announces.
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                let body_at = loop {
                    let Ok(n) = stream.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    if let Some(at) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        break at + 4;
                    }
                };
                let head = String::from_utf8_lossy(&request[..body_at]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while request.len() < body_at + length {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\n\
                     content-length: {len}\r\n\r\n"
                );
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![b'x'; 1 << 20];
                let mut left = len;
                while left > 0 {
                    let n = usize::try_from(left.min(chunk.len() as u64)).unwrap();
                    // The daemon hangs up once it has its excerpt.
                    if stream.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                    left -= n as u64;
                }
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_agent_answering_500_with_a_huge_body_leaves_the_daemon_memory_unchanged() {
    let url = flooding_agent(FLOOD_BYTES).await;
    let daemon = Daemon::start(&config(
        "    backend: sqlite\n    path: \"{dir}/journal.db\"",
        &http_agent(
            "flood",
            &url,
            "      timeout: 60s\n      concurrency: 1\n      max_attempts: 1\n",
        ),
        "    - agent: flood",
    ));
    let before = crate::harness::rss_kib(daemon.pid());
    for id in ["flood-1", "flood-2"] {
        let answer = post_custom(&daemon, id).await;
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    let events = settle(&daemon, 2).await;
    assert_rss_bounded(&daemon, before);
    for error in last_errors(&events) {
        assert!(
            error.contains("HTTP 500") && error.contains("xxxx"),
            "{error}"
        );
        assert!(
            error.len() <= 4096,
            "last_error holds {} bytes",
            error.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_on_a_symlink_to_a_journal_in_use_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["real", "other"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
    }
    let real = dir.path().join("real/journal.db");
    let other = dir.path().join("other/journal.db");
    std::os::unix::fs::symlink(&real, &other).unwrap();
    let queue = |path: &Path| format!("    backend: sqlite\n    path: \"{}\"", path.display());
    let log = ("    log:\n      kind: log\n", "    - agent: log");
    let first = Daemon::start(&config(&queue(&real), log.0, log.1));
    let answer = post_custom(&first, "lock-1").await;
    assert_eq!(answer.status, 200, "{answer:?}");

    let second = config(&queue(&other), log.0, log.1);
    let (code, stderr) = tokio::task::block_in_place(|| serve_exit(&second))
        .expect("a second daemon started on the journal the first one writes");
    assert_ne!(code, 0, "{stderr}");
    assert!(
        stderr.contains("real/journal.db.lock") && stderr.contains("only one daemon"),
        "the refusal does not name the lock: {stderr}"
    );
    // The first daemon still owns the journal and answers.
    let answer = post_custom(&first, "lock-1").await;
    assert_eq!(answer.outcome(), "duplicate", "{answer:?}");
}

/// The password and token of the agent URL in the redaction test, as the environment gives them.
const URL_PASSWORD: &str = "pw-4f1c9e27b3";
const URL_TOKEN: &str = "tok-8d02aa5e61";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_url_credentials_are_redacted_in_config_check_logs_and_last_error() {
    // One agent answers 500, the other's port is closed: both errors name the URL.
    let failing = flooding_agent(16).await;
    let failing_port = failing
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches("/events");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let with_credentials = |port: &str| {
        format!(
            "http://svc:${{AGENT_URL_PASSWORD}}@127.0.0.1:{port}/events?token=${{AGENT_URL_TOKEN}}"
        )
    };
    let agents = [
        http_agent(
            "failing",
            &with_credentials(failing_port),
            "      max_attempts: 1\n",
        ),
        http_agent(
            "refused",
            &with_credentials(&closed_port.to_string()),
            "      max_attempts: 1\n",
        ),
    ]
    .concat();
    let env = [
        ("AGENT_URL_PASSWORD", URL_PASSWORD),
        ("AGENT_URL_TOKEN", URL_TOKEN),
    ];
    let daemon = Daemon::start_with_env(
        &config(
            "    backend: sqlite\n    path: \"{dir}/journal.db\"",
            &agents,
            "    - agent: failing\n    - agent: refused",
        ),
        &env,
    );
    let check = Command::new(binary())
        .args(["config", "check", "--config"])
        .arg(&daemon.config)
        .env_remove("CLAWLET_CONFIG")
        .envs(env)
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{shown}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        shown.contains(&format!(
            "http://[redacted]@127.0.0.1:{failing_port}/events?token=[redacted]"
        )),
        "{shown}"
    );

    let answer = post_custom(&daemon, "redact-1").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    // The configuration needs the environment; the journal file does not.
    let journal_file = daemon.config.parent().unwrap().join("journal.db");
    let deadline = tokio::time::Instant::now() + BOUND;
    let event = loop {
        let list = tokio::task::block_in_place(|| {
            Command::new(binary())
                .args(["events", "list", "--json", "--journal"])
                .arg(&journal_file)
                .output()
                .unwrap()
        });
        assert!(
            list.status.success(),
            "{}",
            String::from_utf8_lossy(&list.stderr)
        );
        let events: Vec<Value> = String::from_utf8_lossy(&list.stdout)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        if let Some(event) = events.into_iter().find(|e| e["status"] == "dead") {
            break event;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the deliveries never went dead\n{}",
            daemon.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let errors: Vec<&str> = event["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["last_error"].as_str().unwrap_or_default())
        .collect();
    assert!(
        errors.iter().any(|e| e.contains("HTTP 500"))
            && errors.iter().all(|e| e.contains("[redacted]")),
        "{errors:?}"
    );
    // Both dead letters are logged before the event shows dead.
    let logs = daemon.logs();
    assert_eq!(logs.matches("delivery dead-lettered").count(), 2, "{logs}");
    for secret in [URL_PASSWORD, URL_TOKEN] {
        assert!(
            !shown.contains(secret),
            "{secret} in config check:\n{shown}"
        );
        assert!(!logs.contains(secret), "{secret} in the log:\n{logs}");
        for error in &errors {
            assert!(!error.contains(secret), "{secret} in last_error: {error}");
        }
    }
}

/// Runs the binary with `args`, its standard output a pipe whose reading end is closed before
/// the command writes anything; returns its exit code and standard error.
fn run_with_stdout_closed(args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(binary())
        .args(args)
        .env_remove("CLAWLET_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_goes_away_ends_send_events_and_config_check_quietly() {
    let daemon = Daemon::start(&config(
        "    backend: sqlite\n    path: \"{dir}/journal.db\"",
        "    log:\n      kind: log\n",
        "    - agent: log",
    ));
    for i in 0..300 {
        let answer = post_custom(&daemon, &format!("pipe-{i}")).await;
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    let url = daemon.url("/webhook/myservice");
    let config = daemon.config.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "webhooks: [\n").unwrap();
    let broken = broken.to_str().unwrap();
    let cases: [(&[&str], i32); 6] = [
        (&["config", "check", "--config", config], 0),
        // The errors go to standard output too; the exit code still says the file is wrong.
        (&["config", "check", "--config", broken], 2),
        (
            &["events", "list", "--limit", "1000", "--config", config],
            0,
        ),
        (
            &[
                "events", "list", "--json", "--limit", "1000", "--config", config,
            ],
            0,
        ),
        (
            &[
                "send",
                "custom",
                "--url",
                &url,
                "--secret",
                CUSTOM_SECRET,
                "--event",
                "x.y",
            ],
            0,
        ),
        // The receiver's answer still decides the exit code.
        (
            &["send", "custom", "--url", &url, "--secret", "wrong-secret"],
            1,
        ),
    ];
    for (args, code) in cases {
        let (got, stderr) = tokio::task::block_in_place(|| run_with_stdout_closed(args));
        assert_eq!(got, Some(code), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        if code == 0 {
            assert!(stderr.is_empty(), "{args:?}: {stderr}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_list_prints_a_large_journal_in_flat_memory() {
    // 400 events of 256 KiB: 100 MiB of payload that LZ4 stores in a few MB, and that a listing
    // holding every event at once would hold whole.
    const EVENTS: usize = 400;
    const PAYLOAD: usize = 256 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    {
        let bus =
            clawlet_bus::Bus::open(clawlet_bus::BusOptions::new(clawlet_bus::Backend::Sqlite {
                path: path.clone(),
            }))
            .await
            .unwrap();
        let padding = "p".repeat(PAYLOAD);
        let publishes: Vec<_> = (0..EVENTS)
            .map(|i| {
                let bus = bus.clone();
                let payload = format!(r#"{{"n":{i},"pad":"{padding}"}}"#);
                tokio::spawn(async move {
                    let envelope = clawlet_events::Envelope {
                        id: format!("00000000-0000-7000-8000-{i:012}"),
                        handler: "my_service".to_owned(),
                        source: clawlet_events::Source::Custom,
                        event_type: "fault.test".to_owned(),
                        action: None,
                        delivery_id: format!("big-{i}"),
                        received_at: time::OffsetDateTime::now_utc(),
                        summary: format!("big {i}"),
                        headers: std::collections::BTreeMap::new(),
                        payload: clawlet_events::Payload::from_json(&payload).unwrap(),
                    };
                    bus.publish_owned(envelope).await.unwrap();
                })
            })
            .collect();
        for publish in publishes {
            publish.await.unwrap();
        }
    }
    let mut child = Command::new(binary())
        .args([
            "events",
            "list",
            "--json",
            "--limit",
            "1000000",
            "--journal",
        ])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // The peak so far (`VmHWM`), read after each line: the command is never more than a pipe's
    // buffer ahead of this reader, so the last reading sees nearly its whole run.
    let peak_kib = || -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let (mut lines, mut peak) = (0, 0);
    for line in std::io::BufRead::lines(stdout) {
        let line = line.unwrap();
        assert!(line.len() > PAYLOAD, "{}", &line[..line.len().min(200)]);
        lines += 1;
        peak = peak.max(peak_kib().unwrap_or(0));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lines, EVENTS);
    let total_kib = (EVENTS * PAYLOAD / 1024) as u64;
    assert!(
        peak < total_kib / 2,
        "events list held the listing in memory: peak RSS {peak} KiB for {total_kib} KiB of events"
    );
}
