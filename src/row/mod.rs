//! The row: the columns of `adjust.callbacks` and the RowBinary encoding of one callback.
//!
//! Both are generated from the placeholder catalog, so the insert column list, the encoder and the
//! DDL cannot drift apart. Two storage tiers: a hot placeholder (marked `.hot()` in the catalog,
//! [`Tier::Hot`](crate::adjust::catalog::Tier::Hot)) has a typed column of its own; a cold one is
//! written as normalized text into one JSON object per row, `cold` (`{"KEY":"text",…}`, [`cold`]), and the
//! table shows it through an `ALIAS` column of its own name and type. A callback carries ~45 of ~234
//! placeholders, so a row no longer pays for ~190 empty columns. One wire encoding serves both
//! server profiles: where column types differ (`DateTime64(3)` on modern servers, `Int64` on
//! 18.16) they share the encoding.
//!
//! - [`build`](build()): a received callback → its row (the one way rows are made).
//! - [`ty`]: what each placeholder type means (DDL, absent bytes, encoding, read-back).
//! - [`privacy`]: `--pseudonymize` / `--drop`, applied while the row is built.
//! - [`rowbinary`]: the wire primitives and a reader.

mod build;
pub mod cold;
pub mod privacy;
pub mod rowbinary;
pub mod settings;
pub mod ty;

pub use build::{Built, Options, Received, build, build_pairs};
pub use cold::{cold_pairs, upgrade_cold_arrays, upgrade_cold_names};
pub use privacy::Privacy;

use std::sync::LazyLock;

use crate::adjust::catalog::{CATALOG, Ty, hot_flags, is_hot};
use crate::adjust::decode::{Callback, Value};
use rowbinary as rb;
use rowbinary::{Cell, Malformed, Reader};

/// A column's type as rows know it; [`crate::clickhouse::types`] names it for each server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnType {
    /// A placeholder's type.
    Placeholder(Ty),
    /// A sink column's type, as ClickHouse spells it on every server (`DateTime('UTC')`).
    Sql(&'static str),
    /// `Nested(key String, value String)`: two arrays on the wire.
    Pairs,
}

/// One column of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub ty: ColumnType,
}

impl Column {
    fn new(name: &str, ty: &'static str) -> Self {
        Column {
            name: name.into(),
            ty: ColumnType::Sql(ty),
        }
    }

    fn typed(name: &str, ty: Ty) -> Self {
        Column {
            name: name.into(),
            ty: ColumnType::Placeholder(ty),
        }
    }

    fn pairs(name: &str) -> Self {
        Column {
            name: name.into(),
            ty: ColumnType::Pairs,
        }
    }

    /// Whether it is a `Nested(key String, value String)` column (two arrays on the wire).
    pub fn nested(&self) -> bool {
        self.ty == ColumnType::Pairs
    }

