//! What `serve` does besides delivering: carrying out erasure requests and, with `--retention`,
//! removing old rows (docs/privacy.md).
//!
//! - [`erasure`], every `--erasure-interval`: requests recorded in `<table>_erasures` (by
//!   ClickHouse, when the `gdpr_forget_device` callback was inserted) are carried out in rounds
//!   sized by query length: rows of the devices left anywhere (every shard of a cluster) →
//!   one `ALTER TABLE … DELETE` per table (unless a mutation is still running on it); none
//!   left → the requests are marked done. A request with an identifier longer than any device
//!   id is refused; one that fails on its own is set aside with backoff while the others go on.
//! - [`retention`]: on modern servers a TTL, set when the table's differs; on 18.16 (no TTL)
//!   every hour, the monthly partitions wholly older than the limit are dropped.
//! - [`again`], hourly (first at the first erasure round): rows received lately that bring back
//!   rows of a device whose erasure is done (a late callback) make its request again; `replay`,
//!   `import` and the export follower run the same check on the rows they insert.
//! - [`lease`]: of several sinks on one table (or one cluster), only the holder of the lease in
//!   `<table>_lease` runs these rounds.
//!
//! Whether a forget callback is honoured at all is decided at start ([`Trust`]): with a
//! `--callback-token` every stored callback carried it; without one a callback proves only that
//! it came through the allowlist, so erasure needs `--erasure-without-token`.
//!
//! Errors are logged without any identifier (ClickHouse's message can quote the query) and the
//! next round tries again.

pub mod again;
pub mod erasure;
pub mod lease;
pub mod retention;

use std::time::Duration;

use super::schema::Target;
use super::store::ClickHouseStore;
use crate::metrics::{HousekeepingTask, Metrics};
use crate::pipeline::LateRows;
use crate::settings::{ConfigError, err, positive_duration};
use crate::sink::{Admin, StoreError};

/// The Housekeeping section of the command line (`serve`).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Housekeeping")]
pub struct HousekeepingArgs {
    /// Keep callbacks and rejects this many days (by `event_date` and `rejected_at`), then
    /// remove them: a TTL on modern servers, whole monthly partitions dropped hourly on 18.16.
    #[arg(long, value_name = "DAYS", env = "ADJUST_SINK_RETENTION")]
    pub retention: Option<u32>,

    /// How often erasure requests (`gdpr_forget_device` callbacks) are carried out.
    #[arg(long, env = "ADJUST_SINK_ERASURE_INTERVAL", default_value = "60s")]
    pub erasure_interval: String,

    /// Do not erase a device's rows on `gdpr_forget_device` (requests are still recorded in
    /// `<table>_erasures`).
    #[arg(long, env = "ADJUST_SINK_NO_ERASURE")]
    pub no_erasure: bool,

    /// Carry out `gdpr_forget_device` requests although no --callback-token is set. Without a
    /// token a callback proves only that it came from Adjust's servers (the allowlist), not from
    /// your Adjust account, so erasure is off unless this is given.
    #[arg(long, env = "ADJUST_SINK_ERASURE_WITHOUT_TOKEN")]
    pub erasure_without_token: bool,
}

/// Why a stored forget callback is honoured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Every callback must carry a `--callback-token`, so every stored one did.
    Token,
    /// No token, and `--erasure-without-token` says to honour them anyway.
    WithoutToken,
}

/// Retention and erasure, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Housekeeping {
    /// `--retention` days.
    pub retention_days: Option<u32>,
    /// `--erasure-interval`; `None` with `--no-erasure`.
    pub erasure_interval: Option<Duration>,
    /// Why forget callbacks are honoured; `None`: they are not (no token, no
    /// `--erasure-without-token`), and no erasure runs.
    pub trust: Option<Trust>,
}

impl HousekeepingArgs {
    /// The settings; `tokens_required`: every callback must carry a `--callback-token`.
    pub fn settings(&self, tokens_required: bool) -> Result<Housekeeping, ConfigError> {
        if self.retention == Some(0) {
            return err("--retention must be at least 1 day");
        }
        let interval = positive_duration("--erasure-interval", &self.erasure_interval)?;
        let trust = if tokens_required {
            Some(Trust::Token)
        } else if self.erasure_without_token {
            Some(Trust::WithoutToken)
        } else {
            None
        };
        Ok(Housekeeping {
            retention_days: self.retention,
            erasure_interval: (!self.no_erasure).then_some(interval),
            trust,
        })
    }
}

impl Housekeeping {
    /// How often erasure rounds run, when they do.
    pub fn erasure(&self) -> Option<Duration> {
        self.erasure_interval.filter(|_| self.trust.is_some())
    }

    /// How often the lease is renewed and the rounds looked at: the erasure interval, or a
    /// minute when only retention runs.
    fn tick(&self) -> Duration {
        self.erasure().unwrap_or(Duration::from_secs(60))
    }

