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

const FAST: Backoff = Backoff {
    initial: Duration::from_millis(1),
    max: Duration::from_millis(5),
};

fn deliverer(store: TwinStore) -> (Deliverer<TwinStore>, Metrics) {
    let metrics = Metrics::new();
    let dir = std::env::temp_dir().join(format!("adjust-sink-rejects-{}", std::process::id()));
    let file = RejectsFile::new(dir.join("rejects.jsonl"), 1 << 20);
    (Deliverer::new(store, metrics.clone(), FAST, file), metrics)
}

/// A twin test row (first byte: its length) whose first bytes also read as a `received_at` and
/// an `event_date` (`days`), so the row module finds its partition.
fn dated(days: u16, id: u8) -> Vec<u8> {
    let d = days.to_le_bytes();
    vec![8, 0, 0, 0, d[0], d[1], id, id]
}

fn error(class: ErrorClass, code: u32) -> StoreError {
    StoreError::new(class, Some(code), format!("Code: {code}. injected"))
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
async fn unknown_errors_are_retried_and_never_reach_the_rejects() {
    let store = TwinStore::new();
    // 153 (ILLEGAL_DIVISION) is in neither list of the classifier.
    assert_eq!(
        crate::sink::classify::classify_code(153),
        ErrorClass::Unknown
    );
    store.fail_next_with(12, error(ErrorClass::Unknown, 153));
    let (d, m) = deliverer(store);
    d.deliver(&batch(0..4), &Shutdown::new()).await.unwrap();
    assert_eq!(d.store().stored().len(), 4);
    assert!(d.store().rejects().is_empty());
    // Never split: the same batch was retried whole until it landed.
    assert_eq!(d.store().inserts(), 13);
    assert_eq!(d.store().tokens().len(), 1);
    assert_eq!(m.insert_errors.get(Retriable::Yes), 12);
    assert_eq!(m.rows_rejected.total(), 0);
}

#[tokio::test]
async fn when_both_halves_fail_alike_the_error_is_systemic_and_not_split_further() {
    let store = TwinStore::new();
    // Every insert fails with the same data error for a while (say a column whose type changed
    // under the sink), then the cause is gone.
    store.fail_next_with(6, error(ErrorClass::Data, 53));
    let (d, m) = deliverer(store);
    let b = batch(0..10);
    d.deliver(&b, &Shutdown::new()).await.unwrap();
    // Whole batch, its two halves (both refused alike), then the whole batch only: 3 retries
    // fail, the 4th lands. No quarters, no single rows.
    assert_eq!(d.store().inserts(), 7);
    assert_eq!(d.store().stored().len(), 10);
    assert_eq!(d.store().tokens(), vec![b.token(0..10)]);
    assert!(d.store().rejects().is_empty());
    assert_eq!(m.rows_rejected.total(), 0);
}

#[tokio::test]
async fn a_batch_over_too_many_partitions_lands_in_parts_with_stable_tokens() {
    let store = TwinStore::new();
    store.max_partitions(100);
    // 150 rows, each in another month.
    let rows: Vec<Vec<u8>> = (0..150u16)
        .map(|m| dated((f64::from(m) * 30.437).ceil() as u16, m as u8))
        .collect();
    let logged = || {
        let mut b = Batch::default();
        for r in &rows {
            b.push(r);
        }
        b.log = Some(crate::pipeline::LogRange {
            log_id: 7,
            start: crate::pipeline::wal::Position {
                segment: 1,
                offset: 0,
            },
            end: crate::pipeline::wal::Position {
                segment: 1,
                offset: 1200,
            },
            oldest_written: 0,
        });
        b.freeze();
        b
    };
    let (d, m) = deliverer(store);
    let first = logged();
    d.deliver(&first, &Shutdown::new()).await.unwrap();
    // Refused whole, then two parts: 100 months and 50.
    assert_eq!(d.store().inserts(), 3);
    assert_eq!(d.store().stored(), rows);
    assert_eq!(
        d.store().tokens(),
        vec![first.token(0..100), first.token(100..150)]
    );
    assert_eq!(m.insert_errors.get(Retriable::No), 1);
    assert!(d.store().rejects().is_empty());
    // After a crash the same log range is cut and split the same way: the same tokens, so the
    // server drops the parts it already has.
    d.deliver(&logged(), &Shutdown::new()).await.unwrap();
    assert_eq!(d.store().stored().len(), 150);
    assert_eq!(d.store().tokens().len(), 2);
}

#[tokio::test]
async fn a_refused_row_the_rejects_cannot_take_is_kept_not_lost() {
    let store = TwinStore::new();
    store.poison(&row(3));
    store.break_rejects();
    let metrics = Metrics::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rejects.jsonl");
    // Room for one reject line, not two.
    let probe = RejectsFile::new(dir.path().join("probe.jsonl"), u64::MAX);
    probe
        .append(&Reject::new(&row(3), "x".repeat(40), 0))
        .unwrap();
    let line = probe.size();
    let d = Deliverer::new(
        store,
        metrics.clone(),
        FAST,
        RejectsFile::new(path.clone(), line + line / 2),
    );
    d.deliver(&batch(0..5), &Shutdown::new()).await.unwrap();
    assert_eq!(d.store().stored().len(), 4);
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
    assert_eq!(metrics.rows_rejected.total(), 1);
    assert_eq!(
        metrics.rejects_file_bytes.get() as u64,
        std::fs::metadata(&path).unwrap().len()
    );

    // The file is full: the next refused row is not acknowledged; delivery retries it until the
    // deadline, and the row is reported as not delivered (kept in the log in `wal` mode).
    d.store().poison(&row(13));
    let shutdown = Shutdown::new();
    shutdown.begin(Duration::from_millis(100));
    let gave_up = d.deliver(&batch(10..15), &shutdown).await.unwrap_err();
    assert_eq!(gave_up.rows, 1);
    assert_eq!(d.store().stored().len(), 8);
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
    assert_eq!(metrics.rows_rejected.total(), 1);
    assert!(metrics.rejects_deferred.get() >= 1);
}

#[tokio::test]
async fn an_insert_in_flight_is_abandoned_at_the_shutdown_deadline() {
    let store = TwinStore::new();
    store.hang_next(1);
    let (d, _) = deliverer(store);
    let shutdown = Shutdown::new();
    let started = std::time::Instant::now();
    let s2 = shutdown.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        s2.begin(Duration::from_millis(100));
    });
    let err = d.deliver(&batch(0..5), &shutdown).await.unwrap_err();
    assert_eq!(err.rows, 5);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(150) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert!(d.store().stored().is_empty());
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
