//! Every HMAC preset next to raw HMAC (the `hmac` crate over the same signed bytes) at a 7.7 KB
//! delivery and at 1 MiB, and Ed25519 and ECDSA P-256 verification next to the raw crates'.
//!
//! Run: `cargo bench -p clawlet-verify --features ed25519,p256,sha1 --bench presets -- --warm-up-time 1 --measurement-time 3`

mod common;

use std::hint::black_box;

use clawlet_verify::UnixTime;
use clawlet_verify::presets;
use clawlet_verify::scheme::{Request, SigningKey};
use common::{NOW_MS, URL, body_of, hmac_presets, raw_hmac, secret, signed};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hmac::Hmac;

fn bench(c: &mut Criterion) {
    let secret = secret();
    let key = SigningKey::Secret(secret.clone());
    let now = UnixTime::from_millis(NOW_MS);
    for (label, body) in [("7.7KB", body_of(7_700)), ("1MiB", body_of(1 << 20))] {
        let mut group = c.benchmark_group(format!("presets/{label}"));
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function("raw_hmac_sha256", |b| {
            b.iter(|| {
                black_box(raw_hmac::<Hmac<sha2::Sha256>>(
                    secret.expose(),
                    black_box(&body),
                ))
            });
        });
        group.bench_function("raw_hmac_sha1", |b| {
            b.iter(|| {
                black_box(raw_hmac::<Hmac<sha1::Sha1>>(
                    secret.expose(),
                    black_box(&body),
                ))
            });
        });
        for preset in hmac_presets() {
            let (headers, verifier) = signed(preset, &key, &body);
            let request = Request::new(&headers, &body).url(URL).method("POST");
            assert!(verifier.verify(&request, now).is_ok(), "{}", preset.kind);
            group.bench_function(preset.kind, |b| {
                b.iter(|| verifier.verify(black_box(&request), now));
            });
        }
        group.finish();
    }

    let body = body_of(7_700);
    let mut group = c.benchmark_group("public_key/7.7KB");
    group.throughput(Throughput::Bytes(body.len() as u64));

    let ed_key = SigningKey::ed25519_seed(&[7; 32]);
    let (headers, verifier) = signed(&presets::DISCORD, &ed_key, &body);
    let request = Request::new(&headers, &body);
    assert!(verifier.verify(&request, now).is_ok());
    group.bench_function("discord_ed25519", |b| {
        b.iter(|| verifier.verify(black_box(&request), now))
    });
    let dalek = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let message: Vec<u8> = b"1700000000".iter().chain(&body).copied().collect();
    let signature = ed25519_dalek::Signer::sign(&dalek, &message);
    let public = dalek.verifying_key();
    group.bench_function("raw_ed25519_verify_strict", |b| {
        b.iter(|| public.verify_strict(black_box(&message), &signature));
    });

    let Ok(p256_key) = SigningKey::p256_scalar(&[9; 32]) else {
        panic!("a valid scalar");
    };
    let (headers, verifier) = signed(&presets::SENDGRID, &p256_key, &body);
    let request = Request::new(&headers, &body);
    assert!(verifier.verify(&request, now).is_ok());
    group.bench_function("sendgrid_ecdsa_p256", |b| {
        b.iter(|| verifier.verify(black_box(&request), now))
    });
    let Ok(raw) = p256::ecdsa::SigningKey::from_slice(&[9; 32]) else {
        panic!("a valid scalar");
    };
    let signature: p256::ecdsa::Signature = p256::ecdsa::signature::Signer::sign(&raw, &message);
    let der = signature.to_der();
    let public = *raw.verifying_key();
    group.bench_function("raw_p256_verify_der", |b| {
        b.iter(|| {
            let Ok(sig) = p256::ecdsa::Signature::from_der(black_box(der.as_bytes())) else {
                panic!("valid DER");
            };
            p256::ecdsa::signature::Verifier::verify(&public, black_box(&message), &sig)
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
