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
use std::time::Instant;

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

mod summary;
mod unchecked;
pub use summary::{BadLine, Summary};
pub use unchecked::Unchecked;

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
    let manifest = config.target.clone();
    let metrics = Metrics::new();
    let deliverer = data_dir.deliverer(ClickHouseStore::new(config)?, metrics.clone());
    let shutdown = Shutdown::new();
    let retention = retention(args)?;
    let to = Destination::new(&deliverer, table, &metrics, &shutdown, retention);
    let (sources, files): (Vec<&String>, Vec<&String>) =
        args.files.iter().partition(|a| super::follow::is_source(a));
    let files: Vec<String> = files.into_iter().cloned().collect();
    if sources.is_empty() && args.follow.follow {
        anyhow::bail!("--follow needs a URL (s3://bucket/prefix/) or a directory to follow");
    }
    let sources = sources
        .into_iter()
        .map(|a| super::follow::Source::open(a))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (follow, interval) =
        super::follow::settings(&args.follow, args.batch_rows, data_dir.path.clone())?;
    let admin = args
        .admin_listen
        .map(|addr| {
            std::net::TcpListener::bind(addr)
                .with_context(|| format!("binding the admin listener on {addr}"))
        })
        .transpose()?;
    let runtime = super::runtime()?;
    let admin = match admin {
        Some(listener) => {
            let _in_runtime = runtime.enter();
            let addr = listener.local_addr()?;
            let server = crate::http::metrics_server(metrics.clone(), listener)?;
            eprintln!("adjust-sink: import: metrics on http://{addr}/metrics");
            Some((server.handle(), runtime.spawn(server)))
        }
        None => None,
    };
    // Files not imported whole: the named files cut short, the followed ones marked `failed`.
    let mut unreadable = 0;
    let summary = runtime.block_on(async {
        let started = Instant::now();
        let run = async {
            let mut summary = if files.is_empty() {
                Summary::default()
            } else {
                import(&to, &files, &options, args.batch_rows, print_progress).await?
            };
            unreadable += summary.cut_short.len();
            loop {
                for source in &sources {
                    let r = super::follow::round(&to, &manifest, source, &options, &follow).await;
                    match r {
                        Ok(r) => {
                            eprintln!(
                                "adjust-sink: import: {} export files listed, {} not loaded yet: {} loaded, {} failed, {} taken by another follower; {} rows read, {} new,{} {} already present",
                                r.listed, r.pending, r.loaded, r.failed, r.skipped, r.rows.rows_read, r.rows.new, r.rows.expired_part(), r.rows.already_present
                            );
                            unreadable += r.failed;
                            summary.absorb(r.rows);
                        }
                        Err(e) if args.follow.follow => {
                            eprintln!("adjust-sink: import: following: {e:#} (trying again)");
                        }
                        Err(e) => return Err(e),
                    }
                }
                if !args.follow.follow || !shutdown.pause(interval).await {
                    break;
                }
            }
            summary.elapsed = started.elapsed();
            Ok(summary)
        };
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
    });
    if let Some((handle, server)) = admin {
        runtime.block_on(async {
            handle.stop(true).await;
            let _ = server.await;
        });
    }
    // What was inserted, also by an import stopped by an error, is checked against the
    // erasures carried out (a follower's rounds check their own).
    let checked = runtime.block_on(to.check_erasures(&manifest, "import"));
    let summary = summary?;
    print!("{}", summary.render());
    checked?;
    // A file that could not be read (to its end) fails a one-off import once everything else
    // is in; a follower records it in the manifest and goes on.
    anyhow::ensure!(
        args.follow.follow || unreadable == 0,
        "{unreadable} export file(s) could not be imported whole (listed above, or `failed` with \
         the reason in the manifest); the rows before the point where one became unreadable were \
         imported: replace the file and import it again for the rest"
    );
    Ok(())
}

/// `--retention`, checked as `serve` checks it.
fn retention(args: &ImportArgs) -> anyhow::Result<Option<u32>> {
    anyhow::ensure!(
        args.retention != Some(0),
        "--retention must be at least 1 day"
    );
    Ok(args.retention)
}

