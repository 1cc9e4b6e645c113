//! Nothing acknowledged is lost: SIGKILL, long outages, the disk budget, refused rows, a
//! damaged write-ahead log and one that cannot be written.

use std::io::Write;
use std::time::Duration;

use crate::support::{
    Db, PrivateClickHouse, Sink, assert_all_land, assert_exactly_once, blast, blast_query,
    blast_to, sink_cmd,
};

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_load_then_restart_delivers_every_acknowledged_callback_once() {
    let db = Db::fresh("sigkill").await;
    let dir = tempfile::tempdir().unwrap();
    let mut sink = Sink::start_in(&db, dir.path(), &[]).await;
    let load = tokio::spawn(blast_to(
        sink.client().clone(),
        sink.url("/adjust"),
        20_000,
        64,
        "k".into(),
    ));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while sink
        .metric("adjust_sink_requests_total{outcome=\"accepted\",route=\"global\"}")
        .await
        < 5_000.0
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sink.kill();
    let (ok, statuses) = load.await.unwrap();
    assert!(
        ok.len() >= 5_000 && ok.len() < 20_000,
        "the kill should land mid-load: {statuses:?}"
    );
    let restarted = Sink::start_in(&db, dir.path(), &[]).await;
    let landed = db.wait_rows(ok.len() as u64, Duration::from_secs(60)).await;
    assert!(
        landed >= ok.len() as u64,
        "{landed} of {} landed after restart; log:\n{}",
        ok.len(),
        restarted.logs()
    );
    // Give delivery a moment to finish what it read back, then check.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_exactly_once(&db, &ok).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn clickhouse_down_for_60s_during_load_loses_nothing() {
    crate::lifecycle::outage("outage60", 18134, "wal", Duration::from_secs(60)).await;
}

/// ClickHouse hangs mid-load (frozen: connections open, nothing answered) for several
/// `--insert-timeout`s: the sink keeps taking callbacks into its log, gives up each INSERT at the
/// timeout and retries it, and once the server runs again every acknowledged callback lands
/// exactly once (an INSERT that the server finishes after the sink gave up on it is collapsed
/// with its retry).
#[tokio::test(flavor = "multi_thread")]
async fn a_clickhouse_that_hangs_mid_load_delays_delivery_and_loses_nothing() {
    let ch = PrivateClickHouse::start("hang", 18137);
    let db = Db::fresh_on(&ch.url(), "hang").await;
    let sink = Sink::start(&db, &["--insert-timeout", "2s"]).await;
    let (before, statuses) = blast(&sink, 5_000, 32, "before").await;
    assert_eq!(before.len(), 5_000, "{statuses:?}");
    sink.wait_metric(
        "adjust_sink_rows_written_total",
        1.0,
        Duration::from_secs(30),
    )
    .await;
    ch.freeze();
    let frozen = std::time::Instant::now();
    let (during, statuses) = blast(&sink, 10_000, 32, "during").await;
    assert_eq!(during.len(), 10_000, "{statuses:?}");
    tokio::time::sleep(Duration::from_secs(7).saturating_sub(frozen.elapsed())).await;
    let timeouts = sink
        .metric("adjust_sink_insert_errors_total{retriable=\"true\"}")
        .await;
    ch.thaw();
    assert!(
        timeouts >= 1.0,
        "no INSERT timed out while the server hung:\n{}",
        sink.logs()
    );
    let acked: Vec<String> = before.into_iter().chain(during).collect();
    assert_all_land(&db, &sink, &acked, Duration::from_secs(90)).await;
    drop(sink);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spent_disk_budget_sheds_then_recovers() {
    let ch = PrivateClickHouse::start("budget", 18135);
    let db = Db::fresh_on(&ch.url(), "budget").await;
    ch.stop();
    let sink = Sink::start(&db, &["--disk-budget", "1MiB"]).await;
    let ok = fill_until_shed(&sink, 5_000, "budget").await;
    assert_eq!(sink.admin_status("/healthz").await, 200);
    assert!(sink.metric("adjust_sink_spool_bytes").await > 0.0);
    ch.resume();
    let landed = db.wait_rows(ok.len() as u64, Duration::from_secs(60)).await;
    assert_eq!(landed, ok.len() as u64);
    assert_exactly_once(&db, &ok).await;
    // The log is trimmed once acknowledged, and callbacks are taken again.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while sink.admin_status("/readyz").await != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "not ready again after recovery"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        sink.get("/adjust?activity_kind=click&nonce=after-recovery")
            .await
            .status(),
        200
    );
}

