//! Erased stays erased: rows of a device from before its erasure request, brought back after
//! the erasure was done by `replay` (with and without `--since`), by `import` of an export, by
//! a round of the export follower, by a late callback or by a sink delivering its log long after
//! it received them, are found and erased again; an activity of the device after its request is
//! not a reason to.

use std::time::{Duration, Instant};

use crate::support::{Db, Sink, sink_cmd};

const FLAGS: [&str; 5] = [
    "--erasure-interval",
    "2s",
    "--erasure-without-token",
    "--shutdown-timeout",
    "5s",
];

/// Distinct callbacks of an `adid`.
async fn rows_of(db: &Db, adid: &str) -> u64 {
    db.number(&format!(
        "SELECT uniqExact(callback_id) FROM {} WHERE adid = '{adid}'",
        db.table()
    ))
    .await
}

/// Erasure requests made for an `adid` (one per time it was asked).
async fn requests_of(db: &Db, adid: &str) -> u64 {
    db.number(&format!(
        "SELECT uniqExact(requested_at) FROM {}_erasures WHERE device_id = '{adid}'",
        db.table()
    ))
    .await
}

/// Waits until `devA` has no row left; says what is left otherwise.
async fn assert_erased(db: &Db, sink: &Sink, within: Duration, after: &str) {
    let deadline = Instant::now() + within;
    while rows_of(db, "devA").await > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        rows_of(db, "devA").await,
        0,
        "devA's rows are back for good after {after}; log:\n{}",
        sink.logs()
    );
}

