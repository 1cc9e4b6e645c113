//! Per-callback costs on the hot path: decode, encode, decode + encode, and the trip through
//! the in-memory queue into a batch. Run with `cargo bench --bench pipeline`.

use std::hint::black_box;
use std::time::Duration;

use adjust_sink::adjust::decode::{Body, DecodeOptions, decode};
use adjust_sink::adjust::identity::callback_id;
use adjust_sink::metrics::Metrics;
use adjust_sink::pipeline::memory::MemoryQueue;
use adjust_sink::pipeline::{Batch, Limits};
use adjust_sink::row::{Meta, encode};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// A global install callback as Adjust sends it: ~40 placeholders, ~1 KB.
const CALLBACK: &str = "activity_kind=install&app_id=com.example.game&app_name=Example+Game&app_token=4w565xzmb54d\
&app_version=5.13.1&store=google&environment=production&sdk_version=android4.33.0&created_at=1404214665\
&created_at_milli=1404214665123&installed_at=1404214634&click_time=1404214600&impression_time=1404214500\
&tracker=abc123&tracker_name=Network1%3A%3AChristmas%3A%3AReindeers%3A%3A320x70_en&is_organic=0\
&match_type=google&adid=18546f6171f67e29d1cb983322ad1329&gps_adid=38400000-8cf0-11bd-b23e-10b96e40000d\
&android_id=9774d56d682e549c&os_name=android&os_version=13&device_name=SM-G313HZ&device_type=phone\
&ip_address=203.0.113.7&user_agent=Mozilla%2F5.0+%28Linux%3B+Android+13%3B+SM-G313HZ%29+AppleWebKit%2F537.36\
&country=de&region=BE&city=Berlin&language=de&timezone=UTC%2B0100&tracking_enabled=1&att_status=3\
&nonce=f1b9c2e0a7d14c55&label=spring+sale&deeplink=myapp%3A%2F%2Fproduct%3Fid%3D650&revenue=345\
&revenue_float=3.45&currency=EUR&reporting_revenue=3.71&reporting_currency=USD&user_id=42&level=17";

fn meta(id: u64) -> Meta<'static> {
    Meta {
        received_at: 1_700_000_000,
        callback_id: id,
        source_ip: "178.162.216.70",
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
    g.bench_function("decode_encode", |b| {
        b.iter(|| {
            let cb = decode(black_box(q), Body::None, "", &opts);
            let id = callback_id(&cb);
            let mut out = Vec::with_capacity(q.len() + 1024);
            encode(&cb, &meta(id), &mut out);
            black_box(out)
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
            black_box(batch.data.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
