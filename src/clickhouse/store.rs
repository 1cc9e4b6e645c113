//! The real store: the official `clickhouse` crate over HTTP or HTTPS, RowBinary with LZ4.
//!
//! The server generation is probed with `SELECT version()` on first use; 18.16 gets no setting
//! it does not know (no `insert_deduplication_token`, no `async_insert`), modern servers get the
//! dedup token. Every INSERT carries the pinned [`insert_settings`] of the generation.
//! Unless disabled, the first use also runs `migrate`, so a fresh server just works.

use std::path::PathBuf;
use std::time::Duration;

use ::clickhouse::Client;
use bytes::Bytes;
use tokio::sync::Mutex;

use super::Profile;
use super::connect::{self, SetupError};
use super::credentials::Secret;
use crate::clickhouse::schema::{self, Target, upgrade};
use crate::row::{self, rowbinary as rb};
use crate::sink::classify::{ErrorClass, classify, code_of, is_privilege_code};
use crate::sink::{Admin, Reject, Rows, Store, StoreError};

/// Uncompressed bytes of one compressed block of an INSERT's body (ClickHouse's own
/// `max_compress_block_size`).
const SEND_BLOCK: usize = 1 << 20;

/// How to reach ClickHouse. `Debug` shows no password.
#[derive(Debug, Clone)]
pub struct ClickHouseConfig {
    /// Where ClickHouse listens, without credentials (safe to print).
    pub url: String,
    pub user: Option<String>,
    pub password: Option<Password>,
    /// PEM file of the CA certificates trusted for `https://` instead of the system's roots.
    pub ca: Option<PathBuf>,
    pub target: Target,
    /// Create or upgrade the tables on first contact.
    pub auto_migrate: bool,
    /// Upper bound of one INSERT (sending and waiting for the answer).
    pub insert_timeout: Duration,
    /// With a cluster: replicas of a shard that must have written an insert before it is
    /// acknowledged (`insert_quorum`; 0 or 1: the receiving replica only).
    pub insert_quorum: u32,
    /// How long a quorum insert waits for the replicas (`insert_quorum_timeout`).
    pub insert_quorum_timeout: Duration,
    /// Block deduplication (`insert_deduplicate=1`, and the dedup token on modern servers); off
    /// for `replay --since`, whose rows may be ones ClickHouse lost after remembering their
    /// blocks.
    pub deduplicate: bool,
}

/// Where the password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Password {
    Given(Secret),
    /// Read once at start; a trailing newline is not part of the password.
    File(PathBuf),
}

impl Password {
    /// The password (reads the file).
    pub fn load(&self) -> Result<Secret, SetupError> {
        match self {
            Password::Given(s) => Ok(s.clone()),
            Password::File(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| SetupError::PasswordFile {
                        path: path.clone(),
                        source,
                    })?;
                let text = text.strip_suffix('\n').unwrap_or(&text);
                Ok(Secret::new(text.strip_suffix('\r').unwrap_or(text)))
            }
        }
    }
}

/// Settings every INSERT carries on a server generation. 18.16 fails a query that names a
/// setting it does not know, so it only gets those it has.
///
/// - `insert_deduplicate=1`: a retried batch (same rows, or same dedup token) is not stored
///   twice, whatever the user's profile says.
/// - `async_insert=0` (modern): the insert is acknowledged once its rows are in a part, and
///   block deduplication applies; an asynchronous insert would be buffered by the server and
///   merged with other clients' data, out of reach of both.
/// - `optimize_on_insert=0` (modern): the server does not run the ReplacingMergeTree merge over
///   each inserted block (duplicates within one batch are rare: Adjust's copies of an activity
///   arrive seconds to hours apart); background merges and `FINAL` collapse them as before.
///   Measured with chDB 26.9 on 100,000 rows: 15.7 µs of CPU per row with it, 8.8 µs without.
pub fn insert_settings(profile: Profile) -> &'static [(&'static str, &'static str)] {
    match profile {
        Profile::Legacy => &[("insert_deduplicate", "1")],
        Profile::Modern => &[
            ("async_insert", "0"),
            ("insert_deduplicate", "1"),
            ("optimize_on_insert", "0"),
        ],
    }
}

