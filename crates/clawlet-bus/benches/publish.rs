//! Publish throughput into the SQLite journal (WAL, `synchronous=FULL`): one publish at a time
//! pays one fsync each, concurrent publishes share a group commit.
#![allow(missing_docs, clippy::unwrap_used, reason = "benchmark harness")]

use std::hint::black_box;

use clawlet_bus::{Backend, Bus, BusOptions};
use clawlet_events::{Envelope, Source};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn envelope(n: u64) -> Envelope {
    Envelope {
        id: uuid::Uuid::now_v7().to_string(),
        handler: "github".to_owned(),
        source: Source::Github,
        event_type: "push".to_owned(),
        action: None,
        delivery_id: format!("{}-{n}", uuid::Uuid::now_v7()),
        received_at: time::OffsetDateTime::now_utc(),
        summary: "push to main".to_owned(),
        headers: std::collections::BTreeMap::new(),
        payload: clawlet_events::Payload::from_json(r#"{"ref":"refs/heads/main"}"#).unwrap(),
    }
}

fn publish(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut opts = BusOptions::new(Backend::Sqlite {
        path: dir.path().join("bench.db"),
    });
    opts.max_pending = u64::MAX;
    let bus = rt.block_on(Bus::open(opts)).unwrap();
    let mut group = c.benchmark_group("sqlite_publish");
    for concurrency in [1_u64, 64] {
        group.throughput(Throughput::Elements(concurrency));
        group.bench_with_input(
            BenchmarkId::from_parameter(concurrency),
            &concurrency,
            |b, &n| {
                b.iter(|| {
                    let bus = bus.clone();
                    rt.block_on(async move {
                        let tasks: Vec<_> = (0..n)
                            .map(|i| {
                                let bus = bus.clone();
                                tokio::spawn(async move { bus.publish(&envelope(i)).await })
                            })
                            .collect();
                        for t in tasks {
                            black_box(t.await.unwrap().unwrap());
                        }
                    });
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, publish);
criterion_main!(benches);
