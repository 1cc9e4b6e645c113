//! One erasure round: refuse what cannot be a device, then take the oldest pending requests
//! that fit one query, and either mark them done (no row of them is left in the callbacks or
//! rejects table, on any shard) or start one `ALTER TABLE … DELETE` per table that still has
//! some (unless a mutation of those tables is still running on any shard).
//!
//! A request whose queries fail on their own (found by halving the round) is set aside and
//! tried again after a backoff that doubles up to an hour; the others go on meanwhile. Nothing
//! logged names an identifier: a request shows as its kind and a short hash.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::{count, redacted, unescape};
use crate::clickhouse::schema::Target;
use crate::clickhouse::schema::erasure::{self as sql, Request};
use crate::metrics::{ErasureRefusal, Metrics};
use crate::sink::classify::{ErrorClass, is_privilege_code};
use crate::sink::{Admin, StoreError};

/// How many pending requests a round reads (the oldest).
pub const READ: usize = 10_000;

/// The longest condition a round puts in one query, in characters: well under ClickHouse's
/// default `max_query_size` (256 KiB), which no round may exceed whatever the requests.
pub const BUDGET: usize = 100_000;

/// The longest a set-aside request waits before its next try.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// What a round did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Round {
    /// Nothing pending (or only requests set aside).
    Idle,
    /// These many requests were marked done: no row of them is left.
    Done(usize),
    /// Rows are left and a mutation of the tables is still running: wait for it.
    Waiting(usize),
    /// Mutations started on these tables for this many requests.
    Started(Vec<String>, usize),
    /// These many requests failed on their own and were set aside.
    SetAside(usize),
}

/// Erasure's memory between rounds (none of it needed for correctness: requests live in
/// `<table>_erasures`).
pub struct Eraser {
    target: Target,
    /// The first backoff of a set-aside request.
    interval: Duration,
    budget: usize,
    /// Requests seen pending (each counted once in `erasures_requested_total`).
    seen: HashSet<Request>,
    /// Set-aside requests: when to try again (unix seconds), and how often they failed.
    set_aside: HashMap<Request, (u32, u32)>,
}

impl Eraser {
    pub fn new(target: Target, interval: Duration) -> Self {
        Self::with_budget(target, interval, BUDGET)
    }

    /// [`new`](Self::new) with another query budget (tests).
    pub fn with_budget(target: Target, interval: Duration, budget: usize) -> Self {
        Eraser {
            target,
            interval,
            budget,
            seen: HashSet::new(),
            set_aside: HashMap::new(),
        }
    }

    /// One round at `now` (unix seconds).
    pub async fn round<A: Admin>(
        &mut self,
        admin: &A,
        metrics: &Metrics,
        now: u32,
    ) -> Result<Round, StoreError> {
        self.refuse(admin, metrics, now).await?;
        let pending = self.pending(admin).await?;
        for r in &pending {
            if self.seen.insert(r.clone()) {
                metrics.erasures_requested.inc();
            }
        }
        metrics.set_oldest_erasure(pending.iter().map(|r| r.requested_at).min());
        metrics.erasures_pending.set(pending.len() as i64);
        // Forget what was done or refused meanwhile.
        self.set_aside.retain(|r, _| pending.contains(r));
        let group = self.group(&pending, now);
        if group.is_empty() {
            return Ok(Round::Idle);
        }
        let left = match self.rows_left(admin, &group).await {
            Ok(left) => left,
            Err(e) if about_the_requests(&e) => {
                return self.isolate(admin, metrics, &group, now, &e).await;
            }
            Err(e) => return Err(e),
        };
        if left == [0, 0] {
            admin
                .execute(&sql::done_sql(&self.target, &group, now, sql::ERASED))
                .await?;
            metrics.erasures_done.inc_by(group.len() as u64);
            for r in &group {
                self.seen.remove(r);
                self.set_aside.remove(r);
            }
            let still = pending.len() - group.len();
            metrics.erasures_pending.set(still as i64);
            metrics.set_oldest_erasure(
                pending
                    .iter()
                    .filter(|r| !group.contains(r))
                    .map(|r| r.requested_at)
                    .min(),
            );
            tracing::info!(
                identifiers = group.len(),
                "erasure done: no row of the devices is left in any table or shard"
            );
            return Ok(Round::Done(group.len()));
        }
        // A mutation still running on the tables (on any shard): let it finish first.
        if count(admin, &sql::running_mutations_sql(&self.target)).await? > 0 {
            return Ok(Round::Waiting(group.len()));
        }
        let [callbacks, rejects] = sql::erased_tables(&self.target);
        let work = [
            (callbacks, left[0], sql::callbacks_predicate(&group)),
            (rejects, left[1], sql::rejects_predicate(&group)),
        ];
        let mut started = Vec::new();
        for (table, rows, predicate) in work {
            if rows == 0 {
                continue;
            }
            let alter = format!(
                "ALTER TABLE {table}{} DELETE WHERE {predicate}",
                self.target.on_cluster()
            );
            match admin.execute(&alter).await {
                Ok(()) => {}
                Err(e) if about_the_requests(&e) && started.is_empty() => {
                    return self.isolate(admin, metrics, &group, now, &e).await;
                }
                Err(e) => return Err(e),
            }
            metrics.erasure_mutations.inc();
            tracing::info!(%table, rows, identifiers = group.len(), "erasure started");
            started.push(table);
        }
        Ok(Round::Started(started, group.len()))
    }

