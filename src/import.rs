//! `import` and `reconcile`: backfilling the table from Adjust's CSV exports, and measuring how
//! many activities reached the sink as callbacks.
//!
//! An export row becomes a row exactly as a callback does ([`row::build_pairs`]: same typing, same
//! `callback_id`), with `ingest_source = 'import'`. Activities the table already holds (by
//! `callback_id`) are skipped, so importing the same file twice adds nothing. Files are read as a
//! stream, one batch at a time.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::time::{Duration, Instant};

use anyhow::Context;
use rustc_hash::FxHashSet;

use crate::clickhouse::store::ClickHouseStore;
use crate::row::{self, INGEST_IMPORT};
use crate::sink::Store;

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
    pub bad_lines: Vec<BadLine>,
    pub elapsed: Duration,
}

impl Summary {
    /// The summary as printed at the end (bad lines listed with their file and line number).
    pub fn render(&self) -> String {
        let mut out = format!(
            "read {} rows in {:.1}s: {} already present, {} new, {} bad lines\n",
            self.rows_read,
            self.elapsed.as_secs_f64(),
            self.already_present,
            self.new,
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

/// Rows waiting for their existence check and insert.
struct Pending {
    ids: Vec<u64>,
    rows: Vec<Vec<u8>>,
    seen: FxHashSet<u64>,
}

/// Imports export files into the table of `store`, `batch_rows` activities per check and insert;
/// `progress` is called after every batch and at the end with the summary so far.
pub async fn import(
    store: &ClickHouseStore,
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
                flush(store, &mut pending, &mut summary).await?;
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
    flush(store, &mut pending, &mut summary).await?;
    summary.elapsed = started.elapsed();
    progress(&summary);
    Ok(summary)
}

/// Checks which pending activities the table holds, inserts the others.
async fn flush(
    store: &ClickHouseStore,
    pending: &mut Pending,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    if pending.ids.is_empty() {
        return Ok(());
    }
    let target = &store.config().target;
    // At most 5,000 ids per lookup: the query stays well under ClickHouse's max_query_size.
    let mut present: FxHashSet<u64> = FxHashSet::default();
    for ids in pending.ids.chunks(5_000) {
        let list: Vec<String> = ids.iter().map(u64::to_string).collect();
        let sql = format!(
            "SELECT DISTINCT callback_id FROM {} WHERE callback_id IN ({})",
            target.table(),
            list.join(",")
        );
        present.extend(
            store
                .select(&sql)
                .await
                .context("looking up activities already in the table")?
                .iter()
                .filter_map(|r| r.first()?.parse::<u64>().ok()),
        );
    }
    let mut data = Vec::new();
    let mut rows = 0;
    let mut token = xxhash_rust::xxh3::Xxh3::new();
    for (id, row) in pending.ids.iter().zip(&pending.rows) {
        if present.contains(id) {
            summary.already_present += 1;
        } else {
            token.update(&id.to_le_bytes());
            data.extend_from_slice(row);
            rows += 1;
        }
    }
    if rows > 0 {
        let token = format!("import-{:016x}", token.digest());
        store
            .insert(data.into(), rows, &token)
            .await
            .context("inserting imported rows")?;
        summary.new += rows as u64;
    }
    pending.ids.clear();
    pending.rows.clear();
    Ok(())
}

/// One line of `reconcile`: a day and activity kind.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Reconciled {
    pub day: String,
    pub activity_kind: String,
    /// Activities that reached the sink as callbacks.
    pub from_callbacks: u64,
    /// Activities only an export had (`ingest_source = 'import'`).
    pub only_export: u64,
    /// `from_callbacks` of all, in percent.
    pub completeness: f64,
}

/// The `reconcile` query: per day and activity kind, distinct activities by how they arrived
/// (`FINAL`: each activity once).
pub fn reconcile_sql(table: &str, since: Option<&str>) -> String {
    let filter = since.map_or(String::new(), |d| {
        format!(" WHERE event_date >= toDate('{}')", d.replace('\'', ""))
    });
    format!(
        "SELECT toString(event_date), activity_kind, \
         uniqExactIf(callback_id, ingest_source != '{INGEST_IMPORT}'), \
         uniqExactIf(callback_id, ingest_source = '{INGEST_IMPORT}') \
         FROM {table} FINAL{filter} GROUP BY event_date, activity_kind \
         ORDER BY event_date, activity_kind"
    )
}

/// Runs the reconciliation.
pub async fn reconcile(
    store: &ClickHouseStore,
    since: Option<&str>,
) -> anyhow::Result<Vec<Reconciled>> {
    if let Some(d) = since {
        check_date(d)?;
    }
    let sql = reconcile_sql(&store.config().target.table(), since);
    let rows = store.select(&sql).await.context("reconciling")?;
    Ok(rows
        .into_iter()
        .filter(|r| r.len() == 4)
        .map(|r| {
            let from_callbacks = r[2].parse().unwrap_or(0);
            let only_export = r[3].parse().unwrap_or(0);
            Reconciled {
                day: r[0].clone(),
                activity_kind: r[1].clone(),
                from_callbacks,
                only_export,
                completeness: completeness(from_callbacks, only_export),
            }
        })
        .collect())
}

fn check_date(d: &str) -> anyhow::Result<()> {
    let b = d.as_bytes();
    let ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    anyhow::ensure!(ok, "--since `{d}` is not a date (YYYY-MM-DD)");
    Ok(())
}

/// Callbacks of all activities, in percent (100 when there are none).
pub fn completeness(from_callbacks: u64, only_export: u64) -> f64 {
    let all = from_callbacks + only_export;
    if all == 0 {
        100.0
    } else {
        from_callbacks as f64 * 100.0 / all as f64
    }
}

/// The reconciliation as an aligned table, with a total line.
pub fn render_table(rows: &[Reconciled]) -> String {
    let mut out = format!(
        "{:<10}  {:<24}  {:>14}  {:>11}  {:>12}\n",
        "day", "activity_kind", "from_callbacks", "only_export", "completeness"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<10}  {:<24}  {:>14}  {:>11}  {:>11.1}%\n",
            r.day, r.activity_kind, r.from_callbacks, r.only_export, r.completeness
        ));
    }
    let (cb, ex) = rows.iter().fold((0, 0), |(a, b), r| {
        (a + r.from_callbacks, b + r.only_export)
    });
    out.push_str(&format!(
        "{:<10}  {:<24}  {:>14}  {:>11}  {:>11.1}%\n",
        "total",
        "",
        cb,
        ex,
        completeness(cb, ex)
    ));
    out
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

    #[test]
    fn completeness_in_percent() {
        assert_eq!(completeness(90, 10), 90.0);
        assert_eq!(completeness(0, 0), 100.0);
        let t = render_table(&[Reconciled {
            day: "2024-01-01".into(),
            activity_kind: "install".into(),
            from_callbacks: 9,
            only_export: 1,
            completeness: 90.0,
        }]);
        assert!(t.lines().nth(1).unwrap().ends_with("90.0%"), "{t}");
        assert!(t.lines().last().unwrap().starts_with("total"), "{t}");
    }

    #[test]
    fn since_must_be_a_date() {
        assert!(check_date("2024-01-31").is_ok());
        assert!(check_date("2024-01-31' OR 1").is_err());
        assert!(reconcile_sql("adjust.callbacks", Some("2024-01-31")).contains("FINAL WHERE"));
    }
}
