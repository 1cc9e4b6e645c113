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
