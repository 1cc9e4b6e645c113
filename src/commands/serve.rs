//! `adjust-sink serve`: its settings (every section but the ClickHouse-only ones), start-up and
//! shutdown; the only module that knows every other one.
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

use crate::cli::ServeArgs;
use crate::clickhouse::housekeeping::{self, Housekeeping};
use crate::clickhouse::store::{ClickHouseConfig, ClickHouseStore};
use crate::http::settings::EdgeSettings;
use crate::http::{self, AppState};
use crate::metrics::Metrics;
use crate::pipeline::batcher::{self, Finished};
use crate::pipeline::memory::MemoryQueue;
use crate::pipeline::settings::{DataDir, Durability, Queue, Timeouts};
use crate::pipeline::wal::Wal;
use crate::pipeline::{Consumer, LateRows, Limits, Producer};
use crate::settings::ConfigError;
use crate::shutdown::Shutdown;

/// Longest wait for the callback listener's connections to close at a stop.
const HTTP_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// Everything `serve` needs, validated, section by section.
#[derive(Clone)]
pub struct ServeConfig {
    pub clickhouse: ClickHouseConfig,
    /// How callbacks become rows.
    pub row: crate::row::Options,
    pub edge: EdgeSettings,
    pub data_dir: DataDir,
    pub queue: Queue,
    pub limits: Limits,
    pub timeouts: Timeouts,
    pub housekeeping: Housekeeping,
    /// `--follow-exports`: the source, the time between rounds and the follower's settings.
    pub exports: Option<super::follow::Following>,
}

impl TryFrom<&ServeArgs> for ServeConfig {
    type Error = ConfigError;

    fn try_from(a: &ServeArgs) -> Result<Self, ConfigError> {
        let target = a.table.target()?;
        let row = a.rows.options(&target.columns)?;
        let timeouts = a.delivery.timeouts()?;
        let edge = a.edge.settings()?;
        // Every stored callback carried a token when one is required: forget callbacks prove
        // they came from the operator's Adjust account.
        let housekeeping = a.housekeeping.settings(edge.edge.tokens.required())?;
        Ok(ServeConfig {
            clickhouse: a
                .connection
                .config(target, !a.migrate.no_migrate, timeouts.insert)?,
            row,
            edge,
            data_dir: a.data_dir.settings()?,
            queue: a.queue.settings()?,
            limits: a.batch.limits()?,
            timeouts,
            exports: super::follow::Following::from_args(&a.exports, housekeeping.retention_days)?,
            housekeeping,
        })
    }
}

/// `adjust-sink serve`: binds the listeners and serves until SIGTERM or SIGINT.
pub fn command(args: &ServeArgs) -> anyhow::Result<()> {
    let config = ServeConfig::try_from(args)?;
    let listen = config.edge.listen;
    let listener = http::listen::bind(listen)
        .with_context(|| format!("binding the callback listener on {listen}"))?;
    let admin_listen = config.edge.admin_listen;
    let admin = std::net::TcpListener::bind(admin_listen)
        .with_context(|| format!("binding the admin listener on {admin_listen}"))?;
    actix_web::rt::System::new().block_on(run(config, listener, admin, termination()))
}

