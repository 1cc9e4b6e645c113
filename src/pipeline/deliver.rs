//! Owns a batch until ClickHouse acknowledges it.
//!
//! - Transient and unknown errors: retry the same rows with exponential backoff and full jitter,
//!   for as long as it takes (the queue fills meanwhile and 503s hand the retry to Adjust), or
//!   until the shutdown deadline (then the rows stay in the log, or are counted as dropped in
//!   memory mode). Only an error ClickHouse names as caused by the data sends rows to the rejects.
//! - Shape errors (an INSERT touching more partitions than the server allows): cut the batch into
//!   parts of fewer partitions ([`split_by_partition`]) and land each part.
//! - Data errors: split the batch in halves until the offending rows are alone, write those to the
//!   rejects table (or the bounded rejects file when that fails too) and deliver the rest. When
//!   both halves fail with the same error, the cause is not a few rows but the table or the server
//!   (systemic): the rows are kept and retried with backoff, not split further.
//! - Every request races the shutdown deadline: an insert still in flight then is abandoned (its
//!   rows stay in the log, or are counted as dropped in memory mode).

use std::ops::Range;
use std::time::{Duration, Instant};

use rand::Rng;

use super::batch::split_by_partition;
use super::{Batch, LateRows};
use crate::metrics::{InsertResult, Metrics, Retriable};
use crate::shutdown::Shutdown;
use crate::sink::classify::partition_limit;
use crate::sink::{ErrorClass, Reject, Store, StoreError};

mod rejects_file;
pub use rejects_file::{RejectsFile, share_of_budget};

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

/// The partition limit assumed when a "too many partitions" error does not name one (the
/// default of `max_partitions_per_insert_block`).
const DEFAULT_PARTITION_LIMIT: usize = 100;

/// Delivery stopped at the shutdown deadline with rows not acknowledged.
#[derive(Debug, thiserror::Error)]
#[error("{rows} rows not acknowledged by the shutdown deadline")]
pub struct GaveUp {
    pub rows: usize,
}

/// The shutdown deadline passed during a request or a backoff.
struct Deadline;

/// Rows of a batch still to land, with the error they already failed with (a half tried once
/// while isolating refused rows).
struct Part {
    range: Range<usize>,
    failed: Option<StoreError>,
}

/// What became of a refused row.
enum Kept {
    /// In the rejects table or the rejects file.
    Yes,
    /// Neither could take it: the row stays unacknowledged and is retried.
    Nowhere,
}

pub struct Deliverer<S> {
    store: S,
    metrics: Metrics,
    backoff: Backoff,
    /// Where rejected rows go when the rejects table cannot be written.
    rejects_file: RejectsFile,
    /// Where batches landed long after their receipt are noted (`serve`).
    late: Option<LateRows>,
}

impl<S: Store> Deliverer<S> {
    pub fn new(store: S, metrics: Metrics, backoff: Backoff, rejects_file: RejectsFile) -> Self {
        metrics.rejects_file_bytes.set(rejects_file.size() as i64);
        metrics
            .rejects_file_capacity_bytes
            .set(rejects_file.max_bytes() as i64);
        Deliverer {
            store,
            metrics,
            backoff,
            rejects_file,
            late: None,
        }
    }

    /// Notes in `late` the batches landed long after their receipt.
    pub fn with_late(mut self, late: LateRows) -> Self {
        self.late = Some(late);
        self
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Prepares the store before the first batch, trying again with backoff while it fails,
    /// until it succeeds or the sink starts stopping (the batches then take their chances as
    /// always). `serve` does so at start: the tables exist from then on for the export follower
    /// and housekeeping, not only from the first callback.
    pub async fn prepare(&self, shutdown: &Shutdown) {
        let mut attempt = 0;
        loop {
            match self.store.prepare().await {
                Ok(()) => return,
                // Said once: inserts report their own failures meanwhile.
                Err(e) if attempt == 0 => {
                    attempt += 1;
                    tracing::warn!(error = %e, "preparing the tables failed; trying again");
                }
                Err(e) => {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, "preparing the tables failed again");
                }
            }
            if !shutdown.pause(self.backoff.delay(attempt)).await {
                return;
            }
        }
    }

    /// The store, once delivery is over.
    pub fn into_store(self) -> S {
        self.store
    }

