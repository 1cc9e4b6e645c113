//! `<table>_lease`: who runs housekeeping (erasure and retention rounds), so that of several
//! sinks on one table only one does at a time.
//!
//! A claim is a row (`name`, `holder`, `taken_at`, `expires_at`); the holder renews it by
//! inserting the same claim with a later `expires_at` (a `ReplacingMergeTree(expires_at)` keeps
//! the latest). The lease belongs to the earliest claim that has not expired, ties broken by
//! holder: every sink reads the same claims and comes to the same answer. On a cluster the table
//! is replicated to every node of the cluster (one ZooKeeper path, a replica per node), so a
//! sink reads and writes it on whichever node it is connected to.

use super::{Statement, Target};

/// The lease's name in the table (one lease per callbacks table).
pub const HOUSEKEEPING: &str = "housekeeping";

/// `<db>.<table>_lease`.
pub fn lease_table(target: &Target) -> String {
    format!("{}.{}_lease", target.database, target.table)
}

/// The table's ZooKeeper path on a cluster: one for all shards.
pub fn zookeeper_path(target: &Target) -> String {
    format!(
        "/clickhouse/tables/all/{}/{}_lease",
        target.database, target.table
    )
}

/// `CREATE TABLE IF NOT EXISTS <db>.<table>_lease`; on a cluster replicated on every node (the
/// replica named `{shard}-{replica}`, unique in the cluster).
pub fn table_statement(target: &Target) -> Statement {
    let engine = match &target.cluster {
        None => "ReplacingMergeTree(expires_at)".to_string(),
        Some(_) => format!(
            "ReplicatedReplacingMergeTree('{}', '{{shard}}-{{replica}}', expires_at)",
            zookeeper_path(target)
        ),
    };
    let what = match &target.cluster {
        None => format!("table {} (who runs housekeeping)", lease_table(target)),
        Some(_) => format!(
            "table {} (who runs housekeeping, replicated on every node)",
            lease_table(target)
        ),
    };
    Statement {
        what,
        sql: format!(
            "CREATE TABLE IF NOT EXISTS {}{}\n(\n    name String,\n    holder String,\n    taken_at DateTime('UTC'),\n    expires_at DateTime('UTC')\n)\nENGINE = {engine}\nORDER BY (name, taken_at, holder)",
            lease_table(target),
            target.on_cluster()
        ),
    }
}

/// The claims that have not expired, in the order that decides: (holder, taken_at,
/// expires_at) as unix seconds, the holder first.
pub fn live_sql(target: &Target) -> String {
    format!(
        "SELECT holder, toUInt32(taken_at), toUInt32(max(expires_at)) AS until FROM {} WHERE name = '{HOUSEKEEPING}' GROUP BY holder, taken_at HAVING until > toUInt32(now()) ORDER BY taken_at, holder",
        lease_table(target)
    )
}

/// A new claim by `holder`, taken now (the server's clock) for `ttl_s` seconds.
pub fn claim_sql(target: &Target, holder: &str, ttl_s: u32) -> String {
    format!(
        "INSERT INTO {} (name, holder, taken_at, expires_at) SELECT '{HOUSEKEEPING}', {}, now(), now() + {ttl_s}",
        lease_table(target),
        crate::clickhouse::quote(holder)
    )
}

/// The claim `holder` took at `taken_at`, renewed for `ttl_s` seconds from now.
pub fn renew_sql(target: &Target, holder: &str, taken_at: u32, ttl_s: u32) -> String {
    format!(
        "INSERT INTO {} (name, holder, taken_at, expires_at) SELECT '{HOUSEKEEPING}', {}, toDateTime({taken_at}, 'UTC'), now() + {ttl_s}",
        lease_table(target),
        crate::clickhouse::quote(holder)
    )
}
