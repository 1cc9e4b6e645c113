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

use crate::support::{CLUSTER_TURN, Db, Sink, base_args, blast_to, sink_cmd};

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

/// Starts the local cluster (if it is not running) and gives its node URLs and a fresh database
/// `name` on node 1, dropped first on every node.
async fn fresh_cluster_db(name: &str) -> (Vec<String>, Db) {
    cluster_sh(&["start"]);
    let urls: Vec<String> = cluster_sh(&["urls"]).lines().map(str::to_owned).collect();
    assert_eq!(urls.len(), 4, "{urls:?}");
    let db = Db::fresh_on(&urls[0], name).await;
    db.query(&format!(
        "DROP DATABASE IF EXISTS {} ON CLUSTER {CLUSTER}",
        db.name
    ))
    .await;
    (urls, db)
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
    let _turn = CLUSTER_TURN.lock().await;
    let (urls, db) = fresh_cluster_db("cluster").await;
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

    // An erasures table of an earlier version (a column short): a sink's own migrate (at its
    // first insert) brings it up to date on every node, as `migrate --cluster` does.
    db.query(&format!(
        "ALTER TABLE {d}.callbacks_erasures_local ON CLUSTER {CLUSTER} DROP COLUMN outcome"
    ))
    .await;

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
    // The sinks' first inserts ran their migrate.
    for url in &urls {
        let sql = format!(
            "SELECT count() FROM system.columns WHERE database = '{d}' AND table = 'callbacks_erasures_local' AND name = 'outcome'"
        );
        assert_eq!(
            wait_for(&db.at(url), &sql, 1, Duration::from_secs(60)).await,
            1,
            "the erasures table on {url} still lacks outcome"
        );
    }

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

/// Erasure on the cluster: a device whose only row is on shard 2 while the sinks talk to nodes
/// of both shards. The row is gone from every shard before the request is marked done; each
/// node's `system.mutations` shows one mutation (the round that had work), none after; and of
/// the two sinks only the lease holder runs rounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_erasure_reaches_every_shard_and_two_sinks_run_each_round_once() {
    if !enabled() {
        eprintln!("skipped: set ADJUST_SINK_TEST_CLUSTER=1 (scripts/test.sh does) to run it");
        return;
    }
    let _turn = CLUSTER_TURN.lock().await;
    let (urls, db) = fresh_cluster_db("cluster_erasure").await;
    let d = db.name.clone();
    migrate(&db);
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let start = |node: &str, dir: &Path| {
        let mut args = base_args(&db.at(node), dir);
        args.extend(
            [
                "--cluster",
                CLUSTER,
                "--erasure-interval",
                "2s",
                "--erasure-without-token",
            ]
            .map(String::from),
        );
        Sink::spawn(args, dir.to_path_buf())
    };
    let sink_a = start(&urls[0], dir_a.path()).await;
    let sink_b = start(&urls[2], dir_b.path()).await;

    // Devices with one event each until one lands on shard 2 (callback_id % 2 = 1), through
    // the sink connected to shard 1; a device of shard 1 stays.
    let t = format!("{d}.callbacks");
    let mut on_shard = [None, None];
    for i in 0..40 {
        let dev = format!("dev{i:02}");
        let q =
            format!("/adjust/event?adid={dev}&nonce=n-{dev}&app_token=appA&created_at=1404214665");
        assert_eq!(sink_a.get(&q).await.status(), 200);
        let arrived = wait_for(
            &db,
            &format!("SELECT count() FROM {t} WHERE adid = '{dev}'"),
            1,
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(arrived, 1, "{}", sink_a.logs());
        // The Distributed table sends callback_id % 2 = 0 to shard 1, 1 to shard 2.
        let shard = db
            .number(&format!(
                "SELECT any(callback_id % 2) FROM {t} WHERE adid = '{dev}'"
            ))
            .await;
        on_shard[shard as usize].get_or_insert(dev);
        if on_shard.iter().all(Option::is_some) {
            break;
        }
    }
    let [Some(stays), Some(erased)] = on_shard else {
        panic!("no device on each shard: {on_shard:?}")
    };
    // Only shard 2 has the device's row.
    assert_eq!(
        db.at(&urls[2])
            .number(&format!(
                "SELECT count() FROM {d}.callbacks_local WHERE adid = '{erased}'"
            ))
            .await,
        1
    );
    let forget =
        format!("/adjust/gdpr_forget_device?adid={erased}&app_token=appA&created_at=1404300000");
    assert_eq!(sink_a.get(&forget).await.status(), 200);

    // Done only once no row is left on any shard.
    let left = format!("SELECT count() FROM {t} WHERE adid = '{erased}'");
    let done = format!(
        "SELECT count() FROM {d}.callbacks_erasures FINAL WHERE device_id = '{erased}' AND done_at > 0"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let is_done = db.number(&done).await > 0;
        let rows = db.number(&left).await;
        assert!(!(is_done && rows > 0), "marked done with {rows} rows left");
        if is_done || Instant::now() > deadline {
            assert!(
                is_done,
                "not done; rows left {rows}; logs:\n{}\n{}",
                sink_a.logs(),
                sink_b.logs()
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        db.number(&format!("SELECT count() FROM {t} WHERE adid = '{stays}'"))
            .await,
        1,
        "the other device's row stays"
    );
    // A few more rounds with nothing to do start nothing.
    tokio::time::sleep(Duration::from_secs(6)).await;
    for url in &urls {
        let mutations = db
            .at(url)
            .query(&format!(
                "SELECT table, count() FROM system.mutations WHERE database = '{d}' GROUP BY table ORDER BY table FORMAT TabSeparated"
            ))
            .await;
        assert_eq!(mutations, "callbacks_local\t1\n", "mutations on {url}");
    }
    // One sink ran the rounds, the other none.
    let rounds = "adjust_sink_housekeeping_rounds_total{task=\"erasure\"}";
    let (ra, rb) = (sink_a.metric(rounds).await, sink_b.metric(rounds).await);
    assert!(
        (ra > 0.0) != (rb > 0.0),
        "erasure rounds: sink A {ra}, sink B {rb}"
    );
    let held = "adjust_sink_housekeeping_lease_held";
    assert_eq!(sink_a.metric(held).await + sink_b.metric(held).await, 1.0);
    let started = "adjust_sink_erasure_mutations_total";
    assert_eq!(
        sink_a.metric(started).await + sink_b.metric(started).await,
        1.0
    );
    for sink in [&sink_a, &sink_b] {
        assert!(!sink.logs().contains(&erased), "device id logged");
    }
    drop(sink_a);
    drop(sink_b);

    // An export brings the erased device's event back (to shard 2, through node 1). The import
    // checks through the Distributed table; a replica of shard 2 that has not fetched the new
    // part yet may be the one read, and then the sink's own check (at its start here, then
    // hourly) finds it: either way the erasure is requested again and carried out.
    let export = dir_a.path().join("export.csv");
    std::fs::write(
        &export,
        format!(
            "activity_kind,app_token,nonce,adid,created_at\nevent,appA,n-{erased},{erased},1404214665\n"
        ),
    )
    .unwrap();
    let import_dir = tempfile::tempdir().unwrap();
    let mut args = target_args(&db, "import");
    args.extend([
        "--data-dir",
        import_dir.path().to_str().unwrap(),
        export.to_str().unwrap(),
    ]);
    let (ok, out, err) = sink_cmd(&args);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("1 new"), "{out}");
    let sink = start(&urls[0], dir_a.path()).await;
    let back = wait_for(&db, &left, 0, Duration::from_secs(40)).await;
    assert_eq!(
        back,
        0,
        "the imported row stays; import said:\n{err}\nlog:\n{}",
        sink.logs()
    );
    let asked = db
        .number(&format!(
            "SELECT uniqExact(requested_at) FROM {d}.callbacks_erasures WHERE device_id = '{erased}'"
        ))
        .await;
    assert_eq!(asked, 2, "the erasure was requested again once");
    assert_eq!(
        db.number(&format!("SELECT count() FROM {t} WHERE adid = '{stays}'"))
            .await,
        1
    );
    drop(sink);
    db.query(&format!("DROP DATABASE IF EXISTS {d} ON CLUSTER {CLUSTER}"))
        .await;
}

/// `--insert-quorum 2` on the 2×2 cluster: a replica of shard 1 is SIGKILLed mid-load and kept
/// down past the quorum timeout. Inserts that cannot reach two replicas fail and are retried
/// (the rows wait in the log); every acknowledged callback is in the Distributed table once after
/// FINAL, and both replicas of each shard hold every row of their shard.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_quorum_two_a_replica_killed_mid_load_loses_nothing_and_inserts_are_retried() {
    if !enabled() {
        eprintln!("skipped: set ADJUST_SINK_TEST_CLUSTER=1 (scripts/test.sh does) to run it");
        return;
    }
    let _turn = CLUSTER_TURN.lock().await;
    let (urls, db) = fresh_cluster_db("quorum").await;
    let d = db.name.clone();
    migrate(&db);
    let dir = tempfile::tempdir().unwrap();
    let mut args = base_args(&db.at(&urls[0]), dir.path());
    args.extend(
        [
            "--cluster",
            CLUSTER,
            "--insert-quorum",
            "2",
            "--insert-quorum-timeout",
            "3s",
            "--batch-max-age",
            "200ms",
        ]
        .map(str::to_string),
    );
    let sink = Sink::spawn(args, dir.path().to_path_buf()).await;
    let load = tokio::spawn(blast_to(
        reqwest::Client::new(),
        sink.url("/adjust"),
        5_000,
        8,
        "q".to_string(),
    ));
    tokio::time::sleep(Duration::from_millis(700)).await;
    cluster_sh(&["kill-node", "2"]);
    tokio::time::sleep(Duration::from_secs(8)).await;
    let retried = sink
        .metric("adjust_sink_insert_errors_total{retriable=\"true\"}")
        .await;
    cluster_sh(&["start-node", "2"]);
    let (acked, statuses) = load.await.unwrap();
    assert!(acked.len() > 4_000, "{statuses:?}");
    assert!(
        retried > 0.0,
        "no insert failed for want of a quorum while node 2 was down; log:\n{}",
        sink.logs()
    );
    let t = format!("{d}.callbacks");
    let want = acked.len() as u64;
    let got = wait_for(
        &db,
        &format!("SELECT count() FROM {t} FINAL WHERE startsWith(nonce, 'q-')"),
        want,
        Duration::from_secs(120),
    )
    .await;
    assert!(got >= want, "{got} rows after FINAL, {want} acknowledged");
    let stored: HashSet<String> = db
        .query(&format!("SELECT nonce FROM {t} FINAL"))
        .await
        .lines()
        .map(str::to_owned)
        .collect();
    let missing = acked.iter().filter(|n| !stored.contains(*n)).count();
    assert_eq!(missing, 0, "acknowledged callbacks missing");
    assert_eq!(
        db.number(&format!("SELECT count() FROM {t} FINAL")).await,
        db.number(&format!("SELECT uniqExact(callback_id) FROM {t}"))
            .await,
        "a callback twice after FINAL"
    );
    // Both replicas of each shard hold their shard's rows.
    for (a, b) in [(0, 1), (2, 3)] {
        let count = |i: usize| {
            let node = db.at(&urls[i]);
            let sql = format!("SELECT count() FROM {d}.callbacks_local FINAL");
            async move { node.number(&sql).await }
        };
        let first = count(a).await;
        let other = wait_for(
            &db.at(&urls[b]),
            &format!("SELECT count() FROM {d}.callbacks_local FINAL"),
            first,
            Duration::from_secs(60),
        )
        .await;
        assert_eq!(first, other, "replicas of a shard differ");
    }
    eprintln!(
        "quorum 2: {} acknowledged of 5000 ({statuses:?}), {retried} inserts retried while node 2 was down",
        acked.len()
    );
    drop(sink);
    db.query(&format!("DROP DATABASE IF EXISTS {d} ON CLUSTER {CLUSTER}"))
        .await;
}

/// A cluster whose cold columns read names (made before the cold text was keyed by codes):
/// `migrate --cluster` re-points them on every node, rewrites the rows' keys on every replica,
/// creates the Distributed table again over the local tables, and a second run does nothing.
#[tokio::test(flavor = "multi_thread")]
async fn cold_text_keyed_by_names_is_rekeyed_on_every_node() {
    if !enabled() {
        eprintln!("skipped: set ADJUST_SINK_TEST_CLUSTER=1 (scripts/test.sh does)");
        return;
    }
    let (urls, db) = fresh_cluster_db("cluster_rekey").await;
    migrate(&db);
    let d = &db.name;
    // The earlier version's columns, and rows as it wrote them.
    db.query(&format!(
        "ALTER TABLE {d}.callbacks_local ON CLUSTER {CLUSTER} \
         MODIFY COLUMN sdk_version String ALIAS visitParamExtractString(cold, 'sdk_version'), \
         MODIFY COLUMN api_level Nullable(Int64) ALIAS toInt64OrNull(visitParamExtractString(cold, 'api_level'))"
    ))
    .await;
    let rows: Vec<String> = (1..=6)
        .map(|i| {
            format!(
                r#"(1404214700, '2014-07-01', {i}, 'install', '{{"api_level":"3{i}","sdk_version":"4.38.{i}"}}')"#
            )
        })
        .collect();
    db.query_with(
        &format!(
        "INSERT INTO {d}.callbacks (received_at, event_date, callback_id, activity_kind, cold) VALUES {}",
        rows.join(", ")
        ),
        "insert_distributed_sync=1",
    )
    .await;
    let read = format!(
        "SELECT callback_id, api_level, sdk_version FROM {d}.callbacks ORDER BY callback_id FORMAT TSV"
    );
    // Every replica has the rows before they are read (a read may go to either replica).
    for url in &urls {
        let rows = wait_for(
            &db.at(url),
            &format!("SELECT count() FROM {d}.callbacks_local"),
            3,
            Duration::from_secs(30),
        )
        .await;
        assert_eq!(rows, 3, "{url}");
    }
    let before = db.query(&read).await;
    assert!(before.starts_with("1\t31\t4.38.1\n"), "{before}");
    let out = migrate(&db);
    assert!(out.contains("keyed by codes"), "{out}");
    assert!(out.contains("created again"), "{out}");
    assert_eq!(db.query(&read).await, before, "rows read the same");
    let key = adjust_sink::row::cold::key_of("sdk_version");
    for url in &urls {
        let node = db.at(url);
        let named = wait_for(
            &node,
            &format!(
                "SELECT countIf(position(cold, '\"sdk_version\"') > 0) FROM {d}.callbacks_local"
            ),
            0,
            Duration::from_secs(30),
        )
        .await;
        assert_eq!(named, 0, "{url}: rows keyed by names remain");
        let expr = node
            .query(&format!(
                "SELECT default_expression FROM system.columns WHERE database = '{d}' \
                 AND table IN ('callbacks', 'callbacks_local') AND name = 'sdk_version' FORMAT TSVRaw"
            ))
            .await;
        assert!(
            !expr.is_empty() && expr.lines().all(|e| e.contains(key)),
            "{url}: {expr}"
        );
    }
    let again = migrate(&db);
    assert!(!again.contains("keyed by codes"), "{again}");
}
