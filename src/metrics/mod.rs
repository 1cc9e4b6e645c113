//! Every metric the sink exposes: the families in `families` (docs/metrics.md lists them), the
//! handle the rest of the sink counts through here.
//!
//! Names follow `adjust_sink_<name>_<unit>[_total]` (points in time: `<name>_timestamp_seconds`,
//! unix seconds); label values come from closed sets (the matched route, never the raw path).
//! Drops are counted with a cause and should stay at zero; a retry is never counted as a drop.
//! Every labelled series that dashboards and alerts use exists from the start, at zero.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use prometheus::{
    Encoder, Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Registry,
    TextEncoder,
};

use crate::adjust::{ProblemKind, activity};

mod families;
mod labels;

pub use labels::*;

/// The sink's metric families, registered in their own registry.
#[derive(Clone)]
pub struct Metrics {
    /// Series the request path touches, resolved once (a label lookup takes a lock and a hash).
    hot: Arc<Hot>,
    pub registry: Registry,
    pub requests: IntCounterVec,
    pub request_duration: HistogramVec,
    pub last_callback: IntGauge,
    pub build_info: IntGaugeVec,
    pub callbacks: IntCounterVec,
    pub decode_problems: Counters<ProblemKind>,
    pub connections_refused: Counters<ConnRefusal>,
    pub connections_open: IntGauge,
    pub held_bytes: IntGauge,
    pub held_budget_bytes: IntGauge,
    pub queue_rows_pushed: IntCounter,
    pub queue_bytes_pushed: IntCounter,
    pub queue_rows_popped: IntCounter,
    pub queue_bytes_popped: IntCounter,
    pub queue_rows: IntGauge,
    pub queue_bytes: IntGauge,
    pub queue_capacity_rows: IntGauge,
    pub queue_capacity_bytes: IntGauge,
    pub batch_rows: Histogram,
    pub batch_bytes: Histogram,
    pub flushes: Counters<FlushReason>,
    /// By [`InsertResult`] in declaration order.
    insert_duration_by: [Histogram; 2],
    pub rows_written: IntCounter,
    pub insert_errors: Counters<Retriable>,
    pub rows_dropped: Counters<DropCause>,
    pub rows_rejected: Counters<RejectReason>,
    pub rejects_deferred: IntCounter,
    pub rejects_file_bytes: IntGauge,
    pub rejects_file_capacity_bytes: IntGauge,
    pub spool_bytes: IntGauge,
    pub spool_budget_bytes: IntGauge,
    /// Computed from `oldest_unacked` when scraped, so that it keeps growing while a batch is
    /// retried.
    spool_oldest_age: IntGauge,
    /// How far behind real time the daily rollups may be (set when rendering).
    rollup_lag: IntGauge,
    /// Unix seconds at which the oldest row not yet acknowledged by ClickHouse was accepted; 0
    /// when there is none.
    oldest_unacked: Arc<AtomicU32>,
    pub wal_fsyncs: IntCounter,
    /// Time of each group commit: writing the group (with a segment rotation, when one falls
    /// due) and its fsync. What a slow or shared disk adds to every `wal` acknowledgement.
    pub wal_fsync_duration: Histogram,
    /// Delivered segments deleted before `--keep-delivered` ran out, to make room.
    pub wal_kept_evicted: IntCounter,
    /// 1 while the log cannot be written (its last group commit failed, and no later one or
    /// probe succeeded).
    pub wal_unwritable: IntGauge,
    pub wal_damaged: Counters<WalDamage>,
    pub clickhouse_up: IntGauge,
    pub erasures_requested: IntCounter,
    pub erasures_done: IntCounter,
    pub erasures_pending: IntGauge,
    /// Computed from `oldest_erasure` when scraped.
    erasure_oldest_age: IntGauge,
    /// Unix seconds of the oldest pending erasure request; 0 when there is none.
    oldest_erasure: Arc<AtomicU32>,
    pub retention_partitions_dropped: IntCounter,
    pub erasures_refused: Counters<ErasureRefusal>,
    pub erasures_failed: IntCounter,
    pub erasure_mutations: IntCounter,
    pub erasures_requested_again: IntCounter,
    pub housekeeping_rounds: Counters<HousekeepingTask>,
    pub housekeeping_lease_held: IntGauge,
    pub export_files: Counters<ExportFileState>,
    pub export_files_pending: IntGauge,
    pub export_rows: Counters<ExportRowOutcome>,
    pub export_last_round: IntGauge,
    pub export_rounds: Counters<ExportRoundOutcome>,
}