    /// Delivers every row of `batch`: stored, or isolated into the rejects.
    pub async fn deliver(&self, batch: &Batch, shutdown: &Shutdown) -> Result<(), GaveUp> {
        self.metrics.batch_rows.observe(batch.rows() as f64);
        self.metrics.batch_bytes.observe(batch.len_bytes() as f64);
        let mut todo = vec![Part {
            range: 0..batch.rows(),
            failed: None,
        }];
        while let Some(part) = todo.pop() {
            if let Err(rows) = self.land(batch, part, &mut todo, shutdown).await {
                let rows = rows + todo.iter().map(|p| p.range.len()).sum::<usize>();
                return Err(GaveUp { rows });
            }
        }
        if let Some(late) = &self.late {
            late.landed(batch, crate::clock::unix_now());
        }
        Ok(())
    }

    /// Lands rows `part.range`, or cuts them into parts pushed onto `todo`. `Err` holds the rows
    /// of the range not landed when the shutdown deadline passed.
    async fn land(
        &self,
        batch: &Batch,
        part: Part,
        todo: &mut Vec<Part>,
        shutdown: &Shutdown,
    ) -> Result<(), usize> {
        let range = part.range;
        let mut known = part.failed;
        let mut attempt = 0u32;
        // The code of a data error both halves failed with: retried, not split again.
        let mut systemic: Option<Option<u32>> = None;
        loop {
            let err = match known.take() {
                Some(e) => e,
                None => match self.try_insert(batch, range.clone(), shutdown).await {
                    Err(Deadline) => return Err(range.len()),
                    Ok(Ok(())) => return Ok(()),
                    Ok(Err(e)) => e,
                },
            };
            let class = match err.class {
                ErrorClass::Data if systemic == Some(err.code) => ErrorClass::Transient,
                c => c,
            };
            match class {
                ErrorClass::Data if range.len() == 1 => {
                    match self.reject(batch, range.start, &err, shutdown).await {
                        Err(Deadline) => return Err(1),
                        Ok(Kept::Yes) => return Ok(()),
                        Ok(Kept::Nowhere) => {}
                    }
                }
                ErrorClass::Data => {
                    let mid = range.start + range.len() / 2;
                    let (a, b) = (range.start..mid, mid..range.end);
                    tracing::warn!(rows = range.len(), error = %err, "ClickHouse refused a batch; isolating the rows it refuses");
                    let ea = match self.try_insert(batch, a.clone(), shutdown).await {
                        Err(Deadline) => return Err(range.len()),
                        Ok(r) => r.err(),
                    };
                    let eb = match self.try_insert(batch, b.clone(), shutdown).await {
                        Err(Deadline) => return Err(b.len() + ea.map_or(0, |_| a.len())),
                        Ok(r) => r.err(),
                    };
                    let same = |e: &Option<StoreError>| {
                        e.as_ref()
                            .is_some_and(|e| e.class == ErrorClass::Data && e.code == err.code)
                    };
                    let parts = vec![(b, eb), (a, ea)];
                    if same(&parts[0].1) && same(&parts[1].1) && range.len() >= 4 {
                        // Both halves refused alike: alone, the first row of each half tells a
                        // few bad rows (which land or fail apart) from a cause that refuses every
                        // row (the table or the server).
                        let mut probed = Vec::new();
                        for (half, e) in parts {
                            let first = half.start..half.start + 1;
                            let r = match self.try_insert(batch, first.clone(), shutdown).await {
                                // Both halves failed: none of the range has landed.
                                Err(Deadline) => return Err(range.len()),
                                Ok(r) => r.err(),
                            };
                            probed.push((half, e, r));
                        }
                        if probed.iter().all(|(_, _, r)| same(r)) {
                            tracing::error!(rows = range.len(), error = %err, "ClickHouse refuses every part of the batch the same way: the cause is the table or the server, not the rows; retrying with backoff");
                            systemic = Some(err.code);
                        } else {
                            for (half, _, r) in probed {
                                let rest = half.start + 1..half.end;
                                if !rest.is_empty() {
                                    todo.push(Part {
                                        range: rest,
                                        failed: None,
                                    });
                                }
                                if let Some(e) = r {
                                    todo.push(Part {
                                        range: half.start..half.start + 1,
                                        failed: Some(e),
                                    });
                                }
                            }
                            return Ok(());
                        }
                    } else {
                        for (r, e) in parts {
                            if let Some(e) = e {
                                todo.push(Part {
                                    range: r,
                                    failed: Some(e),
                                });
                            }
                        }
                        return Ok(());
                    }
                }
                ErrorClass::Shape if range.len() > 1 => {
                    let limit = partition_limit(&err.message).unwrap_or(DEFAULT_PARTITION_LIMIT);
                    let mut parts = split_by_partition(batch, range.clone(), limit);
                    if parts.len() < 2 {
                        // Within the limit as this sink counts, yet refused: halve it.
                        let mid = range.start + range.len() / 2;
                        parts = vec![range.start..mid, mid..range.end];
                    }
                    tracing::warn!(
                        rows = range.len(),
                        parts = parts.len(),
                        limit,
                        "ClickHouse refused a batch touching too many partitions; inserting it in parts"
                    );
                    todo.extend(parts.into_iter().rev().map(|range| Part {
                        range,
                        failed: None,
                    }));
                    return Ok(());
                }
                _ => {}
            }
            attempt += 1;
            let delay = self.backoff.delay(attempt);
            tracing::warn!(attempt, rows = range.len(), code = ?err.code, retry_in_ms = delay.as_millis() as u64, error = %err, "insert failed; retrying");
            if shutdown.deadline_passed() || !shutdown.sleep(delay).await {
                return Err(range.len());
            }
        }
    }

