//! `callback-url`: the callback URLs to paste into Adjust for a sink at a public base URL, generated
//! from the placeholder catalog. Pure functions, no I/O.
//!
//! - The *global* callback (`<base>/adjust?…`) and one URL per single-activity trigger
//!   (`<base>/adjust/<trigger>?…`), the triggers and what they send taken from the activity table
//!   ([`activity::ACTIVITIES`]). Each lists the placeholders that apply to the activities it covers
//!   (their [`Scope`]s; the global one gets the scopes of every activity it carries), or every
//!   placeholder of the catalog with `all`, as `name={name}` with the braces unencoded, as Adjust's
//!   dashboard expects. `activity_kind`, `created_at` and `nonce` are in every URL: the dedup key
//!   (`callback_id`) is built from them.
//! - The *partner* form (Adjust's partner guide: callbacks attached to a tracker URL): one tracker URL
//!   `https://app.adjust.com/<tracker>?install_callback=<encoded>&event_callback_<t1>_<t2>=<encoded>`,
//!   each callback URL percent-encoded as a query value (everything but `A-Za-z0-9-._~`), the way
//!   Adjust's partner guide shows it.

use std::fmt::Write as _;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::adjust::activity;
pub use crate::adjust::activity::{TRIGGERS, Trigger, global_scopes, trigger};
use crate::adjust::catalog::{CATALOG, Placeholder, Scope};
pub use crate::adjust::catalog::{REQUIRED, placeholders};

mod base;

pub use base::BaseUrl;
use base::{check_event_token, check_tracker};

/// The name of the global callback in `--trigger`.
pub const GLOBAL: &str = "global";

/// The trigger of in-app events (configured per event token).
pub const EVENT: &str = activity::triggers::EVENT.name;

/// Where single-activity callbacks are configured in Adjust's dashboard.
const DASHBOARD: &str = "Adjust dashboard: your app → Raw data export → Real-time callbacks";

/// Which placeholders a URL carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Fields {
    /// What identity, deduplication, attribution and revenue need (the placeholders marked
    /// `.minimal()` in the catalog, [`Placeholder::minimal_url`]): short URLs.
    Minimal,
    /// Every placeholder that applies to the URL's activities.
    #[default]
    Standard,
    /// Every placeholder of the catalog.
    All,
}

/// A URL longer than this may be cut by browsers, proxies and Adjust's dashboard.
pub const LONG_URL: usize = 2_048;

/// The field set of every URL, and placeholders added to it (`--placeholder`).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub fields: Fields,
    pub extra: Vec<&'static Placeholder>,
}

impl Selection {
    fn all(all: bool) -> Self {
        Selection {
            fields: if all { Fields::All } else { Fields::Standard },
            extra: Vec::new(),
        }
    }

    /// The placeholders of a URL for activities of these scopes, in catalog order.
    pub fn placeholders(&self, scopes: &[Scope]) -> Vec<&'static Placeholder> {
        let base = placeholders(scopes, self.fields == Fields::All);
        base.into_iter()
            .filter(|p| self.fields != Fields::Minimal || p.minimal_url)
            .chain(self.extra.iter().copied())
            .fold(Vec::new(), |mut out, p| {
                if !out.iter().any(|q: &&Placeholder| q.name == p.name) {
                    out.push(p);
                }
                out
            })
    }
}

/// The link of Adjust's callback tester for a callback URL.
pub fn test_link(url: &str) -> String {
    format!(
        "https://app.adjust.com/cbtest?callback={}",
        encode_value(url)
    )
}

/// `a={a}&b={b}…`: the query part of a callback URL.
pub fn query(placeholders: &[&Placeholder]) -> String {
    let mut q = String::new();
    for p in placeholders {
        if !q.is_empty() {
            q.push('&');
        }
        let _ = write!(q, "{0}={{{0}}}", p.name);
    }
    q
}

/// The global callback URL: `<base>/adjust?activity_kind={activity_kind}&…`.
pub fn global_url(base: &BaseUrl, all: bool) -> String {
    global_url_with(base, &Selection::all(all))
}

/// The single-activity callback URL of a trigger: `<base>/adjust/<trigger>?…`.
pub fn trigger_url(base: &BaseUrl, trigger: &Trigger, all: bool) -> String {
    trigger_url_with(base, trigger, &Selection::all(all))
}