/// Runs the sink on already bound listeners until `signal` resolves, then shuts down cleanly
/// (and, should the last steps hang, exits the process: for the command only).
async fn run(
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

    match config.queue.durability {
        Durability::Wal => {
            let dir = config.data_dir.wal_dir();
            let wal_config = config.data_dir.wal_config(config.queue.max_bytes);
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
                config.queue.max_rows,
                config.queue.max_bytes as usize,
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
    let tls = http::tls::start(config.edge.edge.tls.as_ref()).map_err(anyhow::Error::msg)?;
    for (allowed, proxy) in config.edge.allow.overlaps(&config.edge.trusted_proxies) {
        tracing::warn!(
            %allowed,
            %proxy,
            "an --allow range overlaps a --trusted-proxy range: addresses in both are allowed as \
             clients and believed as proxies; allow only the senders behind the proxy"
        );
    }
    let store = ClickHouseStore::new(config.clickhouse.clone())?;
    // Batches landed long after their receipt, checked by housekeeping for erased devices.
    let late = LateRows::default();
    let deliverer = config
        .data_dir
        .deliverer(store, metrics.clone())
        .with_late(late.clone());
    // Set once delivery has prepared the tables (or the sink stops first).
    let (prepared_tx, prepared) = tokio::sync::watch::channel(false);
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
                let finished = rt.block_on(async {
                    // The tables are prepared at start, beside the batches (which wait for
                    // it, as for their first insert, while their age is reported).
                    let prepare = async {
                        deliverer.prepare(&shutdown).await;
                        let _ = prepared_tx.send(true);
                    };
                    let run = batcher::run(consumer, limits, &deliverer, shutdown.clone(), metrics);
                    tokio::pin!(run);
                    tokio::select! {
                        f = &mut run => f,
                        () = prepare => run.await,
                    }
                });
                let _ = done_tx.send(finished);
            })
            .context("starting the delivery thread")?;
        done_rx
    };

    let state = web::Data::new(AppState {
        row: config.row.clone(),
        allow: config.edge.allow.clone(),
        trusted_proxies: config.edge.trusted_proxies.clone(),
        edge: config.edge.edge.clone(),
        queue: producer.clone(),
        metrics: metrics.clone(),
        shutdown: shutdown.clone(),
        retry_after: config.edge.retry_after,
    });
    let main_addr = listener.local_addr()?;
    let admin_addr = admin_listener.local_addr()?;
    // Connections still open this long after the stop (idle keep-alive ones, which Adjust's
    // senders and proxies hold) are closed, so they cannot hold the stop up to the deadline;
    // requests in flight only wait for their row to be queued or logged.
    let http_grace = config.timeouts.shutdown.min(HTTP_GRACE);
    let server = http::callback_server(
        state.clone(),
        listener,
        config.edge.workers,
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
            late,
        ))
    };
    let exports = match config.exports.clone() {
        None => None,
        Some(f) => {
            // Its own deliverer (the same settings): the batcher owns the callbacks'.
            let mut ch = config.clickhouse.clone();
            ch.auto_migrate = false;
            let deliverer = config
                .data_dir
                .deliverer(ClickHouseStore::new(ch)?, metrics.clone());
            let target = config.clickhouse.target.clone();
            let (row, metrics, shutdown) = (config.row.clone(), metrics.clone(), shutdown.clone());
            let spool = config.data_dir.path.clone();
            let prepared = prepared.clone();
            Some(actix_web::rt::spawn(async move {
                // The first round waits for the tables (the manifest among them).
                while !*prepared.borrow() {
                    if !shutdown.pause(std::time::Duration::from_millis(100)).await {
                        return;
                    }
                }
                super::follow::run(f, spool, deliverer, target, row, metrics, shutdown).await
            }))
        }
    };
    let (server_handle, admin_handle) = (server.handle(), admin.handle());
    let server_task = actix_web::rt::spawn(server);
    let admin_task = actix_web::rt::spawn(admin);
    tracing::info!(
        main = %main_addr,
        admin = %admin_addr,
        durability = ?config.queue.durability,
        https = tls.is_some(),
        callback_token = config.edge.edge.tokens.required(),
        max_connections = config.edge.edge.max_connections,
        max_connections_per_source = config.edge.edge.max_per_source,
        max_held_bytes = config.edge.edge.max_held_bytes,
        clickhouse = %config.clickhouse.url,
        table = %config.clickhouse.target.table(),
        "listening"
    );

    signal.await;
    tracing::info!(timeout = ?config.timeouts.shutdown, "shutting down: refusing new callbacks, draining");
    shutdown.begin(config.timeouts.shutdown);
    server_handle.stop(true).await;
    let _ = server_task.await;
    producer.close();
    match delivery.await {
        Ok(Finished::Drained) => tracing::info!("every accepted callback was delivered"),
        Ok(Finished::Deadline { rows }) => match config.queue.durability {
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
    // Delivery is over: what is left (the admin listener, the runtimes) takes moments. Should
    // it hang, the process still exits, as the shutdown promises.
    exit_unless_done_within(EXIT_GRACE);
    housekeeping.abort();
    if let Some(exports) = exports {
        exports.abort();
    }
    admin_handle.stop(true).await;
    let _ = admin_task.await;
    Ok(())
}

/// How long the process may take to exit once delivery has ended.
const EXIT_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Exits the process with status 0, as the stop it completes, if it is still running `grace`
/// from now: a stop that a library's shutdown leaves hanging (the listeners' workers, the
/// runtimes) does not keep a sink whose delivery has ended from exiting.
fn exit_unless_done_within(grace: std::time::Duration) {
    let _ = std::thread::Builder::new()
        .name("exit-watchdog".into())
        .spawn(move || {
            std::thread::sleep(grace);
            tracing::warn!(
                ?grace,
                "the sink had not exited this long after its delivery ended; exiting now"
            );
            std::process::exit(0);
        });
}

/// With `--no-migrate`, says at start when the table lacks what this version writes (inserts
/// fail until `migrate` has run) or reads its cold text by names.
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
    if let Ok(true) = store.cold_keyed_by_names().await {
        tracing::warn!(
            %table,
            "the table's cold columns read keys by name, as an earlier version wrote them; run \
             `adjust-sink migrate` — until then the cold columns of new rows read empty"
        );
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use crate::clickhouse::store::Password;
    use crate::settings::Secret;
    use clap::Parser;
    use std::path::Path;
    use std::time::Duration;

    fn serve(args: &[&str]) -> Result<ServeConfig, ConfigError> {
        let cli = Cli::try_parse_from([&["adjust-sink", "serve"], args].concat()).unwrap();
        let Command::Serve(a) = cli.command else {
            unreachable!()
        };
        ServeConfig::try_from(&*a)
    }

    #[test]
    fn defaults_are_valid() {
        let c = serve(&[]).unwrap();
        assert_eq!(c.edge.listen.to_string(), "[::]:8080");
        assert_eq!(c.queue.durability, Durability::Wal);
        assert!(c.edge.allow.contains("178.162.216.70".parse().unwrap()));
        assert_eq!(c.clickhouse.target.table(), "adjust.callbacks");
    }

    #[test]
    fn an_empty_allowlist_says_how_to_fix_it() {
        let e = serve(&["--no-default-allow"]).err().unwrap().to_string();
        assert!(e.contains("--allow"), "{e}");
        let c = serve(&["--no-default-allow", "--allow", "127.0.0.1/32,10.0.0.0/8"]).unwrap();
        assert_eq!(c.edge.allow.len(), 2);
    }

    #[test]
    fn edge_settings() {
        let c = serve(&[]).unwrap();
        assert!(!c.edge.edge.tokens.required());
        assert_eq!(c.edge.edge.body_timeout, Duration::from_secs(10));
        assert_eq!(c.edge.edge.max_connections, 10_000);
        assert!(c.edge.edge.tls.is_none());
        let c = serve(&[
            "--callback-token",
            "0123456789abcdef,fedcba9876543210",
            "--max-connections",
            "500",
            "--body-timeout",
            "2s",
        ])
        .unwrap();
        assert!(c.edge.edge.tokens.accepts(b"fedcba9876543210"));
        assert_eq!(c.edge.edge.per_worker(2), 250);
        assert_eq!(c.edge.edge.body_timeout, Duration::from_secs(2));
        let e = serve(&["--callback-token", "short"])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("16"), "{e}");
        assert!(!e.contains("short"), "the token is not repeated: {e}");
        assert!(serve(&["--max-connections", "0"]).is_err());
        assert!(serve(&["--body-timeout", "0s"]).is_err());
        let cli = Cli::try_parse_from(["adjust-sink", "serve", "--tls-cert", "c.pem"]);
        assert!(cli.is_err(), "--tls-cert needs --tls-key");
    }

    #[test]
    fn bad_values_are_named() {
        assert!(
            serve(&["--allow", "nope"])
                .err()
                .unwrap()
                .to_string()
                .contains("--allow `nope`")
        );
        assert!(
            serve(&["--param-alias", "device_id"])
                .err()
                .unwrap()
                .to_string()
                .contains("ALIAS=NAME")
        );
        assert!(serve(&["--param-alias", "x=not_a_placeholder"]).is_err());
        assert!(serve(&["--table", "bad;name"]).is_err());
        assert!(serve(&["--clickhouse-url", "localhost:8123"]).is_err());
        assert!(serve(&["--param-alias", "device_id=adid"]).is_ok());
    }

    #[test]
    fn exports_that_cannot_be_followed_stop_the_sink_at_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a_2024-03-01T00_x_1.csv");
        std::fs::write(&file, b"activity_kind\n").unwrap();
        let missing = dir.path().join("missing");
        let (file, missing) = (file.to_str().unwrap(), missing.to_str().unwrap());
        for (url, says) in [
            ("ftp://exports/raw/", "ftp:// is not supported"),
            ("s3:///raw/", "no bucket"),
            (missing, "No such file"),
            (file, "is a file, not a directory"),
        ] {
            let e = serve(&["--follow-exports", url]).err().unwrap().to_string();
            assert!(e.starts_with("--follow-exports: "), "{url}: {e}");
            assert!(e.contains(says), "{url}: {e}");
        }
        let d = dir.path().to_str().unwrap();
        let c = serve(&["--follow-exports", d]).unwrap();
        assert!(c.exports.is_some());
        assert!(serve(&[]).unwrap().exports.is_none());
        // Rounds some time apart; a claim that outlives the wait before it is read back.
        let e = serve(&["--follow-exports", d, "--follow-interval", "0s"]).err();
        assert!(
            e.unwrap()
                .to_string()
                .contains("--follow-interval must be above zero")
        );
        for ttl in ["0s", "3s"] {
            let e = serve(&["--follow-exports", d, "--follow-claim-ttl", ttl]).err();
            assert!(e.unwrap().to_string().contains("at least 4s"), "{ttl}");
        }
        let c = serve(&["--follow-exports", d, "--follow-claim-ttl", "4s"]).unwrap();
        assert_eq!(c.exports.unwrap().claim_ttl, Duration::from_secs(4));
    }

    #[test]
    fn settings_that_would_do_nothing_are_refused() {
        let e = serve(&["--insert-quorum", "2"]).err().unwrap().to_string();
        assert!(e.contains("--insert-quorum 2 needs --cluster"), "{e}");
        let c = serve(&["--insert-quorum", "2", "--cluster", "main"]).unwrap();
        assert_eq!(c.clickhouse.insert_quorum, 2);
        assert!(serve(&["--insert-quorum", "1"]).is_ok());
        let e = serve(&["--queue-max-bytes", "0"])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("--queue-max-bytes must be above zero"), "{e}");
    }

    #[test]
    fn passwords_never_show_in_debug_output() {
        let c = serve(&["--clickhouse-password", "hunter2"]).unwrap();
        assert_eq!(
            c.clickhouse.password,
            Some(Password::Given(Secret::new("hunter2")))
        );
        let shown = format!("{:?}", c.clickhouse);
        assert!(!shown.contains("hunter2"), "{shown}");
        let cli = Cli::try_parse_from([
            "adjust-sink",
            "serve",
            "--clickhouse-url",
            "https://sink:s3cr%40t@ch.example.com:8443",
            "--clickhouse-password-file",
            "/run/secrets/ch",
        ])
        .unwrap();
        let shown = format!("{cli:?}");
        assert!(!shown.contains("s3cr"), "{shown}");
        assert!(
            shown.contains("https://sink:***@ch.example.com:8443"),
            "{shown}"
        );
    }

    #[test]
    fn credentials_in_the_url_are_used_and_never_printed() {
        let c = serve(&[
            "--clickhouse-url",
            "https://sink:s3cr%40t@ch.example.com:8443/",
        ])
        .unwrap();
        assert_eq!(c.clickhouse.url, "https://ch.example.com:8443");
        assert_eq!(c.clickhouse.user.as_deref(), Some("sink"));
        assert_eq!(
            c.clickhouse.password,
            Some(Password::Given(Secret::new("s3cr@t")))
        );
        assert!(!format!("{:?}", c.clickhouse).contains("s3cr"));
        // Errors that repeat the URL redact it.
        for args in [
            &["--clickhouse-url", "ftp://sink:s3cr3t@host"][..],
            &["--clickhouse-url", "http://sink:s3cr3t@[::1"],
            &[
                "--clickhouse-url",
                "http://sink:s3cr3t@host",
                "--clickhouse-ca",
                "ca.pem",
            ],
            &[
                "--clickhouse-url",
                "http://sink:s3cr3t@host",
                "--clickhouse-password",
                "other",
            ],
        ] {
            let e = serve(args).err().unwrap().to_string();
            assert!(!e.contains("s3cr3t"), "{e}");
        }
        let e = serve(&["--clickhouse-url", "ftp://sink:s3cr3t@host"])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("ftp://sink:***@host"), "{e}");
    }

    #[test]
    fn one_password_source_at_most() {
        let c = serve(&["--clickhouse-password-file", "/run/secrets/ch"]).unwrap();
        assert_eq!(
            c.clickhouse.password,
            Some(Password::File("/run/secrets/ch".into()))
        );
        let e = serve(&[
            "--clickhouse-password",
            "a",
            "--clickhouse-password-file",
            "/run/secrets/ch",
        ])
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("more than once"), "{e}");
        // An empty password (e.g. an empty environment variable) is no password.
        let c = serve(&[
            "--clickhouse-password",
            "",
            "--clickhouse-password-file",
            "/run/secrets/ch",
        ])
        .unwrap();
        assert_eq!(
            c.clickhouse.password,
            Some(Password::File("/run/secrets/ch".into()))
        );
        let e = serve(&[
            "--clickhouse-url",
            "http://u:a@host",
            "--clickhouse-password-file",
            "/run/secrets/ch",
        ])
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("more than once"), "{e}");
        let e = serve(&[
            "--clickhouse-url",
            "http://u@host",
            "--clickhouse-user",
            "v",
        ])
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("--clickhouse-user"), "{e}");
    }

    #[test]
    fn privacy_settings_are_validated() {
        let e = serve(&["--pseudonymize", "adid"])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("ADJUST_SINK_PSEUDONYM_KEY"), "{e}");
        let e = serve(&["--pseudonymize", "created_at", "--pseudonym-key", "k"])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("only text placeholders"), "{e}");
        let c = serve(&[
            "--pseudonymize",
            "adid,ip_address",
            "--pseudonym-key",
            "k",
            "--drop",
            "user_agent",
            "--retention",
            "30",
            "--erasure-interval",
            "2s",
        ])
        .unwrap();
        assert!(c.row.privacy.is_active());
        assert!(!format!("{:?}", c.row.privacy).contains("\"k\""));
        assert_eq!(c.housekeeping.retention_days, Some(30));
        assert_eq!(
            c.housekeeping.erasure_interval,
            Some(Duration::from_secs(2))
        );
        let c = serve(&["--no-erasure"]).unwrap();
        assert_eq!(c.housekeeping.erasure_interval, None);
        assert!(serve(&["--retention", "0"]).is_err());
    }

    #[test]
    fn a_ca_needs_https() {
        let e = serve(&["--clickhouse-ca", "/etc/ca.pem"])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("https://"), "{e}");
        let c = serve(&[
            "--clickhouse-url",
            "https://ch.example.com:8443",
            "--clickhouse-ca",
            "/etc/ca.pem",
        ])
        .unwrap();
        assert_eq!(c.clickhouse.ca.as_deref(), Some(Path::new("/etc/ca.pem")));
    }
}
