//! The Debian package: a staging tree laid out here and packed by `dpkg-deb --build
//! --root-owner-group`, which needs nothing beyond dpkg (no cargo-deb to install in CI, no
//! fakeroot: the owner of every file is root whoever builds it).
//!
//! The package does not enable or start the service, whose credentials the operator has to
//! provide first (see the comments at the top of the unit). Its maintainer scripts do only what
//! the unit needs: when the unit names a `SupplementaryGroups=` group (through which the dynamic
//! user reads its configuration), `postinst` creates that group and gives `/etc/clawlet` and the
//! configuration the install steps' modes as dpkg stat overrides, so that upgrades keep them;
//! `postrm` drops the overrides on purge. The group stays after a purge, as Debian's system
//! groups do, since files elsewhere may still carry it.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use clap_complete::Shell;

use crate::docs::{BIN, Docs};

/// The package name, which is also the binary's.
pub(crate) const PACKAGE: &str = BIN;
/// Where the binary is installed; the unit in `deploy/` names the path of a manual install.
const BINARY_PATH: &str = "usr/bin/clawlet-webhookd";
const MANUAL_BINARY_PATH: &str = "/usr/local/bin/clawlet-webhookd";
/// The configuration the unit reads, shipped as the example and kept across upgrades (a conffile:
/// dpkg keeps the operator's edits and asks before replacing them).
pub(crate) const CONFIG_PATH: &str = "etc/clawlet/config.yaml";
/// The unit's place on a merged-/usr system; systemd reads it there on Debian 12 and later.
const UNIT_PATH: &str = "usr/lib/systemd/system/clawlet-webhookd.service";
/// The unit's `Documentation=` points here.
const DOC_DIR: &str = "usr/share/doc/clawlet-webhookd";
const MAN_DIR: &str = "usr/share/man/man1";

/// Shared libraries the binary may link, and the Debian package that ships each. A new one fails
/// the build until it is added here, so the package never installs without what it needs.
const SONAME_PACKAGES: &[(&str, &str)] = &[
    ("libc.so.6", "libc6"),
    ("libm.so.6", "libc6"),
    ("libgcc_s.so.1", "libgcc-s1"),
    ("ld-linux-x86-64.so.2", "libc6"),
    ("ld-linux-aarch64.so.1", "libc6"),
];

/// What one file of the package holds.
#[derive(Debug)]
pub(crate) enum Contents {
    /// A file of the repository or the build, copied as it is.
    Copy(PathBuf),
    /// Bytes made here: rendered, rewritten or compressed.
    Bytes(Vec<u8>),
}

/// One file of the package, at `path` below the root (no leading slash).
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) path: String,
    pub(crate) contents: Contents,
    pub(crate) mode: u32,
}

/// Everything the package is made of.
pub(crate) struct Inputs<'a> {
    /// The workspace root, where `deploy/`, `config/` and the licences are.
    pub(crate) root: &'a Path,
    /// The binary to ship, already stripped.
    pub(crate) binary: &'a Path,
    /// The package version (`0.1.0`).
    pub(crate) version: &'a str,
    /// The Debian architecture (`amd64`).
    pub(crate) arch: &'a str,
    /// The `Depends:` line's value.
    pub(crate) depends: &'a str,
    pub(crate) docs: &'a Docs,
}

/// The files the package installs, with their modes. The first entry is the binary.
pub(crate) fn entries(inputs: &Inputs<'_>) -> Result<Vec<Entry>> {
    let root = inputs.root;
    let file = |path: &str, contents, mode| Entry {
        path: path.to_owned(),
        contents,
        mode,
    };
    let mut entries = vec![
        file(BINARY_PATH, Contents::Copy(inputs.binary.to_owned()), 0o755),
        file(UNIT_PATH, Contents::Bytes(unit(root)?), 0o644),
        file(
            CONFIG_PATH,
            Contents::Copy(root.join("config/example.yaml")),
            0o644,
        ),
        file(
            &format!("{DOC_DIR}/README.md"),
            Contents::Copy(root.join("README.md")),
            0o644,
        ),
        file(
            &format!("{DOC_DIR}/copyright"),
            Contents::Bytes(copyright(root)?),
            0o644,
        ),
    ];
    for (shell, name, script) in &inputs.docs.completions {
        let dir = match shell {
            Shell::Bash => "usr/share/bash-completion/completions",
            Shell::Zsh => "usr/share/zsh/vendor-completions",
            Shell::Fish => "usr/share/fish/vendor_completions.d",
            other => bail!("no place for {other} completions in the Debian package"),
        };
        entries.push(file(
            &format!("{dir}/{name}"),
            Contents::Bytes(script.clone()),
            0o644,
        ));
    }
    for (name, roff) in &inputs.docs.man_pages {
        // Debian's man pages are compressed with `gzip -9n` (no name or time stamp inside).
        entries.push(file(
            &format!("{MAN_DIR}/{name}.gz"),
            Contents::Bytes(gzip(roff)?),
            0o644,
        ));
    }
    Ok(entries)
}

