//! What analysts read, against the real ClickHouse: the per-activity views, the daily rollups fed by
//! materialized views, and every query of the analyst kit in `examples/sql/`.
//!
//! The data: the fixture corpus plus callbacks of an app of our own (`QuizTown`, July 2024) with
//! known values: installs over three days from several networks and countries, purchases at known
//! distances from the install (LTV), ad revenue from three mediation platforms, SKAN installs with a
//! network's and a device's copy of the same transaction, fraud rejections, a sandbox install and a
//! sandbox purchase, and three duplicates: an install sent to the global *and* the install callback
//! URL, a purchase and a SKAN postback each sent twice (retries).
//!
//! What is asserted about duplicates (Adjust's semantics: one activity, however often it is
//! delivered): the per-activity views, the kit and the daily rollups count each activity once:
//! `installs_daily` holds the production installs of the `installs` view, `revenue_daily` the
//! retried purchase once. (`rollups.rs` checks the rollups against the views at scale.)

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use adjust_sink::adjust::decode::{Body, DecodeOptions, decode};
use adjust_sink::adjust::identity::callback_id;
use adjust_sink::clickhouse::Profile;
use adjust_sink::clickhouse::schema::views::{self, VIEWS};

use crate::corpus::send;
use crate::fixtures::load_all;
use crate::support::{Db, Sink, migrate};

const APP: &str = "qz7t0wn4pp01";
/// 2024-07-01 00:00:00 UTC.
const D1: u32 = 1_719_792_000;
const D2: u32 = D1 + DAY;
const D3: u32 = D1 + 2 * DAY;
const DAY: u32 = 86_400;
const HOUR: u32 = 3_600;

const MOLOCO: &str = "Moloco::Q3 Launch::Adgroup A::Creative 1";
const UNITY: &str = "Unity Ads::Playables::Puzzle::v3";
const LIFTOFF: &str = "Liftoff::SKAN_DE (77)::";
const SHADY: &str = "ShadyAds::CPI_DE::sub_9::";
const CLICKFARM: &str = "ClickFarm::Retarget::::";

/// One generated callback: the path it is sent to and its query.
struct Gen {
    path: &'static str,
    query: String,
}

type Pairs = Vec<(&'static str, String)>;

fn adid(device: u32) -> String {
    format!("{device:032x}")
}

/// A global callback of `APP` (production unless `pairs` say otherwise).
fn cb(kind: &str, nonce: &str, created_at: u32, pairs: Pairs) -> Gen {
    cb_to("/adjust", kind, nonce, created_at, pairs)
}

fn cb_to(path: &'static str, kind: &str, nonce: &str, created_at: u32, pairs: Pairs) -> Gen {
    let mut url = reqwest::Url::parse("http://sink/").unwrap();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("activity_kind", kind)
            .append_pair("app_token", APP)
            .append_pair("app_name", "QuizTown")
            .append_pair("app_id", "com.quiztown.app")
            .append_pair("created_at", &created_at.to_string())
            .append_pair("nonce", nonce);
        if !pairs.iter().any(|(k, _)| *k == "environment") {
            q.append_pair("environment", "production");
        }
        for (k, v) in &pairs {
            q.append_pair(k, v);
        }
    }
    Gen {
        path,
        query: url.query().unwrap().to_string(),
    }
}

fn sandbox(mut pairs: Pairs) -> Pairs {
    pairs.push(("environment", "sandbox".into()));
    pairs
}

fn install(device: u32, at: u32, tracker: &str, country: &str) -> Pairs {
    vec![
        ("adid", adid(device)),
        ("installed_at", at.to_string()),
        ("tracker_name", tracker.into()),
        ("country", country.into()),
        ("os_name", "android".into()),
    ]
}

/// An event of `device` (installed at `installed`): token, name, and revenue, currency and
/// reporting revenue (USD) when it has revenue.
fn event(device: u32, installed: u32, token: &str, name: &str, money: Option<[&str; 3]>) -> Pairs {
    let mut p = vec![
        ("adid", adid(device)),
        ("installed_at", installed.to_string()),
        ("event", token.into()),
        ("event_name", name.into()),
    ];
    if let Some([revenue, currency, reporting]) = money {
        p.push(("revenue_float", revenue.into()));
        p.push(("currency", currency.into()));
        p.push(("reporting_revenue", reporting.into()));
        p.push(("reporting_currency", "USD".into()));
    }
    p
}

