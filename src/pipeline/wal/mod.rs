//! The write-ahead log: a callback is answered 200 only once its row is on disk.
//!
//! - Segments `NNNNNNNNNNNNNNNNNNNN.wal` under `<data-dir>/wal/`, ids contiguous, each up to
//!   `segment_bytes`; a new segment is started at every start-up, so older ones are never written.
//! - One appender thread owns the active segment: it takes every append request that arrived
//!   while the previous fsync ran, writes them in one go and fsyncs once (group commit), then
//!   answers them all and publishes the new durable end.
//! - One [`LogReader`] (the delivery side) reads records up to the durable end into batches.
//! - `ack` (atomically replaced) holds the position up to which ClickHouse acknowledged; segments
//!   wholly before it are deleted. `inflight` holds the range of the batch being inserted, so that
//!   after a crash the same rows are re-sent as the same batch with the same deduplication token.
//! - At start-up a torn tail (damage at the end of the last segment, with no valid record after
//!   it) is truncated and counted. Damage in the middle is moved to `quarantine` by the reader and
//!   counted; every valid record around it is delivered.

pub mod inspect;
pub mod record;
mod recovery;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use tokio::sync::{oneshot, watch};

use super::{Batch, Limits, Refusal};
use crate::metrics::Metrics;

/// A place in the log: segment id and byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.segment, self.offset)
    }
}

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
}

pub(crate) fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.wal"))
}

/// Segment ids present in `dir`, ascending.
pub(crate) fn list_segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut ids: Vec<u64> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".wal")?.parse().ok()
        })
        .collect();
    ids.sort_unstable();
    Ok(ids)
}

