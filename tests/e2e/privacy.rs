//! Privacy by configuration: pseudonymized and dropped fields nowhere in raw form (ClickHouse,
//! write-ahead log, logs), erasure on `gdpr_forget_device` (also across a SIGKILL), and
//! `--retention` dropping old partitions on 18.16.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::support::{Db, Sink, base_args};

const KEY: &str = "test-pseudonym-key-1";

fn hmac_hex(key: &str, value: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(value.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every file under `dir`, recursively, with its bytes.
fn files(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

async fn start_private(db: &Db, dir: &Path, extra: &[&str]) -> Sink {
    let mut args = base_args(db, dir);
    args.extend(extra.iter().map(|s| s.to_string()));
    Sink::spawn_env(
        args,
        dir.to_path_buf(),
        &[("ADJUST_SINK_PSEUDONYM_KEY", KEY)],
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn pseudonymized_and_dropped_values_are_stored_nowhere_in_raw_form() {
    let db = Db::fresh("privacy_pseudo").await;
    let dir = tempfile::tempdir().unwrap();
    let mut sink = start_private(
        &db,
        dir.path(),
        &[
            "--pseudonymize",
            "adid",
            "--pseudonymize",
            "ip_address",
            "--drop",
            "user_agent",
            // The test client keeps its connection open; a graceful stop waits for it this long.
            "--shutdown-timeout",
            "5s",
        ],
    )
    .await;
    let clean = "/adjust/install?adid=RAWDEVICEONE&ip_address=203.0.113.77&user_agent=SecretBrowser%2F1&created_at=1404214665&app_token=apptok";
    // Broken percent-encoding (raw_query is kept), a repeated adid (goes to extra).
    let broken = "/adjust/event?adid=RAWDEVICETWO&adid=RAWDEVICETHREE&ip_address=198.51.100.23&user_agent=SecretAgent&event=tok1&created_at=1404214666&app_token=apptok&label=%zz";
    for q in [clean, broken] {
        assert_eq!(sink.get(q).await.status(), 200);
    }
    assert_eq!(db.wait_rows(2, Duration::from_secs(20)).await, 2);

    let row = db
        .row_where(
            &["adid", "ip_address", "user_agent", "source_ip", "raw_query"],
            "activity_kind = 'install'",
        )
        .await;
    assert_eq!(row["adid"], hmac_hex(KEY, "RAWDEVICEONE"));
    assert_eq!(row["ip_address"], hmac_hex(KEY, "203.0.113.77"));
    assert_eq!(row["user_agent"], "");
    assert_eq!(row["source_ip"], hmac_hex(KEY, "127.0.0.1"));
    assert_eq!(row["raw_query"], "");

    let row = db
        .row_where(
            &["adid", "user_agent", "raw_query", "extra.value"],
            "activity_kind = 'event'",
        )
        .await;
    assert_eq!(row["adid"], hmac_hex(KEY, "RAWDEVICETWO"));
    assert_eq!(row["user_agent"], "");
    let raw = row["raw_query"].as_str().unwrap();
    assert!(raw.contains("label=%zz"), "raw_query kept: {raw}");
    assert!(
        raw.contains(&format!("adid={}", hmac_hex(KEY, "RAWDEVICETWO"))),
        "{raw}"
    );
    assert!(
        row["extra.value"]
            .as_str()
            .unwrap()
            .contains(&hmac_hex(KEY, "RAWDEVICETHREE")),
        "{row:?}"
    );

    let secrets = [
        "RAWDEVICE",
        "203.0.113.77",
        "198.51.100.23",
        "SecretBrowser",
        "SecretAgent",
    ];
    // Nothing in ClickHouse…
    let everything = db
        .query(&format!("SELECT * FROM {} FORMAT JSONEachRow", db.table()))
        .await;
    for s in &secrets {
        assert!(!everything.contains(s), "{s} stored: {everything}");
    }
    // …nor in any file of the data directory (write-ahead log segments included)…
    sink.terminate(Duration::from_secs(20));
    let mut all = Vec::new();
    files(dir.path(), &mut all);
    assert!(all.iter().any(|(p, _)| p.contains("wal")), "{all:?}");
    for (path, bytes) in &all {
        for s in &secrets {
            assert!(!contains(bytes, s), "{s} in {path}");
        }
    }
    // …nor in the logs.
    let logs = sink.logs();
    for s in &secrets {
        assert!(!logs.contains(s), "{s} logged:\n{logs}");
    }
}

#[test]
fn pseudonymizing_without_a_key_refuses_to_start_and_says_what_to_set() {
    let out = Command::new(env!("CARGO_BIN_EXE_adjust-sink"))
        .args([
            "serve",
            "--pseudonymize",
            "adid",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .env_remove("ADJUST_SINK_PSEUDONYM_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ADJUST_SINK_PSEUDONYM_KEY"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_adjust-sink"))
        .args(["serve", "--pseudonymize", "created_at"])
        .env("ADJUST_SINK_PSEUDONYM_KEY", KEY)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("only text placeholders"));
}

/// A value as stored: its pseudonym under `key`, or itself.
fn stored(key: Option<&str>, value: &str) -> String {
    key.map_or_else(|| value.to_string(), |k| hmac_hex(k, value))
}

/// Two devices with an install and an event each, plus a rejected row each (as the sink would
/// store it, pseudonymized under `key`).
async fn two_devices(db: &Db, sink: &Sink, key: Option<&str>) {
    for (dev, gps) in [("devA", "gpsA"), ("devB", "gpsB")] {
        for (kind, t) in [("install", 1404214665), ("event", 1404214700)] {
            let q = format!(
                "/adjust/{kind}?adid={dev}&gps_adid={gps}&created_at={t}&event=ev1&app_token=apptok"
            );
            assert_eq!(sink.get(&q).await.status(), 200);
        }
    }
    assert_eq!(db.wait_rows(4, Duration::from_secs(20)).await, 4);
    for dev in ["devA", "devB"] {
        db.query(&format!(
            "INSERT INTO {}_rejects (rejected_at, callback_id, error, row_json, row) VALUES (now(), 1, 'refused', '{{\"adid\":\"{}\",\"activity_kind\":\"event\"}}', '')",
            db.table(),
            stored(key, dev)
        ))
        .await;
    }
}

/// (distinct callbacks, rejects) of a device: a restart after SIGKILL may deliver a batch again,
/// and 18.16 has no insert tokens, so copies are counted once.
async fn left_of(db: &Db, key: Option<&str>, dev: &str, gps: &str) -> (u64, u64) {
    let t = db.table();
    let (dev, gps) = (stored(key, dev), stored(key, gps));
    (
        db.number(&format!(
            "SELECT uniqExact(callback_id) FROM {t} WHERE adid = '{dev}' OR gps_adid = '{gps}'"
        ))
        .await,
        db.number(&format!(
            "SELECT count() FROM {t}_rejects WHERE position(row_json, '\"{dev}\"') > 0"
        ))
        .await,
    )
}

async fn wait_erased(db: &Db, key: Option<&str>, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if left_of(db, key, "devA", "gpsA").await == (0, 0) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

async fn assert_only_device_a_erased(db: &Db, key: Option<&str>) {
    assert_eq!(left_of(db, key, "devA", "gpsA").await, (0, 0));
    assert_eq!(left_of(db, key, "devB", "gpsB").await, (2, 1));
    let requests = db
        .query(&format!(
            "SELECT id_kind, device_id FROM {}_erasures GROUP BY id_kind, device_id ORDER BY id_kind FORMAT TabSeparated",
            db.table()
        ))
        .await;
    assert_eq!(
        requests,
        format!(
            "adid\t{}\ngps_adid\t{}\n",
            stored(key, "devA"),
            stored(key, "gpsA")
        )
    );
}

const FORGET: &str =
    "/adjust/gdpr_forget_device?adid=devA&gps_adid=gpsA&app_token=apptok&created_at=1404300000";

#[tokio::test(flavor = "multi_thread")]
async fn a_forget_callback_erases_the_device_within_three_intervals() {
    let db = Db::fresh("privacy_erase").await;
    let sink = Sink::start(
        &db,
        &["--erasure-interval", "2s", "--erasure-without-token"],
    )
    .await;
    two_devices(&db, &sink, None).await;
    let asked = Instant::now();
    assert_eq!(sink.get(FORGET).await.status(), 200);
    assert!(
        wait_erased(&db, None, Duration::from_secs(6)).await,
        "device A still stored after {:?}: {:?}; log:\n{}",
        asked.elapsed(),
        left_of(&db, None, "devA", "gpsA").await,
        sink.logs()
    );
    assert_only_device_a_erased(&db, None).await;
    // The requests are marked done.
    let deadline = Instant::now() + Duration::from_secs(10);
    while sink.metric("adjust_sink_erasures_done_total").await < 2.0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(sink.metric("adjust_sink_erasures_done_total").await, 2.0);
    assert_eq!(
        sink.metric("adjust_sink_erasure_oldest_pending_age_seconds")
            .await,
        0.0
    );
    let done = db
        .number(&format!(
            "SELECT count() FROM {}_erasures FINAL WHERE done_at > 0",
            db.table()
        ))
        .await;
    assert_eq!(done, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_erasure_survives_a_sigkill_before_it_runs() {
    // With the device ids pseudonymized: the request and the erasure use their stored form.
    let db = Db::fresh("privacy_kill").await;
    let dir = tempfile::tempdir().unwrap();
    let key = Some(KEY);
    let flags = [
        "--pseudonymize",
        "adid,gps_adid",
        "--erasure-without-token",
        "--erasure-interval",
    ];
    // A long interval: the first round runs at start, the next only after the kill.
    let mut sink = start_private(&db, dir.path(), &[&flags[..], &["1h"]].concat()).await;
    two_devices(&db, &sink, key).await;
    assert_eq!(sink.get(FORGET).await.status(), 200);
    sink.kill();
    assert!(left_of(&db, key, "devA", "gpsA").await.0 >= 2);
    let restarted = start_private(&db, dir.path(), &[&flags[..], &["2s"]].concat()).await;
    assert!(
        wait_erased(&db, key, Duration::from_secs(20)).await,
        "device A still stored: {:?}; log:\n{}",
        left_of(&db, key, "devA", "gpsA").await,
        restarted.logs()
    );
    assert_only_device_a_erased(&db, key).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_drops_old_partitions_on_legacy_servers() {
    let db = Db::fresh("privacy_retention").await;
    let dir = tempfile::tempdir().unwrap();
    // The test client keeps its connection open; a graceful stop waits for it this long.
    let mut sink = Sink::start_in(&db, dir.path(), &["--shutdown-timeout", "5s"]).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for (n, t) in [
        (1, 1404214665),
        (2, 1409000000),
        (3, now - 86_400),
        (4, now),
    ] {
        let q = format!("/adjust/session?nonce=r{n}&created_at={t}");
        assert_eq!(sink.get(&q).await.status(), 200);
    }
    assert_eq!(db.wait_rows(4, Duration::from_secs(20)).await, 4);
    let t = db.table();
    db.query(&format!(
        "INSERT INTO {t}_rejects (rejected_at, callback_id, error, row_json, row) VALUES (toDateTime(1404214665), 1, 'old', '{{}}', ''), (now(), 2, 'new', '{{}}', '')"
    ))
    .await;
    sink.terminate(Duration::from_secs(20));

    let sink = Sink::start_in(&db, dir.path(), &["--retention", "40"]).await;
    let old = format!(
        "SELECT (SELECT count() FROM {t} WHERE event_date < toDate('2015-01-01')) + (SELECT count() FROM {t}_rejects WHERE rejected_at < toDateTime('2015-01-01 00:00:00'))"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while db.number(&old).await > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let nonces = db
        .query(&format!(
            "SELECT DISTINCT nonce FROM {t} ORDER BY nonce FORMAT TabSeparated"
        ))
        .await;
    assert_eq!(nonces, "r3\nr4\n", "log:\n{}", sink.logs());
    let rejects = db
        .query(&format!(
            "SELECT DISTINCT error FROM {t}_rejects FORMAT TabSeparated"
        ))
        .await;
    assert_eq!(rejects, "new\n");
    let partitions = db
        .query(&format!(
            "SELECT DISTINCT partition FROM system.parts WHERE database = '{}' AND table = 'callbacks' AND active AND partition < '2015'",
            db.name
        ))
        .await;
    assert_eq!(partitions, "");
    // 201407 and 201408 of the callbacks, 201407 of the rejects.
    let dropped = "adjust_sink_retention_partitions_dropped_total";
    let deadline = Instant::now() + Duration::from_secs(5);
    while sink.metric(dropped).await < 3.0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sink.metric(dropped).await, 3.0);
}

/// `import` takes the same row settings as `serve` (here from the same environment): an export
/// holding the activities delivered as callbacks plus new ones adds only the new ones, stored
/// pseudonymized and without the dropped field, and an erasure reaches the imported rows.
#[tokio::test(flavor = "multi_thread")]
async fn import_applies_the_row_settings_of_serve_and_erasure_reaches_imported_rows() {
    let db = Db::fresh("privacy_import").await;
    let dir = tempfile::tempdir().unwrap();
    let env: [(&str, &str); 6] = [
        ("ADJUST_SINK_PSEUDONYM_KEY", KEY),
        ("ADJUST_SINK_PSEUDONYMIZE", "adid"),
        ("ADJUST_SINK_DROP", "user_agent"),
        ("ADJUST_SINK_PARAM_ALIAS", "device_id=adid"),
        ("ADJUST_SINK_ERASURE_INTERVAL", "2s"),
        ("ADJUST_SINK_ERASURE_WITHOUT_TOKEN", "true"),
    ];
    let mut args = base_args(&db, dir.path());
    args.extend(["--shutdown-timeout".to_string(), "5s".to_string()]);
    let sink = Sink::spawn_env(args, dir.path().to_path_buf(), &env).await;
    let created = 1_404_214_665u32;
    // Ten activities arrive as callbacks, the device id under the alias `device_id`.
    for i in 0..10 {
        let q = format!(
            "/adjust/install?device_id=RAWDEV{i:02}&user_agent=SecretAgent{i}&nonce=imp{i:02}&app_token=apptok&created_at={}",
            created + i
        );
        assert_eq!(sink.get(&q).await.status(), 200);
    }
    assert_eq!(db.wait_rows(10, Duration::from_secs(20)).await, 10);

    // The export holds those ten and two more; its columns are placeholder names.
    let mut csv = String::from("activity_kind,app_token,nonce,adid,user_agent,created_at\n");
    for i in 0..12 {
        csv += &format!(
            "install,apptok,imp{i:02},RAWDEV{i:02},SecretAgent{i},{}\n",
            created + i
        );
    }
    let export = dir.path().join("export.csv");
    std::fs::write(&export, csv).unwrap();
    let out = crate::support::import_command(&db, &dir.path().join("import"))
        .arg(&export)
        .envs(env)
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{summary}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        summary.contains(": 10 already present, 2 new, 0 refused"),
        "{summary}"
    );

    let t = db.table();
    assert_eq!(
        db.number(&format!("SELECT count() FROM {t} FINAL")).await,
        12
    );
    let imported = db
        .query(&format!(
            "SELECT adid, user_agent FROM {t} WHERE ingest_source = 'import' ORDER BY nonce FORMAT TabSeparated"
        ))
        .await;
    assert_eq!(
        imported,
        format!(
            "{}\t\n{}\t\n",
            hmac_hex(KEY, "RAWDEV10"),
            hmac_hex(KEY, "RAWDEV11")
        )
    );
    let everything = db
        .query(&format!("SELECT * FROM {t} FORMAT JSONEachRow"))
        .await;
    for secret in ["RAWDEV", "SecretAgent"] {
        assert!(
            !everything.contains(secret),
            "{secret} stored: {everything}"
        );
    }

    // A forget for a device only the export had: its imported row is erased too.
    let forget = "/adjust/gdpr_forget_device?adid=RAWDEV11&app_token=apptok&created_at=1404300000";
    assert_eq!(sink.get(forget).await.status(), 200);
    let pseudonym = hmac_hex(KEY, "RAWDEV11");
    let deadline = Instant::now() + Duration::from_secs(8);
    let left =
        format!("SELECT count() FROM {t} WHERE adid = '{pseudonym}' AND activity_kind = 'install'");
    while db.number(&left).await > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        db.number(&left).await,
        0,
        "the imported row was not erased; log:\n{}",
        sink.logs()
    );
    assert_eq!(
        db.number(&format!(
            "SELECT count() FROM {t} WHERE ingest_source = 'import'"
        ))
        .await,
        1,
        "only the erased device's imported row is gone"
    );
}

/// Rows of `adid` in `app` (distinct callbacks).
async fn rows_of(db: &Db, adid: &str, app: &str) -> u64 {
    db.number(&format!(
        "SELECT uniqExact(callback_id) FROM {} WHERE adid = '{adid}' AND app_token = '{app}'",
        db.table()
    ))
    .await
}

async fn wait_until(within: Duration, mut done: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if done().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    done().await
}

/// A forget POST with a 300,000-character identifier is answered (a 4xx would make Adjust
/// drop it) and refused at erasure time; a normal forget after it completes within three
/// intervals, and no log line carries either identifier.
#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_request_is_refused_and_the_next_completes_within_three_intervals() {
    let db = Db::fresh("privacy_hostile").await;
    let sink = Sink::start(
        &db,
        &["--erasure-interval", "2s", "--erasure-without-token"],
    )
    .await;
    let huge = "Z".repeat(300_000);
    let answer = sink
        .client()
        .post(sink.url("/adjust/gdpr_forget_device"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "adid={huge}&app_token=apptok&created_at=1404300000"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(db.wait_rows(1, Duration::from_secs(20)).await, 1);
    for (kind, t) in [
        ("install", 1404214665),
        ("event", 1404214700),
        ("session", 1404214800),
    ] {
        let q = format!("/adjust/{kind}?adid=devHOSTILE3&created_at={t}&app_token=apptok");
        assert_eq!(sink.get(&q).await.status(), 200);
    }
    assert_eq!(db.wait_rows(4, Duration::from_secs(20)).await, 4);
    let asked = Instant::now();
    let forget =
        "/adjust/gdpr_forget_device?adid=devHOSTILE3&app_token=apptok&created_at=1404300001";
    assert_eq!(sink.get(forget).await.status(), 200);
    let erased = wait_until(Duration::from_secs(6), async || {
        rows_of(&db, "devHOSTILE3", "apptok").await == 0
    })
    .await;
    assert!(
        erased,
        "rows of the device left after {:?}; log:\n{}",
        asked.elapsed(),
        sink.logs()
    );
    let refused = "adjust_sink_erasures_refused_total{reason=\"too_long\"}";
    assert!(
        wait_until(Duration::from_secs(6), async || sink.metric(refused).await
            == 1.0)
        .await,
        "{}",
        sink.logs()
    );
    let outcomes = db
        .query(&format!(
            "SELECT length(device_id), argMax(outcome, done_at) FROM {}_erasures GROUP BY device_id, id_kind, requested_at, app_token ORDER BY 1 FORMAT TabSeparated",
            db.table()
        ))
        .await;
    assert!(
        outcomes.contains("300000\trefused: identifier longer than 128 characters"),
        "{outcomes}"
    );
    let logs = sink.logs();
    assert!(!logs.contains("ZZZZZZZZZZZZZZZZ"), "the long id is logged");
    assert!(
        !logs.contains("devHOSTILE3"),
        "the device id is logged:\n{logs}"
    );
    assert!(!logs.contains("erasure round failed"), "{logs}");
}

/// A forget for app B erases the device's rows of app B (any spelling of the identifier, and
/// its rejected rows) and leaves those of app A.
#[tokio::test(flavor = "multi_thread")]
async fn a_forget_erases_the_rows_of_the_app_that_asked_in_every_spelling() {
    let db = Db::fresh("privacy_scope").await;
    let sink = Sink::start(
        &db,
        &["--erasure-interval", "2s", "--erasure-without-token"],
    )
    .await;
    let idfa = "D2CADB5F-410F-4963-AC0C-2A78534BDF1E";
    let md5 = db
        .query(&format!(
            "SELECT lower(hex(MD5('{idfa}'))) FORMAT TabSeparated"
        ))
        .await
        .trim()
        .to_string();
    let calls = [
        format!("/adjust/install?adid=devS&idfa={idfa}&app_token=appA&created_at=1404214665"),
        format!("/adjust/event?adid=devS&idfa={idfa}&app_token=appA&created_at=1404214700"),
        format!("/adjust/install?adid=devS&idfa={idfa}&app_token=appB&created_at=1404214666"),
        // Only the hash of the identifier, upper-case hex.
        format!(
            "/adjust/event?idfa_md5={}&app_token=appB&created_at=1404214701",
            md5.to_uppercase()
        ),
    ];
    for q in &calls {
        assert_eq!(sink.get(q).await.status(), 200);
    }
    assert_eq!(db.wait_rows(4, Duration::from_secs(20)).await, 4);
    let t = db.table();
    for app in ["appA", "appB"] {
        db.query(&format!(
            "INSERT INTO {t}_rejects (rejected_at, callback_id, error, row_json, row) VALUES (now(), 1, 'refused', '{{\"app_token\":\"{app}\",\"idfa\":\"{idfa}\"}}', '')"
        ))
        .await;
    }
    let forget =
        format!("/adjust/gdpr_forget_device?idfa={idfa}&app_token=appB&created_at=1404300000");
    assert_eq!(sink.get(&forget).await.status(), 200);
    let left_b = format!(
        "SELECT (SELECT uniqExact(callback_id) FROM {t} WHERE app_token = 'appB') + (SELECT count() FROM {t}_rejects WHERE position(row_json, 'appB') > 0)"
    );
    assert!(
        wait_until(Duration::from_secs(10), async || db.number(&left_b).await
            == 0)
        .await,
        "app B's rows left: {}; log:\n{}",
        db.number(&left_b).await,
        sink.logs()
    );
    assert_eq!(rows_of(&db, "devS", "appA").await, 2, "app A's rows stay");
    assert_eq!(
        db.number(&format!(
            "SELECT count() FROM {t}_rejects WHERE position(row_json, 'appA') > 0"
        ))
        .await,
        1
    );
    // The request names the app.
    let requests = db
        .query(&format!(
            "SELECT id_kind, app_token FROM {t}_erasures GROUP BY id_kind, app_token FORMAT TabSeparated"
        ))
        .await;
    assert_eq!(requests, "idfa\tappB\n");
}

/// Without a callback token a forget callback proves nothing, so nothing is erased and the
/// log says why; with one, the callbacks that carried it are honoured.
#[tokio::test(flavor = "multi_thread")]
async fn erasure_is_off_without_a_token_unless_enabled() {
    let db = Db::fresh("privacy_trust").await;
    let dir = tempfile::tempdir().unwrap();
    let mut sink = Sink::start_in(
        &db,
        dir.path(),
        &["--erasure-interval", "1s", "--shutdown-timeout", "5s"],
    )
    .await;
    let install = "/adjust/install?adid=devT&app_token=apptok&created_at=1404214665";
    assert_eq!(sink.get(install).await.status(), 200);
    let forget = "/adjust/gdpr_forget_device?adid=devT&app_token=apptok&created_at=1404300000";
    assert_eq!(sink.get(forget).await.status(), 200);
    assert_eq!(db.wait_rows(2, Duration::from_secs(20)).await, 2);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        rows_of(&db, "devT", "apptok").await,
        2,
        "erased without a token"
    );
    let logs = sink.logs();
    assert!(
        logs.contains("erasure is off: no --callback-token is set"),
        "{logs}"
    );
    sink.terminate(Duration::from_secs(20));

    // Every callback must carry the token now: the request is honoured.
    let token = "s3cret-token-0123456789";
    let sink = Sink::start_in(
        &db,
        dir.path(),
        &["--erasure-interval", "1s", "--callback-token", token],
    )
    .await;
    assert!(
        wait_until(Duration::from_secs(8), async || {
            rows_of(&db, "devT", "apptok").await == 0
        })
        .await,
        "log:\n{}",
        sink.logs()
    );
    assert!(sink.logs().contains("erasure is on"), "{}", sink.logs());
}

/// `--pseudonymize idfa` pseudonymizes every spelling of the identifier.
#[tokio::test(flavor = "multi_thread")]
async fn pseudonymizing_an_identifier_covers_its_whole_family() {
    let db = Db::fresh("privacy_family").await;
    let dir = tempfile::tempdir().unwrap();
    let sink = start_private(&db, dir.path(), &["--pseudonymize", "idfa"]).await;
    let q = "/adjust/install?idfa=RAWIDFA-1&idfa_upper=RAWIDFA-1&idfa_md5=rawmd5hash&idfa_md5_hex=RAWMD5HEX&created_at=1404214665";
    assert_eq!(sink.get(q).await.status(), 200);
    assert_eq!(db.wait_rows(1, Duration::from_secs(20)).await, 1);
    let row = db
        .row_where(
            &["idfa", "idfa_upper", "idfa_md5", "idfa_md5_hex"],
            "activity_kind = 'install'",
        )
        .await;
    assert_eq!(row["idfa"], hmac_hex(KEY, "RAWIDFA-1"));
    assert_eq!(row["idfa_upper"], hmac_hex(KEY, "RAWIDFA-1"));
    assert_eq!(row["idfa_md5"], hmac_hex(KEY, "rawmd5hash"));
    assert_eq!(row["idfa_md5_hex"], hmac_hex(KEY, "RAWMD5HEX"));
    let everything = db
        .query(&format!("SELECT * FROM {} FORMAT JSONEachRow", db.table()))
        .await;
    for raw in ["RAWIDFA", "rawmd5", "RAWMD5"] {
        assert!(!everything.contains(raw), "{raw} stored");
    }
}
