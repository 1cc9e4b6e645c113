use super::*;
use crate::clock::days_from_civil;

pub(super) fn target() -> Target {
    Target {
        database: "adjust".into(),
        table: "callbacks".into(),
        physical: vec![],
        columns: Vec::new(),
        cluster: None,
    }
}

fn cluster() -> Target {
    Target {
        cluster: Some("adjust_local".into()),
        ..target()
    }
}

fn request(kind: &str, id: &str, app: &str) -> Request {
    Request {
        kind: kind.into(),
        id: id.into(),
        app: app.into(),
        requested_at: 1,
    }
}

#[test]
fn only_wholly_expired_partitions_go() {
    // Today 2014-08-15, keep 10 days: first day kept 2014-08-05.
    let today = days_from_civil(2014, 8, 15) as u32;
    let parts = [201406, 201407, 201408, 201312];
    assert_eq!(
        expired_partitions(&parts, today, 10),
        vec![201406, 201407, 201312]
    );
    // Keep 50 days: first day kept 2014-06-26; July is kept, June still has a kept day.
    assert_eq!(expired_partitions(&parts, today, 50), vec![201312]);
    // Keep 46 days: first day kept 2014-06-30... June 30 is kept, so June stays.
    assert_eq!(expired_partitions(&parts, today, 46), vec![201312]);
    // Keep 45 days: first day kept 2014-07-01, June wholly older.
    assert_eq!(expired_partitions(&parts, today, 45), vec![201406, 201312]);
}

#[test]
fn predicates_name_each_identifier_in_its_stored_place_scoped_to_the_app() {
    let reqs = [request("adid", "a'1", ""), request("win_adid", "w1", "")];
    assert_eq!(
        callbacks_predicate(&reqs),
        format!(
            "adid IN ('a\\'1', 'A\\'1') OR {} IN ('w1', 'W1')",
            cold_text_sql("win_adid")
        )
    );
    assert_eq!(
        rejects_predicate(&reqs),
        "(position(row_json, '\"adid\":') > 0 AND (positionCaseInsensitive(row_json, concat('\"', 'a\\'1', '\"')) > 0 OR positionCaseInsensitive(row_json, concat('\"', 'A\\'1', '\"')) > 0)) OR (position(row_json, '\"win_adid\":') > 0 AND (positionCaseInsensitive(row_json, concat('\"', 'w1', '\"')) > 0 OR positionCaseInsensitive(row_json, concat('\"', 'W1', '\"')) > 0))"
    );
    assert_eq!(callbacks_predicate(&[]), "0");
    assert_eq!(rejects_predicate(&[]), "0");
    // A request of app B matches rows of app B and rows naming no app, not those of app A.
    let scoped = callbacks_predicate(&[request("adid", "d1", "appB")]);
    assert_eq!(
        scoped,
        "(app_token IN ('appB', '') AND (adid IN ('d1', 'D1')))"
    );
    let rejects = rejects_predicate(&[request("adid", "d1", "appB")]);
    assert!(
        rejects.starts_with("((position(row_json, '\"app_token\":\"appB\"') > 0 OR position(row_json, '\"app_token\":') = 0) AND ("),
        "{rejects}"
    );
    // Two apps, one term each; an unscoped request (recorded before requests kept the app)
    // matches every app.
    let both = callbacks_predicate(&[
        request("adid", "d1", "appA"),
        request("gps_adid", "g1", "appA"),
        request("adid", "d2", ""),
    ]);
    assert_eq!(
        both,
        format!(
            "(app_token IN ('appA', '') AND (adid IN ('d1', 'D1') OR gps_adid IN ('g1', 'G1') OR lower({}) IN (lower(hex(MD5('g1'))), lower(hex(MD5('G1')))))) OR adid IN ('d2', 'D2')",
            id_sql("gps_adid_md5")
        )
    );
}

