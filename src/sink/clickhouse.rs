//! The real store: the official `clickhouse` crate over HTTP, RowBinary with LZ4.
//!
//! The server generation is probed with `SELECT version()` on first use; 18.16 gets no setting
//! it does not know (no `insert_deduplication_token`), modern servers get the dedup token.
//! Unless disabled, the first use also runs `migrate`, so a fresh server just works.

use std::time::Duration;

use bytes::Bytes;
use clickhouse::Client;
use tokio::sync::Mutex;

use super::classify::{ErrorClass, classify_code, code_of};
use super::{Reject, Store, StoreError};
use crate::row::{self, Profile, rowbinary as rb};
use crate::schema::{self, Target, upgrade};

/// How to reach ClickHouse.
#[derive(Debug, Clone)]
pub struct ClickHouseConfig {
    pub url: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub target: Target,
    /// Create or upgrade the tables on first contact.
    pub auto_migrate: bool,
    /// Upper bound of one INSERT (sending and waiting for the answer).
    pub insert_timeout: Duration,
}

pub struct ClickHouseStore {
    client: Client,
    config: ClickHouseConfig,
    insert_sql: String,
    rejects_sql: String,
    /// The probed server profile, once known (and migrated, when enabled).
    ready: Mutex<Option<Profile>>,
}

/// What `migrate` did.
#[derive(Debug, Default)]
pub struct MigrateReport {
    pub version: String,
    pub profile: Option<Profile>,
    pub statements: Vec<String>,
    pub added_columns: Vec<String>,
    /// Cold placeholders turned from ALIAS into DEFAULT columns (`--physical`).
    pub promoted_columns: Vec<String>,
    /// Set when a table of the first layout was moved to the two-tier layout.
    pub upgraded: Option<Upgraded>,
}

/// What moving a first-layout table did.
#[derive(Debug, Default, Clone)]
pub struct Upgraded {
    pub rows: u64,
    pub partitions: usize,
    /// Partitions found already copied by an earlier, interrupted run.
    pub resumed: usize,
    pub seconds: f64,
    /// Where the old table was kept.
    pub kept_as: String,
}

fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