    /// The names this column has in an INSERT column list.
    pub fn wire_names(&self) -> Vec<String> {
        if self.nested() {
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
    "ingest_source",
];

/// How a row reached the table: `callback` (Adjust called the sink) or `import` (read from one of
/// Adjust's exports by `adjust-sink import`).
pub const INGEST_CALLBACK: &str = "callback";
pub const INGEST_IMPORT: &str = "import";

/// The `DEFAULT` clause of a sink column, where it has one: rows written before `ingest_source`
/// existed came from callbacks.
pub fn column_default(name: &str) -> Option<&'static str> {
    (name == "ingest_source").then_some("DEFAULT 'callback'")
}

/// The cold tier: one JSON object text per row, every cold placeholder sent (under its code, see
/// [`cold`]) and every key with a column of the user's own. One value per row, however many are
/// sent: ClickHouse's cost of a row no longer grows with each cold value.
pub const COLD: &str = "cold";

/// The cold tier of rows written before [`COLD`]: two parallel arrays of names and texts. The
/// write-ahead log may still hold such rows ([`upgrade_cold_arrays`]); tables made then keep the
/// arrays, from which their `cold` is computed.
pub const COLD_KEYS: &str = "cold_keys";
pub const COLD_VALUES: &str = "cold_values";

fn head_columns() -> Vec<Column> {
    vec![
        Column::new("received_at", "DateTime('UTC')"),
        Column::new("event_date", "Date"),
        Column::new("callback_id", "UInt64"),
        Column::new("callback_trigger", "LowCardinality(String)"),
        Column::new("source_ip", "String"),
        Column::new("ingest_source", "LowCardinality(String)"),
    ]
}

/// A placeholder's own column (hot), with its `<name>_kv` pairs for a parameters placeholder.
fn push_placeholder(cols: &mut Vec<Column>, name: &str, ty: Ty) {
    cols.push(Column::typed(name, ty));
    if ty == Ty::Params {
        cols.push(Column::pairs(&format!("{name}_kv")));
    }
}

/// The columns an INSERT writes, in wire order: the sink columns, the hot placeholders (catalog
/// order), the cold arrays, `extra`, `raw_query`.
pub fn wire_columns() -> Vec<Column> {
    let mut cols = head_columns();
    for (i, p) in CATALOG.iter().enumerate() {
        if is_hot(i) {
            push_placeholder(&mut cols, p.name, p.ty);
        }
    }
    cols.push(Column::new(COLD, "String"));
    cols.push(Column::pairs("extra"));
    cols.push(Column::new("raw_query", "String"));
    cols
}

/// The table as analysts see it: the sink columns, every placeholder with its type (a column of
/// its own or an `ALIAS` over the cold arrays), `extra`, `raw_query`.
pub fn columns() -> Vec<Column> {
    let mut cols = head_columns();
    for p in CATALOG {
        push_placeholder(&mut cols, p.name, p.ty);
    }
    cols.push(Column::pairs("extra"));
    cols.push(Column::new("raw_query", "String"));
    cols
}

/// `INSERT INTO db.table (…) FORMAT RowBinary` with every wire column named.
pub fn insert_sql(database: &str, table: &str) -> String {
    let names: Vec<String> = wire_columns().iter().flat_map(Column::wire_names).collect();
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
    /// [`INGEST_CALLBACK`] or [`INGEST_IMPORT`].
    pub ingest_source: &'a str,
    /// The raw input, stored only when decoding hit a problem.
    pub raw: Option<&'a [u8]>,
}

/// The encoding of "not sent" for every hot column, concatenated, with each column's start: the
/// encoder copies runs of absent columns in one go.
struct AbsentRow {
    bytes: Vec<u8>,
    /// For catalog entry `i`, the start of its bytes (`starts[CATALOG.len()]` is the end); a
    /// cold entry starts and ends where the next hot one starts.
    starts: Vec<usize>,
}

static ABSENT: LazyLock<AbsentRow> = LazyLock::new(|| {
    let mut bytes = Vec::new();
    let mut starts = Vec::with_capacity(CATALOG.len() + 1);
    for (i, p) in CATALOG.iter().enumerate() {
        starts.push(bytes.len());
        if is_hot(i) {
            p.ty.put_absent(&mut bytes);
            if p.ty == Ty::Params {
                // An empty `<name>_kv`: two empty arrays.
                bytes.extend_from_slice(&[0, 0]);
            }
        }
    }
    starts.push(bytes.len());
    AbsentRow { bytes, starts }
});

static CREATED_AT: LazyLock<usize> =
    LazyLock::new(|| crate::adjust::decode::index_of("created_at").expect("created_at in catalog"));

thread_local! {
    /// The cold tier's JSON text of the row being encoded (one buffer per thread, reused).
    static COLD_TEXT: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(4096));
}

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
    rb::put_str(out, meta.ingest_source.as_bytes());
    let absent = &*ABSENT;
    let hot = hot_flags();
    let mut next = 0;
    for (idx, v) in cb.sent() {
        let p = &CATALOG[idx];
        if !hot[idx] {
            continue;
        }
        out.extend_from_slice(&absent.bytes[absent.starts[next]..absent.starts[idx]]);
        ty::put_typed(cb, p.ty, v, out);
        if let Value::Params(p) = v {
            let pairs = &p.1;
            rb::put_pairs(
                out,
                pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                pairs.len(),
            );
        } else if p.ty == Ty::Params {
            out.extend_from_slice(&[0, 0]);
        }
        next = idx + 1;
    }
    out.extend_from_slice(&absent.bytes[absent.starts[next]..]);
    // The cold tier: the cold placeholders sent, then keys with a column of the user's own
    // (`--column`: cold text too, so the row's encoding does not depend on the flags), as one
    // JSON object.
    COLD_TEXT.with_borrow_mut(|json| {
        json.clear();
        json.push(b'{');
        let mut text = ty::TextBuf::default();
        for (idx, v) in cb.sent().filter(|(idx, _)| !hot[*idx]) {
            cold::pair(json, cold::key_at(idx), ty::cold_text(cb, v, &mut text));
        }
        for (name, v) in &cb.custom {
            cold::pair(json, name, ty::cold_text(cb, v, &mut text));
        }
        json.push(b'}');
        rb::put_str(out, json);
    });
    rb::put_pairs(
        out,
        cb.extra.iter().map(|(k, v)| (k.as_ref(), v.as_ref())),
        cb.extra.len(),
    );
    rb::put_str(out, meta.raw.unwrap_or(b""));
}

/// Reads an encoded row back as the table shows it: every column of [`columns`] in order, the
/// cold placeholders typed from their text as their `ALIAS` columns type them.
pub fn read_row(row: &[u8]) -> Result<Vec<(Column, Cell)>, Malformed> {
    let mut r = Reader::new(row);
    let out = read_cells(&mut r)?;
    if !r.is_empty() {
        return Err(Malformed(row.len()));
    }
    Ok(out)
}

