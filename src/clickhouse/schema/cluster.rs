//! The layout on a sharded, replicated ClickHouse cluster (`--cluster NAME`).
//!
//! Every statement runs `ON CLUSTER NAME`, so each node of the cluster gets the same objects:
//!
//! - `<table>_local`: `ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/<db>/<table>_local',
//!   '{replica}')` with the columns, partitioning and sorting key of the single-server table (cold
//!   ALIAS columns included). The replicas of a shard hold the same rows.
//! - `<table>`: `Distributed(NAME, <db>, <table>_local, callback_id)`. The sink inserts here and
//!   analysts read here. Sharding by `callback_id` sends every copy of an activity (global and
//!   single-activity URL, Adjust's retries, another sink's copy) to the same shard, where the
//!   ReplacingMergeTree collapses it (`FINAL` reads collapse per shard).
//! - The rejects table the same way (`<table>_rejects_local` + `<table>_rejects`); a later table
//!   keyed by callback (the erasures table) goes through [`sharded`] too.
//! - Rollups: `<rollup>_activities_local` as `ReplicatedReplacingMergeTree`, fed by
//!   `<rollup>_activities_mv` on the local callbacks table of the node that receives the rows (the
//!   shard of their `callback_id`, so the copies of an activity meet on one shard and collapse),
//!   with a `Distributed` `<rollup>_activities` over them, sharded by `callback_id`; the view
//!   `<rollup>` adds them up over it with `FINAL`.
//! - Per-activity views over the `Distributed` table.
//! - `<table>_lease` (which sink runs housekeeping): one `ReplicatedReplacingMergeTree` with a
//!   replica on every node (one ZooKeeper path for all shards), read and written locally
//!   ([`super::lease`]).

use super::{Statement, Target};
use crate::clickhouse::quote;

/// Suffix of the replicated tables that hold the rows on each node.
pub const LOCAL_SUFFIX: &str = "_local";

/// `distributed_ddl_task_timeout` of `migrate` on a cluster: how long one statement waits for
/// every node before failing with code 159 (the nodes that did not answer run it once back).
pub const DDL_TASK_TIMEOUT_S: u32 = 60;

/// `<table>_local`.
pub fn local_name(table: &str) -> String {
    format!("{table}{LOCAL_SUFFIX}")
}

/// The replicated table's path in ZooKeeper (`{shard}` is each node's macro).
pub fn zookeeper_path(storage: &Target) -> String {
    format!(
        "/clickhouse/tables/{{shard}}/{}/{}",
        storage.database, storage.table
    )
}

/// The table engine: `engine(params)` on a single server, `Replicated<engine>(path, '{replica}',
/// params)` on a cluster.
pub fn engine(engine: &str, params: &[&str], storage: &Target) -> String {
    match storage.cluster {
        None if params.is_empty() => engine.to_string(),
        None => format!("{engine}({})", params.join(", ")),
        Some(_) => {
            let mut args = vec![quote(&zookeeper_path(storage)), "'{replica}'".to_string()];
            args.extend(params.iter().map(|p| p.to_string()));
            format!("Replicated{engine}({})", args.join(", "))
        }
    }
}

/// The statements of a table holding rows: on a single server `create` alone; on a cluster
/// `create` (which must create `target.storage()`, the local table) and a `Distributed` table
/// named `target.table()` over it, sharded by `key`.
pub fn sharded(target: &Target, what: &str, create: String, key: &str) -> Vec<Statement> {
    if target.cluster.is_none() {
        return vec![Statement {
            what: format!("table {}", target.table()),
            sql: create,
        }];
    }
    let storage = target.storage();
    vec![
        Statement {
            what: format!(
                "table {} ({what}, replicated on each node)",
                storage.table()
            ),
            sql: create,
        },
        Statement {
            what: format!(
                "table {} (Distributed over {}, sharded by {key})",
                target.table(),
                storage.table
            ),
            sql: create_distributed(target, key),
        },
    ]
}

/// `CREATE TABLE IF NOT EXISTS <table> ON CLUSTER … AS <local> ENGINE = Distributed(…)`: the
/// columns are the local table's (ALIAS columns included).
pub fn create_distributed(target: &Target, key: &str) -> String {
    let cluster = target.cluster.as_deref().unwrap_or_default();
    let storage = target.storage();
    format!(
        "CREATE TABLE IF NOT EXISTS {}{} AS {}\nENGINE = Distributed({cluster}, {}, {}, {key})",
        target.table(),
        target.on_cluster(),
        storage.table(),
        target.database,
        storage.table
    )
}

/// `DROP TABLE IF EXISTS <table> ON CLUSTER …`: a `Distributed` table cannot be altered
/// `ON CLUSTER` (18.16 refuses with code 371), so `migrate` drops it and creates it again over
/// the altered local tables. It holds no rows (inserts are synchronous).
pub fn drop_distributed(target: &Target) -> String {
    format!(
        "DROP TABLE IF EXISTS {}{}",
        target.table(),
        target.on_cluster()
    )
}