/// The progress line on stderr after every batch.
fn print_progress(s: &Summary) {
    let secs = s.elapsed.as_secs_f64().max(0.001);
    eprintln!(
        "adjust-sink: import: {} rows read ({:.0} rows/s), {} new,{} {} already present, {} refused, {} bad lines",
        s.rows_read,
        s.rows_read as f64 / secs,
        s.new,
        s.expired_part(),
        s.already_present,
        s.rejected,
        s.bad_lines.len()
    );
}

/// A placeholder name from an export header: `{adid}` and `adid` are the same.
pub fn header_name(cell: &str) -> String {
    let t = cell.trim().trim_start_matches('\u{feff}');
    let t = t.strip_prefix('{').unwrap_or(t);
    let t = t.strip_suffix('}').unwrap_or(t);
    t.trim().to_string()
}

/// Opens an export: `-` is stdin; gzip is recognised by its magic bytes, whatever the name.
fn open(path: &str) -> anyhow::Result<Decoded<Box<dyn Read>>> {
    let raw: Box<dyn Read> = if path == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(File::open(path).with_context(|| format!("opening {path}"))?)
    };
    Decoded::new(raw).with_context(|| format!("reading {path}"))
}

/// An export's content, gunzipped when it starts with gzip's magic bytes.
pub enum Decoded<R: Read> {
    Plain(BufReader<R>),
    Gzip(flate2::bufread::MultiGzDecoder<BufReader<R>>),
}

impl<R: Read> Decoded<R> {
    pub fn new(raw: R) -> std::io::Result<Self> {
        let mut buffered = BufReader::with_capacity(1 << 16, raw);
        let gz = buffered.fill_buf()?.starts_with(&[0x1f, 0x8b]);
        Ok(if gz {
            Decoded::Gzip(flate2::bufread::MultiGzDecoder::new(buffered))
        } else {
            Decoded::Plain(buffered)
        })
    }
}

impl<R: Read> Read for Decoded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Decoded::Plain(r) => r.read(buf),
            Decoded::Gzip(r) => r.read(buf),
        }
    }
}

/// A file that cannot be read as an export (truncated or corrupt gzip, no header, a header
/// without `activity_kind` when one is required): loading it again will not help.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unreadable(pub String);

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
    /// Since when the rows inserted are not yet checked against the erasures carried out.
    pub unchecked: Unchecked,
    /// `--retention` days: older activities (by `event_date`) are not imported, as the table
    /// would drop them.
    pub retention_days: Option<u32>,
}

impl<'a, S> Destination<'a, S> {
    pub fn new(
        deliverer: &'a Deliverer<S>,
        table: String,
        metrics: &'a Metrics,
        shutdown: &'a Shutdown,
        retention_days: Option<u32>,
    ) -> Self {
        Destination {
            deliverer,
            table,
            metrics,
            shutdown,
            unchecked: Unchecked::default(),
            retention_days,
        }
    }

    /// The first `event_date` (days since 1970-01-01) an activity received at `now` may have
    /// to be imported: that of the retention's TTL (`event_date + days >= today`).
    fn oldest_kept(&self, now: u32) -> Option<u16> {
        let days = self.retention_days?;
        let today = now / 86_400;
        Some(today.saturating_sub(days).min(u32::from(u16::MAX)) as u16)
    }
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
    to.unchecked.owe(received_at);
    // A misspelt name stops the import before its first row, not after the files before it.
    for path in files.iter().filter(|p| *p != "-") {
        File::open(path).with_context(|| format!("opening {path}"))?;
    }
    anyhow::ensure!(
        files.iter().filter(|p| *p == "-").count() <= 1,
        "`-` (standard input) is named more than once: it can be read once"
    );
    for path in files {
        let file = FileRun {
            name: path,
            options,
            batch_rows,
            received_at,
            started,
            require_kind: false,
        };
        file.read(to, open(path)?, &mut pending, &mut summary, &mut progress)
            .await?;
    }
    flush(to, &mut pending, &mut summary).await?;
    summary.elapsed = started.elapsed();
    progress(&summary);
    Ok(summary)
}

