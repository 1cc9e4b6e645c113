//! Erasure requests and retention: `<table>_erasures`, the materialized view that records a
//! request the moment a `gdpr_forget_device` callback is inserted, and the SQL that erases a
//! device's rows and drops expired partitions.
//!
//! The request is recorded by ClickHouse itself, in the same INSERT that stores the forget
//! callback: nothing is kept in the sink's memory, so a request survives a crash or a restart of
//! the sink (the callback waits in the write-ahead log while ClickHouse is down, and is recorded
//! when it is delivered). `serve` carries pending requests out (docs/privacy.md).
//!
//! `<table>_erasures` is a `ReplacingMergeTree(done_at)` keyed on the request (identifier kind,
//! stored identifier, when, the app that asked): a request is one row with `done_at` 0, and
//! marking it done (or refused) inserts the same key with `done_at` and `outcome` set.
//!
//! A request is recorded for every spelling of a device identifier the callback carries
//! (`idfa`, `idfa_upper`, `idfa_md5`, …: the catalog's families), and matches every spelling of
//! its family in the rows: the same text in another case, and the hashes (`*_md5`, `*_sha1`,
//! `*_sha256`, in hex of either case) computed by ClickHouse from the base identifier.
//! Pseudonymized spellings cannot be derived from each other; each is matched as stored.

use crate::adjust::catalog::{device_ids, family_members, is_hot};
use crate::adjust::decode::index_of;
use crate::clickhouse::quote;
use crate::clickhouse::types::quote_list;

use super::{Statement, Target, cold_text_in, cold_text_sql, views};

pub mod again;

pub use super::retention::{
    engines_sql, expired_partitions, partitions_sql, ttl_is_set, ttl_statements,
};

/// The activity kind of an erasure request.
pub const FORGET_KIND: &str = "gdpr_forget_device";

/// The longest identifier an erasure request may carry: longer than any device identifier
/// (UUIDs have 36 characters, `adid` and the MD5 spellings 32, SHA-256 spellings and
/// pseudonyms 64). A request with a longer one is refused, never put into a query.
pub const MAX_ID_LEN: usize = 128;

/// `outcome` of a request carried out.
pub const ERASED: &str = "erased";
/// `outcome` of a request whose identifier is longer than [`MAX_ID_LEN`].
pub const REFUSED_TOO_LONG: &str = "refused: identifier longer than 128 characters";
/// `outcome` of a request of an identifier kind this version does not know.
pub const REFUSED_UNKNOWN: &str = "refused: not a device identifier this version knows";

/// The columns of `<table>_erasures`, in order.
pub const COLUMNS: &[(&str, &str)] = &[
    ("requested_at", "DateTime('UTC')"),
    ("device_id", "String"),
    ("id_kind", "String"),
    ("app_token", "String"),
    ("done_at", "DateTime('UTC')"),
    ("outcome", "String"),
];

/// The sorting key: a request is its identifier, when it was made and the app that asked.
pub const KEY: &str = "(id_kind, device_id, requested_at, app_token)";

/// `<db>.<table>_erasures` (on a cluster the `Distributed` table).
pub fn erasures_table(target: &Target) -> String {
    format!("{}.{}_erasures", target.database, target.table)
}

/// `<db>.<table>_erasures_mv`.
pub fn mv_name(target: &Target) -> String {
    format!("{}.{}_erasures_mv", target.database, target.table)
}

/// The SQL reading identifier `name` in the callbacks table (its column, or its cold text).
pub fn id_sql(name: &str) -> String {
    match index_of(name) {
        Some(i) if is_hot(i) => name.to_string(),
        _ => cold_text_sql(name),
    }
}

/// `<table>_erasures` as a target (for its storage on a cluster).
pub fn erasures_target(target: &Target) -> Target {
    Target {
        table: format!("{}_erasures", target.table),
        ..target.clone()
    }
}

