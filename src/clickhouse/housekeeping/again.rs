//! Erased stays erased (docs/privacy.md): once `replay`, `import` or a round of the export
//! follower has inserted rows, the requests carried out are checked against the rows received
//! since it started. A request whose device has rows again from before it (a replayed callback,
//! an activity of an export) is made again, pending, and the housekeeping rounds of `serve`
//! erase the rows as they erase any request's.
//!
//! The check reads requests and counts rows inside the server; it sends no identifier but
//! those it reads back, and logs none.

use std::collections::HashSet;
use std::time::Duration;

use super::erasure::{BUDGET, READ, requests};
use crate::clickhouse::schema::Target;
use crate::clickhouse::schema::erasure::{self as sql, Request, again};
use crate::metrics::Metrics;
use crate::pipeline::LateRows;
use crate::sink::{Admin, StoreError};

/// What a check found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// Requests carried out, checked.
    pub erased: usize,
    /// Requests made again: rows of their devices came back.
    pub again: usize,
}

/// Checks the requests carried out that were made at or after `requested_since` against the
/// rows received at or after `received_since` (unix seconds), and makes those whose rows came
/// back again, at `now`. A table without erasures, or with an erasures table of an earlier
/// version (an older schema kept with `--no-migrate`), has nothing to check.
pub async fn check<A: Admin>(
    admin: &A,
    target: &Target,
    received_since: u32,
    requested_since: u32,
    now: u32,
) -> Result<Checked, StoreError> {
    let pending = match requests(admin, &sql::pending_sql(target, READ)).await {
        Ok(p) => p,
        Err(e) if matches!(e.code, Some(60 | 81)) => return Ok(Checked::default()),
        Err(e) => return Err(e),
    };
    let pending: HashSet<(String, String, String)> = pending.into_iter().map(key).collect();
    let mut out = Checked::default();
    let mut made_again: Vec<Request> = Vec::new();
    let mut offset = 0;
    loop {
        let read = again::erased_sql(target, requested_since, offset, READ);
        let page = match requests(admin, &read).await {
            Ok(page) => page,
            // An erasures table of an earlier version, kept with --no-migrate, records no
            // outcome (nor can the rounds mark requests done in it): `migrate` brings it up to
            // date.
            Err(e) if e.code == Some(47) && offset == 0 => return Ok(Checked::default()),
            Err(e) => return Err(e),
        };
        out.erased += page.len();
        for chunk in queries(&page) {
            let counts = admin
                .select(&again::returned_sql(target, chunk, received_since))
                .await?;
            let counts = counts.first().map(Vec::as_slice).unwrap_or(&[]);
            for (r, n) in chunk.iter().zip(counts) {
                if n.parse::<u64>().unwrap_or(0) > 0 {
                    made_again.push(r.clone());
                }
            }
        }
        if page.len() < READ {
            break;
        }
        offset += page.len();
    }
    // One new request per identifier and app, unless one is pending already.
    let mut seen = HashSet::new();
    made_again.retain(|r| {
        let k = key(r.clone());
        !pending.contains(&k) && seen.insert(k)
    });
    for chunk in made_again.chunks(1_000) {
        admin.execute(&again::again_sql(target, chunk, now)).await?;
    }
    out.again = made_again.len();
    Ok(out)
}

/// [`check`] after `what` ("replay", "import", …) inserted rows received at or after
/// `received_since`, against the requests that can have rows among them (made at or after the
/// earliest of those rows); counts and logs what it found (counts only).
pub async fn after<A: Admin>(
    admin: &A,
    target: &Target,
    received_since: u32,
    what: &str,
    metrics: &Metrics,
) -> Result<Checked, StoreError> {
    let earliest = admin
        .select(&again::earliest_sql(target, received_since))
        .await?;
    let (requested_since, rows) = match earliest.first().map(Vec::as_slice) {
        Some([t, n]) => (t.parse().unwrap_or(0), n.parse::<u64>().unwrap_or(1)),
        _ => (0, 1),
    };
    if rows == 0 {
        return Ok(Checked::default());
    }
    let now = crate::clock::unix_now();
    let checked = check(admin, target, received_since, requested_since, now).await?;
    metrics
        .erasures_requested_again
        .inc_by(checked.again as u64);
    if checked.again > 0 {
        tracing::warn!(
            requests = checked.again,
            of_erased = checked.erased,
            "{what} brought back rows of erased devices (from before their requests): their erasure is requested again, and serve's housekeeping carries it out"
        );
    } else if checked.erased > 0 {
        tracing::info!(
            erased = checked.erased,
            "{what}: no row of an erased device came back"
        );
    }
    Ok(checked)
}

/// A backlog lands as many batches: the check of late rows waits until none has landed for this
/// long ...
const LATE_QUIET: Duration = Duration::from_secs(30);

/// ... or this long after the first, so that a long backlog is checked as it drains.
const LATE_GATHER: Duration = Duration::from_secs(600);

/// How soon a failed check of late rows is tried again.
const LATE_RETRY: Duration = Duration::from_secs(60);

