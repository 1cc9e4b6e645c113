//! Load generator: sends realistic Adjust callbacks (`GET <url>/adjust?activity_kind=...`) over
//! HTTP/1.1 keep-alive connections and reports throughput, latency percentiles and status counts.
//!
//! ```text
//! cargo run --release --example loadgen -- --url http://127.0.0.1:8080 --connections 32 --duration 10s
//! cargo run --release --example loadgen -- --url http://127.0.0.1:8080 --rate 5000 --requests 100000 --json
//! ```
//!
//! Traffic: a pool of callback query strings (~1 KB, ~40 placeholders each) generated up front
//! from `--seed`: mostly clicks and impressions, then installs, events with revenue, sessions and
//! reattributions. Every request gets a unique `nonce` spliced into its template, so every request
//! is a distinct callback (the sink collapses duplicates on `nonce`).
//!
//! Without `--rate` every connection sends its next request as soon as the previous answer is
//! in (flat out), and latency is the service time of each request. With `--rate` each connection
//! follows a fixed schedule (`rate / connections` requests per second, connections staggered),
//! and latency is measured from the scheduled send time, so a server that falls behind shows it
//! in the percentiles instead of slowing the generator down (no coordinated omission). One
//! kernel timer releases the sends, each at most 250 µs after its time (Linux only). The report
//! then also splits that latency in two: the service time (from the actual send to the answer)
//! and how late the sends went out (a connection still waiting for an earlier answer at its
//! scheduled time sends late: the backlog a slow stretch of the server left).
//!
//! The run ends at `--duration` or after `--requests` attempts, whichever comes first (10 s when
//! neither is given); every attempt is bounded by `--timeout`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request, Uri, header};
use hyper_util::rt::TokioIo;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rustix::time::{
    Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
    timerfd_settime,
};
use tokio::io::unix::AsyncFd;
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// Sends realistic Adjust callbacks to a sink and reports rate, latency and status counts.
#[derive(Debug, Parser)]
#[command(name = "loadgen", max_term_width = 100)]
struct Args {
    /// Base URL of the sink (requests go to `<url>/adjust`); plain http only.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,

    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,

    /// Stop after this long (e.g. `10s`, `500ms`, `2m`; a bare number is seconds).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,

    /// Stop after this many requests (attempts, errors included).
    #[arg(long)]
    requests: Option<u64>,

    /// Fixed total rate in requests per second, spread evenly over the connections (omitted:
    /// flat out).
    #[arg(long)]
    rate: Option<f64>,

    /// Seed of the callback pool (same seed, same templates; nonces are unique per run).
    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// Callback templates to generate up front.
    #[arg(long, default_value_t = 1000)]
    pool: usize,

    /// Upper bound of one request (connect included).
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    timeout: Duration,

    /// Runtime worker threads of the generator.
    #[arg(long, default_value_t = 1)]
    threads: usize,

    /// Print the report as one JSON line on stdout.
    #[arg(long)]
    json: bool,

    /// Print N generated query strings (with a sample nonce) and exit without sending.
    #[arg(long, value_name = "N")]
    print_sample: Option<usize>,

