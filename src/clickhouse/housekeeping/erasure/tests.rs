use std::sync::{Arc, Mutex};

use super::*;
use crate::sink::twin::TwinStore;

fn cluster() -> Target {
    Target {
        database: "adjust".into(),
        table: "callbacks".into(),
        cluster: Some("adjust_local".into()),
        ..Default::default()
    }
}

fn request(id: &str, at: u32) -> Request {
    Request {
        kind: "adid".into(),
        id: id.into(),
        app: "app1".into(),
        requested_at: at,
    }
}

/// What the scripted server answers.
#[derive(Default)]
struct Server {
    pending: Vec<Request>,
    /// Rows left in the callbacks and rejects tables (for any request).
    left: [u64; 2],
    running: u64,
    /// Pending requests refused, by outcome.
    refusable: Vec<(String, u64)>,
    /// Count queries naming this text fail (a request the server chokes on).
    poison: Option<String>,
}

fn twin(server: &Arc<Mutex<Server>>) -> TwinStore {
    let server = server.clone();
    TwinStore::scripted(move |q, _| {
        let s = server.lock().unwrap();
        if q.starts_with("SELECT if(length(device_id)") {
            return Some(
                s.refusable
                    .iter()
                    .map(|(o, n)| vec![o.clone(), n.to_string()])
                    .collect(),
            );
        }
        if q.starts_with("SELECT id_kind, device_id, app_token") {
            return Some(
                s.pending
                    .iter()
                    .map(|r| {
                        vec![
                            r.kind.clone(),
                            r.id.clone(),
                            r.app.clone(),
                            r.requested_at.to_string(),
                        ]
                    })
                    .collect(),
            );
        }
        if q.contains("system.mutations") {
            return Some(vec![vec![s.running.to_string()]]);
        }
        if let Some(p) = &s.poison
            && q.contains(p.as_str())
        {
            return None;
        }
        if q.starts_with("SELECT count() FROM adjust.callbacks_rejects WHERE") {
            return Some(vec![vec![s.left[1].to_string()]]);
        }
        if q.starts_with("SELECT count() FROM adjust.callbacks WHERE") {
            return Some(vec![vec![s.left[0].to_string()]]);
        }
        None
    })
}

/// The cluster case: rows are counted through the Distributed tables (every shard), the
/// mutation runs on the local tables ON CLUSTER, a running mutation is awaited on every shard,
/// and the requests are marked done only once no row is left.
#[tokio::test]
async fn done_only_when_no_row_is_left_on_any_shard() {
    let server = Arc::new(Mutex::new(Server {
        pending: vec![request("dev1", 10), request("dev2", 11)],
        left: [1, 0],
        ..Default::default()
    }));
    let twin = twin(&server);
    let metrics = Metrics::new();
    let mut eraser = Eraser::new(cluster(), Duration::from_secs(2));

    let round = eraser.round(&twin, &metrics, 100).await.unwrap();
    assert_eq!(
        round,
        Round::Started(vec!["adjust.callbacks_local".into()], 2)
    );
    let statements = twin.statements();
    assert_eq!(statements.len(), 1, "{statements:?}");
    assert!(
        statements[0].starts_with(
            "ALTER TABLE adjust.callbacks_local ON CLUSTER adjust_local DELETE WHERE (app_token IN ('app1', '') AND (adid IN ('dev1', 'DEV1', 'dev2', 'DEV2')))"
        ),
        "{statements:?}"
    );
    let queries = twin.queries();
    assert!(
        queries
            .iter()
            .any(|q| q.starts_with("SELECT count() FROM adjust.callbacks WHERE"))
    );
    assert!(
        !queries
            .iter()
            .any(|q| q.starts_with("SELECT count() FROM adjust.callbacks_local")),
        "counted one node's local table: {queries:?}"
    );
    assert!(queries.iter().any(|q| q.contains(
        "FROM cluster('adjust_local', system.mutations) WHERE database = 'adjust' AND table IN ('callbacks_local', 'callbacks_rejects_local')"
    )));
    assert_eq!(metrics.erasure_mutations.get(), 1);
    assert_eq!(metrics.erasures_requested.get(), 2);
    assert_eq!(metrics.erasures_pending.get(), 2);

    // The mutation is still running on a shard: nothing new starts.
    server.lock().unwrap().running = 1;
    let round = eraser.round(&twin, &metrics, 102).await.unwrap();
    assert_eq!(round, Round::Waiting(2));
    assert_eq!(twin.statements().len(), 1);

    // It ended, but a row is still there (it arrived on the other shard meanwhile): another.
    server.lock().unwrap().running = 0;
    eraser.round(&twin, &metrics, 104).await.unwrap();
    assert_eq!(twin.statements().len(), 2);

    // Nothing is left anywhere: done.
    server.lock().unwrap().left = [0, 0];
    let round = eraser.round(&twin, &metrics, 106).await.unwrap();
    assert_eq!(round, Round::Done(2));
    let done = twin.statements().pop().unwrap();
    assert!(
        done.starts_with("INSERT INTO adjust.callbacks_erasures (requested_at, device_id, id_kind, app_token, done_at, outcome) VALUES (toDateTime(10, 'UTC'), 'dev1', 'adid', 'app1', toDateTime(106, 'UTC'), 'erased')"),
        "{done}"
    );
    assert_eq!(metrics.erasures_done.get(), 2);
    assert_eq!(metrics.erasures_requested.get(), 2, "counted once each");
    assert_eq!(metrics.erasure_mutations.get(), 2);
    assert_eq!(metrics.erasures_pending.get(), 0);
}

