//! Shutdown state shared by the HTTP handlers and delivery: running, then stopping with a deadline.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// Cheap to clone; every clone sees the same state.
#[derive(Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<Option<Instant>>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        Shutdown {
            tx: Arc::new(watch::channel(None).0),
        }
    }

    /// Starts stopping: delivery may keep trying until `grace` has passed.
    pub fn begin(&self, grace: Duration) {
        let deadline = Instant::now() + grace;
        self.tx.send_if_modified(|d| {
            if d.is_none() {
                *d = Some(deadline);
                true
            } else {
                false
            }
        });
    }

    pub fn is_stopping(&self) -> bool {
        self.tx.borrow().is_some()
    }

    /// Whether the stop deadline has passed.
    pub fn deadline_passed(&self) -> bool {
        matches!(*self.tx.borrow(), Some(d) if Instant::now() >= d)
    }

    /// Resolves when the stop deadline passes (never while running).
    pub async fn deadline(&self) {
        while self.sleep(Duration::from_secs(3600)).await {}
    }

    /// Waits `d` (between two rounds of some work); `false` as soon as stopping begins.
    pub async fn pause(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        while !self.is_stopping() {
            let now = Instant::now();
            if now >= until {
                return true;
            }
            tokio::time::sleep((until - now).min(Duration::from_millis(200))).await;
        }
        false
    }

    /// Sleeps for `d`, or until the stop deadline, whichever comes first. Returns `false` when
    /// the deadline cut the sleep short.
    pub async fn sleep(&self, d: Duration) -> bool {
        let mut rx = self.tx.subscribe();
        let until = Instant::now() + d;
        loop {
            let deadline = *rx.borrow_and_update();
            let wake = match deadline {
                Some(dl) if dl <= until => dl,
                _ => until,
            };
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => return wake == until && !self.deadline_passed(),
                changed = rx.changed() => if changed.is_err() {
                    tokio::time::sleep_until(until).await;
                    return true;
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn sleep_is_cut_by_the_deadline() {
        let s = Shutdown::new();
        assert!(s.sleep(Duration::from_secs(1)).await);
        let s2 = s.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            s2.begin(Duration::from_secs(3));
        });
        let start = Instant::now();
        assert!(!s.sleep(Duration::from_secs(60)).await);
        assert_eq!(start.elapsed().as_secs(), 5);
        assert!(s.deadline_passed());
    }
}