    /// Says at start whether erasure runs, and why (or why not).
    fn announce(&self, target: &Target) {
        let table = super::schema::erasure::erasures_table(target);
        match (self.erasure_interval, self.trust) {
            (None, _) => tracing::info!(
                %table,
                "erasure is off (--no-erasure): gdpr_forget_device requests are recorded and not carried out"
            ),
            (Some(_), None) => tracing::warn!(
                %table,
                "erasure is off: no --callback-token is set, so a gdpr_forget_device callback proves only that \
                 it came from Adjust's servers (any Adjust customer's callback passes the allowlist), not from \
                 your account; set --callback-token, or pass --erasure-without-token to honour them anyway. \
                 Requests are recorded meanwhile"
            ),
            (Some(every), Some(Trust::Token)) => tracing::info!(
                ?every,
                "erasure is on: gdpr_forget_device requests are honoured, every callback carried the --callback-token"
            ),
            (Some(every), Some(Trust::WithoutToken)) => tracing::warn!(
                ?every,
                "erasure is on without a callback token (--erasure-without-token): anyone whose callbacks pass \
                 the allowlist can have a device's rows of an app erased"
            ),
        }
    }
}

/// How often 18.16 partitions (and modern TTLs) are checked against `--retention`.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// How often the rows received lately are checked for rows of erased devices that came back.
const AGAIN_EVERY: Duration = Duration::from_secs(3600);

/// How far back a check reaches: Adjust retries a callback for up to a day.
const AGAIN_LOOKBACK: u32 = 25 * 3600;

/// How far before the previous check's start a check reads rows received: a row delivered up
/// to this long after it was received (its batch held up by ClickHouse, by another sink's log)
/// is still among them.
const AGAIN_OVERLAP: u32 = 15 * 60;

/// How soon a failed retention round (or check) is tried again.
const RETENTION_RETRY: Duration = Duration::from_secs(60);

/// Runs the housekeeping rounds, and the check of the rows `late` notes, until the task is
/// dropped (what `serve` spawns).
pub async fn run(store: ClickHouseStore, settings: Housekeeping, metrics: Metrics, late: LateRows) {
    let target = store.config().target.clone();
    tokio::join!(
        again::watch_late(&store, &target, &late, &metrics),
        run_with(&store, target.clone(), settings, metrics.clone()),
    );
}

/// [`run`] over any [`Admin`]. At start and then each tick (the erasure interval, or a minute)
/// the lease is renewed or sought; only its holder runs the rounds that are due. The first
/// erasure round comes one interval after start (delivery creates the tables meanwhile); the
/// first retention round at start, then hourly (a failed one again after a minute).
pub async fn run_with<A: Admin>(
    admin: &A,
    target: Target,
    settings: Housekeeping,
    metrics: Metrics,
) {
    use tokio::time::{Instant, sleep_until};
    settings.announce(&target);
    if settings.erasure().is_none() && settings.retention_days.is_none() {
        return;
    }
    let tick = settings.tick();
    let mut lease = lease::Lease::new(target.clone(), tick);
    let mut eraser = erasure::Eraser::new(target.clone(), tick);
    // The lease is sought at start; retention runs then, erasure one interval later.
    let mut next_tick = Instant::now();
    let mut next_erasure = next_tick + tick;
    let mut next_retention = next_tick;
    // Rows received since then are not checked yet for rows of erased devices that came back:
    // at start the last day (a late callback comes within Adjust's day of retries), then since
    // the previous check (less an overlap, for rows delivered a while after their receipt).
    let mut next_again = next_erasure;
    let mut unchecked_since = crate::clock::unix_now().saturating_sub(AGAIN_LOOKBACK);
    loop {
        sleep_until(next_tick).await;
        let now = Instant::now();
        next_tick = now + tick;
        let held = match lease.hold(admin).await {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(error = %redacted(&e), "housekeeping lease: ClickHouse did not answer; trying again next round");
                false
            }
        };
        metrics.housekeeping_lease_held.set(i64::from(held));
        if !held {
            // Another sink reports the pending requests.
            metrics.erasures_pending.set(0);
            metrics.set_oldest_erasure(None);
            continue;
        }
        if settings.erasure().is_some() && now >= next_erasure {
            next_erasure = now + tick;
            metrics.housekeeping_rounds.inc(HousekeepingTask::Erasure);
            if let Err(e) = eraser
                .round(admin, &metrics, crate::clock::unix_now())
                .await
            {
                tracing::warn!(error = %redacted(&e), "erasure round failed; trying again next round");
            }
        }
        if settings.erasure().is_some() && now >= next_again {
            let started = crate::clock::unix_now();
            // A late callback was created before its request and arrives within Adjust's day
            // of retries, so the requests of the last day are what it can bring back.
            let requested_since = started.saturating_sub(AGAIN_LOOKBACK);
            let checked = again::check(
                admin,
                &target,
                unchecked_since.saturating_sub(AGAIN_OVERLAP),
                requested_since,
                started,
            )
            .await;
            next_again = now
                + match checked {
                    Ok(c) => {
                        unchecked_since = started;
                        metrics.erasures_requested_again.inc_by(c.again as u64);
                        if c.again > 0 {
                            tracing::warn!(
                                requests = c.again,
                                "late callbacks brought back rows of erased devices (from before their requests): their erasure is requested again"
                            );
                        }
                        AGAIN_EVERY
                    }
                    Err(e) => {
                        tracing::warn!(error = %redacted(&e), "checking for rows of erased devices that came back failed; trying again in a minute");
                        RETENTION_RETRY
                    }
                };
        }
        if let Some(days) = settings.retention_days
            && now >= next_retention
        {
            metrics.housekeeping_rounds.inc(HousekeepingTask::Retention);
            next_retention = now
                + match retention::round(admin, &target, &metrics, days).await {
                    Ok(()) => RETENTION_EVERY,
                    Err(e) => {
                        tracing::warn!(error = %redacted(&e), "retention round failed; trying again in a minute");
                        RETENTION_RETRY
                    }
                };
        }
    }
}