    /// Send wide installs instead: every placeholder of the install callback's `standard` URL
    /// filled (~175 values, ~3 KB), as a `callback-url` URL sends when Adjust has them all.
    #[arg(long)]
    wide: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("not a duration: {s:?} (e.g. 10s, 500ms, 2m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "sec" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("unknown unit in {s:?} (ms, s, m, h)")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("not a duration: {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

// ---------------------------------------------------------------------------------------------
// Randomness (small and deterministic; no need for a cryptographic generator).

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn hex(&mut self, len: usize) -> String {
        let mut s = String::with_capacity(len);
        while s.len() < len {
            let _ = write!(s, "{:016x}", self.next());
        }
        s.truncate(len);
        s
    }

    fn alnum(&mut self, len: usize) -> String {
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        (0..len)
            .map(|_| CHARS[self.below(CHARS.len() as u64) as usize] as char)
            .collect()
    }

    fn uuid(&mut self) -> String {
        let h = self.hex(32);
        format!(
            "{}-{}-4{}-a{}-{}",
            &h[0..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..32]
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Callback fixtures.

/// Characters left alone by Adjust's placeholder encoding.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn enc(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

struct App {
    token: &'static str,
    ios_id: &'static str,
    android_id: &'static str,
    name: &'static str,
}

const APPS: &[App] = &[
    App {
        token: "4w565xzmb54d",
        ios_id: "332193586",
        android_id: "com.example.shop",
        name: "ShopNow",
    },
    App {
        token: "rn4g67fue5e3",
        ios_id: "1140520437",
        android_id: "com.example.puzzle",
        name: "PuzzleQuest",
    },
    App {
        token: "x2k9p4m7q1zt",
        ios_id: "987654321",
        android_id: "de.example.news",
        name: "Nachrichten",
    },
];

const NETWORKS: &[&str] = &[
    "Facebook Installs",
    "Google Ads UAC",
    "TikTok",
    "Apple Search Ads",
    "Unity Ads",
    "ironSource",
    "AppLovin",
    "Organic",
];
const CAMPAIGNS: &[&str] = &[
    "Summer Sale (123456789)",
    "Retargeting DE",
    "Brand Q3",
    "UA Tier1 iOS",
    "Christmas",
];
const ADGROUPS: &[&str] = &["Lookalike 1%", "Broad", "Interest Gaming", "Reindeers"];
const CREATIVES: &[&str] = &["video_15s_en", "320x50_en", "playable_v2", "static_1080"];
const COUNTRIES: &[(&str, &str, &str, &str)] = &[
    ("us", "New York", "en", "UTC-0500"),
    ("de", "Berlin", "de", "UTC+0100"),
    ("gb", "London", "en", "UTC+0000"),
    ("fr", "Paris", "fr", "UTC+0100"),
    ("br", "Sao Paulo", "pt", "UTC-0300"),
    ("jp", "Tokyo", "ja", "UTC+0900"),
    ("in", "Mumbai", "hi", "UTC+0530"),
];
const IOS_DEVICES: &[&str] = &["iPhone14,2", "iPhone15,3", "iPhone12,1", "iPad13,4"];
const ANDROID_DEVICES: &[&str] = &["SM-G991B", "Pixel 7", "Redmi Note 11", "SM-A515F"];
const EVENTS: &[(&str, &str, f64)] = &[
    ("bkrfgq", "purchase", 4.99),
    ("g3mfiw", "subscription_start", 9.99),
    ("f0ob4r", "level_complete", 0.0),
    ("a8d2kq", "add_to_cart", 0.0),
    ("p9x3nv", "purchase_100_coins", 1.99),
];
const CURRENCIES: &[&str] = &["USD", "EUR", "GBP", "BRL", "JPY"];
const ISPS: &[&str] = &["Deutsche Telekom AG", "Comcast Cable", "Vodafone", "Orange"];
const CONNECTIONS: &[&str] = &["wifi", "cellular", "Cable/DSL"];

/// One callback query string, split where the nonce goes.
struct Template {
    head: String,
    tail: String,
}

fn activity_for(roll: u64) -> &'static str {
    // Out of 100: 40 clicks, 30 impressions, 10 installs, 12 events, 6 sessions,
    // 2 reattributions.
    match roll {
        0..40 => "click",
        40..70 => "impression",
        70..80 => "install",
        80..92 => "event",
        92..98 => "session",
        _ => "reattribution",
    }
}

fn template(rng: &mut Rng, now: u64, wide: bool) -> Template {
    let kind = if wide {
        "install"
    } else {
        activity_for(rng.below(100))
    };
    let app = rng.pick(APPS);
    let ios = rng.below(100) < 45;
    let network = *rng.pick(NETWORKS);
    let campaign = *rng.pick(CAMPAIGNS);
    let adgroup = *rng.pick(ADGROUPS);
    let creative = *rng.pick(CREATIVES);
    let (country, city, language, tz) = *rng.pick(COUNTRIES);
    let created_at = now - rng.below(3600);
    let click_time = created_at - rng.below(86_400);
    let installed_at = click_time + rng.below(600);
    let tracker_len = 6 + rng.below(3) as usize;
    let tracker = rng.alnum(tracker_len);

    let mut p: Vec<(&str, String)> = Vec::with_capacity(48);
    let mut add = |k: &'static str, v: String| p.push((k, v));
    add("activity_kind", kind.into());
    add("app_token", app.token.into());
    add(
        "app_id",
        if ios { app.ios_id } else { app.android_id }.into(),
    );
    add("app_name", enc(app.name));
    add(
        "app_version",
        format!("{}.{}.{}", 1 + rng.below(6), rng.below(20), rng.below(10)),
    );
    add("environment", "production".into());
    add("store", if ios { "itunes" } else { "google" }.into());
    add(
        "sdk_version",
        if ios { "ios4.38.2" } else { "android4.38.3" }.into(),
    );
    add("tracker", tracker);
    if network == "Organic" {
        // Organic traffic has no campaign structure.
        add("tracker_name", network.into());
        add("network_name", network.into());
        add("campaign_name", String::new());
        add("adgroup_name", String::new());
        add("creative_name", String::new());
    } else {
        add(
            "tracker_name",
            enc(&format!("{network}::{campaign}::{adgroup}::{creative}")),
        );
        add("network_name", enc(network));
        add("campaign_name", enc(campaign));
        add("adgroup_name", enc(adgroup));
        add("creative_name", enc(creative));
    }
    add("adid", rng.hex(32));
    if ios {
        add("idfa", rng.uuid().to_uppercase());
        add("idfv", rng.uuid().to_uppercase());
        add("att_status", (rng.below(4)).to_string());
    } else {
        add("gps_adid", rng.uuid());
        add("android_id", rng.hex(16));
        add("api_level", (28 + rng.below(7)).to_string());
    }
    add(
        "ip_address",
        format!(
            "{}.{}.{}.{}",
            1 + rng.below(222),
            rng.below(256),
            rng.below(256),
            1 + rng.below(254)
        ),
    );
    let (os, device) = if ios {
        ("ios", *rng.pick(IOS_DEVICES))
    } else {
        ("android", *rng.pick(ANDROID_DEVICES))
    };
    let os_version = if ios {
        format!("{}.{}", 15 + rng.below(3), rng.below(6))
    } else {
        (11 + rng.below(4)).to_string()
    };
    let ua = if ios {
        format!(
            "Mozilla/5.0 (iPhone; CPU iPhone OS {} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
            os_version.replace('.', "_")
        )
    } else {
        format!(
            "Mozilla/5.0 (Linux; Android {os_version}; {device}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36"
        )
    };
    add("user_agent", enc(&ua));
    add("os_name", os.into());
    add("os_version", os_version);
    add("device_name", enc(device));
    add(
        "device_type",
        if device.starts_with("iPad") {
            "tablet"
        } else {
            "phone"
        }
        .into(),
    );
    add("country", country.into());
    add("city", enc(city));
    add("language", language.into());
    add("timezone", enc(tz));
    let (isp, connection) = (*rng.pick(ISPS), *rng.pick(CONNECTIONS));
    add("isp", enc(isp));
    add("connection_type", enc(connection));
    add("created_at", created_at.to_string());
    add("click_time", click_time.to_string());
    add(
        "is_organic",
        if network == "Organic" { "1" } else { "0" }.into(),
    );
    add("tracking_limited", "0".into());
    add("click_attribution_window", "168".into());
    match kind {
        "impression" => add("impression_time", created_at.to_string()),
        "install" | "reattribution" => {
            add("installed_at", installed_at.to_string());
            add(
                "match_type",
                (*rng.pick(&["google", "fingerprint", "device_tag", "reftag"])).into(),
            );
            add(
                "conversion_duration",
                (created_at.saturating_sub(click_time)).to_string(),
            );
            if kind == "reattribution" {
                add("reattributed_at", created_at.to_string());
            }
        }
        "event" => {
            let (token, name, revenue) = *rng.pick(EVENTS);
            add("installed_at", installed_at.to_string());
            add("event", token.into());
            add("event_name", name.into());
            if revenue > 0.0 {
                let currency = *rng.pick(CURRENCIES);
                add("revenue_float", format!("{revenue:.2}"));
                add("revenue", format!("{}", (revenue * 100.0).round() as u64));
                add("currency", currency.into());
                add("reporting_revenue", format!("{:.4}", revenue * 0.93));
                add("reporting_currency", "EUR".into());
            }
        }
        "session" => {
            add("installed_at", installed_at.to_string());
            add("session_count", (2 + rng.below(200)).to_string());
            add(
                "last_session_time",
                (created_at - rng.below(7200)).to_string(),
            );
            add("time_spent", rng.below(3600).to_string());
        }
        _ => {}
    }
    // SDK callback parameters arrive as extra top-level keys.
    add("user_id", format!("u{}", rng.below(10_000_000)));
    add(
        "customer_tier",
        (*rng.pick(&["free", "trial", "premium"])).into(),
    );
    add("label", enc(&format!("source={campaign}")));

    if wide {
        fill_install_placeholders(rng, &mut p, created_at);
    }

    // The nonce goes after the first few keys.
    let split = 3.min(p.len());
    let mut head = String::with_capacity(1200);
    for (k, v) in &p[..split] {
        let _ = write!(head, "{k}={v}&");
    }
    head.push_str("nonce=");
    let mut tail = String::with_capacity(1200);
    for (k, v) in &p[split..] {
        let _ = write!(tail, "&{k}={v}");
    }
    Template { head, tail }
}

/// Adds a value for every placeholder of the install callback's `standard` URL not set yet, of
/// the placeholder's type.
fn fill_install_placeholders(rng: &mut Rng, p: &mut Vec<(&'static str, String)>, at: u64) {
    use adjust_sink::adjust::catalog::{Ty, placeholders};
    let install = adjust_sink::adjust::activity::find("install").expect("install in the table");
    for ph in placeholders(install.scopes, false) {
        if ph.name == "nonce" || p.iter().any(|(k, _)| *k == ph.name) {
            continue;
        }
        let value = match ph.ty {
            Ty::Str => rng.alnum(8),
            Ty::LowCard => format!("v{}", rng.below(20)),
            Ty::Time => (at - rng.below(86_400)).to_string(),
            Ty::TimeMs => (at * 1000 + rng.below(1000)).to_string(),
            Ty::Flag => rng.below(2).to_string(),
            Ty::Int => rng.below(100_000).to_string(),
            Ty::Float => format!("{}.{:02}", rng.below(100), rng.below(100)),
            Ty::Json | Ty::Params => enc(&format!("{{\"k{}\":\"v\"}}", rng.below(10))),
        };
        p.push((ph.name, value));
    }
}

// ---------------------------------------------------------------------------------------------
// Latency histogram: log buckets with 64 linear sub-buckets per power of two (< 1.6 % error),
// values in microseconds.

const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
const BUCKETS: usize = (2 * SUB + 58 * SUB) as usize;

#[derive(Clone)]
struct Histogram {
    counts: Vec<u64>,
    total: u64,
    sum: u128,
    max: u64,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            sum: 0,
            max: 0,
        }
    }

    fn index(v: u64) -> usize {
        if v < 2 * SUB {
            return v as usize;
        }
        let msb = 63 - v.leading_zeros(); // >= SUB_BITS + 1
        let shift = msb - SUB_BITS;
        let top = v >> shift; // in [SUB, 2 * SUB)
        (2 * SUB + (shift as u64 - 1) * SUB + (top - SUB)) as usize
    }

    /// Middle of the bucket's range.
    fn value_at(index: usize) -> u64 {
        let i = index as u64;
        if i < 2 * SUB {
            return i;
        }
        let shift = (i - 2 * SUB) / SUB + 1;
        let top = (i - 2 * SUB) % SUB + SUB;
        (top << shift) + (1 << shift) / 2
    }

    fn record(&mut self, micros: u64) {
        let i = Self::index(micros).min(BUCKETS - 1);
        self.counts[i] += 1;
        self.total += 1;
        self.sum += micros as u128;
        self.max = self.max.max(micros);
    }

    fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.sum += other.sum;
        self.max = self.max.max(other.max);
    }

    fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::value_at(i).min(self.max);
            }
        }
        self.max
    }

    fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum as f64 / self.total as f64
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The generator.

