//! Modern engine check: the modern DDL runs on ClickHouse 26.x, and a batch encoded by the sink
//! reads back into the modern table with the expected value in every column.
//!
//! The engine is chDB (ClickHouse in-process, PyPI `chdb-core`), driven by `chdb_check.py` next to
//! this file through the python of the virtualenv `scripts/chdb-venv.sh` creates, named by
//! `ADJUST_SINK_TEST_CHDB_PYTHON` (`scripts/test.sh` exports it). Without it the test is skipped,
//! except on CI (`CI=true`), where it fails.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::process::Command;

mod partitions;

use adjust_sink::adjust::catalog::{CATALOG, Ty, is_hot};
use adjust_sink::adjust::decode::{Body, Callback, DecodeOptions, Value, decode};
use adjust_sink::adjust::identity::callback_id;
use adjust_sink::clickhouse::Profile;
use adjust_sink::clickhouse::schema::erasure::Request;
use adjust_sink::clickhouse::schema::{Target, statements};
use adjust_sink::clickhouse::store::insert_settings;
use adjust_sink::clickhouse::types::column_type;
use adjust_sink::row::cold::key_of;
use adjust_sink::row::{self, columns, insert_sql};
use serde_json::{Value as Json, json};

const PYTHON_VAR: &str = "ADJUST_SINK_TEST_CHDB_PYTHON";
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/modern/chdb_check.py");

/// When the first copy of every callback was received: 2014-07-01 11:38:20 UTC.
const RECEIVED_AT: u32 = 1_404_214_700;
/// When the retried copies were received, a minute later (same day).
const RETRIED_AT: u32 = RECEIVED_AT + 60;
const SOURCE_IP: &str = "203.0.113.7";
const TOKEN: &str = "tok1";

/// One callback as it reaches the sink.
struct Sample {
    trigger: &'static str,
    query: &'static [u8],
    /// Content type and body.
    body: Option<(&'static str, &'static [u8])>,
}

const SAMPLES: &[Sample] = &[
    // Global callback, everything in the query: every column type, a negative integer, the
    // tracker name split into its parts, publisher parameters, SDK parameters into `extra`.
    Sample {
        trigger: "",
        query: b"activity_kind=install&app_id=com.example.app&app_token=abc123\
                 &nonce=n-0001&created_at=1404214665&created_at_milli=1404214665123\
                 &adid=0123456789abcdef0123456789abcdef\
                 &idfa=D2CADB5F-410F-4963-AC0C-2A78534BDF1E\
                 &tracker_name=Network%3A%3ACampaign%3A%3AAdgroup%3A%3ACreative\
                 &country=de&is_organic=0&tracking_limited=1&att_status=-1&api_level=33\
                 &revenue_float=3.99&sk_payload=%7B%22a%22%3A%5B1%2C2%5D%7D\
                 &publisher_parameters=%7B%22user_id%22%3A%2242%22%2C%22tier%22%3A%22gold%22%7D\
                 &user_id=u-1&source=web+shop",
        body: None,
    },
    // Single-activity callback with a JSON body: numbers and booleans as JSON values, partner
    // parameters as an object; unsent numbers stay NULL.
    Sample {
        trigger: "event",
        query: b"gps_adid=38400000-8cf0-11bd-b23e-10b96e40000d",
        body: Some((
            "application/json",
            br#"{"activity_kind":"event","app_token":"abc123","event":"abc1de","event_name":"purchase","created_at":1404218265,"revenue_float":0.5,"currency":"EUR","is_organic":true,"partner_parameters":{"sku":"A-1","qty":2},"custom":"x"}"#,
        )),
    },
    // Damaged: a number that does not parse and a bad percent escape; the raw query is kept.
    // Created in June: another partition than the others.
    Sample {
        trigger: "",
        query: b"activity_kind=session&app_token=abc123&adid=fff&created_at=1401580800\
                 &session_count=abc&note=50%ZZoff",
        body: None,
    },
    // A hand-made test call: nothing but an unreplaced placeholder; the kind comes from the
    // trigger and the day from `received_at`.
    Sample {
        trigger: "click",
        query: b"tracker={tracker}",
        body: None,
    },
    // A forget request naming a hot identifier and a cold one (an MD5 of the IDFA): the
    // erasures view records one request per identifier.
    Sample {
        trigger: "",
        query: b"activity_kind=gdpr_forget_device&app_token=abc123&created_at=1404300000\
                 &adid=4c6e0a9b8f7d6e5c4b3a29180716f5e4\
                 &idfa_md5=9e107d9d372bb6826bd81d3542a419d6",
        body: None,
    },
];

