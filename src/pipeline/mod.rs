//! From an accepted, encoded row to a ClickHouse acknowledgement.
//!
//! ```text
//! HTTP worker ──accept(row)──► Queue ──fill──► Batch ──► deliver (retry, isolate) ──► ack
//!                              memory: bounded VecDeque (rows + bytes)
//!                              wal:    write-ahead log, group commit, disk budget
//! ```
//! - [`memory`]: the in-memory queue (`--durability memory`).
//! - [`wal`]: the write-ahead log (`--durability wal`): 200 only after fsync; trimmed on ack.
//! - [`batcher`]: cuts batches by rows, bytes, age and shutdown.
//! - [`deliver`]: owns a batch until ClickHouse acknowledges it.

pub mod batcher;
pub mod deliver;
pub mod memory;
pub mod wal;

use tokio::time::Instant;

/// Why a row could not be accepted now (answered 503 with `Retry-After`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the queue is full")]
    Full,
    #[error("the write-ahead log has used its disk budget")]
    DiskBudget,
    #[error("the sink is shutting down")]
    ShuttingDown,
    #[error("the write-ahead log cannot be written")]
    Io,
}

/// A batch: encoded rows concatenated, with their boundaries so it can be split.
#[derive(Debug, Default)]
pub struct Batch {
    pub data: Vec<u8>,
    /// `data`, handed over to the store without copying (see [`Batch::freeze`]).
    frozen: Option<bytes::Bytes>,
    /// Start offset of each row in `data`.
    pub offsets: Vec<usize>,
    /// When the first row entered the batch (drives the age flush).
    pub started: Option<Instant>,
    /// Identifies the batch's content for server-side insert deduplication; the same rows get the
    /// same token when replayed from the log.
    pub token: String,
    /// Where the batch starts and ends in the log (`wal` mode), to trim once acknowledged.
    pub log_start: Option<wal::Position>,
    pub log_end: Option<wal::Position>,
    /// Unix seconds when the oldest row of the batch was written to the log (`wal` mode).
    pub oldest_written: Option<u32>,
}

impl Batch {
    pub fn rows(&self) -> usize {
        self.offsets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Ends filling: the rows become shared, so sending them (whole or in parts, and again on a
    /// retry) copies nothing.
    pub fn freeze(&mut self) {
        if self.frozen.is_none() {
            self.frozen = Some(bytes::Bytes::from(std::mem::take(&mut self.data)));
        }
    }

    /// All rows' bytes.
    pub fn bytes(&self) -> &[u8] {
        self.frozen.as_deref().unwrap_or(&self.data)
    }

    /// Rows `range` as shared bytes (a view of the frozen batch; a copy if not frozen).
    pub fn shared(&self, range: std::ops::Range<usize>) -> bytes::Bytes {
        let (start, end) = self.byte_range(range);
        match &self.frozen {
            Some(b) => b.slice(start..end),
            None => bytes::Bytes::copy_from_slice(&self.data[start..end]),
        }
    }

    fn byte_range(&self, range: std::ops::Range<usize>) -> (usize, usize) {
        let total = self.bytes().len();
        let start = self.offsets.get(range.start).copied().unwrap_or(total);
        let end = self.offsets.get(range.end).copied().unwrap_or(total);
        (start, end)
    }

    pub fn push(&mut self, row: &[u8]) {
        assert!(self.frozen.is_none(), "rows pushed into a frozen batch");
        if self.started.is_none() {
            self.started = Some(Instant::now());
        }
        self.offsets.push(self.data.len());
        self.data.extend_from_slice(row);
    }

    /// The bytes of row `i`.
    pub fn row(&self, i: usize) -> &[u8] {
        let (start, end) = self.byte_range(i..i + 1);
        &self.bytes()[start..end]
    }

    /// The bytes of rows `range`, contiguous.
    pub fn rows_bytes(&self, range: std::ops::Range<usize>) -> &[u8] {
        let (start, end) = self.byte_range(range);
        &self.bytes()[start..end]
    }
}

/// When to cut a batch.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_rows: usize,
    pub max_bytes: usize,
    pub max_age: std::time::Duration,
}
