//! `cargo xtask fuzz [--time SECS]`: runs every cargo-fuzz target in `fuzz/` for a bounded time.

use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::{capture, cargo, exec, workspace_root};

pub(crate) fn run(args: &[String]) -> Result<()> {
    let seconds = parse_time(args)?;
    let root = workspace_root();
    let fuzz_dir = root.join("fuzz");
    if !fuzz_dir.join("Cargo.toml").exists() {
        bail!(
            "no fuzz targets exist yet: {} has no Cargo.toml",
            fuzz_dir.display()
        );
    }
    ensure_locked(&fuzz_dir)?;
    if Command::new("cargo-fuzz")
        .arg("--version")
        .output()
        .is_err()
    {
        exec(cargo().args(["install", "--locked", "cargo-fuzz"]))?;
    }
    // `+nightly` is understood only by rustup's `cargo` proxy, not by the toolchain's own cargo
    // binary that `$CARGO` names.
    let listing = capture(
        Command::new("cargo")
            .args(["+nightly", "fuzz", "list"])
            .current_dir(&root),
    )?;
    let targets: Vec<&str> = listing
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if targets.is_empty() {
        bail!("cargo fuzz list found no targets in {}", fuzz_dir.display());
    }
    for target in targets {
        println!("==> fuzzing {target} for {seconds} s");
        exec(
            Command::new("cargo")
                .args(["+nightly", "fuzz", "run", target, "--"])
                .arg(format!("-max_total_time={seconds}"))
                .current_dir(&root),
        )?;
    }
    Ok(())
}

/// Fails when `fuzz/Cargo.lock` does not match the manifests, as `--locked` does for the main
/// workspace: `cargo fuzz` has no `--locked` of its own and would rewrite the file, so a stale
/// lock would go unnoticed and a crash found here could not be rebuilt from the commit.
fn ensure_locked(fuzz_dir: &std::path::Path) -> Result<()> {
    let status = cargo()
        .args([
            "metadata",
            "--locked",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(fuzz_dir.join("Cargo.toml"))
        .stdout(Stdio::null())
        .status()
        .context("could not start cargo metadata")?;
    if !status.success() {
        bail!(
            "fuzz/Cargo.lock does not match the manifests (a dependency of clawlet-verify, \
             clawlet-events or clawlet-config changed?): update it with `cargo metadata \
             --manifest-path fuzz/Cargo.toml --format-version 1 > /dev/null` and commit it"
        );
    }
    Ok(())
}

fn parse_time(args: &[String]) -> Result<u64> {
    match args {
        [] => Ok(60),
        [flag, value] if flag == "--time" => value
            .parse()
            .with_context(|| format!("--time takes whole seconds, not {value:?}")),
        _ => bail!("usage: cargo xtask fuzz [--time SECS]"),
    }
}
