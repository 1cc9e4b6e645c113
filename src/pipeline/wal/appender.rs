//! The appender thread: owns the active segment, writes every append that arrived while the
//! previous fsync ran (under load, also those of a short linger) in one go, fsyncs once (group
//! commit), answers them all and publishes the new durable end.
//!
//! From the first group commit of a run on, the next segment is zero-filled to its full size
//! ahead of time by a helper thread (`next.prepared`, renamed into place at rotation; a log that
//! is only read writes no zeros), when the budget holds at least
//! [`PREPARE_MIN_SEGMENTS`] segments; the zeros count against the budget. A segment that grows as
//! it is written (the first of a run, started before any helper could fill one, or one started
//! while the helper was still at it) is cut short at the first group commit after the helper's
//! file is ready, which starts that file. Overwriting blocks a file
//! already has lets `fdatasync` skip the journal commit that growing a file costs: here half the
//! wall time and less than half the CPU per fsync (0.10 ms and ~45 µs instead of 0.21 ms and
//! ~110 µs for 15 KB groups on ext4). The zeros after the last record are not damage: the reader
//! reads up to the durable end, a segment is cut to its records when the next one starts or the
//! log closes, and start-up recovery cuts a zero tail without counting it. When the helper cannot
//! fill the file (a full disk), the next segment grows as it is written, as the first one does.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;

use tokio::sync::{oneshot, watch};

use super::positions::{Position, segment_path};
use super::{Shared, record};

pub(super) enum Msg {
    Append(Append),
    /// Write what is queued, then stop.
    Close,
}

pub(super) struct Append {
    pub payload: Vec<u8>,
    pub done: oneshot::Sender<io::Result<()>>,
}

pub(super) struct Appender {
    pub shared: Arc<Shared>,
    pub file: File,
    pub active: u64,
    pub offset: u64,
    pub durable: watch::Sender<Position>,
    /// The next segment: being filled by a helper, or filled and waiting to be started.
    pub prepared: Next,
    /// Size of the active segment as filled ahead of time (0 when it grows as it is written).
    pub allocated: u64,
    /// Disk the helper's file holds (or will), until it becomes the active segment.
    pub prepared_bytes: u64,
}

/// The segment after the active one, as far as it is filled ahead of time.
pub(super) enum Next {
    /// None is being filled: the next segment grows as it is written.
    None,
    /// A helper thread is filling [`PREPARED`].
    Filling(std::thread::JoinHandle<io::Result<()>>),
    /// [`PREPARED`] is filled and durable, ready to be renamed into place.
    Ready,
}

/// Segments are filled ahead of time only when the log's budget holds at least this many: the
/// zeros (at most the active segment's rest and the next segment) are counted against the
/// budget, and with few segments they would take a large share of it.
const PREPARE_MIN_SEGMENTS: u64 = 16;

/// The next segment, zero-filled ahead of time (not a `.wal` name: no reader looks at it).
pub(super) const PREPARED: &str = "next.prepared";

/// Writes `bytes` zeros to `path` (replacing it) and makes them durable.
///
/// The zeros go around the page cache (`O_DIRECT`) where the filesystem takes that: copied
/// through the cache, 64 MiB of zeros per segment cost the sink ~4 µs of CPU per wide callback
/// (`docs/performance.md`). What is left (less than [`DIRECT_ALIGN`] at the end, or all of it on
/// a filesystem that refuses direct writes, such as an older `tmpfs`) goes through the cache.
fn fill_with_zeros(path: &Path, bytes: u64) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    const CHUNK: usize = 1 << 20;
    let einval = rustix::io::Errno::INVAL.raw_os_error();
    // Direct writes need an aligned buffer: a slice of a larger one.
    let raw = vec![0u8; CHUNK + DIRECT_ALIGN];
    let skip = raw.as_ptr().align_offset(DIRECT_ALIGN);
    let zeros = &raw[skip..skip + CHUNK];
    let mut done = 0;
    let direct = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32)
        .open(path);
    // Writes zeros from `done` up to `end`, advancing `done` past each chunk written.
    let write_up_to = |f: &File, done: &mut u64, end: u64| -> io::Result<()> {
        while *done < end {
            let n = (end - *done).min(CHUNK as u64) as usize;
            f.write_all_at(&zeros[..n], *done)?;
            *done += n as u64;
        }
        Ok(())
    };
    // Opening with `O_DIRECT`, or a direct write, is refused with `EINVAL` where the filesystem
    // or the device does not take it: the rest then goes through the cache.
    match direct.and_then(|f| write_up_to(&f, &mut done, bytes - bytes % DIRECT_ALIGN as u64)) {
        Err(e) if e.raw_os_error() != Some(einval) => return Err(e),
        _ => {}
    }
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(done == 0)
        .open(path)?;
    write_up_to(&f, &mut done, bytes)?;
    f.sync_all()
}

