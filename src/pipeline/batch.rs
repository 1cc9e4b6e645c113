//! A batch: encoded rows concatenated, with their boundaries, where they came from, and the one
//! place its deduplication token is minted.

use std::ops::Range;

use tokio::time::Instant;

use super::wal::Position;
use crate::sink::Rows;

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
    /// Start offset of each row in `data`, in the order the rows were pushed.
    offsets: Vec<usize>,
    /// Once frozen, the rows in the table's order (indexes into `offsets`); `None` while filling
    /// and when they were pushed in that order.
    order: Option<Vec<u32>>,
    /// When the first row entered the batch (drives the age flush).
    pub started: Option<Instant>,
    /// Set by the write-ahead log; `None` for the memory queue.
    pub log: Option<LogRange>,
    /// For batches that are not in a log: random for a memory batch (never re-sent after a
    /// crash), derived from the content for an imported one (the same rows, the same token).
    nonce: u64,
    /// The token's prefix for batches that are not in a log (`mem`, `import`).
    origin: &'static str,
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            data: Vec::new(),
            frozen: None,
            offsets: Vec::new(),
            order: None,
            started: None,
            log: None,
            nonce: rand::random(),
            origin: "mem",
        }
    }
}

impl Batch {
    /// An empty batch of imported rows whose token is `import-<key>` (`key` derived from the
    /// rows, so importing the same rows again mints the same token).
    pub fn imported(key: u64) -> Batch {
        Batch {
            nonce: key,
            origin: "import",
            ..Batch::default()
        }
    }

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
            None => format!("{}-{:016x}", self.origin, self.nonce),
        };
        if range.start == 0 && range.end >= self.rows() {
            base
        } else {
            format!("{base}/{}-{}", range.start, range.end)
        }
    }

    /// Ends filling: the rows are put in the table's order ([`Batch::sort_rows`]) and become
    /// shared, so sending them (whole or in parts, and again on a retry) copies nothing but
    /// what the order moves, a block at a time ([`Body`]).
    pub fn freeze(&mut self) {
        if self.frozen.is_none() {
            self.sort_rows();
            self.frozen = Some(bytes::Bytes::from(std::mem::take(&mut self.data)));
        }
    }

    /// Orders the rows by the table's sorting key ([`crate::row::sort_key`]; rows that do not
    /// read as one keep their place before the others), stably: the same rows always come out
    /// in the same order, so a batch re-cut after a crash is sent byte for byte as before.
    /// ClickHouse then finds each part's block already sorted and skips permuting every column.
    /// Only the order is kept: the rows stay where they are, and [`Body`] sends them in order
    /// (a sorted copy of the whole batch would double the memory a batch takes).
    fn sort_rows(&mut self) {
        let n = self.rows();
        if n < 2 {
            return;
        }
        let keys: Vec<_> = (0..n)
            .map(|i| crate::row::sort_key(self.stored(i)))
            .collect();
        if keys.windows(2).all(|w| w[0] <= w[1]) {
            return;
        }
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_by(|&a, &b| keys[a as usize].cmp(&keys[b as usize]));
        self.order = Some(order);
    }

    /// All rows' bytes, as stored (in the order they were pushed).
    fn bytes(&self) -> &[u8] {
        self.frozen.as_deref().unwrap_or(&self.data)
    }

    /// Where stored row `i` starts (the end of the data for `i == rows()`).
    fn start_of(&self, i: usize) -> usize {
        self.offsets
            .get(i)
            .copied()
            .unwrap_or_else(|| self.bytes().len())
    }

    /// Stored row `i` (in the order rows were pushed).
    fn stored(&self, i: usize) -> &[u8] {
        &self.bytes()[self.start_of(i)..self.start_of(i + 1)]
    }

    /// Rows `range` (in the table's order once frozen), as the store reads them.
    pub fn body(&self, range: Range<usize>) -> Body<'_> {
        Body { batch: self, range }
    }

    pub fn push(&mut self, row: &[u8]) {
        assert!(self.frozen.is_none(), "rows pushed into a frozen batch");
        if self.started.is_none() {
            self.started = Some(Instant::now());
        }
        self.offsets.push(self.data.len());
        self.data.extend_from_slice(row);
    }

    /// The bytes of row `i` (in the table's order once frozen).
    pub fn row(&self, i: usize) -> &[u8] {
        match &self.order {
            Some(order) => self.stored(order[i] as usize),
            None => self.stored(i),
        }
    }
}

/// Rows of a batch handed to the store: read in blocks of whole rows, views of the batch where
/// its rows are stored in the table's order, copies assembled one block at a time where the
/// order moves them.
#[derive(Debug, Clone)]
pub struct Body<'a> {
    batch: &'a Batch,
    range: Range<usize>,
}

