//! The README's quick start, run as a new user would run it, from the README's own text: the
//! daemon on `config/example.yaml`, the `send` example answered 200, `events list` showing the
//! event, and the example's default agent (`log`) having delivered it.
//!
//! The commands are read from the two fenced blocks that follow the `<!-- quickstart:daemon`
//! and `<!-- quickstart:client` markers in README.md, so the README and this test cannot drift:
//! a line this test does not know how to run fails it. Three things differ from a terminal, each
//! for the test's own isolation: `cargo run --release -p clawlet-webhookd --` is the binary cargo
//! built for this suite; the daemon listens on 127.0.0.1 and a free port (through
//! `CLAWLET_WEBHOOKS__HOST` and `__PORT`, which the client's `127.0.0.1:8080` is pointed at); and
//! `HOME` is a temporary directory, where the example's `~/.clawlet/webhooks.db` is created.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::harness::binary;

/// How the README spells the binary.
const CARGO_RUN: &str = "cargo run --release -p clawlet-webhookd -- ";
/// Where the README's client commands expect the daemon.
const README_ADDR: &str = "127.0.0.1:8080";
/// A bound on start-up and on each wait below, not an expectation.
const BOUND: Duration = Duration::from_secs(30);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The lines of the fenced block after `marker`, and the variables its `export` lines set.
struct Block {
    env: BTreeMap<String, String>,
    /// Each command's arguments after the binary's name.
    commands: Vec<Vec<String>>,
}

fn block(readme: &str, marker: &str) -> Block {
    let start = readme
        .find(marker)
        .unwrap_or_else(|| panic!("README.md has no `{marker}` marker"));
    let rest = &readme[start..];
    let fence = rest
        .find("```sh\n")
        .expect("a ```sh block after the marker")
        + "```sh\n".len();
    let end = rest[fence..]
        .find("```")
        .expect("the block's closing fence");
    let mut env = BTreeMap::new();
    let mut commands = Vec::new();
    for line in rest[fence..fence + end].lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(assignment) = line.strip_prefix("export ") {
            let (name, value) = assignment
                .split_once('=')
                .unwrap_or_else(|| panic!("README quick start: `{line}` is not NAME=value"));
            let value = words(value, &env);
            assert_eq!(value.len(), 1, "README quick start: `{line}`");
            env.insert(name.to_owned(), value[0].clone());
        } else if let Some(args) = line.strip_prefix(CARGO_RUN) {
            commands.push(words(args, &env));
        } else {
            panic!(
                "README quick start: this test cannot run `{line}`; keep to `export NAME=value` \
                 and `{CARGO_RUN}…` lines, or teach tests/e2e/quickstart.rs the new form"
            );
        }
    }
    Block { env, commands }
}

/// Splits a command line as a POSIX shell does for the forms the README uses: words separated
/// by spaces, double quotes, and `$NAME` expanded from `env` (inside double quotes or not).
fn words(line: &str, env: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut word: Option<String> = None;
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                word.get_or_insert_with(String::new);
            }
            ' ' if !quoted => {
                if let Some(w) = word.take() {
                    out.push(w);
                }
            }
            '$' => {
                let mut name = String::new();
                while let Some(&n) = chars.peek() {
                    if n.is_ascii_alphanumeric() || n == '_' {
                        name.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                assert!(
                    !name.is_empty(),
                    "README quick start: a bare `$` in `{line}`"
                );
                let value = env
                    .get(&name)
                    .unwrap_or_else(|| panic!("README quick start: ${name} is not exported"));
                // A shell would split an unquoted value at its spaces; this reader does not.
                assert!(
                    quoted || !value.contains(char::is_whitespace),
                    "README quick start: quote ${name} in `{line}`"
                );
                word.get_or_insert_with(String::new).push_str(value);
            }
            '\'' | '\\' | '`' | '|' | '&' | ';' | '<' | '>' | '(' | ')' | '*' | '?' => {
                panic!("README quick start: `{c}` in `{line}` is beyond this test's shell")
            }
            other => word.get_or_insert_with(String::new).push(other),
        }
    }
    assert!(!quoted, "README quick start: unclosed quote in `{line}`");
    out.extend(word);
    out
}

