//! The fixture corpus (one realistic callback per activity kind, plus POST bodies, a
//! single-activity call and damaged input) replayed through the real sink into the real
//! ClickHouse: every expected value must match what ClickHouse returns.

use std::time::Duration;

use adjust_sink::adjust::decode::{Body, DecodeOptions, decode};
use adjust_sink::adjust::identity::callback_id;
use serde_json::{Map, Value};

use crate::fixtures::{Fixture, compare, load_all};
use crate::support::{Db, Sink};

pub(crate) async fn send(sink: &Sink, f: &Fixture) -> u16 {
    let url = sink.url(&f.url());
    let req = match f.method.as_str() {
        "GET" => sink.client().get(url),
        "POST" => sink
            .client()
            .post(url)
            .body(f.body.clone().unwrap_or_default()),
        other => panic!("{}: unknown method {other}", f.name),
    };
    let req = match &f.content_type {
        Some(ct) => req.header("content-type", ct),
        None => req,
    };
    req.send()
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", f.name))
        .status()
        .as_u16()
}

fn id_of(f: &Fixture) -> u64 {
    let body = Body::from_content_type(f.content_type.as_deref(), f.body_bytes());
    callback_id(&decode(
        f.query.as_bytes(),
        body,
        f.trigger(),
        &DecodeOptions::new(),
    ))
}

/// The row of `id` as column → text, for the columns `expect` names.
pub(crate) async fn actual(db: &Db, id: u64, expect: &Map<String, Value>) -> Map<String, Value> {
    let mut cols = Vec::new();
    for name in expect.keys() {
        if name == "extra" || name.ends_with("_kv") {
            cols.push(format!("{name}.key AS `{name}.key`"));
            cols.push(format!("{name}.value AS `{name}.value`"));
        } else {
            cols.push(format!("toString({name}) AS `{name}`"));
        }
    }
    let sql = format!(
        "SELECT {} FROM {} WHERE callback_id = {id} FORMAT JSONEachRow",
        cols.join(", "),
        db.table()
    );
    let out = db.query(&sql).await;
    let line = out
        .lines()
        .next()
        .unwrap_or_else(|| panic!("no row with callback_id {id}"));
    let row: Map<String, Value> = serde_json::from_str(line).unwrap();
    let mut actual = Map::new();
    for name in expect.keys() {
        if let (Some(Value::Array(keys)), Some(Value::Array(values))) = (
            row.get(&format!("{name}.key")),
            row.get(&format!("{name}.value")),
        ) {
            let mut obj = Map::new();
            for (k, v) in keys.iter().zip(values) {
                let k = k.as_str().unwrap().to_string();
                match obj.get_mut(&k) {
                    None => {
                        obj.insert(k, v.clone());
                    }
                    Some(Value::Array(vs)) => vs.push(v.clone()),
                    Some(first) => *first = Value::Array(vec![first.take(), v.clone()]),
                }
            }
            actual.insert(name.clone(), Value::Object(obj));
        } else if let Some(v) = row.get(name) {
            actual.insert(name.clone(), v.clone());
        }
    }
    actual
}

#[tokio::test(flavor = "multi_thread")]
async fn the_corpus_replays_into_clickhouse_with_every_expected_value() {
    let fixtures = load_all();
    let db = Db::fresh("corpus").await;
    let sink = Sink::start(&db, &[]).await;
    for f in &fixtures {
        assert_eq!(send(&sink, f).await, 200, "{} was not accepted", f.name);
    }
    let landed = db
        .wait_rows(fixtures.len() as u64, Duration::from_secs(30))
        .await;
    assert_eq!(landed, fixtures.len() as u64);
    let mut mismatches = Vec::new();
    for f in &fixtures {
        let actual = actual(&db, id_of(f), &f.expect).await;
        mismatches.extend(compare(&f.name, &f.expect, &actual));
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    // The unknown kind is stored and counted as unknown.
    assert!(
        sink.metric("adjust_sink_callbacks_total{activity_kind=\"unknown\"}")
            .await
            >= 1.0
    );
}
