//! The appender thread: owns the active segment, writes every append that arrived while the
//! previous fsync ran in one go, fsyncs once (group commit), answers them all and publishes the
//! new durable end.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
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
}

/// Group commit: how long to wait for the next callback before writing, and in all.
const COMMIT_GAP: std::time::Duration = std::time::Duration::from_micros(200);
const COMMIT_MAX_WAIT: std::time::Duration = std::time::Duration::from_millis(2);

/// Upper bound of one group commit's write.
const GROUP_BYTES: u64 = 16 << 20;

impl Appender {
    pub(super) fn run(mut self, rx: mpsc::Receiver<Msg>) {
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
            let now = crate::clock::unix_now();
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
