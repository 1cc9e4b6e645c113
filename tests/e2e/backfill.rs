//! Backfill and reconciliation against the real ClickHouse: 90 of 100 activities arrive as
//! callbacks, two exports (one gzip with `{braces}` in its header, one plain read from stdin
//! without) hold all 100; `import` adds the 10 missing ones typed as callbacks would be, a second
//! import adds nothing, and `reconcile` reports 90 %. Also SKAN 4 postbacks whose new columns are
//! filled from `sk_payload`.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::{Db, Sink};

const APP: &str = "bf11app0tok3";
/// 2024-03-01 00:00:00 UTC.
const D1: u32 = 1_709_251_200;

/// Activity `i`: an install or a purchase on one of three days, with a city holding a comma and
/// quotes for some.
fn activity(i: u32) -> Vec<(&'static str, String)> {
    let kind = if i.is_multiple_of(2) {
        "install"
    } else {
        "event"
    };
    let mut p = vec![
        ("activity_kind", kind.to_string()),
        ("app_token", APP.to_string()),
        ("nonce", format!("n{i:04}")),
        ("adid", format!("{i:032x}")),
        (
            "created_at",
            (D1 + (i % 2 + i / 50) * 86_400 + i).to_string(),
        ),
        ("tracker_name", "Moloco::Spring, \"Big\"::A::B".to_string()),
        ("city", format!("São \"Paulo\", SP {i}")),
        ("is_organic", "0".to_string()),
    ];
    if kind == "event" {
        p.push(("event", "abc123".into()));
        p.push(("revenue_float", format!("{}.25", i)));
        p.push(("currency", "EUR".into()));
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

/// The export columns, in an order and subset of the export's own choosing.
const COLUMNS: &[&str] = &[
    "created_at",
    "nonce",
    "activity_kind",
    "adid",
    "app_token",
    "city",
    "tracker_name",
    "is_organic",
    "event",
    "revenue_float",
    "currency",
];

fn csv_bytes(range: std::ops::Range<u32>, braces: bool, bad_line: bool) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    let header: Vec<String> = COLUMNS
        .iter()
        .map(|c| {
            if braces {
                format!("{{{c}}}")
            } else {
                c.to_string()
            }
        })
        .collect();
    w.write_record(&header).unwrap();
    for i in range {
        let a = activity(i);
        let row: Vec<String> = COLUMNS
            .iter()
            .map(|c| {
                a.iter()
                    .find(|(k, _)| k == c)
                    .map_or(String::new(), |(_, v)| v.clone())
            })
            .collect();
        w.write_record(&row).unwrap();
        if bad_line && i == range_start_plus(3) {
            // A row with too few fields: reported with its line number, never fatal.
            w.write_record(["1709251200", "broken"]).unwrap();
        }
    }
    w.into_inner().unwrap()
}

fn range_start_plus(n: u32) -> u32 {
    50 + n
}

fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_adjust-sink"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run adjust-sink");
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[tokio::test]
async fn import_backfills_what_callbacks_missed_and_reconcile_measures_it() {
    let db = Db::fresh("backfill").await;
    let mut sink = Sink::start(&db, &[]).await;
    let missed: Vec<u32> = (0..100).filter(|i| i % 10 == 7).collect();
    assert_eq!(missed.len(), 10);
    for i in (0..100).filter(|i| !missed.contains(i)) {
        let r = sink.get(&format!("/adjust?{}", query(&activity(i)))).await;
        assert_eq!(r.status(), 200);
    }
    assert_eq!(db.wait_rows(90, Duration::from_secs(20)).await, 90);
    sink.terminate(Duration::from_secs(20));

    let dir = tempfile::tempdir().unwrap();
    let gz_path = dir.path().join("export-1.csv.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&csv_bytes(0..50, true, false)).unwrap();
    std::fs::write(&gz_path, gz.finish().unwrap()).unwrap();
    let plain = csv_bytes(50..100, false, true);
    let gz_arg = gz_path.to_str().unwrap();
    let base = ["--clickhouse-url", &db.url, "--database", &db.name];
    let import = |stdin: &'static str, batch_rows: &'static str| {
        let mut a = vec!["import", "--batch-rows", batch_rows];
        a.extend(base);
        a.extend([gz_arg, stdin]);
        a
    };

    let out = run(&import("-", "5000"), Some(&plain));
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.starts_with("read 101 rows in ")
            && summary.contains(": 90 already present, 10 new, 0 refused by ClickHouse (kept in the rejects table), 1 bad lines"),
        "{summary}"
    );
    // The header is line 1, activity 50 line 2, …, activity 53 line 5, the bad row line 6.
    assert!(
        summary.contains("\n  -:6: 2 fields where the header has 11"),
        "{summary}"
    );
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(progress.contains("rows read ("), "{progress}");

    let t = db.table();
    assert_eq!(
        db.number(&format!("SELECT uniqExact(callback_id) FROM {t}"))
            .await,
        100
    );
    assert_eq!(
        db.number(&format!("SELECT count() FROM {t} FINAL")).await,
        100
    );
    assert_eq!(
        db.number(&format!(
            "SELECT count() FROM {t} WHERE ingest_source = 'import'"
        ))
        .await,
        10
    );
    let imported: Vec<String> = db
        .query(&format!(
            "SELECT nonce FROM {t} WHERE ingest_source = 'import' ORDER BY nonce"
        ))
        .await
        .lines()
        .map(str::to_owned)
        .collect();
    let want: Vec<String> = missed.iter().map(|i| format!("n{i:04}")).collect();
    assert_eq!(imported, want);
    assert_eq!(
        db.number(&format!(
            "SELECT count() FROM {t} WHERE ingest_source = 'callback'"
        ))
        .await,
        90
    );

    // An imported activity and a callback's are typed alike (97 imported, 95 a callback).
    let cols = [
        "activity_kind",
        "created_at",
        "event_date",
        "city",
        "network_name",
        "campaign_name",
        "is_organic",
        "revenue_float",
        "currency",
        "length(extra.key)",
        "raw_query",
    ];
    let got = db.row_where(&cols, "nonce = 'n0097'").await;
    assert_eq!(got["activity_kind"], "event");
    assert_eq!(got["created_at"], "2024-03-03 00:01:37");
    assert_eq!(got["event_date"], "2024-03-03");
    assert_eq!(got["city"], "São \"Paulo\", SP 97");
    assert_eq!(got["network_name"], "Moloco");
    assert_eq!(got["campaign_name"], "Spring, \"Big\"");
    assert_eq!(got["is_organic"], "0");
    assert_eq!(got["revenue_float"], "97.25");
    assert_eq!(got["currency"], "EUR");
    assert_eq!(got["length(extra.key)"], "0");
    assert_eq!(got["raw_query"], "");
    let callback = db.row_where(&cols, "nonce = 'n0095'").await;
    assert_eq!(callback["city"], "São \"Paulo\", SP 95");
    assert_eq!(callback["revenue_float"], "95.25");
    assert_eq!(callback["created_at"], "2024-03-03 00:01:35");

    // Again, in batches of 7 (a progress line after each): nothing new.
    let out = run(&import("-", "7"), Some(&plain));
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(progress.lines().count() >= 14, "{progress}");
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains(": 100 already present, 0 new, 0 refused by ClickHouse (kept in the rejects table), 1 bad lines"),
        "{summary}"
    );
    assert_eq!(db.number(&format!("SELECT count() FROM {t}")).await, 100);

    let mut args = vec!["reconcile"];
    args.extend(base);
    let table = String::from_utf8(run(&args, None).stdout).unwrap();
    let total: Vec<&str> = table.lines().last().unwrap().split_whitespace().collect();
    assert_eq!(total, ["total", "90", "10", "90.0%"], "{table}");
    // --app keeps only its apps, by day as by hour.
    for (app, want) in [
        (APP, ["total", "90", "10", "90.0%"]),
        ("otherapp0000", ["total", "0", "0", "100.0%"]),
    ] {
        let mut by_app = args.clone();
        by_app.extend(["--app", app]);
        let table = String::from_utf8(run(&by_app, None).stdout).unwrap();
        let total: Vec<&str> = table.lines().last().unwrap().split_whitespace().collect();
        assert_eq!(total, want, "{table}");
    }
    args.extend(["--format", "json", "--since", "2024-03-02"]);
    let json: serde_json::Value = serde_json::from_slice(&run(&args, None).stdout).unwrap();
    let rows = json.as_array().unwrap();
    // 2024-03-02: installs and purchases; 2024-03-03: purchases (all the missed ones are purchases).
    assert_eq!(rows.len(), 3, "{json}");
    for r in rows {
        let (cb, ex) = (
            r["from_callbacks"].as_u64().unwrap(),
            r["only_export"].as_u64().unwrap(),
        );
        let pct = r["completeness"].as_f64().unwrap();
        assert!(
            (pct - cb as f64 * 100.0 / (cb + ex) as f64).abs() < 1e-9,
            "{r}"
        );
        assert!(r["day"].as_str().unwrap() >= "2024-03-02");
    }
}

