//! `cargo xtask deploy-check`: the files in `deploy/` work as the install steps use them.
//!
//! - `systemd-analyze verify` on the unit;
//! - `nginx -t` on `deploy/nginx.conf` (with a certificate made for the check), which CI runs
//!   with Debian 12's nginx package;
//! - the daemon started the way the unit starts it: its `ExecStart=` line, as an unprivileged
//!   user in the unit's group, with its environment and credentials, on a copy of `/etc/clawlet`
//!   with the modes the install steps give it, and `/health` answering.
//!
//! Needs root (to create the group, set owners and change user) and `systemd-analyze`, `nginx`,
//! `openssl` and `setpriv`; `.ci/run` installs what Debian 12 lacks. It changes nothing outside a
//! temporary directory, except the `clawlet` group that the install steps create, which it
//! removes again when it created it.

use std::fs;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::{PermissionsExt as _, chown};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{capture, workspace_root};

const UNIT: &str = "deploy/clawlet-webhookd.service";
const NGINX: &str = "deploy/nginx.conf";
const EXAMPLE: &str = "config/example.yaml";
/// The group the install steps create and the unit names in `SupplementaryGroups=`.
const GROUP: &str = "clawlet";
/// A uid and gid from the range systemd gives dynamic users (61184 to 65519), as the unit's
/// `DynamicUser=yes` would; nothing on the machine owns them.
const DYNAMIC_ID: u32 = 61_917;
/// Where the unit's paths point, and what they become inside the check's directory.
const INSTALLED_BINARY: &str = "/usr/local/bin/clawlet-webhookd";
const CONFIG_DIR: &str = "/etc/clawlet/";
const STATE_DIR: &str = "/var/lib/clawlet-webhookd";
/// How long the daemon may take to start and to stop (a bound, not an expectation).
const BOUND: Duration = Duration::from_secs(30);

pub(crate) fn run(args: &[String]) -> Result<()> {
    let mut binary = workspace_root().join("target/debug/clawlet-webhookd");
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--binary" => {
                binary = PathBuf::from(rest.next().context("--binary needs a path")?);
            }
            other => bail!("deploy-check: unknown argument `{other}` (takes --binary PATH)"),
        }
    }
    if !binary.is_file() {
        bail!(
            "{}: no daemon binary to run; build it with `cargo build -p clawlet-webhookd` or name one with --binary",
            binary.display()
        );
    }
    if capture(Command::new("id").arg("-u"))?.trim() != "0" {
        bail!("deploy-check needs root: it creates a group, sets owners and changes user");
    }
    let root = workspace_root();
    let unit = fs::read_to_string(root.join(UNIT)).with_context(|| format!("reading {UNIT}"))?;
    let scratch = Scratch::new()?;

    println!("==> systemd-analyze verify {UNIT}");
    verify_unit(&unit, &scratch.0)?;
    println!("==> nginx -t on {NGINX}");
    check_nginx(&root, &scratch.0)?;
    println!("==> {UNIT}'s ExecStart= as a dynamic user, with the install steps' modes");
    let created_group = ensure_group()?;
    let served = serve_as_the_unit(&unit, &root, &binary, &scratch.0);
    if created_group {
        // Leave the machine as it was; the daemon has stopped by now.
        let _ = Command::new("groupdel").arg(GROUP).status();
    }
    served?;
    println!("deploy-check: the unit, the nginx front and the installed modes all work");
    Ok(())
}

/// A directory removed when the check ends, whichever way it ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("clawlet-deploy-check-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        // The unprivileged user must be able to walk through it, as through `/`.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn verify_unit(unit: &str, scratch: &Path) -> Result<()> {
    // `verify` wants the unit's own name; it checks the syntax, every key and that ExecStart=
    // names an executable.
    let dir = scratch.join("systemd");
    fs::create_dir_all(&dir)?;
    let path = dir.join("clawlet-webhookd.service");
    fs::write(&path, unit)?;
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .context("running systemd-analyze (Debian: apt-get install systemd)")?;
    let said = String::from_utf8_lossy(&out.stderr);
    // A warning (an unknown key, a misspelt section) is a finding too: systemd ignores such
    // lines and the unit runs without them.
    if !out.status.success() || !said.trim().is_empty() {
        bail!("systemd-analyze verify {UNIT} ({}):\n{said}", out.status);
    }
    Ok(())
}

