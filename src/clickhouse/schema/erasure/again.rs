//! Erased stays erased: the SQL that finds requests carried out whose device has rows again,
//! and asks for their erasure once more.
//!
//! An erasure deletes the rows there are when it runs. Rows of the device from before its
//! request can come back later: `replay` re-delivers callbacks the log kept, `import` and the
//! export follower load Adjust's exports, which hold every activity. A row comes back when it
//! matches a request marked `erased` and it was received or created (Adjust's `created_at`) at
//! or before the request: a replayed row keeps its `received_at`, an imported one its
//! `created_at`. Activity of the device after its request is left alone, as when the erasure
//! first ran after it.

use super::{ERASED, MAX_ID_LEN, Request, Target, callbacks_predicate, erasures_table, kinds_list};

/// `outcome` of a request made again because rows of its device came back (while pending).
pub const AGAIN: &str = "requested again: rows of the device came back";

/// The requests carried out (last `outcome` `erased`) made at or after `requested_since` (unix
/// seconds), oldest first: `limit` of them from `offset`.
pub fn erased_sql(target: &Target, requested_since: u32, offset: usize, limit: usize) -> String {
    format!(
        "SELECT id_kind, device_id, app_token, toUInt32(requested_at) FROM {} WHERE requested_at >= toDateTime({requested_since}, 'UTC') AND length(device_id) <= {MAX_ID_LEN} AND id_kind IN ({}) GROUP BY id_kind, device_id, app_token, requested_at HAVING argMax(outcome, done_at) = '{ERASED}' ORDER BY requested_at, id_kind, device_id, app_token LIMIT {offset}, {limit}",
        erasures_table(target),
        kinds_list()
    )
}

/// The condition a row of the callbacks table meets when it came back for request `r`: a row
/// of its device, received or created at or before the request.
fn returned(r: &Request) -> String {
    format!(
        "{TIME} <= toDateTime({}, 'UTC') AND ({})",
        r.requested_at,
        callbacks_predicate(std::slice::from_ref(r))
    )
}

/// One row: the earliest time (received or created) of the rows received at or after
/// `received_since` (unix seconds), and how many there are. Only requests made at or after it
/// can have rows among them.
pub fn earliest_sql(target: &Target, received_since: u32) -> String {
    format!(
        "SELECT toUInt32(min({TIME})), count() FROM {} WHERE received_at >= toDateTime({received_since}, 'UTC')",
        super::counted_tables(target)[0]
    )
}

/// A row's time for erasure: when it was received or, earlier, created (Adjust's `created_at`).
const TIME: &str = "least(received_at, ifNull(created_at, received_at))";

/// How many characters a request adds to [`returned_sql`] (its count, and its part of the
/// condition over all).
pub fn request_cost(r: &Request) -> usize {
    "countIf(), ".len() + returned(r).len() + callbacks_predicate(std::slice::from_ref(r)).len()
}

/// One row: for each request, how many rows of the callbacks table (on a cluster of every
/// shard) came back for it, among the rows received at or after `received_since` (unix
/// seconds).
pub fn returned_sql(target: &Target, requests: &[Request], received_since: u32) -> String {
    let counts: Vec<String> = requests
        .iter()
        .map(|r| format!("countIf({})", returned(r)))
        .collect();
    // Rows of none of the requests are passed over with one condition over them all (each
    // column's values in one set), before each request's own count.
    format!(
        "SELECT {} FROM {} WHERE received_at >= toDateTime({received_since}, 'UTC') AND ({})",
        counts.join(", "),
        super::counted_tables(target)[0],
        callbacks_predicate(requests)
    )
}

/// Requests the erasure of `requests` again: a new pending request for each, made at `now`.
pub fn again_sql(target: &Target, requests: &[Request], now: u32) -> String {
    super::insert_sql(target, requests, |_| now, 0, AGAIN)
}

#[cfg(test)]
mod tests {
    use super::super::tests::target;
    use super::*;

    fn request(kind: &str, id: &str, at: u32) -> Request {
        Request {
            kind: kind.into(),
            id: id.into(),
            app: "abc123".into(),
            requested_at: at,
        }
    }

    #[test]
    fn a_row_comes_back_only_from_before_its_request() {
        let a = [request("adid", "aaaa", 100), request("gps_adid", "g1", 100)];
        let sql = returned_sql(&target(), &a, 50);
        assert!(
            sql.starts_with("SELECT countIf(least(received_at, ifNull(created_at, received_at)) <= toDateTime(100, 'UTC') AND ((app_token IN ('abc123', '') AND (adid IN ('aaaa', 'AAAA'))))), countIf("),
            "{sql}"
        );
        assert!(sql.contains("'g1'"), "{sql}");
        assert!(
            sql.contains("FROM adjust.callbacks WHERE received_at >= toDateTime(50, 'UTC') AND ((app_token IN ('abc123', '') AND (adid IN ('aaaa', 'AAAA') OR gps_adid IN ('g1', 'G1') OR "),
            "{sql}"
        );
        assert!(request_cost(&a[0]) > 100);
    }

    #[test]
    fn a_request_made_again_is_pending_and_says_why() {
        let sql = again_sql(&target(), &[request("adid", "it's", 100)], 500);
        assert_eq!(
            sql,
            format!(
                "INSERT INTO adjust.callbacks_erasures (requested_at, device_id, id_kind, app_token, done_at, outcome) VALUES (toDateTime(500, 'UTC'), 'it\\'s', 'adid', 'abc123', toDateTime(0, 'UTC'), '{AGAIN}')"
            )
        );
        let read = erased_sql(&target(), 7, 20, 10);
        assert!(
            read.contains("WHERE requested_at >= toDateTime(7, 'UTC') AND"),
            "{read}"
        );
        assert!(
            read.contains("HAVING argMax(outcome, done_at) = 'erased'"),
            "{read}"
        );
        assert!(read.ends_with("LIMIT 20, 10"), "{read}");
    }
}