#[tokio::test]
async fn skan_4_postbacks_fill_their_columns_from_the_payload_unless_sent() {
    let db = Db::fresh("skan4").await;
    let mut sink = Sink::start(&db, &[]).await;
    let payload = r#"{"version":"4.0","ad-network-id":"su67r6k2v3.skadnetwork","source-identifier":"5239","source-domain":"news.example","transaction-id":"t-4","redownload":false,"fidelity-type":1,"coarse-conversion-value":"medium","postback-sequence-index":1,"did-win":true}"#;
    let only_payload = query(&[
        ("activity_kind", "sk_event".into()),
        ("nonce", "sk-a".into()),
        ("sk_payload", payload.into()),
    ]);
    let with_keys = query(&[
        ("activity_kind", "sk_event".into()),
        ("nonce", "sk-b".into()),
        ("sk_payload", payload.into()),
        ("sk_source_identifier", "17".into()),
        ("sk_coarse_conversion_value", "low".into()),
        ("sk_postback_sequence_index", "2".into()),
    ]);
    for q in [&only_payload, &with_keys] {
        assert_eq!(sink.get(&format!("/adjust?{q}")).await.status(), 200);
    }
    assert_eq!(db.wait_rows(2, Duration::from_secs(20)).await, 2);
    sink.terminate(Duration::from_secs(20));
    let cols = [
        "sk_source_identifier",
        "sk_source_domain",
        "sk_coarse_conversion_value",
        "sk_postback_sequence_index",
        "sk_transaction_id",
        "sk_network_id",
        "sk_version",
        "sk_redownload",
        "sk_fidelity_type",
        "sk_did_win",
        "ingest_source",
    ];
    let a = db.row_where(&cols, "nonce = 'sk-a'").await;
    assert_eq!(a["sk_source_identifier"], "5239");
    assert_eq!(a["sk_source_domain"], "news.example");
    assert_eq!(a["sk_coarse_conversion_value"], "medium");
    assert_eq!(a["sk_postback_sequence_index"], "1");
    assert_eq!(a["sk_transaction_id"], "t-4");
    assert_eq!(a["sk_network_id"], "su67r6k2v3.skadnetwork");
    assert_eq!(a["sk_version"], "4.0");
    assert_eq!(a["sk_redownload"], "0");
    assert_eq!(a["sk_fidelity_type"], "1");
    assert_eq!(a["sk_did_win"], "1");
    assert_eq!(a["ingest_source"], "callback");
    let b = db.row_where(&cols, "nonce = 'sk-b'").await;
    assert_eq!(b["sk_source_identifier"], "17");
    assert_eq!(b["sk_coarse_conversion_value"], "low");
    assert_eq!(b["sk_postback_sequence_index"], "2");
    assert_eq!(
        b["sk_source_domain"], "news.example",
        "not sent: from the payload"
    );
}

