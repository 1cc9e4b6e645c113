//! The daily rollups count each activity once, against the real ClickHouse: 1,000 installs, each
//! with a purchase, every activity sent to the global callback *and* to its trigger's URL, a
//! tenth of them a third time later (Adjust's retry); then an `import` of 100 activities the
//! callbacks missed. After each step `installs_daily` and `revenue_daily` give the exact answer
//! of the per-activity views (distinct `callback_id`, latest copy) per day, app, network,
//! campaign and country. On 18.16 here; with `ADJUST_SINK_TEST_CLUSTER=1` also through the local
//! 2×2 cluster (`deploy/local/cluster.sh`).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Db, Sink, base_args};

const APP: &str = "r0llupapp001";
/// 2024-09-01 00:00:00 UTC.
const D1: u32 = 1_725_148_800;
const DAY: u32 = 86_400;
const TRACKERS: &[&str] = &[
    "Moloco::Q3 Launch::A::1",
    "Unity Ads::Playables::Puzzle::v3",
    "Organic",
    "Liftoff::SKAN_DE (77)::",
];
const COUNTRIES: &[&str] = &["de", "us", "fr"];
/// How long after an INSERT returns its rows are in the rollups (documented in docs/views.md):
/// the materialized view is part of the INSERT, so no more than the time the test needs to see
/// it.
const FRESHNESS: Duration = Duration::from_secs(10);

/// Activity `i`: an install (even `kind`) or its purchase, as query pairs.
fn activity(i: u32, purchase: bool) -> Vec<(&'static str, String)> {
    let at = D1 + (i % 5) * DAY + i;
    let mut p = vec![
        (
            "activity_kind",
            if purchase { "event" } else { "install" }.to_string(),
        ),
        ("app_token", APP.to_string()),
        ("app_name", "RollupTown".to_string()),
        (
            "nonce",
            format!("{}{i:05}", if purchase { "p" } else { "i" }),
        ),
        ("adid", format!("{i:032x}")),
        ("created_at", at.to_string()),
        ("installed_at", (D1 + (i % 5) * DAY).to_string()),
        (
            "tracker_name",
            TRACKERS[i as usize % TRACKERS.len()].to_string(),
        ),
        (
            "country",
            COUNTRIES[i as usize % COUNTRIES.len()].to_string(),
        ),
        ("environment", "production".to_string()),
    ];
    if purchase {
        let currency = if i.is_multiple_of(3) { "USD" } else { "EUR" };
        p.extend([
            ("event", "pur4as".to_string()),
            ("event_name", "purchase".to_string()),
            ("revenue_float", format!("{}.{:02}", i % 50, i % 100)),
            ("currency", currency.to_string()),
            ("reporting_revenue", format!("{}.{:02}", i % 40, i % 97)),
        ]);
    }
    p
}