    /// One INSERT of rows `range`, abandoned when the shutdown deadline passes first.
    async fn try_insert(
        &self,
        batch: &Batch,
        range: Range<usize>,
        shutdown: &Shutdown,
    ) -> Result<Result<(), StoreError>, Deadline> {
        let token = batch.token(range.clone());
        let body = batch.body(range.clone());
        let started = Instant::now();
        let result = tokio::select! {
            biased;
            r = self.store.insert(&body, &token) => r,
            () = shutdown.deadline() => {
                tracing::warn!(rows = range.len(), "shutdown deadline: abandoning the insert in flight");
                return Err(Deadline);
            }
        };
        let elapsed = started.elapsed().as_secs_f64();
        match &result {
            Ok(()) => {
                self.metrics.insert_took(InsertResult::Ok, elapsed);
                self.metrics.rows_written.inc_by(range.len() as u64);
                self.metrics.clickhouse_up.set(1);
            }
            Err(e) => {
                self.metrics.insert_took(InsertResult::Error, elapsed);
                self.metrics.insert_errors.inc(if e.class.is_retriable() {
                    Retriable::Yes
                } else {
                    Retriable::No
                });
                // A server that names a data or shape error is up.
                self.metrics
                    .clickhouse_up
                    .set(i64::from(!e.class.is_retriable()));
            }
        }
        Ok(result)
    }

    /// Stores one refused row in the rejects table, or the rejects file when that fails.
    async fn reject(
        &self,
        batch: &Batch,
        i: usize,
        err: &StoreError,
        shutdown: &Shutdown,
    ) -> Result<Kept, Deadline> {
        let reject = Reject::new(batch.row(i), err.message.clone(), crate::clock::unix_now());
        tracing::error!(callback_id = reject.callback_id, error = %err, "ClickHouse refused a row; it goes to the rejects table");
        let stored = tokio::select! {
            biased;
            r = self.store.insert_rejects(std::slice::from_ref(&reject)) => r,
            () = shutdown.deadline() => return Err(Deadline),
        };
        if let Err(e) = stored {
            tracing::error!(error = %e, path = %self.rejects_file.path().display(), "rejects table not writable; writing the rejects file");
            let written = self.rejects_file.append(&reject);
            self.metrics
                .rejects_file_bytes
                .set(self.rejects_file.size() as i64);
            if let Err(e) = written {
                // Nowhere to keep it: the row is not acknowledged (it stays in the log or the
                // queue) and is retried; nothing is lost.
                tracing::error!(error = %e, callback_id = reject.callback_id, "refused row kept undelivered; retrying");
                self.metrics.rejects_deferred.inc();
                return Ok(Kept::Nowhere);
            }
        }
        self.metrics
            .rows_rejected
            .inc(crate::sink::classify::reject_reason(err.code));
        Ok(Kept::Yes)
    }
}

#[cfg(test)]
mod tests;
