//! The catalog index of a placeholder name, looked up in a table made once.

use std::sync::LazyLock;

use super::CATALOG;

/// An empty slot.
const NONE: u16 = u16::MAX;

/// Index of a placeholder in [`CATALOG`], by name: open addressing over a cheap hash of the
/// length and three bytes (the names are short and fixed, so this beats a general hash map).
struct NameTable {
    slots: Vec<u16>,
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
        NameTable { slots }
    }

    fn get(&self, name: &str) -> Option<usize> {
        let mask = (1 << TABLE_BITS) - 1;
        let mut at = name_hash(name.as_bytes());
        loop {
            match self.slots[at] {
                NONE => return None,
                i if CATALOG[usize::from(i)].name == name => return Some(usize::from(i)),
                _ => at = (at + 1) & mask,
            }
        }
    }
}

static INDEX: LazyLock<NameTable> = LazyLock::new(NameTable::new);

/// The catalog index of a placeholder name, if it is one.
pub fn index_of(name: &str) -> Option<usize> {
    INDEX.get(name)
}