/// One export file being read into the pending rows.
struct FileRun<'a> {
    name: &'a str,
    options: &'a row::Options,
    batch_rows: usize,
    received_at: u32,
    started: Instant,
    /// Refuse a header that does not name `activity_kind` (the follower's check against foreign
    /// files).
    require_kind: bool,
}

impl FileRun<'_> {
    async fn read<S: Store + Admin, R: Read>(
        &self,
        to: &Destination<'_, S>,
        input: R,
        pending: &mut Pending,
        summary: &mut Summary,
        progress: &mut impl FnMut(&Summary),
    ) -> anyhow::Result<()> {
        let path = self.name;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(input);
        let mut header: Option<Vec<String>> = None;
        // Bytes: a cell that is not UTF-8 is kept (read as a callback's value is), not the row
        // refused.
        let mut record = csv::ByteRecord::new();
        // Activities before this day are not imported (`--retention`).
        let oldest_kept = to.oldest_kept(self.received_at);
        loop {
            let line = reader.position().line();
            match reader.read_byte_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    let line = e.position().map_or(line, |p| p.line());
                    if let csv::ErrorKind::Io(io) = e.kind() {
                        // A truncated or corrupt gzip: the rows read so far are whole (the csv
                        // reader yields no partial record) and go on to land with the rest.
                        summary.cut_short.push(BadLine {
                            file: path.to_string(),
                            line,
                            reason: io.to_string(),
                        });
                        return Ok(());
                    }
                    if self.require_kind && header.is_none() {
                        return Err(Unreadable(format!("{path}: no readable header: {e}")).into());
                    }
                    // The csv reader resumes at the next record.
                    summary.rows_read += u64::from(header.is_some());
                    summary.bad_lines.push(BadLine {
                        file: path.to_string(),
                        line,
                        reason: e.to_string(),
                    });
                    continue;
                }
            }
            let line = record.position().map_or(line, |p| p.line());
            let Some(names) = &header else {
                let names: Vec<String> = record
                    .iter()
                    .map(|name| header_name(&String::from_utf8_lossy(name)))
                    .collect();
                if self.require_kind && !names.iter().any(|n| n == "activity_kind") {
                    let shown: String = names.join(",").chars().take(200).collect();
                    return Err(Unreadable(format!(
                        "{path}: not an Adjust export: the header names no activity_kind ({shown})"
                    ))
                    .into());
                }
                header = Some(names);
                continue;
            };
            summary.rows_read += 1;
            if record.len() != names.len() {
                summary.bad_lines.push(BadLine {
                    file: path.to_string(),
                    line,
                    reason: format!(
                        "{} fields where the header has {}",
                        record.len(),
                        names.len()
                    ),
                });
                continue;
            }
            let pairs: Vec<(&str, &[u8])> = names
                .iter()
                .map(String::as_str)
                .zip(record.iter())
                .filter(|(k, _)| !k.is_empty())
                .collect();
            let built = row::build_pairs(&pairs, self.received_at, self.options);
            if let Some(oldest) = oldest_kept
                && row::event_date_of(&built.row).is_some_and(|day| day < oldest)
            {
                summary.expired += 1;
                continue;
            }
            if !pending.seen.insert(built.callback_id) {
                summary.already_present += 1;
                continue;
            }
            pending.ids.push(built.callback_id);
            pending.rows.push(built.row);
            if pending.ids.len() >= self.batch_rows.max(1) {
                flush(to, pending, summary).await?;
                summary.elapsed = self.started.elapsed();
                progress(summary);
            }
        }
        if header.is_none() {
            if self.require_kind {
                return Err(Unreadable(format!("{path}: empty (no header row)")).into());
            }
            summary.bad_lines.push(BadLine {
                file: path.to_string(),
                line: 1,
                reason: "no header row".into(),
            });
        }
        Ok(())
    }
}

