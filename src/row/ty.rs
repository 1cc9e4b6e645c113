//! What each placeholder type means in a row, in one place: the bytes of "not sent", how a value
//! is written (typed in its own column, or as normalized text in the cold key/value column), and
//! how an encoded value reads back (what each server calls the type is
//! `clickhouse::types`). Every `match` here is over [`Ty`] or [`Value`] with no catch-all,
//! so adding a type does not compile until each behaviour is decided.

use super::rowbinary::{self as rb, Cell, Malformed, Reader};
use crate::adjust::catalog::Ty;
use crate::adjust::decode::{Callback, Value};
use crate::adjust::value;

impl Ty {
    /// The type in words, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Ty::Str => "text",
            Ty::LowCard => "repetitive text",
            Ty::Time => "a timestamp",
            Ty::TimeMs => "a timestamp in milliseconds",
            Ty::Flag => "a 0/1 flag",
            Ty::Int => "an integer",
            Ty::Float => "a number",
            Ty::Json => "JSON",
            Ty::Params => "a JSON object of parameters",
        }
    }

    /// Appends the RowBinary of "not sent": `''` for text, `NULL` otherwise. (A parameters
    /// placeholder's `<name>_kv` arrays are columns of their own, written by the row encoder.)
    pub fn put_absent(self, out: &mut Vec<u8>) {
        match self {
            Ty::Str | Ty::LowCard | Ty::Json | Ty::Params => out.push(0),
            Ty::Time | Ty::TimeMs | Ty::Int | Ty::Flag | Ty::Float => out.push(1),
        }
    }

    /// Whether the decoder may hand this value to a column of this type. The decoder only makes
    /// values through [`Ty::parse`] (and text parts for string columns), and a test checks that
    /// every parsed value is accepted; the encoder relies on it.
    pub fn accepts(self, v: &Value<'_>) -> bool {
        match v {
            Value::Absent => true,
            Value::Text(_) | Value::Part(..) => matches!(self, Ty::Str | Ty::LowCard | Ty::Json),
            Value::Params(..) => self == Ty::Params,
            Value::Time(_) => self == Ty::Time,
            Value::TimeMs(_) => self == Ty::TimeMs,
            Value::Flag(_) => self == Ty::Flag,
            Value::Int(_) => self == Ty::Int,
            Value::Float(_) => self == Ty::Float,
        }
    }

    /// Reads back one value written in this type's own column.
    pub fn read(self, r: &mut Reader<'_>) -> Result<Cell, Malformed> {
        match self {
            Ty::Str | Ty::LowCard | Ty::Json | Ty::Params => r.string().map(Cell::Str),
            Ty::Time | Ty::TimeMs | Ty::Flag | Ty::Int | Ty::Float => {
                if r.null_flag()? {
                    return Ok(Cell::Null);
                }
                match self {
                    Ty::Time => r.u32().map(|v| Cell::UInt(v.into())),
                    Ty::Flag => r.u8().map(|v| Cell::UInt(v.into())),
                    Ty::Float => r.f64().map(Cell::Float),
                    _ => r.i64().map(Cell::Int),
                }
            }
        }
    }

    /// The cell that cold text of this type stands for (what the ALIAS column shows).
    pub fn cell_from_text(self, text: &str) -> Cell {
        let null = || Cell::Null;
        match self {
            Ty::Str | Ty::LowCard | Ty::Json | Ty::Params => Cell::Str(text.to_string()),
            Ty::Time => value::parse_time(text).map_or_else(null, |v| Cell::UInt(v.into())),
            Ty::TimeMs => value::parse_time_ms(text).map_or_else(null, Cell::Int),
            Ty::Flag => value::parse_flag(text).map_or_else(null, |v| Cell::UInt(v.into())),
            Ty::Int => value::parse_int(text).map_or_else(null, Cell::Int),
            Ty::Float => value::parse_float(text).map_or_else(null, Cell::Float),
        }
    }

    /// The cell of "not sent".
    pub fn absent_cell(self) -> Cell {
        match self {
            Ty::Str | Ty::LowCard | Ty::Json | Ty::Params => Cell::Str(String::new()),
            Ty::Time | Ty::TimeMs | Ty::Flag | Ty::Int | Ty::Float => Cell::Null,
        }
    }
}