struct Hot {
    /// By [`Route`], then by [`Outcome`], in declaration order.
    requests: Vec<Vec<IntCounter>>,
    /// Same indexes as `requests`.
    durations: Vec<Vec<Histogram>>,
    callbacks: Vec<(&'static str, IntCounter)>,
}

impl Metrics {
    /// Counts a callback request answered with `outcome`, and how long it took since `started`.
    pub fn request(&self, route: Route, outcome: Outcome, started: Instant) {
        self.hot.requests[route as usize][outcome as usize].inc();
        self.hot.durations[route as usize][outcome as usize]
            .observe(started.elapsed().as_secs_f64());
    }

    /// Requests answered on `route` with `outcome` so far.
    pub fn requests(&self, route: Route, outcome: Outcome) -> u64 {
        self.hot.requests[route as usize][outcome as usize].get()
    }

    /// Counts an accepted callback of `kind` (a label from [`activity::label`]) received at
    /// `received_at` (unix seconds).
    pub fn callback(&self, kind: &'static str, received_at: u32) {
        match self.hot.callbacks.iter().find(|(k, _)| *k == kind) {
            Some((_, c)) => c.inc(),
            None => self.callbacks.with_label_values(&[kind]).inc(),
        }
        // A read, and a write once a second: the newest wins (a slower worker does not go back).
        let at = i64::from(received_at);
        if self.last_callback.get() < at {
            self.last_callback.set(at);
        }
    }

    /// Records when the oldest row not yet acknowledged by ClickHouse was accepted (unix
    /// seconds), or `None` when every accepted row is acknowledged. Its age is computed at each
    /// scrape.
    pub fn set_oldest_unacked(&self, accepted_at: Option<u32>) {
        self.oldest_unacked
            .store(accepted_at.unwrap_or(0), Ordering::Relaxed);
    }

    /// Age of the oldest row not yet acknowledged by ClickHouse, in seconds (0 when none).
    pub fn oldest_unacked_age(&self) -> u32 {
        match self.oldest_unacked.load(Ordering::Relaxed) {
            0 => 0,
            since => crate::clock::unix_now().saturating_sub(since),
        }
    }

    /// Records one INSERT's duration.
    pub fn insert_took(&self, result: InsertResult, seconds: f64) {
        self.insert_duration_by[result as usize].observe(seconds);
    }

    /// INSERTs observed with `result` so far.
    pub fn inserts(&self, result: InsertResult) -> u64 {
        self.insert_duration_by[result as usize].get_sample_count()
    }

    /// Records when the oldest pending erasure request was made (unix seconds), or `None`.
    pub fn set_oldest_erasure(&self, requested_at: Option<u32>) {
        self.oldest_erasure
            .store(requested_at.unwrap_or(0), Ordering::Relaxed);
    }