/// [`global_url`] with a field selection.
pub fn global_url_with(base: &BaseUrl, sel: &Selection) -> String {
    format!(
        "{}/adjust?{}",
        base.as_str(),
        query(&sel.placeholders(&global_scopes()))
    )
}

/// [`trigger_url`] with a field selection.
pub fn trigger_url_with(base: &BaseUrl, trigger: &Trigger, sel: &Selection) -> String {
    format!(
        "{}/adjust/{}?{}",
        base.as_str(),
        trigger.name,
        query(&sel.placeholders(&trigger.scopes()))
    )
}

/// Everything but the unreserved characters `A-Za-z0-9-._~` is percent-encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes a whole callback URL as a query value (`{` → `%7B`, `&` → `%26`, `/` → `%2F`, …).
pub fn encode_value(value: &str) -> String {
    utf8_percent_encode(value, COMPONENT).to_string()
}

/// `url` with `&sink_token=<token>` appended (callback URLs always have a query).
fn with_token(url: String, token: Option<&str>) -> String {
    match token {
        Some(t) => format!("{url}&{}={}", crate::http::token::KEY, encode_value(t)),
        None => url,
    }
}

/// The tracker URL parameter of event callbacks for these tokens: `event_callback_<t1>_<t2>…`
/// (several tokens lumped into one parameter share one callback URL).
pub fn event_param(tokens: &[String]) -> String {
    let mut param = String::from("event_callback");
    for token in tokens {
        param.push('_');
        param.push_str(token);
    }
    param
}

/// The partner form: `https://app.adjust.com/<tracker>?<param>=<encoded url>&…`.
pub fn partner_url(tracker: &str, params: &[(String, String)]) -> String {
    let mut url = format!("https://app.adjust.com/{tracker}");
    for (i, (param, callback)) in params.iter().enumerate() {
        url.push(if i == 0 { '?' } else { '&' });
        url.push_str(param);
        url.push('=');
        url.push_str(&encode_value(callback));
    }
    url
}

/// Why the inputs cannot give callback URLs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("--base-url `{url}`: {reason}")]
    BaseUrl { url: String, reason: String },
    #[error(
        "--tracker `{0}`: a tracker (link) token is 6 or more lowercase letters and digits, e.g. `abc123`"
    )]
    Tracker(String),
    #[error("--event-token `{0}`: an event token is lowercase letters and digits, e.g. `f0ob4r`")]
    EventToken(String),
    #[error("--trigger `{name}` is not a trigger; use one of: {known}")]
    UnknownTrigger { name: String, known: String },
    #[error("--partner needs --tracker TOKEN: the tracker the callbacks are attached to")]
    MissingTracker,
    #[error("--tracker is only used with --partner")]
    TrackerWithoutPartner,
    #[error(
        "--trigger `{0}` cannot be set on a tracker URL (partners can set: {1}); set it up in the Adjust dashboard instead"
    )]
    NotForPartners(String, String),
    #[error(
        "--partner with the event trigger needs --event-token TOKEN (event callbacks are attached per event token)"
    )]
    EventWithoutToken,
    #[error("--callback-token: {0}")]
    CallbackToken(String),
    #[error("--placeholder `{0}` is not an Adjust placeholder this sink knows")]
    UnknownPlaceholder(String),
}

/// What to generate (the `callback-url` flags).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The sink's public base URL.
    pub base_url: String,
    /// `global` and trigger names; empty = the global callback and every trigger.
    pub triggers: Vec<String>,
    /// Event tokens (imply the event trigger).
    pub event_tokens: Vec<String>,
    /// Every placeholder of the catalog in every URL.
    pub all: bool,
    /// The partner form (one tracker URL) instead of the dashboard URLs.
    pub partner: bool,
    /// The tracker token of the partner form.
    pub tracker: Option<String>,
    /// `sink_token=<token>` goes into every callback URL (`serve --callback-token`).
    pub callback_token: Option<String>,
    /// The field set (`all` wins); default `minimal` for the partner form, `standard` otherwise.
    pub fields: Option<Fields>,
    /// Placeholders added to every URL.
    pub placeholders: Vec<String>,
}

/// What one printed URL is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Global,
    Trigger(&'static str),
    /// The event trigger for one token (`None`: for whichever events you pick).
    Event(Option<String>),
    /// A tracker URL with the callbacks attached.
    Partner,
}