/// Sends `n` callbacks to a sink whose log cannot be delivered: some are taken, the rest get 503
/// (nothing else), a callback after them gets 503 with `Retry-After`, and the sink is not
/// ready. Returns the nonces answered 200.
async fn fill_until_shed(sink: &Sink, n: usize, tag: &str) -> Vec<String> {
    let (ok, statuses) = blast(sink, n, 32, tag).await;
    let shed = statuses.get(&503).copied().unwrap_or(0);
    assert!(!ok.is_empty() && shed > 0, "statuses: {statuses:?}");
    assert_eq!(ok.len() + shed, n, "only 200 or 503: {statuses:?}");
    // Shaped as the blast's callbacks and no shorter than any of them (the longest address, a
    // longer nonce): the room left after the last 503 may still hold a smaller callback.
    let resp = sink
        .get(&format!(
            "/adjust?{}",
            blast_query(&format!("{tag}-after"), 249)
        ))
        .await;
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().contains_key("retry-after"));
    let why = resp.text().await.unwrap_or_default();
    let (status, body) = sink.readyz().await;
    let written = sink.metric("adjust_sink_rows_written_total").await;
    assert_eq!(
        status, 503,
        "not ready while shedding ({why:?}): {body} (rows written {written}, statuses {statuses:?})"
    );
    ok
}

/// A tmpfs of `size` mounted on a fresh directory (the tests run as root), unmounted on drop.
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount");
        assert!(
            status.success(),
            "cannot mount a tmpfs (the tests run as root)"
        );
        SmallDisk(dir)
    }

    fn path(&self) -> &std::path::Path {
        self.0.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.0.path())
            .status();
    }
}

/// `--disk-budget` (4 GiB by default) on a 12 MiB disk: the log holds what the disk has room
/// for. With ClickHouse up, more callbacks than the disk holds pass (delivered segments kept for
/// `replay --since` make way); with ClickHouse down, the sink answers 503 once the disk is
/// nearly full instead of failing its writes, and everything it acknowledged lands afterwards.
#[tokio::test(flavor = "multi_thread")]
async fn a_disk_smaller_than_the_budget_is_shed_before_it_is_full_and_loses_nothing() {
    let disk = SmallDisk::mount("12m");
    let ch = PrivateClickHouse::start("smalldisk", 18136);
    let db = Db::fresh_on(&ch.url(), "smalldisk").await;
    let sink = Sink::start_in(&db, disk.path(), &[]).await;
    let room = sink.metric("adjust_sink_spool_budget_bytes").await;
    assert!(
        room > 0.0 && room < (12 << 20) as f64,
        "the log's room is the disk's, not the budget's: {room}"
    );

    // More than the disk holds, with ClickHouse taking it: every callback is taken.
    let (first, statuses) = blast(&sink, 60_000, 32, "roomy").await;
    assert_eq!(
        first.len(),
        60_000,
        "statuses: {statuses:?}\n{}",
        sink.logs()
    );
    let written = sink.metric("adjust_sink_queue_bytes_pushed_total").await;
    assert!(
        written > (12 << 20) as f64,
        "only {written} bytes went through the log"
    );
    assert_eq!(
        db.wait_rows(60_000, Duration::from_secs(60)).await,
        60_000,
        "{}",
        sink.logs()
    );

    // ClickHouse down: the log fills up to its room, then 503 and not ready.
    ch.stop();
    let second = fill_until_shed(&sink, 40_000, "full").await;
    let logs = sink.logs();
    assert!(
        !logs.contains("append failed") && !logs.contains("cannot record the batch"),
        "the disk ran full:\n{logs}"
    );

    ch.resume();
    let all: Vec<String> = first.into_iter().chain(second).collect();
    assert_all_land(&db, &sink, &all, Duration::from_secs(90)).await;
    assert_eq!(
        sink.get("/adjust?activity_kind=click&nonce=after-room")
            .await
            .status(),
        200
    );
    drop(sink);
}

