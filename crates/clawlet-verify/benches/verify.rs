//! Throughput of every verifier next to raw HMAC-SHA256 (the same `hmac`/`sha2` crates) over the
//! same bytes, so the overhead of parsing, encoding and comparing is visible as a ratio.
//!
//! Run: `cargo bench -p clawlet-verify --bench verify -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::time::Duration;

use clawlet_verify::custom::Scheme;
use clawlet_verify::standard::{self, Key};
use clawlet_verify::{Secret, UnixTime, Verified, VerifyError, github, stripe};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit as _, Mac};
use sha2::Sha256;

const PUSH: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/payloads/github_push.json"
));
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const T: i64 = 1_700_000_000;
const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";

/// sha2 0.11 picks its SHA-NI backend at run time when the CPU has `sha` and `sse4.1` (ssse3 is
/// printed too, as earlier runs recorded it); say which backend this run measured.
#[expect(
    clippy::print_stderr,
    reason = "the bench reports the CPU path it measured"
)]
fn report_cpu() {
    #[cfg(target_arch = "x86_64")]
    {
        let sha = std::arch::is_x86_feature_detected!("sha");
        let sse41 = std::arch::is_x86_feature_detected!("sse4.1");
        let ssse3 = std::arch::is_x86_feature_detected!("ssse3");
        let path = if sha && sse41 {
            "SHA-NI"
        } else {
            "software (no SHA-NI)"
        };
        eprintln!(
            "cpu: x86_64 sha={sha} sse4.1={sse41} ssse3={ssse3}: sha2 uses the {path} backend"
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    eprintln!("cpu: not x86_64; sha2 picks its backend at run time");
}

/// A body of `len` bytes made of repeated real JSON, so the input looks like a delivery.
fn body_of(len: usize) -> Vec<u8> {
    PUSH.iter().copied().cycle().take(len).collect()
}

fn bench_size(group: &mut BenchmarkGroup<'_, WallTime>, body: &[u8]) {
    let secret = SECRET.as_bytes();
    group.throughput(Throughput::Bytes(body.len() as u64));

    group.bench_function("hmac_sha256_baseline", |b| {
        b.iter(|| {
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(black_box(secret)) else {
                panic!("HMAC takes keys of any length");
            };
            mac.update(black_box(body));
            black_box(mac.finalize().into_bytes())
        });
    });

    let Ok(secrets) = Secret::list(&[secret]) else {
        panic!("the bench secret is not empty");
    };
    let sig = github::sign(secret, body);
    let run = || {
        github::verify(
            black_box(&secrets),
            github::Signatures {
                sha256: Some(sig.as_bytes()),
                sha1: None,
            },
            black_box(body),
            github::Legacy::Refuse,
        )
    };
    verifier(group, "github", run);

    let header = stripe::sign(secret, T, body);
    let run = || {
        stripe::verify(
            black_box(&secrets),
            Some(header.as_bytes()),
            black_box(body),
            UnixTime::from_secs(T),
            Some(stripe::DEFAULT_TOLERANCE),
        )
    };
    verifier(group, "stripe", run);

    let Ok(key) = Key::from_secret(SECRET) else {
        panic!("the bench secret is valid base64");
    };
    let keys = [key];
    let Ok(sig) = standard::sign(&keys[0], ID, T, body) else {
        panic!("an HMAC key signs");
    };
    let ts = T.to_string();
    let run = || {
        let (id, ts, sig) = (
            Some(ID.as_bytes()),
            Some(ts.as_bytes()),
            Some(sig.as_bytes()),
        );
        let delivery = standard::Delivery {
            id,
            timestamp: ts,
            signature: sig,
            body: black_box(body),
        };
        standard::verify(
            black_box(&keys),
            delivery,
            UnixTime::from_secs(T),
            Some(standard::DEFAULT_TOLERANCE),
        )
    };
    verifier(group, "standard", run);

    let scheme = Scheme::default();
    let sig = scheme.sign(secret, body);
    let run = || scheme.verify(black_box(&secrets), Some(sig.as_bytes()), black_box(body));
    verifier(group, "custom_sha256_hex", run);
}

/// Checks once that the input verifies, so the timed loop measures the success path only.
fn verifier(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    run: impl Fn() -> Result<Verified, VerifyError>,
) {
    assert_eq!(
        run().map(|v| v.secret_index()),
        Ok(0),
        "{name}: bench input must verify"
    );
    group.bench_function(name, |b| b.iter(&run));
}

fn verify(c: &mut Criterion) {
    report_cpu();
    // 64 B shows the fixed cost of parsing, encoding and comparing; the rest is hashing.
    let sizes: [(&str, Vec<u8>); 4] = [
        ("64B", body_of(64)),
        ("github_push", PUSH.to_vec()),
        ("1MiB", body_of(1 << 20)),
        ("25MiB", body_of(25 << 20)),
    ];
    for (label, body) in &sizes {
        let mut group = c.benchmark_group(format!("verify/{label}"));
        if body.len() > 1 << 20 {
            // One iteration takes tens of milliseconds: fewer samples keep the run short.
            group.sample_size(10);
            group.measurement_time(Duration::from_secs(5));
        }
        bench_size(&mut group, body);
        group.finish();
    }
}

criterion_group!(benches, verify);
criterion_main!(benches);
