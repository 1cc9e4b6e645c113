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
