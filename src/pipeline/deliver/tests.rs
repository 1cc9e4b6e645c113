use super::*;
use crate::sink::twin::TwinStore;

/// Test rows: the first byte is the row length.
fn row(id: u8) -> Vec<u8> {
    vec![4, id, id, id]
}

fn batch(ids: impl IntoIterator<Item = u8>) -> Batch {
    let mut b = Batch::default();
    for id in ids {
        b.push(&row(id));
    }
    b
}

fn deliverer(store: TwinStore) -> (Deliverer<TwinStore>, Metrics) {
    let metrics = Metrics::new();
    let fast = Backoff {
        initial: Duration::from_millis(1),
        max: Duration::from_millis(5),
    };
    let dir = std::env::temp_dir().join(format!("adjust-sink-rejects-{}", std::process::id()));
    (
        Deliverer::new(store, metrics.clone(), fast, dir.join("rejects.jsonl")),
        metrics,
    )
}

#[tokio::test]
async fn transient_errors_are_retried_until_acknowledged() {
    let store = TwinStore::new();
    store.fail_next(3, ErrorClass::Transient);
    let (d, m) = deliverer(store);
    d.deliver(&batch(0..10), &Shutdown::new()).await.unwrap();
    assert_eq!(d.store().stored().len(), 10);
    assert_eq!(d.store().inserts(), 4);
    assert_eq!(m.insert_errors.get(Retriable::Yes), 3);
    assert_eq!(m.rows_written.get(), 10);
    assert_eq!(m.clickhouse_up.get(), 1);
}

#[tokio::test]
async fn refused_rows_are_isolated_and_the_rest_lands() {
    let store = TwinStore::new();
    store.poison(&row(3));
    store.poison(&row(7));
    let (d, m) = deliverer(store);
    d.deliver(&batch(0..10), &Shutdown::new()).await.unwrap();
    let stored = d.store().stored();
    assert_eq!(stored.len(), 8);
    assert!(!stored.contains(&row(3)) && !stored.contains(&row(7)));
    let rejects = d.store().rejects();
    assert_eq!(rejects.len(), 2);
    assert_eq!(rejects[0].row, row(3));
    assert!(rejects[0].error.contains("poisoned"));
    assert_eq!(m.rows_rejected.get(crate::metrics::RejectReason::Parse), 2);
}

#[tokio::test]
async fn unknown_errors_end_up_isolated_instead_of_blocking() {
    let store = TwinStore::new();
    store.fail_next(UNKNOWN_RETRIES as usize + 1, ErrorClass::Unknown);
    let (d, _) = deliverer(store);
    d.deliver(&batch(0..4), &Shutdown::new()).await.unwrap();
    // After the retries the batch was split, and the halves went through.
    assert_eq!(d.store().stored().len(), 4);
    assert!(d.store().rejects().is_empty());
}

#[tokio::test]
async fn the_shutdown_deadline_stops_retrying() {
    let store = TwinStore::new();
    store.fail_next(1000, ErrorClass::Transient);
    let (d, _) = deliverer(store);
    let shutdown = Shutdown::new();
    shutdown.begin(Duration::from_millis(50));
    let err = d.deliver(&batch(0..5), &shutdown).await.unwrap_err();
    assert_eq!(err.rows, 5);
}

#[test]
fn backoff_grows_with_jitter_up_to_the_cap() {
    let b = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(2),
    };
    for _ in 0..50 {
        let d1 = b.delay(1);
        assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
        let d10 = b.delay(10);
        assert!(d10 >= Duration::from_secs(1) && d10 <= Duration::from_secs(2));
    }
}
