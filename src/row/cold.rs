//! The cold tier's text: one JSON object per row, `{"KEY":"normalized text",…}`.
//!
//! A cold placeholder's key is a three-character code derived from its name ([`code_of`]:
//! an uppercase letter, then two letters or digits), not the name: keys were ~17 of a pair's ~33
//! bytes, and ClickHouse's cost of a row follows its bytes (parsing, LZ4, merges). The table's
//! `ALIAS` columns keep the names analysts use and read the codes. A key of a column of the
//! user's own (`--column`, lowercase by rule) stays its name; no code is lowercase only, so the
//! two never meet. Rows written before the codes (names as keys, or the second release's two
//! arrays) are re-encoded when read back from the write-ahead log.

use std::sync::LazyLock;

use crate::adjust::catalog::{CATALOG, Ty, is_hot};
use crate::adjust::decode::index_of;

use super::HEAD;
use super::rowbinary::{self as rb, Malformed, Reader};

/// The cold key of a placeholder name: FNV-1a of the name, written as `[A-Z][A-Za-z0-9]{2}`.
/// It depends on the name alone, so it never changes while the name does not; the catalog's
/// names have distinct codes (a unit test checks it; a new placeholder whose code is taken
/// needs another scheme before it can be added).
pub fn code_of(name: &str) -> [u8; 3] {
    const ALNUM: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    let first = b'A' + (h % 26) as u8;
    h /= 26;
    let second = ALNUM[(h % 62) as usize];
    h /= 62;
    [first, second, ALNUM[(h % 62) as usize]]
}

/// The cold key of every catalog entry, by catalog index.
static KEYS: LazyLock<Vec<String>> = LazyLock::new(|| {
    CATALOG
        .iter()
        .map(|p| String::from_utf8_lossy(&code_of(p.name)).into_owned())
        .collect()
});

/// The cold key of catalog entry `idx`.
pub fn key_at(idx: usize) -> &'static str {
    &KEYS[idx]
}

/// The key a cold value named `name` has in the text: its code for a placeholder, the name
/// itself for a key of a column of the user's own.
pub fn key_of(name: &str) -> &str {
    match index_of(name) {
        Some(idx) => key_at(idx),
        None => name,
    }
}

/// The placeholder name a key of the text stands for (a code, or a name as earlier versions
/// wrote it); other keys (columns of the user's own) as they are.
pub fn name_of(key: &str) -> &str {
    static NAMES: LazyLock<rustc_hash::FxHashMap<&'static str, &'static str>> =
        LazyLock::new(|| {
            CATALOG
                .iter()
                .enumerate()
                .map(|(i, p)| (key_at(i), p.name))
                .collect()
        });
    NAMES.get(key).copied().unwrap_or(key)
}

/// Appends `"key":"text"` (with a comma after the first pair) to a JSON object being written:
/// `"`, `\` and control characters escaped as JSON has them, everything else as it is.
pub(super) fn pair(json: &mut Vec<u8>, key: &str, text: &str) {
    if json.len() > 1 {
        json.push(b',');
    }
    json.push(b'"');
    json.extend_from_slice(key.as_bytes());
    json.extend_from_slice(b"\":\"");
    escape_json(json, text.as_bytes());
    json.push(b'"');
}

/// Appends `text` escaped for a JSON string.
fn escape_json(out: &mut Vec<u8>, text: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, &b) in text.iter().enumerate() {
        if b >= 0x20 && b != b'"' && b != b'\\' {
            continue;
        }
        out.extend_from_slice(&text[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 15)]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&text[start..]);
}

/// The text of named pairs (placeholder names, or keys of the user's own), keyed as rows are
/// written now.
fn text_of<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Vec<u8> {
    let mut json = vec![b'{'];
    for (name, text) in pairs {
        pair(&mut json, key_of(name), text);
    }
    json.push(b'}');
    json
}

/// The pairs of a row's cold text, in order, each under its placeholder's name (codes read back
/// as names); `None` when it is not a JSON object of strings.
pub fn cold_pairs(text: &str) -> Option<Vec<(String, String)>> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text).ok()?;
    object
        .into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Some((name_of(&k).to_string(), s)),
            _ => None,
        })
        .collect()
}

/// Skips a row's head and hot columns: `r` is then at its cold tier.
fn skip_to_cold(r: &mut Reader<'_>) -> Result<(), Malformed> {
    r.u32()?;
    r.u16()?;
    r.u64()?;
    for _ in 3..HEAD.len() {
        r.string()?;
    }
    for (i, p) in CATALOG.iter().enumerate() {
        if is_hot(i) {
            p.ty.read(r)?;
            if p.ty == Ty::Params {
                r.pairs()?;
            }
        }
    }
    Ok(())
}

/// `row` with the bytes from `cold_at` to `rest_at` replaced by the cold text `json`.
fn with_cold(row: &[u8], cold_at: usize, rest_at: usize, json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(row.len() + json.len());
    out.extend_from_slice(&row[..cold_at]);
    rb::put_str(&mut out, json);
    out.extend_from_slice(&row[rest_at..]);
    out
}

/// A row of the second release (its cold pairs in two arrays of names and texts, see
/// [`COLD_KEYS`](super::COLD_KEYS)), re-encoded as rows are now: the same bytes but for the cold
/// tier.
pub fn upgrade_cold_arrays(row: &[u8]) -> Result<Vec<u8>, Malformed> {
    let mut r = Reader::new(row);
    skip_to_cold(&mut r)?;
    let cold_at = r.position();
    let keys = r.strings()?;
    let values = r.strings()?;
    let rest_at = r.position();
    r.pairs()?;
    r.string()?;
    if !r.is_empty() || keys.len() != values.len() {
        return Err(Malformed(row.len()));
    }
    let json = text_of(
        keys.iter()
            .map(String::as_str)
            .zip(values.iter().map(String::as_str)),
    );
    Ok(with_cold(row, cold_at, rest_at, &json))
}

/// A row whose cold text has placeholder names as keys (written before the codes), re-encoded as
/// rows are now.
pub fn upgrade_cold_names(row: &[u8]) -> Result<Vec<u8>, Malformed> {
    let mut r = Reader::new(row);
    skip_to_cold(&mut r)?;
    let cold_at = r.position();
    let text = r.string()?;
    let rest_at = r.position();
    r.pairs()?;
    r.string()?;
    if !r.is_empty() {
        return Err(Malformed(row.len()));
    }
    let pairs = cold_pairs(&text).ok_or(Malformed(cold_at))?;
    let json = text_of(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    Ok(with_cold(row, cold_at, rest_at, &json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalog_name_has_its_own_code_and_no_code_is_a_possible_column_name() {
        let mut seen = std::collections::HashMap::new();
        for p in CATALOG {
            let code = code_of(p.name);
            assert!(code[0].is_ascii_uppercase());
            assert!(code.iter().all(u8::is_ascii_alphanumeric));
            if let Some(other) = seen.insert(code, p.name) {
                panic!("{} and {other} share the code {code:?}", p.name);
            }
        }
        // Codes depend on the name alone: pinned, since stored rows rely on them.
        assert_eq!(
            key_of("sdk_version"),
            String::from_utf8_lossy(&code_of("sdk_version"))
        );
        assert_eq!(&code_of("activity_kind"), b"XOM");
        assert_eq!(name_of(key_of("api_level")), "api_level");
        assert_eq!(key_of("loyalty_tier"), "loyalty_tier");
        assert_eq!(name_of("loyalty_tier"), "loyalty_tier");
        assert_eq!(name_of("api_level"), "api_level");
    }
}