#[tokio::test]
async fn columns_of_your_own_get_typed_values_instead_of_extra() {
    let db = Db::fresh("own_columns").await;
    let flags = [
        "--column",
        "loyalty_tier:lowcard",
        "--column",
        "ltv_cents:int",
    ];
    let mut args = vec![
        "migrate",
        "--clickhouse-url",
        &db.url,
        "--database",
        &db.name,
    ];
    args.extend(flags);
    let out = String::from_utf8(run(&args, None).stdout).unwrap();
    assert!(out.contains("schema is up to date"), "{out}");
    let types = db
        .query(&format!(
            "SELECT name, type, default_kind FROM system.columns WHERE database = '{}' \
             AND table = 'callbacks' AND name IN ('loyalty_tier', 'ltv_cents') ORDER BY name",
            db.name
        ))
        .await;
    assert_eq!(
        types,
        "loyalty_tier\tString\tDEFAULT\nltv_cents\tNullable(Int64)\tDEFAULT\n"
    );
    let schema = String::from_utf8(
        run(
            &["schema", "--profile", "legacy", "--column", "ltv_cents:int"],
            None,
        )
        .stdout,
    )
    .unwrap();
    assert!(
        schema.contains("\n    ltv_cents Nullable(Int64) DEFAULT "),
        "{schema}"
    );

    let mut sink = Sink::start(&db, &flags).await;
    let good = "activity_kind=install&app_token=abc123&nonce=own1&loyalty_tier=gold&ltv_cents=1234&user_id=7";
    let bad = "activity_kind=install&app_token=abc123&nonce=own2&ltv_cents=lots";
    for q in [good, bad] {
        assert_eq!(sink.get(&format!("/adjust?{q}")).await.status(), 200);
    }
    assert_eq!(db.wait_rows(2, Duration::from_secs(20)).await, 2);
    sink.terminate(Duration::from_secs(20));
    let cols = ["loyalty_tier", "ltv_cents", "extra.key", "extra.value"];
    let g = db.row_where(&cols, "nonce = 'own1'").await;
    assert_eq!(g["loyalty_tier"], "gold");
    assert_eq!(g["ltv_cents"], "1234");
    assert_eq!(g["extra.key"], "['user_id']");
    let b = db.row_where(&cols, "nonce = 'own2'").await;
    assert!(b["ltv_cents"].is_null(), "{b:?}");
    assert_eq!(b["extra.key"], "['ltv_cents']");
    assert_eq!(b["extra.value"], "['lots']");
    assert_eq!(
        db.number(&format!(
            "SELECT count() FROM {} WHERE ltv_cents IS NULL",
            db.table()
        ))
        .await,
        1
    );
}

