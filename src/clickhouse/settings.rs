//! The ClickHouse sections of the command line: how to reach the server (Connection) and where
//! the rows live (Target table). Every command that talks to ClickHouse flattens both.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::credentials::{Secret, ServerUrl, split_url};
use super::schema::Target;
use super::store::{ClickHouseConfig, Password};
use crate::adjust::decode::CustomColumn;
use crate::settings::{ConfigError, err, values};

/// How to reach ClickHouse. `Debug` shows no password.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Connection")]
pub struct ConnectionArgs {
    /// ClickHouse HTTP interface URL; `https://` for TLS (ClickHouse's `https_port`, 8443 on
    /// ClickHouse Cloud). `user:password@` in it is used as the credentials and never printed.
    #[arg(
        long,
        value_name = "URL",
        env = "ADJUST_SINK_CLICKHOUSE_URL",
        default_value = "http://127.0.0.1:8123",
        hide_env_values = true
    )]
    pub clickhouse_url: ServerUrl,

    /// ClickHouse user (the server's default user when not set).
    #[arg(long, env = "ADJUST_SINK_CLICKHOUSE_USER")]
    pub clickhouse_user: Option<String>,

    /// ClickHouse password (prefer --clickhouse-password-file: a value given here is visible
    /// in the process list; an empty one counts as not given).
    #[arg(long, env = "ADJUST_SINK_CLICKHOUSE_PASSWORD", hide_env_values = true)]
    pub clickhouse_password: Option<Secret>,

    /// File holding the ClickHouse password (read at start; a trailing newline is not part of
    /// it). Not together with --clickhouse-password.
    #[arg(
        long,
        value_name = "PATH",
        env = "ADJUST_SINK_CLICKHOUSE_PASSWORD_FILE"
    )]
    pub clickhouse_password_file: Option<PathBuf>,

    /// PEM file with the CA certificate(s) that signed ClickHouse's TLS certificate, trusted
    /// instead of the system's root certificates (for `https://` URLs).
    #[arg(long, value_name = "PATH", env = "ADJUST_SINK_CLICKHOUSE_CA")]
    pub clickhouse_ca: Option<PathBuf>,

    /// With --cluster: replicas of a shard that must have written an insert before it counts as
    /// done (ClickHouse's insert_quorum): 2 keeps every acknowledged callback on two disks, but
    /// an insert cannot complete with a replica down (retried while the write-ahead log holds the
    /// rows) and, on 18.16, a partition's last quorum part is not mutated while it is the last
    /// one (an erasure of its rows can wait indefinitely). 1: the receiving replica only.
    #[arg(
        long,
        value_name = "N",
        env = "ADJUST_SINK_INSERT_QUORUM",
        default_value_t = 1
    )]
    pub insert_quorum: u32,

    /// With --cluster and --insert-quorum 2 or more: how long an insert waits for the quorum
    /// before it fails (and is retried).
    #[arg(
        long,
        value_name = "DURATION",
        env = "ADJUST_SINK_INSERT_QUORUM_TIMEOUT",
        default_value = "30s"
    )]
    pub insert_quorum_timeout: String,
}

/// Where the table lives and what it holds beyond the catalog.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Target table")]
pub struct TableArgs {
    /// Database holding the callbacks table.
    #[arg(long, env = "ADJUST_SINK_DATABASE", default_value = "adjust")]
    pub database: String,

    /// Callbacks table (rejected rows go to `<table>_rejects`).
    #[arg(long, env = "ADJUST_SINK_TABLE", default_value = "callbacks")]
    pub table: String,

    /// Give this cold placeholder a physical column (repeatable, or comma-separated in the env
    /// var): `migrate` turns its ALIAS column into a DEFAULT column that ClickHouse fills from the
    /// stored text, for new rows at insert and for older rows as parts merge.
    #[arg(
        long = "physical",
        env = "ADJUST_SINK_PHYSICAL",
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub physical: Vec<String>,

    /// A typed column of your own for a key Adjust's catalog does not know (an SDK callback or
    /// partner parameter), `NAME:TYPE` with TYPE one of string, lowcard, int, float, bool,
    /// timestamp (repeatable); `migrate` adds it, and its values land there instead of `extra`.
    /// Give `serve` and `import` the same list as `migrate`.
    #[arg(
        long = "column",
        env = "ADJUST_SINK_COLUMN",
        value_name = "NAME:TYPE",
        value_delimiter = ','
    )]
    pub column: Vec<String>,

    /// ClickHouse cluster (a name in the servers' `<remote_servers>`): the DDL runs ON CLUSTER,
    /// the rows live in replicated `<table>_local` tables on every node behind a Distributed
    /// `<table>` sharded by callback_id, and inserts wait for every shard
    /// (insert_distributed_sync=1). Point --clickhouse-url at any node.
    #[arg(long, value_name = "NAME", env = "ADJUST_SINK_CLUSTER")]
    pub cluster: Option<String>,
}