#[derive(Clone, Default)]
struct Counts {
    ok: u64,
    forbidden: u64,
    unavailable: u64,
    other: u64,
    errors: u64,
}

struct Target {
    addr: SocketAddr,
    host: String,
    path: String,
}

struct Shared {
    target: Target,
    templates: Vec<Template>,
    run_id: u64,
    issued: AtomicU64,
    max_requests: u64,
    deadline: Instant,
    timeout: Duration,
    /// Per-connection interval when a rate is set.
    interval: Option<Duration>,
    /// Paces the sends when a rate is set.
    pacer: Option<Arc<Pacer>>,
    start: Instant,
    connections: usize,
}

/// One histogram per way of timing a request, in microseconds.
struct Latencies {
    /// From the scheduled send (the actual send when flat out) to the answer.
    latency: Histogram,
    /// From the actual send to the answer.
    service: Histogram,
    /// From the scheduled send to the actual send (zero when flat out).
    late: Histogram,
}

impl Latencies {
    fn new() -> Self {
        Latencies {
            latency: Histogram::new(),
            service: Histogram::new(),
            late: Histogram::new(),
        }
    }

    fn merge(&mut self, other: &Latencies) {
        self.latency.merge(&other.latency);
        self.service.merge(&other.service);
        self.late.merge(&other.late);
    }
}

