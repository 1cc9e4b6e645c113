//! Erasure requests and retention: `<table>_erasures`, the materialized view that records a
//! request the moment a `gdpr_forget_device` callback is inserted, and the SQL that erases a
//! device's rows and drops expired partitions.
//!
//! The request is recorded by ClickHouse itself, in the same INSERT that stores the forget
//! callback: nothing is kept in the sink's memory, so a request survives a crash or a restart of
//! the sink (the callback waits in the write-ahead log while ClickHouse is down, and is recorded
//! when it is delivered). `serve` carries pending requests out (README "Privacy").
//!
//! `<table>_erasures` is a `ReplacingMergeTree(done_at)` keyed on the request: a request is one
//! row with `done_at` 0, and marking it done inserts the same key with `done_at` set.

use crate::adjust::catalog::{device_ids, is_hot};
use crate::adjust::decode::index_of;
use crate::clickhouse::quote;

use super::{Statement, Target, cold_text_sql};

/// The activity kind of an erasure request.
pub const FORGET_KIND: &str = "gdpr_forget_device";

/// `<db>.<table>_erasures`.
pub fn erasures_table(target: &Target) -> String {
    format!("{}.{}_erasures", target.database, target.table)
}

fn mv_name(target: &Target) -> String {
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
fn erasures_target(target: &Target) -> Target {
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
    let create = format!(
        "CREATE TABLE IF NOT EXISTS {}{}\n(\n    requested_at DateTime('UTC'),\n    device_id String,\n    id_kind String,\n    done_at DateTime('UTC')\n)\nENGINE = {}\nORDER BY (id_kind, device_id, requested_at)",
        storage.table(),
        t.on_cluster(),
        super::cluster::engine("ReplacingMergeTree", &["done_at"], &storage)
    );
    super::cluster::sharded(&t, "erasure requests", create, "cityHash64(device_id)")
}

/// The materialized view that turns each `gdpr_forget_device` row into one request per device
/// identifier it carries (in its stored form).
pub fn view_statement(target: &Target) -> Statement {
    let pairs: Vec<String> = device_ids()
        .iter()
        .map(|n| format!("('{n}', {})", id_sql(n)))
        .collect();
    Statement {
        what: format!(
            "materialized view {} -> {}",
            mv_name(target),
            erasures_table(target)
        ),
        sql: format!(
            "CREATE MATERIALIZED VIEW IF NOT EXISTS {}{} TO {}\nAS SELECT\n    received_at AS requested_at,\n    tupleElement(id, 2) AS device_id,\n    tupleElement(id, 1) AS id_kind,\n    toDateTime(0, 'UTC') AS done_at\nFROM {}\nARRAY JOIN [{}] AS id\nWHERE activity_kind = '{FORGET_KIND}' AND tupleElement(id, 2) != ''",
            mv_name(target),
            target.on_cluster(),
            erasures_table(target),
            target.storage().table(),
            pairs.join(", ")
        ),
    }
}

/// One pending request: the identifier's kind and its stored value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Request {
    pub kind: String,
    pub id: String,
    pub requested_at: u32,
}

/// The condition matching every row of the callbacks table that carries one of the identifiers.
pub fn callbacks_predicate(requests: &[Request]) -> String {
    let mut terms = Vec::new();
    for kind in device_ids() {
        let ids: Vec<String> = requests
            .iter()
            .filter(|r| r.kind == *kind)
            .map(|r| quote(&r.id))
            .collect();
        if !ids.is_empty() {
            terms.push(format!("{} IN ({})", id_sql(kind), ids.join(", ")));
        }
    }
    if terms.is_empty() {
        "0".into()
    } else {
        terms.join(" OR ")
    }
}

/// The condition matching every row of the rejects table that carries one of the identifiers:
/// the row's JSON holds `"<kind>":"<id>"` (rejects keep no typed columns).
pub fn rejects_predicate(requests: &[Request]) -> String {
    let terms: Vec<String> = requests
        .iter()
        .filter(|r| device_ids().contains(&r.kind.as_str()))
        .map(|r| {
            let pair = format!(
                "{}:{}",
                serde_json::Value::String(r.kind.clone()),
                serde_json::Value::String(r.id.clone())
            );
            format!("position(row_json, {}) > 0", quote(&pair))
        })
        .collect();
    if terms.is_empty() {
        "0".into()
    } else {
        terms.join(" OR ")
    }
}

