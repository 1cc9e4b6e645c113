//! The SRE kit against the real binary: every metric the Grafana dashboard and the Prometheus
//! rules use is on `/metrics` from the start (before any traffic), the dashboard has its panels,
//! every alert is tested, documented in the runbook and listed in docs/metrics.md, and the new
//! metrics (request duration, last callback, build info, backlog age during an outage) behave.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::{Db, Sink};

const DASHBOARD: &str = "deploy/grafana/adjust-sink.json";
const ALERTS: &str = "deploy/prometheus/alerts.yml";
const ALERTS_TEST: &str = "deploy/prometheus/alerts_test.yml";
const RUNBOOK: &str = "docs/runbook.md";

/// Labels whose values come from closed sets in the sink; a matcher on one of them must name a
/// value some series on `/metrics` has.
const CLOSED_LABELS: &[&str] = &[
    "outcome",
    "route",
    "activity_kind",
    "kind",
    "reason",
    "result",
    "retriable",
    "cause",
];

fn read(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// A YAML file without its comment lines (they may name metrics to come).
fn yaml_without_comments(path: &str) -> String {
    read(path)
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every PromQL expression of the dashboard (`expr` of each target, and the variables' queries).
fn dashboard_exprs(dashboard: &serde_json::Value) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("expr" | "definition", serde_json::Value::String(s)) => {
                            out.push(s.clone())
                        }
                        _ => walk(v, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(dashboard, &mut out);
    out
}

/// Panels that show data (rows are containers), including those nested in collapsed rows.
fn data_panels(dashboard: &serde_json::Value) -> Vec<&serde_json::Value> {
    let mut out = Vec::new();
    let mut todo: Vec<&serde_json::Value> = dashboard["panels"]
        .as_array()
        .expect("panels array")
        .iter()
        .collect();
    while let Some(p) = todo.pop() {
        if p["type"] == "row" {
            todo.extend(p["panels"].as_array().into_iter().flatten());
        } else {
            out.push(p);
        }
    }
    out
}

/// The `adjust_sink_*` names in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("adjust_sink_") {
        let before = rest[..i].chars().next_back();
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            names.insert(tail[..end].to_string());
        }
        rest = &tail[end..];
    }
    names
}

/// `(label, value)` of every `label="v"` / `label=~"a|b"` matcher on a closed label in `text`
/// (each alternative of a regex matcher, which here are plain alternations).
fn closed_label_matchers(text: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for label in CLOSED_LABELS {
        for op in ["=\"", "=~\""] {
            let pat = format!("{label}{op}");
            let mut rest = text;
            while let Some(i) = rest.find(&pat) {
                let preceded_by_ident = rest[..i]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
                let tail = &rest[i + pat.len()..];
                let end = tail.find('"').expect("closing quote");
                if !preceded_by_ident {
                    for v in tail[..end].split('|') {
                        out.insert((label.to_string(), v.to_string()));
                    }
                }
                rest = &tail[end..];
            }
        }
    }
    out
}

/// What a scrape holds: family name → type, and the series (name → label pairs of each).
struct Scrape {
    types: BTreeMap<String, String>,
    series: BTreeMap<String, Vec<BTreeMap<String, String>>>,
}

fn parse_scrape(text: &str) -> Scrape {
    let mut types = BTreeMap::new();
    let mut series: BTreeMap<String, Vec<BTreeMap<String, String>>> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split_whitespace();
            let (name, kind) = (it.next().unwrap(), it.next().unwrap());
            types.insert(name.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let name_end = line.find(['{', ' ']).expect("sample line");
        let mut labels = BTreeMap::new();
        if line[name_end..].starts_with('{') {
            let close = line.rfind('}').expect("closing brace");
            // Label values here never hold commas or quotes.
            for pair in line[name_end + 1..close]
                .split(',')
                .filter(|p| !p.is_empty())
            {
                let (k, v) = pair.split_once('=').expect("label pair");
                labels.insert(k.to_string(), v.trim_matches('"').to_string());
            }
        }
        series
            .entry(line[..name_end].to_string())
            .or_default()
            .push(labels);
    }
    Scrape { types, series }
}

