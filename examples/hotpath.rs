//! Runs the per-callback hot path (decode, callback id, encode) a fixed number of times, so
//! that an instruction counter gives a repeatable cost per callback on a noisy machine:
//!
//! ```sh
//! cargo build --release --example hotpath
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/hotpath 100000
//! ```
//! (total instructions ÷ iterations ≈ instructions per callback; run with 0 iterations to
//! subtract start-up.)

use std::hint::black_box;

use adjust_sink::adjust::decode::{Body, DecodeOptions, decode};
use adjust_sink::adjust::identity::callback_id;
use adjust_sink::row::{Meta, encode};

/// The same ~1 KB install callback as `benches/pipeline.rs`.
const CALLBACK: &str = include_str!("../benches/install_callback.txt").trim_ascii_end();

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let opts = DecodeOptions::new();
    let mut total = 0usize;
    for _ in 0..n {
        let cb = decode(black_box(CALLBACK.as_bytes()), Body::None, "", &opts);
        let id = callback_id(&cb);
        let mut out = Vec::with_capacity(CALLBACK.len() + 1024);
        encode(
            &cb,
            &Meta {
                received_at: 1_700_000_000,
                callback_id: id,
                source_ip: "178.162.216.70",
                raw: None,
            },
            &mut out,
        );
        total += black_box(out).len();
    }
    println!(
        "{n} callbacks, {} bytes of rows, {} query bytes each",
        total,
        CALLBACK.len()
    );
}
