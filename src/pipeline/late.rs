//! Rows delivered long after their receipt: a backlog held up by a ClickHouse outage, or a log
//! delivered at a restart. `serve` checks the rows received since a while before its previous
//! check against the erasures carried out (docs/privacy.md, "Erased stays erased"); rows that
//! land later than that are reported here, and checked from their receipt on.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::sync::Notify;

use super::Batch;

/// A batch whose oldest row landed this long (seconds) after its receipt is late. Below the
/// overlap of `serve`'s checks (15 minutes), so that no row falls between the two.
pub const LATE_AFTER: u32 = 10 * 60;

/// No late row since the last [`LateRows::take`].
const NONE: u32 = u32::MAX;

/// The earliest receipt (unix seconds) of the late rows landed since they were last taken; shared
/// by the deliverer that notes them and the task that checks them.
#[derive(Debug, Clone)]
pub struct LateRows {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    oldest: AtomicU32,
    landed: Notify,
}

impl Default for LateRows {
    fn default() -> Self {
        LateRows {
            inner: Arc::new(Inner {
                oldest: AtomicU32::new(NONE),
                landed: Notify::new(),
            }),
        }
    }
}

impl LateRows {
    /// Notes `batch`, landed at `now` (unix seconds), if its oldest row is late. Returns that
    /// row's receipt then.
    pub fn landed(&self, batch: &Batch, now: u32) -> Option<u32> {
        let oldest = (0..batch.rows())
            .filter_map(|i| crate::row::received_at_of(batch.row(i)))
            .min()?;
        if now.saturating_sub(oldest) < LATE_AFTER {
            return None;
        }
        self.put_back(oldest);
        Some(oldest)
    }

    /// Notes rows received at `since` as not checked yet (a check of them that failed).
    pub fn put_back(&self, since: u32) {
        self.inner.oldest.fetch_min(since, Ordering::Relaxed);
        self.inner.landed.notify_one();
    }

    /// The earliest receipt of the late rows noted since the last call, if any.
    pub fn take(&self) -> Option<u32> {
        match self.inner.oldest.swap(NONE, Ordering::Relaxed) {
            NONE => None,
            t => Some(t),
        }
    }

    /// Waits until a late row is noted (at once if one was since the last [`take`](Self::take)).
    pub async fn noted(&self) {
        loop {
            if self.inner.oldest.load(Ordering::Relaxed) != NONE {
                return;
            }
            self.inner.landed.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(received: &[u32]) -> Batch {
        let mut b = Batch::default();
        for &t in received {
            let mut row = t.to_le_bytes().to_vec();
            row.extend_from_slice(&[0, 0]);
            b.push(&row);
        }
        b
    }

    #[test]
    fn only_batches_landed_late_are_noted_with_their_oldest_row() {
        let late = LateRows::default();
        let now = 1_800_000_000;
        assert_eq!(
            late.landed(&batch(&[now - 5, now - LATE_AFTER + 1]), now),
            None
        );
        assert_eq!(late.landed(&Batch::default(), now), None);
        assert_eq!(late.take(), None);
        assert_eq!(
            late.landed(&batch(&[now - 5, now - 3_600, now - LATE_AFTER]), now),
            Some(now - 3_600)
        );
        assert_eq!(late.landed(&batch(&[now - 1_200]), now), Some(now - 1_200));
        assert_eq!(late.take(), Some(now - 3_600));
        assert_eq!(late.take(), None);
        late.put_back(now - 60);
        assert_eq!(late.take(), Some(now - 60));
    }

    #[tokio::test]
    async fn waiting_ends_when_a_late_row_is_noted() {
        let late = LateRows::default();
        let now = 1_800_000_000;
        late.landed(&batch(&[now - 7_200]), now);
        // Noted before the wait: it ends at once.
        tokio::time::timeout(std::time::Duration::from_secs(5), late.noted())
            .await
            .unwrap();
        assert_eq!(late.take(), Some(now - 7_200));
        let waiting = tokio::spawn({
            let late = late.clone();
            async move { late.noted().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        late.landed(&batch(&[now - 900]), now);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap();
    }
}
