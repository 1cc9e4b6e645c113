//! Shutdown, ClickHouse outages and overload, for both durability modes.

use std::time::Duration;

use crate::support::{Db, PrivateClickHouse, Sink, assert_exactly_once, blast, blast_to};

/// Waits until the sink has answered at least `n` callbacks with 200.
async fn wait_accepted(sink: &Sink, n: f64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let accepted = sink
            .metric("adjust_sink_requests_total{outcome=\"accepted\",route=\"global\"}")
            .await;
        if accepted >= n || std::time::Instant::now() > deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn sigterm_during_load(mode: &str) {
    let db = Db::fresh(&format!("sigterm_{mode}")).await;
    let mut sink = Sink::start(&db, &["--durability", mode]).await;
    let load = tokio::spawn(blast_to(
        sink.client().clone(),
        sink.url("/adjust"),
        5_000,
        32,
        format!("t{mode}"),
    ));
    wait_accepted(&sink, 1_000.0).await;
    let status = sink.terminate(Duration::from_secs(40));
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        sink.logs()
    );
    let (ok, statuses) = load.await.unwrap();
    assert!(ok.len() >= 1_000, "statuses: {statuses:?}");
    assert!(
        sink.logs()
            .contains("every accepted callback was delivered"),
        "log:\n{}",
        sink.logs()
    );
    assert_exactly_once(&db, &ok).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_load_keeps_every_acknowledged_callback_wal() {
    sigterm_during_load("wal").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_load_keeps_every_acknowledged_callback_memory() {
    sigterm_during_load("memory").await;
}

/// ClickHouse goes away for `outage` while callbacks keep coming; once it is back every
/// acknowledged callback lands, none twice.
pub async fn outage(name: &str, port: u16, mode: &str, outage: Duration) {
    let ch = PrivateClickHouse::start(name, port);
    let db = Db::fresh_on(&ch.url(), name).await;
    let sink = Sink::start(&db, &["--durability", mode]).await;
    let mut acknowledged = Vec::new();
    let (ok, _) = blast(&sink, 500, 16, &format!("{name}-before")).await;
    acknowledged.extend(ok);
    db.wait_rows(500, Duration::from_secs(20)).await;
    ch.stop();
    let started = std::time::Instant::now();
    let mut round = 0;
    while started.elapsed() < outage {
        let (ok, statuses) = blast(&sink, 200, 16, &format!("{name}-during-{round}")).await;
        assert_eq!(ok.len(), 200, "refused during the outage: {statuses:?}");
        acknowledged.extend(ok);
        round += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        sink.metric("adjust_sink_insert_errors_total{retriable=\"true\"}")
            .await
            >= 1.0
    );
    assert_eq!(sink.metric("adjust_sink_clickhouse_up").await, 0.0);
    ch.resume();
    let (ok, _) = blast(&sink, 500, 16, &format!("{name}-after")).await;
    acknowledged.extend(ok);
    let landed = db
        .wait_rows(acknowledged.len() as u64, Duration::from_secs(60))
        .await;
    assert!(
        landed >= acknowledged.len() as u64,
        "{landed} of {} landed; log:\n{}",
        acknowledged.len(),
        sink.logs()
    );
    assert_exactly_once(&db, &acknowledged).await;
    assert_eq!(
        sink.metric("adjust_sink_rows_dropped_total{cause=\"shutdown_deadline\"}")
            .await,
        0.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn clickhouse_down_for_10s_loses_nothing_wal() {
    outage("outage_wal", 18131, "wal", Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn clickhouse_down_for_10s_loses_nothing_memory() {
    outage("outage_mem", 18132, "memory", Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_queue_sheds_with_503_and_memory_stays_bounded() {
    let ch = PrivateClickHouse::start("shed", 18133);
    let db = Db::fresh_on(&ch.url(), "shed").await;
    ch.stop();
    let sink = Sink::start(
        &db,
        &[
            "--durability",
            "memory",
            "--queue-max-rows",
            "200",
            "--batch-max-rows",
            "100",
        ],
    )
    .await;
    let rss_before = sink.rss();
    let (ok, statuses) = blast(&sink, 20_000, 64, "shed").await;
    assert!(
        ok.len() <= 300,
        "accepted {} with a 200-row queue and 100-row batches",
        ok.len()
    );
    assert!(
        statuses.get(&503).copied().unwrap_or(0) >= 19_000,
        "statuses: {statuses:?}"
    );
    let resp = sink.get("/adjust?activity_kind=click&nonce=probe").await;
    assert_eq!(resp.status(), 503);
    let retry_after: u32 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0);
    let rss_after = sink.rss();
    assert!(
        rss_after < rss_before + 64 * 1024 * 1024,
        "RSS grew from {} to {} bytes",
        rss_before,
        rss_after
    );
    assert!(
        sink.metric("adjust_sink_requests_total{outcome=\"shed\",route=\"global\"}")
            .await
            >= 19_000.0
    );
    let ready = sink
        .client()
        .get(format!("http://{}/readyz", sink.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503, "a full queue is not ready");
    // ClickHouse back: what was accepted lands, and the sink accepts again at once.
    ch.resume();
    db.wait_rows(ok.len() as u64, Duration::from_secs(60)).await;
    assert_exactly_once(&db, &ok).await;
    assert_eq!(
        sink.get("/adjust?activity_kind=click&nonce=after")
            .await
            .status(),
        200
    );
}
