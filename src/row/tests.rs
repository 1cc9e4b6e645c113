use super::rowbinary::Cell;
use super::*;
use crate::adjust::decode::{Body, DecodeOptions, decode};

/// Decodes an encoded row back into (column, cell) pairs, in column order.
pub(crate) fn read_back(row: &[u8]) -> Vec<(String, Cell)> {
    let cells = read_row(row).expect("well-formed row");
    let names: Vec<String> = columns().into_iter().map(|c| c.name).collect();
    assert_eq!(
        cells
            .iter()
            .map(|(c, _)| c.name.clone())
            .collect::<Vec<_>>(),
        names,
        "a row reads back as the table's columns"
    );
    cells.into_iter().map(|(c, cell)| (c.name, cell)).collect()
}

fn cell<'a>(cells: &'a [(String, Cell)], name: &str) -> &'a Cell {
    &cells
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .1
}

#[test]
fn encoded_row_reads_back_column_by_column() {
    let q = b"activity_kind=event&created_at=86401&revenue_float=2.5&is_organic=1&adid=abc\
              &revenue_float=dup&user_id=7&partner_parameters=%7B%22k%22%3A%22v%22%7D&att_status=-1";
    let cb = decode(q, Body::None, "event", &DecodeOptions::new());
    let mut out = Vec::new();
    encode(
        &cb,
        &Meta {
            received_at: 1_700_000_000,
            callback_id: 42,
            source_ip: "178.162.216.70",
            ingest_source: crate::row::INGEST_CALLBACK,
            raw: Some(b"raw"),
        },
        &mut out,
    );
    {
        let cells = read_back(&out);
        assert_eq!(cell(&cells, "received_at"), &Cell::UInt(1_700_000_000));
        assert_eq!(cell(&cells, "event_date"), &Cell::UInt(1));
        assert_eq!(cell(&cells, "callback_id"), &Cell::UInt(42));
        assert_eq!(cell(&cells, "callback_trigger"), &Cell::Str("event".into()));
        assert_eq!(
            cell(&cells, "source_ip"),
            &Cell::Str("178.162.216.70".into())
        );
        assert_eq!(cell(&cells, "activity_kind"), &Cell::Str("event".into()));
        assert_eq!(cell(&cells, "created_at"), &Cell::UInt(86401));
        assert_eq!(cell(&cells, "revenue_float"), &Cell::Float(2.5));
        assert_eq!(cell(&cells, "is_organic"), &Cell::UInt(1));
        assert_eq!(cell(&cells, "att_status"), &Cell::Int(-1));
        assert_eq!(cell(&cells, "installed_at"), &Cell::Null);
        assert_eq!(cell(&cells, "idfa"), &Cell::Str(String::new()));
        assert_eq!(
            cell(&cells, "partner_parameters_kv"),
            &Cell::Pairs(vec![("k".into(), "v".into())])
        );
        assert_eq!(
            cell(&cells, "extra"),
            &Cell::Pairs(vec![
                ("revenue_float".into(), "dup".into()),
                ("user_id".into(), "7".into())
            ])
        );
        assert_eq!(cell(&cells, "raw_query"), &Cell::Str("raw".into()));
    }
}

#[test]
fn insert_lists_every_wire_column_once() {
    let sql = insert_sql("adjust", "callbacks");
    assert!(sql.starts_with("INSERT INTO adjust.callbacks (received_at, event_date, callback_id,"));
    assert!(sql.contains("extra.key, extra.value, raw_query) FORMAT RowBinary"));
    let names: Vec<String> = columns().iter().flat_map(Column::wire_names).collect();
    let unique: std::collections::HashSet<_> = names.iter().collect();
    assert_eq!(unique.len(), names.len());
}

#[test]
fn every_catalog_placeholder_has_a_column() {
    let cols = columns();
    for p in CATALOG {
        assert!(
            cols.iter().any(|c| c.name == p.name),
            "{} has no column",
            p.name
        );
    }
}