/// Settings every INSERT also carries when a cluster is configured (`--cluster`), on every
/// server generation.
///
/// - `insert_distributed_sync=1`: the insert into the `Distributed` table returns once every
///   shard's receiving replica has written its rows, so an acknowledged batch is on the shard
///   that owns it, replicated from there, never only in the receiving node's send queue. A whole
///   shard down fails the insert (code 279, retried); one replica down does not. Modern servers
///   call it `distributed_foreground_insert` and keep this name as an alias, so one name works
///   on 18.16 and today's servers alike.
pub const CLUSTER_INSERT_SETTINGS: &[(&str, &str)] = &[("insert_distributed_sync", "1")];

/// How long start-up waits for ClickHouse's answer before going on without it.
pub const START_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the start-up probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// TLS failed (certificate not trusted or not valid for the host, not a TLS port): waiting
    /// does not fix it.
    #[error("ClickHouse at {url}: {problem}")]
    Tls { url: String, problem: String },
    /// Down, unreachable, refused the request, …: may be fixed by waiting.
    #[error("ClickHouse at {url}: {error}")]
    Other { url: String, error: StoreError },
}

impl ProbeError {
    pub fn is_tls(&self) -> bool {
        matches!(self, ProbeError::Tls { .. })
    }
}

mod columns;
mod frames;
mod layout;
mod migrate;
mod upgrades;

pub use migrate::{ClusterNode, MigrateReport, NodeState, Upgraded};

pub struct ClickHouseStore {
    client: Client,
    config: ClickHouseConfig,
    insert_sql: String,
    rejects_sql: String,
    /// The probed server profile, once known (and migrated, when enabled).
    ready: Mutex<Option<Profile>>,
    /// Held while the profile is probed (and the tables migrated): one caller does it, the
    /// others wait for its outcome (delivery prepares at start while a first batch may insert).
    preparing: Mutex<()>,
}

/// A client error as a [`StoreError`]; network errors with their causes, TLS failures explained
/// (`ca`: the `--clickhouse-ca` file, if any).
fn store_error(e: clickhouse::error::Error, ca: Option<&std::path::Path>) -> StoreError {
    use clickhouse::error::Error as E;
    match e {
        E::Network(_) => {
            let message = match connect::tls_problem(&e, ca) {
                Some(problem) => problem,
                None => connect::describe(&e),
            };
            StoreError::new(ErrorClass::Transient, None, message)
        }
        E::TimedOut => StoreError::new(ErrorClass::Transient, None, e.to_string()),
        E::BadResponse(msg) => {
            let code = code_of(&msg);
            let class = match code {
                Some(c) => classify(c, &msg),
                // An HTTP error without a ClickHouse code: a proxy or an overloaded server.
                None => ErrorClass::Transient,
            };
            StoreError::new(class, code, msg)
        }
        other => StoreError::new(ErrorClass::Unknown, None, other.to_string()),
    }
}

/// An error while probing or migrating is about the server or the schema, never about the rows
/// being inserted: retried, never isolated into the rejects.
fn not_the_datas_fault(mut e: StoreError) -> StoreError {
    e.class = ErrorClass::Transient;
    e.message = format!("preparing the table: {}", e.message);
    e
}

