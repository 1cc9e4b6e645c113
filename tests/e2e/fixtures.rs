//! The callback corpus in `tests/fixtures/callbacks/`: one realistic callback per activity kind
//! plus the delivery shapes (single-activity path, POST form, POST JSON) and damaged input, each
//! with the values its row must hold, as ClickHouse's `toString(column)` renders them.
//!
//! Expectation conventions: `Time` → `"YYYY-MM-DD HH:MM:SS"` (UTC); `TimeMs` → integer
//! milliseconds; flags and integers → decimal text; floats → shortest text (`"3.99"`, `"4"`);
//! string columns → the decoded text (`""` when not sent); NULL → JSON `null`; `Nested` columns
//! (`extra`, `<params>_kv`) → a JSON object (a key that occurs more than once → array of values).
//!
//! The kinds the corpus must cover are the crate's activity table
//! (`adjust_sink::adjust::activity::ACTIVITIES`): a kind added there without a fixture fails here.
//!
//! The offline test runs every fixture through `decode` → `encode` → `Reader`, without a server.

use std::path::Path;

use adjust_sink::adjust::activity;
use adjust_sink::clickhouse::Profile;
use adjust_sink::clickhouse::types::column_type;
use adjust_sink::row;
use adjust_sink::row::rowbinary::Cell;
use serde::Deserialize;
use serde_json::{Map, Value};

/// The fixture whose `activity_kind` is deliberately one the crate does not know.
const UNKNOWN_KIND_FIXTURE: &str = "unknown_activity_kind";

/// `received_at` of the rows the offline test encodes (2024-07-01 00:00:00 UTC).
const RECEIVED_AT: u32 = 1_719_792_000;

/// One recorded callback and the row it must produce.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    /// The file stem.
    #[serde(skip)]
    pub name: String,
    pub description: String,
    /// `GET` or `POST`.
    pub method: String,
    /// `/adjust` (global callback) or `/adjust/{trigger}` (single activity).
    pub path: String,
    pub content_type: Option<String>,
    /// The raw query string, without `?` (`""` when none).
    pub query: String,
    pub body: Option<String>,
    /// Column → expected value (see the module docs for the conventions).
    pub expect: Map<String, Value>,
}

impl Fixture {
    /// The single-activity trigger: the path segment after `/adjust/`, `""` for `/adjust`.
    pub fn trigger(&self) -> &str {
        self.path.strip_prefix("/adjust/").unwrap_or("")
    }

    /// The body bytes (empty when none).
    pub fn body_bytes(&self) -> &[u8] {
        self.body.as_deref().unwrap_or("").as_bytes()
    }

    /// The URL the callback is sent to, relative to the server root.
    pub fn url(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }
}

/// Every fixture in `tests/fixtures/callbacks/*.json`, sorted by name.
pub fn load_all() -> Vec<Fixture> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/callbacks");
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read fixture directory {}: {e}", dir.display()));
    let mut fixtures: Vec<Fixture> = entries
        .map(|entry| entry.expect("fixture directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()));
            let mut fixture: Fixture = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("fixture {} does not parse: {e}", path.display()));
            fixture.name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_else(|| panic!("fixture file name {} is not UTF-8", path.display()))
                .to_owned();
            fixture
        })
        .collect();
    fixtures.sort_by(|a, b| a.name.cmp(&b.name));
    fixtures
}

/// Unix seconds → `YYYY-MM-DD HH:MM:SS` in UTC, as ClickHouse prints a `DateTime('UTC')`.
pub fn utc_datetime(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        s / 3600,
        s % 3600 / 60,
        s % 60
    )
}

