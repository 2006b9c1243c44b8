//! Reloading the configuration: a refused file changes nothing, a valid one applies whole, a
//! stream of SIGHUPs ends with the latest file running, and `config check` refuses what `serve`
//! refuses, in the same words.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::agent::{AGENT_SECRET, Agent};
use crate::harness::{Daemon, binary, send};
use crate::operate::wait_until;
use crate::providers::{GITHUB_SECRET, config};

/// The status line `send` printed for a GitHub delivery signed with `secret`.
fn github_status(daemon: &Daemon, secret: &str) -> String {
    let url = daemon.url("/webhook/github");
    let out = tokio::task::block_in_place(|| send(&["github", "--url", &url, "--secret", secret]));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Writes `text` beside the configuration and renames it over it, as editors and deploy tools
/// do, so that a reload never reads a half-written file.
fn replace_config(daemon: &Daemon, text: &str) {
    let staged = daemon.config.with_extension("yaml.new");
    std::fs::write(&staged, text).unwrap();
    std::fs::rename(&staged, &daemon.config).unwrap();
}

fn count(logs: &str, needle: &str) -> usize {
    logs.matches(needle).count()
}

/// The report's case: a new GitHub secret together with an agent secret that is not
/// `whsec_<base64>`. The reload is refused as a whole, so the old secret keeps working; the
/// running configuration is the original file, so writing it back changes nothing; a valid file
/// then applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_reload_changes_nothing_and_the_next_valid_file_applies() {
    let agent = Agent::start().await;
    let daemon = Daemon::start(&config(&agent, ""));
    let original = std::fs::read_to_string(&daemon.config).unwrap();
    assert!(github_status(&daemon, GITHUB_SECRET).starts_with("200"));

    replace_config(
        &daemon,
        &original
            .replace(GITHUB_SECRET, "secret-b")
            .replace(AGENT_SECRET, "plainsecret"),
    );
    daemon.signal("HUP");
    let refused = wait_until(Duration::from_secs(20), || {
        daemon.logs().contains("reload refused")
    })
    .await;
    assert!(refused, "{}", daemon.logs());
    let logs = daemon.logs();
    assert!(
        logs.contains("webhooks.agents.inbox.secret") && logs.contains("whsec_<base64>"),
        "the refusal must name the key and the format:\n{logs}"
    );
    assert!(
        !logs.contains("plainsecret"),
        "a secret reached the log:\n{logs}"
    );
    let a = github_status(&daemon, GITHUB_SECRET);
    assert!(
        a.starts_with("200"),
        "the old secret stopped working: {a}\n{logs}"
    );
    let b = github_status(&daemon, "secret-b");
    assert!(
        b.starts_with("401"),
        "half of the refused file was applied: {b}\n{logs}"
    );

    // The original file is what runs: reloading it changes nothing.
    let unchanged = count(&daemon.logs(), "configuration unchanged");
    replace_config(&daemon, &original);
    daemon.signal("HUP");
    let seen = wait_until(Duration::from_secs(20), || {
        count(&daemon.logs(), "configuration unchanged") > unchanged
    })
    .await;
    assert!(seen, "{}", daemon.logs());
    assert!(github_status(&daemon, GITHUB_SECRET).starts_with("200"));
    assert!(github_status(&daemon, "secret-b").starts_with("401"));

    // A valid file with the new secret applies whole.
    replace_config(&daemon, &original.replace(GITHUB_SECRET, "secret-b"));
    daemon.signal("HUP");
    let applied = wait_until(Duration::from_secs(20), || {
        github_status(&daemon, "secret-b").starts_with("200")
    })
    .await;
    assert!(applied, "the valid file never applied\n{}", daemon.logs());
    assert!(github_status(&daemon, GITHUB_SECRET).starts_with("401"));
}