/// Appends the RowBinary of a sent value in its own column (`Params` writes its raw text; the
/// `<name>_kv` arrays are the row encoder's).
pub(crate) fn put_typed(cb: &Callback<'_>, ty: Ty, v: &Value<'_>, out: &mut Vec<u8>) {
    debug_assert!(ty.accepts(v), "{ty:?} column given {v:?}");
    match v {
        Value::Absent => ty.put_absent(out),
        Value::Text(_) | Value::Part(..) | Value::Params(..) => {
            rb::put_str(out, cb.resolve(v).as_bytes())
        }
        Value::Time(t) => {
            out.push(0);
            rb::put_u32(out, *t);
        }
        Value::TimeMs(t) | Value::Int(t) => {
            out.push(0);
            rb::put_i64(out, *t);
        }
        Value::Flag(f) => out.extend_from_slice(&[0, *f]),
        Value::Float(f) => {
            out.push(0);
            rb::put_f64(out, *f);
        }
    }
}

/// The normalized text of a sent value, as the cold tier keeps it: text as sent, times as epoch seconds (milliseconds for `*_milli`), flags as `0`/`1`,
/// numbers in their shortest exact decimal form (`ryu`). The ALIAS column types it back exactly
/// (`clickhouse::types::from_text_sql`). `Absent` is never stored cold (an empty string if asked).
pub(crate) fn cold_text<'a>(
    cb: &'a Callback<'_>,
    v: &'a Value<'_>,
    buf: &'a mut TextBuf,
) -> &'a str {
    match v {
        Value::Absent => "",
        Value::Text(_) | Value::Part(..) | Value::Params(..) => cb.resolve(v),
        Value::Time(t) => buf.int.format(*t),
        Value::TimeMs(t) | Value::Int(t) => buf.int.format(*t),
        Value::Flag(f) => buf.int.format(*f),
        Value::Float(f) => buf.float.format_finite(*f),
    }
}

/// Where [`cold_text`] formats numbers.
#[derive(Default)]
pub(crate) struct TextBuf {
    int: itoa::Buffer,
    float: ryu::Buffer,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adjust::catalog::CATALOG;
    use crate::adjust::decode::{Body, DecodeOptions, decode};

    const TYPES: [Ty; 9] = [
        Ty::Str,
        Ty::LowCard,
        Ty::Time,
        Ty::TimeMs,
        Ty::Flag,
        Ty::Int,
        Ty::Float,
        Ty::Json,
        Ty::Params,
    ];

    /// Every value the decoder produces for a placeholder fits its column type: a mismatch
    /// would write a row of the wrong shape, so it must fail here.
    #[test]
    fn decoded_values_fit_their_column_types() {
        let samples = [
            "1404214665",
            "1404214665123",
            "1",
            "-7",
            "3.99",
            "true",
            "{\"a\":\"b\"}",
            "Network::Campaign::Adgroup::Creative",
            "abc",
        ];
        for p in CATALOG {
            for s in samples {
                let q = format!(
                    "{}={}",
                    p.name,
                    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
                );
                let cb = decode(q.as_bytes(), Body::None, "", &DecodeOptions::new());
                for (idx, v) in cb.sent() {
                    let ty = CATALOG[idx].ty;
                    assert!(
                        ty.accepts(v),
                        "{}={s}: {ty:?} given {v:?}",
                        CATALOG[idx].name
                    );
                }
            }
        }
    }

    /// Cold text reads back as the value that was sent, for every type.
    #[test]
    fn cold_text_round_trips() {
        for (ty, sent) in [
            (Ty::Time, "1404214665"),
            (Ty::TimeMs, "1404214665123"),
            (Ty::Flag, "true"),
            (Ty::Int, "345.0"),
            (Ty::Float, "0.1"),
            (Ty::Float, "1e300"),
            (Ty::Float, "-2.5e-9"),
            (Ty::Str, "x y"),
        ] {
            let parsed = ty.parse(sent).expect("parses").0;
            let cb = decode(b"", Body::None, "", &DecodeOptions::new());
            let text = cold_text(&cb, &parsed, &mut TextBuf::default()).to_string();
            let mut typed = Vec::new();
            put_typed(&cb, ty, &parsed, &mut typed);
            let direct = ty.read(&mut Reader::new(&typed)).unwrap();
            assert_eq!(ty.cell_from_text(&text), direct, "{ty:?} {sent} → {text}");
        }
    }

    #[test]
    fn absent_reads_back_as_absent() {
        for ty in TYPES {
            let mut out = Vec::new();
            ty.put_absent(&mut out);
            assert_eq!(ty.read(&mut Reader::new(&out)).unwrap(), ty.absent_cell());
            assert_eq!(
                ty.cell_from_text(""),
                match ty.absent_cell() {
                    Cell::Str(_) => Cell::Str(String::new()),
                    other => other,
                }
            );
        }
    }
}