/// Every `Ty`. The match fails to compile when a variant is added, until it is listed here (and
/// a sample sends a value of it).
const ALL_TYPES: [Ty; 9] = {
    const fn listed(ty: Ty) -> Ty {
        match ty {
            Ty::Str
            | Ty::LowCard
            | Ty::Time
            | Ty::TimeMs
            | Ty::Flag
            | Ty::Int
            | Ty::Float
            | Ty::Json
            | Ty::Params => ty,
        }
    }
    [
        listed(Ty::Str),
        listed(Ty::LowCard),
        listed(Ty::Time),
        listed(Ty::TimeMs),
        listed(Ty::Flag),
        listed(Ty::Int),
        listed(Ty::Float),
        listed(Ty::Json),
        listed(Ty::Params),
    ]
};

struct Decoded {
    sample: &'static Sample,
    cb: Callback<'static>,
    id: u64,
    raw: Option<Vec<u8>>,
}

fn decode_samples() -> Vec<Decoded> {
    let opts = DecodeOptions::new();
    SAMPLES
        .iter()
        .map(|sample| {
            let body = match sample.body {
                Some((ct, bytes)) => Body::from_content_type(Some(ct), bytes),
                None => Body::None,
            };
            let cb = decode(sample.query, body, sample.trigger, &opts);
            // The damaged sample is a GET: its raw query is the query string.
            let raw = cb.keeps_raw().then(|| {
                assert!(
                    sample.body.is_none(),
                    "a sample that keeps raw input has no body"
                );
                sample.query.to_vec()
            });
            Decoded {
                sample,
                id: callback_id(&cb),
                cb,
                raw,
            }
        })
        .collect()
}