/// Checks the rows this sink's deliverer landed long after their receipt (a backlog after an
/// outage, a log delivered at a restart), which `serve`'s hourly check may have passed over,
/// against the requests carried out; until the task is dropped. Runs on every sink, whether it
/// holds the lease or not: the sink that delivered them is the one that knows.
pub async fn watch_late<A: Admin>(admin: &A, target: &Target, late: &LateRows, metrics: &Metrics) {
    loop {
        late.noted().await;
        let first = tokio::time::Instant::now();
        let mut since = u32::MAX;
        loop {
            if let Some(t) = late.take() {
                since = since.min(t);
            }
            if first.elapsed() >= LATE_GATHER
                || tokio::time::timeout(LATE_QUIET, late.noted())
                    .await
                    .is_err()
            {
                break;
            }
        }
        if let Some(t) = late.take() {
            since = since.min(t);
        }
        tracing::info!(
            minutes_after_receipt = crate::clock::unix_now().saturating_sub(since) / 60,
            "rows landed long after their receipt: checking them for rows of erased devices"
        );
        if let Err(e) = after(admin, target, since, "a delivery held up", metrics).await {
            tracing::warn!(error = %super::redacted(&e), "checking rows that landed late for rows of erased devices failed; trying again in a minute");
            late.put_back(since);
            tokio::time::sleep(LATE_RETRY).await;
        }
    }
}

fn key(r: Request) -> (String, String, String) {
    (r.kind, r.id, r.app)
}

