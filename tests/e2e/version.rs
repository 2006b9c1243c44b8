//! `--version` names the version and the commit the binary was built from, so that an operator's
//! report says exactly which code runs.

use std::process::Command;

use crate::harness::binary;

/// The commit as `build.rs` records it: git's short hash of HEAD, or `unknown` outside a work tree.
fn head_commit() -> String {
    Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8(out.stdout).unwrap().trim().to_owned())
        .filter(|hash| !hash.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// What the binary prints for `args`.
fn printed(args: &[&str]) -> String {
    let out = Command::new(binary()).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn version_names_the_package_version_and_the_commit() {
    let version = format!("{} ({})", env!("CARGO_PKG_VERSION"), head_commit());
    assert_eq!(
        printed(&["--version"]),
        format!("clawlet-webhookd {version}\n")
    );
    // Subcommands carry the same version under their own name.
    assert_eq!(
        printed(&["events", "list", "--version"]),
        format!("clawlet-webhookd-events-list {version}\n")
    );
}