fn check_nginx(root: &Path, scratch: &Path) -> Result<()> {
    let dir = scratch.join("nginx");
    fs::create_dir_all(dir.join("logs"))?;
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    capture(
        Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .arg("ec_paramgen_curve:prime256v1")
            .args(["-nodes", "-days", "1", "-subj", "/CN=hooks.example.com"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert),
    )
    .context("making a certificate for the check (Debian: apt-get install openssl)")?;
    let site = fs::read_to_string(root.join(NGINX)).with_context(|| format!("reading {NGINX}"))?;
    let live = "/etc/letsencrypt/live/hooks.example.com/";
    for file in ["fullchain.pem", "privkey.pem"] {
        if !site.contains(&format!("{live}{file}")) {
            bail!("{NGINX}: expected the certificate at {live}{file}; update deploy-check with it");
        }
    }
    let site = site
        .replace(&format!("{live}fullchain.pem"), &cert.display().to_string())
        .replace(&format!("{live}privkey.pem"), &key.display().to_string());
    fs::write(dir.join("site.conf"), site)?;
    // The file is a site, included inside `http {}` as Debian's nginx.conf includes
    // sites-enabled/*; this is the least around it that nginx needs.
    let main = format!(
        "pid {d}/nginx.pid;\nerror_log stderr;\nevents {{}}\nhttp {{\n    access_log off;\n    \
         client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n    include {d}/site.conf;\n}}\n",
        d = dir.display()
    );
    fs::write(dir.join("nginx.conf"), main)?;
    let out = Command::new("nginx")
        .arg("-t")
        .arg("-p")
        .arg(&dir)
        .args(["-e", "stderr", "-c"])
        .arg(dir.join("nginx.conf"))
        .output()
        .context("running nginx (Debian: apt-get install nginx)")?;
    let said = String::from_utf8_lossy(&out.stderr);
    // nginx -v prints on stderr.
    let version = Command::new("nginx")
        .arg("-v")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_owned())
        .unwrap_or_default();
    if !out.status.success() || said.contains("[warn]") || said.contains("[emerg]") {
        bail!("nginx -t on {NGINX} failed with {version}:\n{said}");
    }
    println!("{}", version.trim());
    Ok(())
}

/// Creates the install steps' group when it is missing; true when it did.
fn ensure_group() -> Result<bool> {
    let known = Command::new("getent")
        .args(["group", GROUP])
        .stdout(Stdio::null())
        .status()
        .context("running getent")?
        .success();
    if known {
        return Ok(false);
    }
    crate::exec(Command::new("groupadd").args(["--system", GROUP]))?;
    Ok(true)
}

fn group_id() -> Result<u32> {
    let line = capture(Command::new("getent").args(["group", GROUP]))?;
    line.split(':')
        .nth(2)
        .and_then(|gid| gid.trim().parse().ok())
        .with_context(|| format!("getent group {GROUP}: unexpected line {line:?}"))
}

/// What the check takes from the unit: its start line, environment and credential names.
struct UnitStart {
    /// The shell script of `ExecStart=/bin/sh -ec '…'`, with systemd's `$$` made `$`.
    script: String,
    environment: Vec<(String, String)>,
    credentials: Vec<String>,
}

