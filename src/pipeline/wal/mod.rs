//! The write-ahead log: a callback is answered 200 only once its row is on disk.
//!
//! - Segments `NNNNNNNNNNNNNNNNNNNN.wal` under `<data-dir>/wal/`, ids contiguous, each up to
//!   `segment_bytes`; a new segment is started at every start-up (an empty last one is taken
//!   again), so a segment holding records is never written by a later run.
//! - One appender thread owns the active segment: it takes every append request that arrived
//!   while the previous fsync ran (under load also those of a short linger), writes them in one
//!   go and fsyncs once (group commit), then answers them all and publishes the new durable end.
//! - One [`LogReader`] (the delivery side) reads records up to the durable end into batches.
//! - `id` holds the log's random identity, part of every batch's deduplication token.
//!
//! Files: `positions` (positions and the small state files), `appender` (group commit),
//! `reader` (batches, quarantine, trimming), `recovery` (torn tails), [`record`] (framing),
//! [`inspect`] (`check`).
//! - `ack` (atomically replaced) holds the position up to which ClickHouse acknowledged; segments
//!   wholly before it are kept for `keep_delivered` (for `replay --since`), then deleted; kept
//!   segments never count against the budget of new callbacks: when the disk is needed, the
//!   oldest go first. `inflight` holds the range of the batch being inserted, so that
//!   after a crash the same rows are re-sent as the same batch with the same deduplication token.
//! - At start-up a torn tail (damage at the end of the last segment, with no valid record after
//!   it) is truncated and counted. Damage in the middle is moved to `quarantine` by the reader and
//!   counted; every valid record around it is delivered.

mod appender;
pub mod inspect;
mod positions;
mod reader;
pub mod record;
mod recovery;
pub mod since;

use std::fs::{self, File, OpenOptions};
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use tokio::sync::{oneshot, watch};

use super::Refusal;
use super::queue::{Producer, Usage};
use crate::metrics::{Metrics, WalDamage};
use appender::{Append, Appender, Msg};
pub use positions::Position;
pub(crate) use positions::{list_segments, read_pair, read_position, segment_path};
use positions::{lock_dir, log_id};
pub use reader::LogReader;

/// Log settings.
#[derive(Debug, Clone)]
pub struct WalConfig {
    pub dir: PathBuf,
    /// A segment is closed and a new one started past this size.
    pub segment_bytes: u64,
    /// Past this many bytes on disk, appends are refused (503).
    pub disk_budget: u64,
    /// Bytes waiting for the appender past which appends are refused (bounds memory).
    pub max_pending_bytes: u64,
    /// Delivered segments are kept this long after their last record (zero: deleted at once).
    pub keep_delivered: std::time::Duration,
}

/// State shared by the ingest handle, the appender and the reader.
struct Shared {
    /// Bytes of every segment file on disk.
    disk_bytes: AtomicU64,
    /// Of those, bytes ClickHouse acknowledged (freed when their segment is deleted).
    acked_bytes: AtomicU64,
    /// Bytes handed to the appender and not yet written.
    pending_bytes: AtomicU64,
    /// Disk held by zeros filled ahead of time: the rest of the active segment and the next
    /// segment being prepared. Counted against the budget, not as log bytes.
    reserved_bytes: AtomicU64,
    /// What the log may hold now: see [`Shared::refresh_room`].
    room: AtomicU64,
    closed: AtomicBool,
    /// See [`positions::log_id`]; part of every batch's deduplication token.
    log_id: u64,
    /// Segments before this one are wholly acknowledged (kept or deleted).
    acked_segment: AtomicU64,
    /// The lowest segment id that may still be on disk.
    first_segment: AtomicU64,
    /// Held while kept segments are deleted (by the reader or the appender).
    trimming: Mutex<()>,
    /// Why the last group commit failed, until a later one (or the appender's probe) succeeds:
    /// the log takes no callback now, and the sink is not ready.
    fault: Mutex<Option<String>>,
    config: WalConfig,
    metrics: Metrics,
    /// Held for the log's lifetime: one process per log.
    _lock: File,
}

/// Free space the log leaves on its filesystem for the small files beside it (`ack`,
/// `inflight`, `quarantine`) and the rejects file's next lines: it stops taking callbacks (503)
/// before the disk is this full, so that delivery can still record its progress and free room.
const DISK_MARGIN: u64 = 4 << 20;