/// The pending requests, oldest first.
pub fn pending_sql(target: &Target, limit: usize) -> String {
    format!(
        "SELECT id_kind, device_id, toUInt32(requested_at) FROM {} GROUP BY id_kind, device_id, requested_at HAVING max(done_at) = 0 ORDER BY requested_at LIMIT {limit}",
        erasures_table(target)
    )
}

/// Marks requests done at `now` (unix seconds).
pub fn done_sql(target: &Target, requests: &[Request], now: u32) -> String {
    let rows: Vec<String> = requests
        .iter()
        .map(|r| {
            format!(
                "(toDateTime({}, 'UTC'), {}, {}, toDateTime({now}, 'UTC'))",
                r.requested_at,
                quote(&r.id),
                quote(&r.kind)
            )
        })
        .collect();
    format!(
        "INSERT INTO {} (requested_at, device_id, id_kind, done_at) VALUES {}",
        erasures_table(target),
        rows.join(", ")
    )
}

/// The tables an erasure and retention apply to: callbacks and rejects (on a cluster their
/// local tables, with ` ON CLUSTER …` to append to the `ALTER`).
pub fn erased_tables(target: &Target) -> [String; 2] {
    [
        target.storage().table(),
        super::rejects_target(target).storage().table(),
    ]
}

/// The partitions (`YYYYMM`) wholly older than `days` before `today` (days since the epoch):
/// those whose last day is before the first day kept.
pub fn expired_partitions(partitions: &[u32], today: u32, days: u32) -> Vec<u32> {
    let first_kept = today.saturating_sub(days);
    partitions
        .iter()
        .copied()
        .filter(|&p| {
            let (y, m) = (p / 100, p % 100);
            let (ny, nm) = if m >= 12 { (y + 1, 1) } else { (y, m + 1) };
            // The first day of the next month.
            days_from_civil(ny as i64, nm, 1) <= i64::from(first_kept)
        })
        .collect()
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The modern servers' retention: a TTL on the callbacks and rejects tables.
pub fn ttl_statements(target: &Target, days: u32) -> Vec<Statement> {
    let [callbacks, rejects] = erased_tables(target);
    let on_cluster = target.on_cluster();
    [(callbacks, "event_date"), (rejects, "toDate(rejected_at)")]
        .into_iter()
        .map(|(table, date)| Statement {
            what: format!("retention of {table}: {days} days"),
            sql: format!("ALTER TABLE {table}{on_cluster} MODIFY TTL {date} + INTERVAL {days} DAY"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            database: "adjust".into(),
            table: "callbacks".into(),
            physical: vec![],
            columns: Vec::new(),
            cluster: None,
        }
    }

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2014, 7, 1), 16252);
        assert_eq!(days_from_civil(2000, 3, 1), 11017);
    }

    #[test]
    fn only_wholly_expired_partitions_go() {
        // Today 2014-08-15, keep 10 days: first day kept 2014-08-05.
        let today = days_from_civil(2014, 8, 15) as u32;
        let parts = [201406, 201407, 201408, 201312];
        assert_eq!(
            expired_partitions(&parts, today, 10),
            vec![201406, 201407, 201312]
        );
        // Keep 50 days: first day kept 2014-06-26; July is kept, June still has a kept day.
        assert_eq!(expired_partitions(&parts, today, 50), vec![201312]);
        // Keep 46 days: first day kept 2014-06-30... June 30 is kept, so June stays.
        assert_eq!(expired_partitions(&parts, today, 46), vec![201312]);
        // Keep 45 days: first day kept 2014-07-01, June wholly older.
        assert_eq!(expired_partitions(&parts, today, 45), vec![201406, 201312]);
    }

    #[test]
    fn predicates_name_each_identifier_in_its_stored_place() {
        let reqs = [
            Request {
                kind: "adid".into(),
                id: "a'1".into(),
                requested_at: 1,
            },
            Request {
                kind: "win_adid".into(),
                id: "w1".into(),
                requested_at: 1,
            },
        ];
        assert_eq!(
            callbacks_predicate(&reqs),
            "adid IN ('a\\'1') OR visitParamExtractString(cold, 'win_adid') IN ('w1')"
        );
        assert_eq!(
            rejects_predicate(&reqs),
            "position(row_json, '\"adid\":\"a\\'1\"') > 0 OR position(row_json, '\"win_adid\":\"w1\"') > 0"
        );
        assert_eq!(callbacks_predicate(&[]), "0");
        assert!(view_statement(&target()).sql.contains("('idfa', idfa)"));
    }
}