fn read_unit(unit: &str) -> Result<UnitStart> {
    let mut script = None;
    let mut environment = Vec::new();
    let mut credentials = Vec::new();
    let mut groups = Vec::new();
    for line in unit.lines().map(str::trim) {
        if let Some(value) = line.strip_prefix("ExecStart=") {
            let inner = value
                .strip_prefix("/bin/sh -ec '")
                .and_then(|v| v.strip_suffix('\''))
                .with_context(|| {
                    format!(
                        "{UNIT}: ExecStart= is no longer `/bin/sh -ec '…'`; update deploy-check"
                    )
                })?;
            script = Some(inner.replace("$$", "$"));
        } else if let Some(value) = line.strip_prefix("Environment=") {
            let (name, value) = value
                .split_once('=')
                .with_context(|| format!("{UNIT}: `{line}` is not NAME=value"))?;
            environment.push((name.to_owned(), value.to_owned()));
        } else if let Some(value) = line.strip_prefix("LoadCredentialEncrypted=") {
            let (name, _) = value
                .split_once(':')
                .with_context(|| format!("{UNIT}: `{line}` is not NAME:PATH"))?;
            credentials.push(name.to_owned());
        } else if let Some(value) = line.strip_prefix("SupplementaryGroups=") {
            groups.extend(value.split_whitespace().map(str::to_owned));
        }
    }
    if !groups.iter().any(|g| g == GROUP) {
        bail!(
            "{UNIT}: SupplementaryGroups= does not name {GROUP}, the group that may read /etc/clawlet"
        );
    }
    let script = script.with_context(|| format!("{UNIT}: no ExecStart="))?;
    if credentials.is_empty() {
        bail!("{UNIT}: no LoadCredentialEncrypted= line");
    }
    Ok(UnitStart {
        script,
        environment,
        credentials,
    })
}

fn set_mode(path: &Path, mode: u32, uid: u32, gid: u32) -> Result<()> {
    chown(path, Some(uid), Some(gid)).with_context(|| format!("chown {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", path.display()))
}

fn serve_as_the_unit(unit: &str, root: &Path, binary: &Path, scratch: &Path) -> Result<()> {
    let start = read_unit(unit)?;
    let gid = group_id()?;
    let tree = scratch.join("root");

    // The install steps, one for one: the binary 0755 root; /etc/clawlet 0750 root:clawlet; the
    // configuration 0640 root:clawlet.
    let bin = tree.join("usr/local/bin/clawlet-webhookd");
    fs::create_dir_all(bin.parent().unwrap_or(&tree))?;
    fs::copy(binary, &bin).with_context(|| format!("copying {}", binary.display()))?;
    set_mode(&bin, 0o755, 0, 0)?;
    let etc = tree.join("etc/clawlet");
    fs::create_dir_all(&etc)?;
    set_mode(&etc, 0o750, 0, gid)?;
    let config = etc.join("config.yaml");
    fs::copy(root.join(EXAMPLE), &config)?;
    set_mode(&config, 0o640, 0, gid)?;
    // What systemd provides at start: the state directory, 0700 and the dynamic user's, and
    // each decrypted credential in a directory only that user can read.
    let state = tree.join(STATE_DIR.trim_start_matches('/'));
    fs::create_dir_all(&state)?;
    set_mode(&state, 0o700, DYNAMIC_ID, DYNAMIC_ID)?;
    let credentials = tree.join("run/credentials/clawlet-webhookd.service");
    fs::create_dir_all(&credentials)?;
    for name in &start.credentials {
        let file = credentials.join(name);
        // A whsec_<base64> value suits every kind: Standard Webhooks secrets must have that
        // form, and the others take any text. The newline is what `systemd-ask-password`
        // without -n would leave, and the unit's shell drops it.
        fs::write(&file, format!("{CREDENTIAL_VALUE}\n"))?;
        set_mode(&file, 0o400, DYNAMIC_ID, DYNAMIC_ID)?;
    }
    set_mode(&credentials, 0o500, DYNAMIC_ID, DYNAMIC_ID)?;

    // Without the group, the configuration is out of reach: the modes, not luck, let the
    // service read it.
    let denied = setpriv(&[])
        .arg("cat")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("running setpriv")?;
    if denied.success() {
        bail!(
            "{}: readable without the {GROUP} group; the check's modes are wrong",
            config.display()
        );
    }

    let script = start
        .script
        .replace(INSTALLED_BINARY, &bin.display().to_string())
        .replace(CONFIG_DIR, &format!("{}/", etc.display()));
    let mut cmd = setpriv(&[gid]);
    cmd.args(["/bin/sh", "-ec", &script])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("CREDENTIALS_DIRECTORY", &credentials)
        // Loopback and any free port, so the check never collides with a running daemon.
        .env("CLAWLET_WEBHOOKS__HOST", "127.0.0.1")
        .env("CLAWLET_WEBHOOKS__PORT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, value) in &start.environment {
        cmd.env(name, value.replace(STATE_DIR, &state.display().to_string()));
    }
    let mut child = cmd.spawn().context("starting the daemon through setpriv")?;
    let result = watch(&mut child, &state).and_then(|addr| secrets_arrived(&bin, addr));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + BOUND;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    result?;
    match status {
        Some(status) if status.success() => Ok(()),
        Some(status) => bail!("the daemon exited with {status} on SIGTERM"),
        None => bail!("the daemon did not stop within {BOUND:?} of SIGTERM"),
    }
}

