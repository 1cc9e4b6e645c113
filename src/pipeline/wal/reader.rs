//! The delivery side of the log: reads durable records into batches, moves damaged regions to
//! quarantine, and trims the log on acknowledgement.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::watch;

use super::positions::{Position, segment_path, write_ack, write_inflight};
use super::{Shared, record};
use crate::metrics::WalDamage;
use crate::pipeline::queue::Consumer;
use crate::pipeline::{Batch, Limits, LogRange};

/// The delivery side: reads durable records into batches and trims the log on acknowledgement.
pub struct LogReader {
    pub(super) shared: Arc<Shared>,
    pub(super) durable: watch::Receiver<Position>,
    /// Next record to read.
    pub(super) pos: Position,
    /// A window of the current segment starting at `chunk_at`.
    pub(super) chunk: Vec<u8>,
    pub(super) chunk_at: Position,
    /// After recovery: the end of the batch that was in flight, so it is re-cut identically.
    pub(super) stop_at: Option<Position>,
    /// Everything before this is acknowledged.
    pub(super) acked: Position,
    /// The segment being read, kept open.
    pub(super) file: Option<(u64, File)>,
}

const CHUNK: usize = 4 << 20;

impl LogReader {
    /// Where the next unread record starts.
    pub fn position(&self) -> Position {
        self.pos
    }

    /// Whether the appender has stopped and every durable record has been read.
    pub fn is_finished(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
            && self.durable.has_changed().is_err()
            && self.pos >= *self.durable.borrow()
    }

    /// Moves durable records into `batch` until it reaches the limits. Returns how many moved.
    pub fn fill(&mut self, batch: &mut Batch, limits: &Limits) -> io::Result<usize> {
        let start = match batch.log {
            Some(range) if !batch.is_empty() => range.start,
            _ => self.pos,
        };
        let mut oldest = batch.log.map(|r| r.oldest_written);
        let mut moved = 0;
        let mut popped_bytes = 0;
        while batch.rows() < limits.max_rows && batch.len_bytes() < limits.max_bytes {
            if let Some(stop) = self.stop_at
                && self.pos >= stop
            {
                self.stop_at = None;
                break;
            }
            let durable = *self.durable.borrow();
            if self.pos >= durable {
                break;
            }
            let end = if self.pos.segment < durable.segment {
                let dir = &self.shared.config.dir;
                match fs::metadata(segment_path(dir, self.pos.segment)) {
                    Ok(m) => m.len(),
                    // A finished segment removed from under the log: the reader goes on with
                    // the next one. Unless that one is missing too: then the directory itself
                    // is gone (moved, deleted, unmounted), and the reader waits for it rather
                    // than skip records it could read once the directory is back.
                    Err(e)
                        if e.kind() == io::ErrorKind::NotFound
                            && segment_path(dir, self.pos.segment + 1).exists() =>
                    {
                        tracing::error!(
                            segment = self.pos.segment,
                            offset = self.pos.offset,
                            dir = %dir.display(),
                            "write-ahead log: a segment not yet delivered is missing; its records from this offset are lost, delivery goes on with the next segment"
                        );
                        0
                    }
                    Err(e) => return Err(e),
                }
            } else {
                durable.offset
            };
            if self.pos.offset >= end {
                // End of a finished segment: go on with the next one.
                self.pos = Position {
                    segment: self.pos.segment + 1,
                    offset: 0,
                };
                self.chunk.clear();
                continue;
            }
            match self.next_record(end, batch)? {
                Some((written_at, len)) => {
                    oldest.get_or_insert(written_at);
                    moved += 1;
                    popped_bytes += len as u64;
                }
                None => continue,
            }
        }
        if moved > 0 {
            self.shared.metrics.queue_rows_popped.inc_by(moved as u64);
            self.shared.metrics.queue_bytes_popped.inc_by(popped_bytes);
            batch.log = Some(LogRange {
                log_id: self.shared.log_id,
                start,
                end: self.pos,
                oldest_written: oldest.unwrap_or(0),
            });
        }
        Ok(moved)
    }

    /// Reads the record at `pos` (below `end`) into `batch`, advancing past it; returns when it
    /// was written and its length. On damage, moves the damaged bytes to the quarantine file,
    /// advances to the next valid record and returns `None`.
    fn next_record(&mut self, end: u64, batch: &mut Batch) -> io::Result<Option<(u32, usize)>> {
        let at = self.ensure_chunk(end, record::HEADER)?;
        let avail = &self.chunk[at..];
        match record::parse(avail) {
            record::Parsed::Record {
                written_at,
                payload,
                size,
                format,
            } => {
                // A current row goes straight from the chunk into the batch (no copy in
                // between); a row of an earlier version is re-encoded as rows are now.
                let row = format.current_row(payload);
                batch.push(&row);
                let len = row.len();
                self.pos.offset += size as u64;
                return Ok(Some((written_at, len)));
            }
            record::Parsed::Incomplete => {
                let want = if avail.len() >= record::HEADER {
                    record::HEADER
                        + u32::from_le_bytes(avail[4..8].try_into().expect("4 bytes")) as usize
                } else {
                    record::HEADER
                };
                let at = self.ensure_chunk(end, want)?;
                if self.chunk.len() - at >= want {
                    return self.next_record(end, batch);
                }
            }
            record::Parsed::Damaged => {}
        }
        // Damaged, or cut short before the end of the readable region.
        let at = self.ensure_chunk(end, usize::MAX)?;
        let rest = &self.chunk[at..];
        let skip = record::resync(rest).unwrap_or(rest.len());
        self.quarantine(&rest[..skip])?;
        self.pos.offset += skip as u64;
        Ok(None)
    }

