//! What `serve` does besides delivering: carrying out erasure requests and, with `--retention`,
//! removing old rows (README "Privacy").
//!
//! - Erasure, every `--erasure-interval`: read the pending requests from `<table>_erasures`
//!   (recorded by ClickHouse when the `gdpr_forget_device` callback was inserted, so nothing is
//!   lost when the sink stops); when rows of those devices are left in the callbacks or rejects
//!   table, start an `ALTER TABLE … DELETE WHERE …` mutation (unless one is still running on
//!   it); once none is left, mark the requests done.
//! - Retention: on modern servers a TTL set once at start; on 18.16 (no TTL) every hour, drop the
//!   monthly partitions wholly older than the limit.
//!
//! Errors are logged and the next round tries again.

use std::collections::HashSet;
use std::time::Duration;

use super::{Profile, quote};
use crate::clickhouse::schema::erasure::{self, Request};
use crate::metrics::Metrics;
use crate::settings::{ConfigError, err, positive_duration};

use super::store::ClickHouseStore;
use crate::sink::StoreError;

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
}

/// Retention and erasure, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Housekeeping {
    /// `--retention` days.
    pub retention_days: Option<u32>,
    /// `--erasure-interval`; `None` with `--no-erasure`.
    pub erasure_interval: Option<Duration>,
}

impl HousekeepingArgs {
    pub fn settings(&self) -> Result<Housekeeping, ConfigError> {
        if self.retention == Some(0) {
            return err("--retention must be at least 1 day");
        }
        let interval = positive_duration("--erasure-interval", &self.erasure_interval)?;
        Ok(Housekeeping {
            retention_days: self.retention,
            erasure_interval: (!self.no_erasure).then_some(interval),
        })
    }
}

/// How many requests one erasure round takes on.
const BATCH: usize = 1000;
/// How often 18.16 partitions are checked against `--retention`.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// How soon a failed retention round is tried again.
const RETENTION_RETRY: Duration = Duration::from_secs(60);

/// Runs the housekeeping rounds until the task is dropped. The first erasure round comes one
/// interval after start (delivery creates the tables meanwhile); the first retention round at
/// start, then hourly (a failed one again after a minute).
pub async fn run(store: ClickHouseStore, settings: Housekeeping, metrics: Metrics) {
    use tokio::time::{Instant, sleep_until};
    let far = || Instant::now() + Duration::from_secs(365 * 86_400);
    let mut next_erasure = settings
        .erasure_interval
        .map_or_else(far, |every| Instant::now() + every);
    let mut next_retention = settings.retention_days.map_or_else(far, |_| Instant::now());
    let mut seen = HashSet::new();
    let mut ttl_set = false;
    loop {
        tokio::select! {
            _ = sleep_until(next_erasure) => {
                if let Err(e) = erase(&store, &metrics, &mut seen).await {
                    tracing::warn!(error = %e, "erasure round failed; trying again next round");
                }
                let every = settings.erasure_interval.expect("erasure is on");
                next_erasure = Instant::now() + every;
            }
            _ = sleep_until(next_retention) => {
                let days = settings.retention_days.expect("retention is set");
                next_retention = Instant::now() + match retain(&store, &metrics, days, &mut ttl_set).await {
                    Ok(()) => RETENTION_EVERY,
                    Err(e) => {
                        tracing::warn!(error = %e, "retention round failed; trying again in a minute");
                        RETENTION_RETRY
                    }
                };
            }
        }
    }
}

