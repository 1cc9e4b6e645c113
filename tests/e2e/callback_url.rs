//! `callback-url` round trip: every generated URL (global, every trigger, `--all`, the partner
//! form) has each `{placeholder}` filled with a sample value of its type, the way Adjust fills
//! it (percent-encoded), and must decode into exactly those values, column by column: nothing in
//! `extra`, nothing missing, no decode problem. Offline through `decode` → `encode` → `Reader`,
//! and through the real binary into the real ClickHouse.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use adjust_sink::adjust::catalog::{CATALOG, Placeholder, Ty};
use adjust_sink::adjust::decode::{Body, DecodeOptions, decode};
use adjust_sink::adjust::identity::callback_id;
use adjust_sink::callback_url::{self, Options, Target};
use adjust_sink::row::columns;
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::{Map, Value, json};

use crate::fixtures::{Fixture, compare, decode_offline, utc_date, utc_datetime};
use crate::support::{Db, Sink};

/// Columns the sink fills itself, outside the callback's control.
const SINK_SET: [&str; 4] = ["received_at", "callback_id", "source_ip", "ingest_source"];

/// Placeholders whose integers may be negative (`att_status=-1`: could not read; `iad_ad_id=-1`:
/// the default product page).
const NEGATIVE: [&str; 2] = ["att_status", "iad_ad_id"];

/// Percent-encodes a value as Adjust does when it fills a placeholder.
fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