    /// Marks the pending requests no device can have (an identifier longer than any device id,
    /// or a kind this version does not know) refused, inside the server.
    async fn refuse<A: Admin>(
        &self,
        admin: &A,
        metrics: &Metrics,
        now: u32,
    ) -> Result<(), StoreError> {
        let found = admin.select(&sql::refusable_sql(&self.target)).await?;
        let mut total = 0;
        for row in &found {
            let [outcome, n] = &row[..] else { continue };
            let n: u64 = n.parse().unwrap_or(0);
            let reason = if unescape(outcome) == sql::REFUSED_TOO_LONG {
                ErasureRefusal::TooLong
            } else {
                ErasureRefusal::UnknownKind
            };
            metrics.erasures_refused.inc_by(reason, n);
            tracing::warn!(
                requests = n,
                reason = reason.as_str(),
                max_length = sql::MAX_ID_LEN,
                "refused erasure requests no device can have made; marked so in the erasures table"
            );
            total += n;
        }
        if total > 0 {
            admin.execute(&sql::refuse_sql(&self.target, now)).await?;
        }
        Ok(())
    }

    /// The pending requests, oldest first.
    async fn pending<A: Admin>(&self, admin: &A) -> Result<Vec<Request>, StoreError> {
        requests(admin, &sql::pending_sql(&self.target, READ)).await
    }

    /// This round's requests: the oldest pending ones not set aside (a set-aside request whose
    /// time has come goes alone), as many as fit the query budget (at least one).
    fn group(&self, pending: &[Request], now: u32) -> Vec<Request> {
        let due = |r: &Request| self.set_aside.get(r).is_none_or(|(until, _)| *until <= now);
        if let Some(r) = pending
            .iter()
            .find(|r| self.set_aside.contains_key(*r) && due(r))
        {
            return vec![r.clone()];
        }
        let mut group = Vec::new();
        let mut cost = 0;
        for r in pending.iter().filter(|r| !self.set_aside.contains_key(*r)) {
            let c = sql::request_cost(r) + 4;
            if !group.is_empty() && cost + c > self.budget {
                break;
            }
            cost += c;
            group.push(r.clone());
        }
        group
    }

    /// Rows of the group left in the callbacks and rejects tables (on a cluster, on every
    /// shard, through the `Distributed` tables).
    async fn rows_left<A: Admin>(
        &self,
        admin: &A,
        group: &[Request],
    ) -> Result<[u64; 2], StoreError> {
        let [callbacks, rejects] = sql::counted_tables(&self.target);
        let c = count(
            admin,
            &format!(
                "SELECT count() FROM {callbacks} WHERE {}",
                sql::callbacks_predicate(group)
            ),
        )
        .await?;
        let r = count(
            admin,
            &format!(
                "SELECT count() FROM {rejects} WHERE {}",
                sql::rejects_predicate(group)
            ),
        )
        .await?;
        Ok([c, r])
    }

    /// After `error` on the group's queries: finds the requests whose queries fail on their own
    /// (halving the group, with the read-only count queries) and sets them aside; the others
    /// go on at the next round. When no single request fails, the whole group is set aside.
    async fn isolate<A: Admin>(
        &mut self,
        admin: &A,
        metrics: &Metrics,
        group: &[Request],
        now: u32,
        error: &StoreError,
    ) -> Result<Round, StoreError> {
        let mut failing = Vec::new();
        let mut parts: Vec<&[Request]> = vec![group];
        while let Some(part) = parts.pop() {
            match self.rows_left(admin, part).await {
                Ok(_) => {}
                Err(e) if !about_the_requests(&e) => return Err(e),
                Err(_) if part.len() == 1 => failing.push(part[0].clone()),
                Err(_) => {
                    let (a, b) = part.split_at(part.len() / 2);
                    parts.push(b);
                    parts.push(a);
                }
            }
        }
        if failing.is_empty() {
            failing = group.to_vec();
        }
        for r in &failing {
            let failures = self.set_aside.get(r).map_or(0, |(_, n)| *n) + 1;
            let wait = self
                .interval
                .saturating_mul(1 << failures.min(16))
                .min(MAX_BACKOFF);
            self.set_aside.insert(
                r.clone(),
                (now.saturating_add(wait.as_secs() as u32), failures),
            );
            metrics.erasures_failed.inc();
            tracing::warn!(
                request = %fingerprint(r),
                failures,
                retry_in = ?wait,
                error = %redacted(error),
                "an erasure request failed; set aside to try again later, the others go on"
            );
        }
        Ok(Round::SetAside(failing.len()))
    }
}

/// The requests a query reads (kind, identifier, app, time), without those no device can have
/// made (refused by the round), in order, each once.
pub(super) async fn requests<A: Admin>(admin: &A, sql: &str) -> Result<Vec<Request>, StoreError> {
    let mut out: Vec<Request> = admin
        .select(sql)
        .await?
        .into_iter()
        .filter_map(|r| match &r[..] {
            [kind, id, app, at] => Some(Request {
                kind: unescape(kind),
                id: unescape(id),
                app: unescape(app),
                requested_at: at.parse().ok()?,
            }),
            _ => None,
        })
        .filter(|r| r.id.chars().count() <= sql::MAX_ID_LEN)
        .collect();
    out.dedup();
    Ok(out)
}

/// Whether an error is caused by the requests of the query (ClickHouse named an error that is
/// neither the server's state nor the user's rights), not by the server.
fn about_the_requests(e: &StoreError) -> bool {
    e.code.is_some() && e.class != ErrorClass::Transient && !e.code.is_some_and(is_privilege_code)
}

/// How a request shows in the log: its kind and a short hash, never the identifier.
pub fn fingerprint(r: &Request) -> String {
    let h = xxhash_rust::xxh3::xxh3_64(
        format!(
            "{}\u{0}{}\u{0}{}\u{0}{}",
            r.kind, r.id, r.app, r.requested_at
        )
        .as_bytes(),
    );
    format!("{}#{:08x}", r.kind, h as u32)
}

#[cfg(test)]
mod tests;
