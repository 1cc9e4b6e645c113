//! On-disk record format of the write-ahead log, and the scan that validates it.
//!
//! ```text
//! | magic u32 | len u32 | crc32 u32 | written_at u32 | payload (len bytes) |
//! ```
//! All little-endian. `crc32` covers `written_at` and the payload. The magic lets a reader find the
//! next good record after a damaged region, and tells how the row in the payload is encoded:
//! [`MAGIC`] for rows as this version writes them; [`MAGIC_COLD_NAMES`] and
//! [`MAGIC_COLD_ARRAYS`] for rows written by earlier versions, which the reader re-encodes.

/// A record whose row keeps its cold tier as one JSON text keyed by codes ("AJW3").
pub const MAGIC: u32 = 0x3357_4A41;
/// A record of an earlier version, whose row's cold text has placeholder names as keys ("AJW2").
pub const MAGIC_COLD_NAMES: u32 = 0x3257_4A41;
/// A record of an earlier version, whose row keeps its cold tier in two arrays ("AJWL").
pub const MAGIC_COLD_ARRAYS: u32 = 0x4C57_4A41;

/// How the row in a record is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// As this version writes rows.
    Current,
    /// Cold text keyed by names: re-encoded with `row::upgrade_cold_names` when read.
    ColdNames,
    /// Cold tier in two arrays: re-encoded with `row::upgrade_cold_arrays` when read.
    ColdArrays,
}
impl Format {
    /// The row of a record's payload as this version encodes rows: borrowed as it is when
    /// current, re-encoded otherwise (a row that does not read as one is passed on as it is, for
    /// ClickHouse to refuse into the rejects).
    pub fn current_row(self, payload: &[u8]) -> std::borrow::Cow<'_, [u8]> {
        use std::borrow::Cow;
        let upgraded = match self {
            Format::Current => return Cow::Borrowed(payload),
            Format::ColdNames => crate::row::upgrade_cold_names(payload),
            Format::ColdArrays => crate::row::upgrade_cold_arrays(payload),
        };
        upgraded.map_or(Cow::Borrowed(payload), Cow::Owned)
    }
}

pub const HEADER: usize = 16;
/// Larger than any row the HTTP limits allow; a bigger length means a damaged header.
pub const MAX_PAYLOAD: usize = 8 << 20;

/// Whether the rest of a segment is unused space: zeros of a segment filled ahead of time (a
/// record starts with [`MAGIC`], so zeros are never the start of one).
pub fn is_unused(rest: &[u8]) -> bool {
    rest.iter().all(|&b| b == 0)
}

/// Appends one record to `out`.
pub fn encode(out: &mut Vec<u8>, written_at: u32, payload: &[u8]) {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&written_at.to_le_bytes());
    crc.update(payload);
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&written_at.to_le_bytes());
    out.extend_from_slice(payload);
}

/// What is at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A valid record of `size` bytes in all.
    Record {
        written_at: u32,
        payload: &'a [u8],
        size: usize,
        format: Format,
    },
    /// The buffer ends before the record does (read more, or a torn tail).
    Incomplete,
    /// Not a valid record.
    Damaged,
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(buf[at..at + 4].try_into().expect("4 bytes"))
}

/// Parses the record at the start of `buf`.
pub fn parse(buf: &[u8]) -> Parsed<'_> {
    if buf.len() < 4 {
        return Parsed::Incomplete;
    }
    let format = match u32_at(buf, 0) {
        MAGIC => Format::Current,
        MAGIC_COLD_NAMES => Format::ColdNames,
        MAGIC_COLD_ARRAYS => Format::ColdArrays,
        _ => return Parsed::Damaged,
    };
    if buf.len() < HEADER {
        return Parsed::Incomplete;
    }
    let len = u32_at(buf, 4) as usize;
    if len > MAX_PAYLOAD {
        return Parsed::Damaged;
    }
    if buf.len() < HEADER + len {
        return Parsed::Incomplete;
    }
    let written_at = u32_at(buf, 12);
    let payload = &buf[HEADER..HEADER + len];
    let mut crc = crc32fast::Hasher::new();
    crc.update(&buf[12..16]);
    crc.update(payload);
    if crc.finalize() != u32_at(buf, 8) {
        return Parsed::Damaged;
    }
    Parsed::Record {
        written_at,
        payload,
        size: HEADER + len,
        format,
    }
}

/// The offset of the next valid record in `buf` after a damaged one at offset 0, if any.
pub fn resync(buf: &[u8]) -> Option<usize> {
    [MAGIC, MAGIC_COLD_NAMES, MAGIC_COLD_ARRAYS]
        .iter()
        .filter_map(|magic| {
            let magic = magic.to_le_bytes();
            let mut from = 1;
            while from < buf.len() {
                let i = from + memchr::memmem::find(&buf[from..], &magic)?;
                if let Parsed::Record { .. } = parse(&buf[i..]) {
                    return Some(i);
                }
                from = i + 1;
            }
            None
        })
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let mut buf = Vec::new();
        encode(&mut buf, 7, b"hello");
        encode(&mut buf, 8, b"world!");
        let Parsed::Record {
            written_at,
            payload,
            size,
            format,
        } = parse(&buf)
        else {
            panic!()
        };
        assert_eq!((written_at, payload, size), (7, &b"hello"[..], HEADER + 5));
        assert_eq!(format, Format::Current);
        assert_eq!(parse(&buf[..size - 1]), Parsed::Incomplete);
        let mut bad = buf.clone();
        bad[HEADER] ^= 0xff;
        assert_eq!(parse(&bad), Parsed::Damaged);
        assert_eq!(resync(&bad), Some(size));
        assert_eq!(parse(b"garbage garbage garbage"), Parsed::Damaged);
        assert_eq!(resync(b"garbage garbage garbage"), None);
    }

    #[test]
    fn records_of_earlier_versions_are_told_apart() {
        let mut buf = Vec::new();
        encode(&mut buf, 7, b"hello");
        buf[..4].copy_from_slice(&MAGIC_COLD_ARRAYS.to_le_bytes());
        assert!(matches!(
            parse(&buf),
            Parsed::Record {
                format: Format::ColdArrays,
                ..
            }
        ));
        let mut two = b"junk".to_vec();
        two.extend_from_slice(&buf);
        assert_eq!(resync(&two), Some(4));
        buf[..4].copy_from_slice(&MAGIC_COLD_NAMES.to_le_bytes());
        assert!(matches!(
            parse(&buf),
            Parsed::Record {
                format: Format::ColdNames,
                ..
            }
        ));
        // Bytes that do not read as a row are passed on as they are.
        assert_eq!(&*Format::ColdNames.current_row(b"hello"), b"hello");
        assert_eq!(&*Format::ColdArrays.current_row(b"hello"), b"hello");
    }
}
