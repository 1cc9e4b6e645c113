//! Following Adjust's cloud-storage exports (`import URL`, `import URL --follow`, `serve
//! --follow-exports URL`): list the objects under a prefix (S3, GCS or Azure Blob through
//! `object_store`, or a local directory), and load each `.csv` / `.csv.gz` file that the manifest
//! `<table>_imports` does not hold as done, through import's row building, lookup and deliverer.
//!
//! Exactly once per file version (object key and ETag): a follower claims a version with a row in
//! the manifest and reads the claims back (after [`SETTLE`]); the earliest live claim wins (see
//! [`crate::clickhouse::schema::imports`]). The winner renews its claim while it loads; a claim
//! whose holder stopped expires after the claim's time to live and another follower takes the
//! file. A file loaded again after a crash adds nothing twice: import skips the activities the
//! table holds (by `callback_id`) and delivers with deterministic dedup tokens. A file rewritten
//! under its key (new ETag) is a new version: loaded again, only its new activities land. A file
//! that cannot be read as an export is marked `failed` with the reason; the others go on.

use std::io::{Seek, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures_util::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use rustc_hash::FxHashSet;

use super::import::{Destination, Summary, Unreadable, import_one};
use crate::clickhouse::schema::Target;
use crate::clickhouse::schema::imports;
use crate::metrics::{ExportFileState, ExportRoundOutcome, ExportRowOutcome};
use crate::row;
use crate::sink::{Admin, Store};

mod within_serve;
pub use within_serve::{Following, run};

/// Whether an import argument names a followed source (a URL or a directory) rather than a file.
pub fn is_source(arg: &str) -> bool {
    arg.contains("://") || std::path::Path::new(arg).is_dir()
}

/// Where the exports are: a store and the prefix under it.
#[derive(Clone)]
pub struct Source {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    /// What manifest keys start with: the URL without its prefix (`s3://bucket/`), or
    /// `file://<dir>/`.
    base: String,
    /// A local directory's path: a store lists a missing one as empty, the follower says it
    /// is gone.
    local: Option<PathBuf>,
}

impl Source {
    /// `s3://bucket/prefix/` (credentials, region and endpoint from the `AWS_*` environment:
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`,
    /// `AWS_ALLOW_HTTP`, `AWS_SKIP_SIGNATURE`), `gs://bucket/prefix/` (`GOOGLE_*`:
    /// `GOOGLE_SERVICE_ACCOUNT` or `GOOGLE_APPLICATION_CREDENTIALS`), `az://container/prefix/`
    /// (`AZURE_*`: `AZURE_STORAGE_ACCOUNT_NAME`, `AZURE_STORAGE_ACCOUNT_KEY`, …), `file:///dir` or
    /// a local directory.
    pub fn open(arg: &str) -> anyhow::Result<Source> {
        if !arg.contains("://") {
            let dir = std::fs::canonicalize(arg).with_context(|| format!("opening {arg}"))?;
            anyhow::ensure!(
                dir.is_dir(),
                "{arg} is a file, not a directory of export files"
            );
            let store = object_store::local::LocalFileSystem::new_with_prefix(&dir)?;
            return Ok(Source {
                store: Arc::new(store),
                prefix: Path::default(),
                base: format!("file://{}/", dir.display()),
                local: Some(dir),
            });
        }
        let url = url::Url::parse(arg).with_context(|| format!("`{arg}` is not a URL"))?;
        // The bucket (container) from the host, the prefix from the path, the store from the
        // cloud's usual environment; manifest keys start with `<scheme>://<bucket>/`, the scheme
        // spelled one way (`s3a` as `s3`, `azure` as `az`).
        type Build<'a> = &'a dyn Fn(&str) -> object_store::Result<Arc<dyn ObjectStore>>;
        let cloud = |scheme: &str, what: &str, build: Build<'_>| {
            let bucket = url
                .host_str()
                .with_context(|| format!("`{arg}`: no {what}"))?;
            let store = build(bucket).with_context(|| format!("connecting to {arg}"))?;
            anyhow::Ok(Source {
                store,
                prefix: Path::from(url.path().trim_matches('/')),
                base: format!("{scheme}://{bucket}/"),
                local: None,
            })
        };
        match url.scheme() {
            "s3" | "s3a" => cloud("s3", "bucket", &|bucket| {
                let store = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .build()?;
                Ok(Arc::new(store))
            }),
            "gs" => cloud("gs", "bucket", &|bucket| {
                let store = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(bucket)
                    .build()?;
                Ok(Arc::new(store))
            }),
            "az" | "azure" => cloud("az", "container", &|container| {
                let store = object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_container_name(container)
                    .build()?;
                Ok(Arc::new(store))
            }),
            "file" => Source::open(url.path()),
            other => anyhow::bail!(
                "`{arg}`: {other}:// is not supported (s3://, gs://, az://, file:// or a directory)"
            ),
        }
    }

    /// The export files under the prefix (`.csv` or `.csv.gz`), by key.
    pub async fn list(&self) -> anyhow::Result<Vec<Object>> {
        if let Some(dir) = &self.local {
            anyhow::ensure!(
                dir.is_dir(),
                "listing the exports: {} is no longer a directory (moved or deleted)",
                dir.display()
            );
        }
        let prefix = (!self.prefix.as_ref().is_empty()).then_some(&self.prefix);
        let metas: Vec<object_store::ObjectMeta> = self
            .store
            .list(prefix)
            .try_collect()
            .await
            .context("listing the exports")?;
        let mut out: Vec<Object> = metas
            .into_iter()
            .filter(|m| {
                let k = m.location.as_ref();
                k.ends_with(".csv.gz") || k.ends_with(".csv")
            })
            .map(|m| Object {
                key: format!("{}{}", self.base, m.location),
                etag: m
                    .e_tag
                    .clone()
                    .or(m.version.clone())
                    .unwrap_or_else(|| format!("{}-{}", m.size, m.last_modified.timestamp())),
                size: m.size,
                location: m.location,
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}

/// One version of an export file.
#[derive(Debug, Clone)]
pub struct Object {
    /// The manifest key: the source's base and the object's path.
    pub key: String,
    pub etag: String,
    pub size: u64,
    location: Path,
}

/// How a follower works.
pub struct Settings {
    /// Who this follower is in the manifest's claims.
    pub holder: String,
    /// A claim not renewed for this long has expired.
    pub claim_ttl: Duration,
    pub batch_rows: usize,
    /// How long after its claim a follower reads the claims back.
    pub settle: Duration,
    /// Where an object is held while it is loaded (the data directory): streamed to an unnamed
    /// file there, so that memory does not grow with the object.
    pub spool: PathBuf,
}

/// The default of [`Settings::settle`]: claims are in seconds, and an INSERT is visible well
/// within a second.
pub const SETTLE: Duration = Duration::from_secs(2);

/// `--follow-interval` and `--follow-claim-ttl` (of `import` and of `serve`), checked: rounds
/// some time apart, and a claim that lives until it has been read back and renewed.
pub fn timing(
    interval: &str,
    claim_ttl: &str,
) -> Result<(Duration, Duration), crate::settings::ConfigError> {
    let interval = crate::settings::positive_duration("--follow-interval", interval)?;
    let ttl = crate::settings::parse_duration(claim_ttl)?;
    if ttl < 2 * SETTLE {
        return crate::settings::err(format!(
            "--follow-claim-ttl must be at least {}s: a claim is read back {}s after it is taken, \
             before it is first renewed",
            (2 * SETTLE).as_secs(),
            SETTLE.as_secs()
        ));
    }
    Ok((interval, ttl))
}

/// The settings of `import URL` from its flags (a fresh identity), and the time between rounds.
pub fn settings(
    args: &crate::cli::FollowArgs,
    batch_rows: usize,
    spool: PathBuf,
) -> anyhow::Result<(Settings, Duration)> {
    let (interval, claim_ttl) = timing(&args.follow_interval, &args.follow_claim_ttl)?;
    let settings = Settings {
        holder: default_holder(),
        claim_ttl,
        batch_rows,
        settle: SETTLE,
        spool,
    };
    Ok((settings, interval))
}

/// A follower's identity by default: host, process and a random part.
pub fn default_holder() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    format!(
        "{host}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// What one round did.
#[derive(Debug, Default, Clone)]
pub struct Round {
    /// Export files listed.
    pub listed: usize,
    /// Not done before this round.
    pub pending: usize,
    pub loaded: usize,
    pub failed: usize,
    /// Claimed by another follower (or done by one meanwhile).
    pub skipped: usize,
    /// Rows of the files read in this round (those of a file that failed part-way included:
    /// the rows before the point where it became unreadable landed).
    pub rows: Summary,
}

/// Lists the source and loads every version the manifest does not hold as done; counted in
/// `export_rounds_total` (a round cut short by a stop is not).
pub async fn round<S: Store + Admin>(
    to: &Destination<'_, S>,
    manifest: &Target,
    source: &Source,
    options: &row::Options,
    settings: &Settings,
) -> anyhow::Result<Round> {
    let loaded = list_and_load(to, manifest, source, options, settings).await;
    // Rows loaded before a file failed are checked too.
    let checked = to.check_erasures(manifest, "the export follower").await;
    let result = loaded.and_then(|r| checked.map(|()| r));
    match &result {
        Ok(_) if to.shutdown.is_stopping() => {}
        Ok(_) => to.metrics.export_rounds.inc(ExportRoundOutcome::Completed),
        Err(_) => to.metrics.export_rounds.inc(ExportRoundOutcome::Failed),
    }
    result
}

async fn list_and_load<S: Store + Admin>(
    to: &Destination<'_, S>,
    manifest: &Target,
    source: &Source,
    options: &row::Options,
    settings: &Settings,
) -> anyhow::Result<Round> {
    let admin = to.deliverer.store();
    let objects = source.list().await?;
    let done: FxHashSet<(String, String)> = admin
        .select(&imports::done_sql(manifest, &source.base))
        .await
        .context("reading the manifest")?
        .into_iter()
        .filter_map(|r| {
            let mut r = r.into_iter();
            Some((r.next()?, r.next()?))
        })
        .collect();
    let pending: Vec<Object> = objects
        .iter()
        .filter(|o| !done.contains(&(o.key.clone(), o.etag.clone())))
        .cloned()
        .collect();
    let mut out = Round {
        listed: objects.len(),
        pending: pending.len(),
        ..Round::default()
    };
    to.metrics.export_files_pending.set(pending.len() as i64);
    let mut left = pending.len() as i64;
    'chunks: for chunk in pending.chunks(CLAIM_AHEAD) {
        if to.shutdown.is_stopping() {
            break;
        }
        let mut claims = Vec::with_capacity(chunk.len());
        for o in chunk {
            claims.push(claim(admin, manifest, settings, o).await?);
        }
        // Claims carry seconds: wait until every claim taken in the same second as ours (by a
        // follower that read the claims before ours was visible) is visible, so that all
        // followers decide on the same claims.
        tokio::time::sleep(settings.settle).await;
        for (i, o) in chunk.iter().enumerate() {
            if to.shutdown.is_stopping() {
                break 'chunks;
            }
            let loaded = load(to, manifest, source, options, settings, o, &claims[i..]).await?;
            match loaded {
                None => out.skipped += 1,
                Some((s, failed)) => {
                    if failed.is_some() {
                        out.failed += 1;
                    } else {
                        out.loaded += 1;
                    }
                    out.rows.absorb(s);
                }
            }
            left -= 1;
            to.metrics.export_files_pending.set(left);
        }
    }
    if !to.shutdown.is_stopping() {
        to.metrics
            .export_last_round
            .set(i64::from(crate::clock::unix_now()));
    }
    Ok(out)
}

/// Streams object `o` into an unnamed file in `dir` (gone when closed, even after a crash) and
/// returns it at its start, with its first two bytes: memory holds one chunk at a time.
async fn spool(
    source: &Source,
    o: &Object,
    dir: &std::path::Path,
) -> anyhow::Result<(std::fs::File, Vec<u8>)> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating {} to hold export files", dir.display()))?;
    let mut file = tempfile::tempfile_in(dir)
        .with_context(|| format!("creating a file in {} to hold {}", dir.display(), o.key))?;
    let mut chunks = source
        .store
        .get(&o.location)
        .await
        .with_context(|| format!("reading {}", o.key))?
        .into_stream();
    let mut head = Vec::with_capacity(2);
    while let Some(chunk) = chunks
        .try_next()
        .await
        .with_context(|| format!("reading {}", o.key))?
    {
        if head.len() < 2 {
            head.extend(chunk.iter().take(2 - head.len()));
        }
        file.write_all(&chunk)
            .with_context(|| format!("holding {} in {}", o.key, dir.display()))?;
    }
    file.rewind()?;
    Ok((file, head))
}

/// Versions claimed at once, before one wait for the claims to settle: a follower catching up
/// on a backlog of small files is not held to one file per settle (at most this many claims of
/// a stopped follower wait for their time to live to pass).
const CLAIM_AHEAD: usize = 16;

/// This follower's claim on one version: its holder string and the statement that takes (and
/// renews) it.
struct Claim {
    holder: String,
    sql: String,
}

/// Claims version `o`. One claim is one holder string (renewals repeat it): a follower that
/// claims a file again after its earlier claim expired competes with the time of its new claim.
async fn claim(
    admin: &impl Admin,
    manifest: &Target,
    settings: &Settings,
    o: &Object,
) -> anyhow::Result<Claim> {
    let holder = format!("{}#{:08x}", settings.holder, rand::random::<u32>());
    let sql = imports::claim_sql(manifest, &o.key, &o.etag, o.size, &holder);
    admin.execute(&sql).await.context("claiming a file")?;
    Ok(Claim { holder, sql })
}

/// Loads version `o` once the claims have settled, `claims` being its own and those after it
/// waiting their turn: `None` when another follower holds it or it is done; the file's summary,
/// and the reason it is bad if it is (the rows before the point where a file became unreadable
/// landed and are counted). While it loads, its claim and the waiting ones are renewed. An error
/// is the table's: the claims lapse and a later round tries again.
async fn load<S: Store + Admin>(
    to: &Destination<'_, S>,
    manifest: &Target,
    source: &Source,
    options: &row::Options,
    settings: &Settings,
    o: &Object,
    claims: &[Claim],
) -> anyhow::Result<Option<(Summary, Option<String>)>> {
    let admin = to.deliverer.store();
    let Some((claim, waiting)) = claims.split_first() else {
        return Ok(None);
    };
    let holder = &claim.holder;
    let ttl = settings.claim_ttl.as_secs().max(1);
    let winner = admin
        .select(&imports::winner_sql(manifest, &o.key, &o.etag, ttl))
        .await
        .context("reading the claims")?;
    let ours = winner
        .first()
        .and_then(|r| r.first())
        .is_some_and(|h| h == holder);
    if !ours {
        return Ok(None);
    }
    if is_done(admin, manifest, o).await? {
        return Ok(None);
    }
    // Load while renewing the claim.
    let work = async {
        let (content, head) = spool(source, o, &settings.spool).await?;
        if o.key.ends_with(".gz") && !head.starts_with(&[0x1f, 0x8b]) {
            return Err(Unreadable(format!("{}: not gzip", o.key)).into());
        }
        import_one(to, &o.key, content, options, settings.batch_rows).await
    };
    tokio::pin!(work);
    let mut renew = tokio::time::interval(Duration::from_secs((ttl / 3).max(1)));
    renew.tick().await;
    let result = loop {
        tokio::select! {
            r = &mut work => break r,
            _ = renew.tick() => {
                for c in std::iter::once(claim).chain(waiting) {
                    if let Err(e) = admin.execute(&c.sql).await {
                        tracing::warn!(key = %o.key, error = %e, "renewing an export file's claim");
                    }
                }
            }
        }
    };
    let (s, failed) = match result {
        Ok(s) => {
            let cut =
                (s.cut_short.first()).map(|c| format!("{}: line {}: {}", c.file, c.line, c.reason));
            (s, cut)
        }
        Err(e) => match e.downcast_ref::<Unreadable>() {
            Some(bad) => (Summary::default(), Some(bad.0.clone())),
            // The table's trouble, or the object could not be fetched: not the file's fault.
            None => return Err(e),
        },
    };
    // A claim can lapse while its holder loads (a stall longer than its time to live), and
    // another follower then loads the same version: its rows are in once either way (an import
    // skips rows already present), and the manifest records the version once.
    if is_done(admin, manifest, o).await? {
        tracing::info!(key = %o.key, "export file recorded by another follower meanwhile");
        return Ok(None);
    }
    let state = if failed.is_some() { "failed" } else { "loaded" };
    let reason = failed.clone().unwrap_or_default();
    admin
        .execute(&imports::outcome_sql(
            manifest,
            &imports::Outcome {
                key: &o.key,
                etag: &o.etag,
                size: o.size,
                holder,
                state,
                rows_read: s.rows_read,
                rows_new: s.new,
                rows_present: s.already_present,
                rows_bad: s.bad_lines.len() as u64,
                reason: &reason,
            },
        ))
        .await
        .context("recording a loaded file")?;
    let m = to.metrics;
    m.export_rows.inc_by(ExportRowOutcome::New, s.new);
    m.export_rows
        .inc_by(ExportRowOutcome::Present, s.already_present);
    m.export_rows
        .inc_by(ExportRowOutcome::Bad, s.bad_lines.len() as u64);
    m.export_rows.inc_by(ExportRowOutcome::Refused, s.rejected);
    match &failed {
        None => {
            m.export_files.inc(ExportFileState::Loaded);
            tracing::info!(key = %o.key, rows = s.rows_read, new = s.new, present = s.already_present, bad = s.bad_lines.len(), "export file loaded");
        }
        Some(reason) => {
            m.export_files.inc(ExportFileState::Failed);
            tracing::warn!(key = %o.key, reason = %reason, rows = s.rows_read, new = s.new, present = s.already_present, "export file failed");
        }
    }
    Ok(Some((s, failed)))
}

/// Whether the manifest records version `o` as loaded or failed.
async fn is_done<A: Admin>(admin: &A, manifest: &Target, o: &Object) -> anyhow::Result<bool> {
    let done = admin
        .select(&imports::is_done_sql(manifest, &o.key, &o.etag))
        .await
        .context("reading the manifest")?;
    Ok(done
        .first()
        .and_then(|r| r.first())
        .is_some_and(|n| n != "0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_directory_lists_its_export_files_by_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        for name in [
            "b_2024-03-01T01_x_1.csv.gz",
            "a_2024-03-01T00_x_1.csv",
            "sub/c_2024-03-01T00_x_1.csv.gz",
            "README.txt",
        ] {
            std::fs::write(dir.path().join(name), b"activity_kind\n").unwrap();
        }
        let arg = dir.path().to_str().unwrap();
        assert!(is_source(arg));
        assert!(!is_source(&format!("{arg}/README.txt")));
        // A file named as a source lists nothing: it is refused instead.
        let file_url = format!("file://{arg}/a_2024-03-01T00_x_1.csv");
        let e = Source::open(&file_url).err().unwrap().to_string();
        assert!(e.contains("is a file, not a directory"), "{e}");
        let source = Source::open(arg).unwrap();
        let listed = source.list().await.unwrap();
        let base = format!("file://{}/", std::fs::canonicalize(arg).unwrap().display());
        let keys: Vec<&str> = listed
            .iter()
            .map(|o| o.key.strip_prefix(&base).unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "a_2024-03-01T00_x_1.csv",
                "b_2024-03-01T01_x_1.csv.gz",
                "sub/c_2024-03-01T00_x_1.csv.gz"
            ]
        );
        assert!(listed.iter().all(|o| !o.etag.is_empty() && o.size == 14));
    }

    #[tokio::test]
    async fn an_object_is_held_in_an_unnamed_file_not_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        // Larger than one read of the local store (8 KiB), so that it comes in several chunks.
        let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("a_2024-03-01T00_x_1.csv.gz"), &content).unwrap();
        let spool_dir = dir.path().join("spool");
        let source = Source::open(dir.path().to_str().unwrap()).unwrap();
        let listed = source.list().await.unwrap();
        let (mut file, head) = spool(&source, &listed[0], &spool_dir).await.unwrap();
        assert_eq!(head, [0, 1]);
        let mut held = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut held).unwrap();
        assert_eq!(held, content);
        // Unnamed: nothing is left behind, whatever happens to the process.
        assert_eq!(std::fs::read_dir(&spool_dir).unwrap().count(), 0);
    }

    #[test]
    fn unknown_schemes_are_refused() {
        let e = Source::open("ftp://host/dir").err().unwrap().to_string();
        assert!(e.contains("ftp:// is not supported"), "{e}");
    }

    #[test]
    fn cloud_urls_name_bucket_prefix_and_one_spelling_of_the_scheme() {
        for (url, base, prefix) in [
            ("s3://exports/adjust/raw/", "s3://exports/", "adjust/raw"),
            ("s3a://exports/adjust", "s3://exports/", "adjust"),
            ("s3://exports", "s3://exports/", ""),
        ] {
            let source = Source::open(url).unwrap();
            assert_eq!(source.base, base, "{url}");
            assert_eq!(source.prefix.as_ref(), prefix, "{url}");
        }
        let e = Source::open("s3:///prefix").err().unwrap().to_string();
        assert!(e.contains("no bucket"), "{e}");
    }
}
