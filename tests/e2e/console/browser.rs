//! Headless Chromium for the console tests, driven over WebDriver by Debian's `chromedriver`.
//!
//! Each browser runs in a process group of its own under `timeout`, so that chromedriver and every
//! Chromium process it starts end when the test ends, and at the latest after [`LIFETIME`] when the
//! test process itself was killed. Chromium is started with the flags that keep it off the
//! network: a test machine has no route out, and a browser phoning home floods the closed network.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use crate::harness::skip_or_fail;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The longest a chromedriver and its browsers may live, whatever happens to the test.
const LIFETIME: &str = "240";

/// How long chromedriver may take to say it listens (a bound, not an expectation).
const START_BOUND: Duration = Duration::from_secs(30);

/// Only one browser at a time: each is a few hundred MiB and the machine may have two cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A headless Chromium session; `close` it at the end of the test (dropping it kills it).
pub(crate) struct Browser {
    pub(crate) client: Client,
    driver: Child,
    shots: PathBuf,
    _profile: tempfile::TempDir,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Browser {
    /// Starts chromedriver and a Chromium session, or says why it cannot (a failure under CI).
    pub(crate) async fn start(test: &str) -> Option<Browser> {
        let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
            .into_iter()
            .filter(|path| !Path::new(path).exists())
            .collect();
        if !missing.is_empty() {
            skip_or_fail(&format!(
                "{} missing (apt-get install chromium chromium-driver)",
                missing.join(" and ")
            ));
            return None;
        }
        let turn = ONE_AT_A_TIME.lock().await;
        let (driver, port) = spawn_driver_retrying();
        let profile = tempfile::tempdir().expect("temporary Chromium profile");
        let capabilities = json!({
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "timeouts": { "pageLoad": 20_000, "script": 10_000, "implicit": 0 },
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("the capabilities are a JSON object")
        };
        Some(Browser {
            client: connect(port, capabilities).await,
            driver,
            shots: screenshot_dir().join(test),
            _profile: profile,
            _turn: turn,
        })
    }

    /// Saves a PNG of the page as it is now, for a person to look at.
    pub(crate) async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("taking a screenshot");
        std::fs::create_dir_all(&self.shots).expect("creating the screenshot folder");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("writing the screenshot");
    }

    /// Goes to `url` and waits for the page to load.
    pub(crate) async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|err| panic!("opening {url}: {err}"));
    }

    /// The text of the whole page.
    pub(crate) async fn text(&self) -> String {
        self.client
            .find(Locator::Css("body"))
            .await
            .expect("the page has a body")
            .text()
            .await
            .expect("reading the page text")
    }

    /// Waits at most `bound` for an element matching `css` whose text contains `needle`.
    pub(crate) async fn wait_for_text(&self, css: &str, needle: &str, bound: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            if let Ok(elements) = self.client.find_all(Locator::Css(css)).await {
                for element in elements {
                    if element.text().await.is_ok_and(|text| text.contains(needle)) {
                        return true;
                    }
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            // WebDriver has no "wait for text" command; asking again after a short pause is
            // the protocol's own way (fantoccini's `wait` does the same for elements).
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Evaluates `script` (a function body that `return`s) in the page.
    pub(crate) async fn eval(&self, script: &str) -> serde_json::Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|err| panic!("running {script:?}: {err}"))
    }

    /// Ends the session, then chromedriver and everything it started.
    pub(crate) async fn close(self) {
        let client = self.client.clone();
        let _ = tokio::time::timeout(Duration::from_secs(10), client.close()).await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // `timeout` leads a process group of its own; chromedriver and Chromium are in it.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Where the screenshots go: the test's output directory, kept after the run.
pub(crate) fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots")
}

/// chromedriver has once, on a loaded CI machine, gone silent at start; a second start is a
/// fresh process, so up to three are tried before the test fails.
fn spawn_driver_retrying() -> (Child, u16) {
    let mut failures = Vec::new();
    for _ in 0..3 {
        match spawn_driver() {
            Ok(started) => return started,
            Err(why) => failures.push(why),
        }
    }
    panic!("chromedriver did not start: {}", failures.join("; "))
}

/// Starts chromedriver on a port of its choosing and reads that port from its first lines.
fn spawn_driver() -> Result<(Child, u16), String> {
    let mut child = Command::new("timeout")
        .args(["--signal=KILL", LIFETIME, CHROMEDRIVER, "--port=0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting chromedriver under timeout");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        // Read to the end so that chromedriver never blocks on a full pipe.
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(port) = line
                .split("started successfully on port ")
                .nth(1)
                .and_then(|rest| rest.trim_end_matches('.').parse::<u16>().ok())
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(port);
            }
        }
    });
    match rx.recv_timeout(START_BOUND) {
        Ok(port) => Ok((child, port)),
        Err(_) => {
            let status = child.try_wait();
            let _ = child.kill();
            let _ = child.wait();
            Err(format!(
                "no port announced within {START_BOUND:?} (exit status then: {status:?})"
            ))
        }
    }
}

async fn connect(port: u16, capabilities: serde_json::Map<String, serde_json::Value>) -> Client {
    let mut builder = ClientBuilder::new(HttpConnector::new());
    builder.capabilities(capabilities);
    let url = format!("http://127.0.0.1:{port}");
    match tokio::time::timeout(START_BOUND, builder.connect(&url)).await {
        Ok(Ok(client)) => client,
        Ok(Err(err)) => panic!("starting a Chromium session through chromedriver: {err}"),
        Err(_) => panic!("chromedriver did not start Chromium within {START_BOUND:?}"),
    }
}