/// The unit as `deploy/` has it.
fn deploy_unit(root: &Path) -> Result<(PathBuf, String)> {
    let path = root.join("deploy/clawlet-webhookd.service");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok((path, text))
}

/// The group the unit's service reads its configuration through, if it names one.
pub(crate) fn service_group(root: &Path) -> Result<Option<String>> {
    let (path, text) = deploy_unit(root)?;
    let mut groups = text
        .lines()
        .filter_map(|line| line.strip_prefix("SupplementaryGroups="))
        .flat_map(str::split_whitespace);
    match (groups.next(), groups.next()) {
        (None, _) => Ok(None),
        (Some(group), None) => Ok(Some(group.to_owned())),
        (Some(_), Some(_)) => bail!(
            "{}: more than one SupplementaryGroups= group; the package creates one (xtask/src/deb.rs)",
            path.display()
        ),
    }
}

/// The unit from `deploy/`, pointed at the packaged binary, with a note of what the package did.
fn unit(root: &Path) -> Result<Vec<u8>> {
    let (path, text) = deploy_unit(root)?;
    let packaged = format!("/{BINARY_PATH}");
    let group =
        service_group(root)?.map_or_else(String::new, |g| format!(", and the group {g} exists"));
    let text = format!(
        "# Installed by the {PACKAGE} Debian package: the binary is {packaged},\n\
         # the example configuration /{CONFIG_PATH}{group}.\n\
         # Of the steps below, only the credentials and `systemctl enable --now {PACKAGE}` remain.\n\
         #\n{}",
        text.replace(MANUAL_BINARY_PATH, &packaged)
    );
    let starts_packaged = text
        .lines()
        .any(|line| line.starts_with("ExecStart=") && line.contains(&packaged));
    if !starts_packaged {
        bail!(
            "{}: no ExecStart= line names {MANUAL_BINARY_PATH}, so the packaged unit would not \
             start {packaged}; name the binary there, or change MANUAL_BINARY_PATH in xtask/src/deb.rs",
            path.display()
        );
    }
    Ok(text.into_bytes())
}

/// Debian's `copyright` file: the licence choice, then both licences in full.
fn copyright(root: &Path) -> Result<Vec<u8>> {
    let mut text = String::from(
        "clawlet-webhookd is licensed under the MIT licence or the Apache License 2.0, at your \
         option.\n",
    );
    for name in ["LICENSE-MIT", "LICENSE-APACHE"] {
        let licence =
            fs::read_to_string(root.join(name)).with_context(|| format!("reading {name}"))?;
        text.push_str(&format!("\n{name}:\n\n{licence}"));
    }
    Ok(text.into_bytes())
}

/// `DEBIAN/control`. `installed_kib` is the size of the installed files, which apt shows.
pub(crate) fn control(inputs: &Inputs<'_>, installed_kib: u64) -> String {
    format!(
        "Package: {PACKAGE}\n\
         Version: {version}\n\
         Architecture: {arch}\n\
         Maintainer: The clawlet-webhooks developers\n\
         Installed-Size: {installed_kib}\n\
         Depends: {depends}\n\
         Section: net\n\
         Priority: optional\n\
         Description: verified, durable webhook receiver\n \
         Receives webhooks from GitHub, Stripe, Standard Webhooks and custom HMAC\n \
         senders, verifies their signatures, stores them durably and hands them to\n \
         local agents. The service is installed but not enabled: edit\n \
         /{CONFIG_PATH}, provide the secrets, then enable clawlet-webhookd.service.\n",
        version = inputs.version,
        arch = inputs.arch,
        depends = inputs.depends,
    )
}

