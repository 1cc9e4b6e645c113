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
use crate::row::{self, Column, Profile, rowbinary as rb};
use crate::schema::{self, Target};

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

    /// Creates the database and tables for the connected server's generation, and adds any
    /// column the code has and the table lacks. Idempotent.
    pub async fn migrate(&self) -> Result<MigrateReport, StoreError> {
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
        report.added_columns = self.add_missing_columns(profile).await?;
        for st in schema::view_statements(profile, target) {
            self.execute(profile, &st.sql).await?;
            report.statements.push(st.what);
        }
        *self.ready.lock().await = Some(profile);
        Ok(report)
    }

    /// Names of the columns the table has now.
    pub async fn existing_columns(&self) -> Result<Vec<String>, StoreError> {
        let t = &self.config.target;
        let sql = format!(
            "SELECT name FROM system.columns WHERE database = '{}' AND table = '{}'",
            t.database.replace('\'', "\\'"),
            t.table.replace('\'', "\\'")
        );
        let mut cursor = self
            .client
            .query_raw(&sql)
            .fetch_bytes("TabSeparated")
            .map_err(to_store_error)?;
        let bytes = cursor.collect().await.map_err(to_store_error)?;
        Ok(String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect())
    }

    /// Wire columns the code writes that the table lacks.
    pub async fn missing_columns(&self) -> Result<Vec<Column>, StoreError> {
        let have = self.existing_columns().await?;
        Ok(row::columns()
            .into_iter()
            .filter(|c| c.wire_names().iter().any(|n| !have.contains(n)))
            .collect())
    }

    async fn add_missing_columns(&self, profile: Profile) -> Result<Vec<String>, StoreError> {
        let missing = self.missing_columns().await?;
        let mut added = Vec::new();
        for c in missing {
            let sql = format!(
                "ALTER TABLE {} ADD COLUMN {} {}",
                self.config.target.table(),
                c.name,
                c.ty(profile)
            );
            self.execute(profile, &sql).await?;
            added.push(c.name);
        }
        Ok(added)
    }

    /// The server profile, probing (and migrating, when enabled) on first use.
    async fn ensure_ready(&self) -> Result<Profile, StoreError> {
        let mut ready = self.ready.lock().await;
        if let Some(p) = *ready {
            return Ok(p);
        }
        let profile = if self.config.auto_migrate {
            drop(ready);
            let report = self.migrate().await?;
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