/// The log's directory goes away under a running sink (a volume moved or unmounted): its open
/// segment could still be written, but a restart would not find it there, so callbacks get 503
/// with `Retry-After` and the sink is not ready (`/readyz` says why, `adjust_sink_wal_unwritable`
/// is 1), rather than acknowledging callbacks it would lose, or refusing them while ready. Back in place, the sink finds it with nothing sent, is ready again
/// and takes callbacks; every callback it acknowledged lands exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn a_log_that_cannot_be_written_is_not_ready_until_it_can_and_loses_nothing() {
    let db = Db::fresh("unwritable").await;
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start_in(&db, dir.path(), &[]).await;
    let (first, statuses) = blast(&sink, 300, 16, "before").await;
    assert_eq!(first.len(), 300, "{statuses:?}");
    assert_eq!(sink.metric("adjust_sink_wal_unwritable").await, 0.0);

    let wal = dir.path().join("wal");
    let away = dir.path().join("wal.away");
    std::fs::rename(&wal, &away).unwrap();
    // Nothing more is acknowledged: the open segment could still be written, but a restart
    // would not find what went there.
    let (second, statuses) = blast(&sink, 500, 16, "gone").await;
    assert!(second.is_empty(), "{statuses:?}");
    assert_eq!(statuses.get(&503), Some(&500), "{statuses:?}");
    let resp = sink
        .get("/adjust?activity_kind=click&nonce=gone-after")
        .await;
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().contains_key("retry-after"));
    assert_eq!(sink.metric("adjust_sink_wal_unwritable").await, 1.0);
    let (status, body) = sink.readyz().await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("cannot be written"), "{body}");
    // Nothing is sent meanwhile: it stays not ready.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sink.admin_status("/readyz").await, 503);

    std::fs::rename(&away, &wal).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while sink.admin_status("/readyz").await != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "not ready again:\n{}",
            sink.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sink.metric("adjust_sink_wal_unwritable").await, 0.0);
    let (third, statuses) = blast(&sink, 3_000, 16, "back").await;
    assert_eq!(third.len(), 3_000, "{statuses:?}\n{}", sink.logs());

    let all: Vec<String> = first.into_iter().chain(third).collect();
    assert_all_land(&db, &sink, &all, Duration::from_secs(60)).await;
    drop(sink);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_row_clickhouse_refuses_goes_to_the_rejects_table_and_the_rest_lands() {
    let db = Db::fresh("poison").await;
    crate::support::migrate(&db);
    // A server-side rule that refuses one value: the kind of row-level error ClickHouse raises.
    db.query(&format!(
        "ALTER TABLE {} ADD COLUMN guard UInt8 MATERIALIZED throwIf(app_name = 'poison')",
        db.table()
    ))
    .await;
    // One batch of several of the blocks an INSERT is sent in (1 MiB each), its rows out of the
    // table's order (clicks first, then installs), so the parts the batch is split into to find
    // the refused row are assembled from it block by block.
    let sink = Sink::start(&db, &["--batch-max-age", "5s"]).await;
    let (bulk, statuses) = blast(&sink, 4_000, 16, "bulk").await;
    assert_eq!(bulk.len(), 4_000, "{statuses:?}");
    for i in 0..20 {
        let app = if i == 7 { "poison" } else { "fine" };
        let q = format!(
            "/adjust?activity_kind=install&app_name={app}&nonce=p{i}&created_at=1700000000"
        );
        assert_eq!(sink.get(&q).await.status(), 200);
    }
    let landed = db.wait_rows(4_019, Duration::from_secs(60)).await;
    assert_eq!(landed, 4_019);
    let batches = sink.metric("adjust_sink_batch_bytes_count").await;
    let small = sink
        .metric("adjust_sink_batch_bytes_bucket{le=\"1048576\"}")
        .await;
    assert!(
        small < batches,
        "no batch over 1 MiB ({small} of {batches})"
    );
    let rejects = format!("{}.callbacks_rejects", db.name);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while db.number(&format!("SELECT count() FROM {rejects}")).await < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "no reject recorded; log:\n{}",
            sink.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = db
        .query(&format!(
            "SELECT error, row_json FROM {rejects} FORMAT JSONEachRow"
        ))
        .await;
    let row: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert!(row["error"].as_str().unwrap().contains("throwIf"), "{row}");
    let stored: serde_json::Value =
        serde_json::from_str(row["row_json"].as_str().unwrap()).unwrap();
    assert_eq!(stored["nonce"], "p7");
    assert_eq!(stored["app_name"], "poison");
    assert_eq!(
        db.number(&format!(
            "SELECT count() FROM {} WHERE nonce = 'p7'",
            db.table()
        ))
        .await,
        0
    );
    assert_eq!(
        sink.metric("adjust_sink_rows_rejected_total{reason=\"constraint\"}")
            .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_at_the_end_of_the_log_is_cut_and_every_good_record_lands() {
    let db = Db::fresh("torn").await;
    let dir = tempfile::tempdir().unwrap();
    // First life: ClickHouse unreachable, so everything stays in the log.
    let mut offline = Sink::start_offline(&db, dir.path()).await;
    let (ok, statuses) = blast(&offline, 300, 8, "torn").await;
    assert_eq!(ok.len(), 300, "{statuses:?}");
    assert!(offline.terminate(Duration::from_secs(20)).success());
    // Damage: garbage appended to the newest non-empty segment, as a torn write leaves.
    let wal = offline.data_dir.join("wal");
    let mut segments: Vec<_> = std::fs::read_dir(&wal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "wal") && std::fs::metadata(p).unwrap().len() > 0
        })
        .collect();
    segments.sort();
    let last = segments.last().expect("a segment with records");
    let mut f = std::fs::OpenOptions::new().append(true).open(last).unwrap();
    f.write_all(b"AJWL\x10\x00\x00\x00garbage from a torn write")
        .unwrap();
    drop(f);
    // Second life: starts, cuts the tail, counts it, delivers the rest.
    let sink = Sink::start_in(&db, dir.path(), &[]).await;
    let landed = db.wait_rows(300, Duration::from_secs(30)).await;
    assert_eq!(landed, 300, "log:\n{}", sink.logs());
    assert_exactly_once(&db, &ok).await;
    assert_eq!(
        sink.metric("adjust_sink_wal_damaged_total{kind=\"torn_tail\"}")
            .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn check_shows_the_backlog_and_replay_delivers_it() {
    let db = Db::fresh("replay").await;
    let dir = tempfile::tempdir().unwrap();
    let mut offline = Sink::start_offline(&db, dir.path()).await;
    let (ok, _) = blast(&offline, 200, 8, "replay").await;
    assert_eq!(ok.len(), 200);
    assert!(offline.terminate(Duration::from_secs(20)).success());

    let bin = env!("CARGO_BIN_EXE_adjust-sink");
    let dir_arg = dir.path().to_str().unwrap();
    let common = db.with_data_dir(dir_arg);
    let check = std::process::Command::new(bin)
        .arg("check")
        .args(common)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(report.contains("200 record(s) pending"), "{report}");
    assert!(
        report.contains("  filesystem: ") && report.contains(" bytes free "),
        "{report}"
    );
    assert!(
        report.contains("run `adjust-sink migrate`"),
        "the table does not exist yet: {report}"
    );
    assert!(!check.status.success());

    let replay = std::process::Command::new(bin)
        .arg("replay")
        .args(common)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&replay.stdout);
    assert!(
        replay.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    assert!(out.contains("replayed 200 rows"), "{out}");
    assert_exactly_once(&db, &ok).await;

    let check = std::process::Command::new(bin)
        .arg("check")
        .args(common)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{report}");
    assert!(report.contains("0 record(s) pending"), "{report}");
    assert!(report.contains("the table has every column"), "{report}");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "cp -a {} {}",
        from.display(),
        to.display()
    );
}

/// ClickHouse restored from a snapshot taken before a load has lost 5,000 acknowledged
/// callbacks; `replay --since` (with the sink still running on its data directory) brings every
/// one back, exactly once after FINAL, and a second replay changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn replay_since_restores_what_a_restored_clickhouse_lost_exactly_once() {
    let ch = PrivateClickHouse::start("restore", 18147);
    let db = Db::fresh_on(&ch.url(), "restore").await;
    crate::support::migrate(&db);
    // Snapshot of the server's data directory, server stopped.
    ch.stop();
    let data =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/clickhouse-restore/data");
    let snapshot = tempfile::tempdir().unwrap();
    let snap = snapshot.path().join("data");
    copy_dir(&data, &snap);
    ch.resume();

    let before = adjust_sink::clock::unix_now() - 1;
    let since = adjust_sink::commands::replay::format_time(before);
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start_in(&db, dir.path(), &["--keep-delivered", "1h"]).await;
    let (ok, statuses) = blast(&sink, 5_000, 64, "restore").await;
    assert_eq!(ok.len(), 5_000, "{statuses:?}");
    assert_eq!(db.wait_rows(5_000, Duration::from_secs(60)).await, 5_000);
    // Let the sink acknowledge the last batch in its log.
    tokio::time::sleep(Duration::from_secs(1)).await;

    // The restore: the 5,000 are gone from ClickHouse.
    ch.stop();
    std::fs::remove_dir_all(&data).unwrap();
    copy_dir(&snap, &data);
    ch.resume();
    let t = db.table();
    assert_eq!(db.number(&format!("SELECT count() FROM {t}")).await, 0);

    let dir_arg = dir.path().to_str().unwrap();
    let common = db.with_data_dir(dir_arg);
    // check shows the window kept for replay --since.
    let (_, report, _) = sink_cmd(&[&["check"][..], &common].concat());
    assert!(report.contains("0 record(s) pending"), "{report}");
    assert!(
        report.contains("kept for replay --since: 5000 delivered record(s)"),
        "{report}"
    );
    // The sink keeps running on the directory: replay --since needs no lock.
    for round in 0..2 {
        let started = std::time::Instant::now();
        let (success, out, err) =
            sink_cmd(&[&["replay", "--since", since.as_str()][..], &common].concat());
        assert!(success, "{out}\n{err}");
        assert!(
            out.contains("replayed 5000 rows acknowledged since"),
            "{out}"
        );
        eprintln!(
            "replay --since round {round}: {} in {:.2}s",
            out.trim(),
            started.elapsed().as_secs_f64()
        );
        assert_exactly_once(&db, &ok).await;
        assert_eq!(
            db.number(&format!("SELECT count() FROM {t} FINAL")).await,
            5_000
        );
    }
    // The running sink's log did not move: nothing pending, nothing re-sent by it.
    assert!(
        sink.logs().lines().all(|l| !l.contains("ERROR")),
        "{}",
        sink.logs()
    );
    // A duration back from now works as well (nothing since a minute in the future).
    let (success, out, err) = sink_cmd(&[&["replay", "--since", "0s"][..], &common].concat());
    assert!(success, "{out}\n{err}");
    assert!(out.contains("replayed 0 rows"), "{out}");
}

/// A mistyped `--data-dir`: `replay` (with `--since` or not) says there is no log there and
/// creates nothing, and `check` says there is none instead of showing an empty one.
#[test]
fn replay_and_check_say_so_when_the_data_directory_holds_no_log() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-dir");
    let dir = missing.to_str().unwrap();
    // No ClickHouse is needed to find that out.
    let common = ["--data-dir", dir, "--clickhouse-url", "http://127.0.0.1:1"];
    for args in [&["replay"][..], &["replay", "--since", "1h"][..]] {
        let (success, out, err) = sink_cmd(&[args, &common[..]].concat());
        assert!(!success, "{args:?}: {out}\n{err}");
        assert!(err.contains("holds no write-ahead log"), "{args:?}: {err}");
        assert!(!missing.exists(), "{args:?} created {dir}");
    }
    let (success, out, err) = sink_cmd(&[&["check"][..], &common[..]].concat());
    assert!(!success, "ClickHouse does not answer: {out}\n{err}");
    assert!(out.contains("write-ahead log: none"), "{out}");
    assert!(!out.contains("segment(s)"), "{out}");
    assert!(!missing.exists(), "check created {dir}");
}