/// `postinst` and `postrm` for a service that reads its configuration through `group`.
fn maintainer_scripts(group: &str) -> [(&'static str, String); 2] {
    let config = format!("/{CONFIG_PATH}");
    let dir = Path::new(&config)
        .parent()
        .map_or_else(String::new, |d| d.display().to_string());
    let postinst = format!(
        "#!/bin/sh\n\
         # Generated by `cargo xtask release` (xtask/src/deb.rs).\n\
         set -e\n\
         if [ \"$1\" = configure ]; then\n\
         \x20   # The unit's SupplementaryGroups=: its dynamic user reads the configuration through it.\n\
         \x20   getent group {group} >/dev/null || addgroup --system --quiet {group}\n\
         \x20   # The install steps' modes, kept by dpkg across upgrades; an operator's own override stays.\n\
         \x20   if ! dpkg-statoverride --list {dir} >/dev/null; then\n\
         \x20       dpkg-statoverride --update --add root {group} 0750 {dir}\n\
         \x20   fi\n\
         \x20   if ! dpkg-statoverride --list {config} >/dev/null; then\n\
         \x20       dpkg-statoverride --update --add root {group} 0640 {config}\n\
         \x20   fi\n\
         fi\n"
    );
    let postrm = format!(
        "#!/bin/sh\n\
         # Generated by `cargo xtask release` (xtask/src/deb.rs).\n\
         set -e\n\
         if [ \"$1\" = purge ]; then\n\
         \x20   for path in {config} {dir}; do\n\
         \x20       if dpkg-statoverride --list \"$path\" >/dev/null; then\n\
         \x20           dpkg-statoverride --remove \"$path\"\n\
         \x20       fi\n\
         \x20   done\n\
         fi\n"
    );
    [("postinst", postinst), ("postrm", postrm)]
}

/// Writes the package's tree into `stage` (emptied first): the files, `DEBIAN/control`,
/// `DEBIAN/conffiles` and the maintainer scripts the unit needs.
pub(crate) fn stage(stage: &Path, inputs: &Inputs<'_>) -> Result<()> {
    if stage.exists() {
        fs::remove_dir_all(stage).with_context(|| format!("removing {}", stage.display()))?;
    }
    let mut installed_bytes = 0;
    for entry in entries(inputs)? {
        let dest = stage.join(&entry.path);
        make_dirs(stage, dest.parent().unwrap_or(stage))?;
        match &entry.contents {
            Contents::Copy(from) => {
                fs::copy(from, &dest).with_context(|| format!("copying {}", from.display()))?;
            }
            Contents::Bytes(bytes) => fs::write(&dest, bytes)?,
        }
        fs::set_permissions(&dest, fs::Permissions::from_mode(entry.mode))?;
        installed_bytes += fs::metadata(&dest)?.len();
    }
    let control_dir = stage.join("DEBIAN");
    make_dirs(stage, &control_dir)?;
    let installed_kib = installed_bytes.div_ceil(1024);
    for (name, text) in [
        ("control", control(inputs, installed_kib)),
        ("conffiles", format!("/{CONFIG_PATH}\n")),
    ] {
        let path = control_dir.join(name);
        fs::write(&path, text)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644))?;
    }
    if let Some(group) = service_group(inputs.root)? {
        for (name, script) in maintainer_scripts(&group) {
            let path = control_dir.join(name);
            fs::write(&path, script)?;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
        }
    }
    Ok(())
}

/// Creates `dir` and its parents up to `stage`, each 0755 whatever the umask, as dpkg installs them.
fn make_dirs(stage: &Path, dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for ancestor in dir.ancestors() {
        fs::set_permissions(ancestor, fs::Permissions::from_mode(0o755))?;
        if ancestor == stage {
            break;
        }
    }
    Ok(())
}

/// Packs a staged tree into `out` (`<package>_<version>_<arch>.deb`).
pub(crate) fn build(stage: &Path, out: &Path) -> Result<()> {
    crate::exec(
        Command::new("dpkg-deb")
            .args(["--build", "--root-owner-group"])
            .arg(stage)
            .arg(out),
    )
}

/// The Debian architecture for a Rust target triple.
pub(crate) fn debian_arch(target: &str) -> Result<&'static str> {
    match target.split('-').next() {
        Some("x86_64") => Ok("amd64"),
        Some("aarch64") => Ok("arm64"),
        _ => bail!("no Debian architecture known for {target}: add it in xtask/src/deb.rs"),
    }
}

/// The `Depends:` value for a binary: the package of each shared library it links, and the
/// newest glibc symbol version it uses as libc6's lower bound.
pub(crate) fn depends(binary: &Path) -> Result<String> {
    let headers = crate::capture(Command::new("objdump").arg("-p").arg(binary))?;
    let symbols = crate::capture(Command::new("objdump").arg("-T").arg(binary))?;
    depends_from(&headers, &symbols)
}

/// [`depends`] over the text of `objdump -p` and `objdump -T`.
fn depends_from(headers: &str, symbols: &str) -> Result<String> {
    let mut packages: Vec<&str> = Vec::new();
    for soname in headers.lines().filter_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some("NEEDED"))
            .then(|| words.next())
            .flatten()
    }) {
        let Some(&(_, package)) = SONAME_PACKAGES.iter().find(|(s, _)| *s == soname) else {
            bail!(
                "the binary links {soname}: add the Debian package that ships it to \
                 SONAME_PACKAGES in xtask/src/deb.rs"
            );
        };
        if !packages.contains(&package) {
            packages.push(package);
        }
    }
    let glibc = symbols
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter_map(|word| word.strip_prefix("GLIBC_"))
        .filter_map(|version| {
            let parts: Option<Vec<u32>> = version.split('.').map(|p| p.parse().ok()).collect();
            parts
        })
        .max();
    let line = packages
        .iter()
        .map(|&package| match (&glibc, package) {
            (Some(v), "libc6") => {
                let v: Vec<String> = v.iter().map(u32::to_string).collect();
                format!("libc6 (>= {})", v.join("."))
            }
            _ => package.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ");
    if line.is_empty() {
        bail!("objdump -p named no shared library: is the binary statically linked?");
    }
    Ok(line)
}

/// `gzip -9n`: what Debian uses for man pages, with no name or time stamp so the bytes depend on
/// the input alone.
fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut child = Command::new("gzip")
        .args(["-9n", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("could not start gzip")?;
    let mut stdin = child.stdin.take().context("gzip has no stdin")?;
    let input = data.to_vec();
    // Written from a thread: gzip's output pipe must be read while its input is still written.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output()?;
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("the thread writing to gzip panicked"))??;
    if !out.status.success() {
        bail!("gzip failed with {}", out.status);
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests;