/// The rows the sink builds for the samples ([`row::build`], as the HTTP handler does).
fn encode_all(decoded: &[Decoded], received_at: u32) -> Vec<u8> {
    let options = row::Options::new();
    let mut out = Vec::new();
    for d in decoded {
        let (content_type, body) = d.sample.body.unwrap_or(("", b""));
        let built = row::build(
            &row::Received {
                query: d.sample.query,
                body,
                content_type: d.sample.body.is_some().then_some(content_type),
                trigger: d.sample.trigger,
                source_ip: SOURCE_IP.parse().expect("sample source ip"),
                received_at,
            },
            &options,
        );
        assert_eq!(built.callback_id, d.id);
        out.extend_from_slice(&built.row);
    }
    out
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn date(days: i64) -> String {
    let (y, m, d) = civil(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `toString()` of a `DateTime('UTC')`.
fn time(secs: i64) -> String {
    let s = secs.rem_euclid(86_400);
    format!(
        "{} {:02}:{:02}:{:02}",
        date(secs.div_euclid(86_400)),
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// `toString()` of a `DateTime64(3, 'UTC')`.
fn time_ms(ms: i64) -> String {
    format!("{}.{:03}", time(ms.div_euclid(1000)), ms.rem_euclid(1000))
}

/// What one column of a row must read back as.
#[derive(Debug)]
enum Want {
    Exact(Json),
    /// A `toString()` of a Float64, compared as a number.
    Float(f64),
}

fn pairs_json<'p>(pairs: impl Iterator<Item = (&'p str, &'p str)> + Clone) -> [(String, Json); 3] {
    let keys: Vec<&str> = pairs.clone().map(|(k, _)| k).collect();
    let values: Vec<&str> = pairs.clone().map(|(_, v)| v).collect();
    let map: serde_json::Map<String, Json> = pairs.map(|(k, v)| (k.into(), json!(v))).collect();
    [
        ("key".into(), json!(keys)),
        ("value".into(), json!(values)),
        ("map".into(), Json::Object(map)),
    ]
}

type Row = BTreeMap<String, Want>;

fn put(want: &mut Row, name: &str, v: Json) {
    want.insert(name.to_string(), Want::Exact(v));
}

/// A `Nested(key, value)` column's two arrays and its `_map` ALIAS column.
fn put_nested(want: &mut Row, name: &str, pairs: &[(&str, &str)]) {
    let [(_, keys), (_, values), (_, map)] = pairs_json(pairs.iter().copied());
    put(want, &format!("{name}.key"), keys);
    put(want, &format!("{name}.value"), values);
    put(want, &map_alias(name), map);
}

/// The ALIAS map column over a nested column: `extra_map`, `publisher_parameters_map`.
fn map_alias(nested: &str) -> String {
    format!("{}_map", nested.strip_suffix("_kv").unwrap_or(nested))
}

/// Every column of a row, as ClickHouse must show it (see `chdb_check.py`: `toString()` of every
/// column, arrays and maps as JSON), derived from the decoded values.
fn expected_row(d: &Decoded, received_at: u32) -> Row {
    let mut want = Row::new();
    let w = &mut want;
    let created_at = CATALOG
        .iter()
        .zip(d.cb.values())
        .find_map(|(p, v)| match v {
            Value::Time(t) if p.name == "created_at" => Some(*t),
            _ => None,
        })
        .unwrap_or(received_at);
    put(w, "received_at", json!(time(received_at.into())));
    put(w, "event_date", json!(date((created_at / 86_400).into())));
    put(w, "callback_id", json!(d.id.to_string()));
    put(w, "callback_trigger", json!(d.sample.trigger));
    put(w, "source_ip", json!(SOURCE_IP));
    put(w, "ingest_source", json!(adjust_sink::row::INGEST_CALLBACK));
    for (p, v) in CATALOG.iter().zip(d.cb.values()) {
        let name = p.name;
        match (p.ty, v) {
            (Ty::Params, Value::Params(params)) => {
                let (raw, pairs) = &**params;
                put(w, name, json!(raw));
                let pairs: Vec<(&str, &str)> = pairs
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                put_nested(w, &format!("{name}_kv"), &pairs);
            }
            (Ty::Params, _) => {
                put(w, name, json!(""));
                put_nested(w, &format!("{name}_kv"), &[]);
            }
            (Ty::Str | Ty::LowCard | Ty::Json, Value::Text(_) | Value::Part(..)) => {
                put(w, name, json!(d.cb.resolve(v)))
            }
            (Ty::Str | Ty::LowCard | Ty::Json, _) => put(w, name, json!("")),
            (Ty::Time, Value::Time(t)) => put(w, name, json!(time((*t).into()))),
            (Ty::TimeMs, Value::TimeMs(ms)) => put(w, name, json!(time_ms(*ms))),
            (Ty::Flag, Value::Flag(f)) => put(w, name, json!(f.to_string())),
            (Ty::Int, Value::Int(i)) => put(w, name, json!(i.to_string())),
            (Ty::Float, Value::Float(f)) => {
                w.insert(name.to_string(), Want::Float(*f));
            }
            (Ty::Time | Ty::TimeMs | Ty::Flag | Ty::Int | Ty::Float, Value::Absent) => {
                put(w, name, Json::Null)
            }
            (ty, v) => panic!("{name}: {ty:?} column holds {v:?}"),
        }
    }
    // Cold placeholders that were sent, in catalog order, as normalized text.
    let cold: Vec<(&str, String)> = CATALOG
        .iter()
        .enumerate()
        .zip(d.cb.values())
        .filter(|((i, _), v)| !is_hot(*i) && **v != Value::Absent)
        .map(|((_, p), v)| {
            let text = match v {
                Value::Time(t) => t.to_string(),
                Value::TimeMs(t) | Value::Int(t) => t.to_string(),
                Value::Flag(f) => f.to_string(),
                Value::Float(f) => format!("{f:?}"),
                other => d.cb.resolve(other).to_string(),
            };
            (p.name, text)
        })
        .collect();
    // The cold text: one JSON object keyed by codes, as serde_json writes it; `cold_map` shows
    // the names.
    let [_, _, (_, keyed)] = pairs_json(cold.iter().map(|(k, v)| (key_of(k), v.as_str())));
    let [_, _, (_, map)] = pairs_json(cold.iter().map(|(k, v)| (*k, v.as_str())));
    put(w, "cold", Json::String(keyed.to_string()));
    put(w, "cold_map", map);
    let extra: Vec<(&str, &str)> = d.cb.extra.iter().map(|(k, v)| (&**k, &**v)).collect();
    put_nested(w, "extra", &extra);
    let raw = d.raw.as_deref().unwrap_or_default();
    put(
        w,
        "raw_query",
        json!(std::str::from_utf8(raw).expect("sample raw input is UTF-8")),
    );
    want
}

/// Extra expressions selected next to the columns: map access through the ALIAS columns and the
/// `DateTime64` column's type and milliseconds.
const PROBES: &[(&str, &str)] = &[
    ("extra_map[user_id]", "extra_map['user_id']"),
    ("extra_map[custom]", "extra_map['custom']"),
    (
        "publisher_parameters_map[tier]",
        "publisher_parameters_map['tier']",
    ),
    (
        "partner_parameters_map[qty]",
        "partner_parameters_map['qty']",
    ),
    ("type(created_at_milli)", "toTypeName(created_at_milli)"),
    (
        "ms(created_at_milli)",
        "toString(toUnixTimestamp64Milli(created_at_milli))",
    ),
    ("type(extra_map)", "toTypeName(extra_map)"),
];

/// The python of the chDB virtualenv, or `None` (after saying so) when the check is skipped.
fn chdb_python() -> Option<String> {
    match std::env::var(PYTHON_VAR) {
        Ok(p) if !p.trim().is_empty() => Some(p),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{PYTHON_VAR} is not set, and CI=true: the modern engine check must run on CI \
                 (scripts/test.sh sets it from scripts/chdb-venv.sh)"
            );
            eprintln!(
                "SKIPPED modern engine check: {PYTHON_VAR} is not set. To run it: \
                 {PYTHON_VAR}=$(bash scripts/chdb-venv.sh) cargo test --test modern"
            );
            None
        }
    }
}

fn run_chdb(python: &str, workdir: &Path) -> Json {
    let out = Command::new(python)
        .arg(SCRIPT)
        .arg(workdir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python} ({PYTHON_VAR}): {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "chdb_check.py failed ({}):\n{stderr}",
        out.status
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "chdb_check.py printed no JSON ({e}):\n{}\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn str_of<'j>(v: &'j Json, key: &str) -> &'j str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("`{key}` is not a string in {v}"))
}

#[test]
fn modern_engine_check() {
    let Some(python) = chdb_python() else {
        return;
    };
    let target = Target {
        database: "adjust".into(),
        table: "callbacks".into(),
        physical: Vec::new(),
        columns: Vec::new(),
        cluster: None,
    };
    let decoded = decode_samples();
    let ids: BTreeSet<u64> = decoded.iter().map(|d| d.id).collect();
    assert_eq!(
        ids.len(),
        SAMPLES.len(),
        "samples must be distinct callbacks"
    );

    // Every column type is exercised with a value (not only with NULL / '').
    let sent: HashSet<Ty> = decoded
        .iter()
        .flat_map(|d| CATALOG.iter().zip(d.cb.values()))
        .filter(|(_, v)| **v != Value::Absent)
        .map(|(p, _)| p.ty)
        .collect();
    for ty in ALL_TYPES {
        assert!(sent.contains(&ty), "no sample sends a {ty:?} value");
    }

    let dir = tempfile::Builder::new()
        .prefix("adjust-sink-modern-")
        .tempdir()
        .expect("temp dir");
    std::fs::write(
        dir.path().join("rows.bin"),
        encode_all(&decoded, RECEIVED_AT),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("retries.bin"),
        encode_all(&decoded, RETRIED_AT),
    )
    .unwrap();
    // The DDL, then the TTLs `serve --retention` sets on modern servers (a century: the samples
    // are from 2014, and a modern server drops expired rows already at insert).
    let ddl: Vec<String> = statements(Profile::Modern, &target)
        .into_iter()
        .chain(adjust_sink::clickhouse::schema::erasure::ttl_statements(
            &target, 36_500,
        ))
        .map(|s| s.sql)
        .collect();
    let probes: serde_json::Map<String, Json> = PROBES
        .iter()
        .map(|(l, e)| ((*l).into(), json!(e)))
        .collect();
    let check = json!({
        "statements": ddl,
        "insert": insert_sql(&target.database, &target.table),
        "table": target.table(),
        "rows": "rows.bin",
        "retries": "retries.bin",
        "token": TOKEN,
        "probes": probes,
        "insert_settings": insert_settings(Profile::Modern),
        "rollups": rollup_checks(&target),
        "queries": erasure_queries(&target),
    });
    std::fs::write(dir.path().join("check.json"), check.to_string()).unwrap();

    let result = run_chdb(&python, dir.path());
    let version = str_of(&result, "version");
    eprintln!("modern engine check: ClickHouse {version} (chDB)");
    let major: u32 = version.split('.').next().unwrap().parse().unwrap();
    assert!(
        major >= 26,
        "expected ClickHouse 26.x or later, got {version}"
    );
    assert_eq!(Profile::for_version(version), Profile::Modern);

    // The table has exactly the columns the code declares, with the modern types.
    let got: BTreeMap<&str, (&str, &str)> = result["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| {
            (
                str_of(c, "name"),
                (str_of(c, "type"), str_of(c, "default_kind")),
            )
        })
        .collect();
    // Every placeholder is a column with its type: its own (hot) or an ALIAS over the cold arrays.
    let mut declared: BTreeMap<String, (String, &str)> = BTreeMap::new();
    let cold: BTreeSet<&str> = CATALOG
        .iter()
        .enumerate()
        .filter(|(i, _)| !is_hot(*i))
        .map(|(_, p)| p.name)
        .collect();
    for c in columns() {
        if c.nested() {
            for sub in c.wire_names() {
                declared.insert(sub, ("Array(String)".into(), ""));
            }
            declared.insert(map_alias(&c.name), ("Map(String, String)".into(), "ALIAS"));
        } else {
            let kind = if cold.contains(c.name.as_str()) {
                "ALIAS"
            } else if adjust_sink::row::column_default(&c.name).is_some() {
                "DEFAULT"
            } else {
                ""
            };
            declared.insert(c.name.clone(), (column_type(&c, Profile::Modern), kind));
        }
    }
    declared.insert("cold".into(), ("String".into(), ""));
    declared.insert("cold_map".into(), ("Map(String, String)".into(), "ALIAS"));
    let declared: BTreeMap<&str, (&str, &str)> = declared
        .iter()
        .map(|(n, (t, k))| (n.as_str(), (t.as_str(), *k)))
        .collect();
    assert_eq!(
        got, declared,
        "adjust.callbacks columns on ClickHouse {version}"
    );

    // Every column of every row reads back as encoded.
    let rows = result["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), SAMPLES.len());
    let by_id: BTreeMap<u64, &Json> = rows
        .iter()
        .map(|r| (str_of(r, "callback_id").parse().unwrap(), r))
        .collect();
    for d in &decoded {
        let row = by_id
            .get(&d.id)
            .unwrap_or_else(|| panic!("no row for callback_id {}", d.id));
        let obj = row.as_object().unwrap();
        let want = expected_row(d, RECEIVED_AT);
        let keys: BTreeSet<&str> = obj
            .keys()
            .map(String::as_str)
            .filter(|k| !PROBES.iter().any(|(l, _)| l == k))
            .collect();
        let want_keys: BTreeSet<&str> = want.keys().map(String::as_str).collect();
        assert_eq!(keys, want_keys, "columns of the row read back");
        for (col, w) in &want {
            let got = &obj[col.as_str()];
            match w {
                Want::Exact(v) => assert_eq!(got, v, "callback {}: column {col}", d.id),
                Want::Float(f) => {
                    let g: f64 = got
                        .as_str()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or_else(|| panic!("column {col}: {got} is not a Float64"));
                    assert_eq!(g, *f, "callback {}: column {col}", d.id);
                }
            }
        }
    }

    // The same, spelled out per column type.
    let row = |i: usize| by_id[&decoded[i].id];
    let (install, event, session, click) = (row(0), row(1), row(2), row(3));
    let id0 = decoded[0].id.to_string();
    for (r, col, v) in [
        // head columns
        (install, "received_at", json!("2014-07-01 11:38:20")),
        (install, "event_date", json!("2014-07-01")),
        (install, "callback_id", json!(id0)),
        (install, "callback_trigger", json!("")),
        (event, "callback_trigger", json!("event")),
        (install, "source_ip", json!(SOURCE_IP)),
        // Str
        (install, "adid", json!("0123456789abcdef0123456789abcdef")),
        (
            install,
            "idfa",
            json!("D2CADB5F-410F-4963-AC0C-2A78534BDF1E"),
        ),
        (
            event,
            "gps_adid",
            json!("38400000-8cf0-11bd-b23e-10b96e40000d"),
        ),
        (install, "campaign_name", json!("Campaign")),
        (event, "adid", json!("")),
        // LowCard
        (install, "activity_kind", json!("install")),
        (install, "country", json!("de")),
        (install, "network_name", json!("Network")),
        (event, "currency", json!("EUR")),
        (click, "activity_kind", json!("click")),
        // Time
        (install, "created_at", json!("2014-07-01 11:37:45")),
        (event, "created_at", json!("2014-07-01 12:37:45")),
        (session, "created_at", json!("2014-06-01 00:00:00")),
        (session, "event_date", json!("2014-06-01")),
        (click, "created_at", Json::Null),
        (click, "event_date", json!("2014-07-01")),
        // TimeMs
        (
            install,
            "created_at_milli",
            json!("2014-07-01 11:37:45.123"),
        ),
        (install, "ms(created_at_milli)", json!("1404214665123")),
        (
            install,
            "type(created_at_milli)",
            json!("Nullable(DateTime64(3, 'UTC'))"),
        ),
        (event, "created_at_milli", Json::Null),
        // Flag
        (install, "is_organic", json!("0")),
        (install, "tracking_limited", json!("1")),
        (event, "is_organic", json!("1")),
        (event, "tracking_limited", Json::Null),
        // Int, NULL when not sent or when it did not parse
        (install, "att_status", json!("-1")),
        (install, "api_level", json!("33")),
        (event, "att_status", Json::Null),
        (session, "session_count", Json::Null),
        // Float
        (install, "revenue_float", json!("3.99")),
        (event, "revenue_float", json!("0.5")),
        (session, "revenue_float", Json::Null),
        // Json
        (install, "sk_payload", json!(r#"{"a":[1,2]}"#)),
        (event, "sk_payload", json!("")),
        // Params → raw text, pairs and the ALIAS map
        (
            install,
            "publisher_parameters",
            json!(r#"{"user_id":"42","tier":"gold"}"#),
        ),
        (
            install,
            "publisher_parameters_kv.key",
            json!(["user_id", "tier"]),
        ),
        (
            install,
            "publisher_parameters_kv.value",
            json!(["42", "gold"]),
        ),
        (
            install,
            "publisher_parameters_map",
            json!({"user_id": "42", "tier": "gold"}),
        ),
        (install, "publisher_parameters_map[tier]", json!("gold")),
        (
            event,
            "partner_parameters",
            json!(r#"{"sku":"A-1","qty":2}"#),
        ),
        (event, "partner_parameters_kv.key", json!(["sku", "qty"])),
        (event, "partner_parameters_kv.value", json!(["A-1", "2"])),
        (event, "partner_parameters_map[qty]", json!("2")),
        (event, "publisher_parameters_kv.key", json!([])),
        (event, "publisher_parameters_map", json!({})),
        // extra → pairs and the ALIAS map
        (install, "extra.key", json!(["user_id", "source"])),
        (install, "extra.value", json!(["u-1", "web shop"])),
        (
            install,
            "extra_map",
            json!({"user_id": "u-1", "source": "web shop"}),
        ),
        (install, "extra_map[user_id]", json!("u-1")),
        (install, "type(extra_map)", json!("Map(String, String)")),
        (event, "extra_map[custom]", json!("x")),
        (event, "extra_map[user_id]", json!("")),
        (session, "extra.key", json!(["session_count", "note"])),
        (session, "extra.value", json!(["abc", "50%ZZoff"])),
        (click, "extra.key", json!([])),
        // raw_query: only for the damaged one
        (install, "raw_query", json!("")),
        (
            session,
            "raw_query",
            json!(
                "activity_kind=session&app_token=abc123&adid=fff&created_at=1401580800\
                 &session_count=abc&note=50%ZZoff"
            ),
        ),
        (click, "raw_query", json!("")),
    ] {
        assert_eq!(
            r[col],
            v,
            "column {col} of the {} callback",
            str_of(r, "activity_kind")
        );
    }

    // Deduplication.
    let n = SAMPLES.len() as u64;
    let counts = &result["counts"];
    eprintln!("modern engine check: counts {counts}");
    let count = |step: &str| {
        counts[step]
            .as_u64()
            .unwrap_or_else(|| panic!("no count {step}"))
    };
    assert_eq!(count("first"), n);
    // The identical block again is dropped by its hash (non_replicated_deduplication_window).
    assert_eq!(count("same_file_again"), n);
    assert_eq!(count("same_file_again_final"), n);
    // Retried callbacks are new rows; FINAL collapses them on callback_id.
    assert_eq!(count("retries"), 2 * n);
    assert_eq!(count("retries_final"), n);
    // The same rows under one insert_deduplication_token: stored once, then skipped.
    assert_eq!(count("token_first"), 3 * n);
    assert_eq!(
        count("token_second"),
        3 * n,
        "the second token insert was not skipped"
    );
    assert_eq!(count("token_final"), n);

    // The rollups count each activity once, whatever was inserted how often above.
    for r in adjust_sink::clickhouse::schema::views::ROLLUPS {
        let pair = &result["rollups"][r.table];
        let (rollup, exact) = (pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
        assert_eq!(
            rollup, exact,
            "{} against the callbacks with FINAL",
            r.table
        );
    }
    // The erasures view recorded the forget request's identifiers, hot and cold, once each
    // (with FINAL per request time: the retried copy has its own), and nothing of the others.
    assert_eq!(
        result["queries"]["erasures"],
        "adid\t4c6e0a9b8f7d6e5c4b3a29180716f5e4\tabc123\n\
         idfa_md5\t9e107d9d372bb6826bd81d3542a419d6\tabc123\n"
    );
    // Erased stays erased, on the modern engine: the requests marked erased are read back, the
    // samples' rows of the device are found (the forget callback and its retried copy), and the
    // requests made again are pending.
    let q = &result["queries"];
    let erased: String = forget_requests()
        .iter()
        .map(|r| format!("{}\t{}\t{}\t{RECEIVED_AT}\n", r.kind, r.id, r.app))
        .collect();
    assert_eq!(q["erasures_again_2_erased"], erased.as_str());
    let earliest = q["erasures_again_3_earliest"].as_str().unwrap_or_default();
    let [at, rows] = earliest.trim().split('\t').collect::<Vec<_>>()[..] else {
        panic!("earliest: {earliest:?}")
    };
    assert!(at.parse::<u32>().unwrap() <= RECEIVED_AT, "{earliest}");
    assert!(rows.parse::<u64>().unwrap() > 0, "{earliest}");
    let returned = q["erasures_again_4_returned"].as_str().unwrap_or_default();
    let counts: Vec<u64> = returned
        .trim()
        .split('\t')
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(
        counts.len() == 2 && counts.iter().all(|n| *n >= 2),
        "{returned}"
    );
    let pending = q["erasures_again_6_pending"].as_str().unwrap_or_default();
    for r in forget_requests() {
        let line = format!("{}\t{}\t{}\t{}\n", r.kind, r.id, r.app, RECEIVED_AT + 2_000);
        assert!(pending.contains(&line), "{pending}");
    }
    let installs = &result["rollups"]["installs_daily"][0];
    assert!(
        !installs.as_str().unwrap_or_default().is_empty(),
        "the samples hold installs"
    );

    // Every insert above carried the settings the sink pins on modern servers; here they are
    // as the engine applied them to an INSERT (read by DEFAULT expressions during the insert).
    let applied = &result["insert_settings"];
    eprintln!("modern engine check: insert settings {applied}");
    for (name, value) in insert_settings(Profile::Modern) {
        assert_eq!(
            applied["pinned"][name], applied["meaning"][name],
            "{name}={value} not in effect during the INSERT: {applied}"
        );
    }
    assert!(
        insert_settings(Profile::Modern).contains(&("async_insert", "0")),
        "the sink must pin synchronous inserts on modern servers"
    );
    // chDB's own default is asynchronous inserts: without the pin the INSERT would be one.
    assert_ne!(
        applied["default"]["async_insert"], applied["pinned"]["async_insert"],
        "{applied}"
    );
}

/// The forget callback of the samples' requests, as recorded at their first receipt.
fn forget_requests() -> Vec<Request> {
    [
        ("adid", "4c6e0a9b8f7d6e5c4b3a29180716f5e4"),
        ("idfa_md5", "9e107d9d372bb6826bd81d3542a419d6"),
    ]
    .map(|(kind, id)| Request {
        kind: kind.into(),
        id: id.into(),
        app: "abc123".into(),
        requested_at: RECEIVED_AT,
    })
    .to_vec()
}

/// The requests the erasures view recorded, then the queries that find rows of erased devices
/// that came back (docs/privacy.md), in the order they run (labels sort in that order): the
/// first receipt's requests marked erased, read back, the rows of theirs (the samples' forget
/// callback and its retried copy are theirs) counted, the erasure requested again.
fn erasure_queries(target: &Target) -> serde_json::Map<String, Json> {
    use adjust_sink::clickhouse::schema::erasure::{again, done_sql, pending_sql};
    let requests = forget_requests();
    let queries = [
        (
            "erasures",
            format!(
                "SELECT DISTINCT id_kind, device_id, app_token FROM {}_erasures ORDER BY id_kind",
                target.table()
            ),
        ),
        (
            "erasures_again_1_done",
            done_sql(target, &requests, RECEIVED_AT + 1_000, "erased"),
        ),
        (
            "erasures_again_2_erased",
            again::erased_sql(target, 0, 0, 100),
        ),
        ("erasures_again_3_earliest", again::earliest_sql(target, 0)),
        (
            "erasures_again_4_returned",
            again::returned_sql(target, &requests, 0),
        ),
        (
            "erasures_again_5_again",
            again::again_sql(target, &requests, RECEIVED_AT + 2_000),
        ),
        ("erasures_again_6_pending", pending_sql(target, 100)),
    ];
    queries
        .into_iter()
        .map(|(label, sql)| (label.to_string(), json!(sql)))
        .collect()
}

/// Per rollup, its `SELECT` and the exact answer from the callbacks table with `FINAL`, both per
/// day and key, sums rounded alike.
fn rollup_checks(target: &Target) -> serde_json::Map<String, Json> {
    use adjust_sink::clickhouse::schema::views::ROLLUPS;
    let mut out = serde_json::Map::new();
    for r in ROLLUPS {
        let keys: Vec<&str> = r.key_columns().iter().map(|c| c.name).collect();
        let keys = keys.join(", ");
        let (mut sums, mut exact) = (Vec::new(), Vec::new());
        for m in r.sums {
            match m.value {
                None => {
                    sums.push(m.name.to_string());
                    exact.push("count()".to_string());
                }
                Some(v) => {
                    sums.push(format!("round({}, 6)", m.name));
                    exact.push(format!("round(sum({v}), 6)"));
                }
            }
        }
        let kinds: Vec<String> = r.kinds().iter().map(|k| format!("'{k}'")).collect();
        let rollup = format!(
            "SELECT {keys}, {} FROM {}.{} ORDER BY {keys}",
            sums.join(", "),
            target.database,
            r.table
        );
        let exact = format!(
            "SELECT event_date AS day, {}, {} FROM {} FINAL \
             WHERE activity_kind IN ({}) AND environment != 'sandbox' GROUP BY {keys} ORDER BY {keys}",
            keys.trim_start_matches("day, "),
            exact.join(", "),
            target.table(),
            kinds.join(", ")
        );
        out.insert(r.table.to_string(), json!([rollup, exact]));
    }
    out
}