/// The family a sample name belongs to (`x_bucket` → `x` for a histogram).
fn family_of<'a>(scrape: &Scrape, name: &'a str) -> Option<&'a str> {
    if scrape.types.contains_key(name) {
        return Some(name);
    }
    ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
        let base = name.strip_suffix(suffix)?;
        (scrape.types.get(base).map(String::as_str) == Some("histogram")).then_some(base)
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn dashboard_and_alerts_use_only_metrics_on_a_fresh_sink() {
    let db = Db::fresh("monitoring_names").await;
    let sink = Sink::start(&db, &[]).await;
    // No traffic: every series the kit relies on must be there, at zero, from the start.
    let scrape = parse_scrape(&sink.metrics().await);

    let dashboard: serde_json::Value =
        serde_json::from_str(&read(DASHBOARD)).expect("dashboard is JSON");
    let exprs = dashboard_exprs(&dashboard).join("\n");
    let sources = [
        (DASHBOARD, exprs),
        (ALERTS, yaml_without_comments(ALERTS)),
        (ALERTS_TEST, yaml_without_comments(ALERTS_TEST)),
    ];
    let mut problems = Vec::new();
    for (file, text) in &sources {
        let names = metric_names(text);
        assert!(names.len() >= 8, "{file}: only {names:?}");
        for name in &names {
            match family_of(&scrape, name) {
                None => problems.push(format!("{file}: {name} is not a metric of the sink")),
                // A histogram is only ever used through its _bucket/_sum/_count series.
                Some(family) if family == name && scrape.types[family] == "histogram" => {
                    problems.push(format!("{file}: {name} is a histogram; use {name}_bucket"))
                }
                Some(_) if !scrape.series.contains_key(name) => {
                    problems.push(format!("{file}: {name} has no series before any traffic"))
                }
                Some(_) => {}
            }
        }
        for (label, value) in closed_label_matchers(text) {
            let exists = scrape
                .series
                .iter()
                .filter(|(name, _)| name.starts_with("adjust_sink_"))
                .flat_map(|(_, s)| s)
                .any(|labels| labels.get(&label) == Some(&value));
            if !exists {
                problems.push(format!(
                    "{file}: no series has {label}=\"{value}\" before any traffic"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // The dashboard uses a fair share of what the sink exposes.
    let used: BTreeSet<&str> = metric_names(&sources[0].1)
        .iter()
        .filter_map(|n| family_of(&scrape, n))
        .map(|f| scrape.types.get_key_value(f).unwrap().0.as_str())
        .collect();
    assert!(used.len() >= 20, "dashboard uses only {used:?}");
}

#[test]
fn dashboard_has_at_least_eight_panels_with_queries() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&read(DASHBOARD)).expect("dashboard is JSON");
    assert_eq!(dashboard["uid"], "adjust-sink");
    let panels = data_panels(&dashboard);
    assert!(panels.len() >= 8, "{} panels", panels.len());
    for p in &panels {
        let exprs: Vec<&str> = p["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["expr"].as_str())
            .collect();
        assert!(
            !exprs.is_empty() && exprs.iter().all(|e| e.contains("adjust_sink_")),
            "panel {:?} has no adjust_sink query: {exprs:?}",
            p["title"]
        );
        assert!(
            p["gridPos"]["w"].as_u64().unwrap_or(0) > 0,
            "{:?}",
            p["title"]
        );
    }
    let ids: BTreeSet<u64> = panels.iter().filter_map(|p| p["id"].as_u64()).collect();
    assert_eq!(ids.len(), panels.len(), "panel ids are unique");
}

/// Alert names of alerts.yml, in file order.
fn alert_names() -> Vec<String> {
    yaml_without_comments(ALERTS)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:"))
        .map(|n| n.trim().to_string())
        .collect()
}

/// GitHub's anchor for a Markdown heading.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn every_alert_is_tested_documented_and_listed() {
    let alerts = alert_names();
    assert!(alerts.len() >= 10, "{alerts:?}");
    let rules = yaml_without_comments(ALERTS);

    // Each alert: summary, description, and a runbook_url whose anchor is a runbook heading.
    let runbook = read(RUNBOOK);
    let anchors: BTreeSet<String> = runbook
        .lines()
        .filter_map(|l| l.strip_prefix("## ").or_else(|| l.strip_prefix("### ")))
        .map(anchor)
        .collect();
    for link in runbook.split("](#").skip(1) {
        let target = &link[..link.find(')').expect("closing parenthesis")];
        assert!(
            anchors.contains(target),
            "{RUNBOOK}: link to missing #{target}"
        );
    }
    let blocks: Vec<&str> = rules.split("- alert:").skip(1).collect();
    assert_eq!(blocks.len(), alerts.len());
    for (name, block) in alerts.iter().zip(&blocks) {
        for key in ["summary:", "description:", "runbook_url:", "severity:"] {
            assert!(block.contains(key), "{name} lacks {key}");
        }
        let url = block
            .lines()
            .find_map(|l| l.trim().strip_prefix("runbook_url:"))
            .unwrap()
            .trim();
        let (page, fragment) = url.split_once('#').expect("runbook_url with an anchor");
        assert!(page.ends_with("/docs/runbook.md"), "{name}: {url}");
        assert_eq!(
            fragment,
            name.to_lowercase(),
            "{name}: anchor named after the alert"
        );
        assert!(
            anchors.contains(fragment),
            "{name}: no heading for #{fragment} in {RUNBOOK}"
        );
    }

    // Each alert fires in some promtool test case and stays quiet in another.
    let tests = yaml_without_comments(ALERTS_TEST);
    let mut cases: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in tests.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("alertname:") {
            current = Some(name.trim().to_string());
        } else if let Some(exp) = line.strip_prefix("exp_alerts:") {
            let name = current.take().expect("exp_alerts after alertname");
            let entry = cases.entry(name).or_default();
            if exp.trim() == "[]" {
                entry.1 += 1;
            } else {
                entry.0 += 1;
            }
        }
    }
    for name in &alerts {
        let (fires, quiet) = cases.get(name).copied().unwrap_or_default();
        assert!(
            fires > 0 && quiet > 0,
            "{name}: {fires} firing and {quiet} quiet cases in {ALERTS_TEST}"
        );
    }
    let unknown: Vec<&String> = cases.keys().filter(|n| !alerts.contains(n)).collect();
    assert!(unknown.is_empty(), "tests for unknown alerts {unknown:?}");

    // The alert list of docs/metrics.md is alerts.yml's, in the same order.
    let doc = read("docs/metrics.md");
    let listed: Vec<String> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| `AdjustSink"))
        .map(|rest| format!("AdjustSink{}", &rest[..rest.find('`').unwrap()]))
        .collect();
    assert_eq!(listed, alerts, "docs/metrics.md alert table vs {ALERTS}");
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_doc_table_matches_metrics() {
    let db = Db::fresh("monitoring_readme").await;
    let sink = Sink::start(&db, &[]).await;
    let scrape = parse_scrape(&sink.metrics().await);
    let families: BTreeSet<&str> = scrape
        .types
        .keys()
        .filter_map(|f| f.strip_prefix("adjust_sink_"))
        .collect();

    // The table after the "| metric | what |" header: names in backticks in its first column.
    let doc = read("docs/metrics.md");
    let table: Vec<&str> = doc
        .lines()
        .skip_while(|l| !l.starts_with("| metric | type |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert!(!table.is_empty(), "no metrics table in docs/metrics.md");
    let mut documented = BTreeSet::new();
    for row in &table {
        let first = row.split('|').nth(1).unwrap();
        for (i, part) in first.split('`').enumerate() {
            if i % 2 == 1 {
                let name = part.split('{').next().unwrap();
                documented.insert(name.to_string());
            }
        }
    }
    let missing: Vec<&&str> = families
        .iter()
        .filter(|f| !documented.contains(**f))
        .collect();
    let extra: Vec<&String> = documented
        .iter()
        .filter(|d| !families.contains(d.as_str()))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "docs/metrics.md metrics table: missing {missing:?}, not on /metrics {extra:?}"
    );
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test(flavor = "multi_thread")]
async fn backlog_age_grows_while_clickhouse_is_unreachable() {
    let db = Db::fresh("monitoring_outage").await;
    let dir = tempfile::tempdir().unwrap();
    let before = unix_now().floor();
    let sink = Sink::start_offline(&db, dir.path()).await;
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        sink.metric(&format!("adjust_sink_build_info{{version=\"{version}\"}}"))
            .await,
        1.0
    );
    // Before any callback: the start of the process.
    let started = sink
        .metric("adjust_sink_last_callback_timestamp_seconds")
        .await;
    assert!(started >= before && started <= unix_now(), "{started}");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let sent = unix_now().floor();
    assert_eq!(
        sink.get("/adjust/install?adid=a1&created_at=1700000000&nonce=outage-1")
            .await
            .status(),
        200
    );
    let last = sink
        .metric("adjust_sink_last_callback_timestamp_seconds")
        .await;
    assert!(last >= sent && last > started, "{last} vs sent at {sent}");
    let route = "outcome=\"accepted\",route=\"trigger\"";
    assert_eq!(
        sink.metric(&format!(
            "adjust_sink_request_duration_seconds_count{{{route}}}"
        ))
        .await,
        1.0
    );
    let took = sink
        .metric(&format!(
            "adjust_sink_request_duration_seconds_sum{{{route}}}"
        ))
        .await;
    assert!(took > 0.0 && took < 5.0, "{took}");

    // The batch is retried against a ClickHouse that does not answer: its age keeps growing.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut age = 0.0;
    while std::time::Instant::now() < deadline {
        age = sink
            .metric("adjust_sink_spool_oldest_unacked_age_seconds")
            .await;
        if age >= 3.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(age >= 3.0, "backlog age stuck at {age}");
    assert_eq!(sink.metric("adjust_sink_clickhouse_up").await, 0.0);
    assert!(
        sink.metric("adjust_sink_insert_errors_total{retriable=\"true\"}")
            .await
            >= 1.0
    );
}