/// Alignment of direct writes (offset, length and buffer), and the page a group's write is
/// rounded up to in a segment filled ahead of time (see [`Appender::write_group`]).
const DIRECT_ALIGN: usize = 4096;

/// While the log cannot be written and no callback comes, the appender checks this often
/// whether it can again ([`Appender::probe`]): a sink that nothing is sent to while it is not
/// ready must still become ready once the disk is back.
const PROBE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// How many links the open file has, asked without its times. Where a `stat` reads a file's
/// times, Linux (6.13 and later, multigrain timestamps) gives its next write a fresh timestamp,
/// and ext4's `fdatasync` then writes the inode as well: a second I/O in every group commit.
/// `statx` with a mask that leaves the times out does not; where `statx` is missing or refused
/// ([`statx_unusable`]), `fstat`.
fn links(file: &File) -> io::Result<u64> {
    use rustix::fs::{AtFlags, StatxFlags, statx};
    match statx(file, c"", AtFlags::EMPTY_PATH, StatxFlags::NLINK) {
        Ok(st) => Ok(u64::from(st.stx_nlink)),
        Err(e) if statx_unusable(e) => {
            use std::os::unix::fs::MetadataExt;
            Ok(file.metadata()?.nlink())
        }
        Err(e) => Err(e.into()),
    }
}

/// `statx` missing (kernels before 4.11), refused by a seccomp filter (older container
/// runtimes answer `EPERM`) or not taking the flags: the std calls answer instead, so a sandbox
/// never makes the segment check fail.
fn statx_unusable(e: rustix::io::Errno) -> bool {
    use rustix::io::Errno;
    e == Errno::NOSYS || e == Errno::PERM || e == Errno::INVAL
}

