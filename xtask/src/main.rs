//! Project automation for clawlet-webhooks, run as `cargo xtask <command>`.
//!
//! Plain Rust with few dependencies, so that it builds in seconds on a fresh machine. It must never
//! be needed to build or test the project: `cargo build` and `cargo test` stand on their own, and
//! xtask only strings together what a maintainer would otherwise type.
//!
//! ```text
//! cargo xtask ci                  # exactly what CI runs (.ci/run)
//! cargo xtask release             # target/dist/: the tarball, the .deb and SHA256SUMS
//! cargo xtask dist-check          # build them from the dev profile, install the .deb, remove it
//! cargo xtask deploy-check        # deploy/ as installed: unit, nginx -t, run as its user
//! cargo xtask fuzz [--time 60]    # every fuzz target for the given number of seconds
//! cargo xtask bench [...]         # the load run against the release binary
//! ```
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool reports on its streams"
)]

mod bench;
mod deb;
mod deploy_check;
mod dist_check;
mod docs;
mod fuzz;
mod release;
#[cfg(test)]
mod tidy;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  ci                 run exactly what CI runs (.ci/run)
  release [--profile NAME]
                     build the release binary and pack it into target/dist/: a tarball and a
                     .deb, each with completions and man pages, and SHA256SUMS
  dist-check [--profile NAME]
                     build those (from the dev profile by default), install the .deb, use it and
                     remove it (needs root), then test the packaged clawlet-verify crate
  deploy-check [--binary PATH]
                     check deploy/: systemd-analyze verify on the unit, nginx -t on nginx.conf,
                     and the unit's ExecStart= as an unprivileged user with the install's modes
                     (needs root; the binary defaults to target/debug/clawlet-webhookd)
  fuzz [--time SECS] run every fuzz target for SECS seconds each (default 60)
  bench [OPTIONS]    load-test the release binary; `cargo xtask bench --help` for options";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("release") => release::run(&args[1..]),
        Some("dist-check") => dist_check::run(&args[1..]),
        Some("deploy-check") => deploy_check::run(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(anyhow::anyhow!("unknown command `{other}`\n\n{USAGE}")),
        None => Err(anyhow::anyhow!("{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// CI is defined once, in `.ci/run`; this runs that very script so the two can never drift.
fn ci() -> Result<()> {
    exec(
        Command::new("bash")
            .arg(".ci/run")
            .current_dir(workspace_root()),
    )
}

/// The workspace root: xtask's manifest lives one level below it.
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The cargo that runs xtask, so nested builds use the same toolchain.
pub(crate) fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Runs a command to completion, failing with the command line when it exits non-zero.
pub(crate) fn exec(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

/// Runs a command and returns its standard output as text.
pub(crate) fn capture(cmd: &mut Command) -> Result<String> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .with_context(|| format!("could not start {shown}"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8(out.stdout).with_context(|| format!("{shown} printed non-UTF-8 output"))
}
