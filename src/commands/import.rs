//! `adjust-sink import`: backfilling the table from Adjust's CSV exports.
//!
//! An export row becomes a row exactly as a callback does ([`row::build_pairs`] with the same row
//! settings as `serve`: same typing, privacy and `callback_id`), with `ingest_source = 'import'`,
//! and is delivered by the same deliverer (dedup tokens, retries, refused rows isolated into the
//! rejects, batches cut by partition). Activities the table already holds (by
//! `callback_id`) are skipped, so importing the same file twice adds nothing. Files are read as a
//! stream, one batch at a time.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::time::{Duration, Instant};

use anyhow::Context;
use rustc_hash::FxHashSet;

use crate::cli::ImportArgs;
use crate::clickhouse::store::ClickHouseStore;
use crate::metrics::Metrics;
use crate::pipeline::Batch;
use crate::pipeline::deliver::Deliverer;
use crate::row;
use crate::shutdown::Shutdown;
use crate::sink::{Admin, Store, StoreError};

pub fn command(args: &ImportArgs) -> anyhow::Result<()> {
    let target = args.table.target()?;
    // The same row settings as `serve`: privacy, aliases and the table's own columns.
    let options = args.rows.options(&target.columns)?;
    let timeouts = args.delivery.timeouts()?;
    let config = args
        .connection
        .config(target, !args.migrate.no_migrate, timeouts.insert)?;
    let data_dir = args.data_dir.settings()?;
    let table = config.target.table();
    let metrics = Metrics::new();
    let deliverer = data_dir.deliverer(ClickHouseStore::new(config)?, metrics.clone());
    let shutdown = Shutdown::new();
    let to = Destination {
        deliverer: &deliverer,
        table,
        metrics: &metrics,
        shutdown: &shutdown,
    };
    let summary = super::runtime()?.block_on(async {
        let run = import(&to, &args.files, &options, args.batch_rows, print_progress);
        let stop = super::serve::termination();
        tokio::pin!(run, stop);
        tokio::select! {
            r = &mut run => r,
            () = &mut stop => {
                // Rows in flight get until the shutdown deadline; what did not land is not
                // counted as new, and a second import picks it up.
                shutdown.begin(timeouts.shutdown);
                run.await
            }
        }
    })?;
    print!("{}", summary.render());
    Ok(())
}

/// The progress line on stderr after every batch.
fn print_progress(s: &Summary) {
    let secs = s.elapsed.as_secs_f64().max(0.001);
    eprintln!(
        "adjust-sink: import: {} rows read ({:.0} rows/s), {} new, {} already present, {} refused, {} bad lines",
        s.rows_read,
        s.rows_read as f64 / secs,
        s.new,
        s.already_present,
        s.rejected,
        s.bad_lines.len()
    );
}

/// A line of an export that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    pub file: String,
    pub line: u64,
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Data rows read (the header rows not counted).
    pub rows_read: u64,
    /// Activities the table already held, or that came earlier in the same import.
    pub already_present: u64,
    /// Activities written.
    pub new: u64,
    /// Activities ClickHouse refused (kept in the rejects table, or the rejects file).
    pub rejected: u64,
    pub bad_lines: Vec<BadLine>,
    pub elapsed: Duration,
}

impl Summary {
    /// The summary as printed at the end (bad lines listed with their file and line number).
    pub fn render(&self) -> String {
        let mut out = format!(
            "read {} rows in {:.1}s: {} already present, {} new, {} refused by ClickHouse (kept in the rejects table), {} bad lines\n",
            self.rows_read,
            self.elapsed.as_secs_f64(),
            self.already_present,
            self.new,
            self.rejected,
            self.bad_lines.len()
        );
        const SHOWN: usize = 100;
        for b in self.bad_lines.iter().take(SHOWN) {
            out.push_str(&format!("  {}:{}: {}\n", b.file, b.line, b.reason));
        }
        if self.bad_lines.len() > SHOWN {
            out.push_str(&format!(
                "  … and {} more bad lines\n",
                self.bad_lines.len() - SHOWN
            ));
        }
        out
    }
}

/// A placeholder name from an export header: `{adid}` and `adid` are the same.
pub fn header_name(cell: &str) -> String {
    let t = cell.trim().trim_start_matches('\u{feff}');
    let t = t.strip_prefix('{').unwrap_or(t);
    let t = t.strip_suffix('}').unwrap_or(t);
    t.trim().to_string()
}

/// Opens an export: `-` is stdin; gzip is recognised by its magic bytes, whatever the name.
fn open(path: &str) -> anyhow::Result<Box<dyn Read>> {
    let raw: Box<dyn Read> = if path == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(File::open(path).with_context(|| format!("opening {path}"))?)
    };
    let mut buffered = BufReader::with_capacity(1 << 16, raw);
    let gz = buffered
        .fill_buf()
        .with_context(|| format!("reading {path}"))?
        .starts_with(&[0x1f, 0x8b]);
    Ok(if gz {
        Box::new(flate2::bufread::MultiGzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    })
}

/// Rows waiting for their existence check and delivery.
struct Pending {
    ids: Vec<u64>,
    rows: Vec<Vec<u8>>,
    seen: FxHashSet<u64>,
}