async fn count(store: &ClickHouseStore, sql: &str) -> Result<u64, StoreError> {
    let rows = store.select(sql).await?;
    Ok(rows
        .first()
        .and_then(|r| r.first())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

/// One erasure round.
async fn erase(
    store: &ClickHouseStore,
    metrics: &Metrics,
    seen: &mut HashSet<Request>,
) -> Result<(), StoreError> {
    let target = &store.config().target;
    let requests: Vec<Request> = store
        .select(&erasure::pending_sql(target, BATCH))
        .await?
        .into_iter()
        .filter_map(|r| match &r[..] {
            [kind, id, at] => Some(Request {
                kind: unescape(kind),
                id: unescape(id),
                requested_at: at.parse().ok()?,
            }),
            _ => None,
        })
        .collect();
    for r in &requests {
        if seen.insert(r.clone()) {
            metrics.erasures_requested.inc();
        }
    }
    metrics.set_oldest_erasure(requests.iter().map(|r| r.requested_at).min());
    metrics.erasures_pending.set(requests.len() as i64);
    if requests.is_empty() {
        return Ok(());
    }
    let [callbacks, rejects] = erasure::erased_tables(target);
    let work = [
        (&callbacks, erasure::callbacks_predicate(&requests)),
        (&rejects, erasure::rejects_predicate(&requests)),
    ];
    let mut left = Vec::new();
    for (table, predicate) in &work {
        if count(
            store,
            &format!("SELECT count() FROM {table} WHERE {predicate}"),
        )
        .await?
            > 0
        {
            left.push((table, predicate));
        }
    }
    if left.is_empty() {
        let now = crate::clock::unix_now();
        store
            .run_sql(&erasure::done_sql(target, &requests, now))
            .await?;
        metrics.erasures_done.inc_by(requests.len() as u64);
        if requests.len() < BATCH {
            metrics.set_oldest_erasure(None);
            metrics.erasures_pending.set(0);
        }
        for r in &requests {
            seen.remove(r);
        }
        tracing::info!(
            identifiers = requests.len(),
            "erasure done: no row of the devices is left"
        );
        return Ok(());
    }
    // A mutation still running on the tables: let it finish before starting another.
    let running = count(
        store,
        &format!(
            "SELECT count() FROM system.mutations WHERE database = {} AND table IN ({}, {}) AND is_done = 0",
            quote(&target.database),
            quote(&target.table),
            quote(&format!("{}_rejects", target.table)),
        ),
    )
    .await?;
    if running > 0 {
        return Ok(());
    }
    for (table, predicate) in left {
        store
            .run_sql(&format!(
                "ALTER TABLE {table}{} DELETE WHERE {predicate}",
                target.on_cluster()
            ))
            .await?;
        tracing::info!(%table, identifiers = requests.len(), "erasure started");
    }
    Ok(())
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

/// One retention round.
async fn retain(
    store: &ClickHouseStore,
    metrics: &Metrics,
    days: u32,
    ttl_set: &mut bool,
) -> Result<(), StoreError> {
    let target = &store.config().target;
    if store.profile().await? == Profile::Modern {
        if !*ttl_set {
            for st in erasure::ttl_statements(target, days) {
                store.run_sql(&st.sql).await?;
                tracing::info!(what = %st.what, "retention set");
            }
            *ttl_set = true;
        }
        return Ok(());
    }
    let today = crate::clock::unix_now() / 86_400;
    for table in erasure::erased_tables(target) {
        let (db, name) = table.split_once('.').expect("database.table");
        let partitions: Vec<u32> = store
            .select(&format!(
                "SELECT DISTINCT partition FROM system.parts WHERE database = {} AND table = {} AND active",
                quote(db),
                quote(name)
            ))
            .await?
            .into_iter()
            .filter_map(|r| r.first().and_then(|p| p.trim_matches('\'').parse().ok()))
            .collect();
        for p in erasure::expired_partitions(&partitions, today, days) {
            store
                .run_sql(&format!(
                    "ALTER TABLE {table}{} DROP PARTITION {p}",
                    target.on_cluster()
                ))
                .await?;
            metrics.retention_partitions_dropped.inc();
            tracing::info!(%table, partition = p, days, "dropped a partition past --retention");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::unescape;

    #[test]
    fn tab_separated_fields_are_unescaped() {
        assert_eq!(unescape("a\\tb\\\\c\\'d"), "a\tb\\c'd");
        assert_eq!(unescape("plain"), "plain");
    }
}