/// A sink whose ClickHouse is unreachable takes devA's install (its process environment `env`)
/// and stops, the row left in its log (the directory returned); then a sink with erasure on
/// (returned) carries out devA's erasure request, with none of devA's rows in the table yet.
async fn install_held_while_erased(db: &Db, env: &[(&str, &str)]) -> (tempfile::TempDir, Sink) {
    let held = tempfile::tempdir().unwrap();
    let mut b = Sink::start_offline_env(db, held.path(), env).await;
    let install = "/adjust/install?adid=devA&app_token=apptok&nonce=a1&created_at=1404214665";
    assert_eq!(b.get(install).await.status(), 200);
    b.terminate(Duration::from_secs(10));
    let a = Sink::start(db, &FLAGS).await;
    let forget = "/adjust/gdpr_forget_device?adid=devA&app_token=apptok&created_at=1404300000";
    assert_eq!(a.get(forget).await.status(), 200);
    a.wait_metric(
        "adjust_sink_erasures_done_total",
        1.0,
        Duration::from_secs(15),
    )
    .await;
    (held, a)
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_brought_back_by_replay_import_or_a_late_callback_are_erased_again() {
    let db = Db::fresh("erased_again").await;
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().to_str().unwrap().to_string();
    let before = adjust_sink::clock::unix_now() - 1;
    let mut sink = Sink::start_in(&db, dir.path(), &FLAGS).await;
    for q in [
        "/adjust/install?adid=devA&app_token=apptok&nonce=a1&created_at=1404214665",
        "/adjust/event?adid=devA&app_token=apptok&nonce=a2&created_at=1404214700&event=ev1",
        "/adjust/install?adid=devB&app_token=apptok&nonce=b1&created_at=1404214665",
    ] {
        assert_eq!(sink.get(q).await.status(), 200);
    }
    assert_eq!(db.wait_rows(3, Duration::from_secs(20)).await, 3);
    let forget = "/adjust/gdpr_forget_device?adid=devA&app_token=apptok&created_at=1404300000";
    assert_eq!(sink.get(forget).await.status(), 200);
    assert_erased(&db, &sink, Duration::from_secs(10), "the forget callback").await;
    sink.wait_metric(
        "adjust_sink_erasures_done_total",
        1.0,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(requests_of(&db, "devA").await, 1);

    // replay --since (the sink keeps running on its directory) re-delivers devA's callbacks.
    let since = adjust_sink::commands::replay::format_time(before);
    let common = db.with_data_dir(&dir_arg);
    let (ok, out, err) = sink_cmd(&[&["replay", "--since", since.as_str()][..], &common].concat());
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("replayed 4 rows acknowledged since"), "{out}");
    assert!(err.contains("erasure is requested again"), "{err}");
    assert_eq!(requests_of(&db, "devA").await, 2);
    assert_erased(&db, &sink, Duration::from_secs(15), "replay --since").await;
    assert_eq!(rows_of(&db, "devB").await, 1);
    // The request made again is carried out (marked done once no row is left).
    sink.wait_metric(
        "adjust_sink_erasures_done_total",
        2.0,
        Duration::from_secs(10),
    )
    .await;

    // An export with devA's activity after its request (and devB's): nothing to erase again.
    let t = db.table();
    let after = adjust_sink::clock::unix_now();
    let export = dir.path().join("later.csv");
    std::fs::write(
        &export,
        format!(
            "activity_kind,app_token,nonce,adid,created_at\nsession,apptok,a9,devA,{after}\nevent,apptok,b2,devB,{after}\n"
        ),
    )
    .unwrap();
    let import = |file: &std::path::Path| {
        let out = crate::support::import_command(&db, &dir.path().join("import"))
            .arg(file)
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert!(out.status.success(), "{stdout}\n{stderr}");
        stderr
    };
    let err = import(&export);
    assert!(!err.contains("requested again"), "{err}");
    assert_eq!(requests_of(&db, "devA").await, 2);
    assert_eq!(rows_of(&db, "devA").await, 1);

    // An export with devA's install from before its request: requested again, erased again
    // (with every other row of the device, as any erasure).
    let old = dir.path().join("old.csv");
    std::fs::write(
        &old,
        "activity_kind,app_token,nonce,adid,created_at\ninstall,apptok,a1,devA,1404214665\n",
    )
    .unwrap();
    let err = import(&old);
    assert!(err.contains("erasure is requested again"), "{err}");
    assert_eq!(requests_of(&db, "devA").await, 3);
    assert_erased(&db, &sink, Duration::from_secs(15), "import").await;
    sink.wait_metric(
        "adjust_sink_erasures_done_total",
        3.0,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        db.number(&format!(
            "SELECT uniqExact(callback_id) FROM {t} WHERE adid = 'devB'"
        ))
        .await,
        2
    );

    // A late callback (a retry of an activity from before the request): the sink's own check
    // finds it, at its next start here (then hourly).
    let late = "/adjust/install?adid=devA&app_token=apptok&nonce=a3&created_at=1404214800";
    assert_eq!(sink.get(late).await.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while rows_of(&db, "devA").await == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rows_of(&db, "devA").await, 1);
    assert!(sink.terminate(Duration::from_secs(10)).success());
    let sink = Sink::start_in(&db, dir.path(), &FLAGS).await;
    assert_erased(&db, &sink, Duration::from_secs(20), "a late callback").await;
    assert_eq!(requests_of(&db, "devA").await, 4);
    assert_eq!(
        sink.metric("adjust_sink_erasures_requested_again_total")
            .await,
        1.0
    );
    assert_eq!(rows_of(&db, "devB").await, 2);
}

/// `libfaketime`, which `scripts/test.sh` installs (Debian's `faketime`).
const FAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

#[tokio::test(flavor = "multi_thread")]
async fn rows_a_sink_delivers_long_after_their_receipt_are_checked_for_erased_devices() {
    assert!(
        std::path::Path::new(FAKETIME).exists(),
        "{FAKETIME} missing: install Debian's faketime package (scripts/test.sh does)"
    );
    let db = Db::fresh("erased_late").await;
    // Sink B took devA's install 20 minutes ago (its clock set back), while its ClickHouse was
    // unreachable: the row waits in its log. Meanwhile sink A carries out devA's erasure
    // request, and checks (at its first round) for rows that came back: none yet.
    let back = [
        ("LD_PRELOAD", FAKETIME),
        ("FAKETIME", "-20m"),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
    ];
    let (b_dir, a) = install_held_while_erased(&db, &back).await;

    // B comes back and delivers its log: the install lands 20 minutes after its receipt. B's
    // own erasure is off and A holds the lease (next check in an hour): B checks the rows it
    // landed late, and A's next round erases them.
    let b = Sink::start_in(&db, b_dir.path(), &[]).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while rows_of(&db, "devA").await == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rows_of(&db, "devA").await, 1, "B's log: {}", b.logs());
    assert_erased(&db, &a, Duration::from_secs(90), "a late delivery").await;
    assert_eq!(requests_of(&db, "devA").await, 2);
    assert_eq!(
        b.metric("adjust_sink_erasures_requested_again_total").await,
        1.0
    );
    assert!(
        b.logs().contains("rows landed long after their receipt"),
        "{}",
        b.logs()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_follower_round_that_loads_rows_of_an_erased_device_requests_its_erasure_again() {
    let db = Db::fresh("erased_follow").await;
    let exports = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let follow = [
        "--follow-exports",
        exports.path().to_str().unwrap(),
        "--follow-interval",
        "1s",
    ];
    let sink = Sink::start_in(&db, dir.path(), &[&FLAGS[..], &follow].concat()).await;
    let forget =
        "/adjust/gdpr_forget_device?adid=devA&app_token=apptokapptok&created_at=1404300000";
    assert_eq!(sink.get(forget).await.status(), 200);
    sink.wait_metric(
        "adjust_sink_erasures_done_total",
        1.0,
        Duration::from_secs(15),
    )
    .await;

    // Adjust's export of the app, with devA's install from before its request, lands in the
    // followed directory after the erasure.
    let csv = "{activity_kind},{app_token},{nonce},{adid},{created_at}\n\
        install,apptokapptok,a1,devA,1404214665\n\
        install,apptokapptok,b1,devB,1404214665\n";
    std::fs::write(
        exports
            .path()
            .join("apptokapptok_2014-07-01T110000_1a2b3c4d_0001.csv.gz"),
        crate::exports::gzip(csv.as_bytes()),
    )
    .unwrap();
    assert_eq!(
        db.wait_rows(2, Duration::from_secs(30)).await,
        2,
        "log:\n{}",
        sink.logs()
    );
    assert_erased(&db, &sink, Duration::from_secs(30), "a follower round").await;
    assert_eq!(requests_of(&db, "devA").await, 2);
    assert_eq!(rows_of(&db, "devB").await, 1);
    assert_eq!(
        sink.metric("adjust_sink_erasures_requested_again_total")
            .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replay_of_a_whole_log_with_rows_of_an_erased_device_requests_its_erasure_again() {
    let db = Db::fresh("erased_replay").await;
    // A sink took devA's install while its ClickHouse was unreachable, and stopped; another
    // carried out devA's erasure request.
    let (b_dir, a) = install_held_while_erased(&db, &[]).await;

    // `replay` of the first sink's whole log (no --since) delivers the install, and finds it.
    let b_arg = b_dir.path().to_str().unwrap().to_string();
    let (ok, out, err) = sink_cmd(&[&["replay"][..], &db.with_data_dir(&b_arg)].concat());
    assert!(ok, "{out}\n{err}");
    assert!(err.contains("erasure is requested again"), "{out}\n{err}");
    assert_eq!(requests_of(&db, "devA").await, 2);
    assert_erased(&db, &a, Duration::from_secs(15), "replay").await;
}