    /// Makes sure the chunk holds `want` bytes from `pos` (or everything up to `end`); returns the
    /// index of `pos` in the chunk.
    fn ensure_chunk(&mut self, end: u64, want: usize) -> io::Result<usize> {
        let in_chunk = self.chunk_at.segment == self.pos.segment
            && self.pos.offset >= self.chunk_at.offset
            && self.pos.offset <= self.chunk_at.offset + self.chunk.len() as u64;
        let available = end - self.pos.offset;
        let want = (want as u64).min(available);
        if in_chunk {
            let at = (self.pos.offset - self.chunk_at.offset) as usize;
            if (self.chunk.len() - at) as u64 >= want {
                return Ok(at);
            }
        }
        let len = want.max(CHUNK as u64).min(available) as usize;
        self.chunk.resize(len, 0);
        if self
            .file
            .as_ref()
            .is_none_or(|(id, _)| *id != self.pos.segment)
        {
            let f = File::open(segment_path(&self.shared.config.dir, self.pos.segment))?;
            self.file = Some((self.pos.segment, f));
        }
        let (_, file) = self.file.as_ref().expect("segment file open");
        file.read_exact_at(&mut self.chunk, self.pos.offset)?;
        self.chunk_at = self.pos;
        Ok(0)
    }

    fn quarantine(&self, bytes: &[u8]) -> io::Result<()> {
        let path = self.shared.config.dir.join("quarantine");
        let mut f = OpenOptions::new().create(true).append(true).open(&path)?;
        writeln!(
            f,
            "-- {} bytes from segment {} at {}",
            bytes.len(),
            self.pos.segment,
            self.pos.offset
        )?;
        f.write_all(bytes)?;
        f.write_all(b"\n")?;
        f.sync_data()?;
        self.shared.metrics.wal_damaged.inc(WalDamage::Quarantined);
        tracing::error!(
            bytes = bytes.len(),
            segment = self.pos.segment,
            offset = self.pos.offset,
            path = %path.display(),
            "write-ahead log: damaged region moved to quarantine"
        );
        Ok(())
    }

    /// Records the range of the batch about to be inserted, so a crash re-sends it identically.
    pub fn mark_inflight(&self, start: Position, end: Position) -> io::Result<()> {
        write_inflight(&self.shared.config.dir, start, end)
    }

    /// ClickHouse acknowledged everything before `upto`: persist it and delete finished segments.
    pub fn ack_upto(&mut self, upto: Position) -> io::Result<()> {
        let dir = self.shared.config.dir.clone();
        write_ack(&dir, upto)?;
        let newly_acked = self.bytes_between(self.acked, upto);
        self.acked = upto;
        self.shared
            .acked_bytes
            .fetch_add(newly_acked, Ordering::Relaxed);
        self.shared
            .acked_segment
            .fetch_max(upto.segment, Ordering::AcqRel);
        // Delivered segments stay for `keep_delivered` (or until the budget needs them).
        self.shared.trim_kept(0)?;
        Ok(())
    }

    /// Log bytes from `from` to `to` (across segments).
    fn bytes_between(&self, from: Position, to: Position) -> u64 {
        if to <= from {
            return 0;
        }
        if from.segment == to.segment {
            return to.offset - from.offset;
        }
        let len =
            |id| fs::metadata(segment_path(&self.shared.config.dir, id)).map_or(0, |m| m.len());
        let mut total = len(from.segment).saturating_sub(from.offset);
        for id in from.segment + 1..to.segment {
            total += len(id);
        }
        total + to.offset
    }
}

impl Consumer for LogReader {
    fn fill(&mut self, batch: &mut Batch, limits: &Limits) -> io::Result<usize> {
        LogReader::fill(self, batch, limits)
    }

    async fn wait(&mut self) {
        let _ = self.durable.changed().await;
    }

    fn is_finished(&self) -> bool {
        LogReader::is_finished(self)
    }

    fn begin(&mut self, batch: &Batch) -> io::Result<()> {
        match batch.log {
            Some(range) => self.mark_inflight(range.start, range.end),
            None => Ok(()),
        }
    }

    fn ack(&mut self, batch: &Batch) -> io::Result<()> {
        match batch.log {
            Some(range) => self.ack_upto(range.end),
            None => Ok(()),
        }
    }

    fn is_durable(&self) -> bool {
        true
    }
}