/// Imports one export (the follower's objects): gzip recognised by content, the header must
/// name `activity_kind`. An error that is [`Unreadable`] means the file is bad; any other is the
/// table's (lookup or delivery) and loading the file again may succeed.
pub async fn import_one<S: Store + Admin>(
    to: &Destination<'_, S>,
    name: &str,
    content: impl Read,
    options: &row::Options,
    batch_rows: usize,
) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let mut summary = Summary::default();
    let mut pending = Pending {
        ids: Vec::new(),
        rows: Vec::new(),
        seen: FxHashSet::default(),
    };
    let received_at = crate::clock::unix_now();
    to.unchecked.owe(received_at);
    let file = FileRun {
        name,
        options,
        batch_rows,
        received_at,
        started,
        require_kind: true,
    };
    let input = Decoded::new(content).map_err(|e| Unreadable(format!("{name}: {e}")))?;
    file.read(to, input, &mut pending, &mut summary, &mut |_| {})
        .await?;
    flush(to, &mut pending, &mut summary).await?;
    summary.elapsed = started.elapsed();
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

    use crate::pipeline::deliver::{Backoff, RejectsFile};
    use crate::sink::twin::TwinStore;

    /// A twin that answers import's lookups from the rows it holds.
    fn twin() -> TwinStore {
        TwinStore::scripted(|sql, rows| {
            let list = sql.split_once("IN (")?.1.strip_suffix(')')?;
            let asked: FxHashSet<u64> = list.split(',').filter_map(|n| n.parse().ok()).collect();
            Some(
                rows.iter()
                    .filter_map(|r| row::callback_id_of(r))
                    .filter(|id| asked.contains(id))
                    .map(|id| vec![id.to_string()])
                    .collect(),
            )
        })
    }

    fn export(rows: impl Iterator<Item = (u32, &'static str, u32)>) -> tempfile::NamedTempFile {
        let mut csv = String::from("activity_kind,app_token,app_name,nonce,adid,created_at\n");
        for (i, app, at) in rows {
            csv += &format!("install,apptok,{app},n{i},RAWDEVICE{i},{at}\n");
        }
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), csv).unwrap();
        f
    }

    async fn run_import(
        store: TwinStore,
        file: &tempfile::NamedTempFile,
        options: &row::Options,
        batch_rows: usize,
    ) -> (Summary, TwinStore) {
        run_import_keeping(store, file, options, batch_rows, None).await
    }

    /// [`run_import`] into a table kept `retention_days`.
    async fn run_import_keeping(
        store: TwinStore,
        file: &tempfile::NamedTempFile,
        options: &row::Options,
        batch_rows: usize,
        retention_days: Option<u32>,
    ) -> (Summary, TwinStore) {
        let metrics = Metrics::new();
        let deliverer = Deliverer::new(
            store,
            metrics.clone(),
            Backoff::default(),
            RejectsFile::new("unused".into(), 0),
        );
        let shutdown = Shutdown::new();
        let to = Destination::new(
            &deliverer,
            "adjust.callbacks".into(),
            &metrics,
            &shutdown,
            retention_days,
        );
        let path = file.path().to_str().unwrap().to_string();
        let summary = import(&to, &[path], options, batch_rows, |_| {})
            .await
            .unwrap();
        (summary, deliverer.into_store())
    }

    #[tokio::test]
    async fn activities_older_than_the_retention_are_counted_not_imported() {
        let now = crate::clock::unix_now();
        let day = 86_400;
        // 40 days old, 29 days old (kept with 30 days), today, and no created_at (received now).
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            f.path(),
            format!(
                "activity_kind,app_token,nonce,created_at\ninstall,apptok,n1,{}\ninstall,apptok,n2,{}\ninstall,apptok,n3,{now}\ninstall,apptok,n4,\n",
                now - 40 * day,
                now - 29 * day
            ),
        )
        .unwrap();
        let (s, store) =
            run_import_keeping(twin(), &f, &row::Options::new(), 1_000, Some(30)).await;
        assert_eq!((s.rows_read, s.new, s.expired), (4, 3, 1));
        assert_eq!(store.stored().len(), 3);
        assert!(
            s.render()
                .contains("3 new, 1 older than --retention (not imported), 0 refused"),
            "{}",
            s.render()
        );
        // Without a retention every activity is imported, and the summary says nothing of it.
        let (s, _) = run_import(twin(), &f, &row::Options::new(), 1_000).await;
        assert_eq!((s.new, s.expired), (4, 0));
        assert!(s.render().contains("4 new, 0 refused"), "{}", s.render());
    }

    #[tokio::test]
    async fn a_cell_that_is_not_utf8_is_imported_not_refused() {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            f.path(),
            b"activity_kind,app_token,nonce,adid,created_at\ninstall,apptok,n1,ab\xffcd,1404214665\n",
        )
        .unwrap();
        let (s, store) = run_import(twin(), &f, &row::Options::new(), 1_000).await;
        assert_eq!((s.rows_read, s.new), (1, 1));
        assert!(s.bad_lines.is_empty(), "{:?}", s.bad_lines);
        let row = row::read_row(&store.stored()[0]).unwrap();
        let adid = row.iter().find(|(c, _)| c.name == "adid").map(|(_, v)| v);
        assert_eq!(
            adid,
            Some(&crate::row::rowbinary::Cell::Str("ab\u{fffd}cd".into()))
        );
    }

    #[tokio::test]
    async fn existing_activities_are_skipped_and_lookups_stay_small() {
        let first = export((0..30).map(|i| (i, "fine", 1_404_214_665 + i)));
        let (s, store) = run_import(twin(), &first, &row::Options::new(), 1_000).await;
        assert_eq!((s.new, s.already_present, s.rejected), (30, 0, 0));
        // The same activities plus 20 more, in batches of 7: only the 20 land.
        let second = export((0..50).map(|i| (i, "fine", 1_404_214_665 + i)));
        let (s, store) = run_import(store, &second, &row::Options::new(), 7).await;
        assert_eq!((s.new, s.already_present), (20, 30));
        assert_eq!(store.stored().len(), 50);
        // One lookup per batch, each naming its batch's ids: one of 30 for the first import,
        // then 8 of at most 7.
        let queries = store.queries();
        assert_eq!(queries.len(), 1 + 8);
        assert_eq!(queries[0].matches(',').count(), 29);
        assert!(queries[1..].iter().all(|q| q.matches(',').count() < 7));
    }

    #[tokio::test]
    async fn a_refused_row_goes_to_the_rejects_and_many_months_are_cut_by_partition() {
        let store = twin();
        store.max_partitions(100);
        // 300 activities over 150 months; activity 123 is refused by the store.
        let file = export((0..300).map(|i| {
            let app = if i == 123 { "poison" } else { "fine" };
            (i, app, 1_326_585_600 + (i % 150) * 2_629_746)
        }));
        let options = row::Options::new();
        let poisoned = row::build_pairs(
            &[
                ("activity_kind", "install"),
                ("app_token", "apptok"),
                ("nonce", "n123"),
            ],
            0,
            &options,
        );
        store.poison_id(poisoned.callback_id);
        let (s, store) = run_import(store, &file, &options, 5_000).await;
        assert_eq!((s.new, s.rejected, s.already_present), (299, 1, 0));
        assert_eq!(store.stored().len(), 299);
        assert_eq!(store.rejects().len(), 1);
        assert_eq!(store.rejects()[0].callback_id, poisoned.callback_id);
    }

    #[tokio::test]
    async fn imported_rows_follow_the_row_settings() {
        let settings = crate::row::settings::RowArgs {
            param_alias: vec!["device_id=adid".into()],
            pseudonymize: vec!["adid".into()],
            pseudonym_key: Some(crate::settings::Secret::new("k")),
            drop: vec!["app_name".into()],
        };
        let options = settings.options(&[]).unwrap();
        let file = export((0..3).map(|i| (i, "SecretApp", 1_404_214_665 + i)));
        let (s, store) = run_import(twin(), &file, &options, 100).await;
        assert_eq!(s.new, 3);
        for r in store.stored() {
            let json = row::to_json(&r);
            assert!(!json.contains("RAWDEVICE"), "{json}");
            assert!(!json.contains("SecretApp"), "{json}");
        }
    }
}
