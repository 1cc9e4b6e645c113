//! `application/x-www-form-urlencoded` splitting and decoding, borrowing whenever a value needs no
//! decoding. Decoding is lossy but never fails: invalid percent escapes are kept literally and
//! invalid UTF-8 is replaced, and both are reported so the caller can keep the raw input.

use std::borrow::Cow;

/// What went wrong while decoding one component (both can be true).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Damage {
    /// A `%` not followed by two hex digits (kept literally).
    pub bad_escape: bool,
    /// Bytes that are not UTF-8 after percent-decoding (replaced with U+FFFD).
    pub bad_utf8: bool,
}

impl Damage {
    pub fn any(self) -> bool {
        self.bad_escape || self.bad_utf8
    }
}

/// Iterates the raw `key=value` pairs of a query string or form body (split on `&`; a pair without
/// `=` has an empty value; empty pairs are skipped).
pub fn raw_pairs(input: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    input
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match memchr::memchr(b'=', pair) {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &pair[..0]),
        })
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Splits text already known to be UTF-8 into pairs in one pass: `f(key, key_escaped, value,
/// value_escaped)` with the raw parts and whether each holds a `%` or `+` (needs
/// [`decode_component`] or [`decode_into`]). Same splitting as [`raw_pairs`].
pub fn for_each_pair<'a>(input: &'a str, mut f: impl FnMut(&'a str, bool, &'a str, bool)) {
    let bytes = input.as_bytes();
    let (mut start, mut eq) = (0, usize::MAX);
    let (mut key_escaped, mut value_escaped) = (false, false);
    let mut emit = |start: usize, eq: usize, end: usize, key_escaped: bool, value_escaped: bool| {
        if end > start {
            let (k, v) = if eq == usize::MAX {
                (&input[start..end], "")
            } else {
                (&input[start..eq], &input[eq + 1..end])
            };
            f(k, key_escaped, v, value_escaped);
        }
    };
    // Eight bytes at a time: most bytes are none of `&`, `=`, `%`, `+`, and a word without any
    // of them is skipped with a handful of operations.
    let mut at = 0;
    while at < bytes.len() {
        let word = match bytes.get(at..at + 8) {
            Some(eight) => u64::from_le_bytes(eight.try_into().expect("8 bytes")),
            None => {
                let mut tail = [0u8; 8];
                tail[..bytes.len() - at].copy_from_slice(&bytes[at..]);
                u64::from_le_bytes(tail)
            }
        };
        let mut candidates = specials(word);
        while candidates != 0 {
            let i = at + (candidates.trailing_zeros() / 8) as usize;
            candidates &= candidates - 1;
            match bytes.get(i) {
                Some(b'&') => {
                    emit(start, eq, i, key_escaped, value_escaped);
                    (start, eq, key_escaped, value_escaped) = (i + 1, usize::MAX, false, false);
                }
                Some(b'=') if eq == usize::MAX => eq = i,
                Some(b'%' | b'+') if eq == usize::MAX => key_escaped = true,
                Some(b'%' | b'+') => value_escaped = true,
                _ => {}
            }
        }
        at += 8;
    }
    emit(start, eq, bytes.len(), key_escaped, value_escaped);
}

/// A mask with the high bit set in every byte of `w` that may be `&`, `=`, `%` or `+` (exact
/// for the lowest match; later bytes may be false positives, which the caller checks).
fn specials(w: u64) -> u64 {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(LO) & !x & HI;
    zero(w ^ (LO * u64::from(b'&')))
        | zero(w ^ (LO * u64::from(b'=')))
        | zero(w ^ (LO * u64::from(b'%')))
        | zero(w ^ (LO * u64::from(b'+')))
}

/// [`decode_component`] of a component that holds an escape, appended to `out` (through
/// `scratch`, so that a callback's escaped values share one buffer instead of a string each).
pub fn decode_into(raw: &[u8], scratch: &mut Vec<u8>, out: &mut String) -> Damage {
    let mut damage = Damage::default();
    // Decoding never lengthens: written by index into a buffer of the raw length, then cut.
    scratch.clear();
    scratch.resize(raw.len(), 0);
    let (mut i, mut n) = (0, 0);
    while i < raw.len() {
        scratch[n] = match raw[i] {
            b'+' => b' ',
            b'%' => match (
                raw.get(i + 1).and_then(|&b| hex(b)),
                raw.get(i + 2).and_then(|&b| hex(b)),
            ) {
                (Some(h), Some(l)) => {
                    i += 2;
                    h << 4 | l
                }
                _ => {
                    damage.bad_escape = true;
                    b'%'
                }
            },
            b => b,
        };
        i += 1;
        n += 1;
    }
    match std::str::from_utf8(&scratch[..n]) {
        Ok(s) => out.push_str(s),
        Err(_) => {
            damage.bad_utf8 = true;
            out.push_str(&String::from_utf8_lossy(&scratch[..n]));
        }
    }
    damage
}