struct Outcome {
    times: Latencies,
    counts: Counts,
}

type Sender = SendRequest<Empty<Bytes>>;

async fn connect(shared: &Shared) -> anyhow::Result<Sender> {
    let stream = TcpStream::connect(shared.target.addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

async fn send(sender: &mut Sender, shared: &Shared, uri: Uri) -> anyhow::Result<u16> {
    sender.ready().await?;
    let req = Request::builder()
        .method(Method::GET)
        .uri(uri)
        .header(header::HOST, shared.target.host.as_str())
        .header(header::USER_AGENT, "adjust-sink-loadgen")
        .body(Empty::<Bytes>::new())?;
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    resp.into_body().collect().await?;
    Ok(status)
}

/// How late the pacer may release a scheduled send so that one wake-up serves every send due
/// within it (at most one wake-up per window, whatever the rate).
const PACER_WINDOW: Duration = Duration::from_micros(250);

/// Wakes connections at their scheduled send times, at most [`PACER_WINDOW`] late, with one
/// kernel timer (`timerfd`) for the whole generator. tokio's timers round each deadline up to
/// the next millisecond, so with them every request went out up to a millisecond or two late,
/// and that lateness, the generator's own, was counted in the latency measured from the
/// schedule. A timer per connection was exact but woke the generator once per request.
struct Pacer {
    timer: AsyncFd<rustix::fd::OwnedFd>,
    state: Mutex<PacerState>,
    /// One per connection; a permit is kept when the release comes before the wait.
    release: Vec<Notify>,
}

#[derive(Default)]
struct PacerState {
    /// Scheduled sends: (time, connection), earliest first.
    due: BinaryHeap<Reverse<(Instant, usize)>>,
    /// When the timer fires next, if armed.
    armed: Option<Instant>,
}

impl Pacer {
    fn new(connections: usize) -> std::io::Result<Self> {
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )?;
        // `AsyncFd::new` is deprecated because a generic inner type could change or close its
        // descriptor behind the registration; an `OwnedFd` owned by the `AsyncFd` for its whole
        // life cannot, which is the contract of the `unsafe` `register` that replaces it.
        #[allow(deprecated)]
        let timer = AsyncFd::new(fd)?;
        Ok(Self {
            timer,
            state: Mutex::new(PacerState::default()),
            release: (0..connections).map(|_| Notify::new()).collect(),
        })
    }

    /// Returns at `at` (up to [`PACER_WINDOW`] later), or at once when `at` has passed.
    async fn sleep_until(&self, conn: usize, at: Instant) -> std::io::Result<()> {
        if at <= Instant::now() {
            return Ok(());
        }
        {
            let mut state = self.state.lock().expect("pacer lock");
            state.due.push(Reverse((at, conn)));
            let fire = at + PACER_WINDOW;
            if state.armed.is_none_or(|armed| fire < armed) {
                self.arm(fire)?;
                state.armed = Some(fire);
            }
        }
        self.release[conn].notified().await;
        Ok(())
    }

    fn arm(&self, fire: Instant) -> std::io::Result<()> {
        // A zero value would disarm the timer: one nanosecond fires at once instead.
        let left = fire
            .saturating_duration_since(Instant::now())
            .max(Duration::from_nanos(1));
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let value = Timespec::try_from(left).map_err(std::io::Error::other)?;
        timerfd_settime(
            self.timer.get_ref(),
            TimerfdTimerFlags::empty(),
            &Itimerspec {
                it_interval: zero,
                it_value: value,
            },
        )?;
        Ok(())
    }

    /// Releases the connections whose sends are due each time the timer fires; runs until
    /// aborted.
    async fn run(&self) -> std::io::Result<()> {
        loop {
            let mut ready = self.timer.readable().await?;
            let mut expirations = [0u8; 8];
            match ready.try_io(|fd| Ok(rustix::io::read(fd.get_ref(), &mut expirations)?)) {
                Ok(read) => {
                    read?;
                }
                Err(_would_block) => continue,
            }
            let now = Instant::now();
            let mut state = self.state.lock().expect("pacer lock");
            while let Some(&Reverse((at, conn))) = state.due.peek() {
                if at > now {
                    break;
                }
                state.due.pop();
                self.release[conn].notify_one();
            }
            state.armed = None;
            if let Some(&Reverse((at, _))) = state.due.peek() {
                let fire = at + PACER_WINDOW;
                self.arm(fire)?;
                state.armed = Some(fire);
            }
        }
    }
}

async fn connection(shared: Arc<Shared>, conn_id: usize) -> Outcome {
    let mut times = Latencies::new();
    let mut counts = Counts::default();
    let mut sender: Option<Sender> = None;
    let mut rng = Rng(shared.run_id ^ (conn_id as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let mut seq: u64 = 0;
    let mut uri_buf = String::with_capacity(1600);
    // Connections are staggered over one interval so the total rate is smooth.
    let mut next = shared
        .interval
        .map(|iv| shared.start + iv.mul_f64(conn_id as f64 / shared.connections as f64));

    loop {
        if let Some(at) = next {
            if at >= shared.deadline {
                break;
            }
            if let Some(pacer) = &shared.pacer {
                pacer
                    .sleep_until(conn_id, at)
                    .await
                    .expect("setting the pacing timer");
            }
        }
        // A connection behind its schedule does not catch up past the end of the run.
        if Instant::now() >= shared.deadline {
            break;
        }
        if shared.issued.fetch_add(1, Ordering::Relaxed) >= shared.max_requests {
            break;
        }

        let t = &shared.templates[rng.below(shared.templates.len() as u64) as usize];
        uri_buf.clear();
        uri_buf.push_str(&shared.target.path);
        uri_buf.push_str(&t.head);
        let _ = write!(
            uri_buf,
            "{:016x}{:04x}{:012x}",
            shared.run_id, conn_id as u16, seq
        );
        uri_buf.push_str(&t.tail);
        seq += 1;

        let sent = Instant::now();
        let began = next.unwrap_or(sent);
        let attempt = async {
            if sender.is_none() {
                sender = Some(connect(&shared).await?);
            }
            let s = sender.as_mut().expect("connected");
            let uri = Uri::from_maybe_shared(Bytes::copy_from_slice(uri_buf.as_bytes()))?;
            send(s, &shared, uri).await
        };
        match tokio::time::timeout(shared.timeout, attempt).await {
            Ok(Ok(status)) => {
                times.latency.record(began.elapsed().as_micros() as u64);
                times.service.record(sent.elapsed().as_micros() as u64);
                times
                    .late
                    .record(sent.saturating_duration_since(began).as_micros() as u64);
                match status {
                    200 => counts.ok += 1,
                    403 => counts.forbidden += 1,
                    503 => counts.unavailable += 1,
                    _ => counts.other += 1,
                }
            }
            Ok(Err(_)) | Err(_) => {
                counts.errors += 1;
                sender = None;
                // Do not spin on a refused connection.
                let pause = Instant::now() + Duration::from_millis(20);
                tokio::time::sleep_until(pause.min(shared.deadline).into()).await;
            }
        }
        if let (Some(at), Some(iv)) = (next.as_mut(), shared.interval) {
            *at += iv;
        }
    }
    Outcome { times, counts }
}

async fn resolve(url: &str) -> anyhow::Result<Target> {
    let uri: Uri = url.parse().with_context(|| format!("bad --url {url:?}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        other => bail!("--url must be plain http://, got scheme {other:?}"),
    }
    let authority = uri.authority().context("--url has no host")?;
    let port = authority.port_u16().unwrap_or(80);
    let host = authority.host();
    let addr = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
        .await
        .with_context(|| format!("resolving {host}"))?
        .next()
        .with_context(|| format!("{host} has no address"))?;
    let base = uri.path().trim_end_matches('/');
    Ok(Target {
        addr,
        host: authority.as_str().to_string(),
        path: format!("{base}/adjust?"),
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.connections == 0 {
        bail!("--connections must be at least 1");
    }
    if let Some(r) = args.rate
        && !(r.is_finite() && r > 0.0)
    {
        bail!("--rate must be a positive number");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let target = resolve(&args.url).await?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?;
    let mut rng = Rng(args.seed);
    let templates: Vec<Template> = (0..args.pool.max(1))
        .map(|_| template(&mut rng, now.as_secs(), args.wide))
        .collect();
    if let Some(n) = args.print_sample {
        for t in templates.iter().take(n) {
            println!("{}{}{:032x}{}", target.path, t.head, 0, t.tail);
        }
        return Ok(());
    }
    let avg_query = templates
        .iter()
        .map(|t| t.head.len() + 32 + t.tail.len())
        .sum::<usize>() as f64
        / templates.len() as f64;
    // Unique per run, so nonces never repeat across runs into the same table.
    let run_id = Rng(now.as_nanos() as u64 ^ u64::from(std::process::id()) ^ args.seed).next();

    let duration = match (args.duration, args.requests) {
        (None, None) => Some(Duration::from_secs(10)),
        (d, _) => d,
    };
    let start = Instant::now();
    // Without a duration the count bounds the run; the far deadline only keeps the types simple.
    let deadline = start + duration.unwrap_or(Duration::from_secs(365 * 86_400));
    let interval = args
        .rate
        .map(|r| Duration::from_secs_f64(args.connections as f64 / r));
    let pacer = match interval {
        Some(_) => Some(Arc::new(
            Pacer::new(args.connections).context("creating the pacing timer")?,
        )),
        None => None,
    };
    let shared = Arc::new(Shared {
        target,
        templates,
        run_id,
        issued: AtomicU64::new(0),
        max_requests: args.requests.unwrap_or(u64::MAX),
        deadline,
        timeout: args.timeout,
        interval,
        pacer: pacer.clone(),
        start,
        connections: args.connections,
    });
    let pacing = pacer.map(|pacer| {
        tokio::spawn(async move {
            if let Err(e) = pacer.run().await {
                eprintln!("loadgen: pacing timer failed: {e}");
                std::process::exit(1);
            }
        })
    });

    let tasks: Vec<_> = (0..args.connections)
        .map(|i| tokio::spawn(connection(shared.clone(), i)))
        .collect();
    let mut times = Latencies::new();
    let mut counts = Counts::default();
    for t in tasks {
        let o = t.await?;
        times.merge(&o.times);
        counts.ok += o.counts.ok;
        counts.forbidden += o.counts.forbidden;
        counts.unavailable += o.counts.unavailable;
        counts.other += o.counts.other;
        counts.errors += o.counts.errors;
    }
    if let Some(pacing) = pacing {
        pacing.abort();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let sent = counts.ok + counts.forbidden + counts.unavailable + counts.other + counts.errors;
    let rate = if elapsed > 0.0 {
        sent as f64 / elapsed
    } else {
        0.0
    };
    let ok_rate = if elapsed > 0.0 {
        counts.ok as f64 / elapsed
    } else {
        0.0
    };
    let ms = |us: u64| us as f64 / 1000.0;
    let hist = &times.latency;
    let (p50, p99, p999) = (
        ms(hist.quantile(0.50)),
        ms(hist.quantile(0.99)),
        ms(hist.quantile(0.999)),
    );
    let service = &times.service;
    let late = &times.late;

    if args.json {
        let report = serde_json::json!({
            "url": args.url,
            "connections": args.connections,
            "target_rate": args.rate,
            "duration_s": (elapsed * 1000.0).round() / 1000.0,
            "requests": sent,
            "rate": (rate * 10.0).round() / 10.0,
            "ok_rate": (ok_rate * 10.0).round() / 10.0,
            "ok": counts.ok,
            "status_200": counts.ok,
            "status_403": counts.forbidden,
            "status_503": counts.unavailable,
            "status_other": counts.other,
            "errors": counts.errors,
            "p50_ms": p50,
            "p99_ms": p99,
            "p999_ms": p999,
            "max_ms": ms(hist.max),
            "mean_ms": (hist.mean() / 1000.0 * 1000.0).round() / 1000.0,
            "service_p50_ms": ms(service.quantile(0.50)),
            "service_p99_ms": ms(service.quantile(0.99)),
            "service_p999_ms": ms(service.quantile(0.999)),
            "service_max_ms": ms(service.max),
            "late_p99_ms": ms(late.quantile(0.99)),
            "late_max_ms": ms(late.max),
            "avg_query_bytes": avg_query.round(),
        });
        println!("{report}");
    } else {
        let mode = match args.rate {
            Some(r) => format!("fixed rate {r:.0} req/s"),
            None => "flat out".to_string(),
        };
        println!(
            "loadgen: {} connections, {mode}, {:.0}-byte queries on average",
            args.connections, avg_query
        );
        println!("  requests      {sent} in {elapsed:.2} s");
        println!("  rate          {rate:.0} req/s ({ok_rate:.0} acknowledged/s)");
        println!(
            "  latency (ms)  p50 {p50:.3}  p99 {p99:.3}  p99.9 {p999:.3}  max {:.3}  mean {:.3}",
            ms(hist.max),
            hist.mean() / 1000.0
        );
        if args.rate.is_some() {
            println!(
                "  service (ms)  p50 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  (from the actual send)",
                ms(service.quantile(0.50)),
                ms(service.quantile(0.99)),
                ms(service.quantile(0.999)),
                ms(service.max)
            );
            println!(
                "  sent late     p99 {:.3}  max {:.3} ms after the schedule",
                ms(late.quantile(0.99)),
                ms(late.max)
            );
        }
        println!(
            "  status        200: {}  403: {}  503: {}  other: {}  errors: {}",
            counts.ok, counts.forbidden, counts.unavailable, counts.other, counts.errors
        );
        println!("  acknowledged  {} callbacks (200)", counts.ok);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_close() {
        let mut h = Histogram::new();
        for v in 1..=100_000u64 {
            h.record(v);
        }
        for q in [0.5, 0.9, 0.99, 0.999] {
            let want = q * 100_000.0;
            let got = h.quantile(q) as f64;
            assert!((got - want).abs() / want < 0.02, "q {q}: {got} vs {want}");
        }
        for v in [0u64, 1, 127, 128, 129, 1000, 123_456_789] {
            let i = Histogram::index(v);
            let mid = Histogram::value_at(i) as f64;
            assert!(v < 128 || (mid - v as f64).abs() / (v as f64) < 0.02, "{v}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("x").is_err());
    }

    #[test]
    fn templates_look_like_callbacks() {
        let mut rng = Rng(7);
        let ts: Vec<_> = (0..200)
            .map(|_| template(&mut rng, 1_700_000_000, false))
            .collect();
        let avg = ts
            .iter()
            .map(|t| t.head.len() + t.tail.len())
            .sum::<usize>()
            / ts.len();
        assert!((700..1400).contains(&avg), "average query {avg} bytes");
        for t in &ts {
            let q = format!("{}{}{}", t.head, "0".repeat(32), t.tail);
            let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&q).unwrap();
            assert!(pairs.len() >= 38, "{} placeholders", pairs.len());
            assert_eq!(pairs.iter().filter(|(k, _)| k == "nonce").count(), 1);
            assert!(q.contains("tracker_name="));
        }
    }
}
