//! Start-up repair of the last segment: a write cut short by a crash leaves a torn tail.

use std::fs::{self, OpenOptions};
use std::io;
use std::path::Path;

use super::record::{self, Parsed};

/// Truncates damage at the end of the segment at `path` (damage after which no valid record
/// follows). Damage followed by valid records is left for the reader to quarantine. Returns the
/// number of bytes cut.
pub fn truncate_torn_tail(path: &Path) -> io::Result<u64> {
    let buf = fs::read(path)?;
    let good_end = valid_prefix_end(&buf);
    let cut = (buf.len() - good_end) as u64;
    if cut > 0 {
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(good_end as u64)?;
        f.sync_all()?;
    }
    Ok(cut)
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
}
