//! From an accepted, encoded row to a ClickHouse acknowledgement.
//!
//! ```text
//! HTTP worker ──Producer::accept──► queue ──Consumer::fill──► Batch ──► deliver ──► Consumer::ack
//!                                   memory: bounded VecDeque (rows + bytes)
//!                                   wal:    write-ahead log, group commit, disk budget
//! ```
//! - [`queue`]: the seam: [`queue::Producer`] and [`queue::Consumer`], implemented by both queues.
//! - [`batch`]: a batch of encoded rows, and its deduplication token.
//! - [`memory`]: the in-memory queue (`--durability memory`).
//! - [`wal`]: the write-ahead log (`--durability wal`): 200 only after fsync; trimmed on ack.
//! - [`batcher`]: cuts batches by rows, bytes, age and shutdown.
//! - [`deliver`]: owns a batch until ClickHouse acknowledges it.
//! - [`late`]: rows delivered long after their receipt, for the erasure check.

pub mod batch;
pub mod batcher;
pub mod deliver;
pub mod late;
pub mod memory;
pub mod queue;
pub mod settings;
pub mod wal;

pub use batch::{Batch, LogRange};
pub use late::LateRows;
pub use queue::{Consumer, Producer, Usage};

/// Why a row could not be accepted now (answered 503 with `Retry-After`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the queue is full")]
    Full,
    #[error("the write-ahead log has used its disk budget (or its disk is nearly full)")]
    DiskBudget,
    #[error("the sink is shutting down")]
    ShuttingDown,
    #[error("the write-ahead log cannot be written")]
    Io,
}

/// When to cut a batch.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_rows: usize,
    pub max_bytes: usize,
    pub max_age: std::time::Duration,
}
