//! Where things are in the log, and the small files that hold positions: segment names, the
//! `ack` file (everything before it is acknowledged), the `inflight` file (the batch being
//! inserted), the log's `id`, and the `lock` that keeps a second process out.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

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

/// Replaces `path` atomically with `content`, durably.
pub(crate) fn write_atomic(path: &Path, content: &str) -> io::Result<()> {
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

/// Takes the log's lock file, or says which directory is in use.
pub(crate) fn lock_dir(dir: &Path) -> io::Result<File> {
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

/// The log's identity: 64 random bits created with the log and kept in `id`, so that the
/// deduplication tokens of two logs (two sinks, or a data directory replaced) never collide.
pub(crate) fn log_id(dir: &Path) -> io::Result<u64> {
    let path = dir.join("id");
    match fs::read_to_string(&path) {
        Ok(s) => u64::from_str_radix(s.trim(), 16).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} does not hold a log id (16 hex digits)", path.display()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let id: u64 = rand::random();
            write_atomic(&path, &format!("{id:016x}\n"))?;
            Ok(id)
        }
        Err(e) => Err(e),
    }
}

/// Records the range of the batch about to be inserted.
pub(crate) fn write_inflight(dir: &Path, start: Position, end: Position) -> io::Result<()> {
    write_atomic(
        &dir.join("inflight"),
        &format!(
            "{} {} {} {}\n",
            start.segment, start.offset, end.segment, end.offset
        ),
    )
}

/// Records that everything before `upto` is acknowledged, and that no batch is in flight.
pub(crate) fn write_ack(dir: &Path, upto: Position) -> io::Result<()> {
    write_atomic(
        &dir.join("ack"),
        &format!("{} {}\n", upto.segment, upto.offset),
    )?;
    match fs::remove_file(dir.join("inflight")) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
