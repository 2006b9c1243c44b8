//! `clawlet_config::check` (which runs `load` and renders the result): arbitrary YAML with
//! `${VAR}` interpolation against a small injected environment.
//!
//! Input: `env \0 yaml`, or just `yaml` when there is no NUL. `env` holds `NAME=VALUE` lines that
//! are added to (or replace) the base environment below, so `CLAWLET_WEBHOOKS__…` overrides are
//! fuzzed too. The YAML is written to a file of this process, since `load` reads a path.
//!
//! Properties: no panic, no hang; a failure carries at least one error; a configuration that
//! loads also renders (`config check` exits 0 or 2, never 1) and never prints a secret's value.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use clawlet_config::{Env, LoadOptions, check, load};
use libfuzzer_sys::fuzz_target;

/// A value no key of the schema would hold by accident, so finding it in the output means a
/// secret leaked.
const SECRET: &str = "fuzz-s3cr3t-7f3a9c";

fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("clawlet-fuzz-config-{}.yaml", std::process::id()))
    })
}

fn env(lines: &[u8]) -> Env {
    let mut env = Env::empty()
        .with("HOME", "/nonexistent-clawlet-fuzz-home")
        .with("A", "alpha")
        .with("B", "")
        .with("PORT", "9000")
        .with("NESTED", "${A}")
        .with("YAMLISH", "key: [1, {x: y}]\n- item")
        .with("GITHUB_WEBHOOK_SECRET", SECRET);
    for line in String::from_utf8_lossy(lines).lines() {
        if let Some((name, value)) = line.split_once('=') {
            env = env.with(name, value);
        }
    }
    env
}

fuzz_target!(|data: &[u8]| {
    let (env_lines, yaml) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&[][..], data),
    };
    if std::fs::write(path(), yaml).is_err() {
        return;
    }
    let opts = LoadOptions {
        path: Some(path().clone()),
        env: env(env_lines),
        ..LoadOptions::default()
    };

    let loaded = load(&opts);
    if let Err(errors) = &loaded {
        assert!(
            !errors.errors().is_empty(),
            "a failed load reports no error"
        );
    }
    let (text, code) = check(&opts);
    let _ = std::fs::remove_file(path());
    match (&loaded, code) {
        (Ok(_), 0) | (Err(_), 2) => {}
        _ => panic!(
            "load said {}, config check exited {code}:\n{text}",
            loaded.is_ok()
        ),
    }
    // Only the literal YAML, an injected variable or a non-secret key can put the value in the
    // output legitimately; interpolating GITHUB_WEBHOOK_SECRET into a secret must not.
    if code == 0 && !yaml.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()) {
        let yaml_text = String::from_utf8_lossy(yaml);
        let referenced_outside_secrets = yaml_text
            .lines()
            .filter(|l| l.contains("GITHUB_WEBHOOK_SECRET"))
            .any(|l| {
                let l = l.trim_start();
                !(l.starts_with("secret:") || l.starts_with("secrets:"))
            });
        if !referenced_outside_secrets && !String::from_utf8_lossy(env_lines).contains(SECRET) {
            assert!(
                !text.contains(SECRET),
                "config check printed a secret:\n{text}"
            );
        }
    }
});
