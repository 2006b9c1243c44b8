//! Starts the real `clawlet-webhookd` binary on loopback and talks to it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use crate::agent::{AGENT_SECRET, Agent};
use crate::providers::GITHUB_SECRET;

/// The binary under test, built by cargo before this suite runs.
pub(crate) fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_clawlet-webhookd"))
}

/// The repository's test data folder.
pub(crate) fn testdata(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(path)
}

/// A running daemon with its own temporary state directory.
pub(crate) struct Daemon {
    child: Child,
    pub(crate) addr: SocketAddr,
    /// Holds the state directory until the daemon is dropped.
    _dir: tempfile::TempDir,
    pub(crate) config: PathBuf,
    log: Arc<Mutex<String>>,
}

/// How long start-up may take before the test fails (a bound, not an expectation).
const START_BOUND: Duration = Duration::from_secs(30);

/// The shipped unit's `RestartSec`.
const UNIT_RESTART_DELAY: Duration = Duration::from_secs(2);

/// A daemon that exited before it reported its address, with its log.
struct Exited(String);

impl Daemon {
    /// Writes `config` (YAML; `{dir}` is replaced by the state directory) and starts the daemon.
    pub(crate) fn start(config: &str) -> Daemon {
        Self::start_with_env(config, &[])
    }

    pub(crate) fn start_with_env(config: &str, env: &[(&str, &str)]) -> Daemon {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("config.yaml");
        std::fs::write(
            &path,
            config.replace("{dir}", &dir.path().display().to_string()),
        )
        .expect("writing the config");
        let (child, addr, log) = Self::spawn(&path, env);
        Daemon {
            child,
            addr,
            _dir: dir,
            config: path,
            log,
        }
    }

    /// Starts the daemon again on the same state directory and configuration (after a kill).
    pub(crate) fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, addr, log) = Self::spawn(&self.config, &[]);
        (self.child, self.addr, self.log) = (child, addr, log);
    }

    /// [`restart`](Self::restart) as the shipped unit restarts the daemon (`Restart=on-failure`,
    /// `RestartSec=2`): a start that exits with an error, as one may while a NATS cluster is
    /// still electing leaders, is followed by another, until `deadline`. A start that hangs
    /// still fails the test.
    pub(crate) fn restart_on_failure(&mut self, deadline: std::time::Instant) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut failed = String::new();
        loop {
            match Self::try_spawn(&self.config, &[]) {
                Ok((child, addr, log)) => {
                    (self.child, self.addr, self.log) = (child, addr, log);
                    return;
                }
                Err(Exited(log)) => {
                    failed.push_str(&log);
                    failed.push_str("--- exited; started again as the unit would ---\n");
                    assert!(
                        std::time::Instant::now() + UNIT_RESTART_DELAY < deadline,
                        "the daemon kept exiting at start-up; logs:\n{failed}"
                    );
                    std::thread::sleep(UNIT_RESTART_DELAY);
                }
            }
        }
    }

    fn spawn(config: &Path, env: &[(&str, &str)]) -> (Child, SocketAddr, Arc<Mutex<String>>) {
        match Self::try_spawn(config, env) {
            Ok(started) => started,
            Err(Exited(log)) => panic!("the daemon exited at start-up; log:\n{log}"),
        }
    }

    /// Starts the daemon and waits for its address; `Err` with its log when it exits first.
    /// Panics when it neither reports an address nor exits within [`START_BOUND`].
    fn try_spawn(
        config: &Path,
        env: &[(&str, &str)],
    ) -> Result<(Child, SocketAddr, Arc<Mutex<String>>), Exited> {
        let mut cmd = Command::new(binary());
        cmd.arg("serve")
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "info")
            .env_remove("CLAWLET_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("starting clawlet-webhookd");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = listening_addr(&line)
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(addr);
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let addr = match rx.recv_timeout(START_BOUND) {
            Ok(addr) => addr,
            // The reader ended without an address: stderr closed, so the daemon is exiting.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().expect("waiting for the daemon");
                let log = log.lock().unwrap().clone();
                return Err(Exited(format!("{log}(exit status: {status})\n")));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!(
                    "the daemon did not report its address; log:\n{}",
                    log.lock().unwrap()
                );
            }
        };
        Ok((child, addr, log))
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Everything the daemon wrote to stderr so far.
    pub(crate) fn logs(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends a signal by name (HUP, TERM, KILL) with the system's `kill`.
    pub(crate) fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Runs the binary with a subcommand against this daemon's configuration.
    pub(crate) fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(binary());
        cmd.args(args)
            .arg("--config")
            .arg(&self.config)
            .env_remove("CLAWLET_CONFIG");
        cmd.output().expect("running clawlet-webhookd")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Finds the address in the daemon's "listening" line.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("listening on ")? + "listening on ".len()..];
    let rest = rest
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"')
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Runs `clawlet-webhookd send …` and returns its output.
pub(crate) fn send(args: &[&str]) -> Output {
    Command::new(binary())
        .arg("send")
        .args(args)
        .output()
        .expect("running send")
}

impl Daemon {
    /// The daemon's process id, to read its memory use from `/proc`.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// The resident memory of process `pid` in KiB (`VmRSS` in `/proc/<pid>/status`).
pub(crate) fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("reading /proc");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

/// The most resident memory process `pid` has used since it started, in KiB (`VmHWM`): a peak
/// that sampling `VmRSS` could miss.
pub(crate) fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("reading /proc");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status")
}

/// The NATS server the JetStream tests use, from `CLAWLET_TEST_NATS_URL`; when it is unset the
/// caller skips, and this says why on the test output (or fails the test under CI).
pub(crate) fn nats_url() -> Option<String> {
    match std::env::var("CLAWLET_TEST_NATS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            skip_or_fail(
                "CLAWLET_TEST_NATS_URL is not set, so there is no NATS server to test against \
                 (e.g. nats://127.0.0.1:4222)",
            );
            None
        }
    }
}

