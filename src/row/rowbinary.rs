//! ClickHouse's RowBinary format: the few primitives the row needs, and a reader used by tests
//! and by `check` to turn encoded rows back into text.

/// LEB128 length, as RowBinary prefixes strings and arrays.
pub fn put_len(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

pub fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    put_len(out, s.len());
    out.extend_from_slice(s);
}

pub fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub fn put_f64(out: &mut Vec<u8>, v: f64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// A `Nested(key String, value String)` column: two `Array(String)` on the wire.
pub fn put_pairs<'a>(
    out: &mut Vec<u8>,
    pairs: impl Iterator<Item = (&'a str, &'a str)> + Clone,
    n: usize,
) {
    put_len(out, n);
    for (k, _) in pairs.clone() {
        put_str(out, k.as_bytes());
    }
    put_len(out, n);
    for (_, v) in pairs {
        put_str(out, v.as_bytes());
    }
}

/// A decoded RowBinary value, for tests and diagnostics.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Str(String),
    UInt(u64),
    Int(i64),
    Float(f64),
    Pairs(Vec<(String, String)>),
}

/// Why a byte string is not a row of the expected shape.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("row is truncated or malformed at byte {0}")]
pub struct Malformed(pub usize);

/// Reads RowBinary values of known types from a buffer.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes read so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(Malformed(self.pos))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn len(&mut self) -> Result<usize, Malformed> {
        let mut n = 0usize;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            n |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(Malformed(self.pos))
    }

    /// A `Nullable` prefix: `true` when the value is NULL.
    pub fn null_flag(&mut self) -> Result<bool, Malformed> {
        Ok(self.take(1)?[0] == 1)
    }

    pub fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }

    pub fn u16(&mut self) -> Result<u16, Malformed> {
        Ok(u16::from_le_bytes(self.fixed()?))
    }

    pub fn u32(&mut self) -> Result<u32, Malformed> {
        Ok(u32::from_le_bytes(self.fixed()?))
    }

    pub fn u64(&mut self) -> Result<u64, Malformed> {
        Ok(u64::from_le_bytes(self.fixed()?))
    }

    pub fn i64(&mut self) -> Result<i64, Malformed> {
        Ok(i64::from_le_bytes(self.fixed()?))
    }

    pub fn f64(&mut self) -> Result<f64, Malformed> {
        Ok(f64::from_le_bytes(self.fixed()?))
    }

    /// A `Nested(key String, value String)`: two arrays, keys then values.
    pub fn pairs(&mut self) -> Result<Vec<(String, String)>, Malformed> {
        let keys = self.strings()?;
        let values = self.strings()?;
        if keys.len() != values.len() {
            return Err(Malformed(self.pos));
        }
        Ok(keys.into_iter().zip(values).collect())
    }

    /// An `Array(String)`.
    pub fn strings(&mut self) -> Result<Vec<String>, Malformed> {
        let n = self.len()?;
        (0..n).map(|_| self.string()).collect()
    }

    /// A `String` value's bytes, borrowed.
    pub fn bytes(&mut self) -> Result<&'a [u8], Malformed> {
        let n = self.len()?;
        self.take(n)
    }

    pub fn string(&mut self) -> Result<String, Malformed> {
        let n = self.len()?;
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        Ok(self.take(N)?.try_into().expect("length checked"))
    }

    /// Reads one value of a ClickHouse column type as this crate writes them.
    pub fn cell(&mut self, ty: &str) -> Result<Cell, Malformed> {
        if let Some(inner) = ty
            .strip_prefix("Nullable(")
            .and_then(|t| t.strip_suffix(')'))
        {
            return if self.take(1)?[0] == 1 {
                Ok(Cell::Null)
            } else {
                self.cell(inner)
            };
        }
        if ty.starts_with("Nested(") {
            let n = self.len()?;
            let keys = (0..n)
                .map(|_| self.string())
                .collect::<Result<Vec<_>, _>>()?;
            let m = self.len()?;
            let values = (0..m)
                .map(|_| self.string())
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Cell::Pairs(keys.into_iter().zip(values).collect()));
        }
        Ok(match ty {
            "String" | "LowCardinality(String)" => Cell::Str(self.string()?),
            "UInt8" => Cell::UInt(u64::from(self.take(1)?[0])),
            "Date" => Cell::UInt(u64::from(u16::from_le_bytes(self.fixed()?))),
            "UInt32" => Cell::UInt(u64::from(u32::from_le_bytes(self.fixed()?))),
            t if t.starts_with("DateTime(") => {
                Cell::UInt(u64::from(u32::from_le_bytes(self.fixed()?)))
            }
            "UInt64" => Cell::UInt(u64::from_le_bytes(self.fixed()?)),
            "Int64" => Cell::Int(i64::from_le_bytes(self.fixed()?)),
            t if t.starts_with("DateTime64(") => Cell::Int(i64::from_le_bytes(self.fixed()?)),
            "Float64" => Cell::Float(f64::from_le_bytes(self.fixed()?)),
            _ => return Err(Malformed(self.pos)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_use_leb128() {
        let mut out = Vec::new();
        put_len(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
        assert_eq!(Reader::new(&out).len().unwrap(), 300);
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let mut out = Vec::new();
        put_str(&mut out, b"hello");
        assert!(Reader::new(&out[..3]).cell("String").is_err());
        assert!(Reader::new(&[0xff; 12]).cell("String").is_err());
    }
}