impl ClickHouseStore {
    /// Sets up the client: reads the password file and the CA file, loads the system's root
    /// certificates for `https://`. Connects to nothing yet.
    pub fn new(config: ClickHouseConfig) -> Result<Self, SetupError> {
        let https = config.url.starts_with("https://");
        // Inserts are compressed by the store itself ([`frames`]); answers come uncompressed.
        let mut client = connect::client(https, config.ca.as_deref())?
            .with_url(&config.url)
            .with_compression(::clickhouse::Compression::None)
            .with_validation(false);
        if let Some(user) = &config.user {
            client = client.with_user(user);
        }
        if let Some(password) = &config.password {
            let password = password.load()?;
            if !password.is_empty() {
                client = client.with_password(password.expose());
            }
        }
        let insert_sql = row::insert_sql(&config.target.database, &config.target.table);
        let rejects_sql = format!(
            "INSERT INTO {} (rejected_at, callback_id, error, row_json, row) FORMAT RowBinary",
            schema::rejects_table(&config.target)
        );
        Ok(ClickHouseStore {
            client,
            config,
            insert_sql,
            rejects_sql,
            ready: Mutex::new(None),
            preparing: Mutex::new(()),
        })
    }

    pub fn config(&self) -> &ClickHouseConfig {
        &self.config
    }

    async fn version_raw(&self) -> Result<String, clickhouse::error::Error> {
        let mut cursor = self
            .client
            .query_raw("SELECT version()")
            .fetch_bytes("TabSeparated")?;
        let bytes = cursor.collect().await?;
        Ok(String::from_utf8_lossy(&bytes).trim().to_string())
    }

    /// `SELECT version()`.
    pub async fn version(&self) -> Result<String, StoreError> {
        let timeout = self.config.insert_timeout;
        match tokio::time::timeout(timeout, self.version_raw()).await {
            Ok(result) => result.map_err(|e| self.store_error(e)),
            Err(_) => Err(self.no_answer(timeout)),
        }
    }

    /// The error of a request without an answer in time. An `https://` URL pointing at a plain
    /// HTTP port may end so (the server waits for the rest of a request that never comes).
    fn no_answer(&self, timeout: Duration) -> StoreError {
        let hint = if self.config.url.starts_with("https://") {
            " (if the port serves plain HTTP, not HTTPS, use http://)"
        } else {
            ""
        };
        StoreError::new(
            ErrorClass::Transient,
            None,
            format!("no answer within {timeout:?}{hint}"),
        )
    }

    /// [`store_error`], with the `--clickhouse-ca` file named in TLS problems.
    fn store_error(&self, e: clickhouse::error::Error) -> StoreError {
        store_error(e, self.config.ca.as_deref())
    }

    /// Asks the server for its version within `timeout`, telling TLS failures (which waiting
    /// does not fix) from a server that is down or unreachable.
    pub async fn probe(&self, timeout: Duration) -> Result<String, ProbeError> {
        let url = self.config.url.clone();
        match tokio::time::timeout(timeout, self.version_raw()).await {
            Ok(Ok(version)) => Ok(version),
            Ok(Err(e)) => match connect::tls_problem(&e, self.config.ca.as_deref()) {
                Some(problem) => Err(ProbeError::Tls { url, problem }),
                None => Err(ProbeError::Other {
                    url,
                    error: self.store_error(e),
                }),
            },
            Err(_) => Err(ProbeError::Other {
                url,
                error: self.no_answer(timeout),
            }),
        }
    }

    async fn execute(&self, profile: Profile, sql: &str) -> Result<(), StoreError> {
        let mut q = self.client.query_raw(sql);
        if profile == Profile::Legacy {
            q = q.with_setting("allow_experimental_low_cardinality_type", "1");
        }
        if self.config.target.cluster.is_some() {
            // A node that is down must not hold each statement for the default 180 s.
            q = q.with_setting(
                "distributed_ddl_task_timeout",
                schema::cluster::DDL_TASK_TIMEOUT_S.to_string(),
            );
            // An INSERT … SELECT or VALUES into a Distributed table (housekeeping's marks)
            // returns once every shard has its rows, as the sink's own inserts do.
            for (name, value) in CLUSTER_INSERT_SETTINGS {
                q = q.with_setting(*name, *value);
            }
        }
        q.execute().await.map_err(|e| self.store_error(e))
    }

