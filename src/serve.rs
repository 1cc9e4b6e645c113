//! Start-up and shutdown of `serve`: the only module that knows every other one.
//!
//! Start: set up the ClickHouse client and ask the server for its version (a TLS failure stops
//! here; a server that is down does not), open the queue (write-ahead log or memory), start
//! delivery on its own thread, start the callback and admin listeners. Stop (on the `signal` future): refuse new callbacks, let
//! requests in flight finish, close the queue, let delivery drain and flush, exit — all within
//! `--shutdown-timeout`. In `wal` mode whatever was not delivered by then stays in the log and is
//! delivered first at the next start.

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;

use actix_web::web;
use anyhow::Context;

use crate::cli::Durability;
use crate::clickhouse::housekeeping;
use crate::clickhouse::store::ClickHouseStore;
use crate::config::ServeConfig;
use crate::http::tls::CertStore;
use crate::http::{self, AppState};
use crate::metrics::Metrics;
use crate::pipeline::batcher::{self, Finished};
use crate::pipeline::deliver::{Backoff, Deliverer, RejectsFile, share_of_budget};
use crate::pipeline::memory::MemoryQueue;
use crate::pipeline::wal::{Wal, WalConfig};
use crate::pipeline::{Consumer, Producer};
use crate::shutdown::Shutdown;

/// Longest wait for the callback listener's connections to close at a stop.
const HTTP_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// Segment size of the write-ahead log.
const SEGMENT_BYTES: u64 = 64 << 20;

/// Runs the sink on already bound listeners until `signal` resolves, then shuts down cleanly.
pub async fn run(
    config: ServeConfig,
    listener: TcpListener,
    admin_listener: TcpListener,
    signal: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let metrics = Metrics::new();
    // The store is set up on this runtime for the probe only; delivery gets its own.
    let store = ClickHouseStore::new(config.clickhouse.clone())?;
    if store.probe_at_start().await?.is_some() && !config.clickhouse.auto_migrate {
        warn_about_missing_columns(&store).await;
    }
    drop(store);

    match config.durability {
        Durability::Wal => {
            let dir = config.data_dir.join("wal");
            let wal_config = WalConfig {
                dir: dir.clone(),
                segment_bytes: SEGMENT_BYTES,
                // The rejects file's share of the budget is kept out of the log's.
                disk_budget: config.disk_budget - share_of_budget(config.disk_budget),
                max_pending_bytes: config.queue_max_bytes,
            };
            let (wal, reader, recovered) = Wal::open(wal_config, metrics.clone())
                .with_context(|| format!("opening the write-ahead log in {}", dir.display()))?;
            tracing::info!(
                dir = %dir.display(),
                resume_at = %recovered.ack,
                pending_bytes = wal.usage().bytes,
                torn_tail_bytes = recovered.torn_bytes,
                "write-ahead log open"
            );
            run_with(
                config,
                metrics,
                wal,
                reader,
                listener,
                admin_listener,
                signal,
            )
            .await
        }
        Durability::Memory => {
            let q = Arc::new(MemoryQueue::new(
                config.queue_max_rows,
                config.queue_max_bytes as usize,
                metrics.clone(),
            ));
            run_with(
                config,
                metrics,
                q.clone(),
                q,
                listener,
                admin_listener,
                signal,
            )
            .await
        }
    }
}

