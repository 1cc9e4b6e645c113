//! Start-up repair of the last segment: a write cut short by a crash leaves a torn tail.

use std::fs::{self, OpenOptions};
use std::io;
use std::path::Path;

use super::record::{self, Parsed};

/// Truncates damage at the end of the segment at `path` (damage after which no valid record
/// follows), and the unused zeros of a segment filled ahead of time. Damage followed by valid
/// records is left for the reader to quarantine. Returns the number of damaged bytes cut (not
/// counting unused zeros).
pub fn truncate_torn_tail(path: &Path) -> io::Result<u64> {
    let buf = fs::read(path)?;
    let good_end = valid_prefix_end(&buf);
    let cut = (buf.len() - good_end) as u64;
    if cut > 0 {
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(good_end as u64)?;
        f.sync_all()?;
    }
    Ok(if record::is_unused(&buf[good_end..]) {
        0
    } else {
        cut
    })
}

/// The end of the last valid record of `buf`, skipping over damaged regions that are followed by
/// valid records.
fn valid_prefix_end(buf: &[u8]) -> usize {
    let mut pos = 0;
    while pos < buf.len() {
        match record::parse(&buf[pos..]) {
            Parsed::Record { size, .. } => pos += size,
            Parsed::Incomplete => return pos,
            Parsed::Damaged => match record::resync(&buf[pos..]) {
                Some(skip) => pos += skip,
                None => return pos,
            },
        }
    }
    pos
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_damage_is_cut_middle_damage_is_kept() {
        let mut buf = Vec::new();
        record::encode(&mut buf, 1, b"one");
        let first = buf.len();
        record::encode(&mut buf, 1, b"two");
        let clean = buf.len();
        assert_eq!(valid_prefix_end(&buf), clean);
        // Torn: half a record at the end.
        let mut torn = buf.clone();
        torn.extend_from_slice(&buf[..10]);
        assert_eq!(valid_prefix_end(&torn), clean);
        // Garbage appended.
        let mut garbage = buf.clone();
        garbage.extend_from_slice(b"\x00\x01garbage-garbage");
        assert_eq!(valid_prefix_end(&garbage), clean);
        // Damage in the middle, valid record after it: kept whole.
        let mut middle = buf.clone();
        middle[first + record::HEADER] ^= 0xff;
        record::encode(&mut middle, 1, b"three");
        assert_eq!(valid_prefix_end(&middle), middle.len());
    }

    #[test]
    fn a_zero_tail_is_cut_but_not_counted_a_torn_record_before_it_is() {
        let dir = std::env::temp_dir().join(format!("wal-recovery-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("1.wal");
        let mut buf = Vec::new();
        record::encode(&mut buf, 1, b"one\0");
        let clean = buf.len();
        // A segment filled ahead of time: records, then zeros to its size.
        let mut prepared = buf.clone();
        prepared.resize(clean + 4096, 0);
        fs::write(&path, &prepared).unwrap();
        assert_eq!(truncate_torn_tail(&path).unwrap(), 0);
        assert_eq!(fs::metadata(&path).unwrap().len(), clean as u64);
        // A record cut short by a crash, in the zeros.
        let mut torn = buf.clone();
        torn.extend_from_slice(&buf[..10]);
        torn.resize(clean + 4096, 0);
        fs::write(&path, &torn).unwrap();
        assert_eq!(truncate_torn_tail(&path).unwrap(), 4096);
        assert_eq!(fs::metadata(&path).unwrap().len(), clean as u64);
        fs::remove_dir_all(&dir).unwrap();
    }
}