/// One URL and the comment saying what it is and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub target: Target,
    pub comment: String,
    pub url: String,
    /// The callback URLs it carries (the URL itself, or those attached to a tracker URL), each
    /// with its parameter name (`""` for a dashboard URL).
    pub callbacks: Vec<(String, String)>,
}

/// The URLs to print, and warnings (for stderr).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub entries: Vec<Entry>,
    pub warnings: Vec<String>,
}

impl Output {
    /// `# comment` and URL lines, one pair per entry, each followed by `# Adjust callback tester:`
    /// lines with the tester link of every callback URL it carries.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for e in &self.entries {
            let _ = writeln!(out, "# {}\n{}", e.comment, e.url);
            for (param, url) in &e.callbacks {
                let which = if param.is_empty() {
                    String::new()
                } else {
                    format!(" ({param})")
                };
                let _ = writeln!(out, "# Adjust callback tester{which}: {}", test_link(url));
            }
        }
        out
    }
}

/// What was asked for, resolved: the global callback or not, the triggers in order.
fn selection(opts: &Options) -> Result<(bool, Vec<&'static Trigger>), Error> {
    let names: Vec<&str> = opts
        .triggers
        .iter()
        .map(|n| n.trim())
        .filter(|n| !n.is_empty())
        .collect();
    if names.is_empty() {
        let triggers = TRIGGERS
            .iter()
            .filter(|t| !opts.partner || t.partner_param.is_some())
            .filter(|t| !opts.partner || t.name != EVENT || !opts.event_tokens.is_empty())
            .collect();
        return Ok((!opts.partner, triggers));
    }
    let mut global = false;
    let mut triggers: Vec<&'static Trigger> = Vec::new();
    for name in names {
        if name == GLOBAL {
            global = true;
            continue;
        }
        let t = trigger(name).ok_or_else(|| Error::UnknownTrigger {
            name: name.to_owned(),
            known: std::iter::once(GLOBAL)
                .chain(TRIGGERS.iter().map(|t| t.name))
                .collect::<Vec<_>>()
                .join(", "),
        })?;
        if !triggers.contains(&t) {
            triggers.push(t);
        }
    }
    if !opts.event_tokens.is_empty() && !triggers.iter().any(|t| t.name == EVENT) {
        triggers.push(trigger(EVENT).expect("event trigger"));
    }
    Ok((global, triggers))
}

/// The URLs for `opts`.
pub fn generate(opts: &Options) -> Result<Output, Error> {
    let base = BaseUrl::parse(&opts.base_url)?;
    let mut tokens: Vec<String> = Vec::new();
    for token in &opts.event_tokens {
        check_event_token(token)?;
        if !tokens.contains(token) {
            tokens.push(token.clone());
        }
    }
    let tracker = match (opts.partner, &opts.tracker) {
        (true, None) => return Err(Error::MissingTracker),
        (false, Some(_)) => return Err(Error::TrackerWithoutPartner),
        (true, Some(tracker)) => {
            check_tracker(tracker)?;
            Some(tracker.as_str())
        }
        (false, None) => None,
    };
    let secret = opts.callback_token.as_deref();
    if let Some(t) = secret {
        crate::http::token::check(t).map_err(Error::CallbackToken)?;
    }
    let (global, triggers) = selection(opts)?;
    let mut sel = Selection {
        fields: match (opts.all, opts.fields) {
            (true, _) => Fields::All,
            (false, Some(f)) => f,
            (false, None) if opts.partner => Fields::Minimal,
            (false, None) => Fields::Standard,
        },
        extra: Vec::new(),
    };
    for name in &opts.placeholders {
        let p = CATALOG
            .iter()
            .find(|p| p.name == name.trim().trim_matches(|c| c == '{' || c == '}'))
            .ok_or_else(|| Error::UnknownPlaceholder(name.clone()))?;
        sel.extra.push(p);
    }
    let entries = match tracker {
        Some(tracker) => vec![partner_entry(
            &base, tracker, global, &triggers, &tokens, &sel, secret,
        )?],
        None => dashboard_entries(&base, global, &triggers, &tokens, &sel, secret),
    };
    let mut warnings = base.warnings().to_vec();
    for e in &entries {
        for (param, url) in &e.callbacks {
            if url.len() > LONG_URL {
                let what = if param.is_empty() {
                    e.comment.split(" → ").next().unwrap_or("").to_owned()
                } else {
                    format!("{param} of the tracker URL")
                };
                warnings.push(format!(
                    "the {what} URL is {} characters, over {LONG_URL}: it may be cut on the way (try --fields minimal)",
                    url.len()
                ));
            }
        }
        if e.target == Target::Partner && e.url.len() > LONG_URL {
            warnings.push(format!(
                "the tracker URL is {} characters, over {LONG_URL}: it may be cut on the way (try --fields minimal or fewer --trigger)",
                e.url.len()
            ));
        }
    }
    Ok(Output { entries, warnings })
}

