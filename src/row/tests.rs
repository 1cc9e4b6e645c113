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
        // The sorting key reads the same columns the table sorts by.
        assert_eq!(sort_key(&out), Some((&b"event"[..], 1, 42)));
    }
    assert_eq!(sort_key(&out[..20]), None);
}

#[test]
fn the_sort_key_is_the_tables_order_by() {
    // The key's columns are the callbacks table's ORDER BY on both server generations.
    for profile in [
        include_str!("../../schema/legacy.sql"),
        include_str!("../../schema/modern.sql"),
    ] {
        let table = profile
            .split("CREATE TABLE IF NOT EXISTS adjust.callbacks\n")
            .nth(1)
            .expect("the callbacks table");
        let order = table.lines().find(|l| l.starts_with("ORDER BY"));
        assert_eq!(
            order,
            Some("ORDER BY (activity_kind, event_date, callback_id)")
        );
    }
    // And activity_kind is the first column after the head columns.
    let cols: Vec<String> = columns().into_iter().map(|c| c.name).collect();
    assert_eq!(cols[..HEAD.len()], *HEAD);
    assert_eq!(cols[HEAD.len()], "activity_kind");
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

#[test]
fn cold_text_is_json_and_rows_of_the_array_layout_are_re_encoded() {
    let q = b"activity_kind=install&created_at=1404214665&sdk_version=4.38.0\
              &city=K%C3%B6ln%20%22x%22%5C%0A%08&api_level=33&reftag=";
    let cb = decode(q, Body::None, "install", &DecodeOptions::new());
    let mut row = Vec::new();
    encode(
        &cb,
        &Meta {
            received_at: 1_700_000_000,
            callback_id: 7,
            source_ip: "",
            ingest_source: crate::row::INGEST_CALLBACK,
            raw: None,
        },
        &mut row,
    );
    let cells = read_back(&row);
    assert_eq!(
        cell(&cells, "city"),
        &Cell::Str("Köln \"x\"\\\n\u{8}".into())
    );
    assert_eq!(cell(&cells, "api_level"), &Cell::Int(33));
    // The cold text as serde_json writes the same pairs.
    let cold = (0..row.len())
        .find_map(|i| {
            let s = rowbinary::Reader::new(&row[i..]).string().ok()?;
            (s.starts_with("{\"") && s.ends_with('}')).then_some(s)
        })
        .expect("the cold text in the row");
    // Keyed by codes; read back under the names.
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&cold).expect("a JSON object");
    assert_eq!(cold, serde_json::Value::Object(object.clone()).to_string());
    assert_eq!(object[cold::key_of("sdk_version")], "4.38.0");
    assert!(object.keys().all(|k| k.len() == 3), "{cold}");
    let pairs = cold_pairs(&cold).expect("a JSON object of strings");
    assert!(
        pairs
            .iter()
            .any(|(k, v)| k == "sdk_version" && v == "4.38.0")
    );

    let json_at = row
        .windows(cold.len())
        .position(|w| w == cold.as_bytes())
        .unwrap();
    let len_bytes = {
        let mut l = Vec::new();
        rowbinary::put_len(&mut l, cold.len());
        l.len()
    };
    // The same row as the second release wrote it (two arrays of names and texts) re-encodes to
    // these bytes.
    let mut old = row[..json_at - len_bytes].to_vec();
    rowbinary::put_len(&mut old, pairs.len());
    for (k, _) in &pairs {
        rowbinary::put_str(&mut old, k.as_bytes());
    }
    rowbinary::put_len(&mut old, pairs.len());
    for (_, v) in &pairs {
        rowbinary::put_str(&mut old, v.as_bytes());
    }
    old.extend_from_slice(&row[json_at + cold.len()..]);
    assert_eq!(upgrade_cold_arrays(&old).unwrap(), row);
    assert!(
        upgrade_cold_arrays(&row).is_err(),
        "a current row is not taken for an old one"
    );

    // And as rows were written with names as the text's keys.
    let named: serde_json::Map<String, serde_json::Value> = pairs
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    let named = serde_json::Value::Object(named).to_string();
    assert!(named.contains("\"sdk_version\":\"4.38.0\""));
    let mut old = row[..json_at - len_bytes].to_vec();
    rowbinary::put_str(&mut old, named.as_bytes());
    old.extend_from_slice(&row[json_at + cold.len()..]);
    assert_eq!(upgrade_cold_names(&old).unwrap(), row);
    assert_eq!(
        upgrade_cold_names(&row).unwrap(),
        row,
        "current rows stay as they are"
    );
}
