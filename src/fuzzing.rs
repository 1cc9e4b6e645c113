//! Settings shared by the property tests that `scripts/fuzz.sh` runs long: the decoder's
//! (`adjust::decode::fuzz`) and the connection wrapper's (`http::longuri::fuzz`).
//!
//! Each runs a few thousand cases under `cargo test`; `ADJUST_SINK_FUZZ_CASES=1000000` makes it
//! run that many instead. Every run counts the cases it executed and prints the count.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Cases per property test, overriding the test's own count.
pub const CASES_ENV: &str = "ADJUST_SINK_FUZZ_CASES";

/// Shrinking stops after this many steps (proptest's default is 4 × cases, unbounded in time).
const MAX_SHRINK_ITERS: u32 = 20_000;

/// ... or after this many milliseconds.
const MAX_SHRINK_MILLIS: u32 = 5 * 60 * 1000;

/// The configuration for a property test whose own case count is `default_cases`.
pub fn config(default_cases: u32, source_file: &'static str) -> Config {
    let cases = match std::env::var(CASES_ENV) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{CASES_ENV}={v:?} is not a case count")),
        Err(_) => default_cases,
    };
    Config {
        cases,
        // The default allows 1024 rejected inputs per run in all: sized for 256 cases, not for
        // a million. (These strategies do not filter; the allowance keeps its default ratio.)
        max_global_rejects: cases.saturating_mul(4).max(1024),
        max_shrink_iters: MAX_SHRINK_ITERS,
        max_shrink_time: MAX_SHRINK_MILLIS,
        // Failures found are saved next to the test (`proptest-regressions/`) and replayed first.
        source_file: Some(source_file),
        ..Config::default()
    }
}

/// Runs `test` on values of `strategy` until the configured number of cases passed, counting
/// every execution (replayed failures and shrinking steps included), and prints the count.
/// Panics with the minimal failing input on failure.
#[track_caller]
pub fn check<S: Strategy>(
    name: &str,
    default_cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let config = config(default_cases, std::panic::Location::caller().file());
    let wanted = config.cases;
    let executed = AtomicU64::new(0);
    let started = Instant::now();
    let mut runner = TestRunner::new(config);
    let result = runner.run(&strategy, |value| {
        executed.fetch_add(1, Ordering::Relaxed);
        test(value)
    });
    let executed = executed.into_inner();
    match result {
        Ok(()) => eprintln!(
            "fuzz: {name}: {executed} cases executed, {wanted} required, passed in {:.1} s",
            started.elapsed().as_secs_f64()
        ),
        Err(err) => panic!("fuzz: {name}: failed after {executed} executions: {err}"),
    }
}
