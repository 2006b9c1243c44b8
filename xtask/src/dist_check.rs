//! `cargo xtask dist-check [--profile NAME]`: builds every release artefact and uses it as an
//! operator would. CI runs it (`.ci/run`).
//!
//! - the tarball and the .deb match `SHA256SUMS`;
//! - the .deb installs with `dpkg -i`; its binary runs and names the commit; every file it carries
//!   is in place, the example configuration is a conffile that `config check` accepts, and the bash
//!   completions load; `dpkg -r` removes it all but the conffile, and `dpkg -P` that too;
//! - `clawlet-verify` packs with `cargo package`, and the unpacked crate passes its own tests, bench
//!   build and doc tests, offline, away from the workspace.
//!
//! The profile defaults to `dev`, whose binary the test step has just built: the packaging is the
//! same whatever the profile, and the release profile's fat LTO takes minutes.
//!
//! It needs root (dpkg) and refuses to run where clawlet-webhookd is installed or
//! `/etc/clawlet/config.yaml` exists, so that it never touches an operator's installation.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::release::{self, Dist};
use crate::{capture, cargo, deb, exec, workspace_root};

const USAGE: &str = "usage: cargo xtask dist-check [--profile NAME]";

pub(crate) fn run(args: &[String]) -> Result<()> {
    let profile = release::parse_profile(args, "dev", USAGE)?;
    preflight()?;
    let dist = release::build(&profile)?;
    println!("==> checksums");
    exec(
        Command::new("sha256sum")
            .args(["--check", "--strict", "SHA256SUMS"])
            .current_dir(&dist.dir),
    )?;
    deb_check(&dist)?;
    println!("==> clawlet-verify, packaged");
    verify_package()
}

/// Refuses to run where the check could clobber something.
fn preflight() -> Result<()> {
    let uid = capture(Command::new("id").arg("-u"))?;
    if uid.trim() != "0" {
        bail!(
            "dist-check installs a .deb with dpkg, which needs root; run it as root in CI or in a throwaway container"
        );
    }
    if let Some(status) = package_status()? {
        bail!(
            "{} is on this machine already ({status}); dist-check installs and purges it, so it \
             will not run here",
            deb::PACKAGE
        );
    }
    let config = Path::new("/").join(deb::CONFIG_PATH);
    if config.exists() {
        bail!(
            "{} exists; dist-check installs and purges a package that owns it, so it will not run here",
            config.display()
        );
    }
    Ok(())
}

/// dpkg's status line for the package, or `None` when dpkg knows nothing of it.
fn package_status() -> Result<Option<String>> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", deb::PACKAGE])
        .output()
        .context("could not start dpkg-query")?;
    let status = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    // `unknown ok not-installed` is what dpkg keeps after a purge.
    Ok(
        (out.status.success() && !status.is_empty() && !status.ends_with("not-installed"))
            .then_some(status),
    )
}

/// Installs, checks, removes and purges the .deb. A failed check still purges.
fn deb_check(dist: &Dist) -> Result<()> {
    println!("==> dpkg -i {}", dist.deb.display());
    exec(Command::new("dpkg").arg("-i").arg(&dist.deb))?;
    let installed = installed_checks(dist);
    let removed = removal_checks(dist);
    if installed.is_err() || removed.is_err() {
        // Leave the machine as it was, whatever failed; the first failure is the one reported.
        let _ = Command::new("dpkg").args(["-P", deb::PACKAGE]).status();
    }
    installed.and(removed)
}

fn installed_checks(dist: &Dist) -> Result<()> {
    let binary = "/usr/bin/clawlet-webhookd";
    let printed = capture(Command::new(binary).arg("--version"))?;
    let expected = format!("{} {}\n", deb::PACKAGE, dist.version);
    if printed != expected {
        bail!("{binary} --version printed {printed:?}, expected {expected:?}");
    }
    if let Some(commit) = head_commit()
        && !dist.version.contains(&format!("({commit})"))
    {
        bail!(
            "{binary} --version names no commit {commit} (HEAD): {printed:?}; check build.rs of clawlet-webhookd"
        );
    }
    for file in &dist.deb_files {
        if !Path::new(file).is_file() {
            bail!("{file} is in the package but not on disk after dpkg -i");
        }
    }
    let conffiles =
        capture(Command::new("dpkg-query").args(["-W", "-f=${Conffiles}", deb::PACKAGE]))?;
    let config = format!("/{}", deb::CONFIG_PATH);
    if !conffiles
        .lines()
        .any(|line| line.split_whitespace().next() == Some(&config))
    {
        bail!("dpkg lists no conffile {config}: {conffiles:?}");
    }
    // The example as shipped is a configuration this binary accepts (it prints the effective
    // configuration, which is not worth showing here).
    capture(Command::new(binary).args(["config", "check", "--config", &config]))?;
    if let Some(group) = deb::service_group(&workspace_root())? {
        let dir = Path::new(&config)
            .parent()
            .context("the configuration has no folder")?;
        for (path, expected) in [
            (dir, format!("750 root:{group}")),
            (Path::new(&config), format!("640 root:{group}")),
        ] {
            let shown = capture(Command::new("stat").args(["-c", "%a %U:%G"]).arg(path))?;
            if shown.trim() != expected {
                bail!(
                    "{} is {}, expected {expected} (postinst)",
                    path.display(),
                    shown.trim()
                );
            }
        }
    }
    let completion = capture(Command::new("bash").arg("-c").arg(
        "source /usr/share/bash-completion/completions/clawlet-webhookd && complete -p clawlet-webhookd",
    ))?;
    if !completion.contains("clawlet-webhookd") {
        bail!("the bash completions did not register: {completion:?}");
    }
    println!(
        "installed: {} files in place, --version {printed:?}",
        dist.deb_files.len()
    );
    Ok(())
}

