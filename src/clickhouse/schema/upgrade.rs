//! Moving a table of the first layout (every placeholder a column of its own) to the two-tier
//! layout without losing or changing a row: a new table with the current DDL is filled partition
//! by partition with `INSERT … SELECT` (each cold placeholder's typed value turned back into the
//! text the sink would have stored), checked by counts, then swapped in with one `RENAME`. The
//! old table is kept as `<table>_layout1` until its owner drops it.
//!
//! Safe to rerun after an interruption: a partition whose row count already matches is skipped,
//! one that does not is dropped in the new table and copied again.

use crate::adjust::catalog::{CATALOG, is_hot};
use crate::clickhouse::{Profile, quote};
use crate::row::{COLD, COLD_KEYS, Column, INGEST_CALLBACK, wire_columns};

use super::Target;

/// Suffix of the table being filled.
pub const FILLING: &str = "_tiered";
/// Suffix the old table keeps after the swap.
pub const KEPT: &str = "_layout1";

/// The new table's target while it is filled.
pub fn filling(target: &Target) -> Target {
    Target {
        table: format!("{}{FILLING}", target.table),
        ..target.clone()
    }
}

/// `INSERT INTO <new> (…) SELECT … FROM <old> WHERE toYYYYMM(event_date) = <partition>`.
pub fn copy_partition(profile: Profile, old: &Target, new: &Target, partition: u32) -> String {
    let wire = wire_columns();
    let names: Vec<String> = wire.iter().flat_map(Column::wire_names).collect();
    // Each cold placeholder sent becomes `"KEY":"text"` in the cold JSON text.
    let pairs = CATALOG
        .iter()
        .enumerate()
        .filter(|(i, _)| !is_hot(*i))
        .map(|(_, p)| {
            let text = crate::clickhouse::types::to_text_sql(p.ty, p.name, profile);
            format!(
                "if({text} != '', concat({}, {}, '\"'), '')",
                quote(&format!("\"{}\":\"", crate::row::cold::key_of(p.name))),
                super::json_escape_sql(&text)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let select: Vec<String> = names
        .iter()
        .map(|n| match n.as_str() {
            COLD => format!(
                "concat('{{', arrayStringConcat(arrayFilter(p -> p != '', [{pairs}]), ','), '}}')"
            ),
            // The first layout had no imports: every row came from a callback.
            "ingest_source" => format!("'{INGEST_CALLBACK}'"),
            other => other.to_string(),
        })
        .collect();
    format!(
        "INSERT INTO {} ({}) SELECT {} FROM {} WHERE toYYYYMM(event_date) = {partition}",
        new.table(),
        names.join(", "),
        select.join(", "),
        old.table()
    )
}

/// Whether a table with these columns has the first layout: no cold tier (neither the arrays of
/// the second release nor the JSON text), and cold placeholders stored as columns of their own.
pub fn is_first_layout(columns: &[(String, String)]) -> bool {
    let has = |name: &str| columns.iter().any(|(n, _)| n == name);
    let stored_cold = CATALOG
        .iter()
        .enumerate()
        .filter(|(i, _)| !is_hot(*i))
        .any(|(_, p)| {
            columns
                .iter()
                .any(|(n, kind)| n == p.name && kind.is_empty())
        });
    !has(COLD_KEYS) && !has(COLD) && stored_cold
}

/// Whether a table with these columns keeps its cold tier in the two arrays of the second
/// release and lacks the `cold` text (`migrate` adds it, computed from the arrays for older rows).
pub fn has_cold_arrays_only(columns: &[(String, String)]) -> bool {
    let has = |name: &str| columns.iter().any(|(n, _)| n == name);
    has(COLD_KEYS) && !has(COLD)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            database: "adjust".into(),
            table: "callbacks".into(),
            physical: Vec::new(),
            columns: Vec::new(),
            cluster: None,
        }
    }

    #[test]
    fn the_copy_fills_every_wire_column_and_types_cold_values_back_to_text() {
        let sql = copy_partition(Profile::Legacy, &target(), &filling(&target()), 201407);
        assert!(sql.starts_with("INSERT INTO adjust.callbacks_tiered (received_at, "));
        assert!(sql.ends_with("FROM adjust.callbacks WHERE toYYYYMM(event_date) = 201407"));
        assert!(sql.contains("ifNull(toString(toUInt32(created_at_hour)), '')"));
        assert!(sql.contains("ifNull(toString(sk_redownload), '')"));
        assert!(sql.contains("toString(sdk_version)"));
        assert!(sql.contains(", 'callback', "), "ingest_source of old rows");
        assert!(
            !sql.contains("'adid'"),
            "hot columns are copied as they are"
        );
    }

    #[test]
    fn layouts_are_told_apart() {
        let first = vec![
            ("adid".to_string(), String::new()),
            ("sdk_version".to_string(), String::new()),
        ];
        assert!(is_first_layout(&first));
        let tiered = vec![
            ("adid".to_string(), String::new()),
            ("sdk_version".to_string(), "ALIAS".to_string()),
            ("cold_keys".to_string(), String::new()),
        ];
        assert!(!is_first_layout(&tiered));
        assert!(has_cold_arrays_only(&tiered));
        let json = vec![
            ("adid".to_string(), String::new()),
            ("sdk_version".to_string(), "ALIAS".to_string()),
            ("cold".to_string(), String::new()),
        ];
        assert!(!is_first_layout(&json));
        assert!(!has_cold_arrays_only(&json));
    }
}
