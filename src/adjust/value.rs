//! Parsing one decoded placeholder value into its column type. Pure functions, no allocation.
//!
//! The parsers are deliberately a little lenient where Adjust's own formats vary (a timestamp
//! sent as `1404214665.0`, a flag sent as `true`), and strict where a wrong value would mislead an
//! analyst (a negative timestamp, `NaN`, an integer out of range). Anything rejected is stored as
//! NULL with the raw pair kept in `extra`.

/// Unix seconds → `DateTime` (UInt32 on the wire). Accepts an integer, or a decimal whose
/// fraction is dropped.
pub fn parse_time(s: &str) -> Option<u32> {
    let s = s.trim();
    if let Ok(v) = s.parse::<u64>() {
        return u32::try_from(v).ok();
    }
    let (int, frac) = s.split_once('.')?;
    if int.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    int.parse::<u64>().ok().and_then(|v| u32::try_from(v).ok())
}

/// Unix milliseconds → Int64 (`DateTime64(3)` on modern servers).
pub fn parse_time_ms(s: &str) -> Option<i64> {
    let v = s.trim().parse::<i64>().ok()?;
    (v >= 0).then_some(v)
}

/// `0`/`1` flag (also `true`/`false`, any case) → UInt8.
pub fn parse_flag(s: &str) -> Option<u8> {
    match s.trim() {
        "0" => Some(0),
        "1" => Some(1),
        t if t.eq_ignore_ascii_case("true") => Some(1),
        t if t.eq_ignore_ascii_case("false") => Some(0),
        _ => None,
    }
}

/// Integer → Int64. A decimal with a zero fraction (`345.0`) is accepted.
pub fn parse_int(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(v) = s.parse::<i64>() {
        return Some(v);
    }
    let (int, frac) = s.split_once('.')?;
    if frac.is_empty() || !frac.bytes().all(|b| b == b'0') {
        return None;
    }
    int.parse::<i64>().ok()
}

/// Decimal number → Float64; finite values only (no `NaN`, no `inf`).
pub fn parse_float(s: &str) -> Option<f64> {
    let s = s.trim();
    // Rust's parser accepts "inf", "NaN" and "infinity"; Adjust never sends them.
    if !s
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
    {
        return None;
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Whether a text is well-formed JSON (any JSON value).
pub fn is_json(s: &str) -> bool {
    serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok()
}

/// A flat JSON object of string pairs (`{"k":"v",…}`); numbers, booleans and null values are
/// kept as their JSON text, nested values as compact JSON. `None` when it is not a JSON object.
pub fn parse_params(s: &str) -> Option<Vec<(String, String)>> {
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(s).ok()?;
    Some(
        map.into_iter()
            .map(|(k, v)| {
                let v = match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, v)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("1404214665"), Some(1404214665));
        assert_eq!(parse_time("1404214665.75"), Some(1404214665));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time("-5"), None);
        assert_eq!(parse_time("99999999999"), None);
        assert_eq!(parse_time(".5"), None);
        assert_eq!(parse_time_ms("1404214665123"), Some(1404214665123));
        assert_eq!(parse_time_ms("-1"), None);
    }

    #[test]
    fn flags_and_numbers() {
        assert_eq!(parse_flag("1"), Some(1));
        assert_eq!(parse_flag("False"), Some(0));
        assert_eq!(parse_flag("2"), None);
        assert_eq!(parse_int("-1"), Some(-1));
        assert_eq!(parse_int("345.00"), Some(345));
        assert_eq!(parse_int("3.5"), None);
        assert_eq!(parse_float("3.99"), Some(3.99));
        assert_eq!(parse_float("1e3"), Some(1000.0));
        assert_eq!(parse_float("abc"), None);
        assert_eq!(parse_float("NaN"), None);
        assert_eq!(parse_float("inf"), None);
        assert_eq!(parse_float("1e999"), None);
    }

    #[test]
    fn json_and_params() {
        assert!(is_json(r#"{"a":[1,2]}"#));
        assert!(!is_json("{oops"));
        assert_eq!(
            parse_params(r#"{"user_id":"42","n":7,"ok":true,"x":null}"#).unwrap(),
            vec![
                ("user_id".into(), "42".into()),
                ("n".into(), "7".into()),
                ("ok".into(), "true".into()),
                ("x".into(), "null".into()),
            ]
        );
        assert_eq!(parse_params("[1]"), None);
    }
}