/// Days since 1970-01-01 → `YYYY-MM-DD`, as ClickHouse prints a `Date`.
pub fn utc_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A decoded RowBinary cell of `column_type` → its expectation text (see the module docs).
pub fn cell_text(column_type: &str, cell: &Cell) -> Value {
    let ty = column_type
        .strip_prefix("Nullable(")
        .and_then(|t| t.strip_suffix(')'))
        .unwrap_or(column_type);
    match cell {
        Cell::Null => Value::Null,
        Cell::Str(s) => Value::String(s.clone()),
        Cell::UInt(v) if ty.starts_with("DateTime(") => {
            Value::String(utc_datetime(i64::try_from(*v).expect("DateTime fits i64")))
        }
        Cell::UInt(v) if ty == "Date" => {
            Value::String(utc_date(i64::try_from(*v).expect("Date fits i64")))
        }
        Cell::UInt(v) => Value::String(v.to_string()),
        // Int64, and epoch milliseconds (legacy `Int64`, modern `DateTime64(3)`) as integers.
        Cell::Int(v) => Value::String(v.to_string()),
        Cell::Float(v) => Value::String(format!("{v}")),
        Cell::Pairs(pairs) => {
            let mut obj = Map::new();
            for (k, v) in pairs {
                let v = Value::String(v.clone());
                match obj.get_mut(k) {
                    None => {
                        obj.insert(k.clone(), v);
                    }
                    Some(Value::Array(values)) => values.push(v),
                    Some(first) => *first = Value::Array(vec![first.take(), v]),
                }
            }
            Value::Object(obj)
        }
    }
}

/// The mismatches between a fixture's expectations and a row (column → text); an expected
/// column missing from the row is a mismatch too.
pub fn compare(
    name: &str,
    expect: &Map<String, Value>,
    actual: &Map<String, Value>,
) -> Vec<String> {
    expect
        .iter()
        .filter_map(|(column, want)| match actual.get(column) {
            None => Some(format!(
                "{name}: `{column}`: expected {want}, but the row has no such column"
            )),
            Some(got) if got != want => {
                Some(format!("{name}: `{column}`: expected {want}, got {got}"))
            }
            Some(_) => None,
        })
        .collect()
}

/// Builds a fixture's row as the server does ([`row::build`]), and reads it back as column → text.
pub fn decode_offline(fixture: &Fixture) -> Map<String, Value> {
    let built = row::build(
        &row::Received {
            query: fixture.query.as_bytes(),
            body: fixture.body_bytes(),
            content_type: fixture.content_type.as_deref(),
            trigger: fixture.trigger(),
            source_ip: std::net::Ipv4Addr::new(178, 162, 216, 70).into(),
            received_at: RECEIVED_AT,
        },
        &row::Options::new(),
    );
    let row = built.row;
    let cells = row::read_row(&row)
        .unwrap_or_else(|e| panic!("{}: the row does not read back: {e}", fixture.name));
    let mut actual = Map::new();
    for (column, cell) in cells {
        actual.insert(
            column.name.clone(),
            cell_text(&column_type(&column, Profile::Legacy), &cell),
        );
    }
    actual
}

/// The `activity_kind` a fixture expects in its row (`None` when it expects none).
fn expected_kind(fixture: &Fixture) -> Option<&str> {
    fixture.expect.get("activity_kind").and_then(Value::as_str)
}

/// The known activity kinds no fixture expects.
pub fn missing_kinds(fixtures: &[Fixture]) -> Vec<&'static str> {
    activity::kinds()
        .filter(|kind| !fixtures.iter().any(|f| expected_kind(f) == Some(*kind)))
        .collect()
}

/// Fixtures whose kind the crate does not know, but for the one that is meant to be unknown
/// (which must stay unknown), as problems.
fn unknown_kinds(fixtures: &[Fixture]) -> Vec<String> {
    let mut problems = Vec::new();
    for f in fixtures {
        match expected_kind(f) {
            None => problems.push(format!("{}: expects no activity_kind", f.name)),
            Some(kind) => {
                let known = activity::find(kind).is_some();
                if f.name == UNKNOWN_KIND_FIXTURE && known {
                    problems.push(format!("{}: `{kind}` is known to the crate", f.name));
                } else if f.name != UNKNOWN_KIND_FIXTURE && !known {
                    problems.push(format!("{}: `{kind}` is not a known activity kind", f.name));
                }
            }
        }
    }
    if !fixtures.iter().any(|f| f.name == UNKNOWN_KIND_FIXTURE) {
        problems.push(format!("no fixture {UNKNOWN_KIND_FIXTURE}"));
    }
    problems
}