fn removal_checks(dist: &Dist) -> Result<()> {
    let config = format!("/{}", deb::CONFIG_PATH);
    exec(Command::new("dpkg").args(["-r", deb::PACKAGE]))?;
    for file in dist.deb_files.iter().filter(|f| **f != config) {
        if Path::new(file).exists() {
            bail!("{file} is still there after dpkg -r");
        }
    }
    if !Path::new(&config).exists() {
        bail!("dpkg -r removed {config}: a conffile must stay until purge");
    }
    exec(Command::new("dpkg").args(["-P", deb::PACKAGE]))?;
    if Path::new(&config).exists() {
        bail!("{config} is still there after dpkg -P");
    }
    if let Some(status) = package_status()? {
        bail!("dpkg still lists {} after purge: {status}", deb::PACKAGE);
    }
    println!("removed and purged: nothing left");
    Ok(())
}

/// `git rev-parse --short HEAD`, or `None` outside a work tree (the binary then says `unknown`).
fn head_commit() -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(workspace_root())
        .output()
        .ok()?;
    let hash = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !hash.is_empty()).then_some(hash)
}

/// Packs `clawlet-verify` as crates.io would receive it, unpacks it outside the workspace and runs
/// its tests there, offline: the packaged crate must carry everything its tests and bench read.
fn verify_package() -> Result<()> {
    let root = workspace_root();
    // --no-verify: the build below is the verification, with the tests on top.
    exec(
        cargo()
            .args([
                "package",
                "-p",
                "clawlet-verify",
                "--allow-dirty",
                "--offline",
                "--no-verify",
            ])
            .current_dir(&root),
    )?;
    let manifest = fs::read_to_string(root.join("crates/clawlet-verify/Cargo.toml"))?;
    let version = manifest
        .lines()
        .find_map(|line| line.strip_prefix("version = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .context("crates/clawlet-verify/Cargo.toml: no `version = \"…\"` line")?;
    let name = format!("clawlet-verify-{version}");
    let crate_file = root.join(format!("target/package/{name}.crate"));
    // Outside the workspace, or cargo would take the crate for a member that is not listed; at a
    // fixed path, so that cargo sees the same package each run and rebuilds nothing it has built.
    let unpacked = std::env::temp_dir().join("clawlet-xtask-verify-package");
    if unpacked.exists() {
        fs::remove_dir_all(&unpacked)?;
    }
    fs::create_dir_all(&unpacked)?;
    let result = (|| {
        exec(
            Command::new("tar")
                .arg("-xzf")
                .arg(&crate_file)
                .arg("-C")
                .arg(&unpacked),
        )?;
        let dir = unpacked.join(&name);
        // The .crate keeps its files' times, and cargo judges freshness by them: without this,
        // a test binary built from another unpacked copy (whose path it has compiled in) would
        // be taken for this one's.
        exec(
            Command::new("find")
                .arg(&dir)
                .args(["-type", "f", "-exec", "touch", "{}", "+"]),
        )?;
        // The workspace's target folder: the packaged lock holds the workspace's versions, so
        // every dependency the tests just built is reused and only the crate itself compiles.
        let target = root.join("target");
        // Every feature, as a user reaching for the public-key presets builds it: the vector
        // runner fails under CI=true when the Ed25519 and P-256 cases cannot run.
        for what in [&["--all-targets"][..], &["--doc"]] {
            exec(
                cargo()
                    .args(["test", "--offline", "--locked", "--all-features"])
                    .args(what)
                    .env("CARGO_TARGET_DIR", &target)
                    .current_dir(&dir),
            )?;
        }
        Ok(())
    })();
    let _ = fs::remove_dir_all(&unpacked);
    result
}