/// A base identifier matches every spelling of its family: its text in either case, and its
/// hashes computed by the server; a hashed spelling matches itself in either hex case.
#[test]
fn an_identifier_matches_every_spelling_of_its_family() {
    let idfa = callbacks_predicate(&[request("idfa", "D2CADB5F-41", "")]);
    let hashes = "(lower(hex(MD5('D2CADB5F-41'))), lower(hex(MD5('d2cadb5f-41'))))";
    assert_eq!(
        idfa,
        format!(
            "idfa IN ('D2CADB5F-41', 'd2cadb5f-41') OR {} IN ('D2CADB5F-41', 'd2cadb5f-41') OR \
             lower({}) IN {hashes} OR lower({}) IN {hashes}",
            id_sql("idfa_upper"),
            id_sql("idfa_md5"),
            id_sql("idfa_md5_hex")
        )
    );
    // A hash matches the columns of the same hash only.
    let md5 = callbacks_predicate(&[request("idfa_md5", "ABCDEF", "")]);
    assert_eq!(
        md5,
        format!(
            "lower({}) IN ('abcdef') OR lower({}) IN ('abcdef')",
            id_sql("idfa_md5"),
            id_sql("idfa_md5_hex")
        )
    );
    // Every member of every family is recorded, base first.
    let ids = recorded_ids();
    assert_eq!(ids[0], "adid");
    for m in [
        "idfa_upper",
        "idfa_md5",
        "idfa_md5_hex",
        "gps_adid_md5",
        "oaid_md5",
    ] {
        assert!(ids.contains(&m), "{m}");
    }
    assert!(!ids.contains(&"mac_md5"));
    // The view names each identifier's kind at the index it reads the identifier at: a hot one
    // from its column, a cold one from the cold text.
    let sql = view_statement(&target()).sql;
    let at = |name: &str| ids.iter().position(|n| *n == name).unwrap();
    assert!(sql.contains(&format!("[{}], id_at + 1) AS id_kind", quote_list(&ids))));
    assert!(sql.contains(&format!("id_at = {}, idfa, ", at("idfa"))));
    assert!(sql.contains(&format!(
        "id_at = {}, visitParamExtractString(",
        at("idfa_md5")
    )));
}

#[test]
fn spellings_are_read_off_the_names() {
    assert_eq!(spelling("idfa", "idfa"), Some(None));
    assert_eq!(spelling("idfa_upper", "idfa"), Some(None));
    assert_eq!(spelling("idfa_md5_hex", "idfa"), Some(Some(Hash::Md5)));
    assert_eq!(
        spelling("gps_adid_sha256", "gps_adid"),
        Some(Some(Hash::Sha256))
    );
    assert_eq!(spelling("idfa_short", "idfa"), None);
}

#[test]
fn the_view_records_the_app_and_every_column_of_the_table() {
    for t in [target(), cluster()] {
        let mv = view_statement(&t).sql;
        for (name, _) in COLUMNS {
            assert!(mv.contains(&format!(" AS {name}")), "{name}: {mv}");
        }
        assert!(mv.contains("\nAS WITH 'adjust-sink "), "marked: {mv}");
        let table = table_statements(&t)[0].sql.clone();
        assert!(table.contains(&format!("ORDER BY {KEY}")), "{table}");
    }
    // On a cluster the view reads the local table and writes into the Distributed one; the
    // catch-up reads every shard through the Distributed callbacks table.
    let mv = view_statement(&cluster()).sql;
    assert!(mv.contains("TO adjust.callbacks_erasures\n"), "{mv}");
    assert!(mv.contains("FROM adjust.callbacks_local\n"), "{mv}");
    let all = record_all_sql(&cluster());
    assert!(all.starts_with("INSERT INTO adjust.callbacks_erasures (requested_at, device_id, id_kind, app_token, done_at, outcome)\nSELECT"), "{all}");
    assert!(all.contains("FROM adjust.callbacks\n"), "{all}");
}

