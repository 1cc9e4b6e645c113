//! A sharded, replicated ClickHouse 18.16 (`deploy/local/cluster.sh`: two shards of two
//! replicas): `migrate --cluster` and `schema --cluster`, two sinks writing through different
//! nodes while a replica crashes, and `check --cluster` finding a node that lacks a table or does
//! not answer.
//!
//! Runs only with `ADJUST_SINK_TEST_CLUSTER=1` (scripts/test.sh sets it): it starts the cluster
//! with `deploy/local/cluster.sh start` (ports from `ADJUST_SINK_CLUSTER_BASE_PORT`, directory
//! `ADJUST_SINK_CLUSTER_DIR`, as for the script) and leaves it running for the caller to stop.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{Db, Sink, base_args, blast_to};

const CLUSTER: &str = "adjust_local";

fn enabled() -> bool {
    std::env::var("ADJUST_SINK_TEST_CLUSTER").is_ok_and(|v| v == "1")
}

/// Runs `deploy/local/cluster.sh <args>` and returns its standard output.
fn cluster_sh(args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/local/cluster.sh");
    let out = Command::new(script)
        .args(args)
        .output()
        .expect("run cluster.sh");
    assert!(
        out.status.success(),
        "cluster.sh {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the binary; returns (success, stdout, stderr).
fn sink_cmd(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_adjust-sink"))
        .args(args)
        .output()
        .expect("run adjust-sink");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn target_args<'a>(db: &'a Db, command: &'a str) -> Vec<&'a str> {
    vec![
        command,
        "--clickhouse-url",
        &db.url,
        "--database",
        &db.name,
        "--cluster",
        CLUSTER,
    ]
}

fn migrate(db: &Db) -> String {
    let (ok, out, err) = sink_cmd(&target_args(db, "migrate"));
    assert!(ok, "migrate --cluster failed: {err}\n{out}");
    out
}

/// `check --cluster` with an empty data directory: (healthy, report).
fn check(db: &Db, data_dir: &Path) -> (bool, String) {
    let mut args = target_args(db, "check");
    args.extend(["--data-dir", data_dir.to_str().unwrap()]);
    let (ok, out, err) = sink_cmd(&args);
    (ok, format!("{out}{err}"))
}

/// Polls `sql` on `db` until it gives `want` (replicas fetch each other's parts asynchronously).
async fn wait_for(db: &Db, sql: &str, want: u64, timeout: Duration) -> u64 {
    let deadline = Instant::now() + timeout;
    loop {
        let got = db
            .try_query(sql)
            .await
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(u64::MAX);
        if got == want || Instant::now() >= deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_sinks_write_through_a_sharded_replicated_cluster_while_a_replica_crashes() {
    if !enabled() {
        eprintln!("skipped: set ADJUST_SINK_TEST_CLUSTER=1 (scripts/test.sh does) to run it");
        return;
    }
    cluster_sh(&["start"]);
    let urls: Vec<String> = cluster_sh(&["urls"]).lines().map(str::to_owned).collect();
    assert_eq!(urls.len(), 4, "{urls:?}");
    let db = Db::fresh_on(&urls[0], "cluster").await;
    db.query(&format!(
        "DROP DATABASE IF EXISTS {} ON CLUSTER {CLUSTER}",
        db.name
    ))
    .await;
    let d = &db.name;

    // migrate twice; the second run only ensures.
    let first = migrate(&db);
    let second = migrate(&db.at(&urls[2]));
    assert!(
        second.contains(&format!("on cluster {CLUSTER}")),
        "{second}"
    );
    assert!(!second.contains("added column"), "{second}");

    // `schema --cluster` prints what migrate ran: the same statements, and every object it
    // creates exists on every node with the engine the statement names, and nothing else.
    let (ok, schema, err) = sink_cmd(&target_args(&db, "schema"));
    assert!(ok, "schema --cluster: {err}");
    // Each statement is printed after an empty line as `-- <what migrate reports>`.
    let described: Vec<&str> = schema
        .split("\n\n")
        .skip(1) // the header
        .filter_map(|block| block.strip_prefix("-- "))
        .map(|block| block.lines().next().unwrap())
        .collect();
    let ensured: Vec<&str> = first
        .lines()
        .filter_map(|l| l.strip_prefix("  ensured "))
        .collect();
    assert_eq!(described, ensured, "schema --cluster differs from migrate");
    let mut expected: Vec<(String, &str)> = Vec::new();
    for statement in schema.split(";\n") {
        let Some(head) = statement.lines().find(|l| {
            l.starts_with("CREATE TABLE")
                || l.starts_with("CREATE MATERIALIZED")
                || l.starts_with("CREATE VIEW")
        }) else {
            continue;
        };
        assert!(head.contains(&format!(" ON CLUSTER {CLUSTER}")), "{head}");
        let name = head
            .split(&format!("IF NOT EXISTS {d}."))
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .to_string();
        let engine = if head.starts_with("CREATE VIEW") {
            "View"
        } else if head.starts_with("CREATE MATERIALIZED") {
            "MaterializedView"
        } else if statement.contains("ENGINE = Distributed(") {
            "Distributed"
        } else if statement.contains("ENGINE = ReplicatedReplacingMergeTree(") {
            "ReplicatedReplacingMergeTree"
        } else if statement.contains("ENGINE = ReplicatedSummingMergeTree(") {
            "ReplicatedSummingMergeTree"
        } else {
            assert!(
                statement.contains("ENGINE = ReplicatedMergeTree("),
                "{statement}"
            );
            "ReplicatedMergeTree"
        };
        expected.push((name, engine));
    }
    expected.sort();
    assert!(expected.len() >= 20, "{expected:?}");
    for url in &urls {
        let have = db
            .at(url)
            .query(&format!(
                "SELECT name, engine FROM system.tables WHERE database = '{d}' ORDER BY name"
            ))
            .await;
        let have: Vec<(String, String)> = have
            .lines()
            .map(|l| {
                let (n, e) = l.split_once('\t').unwrap();
                (n.to_string(), e.to_string())
            })
            .collect();
        let want: Vec<(String, String)> = expected
            .iter()
            .map(|(n, e)| (n.clone(), e.to_string()))
            .collect();
        assert_eq!(have, want, "objects on {url}");
    }
    let engine = db
        .query(&format!(
            "SELECT engine_full FROM system.tables WHERE database = '{d}' AND name = 'callbacks'"
        ))
        .await;
    assert!(
        engine.contains(&format!(
            "Distributed({CLUSTER}, {d}, callbacks_local, callback_id)"
        )),
        "{engine}"
    );

    // A cluster the server does not know, and a single-server table where the Distributed one
    // belongs: refused before any DDL runs.
    let (ok, out, err) = sink_cmd(&[
        "migrate",
        "--clickhouse-url",
        &db.url,
        "--database",
        d,
        "--cluster",
        "no_such_cluster",
    ]);
    assert!(
        !ok && err.contains("no cluster `no_such_cluster`"),
        "{out}{err}"
    );
    let plain = format!("{d}_plain");
    db.query(&format!("CREATE DATABASE IF NOT EXISTS {plain}"))
        .await;
    db.query(&format!(
        "CREATE TABLE {plain}.callbacks (callback_id UInt64) ENGINE = MergeTree ORDER BY callback_id"
    ))
    .await;
    let (ok, out, err) = sink_cmd(&[
        "migrate",
        "--clickhouse-url",
        &db.url,
        "--database",
        &plain,
        "--cluster",
        CLUSTER,
    ]);
    assert!(
        !ok && err.contains(&format!("{plain}.callbacks exists as a MergeTree table")),
        "{out}{err}"
    );
    assert_eq!(
        db.number(&format!(
            "SELECT count() FROM system.tables WHERE database = '{plain}'"
        ))
        .await,
        1,
        "nothing was created"
    );
    db.query(&format!("DROP DATABASE {plain}")).await;

    // A column the local tables lack: migrate adds it on every node and creates the
    // Distributed table again with it (18.16 cannot ALTER a Distributed table ON CLUSTER).
    db.query(&format!(
        "ALTER TABLE {d}.callbacks_local ON CLUSTER {CLUSTER} DROP COLUMN tracker_name"
    ))
    .await;
    let third = migrate(&db);
    assert!(third.contains("added column tracker_name"), "{third}");
    assert!(third.contains("created again over"), "{third}");
    for url in &urls {
        for table in ["callbacks_local", "callbacks"] {
            let n = db
                .at(url)
                .number(&format!(
                    "SELECT count() FROM system.columns WHERE database = '{d}' AND table = '{table}' AND name = 'tracker_name'"
                ))
                .await;
            assert_eq!(n, 1, "{table} on {url} lacks tracker_name");
        }
    }

    // Two sinks, each with its own data directory: A writes through node 1, B through node 3.
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let start = |node: &str, dir: &Path| {
        let mut args = base_args(&db.at(node), dir);
        args.extend(["--cluster".to_string(), CLUSTER.to_string()]);
        Sink::spawn(args, dir.to_path_buf())
    };
    let sink_a = start(&urls[0], dir_a.path()).await;
    let sink_b = start(&urls[2], dir_b.path()).await;
    let client = reqwest::Client::new();
    let to = |sink: &Sink, tag: &str, n: usize| {
        tokio::spawn(blast_to(
            client.clone(),
            sink.url("/adjust"),
            n,
            8,
            tag.to_string(),
        ))
    };
    // The same callbacks through both sinks (as if Adjust retried through another one).
    let shared_a = to(&sink_a, "shared", 300);
    let shared_b = to(&sink_b, "shared", 300);
    let (shared_a, _) = shared_a.await.unwrap();
    let (shared_b, _) = shared_b.await.unwrap();
    assert_eq!(shared_a.len(), 300);
    assert_eq!(shared_b.len(), 300);

    // Load through both while node 2 (shard 1's second replica) is SIGKILLed and restarted.
    let load_a = to(&sink_a, "a", 3000);
    let load_b = to(&sink_b, "b", 3000);
    tokio::time::sleep(Duration::from_millis(700)).await;
    cluster_sh(&["kill-node", "2"]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster_sh(&["start-node", "2"]);
    let (acked_a, status_a) = load_a.await.unwrap();
    let (acked_b, status_b) = load_b.await.unwrap();
    assert!(acked_a.len() > 2000, "{status_a:?}");
    assert!(acked_b.len() > 2000, "{status_b:?}");

    let mut acked: HashSet<String> = HashSet::new();
    acked.extend(shared_a);
    acked.extend(acked_a);
    acked.extend(acked_b);
    let want = acked.len() as u64;
    let t = format!("{d}.callbacks");
    // Both sinks deliver from their logs; replicas catch up; then every acknowledged callback is
    // in the Distributed table exactly once after FINAL.
    let got = wait_for(
        &db,
        &format!("SELECT count() FROM {t} FINAL"),
        want,
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(got, want, "rows after FINAL vs acknowledged callbacks");
    let stored: HashSet<String> = db
        .query(&format!("SELECT nonce FROM {t} FINAL"))
        .await
        .lines()
        .map(str::to_owned)
        .collect();
    let missing: Vec<&String> = acked.iter().filter(|n| !stored.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "{} missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert_eq!(stored.len() as u64, want, "a nonce twice after FINAL");
    assert_eq!(
        db.number(&format!(
            "SELECT count() FROM {t} FINAL WHERE startsWith(nonce, 'shared-')"
        ))
        .await,
        300,
        "the callbacks sent through both sinks collapse to one row each"
    );
    // Both shards hold rows, and a node of each shard answers for its own.
    let shard1 = db
        .at(&urls[0])
        .number(&format!("SELECT count() FROM {d}.callbacks_local"))
        .await;
    let shard2 = db
        .at(&urls[2])
        .number(&format!("SELECT count() FROM {d}.callbacks_local"))
        .await;
    assert!(
        shard1 > 1000 && shard2 > 1000,
        "shard 1 {shard1}, shard 2 {shard2}"
    );
    // The restarted replica catches up with its shard (after FINAL: copies sent through both
    // sinks may not be merged yet).
    let local = |url: &str| db.at(url);
    let shard1_final = local(&urls[0])
        .number(&format!("SELECT count() FROM {d}.callbacks_local FINAL"))
        .await;
    let caught_up = wait_for(
        &local(&urls[1]),
        &format!("SELECT count() FROM {d}.callbacks_local FINAL"),
        shard1_final,
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(caught_up, shard1_final, "node 2 did not catch up");
    drop(sink_a);
    drop(sink_b);

    // check --cluster: all there; then a node that lacks the table; then a node that is down.
    let empty = tempfile::tempdir().unwrap();
    let (ok, report) = check(&db, empty.path());
    assert!(ok, "{report}");
    assert_eq!(
        report.matches("has every table and view").count(),
        4,
        "{report}"
    );
    db.at(&urls[3])
        .query(&format!("DROP TABLE {d}.callbacks_local"))
        .await;
    let (ok, report) = check(&db, empty.path());
    assert!(!ok, "{report}");
    let node4 = report
        .lines()
        .find(|l| l.contains("(shard 2, replica 2)"))
        .unwrap_or_else(|| panic!("{report}"));
    assert!(
        node4.contains(&format!("LACKS {d}.callbacks_local")),
        "{report}"
    );
    assert_eq!(
        report.matches("has every table and view").count(),
        3,
        "{report}"
    );
    // migrate creates it again there (it fetches its shard's rows from the other replica).
    migrate(&db);
    let (ok, report) = check(&db, empty.path());
    assert!(ok, "{report}");
    cluster_sh(&["kill-node", "4"]);
    let (ok, report) = check(&db, empty.path());
    cluster_sh(&["start-node", "4"]);
    assert!(!ok, "{report}");
    let node4 = report
        .lines()
        .find(|l| l.contains("(shard 2, replica 2)"))
        .unwrap_or_else(|| panic!("{report}"));
    assert!(node4.contains("UNREACHABLE"), "{report}");
    assert!(!node4.contains("LACKS"), "{report}");

    db.query(&format!("DROP DATABASE IF EXISTS {d} ON CLUSTER {CLUSTER}"))
        .await;
}