impl Rows for Body<'_> {
    fn blocks(&self, size: usize) -> Box<dyn Iterator<Item = bytes::Bytes> + Send + '_> {
        let batch = self.batch;
        let size = size.max(1);
        let mut next = self.range.start;
        let end = self.range.end.min(batch.rows());
        Box::new(std::iter::from_fn(move || {
            if next >= end {
                return None;
            }
            if batch.order.is_none() {
                let start = batch.start_of(next);
                while next < end && batch.start_of(next) - start < size {
                    next += 1;
                }
                let stop = batch.start_of(next);
                return Some(match &batch.frozen {
                    Some(b) => b.slice(start..stop),
                    None => bytes::Bytes::copy_from_slice(&batch.bytes()[start..stop]),
                });
            }
            // Sized first, so the block is allocated once, to the byte.
            let from = next;
            let mut len = 0;
            while next < end && len < size {
                len += batch.row(next).len();
                next += 1;
            }
            let mut block = Vec::with_capacity(len);
            for i in from..next {
                block.extend_from_slice(batch.row(i));
            }
            Some(bytes::Bytes::from(block))
        }))
    }
}

/// Cuts rows `range` of `batch` into consecutive parts that each touch at most `max_partitions`
/// partitions (months of `event_date`, the table's `PARTITION BY`), for a server that refuses an
/// INSERT touching more. Pure: the same rows give the same parts, so after a crash the parts (and
/// their tokens, [`Batch::token`]) are minted again identically. Rows are kept in order (a part is
/// a range of the batch); a row whose date cannot be read counts as a partition of its own kind.
pub fn split_by_partition(
    batch: &Batch,
    range: Range<usize>,
    max_partitions: usize,
) -> Vec<Range<usize>> {
    let max = max_partitions.max(1);
    let mut parts = Vec::new();
    let mut start = range.start;
    let mut seen: Vec<Option<u32>> = Vec::new();
    for i in range.clone() {
        let month = crate::row::event_date_of(batch.row(i)).map(month_of);
        if !seen.contains(&month) {
            if seen.len() == max {
                parts.push(start..i);
                start = i;
                seen.clear();
            }
            seen.push(month);
        }
    }
    if start < range.end {
        parts.push(start..range.end);
    }
    parts
}