    /// The start-up check of `serve` and `replay`: `Err` only for a TLS failure, which waiting
    /// does not fix; a server that is down or unreachable is logged and delivery retries later.
    pub async fn probe_at_start(&self) -> Result<Option<String>, ProbeError> {
        match self.probe(START_PROBE_TIMEOUT).await {
            Ok(version) => {
                tracing::info!(url = %self.config.url, %version, "ClickHouse answers");
                Ok(Some(version))
            }
            Err(e) if e.is_tls() => Err(e),
            Err(e) => {
                let code = match &e {
                    ProbeError::Other { error, .. } => error.code,
                    ProbeError::Tls { .. } => None,
                };
                // Waiting may fix either (a server restarting, users.xml being rolled out), so
                // the sink starts; the log says which it is.
                let what = match code {
                    Some(c) if crate::sink::classify::is_credentials(c) => {
                        "ClickHouse refuses the sink's credentials (check --clickhouse-user and \
                         the password)"
                    }
                    Some(_) => "ClickHouse answers with an error",
                    None => "ClickHouse is not reachable now",
                };
                tracing::warn!(
                    error = %e,
                    "{what}; callbacks are kept and delivered once it takes them"
                );
                Ok(None)
            }
        }
    }

    /// Whether the user may insert into the callbacks and rejects tables: an INSERT of no rows
    /// (nothing is written).
    pub async fn insert_allowed(&self) -> Vec<(String, Result<(), StoreError>)> {
        let mut out = Vec::new();
        for table in [
            self.config.target.table(),
            schema::rejects_table(&self.config.target),
        ] {
            let sql = format!("INSERT INTO {table} (callback_id) SELECT toUInt64(0) WHERE 0");
            let result = self
                .client
                .query_raw(&sql)
                .execute()
                .await
                .map_err(|e| self.store_error(e));
            out.push((table, result));
        }
        out
    }

    /// The server profile, probing (and migrating, when enabled) on first use.
    async fn ensure_ready(&self) -> Result<Profile, StoreError> {
        if let Some(p) = *self.ready.lock().await {
            return Ok(p);
        }
        let _one_at_a_time = self.preparing.lock().await;
        let mut ready = self.ready.lock().await;
        if let Some(p) = *ready {
            return Ok(p);
        }
        let profile = if self.config.auto_migrate {
            drop(ready);
            let profile = match self.migrate_with(false).await {
                Ok(report) => {
                    if !report.added_columns.is_empty() {
                        tracing::info!(columns = ?report.added_columns, "added missing columns");
                    }
                    for note in &report.notes {
                        tracing::warn!("{note}");
                    }
                    tracing::info!(version = %report.version, "ClickHouse ready");
                    report.profile.expect("migrate sets the profile")
                }
                // A user with INSERT and SELECT only (a managed server's usual sink user):
                // use the tables as they are.
                Err(e) if e.code.is_some_and(is_privilege_code) => {
                    tracing::warn!(
                        error = %e,
                        "the ClickHouse user may not create or alter tables, so they are used as \
                         they are; run `adjust-sink migrate` as a user with DDL rights after each \
                         upgrade, and pass --no-migrate to skip this attempt"
                    );
                    Profile::for_version(&self.version().await?)
                }
                Err(e) => return Err(e),
            };
            ready = self.ready.lock().await;
            profile
        } else {
            Profile::for_version(&self.version().await?)
        };
        *ready = Some(profile);
        Ok(profile)
    }

    /// Runs a statement for the housekeeping tasks (erasure, retention), on the server's profile.
    pub async fn run_sql(&self, sql: &str) -> Result<Profile, StoreError> {
        let profile = self.ensure_ready().await?;
        self.execute(profile, sql).await?;
        Ok(profile)
    }

    /// Runs a read-only query (import, reconcile, housekeeping) on the callbacks table's server,
    /// probing (and migrating when enabled) first; its TabSeparated rows split into fields.
    pub async fn select(&self, sql: &str) -> Result<Vec<Vec<String>>, StoreError> {
        let profile = self.ensure_ready().await?;
        self.rows(profile, sql).await
    }

