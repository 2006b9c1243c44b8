//! Runs the per-preset vectors of `testdata/signatures/` through the presets.
//!
//! The vectors come from `testdata/sdk/generate.py`: where a sender publishes an SDK, that SDK
//! signed them and answered every case (`library_results`). These tests never call an SDK; they
//! check that each recorded answer still holds for this crate, and that the files keep the shape
//! `testdata/README.md` documents, so a broken or hand-edited file fails here rather than in the
//! daemon's end-to-end tests that replay the same cases.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use clawlet_verify::presets::{self, Preset};
use clawlet_verify::scheme::{Key, Request, Verifier};
use clawlet_verify::{Secret, Tolerance, UnixTime, Verified, VerifyError, handshake};
use serde::Deserialize;

const SIGNATURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/signatures");

/// Each vector file and the preset its cases run through. `hmac-sha256.json` tests the
/// primitive, not a preset (see `hmac_sha256_vectors` in main.rs).
const FILES: &[(&str, &str)] = &[
    ("slack.json", "slack"),
    ("zoom.json", "zoom"),
    ("shopify.json", "shopify"),
    ("gitlab.json", "gitlab"),
    ("linear.json", "linear"),
    ("paddle.json", "paddle"),
    ("twilio.json", "twilio"),
    ("square.json", "square"),
    ("hubspot.json", "hubspot"),
    ("pagerduty.json", "pagerduty"),
    ("mailgun.json", "mailgun"),
    ("meta.json", "meta"),
    ("bitbucket.json", "bitbucket"),
    ("gitea.json", "gitea"),
    ("forgejo.json", "forgejo"),
    ("typeform.json", "typeform"),
    ("sentry.json", "sentry"),
    ("vercel.json", "vercel"),
    ("calendly.json", "calendly"),
    ("intercom.json", "intercom"),
    ("coinbase.json", "coinbase"),
    ("twitter.json", "twitter"),
    ("msgraph.json", "msgraph"),
    ("dropbox.json", "dropbox"),
    ("discord.json", "discord"),
    ("sendgrid.json", "sendgrid"),
    ("standard.json", "standard"),
    ("github-githubkit.json", "github"),
    ("stripe.json", "stripe"),
    ("standard-webhooks.json", "standard"),
];

/// Files written before `generate.py`, by hand from published vectors and library tests: they
/// carry no `preset` or `method`, and `stripe.json` varies the tolerance on purpose.
const HAND_WRITTEN: &[&str] = &["stripe.json", "standard-webhooks.json"];

/// Files checked elsewhere in this test binary, against the scheme modules rather than presets:
/// the HMAC primitive, and GitHub's legacy SHA-1 and empty-body rules, which the `github` module
/// adds to the preset.
const NOT_PRESET_FILES: &[&str] = &["hmac-sha256.json", "github.json"];

