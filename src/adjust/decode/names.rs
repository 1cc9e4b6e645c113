//! The catalog index of a placeholder name, looked up in a table made once.

use std::sync::LazyLock;

use super::CATALOG;

/// An empty slot.
const NONE: u16 = u16::MAX;

/// Index of a placeholder in [`CATALOG`], by name: open addressing over a cheap hash of the
/// length and three bytes (the names are short and fixed, so this beats a general hash map).
struct NameTable {
    slots: Vec<u16>,
    /// The names by catalog index, apart from the catalog's larger entries (fewer cache lines).
    names: Vec<&'static [u8]>,
}

const TABLE_BITS: u32 = 11;

fn name_hash(name: &[u8]) -> usize {
    let (first, mid, last) = match name {
        [] => (0, 0, 0),
        _ => (name[0], name[name.len() / 2], name[name.len() - 1]),
    };
    let h = (name.len() as u32)
        .wrapping_mul(0x9E37_79B1)
        .wrapping_add(u32::from(first).wrapping_mul(0x85EB_CA77))
        .wrapping_add(u32::from(mid).wrapping_mul(0xC2B2_AE3D))
        .wrapping_add(u32::from(last).wrapping_mul(0x27D4_EB2F));
    (h >> (32 - TABLE_BITS)) as usize
}

impl NameTable {
    fn new() -> Self {
        let mask = (1 << TABLE_BITS) - 1;
        let mut slots = vec![NONE; 1 << TABLE_BITS];
        for (i, p) in CATALOG.iter().enumerate() {
            let mut at = name_hash(p.name.as_bytes());
            while slots[at] != NONE {
                at = (at + 1) & mask;
            }
            slots[at] = i as u16;
        }
        NameTable {
            slots,
            names: CATALOG.iter().map(|p| p.name.as_bytes()).collect(),
        }
    }

    fn get(&self, name: &str) -> Option<usize> {
        let mask = (1 << TABLE_BITS) - 1;
        let mut at = name_hash(name.as_bytes());
        loop {
            match self.slots[at] {
                NONE => return None,
                i if same(self.names[usize::from(i)], name.as_bytes()) => {
                    return Some(usize::from(i));
                }
                _ => at = (at + 1) & mask,
            }
        }
    }
}

/// Byte equality of two short names with a few word compares (the first and last words
/// overlap), without a call into `memcmp`.
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n >= 8 {
        let w = |s: &[u8], at: usize| u64::from_ne_bytes(s[at..at + 8].try_into().expect("8"));
        if w(a, 0) != w(b, 0) || w(a, n - 8) != w(b, n - 8) {
            return false;
        }
        let mut at = 8;
        while at + 8 < n {
            if w(a, at) != w(b, at) {
                return false;
            }
            at += 8;
        }
        true
    } else if n >= 4 {
        let w = |s: &[u8], at: usize| u32::from_ne_bytes(s[at..at + 4].try_into().expect("4"));
        w(a, 0) == w(b, 0) && w(a, n - 4) == w(b, n - 4)
    } else {
        a == b
    }
}

static INDEX: LazyLock<NameTable> = LazyLock::new(NameTable::new);

/// The catalog index of a placeholder name, if it is one.
pub fn index_of(name: &str) -> Option<usize> {
    INDEX.get(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_is_byte_equality() {
        let names: Vec<&[u8]> = CATALOG.iter().map(|p| p.name.as_bytes()).collect();
        let mut probes: Vec<Vec<u8>> = names.iter().map(|n| n.to_vec()).collect();
        for n in &names {
            for i in 0..n.len() {
                let mut changed = n.to_vec();
                changed[i] ^= 1;
                probes.push(changed);
            }
        }
        probes.extend([b"".to_vec(), b"a".to_vec(), b"abc".to_vec()]);
        for a in &names {
            for b in &probes {
                assert_eq!(same(a, b), *a == &b[..], "{a:?} {b:?}");
            }
        }
        for (i, n) in names.iter().enumerate() {
            assert_eq!(index_of(std::str::from_utf8(n).unwrap()), Some(i));
        }
    }
}