#[test]
fn an_earlier_table_gets_its_columns_in_place() {
    assert_eq!(
        add_columns_sql(&target(), &["app_token", "outcome"], true),
        "ALTER TABLE adjust.callbacks_erasures ADD COLUMN app_token String AFTER id_kind, ADD COLUMN outcome String AFTER done_at, MODIFY ORDER BY (id_kind, device_id, requested_at, app_token)"
    );
    assert_eq!(
        add_columns_sql(&cluster(), &["app_token", "outcome"], false),
        "ALTER TABLE adjust.callbacks_erasures_local ON CLUSTER adjust_local ADD COLUMN app_token String AFTER id_kind, ADD COLUMN outcome String AFTER done_at"
    );
    assert_eq!(
        add_columns_sql(&target(), &["outcome"], true),
        "ALTER TABLE adjust.callbacks_erasures ADD COLUMN outcome String AFTER done_at"
    );
}

#[test]
fn counting_reads_every_shard_and_mutations_are_watched_on_the_local_tables() {
    assert_eq!(
        counted_tables(&cluster()),
        ["adjust.callbacks", "adjust.callbacks_rejects"]
    );
    assert_eq!(
        erased_tables(&cluster()),
        ["adjust.callbacks_local", "adjust.callbacks_rejects_local"]
    );
    assert_eq!(
        running_mutations_sql(&cluster()),
        "SELECT count() FROM cluster('adjust_local', system.mutations) WHERE database = 'adjust' AND table IN ('callbacks_local', 'callbacks_rejects_local') AND is_done = 0"
    );
    assert_eq!(
        running_mutations_sql(&target()),
        "SELECT count() FROM system.mutations WHERE database = 'adjust' AND table IN ('callbacks', 'callbacks_rejects') AND is_done = 0"
    );
    assert!(partitions_sql(&cluster()).contains("FROM cluster('adjust_local', system.parts)"));
}

#[test]
fn overlong_identifiers_never_enter_a_query() {
    let pending = pending_sql(&target(), 10);
    assert!(pending.contains(&format!("length(device_id) <= {MAX_ID_LEN}")));
    let refuse = refuse_sql(&target(), 7);
    assert!(refuse.starts_with("INSERT INTO adjust.callbacks_erasures (requested_at, device_id, id_kind, app_token, done_at, outcome) SELECT requested_at, device_id,"), "{refuse}");
    assert!(refuse.contains(REFUSED_TOO_LONG) && refuse.contains(REFUSED_UNKNOWN));
    assert!(REFUSED_TOO_LONG.contains(&MAX_ID_LEN.to_string()));
}

#[test]
fn a_ttl_is_recognised_as_the_server_writes_it_back() {
    let t = target();
    let engine = "ReplacingMergeTree PARTITION BY toYYYYMM(event_date) ORDER BY (activity_kind, event_date, callback_id) TTL event_date + toIntervalDay(30) SETTINGS index_granularity = 8192";
    assert!(ttl_is_set(&t, "callbacks", engine, 30));
    assert!(!ttl_is_set(&t, "callbacks", engine, 3));
    assert!(!ttl_is_set(&t, "callbacks", engine, 300));
    assert!(!ttl_is_set(&t, "callbacks_rejects", engine, 30));
    assert!(ttl_is_set(
        &t,
        "callbacks_rejects",
        "MergeTree ORDER BY x TTL toDate(rejected_at) + toIntervalDay(30)",
        30
    ));
    assert!(!ttl_is_set(
        &t,
        "callbacks",
        "ReplacingMergeTree ORDER BY x",
        30
    ));
}

#[test]
fn a_request_costs_the_length_of_its_longest_predicate() {
    let r = request(
        "idfa",
        "D2CADB5F-410F-4963-AC0C-2A78534BDF1E",
        "abc123abc123",
    );
    let one = std::slice::from_ref(&r);
    assert_eq!(
        request_cost(&r),
        callbacks_predicate(one)
            .len()
            .max(rejects_predicate(one).len())
    );
    assert!(request_cost(&r) < 2000, "{}", request_cost(&r));
}
