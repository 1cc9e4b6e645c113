//! A read-only look at a write-ahead log (for `adjust-sink check`): what is pending, how old it
//! is, and whether anything is damaged. Takes no lock and changes nothing.

use std::fs;
use std::io;
use std::path::Path;

use super::record::{self, Parsed};
use super::{Position, list_segments, read_pair, read_position, segment_path};

/// What a log holds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// Where delivery resumes.
    pub ack: Position,
    /// The batch that was being inserted when the process stopped.
    pub inflight: Option<(Position, Position)>,
    pub segments: usize,
    /// Records not yet acknowledged, and their bytes (headers included).
    pub pending_records: u64,
    pub pending_bytes: u64,
    /// Unix seconds of the oldest and newest pending record.
    pub oldest: Option<u32>,
    pub newest: Option<u32>,
    /// Bytes that are not valid records (a torn tail, or damage the reader will quarantine).
    pub damaged_bytes: u64,
    /// Size of the quarantine file.
    pub quarantined_bytes: u64,
    /// Delivered records still kept (`--keep-delivered`, for `replay --since`), their bytes, and
    /// the time of the oldest: `replay --since` reaches back to it.
    pub kept_records: u64,
    pub kept_bytes: u64,
    pub kept_since: Option<u32>,
}

/// Inspects the log in `dir` (an empty result when there is none).
pub fn inspect(dir: &Path) -> io::Result<Inspection> {
    let mut out = Inspection::default();
    if !dir.exists() {
        return Ok(out);
    }
    let ids = list_segments(dir)?;
    out.segments = ids.len();
    out.ack = read_position(&dir.join("ack"))?
        .filter(|a| ids.contains(&a.segment))
        .unwrap_or(Position {
            segment: ids.first().copied().unwrap_or(1),
            offset: 0,
        });
    out.inflight = read_pair(&dir.join("inflight"))?.filter(|(start, _)| *start == out.ack);
    out.quarantined_bytes = fs::metadata(dir.join("quarantine")).map_or(0, |m| m.len());
    for id in ids {
        let buf = match fs::read(segment_path(dir, id)) {
            Ok(b) => b,
            // Deleted meanwhile by the running sink (a kept segment whose time ran out).
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let mut pos = 0;
        while pos < buf.len() {
            let delivered = Position {
                segment: id,
                offset: pos as u64,
            } < out.ack;
            match record::parse(&buf[pos..]) {
                Parsed::Record {
                    written_at, size, ..
                } if delivered => {
                    out.kept_records += 1;
                    out.kept_bytes += size as u64;
                    out.kept_since = Some(out.kept_since.map_or(written_at, |o| o.min(written_at)));
                    pos += size;
                }
                Parsed::Record {
                    written_at, size, ..
                } => {
                    out.pending_records += 1;
                    out.pending_bytes += size as u64;
                    out.oldest = Some(out.oldest.map_or(written_at, |o| o.min(written_at)));
                    out.newest = Some(out.newest.map_or(written_at, |n| n.max(written_at)));
                    pos += size;
                }
                Parsed::Incomplete | Parsed::Damaged if record::is_unused(&buf[pos..]) => break,
                Parsed::Incomplete | Parsed::Damaged => {
                    let skip = record::resync(&buf[pos..]).unwrap_or(buf.len() - pos);
                    out.damaged_bytes += skip as u64;
                    pos += skip;
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use crate::pipeline::wal::{Wal, WalConfig};
    use crate::pipeline::{Batch, Limits};
    use std::time::Duration;

    #[tokio::test]
    async fn counts_what_is_pending_after_the_ack() {
        let dir = tempfile::tempdir().unwrap();
        let config = WalConfig {
            dir: dir.path().to_path_buf(),
            segment_bytes: 1 << 20,
            disk_budget: 1 << 30,
            max_pending_bytes: 1 << 20,
            keep_delivered: Duration::ZERO,
        };
        let (wal, mut reader, _) = Wal::open(config.clone(), Metrics::new()).unwrap();
        for i in 0..10u8 {
            wal.append(vec![i; 50]).await.unwrap();
        }
        let mut b = Batch::default();
        let limits = Limits {
            max_rows: 4,
            max_bytes: 1 << 20,
            max_age: Duration::from_secs(1),
        };
        reader.fill(&mut b, &limits).unwrap();
        reader.ack_upto(b.log.unwrap().end).unwrap();
        // A second process may not open the same log.
        let second = Wal::open(config, Metrics::new());
        assert!(
            second
                .err()
                .unwrap()
                .to_string()
                .contains("in use by another adjust-sink")
        );
        let seen = inspect(dir.path()).unwrap();
        assert_eq!(seen.pending_records, 6);
        assert_eq!(seen.pending_bytes, 6 * (record::HEADER as u64 + 50));
        assert_eq!(seen.damaged_bytes, 0);
        assert!(seen.oldest.is_some());
    }
}