/// An operator's loop sent SIGHUP every 200 ms while rewriting the file, and reloads stalled.
/// Here signals keep coming for the whole test while the file is rewritten fifty times; the last
/// file must end up running while the signals still arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_of_sighups_ends_with_the_latest_file_running() {
    let agent = Agent::start().await;
    let daemon = Daemon::start(&config(&agent, ""));
    let original = std::fs::read_to_string(&daemon.config).unwrap();
    let version = |i: u32| original.replace(GITHUB_SECRET, &format!("burst-secret-{i}"));

    // One reload seen through, so that the signal handler is known to be in place.
    replace_config(&daemon, &version(0));
    daemon.signal("HUP");
    let first = wait_until(Duration::from_secs(20), || {
        github_status(&daemon, "burst-secret-0").starts_with("200")
    })
    .await;
    assert!(first, "{}", daemon.logs());

    let stop = Arc::new(AtomicBool::new(false));
    let signaller = {
        let stop = Arc::clone(&stop);
        let pid = daemon.pid().to_string();
        std::thread::spawn(move || {
            let mut sent = 0u32;
            // Bounded even if the test never sets `stop`.
            while !stop.load(Ordering::Relaxed) && sent < 10_000 {
                let status = Command::new("kill").args(["-HUP", &pid]).status();
                assert!(status.is_ok_and(|s| s.success()), "kill -HUP failed");
                sent += 1;
                // The pace of the signals, not a wait for anything.
                std::thread::sleep(Duration::from_millis(20));
            }
            sent
        })
    };
    // Spread over more than the watcher's one-second poll, so that file-change reloads and
    // signals interleave as they did for the operator.
    for i in 1..=50 {
        replace_config(&daemon, &version(i));
        std::thread::sleep(Duration::from_millis(25));
    }
    let latest = wait_until(Duration::from_secs(30), || {
        github_status(&daemon, "burst-secret-50").starts_with("200")
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let sent = signaller.join().unwrap();
    assert!(
        latest,
        "the latest file was not running after {sent} signals\n{}",
        daemon.logs()
    );
    assert!(github_status(&daemon, "burst-secret-49").starts_with("401"));
    assert!(github_status(&daemon, "burst-secret-0").starts_with("401"));
}

/// A handler and an agent whose secret is `secret`.
fn with_secrets(dir: &std::path::Path, handler_secret: &str, agent_secret: &str) -> String {
    format!(
        r#"webhooks:
  host: 127.0.0.1
  port: 0
  queue:
    backend: sqlite
    path: "{dir}/journal.db"
  handlers:
    svix:
      kind: standard
      secret: "{handler_secret}"
  agents:
    inbox:
      kind: http
      url: "http://127.0.0.1:9/events"
      secret: "{agent_secret}"
  routes:
    - agent: inbox
"#,
        dir = dir.display()
    )
}

/// `config check` and `serve` run the same validation: both refuse a Standard Webhooks handler
/// secret and an HTTP agent secret that is not `whsec_<base64>`, with the same line naming the
/// file, the key and the expected format, and exit 2.
#[test]
fn config_check_and_serve_refuse_secrets_that_are_not_whsec_base64() {
    let dir = tempfile::tempdir().unwrap();
    let good = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    for bad in ["plainsecret", "whsec_", "whsec_!!!"] {
        for (handler_secret, agent_secret, key) in [
            (bad, good, "webhooks.handlers.svix.secret"),
            (good, bad, "webhooks.agents.inbox.secret"),
        ] {
            let path = dir.path().join("config.yaml");
            std::fs::write(
                &path,
                with_secrets(dir.path(), handler_secret, agent_secret),
            )
            .unwrap();
            let check = Command::new(binary())
                .args(["config", "check", "--config"])
                .arg(&path)
                .env_remove("CLAWLET_CONFIG")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&check.stdout);
            assert_eq!(check.status.code(), Some(2), "{bad} at {key}: {text}");
            let line = text
                .lines()
                .find(|l| l.contains(key))
                .unwrap_or_else(|| panic!("{bad}: no line names {key}:\n{text}"));
            assert!(
                line.starts_with(&path.display().to_string()) && line.contains("whsec_<base64>"),
                "{line}"
            );
            if bad != "whsec_" {
                assert!(!line.contains(bad), "the secret was echoed: {line}");
            }

            let serve = Command::new(binary())
                .args(["serve", "--config"])
                .arg(&path)
                .env_remove("CLAWLET_CONFIG")
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&serve.stderr);
            assert_eq!(serve.status.code(), Some(2), "{bad} at {key}: {stderr}");
            assert!(
                stderr.contains(line),
                "serve said otherwise:\n{stderr}\ncheck said:\n{line}"
            );
        }
    }
}