/// The first number of the first row (0 when there is none).
async fn count<A: Admin>(admin: &A, sql: &str) -> Result<u64, StoreError> {
    Ok(admin
        .select(sql)
        .await?
        .first()
        .and_then(|r| r.first())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

/// A ClickHouse error fit for the log: its text up to the first quoted part (the values of a
/// query, which may be identifiers, and echoes of the query come quoted) or echo of the query
/// (syntax errors show it unquoted), at most 300 characters.
pub fn redacted(e: &StoreError) -> String {
    let mut text = e.message.as_str();
    for cut in [
        "failed at position",
        "Failed at position",
        " here: ",
        " (version ",
    ] {
        if let Some(at) = text.find(cut) {
            text = &text[..at];
        }
    }
    // A quote not between two letters (`doesn't` is prose).
    let bytes = text.as_bytes();
    let quote = (0..bytes.len()).find(|&i| {
        matches!(bytes[i], b'\'' | b'"' | b'`')
            && !(i > 0
                && bytes[i - 1].is_ascii_alphabetic()
                && bytes.get(i + 1).is_some_and(u8::is_ascii_alphabetic))
    });
    let mut out: String = match quote {
        Some(at) => format!("{}…", &text[..at]),
        None => text.to_string(),
    };
    if out.chars().count() > 300 {
        out = out.chars().take(300).chain(['…']).collect();
    }
    out.trim_end().to_string()
}

/// TabSeparated unescaping of one field.
fn unescape(field: &str) -> String {
    if !field.contains('\\') {
        return field.to_string();
    }
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::ErrorClass;

    #[test]
    fn tab_separated_fields_are_unescaped() {
        assert_eq!(unescape("a\\tb\\\\c\\'d"), "a\tb\\c'd");
        assert_eq!(unescape("plain"), "plain");
    }

    #[test]
    fn logged_errors_carry_no_quoted_value_nor_the_query() {
        let e = StoreError::new(
            ErrorClass::Unknown,
            Some(62),
            "Code: 62, e.displayText() = DB::Exception: Syntax error: failed at position 40 (line 1, col 40): 'SECRETDEVICE', 'x') OR gps_adid IN ('SECRET2')",
        );
        let text = redacted(&e);
        assert_eq!(
            text,
            "Code: 62, e.displayText() = DB::Exception: Syntax error:"
        );
        let e = StoreError::new(
            ErrorClass::Transient,
            Some(60),
            "Code: 60, e.displayText() = DB::Exception: Table adjust.x doesn't exist., e.what() = DB::Exception",
        );
        assert_eq!(redacted(&e), e.message);
        let e = StoreError::new(
            ErrorClass::Unknown,
            Some(47),
            format!(
                "Code: 47. Missing columns: 'a' while processing 'adid IN ('{}')'",
                "X".repeat(1000)
            ),
        );
        let text = redacted(&e);
        assert!(!text.contains('X'), "{text}");
        assert!(text.len() < 400);
        assert_eq!(
            redacted(&StoreError::new(
                ErrorClass::Transient,
                None,
                "connection refused"
            )),
            "connection refused"
        );
    }

    fn args(no_erasure: bool, without_token: bool) -> HousekeepingArgs {
        HousekeepingArgs {
            retention: None,
            erasure_interval: "2s".into(),
            no_erasure,
            erasure_without_token: without_token,
        }
    }

    /// Erasure runs only when a forget callback proves something: every callback carried the
    /// token, or the operator said to honour them without one; --no-erasure wins.
    #[test]
    fn erasure_needs_a_token_or_an_explicit_flag() {
        let every = Some(Duration::from_secs(2));
        let h = args(false, false).settings(true).unwrap();
        assert_eq!((h.erasure(), h.trust), (every, Some(Trust::Token)));
        let h = args(false, false).settings(false).unwrap();
        assert_eq!((h.erasure(), h.trust), (None, None));
        let h = args(false, true).settings(false).unwrap();
        assert_eq!((h.erasure(), h.trust), (every, Some(Trust::WithoutToken)));
        for tokens in [false, true] {
            let h = args(true, true).settings(tokens).unwrap();
            assert_eq!(h.erasure(), None);
        }
    }
}