/// Shape problems of a fixture itself (not of the decoder).
fn lint(fixture: &Fixture) -> Vec<String> {
    let name = &fixture.name;
    let mut problems = Vec::new();
    if fixture.description.trim().is_empty() {
        problems.push(format!("{name}: empty description"));
    }
    match fixture.method.as_str() {
        "GET" if fixture.body.is_some() => problems.push(format!("{name}: GET with a body")),
        "GET" | "POST" => {}
        other => problems.push(format!("{name}: method {other} is neither GET nor POST")),
    }
    if fixture.path != "/adjust" && !fixture.path.starts_with("/adjust/") {
        problems.push(format!(
            "{name}: path {} is not under /adjust",
            fixture.path
        ));
    }
    if fixture.query.starts_with('?') {
        problems.push(format!("{name}: query must not start with `?`"));
    }
    if fixture.expect.len() < 15 {
        problems.push(format!(
            "{name}: only {} expected columns (at least 15)",
            fixture.expect.len()
        ));
    }
    problems
}

#[test]
fn date_formatting_matches_clickhouse() {
    assert_eq!(utc_datetime(0), "1970-01-01 00:00:00");
    assert_eq!(utc_datetime(1_404_214_665), "2014-07-01 11:37:45");
    assert_eq!(utc_datetime(951_782_400), "2000-02-29 00:00:00");
    assert_eq!(utc_datetime(1_709_251_199), "2024-02-29 23:59:59");
    assert_eq!(utc_datetime(i64::from(u32::MAX)), "2106-02-07 06:28:15");
    assert_eq!(utc_date(19_905), "2024-07-01");
    assert_eq!(cell_text("Nullable(Float64)", &Cell::Float(3.99)), "3.99");
    assert_eq!(cell_text("Nullable(Float64)", &Cell::Float(4.0)), "4");
    assert_eq!(cell_text("Nullable(Float64)", &Cell::Float(0.5)), "0.5");
    assert_eq!(
        cell_text(
            "Nested(key String, value String)",
            &Cell::Pairs(vec![
                ("a".into(), "1".into()),
                ("b".into(), "2".into()),
                ("a".into(), "3".into()),
            ])
        ),
        serde_json::json!({"a": ["1", "3"], "b": "2"})
    );
}

#[test]
fn corpus_decodes_offline() {
    let fixtures = load_all();
    assert!(!fixtures.is_empty(), "no fixtures found");
    let mut mismatches = Vec::new();
    for fixture in &fixtures {
        mismatches.extend(lint(fixture));
        let actual = decode_offline(fixture);
        let found = compare(&fixture.name, &fixture.expect, &actual);
        println!(
            "{:28} {:4} {:24} {:2} expected, {} mismatched: {}",
            fixture.name,
            fixture.method,
            fixture.url().split('?').next().unwrap_or(""),
            fixture.expect.len(),
            found.len(),
            fixture.description
        );
        mismatches.extend(found);
    }
    let missing = missing_kinds(&fixtures);
    if !missing.is_empty() {
        mismatches.push(format!("no fixture for activity kinds {missing:?}"));
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches in {} fixtures:\n{}",
        mismatches.len(),
        fixtures.len(),
        mismatches.join("\n")
    );
}

#[test]
fn every_known_activity_kind_has_a_fixture() {
    let fixtures = load_all();
    // Both directions: every kind of the crate's table has a fixture, and every fixture's kind is
    // one of the crate's (the deliberately unknown one aside).
    let mut problems = unknown_kinds(&fixtures);
    let missing = missing_kinds(&fixtures);
    if !missing.is_empty() {
        problems.push(format!("no fixture for activity kinds {missing:?}"));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