/// [`run`] with the queue open: `producer` for the HTTP workers, `consumer` for delivery.
async fn run_with<P: Producer, C: Consumer>(
    config: ServeConfig,
    metrics: Metrics,
    producer: P,
    consumer: C,
    listener: TcpListener,
    admin_listener: TcpListener,
    signal: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let shutdown = Shutdown::new();
    let tls = match &config.edge.tls {
        Some(files) => {
            let certs = CertStore::open(&files.cert, &files.key).map_err(anyhow::Error::msg)?;
            let server_config = certs.server_config().map_err(anyhow::Error::msg)?;
            actix_web::rt::spawn(certs.watch());
            Some(server_config)
        }
        None => None,
    };
    for (allowed, proxy) in config.allow.overlaps(&config.trusted_proxies) {
        tracing::warn!(
            %allowed,
            %proxy,
            "an --allow range overlaps a --trusted-proxy range: addresses in both are allowed as \
             clients and believed as proxies; allow only the senders behind the proxy"
        );
    }
    let store = ClickHouseStore::new(config.clickhouse.clone())?;
    let deliverer = Deliverer::new(
        store,
        metrics.clone(),
        Backoff::default(),
        RejectsFile::new(
            config.data_dir.join("rejects.jsonl"),
            share_of_budget(config.disk_budget),
        ),
    );
    let delivery = {
        let (shutdown, metrics, limits) = (shutdown.clone(), metrics.clone(), config.limits);
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("delivery".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("delivery runtime");
                let finished =
                    rt.block_on(batcher::run(consumer, limits, deliverer, shutdown, metrics));
                let _ = done_tx.send(finished);
            })
            .context("starting the delivery thread")?;
        done_rx
    };

    let state = web::Data::new(AppState {
        row: config.row.clone(),
        allow: config.allow.clone(),
        trusted_proxies: config.trusted_proxies.clone(),
        edge: config.edge.clone(),
        queue: producer.clone(),
        metrics: metrics.clone(),
        shutdown: shutdown.clone(),
        retry_after: config.retry_after,
    });
    let main_addr = listener.local_addr()?;
    let admin_addr = admin_listener.local_addr()?;
    // Connections still open this long after the stop (idle keep-alive ones, which Adjust's
    // senders and proxies hold) are closed, so they cannot hold the stop up to the deadline;
    // requests in flight only wait for their row to be queued or logged.
    let http_grace = config.shutdown_timeout.min(HTTP_GRACE);
    let server = http::callback_server(
        state.clone(),
        listener,
        config.workers,
        http_grace,
        tls.clone(),
    )?;
    let admin = http::admin_server(state, admin_listener)?;
    let housekeeping = {
        // Delivery migrates; this store only probes.
        let mut ch = config.clickhouse.clone();
        ch.auto_migrate = false;
        let store = ClickHouseStore::new(ch)?;
        actix_web::rt::spawn(housekeeping::run(
            store,
            config.housekeeping,
            metrics.clone(),
        ))
    };
    let (server_handle, admin_handle) = (server.handle(), admin.handle());
    let server_task = actix_web::rt::spawn(server);
    let admin_task = actix_web::rt::spawn(admin);
    tracing::info!(
        main = %main_addr,
        admin = %admin_addr,
        durability = ?config.durability,
        https = tls.is_some(),
        callback_token = config.edge.tokens.required(),
        max_connections = config.edge.max_connections,
        clickhouse = %config.clickhouse.url,
        table = %config.clickhouse.target.table(),
        "listening"
    );

    signal.await;
    tracing::info!(timeout = ?config.shutdown_timeout, "shutting down: refusing new callbacks, draining");
    shutdown.begin(config.shutdown_timeout);
    server_handle.stop(true).await;
    let _ = server_task.await;
    producer.close();
    match delivery.await {
        Ok(Finished::Drained) => tracing::info!("every accepted callback was delivered"),
        Ok(Finished::Deadline { rows }) => match config.durability {
            Durability::Wal => tracing::warn!(
                rows,
                "shutdown deadline reached; undelivered rows stay in the write-ahead log"
            ),
            Durability::Memory => tracing::error!(
                rows,
                "shutdown deadline reached; undelivered rows in memory were lost"
            ),
        },
        Err(_) => tracing::error!("the delivery thread ended unexpectedly"),
    }
    housekeeping.abort();
    admin_handle.stop(true).await;
    let _ = admin_task.await;
    Ok(())
}

/// With `--no-migrate`, says at start when the table lacks what this version writes (inserts
/// fail until `migrate` has run).
async fn warn_about_missing_columns(store: &ClickHouseStore) {
    let table = store.config().target.table();
    let exists = store
        .existing_columns()
        .await
        .map(|c| !c.is_empty())
        .unwrap_or(true);
    match store.missing_columns().await {
        Ok(_) if !exists => tracing::warn!(
            %table,
            "the table does not exist (or the user may not see it); run `adjust-sink migrate` \
             as a user with DDL rights — callbacks are kept until then"
        ),
        Ok(missing) if !missing.is_empty() => tracing::warn!(
            %table,
            columns = ?missing,
            "the table lacks columns this version writes; run `adjust-sink migrate` as a user \
             with DDL rights — callbacks are kept until then"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(%table, error = %e, "could not read the table's columns"),
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
