//! `adjust-sink replay`: deliver what a data directory's write-ahead log holds, without serving;
//! with `--since`, every callback the log acknowledged since a time, from its kept segments
//! (a sink may be running on the directory).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::cli::ReplayArgs;
use crate::clickhouse::housekeeping::{again, redacted};
use crate::clickhouse::store::{ClickHouseConfig, ClickHouseStore};
use crate::metrics::Metrics;
use crate::pipeline::Limits;
use crate::pipeline::batcher::{self, Finished};
use crate::pipeline::settings::DataDir;
use crate::pipeline::wal::Wal;
use crate::pipeline::wal::inspect::inspect;
use crate::pipeline::wal::since::SinceReader;
use crate::shutdown::Shutdown;

pub fn command(args: &ReplayArgs) -> anyhow::Result<()> {
    let timeouts = args.delivery.timeouts()?;
    let mut clickhouse = args
        .clickhouse
        .config(!args.migrate.no_migrate, timeouts.insert)?;
    if let Some(since) = &args.since {
        let since = parse_since(since, crate::clock::unix_now())?;
        // Rows ClickHouse lost may come back in blocks identical to ones it still remembers
        // (replicated tables keep the hashes of recent blocks in ZooKeeper): never dropped as
        // duplicates of themselves; copies collapse by callback_id.
        clickhouse.deduplicate = false;
        let summary = super::runtime()?.block_on(replay_since(
            &args.data_dir.settings()?,
            since,
            clickhouse,
            args.batch.limits()?,
            stop_within(timeouts.shutdown),
        ))?;
        println!(
            "replayed {} rows acknowledged since {} in {} batches ({} rejected) in {:.1}s",
            summary.rows_written,
            format_time(since),
            summary.batches,
            summary.rows_rejected,
            summary.elapsed.as_secs_f64()
        );
        return match summary.finished {
            Finished::Drained => Ok(()),
            Finished::Deadline { rows } => {
                anyhow::bail!("stopped with {rows} rows not replayed (run it again)")
            }
        };
    }
    let summary = super::runtime()?.block_on(replay(
        &args.data_dir.settings()?,
        clickhouse,
        args.batch.limits()?,
        stop_within(timeouts.shutdown),
    ))?;
    println!(
        "replayed {} rows in {} batches ({} rejected) in {:.1}s",
        summary.rows_written,
        summary.batches,
        summary.rows_rejected,
        summary.elapsed.as_secs_f64()
    );
    match summary.finished {
        Finished::Drained => Ok(()),
        Finished::Deadline { rows } => {
            anyhow::bail!("stopped with {rows} rows not delivered (they stay in the log)")
        }
    }
}

/// Resolves on SIGTERM or SIGINT with the time the batches in flight get to land
/// (`--shutdown-timeout`); what does not land by then stays in the log for the next run.
async fn stop_within(grace: Duration) -> Duration {
    super::serve::termination().await;
    grace
}

/// What a replay did.
#[derive(Debug)]
pub struct Summary {
    pub rows_written: u64,
    pub rows_rejected: u64,
    pub batches: u64,
    pub elapsed: Duration,
    pub finished: Finished,
}

/// Delivers every pending record of `data_dir`'s log to ClickHouse, with a progress line on
/// stderr, until the log is drained or `stop` resolves.
pub async fn replay(
    data_dir: &DataDir,
    clickhouse: ClickHouseConfig,
    limits: Limits,
    stop: impl std::future::Future<Output = Duration>,
) -> anyhow::Result<Summary> {
    let before = inspect(&existing_log(data_dir)?)?;
    let store = ClickHouseStore::new(clickhouse)?;
    store.probe_at_start().await?;
    // Nothing new comes in (no appends, so no pending bytes): the budget does not matter here,
    // and kept segments stay however full the disk is.
    let mut config = data_dir.wal_config(0);
    config.disk_budget = crate::pipeline::wal::UNLIMITED;
    let metrics = Metrics::new();
    let (wal, reader, _) = Wal::open(config, metrics.clone())?;
    // Delivery ends once everything durable is read and acknowledged.
    wal.close();
    // A record is written within moments of its callback's `received_at`.
    let received_since = before.oldest.unwrap_or(0).saturating_sub(RECEIVED_SLACK);
    let to = Delivery {
        data_dir,
        limits,
        metrics,
        total: before.pending_records,
        received_since,
    };
    deliver_all(reader, store, to, stop).await
}