/// Whether something is at `path`, asked without its times (see [`links`]).
fn present(path: &Path) -> io::Result<bool> {
    use rustix::fs::{AtFlags, CWD, StatxFlags, statx};
    let asked = match statx(CWD, path, AtFlags::empty(), StatxFlags::TYPE) {
        Ok(_) => Ok(()),
        Err(e) if statx_unusable(e) => fs::metadata(path).map(drop),
        Err(e) => Err(io::Error::from(e)),
    };
    match asked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// The file [`Appender::probe`] writes, syncs and removes (not a `.wal` name).
const PROBE: &str = "probe.tmp";

/// Upper bound of one group commit's write.
const GROUP_BYTES: u64 = 16 << 20;

/// Under load a group lingers in slices of this length: the appender sleeps (senders do not
/// wake it: an append to a receiver that is not waiting costs no system call), then takes what
/// arrived. A slice that brings nothing ends the group…
const LINGER_SLICE: std::time::Duration = std::time::Duration::from_micros(150);

/// …and so does this much time after the group's first append (the most a group commit adds to
/// a callback's latency). Longer costs closed-loop clients throughput: all of a group's clients
/// wait for its commit, so lingering after the last of them has sent leaves the sink idle
/// (1 ms took 15 % fewer callbacks per second at 64 connections; `docs/performance.md`).
const LINGER_MAX: std::time::Duration = std::time::Duration::from_micros(500);

impl Appender {
    pub(super) fn run(mut self, rx: mpsc::Receiver<Msg>) {
        // The helper starts with the first group: a log that is only read (`replay`), or a sink
        // stopped before any callback, writes no zeros.
        let mut first_group = true;
        let mut buf = Vec::with_capacity(1 << 20);
        let mut group: Vec<Append> = Vec::new();
        let mut closing = false;
        let mut last_group = 0;
        // The previous group lingered its whole LINGER_MAX, every sleep bringing appends.
        let mut steady = false;
        let mut failing = false;
        while !closing {
            let mut bytes = 0;
            let next = if failing {
                match rx.recv_timeout(PROBE_EVERY) {
                    Ok(msg) => Ok(msg),
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        failing = self.note(failing, &self.probe());
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => Err(mpsc::RecvError),
                }
            } else {
                rx.recv()
            };
            match next {
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
            // Group commit: everything queued meanwhile (while the previous fsync ran). Under
            // load (this group or the previous one holds more than one append) the group then
            // lingers: the appender sleeps a slice at a time and takes what arrived, until a
            // slice brings nothing or LINGER_MAX has passed since the group began. Sleeping
            // instead of waiting on the channel keeps a wake-up (and a context switch) per
            // append off both the appender and the callers: one wake per slice, whatever the
            // rate. With a fixed number of clients all waiting, one empty slice ends the group;
            // when idle (groups of one) nothing lingers. After a group that lingered its whole
            // LINGER_MAX with no empty slice (a steady stream), the next one sleeps the rest of
            // its linger at once: one wake instead of three or four, and the group ends as it
            // would have; if that sleep brings nothing, the next group goes back to slices.
            let started = std::time::Instant::now();
            self.take_queued(&rx, &mut group, &mut bytes, &mut closing);
            if group.len() > 1 || last_group > 1 {
                let mut full = false;
                while !closing && bytes < GROUP_BYTES {
                    let left = LINGER_MAX.saturating_sub(started.elapsed());
                    if left.is_zero() {
                        full = true;
                        break;
                    }
                    std::thread::sleep(if steady { left } else { LINGER_SLICE.min(left) });
                    if self.take_queued(&rx, &mut group, &mut bytes, &mut closing) == 0 {
                        break;
                    }
                }
                steady = full;
            } else {
                steady = false;
            }
            last_group = group.len();
            buf.clear();
            let now = crate::clock::unix_now();
            for a in &group {
                record::encode(&mut buf, now, &a.payload);
            }
            if first_group {
                first_group = false;
                self.prepare();
            }
            let commit = std::time::Instant::now();
            let result = self.write_group(&mut buf);
            self.shared
                .pending_bytes
                .fetch_sub(bytes, Ordering::Relaxed);
            // The disk's free space, once per group: appends are refused before it runs out.
            self.shared.refresh_room();
            match &result {
                Ok(()) => {
                    self.shared.metrics.wal_fsyncs.inc();
                    self.shared
                        .metrics
                        .wal_fsync_duration
                        .observe(commit.elapsed().as_secs_f64());
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
            failing = self.note(failing, &result);
            for a in group.drain(..) {
                let _ = a.done.send(match &result {
                    Ok(()) => Ok(()),
                    Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                });
            }
        }
        // A closed log holds records only: the zero tail goes, and so does the next segment.
        let _ = self.file.set_len(self.offset);
        let _ = self.file.sync_all();
        self.allocated = 0;
        match std::mem::replace(&mut self.prepared, Next::None) {
            Next::None => {}
            Next::Filling(helper) => {
                let _ = helper.join();
                let _ = fs::remove_file(self.prepared_path());
            }
            Next::Ready => {
                let _ = fs::remove_file(self.prepared_path());
            }
        }
        self.prepared_bytes = 0;
        self.publish_reserved();
        tracing::debug!("write-ahead log: appender stopped");
    }

    /// Records whether the log can be written (the fault `/readyz` shows, the `wal_unwritable`
    /// gauge) after a group commit or a probe; returns whether it is failing now.
    fn note(&self, failing: bool, outcome: &io::Result<()>) -> bool {
        match outcome {
            Ok(()) if failing => {
                *self.shared.fault.lock().expect("fault lock") = None;
                self.shared.metrics.wal_unwritable.set(0);
                tracing::warn!("write-ahead log: can be written again, taking callbacks");
                false
            }
            Ok(()) => false,
            Err(e) => {
                let mut fault = self.shared.fault.lock().expect("fault lock");
                if fault.is_none() {
                    tracing::error!(
                        error = %e,
                        "write-ahead log: cannot be written; callbacks get 503 and the sink is not ready until it can"
                    );
                }
                *fault = Some(e.to_string());
                self.shared.metrics.wal_unwritable.set(1);
                true
            }
        }
    }

    /// Fails when the active segment is no longer at its path: deleted (no link left), or its
    /// directory moved or unmounted (nothing at the path). Writes to the open file would still
    /// succeed, but start-up recovery would not find them, so nothing more is acknowledged.
    /// Device and inode are not compared: on some overlay filesystems `stat` and `fstat` of one
    /// file disagree. Two `statx` calls per group that ask for no times ([`links`], [`present`]).
    fn in_place(&self) -> io::Result<()> {
        let path = segment_path(&self.shared.config.dir, self.active);
        let gone = |why: &str| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "the active segment {} {why} (the data directory was moved, deleted or unmounted)",
                    path.display()
                ),
            )
        };
        if links(&self.file)? == 0 {
            return Err(gone("was deleted"));
        }
        if !present(&path)? {
            return Err(gone("is no longer there"));
        }
        Ok(())
    }

    /// Whether the log can be written again, while nothing is sent: a small file beside the
    /// segments is created, synced and removed (a group may have to start a segment there), and
    /// the active segment is in place and synced.
    fn probe(&self) -> io::Result<()> {
        let dir = &self.shared.config.dir;
        let path = dir.join(PROBE);
        let written = File::create(&path)
            .and_then(|mut f| f.write_all(b"probe").and_then(|()| f.sync_all()))
            .and_then(|()| File::open(dir)?.sync_all());
        let _ = fs::remove_file(&path);
        written
            .and_then(|()| self.in_place())
            .and_then(|()| self.file.sync_data())
    }

    /// Moves every message queued now into `group` (up to [`GROUP_BYTES`]); returns how many
    /// appends it took, and notes a close.
    fn take_queued(
        &self,
        rx: &mpsc::Receiver<Msg>,
        group: &mut Vec<Append>,
        bytes: &mut u64,
        closing: &mut bool,
    ) -> usize {
        let mut taken = 0;
        while !*closing && *bytes < GROUP_BYTES {
            match rx.try_recv() {
                Ok(Msg::Append(a)) => {
                    *bytes += a.payload.len() as u64;
                    group.push(a);
                    taken += 1;
                }
                Ok(Msg::Close) => *closing = true,
                Err(_) => break,
            }
        }
        taken
    }

    fn write_group(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        if self.shared.kept_in_the_way(buf.len() as u64)
            && let Err(e) = self.shared.trim_kept(buf.len() as u64)
        {
            tracing::warn!(error = %e, "write-ahead log: could not delete kept segments");
        }
        // Before a rotation too: a log whose segment was deleted does not carry on in a new one
        // as if nothing was lost (it stays failing until restarted).
        self.in_place()?;
        // A segment that grows (the first of a run, or one started while the helper was still
        // filling) gives way as soon as a filled one is ready: commits into blocks the file has
        // already cost less, and a first segment would otherwise grow to its full size.
        if self.offset > 0
            && (self.offset + buf.len() as u64 > self.shared.config.segment_bytes
                || self.allocated == 0 && self.prepared_ready())
        {
            self.rotate()?;
        }
        // In a segment filled ahead of time, the group's last page is written whole: the zeros
        // after its last record are what the file holds there already, and a page written whole
        // is not read from the disk first (the filler writes around the page cache, so a page
        // written in part would be: one read per group commit).
        let records = buf.len();
        let end = self.offset + records as u64;
        if end < self.allocated {
            let page_end = end
                .next_multiple_of(DIRECT_ALIGN as u64)
                .min(self.allocated);
            buf.resize(records + (page_end - end) as usize, 0);
        }
        let written = self
            .file
            .write_all_at(buf, self.offset)
            .and_then(|()| self.file.sync_data());
        buf.truncate(records);
        if let Err(e) = written {
            // Leave no partial group behind: cut back to the last durable end.
            let _ = self.file.set_len(self.offset);
            self.allocated = 0;
            self.publish_reserved();
            return Err(e);
        }
        self.offset += records as u64;
        self.shared.add_disk_bytes(records as u64);
        self.publish_reserved();
        Ok(())
    }

    /// Publishes the disk held by zeros: the active segment's rest and the next segment's file.
    fn publish_reserved(&self) {
        let rest = self.allocated.saturating_sub(self.offset);
        self.shared
            .reserved_bytes
            .store(rest + self.prepared_bytes, Ordering::Relaxed);
    }

    fn rotate(&mut self) -> io::Result<()> {
        // The old segment ends at its last record before the new one is started (readers read a
        // finished segment to its end).
        self.file.set_len(self.offset)?;
        self.file.sync_all()?;
        let next = self.active + 1;
        let path = segment_path(&self.shared.config.dir, next);
        self.allocated = 0;
        let (file, allocated) = match self.take_prepared() {
            Some(prepared) => {
                fs::rename(prepared, &path)?;
                let file = OpenOptions::new().write(true).open(&path)?;
                let len = file.metadata()?.len();
                (file, len)
            }
            None => {
                let file = OpenOptions::new()
                    .create(true)
                    .write(true)
                    .truncate(false)
                    .open(&path)?;
                (file, 0)
            }
        };
        File::open(&self.shared.config.dir)?.sync_all()?;
        self.file = file;
        self.active = next;
        self.offset = 0;
        self.allocated = allocated;
        self.prepared_bytes = 0;
        self.prepare();
        self.publish_reserved();
        Ok(())
    }

    fn prepared_path(&self) -> PathBuf {
        self.shared.config.dir.join(PREPARED)
    }

    /// Starts filling the next segment, unless a helper is at it already.
    fn prepare(&mut self) {
        let config = &self.shared.config;
        if !matches!(self.prepared, Next::None)
            || config.segment_bytes.saturating_mul(PREPARE_MIN_SEGMENTS) > self.shared.room()
        {
            return;
        }
        let path = self.prepared_path();
        let bytes = config.segment_bytes;
        let spawned = std::thread::Builder::new()
            .name("wal-prepare".into())
            .spawn(move || {
                let result = fill_with_zeros(&path, bytes);
                if result.is_err() {
                    let _ = fs::remove_file(&path);
                }
                result
            });
        if let Ok(helper) = spawned {
            self.prepared = Next::Filling(helper);
            self.prepared_bytes = bytes;
        }
        self.publish_reserved();
    }

    /// Whether the next segment is filled and durable. A helper that has finished is joined
    /// here; one that failed leaves no next segment (the next one grows as it is written, and the
    /// rotation after it tries again).
    fn prepared_ready(&mut self) -> bool {
        if matches!(&self.prepared, Next::Filling(helper) if helper.is_finished()) {
            if let Next::Filling(helper) = std::mem::replace(&mut self.prepared, Next::None) {
                match helper.join() {
                    Ok(Ok(())) => self.prepared = Next::Ready,
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "write-ahead log: could not prepare the next segment");
                        self.prepared_bytes = 0;
                    }
                    Err(_) => self.prepared_bytes = 0,
                }
            }
            self.publish_reserved();
        }
        matches!(self.prepared, Next::Ready)
    }

    /// The prepared next segment, if it is ready; `None` (the next segment grows as it is
    /// written) while the helper still runs or when it failed.
    fn take_prepared(&mut self) -> Option<PathBuf> {
        if !self.prepared_ready() {
            return None;
        }
        self.prepared = Next::None;
        Some(self.prepared_path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Filled to the byte, zeros only, over an older file: on the disk (direct writes, and a
    /// tail less than a block through the cache) and on `tmpfs` (direct or not, as it takes).
    #[test]
    fn zeros_are_filled_to_the_byte_on_disk_and_in_memory() {
        let disk = tempfile::tempdir().unwrap();
        let mut dirs = vec![disk];
        if let Ok(shm) = tempfile::tempdir_in("/dev/shm") {
            dirs.push(shm);
        }
        for dir in &dirs {
            let path = dir.path().join(PREPARED);
            fs::write(&path, vec![7u8; 5 << 20]).unwrap();
            for bytes in [3 * (1 << 20) + 4096 + 123, 2 << 20, 100] {
                fill_with_zeros(&path, bytes).unwrap();
                let got = fs::read(&path).unwrap();
                assert_eq!(got.len() as u64, bytes, "{}", dir.path().display());
                assert!(got.iter().all(|&b| b == 0), "{}", dir.path().display());
            }
        }
    }

    #[test]
    fn the_segment_check_sees_links_and_paths_come_and_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wal");
        let file = File::create(&path).unwrap();
        assert_eq!(links(&file).unwrap(), 1);
        assert!(present(&path).unwrap());
        fs::hard_link(&path, dir.path().join("b.wal")).unwrap();
        assert_eq!(links(&file).unwrap(), 2);
        fs::remove_file(&path).unwrap();
        fs::remove_file(dir.path().join("b.wal")).unwrap();
        assert_eq!(links(&file).unwrap(), 0);
        assert!(!present(&path).unwrap());
        assert!(!present(&dir.path().join("gone").join("a.wal")).unwrap());
    }
}