impl TableArgs {
    /// The validated target.
    pub fn target(&self) -> Result<Target, ConfigError> {
        for (flag, name) in [("--database", &self.database), ("--table", &self.table)] {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return err(format!(
                    "{flag} `{name}`: use letters, digits and underscores only"
                ));
            }
        }
        let physical: Vec<String> = values(&self.physical).map(str::to_string).collect();
        super::schema::check_physical(&physical).map_err(ConfigError)?;
        let mut columns: Vec<CustomColumn> = Vec::new();
        for spec in values(&self.column) {
            let c = CustomColumn::parse(spec)
                .map_err(|e| ConfigError(format!("--column `{spec}`: {e}")))?;
            if is_sink_column(c.name) {
                return err(format!(
                    "--column `{spec}`: `{}` is a column of the sink",
                    c.name
                ));
            }
            if columns.iter().any(|o| o.name == c.name) {
                return err(format!("--column `{}` is given twice", c.name));
            }
            columns.push(c);
        }
        let cluster = self
            .cluster
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty());
        if let Some(c) = cluster
            && !c
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-' || ch == '.')
        {
            return err(format!(
                "--cluster `{c}`: use letters, digits, `_`, `-` and `.` only"
            ));
        }
        Ok(Target {
            database: self.database.clone(),
            table: self.table.clone(),
            physical,
            columns,
            cluster: cluster.map(str::to_string),
        })
    }
}

/// Whether `name` is taken by a column the sink writes (or one a later layout would need).
fn is_sink_column(name: &str) -> bool {
    name == "cold_map"
        || crate::row::wire_columns()
            .iter()
            .any(|c| name == c.name || name.strip_suffix("_map") == Some(c.name.as_str()))
}

impl ConnectionArgs {
    /// The validated client settings for `target`.
    pub fn config(
        &self,
        target: Target,
        auto_migrate: bool,
        insert_timeout: Duration,
    ) -> Result<ClickHouseConfig, ConfigError> {
        // `self.clickhouse_url` prints with its password redacted.
        let raw = self.clickhouse_url.expose();
        let https = raw.starts_with("https://");
        if !https && !raw.starts_with("http://") {
            return err(format!(
                "--clickhouse-url `{}` must start with http:// or https://",
                self.clickhouse_url
            ));
        }
        let split = split_url(raw).map_err(|e| {
            ConfigError(format!(
                "--clickhouse-url `{}` is not a URL: {e}",
                self.clickhouse_url
            ))
        })?;
        let user = match (
            split.user,
            self.clickhouse_user.clone().filter(|u| !u.is_empty()),
        ) {
            (Some(_), Some(_)) => {
                return err(
                    "the ClickHouse user is given both in --clickhouse-url and with --clickhouse-user; keep one",
                );
            }
            (a, b) => a.or(b),
        };
        let given = self.clickhouse_password.clone().filter(|p| !p.is_empty());
        let password = match (split.password, given, &self.clickhouse_password_file) {
            (Some(p), None, None) => Some(Password::Given(p)),
            (None, Some(p), None) => Some(Password::Given(p)),
            (None, None, Some(path)) => Some(Password::File(path.clone())),
            (None, None, None) => None,
            _ => {
                return err(
                    "the ClickHouse password is given more than once (in --clickhouse-url, \
                     --clickhouse-password, --clickhouse-password-file); keep one",
                );
            }
        };
        if let Some(ca) = &self.clickhouse_ca
            && !https
        {
            return err(format!(
                "--clickhouse-ca {} is only used for https:// URLs, and --clickhouse-url is `{}`",
                ca.display(),
                self.clickhouse_url
            ));
        }
        if self.insert_quorum >= 2 && target.cluster.is_none() {
            return err(format!(
                "--insert-quorum {} needs --cluster: a single server is one replica, and the \
                 quorum would not be asked for",
                self.insert_quorum
            ));
        }
        Ok(ClickHouseConfig {
            url: split.url,
            user,
            password,
            ca: self.clickhouse_ca.clone(),
            target,
            auto_migrate,
            insert_timeout,
            insert_quorum: self.insert_quorum,
            insert_quorum_timeout: crate::settings::positive_duration(
                "--insert-quorum-timeout",
                &self.insert_quorum_timeout,
            )?,
            deduplicate: true,
        })
    }
}

/// Both ClickHouse sections, for the commands that take nothing else of ClickHouse.
#[derive(Debug, Clone, Args)]
pub struct ClickHouseArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(flatten)]
    pub table: TableArgs,
}

impl ClickHouseArgs {
    pub fn config(
        &self,
        auto_migrate: bool,
        insert_timeout: Duration,
    ) -> Result<ClickHouseConfig, ConfigError> {
        self.connection
            .config(self.table.target()?, auto_migrate, insert_timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(columns: &[&str]) -> Result<Target, ConfigError> {
        TableArgs {
            database: "adjust".into(),
            table: "callbacks".into(),
            physical: Vec::new(),
            column: columns.iter().map(|c| c.to_string()).collect(),
            cluster: None,
        }
        .target()
    }

    #[test]
    fn own_columns_may_not_take_a_sink_column() {
        assert_eq!(table(&["loyalty_tier:lowcard"]).unwrap().columns.len(), 1);
        for taken in [
            "extra:string",
            "ingest_source:int",
            "cold:string",
            "extra_map:int",
        ] {
            let e = table(&[taken]).err().unwrap().to_string();
            assert!(e.contains("is a column of the sink"), "{taken}: {e}");
        }
        assert!(table(&["tier:int", "tier:string"]).is_err());
    }
}