/// The daemon of the quick start, its log kept for the test to read.
struct Daemon {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(home: &Path, env: &BTreeMap<String, String>) -> Command {
    let mut cmd = Command::new(binary());
    cmd.current_dir(root())
        .env("HOME", home)
        .env_remove("CLAWLET_CONFIG")
        .env_remove("CLAWLET_SEND_SECRET")
        .env_remove("RUST_LOG")
        .envs(env);
    // Only the two overrides this test needs: nothing else from the caller's environment.
    for (name, _) in std::env::vars() {
        if name.starts_with("CLAWLET_WEBHOOKS__") {
            cmd.env_remove(name);
        }
    }
    cmd
}

fn start(home: &Path, block: &Block) -> Daemon {
    assert_eq!(
        block.commands.len(),
        1,
        "the daemon's block runs one command"
    );
    let mut cmd = command(home, &block.env);
    cmd.args(&block.commands[0])
        .env("CLAWLET_WEBHOOKS__HOST", "127.0.0.1")
        .env("CLAWLET_WEBHOOKS__PORT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("starting clawlet-webhookd");
    let stderr = child.stderr.take().expect("piped stderr");
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = mpsc::channel();
    let sink = Arc::clone(&log);
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(at) = line.find("listening on http://") {
                let rest = &line[at + "listening on http://".len()..];
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                if let (Ok(addr), Some(tx)) = (rest[..end].parse::<SocketAddr>(), tx.take()) {
                    let _ = tx.send(addr);
                }
            }
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    let addr = rx.recv_timeout(BOUND);
    let mut daemon = Daemon {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        log,
    };
    match addr {
        Ok(addr) => daemon.addr = addr,
        Err(_) => panic!(
            "the quick start's daemon did not start; log:\n{}",
            daemon.log.lock().unwrap()
        ),
    }
    daemon
}

fn run(home: &Path, env: &BTreeMap<String, String>, args: &[String], addr: SocketAddr) -> Output {
    let args: Vec<String> = args
        .iter()
        .map(|a| a.replace(README_ADDR, &addr.to_string()))
        .collect();
    command(home, env)
        .args(&args)
        .output()
        .expect("running clawlet-webhookd")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_readme_quick_start_works_as_written() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("reading README.md");
    let daemon_block = block(&readme, "<!-- quickstart:daemon");
    let client = block(&readme, "<!-- quickstart:client");
    assert!(
        daemon_block.commands[0]
            .windows(2)
            .any(|w| w == ["--config", "config/example.yaml"]),
        "the quick start runs the example configuration as it ships"
    );
    let home = tempfile::tempdir().unwrap();
    let daemon = start(home.path(), &daemon_block);

    let [send, list] = client.commands.as_slice() else {
        panic!("the client block runs `send` then `events list`")
    };
    assert_eq!(send[0], "send");
    assert_eq!(list[..2], ["events", "list"]);

    let sent = run(home.path(), &client.env, send, daemon.addr);
    let shown = text(&sent);
    assert!(sent.status.success(), "send failed\n{shown}");
    let stdout = String::from_utf8_lossy(&sent.stdout);
    assert!(stdout.starts_with("200 OK\n"), "{shown}");
    let answer: serde_json::Value =
        serde_json::from_str(stdout.lines().nth(1).expect("the answer's body")).unwrap();
    assert_eq!(answer["status"], "accepted", "{shown}");
    let event_id = answer["event_id"].as_str().expect("an event id").to_owned();

    // The log agent writes its line before the event's commit, so both are there once the
    // journal shows the event delivered; the deadline only bounds a failure.
    let deadline = Instant::now() + BOUND;
    loop {
        let listed = run(home.path(), &client.env, list, daemon.addr);
        let out = String::from_utf8_lossy(&listed.stdout).into_owned();
        let line = out
            .lines()
            .find(|l| l.contains(&event_id))
            .map(str::to_owned);
        let delivered = line.as_deref().is_some_and(|l| {
            l.contains(" delivered ")
                && l.contains(" github ")
                && l.contains(" pull_request ")
                && l.contains("New PR #42 opened in octo-org/hello-world")
        });
        let log = daemon.log.lock().unwrap().clone();
        let by_log_agent = log.lines().any(|l| {
            l.contains("agent=log")
                && l.contains(&event_id)
                && l.contains("New PR #42 opened in octo-org/hello-world")
        });
        if delivered && by_log_agent {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the event was not listed as delivered by the log agent\nevents list:\n{}\ndaemon log:\n{log}",
            text(&listed)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_quick_start_reader_understands_the_shell_it_meets() {
    let env = BTreeMap::from([
        ("S".to_owned(), "a b".to_owned()),
        ("T".to_owned(), "t".to_owned()),
    ]);
    let split = |line: &str| words(line, &env);
    assert_eq!(
        split(r#"send github --secret "$S" --x $T --y=$T/z"#),
        ["send", "github", "--secret", "a b", "--x", "t", "--y=t/z"]
    );
    assert_eq!(split(r#""" x"#), ["", "x"]);
}
