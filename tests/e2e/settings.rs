//! Per-handler settings do what the configuration says they do.

use crate::harness::{Daemon, send};

const SECRET: &str = "settings-e2e-secret";

/// Five GitHub deliveries to `path`; the status line of each.
fn five_sends(daemon: &Daemon, path: &str) -> Vec<String> {
    let url = daemon.url(path);
    (0..5)
        .map(|_| {
            let out = send(&["github", "--url", &url, "--secret", SECRET]);
            String::from_utf8_lossy(&out.stdout)
                .get(..3)
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

/// With a global limit of 2 per minute, a handler with `rate_limit: {enabled: false}` is not
/// limited at all, while a handler without its own setting keeps the global limit.
#[test]
fn a_handler_rate_limit_that_is_off_turns_limiting_off_for_that_handler() {
    let daemon = Daemon::start(&format!(
        r#"webhooks:
  host: 127.0.0.1
  port: 0
  rate_limit:
    enabled: true
    max_requests: 2
    window_seconds: 60
  queue:
    backend: memory
  handlers:
    unlimited:
      kind: github
      secret: "{SECRET}"
      rate_limit:
        enabled: false
    limited:
      kind: github
      secret: "{SECRET}"
"#
    ));
    assert_eq!(
        five_sends(&daemon, "/webhook/unlimited"),
        ["200"; 5],
        "{}",
        daemon.logs()
    );
    assert_eq!(
        five_sends(&daemon, "/webhook/limited"),
        ["200", "200", "429", "429", "429"],
        "{}",
        daemon.logs()
    );
}
