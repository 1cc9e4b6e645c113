//! `<table>_imports`: the manifest of the export files the follower loads (`import URL`,
//! `serve --follow-exports`), so that every file is loaded exactly once however many followers
//! watch the bucket.
//!
//! The table is a log: one row per event of a file version (object key and ETag): `claimed` (a
//! follower took it; renewed while it loads), then `loaded` or `failed` (with the reason). A
//! version is done once it has a `loaded` or `failed` row. Of the live claims on a version (renewed
//! within the claim's time to live) the earliest wins, ties broken by holder: every follower reads
//! the same rows and comes to the same answer. On a cluster the table is replicated to every node
//! (one ZooKeeper path), as `<table>_lease` is.

use super::{Statement, Target};
use crate::clickhouse::quote;

/// `<db>.<table>_imports`.
pub fn imports_table(target: &Target) -> String {
    format!("{}.{}_imports", target.database, target.table)
}

/// `CREATE TABLE IF NOT EXISTS <db>.<table>_imports`.
pub fn table_statement(target: &Target) -> Statement {
    let engine = match &target.cluster {
        None => "MergeTree".to_string(),
        Some(_) => format!(
            "ReplicatedMergeTree('/clickhouse/tables/all/{}/{}_imports', '{{shard}}-{{replica}}')",
            target.database, target.table
        ),
    };
    Statement {
        what: format!(
            "table {} (export files the follower loaded)",
            imports_table(target)
        ),
        sql: format!(
            "CREATE TABLE IF NOT EXISTS {}{}\n(\n    object_key String,\n    etag String,\n    size UInt64,\n    state String,\n    holder String,\n    at DateTime('UTC'),\n    rows_read UInt64,\n    rows_new UInt64,\n    rows_present UInt64,\n    rows_bad UInt64,\n    reason String\n)\nENGINE = {engine}\nORDER BY (object_key, etag, at)",
            imports_table(target),
            target.on_cluster()
        ),
    }
}

/// The versions under `prefix` that are done (loaded or failed): `object_key`, `etag`.
pub fn done_sql(target: &Target, prefix: &str) -> String {
    format!(
        "SELECT object_key, etag FROM {} WHERE startsWith(object_key, {}) AND state IN ('loaded', 'failed') GROUP BY object_key, etag",
        imports_table(target),
        quote(prefix)
    )
}

/// Whether a version is done: one row with its count.
pub fn is_done_sql(target: &Target, key: &str, etag: &str) -> String {
    format!(
        "SELECT count() FROM {} WHERE object_key = {} AND etag = {} AND state IN ('loaded', 'failed')",
        imports_table(target),
        quote(key),
        quote(etag)
    )
}

/// A claim (or its renewal) by `holder`, at the server's time.
pub fn claim_sql(target: &Target, key: &str, etag: &str, size: u64, holder: &str) -> String {
    format!(
        "INSERT INTO {} (object_key, etag, size, state, holder, at) SELECT {}, {}, {size}, 'claimed', {}, now()",
        imports_table(target),
        quote(key),
        quote(etag),
        quote(holder)
    )
}

/// The holder of the winning claim on a version: the earliest of those renewed within `ttl_s`
/// seconds, ties broken by holder.
pub fn winner_sql(target: &Target, key: &str, etag: &str, ttl_s: u64) -> String {
    format!(
        "SELECT holder, toUInt32(min(at)) AS first, toUInt32(max(at)) AS last FROM {} WHERE object_key = {} AND etag = {} AND state = 'claimed' GROUP BY holder HAVING last + {ttl_s} > toUInt32(now()) ORDER BY first, holder LIMIT 1",
        imports_table(target),
        quote(key),
        quote(etag)
    )
}

/// What became of a version: `state` is `loaded` or `failed`.
pub struct Outcome<'a> {
    pub key: &'a str,
    pub etag: &'a str,
    pub size: u64,
    pub holder: &'a str,
    pub state: &'a str,
    pub rows_read: u64,
    pub rows_new: u64,
    pub rows_present: u64,
    pub rows_bad: u64,
    pub reason: &'a str,
}

/// The row that marks a version done.
pub fn outcome_sql(target: &Target, o: &Outcome<'_>) -> String {
    format!(
        "INSERT INTO {} (object_key, etag, size, state, holder, at, rows_read, rows_new, rows_present, rows_bad, reason) SELECT {}, {}, {}, {}, {}, now(), {}, {}, {}, {}, {}",
        imports_table(target),
        quote(o.key),
        quote(o.etag),
        o.size,
        quote(o.state),
        quote(o.holder),
        o.rows_read,
        o.rows_new,
        o.rows_present,
        o.rows_bad,
        quote(o.reason)
    )
}