pub(crate) fn to_store_error(e: clickhouse::error::Error) -> StoreError {
    use clickhouse::error::Error as E;
    match e {
        E::Network(_) | E::TimedOut => StoreError::new(ErrorClass::Transient, None, e.to_string()),
        E::BadResponse(msg) => {
            let code = code_of(&msg);
            let class = match code {
                Some(c) => classify_code(c),
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
    pub fn new(config: ClickHouseConfig) -> Self {
        let mut client = Client::default()
            .with_url(&config.url)
            .with_validation(false);
        if let Some(user) = &config.user {
            client = client.with_user(user);
        }
        if let Some(password) = &config.password {
            client = client.with_password(password);
        }
        let insert_sql = row::insert_sql(&config.target.database, &config.target.table);
        let rejects_sql = format!(
            "INSERT INTO {} (rejected_at, callback_id, error, row_json, row) FORMAT RowBinary",
            schema::rejects_table(&config.target)
        );
        ClickHouseStore {
            client,
            config,
            insert_sql,
            rejects_sql,
            ready: Mutex::new(None),
        }
    }

    /// `SELECT version()`.
    pub async fn version(&self) -> Result<String, StoreError> {
        let mut cursor = self
            .client
            .query_raw("SELECT version()")
            .fetch_bytes("TabSeparated")
            .map_err(to_store_error)?;
        let bytes = cursor.collect().await.map_err(to_store_error)?;
        Ok(String::from_utf8_lossy(&bytes).trim().to_string())
    }

    async fn execute(&self, profile: Profile, sql: &str) -> Result<(), StoreError> {
        let mut q = self.client.query_raw(sql);
        if profile == Profile::Legacy {
            q = q.with_setting("allow_experimental_low_cardinality_type", "1");
        }
        q.execute().await.map_err(to_store_error)
    }

    /// Runs a query and returns its TabSeparated rows, split into fields.
    async fn rows(&self, profile: Profile, sql: &str) -> Result<Vec<Vec<String>>, StoreError> {
        let mut q = self.client.query_raw(sql);
        if profile == Profile::Legacy {
            q = q.with_setting("allow_experimental_low_cardinality_type", "1");
        }
        let mut cursor = q.fetch_bytes("TabSeparated").map_err(to_store_error)?;
        let bytes = cursor.collect().await.map_err(to_store_error)?;
        Ok(String::from_utf8_lossy(&bytes)
            .lines()
            .map(|l| l.split('\t').map(str::to_owned).collect())
            .collect())
    }

    async fn count(&self, profile: Profile, sql: &str) -> Result<u64, StoreError> {
        let rows = self.rows(profile, sql).await?;
        Ok(rows
            .first()
            .and_then(|r| r.first())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// Creates the database and tables for the connected server's generation, adds any column
    /// the code has and the table lacks, promotes `--physical` placeholders, and moves a table
    /// of the first layout to the two-tier one. Idempotent.
    pub async fn migrate(&self) -> Result<MigrateReport, StoreError> {
        self.migrate_with(true).await
    }

    /// [`migrate`](Self::migrate); without `upgrade`, a first-layout table is an error (the
    /// copy is for the `migrate` command, not for a sink's first insert).
    async fn migrate_with(&self, upgrade: bool) -> Result<MigrateReport, StoreError> {
        let version = self.version().await?;
        let profile = Profile::for_version(&version);
        let mut report = MigrateReport {
            version,
            profile: Some(profile),
            ..Default::default()
        };
        // Tables first, then the columns a newer version added, then the views that read them
        // (18.16 checks a view's columns when it is created).
        let target = &self.config.target;
        for st in schema::table_statements(profile, target) {
            self.execute(profile, &st.sql).await?;
            report.statements.push(st.what);
        }
        if upgrade::is_first_layout(&self.existing_columns().await?) {
            if !upgrade {
                return Err(StoreError::new(
                    ErrorClass::Transient,
                    None,
                    format!(
                        "{} has the first release's layout; run `adjust-sink migrate` to move it to the two-tier layout (rows wait in the queue meanwhile)",
                        target.table()
                    ),
                ));
            }
            report.upgraded = Some(self.upgrade_layout(profile).await?);
        }
        let (added, promoted) = self.add_missing_columns(profile).await?;
        report.added_columns = added;
        report.promoted_columns = promoted;
        for st in schema::view_statements(profile, target) {
            self.execute(profile, &st.sql).await?;
            report.statements.push(st.what);
        }
        *self.ready.lock().await = Some(profile);
        Ok(report)
    }

    /// Columns of `table` with their default kind (`''`, `DEFAULT`, `MATERIALIZED`, `ALIAS`).
    async fn columns_of(&self, t: &Target) -> Result<Vec<(String, String)>, StoreError> {
        let sql = format!(
            "SELECT name, default_kind FROM system.columns WHERE database = {} AND table = {}",
            sql_str(&t.database),
            sql_str(&t.table)
        );
        Ok(self
            .rows(Profile::Legacy, &sql)
            .await?
            .into_iter()
            .map(|mut r| {
                let kind = if r.len() > 1 {
                    r.remove(1)
                } else {
                    String::new()
                };
                (r.swap_remove(0), kind)
            })
            .collect())
    }

    /// The callbacks table's columns with their default kind.
    pub async fn existing_columns(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.columns_of(&self.config.target).await
    }

    /// Columns the code writes or shows that the table lacks (wire columns, then cold
    /// placeholders' ALIAS columns).
    pub async fn missing_columns(&self) -> Result<Vec<String>, StoreError> {
        let have: Vec<String> = self
            .existing_columns()
            .await?
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        let mut missing: Vec<String> = row::wire_columns()
            .into_iter()
            .filter(|c| c.wire_names().iter().any(|n| !have.contains(n)))
            .map(|c| c.name)
            .collect();
        missing.extend(
            schema::cold_columns(Profile::Legacy, &self.config.target)
                .into_iter()
                .filter(|c| !have.iter().any(|h| h == c.name))
                .map(|c| c.name.to_string()),
        );
        Ok(missing)
    }

    /// Adds missing columns; turns the ALIAS column of a `--physical` placeholder into a DEFAULT
    /// one. A DEFAULT column no longer asked for is left as it is (it holds data).
    async fn add_missing_columns(
        &self,
        profile: Profile,
    ) -> Result<(Vec<String>, Vec<String>), StoreError> {
        let have = self.existing_columns().await?;
        let table = self.config.target.table();
        let mut added = Vec::new();
        let mut promoted = Vec::new();
        for c in row::wire_columns() {
            if c.wire_names()
                .iter()
                .any(|n| !have.iter().any(|(h, _)| h == n))
            {
                let sql = format!(
                    "ALTER TABLE {table} ADD COLUMN {} {}",
                    c.name,
                    c.ty(profile)
                );
                self.execute(profile, &sql).await?;
                added.push(c.name);
            }
        }
        for c in schema::cold_columns(profile, &self.config.target) {
            match have.iter().find(|(h, _)| h == c.name) {
                None => {
                    let sql = format!("ALTER TABLE {table} ADD COLUMN {}", c.definition());
                    self.execute(profile, &sql).await?;
                    added.push(c.name.to_string());
                }
                Some((_, kind)) if kind == "ALIAS" && c.kind == schema::ColdKind::Default => {
                    let sql = format!("ALTER TABLE {table} MODIFY COLUMN {}", c.definition());
                    self.execute(profile, &sql).await?;
                    promoted.push(c.name.to_string());
                }
                Some(_) => {}
            }
        }
        Ok((added, promoted))
    }

    /// Moves a first-layout table to the two-tier layout (see [`upgrade`]).
    async fn upgrade_layout(&self, profile: Profile) -> Result<Upgraded, StoreError> {
        let started = std::time::Instant::now();
        let old = &self.config.target;
        let new = upgrade::filling(old);
        let kept = Target {
            table: format!("{}{}", old.table, upgrade::KEPT),
            ..old.clone()
        };
        if !self.columns_of(&kept).await?.is_empty() {
            return Err(StoreError::new(
                ErrorClass::Transient,
                None,
                format!(
                    "{} has the first layout, but {} exists already: rename or drop it, then run migrate again",
                    old.table(),
                    kept.table()
                ),
            ));
        }
        // A first-layout table from an older build may lack placeholders added since.
        let have = self.existing_columns().await?;
        for c in row::columns() {
            if c.wire_names()
                .iter()
                .any(|n| !have.iter().any(|(h, _)| h == n))
            {
                let sql = format!(
                    "ALTER TABLE {} ADD COLUMN {} {}",
                    old.table(),
                    c.name,
                    c.ty(profile)
                );
                self.execute(profile, &sql).await?;
            }
        }
        self.execute(profile, &schema::create_table(profile, &new))
            .await?;
        let partitions: Vec<u32> = self
            .rows(
                profile,
                &format!(
                    "SELECT DISTINCT toYYYYMM(event_date) AS p FROM {} ORDER BY p",
                    old.table()
                ),
            )
            .await?
            .into_iter()
            .filter_map(|r| r.first().and_then(|p| p.parse().ok()))
            .collect();
        let mut report = Upgraded {
            partitions: partitions.len(),
            kept_as: kept.table(),
            ..Default::default()
        };
        tracing::info!(
            table = %old.table(),
            partitions = partitions.len(),
            "moving the table to the two-tier layout"
        );
        for (i, p) in partitions.iter().enumerate() {
            let count = |t: &Target| {
                format!(
                    "SELECT count() FROM {} WHERE toYYYYMM(event_date) = {p}",
                    t.table()
                )
            };
            let want = self.count(profile, &count(old)).await?;
            let have = self.count(profile, &count(&new)).await?;
            if have == want {
                report.resumed += 1;
            } else {
                if have > 0 {
                    let sql = format!("ALTER TABLE {} DROP PARTITION {p}", new.table());
                    self.execute(profile, &sql).await?;
                }
                self.execute(profile, &upgrade::copy_partition(profile, old, &new, *p))
                    .await?;
                let copied = self.count(profile, &count(&new)).await?;
                if copied != want {
                    return Err(StoreError::new(
                        ErrorClass::Transient,
                        None,
                        format!(
                            "partition {p}: copied {copied} rows of {want}; nothing was swapped, run migrate again"
                        ),
                    ));
                }
            }
            report.rows += want;
            tracing::info!(
                partition = p,
                done = i + 1,
                of = partitions.len(),
                rows = want,
                total_rows = report.rows,
                elapsed_s = started.elapsed().as_secs(),
                "partition moved"
            );
        }
        let total = |t: &Target| format!("SELECT count() FROM {}", t.table());
        let (want, have) = (
            self.count(profile, &total(old)).await?,
            self.count(profile, &total(&new)).await?,
        );
        if want != have {
            return Err(StoreError::new(
                ErrorClass::Transient,
                None,
                format!(
                    "{} holds {want} rows but the copy {have} (rows arrived during the move?); nothing was swapped, run migrate again",
                    old.table()
                ),
            ));
        }
        // The rollups' materialized views read the old table; they are created again over the
        // new one after the swap (their rollup tables keep every row).
        for r in schema::views::ROLLUPS {
            let sql = format!("DROP TABLE IF EXISTS {}.{}", old.database, r.mv_name());
            self.execute(profile, &sql).await?;
        }
        let sql = format!(
            "RENAME TABLE {} TO {}, {} TO {}",
            old.table(),
            kept.table(),
            new.table(),
            old.table()
        );
        self.execute(profile, &sql).await?;
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// The server profile, probing (and migrating, when enabled) on first use.
    async fn ensure_ready(&self) -> Result<Profile, StoreError> {
        let mut ready = self.ready.lock().await;
        if let Some(p) = *ready {
            return Ok(p);
        }
        let profile = if self.config.auto_migrate {
            drop(ready);
            let report = self.migrate_with(false).await?;
            if !report.added_columns.is_empty() {
                tracing::info!(columns = ?report.added_columns, "added missing columns");
            }
            tracing::info!(version = %report.version, "ClickHouse ready");
            ready = self.ready.lock().await;
            report.profile.expect("migrate sets the profile")
        } else {
            Profile::for_version(&self.version().await?)
        };
        *ready = Some(profile);
        Ok(profile)
    }

    /// Forgets the probed state, so the next insert probes (and migrates) again.
    async fn reset(&self) {
        *self.ready.lock().await = None;
    }

    async fn send(
        &self,
        sql: &str,
        profile: Profile,
        data: Bytes,
        token: Option<&str>,
    ) -> Result<(), StoreError> {
        let timeout = self.config.insert_timeout;
        let mut insert = self
            .client
            .insert_formatted_with(sql.to_string())
            .with_timeouts(Some(timeout), Some(timeout));
        if let (Profile::Modern, Some(token)) = (profile, token) {
            insert = insert.with_setting("insert_deduplication_token", token);
        }
        insert.send(data).await.map_err(to_store_error)?;
        insert.end().await.map_err(to_store_error)
    }
}

impl Store for ClickHouseStore {
    async fn insert(&self, data: Bytes, _rows: usize, token: &str) -> Result<(), StoreError> {
        let profile = self.ensure_ready().await.map_err(not_the_datas_fault)?;
        let result = self
            .send(&self.insert_sql, profile, data, Some(token))
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
        self.send(&self.rejects_sql, profile, Bytes::from(data), None)
            .await
    }
}