/// `import` delivers as `serve` does: a row ClickHouse refuses goes to the rejects table and every
/// other row lands, here in one batch spanning 150 months (more partitions than a modern server
/// takes in one INSERT by default, so the deliverer cuts it there).
#[tokio::test]
async fn import_isolates_a_refused_row_and_lands_rows_of_150_months() {
    let db = Db::fresh("backfill_refused").await;
    crate::support::migrate(&db);
    let t = db.table();
    // A server-side rule that refuses one value: the kind of row-level error ClickHouse raises.
    db.query(&format!(
        "ALTER TABLE {t} ADD COLUMN guard UInt8 MATERIALIZED throwIf(app_name = 'poison')"
    ))
    .await;
    let mut csv = String::from("activity_kind,app_token,app_name,nonce,created_at\n");
    // 2012-01-15 plus one month per row, 300 rows over 150 months.
    for i in 0..300u32 {
        let month = i % 150;
        let at = 1_326_585_600 + month * 2_629_746;
        let app = if i == 123 { "poison" } else { "fine" };
        csv += &format!("install,apptok,{app},n150m{i:03},{at}\n");
    }
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("months.csv");
    std::fs::write(&export, csv).unwrap();
    let data_dir = dir.path().join("data");
    let out = run(
        &[
            "import",
            "--clickhouse-url",
            &db.url,
            "--database",
            &db.name,
            "--data-dir",
            data_dir.to_str().unwrap(),
            export.to_str().unwrap(),
        ],
        None,
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains(": 0 already present, 299 new, 1 refused by ClickHouse"),
        "{summary}"
    );
    assert_eq!(
        db.number(&format!("SELECT uniqExact(callback_id) FROM {t}"))
            .await,
        299
    );
    assert_eq!(
        db.number(&format!("SELECT uniqExact(toYYYYMM(event_date)) FROM {t}"))
            .await,
        150
    );
    assert_eq!(
        db.number(&format!(
            "SELECT count() FROM {t} WHERE app_name = 'poison'"
        ))
        .await,
        0
    );
    let rejected = db
        .query(&format!(
            "SELECT row_json FROM {t}_rejects FORMAT TabSeparated"
        ))
        .await;
    assert_eq!(rejected.lines().count(), 1, "{rejected}");
    assert!(rejected.contains("poison"), "{rejected}");
}

