//! `adjust-sink check`: what a data directory holds for delivery, and whether ClickHouse has the
//! table this version writes (and, with `--cluster`, every node has it).

use std::path::Path;
use std::time::Duration;

use crate::cli::CheckArgs;
use crate::clickhouse::store::{ClickHouseConfig, ClickHouseStore, ClusterNode, NodeState};
use crate::pipeline::wal::inspect::{Inspection, inspect};
use crate::sink::StoreError;
use crate::sink::classify::is_privilege_code;

pub fn command(args: &CheckArgs) -> anyhow::Result<()> {
    let clickhouse = args.clickhouse.config(false, Duration::from_secs(10))?;
    let report = super::runtime()?.block_on(check(&args.data_dir, clickhouse))?;
    print!("{}", report.render(&args.data_dir));
    if report.is_healthy() {
        Ok(())
    } else {
        anyhow::bail!("check found problems (see above)")
    }
}

/// Everything `check` reports.
#[derive(Debug)]
pub struct CheckReport {
    /// Whether the data directory holds a write-ahead log at all (a `memory` sink's, or a
    /// mistyped `--data-dir`, does not).
    pub log_exists: bool,
    pub log: Inspection,
    /// Free space on the data directory's filesystem (`None` when it cannot be read).
    pub disk_free: Option<u64>,
    pub rejects_file_lines: usize,
    /// ClickHouse's version, or why it did not answer.
    pub server: Result<String, String>,
    /// The callbacks table (`db.table`).
    pub table: String,
    /// Whether the user sees the table (it exists and may be read).
    pub table_exists: bool,
    pub missing_columns: Vec<String>,
    /// Whether the table's cold columns read keys by name (made by an earlier version; `migrate`
    /// rewrites it).
    pub cold_keyed_by_names: bool,
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
            && !self.cold_keyed_by_names
            && self.insert_refused.is_empty()
            && self.log.damaged_bytes == 0
            && match &self.cluster {
                None => true,
                Some(Ok(nodes)) => nodes.iter().all(|n| n.state == NodeState::Complete),
                Some(Err(_)) => false,
            }
    }

    /// The write-ahead log's lines of [`CheckReport::render`].
    fn render_log(&self) -> String {
        let now = u64::from(crate::clock::unix_now());
        let age = |t: Option<u32>| {
            t.map_or("-".to_string(), |t| {
                format!("{}s ago", now.saturating_sub(u64::from(t)))
            })
        };
        let l = &self.log;
        let mut out = format!(
            "  write-ahead log: {} segment(s), {} record(s) pending ({} bytes), oldest {}, newest {}\n  resume at {}{}\n",
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
        if let Some(free) = self.disk_free {
            out += &format!(
                "  filesystem: {free} bytes free (the log never takes more than this less 4 MiB, whatever --disk-budget says)\n"
            );
        }
        out += &match l.kept_since {
            Some(t) => format!(
                "  kept for replay --since: {} delivered record(s) ({} bytes) from {} ({}) on\n",
                l.kept_records,
                l.kept_bytes,
                super::replay::format_time(t),
                age(Some(t)),
            ),
            None => "  kept for replay --since: no delivered record (replay --since reaches back to the oldest pending one)\n".to_string(),
        };
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
        out
    }

    pub fn render(&self, data_dir: &Path) -> String {
        let mut out = format!("data directory {}\n", data_dir.display());
        if self.log_exists {
            out += &self.render_log();
        } else {
            out += &format!(
                "  write-ahead log: none ({} does not exist: nothing to deliver from here)\n",
                data_dir.join("wal").display()
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
                if self.cold_keyed_by_names {
                    out += "  the table's cold columns read keys by name, as an earlier version wrote them: run `adjust-sink migrate` to rewrite them (rows written meanwhile read their cold columns empty until then)\n";
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
    let wal_dir = data_dir.join("wal");
    let log_exists = wal_dir.is_dir();
    let log = inspect(&wal_dir)?;
    let rejects_file_lines =
        std::fs::read_to_string(data_dir.join("rejects.jsonl")).map_or(0, |s| s.lines().count());
    let table = clickhouse.target.table();
    let store = ClickHouseStore::new(clickhouse)?;
    let mut report = CheckReport {
        log_exists,
        log,
        disk_free: crate::pipeline::wal::free_bytes(data_dir).ok(),
        rejects_file_lines,
        server: Err(String::new()),
        table,
        table_exists: false,
        missing_columns: Vec::new(),
        cold_keyed_by_names: false,
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
        report.cold_keyed_by_names = store
            .cold_keyed_by_names()
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
