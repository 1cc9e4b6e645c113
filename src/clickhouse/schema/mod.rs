//! The DDL for both server profiles, generated from [`crate::row::columns`].
//!
//! Table design (README "Storage layout"):
//! - `ReplacingMergeTree` keyed on `callback_id`: duplicates (global + single-activity copies,
//!   Adjust's retries, replays) collapse at merge time; `FINAL` or the views collapse at query time.
//! - `PARTITION BY toYYYYMM(event_date)`: monthly parts, dropped wholesale for retention.
//!   `event_date` is the UTC day of `created_at` (of `received_at` when not sent), so both copies of
//!   an activity land in the same partition and collapse.
//! - `ORDER BY (activity_kind, event_date, callback_id)`: analysts filter by kind and time first;
//!   ending on `callback_id` is what makes duplicates collapse.
//!
//! Beside the table, [`views`] defines what analysts read: per-activity views (exact, `FINAL`) and
//! daily rollups fed by materialized views (each activity once, as the views).
//! [`erasure`] defines `<table>_erasures`, the view that records erasure requests, and the SQL of
//! erasure and retention.
//!
//! Column types are written once, as a modern server takes them; [`super::types::server_types`]
//! turns them into what the legacy profile declares (`LowCardinality(T)` → `T`).

pub mod cluster;
pub mod erasure;
pub mod imports;
pub mod lease;
pub mod retention;
pub mod upgrade;
pub mod views;

use crate::adjust::catalog::{CATALOG, Placeholder, is_hot, modern_indexes};
use crate::clickhouse::types::{self, server_types};
use crate::clickhouse::{Profile, quote};
use crate::row::{COLD, COLD_KEYS, COLD_VALUES, Column, wire_columns};

/// The sorting key; its last element must stay `callback_id`.
pub const ORDER_BY: &str = "(activity_kind, event_date, callback_id)";
pub const PARTITION_BY: &str = "toYYYYMM(event_date)";

/// How many recent insert tokens a modern server remembers per table; a retried or replayed batch
/// whose `insert_deduplication_token` is among them is skipped.
pub const DEDUP_WINDOW: u32 = 1000;

/// Where the objects live.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub database: String,
    pub table: String,
    /// Cold placeholders promoted to a physical column (`--physical`): a `DEFAULT` column that
    /// ClickHouse fills from the cold text, instead of an `ALIAS`.
    pub physical: Vec<String>,
    /// Columns of the user's own (`--column NAME:TYPE`) for keys the catalog does not know:
    /// stored in the cold arrays like a cold placeholder, shown as a `DEFAULT` column.
    pub columns: Vec<crate::adjust::decode::CustomColumn>,
    /// A ClickHouse cluster (`--cluster`, a name in the servers' `<remote_servers>`): every
    /// statement runs `ON CLUSTER`, the rows live in replicated `<name>_local` tables on every
    /// node, and `<name>` is a `Distributed` table over them ([`cluster`]).
    pub cluster: Option<String>,
}

impl Target {
    /// `<db>.<table>`: what the sink inserts into and analysts read (on a cluster the
    /// `Distributed` table).
    pub fn table(&self) -> String {
        format!("{}.{}", self.database, self.table)
    }

    /// ` ON CLUSTER <name>` on a cluster, else nothing.
    pub fn on_cluster(&self) -> String {
        self.cluster
            .as_ref()
            .map_or(String::new(), |c| format!(" ON CLUSTER {c}"))
    }

    /// The table holding the callbacks' rows: `<table>_local` on a cluster (on every node), else
    /// the table itself.
    pub fn storage(&self) -> Target {
        match &self.cluster {
            Some(_) => Target {
                table: cluster::local_name(&self.table),
                ..self.clone()
            },
            None => self.clone(),
        }
    }
}

/// One DDL statement with a short description (shown by `migrate`).
#[derive(Debug, Clone)]
pub struct Statement {
    pub what: String,
    pub sql: String,
}

