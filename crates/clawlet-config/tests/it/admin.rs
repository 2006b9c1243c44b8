//! `webhooks.admin`: the console's own port, and its token rules.

use clawlet_config::{Env, load};

use super::{HOME, opts, write_config};

const TOKEN: &str = "0123456789abcdef0123";

/// Loads `admin` (the YAML under `webhooks.admin:`, indented by four) with the webhook listener
/// on 0.0.0.0:8080 and `env`; returns the token (or `none`), or the errors' text.
fn admin(block: &str, env: &[(&str, &str)]) -> Result<String, String> {
    let text = format!("webhooks:\n  port: 8080\n  admin:\n{block}");
    let (_dir, path) = write_config(&text);
    let mut vars = Env::empty().with("HOME", HOME);
    for &(k, v) in env {
        vars = vars.with(k, v);
    }
    match load(&opts(Some(path), vars)) {
        Ok(loaded) => {
            let a = loaded.config.webhooks.admin;
            Ok(a.token
                .map_or_else(|| "none".to_owned(), |t| t.expose().to_owned()))
        }
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn the_admin_listener_needs_its_own_port_and_a_token() {
    let ok = |block: &str, env: &[(&str, &str)], token: &str| {
        assert_eq!(admin(block, env).as_deref(), Ok(token), "{block}");
    };
    let refused = |block: &str, env: &[(&str, &str)], key: &str, words: &str| {
        let err = admin(block, env).expect_err(block);
        assert!(err.contains(key) && err.contains(words), "{block}: {err}");
        assert!(!err.contains(TOKEN), "the token is never printed: {err}");
    };
    ok(
        "    enabled: true\n",
        &[("CLAWLET_ADMIN_TOKEN", TOKEN)],
        TOKEN,
    );
    ok(
        &format!("    enabled: true\n    token: {TOKEN}\n"),
        &[],
        TOKEN,
    );
    ok(
        "    enabled: true\n    token: ${ADMIN}\n",
        &[("ADMIN", TOKEN)],
        TOKEN,
    );
    ok("    enabled: true\n    token: none\n", &[], "none");
    ok(
        "    enabled: true\n    host: \"::1\"\n    token: none\n",
        &[],
        "none",
    );
    ok("    enabled: false\n", &[], "none");
    ok(
        "    enabled: true\n    port: 0\n    token: none\n",
        &[],
        "none",
    );
    refused(
        "    enabled: true\n",
        &[],
        "webhooks.admin.token",
        "CLAWLET_ADMIN_TOKEN is not in the environment",
    );
    refused(
        "    enabled: true\n    host: 0.0.0.0\n    token: none\n",
        &[],
        "webhooks.admin.token",
        "not a loopback address",
    );
    refused(
        "    enabled: true\n    token: short\n",
        &[],
        "webhooks.admin.token",
        "shorter than 16",
    );
    refused(
        "    enabled: true\n    port: 8080\n    token: none\n",
        &[],
        "webhooks.admin.port",
        "also the webhook listener's port",
    );
    refused(
        &format!("    enabled: true\n    port: 70000\n    token: {TOKEN}\n"),
        &[],
        "webhooks.admin.port",
        "not a port",
    );
}
