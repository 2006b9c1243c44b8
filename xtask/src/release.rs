//! `cargo xtask release [--profile NAME]`: what an operator installs, built into `target/dist/`.
//!
//! - `clawlet-webhookd-<version>-<target>.tar.gz`: the binary, README, licences, the example
//!   configuration, shell completions and man pages;
//! - `clawlet-webhookd_<version>_<arch>.deb`: the same for Debian, with the systemd unit (see
//!   `deb.rs`);
//! - `SHA256SUMS` over both.
//!
//! The release profile (fat LTO) is what ships. Any other profile (`--profile dev`, as
//! `cargo xtask dist-check` uses in CI) builds the same artefacts into `target/dist/<profile>/`
//! from that profile's binary, stripped here, to check the packaging without the long build.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::docs::{self, BIN};
use crate::{capture, cargo, deb, exec, workspace_root};

/// Files shipped beside the binary in the tarball, relative to the workspace root.
const SHIPPED: &[&str] = &[
    "README.md",
    "LICENSE-MIT",
    "LICENSE-APACHE",
    "config/example.yaml",
];

/// The profile that ships.
pub(crate) const RELEASE: &str = "release";

/// What a release build produced.
#[derive(Debug)]
pub(crate) struct Dist {
    pub(crate) dir: PathBuf,
    pub(crate) tarball: PathBuf,
    pub(crate) deb: PathBuf,
    /// What `--version` printed after the name: `0.1.0 (abc1234)`.
    pub(crate) version: String,
    /// Every file the .deb installs, as an absolute path.
    pub(crate) deb_files: Vec<String>,
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    let profile = parse_profile(args, RELEASE, "usage: cargo xtask release [--profile NAME]")?;
    let dist = build(&profile)?;
    for path in [&dist.tarball, &dist.deb, &dist.dir.join("SHA256SUMS")] {
        println!("{}", path.display());
    }
    Ok(())
}

/// `[--profile NAME]`, or `default`.
pub(crate) fn parse_profile(args: &[String], default: &str, usage: &str) -> Result<String> {
    match args {
        [] => Ok(default.to_owned()),
        [flag, name] if flag == "--profile" => Ok(name.clone()),
        _ => bail!("{usage}"),
    }
}

/// Builds the binary with `profile` and packs every artefact.
pub(crate) fn build(profile: &str) -> Result<Dist> {
    let root = workspace_root();
    exec(
        cargo()
            .args(["build", "--locked", "-p", BIN, "--profile", profile])
            .current_dir(&root),
    )?;
    // Cargo names the dev profile's folder `debug`; every other profile's folder is its name.
    let out_dir = if profile == "dev" { "debug" } else { profile };
    let built = root.join("target").join(out_dir).join(BIN);

    // Asking the fresh binary for its version both names the artefacts and proves it runs.
    let version_line = capture(Command::new(&built).arg("--version"))?;
    let version = version_line
        .trim()
        .strip_prefix(&format!("{BIN} "))
        .with_context(|| format!("unexpected --version output: {version_line:?}"))?
        .to_owned();
    let package_version = version
        .split_whitespace()
        .next()
        .with_context(|| format!("no version in {version_line:?}"))?;
    let target = host_target()?;

    let dist = if profile == RELEASE {
        root.join("target/dist")
    } else {
        root.join("target/dist").join(profile)
    };
    fs::create_dir_all(&dist).with_context(|| format!("creating {}", dist.display()))?;
    let binary = dist.join(format!(".{BIN}.stripped"));
    fs::copy(&built, &binary).with_context(|| format!("copying {}", built.display()))?;
    if profile == RELEASE {
        ensure_stripped(&binary)?;
    } else {
        exec(Command::new("strip").arg(&binary))?;
    }
    let docs = docs::render(&version)?;

    let tarball = tarball(&root, &dist, &binary, &docs, package_version, &target)?;

    let depends = deb::depends(&binary)?;
    let inputs = deb::Inputs {
        root: &root,
        binary: &binary,
        version: package_version,
        arch: deb::debian_arch(&target)?,
        depends: &depends,
        docs: &docs,
    };
    let stage = dist.join(".deb-stage");
    deb::stage(&stage, &inputs)?;
    let deb_path = dist.join(format!(
        "{}_{package_version}_{}.deb",
        deb::PACKAGE,
        inputs.arch
    ));
    deb::build(&stage, &deb_path)?;
    let deb_files = deb::entries(&inputs)?
        .into_iter()
        .map(|entry| format!("/{}", entry.path))
        .collect();
    fs::remove_dir_all(&stage)?;
    fs::remove_file(&binary)?;

    let mut sums = String::new();
    for file in [&tarball, &deb_path] {
        let digest = hex::encode(Sha256::digest(fs::read(file)?));
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        sums.push_str(&format!("{digest}  {name}\n"));
    }
    fs::write(dist.join("SHA256SUMS"), sums)?;
    Ok(Dist {
        dir: dist,
        tarball,
        deb: deb_path,
        version,
        deb_files,
    })
}

/// `clawlet-webhookd-<version>-<target>.tar.gz`, owned by root inside.
fn tarball(
    root: &Path,
    dist: &Path,
    binary: &Path,
    docs: &docs::Docs,
    version: &str,
    target: &str,
) -> Result<PathBuf> {
    let name = format!("{BIN}-{version}-{target}");
    let stage = dist.join(&name);
    if stage.exists() {
        fs::remove_dir_all(&stage).with_context(|| format!("removing {}", stage.display()))?;
    }
    for dir in ["config", "completions", "man"] {
        fs::create_dir_all(stage.join(dir))?;
    }
    fs::copy(binary, stage.join(BIN))?;
    for file in SHIPPED {
        fs::copy(root.join(file), stage.join(file)).with_context(|| format!("copying {file}"))?;
    }
    for (shell, file, script) in &docs.completions {
        // The bash script is installed under the command's bare name; say which shell it is for.
        let file = if file == BIN {
            format!("{BIN}.{shell}")
        } else {
            file.clone()
        };
        fs::write(stage.join("completions").join(file), script)?;
    }
    for (file, roff) in &docs.man_pages {
        fs::write(stage.join("man").join(file), roff)?;
    }
    let tarball = format!("{name}.tar.gz");
    exec(
        Command::new("tar")
            .args(["--owner=0", "--group=0", "-czf", &tarball, &name])
            .current_dir(dist),
    )?;
    fs::remove_dir_all(&stage)?;
    Ok(dist.join(tarball))
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