fn column_ddl(c: &Column, profile: Profile) -> String {
    let mut s = format!("    {} {}", c.name, types::column_type(c, profile));
    if let Some(default) = crate::row::column_default(&c.name) {
        s.push(' ');
        s.push_str(default);
    }
    if profile == Profile::Modern && c.name == "raw_query" {
        s.push_str(" CODEC(ZSTD(3))");
    }
    s
}

/// How a cold placeholder shows in the table: an `ALIAS` computed from the cold text on every
/// read, or, once promoted with `--physical`, a `DEFAULT` column filled from it on insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColdKind {
    Alias,
    Default,
}

impl ColdKind {
    pub fn as_sql(self) -> &'static str {
        match self {
            ColdKind::Alias => "ALIAS",
            ColdKind::Default => "DEFAULT",
        }
    }
}

/// A cold placeholder's column: its name, type and the expression over the cold arrays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColdColumn {
    pub name: &'static str,
    pub ty: &'static str,
    pub kind: ColdKind,
    pub expr: String,
}

impl ColdColumn {
    /// `name Type ALIAS|DEFAULT expr`.
    pub fn definition(&self) -> String {
        format!(
            "{} {} {} {}",
            self.name,
            self.ty,
            self.kind.as_sql(),
            self.expr
        )
    }
}

/// The SQL that reads a cold placeholder's text (`''` when it was not sent).
pub fn cold_text_sql(name: &str) -> String {
    cold_text_in(COLD, name)
}

/// [`cold_text_sql`] from `text`, an SQL expression of a row's cold text (or `''`): the value
/// under the name's key (its code for a placeholder, see [`crate::row::cold`]).
pub fn cold_text_in(text: &str, name: &str) -> String {
    format!(
        "visitParamExtractString({text}, '{}')",
        crate::row::cold::key_of(name)
    )
}

/// `transform(<expr>, [from…], [to…], <expr>)`: every catalog placeholder's name to its cold key
/// (`to_keys`), or back (`!to_keys`); other texts as they are.
fn translate_keys_sql(expr: &str, to_keys: bool) -> String {
    let names: Vec<String> = CATALOG.iter().map(|p| quote(p.name)).collect();
    let keys: Vec<String> = (0..CATALOG.len())
        .map(|i| quote(crate::row::cold::key_at(i)))
        .collect();
    let (from, to) = if to_keys {
        (names, keys)
    } else {
        (keys, names)
    };
    format!(
        "transform({expr}, [{}], [{}], {expr})",
        from.join(", "),
        to.join(", ")
    )
}

/// The SQL of `expr`, a cold text written with placeholder names as keys (before the codes),
/// keyed by codes: each `"name":` becomes `"KEY":`. Such a run cannot occur inside a value,
/// whose quotes are escaped, and no code is a name, so the order of the replacements does not
/// matter.
pub fn cold_names_to_keys_sql(expr: &str) -> String {
    CATALOG
        .iter()
        .enumerate()
        .filter(|(i, _)| !is_hot(*i))
        .fold(expr.to_string(), |sql, (i, p)| {
            format!(
                "replaceAll({sql}, {}, {})",
                quote(&format!("\"{}\":", p.name)),
                quote(&format!("\"{}\":", crate::row::cold::key_at(i)))
            )
        })
}

/// The SQL condition that the cold text `expr` has a key written as a name (a placeholder's, or
/// one of a column of the user's own): no code is lowercase.
pub fn cold_has_named_key_sql(expr: &str) -> String {
    format!("match({expr}, '\"[a-z_][a-z0-9_]*\":')")
}

/// The modern servers' `cold_map`: the cold text as a map from placeholder names (the keys read
/// back from their codes) to texts.
pub fn cold_map_sql() -> String {
    format!(
        "mapApply((k, v) -> ({}, v), JSONExtract({COLD}, 'Map(String, String)'))",
        translate_keys_sql("k", false)
    )
}