/// The sample value of the `i`-th placeholder of the URL `name`: the text Adjust would put in,
/// and the cell text(s) the row must hold (see `fixtures.rs` for the conventions). The nonce
/// names the URL, so that callbacks of different URLs are different activities.
fn sample(p: &Placeholder, i: usize, kind: &str, name: &str) -> (String, Vec<(String, Value)>) {
    let n = i as i64;
    let one = |v: Value| vec![(p.name.to_owned(), v)];
    match p.ty {
        _ if p.name == "activity_kind" => (kind.to_owned(), one(json!(kind))),
        Ty::Time => {
            let t = 1_700_000_000 + n;
            (t.to_string(), one(json!(utc_datetime(t))))
        }
        Ty::TimeMs => {
            let t = 1_700_000_000_000 + n * 1000 + 7;
            (t.to_string(), one(json!(t.to_string())))
        }
        Ty::Flag => {
            let f = i % 2;
            (f.to_string(), one(json!(f.to_string())))
        }
        Ty::Int => {
            let v = if NEGATIVE.contains(&p.name) {
                -1
            } else {
                n % 60 + 2
            };
            (v.to_string(), one(json!(v.to_string())))
        }
        Ty::Float => {
            let v = n as f64 + 0.5;
            (v.to_string(), one(json!(format!("{v}"))))
        }
        Ty::Json => {
            let v = format!(r#"{{"k":"v{i}","n":[1,2]}}"#);
            (v.clone(), one(json!(v)))
        }
        Ty::Params => {
            let v = format!(r#"{{"user_id":"u {i}","plan":"gold::x&y=z"}}"#);
            let kv = json!({"user_id": format!("u {i}"), "plan": "gold::x&y=z"});
            (
                v.clone(),
                vec![
                    (p.name.to_owned(), json!(v)),
                    (format!("{}_kv", p.name), kv),
                ],
            )
        }
        Ty::Str | Ty::LowCard => {
            let v = match p.name {
                "tracker_name" | "link_name" => "Net work::Xmas (123)::Rein deer::320x70_en".into(),
                "nonce" => format!("nonce {i} of {name}"),
                _ => format!("{} {i} a&b=c+d/e?%", p.name),
            };
            (v.clone(), one(json!(v)))
        }
    }
}

/// The expectation of a placeholder that is not in the URL.
fn absent(p: &Placeholder) -> Vec<(String, Value)> {
    match p.ty {
        Ty::Str | Ty::LowCard | Ty::Json => vec![(p.name.to_owned(), json!(""))],
        Ty::Params => vec![
            (p.name.to_owned(), json!("")),
            (format!("{}_kv", p.name), json!({})),
        ],
        _ => vec![(p.name.to_owned(), Value::Null)],
    }
}

/// A generated URL with every placeholder filled, and the row it must give.
struct Filled {
    name: String,
    /// `/adjust…?…`, relative to the sink root.
    path_and_query: String,
    trigger: String,
    query: String,
    expect: Map<String, Value>,
}

/// Fills every `{placeholder}` of `url` (which must start with `base`) with its sample value.
fn fill(name: &str, base: &str, url: &str, kind: &str) -> Filled {
    let rest = url
        .strip_prefix(base)
        .unwrap_or_else(|| panic!("{name}: {url} does not start with {base}"));
    let (path, template) = rest.split_once('?').expect("a query");
    let trigger = path
        .strip_prefix("/adjust/")
        .map(str::to_owned)
        .unwrap_or_else(|| {
            assert_eq!(path, "/adjust", "{name}");
            String::new()
        });
    let mut sent = BTreeSet::new();
    let mut pairs = Vec::new();
    let mut expect = Map::new();
    for (i, pair) in template.split('&').enumerate() {
        let (key, value) = pair.split_once('=').expect("key=value");
        assert_eq!(
            value,
            format!("{{{key}}}"),
            "{name}: `{pair}` is not name={{name}}"
        );
        let p = CATALOG
            .iter()
            .find(|p| p.name == key)
            .unwrap_or_else(|| panic!("{name}: `{key}` is not a placeholder"));
        assert!(sent.insert(key), "{name}: `{key}` twice");
        let (text, cells) = sample(p, i, kind, name);
        pairs.push(format!("{key}={}", enc(&text)));
        expect.extend(cells);
    }
    for required in callback_url::REQUIRED {
        assert!(sent.contains(required), "{name}: no {required}");
    }
    for p in CATALOG.iter().filter(|p| !sent.contains(p.name)) {
        expect.extend(absent(p));
    }
    let created_at = 1_700_000_000
        + template
            .split('&')
            .position(|pair| pair.starts_with("created_at="))
            .expect("created_at") as i64;
    expect.insert("event_date".into(), json!(utc_date(created_at / 86_400)));
    expect.insert("callback_trigger".into(), json!(trigger));
    expect.insert("extra".into(), json!({}));
    expect.insert("raw_query".into(), json!(""));
    let query = pairs.join("&");
    assert!(!query.contains(['{', '}']), "{name}: a placeholder left");
    Filled {
        name: name.to_owned(),
        path_and_query: format!("{path}?{query}"),
        trigger,
        query,
        expect,
    }
}

/// Every stored column is expected (the sink-set ones aside) and nothing else.
fn assert_covers_every_column(f: &Filled) {
    let all: BTreeSet<String> = columns().into_iter().map(|c| c.name).collect();
    let expected: BTreeSet<String> = f
        .expect
        .keys()
        .cloned()
        .chain(SINK_SET.iter().map(|s| s.to_string()))
        .collect();
    assert_eq!(expected, all, "{}: expectations vs columns", f.name);
}

/// Decodes `f` offline: no problem, no `extra`, and every column as expected.
fn check_offline(f: &Filled) -> Vec<String> {
    assert_covers_every_column(f);
    let cb = decode(
        f.query.as_bytes(),
        Body::None,
        &f.trigger,
        &DecodeOptions::new(),
    );
    let mut wrong = Vec::new();
    if !cb.problems.is_empty() {
        wrong.push(format!("{}: decode problems {:?}", f.name, cb.problems));
    }
    if !cb.extra.is_empty() {
        wrong.push(format!("{}: landed in extra: {:?}", f.name, cb.extra));
    }
    let fixture = Fixture {
        name: f.name.clone(),
        description: f.name.clone(),
        method: "GET".into(),
        path: f.path_and_query.split('?').next().unwrap_or("").into(),
        content_type: None,
        query: f.query.clone(),
        body: None,
        expect: f.expect.clone(),
    };
    wrong.extend(compare(&f.name, &f.expect, &decode_offline(&fixture)));
    wrong
}

/// The kind a URL's sample callback claims: the trigger's first kind, `install` for the global one.
fn kind_of(target: &Target) -> &'static str {
    match target {
        Target::Global | Target::Partner => "install",
        Target::Event(_) => "event",
        Target::Trigger(name) => callback_url::trigger(name).expect("trigger").kinds()[0],
    }
}

const BASE: &str = "https://sink.example.com/prefix";

#[test]
fn every_generated_url_decodes_into_every_column() {
    let mut wrong = Vec::new();
    let mut checked = 0;
    for all in [false, true] {
        let out = callback_url::generate(&Options {
            base_url: BASE.into(),
            all,
            ..Options::default()
        })
        .expect("generate");
        assert_eq!(out.entries.len(), 1 + callback_url::TRIGGERS.len());
        for e in &out.entries {
            let name = format!("{:?}{}", e.target, if all { " --all" } else { "" });
            let f = fill(&name, BASE, &e.url, kind_of(&e.target));
            if all {
                assert!(
                    CATALOG.iter().all(|p| f.expect[p.name] != absent(p)[0].1),
                    "{name}: --all leaves a placeholder out"
                );
            }
            wrong.extend(check_offline(&f));
            checked += 1;
        }
    }
    assert!(
        wrong.is_empty(),
        "{} mismatches in {checked} URLs:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn the_partner_form_carries_the_same_urls_and_they_decode_too() {
    let opts = |partner: bool| Options {
        base_url: BASE.into(),
        event_tokens: vec!["f0ob4r".into(), "bkrfgq".into()],
        partner,
        tracker: partner.then(|| "abc123".into()),
        fields: Some(callback_url::Fields::Standard),
        ..Options::default()
    };
    let plain = callback_url::generate(&opts(false)).expect("plain");
    let partner = callback_url::generate(&opts(true)).expect("partner");
    assert_eq!(partner.entries.len(), 1);
    let url = &partner.entries[0].url;
    let query = url
        .strip_prefix("https://app.adjust.com/abc123?")
        .expect("tracker URL");
    let mut wrong = Vec::new();
    let mut params = Vec::new();
    for pair in query.split('&') {
        let (param, value) = pair.split_once('=').expect("param=value");
        assert!(
            value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)),
            "{param}: not fully encoded"
        );
        let callback = percent_decode_str(value).decode_utf8().expect("utf-8");
        let trigger = match param {
            "event_callback_f0ob4r_bkrfgq" => "event",
            other => other
                .strip_suffix("_callback")
                .expect("a callback parameter"),
        };
        let same = plain
            .entries
            .iter()
            .find(|e| match &e.target {
                Target::Trigger(t) => *t == trigger,
                Target::Event(Some(_)) => trigger == "event",
                _ => false,
            })
            .unwrap_or_else(|| panic!("{param}: no dashboard URL for {trigger}"));
        assert_eq!(callback, same.url, "{param}");
        let kind = callback_url::trigger(trigger).expect("trigger").kinds()[0];
        wrong.extend(check_offline(&fill(param, BASE, &callback, kind)));
        params.push(param.to_owned());
    }
    assert_eq!(
        params,
        [
            "click_callback",
            "impression_callback",
            "install_callback",
            "reattribution_callback",
            "session_callback",
            "event_callback_f0ob4r_bkrfgq",
            "rejected_install_callback",
            "rejected_reattribution_callback",
        ]
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Runs `adjust-sink callback-url` with `args`: (stdout, stderr), asserting success.
fn run_binary(args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_adjust-sink"))
        .arg("callback-url")
        .args(args)
        .env_remove("ADJUST_SINK_BASE_URL")
        .output()
        .expect("run adjust-sink callback-url");
    let stdout = String::from_utf8(out.stdout).expect("utf-8 stdout");
    let stderr = String::from_utf8(out.stderr).expect("utf-8 stderr");
    assert!(
        out.status.success(),
        "callback-url {args:?} failed: {stderr}"
    );
    (stdout, stderr)
}

/// The URLs of the binary's output, each after its `# …` comment line and before its
/// `# Adjust callback tester: …` line.
fn urls_of(stdout: &str) -> Vec<String> {
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines.len().is_multiple_of(3) && !lines.is_empty(),
        "{stdout}"
    );
    lines
        .chunks(3)
        .map(|three| {
            assert!(three[0].starts_with("# "), "no comment before {}", three[1]);
            assert_eq!(
                three[2],
                format!(
                    "# Adjust callback tester: https://app.adjust.com/cbtest?callback={}",
                    callback_url::encode_value(three[1])
                )
            );
            three[1].to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn minimal_partner_urls_are_short_and_land_with_identity_and_attribution() {
    let db = Db::fresh("callback_url_minimal").await;
    let sink = Sink::start(&db, &[]).await;
    let base = format!("http://{}", sink.main);
    let out = callback_url::generate(&Options {
        base_url: base.clone(),
        event_tokens: vec!["f0ob4r".into()],
        partner: true,
        tracker: Some("abc123".into()),
        ..Options::default()
    })
    .expect("partner");
    let callbacks = &out.entries[0].callbacks;
    assert_eq!(callbacks.len(), 8, "every partner trigger");
    let mut filled = Vec::new();
    for (param, url) in callbacks {
        assert!(url.len() < callback_url::LONG_URL, "{param}: {}", url.len());
        assert!(
            !out.warnings.iter().any(|w| w.contains(param.as_str())),
            "{:?}",
            out.warnings
        );
        let trigger = param
            .strip_suffix("_callback")
            .unwrap_or("event")
            .trim_end_matches("_f0ob4r");
        let kind = callback_url::trigger(trigger).expect("trigger").kinds()[0];
        filled.push(fill(param, &base, url, kind));
    }
    for f in &filled {
        assert_eq!(
            sink.get(&f.path_and_query).await.status(),
            200,
            "{}",
            f.name
        );
    }
    assert_eq!(
        db.wait_rows(filled.len() as u64, Duration::from_secs(30))
            .await,
        filled.len() as u64
    );
    let mut wrong = Vec::new();
    for f in &filled {
        let id = callback_id(&decode(
            f.query.as_bytes(),
            Body::None,
            &f.trigger,
            &DecodeOptions::new(),
        ));
        // The name parts are cut from tracker_name (not sent themselves): checked below.
        let mut expect = f.expect.clone();
        for part in [
            "network_name",
            "campaign_name",
            "adgroup_name",
            "creative_name",
        ] {
            expect.remove(part);
        }
        wrong.extend(compare(
            &f.name,
            &expect,
            &crate::corpus::actual(&db, id, &expect).await,
        ));
        let row = db
            .row_where(
                &[
                    "adid",
                    "app_token",
                    "nonce",
                    "created_at",
                    "tracker_name",
                    "network_name",
                ],
                &format!("callback_id = {id}"),
            )
            .await;
        for (col, v) in &row {
            assert!(
                !v.as_str().unwrap_or("").is_empty(),
                "{}: {col} empty",
                f.name
            );
        }
        let tracker_name = row["tracker_name"].as_str().unwrap();
        assert!(
            tracker_name.starts_with(row["network_name"].as_str().unwrap()),
            "{}: {row:?}",
            f.name
        );
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn pasted_urls_land_in_clickhouse_with_every_value() {
    let db = Db::fresh("callback_url").await;
    let sink = Sink::start(&db, &[]).await;
    let base = format!("http://{}", sink.main);
    // What a user would paste: the binary's own output for this sink.
    let (stdout, stderr) = run_binary(&["--base-url", &base, "--trigger", "global,install"]);
    assert!(
        stderr.contains("warning") && stderr.contains("IP address"),
        "{stderr}"
    );
    let mut urls = urls_of(&stdout);
    let (all_out, _) = run_binary(&["--base-url", &base, "--trigger", "sk_install", "--all"]);
    urls.extend(urls_of(&all_out));
    assert_eq!(urls.len(), 3, "{stdout}{all_out}");
    let filled: Vec<Filled> = urls
        .iter()
        .zip([
            ("global", "install"),
            ("install", "install"),
            ("sk_install --all", "sk_install"),
        ])
        .map(|(url, (name, kind))| fill(name, &base, url, kind))
        .collect();
    for f in &filled {
        let resp = sink.get(&f.path_and_query).await;
        assert_eq!(resp.status(), 200, "{} was not accepted", f.name);
    }
    let landed = db
        .wait_rows(filled.len() as u64, Duration::from_secs(30))
        .await;
    assert_eq!(landed, filled.len() as u64);
    let mut wrong = Vec::new();
    for f in &filled {
        assert_covers_every_column(f);
        let cb = decode(
            f.query.as_bytes(),
            Body::None,
            &f.trigger,
            &DecodeOptions::new(),
        );
        let id = callback_id(&cb);
        // The row is selected by `callback_id` (an alias of it would shadow the column there).
        let mut expect = f.expect.clone();
        expect.insert("source_ip".into(), json!("127.0.0.1"));
        expect.insert("ingest_source".into(), json!("callback"));
        wrong.extend(compare(
            &f.name,
            &expect,
            &crate::corpus::actual(&db, id, &expect).await,
        ));
    }
    assert!(
        wrong.is_empty(),
        "{} mismatches:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// Whether `fragments` (a line split at `…`) occur in `line` in this order, the first at its
/// start and the last at its end.
fn matches_elided(line: &str, fragments: &[&str]) -> bool {
    let mut rest = line;
    for (i, fragment) in fragments.iter().enumerate() {
        match rest.find(fragment) {
            Some(at) if i > 0 || at == 0 => rest = &rest[at + fragment.len()..],
            _ => return false,
        }
    }
    rest.is_empty() || fragments.last().is_some_and(|f| f.is_empty())
}

#[test]
fn the_documented_examples_are_what_the_binary_prints() {
    let doc = include_str!("../../docs/callbacks.md");
    let section = doc
        .split("\n## Callback URLs\n")
        .nth(1)
        .expect("a Callback URLs section")
        .split("\n## ")
        .next()
        .unwrap_or("");
    let blocks: Vec<&str> = section.split("```console\n").skip(1).collect();
    assert!(
        !blocks.is_empty(),
        "no example in the Callback URLs section"
    );
    for block in blocks {
        let block = block.split("```").next().unwrap_or("");
        let mut lines = block.lines();
        let command = lines.next().expect("a command line");
        let args: Vec<&str> = command
            .strip_prefix("$ adjust-sink callback-url ")
            .unwrap_or_else(|| panic!("not a callback-url command: {command}"))
            .split_whitespace()
            .collect();
        let (stdout, _) = run_binary(&args);
        let printed: Vec<&str> = stdout.lines().collect();
        let shown: Vec<&str> = lines.collect();
        assert_eq!(shown.len(), printed.len(), "{command}: line count");
        for (shown, printed) in shown.iter().zip(&printed) {
            let fragments: Vec<&str> = shown.split('…').collect();
            assert!(
                matches_elided(printed, &fragments),
                "{command}: docs/callbacks.md shows\n{shown}\nbut the binary prints\n{printed}"
            );
        }
    }
}