    /// The server's profile (probing, and migrating when enabled, on first use).
    pub async fn profile(&self) -> Result<Profile, StoreError> {
        self.ensure_ready().await
    }

    /// Forgets the probed state, so the next insert probes (and migrates) again.
    async fn reset(&self) {
        *self.ready.lock().await = None;
    }

    async fn send(
        &self,
        sql: &str,
        profile: Profile,
        rows: &dyn Rows,
        token: Option<&str>,
    ) -> Result<(), StoreError> {
        let timeout = self.config.insert_timeout;
        let mut insert = self
            .client
            .insert_formatted_with(sql.to_string())
            .with_timeouts(Some(timeout), Some(timeout));
        let dedup = self.config.deduplicate;
        for (name, value) in insert_settings(profile) {
            let value = if *name == "insert_deduplicate" && !dedup {
                "0"
            } else {
                *value
            };
            insert = insert.with_setting(*name, value);
        }
        if self.config.target.cluster.is_some() {
            for (name, value) in CLUSTER_INSERT_SETTINGS {
                insert = insert.with_setting(*name, *value);
            }
            if self.config.insert_quorum >= 2 {
                insert = insert
                    .with_setting("insert_quorum", self.config.insert_quorum.to_string())
                    .with_setting(
                        "insert_quorum_timeout",
                        self.config.insert_quorum_timeout.as_millis().to_string(),
                    );
            }
        }
        if let (Profile::Modern, Some(token), true) = (profile, token, dedup) {
            insert = insert.with_setting("insert_deduplication_token", token);
        }
        // In blocks of SEND_BLOCK, each compressed on its own (neither side holds the whole
        // batch a second time uncompressed), all of them before the request opens
        // ([`frames`]).
        let mut framer = frames::Framer::default();
        let frames = rows
            .blocks(SEND_BLOCK)
            .map(|block| framer.lz4(&block))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::new(ErrorClass::Unknown, None, e))?;
        drop(framer);
        let mut insert = insert.with_setting("decompress", "1");
        for frame in frames {
            if let Err(sending) = insert.send(frame).await {
                // A server that refuses the rows answers before it has read the whole body, and
                // the body's channel closes under the next block: its answer (the error that
                // names the rows) is what counts, the closed channel only when there is none.
                return Err(self.store_error(match insert.end().await {
                    Err(answer) => answer,
                    Ok(()) => sending,
                }));
            }
        }
        insert.end().await.map_err(|e| self.store_error(e))
    }
}

impl Store for ClickHouseStore {
    async fn prepare(&self) -> Result<(), StoreError> {
        self.ensure_ready().await.map(|_| ())
    }

    async fn insert(&self, rows: &dyn Rows, token: &str) -> Result<(), StoreError> {
        let profile = self.ensure_ready().await.map_err(not_the_datas_fault)?;
        let result = self
            .send(&self.insert_sql, profile, rows, Some(token))
            .await;
        if let Err(e) = &result
            && matches!(e.code, Some(16 | 60 | 81))
        {
            // The table went away or lacks a column: probe and migrate again on the next try.
            self.reset().await;
        }
        result
    }

    async fn insert_rejects(&self, rejects: &[Reject]) -> Result<(), StoreError> {
        let profile = self.ensure_ready().await.map_err(not_the_datas_fault)?;
        let mut data = Vec::new();
        for r in rejects {
            rb::put_u32(&mut data, r.rejected_at);
            rb::put_u64(&mut data, r.callback_id);
            rb::put_str(&mut data, r.error.as_bytes());
            rb::put_str(&mut data, r.row_json.as_bytes());
            rb::put_str(&mut data, &r.row);
        }
        self.send(&self.rejects_sql, profile, &Bytes::from(data), None)
            .await
    }
}

impl Admin for ClickHouseStore {
    async fn select(&self, sql: &str) -> Result<Vec<Vec<String>>, StoreError> {
        ClickHouseStore::select(self, sql).await
    }

