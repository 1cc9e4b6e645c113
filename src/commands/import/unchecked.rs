//! Rows an import inserted that are not checked yet against the erasures carried out
//! (docs/privacy.md): an export holds every activity, those of devices erased since included.

use std::sync::atomic::{AtomicU32, Ordering};

use super::Destination;
use crate::clickhouse::housekeeping::{again, redacted};
use crate::clickhouse::schema::Target;
use crate::sink::{Admin, Store};

/// The time (unix seconds) since which rows were inserted that may bring back rows of an erased
/// device and are not checked yet (docs/privacy.md): an export holds every activity, those of
/// devices erased since included.
#[derive(Debug, Default)]
pub struct Unchecked(AtomicU32);

impl Unchecked {
    /// Rows received at or after `since` (unix seconds, > 0) are about to be inserted.
    pub fn owe(&self, since: u32) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some(if t == 0 { since } else { t.min(since) })
            });
    }
}

impl<S: Store + Admin> Destination<'_, S> {
    /// Checks the rows inserted since [`Unchecked`] was last cleared against the erasures
    /// carried out in `target`'s table (docs/privacy.md), once; `what` names the inserter.
    pub async fn check_erasures(&self, target: &Target, what: &str) -> anyhow::Result<()> {
        let since = self.unchecked.0.load(Ordering::Relaxed);
        if since == 0 {
            return Ok(());
        }
        again::after(self.deliverer.store(), target, since, what, self.metrics)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "checking that the rows {what} inserted brought back no row of an erased device: {}",
                    redacted(&e)
                )
            })?;
        let _ = self
            .unchecked
            .0
            .compare_exchange(since, 0, Ordering::Relaxed, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earliest_time_owed_is_kept() {
        let u = Unchecked::default();
        assert_eq!(u.0.load(Ordering::Relaxed), 0, "nothing owed");
        u.owe(200);
        u.owe(300);
        assert_eq!(u.0.load(Ordering::Relaxed), 200);
        u.owe(100);
        assert_eq!(u.0.load(Ordering::Relaxed), 100);
    }
}