/// Encoded rows, concatenated, cut back into rows.
pub fn split_rows(data: &[u8]) -> Result<Vec<&[u8]>, Malformed> {
    let mut rows = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let mut r = Reader::new(rest);
        read_cells(&mut r)?;
        let (row, tail) = rest.split_at(r.position());
        rows.push(row);
        rest = tail;
    }
    Ok(rows)
}

/// Reads the cells of one row from `r`.
fn read_cells(r: &mut Reader<'_>) -> Result<Vec<(Column, Cell)>, Malformed> {
    let mut out = Vec::with_capacity(CATALOG.len() + 16);
    let head = head_columns();
    let cells = [
        Cell::UInt(r.u32()?.into()),
        Cell::UInt(r.u16()?.into()),
        Cell::UInt(r.u64()?),
        Cell::Str(r.string()?),
        Cell::Str(r.string()?),
        Cell::Str(r.string()?),
    ];
    out.extend(head.into_iter().zip(cells));
    let mut hot: Vec<Option<(Cell, Option<Cell>)>> = vec![None; CATALOG.len()];
    for (i, p) in CATALOG.iter().enumerate() {
        if is_hot(i) {
            let cell = p.ty.read(r)?;
            let kv = (p.ty == Ty::Params).then(|| r.pairs()).transpose()?;
            hot[i] = Some((cell, kv.map(Cell::Pairs)));
        }
    }
    let at = r.position();
    let cold = cold_pairs(&r.string()?).ok_or(Malformed(at))?;
    for (i, p) in CATALOG.iter().enumerate() {
        let (cell, kv) = match hot[i].take() {
            Some(found) => found,
            None => {
                let text = cold.iter().find(|(k, _)| k == p.name).map(|(_, v)| v);
                let cell = text.map_or_else(|| p.ty.absent_cell(), |t| p.ty.cell_from_text(t));
                let kv = (p.ty == Ty::Params).then(|| Cell::Pairs(Vec::new()));
                (cell, kv)
            }
        };
        out.push((Column::typed(p.name, p.ty), cell));
        if let Some(kv) = kv {
            out.push((Column::pairs(&format!("{}_kv", p.name)), kv));
        }
    }
    out.push((Column::pairs("extra"), Cell::Pairs(r.pairs()?)));
    out.push((Column::new("raw_query", "String"), Cell::Str(r.string()?)));
    Ok(out)
}

/// The `callback_id` of an encoded row.
pub fn callback_id_of(row: &[u8]) -> Option<u64> {
    let mut r = Reader::new(row);
    r.u32().ok()?;
    r.u16().ok()?;
    r.u64().ok()
}

/// The table's sorting key of an encoded row: `(activity_kind, event_date, callback_id)`, the
/// `ORDER BY` of the callbacks table on both server generations. Batches are sent in this order
/// so that ClickHouse finds each block already sorted and writes it without permuting every
/// column. `None` for bytes that do not read as a row.
pub fn sort_key(row: &[u8]) -> Option<(&[u8], u16, u64)> {
    let mut r = Reader::new(row);
    r.u32().ok()?;
    let day = r.u16().ok()?;
    let id = r.u64().ok()?;
    // The head's strings (callback_trigger, source_ip, ingest_source), then the first hot
    // column: activity_kind.
    for _ in 3..HEAD.len() {
        r.bytes().ok()?;
    }
    Some((r.bytes().ok()?, day, id))
}

/// The `received_at` of an encoded row (unix seconds).
pub fn received_at_of(row: &[u8]) -> Option<u32> {
    Reader::new(row).u32().ok()
}

/// The `event_date` of an encoded row (days since 1970-01-01), what the table is partitioned by.
pub fn event_date_of(row: &[u8]) -> Option<u16> {
    let mut r = Reader::new(row);
    r.u32().ok()?;
    r.u16().ok()
}

/// An encoded row as a JSON object (column → value; NULL and empty values left out), for the
/// rejects table and for people reading it.
pub fn to_json(row: &[u8]) -> String {
    let mut obj = serde_json::Map::new();
    match read_row(row) {
        Ok(cells) => {
            for (c, cell) in cells {
                let value = match cell {
                    Cell::Null => continue,
                    Cell::Str(s) if s.is_empty() => continue,
                    Cell::Str(s) => serde_json::Value::String(s),
                    Cell::UInt(v) => serde_json::Value::from(v),
                    Cell::Int(v) => serde_json::Value::from(v),
                    Cell::Float(v) => serde_json::Value::from(v),
                    Cell::Pairs(p) if p.is_empty() => continue,
                    Cell::Pairs(p) => serde_json::Value::Array(
                        p.into_iter()
                            .map(|(k, v)| serde_json::json!([k, v]))
                            .collect(),
                    ),
                };
                obj.insert(c.name, value);
            }
        }
        Err(e) => {
            obj.insert(
                "_malformed".into(),
                serde_json::Value::String(e.to_string()),
            );
        }
    }
    serde_json::Value::Object(obj).to_string()
}

#[cfg(test)]
mod tests;
