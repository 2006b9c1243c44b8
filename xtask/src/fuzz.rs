//! `cargo xtask fuzz [--time SECS]`: runs every cargo-fuzz target in `fuzz/` for a bounded time.

use std::process::Command;

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

fn parse_time(args: &[String]) -> Result<u64> {
    match args {
        [] => Ok(60),
        [flag, value] if flag == "--time" => value
            .parse()
            .with_context(|| format!("--time takes whole seconds, not {value:?}")),
        _ => bail!("usage: cargo xtask fuzz [--time SECS]"),
    }
}
