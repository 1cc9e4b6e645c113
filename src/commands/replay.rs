//! `adjust-sink replay`: deliver what a data directory's write-ahead log holds, without serving.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::cli::ReplayArgs;
use crate::clickhouse::store::{ClickHouseConfig, ClickHouseStore};
use crate::metrics::Metrics;
use crate::pipeline::Limits;
use crate::pipeline::batcher::{self, Finished};
use crate::pipeline::settings::DataDir;
use crate::pipeline::wal::Wal;
use crate::pipeline::wal::inspect::inspect;
use crate::shutdown::Shutdown;

pub fn command(args: &ReplayArgs) -> anyhow::Result<()> {
    let timeouts = args.delivery.timeouts()?;
    let clickhouse = args
        .clickhouse
        .config(!args.migrate.no_migrate, timeouts.insert)?;
    let summary = super::runtime()?.block_on(replay(
        &args.data_dir.settings()?,
        clickhouse,
        args.batch.limits()?,
        super::serve::termination(),
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
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<Summary> {
    let before = inspect(&data_dir.wal_dir())?;
    let metrics = Metrics::new();
    let store = ClickHouseStore::new(clickhouse)?;
    store.probe_at_start().await?;
    // Nothing new comes in (no appends, so no pending bytes): the budget does not matter here.
    let mut config = data_dir.wal_config(0);
    config.disk_budget = u64::MAX;
    let (wal, reader, _) = Wal::open(config, metrics.clone())?;
    // Delivery ends once everything durable is read and acknowledged.
    wal.close();
    let shutdown = Shutdown::new();
    let deliverer = data_dir.deliverer(store, metrics.clone());
    let started = Instant::now();
    let run = batcher::run(reader, limits, deliverer, shutdown.clone(), metrics.clone());
    let progress = progress(&metrics, before.pending_records, started);
    tokio::pin!(run, stop);
    let finished = tokio::select! {
        f = &mut run => f,
        () = progress => unreachable!("progress never ends"),
        () = &mut stop => {
            shutdown.begin(Duration::ZERO);
            run.await
        }
    };
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
    let rejected = metrics.rows_rejected.total();
    let batches = metrics.flushes.total();
    Ok(Summary {
        rows_written: metrics.rows_written.get(),
        rows_rejected: rejected,
        batches,
        elapsed: started.elapsed(),
        finished,
    })
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
