//! The row: the columns of `adjust.callbacks` and the RowBinary encoding of one callback.
//!
//! Both are generated from the placeholder catalog, so the insert column list, the encoder and the
//! DDL cannot drift apart. One wire encoding serves both server profiles: where the column types
//! differ (`DateTime64(3)` on modern servers, `Int64` on 18.16) they share the encoding.

mod build;
pub mod rowbinary;

pub use build::{Built, Options, Received, build};

use std::sync::LazyLock;

use crate::adjust::catalog::{CATALOG, Ty};
use crate::adjust::decode::{Callback, Value};
use rowbinary as rb;

/// The ClickHouse server generation a DDL is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Profile {
    /// ClickHouse 18.16 (Debian's package; no Map, DateTime64, codecs, TTL or skip indexes).
    Legacy,
    /// Current ClickHouse (tested against 26.x).
    Modern,
}

impl Profile {
    /// The profile for a `SELECT version()` answer: anything before 20.x is legacy.
    pub fn for_version(version: &str) -> Profile {
        let major: u32 = version
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        if major >= 20 {
            Profile::Modern
        } else {
            Profile::Legacy
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Legacy => "legacy",
            Profile::Modern => "modern",
        }
    }
}

/// One column of the table as DDL sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub legacy: String,
    pub modern: String,
    /// Whether it is a `Nested(key String, value String)` column (two arrays on the wire).
    pub nested: bool,
}

impl Column {
    fn new(name: &str, ty: &str) -> Self {
        Self::split(name, ty, ty)
    }

    fn split(name: &str, legacy: &str, modern: &str) -> Self {
        Column {
            name: name.into(),
            legacy: legacy.into(),
            modern: modern.into(),
            nested: false,
        }
    }

    fn pairs(name: &str) -> Self {
        let ty = "Nested(key String, value String)";
        Column {
            nested: true,
            ..Self::new(name, ty)
        }
    }

    pub fn ty(&self, profile: Profile) -> &str {
        match profile {
            Profile::Legacy => &self.legacy,
            Profile::Modern => &self.modern,
        }
    }

    /// The names this column has in an INSERT column list.
    pub fn wire_names(&self) -> Vec<String> {
        if self.nested {
            vec![format!("{}.key", self.name), format!("{}.value", self.name)]
        } else {
            vec![self.name.clone()]
        }
    }
}

/// Sink-side columns written before the placeholders.
pub const HEAD: &[&str] = &[
    "received_at",
    "event_date",
    "callback_id",
    "callback_trigger",
    "source_ip",
];

/// Every stored column, in wire order.
pub fn columns() -> Vec<Column> {
    let mut cols = vec![
        Column::new("received_at", "DateTime('UTC')"),
        Column::new("event_date", "Date"),
        Column::new("callback_id", "UInt64"),
        Column::new("callback_trigger", "LowCardinality(String)"),
        Column::new("source_ip", "String"),
    ];
    for p in CATALOG {
        match p.ty {
            Ty::Str | Ty::Json => cols.push(Column::new(p.name, "String")),
            Ty::LowCard => cols.push(Column::new(p.name, "LowCardinality(String)")),
            Ty::Time => cols.push(Column::new(p.name, "Nullable(DateTime('UTC'))")),
            Ty::TimeMs => cols.push(Column::split(
                p.name,
                "Nullable(Int64)",
                "Nullable(DateTime64(3, 'UTC'))",
            )),
            Ty::Flag => cols.push(Column::new(p.name, "Nullable(UInt8)")),
            Ty::Int => cols.push(Column::new(p.name, "Nullable(Int64)")),
            Ty::Float => cols.push(Column::new(p.name, "Nullable(Float64)")),
            Ty::Params => {
                cols.push(Column::new(p.name, "String"));
                cols.push(Column::pairs(&format!("{}_kv", p.name)));
            }
        }
    }
    cols.push(Column::pairs("extra"));
    cols.push(Column::new("raw_query", "String"));
    cols
}

/// `INSERT INTO db.table (…) FORMAT RowBinary` with every wire column named.
pub fn insert_sql(database: &str, table: &str) -> String {
    let names: Vec<String> = columns().iter().flat_map(Column::wire_names).collect();
    format!(
        "INSERT INTO {database}.{table} ({}) FORMAT RowBinary",
        names.join(", ")
    )
}

/// What the sink adds to a callback.
#[derive(Debug, Clone, Copy)]
pub struct Meta<'a> {
    /// Unix seconds when the callback was received.
    pub received_at: u32,
    pub callback_id: u64,
    pub source_ip: &'a str,
    /// The raw input, stored only when decoding hit a problem.
    pub raw: Option<&'a [u8]>,
}

/// The encoding of "not sent" for every catalog column, concatenated, with each column's start:
/// the encoder copies runs of absent columns in one go instead of walking ~230 columns.
struct AbsentRow {
    bytes: Vec<u8>,
    /// `starts[i]..starts[i + 1]` is column `i`; one more entry than the catalog.
    starts: Vec<usize>,
}