/// `setpriv` as the dynamic user, in `groups` only, with no capabilities and no way to gain any.
fn setpriv(groups: &[u32]) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={DYNAMIC_ID}"))
        .arg(format!("--regid={DYNAMIC_ID}"));
    if groups.is_empty() {
        cmd.arg("--clear-groups");
    } else {
        let list: Vec<String> = groups.iter().map(u32::to_string).collect();
        cmd.arg(format!("--groups={}", list.join(",")));
    }
    cmd.args(["--inh-caps=-all", "--no-new-privs", "--"]);
    cmd
}

/// The secret every credential holds, and the example's handler each one is for.
const CREDENTIAL_VALUE: &str = "whsec_ZGVwbG95LWNoZWNrLXNlY3JldA==";
const HANDLERS: [(&str, &str); 4] = [
    ("github", "/webhook/github"),
    ("stripe", "/webhook/stripe"),
    ("custom", "/webhook/custom"),
    ("standard", "/webhook/myservice"),
];

/// Every example handler accepts a delivery signed with the credential's value (not with the
/// example's `:-` fallback), so each credential reached the configuration.
fn secrets_arrived(bin: &Path, addr: SocketAddr) -> Result<()> {
    for (provider, path) in HANDLERS {
        let out = Command::new(bin)
            .args(["send", provider, "--secret", CREDENTIAL_VALUE, "--url"])
            .arg(format!("http://{addr}{path}"))
            .env_remove("CLAWLET_SEND_SECRET")
            .output()
            .context("running clawlet-webhookd send")?;
        let said = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            bail!(
                "a {provider} delivery signed with its credential was refused, so the credential \
                 did not reach the configuration:\n{said}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        println!(
            "send {provider} {path}: {}",
            said.lines().next().unwrap_or_default()
        );
    }
    Ok(())
}

/// Waits for the daemon's listening line, then checks that it runs as the dynamic user, that
/// `/health` answers 200 and that the journal is in the state directory.
fn watch(child: &mut std::process::Child, state: &Path) -> Result<SocketAddr> {
    let stderr = child.stderr.take().context("the daemon's stderr")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("  daemon: {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + BOUND;
    let addr = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(at) = line.find("listening on http://") {
                    let rest = &line[at + "listening on http://".len()..];
                    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                    break rest[..end]
                        .parse::<SocketAddr>()
                        .with_context(|| format!("reading the address in {line:?}"))?;
                }
            }
            Err(_) => bail!("the daemon did not start (its log is above)"),
        }
    };
    let status = fs::read_to_string(format!("/proc/{}/status", child.id()))?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().next())
        .unwrap_or_default();
    if uid != DYNAMIC_ID.to_string() {
        bail!("the daemon runs as uid {uid}, not the unprivileged {DYNAMIC_ID}");
    }
    let answer = get(addr, "/health")?;
    if !answer.starts_with("HTTP/1.1 200") {
        bail!("GET /health answered:\n{answer}");
    }
    println!("GET /health: {}", answer.lines().last().unwrap_or_default());
    let journal = state.join(".clawlet/webhooks.db");
    if !journal.is_file() {
        bail!(
            "{}: the journal is not in the state directory",
            journal.display()
        );
    }
    Ok(addr)
}

/// One HTTP/1.1 GET on a fresh connection; the whole answer as text.
fn get(addr: SocketAddr, path: &str) -> Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, BOUND)?;
    stream.set_read_timeout(Some(BOUND))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}