/// How long before its record's time a callback's `received_at` may be (it is set as the
/// callback is decoded, the record's time when its group is committed), with room to spare.
const RECEIVED_SLACK: u32 = 60;

/// Where and how a replay delivers.
struct Delivery<'a> {
    data_dir: &'a DataDir,
    limits: Limits,
    metrics: Metrics,
    /// Records to deliver, for the progress line.
    total: u64,
    /// No replayed row was received before this (unix seconds).
    received_since: u32,
}

/// Delivers what `reader` yields through `store` (with the rejects file of `to.data_dir`), with
/// a progress line of `to.total` records on stderr, until it is drained or `stop` resolves (the
/// batches in flight then get the time it gives). Then, when rows were written, checks that
/// no erased device came back with them (docs/privacy.md).
async fn deliver_all(
    reader: impl crate::pipeline::Consumer,
    store: ClickHouseStore,
    to: Delivery<'_>,
    stop: impl std::future::Future<Output = Duration>,
) -> anyhow::Result<Summary> {
    let Delivery {
        data_dir,
        limits,
        metrics,
        total,
        received_since,
    } = to;
    let target = store.config().target.clone();
    let shutdown = Shutdown::new();
    let deliverer = data_dir.deliverer(store, metrics.clone());
    let started = Instant::now();
    let run = batcher::run(
        reader,
        limits,
        &deliverer,
        shutdown.clone(),
        metrics.clone(),
    );
    let progress = progress(&metrics, total, started);
    tokio::pin!(run, stop);
    let finished = tokio::select! {
        f = &mut run => f,
        () = progress => unreachable!("progress never ends"),
        grace = &mut stop => {
            shutdown.begin(grace);
            run.await
        }
    };
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
    let rows_written = metrics.rows_written.get();
    if rows_written > 0 {
        again::after(deliverer.store(), &target, received_since, "replay", &metrics)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "{rows_written} rows replayed, but checking that they brought back no row of an erased device failed: {}; run the replay again (it changes nothing after FINAL)",
                    redacted(&e)
                )
            })?;
    }
    Ok(Summary {
        rows_written,
        rows_rejected: metrics.rows_rejected.total(),
        batches: metrics.flushes.total(),
        elapsed: started.elapsed(),
        finished,
    })
}

/// The log's directory in `data_dir`, or an error when there is none: a mistyped `--data-dir`
/// is said so, not answered with an empty log made there and "replayed 0 rows".
fn existing_log(data_dir: &DataDir) -> anyhow::Result<std::path::PathBuf> {
    let wal_dir = data_dir.wal_dir();
    if !wal_dir.is_dir() {
        anyhow::bail!(
            "{} holds no write-ahead log ({} does not exist): nothing to replay; is --data-dir the sink's?",
            data_dir.path.display(),
            wal_dir.display()
        );
    }
    Ok(wal_dir)
}

/// Delivers every record `data_dir`'s log wrote at or after `since` (unix seconds), delivered
/// already or not, reading its segments without its lock and changing nothing in the directory
/// but the rejects file.
pub async fn replay_since(
    data_dir: &DataDir,
    since: u32,
    clickhouse: ClickHouseConfig,
    limits: Limits,
    stop: impl std::future::Future<Output = Duration>,
) -> anyhow::Result<Summary> {
    let wal_dir = existing_log(data_dir)?;
    let reader = SinceReader::open(&wal_dir, since)?;
    let kept = inspect(&wal_dir)?;
    if let Some(oldest) = kept.kept_since.or(kept.oldest)
        && oldest > since
    {
        tracing::warn!(
            since = %format_time(since),
            oldest = %format_time(oldest),
            "the log keeps nothing older than its oldest record: callbacks acknowledged before it cannot be replayed from here"
        );
    }
    let store = ClickHouseStore::new(clickhouse)?;
    store.probe_at_start().await?;
    let to = Delivery {
        data_dir,
        limits,
        metrics: Metrics::new(),
        total: kept.kept_records + kept.pending_records,
        received_since: since.saturating_sub(RECEIVED_SLACK),
    };
    deliver_all(reader, store, to, stop).await
}

