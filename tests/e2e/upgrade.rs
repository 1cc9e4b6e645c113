//! `migrate` moves a table of the first release's layout (every placeholder a column of its own)
//! to the two-tier layout: the same values come back through the same column names, counts are
//! equal, an interrupted copy is resumed, and a second `migrate` does nothing.

use std::process::Command;

use adjust_sink::row::cold::key_of;
use adjust_sink::row::columns;

use crate::support::Db;

/// Runs the binary with `args`: (success, stdout and stderr).
fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_adjust-sink"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn migrate(db: &Db) -> (bool, String) {
    run(&[
        "migrate",
        "--clickhouse-url",
        &db.url,
        "--database",
        &db.name,
    ])
}

/// `check` against `db` with an empty data directory: (healthy, report).
fn check(db: &Db) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    run(&[
        "check",
        "--clickhouse-url",
        &db.url,
        "--database",
        &db.name,
        "--data-dir",
        data_dir,
    ])
}

/// A callback (`query`) through a sink of this version that does not migrate, landed as the
/// table's `rows`-th row.
async fn land_one(db: &Db, query: &str, rows: u64) {
    let mut sink = crate::support::Sink::start(db, &["--no-migrate"]).await;
    assert_eq!(sink.get(query).await.status(), 200);
    assert_eq!(
        db.wait_rows(rows, std::time::Duration::from_secs(20)).await,
        rows
    );
    sink.terminate(std::time::Duration::from_secs(20));
}

/// Creates the first release's database, tables, rollups and views in `db`.
async fn create_first_release(db: &Db) {
    create_from(db, "first_release_legacy.sql").await;
}