/// The SQL of a JSON string's content for the text `text` (an SQL expression): `\\`, `"` and the
/// line and tab characters escaped as the row encoder escapes them.
pub fn json_escape_sql(text: &str) -> String {
    let mut sql = text.to_string();
    for (from, to) in [
        (r"'\\'", r"'\\\\'"),
        (r#"'"'"#, r#"'\\"'"#),
        (r"'\n'", r"'\\n'"),
        (r"'\r'", r"'\\r'"),
        (r"'\t'", r"'\\t'"),
    ] {
        sql = format!("replaceAll({sql}, {from}, {to})");
    }
    sql
}

/// The SQL of the cold JSON text of rows whose cold tier is two arrays (tables made before the
/// cold tier became one text): the `DEFAULT` of their `cold` column.
pub fn cold_from_arrays_sql() -> String {
    format!(
        "concat('{{', arrayStringConcat(arrayMap((k, v) -> concat('\"', {}, '\":\"', {}, '\"'), {COLD_KEYS}, {COLD_VALUES}), ','), '}}')",
        translate_keys_sql("k", true),
        json_escape_sql("v")
    )
}

/// The column of a cold placeholder.
pub fn cold_column(p: &Placeholder, profile: Profile, target: &Target) -> ColdColumn {
    let kind = if target.physical.iter().any(|n| n == p.name) {
        ColdKind::Default
    } else {
        ColdKind::Alias
    };
    ColdColumn {
        name: p.name,
        ty: types::placeholder_type(p.ty, profile),
        kind,
        expr: types::from_text_sql(p.ty, &cold_text_sql(p.name), profile),
    }
}

/// Every cold placeholder's column, in catalog order.
pub fn cold_columns(profile: Profile, target: &Target) -> Vec<ColdColumn> {
    CATALOG
        .iter()
        .enumerate()
        .filter(|(i, _)| !is_hot(*i))
        .map(|(_, p)| cold_column(p, profile, target))
        .chain(target.columns.iter().map(|c| ColdColumn {
            name: c.name,
            ty: types::placeholder_type(c.ty, profile),
            kind: ColdKind::Default,
            expr: types::from_text_sql(c.ty, &cold_text_sql(c.name), profile),
        }))
        .collect()
}

/// Checks `--physical` names: each must be a cold placeholder (a hot one has its column already).
pub fn check_physical(names: &[String]) -> Result<(), String> {
    for name in names {
        match CATALOG.iter().position(|p| p.name == name) {
            None => {
                return Err(format!(
                    "--physical {name}: not an Adjust placeholder this sink knows"
                ));
            }
            Some(i) if is_hot(i) => {
                return Err(format!("--physical {name}: already a physical column"));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// `CREATE TABLE` for the callbacks table: the columns the sink writes, and every cold
/// placeholder as an `ALIAS` (or `DEFAULT`) column of its own name and type, in catalog order.
pub fn create_table(profile: Profile, target: &Target) -> String {
    let wire = wire_columns();
    let mut lines: Vec<String> = Vec::new();
    let mut cold = cold_columns(profile, target).into_iter().peekable();
    for c in &wire {
        // Cold placeholders go where the catalog has them, before the next hot column.
        if let Some(at) = CATALOG.iter().position(|p| p.name == c.name) {
            while let Some(cc) = cold.next_if(|cc| {
                CATALOG
                    .iter()
                    .position(|p| p.name == cc.name)
                    .is_some_and(|i| i < at)
            }) {
                lines.push(format!("    {}", cc.definition()));
            }
        }
        if c.name == COLD {
            lines.extend(cold.by_ref().map(|cc| format!("    {}", cc.definition())));
        }
        lines.push(column_ddl(c, profile));
    }
    if profile == Profile::Modern {
        lines.push(format!(
            "    cold_map Map(String, String) ALIAS {}",
            cold_map_sql()
        ));
        for c in wire.iter().filter(|c| c.nested()) {
            let map = if c.name == "extra" {
                "extra_map".to_string()
            } else {
                format!("{}_map", c.name.trim_end_matches("_kv"))
            };
            lines.push(format!(
                "    {map} Map(String, String) ALIAS mapFromArrays({0}.key, {0}.value)",
                c.name
            ));
        }
        // Bloom filter skip indexes on the identifiers analysts look up one at a time.
        for col in modern_indexes() {
            lines.push(format!(
                "    INDEX idx_{col} {col} TYPE bloom_filter GRANULARITY 4"
            ));
        }
    }
    let settings = match profile {
        Profile::Legacy => "index_granularity = 8192".to_string(),
        Profile::Modern => format!(
            "index_granularity = 8192, {} = {DEDUP_WINDOW}",
            dedup_window_setting(target)
        ),
    };
    let storage = target.storage();
    let sql = format!(
        "CREATE TABLE IF NOT EXISTS {}{}\n(\n{}\n)\nENGINE = {}\nPARTITION BY {PARTITION_BY}\nORDER BY {ORDER_BY}\nSETTINGS {settings}",
        storage.table(),
        target.on_cluster(),
        lines.join(",\n"),
        cluster::engine("ReplacingMergeTree", &[], &storage),
    );
    server_types(sql, profile)
}

/// The modern servers' setting of how many recent insert tokens a table remembers: replicated
/// tables (on a cluster) keep theirs in ZooKeeper under another name.
pub fn dedup_window_setting(target: &Target) -> &'static str {
    match target.cluster {
        Some(_) => "replicated_deduplication_window",
        None => "non_replicated_deduplication_window",
    }
}

/// The table that keeps rows ClickHouse refused, with the error (`<table>_rejects`).
pub fn rejects_table(target: &Target) -> String {
    format!("{}.{}_rejects", target.database, target.table)
}

/// The rejects table as a [`Target`] (its rows on a cluster: `<table>_rejects_local`).
pub fn rejects_target(target: &Target) -> Target {
    Target {
        table: format!("{}_rejects", target.table),
        ..target.clone()
    }
}

fn create_rejects(target: &Target) -> String {
    let storage = rejects_target(target).storage();
    format!(
        "CREATE TABLE IF NOT EXISTS {}{}\n(\n    rejected_at DateTime('UTC'),\n    callback_id UInt64,\n    error String,\n    row_json String,\n    row String\n)\nENGINE = {}\nPARTITION BY toYYYYMM(rejected_at)\nORDER BY (rejected_at, callback_id)",
        storage.table(),
        target.on_cluster(),
        cluster::engine("MergeTree", &[], &storage),
    )
}

/// Every statement `migrate` runs, in order: [`table_statements`], then [`view_statements`].
pub fn statements(profile: Profile, target: &Target) -> Vec<Statement> {
    let mut all = table_statements(profile, target);
    all.extend(view_statements(profile, target));
    all
}

/// The database and the tables (callbacks, rejects, rollups): `CREATE … IF NOT EXISTS`, nothing
/// that reads columns of the callbacks table.
pub fn table_statements(profile: Profile, target: &Target) -> Vec<Statement> {
    let mut out = vec![Statement {
        what: format!("database {}", target.database),
        sql: format!(
            "CREATE DATABASE IF NOT EXISTS {}{}",
            target.database,
            target.on_cluster()
        ),
    }];
    // On a cluster each of these is a replicated local table plus a Distributed table over it,
    // sharded by `callback_id`. A further table keyed by callback (the erasures table) joins
    // here through `cluster::sharded` in the same way.
    out.extend(cluster::sharded(
        target,
        "callbacks",
        create_table(profile, target),
        "callback_id",
    ));
    out.extend(cluster::sharded(
        &rejects_target(target),
        "rejected rows",
        create_rejects(target),
        "callback_id",
    ));
    out.extend(views::rollup_tables(profile, target));
    out.extend(erasure::table_statements(target));
    out.push(lease::table_statement(target));
    out.push(imports::table_statement(target));
    out
}

/// The materialized views that feed the rollups (`IF NOT EXISTS`, never dropped) and the
/// per-activity views (dropped and created again, so they have the table's current columns).
/// Both select columns of the callbacks table, and ClickHouse checks those when it creates a view:
/// run these after the table has every column (after adding the missing ones).
pub fn view_statements(profile: Profile, target: &Target) -> Vec<Statement> {
    let mut out = views::view_statements(profile, target);
    out.push(erasure::view_statement(target));
    out
}

/// The whole DDL as text, as `adjust-sink schema` prints it and `schema/` keeps it.
pub fn render(profile: Profile, target: &Target) -> String {
    let mut out = format!(
        "-- adjust-sink schema for {} ClickHouse servers. Generated by `adjust-sink schema --profile {}{}`;\n-- do not edit: `adjust-sink migrate` creates these objects and adds missing columns.\n",
        match profile {
            Profile::Legacy => "legacy (18.16)",
            Profile::Modern => "modern (20.x and later)",
        },
        profile.as_str(),
        target
            .cluster
            .as_ref()
            .map_or(String::new(), |c| format!(" --cluster {c}")),
    );
    if target.cluster.is_some() {
        out.push_str(&format!(
            "-- migrate runs each statement with distributed_ddl_task_timeout = {}.\n",
            cluster::DDL_TASK_TIMEOUT_S
        ));
    }
    for s in statements(profile, target) {
        out.push_str(&format!("\n-- {}\n{};\n", s.what, s.sql));
    }
    out
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
    fn the_legacy_profile_declares_the_inner_type_of_low_cardinality() {
        let sql = "a LowCardinality(String), b Nullable(LowCardinality(String)), c Array(LowCardinality(Nullable(String))), d Nullable(Float64) ALIAS toFloat64OrNull(x)";
        assert_eq!(
            server_types(sql.to_string(), Profile::Legacy),
            "a String, b Nullable(String), c Array(Nullable(String)), d Nullable(Float64) ALIAS toFloat64OrNull(x)"
        );
        assert_eq!(server_types(sql.to_string(), Profile::Modern), sql);
        for cluster in [None, Some("adjust_local".to_string())] {
            let target = Target {
                database: "adjust".into(),
                table: "callbacks".into(),
                cluster,
                ..Default::default()
            };
            let legacy = render(Profile::Legacy, &target);
            assert!(!legacy.contains("LowCardinality"), "{legacy}");
            assert!(legacy.contains("    country String,"));
            let modern = render(Profile::Modern, &target);
            assert!(modern.contains("    country LowCardinality(String),"));
        }
    }

    #[test]
    fn legacy_ddl_avoids_what_18_16_rejects() {
        let ddl = render(Profile::Legacy, &target());
        for word in [
            "CODEC",
            "TTL",
            "INDEX",
            "Map(",
            "_map",
            "DateTime64",
            "DROP VIEW",
            "JSONExtract",
            "IF NOT EXISTS idx",
            "ADD COLUMN IF NOT EXISTS",
            "Bool",
            "IPv4",
            "IPv6",
            "Date32",
        ] {
            assert!(!ddl.contains(word), "legacy DDL contains {word}");
        }
        assert!(ddl.contains("ENGINE = ReplacingMergeTree"));
        assert!(ddl.contains("created_at_milli Nullable(Int64)"));
        // 18.16 has no CREATE OR REPLACE: views are created if missing, replaced by migrate.
        assert!(!ddl.contains("OR REPLACE"));
        assert!(ddl.contains("ORDER BY (day, activity_kind, callback_id)"));
    }

    /// Every column a view or a materialized view selects exists in the table: the wire columns of
    /// [`columns`] (a `Nested` column as `<name>.key` and `<name>.value`), and on modern servers the
    /// `Map` ALIAS columns.
    #[test]
    fn every_view_column_exists_in_the_table() {
        for profile in [Profile::Legacy, Profile::Modern] {
            let mut have: Vec<String> = crate::row::columns()
                .iter()
                .flat_map(Column::wire_names)
                .collect();
            if profile == Profile::Modern {
                let ddl = create_table(profile, &target());
                for line in ddl.lines().filter(|l| l.contains(" ALIAS ")) {
                    have.push(line.split_whitespace().next().unwrap().to_string());
                }
                assert!(have.contains(&"extra_map".to_string()));
            }
            for v in views::VIEWS {
                let cols = views::columns(v, profile);
                for c in &cols {
                    assert!(
                        have.contains(c),
                        "{profile:?} view {}: no column {c}",
                        v.name
                    );
                }
                let mut unique = cols.clone();
                unique.sort();
                unique.dedup();
                assert_eq!(unique.len(), cols.len(), "view {} repeats a column", v.name);
            }
            for r in views::ROLLUPS {
                for c in r.reads() {
                    assert!(
                        have.iter().any(|h| h == c),
                        "rollup {} reads {c}, not a column",
                        r.table
                    );
                }
            }
        }
    }

    /// `migrate` runs the statements in order and adds missing columns between the two groups:
    /// nothing in the first group reads the table's columns, and materialized views (which hold
    /// the rollups' feed) are never dropped.
    #[test]
    fn statements_create_tables_first_and_never_drop_materialized_views() {
        for profile in [Profile::Legacy, Profile::Modern] {
            let t = target();
            let tables = table_statements(profile, &t);
            let views = view_statements(profile, &t);
            assert!(
                tables.iter().all(|s| s.sql.starts_with("CREATE ")),
                "the first group only creates"
            );
            assert!(!tables.iter().any(|s| s.sql.contains(" VIEW ")));
            let all: Vec<String> = statements(profile, &t).into_iter().map(|s| s.sql).collect();
            let both: Vec<String> = tables.into_iter().chain(views).map(|s| s.sql).collect();
            assert_eq!(all, both);
            for s in &all {
                if s.starts_with("DROP ") {
                    let name = s.rsplit(' ').next().unwrap();
                    assert!(
                        views::VIEWS
                            .iter()
                            .any(|v| name == format!("adjust.{}", v.name)),
                        "{s} drops something that is not a plain view"
                    );
                }
            }
            for r in views::ROLLUPS {
                assert!(
                    !all.iter()
                        .any(|s| s.starts_with("DROP") && s.contains(r.table))
                );
            }
        }
    }

    #[test]
    fn modern_ddl_adds_maps_indexes_and_dedup_window() {
        let ddl = render(Profile::Modern, &target());
        assert!(
            ddl.contains(
                "extra_map Map(String, String) ALIAS mapFromArrays(extra.key, extra.value)"
            )
        );
        assert!(ddl.contains("publisher_parameters_map Map(String, String) ALIAS"));
        assert!(ddl.contains("created_at_milli Nullable(DateTime64(3, 'UTC'))"));
        assert!(ddl.contains("INDEX idx_adid adid TYPE bloom_filter"));
        assert!(ddl.contains("non_replicated_deduplication_window"));
    }

    #[test]
    fn checked_in_schema_matches_the_code() {
        for profile in [Profile::Legacy, Profile::Modern] {
            let path = format!(
                "{}/schema/{}.sql",
                env!("CARGO_MANIFEST_DIR"),
                profile.as_str()
            );
            let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                on_disk == render(profile, &target()),
                "{path} is out of date: run `cargo run -- schema --profile {} > {path}`",
                profile.as_str()
            );
        }
    }

    #[test]
    fn every_documented_placeholder_has_a_typed_column_in_both_profiles() {
        let list = include_str!("../../../tests/fixtures/adjust_placeholders.txt");
        let names: Vec<&str> = list
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        assert!(names.len() >= 200, "the list holds {} names", names.len());
        let target = Target {
            database: "adjust".into(),
            table: "callbacks".into(),
            physical: Vec::new(),
            columns: Vec::new(),
            cluster: None,
        };
        for profile in [Profile::Legacy, Profile::Modern] {
            let ddl = create_table(profile, &target);
            for name in &names {
                let col = crate::row::columns()
                    .into_iter()
                    .find(|c| c.name == *name)
                    .unwrap_or_else(|| panic!("{name}: no column"));
                assert!(
                    ddl.contains(&format!(
                        "\n    {name} {}",
                        crate::clickhouse::types::column_type(&col, profile)
                    )),
                    "{name} missing from the {profile:?} DDL"
                );
            }
        }
    }
}