/// `CREATE TABLE` of `<table>_erasures`; on a cluster a replicated `<table>_erasures_local` on
/// every node and a `Distributed` table over them sharded by the device id, so a request and
/// the row that marks it done land on the same shard and collapse there.
pub fn table_statements(target: &Target) -> Vec<Statement> {
    let t = erasures_target(target);
    let storage = t.storage();
    let columns: Vec<String> = COLUMNS
        .iter()
        .map(|(name, ty)| format!("    {name} {ty}"))
        .collect();
    let create = format!(
        "CREATE TABLE IF NOT EXISTS {}{}\n(\n{}\n)\nENGINE = {}\nORDER BY {KEY}",
        storage.table(),
        t.on_cluster(),
        columns.join(",\n"),
        super::cluster::engine("ReplacingMergeTree", &["done_at"], &storage)
    );
    super::cluster::sharded(&t, "erasure requests", create, "cityHash64(device_id)")
}

/// The `ALTER` that gives a `<table>_erasures` of an earlier version the columns it lacks
/// (`missing`, names of [`COLUMNS`]), each in its place; with `key`, `app_token` joins the
/// sorting key in the same statement (the only way a key can grow). 18.16 cannot change a key
/// `ON CLUSTER`: there the column is added without it.
pub fn add_columns_sql(target: &Target, missing: &[&str], key: bool) -> String {
    let t = erasures_target(target);
    let mut parts = Vec::new();
    for (i, (name, ty)) in COLUMNS.iter().enumerate() {
        if missing.contains(name) {
            let after = COLUMNS[..i]
                .iter()
                .rev()
                .map(|(n, _)| *n)
                .find(|n| !missing.contains(n))
                .map_or(String::new(), |n| format!(" AFTER {n}"));
            parts.push(format!("ADD COLUMN {name} {ty}{after}"));
        }
    }
    if key && missing.contains(&"app_token") {
        parts.push(format!("MODIFY ORDER BY {KEY}"));
    }
    format!(
        "ALTER TABLE {}{} {}",
        t.storage().table(),
        t.on_cluster(),
        parts.join(", ")
    )
}

/// Every identifier a request is recorded for: the members of each device identifier family
/// (base first), families in the catalog's order.
pub fn recorded_ids() -> Vec<&'static str> {
    device_ids()
        .iter()
        .flat_map(|base| family_members(base).unwrap_or(&[]).iter().copied())
        .collect()
}

/// The `SELECT` turning each `gdpr_forget_device` row of `source` into one request per device
/// identifier it carries (in its stored form), with the app that asked.
pub fn record_select(source: &str) -> String {
    // A materialized view runs over every inserted block and its WHERE comes after its ARRAY
    // JOIN (18.16 also ignores a subquery's WHERE in a view's FROM: the block replaces the
    // subquery). Joining an array of the identifiers built every row's array and copied every
    // row once per identifier, to keep the few forget callbacks. The view joins a range instead,
    // empty for other rows, and picks each identifier by its index after the join, so only
    // forget callbacks are copied and looked into. Cold identifiers are read from the `cold` text
    // of forget callbacks only (an expression that does not depend on the index is computed
    // before the join, for every row). On 18.16, one thread, over 367,283 rows of ~1 KB
    // callbacks without a forget callback: 0.02–0.03 s against 0.39–0.43 s.
    let forget_cold = format!(
        "if(activity_kind = '{FORGET_KIND}', {}, '')",
        crate::row::COLD
    );
    let ids = recorded_ids();
    let values: Vec<String> = ids
        .iter()
        .map(|n| match index_of(n) {
            Some(i) if is_hot(i) => (*n).to_string(),
            _ => cold_text_in(&forget_cold, n),
        })
        .collect();
    let (last, rest) = values.split_last().expect("identifiers are recorded");
    let device_id = if rest.is_empty() {
        last.clone()
    } else {
        let branches: Vec<String> = rest
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{ID_AT} = {i}, {v}"))
            .collect();
        format!("multiIf({}, {last})", branches.join(", "))
    };
    format!(
        "SELECT\n    received_at AS requested_at,\n    {device_id} AS device_id,\n    arrayElement([{}], {ID_AT} + 1) AS id_kind,\n    CAST(app_token AS String) AS app_token,\n    toDateTime(0, 'UTC') AS done_at,\n    '' AS outcome\nFROM {source}\nARRAY JOIN range(if(activity_kind = '{FORGET_KIND}', {}, 0)) AS {ID_AT}\nWHERE activity_kind = '{FORGET_KIND}' AND device_id != ''",
        quote_list(&ids),
        ids.len()
    )
}