/// Every table and view `migrate` creates on each node of the cluster (what `check --cluster`
/// looks for), local tables first.
pub fn objects(target: &Target) -> Vec<String> {
    let rejects = super::rejects_target(target);
    let mut out = vec![
        target.storage().table,
        target.table.clone(),
        rejects.storage().table,
        rejects.table,
    ];
    for r in super::views::ROLLUPS {
        out.push(local_name(&r.activities_name()));
        out.push(r.activities_name());
        out.push(r.mv_name());
        out.push(r.table.to_string());
    }
    out.extend(super::views::VIEWS.iter().map(|v| v.name.to_string()));
    let erasures = format!("{}_erasures", target.table);
    out.push(local_name(&erasures));
    out.push(format!("{erasures}_mv"));
    out.push(erasures);
    out.push(format!("{}_lease", target.table));
    out.push(format!("{}_imports", target.table));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clickhouse::Profile;
    use crate::clickhouse::schema::statements;

    fn target() -> Target {
        Target {
            database: "adjust".into(),
            table: "callbacks".into(),
            physical: Vec::new(),
            columns: Vec::new(),
            cluster: Some("adjust_local".into()),
        }
    }

    #[test]
    fn every_statement_runs_on_the_cluster_and_rows_live_in_replicated_local_tables() {
        for profile in [Profile::Legacy, Profile::Modern] {
            let all = statements(profile, &target());
            for s in &all {
                let head = s.sql.lines().find(|l| !l.starts_with("--")).unwrap();
                assert!(
                    head.contains(" ON CLUSTER adjust_local"),
                    "not on the cluster: {head}"
                );
                if s.sql.contains("MergeTree") {
                    assert!(s.sql.contains("ENGINE = Replicated"), "{}", s.sql);
                    // The lease and the imports manifest are one table replicated on every
                    // node, not sharded.
                    if !head.contains("_lease ON CLUSTER") && !head.contains("_imports ON CLUSTER")
                    {
                        assert!(head.contains("_local ON CLUSTER"), "{head}");
                    }
                }
            }
            let sql: Vec<&str> = all.iter().map(|s| s.sql.as_str()).collect();
            let table = sql
                .iter()
                .find(|s| s.starts_with("CREATE TABLE IF NOT EXISTS adjust.callbacks_local "))
                .unwrap();
            assert!(table.contains(
                "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/adjust/callbacks_local', '{replica}')"
            ));
            // The single-server table's columns, partitioning and order, ALIAS columns included.
            let single = crate::clickhouse::schema::create_table(
                profile,
                &Target {
                    cluster: None,
                    ..target()
                },
            );
            let body = |s: &str| {
                s.split_once("\n(\n")
                    .unwrap()
                    .1
                    .split_once("\n)\nENGINE")
                    .unwrap()
                    .0
                    .to_string()
            };
            assert_eq!(body(table), body(&single), "{profile:?}");
            assert!(table.contains(" ALIAS "));
            for tail in [
                "PARTITION BY toYYYYMM(event_date)",
                "ORDER BY (activity_kind, event_date, callback_id)",
            ] {
                assert!(table.contains(tail));
            }
            assert!(sql.contains(
                &"CREATE TABLE IF NOT EXISTS adjust.callbacks ON CLUSTER adjust_local AS adjust.callbacks_local\nENGINE = Distributed(adjust_local, adjust, callbacks_local, callback_id)"
            ));
            assert!(sql.contains(
                &"CREATE TABLE IF NOT EXISTS adjust.callbacks_rejects ON CLUSTER adjust_local AS adjust.callbacks_rejects_local\nENGINE = Distributed(adjust_local, adjust, callbacks_rejects_local, callback_id)"
            ));
            for r in crate::clickhouse::schema::views::ROLLUPS {
                let local = sql
                    .iter()
                    .find(|s| {
                        s.starts_with(&format!(
                            "CREATE TABLE IF NOT EXISTS adjust.{}_local ON",
                            r.activities_name()
                        ))
                    })
                    .unwrap();
                assert!(local.contains("ENGINE = ReplicatedReplacingMergeTree("));
                let mv = sql
                    .iter()
                    .find(|s| s.contains(&format!("VIEW IF NOT EXISTS adjust.{}", r.mv_name())))
                    .unwrap();
                assert!(mv.contains(&format!("TO adjust.{}_local AS", r.activities_name())));
                assert!(mv.contains("FROM adjust.callbacks_local\n"));
                assert!(sql.iter().any(|s| s.starts_with(&format!(
                    "CREATE TABLE IF NOT EXISTS adjust.{0} ON CLUSTER adjust_local AS adjust.{0}_local\nENGINE = Distributed(adjust_local, adjust, {0}_local, callback_id)",
                    r.activities_name()
                ))));
                let view = sql
                    .iter()
                    .find(|s| {
                        s.starts_with(&format!("CREATE VIEW IF NOT EXISTS adjust.{} ON", r.table))
                    })
                    .unwrap();
                assert!(view.contains(&format!("FROM adjust.{} FINAL", r.activities_name())));
            }
            for v in crate::clickhouse::schema::views::VIEWS {
                let create = sql
                    .iter()
                    .find(|s| {
                        s.starts_with(&format!("CREATE VIEW IF NOT EXISTS adjust.{} ON", v.name))
                    })
                    .unwrap();
                assert!(create.contains("FROM adjust.callbacks FINAL"));
            }
            // Every created object is one `check --cluster` looks for.
            let objects = objects(&target());
            for s in &sql {
                if let Some(rest) = s
                    .lines()
                    .find(|l| !l.starts_with("--"))
                    .unwrap()
                    .split(" IF NOT EXISTS adjust.")
                    .nth(1)
                {
                    let name = rest.split(' ').next().unwrap();
                    assert!(objects.iter().any(|o| o == name), "{name} not checked");
                }
            }
        }
    }
}
