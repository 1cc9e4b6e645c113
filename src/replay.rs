//! `adjust-sink replay` and `adjust-sink check`: deliver or inspect a data directory without
//! serving.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::clickhouse::store::{ClickHouseConfig, ClickHouseStore, ClusterNode, NodeState};
use crate::metrics::Metrics;
use crate::pipeline::Limits;
use crate::pipeline::batcher::{self, Finished};
use crate::pipeline::deliver::{Backoff, Deliverer, RejectsFile, share_of_budget};
use crate::pipeline::wal::inspect::{Inspection, inspect};
use crate::pipeline::wal::{Wal, WalConfig};
use crate::shutdown::Shutdown;
use crate::sink::StoreError;
use crate::sink::classify::is_privilege_code;

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
    data_dir: &Path,
    clickhouse: ClickHouseConfig,
    limits: Limits,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<Summary> {
    let wal_dir = data_dir.join("wal");
    let before = inspect(&wal_dir)?;
    let metrics = Metrics::new();
    let config = WalConfig {
        dir: wal_dir.clone(),
        segment_bytes: 64 << 20,
        disk_budget: u64::MAX,
        max_pending_bytes: 0,
    };
    let store = ClickHouseStore::new(clickhouse)?;
    store.probe_at_start().await?;
    let (wal, reader, _) = Wal::open(config, metrics.clone())?;
    // Nothing new comes in: delivery ends once everything durable is read and acknowledged.
    wal.close();
    let shutdown = Shutdown::new();
    let deliverer = Deliverer::new(
        store,
        metrics.clone(),
        Backoff::default(),
        RejectsFile::new(data_dir.join("rejects.jsonl"), share_of_budget(u64::MAX)),
    );
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

/// Everything `check` reports.
#[derive(Debug)]
pub struct CheckReport {
    pub log: Inspection,
    pub rejects_file_lines: usize,
    /// ClickHouse's version, or why it did not answer.
    pub server: Result<String, String>,
    /// The callbacks table (`db.table`).
    pub table: String,
    /// Whether the user sees the table (it exists and may be read).
    pub table_exists: bool,
    pub missing_columns: Vec<String>,
    /// Tables an INSERT of no rows failed on, with the server's answer.
    pub insert_refused: Vec<(String, StoreError)>,
    /// With `--cluster`: each node and whether it has the tables, or why the nodes could not be
    /// listed.
    pub cluster: Option<Result<Vec<ClusterNode>, String>>,
}

impl CheckReport {
    /// Whether something needs attention (pending data is normal while serving).
    pub fn is_healthy(&self) -> bool {
        self.server.is_ok()
            && self.table_exists
            && self.missing_columns.is_empty()
            && self.insert_refused.is_empty()
            && self.log.damaged_bytes == 0
            && match &self.cluster {
                None => true,
                Some(Ok(nodes)) => nodes.iter().all(|n| n.state == NodeState::Complete),
                Some(Err(_)) => false,
            }
    }

    pub fn render(&self, data_dir: &Path) -> String {
        let now = u64::from(crate::clock::unix_now());
        let age = |t: Option<u32>| {
            t.map_or("-".to_string(), |t| {
                format!("{}s ago", now.saturating_sub(u64::from(t)))
            })
        };
        let l = &self.log;
        let mut out = format!(
            "data directory {}\n  write-ahead log: {} segment(s), {} record(s) pending ({} bytes), oldest {}, newest {}\n  resume at {}{}\n",
            data_dir.display(),
            l.segments,
            l.pending_records,
            l.pending_bytes,
            age(l.oldest),
            age(l.newest),
            l.ack,
            l.inflight.map_or(String::new(), |(s, e)| format!(
                " (batch {s}..{e} was being inserted)"
            )),
        );
        if l.damaged_bytes > 0 {
            out += &format!(
                "  DAMAGED: {} bytes are not valid records (cut or quarantined at the next start)\n",
                l.damaged_bytes
            );
        }
        if l.quarantined_bytes > 0 {
            out += &format!(
                "  quarantine file: {} bytes (wal/quarantine)\n",
                l.quarantined_bytes
            );
        }
        if self.rejects_file_lines > 0 {
            out += &format!(
                "  rejects file: {} row(s) ClickHouse refused (rejects.jsonl)\n",
                self.rejects_file_lines
            );
        }
        match &self.server {
            Ok(v) => {
                out += &format!("ClickHouse {v}\n");
                if !self.table_exists {
                    out += &format!(
                        "  the table {} does not exist, or the user may not see it (run `adjust-sink migrate` as a user with DDL rights; the sink's user needs INSERT and SELECT on it)\n",
                        self.table
                    );
                } else if self.missing_columns.is_empty() {
                    out += "  the table has every column this version writes\n";
                } else {
                    out += &format!(
                        "  the table lacks {} column(s) this version writes: {} (run `adjust-sink migrate`)\n",
                        self.missing_columns.len(),
                        self.missing_columns.join(", ")
                    );
                }
                if self.table_exists {
                    if self.insert_refused.is_empty() {
                        out += "  the user may insert into the callbacks and rejects tables\n";
                    }
                    for (table, e) in &self.insert_refused {
                        out += &match e.code {
                            Some(c) if is_privilege_code(c) => format!(
                                "  the user may not insert into {table} (grant it INSERT): {e}\n"
                            ),
                            Some(60) => format!(
                                "  {table} does not exist (run `adjust-sink migrate`): {e}\n"
                            ),
                            _ => format!("  inserting into {table} failed: {e}\n"),
                        };
                    }
                }
            }
            // "ClickHouse at <url>: <what went wrong>"
            Err(e) => out += &format!("{e}\n"),
        }
        match &self.cluster {
            None => {}
            Some(Err(e)) => out += &format!("  cluster: {e}\n"),
            Some(Ok(nodes)) => {
                for n in nodes {
                    let node = format!(
                        "  node {} (shard {}, replica {})",
                        n.address, n.shard, n.replica
                    );
                    out += &match &n.state {
                        NodeState::Complete => format!("{node}: has every table and view\n"),
                        NodeState::Lacks(missing) => format!(
                            "{node}: LACKS {} (run `adjust-sink migrate --cluster …` again)\n",
                            missing.join(", ")
                        ),
                        NodeState::Unreachable(e) => format!("{node}: UNREACHABLE: {e}\n"),
                    };
                }
            }
        }
        out
    }
}

/// Inspects a data directory and compares the table with the code.
pub async fn check(data_dir: &Path, clickhouse: ClickHouseConfig) -> anyhow::Result<CheckReport> {
    let log = inspect(&data_dir.join("wal"))?;
    let rejects_file_lines =
        std::fs::read_to_string(data_dir.join("rejects.jsonl")).map_or(0, |s| s.lines().count());
    let table = clickhouse.target.table();
    let store = ClickHouseStore::new(clickhouse)?;
    let mut report = CheckReport {
        log,
        rejects_file_lines,
        server: Err(String::new()),
        table,
        table_exists: false,
        missing_columns: Vec::new(),
        insert_refused: Vec::new(),
        cluster: None,
    };
    match store.probe(Duration::from_secs(10)).await {
        Ok(v) => report.server = Ok(v),
        Err(e) => {
            report.server = Err(e.to_string());
            return Ok(report);
        }
    }
    if store.config().target.cluster.is_some() {
        report.cluster = Some(store.cluster_nodes().await.map_err(|e| e.to_string()));
    }
    let have = store
        .existing_columns()
        .await
        .map_err(|e| anyhow::anyhow!("reading the table's columns: {e}"))?;
    report.table_exists = !have.is_empty();
    if report.table_exists {
        report.missing_columns = store
            .missing_columns()
            .await
            .map_err(|e| anyhow::anyhow!("reading the table's columns: {e}"))?;
        for (table, result) in store.insert_allowed().await {
            if let Err(e) = result {
                report.insert_refused.push((table, e));
            }
        }
    }
    Ok(report)
}
