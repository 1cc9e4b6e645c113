//! The housekeeping lease (`<table>_lease`, [`crate::clickhouse::schema::lease`]): of several
//! sinks on one table, one at a time runs the erasure and retention rounds.
//!
//! Each tick a sink reads the claims that have not expired. The earliest one holds the lease:
//! if it is this sink's, it renews it for three ticks; if it is another's, this sink does
//! nothing this tick. When no claim is live, the sink inserts one, waits a moment (on a cluster,
//! for the other replicas to have it) and reads again: of sinks that claimed at once, every one
//! finds the same earliest claim, and only its holder goes on. A holder that stops is replaced
//! once its claim expires.

use std::time::Duration;

use crate::clickhouse::schema::{Target, lease as sql};
use crate::sink::{Admin, StoreError};

/// What a sink does about the lease, given the live claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// This sink holds it: renew the claim taken at `taken_at`.
    Renew { taken_at: u32 },
    /// Another sink holds it.
    Yield { holder: String },
    /// Nobody holds it: claim it.
    Claim,
}

/// One live claim: holder, taken at, expires at (unix seconds).
pub type Claim = (String, u32, u32);

/// The step for sink `me`, given the live claims in deciding order (earliest first, ties by
/// holder).
pub fn decide(live: &[Claim], me: &str) -> Step {
    match live.first() {
        Some((holder, taken_at, _)) if holder == me => Step::Renew {
            taken_at: *taken_at,
        },
        Some((holder, _, _)) => Step::Yield {
            holder: holder.clone(),
        },
        None => Step::Claim,
    }
}

/// How many ticks without the lease table before the rounds run without it (a table of an
/// earlier version, with `--no-migrate`).
const MISSING_TICKS: u32 = 3;

/// This sink's side of the lease.
pub struct Lease {
    target: Target,
    /// This sink's name in the table: host, process and a random part.
    me: String,
    /// How long a claim lives unrenewed.
    ttl: Duration,
    /// How long to wait after claiming before reading the claims again.
    settle: Duration,
    /// Who held it at the last tick (to log changes only).
    last: Option<String>,
    /// Ticks the lease table was missing in a row.
    missing: u32,
}

impl Lease {
    /// The lease of `target`'s table, renewed every `tick`.
    pub fn new(target: Target, tick: Duration) -> Self {
        Self::named(target, tick, holder_name())
    }

    /// [`new`](Self::new) with the name this sink goes by in the table.
    pub fn named(target: Target, tick: Duration, me: String) -> Self {
        Lease {
            target,
            me,
            ttl: (tick * 3).max(Duration::from_secs(10)),
            settle: (tick / 2).min(Duration::from_secs(2)),
            last: None,
            missing: 0,
        }
    }

    /// This sink's name in the lease table.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// Whether this sink holds the lease for this tick (renewing or taking it as needed).
    pub async fn hold<A: Admin>(&mut self, admin: &A) -> Result<bool, StoreError> {
        let live = match self.live(admin).await {
            Ok(live) => {
                self.missing = 0;
                live
            }
            Err(e) if e.code == Some(60) => {
                // No lease table: not created yet (delivery migrates), or an earlier schema.
                self.missing += 1;
                if self.missing == MISSING_TICKS {
                    tracing::warn!(
                        table = %sql::lease_table(&self.target),
                        "the housekeeping lease table does not exist (run `adjust-sink migrate`); \
                         running housekeeping without it, so every sink on this table runs it"
                    );
                }
                return Ok(self.missing >= MISSING_TICKS);
            }
            Err(e) => return Err(e),
        };
        let ttl = self.ttl.as_secs() as u32;
        let held = match decide(&live, &self.me) {
            Step::Renew { taken_at } => {
                admin
                    .execute(&sql::renew_sql(&self.target, &self.me, taken_at, ttl))
                    .await?;
                true
            }
            Step::Yield { holder } => {
                self.note(Some(holder));
                return Ok(false);
            }
            Step::Claim => {
                admin
                    .execute(&sql::claim_sql(&self.target, &self.me, ttl))
                    .await?;
                tokio::time::sleep(self.settle).await;
                match decide(&self.live(admin).await?, &self.me) {
                    Step::Renew { .. } => true,
                    Step::Yield { holder } => {
                        self.note(Some(holder));
                        return Ok(false);
                    }
                    // Not visible yet (a replica behind): try again next tick.
                    Step::Claim => {
                        self.note(None);
                        return Ok(false);
                    }
                }
            }
        };
        self.note(Some(self.me.clone()));
        Ok(held)
    }

    async fn live<A: Admin>(&self, admin: &A) -> Result<Vec<Claim>, StoreError> {
        Ok(admin
            .select(&sql::live_sql(&self.target))
            .await?
            .into_iter()
            .filter_map(|r| match &r[..] {
                [holder, taken, until] => Some((
                    super::unescape(holder),
                    taken.parse().ok()?,
                    until.parse().ok()?,
                )),
                _ => None,
            })
            .collect())
    }

    /// Logs a change of holder.
    fn note(&mut self, holder: Option<String>) {
        if holder == self.last {
            return;
        }
        match &holder {
            Some(h) if *h == self.me => {
                tracing::info!(holder = %h, "this sink runs housekeeping now (holds the lease)")
            }
            Some(h) => tracing::info!(holder = %h, "another sink runs housekeeping"),
            None => {}
        }
        self.last = holder;
    }
}

/// `<host>:<pid>:<random>`: unique among the sinks on a table, and readable in the table.
fn holder_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "sink".into());
    format!(
        "{host}:{}:{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

#[cfg(test)]
mod tests;
