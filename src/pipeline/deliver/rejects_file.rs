//! `<data-dir>/rejects.jsonl`: where refused rows go when the rejects table cannot be written.
//! Bounded: its bytes are carved out of the disk budget (see [`share_of_budget`]); a row that
//! does not fit is not written, and delivery keeps it (in the log or the queue) and retries.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::sink::Reject;

/// The part of the disk budget kept for the rejects file: an eighth, at most 512 MiB.
pub fn share_of_budget(disk_budget: u64) -> u64 {
    (disk_budget / 8).min(512 << 20)
}

/// Why a reject was not written to the file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("the rejects file {path} is full ({size} of {max} bytes)")]
    Full { path: String, size: u64, max: u64 },
    #[error("the rejects file {path} cannot be written: {error}")]
    Io { path: String, error: std::io::Error },
}

#[derive(Debug)]
pub struct RejectsFile {
    path: PathBuf,
    max_bytes: u64,
    /// Bytes in the file (read at start, then counted).
    size: AtomicU64,
}

impl RejectsFile {
    pub fn new(path: PathBuf, max_bytes: u64) -> Self {
        let size = std::fs::metadata(&path).map_or(0, |m| m.len());
        RejectsFile {
            path,
            max_bytes,
            size: AtomicU64::new(size),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Relaxed)
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Appends one reject as a JSON line and syncs it, if it fits under the bound.
    pub fn append(&self, r: &Reject) -> Result<(), FileError> {
        let line = serde_json::json!({
            "rejected_at": r.rejected_at,
            "callback_id": r.callback_id.to_string(),
            "error": r.error,
            "row": serde_json::from_str::<serde_json::Value>(&r.row_json).unwrap_or_default(),
        });
        let line = format!("{line}\n");
        let size = self.size();
        if size + line.len() as u64 > self.max_bytes {
            return Err(FileError::Full {
                path: self.path.display().to_string(),
                size,
                max: self.max_bytes,
            });
        }
        let io = |error| FileError::Io {
            path: self.path.display().to_string(),
            error,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        f.write_all(line.as_bytes()).map_err(io)?;
        f.sync_data().map_err(io)?;
        self.size.fetch_add(line.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}
