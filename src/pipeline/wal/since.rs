//! `replay --since`: the records a log acknowledged since a time, delivered or not, read from its
//! segments without its lock and without touching its positions (a sink may be running on it).
//!
//! The segments are opened when the reader is made: a segment the running sink deletes later
//! (its kept window ran out) is still read to its end. A finished segment never changes; of the
//! active one, the valid records present when it is read are taken (what a record's CRC covers
//! was written whole), the rest is left to the running sink.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use super::positions::{list_segments, segment_path};
use super::record::{self, Parsed};
use crate::pipeline::queue::Consumer;
use crate::pipeline::{Batch, Limits};

/// Reads every record written at or after `since` (unix seconds), segment by segment.
pub struct SinceReader {
    since: u32,
    /// The segments still to read, opened up front.
    files: std::collections::VecDeque<(u64, File)>,
    buf: Vec<u8>,
    at: usize,
    /// Records at or after `since` read so far, and the oldest one's time.
    pub records: u64,
    pub oldest: Option<u32>,
    /// Bytes skipped as damaged.
    pub damaged_bytes: u64,
}

impl SinceReader {
    /// Opens every segment of the log in `dir` that may hold a record written since `since`.
    pub fn open(dir: &Path, since: u32) -> io::Result<SinceReader> {
        let since_time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(since.into());
        let mut files = std::collections::VecDeque::new();
        for id in list_segments(dir)? {
            let file = match File::open(segment_path(dir, id)) {
                Ok(f) => f,
                // Deleted meanwhile by a running sink: older than its window.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            // A segment last written before `since` holds no record of it.
            if file
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|m| m < since_time)
            {
                continue;
            }
            files.push_back((id, file));
        }
        Ok(SinceReader {
            since,
            files,
            buf: Vec::new(),
            at: 0,
            records: 0,
            oldest: None,
            damaged_bytes: 0,
        })
    }

    /// Segments still to read.
    pub fn segments(&self) -> usize {
        self.files.len()
    }

    /// The next record at or after `since`, or `None` when every segment is read.
    fn next(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            if self.at >= self.buf.len() {
                let Some((_, mut file)) = self.files.pop_front() else {
                    self.buf = Vec::new();
                    self.at = 0;
                    return Ok(None);
                };
                self.buf.clear();
                file.read_to_end(&mut self.buf)?;
                self.at = 0;
                continue;
            }
            let rest = &self.buf[self.at..];
            match record::parse(rest) {
                Parsed::Record {
                    written_at,
                    payload,
                    size,
                    format,
                } => {
                    self.at += size;
                    if written_at < self.since {
                        continue;
                    }
                    let payload = format.current_row(payload).into_owned();
                    self.records += 1;
                    self.oldest = Some(self.oldest.map_or(written_at, |o| o.min(written_at)));
                    return Ok(Some(payload));
                }
                // The zeros of a segment filled ahead, or the end of what is written so far.
                Parsed::Incomplete => self.at = self.buf.len(),
                Parsed::Damaged if record::is_unused(rest) => self.at = self.buf.len(),
                Parsed::Damaged => {
                    let skip = record::resync(rest).unwrap_or(rest.len());
                    self.damaged_bytes += skip as u64;
                    self.at += skip;
                }
            }
        }
    }
}

impl Consumer for SinceReader {
    fn fill(&mut self, batch: &mut Batch, limits: &Limits) -> io::Result<usize> {
        let mut moved = 0;
        while batch.rows() < limits.max_rows && batch.len_bytes() < limits.max_bytes {
            match self.next()? {
                Some(row) => {
                    batch.push(&row);
                    moved += 1;
                }
                None => break,
            }
        }
        Ok(moved)
    }

    async fn wait(&mut self) {}

    fn is_finished(&self) -> bool {
        self.files.is_empty() && self.at >= self.buf.len()
    }

    fn begin(&mut self, _batch: &Batch) -> io::Result<()> {
        Ok(())
    }

    fn ack(&mut self, _batch: &Batch) -> io::Result<()> {
        Ok(())
    }

    /// What is not delivered stays in the log (nothing here is the only copy).
    fn is_durable(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use crate::pipeline::wal::{Wal, WalConfig};
    use std::time::Duration;

    #[tokio::test]
    async fn reads_delivered_and_pending_records_since_a_time_while_the_log_is_open() {
        let dir = tempfile::tempdir().unwrap();
        let config = WalConfig {
            dir: dir.path().to_path_buf(),
            segment_bytes: 1 << 20,
            disk_budget: 1 << 30,
            max_pending_bytes: 1 << 26,
            keep_delivered: Duration::from_secs(3600),
        };
        let (wal, mut reader, _) = Wal::open(config, Metrics::new()).unwrap();
        for i in 0..3000u32 {
            wal.append(i.to_le_bytes().repeat(200)).await.unwrap();
        }
        let limits = Limits {
            max_rows: 2000,
            max_bytes: 1 << 30,
            max_age: Duration::from_secs(1),
        };
        let mut b = Batch::default();
        reader.fill(&mut b, &limits).unwrap();
        reader.ack_upto(b.log.unwrap().end).unwrap();
        // Delivered segments are kept.
        assert!(list_segments(dir.path()).unwrap().len() > 2);
        // Everything, delivered (kept) or not, from a time before the first record.
        let mut since = SinceReader::open(dir.path(), 0).unwrap();
        let mut all = Batch::default();
        let big = Limits {
            max_rows: 1 << 20,
            ..limits
        };
        assert_eq!(since.fill(&mut all, &big).unwrap(), 3000);
        assert!(since.is_finished());
        assert_eq!(all.row(2999), &2999u32.to_le_bytes().repeat(200)[..]);
        // Nothing from the future.
        let later = crate::clock::unix_now() + 60;
        let mut none = SinceReader::open(dir.path(), later).unwrap();
        assert_eq!(none.fill(&mut Batch::default(), &big).unwrap(), 0);
        // The log's own positions did not move.
        let mut rest = Batch::default();
        assert_eq!(reader.fill(&mut rest, &big).unwrap(), 1000);
    }
}