fn dashboard_entries(
    base: &BaseUrl,
    global: bool,
    triggers: &[&'static Trigger],
    tokens: &[String],
    sel: &Selection,
    secret: Option<&str>,
) -> Vec<Entry> {
    let mut entries = Vec::new();
    if global {
        entries.push(Entry {
            target: Target::Global,
            comment: format!(
                "Global callback (every activity except ad revenue, SKAdNetwork and SAN clicks/impressions) → {DASHBOARD} → Global"
            ),
            callbacks: vec![(String::new(), with_token(global_url_with(base, sel), secret))],
            url: with_token(global_url_with(base, sel), secret),
        });
    }
    for t in triggers {
        let url = with_token(trigger_url_with(base, t, sel), secret);
        let callbacks = vec![(String::new(), url.clone())];
        if t.name != EVENT {
            entries.push(Entry {
                target: Target::Trigger(t.name),
                comment: format!("{} callback → {DASHBOARD} → {}", t.title, t.title),
                url,
                callbacks,
            });
        } else if tokens.is_empty() {
            entries.push(Entry {
                target: Target::Event(None),
                comment: format!(
                    "Event callback → {DASHBOARD} → each event you want (--event-token TOKEN lists them one by one)"
                ),
                url,
                callbacks,
            });
        } else {
            for token in tokens {
                entries.push(Entry {
                    target: Target::Event(Some(token.clone())),
                    comment: format!(
                        "Event callback for event token {token} → {DASHBOARD} → the event {token}"
                    ),
                    url: url.clone(),
                    callbacks: callbacks.clone(),
                });
            }
        }
    }
    entries
}

fn partner_entry(
    base: &BaseUrl,
    tracker: &str,
    global: bool,
    triggers: &[&'static Trigger],
    tokens: &[String],
    sel: &Selection,
    secret: Option<&str>,
) -> Result<Entry, Error> {
    let settable = || {
        TRIGGERS
            .iter()
            .filter(|t| t.partner_param.is_some())
            .map(|t| t.name)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if global {
        return Err(Error::NotForPartners(GLOBAL.to_owned(), settable()));
    }
    let mut params = Vec::new();
    let mut what = Vec::new();
    for t in triggers {
        let param = t
            .partner_param
            .ok_or_else(|| Error::NotForPartners(t.name.to_owned(), settable()))?;
        let url = with_token(trigger_url_with(base, t, sel), secret);
        if t.name == EVENT {
            if tokens.is_empty() {
                return Err(Error::EventWithoutToken);
            }
            params.push((event_param(tokens), url));
            what.push(format!("event ({})", tokens.join(", ")));
        } else {
            params.push((param.to_owned(), url));
            what.push(t.name.replace('_', " "));
        }
    }
    Ok(Entry {
        target: Target::Partner,
        comment: format!(
            "Tracker URL {tracker} with {} callbacks to this sink attached (use it as the tracker link; Adjust sends them for activities attributed to {tracker})",
            what.join(", ")
        ),
        url: partner_url(tracker, &params),
        callbacks: params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adjust::activity;

    fn opts(base: &str) -> Options {
        Options {
            base_url: base.to_owned(),
            ..Options::default()
        }
    }

    fn partner(tracker: &str, triggers: &[&str], tokens: &[&str]) -> Options {
        Options {
            partner: true,
            tracker: Some(tracker.to_owned()),
            triggers: triggers.iter().map(|s| s.to_string()).collect(),
            event_tokens: tokens.iter().map(|s| s.to_string()).collect(),
            ..opts("https://sink.example.com")
        }
    }

    fn names(url: &str) -> Vec<&str> {
        let (_, q) = url.split_once('?').unwrap();
        q.split('&')
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap();
                assert_eq!(v, format!("{{{k}}}"), "plain form is name={{name}}");
                k
            })
            .collect()
    }

    #[test]
    fn encoding_matches_adjusts_partner_guide() {
        // Adjust's partner guide: the callback URL fully percent-encoded as the parameter value.
        let url = partner_url(
            "abc123",
            &[(
                "install_callback".into(),
                "http://www.mynetwork.com/install?idfa={idfa}&android_id={android_id}".into(),
            )],
        );
        assert_eq!(
            url,
            "https://app.adjust.com/abc123?install_callback=http%3A%2F%2Fwww.mynetwork.com%2Finstall%3Fidfa%3D%7Bidfa%7D%26android_id%3D%7Bandroid_id%7D"
        );
        assert_eq!(
            encode_value("a-b.c_d~e f+g:h/i?j"),
            "a-b.c_d~e%20f%2Bg%3Ah%2Fi%3Fj"
        );
    }

    #[test]
    fn the_callback_token_goes_into_every_url() {
        let secret = "0123456789abcdef-rotated";
        let out = generate(&Options {
            callback_token: Some(secret.to_owned()),
            ..opts("https://sink.example.com")
        })
        .unwrap();
        assert!(out.entries.len() > 5);
        for e in &out.entries {
            assert!(
                e.url.ends_with(&format!("&sink_token={secret}")),
                "{}",
                e.url
            );
        }
        let out = generate(&Options {
            callback_token: Some(secret.to_owned()),
            ..partner("abc123", &["install", "session"], &[])
        })
        .unwrap();
        assert_eq!(
            out.entries[0]
                .url
                .matches("%26sink_token%3D0123456789abcdef-rotated")
                .count(),
            2,
            "{}",
            out.entries[0].url
        );
        let bad = generate(&Options {
            callback_token: Some("short".into()),
            ..opts("https://sink.example.com")
        });
        assert!(matches!(bad, Err(Error::CallbackToken(_))));
    }

    #[test]
    fn a_generated_partner_url_is_exactly_the_encoded_dashboard_urls() {
        let out = generate(&Options {
            fields: Some(Fields::Standard),
            ..partner("abc123", &["install", "session"], &[])
        })
        .unwrap();
        assert_eq!(out.entries.len(), 1);
        let base = BaseUrl::parse("https://sink.example.com").unwrap();
        let install = trigger_url(&base, trigger("install").unwrap(), false);
        let session = trigger_url(&base, trigger("session").unwrap(), false);
        let expected = format!(
            "https://app.adjust.com/abc123?install_callback={}&session_callback={}",
            install
                .replace(':', "%3A")
                .replace('/', "%2F")
                .replace('?', "%3F")
                .replace('=', "%3D")
                .replace('&', "%26")
                .replace('{', "%7B")
                .replace('}', "%7D"),
            session
                .replace(':', "%3A")
                .replace('/', "%2F")
                .replace('?', "%3F")
                .replace('=', "%3D")
                .replace('&', "%26")
                .replace('{', "%7B")
                .replace('}', "%7D"),
        );
        assert_eq!(out.entries[0].url, expected);
        assert!(
            out.entries[0]
                .url
                .starts_with("https://app.adjust.com/abc123?install_callback=https%3A%2F%2Fsink.example.com%2Fadjust%2Finstall%3Factivity_kind%3D%7Bactivity_kind%7D%26")
        );
        assert!(
            out.render()
                .starts_with("# Tracker URL abc123 with install, session callbacks")
        );
    }

    #[test]
    fn event_tokens_are_lumped_into_one_partner_parameter() {
        let out = generate(&partner(
            "abc123",
            &[],
            &["a1b2c3", "d4e5f6", "a1b2c3", "g7"],
        ))
        .unwrap();
        let url = &out.entries[0].url;
        let params: Vec<&str> = url
            .split_once('?')
            .unwrap()
            .1
            .split('&')
            .map(|p| p.split_once('=').unwrap().0)
            .collect();
        assert_eq!(
            params,
            [
                "click_callback",
                "impression_callback",
                "install_callback",
                "reattribution_callback",
                "session_callback",
                "event_callback_a1b2c3_d4e5f6_g7",
                "rejected_install_callback",
                "rejected_reattribution_callback",
            ]
        );
        assert!(url.contains(
            "&event_callback_a1b2c3_d4e5f6_g7=https%3A%2F%2Fsink.example.com%2Fadjust%2Fevent%3F"
        ));
        // Without tokens the partner form has no event callback at all.
        let out = generate(&partner("abc123", &[], &[])).unwrap();
        assert!(!out.entries[0].url.contains("event_callback"));
    }

    #[test]
    fn dashboard_form_prints_one_event_line_per_token() {
        let mut o = opts("https://sink.example.com/");
        o.triggers = vec!["global".into(), "install".into()];
        o.event_tokens = vec!["f0ob4r".into(), "bkrfgq".into()];
        let out = generate(&o).unwrap();
        let targets: Vec<&Target> = out.entries.iter().map(|e| &e.target).collect();
        assert_eq!(
            targets,
            [
                &Target::Global,
                &Target::Trigger("install"),
                &Target::Event(Some("f0ob4r".into())),
                &Target::Event(Some("bkrfgq".into())),
            ]
        );
        assert!(
            out.entries[0]
                .url
                .starts_with("https://sink.example.com/adjust?activity_kind={activity_kind}&")
        );
        assert!(
            out.entries[2].url.starts_with(
                "https://sink.example.com/adjust/event?activity_kind={activity_kind}&"
            )
        );
        assert!(out.entries[2].comment.contains("f0ob4r"));
        // The standard field set makes long URLs: each one is named in a warning.
        assert_eq!(out.warnings.len(), 4, "{:?}", out.warnings);
        assert!(out.warnings[0].starts_with("the Global callback (every activity"));
        assert!(out.warnings.iter().all(|w| w.contains("over 2048")));
        let rendered = out.render();
        let lines: Vec<&str> = rendered.lines().collect();
        assert_eq!(lines.len(), 12);
        for (three, e) in lines.chunks(3).zip(&out.entries) {
            assert!(three[0].starts_with("# "));
            assert_eq!(three[1], e.url);
            assert_eq!(
                three[2],
                format!(
                    "# Adjust callback tester: https://app.adjust.com/cbtest?callback={}",
                    encode_value(&e.url)
                )
            );
        }
    }

    #[test]
    fn default_is_the_global_callback_and_every_trigger() {
        let out = generate(&opts("https://sink.example.com")).unwrap();
        assert_eq!(out.entries.len(), 1 + TRIGGERS.len());
        assert_eq!(out.entries[0].target, Target::Global);
        assert!(out.entries.iter().any(|e| e.target == Target::Event(None)));
        // An empty name (a trailing comma in ADJUST_SINK_TRIGGER) is no selection.
        let mut o = opts("https://sink.example.com");
        o.triggers = vec![String::new(), " ".into()];
        assert_eq!(generate(&o).unwrap(), out);
    }

    #[test]
    fn every_url_carries_the_identity_placeholders_and_only_catalog_names() {
        let base = BaseUrl::parse("https://sink.example.com").unwrap();
        for all in [false, true] {
            let mut urls = vec![global_url(&base, all)];
            urls.extend(TRIGGERS.iter().map(|t| trigger_url(&base, t, all)));
            for url in &urls {
                let names = names(url);
                for required in REQUIRED {
                    assert!(names.contains(&required), "{required} missing in {url}");
                }
                let mut sorted = names.clone();
                sorted.sort_unstable();
                sorted.dedup();
                assert_eq!(sorted.len(), names.len(), "a placeholder twice in {url}");
                assert!(names.iter().all(|n| CATALOG.iter().any(|p| p.name == *n)));
                if all {
                    assert_eq!(names.len(), CATALOG.len());
                }
            }
        }
    }

    #[test]
    fn scopes_follow_the_activities() {
        let base = BaseUrl::parse("https://sink.example.com").unwrap();
        let global = global_url(&base, false);
        assert!(global.contains("&tracker_name={tracker_name}&"));
        assert!(global.contains("&rejection_reason={rejection_reason}"));
        assert!(global.contains("&revenue_float={revenue_float}&"));
        // The global callback does not fire for ad revenue and SKAdNetwork.
        assert!(!global.contains("ad_mediation_platform"));
        assert!(!global.contains("sk_payload"));
        assert!(!global_scopes().contains(&Scope::Skan));
        let ad = trigger_url(&base, trigger("ad_revenue").unwrap(), false);
        assert!(ad.contains("&ad_revenue_payload={ad_revenue_payload}"));
        assert!(!ad.contains("click_time"));
        let click = trigger_url(&base, trigger("click").unwrap(), false);
        assert!(click.contains("&click_time={click_time}&"));
        assert!(!click.contains("installed_at"));
        assert!(!click.contains("revenue"));
        let sk = trigger_url(&base, trigger("sk_install").unwrap(), false);
        assert!(sk.contains("&sk_transaction_id={sk_transaction_id}&"));
    }

    /// Every known kind has a URL to paste (its trigger's), and what the global callback's
    /// comment says it leaves out is what the activity table says.
    #[test]
    fn every_known_activity_kind_has_a_url() {
        let base = BaseUrl::parse("https://sink.example.com").unwrap();
        let out = generate(&opts("https://sink.example.com")).unwrap();
        for a in activity::ACTIVITIES {
            let url = trigger_url(&base, a.trigger, false);
            assert!(
                out.entries.iter().any(|e| e.url == url),
                "no URL for {}",
                a.kind
            );
        }
        let left_out: Vec<&str> = activity::ACTIVITIES
            .iter()
            .filter(|a| !a.in_global)
            .map(|a| a.kind)
            .collect();
        assert!(out.entries[0].comment.contains(
            "(every activity except ad revenue, SKAdNetwork and SAN clicks/impressions)"
        ));
        assert!(
            left_out
                .iter()
                .all(|k| *k == "ad_revenue" || k.starts_with("sk_") || k.starts_with("san_")),
            "{left_out:?}"
        );
        for k in [
            "ad_revenue",
            "sk_install",
            "sk_event",
            "san_click",
            "san_impression",
        ] {
            assert!(left_out.contains(&k), "{k}");
        }
    }

    #[test]
    fn base_urls_are_validated() {
        let ok = BaseUrl::parse("https://Sink.example.com:8443/prefix/").unwrap();
        assert_eq!(ok.as_str(), "https://Sink.example.com:8443/prefix");
        assert!(ok.warnings().is_empty());
        assert_eq!(
            BaseUrl::parse("HTTPS://sink.example.com").unwrap().as_str(),
            "https://sink.example.com"
        );
        for (bad, why) in [
            ("sink.example.com", "must start with https://"),
            ("ftp://sink.example.com", "must start with https://"),
            ("https://sink.example.com/?secret=1", "query string"),
            ("https://sink.example.com/#x", "fragment"),
            ("https://", "has no host"),
            ("https://:8080", "is not a host name"),
            ("https://sink.example.com:99999", "not a port number"),
            ("https://sink.example.com:http", "not a port number"),
            ("https://user:pw@sink.example.com", "credentials"),
            ("https://sink.example.com/a b", "not allowed in a URL"),
            ("https://sink_1.example.com", "is not a host name"),
            ("https://[::1", "unclosed"),
            ("https://[nope]:80", "not an IPv6 address"),
        ] {
            match BaseUrl::parse(bad) {
                Err(e @ Error::BaseUrl { .. }) => {
                    let text = e.to_string();
                    assert!(text.contains(why), "{bad}: {text}");
                    assert!(text.starts_with(&format!("--base-url `{bad}`: ")), "{text}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn ip_hosts_and_plain_http_are_warnings() {
        let v4 = BaseUrl::parse("http://10.0.0.1:8080").unwrap();
        assert_eq!(v4.as_str(), "http://10.0.0.1:8080");
        assert_eq!(v4.warnings().len(), 2);
        assert!(v4.warnings()[0].contains("IP address"));
        assert!(v4.warnings()[1].contains("plain http"));
        let v6 = BaseUrl::parse("https://[2001:db8::1]:8443").unwrap();
        assert_eq!(v6.warnings().len(), 1);
        let doubled = BaseUrl::parse("https://sink.example.com/adjust").unwrap();
        assert!(doubled.warnings()[0].contains("already ends in /adjust"));
        let out = generate(&Options {
            fields: Some(Fields::Minimal),
            ..opts("http://127.0.0.1:8080")
        })
        .unwrap();
        assert_eq!(out.warnings.len(), 2, "{:?}", out.warnings);
    }

    #[test]
    fn field_sets_and_added_placeholders() {
        let base = BaseUrl::parse("https://sink.example.com").unwrap();
        let install = trigger("install").unwrap();
        let url = |fields, extra: &[&str]| {
            let sel = Selection {
                fields,
                extra: extra
                    .iter()
                    .map(|n| CATALOG.iter().find(|p| p.name == *n).unwrap())
                    .collect(),
            };
            trigger_url_with(&base, install, &sel)
        };
        let minimal = url(Fields::Minimal, &[]);
        let standard = url(Fields::Standard, &[]);
        let all = url(Fields::All, &[]);
        assert!(minimal.len() < LONG_URL && minimal.len() < standard.len());
        assert!(standard.len() < all.len());
        assert_eq!(standard, trigger_url(&base, install, false));
        let names = names(&minimal);
        for n in REQUIRED
            .iter()
            .chain(&["tracker_name", "adid", "idfa", "app_token"])
        {
            assert!(names.contains(n), "{n} missing from {minimal}");
        }
        assert!(!names.contains(&"revenue_float"), "not an install's");
        assert!(!names.contains(&"city"));
        let more = url(Fields::Minimal, &["city", "adid"]);
        assert_eq!(more, format!("{minimal}&city={{city}}"));

        // The partner form defaults to `minimal`: every trigger URL is short, no warning.
        let out = generate(&partner("abc123", &[], &["f0ob4r"])).unwrap();
        assert!(
            out.warnings
                .iter()
                .all(|w| w.starts_with("the tracker URL"))
        );
        assert_eq!(out.entries[0].callbacks.len(), 8);
        for (param, cb) in &out.entries[0].callbacks {
            assert!(cb.len() < LONG_URL, "{param}: {}", cb.len());
        }
        assert_eq!(
            generate(&Options {
                placeholders: vec!["nope".into()],
                ..opts("https://sink.example.com")
            })
            .unwrap_err(),
            Error::UnknownPlaceholder("nope".into())
        );
    }

    #[test]
    fn tokens_triggers_and_partner_flags_are_validated() {
        let err = |o: Options| generate(&o).unwrap_err();
        for bad in ["ABC123", "abc12", "abc-123", ""] {
            assert_eq!(err(partner(bad, &[], &[])), Error::Tracker(bad.into()));
        }
        assert!(generate(&partner("11n573m9", &[], &[])).is_ok());
        for bad in ["F0OB4R", "f0o b4r", "", "tok_1"] {
            assert_eq!(
                err(partner("abc123", &[], &[bad])),
                Error::EventToken(bad.into())
            );
        }
        let mut o = opts("https://sink.example.com");
        o.triggers = vec!["installs".into()];
        let e = err(o.clone());
        assert!(matches!(&e, Error::UnknownTrigger { name, .. } if name == "installs"));
        assert!(
            e.to_string()
                .contains("global, click, impression, install,")
        );
        o.triggers.clear();
        o.tracker = Some("abc123".into());
        assert_eq!(err(o.clone()), Error::TrackerWithoutPartner);
        o.tracker = None;
        o.partner = true;
        assert_eq!(err(o), Error::MissingTracker);
        let e = err(partner("abc123", &["global"], &[]));
        assert!(matches!(&e, Error::NotForPartners(t, _) if t == "global"));
        let e = err(partner("abc123", &["ad_revenue"], &[]));
        assert!(
            e.to_string()
                .contains("click, impression, install, reattribution, session, event")
        );
        assert_eq!(
            err(partner("abc123", &["event"], &[])),
            Error::EventWithoutToken
        );
    }

    #[test]
    fn event_tokens_imply_the_event_trigger() {
        let mut o = opts("https://sink.example.com");
        o.triggers = vec!["session".into()];
        o.event_tokens = vec!["f0ob4r".into()];
        let out = generate(&o).unwrap();
        assert_eq!(out.entries[1].target, Target::Event(Some("f0ob4r".into())));
        let out = generate(&partner("abc123", &["session"], &["f0ob4r"])).unwrap();
        assert!(
            out.entries[0]
                .url
                .contains("&event_callback_f0ob4r=https%3A")
        );
    }
}
