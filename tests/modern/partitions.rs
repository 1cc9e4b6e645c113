//! A batch of callbacks created in 150 different months: a modern server refuses it whole
//! (`max_partitions_per_insert_block`, default 100), the classifier maps that refusal to a split,
//! and the parts `split_by_partition` cuts land, once, with their tokens (also when sent again
//! after a crash).

use std::process::Command;

use adjust_sink::clickhouse::Profile;
use adjust_sink::clickhouse::schema::{Target, statements};
use adjust_sink::clickhouse::store::insert_settings;
use adjust_sink::pipeline::batch::split_by_partition;
use adjust_sink::pipeline::wal::Position;
use adjust_sink::pipeline::{Batch, LogRange};
use adjust_sink::row::{self, insert_sql};
use adjust_sink::sink::classify::{classify, code_of, partition_limit};
use adjust_sink::sink::{ErrorClass, Rows};
use serde_json::{Value as Json, json};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/modern/partitions.py");

/// 2000-01-06 00:00 UTC; each next row an average month (30.436875 days) later, so row `m` is
/// in the `m`-th month after January 2000.
const FIRST: u32 = 946_684_800 + 5 * 86_400;
const MONTH: u32 = 2_629_746;

#[test]
fn a_batch_over_150_months_lands_in_parts() {
    let Some(python) = super::chdb_python() else {
        return;
    };
    let mut batch = Batch::default();
    for m in 0..150u32 {
        let query = format!(
            "activity_kind=install&app_token=abc123&nonce=p-{m}&created_at={}",
            FIRST + m * MONTH
        );
        let built = row::build(
            &row::Received {
                query: query.as_bytes(),
                body: b"",
                content_type: None,
                trigger: "",
                source_ip: std::net::Ipv4Addr::new(203, 0, 113, 7).into(),
                received_at: 1_700_000_000,
            },
            &row::Options::new(),
        );
        batch.push(&built.row);
    }
    let at = |offset| Position { segment: 1, offset };
    batch.log = Some(LogRange {
        log_id: 0x5eed,
        start: at(0),
        end: at(batch.len_bytes() as u64),
        oldest_written: 0,
    });
    batch.freeze();

    let parts = split_by_partition(&batch, 0..batch.rows(), 100);
    assert_eq!(parts, vec![0..100, 100..150]);
    // Pure: cut again (as after a crash), the same parts and tokens.
    assert_eq!(split_by_partition(&batch, 0..batch.rows(), 100), parts);

    let dir = tempfile::Builder::new()
        .prefix("adjust-sink-partitions-")
        .tempdir()
        .expect("temp dir");
    std::fs::write(
        dir.path().join("whole.bin"),
        batch.body(0..batch.rows()).to_bytes(),
    )
    .unwrap();
    let mut listed = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let file = format!("part{i}.bin");
        std::fs::write(dir.path().join(&file), batch.body(p.clone()).to_bytes()).unwrap();
        listed.push(json!({"file": file, "token": batch.token(p.clone())}));
    }
    let target = Target {
        database: "adjust".into(),
        table: "callbacks".into(),
        physical: Vec::new(),
        columns: Vec::new(),
        cluster: None,
    };
    let check = json!({
        "statements": statements(Profile::Modern, &target).into_iter().map(|s| s.sql).collect::<Vec<_>>(),
        "insert": insert_sql(&target.database, &target.table),
        "table": target.table(),
        "whole": "whole.bin",
        "parts": listed,
        "insert_settings": insert_settings(Profile::Modern),
    });
    std::fs::write(dir.path().join("partitions.json"), check.to_string()).unwrap();

    let out = Command::new(&python)
        .arg(SCRIPT)
        .arg(dir.path())
        .output()
        .expect("run partitions.py");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "partitions.py failed:\n{stderr}");
    let result: Json =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("no JSON ({e}):\n{stderr}"));

    // Refused whole, with the error the classifier turns into a split.
    let error = result["whole_error"]
        .as_str()
        .unwrap_or_else(|| panic!("the whole batch was accepted: {result}"));
    let code = code_of(error).expect("a code");
    assert_eq!(code, 252, "{error}");
    assert_eq!(classify(code, error), ErrorClass::Shape, "{error}");
    assert_eq!(partition_limit(error), Some(100), "{error}");
    assert_eq!(result["limit"], json!(100));
    // The parts land: every row, every month.
    assert_eq!(result["after_parts"], json!(150));
    assert_eq!(result["partitions"], json!(150));
    // Sent again with the same tokens: nothing twice.
    assert_eq!(result["after_again"], json!(150));
}