/// `--since`: an RFC 3339 time (`2026-12-06T04:00:00Z`, `…+02:00`) or a duration back from `now`
/// (`30m`, `26h`), as unix seconds.
pub fn parse_since(s: &str, now: u32) -> anyhow::Result<u32> {
    let s = s.trim();
    if s.contains('T') || s.contains('t') || s.contains('-') && s.len() >= 10 {
        let at = parse_rfc3339(s).ok_or_else(|| {
            anyhow::anyhow!(
                "--since `{s}`: not an RFC 3339 time (like 2026-12-06T04:00:00Z) nor a duration (like 30m)"
            )
        })?;
        // Nothing was acknowledged after a time to come: most likely a local time given as UTC.
        anyhow::ensure!(
            at <= now,
            "--since `{s}` is in the future (it is {} now, UTC): nothing was acknowledged since; check the time zone (Z is UTC, +02:00 two hours ahead of it)",
            format_time(now)
        );
        return Ok(at);
    }
    let back = crate::settings::parse_duration(s).map_err(|e| anyhow::anyhow!("--since: {e}"))?;
    Ok(now.saturating_sub(back.as_secs().min(u32::MAX as u64) as u32))
}

/// Unix seconds of an RFC 3339 time (fractions of a second are dropped).
fn parse_rfc3339(s: &str) -> Option<u32> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let (mo, d) = (u32::try_from(mo).ok()?, u32::try_from(d).ok()?);
    if !crate::clock::is_civil_date(y, mo, d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(|c| c.is_ascii_digit()) {
            i += 1;
        }
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let o = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
            if *sign == b'+' { o } else { -o }
        }
        _ => return None,
    };
    let days = crate::clock::days_from_civil(y, mo, d);
    let t = days * 86_400 + h * 3600 + mi * 60 + sec - offset;
    u32::try_from(t).ok()
}

/// A unix time as RFC 3339 (UTC).
pub fn format_time(t: u32) -> String {
    let t = i64::from(t);
    let (days, rem) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let (y, m, d) = crate::clock::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Prints `rows delivered / pending` every half second (a bar on a terminal).
async fn progress(metrics: &Metrics, total: u64, started: Instant) {
    let tty = std::io::stderr().is_terminal();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let done = metrics.rows_written.get();
        let rate = done as f64 / started.elapsed().as_secs_f64().max(0.001);
        let pct = if total == 0 {
            100.0
        } else {
            (done as f64 * 100.0 / total as f64).min(100.0)
        };
        let width = 30;
        let filled = (pct / 100.0 * width as f64) as usize;
        let line = format!(
            "replay [{}{}] {done}/{total} rows ({pct:.0}%), {rate:.0} rows/s",
            "#".repeat(filled),
            "-".repeat(width - filled)
        );
        if tty {
            eprint!("\r{line}");
            let _ = std::io::stderr().flush();
        } else {
            eprintln!("{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_an_rfc3339_time_or_a_duration_back() {
        let now = 1_796_529_600;
        assert_eq!(
            parse_since("2026-12-06T04:00:00Z", now).unwrap(),
            1_796_529_600
        );
        assert_eq!(
            parse_since("2026-12-06T06:00:00+02:00", now).unwrap(),
            1_796_529_600
        );
        assert_eq!(
            parse_since("2026-12-06T04:00:00.250Z", now).unwrap(),
            1_796_529_600
        );
        let future = parse_since("2026-12-06T04:00:01Z", now).unwrap_err();
        assert!(
            future
                .to_string()
                .contains("is in the future (it is 2026-12-06T04:00:00Z now, UTC)"),
            "{future}"
        );
        assert_eq!(format_time(1_796_529_600), "2026-12-06T04:00:00Z");
        assert_eq!(parse_since("30m", 10_000).unwrap(), 10_000 - 1800);
        assert_eq!(
            parse_since("26h", 1_000_000).unwrap(),
            1_000_000 - 26 * 3600
        );
        for bad in [
            "2026-12-06",
            "2026-13-06T04:00:00Z",
            "2026-02-29T04:00:00Z",
            "2026-04-31T04:00:00Z",
            "yesterday",
            "2026-12-06T04:00:00",
        ] {
            assert!(parse_since(bad, 0).is_err(), "{bad}");
        }
    }
}
