//! Envelope construction for the payloads a busy receiver sees most: GitHub's push (as JSON and
//! form-encoded) and a Stripe invoice.

use std::hint::black_box;

use clawlet_events::{CustomOptions, Request, Source, parse};
use criterion::{Criterion, criterion_group, criterion_main};

const PUSH: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/payloads/github_push.json"
));
const INVOICE: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/payloads/stripe_invoice.paid.json"
));

fn form_encode(body: &[u8]) -> Vec<u8> {
    let mut out = b"payload=".to_vec();
    for &b in body {
        if b.is_ascii_alphanumeric() || b"-._*".contains(&b) {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let custom = CustomOptions::default();
    let json_headers: &[(&str, &[u8])] = &[
        ("content-type", b"application/json"),
        ("x-github-event", b"push"),
        ("x-github-delivery", b"72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ("x-github-hook-id", b"109948940"),
        ("user-agent", b"GitHub-Hookshot/044aadd"),
        ("x-hub-signature-256", b"sha256=00"),
    ];
    let form_headers: &[(&str, &[u8])] = &[
        ("content-type", b"application/x-www-form-urlencoded"),
        ("x-github-event", b"push"),
        ("x-github-delivery", b"72d3162e-cc78-11e3-81ab-4c9367dc0958"),
    ];
    let form = form_encode(PUSH);
    let stripe_headers: &[(&str, &[u8])] = &[("content-type", b"application/json; charset=utf-8")];
    let push = bytes::Bytes::from_static(PUSH);
    let form = bytes::Bytes::from(form);
    let invoice = bytes::Bytes::from_static(INVOICE);
    let request = |source, headers, body| Request {
        handler: "bench",
        source,
        headers,
        body,
        received_at: time::OffsetDateTime::UNIX_EPOCH,
        custom: &custom,
    };

    let mut group = c.benchmark_group("envelope");
    group.bench_function("github_push_json", |b| {
        let req = request(Source::Github, json_headers, &push);
        b.iter(|| parse(black_box(&req)));
    });
    group.bench_function("github_push_form", |b| {
        let req = request(Source::Github, form_headers, &form);
        b.iter(|| parse(black_box(&req)));
    });
    group.bench_function("stripe_invoice_paid", |b| {
        let req = request(Source::Stripe, stripe_headers, &invoice);
        b.iter(|| parse(black_box(&req)));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