    /// Age of the oldest pending erasure request, in seconds (0 when none).
    pub fn oldest_erasure_age(&self) -> u32 {
        match self.oldest_erasure.load(Ordering::Relaxed) {
            0 => 0,
            since => crate::clock::unix_now().saturating_sub(since),
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        self.spool_oldest_age
            .set(i64::from(self.oldest_unacked_age()));
        self.rollup_lag.set(i64::from(self.oldest_unacked_age()));
        self.erasure_oldest_age
            .set(i64::from(self.oldest_erasure_age()));
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding");
        String::from_utf8(buf).expect("prometheus text is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of one series in `text` (labels as the exposition prints them).
    fn value(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
            .parse()
            .unwrap()
    }

    #[test]
    fn request_series_and_build_info_exist_from_the_start() {
        let text = Metrics::new().render();
        for route in Route::ALL {
            for o in Outcome::ALL {
                let labels = format!("outcome=\"{}\",route=\"{}\"", o.as_str(), route.as_str());
                assert_eq!(
                    value(&text, &format!("adjust_sink_requests_total{{{labels}}}")),
                    0.0
                );
                assert_eq!(
                    value(
                        &text,
                        &format!("adjust_sink_request_duration_seconds_count{{{labels}}}")
                    ),
                    0.0
                );
            }
        }
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(
            value(
                &text,
                &format!("adjust_sink_build_info{{version=\"{version}\"}}")
            ),
            1.0
        );
    }

    #[test]
    fn a_request_is_counted_and_timed_under_its_route_and_outcome() {
        let m = Metrics::new();
        let started = Instant::now() - std::time::Duration::from_millis(30);
        m.request(Route::Trigger, Outcome::Shed, started);
        let text = m.render();
        let labels = "outcome=\"shed\",route=\"trigger\"";
        assert_eq!(
            value(&text, &format!("adjust_sink_requests_total{{{labels}}}")),
            1.0
        );
        let bucket = |le: &str| {
            value(
                &text,
                &format!("adjust_sink_request_duration_seconds_bucket{{{labels},le=\"{le}\"}}"),
            )
        };
        assert_eq!(bucket("0.025"), 0.0);
        assert_eq!(bucket("0.25"), 1.0);
        let other = "outcome=\"shed\",route=\"global\"";
        assert_eq!(
            value(
                &text,
                &format!("adjust_sink_request_duration_seconds_count{{{other}}}")
            ),
            0.0
        );
    }

    #[test]
    fn last_callback_starts_at_the_start_and_never_goes_back() {
        let m = Metrics::new();
        let start = m.last_callback.get();
        assert!((start - i64::from(crate::clock::unix_now())).abs() <= 1);
        let later = start as u32 + 100;
        m.callback("install", later);
        m.callback("install", later - 50);
        assert_eq!(m.last_callback.get(), i64::from(later));
        let text = m.render();
        assert_eq!(
            value(&text, "adjust_sink_last_callback_timestamp_seconds"),
            f64::from(later)
        );
        assert_eq!(
            value(
                &text,
                "adjust_sink_callbacks_total{activity_kind=\"install\"}"
            ),
            2.0
        );
    }

    #[test]
    fn backlog_age_is_computed_when_scraped() {
        let m = Metrics::new();
        assert_eq!(
            value(&m.render(), "adjust_sink_spool_oldest_unacked_age_seconds"),
            0.0
        );
        m.set_oldest_unacked(Some(crate::clock::unix_now() - 120));
        let age = value(&m.render(), "adjust_sink_spool_oldest_unacked_age_seconds");
        assert!((120.0..=121.0).contains(&age), "age {age}");
        m.set_oldest_unacked(None);
        assert_eq!(
            value(&m.render(), "adjust_sink_spool_oldest_unacked_age_seconds"),
            0.0
        );
    }

    /// The rollups are written by the INSERT that lands the callbacks: they are behind real
    /// time by the age of the oldest callback not yet in ClickHouse.
    #[test]
    fn rollup_lag_is_the_age_of_the_oldest_callback_not_in_clickhouse() {
        let m = Metrics::new();
        assert_eq!(value(&m.render(), "adjust_sink_rollup_lag_seconds"), 0.0);
        m.set_oldest_unacked(Some(crate::clock::unix_now() - 900));
        let lag = value(&m.render(), "adjust_sink_rollup_lag_seconds");
        assert!((900.0..=901.0).contains(&lag), "lag {lag}");
        m.set_oldest_unacked(None);
        assert_eq!(value(&m.render(), "adjust_sink_rollup_lag_seconds"), 0.0);
    }
}
