//! Scale-out on a three-node JetStream cluster, shown rather than claimed: three daemons share one
//! stream with three replicas; deliveries are sprayed across them, each delivery id to two
//! daemons; mid-run one nats-server node (the stream's leader) and one daemon are killed with
//! SIGKILL and brought back. Every acknowledged delivery must be stored exactly once and reach the
//! agent. The test starts and stops the cluster itself, on loopback; it needs the nats-server
//! binary (CI installs Debian's).

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::agent::{AGENT_SECRET, Agent};
use crate::harness::{Daemon, skip_or_fail};
use crate::nats_cli::post_github;
use crate::providers::GITHUB_SECRET;

/// The whole test, cluster start to last check (a bound, not an expectation).
const TEST_BOUND: Duration = Duration::from_secs(90);
/// Deliveries sprayed; each is sent to two daemons.
const DELIVERIES: usize = 3000;
/// Deliveries in flight at once.
const IN_FLIGHT: usize = 32;
/// How long one send keeps retrying a 503 or a refused connection, as a provider would.
const SEND_BOUND: Duration = Duration::from_secs(15);

const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// One nats-server of the cluster; killed when dropped.
struct Node {
    name: String,
    client_port: u16,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Node {
    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.client_port)
    }

    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(NATS_SERVER)
            .arg("-c")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting nats-server");
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn logs(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Three nodes on loopback, each with its own store directory; dropped, it stops them all.
struct Cluster {
    nodes: Vec<Node>,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let client_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let route_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let routes: Vec<String> = route_ports
            .iter()
            .map(|p| format!("nats-route://127.0.0.1:{p}"))
            .collect();
        let mut nodes = Vec::new();
        for i in 0..3 {
            let name = format!("n{}", i + 1);
            let store = dir.path().join(&name);
            let config = dir.path().join(format!("{name}.conf"));
            std::fs::write(
                &config,
                format!(
                    "server_name: {name}\nlisten: 127.0.0.1:{client}\n\
                     jetstream {{\n  store_dir: \"{store}\"\n  max_file_store: 1GB\n  max_memory_store: 64MB\n}}\n\
                     cluster {{\n  name: clawlet-e2e\n  listen: 127.0.0.1:{route}\n  routes: [{routes}]\n}}\n",
                    client = client_ports[i],
                    store = store.display(),
                    route = route_ports[i],
                    routes = routes.join(", "),
                ),
            )
            .unwrap();
            let mut node = Node {
                log: dir.path().join(format!("{name}.log")),
                name,
                client_port: client_ports[i],
                config,
                child: None,
            };
            node.start();
            nodes.push(node);
        }
        Cluster { nodes, _dir: dir }
    }

    fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("--- {} ---\n{}", n.name, n.logs()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Waits until the cluster behind `url` can place a stream on all three nodes (a meta leader, and
/// routes to every peer): a throwaway three-replica stream is created and deleted. `None` once
/// `deadline` passed.
async fn jetstream_ready(url: &str, deadline: Instant) -> Option<async_nats::jetstream::Context> {
    loop {
        let attempt = async {
            let client = async_nats::ConnectOptions::new()
                .connection_timeout(Duration::from_secs(1))
                .connect(url)
                .await
                .ok()?;
            let js = async_nats::jetstream::new(client);
            let probe = format!("CLAWLET_PROBE_{}", std::process::id());
            js.create_or_update_stream(async_nats::jetstream::stream::Config {
                name: probe.clone(),
                subjects: vec![format!("clawlet-probe-{}", std::process::id())],
                num_replicas: 3,
                storage: async_nats::jetstream::stream::StorageType::Memory,
                ..Default::default()
            })
            .await
            .ok()?;
            js.delete_stream(&probe).await.ok()?;
            Some(js)
        };
        if let Ok(Some(js)) = tokio::time::timeout(Duration::from_secs(5), attempt).await {
            return Some(js);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn config(url: &str, stream: &str, agent: &Agent) -> String {
    format!(
        r#"webhooks:
  host: 127.0.0.1
  port: 0
  rate_limit:
    enabled: false
  queue:
    backend: nats
    nats:
      url: "{url}"
      stream: "{stream}"
      replicas: 3
  handlers:
    github:
      secret: "{GITHUB_SECRET}"
  agents:
    inbox:
      kind: http
      url: "{agent}"
      secret: "{AGENT_SECRET}"
      timeout: 2s
      concurrency: 16
  routes:
    - agent: inbox
"#,
        agent = agent.url
    )
}

/// What the spray saw.
#[derive(Default)]
struct Tally {
    /// Delivery ids answered 2xx (accepted or duplicate) at least once.
    acknowledged: HashSet<String>,
    /// When each 503 came back.
    unavailable: Vec<Instant>,
    /// When each 2xx came back.
    stored_at: Vec<Instant>,
    /// Answers other than 2xx and 503, and transport errors (the killed daemon), by kind.
    other: HashMap<String, usize>,
}

/// Sends `delivery` to the daemon at `urls[which]`, retrying 503 and refused connections (the
/// daemon may be restarting, at a new address) until [`SEND_BOUND`].
async fn send(
    client: &reqwest::Client,
    urls: &Mutex<Vec<String>>,
    which: usize,
    delivery: &str,
    tally: &Mutex<Tally>,
) {
    let give_up = Instant::now() + SEND_BOUND;
    loop {
        let url = urls.lock().unwrap()[which].clone();
        match post_github(client, &url, delivery).await {
            Ok((200..=299, _)) => {
                let mut tally = tally.lock().unwrap();
                tally.acknowledged.insert(delivery.to_owned());
                tally.stored_at.push(Instant::now());
                return;
            }
            Ok((503, _)) => tally.lock().unwrap().unavailable.push(Instant::now()),
            Ok((status, body)) => {
                panic!("{delivery} to daemon {which}: unexpected {status}: {body}")
            }
            Err(e) => {
                let kind = if e.is_connect() {
                    "connection refused"
                } else {
                    "request failed"
                };
                *tally
                    .lock()
                    .unwrap()
                    .other
                    .entry(kind.to_owned())
                    .or_default() += 1;
            }
        }
        if Instant::now() > give_up {
            return;
        }
        // A provider's retry pause, not a synchronisation.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every event message in `stream`, as (delivery id, count).
async fn stored(js: &async_nats::jetstream::Context, stream: &str) -> HashMap<String, usize> {
    let mut s = js.get_stream(stream).await.unwrap();
    let state = s.info().await.unwrap().state.clone();
    let mut counts = HashMap::new();
    let seqs: Vec<u64> = (state.first_sequence.max(1)..=state.last_sequence).collect();
    // Reads in flight: one round trip each.
    for chunk in seqs.chunks(64) {
        let mut reads = tokio::task::JoinSet::new();
        for &seq in chunk {
            let s = s.clone();
            reads.spawn(async move { s.get_raw_message(seq).await });
        }
        while let Some(message) = reads.join_next().await {
            let message = message
                .unwrap()
                .unwrap_or_else(|e| panic!("reading the stream: {e}"));
            let envelope: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
            let id = envelope["delivery_id"].as_str().unwrap().to_owned();
            *counts.entry(id).or_default() += 1;
        }
    }
    counts
}

fn nats_server_present() -> bool {
    if Path::new(NATS_SERVER).exists() {
        return true;
    }
    skip_or_fail(&format!(
        "{NATS_SERVER} is missing (apt-get install nats-server); the cluster test starts its own nodes"
    ));
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_daemons_on_a_three_node_cluster_store_each_acknowledged_delivery_once_through_kills()
{
    if !nats_server_present() {
        return;
    }
    let deadline = Instant::now() + TEST_BOUND;
    let mut cluster = Cluster::start();
    let ready = |js: Option<_>, cluster: &Cluster| {
        js.unwrap_or_else(|| panic!("JetStream never became ready\n{}", cluster.logs()))
    };
    let js = ready(
        jetstream_ready(&cluster.nodes[0].url(), deadline).await,
        &cluster,
    );
    let stream = format!("CLAWLET_CLUSTER_{}", std::process::id());
    let agent = Agent::start().await;

    // Every daemon knows every node, as deploy/jetstream-two-daemons.yaml has it.
    let servers = cluster
        .nodes
        .iter()
        .map(Node::url)
        .collect::<Vec<_>>()
        .join(",");
    let mut daemons: Vec<Daemon> = (0..3)
        .map(|_| Daemon::start(&config(&servers, &stream, &agent)))
        .collect();
    let started = Instant::now();
    let info = js
        .get_stream(&stream)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone();
    assert_eq!(
        info.config.num_replicas, 3,
        "the daemons must create the stream with queue.nats.replicas copies"
    );

    let urls = Arc::new(Mutex::new(
        daemons
            .iter()
            .map(|d| d.url("/webhook/github"))
            .collect::<Vec<_>>(),
    ));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let done = Arc::new(AtomicUsize::new(0));
    let spray = {
        let (urls, tally, done) = (Arc::clone(&urls), Arc::clone(&tally), Arc::clone(&done));
        tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap();
            let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
            let mut sends = tokio::task::JoinSet::new();
            for i in 0..DELIVERIES {
                let slot = Arc::clone(&slots).acquire_owned().await.unwrap();
                let (client, urls, tally, done) = (
                    client.clone(),
                    Arc::clone(&urls),
                    Arc::clone(&tally),
                    Arc::clone(&done),
                );
                sends.spawn(async move {
                    let delivery = format!("cluster-{i}");
                    let (a, b) = (i % 3, (i + 1) % 3);
                    tokio::join!(
                        send(&client, &urls, a, &delivery, &tally),
                        send(&client, &urls, b, &delivery, &tally)
                    );
                    done.fetch_add(1, Ordering::Relaxed);
                    drop(slot);
                });
            }
            while let Some(sent) = sends.join_next().await {
                sent.unwrap();
            }
        })
    };

    let until_done = |share: usize| {
        let done = Arc::clone(&done);
        async move {
            while done.load(Ordering::Relaxed) < DELIVERIES * share / 3 {
                assert!(Instant::now() < deadline, "the spray stalled");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };

    // A third of the way: kill the node that leads the stream, and one daemon.
    until_done(1).await;
    let leader = js
        .get_stream(&stream)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .cluster
        .clone()
        .and_then(|c| c.leader)
        .expect("a replicated stream has a leader");
    let victim = cluster.nodes.iter().position(|n| n.name == leader).unwrap();
    let killed_at = Instant::now();
    cluster.nodes[victim].kill();
    daemons[1].signal("KILL");

    // Two thirds of the way (or a few seconds on, should the cluster be slow to recover): bring
    // both back, the node on its old ports and store, the daemon on its old configuration.
    tokio::select! {
        () = until_done(2) => {}
        () = tokio::time::sleep(Duration::from_secs(8)) => {}
    }
    cluster.nodes[victim].start();
    ready(
        jetstream_ready(&cluster.nodes[victim].url(), deadline).await,
        &cluster,
    );
    tokio::task::block_in_place(|| daemons[1].restart_on_failure(deadline));
    urls.lock().unwrap()[1] = daemons[1].url("/webhook/github");

    tokio::time::timeout(deadline - Instant::now(), spray)
        .await
        .expect("the spray did not finish in time")
        .unwrap();
    let sprayed = started.elapsed();
    let tally = std::mem::take(&mut *tally.lock().unwrap());

    // Read the stream from a node that never went down.
    let reader = ready(
        jetstream_ready(&cluster.nodes[(victim + 1) % 3].url(), deadline).await,
        &cluster,
    );
    let counts = stored(&reader, &stream).await;
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "stored more than once: {twice:?}");
    let lost: Vec<_> = tally
        .acknowledged
        .iter()
        .filter(|d| !counts.contains_key(*d))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged deliveries are not in the stream, e.g. {:?}\n{}",
        lost.len(),
        lost.iter().take(5).collect::<Vec<_>>(),
        cluster.logs()
    );

    // Every stored event (which includes every acknowledged one) reaches the agent.
    let wanted: HashSet<String> = counts.keys().cloned().collect();
    let remaining = deadline.saturating_duration_since(Instant::now());
    let reached = agent
        .wait_for(remaining, |got| {
            let seen: HashSet<&str> = got
                .iter()
                .filter_map(|e| e["delivery_id"].as_str())
                .collect();
            wanted.iter().all(|d| seen.contains(d.as_str()))
        })
        .await;
    let seen: HashSet<String> = agent
        .received()
        .iter()
        .filter_map(|e| e["delivery_id"].as_str().map(str::to_owned))
        .collect();
    let missing: Vec<_> = wanted.difference(&seen).take(5).collect();
    assert!(
        reached,
        "{} stored events never reached the agent, e.g. {missing:?}\n{}",
        wanted.difference(&seen).count(),
        daemons
            .iter()
            .map(Daemon::logs)
            .collect::<Vec<_>>()
            .join("\n---\n")
    );
    assert_eq!(agent.bad_signatures(), 0);
    let caught_up = started.elapsed();

    // The 503 window while the stream's leader moved: measured and shown, never asserted.
    let after_kill: Vec<Duration> = tally
        .unavailable
        .iter()
        .filter(|t| **t >= killed_at)
        .map(|t| t.duration_since(killed_at))
        .collect();
    let window = match (after_kill.iter().min(), after_kill.iter().max()) {
        (Some(first), Some(last)) => format!(
            "{} ms (first 503 at +{} ms, last at +{} ms after the kill)",
            (*last - *first).as_millis(),
            first.as_millis(),
            last.as_millis()
        ),
        _ => "no 503 at all".to_owned(),
    };
    // While the stream has no leader, publishes wait (up to the daemon's ack timeout) rather than
    // fail at once: the longest pause between two 2xx answers after the kill shows that time.
    let mut acks: Vec<Instant> = tally
        .stored_at
        .iter()
        .copied()
        .filter(|t| *t >= killed_at)
        .collect();
    acks.sort_unstable();
    let pause = acks
        .windows(2)
        .map(|w| w[1] - w[0])
        .chain(acks.first().map(|first| *first - killed_at))
        .max()
        .unwrap_or_default();
    // Straight to stderr, which libtest does not capture: the figure shows on every run.
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "cluster: {DELIVERIES} deliveries, {} acknowledged, {} stored, {} 503 answers; \
         503 window: {window}; longest pause without a 2xx after the kill: {} ms; refused or cut by the killed daemon: {:?}; \
         spray {} ms, last event at the agent {} ms after the start",
        tally.acknowledged.len(),
        counts.len(),
        tally.unavailable.len(),
        pause.as_millis(),
        tally.other,
        sprayed.as_millis(),
        caught_up.as_millis()
    );
}
