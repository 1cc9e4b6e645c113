//! Following Adjust's cloud-storage exports on a real S3-compatible server (SeaweedFS, started
//! by `scripts/seaweedfs.sh`; its URL in `ADJUST_SINK_TEST_S3_ENDPOINT`, the test is skipped
//! without it): 3 apps × 6 hours of export files of 1,000 activities, 90 % of which arrived as
//! callbacks, plus a truncated gzip and a file with a foreign header. Two followers watch the
//! bucket; one is SIGKILLed mid-way and a third takes over. Every activity lands exactly once,
//! every good file is loaded once, the bad ones are marked failed with the reason.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use crate::support::{Db, Sink};

const APPS: [&str; 3] = ["aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc"];
const HOURS: u32 = 6;
const PER_FILE: u32 = 1_000;
/// 2024-03-01T00:00:00Z.
const H0: u32 = 1_709_251_200;

fn endpoint() -> Option<String> {
    std::env::var("ADJUST_SINK_TEST_S3_ENDPOINT").ok()
}

/// Activity `i` of app `app` in hour `hour`: a callback unless `i % 10 == 7`.
fn activity(app: &str, hour: u32, i: u32) -> [(&'static str, String); 5] {
    [
        ("activity_kind", "install".to_string()),
        ("app_token", app.to_string()),
        ("nonce", format!("{app}-{hour}-{i:04}")),
        ("adid", format!("{:032x}", hour * PER_FILE + i)),
        ("created_at", (H0 + hour * 3_600 + i).to_string()),
    ]
}

fn missed(i: u32) -> bool {
    i % 10 == 7
}

fn export_file(app: &str, hour: u32) -> Vec<u8> {
    let mut csv = String::from("{activity_kind},{app_token},{nonce},{adid},{created_at}\n");
    for i in 0..PER_FILE {
        let a = activity(app, hour, i);
        let cells: Vec<&str> = a.iter().map(|(_, v)| v.as_str()).collect();
        csv += &cells.join(",");
        csv.push('\n');
    }
    gzip(csv.as_bytes())
}

pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

async fn put(client: &reqwest::Client, url: String, body: Vec<u8>) {
    let r = client.put(&url).body(body).send().await.unwrap();
    assert!(r.status().is_success(), "PUT {url}: {}", r.status());
}

fn follower(db: &Db, endpoint: &str, bucket: &str, data_dir: &std::path::Path) -> Child {
    crate::support::import_command(db, data_dir)
        .args([
            "--batch-rows",
            "100",
            "--follow",
            "--follow-interval",
            "1s",
            "--follow-claim-ttl",
            "4s",
            &format!("s3://{bucket}/exports/"),
        ])
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_SKIP_SIGNATURE", "true")
        .env("AWS_REGION", "us-east-1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run adjust-sink import --follow")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn followers_load_every_export_file_once_through_a_kill() {
    let Some(endpoint) = endpoint() else {
        eprintln!("skipped: ADJUST_SINK_TEST_S3_ENDPOINT is not set (scripts/test.sh sets it)");
        return;
    };
    let db = Db::fresh("exports").await;
    let t = db.table();
    let imports = format!("{t}_imports");

    // 90 % of the activities arrive as callbacks.
    let mut sink = Sink::start(&db, &[]).await;
    let urls: Vec<String> = APPS
        .iter()
        .flat_map(|app| {
            (0..HOURS).flat_map(move |h| {
                (0..PER_FILE)
                    .filter(|i| !missed(*i))
                    .map(move |i| (*app, h, i))
            })
        })
        .map(|(app, h, i)| {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in activity(app, h, i) {
                q.append_pair(k, &v);
            }
            sink.url(&format!("/adjust?{}", q.finish()))
        })
        .collect();
    let callbacks = urls.len() as u64;
    assert_eq!(callbacks, 16_200);
    let client = sink.client().clone();
    let ok = futures_util::stream::iter(urls)
        .map(|u| {
            let c = client.clone();
            async move { c.get(u).send().await.map(|r| r.status().as_u16()) }
        })
        .buffer_unordered(64)
        .filter(|r| std::future::ready(matches!(r, Ok(200))))
        .count()
        .await as u64;
    assert_eq!(ok, callbacks);
    assert_eq!(
        db.wait_rows(callbacks, Duration::from_secs(60)).await,
        callbacks
    );
    sink.terminate(Duration::from_secs(20));

    // The bucket: 18 export files, a truncated gzip, a foreign header.
    let bucket = format!("e2e-exports-{}", std::process::id());
    let http = reqwest::Client::new();
    let r = http
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success(),
        "creating the bucket: {}",
        r.status()
    );
    for app in APPS {
        for h in 0..HOURS {
            let key = format!("exports/{app}_2024-03-01T{h:02}0000_1a2b3c4d_0001.csv.gz");
            put(
                &http,
                format!("{endpoint}/{bucket}/{key}"),
                export_file(app, h),
            )
            .await;
        }
    }
    let whole = export_file(APPS[0], 0);
    let truncated = whole[..whole.len() / 2].to_vec();
    let whole_rows = crate::support::whole_rows_of_cut_gzip(&truncated);
    assert!(whole_rows > 100, "{whole_rows}");
    put(
        &http,
        format!(
            "{endpoint}/{bucket}/exports/{}_2024-03-01T070000_1a2b3c4d_0001.csv.gz",
            APPS[0]
        ),
        truncated,
    )
    .await;
    put(
        &http,
        format!("{endpoint}/{bucket}/exports/other_2024-03-01T000000_ffff0000_0001.csv.gz"),
        gzip(b"order_id,amount\n1,2.50\n"),
    )
    .await;

    // Two followers; the first is killed once files are being loaded, a third takes over.
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut a = follower(&db, &endpoint, &bucket, dirs[0].path());
    let b = follower(&db, &endpoint, &bucket, dirs[1].path());
    let started = Instant::now();
    loop {
        let loaded = db
            .try_query(&format!(
                "SELECT count() FROM {imports} WHERE state = 'loaded'"
            ))
            .await
            .map(|s| s.trim().parse::<u64>().unwrap_or(0))
            .unwrap_or(0);
        let imported = db
            .number(&format!(
                "SELECT count() FROM {t} WHERE ingest_source = 'import'"
            ))
            .await;
        // Mid-way: a file done, rows of another landing.
        if loaded >= 1 && imported % 100 != 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no file loaded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.kill().unwrap();
    a.wait().unwrap();
    let c = follower(&db, &endpoint, &bucket, dirs[2].path());
    let started = Instant::now();
    loop {
        let done = db
            .number(&format!(
                "SELECT count() FROM {imports} WHERE state IN ('loaded', 'failed')"
            ))
            .await;
        if done >= 20 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{done} of 20 files done"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Another round of each survivor finds nothing new.
    tokio::time::sleep(Duration::from_secs(4)).await;
    for mut f in [b, c] {
        f.kill().unwrap();
        f.wait().unwrap();
    }

    // Every good file loaded once, the bad ones failed with the reason.
    let states = db
        .query(&format!(
            "SELECT state, count(), uniqExact(object_key, etag) FROM {imports} WHERE state != 'claimed' GROUP BY state ORDER BY state"
        ))
        .await;
    assert_eq!(states, "failed\t2\t2\nloaded\t18\t18\n", "{states}");
    let reasons = db
        .query(&format!(
            "SELECT reason FROM {imports} WHERE state = 'failed' ORDER BY object_key"
        ))
        .await;
    let reasons: Vec<&str> = reasons.lines().collect();
    assert!(reasons[0].contains("T070000"), "{reasons:?}");
    assert!(
        reasons[0].contains("deflate") || reasons[0].contains("unexpected end"),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("no activity_kind"), "{reasons:?}");
    // The truncated file's whole rows were read and accounted for (they are activities the
    // table already had, or has now); the foreign file had none.
    let counts = db
        .query(&format!(
            "SELECT rows_read, rows_new + rows_present FROM {imports} WHERE state = 'failed' ORDER BY object_key"
        ))
        .await;
    assert_eq!(counts, format!("{whole_rows}\t{whole_rows}\n0\t0\n"));

    // Every activity exactly once: no row twice even before merges.
    let all = u64::from(PER_FILE) * APPS.len() as u64 * u64::from(HOURS);
    assert_eq!(db.number(&format!("SELECT count() FROM {t}")).await, all);
    assert_eq!(
        db.number(&format!("SELECT uniqExact(nonce) FROM {t}"))
            .await,
        all
    );
    assert_eq!(
        db.number(&format!(
            "SELECT count() FROM {t} WHERE ingest_source = 'import'"
        ))
        .await,
        all - callbacks
    );
    // The manifest accounts for every row of every good file; the rows the callbacks missed are
    // its new rows, but for those the killed follower landed before it died (at most a file's).
    let (new, read) = {
        let r = db
            .query(&format!(
                "SELECT sum(rows_new), sum(rows_new + rows_present), sum(rows_read) FROM {imports} WHERE state = 'loaded'"
            ))
            .await;
        let v: Vec<u64> = r.split_whitespace().map(|n| n.parse().unwrap()).collect();
        assert_eq!(v[1], v[2], "{r}");
        (v[0], v[2])
    };
    assert_eq!(read, all);
    assert!(
        new <= all - callbacks && new + u64::from(PER_FILE) >= all - callbacks,
        "{new}"
    );
    // 90 % per app and hour came as callbacks.
    let per_hour = db
        .query(&format!(
            "SELECT app_token, toStartOfHour(created_at) AS h, countIf(ingest_source = 'callback'), count() FROM {t} FINAL GROUP BY app_token, h ORDER BY app_token, h"
        ))
        .await;
    let lines: Vec<&str> = per_hour.lines().collect();
    assert_eq!(lines.len(), 18, "{per_hour}");
    assert!(
        lines.iter().all(|l| l.ends_with("\t900\t1000")),
        "{per_hour}"
    );

    // reconcile --by hour says the same per app and hour.
    let out = Command::new(env!("CARGO_BIN_EXE_adjust-sink"))
        .args([
            "reconcile",
            "--clickhouse-url",
            &db.url,
            "--database",
            &db.name,
            "--by",
            "hour",
            "--app",
            APPS[1],
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let report = report.as_array().unwrap();
    assert_eq!(report.len(), HOURS as usize, "{report:?}");
    for r in report {
        assert_eq!(r["app_token"], APPS[1], "{r}");
        assert_eq!(r["from_callbacks"], 900, "{r}");
        assert_eq!(r["only_export"], 100, "{r}");
        assert_eq!(r["completeness"], 90.0, "{r}");
    }
}

/// `import --follow` on its own, watched like a sink: `--admin-listen` serves `/metrics` (the
/// `export_*` series) and `/healthz` while it follows a directory, and SIGTERM ends it cleanly
/// with its summary.
#[tokio::test(flavor = "multi_thread")]
async fn a_standalone_follower_serves_its_metrics() {
    let db = Db::fresh("exports_standalone").await;
    let exports = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let app = "dddddddddddd";
    let mut csv = String::from("activity_kind,app_token,adid,created_at\n");
    for i in 0..3u32 {
        csv += &format!("install,{app},{i:032x},{}\n", H0 + i);
    }
    std::fs::write(
        exports
            .path()
            .join(format!("{app}_2024-03-01T000000_1a2b3c4d_0001.csv")),
        csv,
    )
    .unwrap();
    std::fs::write(
        exports
            .path()
            .join(format!("{app}_2024-03-01T010000_1a2b3c4d_0001.csv.gz")),
        b"not gzip",
    )
    .unwrap();
    let [port] = crate::support::free_ports::<1>();
    let mut follower = crate::support::import_command(&db, data.path())
        .args([
            "--follow",
            "--follow-interval",
            "1s",
            "--admin-listen",
            &format!("127.0.0.1:{port}"),
            exports.path().to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run adjust-sink import --follow");
    let client = reqwest::Client::new();
    let scrape = |path: &'static str| {
        let client = client.clone();
        async move {
            let r = client
                .get(format!("http://127.0.0.1:{port}{path}"))
                .send()
                .await
                .ok()?;
            Some((r.status().as_u16(), r.text().await.ok()?))
        }
    };
    let started = Instant::now();
    let text = loop {
        if let Some((200, text)) = scrape("/metrics").await {
            let files = |state: &str| {
                crate::support::series_value(
                    &text,
                    &format!("adjust_sink_export_files_total{{state=\"{state}\"}}"),
                )
            };
            if files("loaded") == Some(1.0) && files("failed") == Some(1.0) {
                break text;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the follower's /metrics never showed both files done"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let value = |series: &str| crate::support::series_value(&text, series);
    assert_eq!(
        value("adjust_sink_export_rows_total{outcome=\"new\"}"),
        Some(3.0)
    );
    assert_eq!(value("adjust_sink_export_files_pending"), Some(0.0));
    assert!(value("adjust_sink_export_last_round_timestamp_seconds").unwrap() > 0.0);
    assert!(value("adjust_sink_export_rounds_total{outcome=\"completed\"}").unwrap() >= 1.0);
    assert_eq!(
        value("adjust_sink_export_rounds_total{outcome=\"failed\"}"),
        Some(0.0)
    );
    assert_eq!(scrape("/healthz").await, Some((200, "ok\n".to_string())));
    let head = client
        .head(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(db.wait_rows(3, Duration::from_secs(30)).await, 3);

    let status = Command::new("kill")
        .args(["-TERM", &follower.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while follower.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the follower did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = follower.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("3 new"), "{summary}");
    assert_eq!(
        scrape("/healthz").await,
        None,
        "the admin listener outlived the follower"
    );
}

/// `serve --follow-exports`: one deployment receives the callbacks and loads the exports; the
/// activities the callbacks missed are counted as new export rows on /metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_follows_the_exports_and_counts_missed_callbacks() {
    let Some(endpoint) = endpoint() else {
        eprintln!("skipped: ADJUST_SINK_TEST_S3_ENDPOINT is not set (scripts/test.sh sets it)");
        return;
    };
    let db = Db::fresh("exports_serve").await;
    let bucket = format!("e2e-serve-exports-{}", std::process::id());
    let http = reqwest::Client::new();
    let r = http
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success(),
        "creating the bucket: {}",
        r.status()
    );
    let dir = tempfile::tempdir().unwrap();
    let mut args = crate::support::base_args(&db, dir.path());
    let url = format!("s3://{bucket}/exports/");
    args.extend(["--follow-exports", &url, "--follow-interval", "1s"].map(String::from));
    let mut sink = Sink::spawn_env(
        args,
        dir.path().to_path_buf(),
        &[
            ("AWS_ENDPOINT_URL", &endpoint),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_SKIP_SIGNATURE", "true"),
            ("AWS_REGION", "us-east-1"),
        ],
    )
    .await;
    for i in (0..PER_FILE).filter(|i| !missed(*i)) {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in activity(APPS[2], 0, i) {
            q.append_pair(k, &v);
        }
        let r = sink.get(&format!("/adjust?{}", q.finish())).await;
        assert_eq!(r.status(), 200);
    }
    assert_eq!(db.wait_rows(900, Duration::from_secs(30)).await, 900);
    let key = format!("exports/{}_2024-03-01T000000_1a2b3c4d_0001.csv.gz", APPS[2]);
    put(
        &http,
        format!("{endpoint}/{bucket}/{key}"),
        export_file(APPS[2], 0),
    )
    .await;
    sink.wait_metric(
        "adjust_sink_export_files_total{state=\"loaded\"}",
        1.0,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        sink.metric("adjust_sink_export_rows_total{outcome=\"new\"}")
            .await,
        100.0
    );
    assert_eq!(
        sink.metric("adjust_sink_export_rows_total{outcome=\"present\"}")
            .await,
        900.0
    );
    assert_eq!(sink.metric("adjust_sink_export_files_pending").await, 0.0);
    assert_eq!(db.wait_rows(1_000, Duration::from_secs(30)).await, 1_000);

    // Adjust rewrites the file under its key with 50 more activities: a new ETag, loaded again,
    // only the 50 land.
    let mut csv = String::from("activity_kind,app_token,nonce,adid,created_at\n");
    for i in 0..PER_FILE + 50 {
        let a = activity(APPS[2], 0, i);
        let cells: Vec<&str> = a.iter().map(|(_, v)| v.as_str()).collect();
        csv += &cells.join(",");
        csv.push('\n');
    }
    put(
        &http,
        format!("{endpoint}/{bucket}/{key}"),
        gzip(csv.as_bytes()),
    )
    .await;
    sink.wait_metric(
        "adjust_sink_export_files_total{state=\"loaded\"}",
        2.0,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        sink.metric("adjust_sink_export_rows_total{outcome=\"new\"}")
            .await,
        150.0
    );
    assert_eq!(
        sink.metric("adjust_sink_export_rows_total{outcome=\"present\"}")
            .await,
        1_900.0
    );
    let t = db.table();
    assert_eq!(db.number(&format!("SELECT count() FROM {t}")).await, 1_050);
    sink.terminate(Duration::from_secs(20));
}

/// `serve --follow-exports DIR` on a database that does not exist yet, and no callback at all:
/// the sink creates the tables at start, so the follower's first round finds its manifest and
/// loads the exports (they waited for a first callback before).
#[tokio::test]
async fn serve_follows_a_directory_from_its_start_without_a_callback() {
    let db = Db::fresh("exports_fresh").await;
    let exports = tempfile::tempdir().unwrap();
    std::fs::write(
        exports.path().join(format!(
            "{}_2024-03-01T000000_1a2b3c4d_0001.csv.gz",
            APPS[1]
        )),
        export_file(APPS[1], 0),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut args = crate::support::base_args(&db, dir.path());
    args.extend(
        [
            "--follow-exports",
            exports.path().to_str().unwrap(),
            "--follow-interval",
            "1s",
        ]
        .map(String::from),
    );
    let sink = Sink::spawn(args, dir.path().to_path_buf()).await;
    assert_eq!(
        db.wait_rows(u64::from(PER_FILE), Duration::from_secs(30))
            .await,
        u64::from(PER_FILE),
        "log:\n{}",
        sink.logs()
    );
    assert!(
        !sink.logs().contains("export round failed"),
        "{}",
        sink.logs()
    );
    let rounds = "adjust_sink_export_rounds_total{outcome=";
    sink.wait_metric(
        &format!("{rounds}\"completed\"}}"),
        1.0,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(sink.metric(&format!("{rounds}\"failed\"}}")).await, 0.0);
    // The directory goes (moved or deleted): the rounds fail, and are counted so.
    drop(exports);
    sink.wait_metric(
        &format!("{rounds}\"failed\"}}"),
        1.0,
        Duration::from_secs(10),
    )
    .await;
    assert!(
        sink.logs().contains("export round failed"),
        "{}",
        sink.logs()
    );
}