/// A truncated gzip among the files: its whole rows before the cut land, the files after it are
/// imported, the summary names where it stopped, and the import exits non-zero at the end.
#[tokio::test]
async fn a_truncated_export_lands_its_whole_rows_and_the_next_files() {
    let db = Db::fresh("backfill_truncated").await;
    let t = db.table();
    let dir = tempfile::tempdir().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&csv_bytes(0..3_000, false, false)).unwrap();
    let whole = gz.finish().unwrap();
    let cut = &whole[..whole.len() * 3 / 5];
    let whole_rows = crate::support::whole_rows_of_cut_gzip(cut);
    assert!(whole_rows > 1_000 && whole_rows < 3_000, "{whole_rows}");
    let truncated = dir.path().join("truncated.csv.gz");
    std::fs::write(&truncated, cut).unwrap();
    let next = dir.path().join("next.csv");
    std::fs::write(&next, csv_bytes(5_000..5_010, false, false)).unwrap();

    let out = crate::support::import_command(&db, &dir.path().join("data"))
        .args(["--batch-rows", "1000"])
        .arg(&truncated)
        .arg(&next)
        .output()
        .unwrap();
    let (summary, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(!out.status.success(), "{summary}{stderr}");
    let read = whole_rows + 10;
    assert!(
        summary.starts_with(&format!("read {read} rows in "))
            && summary.contains(&format!(": 0 already present, {read} new, ")),
        "{summary}"
    );
    let at = format!(
        "{}:{}: cannot be read from here on (",
        truncated.display(),
        whole_rows + 2
    );
    assert!(summary.contains(&at), "{summary}");
    assert!(
        stderr.contains("1 export file(s) could not be imported whole"),
        "{stderr}"
    );
    assert_eq!(db.number(&format!("SELECT count() FROM {t}")).await, read);
    assert_eq!(
        db.number(&format!("SELECT uniqExact(nonce) FROM {t}"))
            .await,
        read
    );
    assert_eq!(
        db.number(&format!("SELECT count() FROM {t} WHERE nonce >= 'n5000'"))
            .await,
        10
    );

    // A misspelt file stops the import before anything is read.
    let out = crate::support::import_command(&db, &dir.path().join("data"))
        .arg(&next)
        .arg(dir.path().join("missing.csv"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("missing.csv"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // So does standard input named twice (the second read would find nothing).
    let out = crate::support::import_command(&db, &dir.path().join("data"))
        .args(["-", "-"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("named more than once"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// `--retention` holds on the import paths: activities older than it are counted, not loaded,
/// by `import` and by `serve --follow-exports` (the table would drop them within the hour).
#[tokio::test]
async fn activities_older_than_the_retention_are_not_imported() {
    let db = Db::fresh("import_retention").await;
    let now = adjust_sink::clock::unix_now();
    let csv = |prefix: &str| {
        format!(
            "activity_kind,app_token,nonce,created_at\ninstall,{APP},{prefix}old,{}\ninstall,{APP},{prefix}recent,{}\n",
            now - 40 * 86_400,
            now - 86_400
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.csv");
    std::fs::write(&file, csv("a")).unwrap();
    let data_dir = dir.path().join("import");
    let (ok, stdout, stderr) = crate::support::sink_cmd(
        &[
            &["import", "--retention", "30"][..],
            &db.with_data_dir(data_dir.to_str().unwrap()),
            &[file.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 new, 1 older than --retention (not imported),"),
        "{stdout}"
    );
    assert_eq!(nonces(&db).await.trim(), "['arecent']");

    // The follower inside serve, with serve's --retention.
    let exports = tempfile::tempdir().unwrap();
    std::fs::write(
        exports
            .path()
            .join(format!("{APP}_2024-03-01T000000_1a2b3c4d_0001.csv")),
        csv("b"),
    )
    .unwrap();
    let sink = Sink::start(
        &db,
        &[
            "--retention",
            "30",
            "--follow-exports",
            exports.path().to_str().unwrap(),
            "--follow-interval",
            "1s",
        ],
    )
    .await;
    assert_eq!(
        db.wait_rows(2, Duration::from_secs(30)).await,
        2,
        "{}",
        sink.logs()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        nonces(&db).await.trim(),
        "['arecent','brecent']",
        "{}",
        sink.logs()
    );
    assert!(
        sink.logs().contains("older_than_retention=1"),
        "{}",
        sink.logs()
    );
}

/// The nonces of `db`'s table, in order, as ClickHouse prints an array.
async fn nonces(db: &Db) -> String {
    db.query(&format!(
        "SELECT groupArray(nonce) FROM (SELECT nonce FROM {} ORDER BY nonce)",
        db.table()
    ))
    .await
}