/// Percent-decodes one component once, `+` meaning a space.
pub fn decode_component(raw: &[u8]) -> (Cow<'_, str>, Damage) {
    let needs_unescape = memchr::memchr2(b'%', b'+', raw).is_some();
    if !needs_unescape {
        return match std::str::from_utf8(raw) {
            Ok(s) => (Cow::Borrowed(s), Damage::default()),
            Err(_) => (
                String::from_utf8_lossy(raw),
                Damage {
                    bad_utf8: true,
                    ..Damage::default()
                },
            ),
        };
    }
    let mut out = String::with_capacity(raw.len());
    let damage = decode_into(raw, &mut Vec::with_capacity(raw.len()), &mut out);
    (Cow::Owned(out), damage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_are_borrowed() {
        let (v, d) = decode_component(b"abc123");
        assert!(matches!(v, Cow::Borrowed("abc123")));
        assert!(!d.any());
    }

    #[test]
    fn plus_is_space_and_escapes_decode_once() {
        let (v, d) = decode_component(b"Network1%3A%3AChristmas+Sale%2541");
        assert_eq!(v, "Network1::Christmas Sale%41");
        assert!(!d.any());
    }

    #[test]
    fn bad_escape_is_kept_literally() {
        let (v, d) = decode_component(b"100%zz%4");
        assert_eq!(v, "100%zz%4");
        assert!(d.bad_escape);
        assert!(!d.bad_utf8);
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let (v, d) = decode_component(b"caf%C3%A9-%FF");
        assert_eq!(v, "café-\u{FFFD}");
        assert!(d.bad_utf8);
        let (v, d) = decode_component(b"raw\xffbyte");
        assert_eq!(v, "raw\u{FFFD}byte");
        assert!(d.bad_utf8);
    }

    #[test]
    fn one_pass_split_matches_raw_pairs_and_flags_escaped_parts() {
        let q = "a=1&&b=x=y&c&=z&caf%C3%A9=+&d=p%2Bq&e=%zz&f=%FF";
        let mut parts = Vec::new();
        for_each_pair(q, |k, ke, v, ve| parts.push((k, ke, v, ve)));
        let raw: Vec<_> = raw_pairs(q.as_bytes()).collect();
        assert_eq!(parts.len(), raw.len());
        for ((k, ke, v, ve), (rk, rv)) in parts.iter().zip(&raw) {
            assert_eq!((k.as_bytes(), v.as_bytes()), (*rk, *rv));
            assert_eq!(*ke, rk.iter().any(|b| matches!(b, b'%' | b'+')));
            assert_eq!(*ve, rv.iter().any(|b| matches!(b, b'%' | b'+')));
            // The shared buffer decodes as decode_component does.
            for (part, escaped) in [(k, ke), (v, ve)] {
                if *escaped {
                    let (mut scratch, mut out) = (Vec::new(), String::from("before"));
                    let damage = decode_into(part.as_bytes(), &mut scratch, &mut out);
                    let (want, want_damage) = decode_component(part.as_bytes());
                    assert_eq!(&out["before".len()..], want);
                    assert_eq!(damage, want_damage);
                }
            }
        }
        assert_eq!(parts[4].0, "caf%C3%A9");
        assert_eq!(parts[5].2, "p%2Bq");
    }

    #[test]
    fn pairs_split_on_first_equals() {
        let pairs: Vec<_> = raw_pairs(b"a=1&&b=x=y&c&=z").collect();
        assert_eq!(
            pairs,
            vec![
                (&b"a"[..], &b"1"[..]),
                (&b"b"[..], &b"x=y"[..]),
                (&b"c"[..], &b""[..]),
                (&b""[..], &b"z"[..]),
            ]
        );
    }
}
