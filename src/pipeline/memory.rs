//! The in-memory queue: bounded in rows and bytes, so memory stays flat under any overload.
//! Full → the caller answers 503 and Adjust retries later. What it holds is lost if the process
//! dies (README "Durability").

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::queue::{Consumer, Producer, Usage};
use super::{Batch, Limits, Refusal};
use crate::metrics::Metrics;

pub struct MemoryQueue {
    inner: Mutex<Inner>,
    notify: Notify,
    max_rows: usize,
    max_bytes: usize,
    metrics: Metrics,
}

struct Inner {
    rows: VecDeque<Vec<u8>>,
    bytes: usize,
    closed: bool,
}

impl MemoryQueue {
    pub fn new(max_rows: usize, max_bytes: usize, metrics: Metrics) -> Self {
        metrics.queue_capacity_rows.set(max_rows as i64);
        metrics.queue_capacity_bytes.set(max_bytes as i64);
        MemoryQueue {
            inner: Mutex::new(Inner {
                rows: VecDeque::new(),
                bytes: 0,
                closed: false,
            }),
            notify: Notify::new(),
            max_rows,
            max_bytes,
            metrics,
        }
    }

    /// Accepts one encoded row, or refuses it when full or closed.
    pub fn push(&self, row: Vec<u8>) -> Result<(), Refusal> {
        let len = row.len();
        {
            let mut inner = self.inner.lock().expect("queue lock");
            if inner.closed {
                return Err(Refusal::ShuttingDown);
            }
            // One oversized row is still accepted into an empty queue, so nothing is unstorable.
            if !inner.rows.is_empty()
                && (inner.rows.len() >= self.max_rows || inner.bytes + len > self.max_bytes)
            {
                return Err(Refusal::Full);
            }
            inner.rows.push_back(row);
            inner.bytes += len;
            self.metrics.queue_rows.set(inner.rows.len() as i64);
            self.metrics.queue_bytes.set(inner.bytes as i64);
        }
        self.metrics.queue_rows_pushed.inc();
        self.metrics.queue_bytes_pushed.inc_by(len as u64);
        self.notify.notify_one();
        Ok(())
    }

    /// Moves queued rows into `batch` until it reaches the limits. Returns how many moved.
    pub fn fill(&self, batch: &mut Batch, limits: &Limits) -> usize {
        let mut inner = self.inner.lock().expect("queue lock");
        let mut moved = 0;
        let mut bytes = 0;
        while batch.rows() < limits.max_rows && batch.len_bytes() < limits.max_bytes {
            let Some(row) = inner.rows.pop_front() else {
                break;
            };
            bytes += row.len();
            batch.push(&row);
            moved += 1;
        }
        inner.bytes -= bytes;
        self.metrics.queue_rows.set(inner.rows.len() as i64);
        self.metrics.queue_bytes.set(inner.bytes as i64);
        drop(inner);
        self.metrics.queue_rows_popped.inc_by(moved as u64);
        self.metrics.queue_bytes_popped.inc_by(bytes as u64);
        moved
    }

    /// Waits until a row may have arrived or the queue was closed.
    pub async fn wait(&self) {
        self.notify.notified().await
    }

    /// Refuses further pushes; what is queued is still delivered.
    pub fn close(&self) {
        self.inner.lock().expect("queue lock").closed = true;
        self.notify.notify_one();
    }

    /// Closed and nothing left.
    pub fn is_finished(&self) -> bool {
        let inner = self.inner.lock().expect("queue lock");
        inner.closed && inner.rows.is_empty()
    }

    pub fn len(&self) -> usize {
        self.inner.lock().expect("queue lock").rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Producer for Arc<MemoryQueue> {
    async fn accept(&self, row: Vec<u8>) -> Result<(), Refusal> {
        self.push(row)
    }

    fn usage(&self) -> Usage {
        let inner = self.inner.lock().expect("queue lock");
        Usage {
            what: "memory queue",
            rows: Some((inner.rows.len() as u64, self.max_rows as u64)),
            bytes: inner.bytes as u64,
            capacity_bytes: self.max_bytes as u64,
            fault: None,
        }
    }

    fn close(&self) {
        MemoryQueue::close(self)
    }
}

impl Consumer for Arc<MemoryQueue> {
    fn fill(&mut self, batch: &mut Batch, limits: &Limits) -> std::io::Result<usize> {
        Ok(MemoryQueue::fill(self, batch, limits))
    }

    async fn wait(&mut self) {
        MemoryQueue::wait(self).await
    }

    fn is_finished(&self) -> bool {
        MemoryQueue::is_finished(self)
    }

    fn begin(&mut self, _batch: &Batch) -> std::io::Result<()> {
        Ok(())
    }

    fn ack(&mut self, _batch: &Batch) -> std::io::Result<()> {
        Ok(())
    }

    fn is_durable(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits(rows: usize) -> Limits {
        Limits {
            max_rows: rows,
            max_bytes: 1 << 20,
            max_age: Duration::from_secs(1),
        }
    }

    #[test]
    fn bounded_in_rows_and_bytes() {
        let q = MemoryQueue::new(2, 10, Metrics::new());
        q.push(vec![0; 4]).unwrap();
        q.push(vec![0; 4]).unwrap();
        assert_eq!(q.push(vec![0; 1]), Err(Refusal::Full));
        let mut b = Batch::default();
        assert_eq!(q.fill(&mut b, &limits(1)), 1);
        assert_eq!(
            q.push(vec![0; 7]),
            Err(Refusal::Full),
            "4 + 7 bytes exceed 10"
        );
        q.push(vec![0; 6]).unwrap();
    }

    #[test]
    fn oversized_row_fits_an_empty_queue_and_close_refuses() {
        let q = MemoryQueue::new(10, 10, Metrics::new());
        q.push(vec![0; 100]).unwrap();
        let mut b = Batch::default();
        q.fill(&mut b, &limits(10));
        assert_eq!(b.rows(), 1);
        q.close();
        assert_eq!(q.push(vec![1]), Err(Refusal::ShuttingDown));
        assert!(q.is_finished());
    }
}