fn purchase(device: u32, installed: u32, money: [&str; 3]) -> Pairs {
    event(device, installed, "pur4as", "purchase", Some(money))
}

fn ad_revenue(device: u32, installed: u32, platform: &str, usd: &str) -> Pairs {
    vec![
        ("adid", adid(device)),
        ("installed_at", installed.to_string()),
        ("ad_mediation_platform", platform.into()),
        ("ad_impressions_count", "1".into()),
        ("revenue_float", usd.into()),
        ("currency", "USD".into()),
        ("reporting_revenue", usd.into()),
        ("reporting_currency", "USD".into()),
    ]
}

/// A SKAN postback of campaign 77: transaction id (`""`: none), `sk_conversion_value`, Apple's
/// `conversion-value` in `sk_payload`, tracker (none for the device's direct copy).
fn skan(
    transaction: &str,
    cv: Option<&str>,
    payload_cv: Option<u32>,
    tracker: Option<&str>,
) -> Pairs {
    let mut p: Pairs = vec![
        ("os_name", "ios".into()),
        ("sk_network_id", "su67r6k2v3.skadnetwork".into()),
        ("sk_campaign_id", "77".into()),
        ("sk_version", "4.0".into()),
    ];
    if !transaction.is_empty() {
        p.push(("sk_transaction_id", transaction.into()));
    }
    if let Some(cv) = cv {
        p.push(("sk_conversion_value", cv.into()));
    }
    let cv = payload_cv.map_or(String::new(), |v| format!(r#","conversion-value":{v}"#));
    p.push((
        "sk_payload",
        format!(r#"{{"version":"4.0","transaction-id":"{transaction}"{cv}}}"#),
    ));
    if let Some(t) = tracker {
        p.push(("tracker_name", t.into()));
    }
    p
}

fn rejected(reason: &str, tracker: &str) -> Pairs {
    vec![
        ("rejection_reason", reason.into()),
        ("tracker_name", tracker.into()),
        ("os_name", "android".into()),
    ]
}

/// Install times of devices 1 to 7.
const INSTALLED: [u32; 8] = [
    0,
    D1 + 10 * HOUR,
    D1 + 11 * HOUR,
    D1 + 12 * HOUR,
    D2 + 9 * HOUR,
    D2 + 10 * HOUR,
    D3 + 8 * HOUR,
    D3 + 9 * HOUR,
];

/// The generated callbacks, duplicates included, in sending order.
fn generated() -> Vec<Gen> {
    let i = INSTALLED;
    let (t1, t2) = (
        "5b2c6f7a-0000-4000-8000-000000000001",
        "5b2c6f7a-0000-4000-8000-000000000002",
    );
    vec![
        // Installs: 07-01 Moloco de + at, Unity de; 07-02 Moloco de (sent to the global and the
        // install URL), Unity fr; 07-03 organic us, and a sandbox install.
        cb("install", "gi1", i[1], install(1, i[1], MOLOCO, "de")),
        cb("install", "gi2", i[2], install(2, i[2], MOLOCO, "at")),
        cb("install", "gi3", i[3], install(3, i[3], UNITY, "de")),
        cb("install", "gi4", i[4], install(4, i[4], MOLOCO, "de")),
        cb_to(
            "/adjust/install",
            "install",
            "gi4",
            i[4],
            install(4, i[4], MOLOCO, "de"),
        ),
        cb("install", "gi5", i[5], install(5, i[5], UNITY, "fr")),
        cb("install", "gi6", i[6], install(6, i[6], "Organic", "us")),
        cb(
            "install",
            "gi7",
            i[7],
            sandbox(install(7, i[7], MOLOCO, "de")),
        ),
        // Purchases: device 1 on day 0, at 7 days minus a second (days_x 6) and at 7 days
        // (days_x 7, outside LTV7); device 3 on day 1; device 4 on day 0, sent twice; device 5 a
        // level without revenue; the sandbox device a big purchase.
        cb(
            "event",
            "ge1",
            i[1] + 1_800,
            purchase(1, i[1], ["1.99", "EUR", "2.15"]),
        ),
        cb(
            "event",
            "ge2",
            i[1] + 7 * DAY - 1,
            purchase(1, i[1], ["4.99", "EUR", "5.39"]),
        ),
        cb(
            "event",
            "ge3",
            i[1] + 7 * DAY,
            purchase(1, i[1], ["9.99", "EUR", "10.79"]),
        ),
        cb(
            "event",
            "ge4",
            i[3] + DAY + HOUR,
            purchase(3, i[3], ["0.99", "USD", "0.99"]),
        ),
        cb(
            "event",
            "ge5",
            i[4] + 1_800,
            purchase(4, i[4], ["2.99", "EUR", "3.23"]),
        ),
        cb(
            "event",
            "ge5",
            i[4] + 1_800,
            purchase(4, i[4], ["2.99", "EUR", "3.23"]),
        ),
        cb(
            "event",
            "ge6",
            i[5] + 300,
            event(5, i[5], "lvl001", "level_complete", None),
        ),
        cb(
            "event",
            "ge7",
            i[7] + 600,
            sandbox(purchase(7, i[7], ["100", "EUR", "108"])),
        ),
        // Ad revenue.
        cb(
            "ad_revenue",
            "gar1",
            i[1] + 7_200,
            ad_revenue(1, i[1], "applovin_max_sdk", "0.02"),
        ),
        cb(
            "ad_revenue",
            "gar2",
            i[1] + 7_500,
            ad_revenue(1, i[1], "applovin_max_sdk", "0.04"),
        ),
        cb(
            "ad_revenue",
            "gar3",
            i[2] + 7_200,
            ad_revenue(2, i[2], "admob_sdk", "0.01"),
        ),
        cb(
            "ad_revenue",
            "gar4",
            i[5] + 3_600,
            ad_revenue(5, i[5], "ironsource_sdk", "0.005"),
        ),
        // SKAN: the network's postback and the device's direct copy of transaction t1; a postback
        // without transaction id whose conversion value is only in the payload; t2 sent twice; a
        // qualifier (not an install).
        cb(
            "sk_install",
            "gs1",
            D1 + 15 * HOUR,
            skan(t1, Some("5"), Some(5), Some(LIFTOFF)),
        ),
        cb(
            "sk_install_direct",
            "gs2",
            D1 + 15 * HOUR + 60,
            skan(t1, Some("5"), Some(5), None),
        ),
        cb(
            "sk_install",
            "gs3",
            D2 + 15 * HOUR,
            skan("", None, Some(9), Some(LIFTOFF)),
        ),
        cb(
            "sk_install",
            "gs4",
            D2 + 16 * HOUR,
            skan(t2, Some("5"), Some(5), Some(LIFTOFF)),
        ),
        cb(
            "sk_install",
            "gs4",
            D2 + 16 * HOUR,
            skan(t2, Some("5"), Some(5), Some(LIFTOFF)),
        ),
        cb(
            "sk_qualifier",
            "gs5",
            D1 + 16 * HOUR,
            skan(t1, None, None, Some(LIFTOFF)),
        ),
        // Fraud rejections.
        cb(
            "rejected_install",
            "gr1",
            D1 + 14 * HOUR,
            rejected("too_many_engagements", SHADY),
        ),
        cb(
            "rejected_install",
            "gr2",
            D1 + 15 * HOUR,
            rejected("anonymous_traffic", SHADY),
        ),
        cb(
            "rejected_install",
            "gr3",
            D2 + 14 * HOUR,
            rejected("anonymous_traffic", SHADY),
        ),
        cb(
            "rejected_reattribution",
            "gr4",
            D2 + 15 * HOUR,
            rejected("engagement_injection", CLICKFARM),
        ),
    ]
}

/// What each example query returns, header first, one row per line, columns separated by `|`.
fn expected_kit() -> BTreeMap<&'static str, &'static [&'static str]> {
    BTreeMap::from([
        (
            "installs_by_day_network_campaign.sql",
            &[
                "day | app_name | network_name | campaign_name | installs",
                // Fixtures install.json and install_post_json.json (install_single_activity.json
                // is sandbox).
                "2024-05-31 | FarmRush | Network1 | Christmas | 1",
                "2024-06-25 | FarmRush | Apple Search Ads | US Brand (1234567890) | 1",
                "2024-07-01 | QuizTown | Moloco | Q3 Launch | 2",
                "2024-07-01 | QuizTown | Unity Ads | Playables | 1",
                // gi4 arrived twice: one install.
                "2024-07-02 | QuizTown | Moloco | Q3 Launch | 1",
                "2024-07-02 | QuizTown | Unity Ads | Playables | 1",
                "2024-07-03 | QuizTown | Organic | | 1",
            ][..],
        ),
        (
            "ltv_by_install_cohort.sql",
            &[
                "cohort_day | app_token | installs | revenue_d0 | ltv7 | ltv7_per_install | matured",
                // The fixtures' installs have no revenue in their first week.
                "2024-05-31 | r3n8d5vt0h6c | 1 | 0 | 0 | 0 | 1",
                "2024-06-25 | k7x2m9qp4w1z | 1 | 0 | 0 | 0 | 1",
                // D0: 2.15 + ad revenue 0.02 + 0.04 + 0.01; LTV7 adds 0.99 (day 1) and 5.39
                // (days_x 6); 10.79 at days_x 7 is outside. 8.6 / 3 installs.
                "2024-07-01 | qz7t0wn4pp01 | 3 | 2.22 | 8.6 | 2.8667 | 1",
                // 3.23 once (the retried purchase is one purchase) + 0.005 ad revenue; 2 installs.
                "2024-07-02 | qz7t0wn4pp01 | 2 | 3.235 | 3.235 | 1.6175 | 1",
                "2024-07-03 | qz7t0wn4pp01 | 1 | 0 | 0 | 0 | 1",
            ],
        ),
        (
            "ad_revenue_ecpm_by_mediation.sql",
            &[
                "ad_mediation_platform | impressions | total_revenue | ecpm",
                // Fixture ad_revenue.json (0.0125) + 0.02 + 0.04.
                "applovin_max_sdk | 3 | 0.0725 | 24.1667",
                "admob_sdk | 1 | 0.01 | 10",
                "ironsource_sdk | 1 | 0.005 | 5",
            ],
        ),
        (
            "skan_installs.sql",
            &[
                "day | network_name | sk_campaign_id | postback_index | conversion_value | installs",
                // Fixtures sk_install.json and sk_install_direct.json (different transactions).
                "2024-06-15 | Liftoff | 42 | 0 | 12 | 1",
                "2024-06-19 | ironSource | 13 | 0 | 0 | 1",
                // t1 from the network and from the device: one install, the network's name.
                "2024-07-01 | Liftoff | 77 | 0 | 5 | 1",
                // t2 (sent twice), and the postback keyed by nonce with the payload's value.
                "2024-07-02 | Liftoff | 77 | 0 | 5 | 1",
                "2024-07-02 | Liftoff | 77 | 0 | 9 | 1",
            ],
        ),
        (
            "rejects_by_reason_network.sql",
            &[
                "activity_kind | rejection_reason | network_name | rejects",
                // One of each ShadyAds count and the Incent Partner X row are fixtures.
                "rejected_install | anonymous_traffic | ShadyAds | 2",
                "rejected_install | too_many_engagements | ShadyAds | 2",
                "rejected_reattribution | engagement_injection | ClickFarm | 1",
                "rejected_reattribution | engagement_injection | Incent Partner X | 1",
            ],
        ),
    ])
}

/// `|`-separated rows as ClickHouse's TabSeparated output.
fn tsv(rows: &[&str]) -> String {
    rows.iter()
        .map(|r| r.split('|').map(str::trim).collect::<Vec<_>>().join("\t"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The (activity_kind, callback_id) of every callback sent, as the sink computes them.
fn identities(sent: &[(String, &str, Body<'_>)]) -> BTreeSet<(String, u64)> {
    sent.iter()
        .map(|(query, trigger, body)| {
            let cb = decode(query.as_bytes(), *body, trigger, &DecodeOptions::new());
            (cb.activity_kind().to_string(), callback_id(&cb))
        })
        .collect()
}

async fn view_columns(db: &Db, view: &str) -> Vec<String> {
    let sql = format!(
        "SELECT name FROM system.columns WHERE database = '{}' AND table = '{view}'",
        db.name
    );
    db.query(&sql).await.lines().map(str::to_owned).collect()
}

async fn rolled_up_installs(db: &Db) -> u64 {
    db.number(&format!(
        "SELECT sum(installs) FROM {}.installs_daily",
        db.name
    ))
    .await
}

/// [`rolled_up_installs`] once it reaches `want` (or after 10 s): an INSERT's part in the table
/// becomes visible before the materialized view's insert of the same INSERT is done.
async fn rolled_up_installs_reaching(db: &Db, want: u64) -> u64 {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = rolled_up_installs(db).await;
        if got >= want || std::time::Instant::now() >= deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn send_generated(sink: &Sink, g: &Gen) {
    let url = sink.url(&format!("{}?{}", g.path, g.query));
    let status = sink.client().get(url).send().await.unwrap().status();
    assert_eq!(status, 200, "{} {}", g.path, g.query);
}

#[tokio::test(flavor = "multi_thread")]
async fn analyst_views_rollups_and_kit_give_the_expected_answers() {
    let db = Db::fresh("analyst").await;
    let sink = Sink::start(&db, &[]).await;
    let profile = Profile::for_version(db.query("SELECT version()").await.trim());
    let (d, t) = (db.name.clone(), db.table());

    let fixtures = load_all();
    for f in &fixtures {
        assert_eq!(send(&sink, f).await, 200, "{} was not accepted", f.name);
    }
    let generated = generated();
    for g in &generated {
        send_generated(&sink, g).await;
    }
    let sent_rows = (fixtures.len() + generated.len()) as u64;
    let landed = db.wait_rows(sent_rows, Duration::from_secs(30)).await;
    assert_eq!(landed, sent_rows);
    // The materialized views made no insert fail.
    assert_eq!(
        db.number(&format!("SELECT count() FROM {t}_rejects")).await,
        0
    );

    // What FINAL must collapse to: one row per (kind, callback_id), as the sink computes ids.
    let mut sent: Vec<(String, &str, Body<'_>)> = fixtures
        .iter()
        .map(|f| {
            let body = Body::from_content_type(f.content_type.as_deref(), f.body_bytes());
            (f.query.clone(), f.trigger(), body)
        })
        .collect();
    sent.extend(generated.iter().map(|g| {
        let trigger = g.path.strip_prefix("/adjust/").unwrap_or("");
        (g.query.clone(), trigger, Body::None)
    }));
    let activities = identities(&sent);
    assert_eq!(activities.len(), sent.len() - 3, "three duplicate copies");

    // Every per-activity view: one row per activity of its kinds, the columns the code declares.
    let ours = BTreeMap::from([
        ("installs", 7),
        ("events", 7),
        ("ad_revenue", 4),
        ("skan", 5),
        ("rejected", 4),
    ]);
    for v in VIEWS {
        let kinds = v.kinds();
        let want = activities
            .iter()
            .filter(|(kind, _)| kinds.contains(&kind.as_str()))
            .count() as u64;
        let name = format!("{d}.{}", v.name);
        let all = format!("SELECT count() FROM {name}");
        assert_eq!(db.number(&all).await, want, "rows of {name}");
        let kinds: Vec<String> = kinds.iter().map(|k| format!("'{k}'")).collect();
        let in_table = format!(
            "SELECT count() FROM {t} FINAL WHERE activity_kind IN ({})",
            kinds.join(", ")
        );
        assert_eq!(db.number(&in_table).await, want, "{name} against the table");
        assert_eq!(
            db.number(&format!("{all} WHERE app_token = '{APP}'")).await,
            ours.get(v.name).copied().unwrap_or(0),
            "QuizTown rows of {name}"
        );
        assert_eq!(
            view_columns(&db, v.name).await,
            views::columns(v, profile),
            "columns of {name}"
        );
        db.query(&format!("SELECT * FROM {name} FORMAT Null")).await;
    }
    // The views carry `extra` like the table does (event.json sends order_id=ORD-2024-000917).
    let order = format!(
        "SELECT extra.value[indexOf(extra.key, 'order_id')] FROM {d}.events \
         WHERE has(extra.key, 'order_id')"
    );
    assert_eq!(db.query(&order).await.trim_end(), "ORD-2024-000917");

    // The kit: every file in examples/sql, with the exact answer.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sql");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    files.sort();
    let expected = expected_kit();
    assert_eq!(
        files.iter().map(String::as_str).collect::<Vec<_>>(),
        expected.keys().copied().collect::<Vec<_>>(),
        "every query of the kit has its expected answer here"
    );
    for file in &files {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let sql = text.replace("adjust.", &format!("{d}."));
        let sql = sql.trim_end().trim_end_matches(';');
        let got = db
            .query(&format!("{sql}\nFORMAT TabSeparatedWithNames"))
            .await;
        assert_eq!(got.trim_end(), tsv(expected[file.as_str()]), "{file}");
    }

    // The rollups count each activity once (gi4 sent to two URLs, ge5 twice); no sandbox traffic.
    let installs_daily = format!(
        "SELECT day, network_name, campaign_name, country, sum(installs) FROM {d}.installs_daily \
         WHERE app_token = '{APP}' GROUP BY day, network_name, campaign_name, country \
         ORDER BY day, network_name, country"
    );
    let want_installs = tsv(&[
        "2024-07-01 | Moloco | Q3 Launch | at | 1",
        "2024-07-01 | Moloco | Q3 Launch | de | 1",
        "2024-07-01 | Unity Ads | Playables | de | 1",
        "2024-07-02 | Moloco | Q3 Launch | de | 1",
        "2024-07-02 | Unity Ads | Playables | fr | 1",
        "2024-07-03 | Organic | | us | 1",
    ]);
    assert_eq!(db.query(&installs_daily).await.trim_end(), want_installs);
    let production = format!("SELECT count() FROM {d}.installs WHERE environment != 'sandbox'");
    let production_installs = db.number(&production).await;
    assert_eq!(production_installs, 8, "6 QuizTown + 2 fixture installs");
    assert_eq!(
        rolled_up_installs_reaching(&db, production_installs).await,
        production_installs,
        "installs_daily = the installs view"
    );
    let revenue_daily = format!(
        "SELECT day, activity_kind, event, event_name, currency, sum(events), \
         round(sum(revenue), 4), round(sum(reporting_revenue), 4) FROM {d}.revenue_daily \
         WHERE app_token = '{APP}' GROUP BY day, activity_kind, event, event_name, currency \
         ORDER BY day, activity_kind, event, event_name, currency"
    );
    assert_eq!(
        db.query(&revenue_daily).await.trim_end(),
        tsv(&[
            "2024-07-01 | ad_revenue | | | USD | 3 | 0.07 | 0.07",
            "2024-07-01 | event | pur4as | purchase | EUR | 1 | 1.99 | 2.15",
            "2024-07-02 | ad_revenue | | | USD | 1 | 0.005 | 0.005",
            "2024-07-02 | event | lvl001 | level_complete | | 1 | 0 | 0",
            // ge5, received twice, counted once.
            "2024-07-02 | event | pur4as | purchase | EUR | 1 | 2.99 | 3.23",
            "2024-07-02 | event | pur4as | purchase | USD | 1 | 0.99 | 0.99",
            "2024-07-08 | event | pur4as | purchase | EUR | 2 | 14.98 | 16.18",
        ])
    );
    let rejects_daily = format!(
        "SELECT day, activity_kind, rejection_reason, network_name, sum(rejects) \
         FROM {d}.rejects_daily WHERE app_token = '{APP}' \
         GROUP BY day, activity_kind, rejection_reason, network_name \
         ORDER BY day, activity_kind, rejection_reason, network_name"
    );
    assert_eq!(
        db.query(&rejects_daily).await.trim_end(),
        tsv(&[
            "2024-07-01 | rejected_install | anonymous_traffic | ShadyAds | 1",
            "2024-07-01 | rejected_install | too_many_engagements | ShadyAds | 1",
            "2024-07-02 | rejected_install | anonymous_traffic | ShadyAds | 1",
            "2024-07-02 | rejected_reattribution | engagement_injection | ClickFarm | 1",
        ])
    );
    // Merging collapses the copies of an activity: one row per QuizTown install is left, and
    // the answer does not change.
    db.query(&format!(
        "OPTIMIZE TABLE {d}.installs_daily_activities FINAL"
    ))
    .await;
    let rows =
        format!("SELECT count() FROM {d}.installs_daily_activities WHERE app_token = '{APP}'");
    assert_eq!(db.number(&rows).await, 6);
    assert_eq!(db.query(&installs_daily).await.trim_end(), want_installs);

    // migrate again, twice: idempotent, a view that lost columns gets them back, and the
    // materialized views survive (they still feed the rollups).
    db.query(&format!("DROP TABLE {d}.installs")).await;
    db.query(&format!(
        "CREATE VIEW {d}.installs AS SELECT callback_id FROM {t}"
    ))
    .await;
    migrate(&db);
    migrate(&db);
    let installs_view = VIEWS.iter().find(|v| v.name == "installs").unwrap();
    assert_eq!(
        view_columns(&db, "installs").await,
        views::columns(installs_view, profile)
    );
    let before = rolled_up_installs(&db).await;
    let at = D3 + 10 * HOUR;
    send_generated(
        &sink,
        &cb("install", "gi8", at, install(8, at, MOLOCO, "de")),
    )
    .await;
    let landed = db.wait_rows(sent_rows + 1, Duration::from_secs(30)).await;
    assert_eq!(landed, sent_rows + 1);
    assert_eq!(
        rolled_up_installs_reaching(&db, before + 1).await,
        before + 1,
        "the materialized view still feeds installs_daily"
    );
    assert_eq!(db.number(&production).await, production_installs + 1);
}