/// Bytes free for an unprivileged writer on the filesystem that holds `dir`.
pub fn free_bytes(dir: &std::path::Path) -> io::Result<u64> {
    let st = rustix::fs::statvfs(dir)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// The budget of a log that takes no appends (`replay`): not capped by the disk's free space,
/// so that opening it never deletes delivered segments kept for `replay --since`.
pub const UNLIMITED: u64 = u64::MAX;

/// The most a log holding `log_bytes` in `dir` may hold: `budget`, or less when the filesystem
/// has not that much room (what the log holds, plus the free space, less [`DISK_MARGIN`]). When
/// the free space cannot be read, and for [`UNLIMITED`], the budget.
fn room_in(dir: &std::path::Path, log_bytes: u64, budget: u64) -> u64 {
    if budget == UNLIMITED {
        return budget;
    }
    match free_bytes(dir) {
        Ok(free) => log_bytes
            .saturating_add(free)
            .saturating_sub(DISK_MARGIN)
            .min(budget),
        Err(_) => budget,
    }
}

impl Shared {
    /// What the log may hold now (bytes on disk, zeros filled ahead and appends on their way).
    fn room(&self) -> u64 {
        self.room.load(Ordering::Relaxed)
    }

    /// Reads the filesystem's free space again: the log may hold `--disk-budget`, or less when
    /// the disk has not that much room (a small volume, other files growing), so that a full
    /// disk is a refusal (503, not ready) before it is a failed write. Zeros filled ahead count
    /// twice for a while (held on disk and counted as reserved): the error is on the safe side.
    fn refresh_room(&self) -> u64 {
        let room = room_in(
            &self.config.dir,
            self.disk_bytes.load(Ordering::Relaxed),
            self.config.disk_budget,
        );
        self.room.store(room, Ordering::Relaxed);
        self.metrics.spool_budget_bytes.set(room as i64);
        self.metrics.queue_capacity_bytes.set(room as i64);
        room
    }

    /// Bytes written and not yet acknowledged: what the disk budget limits.
    fn unacked(&self) -> u64 {
        self.disk_bytes
            .load(Ordering::Relaxed)
            .saturating_sub(self.acked_bytes.load(Ordering::Relaxed))
    }

    fn publish(&self) {
        self.metrics.spool_bytes.set(self.unacked() as i64);
    }

    fn add_disk_bytes(&self, v: u64) {
        self.disk_bytes.fetch_add(v, Ordering::Relaxed);
        self.publish();
    }

    /// Whether the disk in use plus `need` bytes exceeds the budget while kept segments hold
    /// some of it.
    fn kept_in_the_way(&self, need: u64) -> bool {
        self.first_segment.load(Ordering::Acquire) < self.acked_segment.load(Ordering::Acquire)
            && self.disk_bytes.load(Ordering::Relaxed)
                + self.reserved_bytes.load(Ordering::Relaxed)
                + self.pending_bytes.load(Ordering::Relaxed)
                + need
                > self.room()
    }

    /// Deletes delivered segments: those whose last write is older than `keep_delivered`, and
    /// the oldest others while the disk in use plus `need` exceeds the budget (kept data never
    /// takes the room of a new callback).
    fn trim_kept(&self, need: u64) -> io::Result<()> {
        let _guard = self.trimming.lock().unwrap_or_else(|e| e.into_inner());
        let acked = self.acked_segment.load(Ordering::Acquire);
        let dir = &self.config.dir;
        let keep = self.config.keep_delivered;
        let cutoff = std::time::SystemTime::now().checked_sub(keep);
        let mut freed = 0;
        for id in list_segments(dir)?.into_iter().filter(|&id| id < acked) {
            let path = segment_path(dir, id);
            let meta = match fs::metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let expired = keep.is_zero()
                || match (meta.modified(), cutoff) {
                    (Ok(m), Some(c)) => m < c,
                    _ => false,
                };
            let over = self
                .disk_bytes
                .load(Ordering::Relaxed)
                .saturating_sub(freed)
                + self.reserved_bytes.load(Ordering::Relaxed)
                + self.pending_bytes.load(Ordering::Relaxed)
                + need
                > self.room();
            if !expired && !over {
                self.first_segment.store(id, Ordering::Release);
                break;
            }
            fs::remove_file(&path)?;
            freed += meta.len();
            self.first_segment.store(id + 1, Ordering::Release);
            if !expired {
                self.metrics.wal_kept_evicted.inc();
            }
        }
        if freed > 0 {
            self.disk_bytes.fetch_sub(freed, Ordering::Relaxed);
            self.acked_bytes.fetch_sub(freed, Ordering::Relaxed);
        }
        self.publish();
        self.refresh_room();
        Ok(())
    }
}

/// The ingest side of the log (cheap to clone; every HTTP worker holds one).
#[derive(Clone)]
pub struct Wal {
    tx: mpsc::Sender<Msg>,
    shared: Arc<Shared>,
    appender: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
}

/// What opening a log found.
#[derive(Debug, Default, Clone)]
pub struct Recovered {
    /// Where delivery resumes.
    pub ack: Position,
    /// The batch that was being inserted when the process stopped, if any.
    pub inflight: Option<(Position, Position)>,
    /// Bytes cut off the end of the last segment (a torn write).
    pub torn_bytes: u64,
    pub segments: usize,
}

impl Wal {
    /// Opens (or creates) the log, repairs a torn tail, and starts the appender thread. Returns
    /// the ingest handle and the reader that delivery uses.
    pub fn open(
        mut config: WalConfig,
        metrics: Metrics,
    ) -> io::Result<(Wal, LogReader, Recovered)> {
        fs::create_dir_all(&config.dir)?;
        let lock = lock_dir(&config.dir)?;
        let log_id = log_id(&config.dir)?;
        let ack_path = config.dir.join("ack");
        let ack = read_position(&ack_path)?;
        let inflight_pair = read_pair(&config.dir.join("inflight"))?;
        let ids = list_segments(&config.dir)?;
        let torn_bytes = match ids.last() {
            Some(&last) => recovery::truncate_torn_tail(&segment_path(&config.dir, last))?,
            None => 0,
        };
        if torn_bytes > 0 {
            metrics.wal_damaged.inc(WalDamage::TornTail);
            tracing::warn!(bytes = torn_bytes, "write-ahead log: truncated a torn tail");
        }
        // Each segment's length, its torn tail cut.
        let lens = ids
            .iter()
            .map(|id| Ok(fs::metadata(segment_path(&config.dir, *id))?.len()))
            .collect::<io::Result<Vec<u64>>>()?;
        let first = ids.first().copied().unwrap_or(1);
        let ack = match ack {
            Some(a) if ids.contains(&a.segment) => a,
            // Its segment is gone: resume at the first segment after it.
            Some(a) => Position {
                segment: ids
                    .iter()
                    .copied()
                    .find(|&id| id > a.segment)
                    .unwrap_or(a.segment + 1),
                offset: 0,
            },
            None => Position {
                segment: first,
                offset: 0,
            },
        };
        // A run starts a segment of its own, except after a run that wrote nothing: an empty last
        // segment (nothing read from it either) is taken again, so that opening a log without
        // appending (`replay`, restarts without callbacks) leaves no empty files behind.
        let active = match ids.last() {
            Some(&last)
                if (last > ack.segment || last == ack.segment && ack.offset == 0)
                    && lens.last() == Some(&0) =>
            {
                last
            }
            Some(&last) => last + 1,
            None => ack.segment.max(1),
        };
        // A next segment half prepared by an earlier run is not trusted.
        match fs::remove_file(config.dir.join(appender::PREPARED)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(segment_path(&config.dir, active))?;
        File::open(&config.dir)?.sync_all()?;
        let mut disk = 0;
        let mut kept = 0;
        for (id, &len) in ids.iter().zip(&lens) {
            disk += len;
            if *id < ack.segment {
                kept += len;
            }
        }
        // Acknowledged bytes are freed a segment at a time: keep segments small next to what
        // the log may hold (the budget, or the disk's room when that is less) so the disk in use
        // stays close to it.
        let room = room_in(&config.dir, disk, config.disk_budget);
        config.segment_bytes = config.segment_bytes.min((room / 8).max(1 << 20));
        metrics.queue_capacity_rows.set(0);
        let shared = Arc::new(Shared {
            disk_bytes: AtomicU64::new(disk),
            acked_bytes: AtomicU64::new(ack.offset + kept),
            pending_bytes: AtomicU64::new(0),
            reserved_bytes: AtomicU64::new(0),
            room: AtomicU64::new(room),
            closed: AtomicBool::new(false),
            log_id,
            acked_segment: AtomicU64::new(ack.segment),
            first_segment: AtomicU64::new(first),
            trimming: Mutex::new(()),
            fault: Mutex::new(None),
            config: config.clone(),
            metrics: metrics.clone(),
            _lock: lock,
        });
        // Delivered segments past their window (or beyond the budget) go now; the room (and its
        // metrics) is read afresh at the end.
        shared.trim_kept(0)?;
        let durable_start = Position {
            segment: active,
            offset: 0,
        };
        let (durable_tx, durable_rx) = watch::channel(durable_start);
        let (tx, rx) = mpsc::channel::<Msg>();
        let appender = Appender {
            shared: shared.clone(),
            file,
            active,
            offset: 0,
            durable: durable_tx,
            prepared: appender::Next::None,
            allocated: 0,
            prepared_bytes: 0,
        };
        let appender = std::thread::Builder::new()
            .name("wal-appender".into())
            .spawn(move || appender.run(rx))?;
        let inflight = inflight_pair.filter(|(start, _)| *start == ack);
        let reader = LogReader {
            shared: shared.clone(),
            durable: durable_rx,
            pos: ack,
            chunk: Vec::new(),
            chunk_at: Position::default(),
            stop_at: inflight.map(|(_, end)| end),
            acked: ack,
            file: None,
        };
        let recovered = Recovered {
            ack,
            inflight,
            torn_bytes,
            segments: ids.iter().filter(|&&id| id >= ack.segment).count(),
        };
        Ok((
            Wal {
                tx,
                shared,
                appender: Arc::new(Mutex::new(Some(appender))),
            },
            reader,
            recovered,
        ))
    }

    /// Appends one row and waits until it is durable.
    pub async fn append(&self, payload: Vec<u8>) -> Result<(), Refusal> {
        let s = &self.shared;
        if s.closed.load(Ordering::Acquire) {
            return Err(Refusal::ShuttingDown);
        }
        let len = payload.len() as u64;
        let pending = s.pending_bytes.load(Ordering::Relaxed);
        let need = s.unacked() + s.reserved_bytes.load(Ordering::Relaxed) + pending + len;
        // Refused only after a fresh look at the disk: room freed meanwhile (delivered segments
        // deleted, other files gone) takes callbacks at once.
        if need > s.room() && need > s.refresh_room() {
            return Err(Refusal::DiskBudget);
        }
        if pending + len > s.config.max_pending_bytes {
            return Err(Refusal::Full);
        }
        let (done, wait) = oneshot::channel();
        s.pending_bytes.fetch_add(len, Ordering::Relaxed);
        if self.tx.send(Msg::Append(Append { payload, done })).is_err() {
            s.pending_bytes.fetch_sub(len, Ordering::Relaxed);
            return Err(Refusal::ShuttingDown);
        }
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Refusal::Io),
            Err(_) => Err(Refusal::ShuttingDown),
        }
    }

    /// Refuses further appends; the appender finishes what it has and stops.
    /// Waits until every append handed over before is durable (or failed).
    pub fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        let _ = self.tx.send(Msg::Close);
        if let Some(handle) = self.appender.lock().expect("appender handle lock").take() {
            let _ = handle.join();
        }
    }
}

impl Producer for Wal {
    fn accept(&self, row: Vec<u8>) -> impl Future<Output = Result<(), Refusal>> + Send {
        self.append(row)
    }

    /// Unacknowledged bytes in the log against the disk budget (less the zeros filled ahead).
    fn usage(&self) -> Usage {
        let s = &self.shared;
        Usage {
            what: "write-ahead log",
            rows: None,
            bytes: s.unacked(),
            capacity_bytes: s
                .room()
                .saturating_sub(s.reserved_bytes.load(Ordering::Relaxed)),
            fault: s.fault.lock().expect("fault lock").clone(),
        }
    }

    fn close(&self) {
        Wal::close(self)
    }
}

#[cfg(test)]
mod tests;