fn query(pairs: &[(&str, String)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// Sends activities `ids` (install and purchase) to `paths` (`/adjust`, `/adjust/<trigger>`).
async fn send(sink: &Sink, ids: impl Iterator<Item = u32>, to_trigger: bool) -> u64 {
    let mut requests = Vec::new();
    for i in ids {
        for purchase in [false, true] {
            let q = query(&activity(i, purchase));
            let trigger = if purchase { "event" } else { "install" };
            requests.push(format!("/adjust?{q}"));
            if to_trigger {
                requests.push(format!("/adjust/{trigger}?{q}"));
            }
        }
    }
    let n = requests.len() as u64;
    use futures_util::StreamExt;
    futures_util::stream::iter(requests)
        .for_each_concurrent(16, |path| async move {
            let status = sink.get(&path).await.status();
            assert_eq!(status, 200, "{path}");
        })
        .await;
    n
}

/// The installs per day, app, network, campaign and country: from the rollup, and the exact
/// answer from the `installs` view.
fn installs_queries(d: &str) -> (String, String) {
    let keys = "day, app_token, network_name, campaign_name, country";
    (
        format!(
            "SELECT {keys}, sum(installs) FROM {d}.installs_daily \
             GROUP BY {keys} ORDER BY {keys}"
        ),
        format!(
            "SELECT event_date AS day, app_token, network_name, campaign_name, country, count() \
             FROM {d}.installs WHERE environment != 'sandbox' GROUP BY {keys} ORDER BY {keys}"
        ),
    )
}

/// The purchases and their revenue per day, app, event, currency, network, campaign and
/// country: from the rollup, and the exact answer from the `events` view.
fn revenue_queries(d: &str) -> (String, String) {
    let keys = "day, app_token, event, currency, network_name, campaign_name, country";
    (
        format!(
            "SELECT {keys}, sum(events), round(sum(revenue), 6), round(sum(reporting_revenue), 6) \
             FROM {d}.revenue_daily WHERE activity_kind = 'event' GROUP BY {keys} ORDER BY {keys}"
        ),
        format!(
            "SELECT event_date AS day, app_token, event, currency, network_name, campaign_name, \
             country, count(), round(sum(ifNull(revenue_float, 0)), 6), \
             round(sum(ifNull(reporting_revenue, 0)), 6) \
             FROM {d}.events WHERE environment != 'sandbox' GROUP BY {keys} ORDER BY {keys}"
        ),
    )
}

/// Waits (up to [`FRESHNESS`]) until the rollups give the views' answer and the installs number
/// `installs`; returns how long that took.
async fn rollups_agree(db: &Db, installs: u64) -> Duration {
    let started = Instant::now();
    let (inst, inst_exact) = installs_queries(&db.name);
    let (rev, rev_exact) = revenue_queries(&db.name);
    loop {
        let exact = db
            .number(&format!("SELECT count() FROM {}.installs", db.name))
            .await;
        let (a, b) = (db.query(&inst).await, db.query(&inst_exact).await);
        let (c, e) = (db.query(&rev).await, db.query(&rev_exact).await);
        if exact == installs && a == b && c == e {
            assert!(b.lines().count() > 20, "{b}");
            return started.elapsed();
        }
        if started.elapsed() > FRESHNESS {
            assert_eq!(exact, installs, "installs in the view");
            assert_eq!(a, b, "installs_daily against the installs view");
            assert_eq!(c, e, "revenue_daily against the events view");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The CSV export of activities `ids` (installs and purchases) for `import`.
fn export(ids: std::ops::Range<u32>) -> Vec<u8> {
    let columns = [
        "activity_kind",
        "app_token",
        "app_name",
        "nonce",
        "adid",
        "created_at",
        "installed_at",
        "tracker_name",
        "country",
        "environment",
        "event",
        "event_name",
        "revenue_float",
        "currency",
        "reporting_revenue",
    ];
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(columns).unwrap();
    for i in ids {
        for purchase in [false, true] {
            let a = activity(i, purchase);
            let row: Vec<String> = columns
                .iter()
                .map(|c| {
                    a.iter()
                        .find(|(k, _)| k == c)
                        .map_or(String::new(), |(_, v)| v.clone())
                })
                .collect();
            w.write_record(&row).unwrap();
        }
    }
    w.into_inner().unwrap()
}

fn import(db: &Db, cluster: Option<&str>, csv: &[u8]) {
    let mut args = vec![
        "import",
        "--clickhouse-url",
        &db.url,
        "--database",
        &db.name,
    ];
    if let Some(c) = cluster {
        args.extend(["--cluster", c]);
    }
    args.push("-");
    let mut child = Command::new(env!("CARGO_BIN_EXE_adjust-sink"))
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run adjust-sink import");
    child.stdin.take().unwrap().write_all(csv).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits (60 s at most) until the sink has written `n` rows; the rows it has written.
async fn written(sink: &Sink, n: u64) -> u64 {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let rows = sink.metric("adjust_sink_rows_written_total").await as u64;
        if rows >= n || std::time::Instant::now() >= deadline {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The scenario, on a database the sink `sink` writes to.
async fn duplicates_retries_and_an_import(db: &Db, sink: &Sink, cluster: Option<&str>) {
    // 1,000 activities (an install and a purchase each) to both URLs: 4,000 callbacks.
    let sent = send(sink, 0..1000, true).await;
    assert_eq!(sent, 4000);
    // Counted by the sink: the table's own count falls as merges collapse the copies.
    assert_eq!(written(sink, 4000).await, 4000);
    let took = rollups_agree(db, 1000).await;
    eprintln!("rollups agree {took:?} after the rows landed");

    // A tenth of them a third time, later (in other parts).
    let retried = send(sink, (0..1000).filter(|i| i % 10 == 3), false).await;
    assert_eq!(retried, 200);
    assert_eq!(written(sink, 4200).await, 4200);
    rollups_agree(db, 1000).await;
    // Callbacks as received are 2,100 installs; the rollup holds 1,000.
    let installs = format!("SELECT sum(installs) FROM {}.installs_daily", db.name);
    assert_eq!(db.number(&installs).await, 1000);
    let events = format!(
        "SELECT sum(events) FROM {}.revenue_daily WHERE activity_kind = 'event'",
        db.name
    );
    assert_eq!(db.number(&events).await, 1000);

    // 100 activities the callbacks missed, imported from an export.
    import(db, cluster, &export(1000..1100));
    let took = rollups_agree(db, 1100).await;
    eprintln!("rollups follow the import within {took:?}");
    assert!(took <= FRESHNESS);
    assert_eq!(db.number(&installs).await, 1100);

    // Merges change nothing. (On the cluster's replicated tables 18.16's `OPTIMIZE … FINAL` goes
    // through the replication log and is refused from a node that is not the leader.)
    if cluster.is_none() {
        db.query(&format!(
            "OPTIMIZE TABLE {}.installs_daily_activities FINAL",
            db.name
        ))
        .await;
        let rows = format!("SELECT count() FROM {}.installs_daily_activities", db.name);
        assert_eq!(db.number(&rows).await, 1100, "one row per install");
        rollups_agree(db, 1100).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rollups_count_each_activity_once_whatever_adjust_delivers() {
    let db = Db::fresh("rollups").await;
    let sink = Sink::start(&db, &[]).await;
    duplicates_retries_and_an_import(&db, &sink, None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rollups_count_each_activity_once_on_a_cluster() {
    if !std::env::var("ADJUST_SINK_TEST_CLUSTER").is_ok_and(|v| v == "1") {
        eprintln!("skipped: set ADJUST_SINK_TEST_CLUSTER=1 (scripts/test.sh does) to run it");
        return;
    }
    let _turn = crate::support::CLUSTER_TURN.lock().await;
    const CLUSTER: &str = "adjust_local";
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/local/cluster.sh");
    let urls = Command::new(&script).arg("urls").output().unwrap();
    let urls: Vec<String> = String::from_utf8_lossy(&urls.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(urls.len(), 4, "{urls:?}");
    let db = Db::fresh_on(&urls[0], "rollups_cluster").await;
    db.query(&format!(
        "DROP DATABASE IF EXISTS {} ON CLUSTER {CLUSTER}",
        db.name
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut args = base_args(&db, dir.path());
    args.extend(["--cluster".to_string(), CLUSTER.to_string()]);
    let sink = Sink::spawn(args, dir.path().to_path_buf()).await;
    duplicates_retries_and_an_import(&db, &sink, Some(CLUSTER)).await;
    drop(sink);
    db.query(&format!(
        "DROP DATABASE IF EXISTS {} ON CLUSTER {CLUSTER}",
        db.name
    ))
    .await;
}
