//! Per-callback costs on the hot path: decode, encode, decode + encode, and the trip through
//! the in-memory queue into a batch. Run with `cargo bench --bench pipeline`.

use std::hint::black_box;
use std::time::Duration;

use adjust_sink::adjust::decode::{Body, DecodeOptions, decode};
use adjust_sink::metrics::Metrics;
use adjust_sink::pipeline::memory::MemoryQueue;
use adjust_sink::pipeline::{Batch, Limits};
use adjust_sink::row::{self, Meta, encode};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// A global install callback as Adjust sends it: ~40 placeholders, ~1 KB.
const CALLBACK: &str = include_str!("install_callback.txt").trim_ascii_end();

fn meta(id: u64) -> Meta<'static> {
    Meta {
        received_at: 1_700_000_000,
        callback_id: id,
        source_ip: "178.162.216.70",
        ingest_source: adjust_sink::row::INGEST_CALLBACK,
        raw: None,
    }
}

fn bench(c: &mut Criterion) {
    let opts = DecodeOptions::new();
    let q = CALLBACK.as_bytes();
    let mut g = c.benchmark_group("callback");
    g.throughput(Throughput::Bytes(q.len() as u64));
    g.bench_function("decode", |b| {
        b.iter(|| black_box(decode(black_box(q), Body::None, "", &opts)))
    });
    let cb = decode(q, Body::None, "", &opts);
    let mut out = Vec::with_capacity(4096);
    g.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            encode(black_box(&cb), &meta(1), &mut out);
            black_box(out.len())
        })
    });
    // The whole callback → row step the HTTP handler runs (decode, raw rule, id, encode).
    let options = row::Options::new();
    g.bench_function("decode_encode", |b| {
        b.iter(|| {
            black_box(row::build(
                &row::Received {
                    query: black_box(q),
                    body: b"",
                    content_type: None,
                    trigger: "",
                    source_ip: std::net::Ipv4Addr::new(178, 162, 216, 70).into(),
                    received_at: 1_700_000_000,
                },
                &options,
            ))
        })
    });
    g.finish();

    // One row through the bounded queue into a batch (push, then the batcher's concatenation).
    let mut row = Vec::new();
    encode(&cb, &meta(7), &mut row);
    let queue = MemoryQueue::new(1 << 20, 1 << 30, Metrics::new());
    let limits = Limits {
        max_rows: 50_000,
        max_bytes: 64 << 20,
        max_age: Duration::from_secs(1),
    };
    let mut g = c.benchmark_group("batcher");
    g.throughput(Throughput::Elements(1_000));
    g.bench_function("push_fill_1000_rows", |b| {
        b.iter(|| {
            for _ in 0..1_000 {
                queue.push(row.clone()).unwrap();
            }
            let mut batch = Batch::default();
            queue.fill(&mut batch, &limits);
            black_box(batch.len_bytes())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