/// A unique stream name for this test, so that tests never share a stream.
pub(crate) fn stream_name(test: &str) -> String {
    format!(
        "CLAWLET_E2E_{}_{}_{}",
        test.to_uppercase(),
        std::process::id(),
        uuid_suffix()
    )
}

fn uuid_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        % 1_000_000
}

/// Deletes a test's stream and its dead-letter stream when the test ends, also when it fails.
pub(crate) struct StreamGuard {
    pub(crate) url: String,
    pub(crate) stream: String,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let (url, stream) = (self.url.clone(), self.stream.clone());
        // A runtime of its own on a thread of its own: this may run while a test's runtime unwinds.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let connect = async_nats::ConnectOptions::new()
                    .connection_timeout(Duration::from_secs(2))
                    .connect(url.split(',').next().unwrap_or_default());
                if let Ok(Ok(client)) = tokio::time::timeout(Duration::from_secs(5), connect).await
                {
                    let js = async_nats::jetstream::new(client);
                    let _ = js.delete_stream(&stream).await;
                    let _ = js.delete_stream(format!("{stream}_DEAD")).await;
                }
            });
        })
        .join();
    }
}

/// A daemon on the nats backend with one GitHub handler, `agents`, a route to `worker`, and
/// `extra_routes`.
pub(crate) fn nats_config(nats: &str, stream: &str, agents: &str, extra_routes: &str) -> String {
    format!(
        r#"webhooks:
  host: 127.0.0.1
  port: 0
  rate_limit:
    enabled: false
  queue:
    backend: nats
    nats:
      url: "{nats}"
      stream: "{stream}"
  handlers:
    github:
      secret: "{GITHUB_SECRET}"
  agents:
{agents}
  routes:
    - agent: worker
{extra_routes}"#
    )
}

/// An `http` agent named `worker` that posts to `agent`.
pub(crate) fn http_worker(agent: &Agent) -> String {
    format!(
        "    worker:\n      kind: http\n      url: \"{}\"\n      secret: \"{AGENT_SECRET}\"\n      timeout: 5s\n",
        agent.url
    )
}

/// Reports a test's missing prerequisite `what`. Under CI (`CI=true`) a test that cannot run is a
/// failure, since a silent `ok` would hide work nobody checked; elsewhere the skip is written
/// straight to stderr, which libtest does not capture, so that `cargo test` shows it.
pub(crate) fn skip_or_fail(what: &str) {
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test} cannot run under CI=true: {what}");
    }
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "skipping {test}: {what}");
}
