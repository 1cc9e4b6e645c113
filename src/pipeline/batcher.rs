//! The delivery loop: fill a batch from the queue, cut it on rows, bytes, age or shutdown, hand
//! it to [`Deliverer`], acknowledge it to the queue. One batch in flight at a time, so while
//! ClickHouse is down nothing piles up in memory: the queue (or the log) holds it.

use std::time::Duration;

use super::deliver::Deliverer;
use super::queue::Consumer;
use super::{Batch, Limits};
use crate::metrics::{DropCause, FlushReason, Metrics};
use crate::shutdown::Shutdown;
use crate::sink::Store;

/// How the delivery loop ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Finished {
    /// Everything accepted was acknowledged.
    Drained,
    /// The shutdown deadline passed with rows not acknowledged (kept in the log in `wal` mode).
    Deadline { rows: usize },
}

/// Runs until the source is closed and drained, or the shutdown deadline passes.
pub async fn run<S: Store, C: Consumer>(
    mut source: C,
    limits: Limits,
    deliverer: &Deliverer<S>,
    shutdown: Shutdown,
    metrics: Metrics,
) -> Finished {
    loop {
        let Some((batch, reason)) = next_batch(&mut source, &limits, &metrics).await else {
            metrics.set_oldest_unacked(None);
            return Finished::Drained;
        };
        metrics.flushes.inc(reason);
        let mut batch = batch;
        batch.freeze();
        while let Err(e) = source.begin(&batch) {
            tracing::error!(error = %e, "write-ahead log: cannot record the batch in flight; retrying");
            if !shutdown.sleep(Duration::from_secs(1)).await {
                return Finished::Deadline { rows: batch.rows() };
            }
        }
        if let Err(gave_up) = deliverer.deliver(&batch, &shutdown).await {
            if source.is_durable() {
                tracing::warn!(
                    rows = gave_up.rows,
                    "shutdown deadline: rows stay in the write-ahead log for the next start"
                );
            } else {
                metrics
                    .rows_dropped
                    .inc_by(DropCause::ShutdownDeadline, gave_up.rows as u64);
                tracing::error!(
                    rows = gave_up.rows,
                    "shutdown deadline: rows in memory were not delivered"
                );
            }
            return Finished::Deadline { rows: gave_up.rows };
        }
        while let Err(e) = source.ack(&batch) {
            tracing::error!(error = %e, "write-ahead log: cannot record the acknowledgement; retrying");
            if !shutdown.sleep(Duration::from_secs(1)).await {
                break;
            }
        }
    }
}

/// Fills the next batch. `None` when the source is finished and nothing is left.
async fn next_batch(
    source: &mut impl Consumer,
    limits: &Limits,
    metrics: &Metrics,
) -> Option<(Batch, FlushReason)> {
    let mut batch = Batch::default();
    loop {
        if let Err(e) = source.fill(&mut batch, limits) {
            tracing::error!(error = %e, "reading the queue failed; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        update_age(&batch, metrics);
        if batch.rows() >= limits.max_rows {
            return Some((batch, FlushReason::Rows));
        }
        if batch.len_bytes() >= limits.max_bytes {
            return Some((batch, FlushReason::Bytes));
        }
        if source.is_finished() {
            // A last fill: rows may have landed between the fill and the check.
            let _ = source.fill(&mut batch, limits);
            return (!batch.is_empty()).then_some((batch, FlushReason::Shutdown));
        }
        match batch.started {
            // Waiting for a first row: wake up when one arrives.
            None => {
                tokio::select! {
                    _ = source.wait() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
            // Filling: look again at most every POLL (not at every arrival, which at high rates
            // would wake delivery thousands of times a second), or when the batch is due.
            Some(started) => {
                let age = started.elapsed();
                if age >= limits.max_age {
                    return Some((batch, FlushReason::Age));
                }
                tokio::time::sleep((limits.max_age - age).min(POLL)).await;
            }
        }
    }
}

/// How often a batch being filled looks for more rows.
const POLL: Duration = Duration::from_millis(20);

/// Tells the metrics since when the oldest row of the batch waits (its age keeps growing while
/// the batch is retried).
fn update_age(batch: &Batch, metrics: &Metrics) {
    let since = match (batch.log, batch.started) {
        (Some(log), _) => Some(log.oldest_written),
        (None, Some(started)) => {
            let waited = u32::try_from(started.elapsed().as_secs()).unwrap_or(u32::MAX);
            Some(crate::clock::unix_now().saturating_sub(waited))
        }
        (None, None) => None,
    };
    metrics.set_oldest_unacked(since);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::deliver::Backoff;
    use crate::pipeline::memory::MemoryQueue;
    use crate::sink::twin::TwinStore;
    use std::sync::Arc;

    #[tokio::test]
    async fn memory_rows_are_batched_and_drained_on_close() {
        let metrics = Metrics::new();
        let q = Arc::new(MemoryQueue::new(1000, 1 << 20, metrics.clone()));
        for i in 0..25u8 {
            q.push(vec![4, i, i, i]).unwrap();
        }
        q.close();
        let limits = Limits {
            max_rows: 10,
            max_bytes: 1 << 20,
            max_age: Duration::from_secs(60),
        };
        let d = Deliverer::new(
            TwinStore::new(),
            metrics.clone(),
            Backoff::default(),
            crate::pipeline::deliver::RejectsFile::new("unused".into(), 0),
        );
        let done = run(q, limits, &d, Shutdown::new(), metrics.clone()).await;
        assert_eq!(done, Finished::Drained);
        assert_eq!(metrics.rows_written.get(), 25);
        assert_eq!(metrics.flushes.get(FlushReason::Rows), 2);
        assert_eq!(metrics.flushes.get(FlushReason::Shutdown), 1);
    }

    #[tokio::test]
    async fn memory_rows_of_an_insert_hanging_at_the_deadline_are_counted_as_dropped() {
        let metrics = Metrics::new();
        let q = Arc::new(MemoryQueue::new(1000, 1 << 20, metrics.clone()));
        for i in 0..7u8 {
            q.push(vec![4, i, i, i]).unwrap();
        }
        q.close();
        let limits = Limits {
            max_rows: 100,
            max_bytes: 1 << 20,
            max_age: Duration::from_millis(10),
        };
        let store = TwinStore::new();
        store.hang_next(1);
        let d = Deliverer::new(
            store,
            metrics.clone(),
            Backoff::default(),
            crate::pipeline::deliver::RejectsFile::new("unused".into(), 0),
        );
        let shutdown = Shutdown::new();
        shutdown.begin(Duration::from_millis(200));
        let started = std::time::Instant::now();
        let done = run(q, limits, &d, shutdown, metrics.clone()).await;
        assert_eq!(done, Finished::Deadline { rows: 7 });
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(metrics.rows_dropped.get(DropCause::ShutdownDeadline), 7);
        assert_eq!(metrics.rows_written.get(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_partial_batch_is_flushed_by_age() {
        let metrics = Metrics::new();
        let q = Arc::new(MemoryQueue::new(1000, 1 << 20, metrics.clone()));
        q.push(vec![4, 1, 1, 1]).unwrap();
        let limits = Limits {
            max_rows: 10,
            max_bytes: 1 << 20,
            max_age: Duration::from_millis(500),
        };
        let mut source = q;
        let start = tokio::time::Instant::now();
        let (batch, reason) = next_batch(&mut source, &limits, &metrics).await.unwrap();
        assert_eq!(reason, FlushReason::Age);
        assert_eq!(batch.rows(), 1);
        assert!(start.elapsed() >= Duration::from_millis(500));
    }
}