    async fn execute(&self, sql: &str) -> Result<(), StoreError> {
        self.run_sql(sql).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

    use super::*;

    #[test]
    fn a_password_file_loses_its_trailing_newline_only() {
        let dir = tempfile::tempdir().unwrap();
        for (content, password) in [
            ("s3cret\n", "s3cret"),
            ("s3cret\r\n", "s3cret"),
            ("s3cret", "s3cret"),
            (" spaced \n", " spaced "),
        ] {
            let path = dir.path().join("password");
            std::fs::write(&path, content).unwrap();
            assert_eq!(Password::File(path).load().unwrap().expose(), password);
        }
        let e = Password::File(dir.path().join("missing"))
            .load()
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--clickhouse-password-file "), "{e}");
    }

    /// A stand-in for ClickHouse's HTTP interface: answers `SELECT version()` (sent as the
    /// body) with `version`, and records the URL query of every INSERT (`query=INSERT …`).
    async fn fake_clickhouse(
        version: &'static str,
    ) -> (
        String,
        Arc<Mutex<Vec<String>>>,
        actix_web::dev::ServerHandle,
    ) {
        let inserts = Arc::new(Mutex::new(Vec::new()));
        let seen = inserts.clone();
        let server = HttpServer::new(move || {
            let seen = seen.clone();
            App::new().default_service(web::to(move |req: HttpRequest, _body: web::Bytes| {
                let seen = seen.clone();
                async move {
                    let query = req.query_string().to_string();
                    if query.contains("query=INSERT") {
                        seen.lock().unwrap().push(query);
                        HttpResponse::Ok().finish()
                    } else {
                        HttpResponse::Ok().body(format!("{version}\n"))
                    }
                }
            }))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        (format!("http://{addr}"), inserts, handle)
    }

    /// A store's settings for a stand-in server at `url` (no migration; a quorum of two on a
    /// cluster).
    fn stand_in_config(url: String, cluster: Option<&str>) -> ClickHouseConfig {
        ClickHouseConfig {
            url,
            user: None,
            password: None,
            ca: None,
            target: Target {
                database: "adjust".into(),
                table: "callbacks".into(),
                physical: Vec::new(),
                columns: Vec::new(),
                cluster: cluster.map(str::to_string),
            },
            auto_migrate: false,
            insert_timeout: Duration::from_secs(10),
            insert_quorum: 2,
            insert_quorum_timeout: Duration::from_secs(30),
            deduplicate: true,
        }
    }

    async fn insert_query(version: &'static str) -> Vec<(String, String)> {
        insert_query_on(version, None).await
    }

    async fn insert_query_on(
        version: &'static str,
        cluster: Option<&str>,
    ) -> Vec<(String, String)> {
        let (url, inserts, server) = fake_clickhouse(version).await;
        let store = ClickHouseStore::new(stand_in_config(url, cluster)).unwrap();
        store
            .insert(&Bytes::from_static(b"rows"), "tok-1")
            .await
            .unwrap();
        server.stop(false).await;
        let inserts = inserts.lock().unwrap();
        assert_eq!(inserts.len(), 1, "{inserts:?}");
        url::form_urlencoded::parse(inserts[0].as_bytes())
            .into_owned()
            .collect()
    }

    #[actix_web::test]
    async fn the_insert_carries_the_pinned_settings_of_the_server_generation() {
        let modern = insert_query("26.9.1.1").await;
        let has =
            |q: &[(String, String)], k: &str, v: &str| q.iter().any(|(a, b)| a == k && b == v);
        for (name, value) in insert_settings(Profile::Modern) {
            assert!(
                has(&modern, name, value),
                "{name}={value} missing: {modern:?}"
            );
        }
        assert!(has(&modern, "async_insert", "0"), "{modern:?}");
        assert!(has(&modern, "insert_deduplicate", "1"), "{modern:?}");
        assert!(
            has(&modern, "insert_deduplication_token", "tok-1"),
            "{modern:?}"
        );

        // 18.16 fails a query naming a setting it does not know: only what it has.
        let legacy = insert_query("18.16.1").await;
        for (name, value) in insert_settings(Profile::Legacy) {
            assert!(
                has(&legacy, name, value),
                "{name}={value} missing: {legacy:?}"
            );
        }
        assert!(has(&legacy, "insert_deduplicate", "1"), "{legacy:?}");
        for unknown in ["async_insert", "insert_deduplication_token"] {
            assert!(
                !legacy.iter().any(|(k, _)| k == unknown),
                "{unknown} sent to 18.16: {legacy:?}"
            );
        }
        assert!(!legacy.iter().any(|(k, _)| k == "insert_distributed_sync"));
        assert!(!legacy.iter().any(|(k, _)| k == "insert_quorum"));
    }

    #[actix_web::test]
    async fn an_insert_into_a_cluster_waits_for_the_shards() {
        let has =
            |q: &[(String, String)], k: &str, v: &str| q.iter().any(|(a, b)| a == k && b == v);
        for version in ["18.16.1", "26.9.1.1"] {
            let q = insert_query_on(version, Some("adjust_local")).await;
            assert!(has(&q, "insert_distributed_sync", "1"), "{version}: {q:?}");
            // Both replicas of a shard hold an acknowledged insert (both names exist on 18.16).
            assert!(has(&q, "insert_quorum", "2"), "{version}: {q:?}");
            assert!(
                has(&q, "insert_quorum_timeout", "30000"),
                "{version}: {q:?}"
            );
            assert!(has(&q, "insert_deduplicate", "1"), "{version}: {q:?}");
            let sql = q.iter().find(|(k, _)| k == "query").unwrap();
            assert!(
                sql.1.starts_with("INSERT INTO adjust.callbacks "),
                "{sql:?}"
            );
        }
    }

    /// A stand-in for 18.16 refusing rows it cannot parse: it answers an INSERT with the error as
    /// soon as it has the request's head, then reads on until the client stops sending
    /// (`read_on`) or closes the connection at once.
    async fn refusing_clickhouse(read_on: bool) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        actix_web::rt::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                actix_web::rt::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = vec![0u8; 64 << 10];
                    loop {
                        let end = loop {
                            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                                break at + 4;
                            }
                            match sock.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        };
                        let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                        buf.drain(..end);
                        if head.contains("insert") {
                            let msg = "Code: 27, e.displayText() = DB::Exception: Cannot parse \
                                       input: expected \\t before: x, e.what() = DB::Exception\n";
                            let answer = format!(
                                "HTTP/1.1 500 Internal Server Error\r\nContent-Length: {}\r\n\
                                 Connection: close\r\n\r\n{msg}",
                                msg.len()
                            );
                            let _ = sock.write_all(answer.as_bytes()).await;
                            if !read_on {
                                return;
                            }
                            while let Ok(n) = sock.read(&mut chunk).await {
                                if n == 0 {
                                    break;
                                }
                            }
                            return;
                        }
                        // `SELECT version()`: its body, then the answer.
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        while buf.len() < len {
                            match sock.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        buf.drain(..len);
                        let version = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n18.16.1\n";
                        if sock.write_all(version).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        url
    }

    #[actix_web::test]
    async fn rows_refused_before_their_body_ends_get_the_servers_answer_not_a_closed_channel() {
        for read_on in [true, false] {
            let url = refusing_clickhouse(read_on).await;
            let store = ClickHouseStore::new(stand_in_config(url, None)).unwrap();
            // Many blocks: the server answers while most are still to be sent.
            let rows = Bytes::from(vec![b'x'; 32 * SEND_BLOCK]);
            for _ in 0..3 {
                let e = store.insert(&rows, "tok-1").await.unwrap_err();
                assert_eq!(e.code, Some(27), "{e:?}");
                assert_eq!(e.class, ErrorClass::Data, "{e:?}");
            }
        }
    }
}