/// The queries a page of requests takes: consecutive requests within the query budget.
fn queries(page: &[Request]) -> Vec<&[Request]> {
    let mut out = Vec::new();
    let (mut start, mut cost) = (0, 0);
    for (i, r) in page.iter().enumerate() {
        let c = again::request_cost(r);
        if i > start && cost + c > BUDGET {
            out.push(&page[start..i]);
            (start, cost) = (i, 0);
        }
        cost += c;
    }
    if start < page.len() {
        out.push(&page[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::twin::TwinStore;

    fn row(r: &Request) -> Vec<String> {
        vec![
            r.kind.clone(),
            r.id.clone(),
            r.app.clone(),
            r.requested_at.to_string(),
        ]
    }

    /// A server with `erased` requests carried out, `pending` ones, and rows back for the
    /// identifiers in `back`.
    fn server(
        erased: Vec<Request>,
        pending: Vec<Request>,
        back: &'static [&'static str],
    ) -> TwinStore {
        TwinStore::scripted(move |q, _| {
            // The earliest row received since the time asked: that time.
            if q.starts_with("SELECT toUInt32(min(") {
                let since = q.rsplit("toDateTime(").next()?.split(',').next()?;
                return Some(vec![vec![since.to_string(), "1".to_string()]]);
            }
            if q.contains("HAVING max(done_at) = 0") {
                return Some(pending.iter().map(row).collect());
            }
            if q.contains("HAVING argMax(outcome, done_at) = 'erased'") {
                let from = if q.ends_with(&format!("LIMIT 0, {READ}")) {
                    0
                } else {
                    erased.len()
                };
                return Some(erased[from..].iter().map(row).collect());
            }
            if q.starts_with("SELECT countIf(") {
                let counts = q
                    .split("countIf(")
                    .skip(1)
                    .map(|g| {
                        let n = back
                            .iter()
                            .filter(|id| g.contains(&format!("'{id}'")))
                            .count();
                        n.to_string()
                    })
                    .collect();
                return Some(vec![counts]);
            }
            None
        })
    }

    fn request(id: usize, at: u32) -> Request {
        Request {
            kind: "adid".into(),
            id: format!("{id:032x}"),
            app: "abc123".into(),
            requested_at: at,
        }
    }

    #[tokio::test]
    async fn requests_whose_rows_came_back_are_made_again_once() {
        let erased = vec![
            request(1, 100),
            request(2, 100),
            request(3, 200),
            request(1, 300),
            request(4, 400),
        ];
        let pending = vec![request(4, 500)];
        let back: &[&str] = &[
            "00000000000000000000000000000001",
            "00000000000000000000000000000004",
        ];
        let admin = server(erased, pending, back);
        let target = Target {
            database: "adjust".into(),
            table: "callbacks".into(),
            ..Default::default()
        };
        let checked = check(&admin, &target, 1_000, 0, 2_000).await.unwrap();
        // Device 1 came back (twice erased: made again once); device 4 is pending already.
        assert_eq!(
            checked,
            Checked {
                erased: 5,
                again: 1
            }
        );
        let statements = admin.statements();
        assert_eq!(statements.len(), 1, "{statements:?}");
        assert!(statements[0].contains("(toDateTime(2000, 'UTC'), '00000000000000000000000000000001', 'adid', 'abc123', toDateTime(0, 'UTC')"), "{}", statements[0]);
        let counted = admin
            .queries()
            .iter()
            .filter(|q| q.starts_with("SELECT countIf("))
            .count();
        assert_eq!(counted, 1, "one query for five requests");
        assert!(
            admin
                .queries()
                .iter()
                .all(|q| !q.starts_with("SELECT countIf(")
                    || q.contains("WHERE received_at >= toDateTime(1000, 'UTC') AND ("))
        );

        // Nothing came back: nothing is written.
        let admin = server(vec![request(1, 100)], Vec::new(), &[]);
        assert_eq!(
            check(&admin, &target, 1_000, 0, 2_000).await.unwrap(),
            Checked {
                erased: 1,
                again: 0
            }
        );
        assert!(admin.statements().is_empty());
    }

    /// A server that answers every query with one error code.
    struct Failing(u32);

    impl Admin for Failing {
        async fn select(&self, _: &str) -> Result<Vec<Vec<String>>, StoreError> {
            Err(StoreError::new(
                crate::sink::classify::ErrorClass::Unknown,
                Some(self.0),
                "Code: 60. Table adjust.callbacks_erasures doesn't exist",
            ))
        }

        async fn execute(&self, _: &str) -> Result<(), StoreError> {
            unreachable!("nothing is written")
        }
    }

    /// An erasures table of an earlier version: no `outcome` column.
    struct Outcomeless;

    impl Admin for Outcomeless {
        async fn select(&self, q: &str) -> Result<Vec<Vec<String>>, StoreError> {
            if q.contains("outcome") {
                return Err(StoreError::new(
                    crate::sink::classify::ErrorClass::Unknown,
                    Some(47),
                    "Code: 47. Unknown identifier: outcome",
                ));
            }
            Ok(Vec::new())
        }

        async fn execute(&self, _: &str) -> Result<(), StoreError> {
            unreachable!("nothing is written")
        }
    }

    #[tokio::test]
    async fn a_table_without_erasures_has_nothing_to_check_and_other_errors_are_said() {
        assert_eq!(
            check(&Outcomeless, &Target::default(), 1, 0, 2)
                .await
                .unwrap(),
            Checked::default()
        );
        let target = Target::default();
        for code in [60, 81] {
            assert_eq!(
                check(&Failing(code), &target, 1, 0, 2).await.unwrap(),
                Checked::default()
            );
        }
        assert_eq!(
            check(&Failing(241), &target, 1, 0, 2)
                .await
                .unwrap_err()
                .code,
            Some(241)
        );
    }

    #[test]
    fn every_request_is_checked_once_within_the_budget() {
        let page: Vec<Request> = (0..3_000).map(|i| request(i, i as u32)).collect();
        let queries = queries(&page);
        assert!(queries.len() > 1, "3,000 requests do not fit one query");
        for q in &queries {
            let sql = again::returned_sql(&Target::default(), q, 0);
            assert!(sql.len() <= BUDGET + 200, "{} characters", sql.len());
        }
        assert_eq!(queries.concat(), page);
        assert!(super::queries(&[]).is_empty());
    }

    /// A batch of rows received at `received` (unix seconds).
    fn batch(received: &[u32]) -> crate::pipeline::Batch {
        let mut b = crate::pipeline::Batch::default();
        for &t in received {
            let mut row = t.to_le_bytes().to_vec();
            row.extend_from_slice(&[0, 0]);
            b.push(&row);
        }
        b
    }

    #[tokio::test(start_paused = true)]
    async fn rows_landed_late_are_checked_from_their_receipt_once_the_backlog_stops() {
        let now = crate::clock::unix_now();
        let (hour_ago, older) = (now - 3_600, now - 7_200);
        // Device 1 was erased (requested) after the rows of the backlog were received.
        let admin = server(
            vec![request(1, hour_ago + 60)],
            Vec::new(),
            &["00000000000000000000000000000001"],
        );
        let (target, late, metrics) = (Target::default(), LateRows::default(), Metrics::new());
        let counted = |admin: &TwinStore| {
            admin
                .queries()
                .into_iter()
                .filter(|q| q.starts_with("SELECT countIf("))
                .collect::<Vec<_>>()
        };
        let drive = async {
            // Fresh rows are not late.
            late.landed(&batch(&[now - 2]), now);
            tokio::time::sleep(Duration::from_secs(120)).await;
            assert!(admin.queries().is_empty(), "{:?}", admin.queries());
            late.landed(&batch(&[now - 5, hour_ago]), now);
            tokio::time::sleep(Duration::from_secs(20)).await;
            late.landed(&batch(&[older]), now);
            tokio::time::sleep(Duration::from_secs(20)).await;
            // The backlog may not be over: no check yet.
            assert!(counted(&admin).is_empty());
            tokio::time::sleep(Duration::from_secs(60)).await;
        };
        tokio::select! {
            () = watch_late(&admin, &target, &late, &metrics) => unreachable!("runs until dropped"),
            () = drive => {}
        }
        let counted = counted(&admin);
        assert_eq!(counted.len(), 1, "one check for the backlog: {counted:?}");
        assert!(
            counted[0].contains(&format!("received_at >= toDateTime({older}, 'UTC')")),
            "{}",
            counted[0]
        );
        let statements = admin.statements();
        assert_eq!(statements.len(), 1, "{statements:?}");
        assert!(statements[0].contains("'00000000000000000000000000000001', 'adid'"));
        assert_eq!(metrics.erasures_requested_again.get(), 1);
    }
}
