//! The metric families: every name, help text, label set and bucket bound the sink exposes,
//! registered once when [`Metrics`] is made (docs/metrics.md lists them).

use std::sync::Arc;
use std::sync::atomic::AtomicU32;

use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    exponential_buckets,
};

use super::*;

/// Upper bounds of `request_duration_seconds`: 100 µs (memory queue) through fsync times (a few
/// ms) to the seconds of a stalled disk.
const REQUEST_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let ns =
            |name: &str, help: &str| Opts::new(format!("adjust_sink_{name}"), help.to_string());
        macro_rules! reg {
            ($m:expr) => {{
                let m = $m.expect("valid metric");
                registry
                    .register(Box::new(m.clone()))
                    .expect("unique metric");
                m
            }};
        }
        let requests = reg!(IntCounterVec::new(
            ns(
                "requests_total",
                "Callback requests by route (global|trigger) and outcome (accepted|forbidden|bad_token|too_large|compressed|body_incomplete|shed|shutting_down)."
            ),
            &["route", "outcome"]
        ));
        let request_duration = reg!(HistogramVec::new(
            HistogramOpts::from(ns(
                "request_duration_seconds",
                "Time from a complete callback request to its answer, by route and outcome (as requests_total)."
            ))
            .buckets(REQUEST_BUCKETS.to_vec()),
            &["route", "outcome"]
        ));
        let last_callback = reg!(IntGauge::with_opts(ns(
            "last_callback_timestamp_seconds",
            "Unix time of the newest accepted callback (the start of the process until the first one): time() minus it is how long no callback was accepted."
        )));
        last_callback.set(i64::from(crate::clock::unix_now()));
        let build_info = reg!(IntGaugeVec::new(
            ns(
                "build_info",
                "Always 1; the version label is the running adjust-sink version."
            ),
            &["version"]
        ));
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let callbacks = reg!(IntCounterVec::new(
            ns(
                "callbacks_total",
                "Accepted callbacks by activity kind (unknown for kinds this version does not know, none when not sent)."
            ),
            &["activity_kind"]
        ));
        let decode_problems = reg!(IntCounterVec::new(
            ns(
                "decode_problems_total",
                "Problems found while decoding callbacks, by kind; the callback is stored all the same."
            ),
            &["kind"]
        ));
        let connections_refused = reg!(IntCounterVec::new(
            ns(
                "connections_refused_total",
                "Callback connections closed without an answer, by reason: outside (the peer is neither allowed nor a trusted proxy; closed at accept, before TLS), per_source (the peer already holds its share of connections), held_bytes (its request head was unfinished while held bytes were over the budget; oldest first)."
            ),
            &["reason"]
        ));
        let connections_open = reg!(IntGauge::with_opts(ns(
            "connections_open",
            "Callback connections open now (admitted at accept)."
        )));
        let held_bytes = reg!(IntGauge::with_opts(ns(
            "held_bytes",
            "Bytes of unfinished request heads held now, over all callback connections (a head that arrives in one read is not counted)."
        )));
        let held_budget_bytes = reg!(IntGauge::with_opts(ns(
            "held_budget_bytes",
            "Bound of held_bytes: past it the connections whose heads have been unfinished longest are closed."
        )));
        let queue_rows_pushed = reg!(IntCounter::with_opts(ns(
            "queue_rows_pushed_total",
            "Rows pushed into the delivery queue."
        )));
        let queue_bytes_pushed = reg!(IntCounter::with_opts(ns(
            "queue_bytes_pushed_total",
            "Encoded bytes pushed into the delivery queue."
        )));
        let queue_rows_popped = reg!(IntCounter::with_opts(ns(
            "queue_rows_popped_total",
            "Rows taken from the delivery queue into batches."
        )));
        let queue_bytes_popped = reg!(IntCounter::with_opts(ns(
            "queue_bytes_popped_total",
            "Encoded bytes taken from the delivery queue into batches."
        )));
        let queue_rows = reg!(IntGauge::with_opts(ns(
            "queue_rows",
            "Rows waiting in the delivery queue (accepted, not yet acknowledged by ClickHouse)."
        )));
        let queue_bytes = reg!(IntGauge::with_opts(ns(
            "queue_bytes",
            "Encoded bytes waiting in the delivery queue."
        )));
        let queue_capacity_rows = reg!(IntGauge::with_opts(ns(
            "queue_capacity_rows",
            "Row capacity of the in-memory queue (0 when the write-ahead log is the queue)."
        )));
        let queue_capacity_bytes = reg!(IntGauge::with_opts(ns(
            "queue_capacity_bytes",
            "Byte capacity of the queue (the disk budget in wal mode)."
        )));
        let batch_rows = reg!(Histogram::with_opts(
            HistogramOpts::from(ns("batch_rows", "Rows per batch sent to ClickHouse."))
                .buckets(exponential_buckets(1.0, 4.0, 10).expect("buckets"))
        ));
        let batch_bytes = reg!(Histogram::with_opts(
            HistogramOpts::from(ns(
                "batch_bytes",
                "Encoded bytes per batch sent to ClickHouse."
            ))
            .buckets(exponential_buckets(1024.0, 4.0, 10).expect("buckets"))
        ));
        let flushes = reg!(IntCounterVec::new(
            ns(
                "flushes_total",
                "Batches cut, by reason (rows|bytes|age|shutdown)."
            ),
            &["reason"]
        ));
        let insert_duration = reg!(HistogramVec::new(
            HistogramOpts::from(ns(
                "insert_duration_seconds",
                "Duration of INSERT requests to ClickHouse, by result (ok|error)."
            ))
            .buckets(exponential_buckets(0.005, 2.0, 14).expect("buckets")),
            &["result"]
        ));
        let rows_written = reg!(IntCounter::with_opts(ns(
            "rows_written_total",
            "Rows acknowledged by ClickHouse."
        )));
        let insert_errors = reg!(IntCounterVec::new(
            ns(
                "insert_errors_total",
                "Failed INSERT attempts, by whether they are retried (retriable=true|false)."
            ),
            &["retriable"]
        ));
        let rows_dropped = reg!(IntCounterVec::new(
            ns(
                "rows_dropped_total",
                "Accepted rows that will never reach ClickHouse, by cause. Should stay zero."
            ),
            &["cause"]
        ));
        let rows_rejected = reg!(IntCounterVec::new(
            ns(
                "rows_rejected_total",
                "Rows ClickHouse refused because of their data, written to the rejects table or file, by reason (parse|type|constraint|other)."
            ),
            &["reason"]
        ));
        let rejects_deferred = reg!(IntCounter::with_opts(ns(
            "rejects_deferred_total",
            "Refused rows kept neither in the rejects table nor in the rejects file (full or unwritable): not acknowledged, retried with backoff."
        )));
        let rejects_file_bytes = reg!(IntGauge::with_opts(ns(
            "rejects_file_bytes",
            "Bytes in the rejects file (<data-dir>/rejects.jsonl)."
        )));
        let rejects_file_capacity_bytes = reg!(IntGauge::with_opts(ns(
            "rejects_file_capacity_bytes",
            "Bound of the rejects file, carved out of the disk budget."
        )));
        let spool_bytes = reg!(IntGauge::with_opts(ns(
            "spool_bytes",
            "Bytes in the local write-ahead log (not yet acknowledged by ClickHouse, or not yet trimmed)."
        )));
        let spool_budget_bytes = reg!(IntGauge::with_opts(ns(
            "spool_budget_bytes",
            "Disk budget of the write-ahead log; past it callbacks get 503."
        )));
        let spool_oldest_age = reg!(IntGauge::with_opts(ns(
            "spool_oldest_unacked_age_seconds",
            "Age of the oldest callback not yet acknowledged by ClickHouse (0 when none)."
        )));
        let rollup_lag = reg!(IntGauge::with_opts(ns(
            "rollup_lag_seconds",
            "How far behind real time the daily rollups may be: their materialized views run in the INSERT that lands the callbacks, so the age of the oldest accepted callback not yet in ClickHouse (0 when none)."
        )));
        let wal_fsyncs = reg!(IntCounter::with_opts(ns(
            "wal_fsyncs_total",
            "Group commits (fsyncs) of the write-ahead log."
        )));
        let wal_fsync_duration = reg!(Histogram::with_opts(
            HistogramOpts::from(ns(
                "wal_fsync_duration_seconds",
                "Time of each group commit of the write-ahead log: writing the group (and starting a new segment when one falls due) and its fsync."
            ))
            .buckets(REQUEST_BUCKETS.to_vec())
        ));
        let wal_kept_evicted = reg!(IntCounter::with_opts(ns(
            "wal_kept_evicted_total",
            "Delivered write-ahead log segments deleted before --keep-delivered ran out, to make room for new callbacks."
        )));
        let wal_unwritable = reg!(IntGauge::with_opts(ns(
            "wal_unwritable",
            "1 while the write-ahead log cannot be written (its last write or fsync failed): callbacks get 503 and /readyz is not ready until a write succeeds again."
        )));
        let wal_damaged = reg!(IntCounterVec::new(
            ns(
                "wal_damaged_total",
                "Damaged write-ahead log regions found, by kind (torn_tail: truncated at start; quarantined: moved aside)."
            ),
            &["kind"]
        ));
        let clickhouse_up = reg!(IntGauge::with_opts(ns(
            "clickhouse_up",
            "1 when the last request to ClickHouse succeeded, 0 when it failed."
        )));
        let erasures_requested = reg!(IntCounter::with_opts(ns(
            "erasures_requested_total",
            "Erasure requests (one per device identifier of a gdpr_forget_device callback) this process found pending."
        )));
        let erasures_done = reg!(IntCounter::with_opts(ns(
            "erasures_done_total",
            "Erasure requests carried out: no row of the device is left in the callbacks and rejects tables."
        )));
        let erasures_pending = reg!(IntGauge::with_opts(ns(
            "erasures_pending",
            "Erasure requests not carried out yet, as of the last erasure round (at most 10,000 are read at once); 0 on a sink that does not hold the housekeeping lease."
        )));
        let erasure_oldest_age = reg!(IntGauge::with_opts(ns(
            "erasure_oldest_pending_age_seconds",
            "Age of the oldest erasure request not carried out yet (0 when none is pending)."
        )));
        let retention_partitions_dropped = reg!(IntCounter::with_opts(ns(
            "retention_partitions_dropped_total",
            "Monthly partitions dropped for --retention (18.16; modern servers use a TTL)."
        )));
        let erasures_refused = reg!(IntCounterVec::new(
            ns(
                "erasures_refused_total",
                "Erasure requests refused and marked so, by reason: too_long (an identifier longer than any device id), unknown_kind (not a device identifier this version knows)."
            ),
            &["reason"]
        ));
        let erasures_failed = reg!(IntCounter::with_opts(ns(
            "erasures_failed_total",
            "Times an erasure request failed on its own and was set aside to be tried again later (with backoff), while the other requests went on."
        )));
        let erasure_mutations = reg!(IntCounter::with_opts(ns(
            "erasure_mutations_total",
            "ALTER TABLE ... DELETE mutations this sink started for erasure requests (one per table and round with rows to erase)."
        )));
        let erasures_requested_again = reg!(IntCounter::with_opts(ns(
            "erasures_requested_again_total",
            "Erasure requests carried out whose device had rows again from before the request (brought back by replay, import, the export follower or a late callback), and that were requested again."
        )));
        let housekeeping_rounds = reg!(IntCounterVec::new(
            ns(
                "housekeeping_rounds_total",
                "Housekeeping rounds this sink ran, by task (erasure|retention); of several sinks on one table only the lease holder runs them."
            ),
            &["task"]
        ));
        let housekeeping_lease_held = reg!(IntGauge::with_opts(ns(
            "housekeeping_lease_held",
            "1 while this sink holds the housekeeping lease (runs erasure and retention rounds for the table), else 0."
        )));

        let by_route_and_outcome = |family: &HistogramVec| -> Vec<Vec<Histogram>> {
            Route::ALL
                .iter()
                .map(|r| {
                    Outcome::ALL
                        .iter()
                        .map(|o| family.with_label_values(&[r.as_str(), o.as_str()]))
                        .collect()
                })
                .collect()
        };
        let hot = Arc::new(Hot {
            requests: Route::ALL
                .iter()
                .map(|r| {
                    Outcome::ALL
                        .iter()
                        .map(|o| requests.with_label_values(&[r.as_str(), o.as_str()]))
                        .collect()
                })
                .collect(),
            durations: by_route_and_outcome(&request_duration),
            callbacks: activity::kinds()
                .chain(["unknown", "none"])
                .map(|k| (k, callbacks.with_label_values(&[k])))
                .collect(),
        });
        let insert_duration_by = InsertResult::ALL
            .iter()
            .map(|r| insert_duration.with_label_values(&[r.as_str()]))
            .collect::<Vec<_>>()
            .try_into()
            .expect("two results");
        let decode_problems = Counters::new(decode_problems);
        let connections_refused = Counters::new(connections_refused);
        let flushes = Counters::new(flushes);
        let insert_errors = Counters::new(insert_errors);
        let rows_dropped = Counters::new(rows_dropped);
        let rows_rejected = Counters::new(rows_rejected);
        let wal_damaged = Counters::new(wal_damaged);
        let export_files = reg!(IntCounterVec::new(
            ns(
                "export_files_total",
                "Export files the follower finished, by state (loaded|failed: unreadable, not CSV, foreign header; the reason is in the <table>_imports manifest)."
            ),
            &["state"]
        ));
        let export_files_pending = reg!(IntGauge::with_opts(ns(
            "export_files_pending",
            "Export files the follower's last listing found not loaded yet (neither loaded nor failed in the manifest)."
        )));
        let export_rows = reg!(IntCounterVec::new(
            ns(
                "export_rows_total",
                "Rows of export files the follower read, by outcome: new (activities the callbacks missed), present (already in the table), bad (unreadable lines), refused (kept in the rejects)."
            ),
            &["outcome"]
        ));
        let export_last_round = reg!(IntGauge::with_opts(ns(
            "export_last_round_timestamp_seconds",
            "When the follower last listed the exports completely (unix seconds; 0 before the first round)."
        )));
        let export_rounds = reg!(IntCounterVec::new(
            ns(
                "export_rounds_total",
                "Rounds of the export follower, by outcome (completed|failed: the listing, the manifest or ClickHouse failed; tried again next round)."
            ),
            &["outcome"]
        ));
        let export_rounds = Counters::new(export_rounds);
        let export_files = Counters::new(export_files);
        let export_rows = Counters::new(export_rows);
        let erasures_refused = Counters::new(erasures_refused);
        let housekeeping_rounds = Counters::new(housekeeping_rounds);
        Metrics {
            hot,
            registry,
            requests,
            request_duration,
            last_callback,
            build_info,
            callbacks,
            decode_problems,
            connections_refused,
            connections_open,
            held_bytes,
            held_budget_bytes,
            queue_rows_pushed,
            queue_bytes_pushed,
            queue_rows_popped,
            queue_bytes_popped,
            queue_rows,
            queue_bytes,
            queue_capacity_rows,
            queue_capacity_bytes,
            batch_rows,
            batch_bytes,
            flushes,
            insert_duration_by,
            rows_written,
            insert_errors,
            rows_dropped,
            rows_rejected,
            rejects_deferred,
            rejects_file_bytes,
            rejects_file_capacity_bytes,
            spool_bytes,
            spool_budget_bytes,
            spool_oldest_age,
            rollup_lag,
            oldest_unacked: Arc::new(AtomicU32::new(0)),
            wal_fsyncs,
            wal_fsync_duration,
            wal_kept_evicted,
            wal_unwritable,
            wal_damaged,
            clickhouse_up,
            erasures_requested,
            erasures_done,
            erasures_pending,
            erasure_oldest_age,
            oldest_erasure: Arc::new(AtomicU32::new(0)),
            retention_partitions_dropped,
            erasures_refused,
            erasures_failed,
            erasure_mutations,
            erasures_requested_again,
            housekeeping_rounds,
            housekeeping_lease_held,
            export_files,
            export_files_pending,
            export_rows,
            export_last_round,
            export_rounds,
        }
    }
}