/// Where an import delivers: the same deliverer as `serve` (dedup tokens, retries, refused rows
/// isolated into the rejects, batches cut by partition), and the table it looks ids up in.
pub struct Destination<'a, S> {
    pub deliverer: &'a Deliverer<S>,
    /// `db.table` of the callbacks.
    pub table: String,
    pub metrics: &'a Metrics,
    pub shutdown: &'a Shutdown,
}

/// Imports export files, `batch_rows` activities per lookup and delivery; `progress` is called
/// after every batch and at the end with the summary so far.
pub async fn import<S: Store + Admin>(
    to: &Destination<'_, S>,
    files: &[String],
    options: &row::Options,
    batch_rows: usize,
    mut progress: impl FnMut(&Summary),
) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let mut summary = Summary::default();
    let mut pending = Pending {
        ids: Vec::new(),
        rows: Vec::new(),
        seen: FxHashSet::default(),
    };
    let received_at = crate::clock::unix_now();
    for path in files {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(open(path)?);
        let mut header: Option<Vec<String>> = None;
        let mut record = csv::StringRecord::new();
        loop {
            let line = reader.position().line();
            match reader.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    let line = e.position().map_or(line, |p| p.line());
                    if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                        return Err(e).with_context(|| format!("reading {path} at line {line}"));
                    }
                    // The csv reader resumes at the next record.
                    summary.rows_read += u64::from(header.is_some());
                    summary.bad_lines.push(BadLine {
                        file: path.clone(),
                        line,
                        reason: e.to_string(),
                    });
                    continue;
                }
            }
            let line = record.position().map_or(line, |p| p.line());
            let Some(names) = &header else {
                header = Some(record.iter().map(header_name).collect());
                continue;
            };
            summary.rows_read += 1;
            if record.len() != names.len() {
                summary.bad_lines.push(BadLine {
                    file: path.clone(),
                    line,
                    reason: format!(
                        "{} fields where the header has {}",
                        record.len(),
                        names.len()
                    ),
                });
                continue;
            }
            let pairs: Vec<(&str, &str)> = names
                .iter()
                .map(String::as_str)
                .zip(record.iter())
                .filter(|(k, _)| !k.is_empty())
                .collect();
            let built = row::build_pairs(&pairs, received_at, options);
            if !pending.seen.insert(built.callback_id) {
                summary.already_present += 1;
                continue;
            }
            pending.ids.push(built.callback_id);
            pending.rows.push(built.row);
            if pending.ids.len() >= batch_rows.max(1) {
                flush(to, &mut pending, &mut summary).await?;
                summary.elapsed = started.elapsed();
                progress(&summary);
            }
        }
        if header.is_none() {
            summary.bad_lines.push(BadLine {
                file: path.clone(),
                line: 1,
                reason: "no header row".into(),
            });
        }
    }
    flush(to, &mut pending, &mut summary).await?;
    summary.elapsed = started.elapsed();
    progress(&summary);
    Ok(summary)
}

/// How many ids one lookup names: the query stays well under ClickHouse's `max_query_size`.
const LOOKUP_IDS: usize = 5_000;

/// Which of `ids` the table already holds.
pub async fn existing_ids(
    admin: &impl Admin,
    table: &str,
    ids: &[u64],
) -> Result<FxHashSet<u64>, StoreError> {
    let mut present = FxHashSet::default();
    for chunk in ids.chunks(LOOKUP_IDS) {
        let list: Vec<String> = chunk.iter().map(u64::to_string).collect();
        let sql = format!(
            "SELECT DISTINCT callback_id FROM {table} WHERE callback_id IN ({})",
            list.join(",")
        );
        present.extend(
            admin
                .select(&sql)
                .await?
                .iter()
                .filter_map(|r| r.first()?.parse::<u64>().ok()),
        );
    }
    Ok(present)
}

/// Looks up which pending activities the table holds, delivers the others.
async fn flush<S: Store + Admin>(
    to: &Destination<'_, S>,
    pending: &mut Pending,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    if pending.ids.is_empty() {
        return Ok(());
    }
    let present = existing_ids(to.deliverer.store(), &to.table, &pending.ids)
        .await
        .context("looking up activities already in the table")?;
    let mut key = xxhash_rust::xxh3::Xxh3::new();
    let new: Vec<usize> = (0..pending.ids.len())
        .filter(|&i| !present.contains(&pending.ids[i]))
        .inspect(|&i| key.update(&pending.ids[i].to_le_bytes()))
        .collect();
    summary.already_present += (pending.ids.len() - new.len()) as u64;
    if !new.is_empty() {
        let mut batch = Batch::imported(key.digest());
        for &i in &new {
            batch.push(&pending.rows[i]);
        }
        batch.freeze();
        let rejected_before = to.metrics.rows_rejected.total();
        to.deliverer
            .deliver(&batch, to.shutdown)
            .await
            .map_err(|e| anyhow::anyhow!("delivering imported rows: {e}"))?;
        let rejected = to.metrics.rows_rejected.total() - rejected_before;
        summary.rejected += rejected;
        summary.new += new.len() as u64 - rejected;
    }
    pending.ids.clear();
    pending.rows.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_with_or_without_braces() {
        assert_eq!(header_name("{adid}"), "adid");
        assert_eq!(header_name(" adid "), "adid");
        assert_eq!(header_name("\u{feff}{activity_kind}"), "activity_kind");
    }
}