/// The month (`year * 12 + month - 1`) of a day number (days since 1970-01-01).
pub(crate) fn month_of(days: u16) -> u32 {
    let (year, month, _) = crate::clock::civil_from_days(i64::from(days));
    (year * 12 + i64::from(month) - 1) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row whose first bytes read as `received_at` (u32) and `event_date` (u16).
    fn dated(days: u16) -> Vec<u8> {
        let mut r = vec![0u8; 4];
        r.extend_from_slice(&days.to_le_bytes());
        r
    }

    /// The head of a row as the sink encodes it, up to `activity_kind` (what the sort reads),
    /// then a tail naming it.
    fn keyed(kind: &str, day: u16, id: u64, tail: &str) -> Vec<u8> {
        let mut r = vec![0u8; 4];
        r.extend_from_slice(&day.to_le_bytes());
        r.extend_from_slice(&id.to_le_bytes());
        for s in ["", "127.0.0.1", "callback", kind, tail] {
            r.push(s.len() as u8);
            r.extend_from_slice(s.as_bytes());
        }
        r
    }

    #[test]
    fn frozen_rows_are_in_the_tables_order_and_the_same_rows_come_out_the_same() {
        let rows = [
            keyed("install", 20_000, 5, "a"),
            keyed("event", 20_001, 9, "b"),
            keyed("event", 20_000, 7, "c"),
            b"not a row".to_vec(),
            keyed("event", 20_000, 3, "d"),
            keyed("install", 19_999, 8, "e"),
            keyed("event", 20_000, 3, "f"),
        ];
        let frozen = |rows: &[Vec<u8>]| {
            let mut b = Batch::imported(1);
            for r in rows {
                b.push(r);
            }
            let token = b.token(0..b.rows());
            b.freeze();
            assert_eq!(b.token(0..b.rows()), token, "sorting leaves the token");
            (0..b.rows()).map(|i| b.row(i).to_vec()).collect::<Vec<_>>()
        };
        let sorted = frozen(&rows);
        // Unreadable rows first, then by (kind, day, id); equal keys keep their order (d, f).
        let want = [3, 4, 6, 2, 1, 5, 0].map(|i| rows[i].clone());
        assert_eq!(sorted, want);
        assert_eq!(frozen(&rows), sorted);
        // Already in order: untouched.
        assert_eq!(frozen(&want), want);
    }

    #[test]
    fn a_body_is_its_rows_in_order_in_blocks_of_whole_rows() {
        let mut b = Batch::default();
        let mut pushed = Vec::new();
        for i in 0..40u64 {
            // Out of the table's order, of several lengths.
            let r = keyed(
                ["install", "event"][(i % 2) as usize],
                20_000,
                97 * i % 41,
                &"x".repeat(i as usize % 9),
            );
            b.push(&r);
            pushed.push(r);
        }
        b.freeze();
        assert!(b.order.is_some(), "the rows were pushed out of order");
        let rows: Vec<Vec<u8>> = (0..b.rows()).map(|i| b.row(i).to_vec()).collect();
        let mut sorted = pushed.clone();
        sorted.sort_by(|x, y| crate::row::sort_key(x).cmp(&crate::row::sort_key(y)));
        assert_eq!(rows, sorted);
        for range in [0..40, 3..17, 39..40, 5..5] {
            let want: Vec<u8> = rows[range.clone()].concat();
            for size in [0, 1, 30, 100, usize::MAX] {
                let blocks: Vec<bytes::Bytes> = b.body(range.clone()).blocks(size).collect();
                assert_eq!(blocks.concat(), want, "{range:?} in blocks of {size}");
                // Whole rows: every block ends where a row ends; all but the last reach the size.
                let mut at = range.start;
                for (n, block) in blocks.iter().enumerate() {
                    let mut len = 0;
                    while len < block.len() {
                        len += rows[at].len();
                        at += 1;
                    }
                    assert_eq!(len, block.len(), "block {n} of {size} ends inside a row");
                    if n + 1 < blocks.len() {
                        assert!(block.len() >= size.max(1));
                    }
                }
                assert_eq!(at, range.end);
            }
            assert_eq!(b.body(range.clone()).to_bytes(), want);
        }
    }

    #[test]
    fn rows_pushed_in_order_are_sent_as_views_of_the_batch() {
        let mut b = Batch::default();
        for i in 0..10u64 {
            b.push(&keyed("event", 20_000, i, "tail"));
        }
        b.freeze();
        assert!(b.order.is_none());
        let whole = b.frozen.clone().unwrap();
        let base = whole.as_ptr() as usize;
        let blocks: Vec<bytes::Bytes> = b.body(2..9).blocks(50).collect();
        assert!(blocks.len() > 1);
        assert_eq!(blocks.concat(), whole[b.start_of(2)..b.start_of(9)]);
        for block in &blocks {
            let at = block.as_ptr() as usize;
            assert!(
                at >= base && at + block.len() <= base + whole.len(),
                "a copy, not a view"
            );
        }
        // Plain bytes are cut at the size exactly.
        let bytes = bytes::Bytes::from_static(b"abcdefgh");
        let cut: Vec<bytes::Bytes> = bytes.blocks(3).collect();
        assert_eq!(cut, [&b"abc"[..], b"def", b"gh"]);
        assert_eq!(bytes::Bytes::new().blocks(3).count(), 0);
    }

    #[test]
    fn months_of_days() {
        assert_eq!(month_of(0), 1970 * 12); // 1970-01-01
        assert_eq!(month_of(30), 1970 * 12); // 1970-01-31
        assert_eq!(month_of(31), 1970 * 12 + 1); // 1970-02-01
        assert_eq!(month_of(19_783), 2024 * 12 + 2); // 2024-03-01
        assert_eq!(month_of(19_782), 2024 * 12 + 1); // 2024-02-29
    }

    #[test]
    fn parts_touch_at_most_the_limit_and_cover_the_batch_in_order() {
        let mut b = Batch::default();
        // 150 months, each row on the first of a month; then the first months again.
        let firsts: Vec<u16> = (0..150u32)
            .map(|m| (m as f64 * 30.437).ceil() as u16)
            .collect();
        for d in firsts.iter().chain(&firsts[..20]) {
            b.push(&dated(*d));
        }
        let parts = split_by_partition(&b, 0..b.rows(), 100);
        assert_eq!(parts, vec![0..100, 100..170]);
        let parts = split_by_partition(&b, 10..170, 60);
        assert_eq!(parts, vec![10..70, 70..130, 130..170]);
        for p in &parts {
            let months: std::collections::HashSet<u32> = p
                .clone()
                .map(|i| month_of(crate::row::event_date_of(b.row(i)).unwrap()))
                .collect();
            assert!(months.len() <= 60, "{p:?}: {}", months.len());
        }
        // A batch within the limit stays whole; the same rows cut the same way.
        assert_eq!(split_by_partition(&b, 0..50, 100), vec![0..50]);
        assert_eq!(
            split_by_partition(&b, 0..170, 100),
            split_by_partition(&b, 0..170, 100)
        );
    }

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