/// Requests no device can have made are refused inside the server: the identifier never enters
/// a query the sink sends.
#[tokio::test]
async fn overlong_identifiers_are_refused_and_counted() {
    let server = Arc::new(Mutex::new(Server {
        refusable: vec![(sql::REFUSED_TOO_LONG.into(), 1)],
        ..Default::default()
    }));
    let twin = twin(&server);
    let metrics = Metrics::new();
    let mut eraser = Eraser::new(cluster(), Duration::from_secs(2));
    assert_eq!(
        eraser.round(&twin, &metrics, 100).await.unwrap(),
        Round::Idle
    );
    assert_eq!(twin.statements(), [sql::refuse_sql(&cluster(), 100)]);
    assert_eq!(metrics.erasures_refused.get(ErasureRefusal::TooLong), 1);
    // Nothing to refuse: no statement.
    server.lock().unwrap().refusable.clear();
    eraser.round(&twin, &metrics, 102).await.unwrap();
    assert_eq!(twin.statements().len(), 1);
}

/// A round takes the oldest requests that fit the query budget; the rest wait their turn.
#[tokio::test]
async fn rounds_are_sized_by_query_length() {
    let pending: Vec<Request> = (0..200)
        .map(|i| request(&format!("{i:032x}"), 10 + i))
        .collect();
    let server = Arc::new(Mutex::new(Server {
        pending: pending.clone(),
        left: [1, 1],
        ..Default::default()
    }));
    let twin = twin(&server);
    let budget = 5_000;
    let mut eraser = Eraser::with_budget(cluster(), Duration::from_secs(2), budget);
    let Round::Started(tables, n) = eraser.round(&twin, &Metrics::new(), 100).await.unwrap() else {
        panic!("no mutation")
    };
    assert_eq!(tables.len(), 2);
    assert!((2..200).contains(&n), "{n} requests in one round");
    for q in twin.queries().iter().chain(&twin.statements()) {
        assert!(q.len() < budget + 300, "{} characters: {q}", q.len());
    }
    // The oldest ones.
    let alter = &twin.statements()[0];
    assert!(alter.contains(&pending[0].id) && !alter.contains(&pending[199].id));
}

/// A request the server chokes on is found and set aside with backoff; the others are carried
/// out meanwhile, and it is tried again alone when its time comes.
#[tokio::test]
async fn a_failing_request_is_set_aside_without_blocking_the_others() {
    let server = Arc::new(Mutex::new(Server {
        pending: vec![
            request("good1", 10),
            request("BAD", 11),
            request("good2", 12),
        ],
        left: [0, 0],
        poison: Some("'BAD'".into()),
        ..Default::default()
    }));
    let twin = twin(&server);
    let metrics = Metrics::new();
    let mut eraser = Eraser::new(cluster(), Duration::from_secs(2));
    assert_eq!(
        eraser.round(&twin, &metrics, 100).await.unwrap(),
        Round::SetAside(1)
    );
    assert_eq!(metrics.erasures_failed.get(), 1);
    // The next round carries out the two others.
    assert_eq!(
        eraser.round(&twin, &metrics, 102).await.unwrap(),
        Round::Done(2)
    );
    let done = twin.statements().pop().unwrap();
    assert!(done.contains("'good1'") && done.contains("'good2'") && !done.contains("BAD"));
    server.lock().unwrap().pending.retain(|r| r.id == "BAD");
    // Backoff: not before 100 + 2 × 2 s.
    assert_eq!(
        eraser.round(&twin, &metrics, 103).await.unwrap(),
        Round::Idle
    );
    assert_eq!(
        eraser.round(&twin, &metrics, 104).await.unwrap(),
        Round::SetAside(1)
    );
    assert_eq!(metrics.erasures_failed.get(), 2);
    // The second failure waits twice as long.
    assert_eq!(
        eraser.round(&twin, &metrics, 111).await.unwrap(),
        Round::Idle
    );
    assert_eq!(
        eraser.round(&twin, &metrics, 112).await.unwrap(),
        Round::SetAside(1)
    );
}

/// A server that does not answer is not a request's fault: the round fails, nothing is set
/// aside.
#[tokio::test]
async fn an_unreachable_server_sets_nothing_aside() {
    let mut eraser = Eraser::new(cluster(), Duration::from_secs(2));
    // A transient error has no ClickHouse code (the twin's "no answer" has one).
    struct Down;
    impl Admin for Down {
        async fn select(&self, _: &str) -> Result<Vec<Vec<String>>, StoreError> {
            Err(StoreError::new(
                ErrorClass::Transient,
                None,
                "connection refused",
            ))
        }
        async fn execute(&self, _: &str) -> Result<(), StoreError> {
            Err(StoreError::new(
                ErrorClass::Transient,
                None,
                "connection refused",
            ))
        }
    }
    assert!(eraser.round(&Down, &Metrics::new(), 100).await.is_err());
    assert!(eraser.set_aside.is_empty());
}

#[test]
fn a_request_is_logged_as_its_kind_and_a_hash() {
    let r = request("0123456789abcdef0123456789abcdef", 1);
    let f = fingerprint(&r);
    assert!(f.starts_with("adid#") && f.len() == 13, "{f}");
    assert!(!f.contains("0123456789abcdef"));
}
