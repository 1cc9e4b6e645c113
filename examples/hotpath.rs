//! Runs the per-callback hot path ([`row::build`]: decode, callback id, encode) a fixed number of times, so
//! that an instruction counter gives a repeatable cost per callback on a noisy machine:
//!
//! ```sh
//! cargo build --release --example hotpath
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/hotpath 100000
//! ```
//! (total instructions ÷ iterations ≈ instructions per callback; run with 0 iterations to
//! subtract start-up.)

use std::hint::black_box;

use adjust_sink::row::{self, Received};

/// The same ~1 KB install callback as `benches/pipeline.rs`.
const CALLBACK: &str = include_str!("../benches/install_callback.txt").trim_ascii_end();

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let options = row::Options::new();
    let mut total = 0usize;
    for _ in 0..n {
        let built = row::build(
            &Received {
                query: black_box(CALLBACK.as_bytes()),
                body: b"",
                content_type: None,
                trigger: "",
                source_ip: std::net::Ipv4Addr::new(178, 162, 216, 70).into(),
                received_at: 1_700_000_000,
            },
            &options,
        );
        total += black_box(built.row).len();
    }
    println!(
        "{n} callbacks, {} bytes of rows, {} query bytes each",
        total,
        CALLBACK.len()
    );
}
