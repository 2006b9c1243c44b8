//! Every HMAC preset against raw HMAC in alternation, for the ratio the presets target
//! (at least 0.95x raw HMAC throughput).
//!
//! Criterion (`--bench presets`) measures each function for seconds, one after the other; on a
//! shared VM the host's speed drifts by more than the presets differ within that time, so two
//! of its figures taken a minute apart can differ by 5 % for the same work. Here each round
//! times a block of verifications of about 2 ms and then a block of raw HMACs of the same body
//! (the other order in every second round), so both see the same machine, and the ratio of
//! each round is kept. The table gives the median ratio and the quartiles, per preset and body
//! size.
//!
//! The headers are a `Vec` of pairs, the crate's own input; `--header-map` puts them in an
//! `http::HeaderMap` instead, as the daemon and the `http` feature do, where each lookup also
//! parses and hashes the name.
//!
//! Run: `cargo bench -p clawlet-verify --features ed25519,p256,sha1,http --bench paired [-- [--header-map] <filter>]`

mod common;

use std::hint::black_box;
use std::io::Write as _;
use std::time::{Duration, Instant};

use clawlet_verify::presets::Preset;
use clawlet_verify::scheme::{Algorithm, Request, SigningKey, Verifier};
use clawlet_verify::{Headers, Secret, UnixTime};
use common::{NOW_MS, URL, body_of, hmac_presets, raw_hmac, secret, signed};
use hmac::{Hmac, Mac};

/// Rounds per preset and size: odd, so the median is one round's ratio.
const ROUNDS: usize = 301;

/// How long one block of one side takes, about.
const BLOCK: Duration = Duration::from_millis(2);

/// How many calls of `f` take about [`BLOCK`].
fn calibrate(mut f: impl FnMut()) -> u32 {
    let mut n = 1u32;
    loop {
        let start = Instant::now();
        for _ in 0..n {
            f();
        }
        if start.elapsed() >= BLOCK || n >= 1 << 24 {
            return n;
        }
        n *= 2;
    }
}

fn time(n: u32, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_secs_f64()
}

/// The raw HMAC's time over the preset's, round by round, sorted.
fn ratios<M: Mac + hmac::digest::KeyInit>(
    key: &[u8],
    body: &[u8],
    mut verify: impl FnMut(),
) -> Vec<f64> {
    let mut raw = || {
        black_box(raw_hmac::<M>(key, black_box(body)));
    };
    let n = calibrate(&mut verify);
    for _ in 0..20 {
        time(n, &mut verify);
        time(n, &mut raw);
    }
    let mut ratios: Vec<f64> = (0..ROUNDS)
        .map(|round| {
            let (preset, raw) = if round % 2 == 0 {
                let preset = time(n, &mut verify);
                (preset, time(n, &mut raw))
            } else {
                let raw = time(n, &mut raw);
                (time(n, &mut verify), raw)
            };
            raw / preset
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios
}

/// The ratios for one preset, with its delivery's headers in `headers`.
fn paired_ratios(
    preset: &Preset,
    verifier: &Verifier,
    headers: &dyn Headers,
    body: &[u8],
    secret: &Secret,
    now: UnixTime,
) -> Vec<f64> {
    let request = verified_request(preset, verifier, headers, body, now);
    let verify = || {
        let _ = black_box(verifier.verify(black_box(&request), now));
    };
    match preset.scheme.algorithm {
        Algorithm::HmacSha1 => ratios::<Hmac<sha1::Sha1>>(secret.expose(), body, verify),
        Algorithm::HmacSha512 => ratios::<Hmac<sha2::Sha512>>(secret.expose(), body, verify),
        _ => ratios::<Hmac<sha2::Sha256>>(secret.expose(), body, verify),
    }
}

/// The delivery as the verifier is handed it, checked to verify.
fn verified_request<'a>(
    preset: &Preset,
    verifier: &Verifier,
    headers: &'a dyn Headers,
    body: &'a [u8],
    now: UnixTime,
) -> Request<'a> {
    let request = Request::new(headers, body).url(URL).method("POST");
    assert!(verifier.verify(&request, now).is_ok(), "{}", preset.kind);
    request
}

/// The pairs as an `http::HeaderMap`: the daemon's headers, and those of the `http` feature's
/// one-call verification.
fn header_map_of(pairs: &[(String, String)]) -> http::HeaderMap {
    pairs
        .iter()
        .map(|(name, value)| {
            let (Ok(name), Ok(value)) = (
                http::HeaderName::try_from(name.as_str()),
                http::HeaderValue::try_from(value.as_str()),
            ) else {
                panic!("a header the bench signed is valid: {name}");
            };
            (name, value)
        })
        .collect()
}

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let header_map = std::env::args().any(|a| a == "--header-map");
    let secret = secret();
    let key = SigningKey::Secret(secret.clone());
    let now = UnixTime::from_millis(NOW_MS);
    let mut out = std::io::stdout().lock();
    // `cargo test --all-targets` runs this target too, without `--bench`: then, as criterion
    // does, check that every preset's delivery verifies with both header forms, and time nothing.
    if !std::env::args().any(|a| a == "--bench") {
        let body = body_of(7_700);
        for preset in hmac_presets() {
            let (pairs, verifier) = signed(preset, &key, &body);
            let map = header_map_of(&pairs);
            for headers in [&pairs as &dyn Headers, &map] {
                verified_request(preset, &verifier, headers, &body, now);
            }
        }
        let _ = writeln!(out, "every preset verifies; `cargo bench` measures");
        return;
    }
    let _ = writeln!(
        out,
        "| body | preset | median ratio | quartiles | below 0.95x |\n|---|---|--:|---|---|"
    );
    let mut below = Vec::new();
    for (label, body) in [("7.7 KB", body_of(7_700)), ("1 MiB", body_of(1 << 20))] {
        for preset in hmac_presets() {
            if filter.as_deref().is_some_and(|f| !preset.kind.contains(f)) {
                continue;
            }
            let (pairs, verifier) = signed(preset, &key, &body);
            let ratios = if header_map {
                let headers = header_map_of(&pairs);
                paired_ratios(preset, &verifier, &headers, &body, &secret, now)
            } else {
                paired_ratios(preset, &verifier, &pairs, &body, &secret, now)
            };
            let median = ratios[ROUNDS / 2];
            let (q1, q3) = (ratios[ROUNDS / 4], ratios[3 * ROUNDS / 4]);
            let is_below = median < 0.95;
            if is_below {
                below.push(format!("{} at {label}", preset.kind));
            }
            let mark = if is_below { "yes" } else { "" };
            let _ = writeln!(
                out,
                "| {label} | {} | {median:.3}x | {q1:.3}–{q3:.3} | {mark} |",
                preset.kind
            );
        }
    }
    let _ = writeln!(
        out,
        "\nbelow 0.95x: {}",
        if below.is_empty() {
            "none".to_owned()
        } else {
            below.join(", ")
        }
    );
}
