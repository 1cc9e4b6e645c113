//! `migrate` and `schema` against the real server.

use std::process::Command;

use crate::support::Db;

fn sink(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_adjust-sink"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_is_idempotent_and_adds_what_a_table_lacks() {
    let db = Db::fresh("migrate").await;
    let args = [
        "migrate",
        "--clickhouse-url",
        &db.url,
        "--database",
        &db.name,
    ];
    let (ok, first) = sink(&args);
    assert!(ok, "{first}");
    assert!(first.contains("legacy profile"), "{first}");
    let (ok, second) = sink(&args);
    assert!(ok, "{second}");
    assert!(!second.contains("added column"), "{second}");
    // A table from an older version lacks a column the code writes, and views read it.
    db.query(&format!("ALTER TABLE {} DROP COLUMN city", db.table()))
        .await;
    let (ok, upgrade) = sink(&args);
    assert!(ok, "{upgrade}");
    assert!(upgrade.contains("added column city"), "{upgrade}");
    assert_eq!(db.number(&format!("SELECT count() FROM system.columns WHERE database = '{}' AND table = 'callbacks' AND name = 'city'", db.name)).await, 1);
    db.query(&format!("SELECT city FROM {}.installs", db.name))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn schema_prints_what_schema_dir_holds() {
    for profile in ["legacy", "modern"] {
        let (ok, printed) = sink(&["schema", "--profile", profile]);
        assert!(ok);
        let file = std::fs::read_to_string(format!(
            "{}/schema/{profile}.sql",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        assert_eq!(
            printed, file,
            "schema/{profile}.sql differs from `adjust-sink schema --profile {profile}`"
        );
    }
    // Without --profile the server is asked: the test server is 18.16.
    let (ok, probed) = sink(&[
        "schema",
        "--clickhouse-url",
        &crate::support::clickhouse_url(),
    ]);
    assert!(ok, "{probed}");
    assert_eq!(
        probed,
        std::fs::read_to_string(format!("{}/schema/legacy.sql", env!("CARGO_MANIFEST_DIR")))
            .unwrap()
    );
    let (ok, err) = sink(&["schema", "--clickhouse-url", "http://127.0.0.1:9"]);
    assert!(!ok && err.contains("--profile"), "{err}");
}

/// The settings every INSERT carries on 18.16 exist there (it fails a query naming one it does
/// not know), and the modern-only ones do not, which is why they are left out.
#[tokio::test(flavor = "multi_thread")]
async fn the_legacy_insert_settings_are_known_to_18_16() {
    use adjust_sink::clickhouse::Profile;
    use adjust_sink::clickhouse::store::insert_settings;
    let db = Db::fresh("insert_settings").await;
    let known = |name: &str| {
        let db = db.clone();
        let sql = format!("SELECT count() FROM system.settings WHERE name = '{name}'");
        async move { db.number(&sql).await == 1 }
    };
    assert!(!insert_settings(Profile::Legacy).is_empty());
    for (name, _) in insert_settings(Profile::Legacy) {
        assert!(known(name).await, "18.16 does not know {name}");
    }
    let legacy: Vec<&str> = insert_settings(Profile::Legacy)
        .iter()
        .map(|(n, _)| *n)
        .collect();
    for (name, _) in insert_settings(Profile::Modern) {
        if !legacy.contains(name) {
            assert!(!known(name).await, "18.16 knows {name}: pin it there too");
        }
    }
}

/// `migrate` on an up-to-date schema changes nothing and says so; a view of an earlier
/// definition is replaced in one step while analysts query it (no query fails); the erasure
/// requests' table and view of the first version get the app and outcome, and every forget
/// callback in the table is recorded again.
#[tokio::test(flavor = "multi_thread")]
async fn migrate_leaves_current_views_alone_and_replaces_older_ones_while_they_answer() {
    let db = Db::fresh("migrate_views").await;
    let d = db.name.clone();
    let args = vec![
        "migrate".to_string(),
        "--clickhouse-url".into(),
        db.url.clone(),
        "--database".into(),
        d.clone(),
    ];
    let run = |args: Vec<String>| async move {
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            sink(&args)
        })
        .await
        .unwrap()
    };
    let (ok, first) = run(args.clone()).await;
    assert!(ok, "{first}");
    let (ok, second) = run(args.clone()).await;
    assert!(ok, "{second}");
    assert!(second.contains("nothing changed"), "{second}");
    assert!(
        !second.contains("dropped") && !second.contains("replaced"),
        "{second}"
    );

    // Views as an earlier version made them, and the erasure requests of the first version.
    let t = db.table();
    for (view, kind) in [("installs", "install"), ("events", "event")] {
        db.query(&format!("DROP TABLE {d}.{view}")).await;
        db.query(&format!(
            "CREATE VIEW {d}.{view} AS SELECT received_at, activity_kind FROM {t} FINAL WHERE activity_kind IN ('{kind}')"
        ))
        .await;
    }
    db.query(&format!("DROP TABLE {t}_erasures_mv")).await;
    db.query(&format!("DROP TABLE {t}_erasures")).await;
    db.query(&format!(
        "CREATE TABLE {t}_erasures (requested_at DateTime('UTC'), device_id String, id_kind String, done_at DateTime('UTC')) ENGINE = ReplacingMergeTree(done_at) ORDER BY (id_kind, device_id, requested_at)"
    ))
    .await;
    db.query(&format!(
        "CREATE MATERIALIZED VIEW {t}_erasures_mv TO {t}_erasures AS SELECT received_at AS requested_at, tupleElement(id, 2) AS device_id, tupleElement(id, 1) AS id_kind, toDateTime(0, 'UTC') AS done_at FROM {t} ARRAY JOIN [('adid', adid)] AS id WHERE activity_kind = 'gdpr_forget_device' AND tupleElement(id, 2) != ''"
    ))
    .await;
    db.query(&format!(
        "INSERT INTO {t} (activity_kind, adid, app_token, callback_id) VALUES ('install', 'dev1', 'appZ', 1), ('gdpr_forget_device', 'oldDev', 'appZ', 2)"
    ))
    .await;
    assert_eq!(
        db.number(&format!("SELECT count() FROM {t}_erasures"))
            .await,
        1
    );

    // Analysts query the views all along.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let loop_db = db.clone();
    let loop_stop = stop.clone();
    let queries = tokio::spawn(async move {
        let (mut ok, mut failed) = (0u32, Vec::new());
        while !loop_stop.load(std::sync::atomic::Ordering::Relaxed) {
            for view in ["installs", "events"] {
                match loop_db
                    .try_query(&format!("SELECT count() FROM {}.{view}", loop_db.name))
                    .await
                {
                    Ok(_) => ok += 1,
                    Err(e) => failed.push(e),
                }
            }
        }
        (ok, failed)
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (ok, upgrade) = run(args.clone()).await;
    assert!(ok, "{upgrade}");
    let (ok, again) = run(args.clone()).await;
    assert!(ok, "{again}");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (answered, failed) = queries.await.unwrap();
    assert!(
        failed.is_empty(),
        "{} queries failed: {:?}",
        failed.len(),
        &failed[..1]
    );
    assert!(answered > 20, "only {answered} queries");

    for view in ["installs", "events"] {
        assert!(
            upgrade.contains(&format!("replaced view {d}.{view} (its definition changed")),
            "{upgrade}"
        );
    }
    assert!(!upgrade.contains("replaced view {d}.sessions"), "{upgrade}");
    assert!(
        upgrade.contains(&format!(
            "replaced table {t}_erasures (added column app_token, outcome; app_token joins its key)"
        )),
        "{upgrade}"
    );
    assert!(
        upgrade.contains(&format!("replaced materialized view {t}_erasures_mv")),
        "{upgrade}"
    );
    assert!(again.contains("nothing changed"), "{again}");
    // The view has every column again; the forget callback is a request of its app now.
    db.query(&format!("SELECT city, extra.key FROM {d}.installs"))
        .await;
    let requests = db
        .query(&format!(
            "SELECT device_id, app_token FROM {t}_erasures ORDER BY app_token FORMAT TabSeparated"
        ))
        .await;
    assert_eq!(requests, "oldDev\t\noldDev\tappZ\n");
    // And new forget callbacks are recorded with their app.
    db.query(&format!(
        "INSERT INTO {t} (activity_kind, adid, app_token, callback_id) VALUES ('gdpr_forget_device', 'newDev', 'appY', 3)"
    ))
    .await;
    assert_eq!(
        db.query(&format!(
            "SELECT app_token, outcome FROM {t}_erasures WHERE device_id = 'newDev' FORMAT TabSeparated"
        ))
        .await,
        "appY\t\n"
    );
}

/// Two callbacks tables in one database: the views and rollups stay with the first one, a
/// migrate (or a sink's start) for the second says its rows are in none of them and changes
/// nothing, and a migrate of the first still finds them current. Before, each migrate turned the
/// views to its own table and left the rollups with the first.
#[tokio::test(flavor = "multi_thread")]
async fn the_views_of_a_database_stay_with_one_table() {
    let db = Db::fresh("two_tables").await;
    let args = |table: &'static str| {
        vec![
            "migrate".to_string(),
            "--clickhouse-url".into(),
            db.url.clone(),
            "--database".into(),
            db.name.clone(),
            "--table".into(),
            table.into(),
        ]
    };
    let run = |table| {
        let a = args(table);
        sink(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let (ok, first) = run("callbacks");
    assert!(ok, "{first}");
    assert!(!first.contains("note:"), "{first}");
    let (ok, second) = run("staging");
    assert!(ok, "{second}");
    assert!(
        second.contains(&format!(
            "note: the views and rollups of {d} read {d}.callbacks, so the rows of {d}.staging are in none of them",
            d = db.name
        )),
        "{second}"
    );
    assert!(!second.contains("replaced"), "{second}");
    assert!(
        second.contains(&format!("created {}.staging", db.name)),
        "{second}"
    );
    // Every view and rollup still reads the first table.
    let reads = db
        .query(&format!(
            "SELECT name FROM system.tables WHERE database = '{}' AND (engine = 'View' AND name NOT LIKE '%_daily' OR name LIKE '%_activities_mv') AND position(create_table_query, 'FROM {}.callbacks') = 0 FORMAT TSV",
            db.name, db.name
        ))
        .await;
    assert_eq!(reads, "", "views reading another table than callbacks");
    let (ok, again) = run("callbacks");
    assert!(ok, "{again}");
    assert!(again.contains("nothing changed"), "{again}");
}