/// The index of the identifier in [`record_select`]'s join.
const ID_AT: &str = "id_at";

/// The `SELECT` of the materialized view (on a cluster it reads the local table of the node
/// that receives the rows, and writes into the `Distributed` erasures table).
pub fn view_select(target: &Target) -> String {
    record_select(&target.storage().table())
}

/// The materialized view that records the requests, its `SELECT` marked with its definition
/// ([`views::marked`]) so `migrate` knows when it is an earlier one.
pub fn view_statement(target: &Target) -> Statement {
    Statement {
        what: format!(
            "materialized view {} -> {}",
            mv_name(target),
            erasures_table(target)
        ),
        sql: format!(
            "CREATE MATERIALIZED VIEW IF NOT EXISTS {}{} TO {}\nAS {}",
            mv_name(target),
            target.on_cluster(),
            erasures_table(target),
            views::marked(&view_select(target))
        ),
    }
}

/// Records the requests of every forget callback in the table (on a cluster, of every shard):
/// what `migrate` runs after replacing the view, for forget callbacks inserted meanwhile (and
/// those stored before requests were recorded). A request already recorded has the same key and
/// collapses with it; one already done stays done (the row marking it has the later `done_at`).
pub fn record_all_sql(target: &Target) -> String {
    format!(
        "INSERT INTO {} ({})\n{}",
        erasures_table(target),
        column_names(),
        record_select(&target.table())
    )
}

fn column_names() -> String {
    COLUMNS
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One pending request: the identifier's kind and stored value, and the app that asked (`''`
/// when the callback named none, or it was recorded before requests kept the app).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Request {
    pub kind: String,
    pub id: String,
    pub app: String,
    pub requested_at: u32,
}

/// The hash a spelling of a device identifier stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hash {
    Md5,
    Sha1,
    Sha256,
}

impl Hash {
    fn sql(self) -> &'static str {
        match self {
            Hash::Md5 => "MD5",
            Hash::Sha1 => "SHA1",
            Hash::Sha256 => "SHA256",
        }
    }
}

/// What spelling `member` of the family of `base` is: `Some(None)` the identifier's text (in
/// some case), `Some(Some(hash))` a hash of it, `None` a spelling this code cannot derive.
fn spelling(member: &str, base: &str) -> Option<Option<Hash>> {
    let rest = member.strip_prefix(base)?;
    let mut hash = None;
    for part in rest.split('_').filter(|p| !p.is_empty()) {
        match part {
            "upper" | "lower" | "hex" => {}
            "md5" => hash = Some(Hash::Md5),
            "sha1" => hash = Some(Hash::Sha1),
            "sha256" => hash = Some(Hash::Sha256),
            _ => return None,
        }
    }
    Some(hash)
}