static ABSENT: LazyLock<AbsentRow> = LazyLock::new(|| {
    let mut bytes = Vec::new();
    let mut starts = Vec::with_capacity(CATALOG.len() + 1);
    for p in CATALOG {
        starts.push(bytes.len());
        put_absent(&mut bytes, p.ty);
    }
    starts.push(bytes.len());
    AbsentRow { bytes, starts }
});

fn put_absent(out: &mut Vec<u8>, ty: Ty) {
    match ty {
        // Empty string.
        Ty::Str | Ty::LowCard | Ty::Json => out.push(0),
        // Empty string, then an empty `Nested`: two empty arrays.
        Ty::Params => out.extend_from_slice(&[0, 0, 0]),
        // NULL.
        Ty::Time | Ty::TimeMs | Ty::Int | Ty::Flag | Ty::Float => out.push(1),
    }
}

static CREATED_AT: LazyLock<usize> =
    LazyLock::new(|| crate::adjust::decode::index_of("created_at").expect("created_at in catalog"));

/// Appends the RowBinary encoding of one callback to `out`.
pub fn encode(cb: &Callback<'_>, meta: &Meta<'_>, out: &mut Vec<u8>) {
    rb::put_u32(out, meta.received_at);
    let event_time = match cb.value(*CREATED_AT) {
        Value::Time(t) => *t,
        _ => meta.received_at,
    };
    rb::put_u16(out, (event_time / 86_400) as u16);
    rb::put_u64(out, meta.callback_id);
    rb::put_str(out, cb.trigger.as_bytes());
    rb::put_str(out, meta.source_ip.as_bytes());
    let absent = &*ABSENT;
    let mut next = 0;
    for (idx, v) in cb.sent() {
        out.extend_from_slice(&absent.bytes[absent.starts[next]..absent.starts[idx]]);
        put_value(cb, CATALOG[idx].ty, v, out);
        next = idx + 1;
    }
    out.extend_from_slice(&absent.bytes[absent.starts[next]..]);
    rb::put_pairs(
        out,
        cb.extra.iter().map(|(k, v)| (k.as_ref(), v.as_ref())),
        cb.extra.len(),
    );
    rb::put_str(out, meta.raw.unwrap_or(b""));
}

fn put_value(cb: &Callback<'_>, ty: Ty, v: &Value<'_>, out: &mut Vec<u8>) {
    match (ty, v) {
        (Ty::Str | Ty::LowCard | Ty::Json, Value::Text(_) | Value::Part(..)) => {
            rb::put_str(out, cb.resolve(v).as_bytes())
        }
        (Ty::Params, Value::Params(raw, pairs)) => {
            rb::put_str(out, raw.as_bytes());
            rb::put_pairs(
                out,
                pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                pairs.len(),
            );
        }
        (Ty::Time, Value::Time(t)) => {
            out.push(0);
            rb::put_u32(out, *t);
        }
        (Ty::TimeMs, Value::TimeMs(t)) | (Ty::Int, Value::Int(t)) => {
            out.push(0);
            rb::put_i64(out, *t);
        }
        (Ty::Flag, Value::Flag(f)) => out.extend_from_slice(&[0, *f]),
        (Ty::Float, Value::Float(f)) => {
            out.push(0);
            rb::put_f64(out, *f);
        }
        // A value of another shape cannot be stored in this column: "not sent".
        (ty, _) => put_absent(out, ty),
    }
}

/// The `callback_id` of an encoded row (it sits at a fixed offset after `received_at` and
/// `event_date`).
pub fn callback_id_of(row: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(row.get(6..14)?.try_into().ok()?))
}

/// An encoded row as a JSON object (column → value; NULL and empty values left out), for the
/// rejects table and for people reading it.
pub fn to_json(row: &[u8]) -> String {
    use rb::Cell;
    let mut reader = rb::Reader::new(row);
    let mut obj = serde_json::Map::new();
    for c in columns() {
        let value = match reader.cell(c.ty(Profile::Legacy)) {
            Ok(Cell::Null) => continue,
            Ok(Cell::Str(s)) if s.is_empty() => continue,
            Ok(Cell::Str(s)) => serde_json::Value::String(s),
            Ok(Cell::UInt(v)) => serde_json::Value::from(v),
            Ok(Cell::Int(v)) => serde_json::Value::from(v),
            Ok(Cell::Float(v)) => serde_json::Value::from(v),
            Ok(Cell::Pairs(p)) if p.is_empty() => continue,
            Ok(Cell::Pairs(p)) => serde_json::Value::Array(
                p.into_iter()
                    .map(|(k, v)| serde_json::json!([k, v]))
                    .collect(),
            ),
            Err(e) => {
                obj.insert(
                    "_malformed".into(),
                    serde_json::Value::String(e.to_string()),
                );
                break;
            }
        };
        obj.insert(c.name, value);
    }
    serde_json::Value::Object(obj).to_string()
}

#[cfg(test)]
mod tests;