pub(crate) fn read_position(path: &Path) -> io::Result<Option<Position>> {
    match fs::read_to_string(path) {
        Ok(s) => {
            let mut it = s.split_whitespace().map(|n| n.parse::<u64>());
            match (it.next(), it.next()) {
                (Some(Ok(segment)), Some(Ok(offset))) => Ok(Some(Position { segment, offset })),
                _ => Ok(None),
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Replaces `path` atomically with `content`, durably.
fn write_atomic(path: &Path, content: &str) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(content.as_bytes())?;
    f.sync_data()?;
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn unix_now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0)
}

enum Msg {
    Append(Append),
    /// Write what is queued, then stop.
    Close,
}

struct Append {
    payload: Vec<u8>,
    done: oneshot::Sender<io::Result<()>>,
}

/// State shared by the ingest handle, the appender and the reader.
struct Shared {
    /// Bytes of every segment file on disk.
    disk_bytes: AtomicU64,
    /// Of those, bytes ClickHouse acknowledged (freed when their segment is deleted).
    acked_bytes: AtomicU64,
    /// Bytes handed to the appender and not yet written.
    pending_bytes: AtomicU64,
    closed: AtomicBool,
    config: WalConfig,
    metrics: Metrics,
    /// Held for the log's lifetime: one process per log.
    _lock: File,
}

impl Shared {
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
        // Acknowledged bytes are freed a segment at a time: keep segments small next to the
        // budget so the disk in use stays close to it.
        config.segment_bytes = config
            .segment_bytes
            .min((config.disk_budget / 8).max(1 << 20));
        fs::create_dir_all(&config.dir)?;
        let lock = lock_dir(&config.dir)?;
        let ack_path = config.dir.join("ack");
        let ack = read_position(&ack_path)?;
        let inflight_pair = read_pair(&config.dir.join("inflight"))?;
        let mut ids = list_segments(&config.dir)?;
        // Segments wholly acknowledged are gone for good.
        if let Some(ack) = ack {
            for id in ids.iter().filter(|&&id| id < ack.segment) {
                fs::remove_file(segment_path(&config.dir, *id))?;
            }
            ids.retain(|&id| id >= ack.segment);
        }
        let torn_bytes = match ids.last() {
            Some(&last) => recovery::truncate_torn_tail(&segment_path(&config.dir, last))?,
            None => 0,
        };
        if torn_bytes > 0 {
            metrics.wal_damaged.with_label_values(&["torn_tail"]).inc();
            tracing::warn!(bytes = torn_bytes, "write-ahead log: truncated a torn tail");
        }
        let first = ids.first().copied().unwrap_or(1);
        let ack = match ack {
            Some(a) if ids.contains(&a.segment) => a,
            _ => Position {
                segment: first,
                offset: 0,
            },
        };
        let active = ids.last().map_or(ack.segment.max(1), |&l| l + 1);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(segment_path(&config.dir, active))?;
        File::open(&config.dir)?.sync_all()?;
        let mut disk = 0;
        for id in &ids {
            disk += fs::metadata(segment_path(&config.dir, *id))?.len();
        }
        metrics.spool_budget_bytes.set(config.disk_budget as i64);
        metrics.queue_capacity_bytes.set(config.disk_budget as i64);
        metrics.queue_capacity_rows.set(0);
        let shared = Arc::new(Shared {
            disk_bytes: AtomicU64::new(disk),
            acked_bytes: AtomicU64::new(ack.offset),
            pending_bytes: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            config: config.clone(),
            metrics: metrics.clone(),
            _lock: lock,
        });
        shared.publish();
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
            segments: ids.len(),
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
        if s.unacked() + pending + len > s.config.disk_budget {
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

    /// Unacknowledged bytes in the log and the budget, for `/readyz`.
    pub fn usage(&self) -> (u64, u64) {
        (self.shared.unacked(), self.shared.config.disk_budget)
    }
}

/// Takes the log's lock file, or says which directory is in use.
fn lock_dir(dir: &Path) -> io::Result<File> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("lock"))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!(
                "{} is in use by another adjust-sink process (serve or replay); stop it first",
                dir.display()
            ),
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

pub(crate) fn read_pair(path: &Path) -> io::Result<Option<(Position, Position)>> {
    match fs::read_to_string(path) {
        Ok(s) => {
            let n: Vec<u64> = s
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            Ok((n.len() == 4).then(|| {
                (
                    Position {
                        segment: n[0],
                        offset: n[1],
                    },
                    Position {
                        segment: n[2],
                        offset: n[3],
                    },
                )
            }))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

struct Appender {
    shared: Arc<Shared>,
    file: File,
    active: u64,
    offset: u64,
    durable: watch::Sender<Position>,
}

/// Group commit: how long to wait for the next callback before writing, and in all.
const COMMIT_GAP: std::time::Duration = std::time::Duration::from_micros(200);
const COMMIT_MAX_WAIT: std::time::Duration = std::time::Duration::from_millis(2);

/// Upper bound of one group commit's write.
const GROUP_BYTES: u64 = 16 << 20;

impl Appender {
    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        let mut buf = Vec::with_capacity(1 << 20);
        let mut group: Vec<Append> = Vec::new();
        let mut closing = false;
        while !closing {
            let mut bytes = 0;
            match rx.recv() {
                Ok(Msg::Append(first)) => {
                    bytes += first.payload.len() as u64;
                    group.push(first);
                }
                Ok(Msg::Close) | Err(_) => {
                    // Whatever raced with the close is still written; senders after this fail.
                    closing = true;
                    while let Ok(msg) = rx.try_recv() {
                        if let Msg::Append(a) = msg {
                            bytes += a.payload.len() as u64;
                            group.push(a);
                        }
                    }
                    if group.is_empty() {
                        break;
                    }
                }
            }
            // Group commit: take what is queued, and while callbacks keep arriving (each within
            // COMMIT_GAP of the previous), wait for them up to COMMIT_MAX_WAIT, so one fsync
            // covers them all. A lone callback waits COMMIT_GAP at most.
            let opened = std::time::Instant::now();
            while !closing && bytes < GROUP_BYTES {
                let next = match rx.try_recv() {
                    Ok(msg) => Some(msg),
                    Err(mpsc::TryRecvError::Disconnected) => None,
                    Err(mpsc::TryRecvError::Empty) => {
                        let left = COMMIT_MAX_WAIT.saturating_sub(opened.elapsed());
                        if left.is_zero() {
                            None
                        } else {
                            rx.recv_timeout(left.min(COMMIT_GAP)).ok()
                        }
                    }
                };
                match next {
                    Some(Msg::Append(a)) => {
                        bytes += a.payload.len() as u64;
                        group.push(a);
                    }
                    Some(Msg::Close) => closing = true,
                    None => break,
                }
            }
            buf.clear();
            let now = unix_now();
            for a in &group {
                record::encode(&mut buf, now, &a.payload);
            }
            let result = self.write_group(&buf);
            self.shared
                .pending_bytes
                .fetch_sub(bytes, Ordering::Relaxed);
            match &result {
                Ok(()) => {
                    self.shared.metrics.wal_fsyncs.inc();
                    self.shared
                        .metrics
                        .queue_rows_pushed
                        .inc_by(group.len() as u64);
                    self.shared.metrics.queue_bytes_pushed.inc_by(bytes);
                    let _ = self.durable.send(Position {
                        segment: self.active,
                        offset: self.offset,
                    });
                }
                Err(e) => tracing::error!(error = %e, "write-ahead log: append failed"),
            }
            for a in group.drain(..) {
                let _ = a.done.send(match &result {
                    Ok(()) => Ok(()),
                    Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                });
            }
        }
        let _ = self.file.sync_all();
        tracing::debug!("write-ahead log: appender stopped");
    }

    fn write_group(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.offset > 0 && self.offset + buf.len() as u64 > self.shared.config.segment_bytes {
            self.rotate()?;
        }
        if let Err(e) = self
            .file
            .write_all(buf)
            .and_then(|()| self.file.sync_data())
        {
            // Leave no partial group behind: cut back to the last durable end.
            let _ = self.file.set_len(self.offset);
            return Err(e);
        }
        self.offset += buf.len() as u64;
        self.shared.add_disk_bytes(buf.len() as u64);
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.sync_all()?;
        let next = self.active + 1;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(segment_path(&self.shared.config.dir, next))?;
        File::open(&self.shared.config.dir)?.sync_all()?;
        self.file = file;
        self.active = next;
        self.offset = 0;
        Ok(())
    }
}

/// The delivery side: reads durable records into batches and trims the log on acknowledgement.
pub struct LogReader {
    shared: Arc<Shared>,
    durable: watch::Receiver<Position>,
    /// Next record to read.
    pos: Position,
    /// A window of the current segment starting at `chunk_at`.
    chunk: Vec<u8>,
    chunk_at: Position,
    /// After recovery: the end of the batch that was in flight, so it is re-cut identically.
    stop_at: Option<Position>,
    /// Everything before this is acknowledged.
    acked: Position,
    /// The segment being read, kept open.
    file: Option<(u64, File)>,
}

const CHUNK: usize = 4 << 20;

impl LogReader {
    /// Where the next unread record starts.
    pub fn position(&self) -> Position {
        self.pos
    }

    /// Whether the appender has stopped and every durable record has been read.
    pub fn is_finished(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
            && self.durable.has_changed().is_err()
            && self.pos >= *self.durable.borrow()
    }

    /// Waits until more records may be durable (returns at once when the appender is gone).
    pub async fn wait(&mut self) {
        let _ = self.durable.changed().await;
    }

    /// Moves durable records into `batch` until it reaches the limits. Returns how many moved.
    pub fn fill(&mut self, batch: &mut Batch, limits: &Limits) -> io::Result<usize> {
        if batch.is_empty() {
            batch.log_start = Some(self.pos);
        }
        let mut moved = 0;
        while batch.rows() < limits.max_rows && batch.data.len() < limits.max_bytes {
            if let Some(stop) = self.stop_at
                && self.pos >= stop
            {
                self.stop_at = None;
                break;
            }
            let durable = *self.durable.borrow();
            if self.pos >= durable {
                break;
            }
            let end = if self.pos.segment < durable.segment {
                match fs::metadata(segment_path(&self.shared.config.dir, self.pos.segment)) {
                    Ok(m) => m.len(),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
                    Err(e) => return Err(e),
                }
            } else {
                durable.offset
            };
            if self.pos.offset >= end {
                // End of a finished segment: go on with the next one.
                self.pos = Position {
                    segment: self.pos.segment + 1,
                    offset: 0,
                };
                self.chunk.clear();
                continue;
            }
            match self.next_record(end)? {
                Some((written_at, payload)) => {
                    batch.push(&payload);
                    if batch.rows() == 1 {
                        batch.oldest_written = Some(written_at);
                    }
                    moved += 1;
                    self.shared.metrics.queue_rows_popped.inc();
                    self.shared
                        .metrics
                        .queue_bytes_popped
                        .inc_by(payload.len() as u64);
                }
                None => continue,
            }
        }
        if moved > 0 {
            let start = batch.log_start.unwrap_or(self.pos);
            batch.token = format!("wal-{start}-{}", self.pos);
            batch.log_end = Some(self.pos);
        }
        Ok(moved)
    }

    /// Reads the record at `pos` (below `end`), advancing past it. On damage, moves the damaged
    /// bytes to the quarantine file, advances to the next valid record and returns `None`.
    fn next_record(&mut self, end: u64) -> io::Result<Option<(u32, Vec<u8>)>> {
        let at = self.ensure_chunk(end, record::HEADER)?;
        let avail = &self.chunk[at..];
        match record::parse(avail) {
            record::Parsed::Record {
                written_at,
                payload,
                size,
            } => {
                let payload = payload.to_vec();
                self.pos.offset += size as u64;
                return Ok(Some((written_at, payload)));
            }
            record::Parsed::Incomplete => {
                let want = if avail.len() >= record::HEADER {
                    record::HEADER
                        + u32::from_le_bytes(avail[4..8].try_into().expect("4 bytes")) as usize
                } else {
                    record::HEADER
                };
                let at = self.ensure_chunk(end, want)?;
                if self.chunk.len() - at >= want {
                    return self.next_record(end);
                }
            }
            record::Parsed::Damaged => {}
        }
        // Damaged, or cut short before the end of the readable region.
        let at = self.ensure_chunk(end, usize::MAX)?;
        let rest = &self.chunk[at..];
        let skip = record::resync(rest).unwrap_or(rest.len());
        self.quarantine(&rest[..skip])?;
        self.pos.offset += skip as u64;
        Ok(None)
    }

    /// Makes sure the chunk holds `want` bytes from `pos` (or everything up to `end`); returns the
    /// index of `pos` in the chunk.
    fn ensure_chunk(&mut self, end: u64, want: usize) -> io::Result<usize> {
        let in_chunk = self.chunk_at.segment == self.pos.segment
            && self.pos.offset >= self.chunk_at.offset
            && self.pos.offset <= self.chunk_at.offset + self.chunk.len() as u64;
        let available = end - self.pos.offset;
        let want = (want as u64).min(available);
        if in_chunk {
            let at = (self.pos.offset - self.chunk_at.offset) as usize;
            if (self.chunk.len() - at) as u64 >= want {
                return Ok(at);
            }
        }
        let len = want.max(CHUNK as u64).min(available) as usize;
        self.chunk.resize(len, 0);
        if self
            .file
            .as_ref()
            .is_none_or(|(id, _)| *id != self.pos.segment)
        {
            let f = File::open(segment_path(&self.shared.config.dir, self.pos.segment))?;
            self.file = Some((self.pos.segment, f));
        }
        let (_, file) = self.file.as_ref().expect("segment file open");
        file.read_exact_at(&mut self.chunk, self.pos.offset)?;
        self.chunk_at = self.pos;
        Ok(0)
    }

    fn quarantine(&self, bytes: &[u8]) -> io::Result<()> {
        let path = self.shared.config.dir.join("quarantine");
        let mut f = OpenOptions::new().create(true).append(true).open(&path)?;
        writeln!(
            f,
            "-- {} bytes from segment {} at {}",
            bytes.len(),
            self.pos.segment,
            self.pos.offset
        )?;
        f.write_all(bytes)?;
        f.write_all(b"\n")?;
        f.sync_data()?;
        self.shared
            .metrics
            .wal_damaged
            .with_label_values(&["quarantined"])
            .inc();
        tracing::error!(
            bytes = bytes.len(),
            segment = self.pos.segment,
            offset = self.pos.offset,
            path = %path.display(),
            "write-ahead log: damaged region moved to quarantine"
        );
        Ok(())
    }

    /// Records the range of the batch about to be inserted, so a crash re-sends it identically.
    pub fn begin(&self, start: Position, end: Position) -> io::Result<()> {
        write_atomic(
            &self.shared.config.dir.join("inflight"),
            &format!(
                "{} {} {} {}\n",
                start.segment, start.offset, end.segment, end.offset
            ),
        )
    }

    /// ClickHouse acknowledged everything before `upto`: persist it and delete finished segments.
    pub fn ack(&mut self, upto: Position) -> io::Result<()> {
        let dir = self.shared.config.dir.clone();
        write_atomic(
            &dir.join("ack"),
            &format!("{} {}\n", upto.segment, upto.offset),
        )?;
        let _ = fs::remove_file(dir.join("inflight"));
        let newly_acked = self.bytes_between(self.acked, upto);
        self.acked = upto;
        self.shared
            .acked_bytes
            .fetch_add(newly_acked, Ordering::Relaxed);
        let mut freed = 0;
        for id in list_segments(&dir)?
            .into_iter()
            .filter(|&id| id < upto.segment)
        {
            let path = segment_path(&dir, id);
            freed += fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            fs::remove_file(path)?;
        }
        if freed > 0 {
            self.shared.disk_bytes.fetch_sub(freed, Ordering::Relaxed);
            self.shared.acked_bytes.fetch_sub(freed, Ordering::Relaxed);
        }
        self.shared.publish();
        Ok(())
    }

    /// Log bytes from `from` to `to` (across segments).
    fn bytes_between(&self, from: Position, to: Position) -> u64 {
        if to <= from {
            return 0;
        }
        if from.segment == to.segment {
            return to.offset - from.offset;
        }
        let len =
            |id| fs::metadata(segment_path(&self.shared.config.dir, id)).map_or(0, |m| m.len());
        let mut total = len(from.segment).saturating_sub(from.offset);
        for id in from.segment + 1..to.segment {
            total += len(id);
        }
        total + to.offset
    }
}

#[cfg(test)]
mod tests;
