//! Retention (`--retention`): the SQL that finds and drops expired monthly partitions (18.16) and
//! the TTL of modern servers, on the callbacks and rejects tables (on a cluster, every shard).

use super::erasure::{erased_names, erased_tables, system};
use super::{Statement, Target};
use crate::clickhouse::quote;
use crate::clock::days_from_civil;

/// The active partitions of the callbacks and rejects tables (on a cluster, of every shard):
/// rows of (table, partition).
pub fn partitions_sql(target: &Target) -> String {
    format!(
        "SELECT DISTINCT table, partition FROM {} WHERE database = {} AND table IN ({}) AND active",
        system(target, "parts"),
        quote(&target.database),
        erased_names(target)
    )
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

/// The modern servers' retention: a TTL on the callbacks and rejects tables.
pub fn ttl_statements(target: &Target, days: u32) -> Vec<Statement> {
    let on_cluster = target.on_cluster();
    erased_tables(target)
        .into_iter()
        .zip(TTL_DATES)
        .map(|(table, date)| Statement {
            what: format!("retention of {table}: {days} days"),
            sql: format!("ALTER TABLE {table}{on_cluster} MODIFY TTL {date} + INTERVAL {days} DAY"),
        })
        .collect()
}

/// The date each of [`erased_tables`] expires by.
const TTL_DATES: [&str; 2] = ["event_date", "toDate(rejected_at)"];

/// The `engine_full` of the callbacks and rejects tables (on a cluster the connected node's
/// local tables): rows of (name, engine_full).
pub fn engines_sql(target: &Target) -> String {
    format!(
        "SELECT name, engine_full FROM system.tables WHERE database = {} AND name IN ({})",
        quote(&target.database),
        erased_names(target)
    )
}

/// Whether a table whose `engine_full` is `engine` already expires rows after `days` (the
/// server writes `INTERVAL 30 DAY` back as `toIntervalDay(30)`). `table` is one of
/// [`erased_tables`].
pub fn ttl_is_set(target: &Target, table: &str, engine: &str, days: u32) -> bool {
    let Some(date) = erased_tables(target)
        .iter()
        .position(|t| t == table || t.ends_with(&format!(".{table}")))
        .map(|i| TTL_DATES[i])
    else {
        return false;
    };
    engine.contains(&format!("TTL {date} + toIntervalDay({days})"))
        || engine.contains(&format!("TTL {date} + INTERVAL {days} DAY"))
}