/// One GitHub handler, events to the built-in log agent.
fn one_handler() -> String {
    format!(
        "webhooks:\n  host: 127.0.0.1\n  port: 0\n  rate_limit: {{ enabled: false }}\n  \
         queue: {{ backend: memory }}\n  handlers:\n    github: {{ secret: \"{GITHUB_SECRET}\" }}\n"
    )
}

/// Start-up refuses a file without an enabled handler, because every delivery would get 404;
/// a reload to such a file is refused the same way and the running handler keeps answering, and
/// `config check` says so too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_to_a_file_without_an_enabled_handler_is_refused() {
    let daemon = Daemon::start(&one_handler());
    let original = std::fs::read_to_string(&daemon.config).unwrap();
    assert!(github_status(&daemon, GITHUB_SECRET).starts_with("200"));
    let disabled = original.replace("github: {", "github: { enabled: false,");
    assert_ne!(disabled, original);

    replace_config(&daemon, &disabled);
    daemon.signal("HUP");
    let refused = wait_until(Duration::from_secs(20), || {
        daemon
            .logs()
            .lines()
            .any(|l| l.contains("reload refused") && l.contains("no enabled handler"))
    })
    .await;
    assert!(refused, "{}", daemon.logs());
    let status = github_status(&daemon, GITHUB_SECRET);
    assert!(status.starts_with("200"), "{status}\n{}", daemon.logs());

    let check = Command::new(binary())
        .args(["config", "check", "--config"])
        .arg(&daemon.config)
        .env_remove("CLAWLET_CONFIG")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(2), "{text}");
    let expected = format!(
        "{}: webhooks.handlers: no enabled handler",
        daemon.config.display()
    );
    assert!(text.contains(&expected), "{text}");
}

/// The needs-restart warning compares a file with what runs, not with the last file applied:
/// it is repeated by every reload while the file's port differs from the listener's, and stops
/// once the file is back to the running port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_restart_warning_lasts_while_the_file_differs_from_what_runs() {
    let daemon = Daemon::start(&one_handler());
    let original = std::fs::read_to_string(&daemon.config).unwrap();
    let warned = |logs: &str| {
        logs.lines()
            .filter(|l| l.contains("next restart") && l.contains("webhooks.port"))
            .count()
    };
    // Each file differs from the one before in a setting a reload applies, so each is applied.
    let steps = [
        (original.replace("port: 0", "port: 1"), 1),
        (
            original.replace("port: 0", "port: 1").replace(
                "rate_limit: { enabled: false }",
                "rate_limit: { enabled: true }",
            ),
            2,
        ),
        (original.clone(), 2),
    ];
    for (applied, (text, warnings)) in steps.iter().enumerate() {
        replace_config(&daemon, text);
        daemon.signal("HUP");
        let done = wait_until(Duration::from_secs(20), || {
            count(&daemon.logs(), "configuration reloaded") > applied
        })
        .await;
        assert!(
            done,
            "reload {} never applied\n{}",
            applied + 1,
            daemon.logs()
        );
        let logs = daemon.logs();
        assert_eq!(
            warned(&logs),
            *warnings,
            "after reload {}\n{logs}",
            applied + 1
        );
    }
}