/// The identifier as sent, in upper and in lower case (each once).
fn cases(id: &str) -> Vec<String> {
    let mut out = vec![id.to_string()];
    for c in [id.to_uppercase(), id.to_lowercase()] {
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

/// Where one request is looked for: a column (as SQL, lowercased for hashes), the member it
/// holds, and the SQL values that match.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Match {
    column: String,
    member: &'static str,
    values: Vec<String>,
}

/// Every column of the request's family that can hold its identifier, with the values that do.
fn matches(r: &Request) -> Vec<Match> {
    let Some(members) = family_members(&r.kind) else {
        return Vec::new();
    };
    let base = members[0];
    let Some(asked) = spelling(&r.kind, base) else {
        // A spelling of its own: only its column, as stored.
        return members
            .iter()
            .filter(|m| **m == r.kind)
            .map(|m| Match {
                column: id_sql(m),
                member: m,
                values: vec![quote(&r.id)],
            })
            .collect();
    };
    let mut out = Vec::new();
    for &m in members {
        let Some(held) = spelling(m, base) else {
            if m == r.kind {
                out.push(Match {
                    column: id_sql(m),
                    member: m,
                    values: vec![quote(&r.id)],
                });
            }
            continue;
        };
        let (column, values) = match (asked, held) {
            (None, None) => (id_sql(m), cases(&r.id).iter().map(|c| quote(c)).collect()),
            (None, Some(h)) => (
                format!("lower({})", id_sql(m)),
                cases(&r.id)
                    .iter()
                    .map(|c| format!("lower(hex({}({})))", h.sql(), quote(c)))
                    .collect(),
            ),
            (Some(a), Some(h)) if a == h => (
                format!("lower({})", id_sql(m)),
                vec![quote(&r.id.to_lowercase())],
            ),
            _ => continue,
        };
        out.push(Match {
            column,
            member: m,
            values,
        });
    }
    out
}

/// The requests by app, apps in order of first appearance.
fn by_app(requests: &[Request]) -> Vec<(&str, Vec<&Request>)> {
    let mut out: Vec<(&str, Vec<&Request>)> = Vec::new();
    for r in requests {
        match out.iter_mut().find(|(a, _)| *a == r.app) {
            Some((_, rs)) => rs.push(r),
            None => out.push((&r.app, vec![r])),
        }
    }
    out
}

fn any_of(terms: Vec<String>) -> String {
    match terms.len() {
        0 => "0".into(),
        1 => terms.into_iter().next().unwrap_or_default(),
        _ => terms.join(" OR "),
    }
}

/// The condition matching every row of the callbacks table that carries one of the
/// identifiers (any spelling of its family), of the app that asked or of no app.
pub fn callbacks_predicate(requests: &[Request]) -> String {
    let mut terms = Vec::new();
    for (app, rs) in by_app(requests) {
        // Column → values, columns in order of first appearance.
        let mut columns: Vec<(String, Vec<String>)> = Vec::new();
        for m in rs.iter().flat_map(|r| matches(r)) {
            let at = match columns.iter().position(|(c, _)| *c == m.column) {
                Some(i) => i,
                None => {
                    columns.push((m.column, Vec::new()));
                    columns.len() - 1
                }
            };
            for v in m.values {
                if !columns[at].1.contains(&v) {
                    columns[at].1.push(v);
                }
            }
        }
        if columns.is_empty() {
            continue;
        }
        let ids = any_of(
            columns
                .into_iter()
                .map(|(c, vs)| format!("{c} IN ({})", vs.join(", ")))
                .collect(),
        );
        terms.push(if app.is_empty() {
            ids
        } else {
            format!("(app_token IN ({}, '') AND ({ids}))", quote(app))
        });
    }
    any_of(terms)
}

/// The condition matching every row of the rejects table (which keeps no typed columns) that
/// carries one of the identifiers: its JSON names the spelling and holds the value as a JSON
/// string (case-insensitively: hashes come in hex of either case), and names the app that asked
/// or no app.
pub fn rejects_predicate(requests: &[Request]) -> String {
    let mut terms = Vec::new();
    for (app, rs) in by_app(requests) {
        let mut found = Vec::new();
        for m in rs.iter().flat_map(|r| matches(r)) {
            let values: Vec<String> = m
                .values
                .iter()
                .map(|v| format!("positionCaseInsensitive(row_json, concat('\"', {v}, '\"')) > 0"))
                .collect();
            let key = quote(&format!("\"{}\":", m.member));
            let term = format!("(position(row_json, {key}) > 0 AND ({}))", any_of(values));
            if !found.contains(&term) {
                found.push(term);
            }
        }
        if found.is_empty() {
            continue;
        }
        let ids = any_of(found);
        terms.push(if app.is_empty() {
            ids
        } else {
            let named = quote(&format!(
                "\"app_token\":{}",
                serde_json::Value::String(app.to_string())
            ));
            format!(
                "((position(row_json, {named}) > 0 OR position(row_json, '\"app_token\":') = 0) AND ({ids}))"
            )
        });
    }
    any_of(terms)
}

/// How many characters a request adds to a round's longest query.
pub fn request_cost(r: &Request) -> usize {
    let one = std::slice::from_ref(r);
    callbacks_predicate(one)
        .len()
        .max(rejects_predicate(one).len())
}

/// The pending requests the sink can carry out, oldest first.
pub fn pending_sql(target: &Target, limit: usize) -> String {
    format!(
        "SELECT id_kind, device_id, app_token, toUInt32(requested_at) FROM {} WHERE length(device_id) <= {MAX_ID_LEN} AND id_kind IN ({}) GROUP BY id_kind, device_id, app_token, requested_at HAVING max(done_at) = 0 ORDER BY requested_at, id_kind, device_id, app_token LIMIT {limit}",
        erasures_table(target),
        kinds_list()
    )
}

fn kinds_list() -> String {
    recorded_ids()
        .iter()
        .map(|k| quote(k))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The condition of a pending request the sink refuses, and its outcome (SQL).
fn refused_sql() -> (String, String) {
    (
        format!(
            "(length(device_id) > {MAX_ID_LEN} OR id_kind NOT IN ({}))",
            kinds_list()
        ),
        format!(
            "if(length(device_id) > {MAX_ID_LEN}, {}, {})",
            quote(REFUSED_TOO_LONG),
            quote(REFUSED_UNKNOWN)
        ),
    )
}

/// How many pending requests are refused, by outcome: rows of (outcome, count). The
/// identifiers never leave the server.
pub fn refusable_sql(target: &Target) -> String {
    let (condition, outcome) = refused_sql();
    format!(
        "SELECT {outcome} AS outcome, count() FROM (SELECT id_kind, device_id FROM {} WHERE {condition} GROUP BY id_kind, device_id, app_token, requested_at HAVING max(done_at) = 0) GROUP BY outcome",
        erasures_table(target)
    )
}

/// Marks the refused pending requests done at `now` (unix seconds) with their outcome, within
/// the server (the identifier is copied from the request, never sent).
pub fn refuse_sql(target: &Target, now: u32) -> String {
    let (condition, outcome) = refused_sql();
    let table = erasures_table(target);
    format!(
        "INSERT INTO {table} ({}) SELECT requested_at, device_id, id_kind, app_token, toDateTime({now}, 'UTC'), {outcome} FROM {table} WHERE {condition} GROUP BY requested_at, device_id, id_kind, app_token HAVING max(done_at) = 0",
        column_names()
    )
}

/// Marks requests done at `now` (unix seconds) with `outcome`.
pub fn done_sql(target: &Target, requests: &[Request], now: u32, outcome: &str) -> String {
    insert_sql(target, requests, |r| r.requested_at, now, outcome)
}

/// Inserts a row per request into `<table>_erasures`: made at `at(request)`, `done_at` and
/// `outcome` as given (`done_at` 0: pending).
fn insert_sql(
    target: &Target,
    requests: &[Request],
    at: impl Fn(&Request) -> u32,
    done_at: u32,
    outcome: &str,
) -> String {
    let rows: Vec<String> = requests
        .iter()
        .map(|r| {
            format!(
                "(toDateTime({}, 'UTC'), {}, {}, {}, toDateTime({done_at}, 'UTC'), {})",
                at(r),
                quote(&r.id),
                quote(&r.kind),
                quote(&r.app),
                quote(outcome)
            )
        })
        .collect();
    format!(
        "INSERT INTO {} ({}) VALUES {}",
        erasures_table(target),
        column_names(),
        rows.join(", ")
    )
}

/// The tables an erasure and retention alter: callbacks and rejects (on a cluster their
/// local tables, with ` ON CLUSTER …` to append to the `ALTER`).
pub fn erased_tables(target: &Target) -> [String; 2] {
    [
        target.storage().table(),
        super::rejects_target(target).storage().table(),
    ]
}

/// The tables whose rows an erasure counts: callbacks and rejects (on a cluster the
/// `Distributed` tables, so every shard is counted).
pub fn counted_tables(target: &Target) -> [String; 2] {
    [target.table(), super::rejects_table(target)]
}

/// A system table of every node (one replica per shard on a cluster: replicated tables show
/// their shard's mutations and parts on each replica), or of the server.
pub(super) fn system(target: &Target, table: &str) -> String {
    match &target.cluster {
        Some(c) => format!("cluster({}, system.{table})", quote(c)),
        None => format!("system.{table}"),
    }
}

pub(super) fn erased_names(target: &Target) -> String {
    erased_tables(target)
        .iter()
        .map(|t| quote(t.split_once('.').map_or(t.as_str(), |(_, n)| n)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How many mutations of the callbacks and rejects tables are still running (on a cluster, on
/// any shard).
pub fn running_mutations_sql(target: &Target) -> String {
    format!(
        "SELECT count() FROM {} WHERE database = {} AND table IN ({}) AND is_done = 0",
        system(target, "mutations"),
        quote(&target.database),
        erased_names(target)
    )
}

#[cfg(test)]
mod tests;