/// The reject codes a vector may name.
const CODES: &[&str] = &[
    "mismatch",
    "timestamp_too_old",
    "timestamp_too_new",
    "malformed_header",
    "missing_header",
    "no_signature_for_scheme",
    "body_hash_mismatch",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default)]
    preset: Option<String>,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    secrets: Option<Vec<String>>,
    #[serde(default)]
    public_key: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    body_file: Option<String>,
    #[serde(default)]
    now: Option<i64>,
    #[serde(default)]
    tolerance: Option<u64>,
    expect: Expect,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    quirk: bool,
    #[serde(default)]
    handshake: Option<HandshakeCase>,
    reason: String,
    #[serde(default)]
    library_results: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Expect {
    Accept,
    Reject,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HandshakeCase {
    kind: HandshakeKind,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    verify_token: Option<String>,
    /// The answer the receiver gives; `null` when it must refuse.
    response: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum HandshakeKind {
    SlackUrlVerification,
    ZoomUrlValidation,
    DiscordPing,
    MetaSubscribe,
    TwitterCrc,
    MsgraphValidation,
    DropboxChallenge,
}

impl HandshakeKind {
    /// Handshakes that arrive unsigned: the case checks the answer only.
    fn unsigned(self) -> bool {
        matches!(
            self,
            HandshakeKind::MetaSubscribe
                | HandshakeKind::TwitterCrc
                | HandshakeKind::MsgraphValidation
                | HandshakeKind::DropboxChallenge
        )
    }
}

impl Case {
    fn body(&self) -> Result<Vec<u8>, String> {
        match (&self.body_file, &self.body) {
            (Some(file), None) => {
                let path = Path::new(SIGNATURES).join(file);
                std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
            }
            (None, Some(body)) => Ok(body.clone().into_bytes()),
            _ => Err("exactly one of body and body_file must be given".into()),
        }
    }

    fn secrets(&self) -> Vec<&str> {
        match (&self.secret, &self.secrets) {
            (Some(one), None) => vec![one.as_str()],
            (None, Some(many)) => many.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        }
    }

    fn headers(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

fn load(file: &str) -> Result<Vec<Case>, String> {
    let path = Path::new(SIGNATURES).join(file);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let cases: Vec<Case> = serde_json::from_str(&text).map_err(|e| format!("{file}: {e}"))?;
    if cases.is_empty() {
        return Err(format!("{file}: no cases"));
    }
    Ok(cases)
}

fn load_all() -> Vec<(&'static str, &'static Preset, Vec<Case>)> {
    let mut failures = Vec::new();
    let mut all = Vec::new();
    for &(file, kind) in FILES {
        let Some(preset) = presets::by_name(kind) else {
            failures.push(format!("{file}: no preset named {kind}"));
            continue;
        };
        match load(file) {
            Ok(cases) => all.push((file, preset, cases)),
            Err(e) => failures.push(e),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    all
}

/// The files were written by generate.py or by hand before it: their shape is what the README
/// documents, so the daemon's end-to-end tests can rely on it too.
fn shape_errors(file: &str, kind: &str, cases: &[Case]) -> Vec<String> {
    let mut errors = Vec::new();
    let mut names = BTreeSet::new();
    let generated = !HAND_WRITTEN.contains(&file);
    for case in cases {
        let mut err = |what: String| errors.push(format!("{file}/{}: {what}", case.name));
        if !names.insert(case.name.as_str()) {
            err("duplicate name".into());
        }
        if case.reason.trim().is_empty() {
            err("empty reason".into());
        }
        if let Err(e) = case.body() {
            err(e);
        }
        if case.now.is_none() {
            err("no now".into());
        }
        let has_secret = !case.secrets().is_empty();
        if has_secret == case.public_key.is_some() {
            err("exactly one of secret, secrets and public_key must be given".into());
        }
        if case.secret.is_some() && case.secrets.is_some() {
            err("both secret and secrets".into());
        }
        if let Some(code) = &case.code {
            if !CODES.contains(&code.as_str()) {
                err(format!("unknown code {code}"));
            }
            if case.expect == Expect::Accept {
                err("an accept case carries a reject code".into());
            }
        }
        if generated {
            if case.preset.as_deref() != Some(kind) {
                err(format!(
                    "preset is {:?}, the file is for {kind}",
                    case.preset
                ));
            }
            if case.method.is_none() {
                err("no method".into());
            }
        }
        if case.quirk && case.library_results.is_empty() {
            err("quirk without library_results to disagree with".into());
        }
    }
    errors
}

#[test]
fn vector_files_parse_and_have_the_documented_shape() {
    let mut errors = Vec::new();
    for (file, preset, cases) in load_all() {
        errors.extend(shape_errors(file, preset.kind, &cases));
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn every_preset_and_every_file_is_covered() {
    let listed: BTreeSet<&str> = FILES.iter().map(|(_, kind)| *kind).collect();
    let missing: Vec<&str> = presets::ALL
        .iter()
        .map(|p| p.kind)
        .filter(|kind| !listed.contains(kind))
        .collect();
    assert!(missing.is_empty(), "presets without vectors: {missing:?}");

    let known: BTreeSet<&str> = FILES
        .iter()
        .map(|(file, _)| *file)
        .chain(NOT_PRESET_FILES.iter().copied())
        .collect();
    let on_disk: Vec<String> = std::fs::read_dir(SIGNATURES)
        .unwrap_or_else(|e| panic!("{SIGNATURES}: {e}"))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    let unlisted: Vec<&String> = on_disk
        .iter()
        .filter(|name| !known.contains(name.as_str()))
        .collect();
    assert!(
        unlisted.is_empty(),
        "vector files no test reads: {unlisted:?}"
    );
}

/// A generated case carries the preset's own window, so a receiver configured with the preset's
/// defaults (the daemon's end-to-end tests) answers exactly as the vector says.
#[test]
fn vector_tolerances_are_the_preset_defaults() {
    let mut errors = Vec::new();
    for (file, preset, cases) in load_all() {
        if HAND_WRITTEN.contains(&file) {
            continue;
        }
        let default = preset.scheme.timestamp.as_ref().map(|rule| rule.tolerance);
        for case in &cases {
            let unsigned = case.handshake.as_ref().is_some_and(|h| h.kind.unsigned());
            let vector = case
                .tolerance
                .map(|s| Tolerance::both(Duration::from_secs(s)));
            if !unsigned && vector != default {
                errors.push(format!(
                    "{file}/{}: tolerance {:?} s, the preset's is {default:?}",
                    case.name, case.tolerance
                ));
            }
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// Every SDK answer recorded in a file agrees with `expect`, except where the case says why not.
#[test]
fn vectors_agree_with_the_sdks() {
    let mut errors = Vec::new();
    for (file, _, cases) in load_all() {
        for case in cases.iter().filter(|c| !c.quirk) {
            for (library, answer) in &case.library_results {
                let said = if answer == "accept" {
                    Expect::Accept
                } else if answer.starts_with("reject") {
                    Expect::Reject
                } else {
                    errors.push(format!(
                        "{file}/{}: {library} answered {answer:?}",
                        case.name
                    ));
                    continue;
                };
                if said != case.expect {
                    errors.push(format!(
                        "{file}/{}: expect {:?} but {library} answered {answer:?}",
                        case.name, case.expect
                    ));
                }
            }
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// Every case, through its preset.
#[test]
fn vectors_verify_through_the_presets() {
    let mut failures = Vec::new();
    let mut count = 0;
    let mut skipped = 0;
    for (file, preset, cases) in load_all() {
        for case in &cases {
            if case.public_key.is_some() && !PUBLIC_KEY_FEATURES {
                skipped += 1;
                continue;
            }
            count += 1;
            if let Err(e) = check(preset, case) {
                failures.push(format!("{file}/{}: {e}", case.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    if skipped > 0 {
        skip_or_fail(
            "vectors_verify_through_the_presets",
            &format!(
                "{skipped} public-key cases need the ed25519 and p256 features (--all-features)"
            ),
        );
    }
}

/// Whether this build can check Ed25519 and P-256 signatures.
const PUBLIC_KEY_FEATURES: bool = cfg!(all(feature = "ed25519", feature = "p256"));

/// A part of a test that cannot run here is named on stderr, and is a failure under `CI=true`.
fn skip_or_fail(test: &str, what: &str) {
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "{test} cannot run fully under CI=true: {what}"
    );
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "skipping part of {test}: {what}");
}

/// Runs one case and compares the outcome with `expect` and `code`.
fn check(preset: &Preset, case: &Case) -> Result<(), String> {
    if let Some(shake) = &case.handshake
        && shake.kind.unsigned()
    {
        return check_unsigned_handshake(case, shake);
    }
    let body = case.body()?;
    let result = verify(preset, case, &body)?;
    match (case.expect, &result) {
        (Expect::Accept, Ok(_)) => {}
        (Expect::Reject, Err(e)) => {
            if let Some(code) = &case.code
                && e.code() != code
            {
                return Err(format!(
                    "rejected with {}, the vector says {code}",
                    e.code()
                ));
            }
        }
        (Expect::Accept, Err(e)) => return Err(format!("rejected with {}: {e}", e.code())),
        (Expect::Reject, Ok(_)) => return Err("accepted".into()),
    }
    if let Some(shake) = &case.handshake {
        check_signed_handshake(case, shake, &body)?;
    }
    Ok(())
}

fn verify(
    preset: &Preset,
    case: &Case,
    body: &[u8],
) -> Result<Result<Verified, VerifyError>, String> {
    let (mut scheme, keys) = scheme_and_keys(preset, case)?;
    if let Some(seconds) = case.tolerance {
        let rule = scheme
            .timestamp
            .as_mut()
            .ok_or("the vector has a tolerance, the preset no timestamp")?;
        rule.tolerance = if seconds == 0 {
            Tolerance::UNCHECKED
        } else {
            Tolerance::both(Duration::from_secs(seconds))
        };
    }
    let verifier = Verifier::new(scheme, keys).map_err(|e| format!("verifier: {e}"))?;
    let headers = case.headers();
    let mut request = Request::new(&headers, body);
    if let Some(url) = &case.url {
        request = request.url(url);
    }
    if let Some(method) = &case.method {
        request = request.method(method);
    }
    let now = UnixTime::from_secs(case.now.ok_or("no now")?);
    let mut result = verifier.verify(&request, now);
    if preset.kind == "msgraph"
        && result.is_ok()
        && let [secret] = case.secrets()[..]
    {
        // The scheme reads the first notification; the preset's contract covers all of them.
        let secret = Secret::new(secret).map_err(|e| e.to_string())?;
        result = handshake::msgraph_client_state(&secret, body).and(result);
    }
    Ok(result)
}

/// The preset's scheme and the case's keys in the form that scheme takes.
fn scheme_and_keys(
    preset: &Preset,
    case: &Case,
) -> Result<(clawlet_verify::scheme::Scheme, Vec<Key>), String> {
    if let Some(public) = &case.public_key {
        return public_key(preset, public);
    }
    let keys = case
        .secrets()
        .into_iter()
        .map(|secret| {
            let bytes = if preset.kind == "standard" {
                let text = secret.strip_prefix("whsec_").unwrap_or(secret);
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(|e| format!("whsec_ secret is not base64: {e}"))?
            } else {
                secret.as_bytes().to_vec()
            };
            Key::secret(bytes).map_err(|e| format!("secret: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((preset.scheme.clone(), keys))
}

#[cfg(all(feature = "ed25519", feature = "p256"))]
fn public_key(
    preset: &Preset,
    public: &str,
) -> Result<(clawlet_verify::scheme::Scheme, Vec<Key>), String> {
    let (scheme, key) = match preset.kind {
        "discord" => (preset.scheme.clone(), Key::ed25519_hex(public)),
        "sendgrid" => (preset.scheme.clone(), Key::p256_spki_base64(public)),
        "standard" => {
            let text = public
                .strip_prefix("whpk_")
                .ok_or("a standard public key starts with whpk_")?;
            (
                presets::STANDARD_ED25519.scheme.clone(),
                Key::ed25519_base64(text),
            )
        }
        other => return Err(format!("{other} takes no public key")),
    };
    Ok((scheme, vec![key.map_err(|e| format!("public key: {e}"))?]))
}

#[cfg(not(all(feature = "ed25519", feature = "p256")))]
fn public_key(
    preset: &Preset,
    _public: &str,
) -> Result<(clawlet_verify::scheme::Scheme, Vec<Key>), String> {
    Err(format!(
        "{}: public keys need the ed25519 and p256 features",
        preset.kind
    ))
}

fn json_field(text: &[u8], pointer: &str) -> Result<String, String> {
    let value: serde_json::Value =
        serde_json::from_slice(text).map_err(|e| format!("not JSON: {e}"))?;
    value
        .pointer(pointer)
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("no string at {pointer}"))
}

fn check_signed_handshake(case: &Case, shake: &HandshakeCase, body: &[u8]) -> Result<(), String> {
    let response = shake
        .response
        .as_deref()
        .ok_or("a signed handshake has a response")?;
    match shake.kind {
        HandshakeKind::SlackUrlVerification => {
            let challenge = json_field(body, "/challenge")?;
            if challenge != response {
                return Err(format!("challenge {challenge:?}, response {response:?}"));
            }
        }
        HandshakeKind::ZoomUrlValidation => {
            let plain = json_field(body, "/payload/plainToken")?;
            let [secret] = case.secrets()[..] else {
                return Err("zoom handshake needs exactly one secret".into());
            };
            let secret = Secret::new(secret).map_err(|e| e.to_string())?;
            let encrypted = handshake::zoom_encrypted_token(&secret, &plain);
            let want = json_field(response.as_bytes(), "/encryptedToken")?;
            let echoed = json_field(response.as_bytes(), "/plainToken")?;
            if encrypted != want || echoed != plain {
                return Err(format!(
                    "encryptedToken {encrypted}, the vector says {want}"
                ));
            }
        }
        HandshakeKind::DiscordPing => {
            let value: serde_json::Value =
                serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
            if value.get("type") != Some(&serde_json::Value::from(1)) || response != r#"{"type":1}"# {
                return Err("a PING is type 1 and is answered {\"type\":1}".into());
            }
        }
        kind => return Err(format!("{kind:?} is not a signed handshake")),
    }
    Ok(())
}

fn check_unsigned_handshake(case: &Case, shake: &HandshakeCase) -> Result<(), String> {
    let query = |name: &str| -> Result<String, String> {
        let url = case.url.as_deref().ok_or("no url")?;
        let (_, query) = url.split_once('?').ok_or("no query in url")?;
        query_param(query, name).ok_or_else(|| format!("no {name} in the query"))
    };
    let answered: Option<String> = match shake.kind {
        HandshakeKind::TwitterCrc => {
            let token = query("crc_token")?;
            let [secret] = case.secrets()[..] else {
                return Err("twitter CRC needs exactly one secret".into());
            };
            let secret = Secret::new(secret).map_err(|e| e.to_string())?;
            let response_token = handshake::twitter_crc_response(&secret, &token);
            Some(serde_json::json!({ "response_token": response_token }).to_string())
        }
        HandshakeKind::MetaSubscribe => {
            let configured = shake.verify_token.as_deref().ok_or("no verify_token")?;
            let configured = Secret::new(configured).map_err(|e| e.to_string())?;
            let sent = query("hub.verify_token")?;
            let subscribe = query("hub.mode")? == "subscribe";
            (subscribe && handshake::token_matches(&configured, sent.as_bytes()))
                .then(|| query("hub.challenge"))
                .transpose()?
        }
        HandshakeKind::MsgraphValidation => Some(query("validationToken")?),
        HandshakeKind::DropboxChallenge => Some(query("challenge")?),
        kind => return Err(format!("{kind:?} is a signed handshake")),
    };
    let expected_answer = match case.expect {
        Expect::Accept => shake.response.clone(),
        Expect::Reject => None,
    };
    if answered != expected_answer || answered != shake.response {
        return Err(format!(
            "answered {answered:?}, the vector says {:?} ({:?})",
            shake.response, case.expect
        ));
    }
    if let Some(token) = &shake.token
        && shake.kind != HandshakeKind::TwitterCrc
        && answered.as_deref() != Some(token.as_str())
    {
        return Err(format!("the echoed token is not {token:?}"));
    }
    Ok(())
}

/// One `application/x-www-form-urlencoded` query parameter, decoded.
fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(key) == name).then(|| percent_decode(value))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The e2e list names cases that exist, in files this runner reads.
#[test]
fn e2e_case_list_points_at_existing_cases() {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Entry {
        preset: String,
        file: String,
        case: String,
        expect: Expect,
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/e2e-cases.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let entries: Vec<Entry> = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let all = load_all();
    let mut errors = Vec::new();
    let mut presets_seen = BTreeSet::new();
    for entry in &entries {
        let file = entry
            .file
            .strip_prefix("signatures/")
            .unwrap_or(&entry.file);
        let found = all
            .iter()
            .find(|(f, _, _)| *f == file)
            .and_then(|(_, _, cases)| cases.iter().find(|c| c.name == entry.case));
        match found {
            None => errors.push(format!("{}/{}: no such case", entry.file, entry.case)),
            Some(case)
                if case.expect != entry.expect || case.preset.as_deref() != Some(&entry.preset) =>
            {
                errors.push(format!(
                    "{}/{}: preset or expect differs",
                    entry.file, entry.case
                ));
            }
            Some(_) => {
                presets_seen.insert(entry.preset.clone());
            }
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    for (_, kind) in FILES
        .iter()
        .filter(|(file, _)| !HAND_WRITTEN.contains(file))
    {
        assert!(
            presets_seen.contains(*kind),
            "e2e-cases.json has no case for {kind}"
        );
    }
}
