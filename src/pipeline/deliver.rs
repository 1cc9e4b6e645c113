//! Owns a batch until ClickHouse acknowledges it.
//!
//! - Transient errors: retry the same rows with exponential backoff and full jitter, for as long
//!   as it takes (the queue fills meanwhile and 503s hand the retry to Adjust), or until the
//!   shutdown deadline (then the rows stay in the log, or are counted as dropped in memory mode).
//! - Data errors: split the batch in halves until the offending rows are alone, write those to the
//!   rejects table (or the rejects file when that fails too) and deliver the rest.
//! - Unknown errors: retried a few times, then handled as data errors so nothing blocks for ever.

use std::io::Write;
use std::ops::Range;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rand::Rng;

use super::Batch;
use crate::metrics::{DropCause, InsertResult, Metrics, Retriable};
use crate::shutdown::Shutdown;
use crate::sink::{ErrorClass, Reject, Store, StoreError};

/// Backoff between retries.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (1-based): full jitter over an exponential cap.
    pub fn delay(&self, attempt: u32) -> Duration {
        let cap = self
            .initial
            .saturating_mul(1u32 << attempt.min(16).saturating_sub(1))
            .min(self.max);
        let ms = cap.as_millis().max(1) as u64;
        Duration::from_millis(rand::rng().random_range(ms / 2..=ms))
    }
}

/// Unknown errors are retried this many times before the rows are isolated.
const UNKNOWN_RETRIES: u32 = 5;

/// Delivery stopped at the shutdown deadline with rows not acknowledged.
#[derive(Debug, thiserror::Error)]
#[error("{rows} rows not acknowledged by the shutdown deadline")]
pub struct GaveUp {
    pub rows: usize,
}

pub struct Deliverer<S> {
    store: S,
    metrics: Metrics,
    backoff: Backoff,
    /// Where rejected rows go when the rejects table cannot be written.
    rejects_file: PathBuf,
}

impl<S: Store> Deliverer<S> {
    pub fn new(store: S, metrics: Metrics, backoff: Backoff, rejects_file: PathBuf) -> Self {
        Deliverer {
            store,
            metrics,
            backoff,
            rejects_file,
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Delivers every row of `batch`: stored, or isolated into the rejects.
    pub async fn deliver(&self, batch: &Batch, shutdown: &Shutdown) -> Result<(), GaveUp> {
        self.metrics.batch_rows.observe(batch.rows() as f64);
        self.metrics.batch_bytes.observe(batch.len_bytes() as f64);
        let mut todo: Vec<Range<usize>> = Vec::new();
        todo.push(0..batch.rows());
        while let Some(range) = todo.pop() {
            let token = batch.token(range.clone());
            let mut attempt = 0u32;
            loop {
                let started = Instant::now();
                let result = self
                    .store
                    .insert(batch.shared(range.clone()), range.len(), &token)
                    .await;
                let elapsed = started.elapsed().as_secs_f64();
                let err = match result {
                    Ok(()) => {
                        self.metrics.insert_took(InsertResult::Ok, elapsed);
                        self.metrics.rows_written.inc_by(range.len() as u64);
                        self.metrics.clickhouse_up.set(1);
                        break;
                    }
                    Err(e) => e,
                };
                self.metrics.insert_took(InsertResult::Error, elapsed);
                attempt += 1;
                let class = match err.class {
                    ErrorClass::Unknown if attempt > UNKNOWN_RETRIES => ErrorClass::Data,
                    c => c,
                };
                self.metrics.insert_errors.inc(if class.is_retriable() {
                    Retriable::Yes
                } else {
                    Retriable::No
                });
                if class == ErrorClass::Data {
                    self.metrics.clickhouse_up.set(1);
                    if range.len() == 1 {
                        self.reject(batch, range.start, &err).await;
                    } else {
                        let mid = range.start + range.len() / 2;
                        todo.push(mid..range.end);
                        todo.push(range.start..mid);
                        tracing::warn!(rows = range.len(), error = %err, "ClickHouse refused a batch; isolating the rows it refuses");
                    }
                    break;
                }
                self.metrics.clickhouse_up.set(0);
                let delay = self.backoff.delay(attempt);
                tracing::warn!(attempt, rows = range.len(), retry_in_ms = delay.as_millis() as u64, error = %err, "insert failed; retrying");
                if shutdown.deadline_passed() || !shutdown.sleep(delay).await {
                    let rows = range.len() + todo.iter().map(|r| r.len()).sum::<usize>();
                    return Err(GaveUp { rows });
                }
            }
        }
        Ok(())
    }

    /// Stores one refused row in the rejects table, or the rejects file when that fails.
    async fn reject(&self, batch: &Batch, i: usize, err: &StoreError) {
        let reject = Reject::new(batch.row(i), err.message.clone(), crate::clock::unix_now());
        self.metrics
            .rows_rejected
            .inc(crate::sink::classify::reject_reason(err.code));
        tracing::error!(callback_id = reject.callback_id, error = %err, "ClickHouse refused a row; it goes to the rejects table");
        if let Err(e) = self
            .store
            .insert_rejects(std::slice::from_ref(&reject))
            .await
        {
            tracing::error!(error = %e, path = %self.rejects_file.display(), "rejects table not writable; writing the rejects file");
            if let Err(e) = append_reject_file(&self.rejects_file, &reject) {
                // Nowhere left to keep it: this is the one place a row can be lost, and it is counted.
                tracing::error!(error = %e, "rejects file not writable; row dropped");
                self.metrics.rows_dropped.inc(DropCause::RejectUnwritable);
            }
        }
    }
}

fn append_reject_file(path: &PathBuf, r: &Reject) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let line = serde_json::json!({
        "rejected_at": r.rejected_at,
        "callback_id": r.callback_id.to_string(),
        "error": r.error,
        "row": serde_json::from_str::<serde_json::Value>(&r.row_json).unwrap_or_default(),
    });
    writeln!(f, "{line}")?;
    f.sync_data()
}

#[cfg(test)]
mod tests;
