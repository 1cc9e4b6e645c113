//! The queue seam: what the HTTP side and the delivery side need from a queue. The memory queue
//! and the write-ahead log both implement it, so the handler, readiness, the batcher and start-up
//! never ask which one they have.
//!
//! - [`Producer`] (the HTTP workers' half): accept a row, report usage, close.
//! - [`Consumer`] (the delivery half): fill a batch, mark it in flight, acknowledge it.

use std::future::Future;
use std::io;

use super::{Batch, Limits, Refusal};

/// How full a queue is, as its owner knows it (not read back from metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// `memory queue` or `write-ahead log`.
    pub what: &'static str,
    /// Rows held and the row capacity, where rows are bounded.
    pub rows: Option<(u64, u64)>,
    /// Bytes held (unacknowledged, for the log) and the byte capacity (the disk budget).
    pub bytes: u64,
    pub capacity_bytes: u64,
    /// Why nothing can be taken now whatever the room (the log's last write failed), if so.
    pub fault: Option<String>,
}

impl Usage {
    /// Whether the next callback of up to `headroom` bytes would be taken.
    pub fn has_room(&self, headroom: u64) -> bool {
        let rows_ok = self.rows.is_none_or(|(n, cap)| n < cap);
        self.fault.is_none()
            && rows_ok
            && self.bytes.saturating_add(headroom) <= self.capacity_bytes
    }
}

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.what)?;
        if let Some((n, cap)) = self.rows {
            write!(f, " {n}/{cap} rows,")?;
        }
        write!(f, " {}/{} bytes", self.bytes, self.capacity_bytes)?;
        if let Some(fault) = &self.fault {
            write!(f, "; cannot be written: {fault}")?;
        }
        Ok(())
    }
}

/// The ingest half, held by every HTTP worker.
pub trait Producer: Clone + Send + Sync + 'static {
    /// Takes one encoded row; resolves once the row is held (durably, for the log), or refuses.
    fn accept(&self, row: Vec<u8>) -> impl Future<Output = Result<(), Refusal>> + Send;

    /// How full the queue is, for `/readyz`.
    fn usage(&self) -> Usage;

    /// Refuses further rows; what is held is still delivered.
    fn close(&self);
}

/// The delivery half.
pub trait Consumer: Send + 'static {
    /// Moves held rows into `batch` until it reaches the limits. Returns how many moved.
    fn fill(&mut self, batch: &mut Batch, limits: &Limits) -> io::Result<usize>;

    /// Waits until a row may have arrived or the queue was closed.
    fn wait(&mut self) -> impl Future<Output = ()> + Send;

    /// Closed for new rows, and everything read.
    fn is_finished(&self) -> bool;

    /// Records that `batch` is about to be inserted (so a crash re-sends it identically).
    fn begin(&mut self, batch: &Batch) -> io::Result<()>;

    /// ClickHouse acknowledged `batch`: its rows are no longer needed.
    fn ack(&mut self, batch: &Batch) -> io::Result<()>;

    /// Whether rows survive the process (what is not delivered at the deadline is kept).
    fn is_durable(&self) -> bool;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_counts_rows_and_bytes() {
        let u = Usage {
            what: "memory queue",
            rows: Some((9, 10)),
            bytes: 100,
            capacity_bytes: 200,
            fault: None,
        };
        assert!(u.has_room(100));
        assert!(!u.has_room(101));
        assert!(
            !Usage {
                rows: Some((10, 10)),
                ..u.clone()
            }
            .has_room(0)
        );
        assert_eq!(u.to_string(), "memory queue 9/10 rows, 100/200 bytes");
        let log = Usage {
            what: "write-ahead log",
            rows: None,
            bytes: 5,
            capacity_bytes: 10,
            fault: None,
        };
        assert_eq!(log.to_string(), "write-ahead log 5/10 bytes");
        let failing = Usage {
            fault: Some("Read-only file system (os error 30)".into()),
            ..log
        };
        assert!(!failing.has_room(0));
        assert_eq!(
            failing.to_string(),
            "write-ahead log 5/10 bytes; cannot be written: Read-only file system (os error 30)"
        );
    }
}