/// Creates the objects of a schema fixture (`tests/fixtures/<name>`) in `db`.
async fn create_from(db: &Db, fixture: &str) {
    let ddl = std::fs::read_to_string(format!(
        "{}/tests/fixtures/{fixture}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    .replace("adjust.", &format!("{}.", db.name))
    .replace("EXISTS adjust;", &format!("EXISTS {};", db.name));
    for statement in ddl.split(";\n") {
        let sql: String = statement
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        if !sql.trim().is_empty() {
            db.query_with(&sql, "allow_experimental_low_cardinality_type=1")
                .await;
        }
    }
}

/// 3,000 rows over three months: every placeholder type in both tiers, NULL and empty values,
/// awkward text and floats, parameters, `extra`, and duplicates of one activity.
const ROWS: &str = "
INSERT INTO {t} (received_at, event_date, callback_id, callback_trigger, source_ip,
    activity_kind, app_token, adid, nonce, created_at, revenue_float, country, is_organic,
    publisher_parameters, `publisher_parameters_kv.key`, `publisher_parameters_kv.value`,
    reftag, sdk_version, created_at_hour, created_at_milli, is_s2s, api_level, predicted_value,
    ad_revenue_payload, sk_redownload, cost_currency, `extra.key`, `extra.value`, raw_query)
SELECT
    toDateTime(1404214700 + number, 'UTC'),
    toDate(toDateTime(1404214665 + (number % 3) * 2678400, 'UTC')),
    intDiv(number, 2) * 7919,
    if(number % 2 = 0, '', 'install'),
    '178.162.216.70',
    ['install', 'event', 'session'][number % 3 + 1],
    'abc123',
    concat('adid-', toString(number)),
    if(number % 5 = 0, '', concat('n', toString(intDiv(number, 2)))),
    toDateTime(1404214665 + (number % 3) * 2678400, 'UTC'),
    if(number % 4 = 0, NULL, number / 7),
    ['de', 'us', ''][number % 3 + 1],
    if(number % 6 = 0, NULL, toUInt8(number % 2)),
    if(number % 3 = 0, '{\"a\":\"1\"}', ''),
    arrayResize(['a'], if(number % 3 = 0, 1, 0)),
    arrayResize(['1'], if(number % 3 = 0, 1, 0)),
    if(number % 7 = 0, '', concat('ref \\'quoted\\' ü ', toString(number))),
    ['4.38.0', '', 'unity4.1'][number % 3 + 1],
    if(number % 2 = 0, NULL, toDateTime(1404212400 + number, 'UTC')),
    if(number % 3 = 1, NULL, toInt64(1404214665123 + number)),
    if(number % 5 = 0, NULL, toUInt8(number % 2)),
    if(number % 4 = 3, NULL, toInt64(number) - 1500),
    [NULL, 0.1, 1e-7, 1e300, -2.5e-9, 123456789.125][number % 6 + 1],
    if(number % 8 = 0, '{\"network\":\"x\",\"v\":[1,2]}', ''),
    if(number % 9 = 0, toUInt8(1), NULL),
    ['', 'EUR', 'usd'][number % 3 + 1],
    arrayResize(['user_id'], if(number % 10 = 0, 1, 0)),
    arrayResize([toString(number)], if(number % 10 = 0, 1, 0)),
    if(number % 11 = 0, 'revenue_float=abc', '')
FROM numbers(3000)";

/// Every column of `names` the table shows, row by row, in a stable order.
async fn snapshot(db: &Db, names: &[String]) -> String {
    let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    db.query(&format!(
        "SELECT {} FROM {} ORDER BY callback_id, received_at FORMAT JSONEachRow",
        names.join(", "),
        db.table()
    ))
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_first_release_table_moves_to_the_two_tier_layout_without_changing_a_row() {
    let db = Db::fresh("upgrade").await;
    create_first_release(&db).await;
    db.query(&ROWS.replace("{t}", &db.table())).await;
    // The columns of the first release (later releases added some: compared separately).
    let old: Vec<String> = db
        .query(&format!(
            "SELECT name FROM system.columns WHERE database = '{}' AND table = 'callbacks'",
            db.name
        ))
        .await
        .lines()
        .map(str::to_owned)
        .collect();
    let names: Vec<String> = columns()
        .iter()
        .flat_map(|c| c.wire_names())
        .filter(|n| old.contains(n))
        .collect();
    assert!(names.len() > 200, "{names:?}");
    let before = snapshot(&db, &names).await;
    assert_eq!(before.lines().count(), 3000);
    let installs_daily = format!("SELECT sum(installs) FROM {}.installs_daily", db.name);
    let rollup_before = db.number(&installs_daily).await;
    assert!(rollup_before > 0);

    // An earlier run was interrupted after copying part of a partition.
    db.query_with(
        &adjust_sink::clickhouse::schema::create_table(
            adjust_sink::clickhouse::Profile::Legacy,
            &adjust_sink::clickhouse::schema::Target {
                database: db.name.clone(),
                table: "callbacks_tiered".into(),
                physical: Vec::new(),
                columns: Vec::new(),
                cluster: None,
            },
        ),
        "allow_experimental_low_cardinality_type=1",
    )
    .await;
    db.query(&format!(
        "INSERT INTO {0}.callbacks_tiered (received_at, event_date, callback_id) \
         SELECT received_at, event_date, callback_id FROM {0}.callbacks LIMIT 10",
        db.name
    ))
    .await;

    let (ok, out) = migrate(&db);
    assert!(ok, "{out}");
    assert!(
        out.contains("moved 3000 rows in 3 partitions"),
        "no move reported: {out}"
    );
    assert!(out.contains("callbacks_layout1"), "{out}");

    // The same values through the same column names.
    let after = snapshot(&db, &names).await;
    assert_eq!(after.lines().count(), 3000);
    // Every row of the first layout came from a callback.
    assert_eq!(
        db.number(&format!(
            "SELECT countIf(ingest_source = 'callback') FROM {}",
            db.table()
        ))
        .await,
        3000
    );
    for (i, (a, b)) in before.lines().zip(after.lines()).enumerate() {
        assert_eq!(a, b, "row {i} changed");
    }
    assert_eq!(
        db.number(&format!(
            "SELECT count() FROM system.columns WHERE database = '{}' AND table = 'callbacks' \
             AND name = 'cold'",
            db.name
        ))
        .await,
        1
    );
    assert_eq!(
        db.query(&format!(
            "SELECT default_kind FROM system.columns WHERE database = '{}' AND table = 'callbacks' AND name = 'reftag'",
            db.name
        ))
        .await
        .trim(),
        "ALIAS"
    );
    // The old table is kept; the rollups kept their rows and are fed from the new table.
    assert_eq!(
        db.number(&format!(
            "SELECT count() FROM {}.callbacks_layout1",
            db.name
        ))
        .await,
        3000
    );
    assert_eq!(db.number(&installs_daily).await, rollup_before);
    db.query(&format!(
        "INSERT INTO {} (received_at, event_date, callback_id, activity_kind, app_token) \
         VALUES (1404214700, '2014-07-01', 1, 'install', 'abc123')",
        db.table()
    ))
    .await;
    assert_eq!(db.number(&installs_daily).await, rollup_before + 1);
    db.query(&format!(
        "SELECT reftag, created_at_milli FROM {}.installs LIMIT 1",
        db.name
    ))
    .await;

    // Nothing left to do the second time.
    let (ok, again) = migrate(&db);
    assert!(ok, "{again}");
    assert!(!again.contains("moved"), "{again}");
    assert!(!again.contains("added column"), "{again}");
}

#[tokio::test(flavor = "multi_thread")]
async fn physical_turns_a_cold_placeholder_into_a_filled_column() {
    let db = Db::fresh("physical").await;
    crate::support::migrate(&db);
    // The cold text as the sink writes it: each placeholder under its code.
    let (api_level, sdk_version) = (key_of("api_level"), key_of("sdk_version"));
    db.query(&format!(
        "INSERT INTO {} (received_at, event_date, callback_id, cold) \
         VALUES (1404214700, '2014-07-01', 1, '{{\"{api_level}\":\"33\",\"{sdk_version}\":\"4.38.0\"}}')",
        db.table()
    ))
    .await;
    let out = Command::new(env!("CARGO_BIN_EXE_adjust-sink"))
        .args([
            "migrate",
            "--clickhouse-url",
            &db.url,
            "--database",
            &db.name,
            "--physical",
            "api_level",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("made column api_level physical"), "{text}");
    let kind = |name: &'static str| {
        let db = db.clone();
        async move {
            db.query(&format!(
                "SELECT default_kind FROM system.columns WHERE database = '{}' AND table = 'callbacks' AND name = '{name}'",
                db.name
            ))
            .await
            .trim()
            .to_string()
        }
    };
    assert_eq!(kind("api_level").await, "DEFAULT");
    assert_eq!(kind("sdk_version").await, "ALIAS");
    db.query(&format!(
        "INSERT INTO {} (received_at, event_date, callback_id, cold) \
         VALUES (1404214701, '2014-07-01', 2, '{{\"{api_level}\":\"34\"}}')",
        db.table()
    ))
    .await;
    db.query(&format!("OPTIMIZE TABLE {} FINAL", db.table()))
        .await;
    assert_eq!(
        db.query(&format!(
            "SELECT callback_id, api_level, sdk_version FROM {} ORDER BY callback_id FORMAT TSV",
            db.table()
        ))
        .await,
        "1\t33\t4.38.0\n2\t34\t\n"
    );
    let (bad_ok, bad) = {
        let out = Command::new(env!("CARGO_BIN_EXE_adjust-sink"))
            .args(["schema", "--profile", "legacy", "--physical", "adid"])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    assert!(
        !bad_ok && bad.contains("already a physical column"),
        "{bad}"
    );
}

/// A table of the second release keeps its cold tier in two arrays: `migrate` adds the `cold`
/// text, computed from the arrays for the rows already there, and points every cold column at it;
/// old rows read the same, new rows write `cold`, and a second `migrate` has nothing to do.
#[tokio::test(flavor = "multi_thread")]
async fn cold_arrays_of_the_second_release_move_to_one_text() {
    let db = Db::fresh("cold_arrays").await;
    create_from(&db, "second_release_legacy.sql").await;
    let t = db.table();
    db.query(&format!(
        r#"INSERT INTO {t} (received_at, event_date, callback_id, activity_kind, cold_keys, cold_values)
         VALUES (1404214700, '2014-07-01', 1, 'install',
         ['api_level', 'sdk_version', 'reftag', 'city'], ['33', '4.38.0', 'ref\\1', 'S\'o "P"\nx'])"#
    ))
    .await;
    let read = "SELECT callback_id, api_level, sdk_version, reftag, city FROM {t} ORDER BY callback_id FORMAT TSV";
    let read = read.replace("{t}", &t);
    let before = db.query(&read).await;
    assert!(before.starts_with("1\t33\t4.38.0\t"), "{before}");
    let (ok, out) = migrate(&db);
    assert!(ok, "{out}");
    assert!(out.contains("as one JSON text"), "{out}");
    assert_eq!(db.query(&read).await, before, "old rows read the same");
    // A row written the way this version writes rows.
    let q = "/adjust/install?api_level=34&sdk_version=5.0&city=K%C3%B6ln%20%22x%22&created_at=1404214800&app_token=abc123";
    land_one(&db, q, 2).await;
    let new = db
        .query(&format!(
            "SELECT api_level, sdk_version, city, length(cold_keys) FROM {t} WHERE callback_id != 1 FORMAT TSV"
        ))
        .await;
    assert_eq!(new, "34\t5.0\tKöln \"x\"\t0\n");
    let (ok, again) = migrate(&db);
    assert!(ok, "{again}");
    assert!(!again.contains("JSON text"), "{again}");
    assert!(!again.contains("added column"), "{again}");
}

/// A table made when the cold text had placeholder names as keys: `migrate` points its cold
/// columns at the codes and rewrites the keys of the rows already there, so they read the same;
/// new rows are keyed by codes, and a second `migrate` has nothing to do.
#[tokio::test(flavor = "multi_thread")]
async fn cold_text_keyed_by_names_is_rekeyed_by_codes() {
    let db = Db::fresh("cold_names").await;
    create_from(&db, "named_cold_keys_legacy.sql").await;
    let t = db.table();
    // Rows as that version wrote them, one with a column of the user's own (`loyalty_tier`).
    db.query(&format!(
        r#"INSERT INTO {t} (received_at, event_date, callback_id, activity_kind, cold) VALUES
         (1404214700, '2014-07-01', 1, 'install',
          '{{"api_level":"33","sdk_version":"4.38.0","reftag":"ref\\\\1","city":"S\'o \\"api_level\\":\\nx"}}'),
         (1404214701, '2014-07-01', 2, 'session', '{{"idfa_md5":"abc","loyalty_tier":"gold"}}')"#
    ))
    .await;
    let read = format!(
        "SELECT callback_id, api_level, sdk_version, reftag, city, idfa_md5 FROM {t} ORDER BY callback_id FORMAT TSV"
    );
    let before = db.query(&read).await;
    assert!(before.starts_with("1\t33\t4.38.0\tref\\\\1\t"), "{before}");
    assert!(before.contains("\tabc\n"), "{before}");
    let (healthy, report) = check(&db);
    assert!(!healthy && report.contains("read keys by name"), "{report}");
    let (ok, out) = migrate(&db);
    assert!(ok, "{out}");
    assert!(out.contains("keyed by codes"), "{out}");
    assert_eq!(db.query(&read).await, before, "old rows read the same");
    let cold = db
        .query(&format!(
            "SELECT cold FROM {t} ORDER BY callback_id FORMAT TSVRaw"
        ))
        .await;
    assert!(!cold.contains("\"sdk_version\""), "{cold}");
    assert!(
        cold.contains(&format!("\"{}\":\"4.38.0\"", key_of("sdk_version"))),
        "{cold}"
    );
    assert!(cold.contains("\"loyalty_tier\":\"gold\""), "{cold}");
    // A row written the way this version writes rows.
    let q = "/adjust/install?api_level=34&sdk_version=5.0&created_at=1404214800&app_token=abc123";
    land_one(&db, q, 3).await;
    let new = db
        .query(&format!(
            "SELECT api_level, sdk_version FROM {t} WHERE callback_id > 2 FORMAT TSV"
        ))
        .await;
    assert_eq!(new, "34\t5.0\n");
    let (ok, again) = migrate(&db);
    assert!(ok, "{again}");
    assert!(!again.contains("keyed by codes"), "{again}");
    let (healthy, report) = check(&db);
    assert!(healthy && !report.contains("read keys by name"), "{report}");
}
