//! `cargo xtask release`: a stripped release build packed for operators, with its checksum.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::{capture, cargo, exec, workspace_root};

/// Files shipped beside the binary, relative to the workspace root.
const SHIPPED: &[&str] = &[
    "README.md",
    "LICENSE-MIT",
    "LICENSE-APACHE",
    "config/example.yaml",
];

pub(crate) fn run() -> Result<()> {
    let root = workspace_root();
    exec(
        cargo()
            .args(["build", "--release", "--locked", "-p", "clawlet-webhookd"])
            .current_dir(&root),
    )?;

    let binary = root.join("target/release/clawlet-webhookd");
    // Asking the fresh binary for its version both names the archive and proves it runs.
    let version_line = capture(Command::new(&binary).arg("--version"))?;
    let version = version_line
        .split_whitespace()
        .nth(1)
        .with_context(|| format!("unexpected --version output: {version_line:?}"))?;
    let target = host_target()?;
    ensure_stripped(&binary)?;

    let name = format!("clawlet-webhookd-{version}-{target}");
    let dist = root.join("target/dist");
    let stage = dist.join(&name);
    if stage.exists() {
        fs::remove_dir_all(&stage).with_context(|| format!("removing {}", stage.display()))?;
    }
    fs::create_dir_all(stage.join("config"))?;
    fs::copy(&binary, stage.join("clawlet-webhookd"))?;
    for file in SHIPPED {
        fs::copy(root.join(file), stage.join(file)).with_context(|| format!("copying {file}"))?;
    }

    let tarball = format!("{name}.tar.gz");
    exec(
        Command::new("tar")
            .args(["--owner=0", "--group=0", "-czf", &tarball, &name])
            .current_dir(&dist),
    )?;
    fs::remove_dir_all(&stage)?;

    let digest = hex::encode(Sha256::digest(fs::read(dist.join(&tarball))?));
    fs::write(dist.join("SHA256SUMS"), format!("{digest}  {tarball}\n"))?;
    println!("{}", dist.join(&tarball).display());
    println!("{}", dist.join("SHA256SUMS").display());
    Ok(())
}

/// The host's target triple, as rustc reports it.
fn host_target() -> Result<String> {
    let info = capture(Command::new("rustc").arg("-vV"))?;
    info.lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .context("rustc -vV did not name the host target")
}

/// The release profile strips symbols; a binary that still has a symbol table means the profile
/// was changed, which would ship a far larger file.
fn ensure_stripped(binary: &Path) -> Result<()> {
    let Ok(listing) = capture(Command::new("nm").arg(binary)) else {
        // `nm` fails with "no symbols" on a stripped binary, and may be absent altogether.
        return Ok(());
    };
    if listing.lines().count() > 0 {
        bail!(
            "{} still has symbols: check [profile.release] strip",
            binary.display()
        );
    }
    Ok(())
}
