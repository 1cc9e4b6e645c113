//! A batch: encoded rows concatenated, with their boundaries, where they came from, and the one
//! place its deduplication token is minted.

use std::ops::Range;

use tokio::time::Instant;

use super::wal::Position;

/// Where a batch lies in the write-ahead log (`wal` mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRange {
    /// Identifies the log (random, created with it): two logs never share tokens.
    pub log_id: u64,
    pub start: Position,
    pub end: Position,
    /// Unix seconds when the oldest row of the batch was written to the log.
    pub oldest_written: u32,
}

/// A batch of encoded rows.
#[derive(Debug)]
pub struct Batch {
    data: Vec<u8>,
    /// `data`, handed over to the store without copying (see [`Batch::freeze`]).
    frozen: Option<bytes::Bytes>,
    /// Start offset of each row in `data`.
    offsets: Vec<usize>,
    /// When the first row entered the batch (drives the age flush).
    pub started: Option<Instant>,
    /// Set by the write-ahead log; `None` for the memory queue.
    pub log: Option<LogRange>,
    /// Random, for batches that are not in a log (a memory batch is never re-sent after a crash).
    nonce: u64,
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            data: Vec::new(),
            frozen: None,
            offsets: Vec::new(),
            started: None,
            log: None,
            nonce: rand::random(),
        }
    }
}

impl Batch {
    pub fn rows(&self) -> usize {
        self.offsets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Bytes of every row.
    pub fn len_bytes(&self) -> usize {
        self.bytes().len()
    }

    /// The token that identifies rows `range` of this batch for server-side insert deduplication.
    ///
    /// A batch from the log gets `wal-<log id>-<start>-<end>`: the same rows re-cut after a crash
    /// get the same token, and no other log (another sink, a replaced data directory) mints it. A
    /// part of a batch (when a refused batch is split) gets the batch's token with its row range.
    pub fn token(&self, range: Range<usize>) -> String {
        let base = match &self.log {
            Some(l) => format!("wal-{:016x}-{}-{}", l.log_id, l.start, l.end),
            None => format!("mem-{:016x}", self.nonce),
        };
        if range.start == 0 && range.end >= self.rows() {
            base
        } else {
            format!("{base}/{}-{}", range.start, range.end)
        }
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
    pub fn shared(&self, range: Range<usize>) -> bytes::Bytes {
        let (start, end) = self.byte_range(range);
        match &self.frozen {
            Some(b) => b.slice(start..end),
            None => bytes::Bytes::copy_from_slice(&self.data[start..end]),
        }
    }

    fn byte_range(&self, range: Range<usize>) -> (usize, usize) {
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
    pub fn rows_bytes(&self, range: Range<usize>) -> &[u8] {
        let (start, end) = self.byte_range(range);
        &self.bytes()[start..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_the_log_and_the_range() {
        let mut b = Batch::default();
        for i in 0..4u8 {
            b.push(&[i]);
        }
        let mem = b.token(0..4);
        assert!(mem.starts_with("mem-"), "{mem}");
        assert_eq!(b.token(1..3), format!("{mem}/1-3"));
        assert_ne!(Batch::default().token(0..0), Batch::default().token(0..0));

        let range = |log_id| LogRange {
            log_id,
            start: Position {
                segment: 1,
                offset: 0,
            },
            end: Position {
                segment: 1,
                offset: 40,
            },
            oldest_written: 0,
        };
        b.log = Some(range(7));
        assert_eq!(b.token(0..4), "wal-0000000000000007-1:0-1:40");
        b.log = Some(range(8));
        assert_ne!(b.token(0..4), "wal-0000000000000007-1:0-1:40");
    }
}
