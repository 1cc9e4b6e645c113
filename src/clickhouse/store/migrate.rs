//! `migrate`: create or upgrade the ClickHouse objects for the connected server's generation,
//! add what the table lacks, promote `--physical` placeholders, and move a table of the first
//! layout to the two-tier one ([`crate::clickhouse::schema::upgrade`]).

use super::{ClickHouseStore, ErrorClass, Profile, StoreError, Target, row, schema, upgrade};
use crate::clickhouse::quote;

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
    /// Objects of an earlier definition replaced (views) or brought up to date (the erasure
    /// requests' table and view), each with what was done.
    pub replaced: Vec<String>,
    /// Objects the connected server did not have before.
    pub created: Vec<String>,
    /// What the run left alone that the user should know of.
    pub notes: Vec<String>,
}

impl MigrateReport {
    /// Whether the run changed anything on the connected server.
    pub fn changed(&self) -> bool {
        self.upgraded.is_some()
            || !self.added_columns.is_empty()
            || !self.promoted_columns.is_empty()
            || !self.replaced.is_empty()
            || !self.created.is_empty()
    }
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

impl ClickHouseStore {
    /// Runs a query and returns its TabSeparated rows, split into fields.
    pub(super) async fn rows(
        &self,
        profile: Profile,
        sql: &str,
    ) -> Result<Vec<Vec<String>>, StoreError> {
        let mut q = self.client.query_raw(sql);
        if profile == Profile::Legacy {
            q = q.with_setting("allow_experimental_low_cardinality_type", "1");
        }
        let mut cursor = q
            .fetch_bytes("TabSeparated")
            .map_err(|e| self.store_error(e))?;
        let bytes = cursor.collect().await.map_err(|e| self.store_error(e))?;
        Ok(String::from_utf8_lossy(&bytes)
            .lines()
            .map(|l| l.split('\t').map(str::to_owned).collect())
            .collect())
    }

    pub(super) async fn count(&self, profile: Profile, sql: &str) -> Result<u64, StoreError> {
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
    /// copy is for the `migrate` command, not for a sink's start).
    pub(super) async fn migrate_with(&self, upgrade: bool) -> Result<MigrateReport, StoreError> {
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
        let before = self.object_names().await?;
        if target.cluster.is_some() {
            // A sink's first contact: ON CLUSTER DDL waits for every node (up to a minute per
            // statement while one is down), so it runs only when the connected node lacks
            // something or holds an object of an earlier version; `migrate --cluster` always
            // runs it.
            if !upgrade && self.cluster_schema_complete(profile).await? {
                *self.ready.lock().await = Some(profile);
                return Ok(report);
            }
            self.check_cluster_target().await?;
        }
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
            if target.cluster.is_some() {
                return Err(StoreError::new(
                    ErrorClass::Transient,
                    None,
                    format!(
                        "{} has the first release's layout; moving it to the two-tier layout is not supported with --cluster: run `adjust-sink migrate` without --cluster against a single server first",
                        target.storage().table()
                    ),
                ));
            }
            report.upgraded = Some(self.upgrade_layout(profile).await?);
        }
        let moved_cold = if upgrade::has_cold_arrays_only(&self.existing_columns().await?) {
            self.move_cold_arrays(profile).await?;
            report.statements.push(format!(
                "the cold tier of {} as one JSON text (`cold`, computed from the two arrays for older rows)",
                target.table()
            ));
            true
        } else {
            false
        };
        let rekeyed = self.cold_keyed_by_names().await?;
        if rekeyed {
            self.rekey_cold(profile).await?;
            report.statements.push(format!(
                "the cold text of {} keyed by codes (its columns re-pointed, its rows rewritten)",
                target.table()
            ));
        }
        let (mut added, promoted) = self.add_missing_columns(profile).await?;
        if moved_cold {
            added.push(row::COLD.to_string());
        }
        if target.cluster.is_some() {
            // A Distributed table cannot be altered ON CLUSTER: it is created again over the
            // altered local tables (also when an earlier run stopped between the two).
            let local: Vec<String> = self
                .columns_of(&target.storage())
                .await?
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            let distributed: Vec<String> = self
                .columns_of(target)
                .await?
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            if !added.is_empty() || !promoted.is_empty() || rekeyed || local != distributed {
                self.execute(profile, &schema::cluster::drop_distributed(target))
                    .await?;
                self.execute(
                    profile,
                    &schema::cluster::create_distributed(target, "callback_id"),
                )
                .await?;
                report.statements.push(format!(
                    "table {} (created again over {} with its columns)",
                    target.table(),
                    target.storage().table()
                ));
            }
        }
        report.added_columns = added;
        report.promoted_columns = promoted;
        let stored = self.definitions().await?;
        let record_all = self.upgrade_erasures(profile, &stored, &mut report).await?;
        for st in schema::view_statements(profile, target) {
            self.execute(profile, &st.sql).await?;
            report.statements.push(st.what);
        }
        // The views and rollups of a database serve one table: those made for another table
        // of the database are left to it (replacing them would turn them from one table to the
        // other at every start of a sink of either).
        let owner = views_owner(&stored, target);
        if let Some(other) = &owner {
            report.notes.push(format!(
                "the views and rollups of {db} read {db}.{other}, so the rows of {table} are in none of them; they are left as they are (a database has them for one table: give {table} a --database of its own to have them)",
                db = target.database,
                table = target.table()
            ));
        } else {
            self.upgrade_rollups(profile, &stored, &mut report).await?;
        }
        // A view of an earlier definition (its marker differs) is replaced in one step; a
        // current one is left alone, so queries on it never fail.
        for v in schema::views::VIEWS.iter().filter(|_| owner.is_none()) {
            let select = schema::views::select(v, profile, target);
            if is_stale(&stored, v.name, &select) {
                for sql in schema::views::replace_view(v.name, &select, profile, target) {
                    self.execute(profile, &sql).await?;
                }
                report.replaced.push(format!(
                    "view {}.{} (its definition changed; {})",
                    target.database,
                    v.name,
                    match profile {
                        Profile::Modern => "CREATE OR REPLACE VIEW",
                        Profile::Legacy => "created anew and swapped in with one RENAME",
                    }
                ));
            }
        }
        if record_all {
            // Forget callbacks inserted while the view was away (or stored before there was
            // one) become requests; those already recorded collapse with theirs.
            self.execute(profile, &schema::erasure::record_all_sql(target))
                .await?;
        }
        let after = self.object_names().await?;
        report.created = after
            .into_iter()
            .filter(|n| !before.contains(n))
            .map(|n| format!("{}.{n}", target.database))
            .collect();
        *self.ready.lock().await = Some(profile);
        Ok(report)
    }

    /// The names of the tables and views of the database (on the connected server).
    async fn object_names(&self) -> Result<Vec<String>, StoreError> {
        let sql = format!(
            "SELECT name FROM system.tables WHERE database = {}",
            quote(&self.config.target.database)
        );
        Ok(self
            .rows(Profile::Legacy, &sql)
            .await?
            .into_iter()
            .filter_map(|r| r.into_iter().next())
            .collect())
    }

    /// Each table and view of the database with its `create_table_query` (TabSeparated-escaped;
    /// the definition markers have no character it escapes).
    pub(super) async fn definitions(&self) -> Result<Vec<(String, String)>, StoreError> {
        let sql = format!(
            "SELECT name, create_table_query FROM system.tables WHERE database = {}",
            quote(&self.config.target.database)
        );
        Ok(self
            .rows(Profile::Legacy, &sql)
            .await?
            .into_iter()
            .filter_map(|r| match <[String; 2]>::try_from(r) {
                Ok([name, query]) => Some((name, query)),
                Err(_) => None,
            })
            .collect())
    }

    /// Columns of `table` with their default kind (`''`, `DEFAULT`, `MATERIALIZED`, `ALIAS`).
    pub(super) async fn columns_of(&self, t: &Target) -> Result<Vec<(String, String)>, StoreError> {
        let sql = format!(
            "SELECT name, default_kind FROM system.columns WHERE database = {} AND table = {}",
            quote(&t.database),
            quote(&t.table)
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

    /// The callbacks table's columns with their default kind (on a cluster those of the local
    /// table on the connected node).
    pub async fn existing_columns(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.columns_of(&self.config.target.storage()).await
    }

    /// Whether the connected node has the Distributed table over a local table with every
    /// column, every other object of [`schema::cluster::objects`], and nothing that `migrate`
    /// brings up to date in place ([`upgrades_pending`](Self::upgrades_pending)).
    async fn cluster_schema_complete(&self, profile: Profile) -> Result<bool, StoreError> {
        let target = &self.config.target;
        let names = schema::cluster::objects(target);
        let list = names
            .iter()
            .map(|n| quote(n))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT count() FROM system.tables WHERE database = {} AND name IN ({list})",
            quote(&target.database)
        );
        if self.count(Profile::Legacy, &sql).await? != names.len() as u64 {
            return Ok(false);
        }
        let local: Vec<String> = self
            .existing_columns()
            .await?
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        let distributed: Vec<String> = self
            .columns_of(target)
            .await?
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        Ok(local == distributed
            && self.missing_columns().await?.is_empty()
            && !self.upgrades_pending(profile).await?)
    }

    /// Before anything runs ON CLUSTER: the connected server knows the cluster, and the
    /// callbacks table, if it exists, is the Distributed table (not a single-server table, which
    /// `CREATE … IF NOT EXISTS` would silently keep).
    async fn check_cluster_target(&self) -> Result<(), StoreError> {
        let target = &self.config.target;
        let cluster = target.cluster.as_deref().unwrap_or_default();
        let fail = |message: String| Err(StoreError::new(ErrorClass::Transient, None, message));
        let sql = format!(
            "SELECT count() FROM system.clusters WHERE cluster = {}",
            quote(cluster)
        );
        if self.count(Profile::Legacy, &sql).await? == 0 {
            return fail(format!(
                "the server at {} has no cluster `{cluster}` in its <remote_servers> (see system.clusters)",
                self.config.url
            ));
        }
        let sql = format!(
            "SELECT engine FROM system.tables WHERE database = {} AND name = {}",
            quote(&target.database),
            quote(&target.table)
        );
        if let Some(engine) = self
            .rows(Profile::Legacy, &sql)
            .await?
            .into_iter()
            .find_map(|r| r.into_iter().next())
            && engine != "Distributed"
        {
            return fail(format!(
                "{} exists as a {engine} table, but --cluster keeps the rows in {} on every node behind a Distributed {}; migrate does not move a single-server table onto a cluster (copy its rows with INSERT … SELECT into the Distributed table after renaming it)",
                target.table(),
                target.storage().table(),
                target.table()
            ));
        }
        Ok(())
    }
}

/// The table of the database other than `target`'s that its views and rollups read, when they
/// were made for another table. The rollups' materialized views decide (they feed tables; an
/// earlier version turned the plain views to whichever table was migrated last, never them),
/// else the plain views.
pub(super) fn views_owner(stored: &[(String, String)], target: &Target) -> Option<String> {
    let from = format!("FROM {}.", target.database);
    let reads = |name: &str| {
        let (_, query) = stored.iter().find(|(n, _)| n == name)?;
        let at = query.find(&from)? + from.len();
        Some(
            query[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>(),
        )
    };
    let read = schema::views::ROLLUPS
        .iter()
        .find_map(|r| reads(&r.mv_name()))
        .or_else(|| schema::views::VIEWS.iter().find_map(|v| reads(v.name)))?;
    let ours = [target.table.clone(), target.storage().table];
    (!ours.contains(&read)).then_some(read)
}

/// Whether view `name` exists with a definition other than `select` (its marker differs).
pub(super) fn is_stale(stored: &[(String, String)], name: &str, select: &str) -> bool {
    let marker = schema::views::marker(select);
    stored
        .iter()
        .any(|(n, query)| n == name && !query.contains(&marker))
}

/// One node of the cluster as `check --cluster` sees it.
#[derive(Debug, Clone)]
pub struct ClusterNode {
    pub shard: u32,
    pub replica: u32,
    /// `host:port` of its native interface, from `system.clusters`.
    pub address: String,
    pub state: NodeState,
}

/// Whether a node has the sink's objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeState {
    /// Every table and view `migrate` creates.
    Complete,
    /// These are missing (run `adjust-sink migrate --cluster …` again once the node is up).
    Lacks(Vec<String>),
    /// The node did not answer (down or unreachable from the connected node).
    Unreachable(String),
}

impl ClickHouseStore {
    /// Every replica of the cluster (from the connected node's `system.clusters`) and whether it
    /// has each table and view of [`schema::cluster::objects`], asked one node at a time through
    /// `remote('host:port', system.tables)` (18.16 has no `clusterAllReplicas`).
    pub async fn cluster_nodes(&self) -> Result<Vec<ClusterNode>, StoreError> {
        let target = &self.config.target;
        let Some(cluster) = target.cluster.as_deref() else {
            return Ok(Vec::new());
        };
        let sql = format!(
            "SELECT shard_num, replica_num, host_address, port FROM system.clusters WHERE cluster = {} ORDER BY shard_num, replica_num",
            quote(cluster)
        );
        let rows = self.rows(Profile::Legacy, &sql).await?;
        if rows.is_empty() {
            return Err(StoreError::new(
                ErrorClass::Transient,
                None,
                format!(
                    "the server at {} has no cluster `{cluster}` in its <remote_servers> (see system.clusters)",
                    self.config.url
                ),
            ));
        }
        let want = schema::cluster::objects(target);
        let names = want.iter().map(|n| quote(n)).collect::<Vec<_>>().join(", ");
        let mut out = Vec::new();
        for r in rows {
            let [shard, replica, host, port] = &r[..] else {
                continue;
            };
            let address = if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            };
            let sql = format!(
                "SELECT name FROM remote({}, system.tables) WHERE database = {} AND name IN ({names})",
                quote(&address),
                quote(&target.database)
            );
            let state = match self.rows(Profile::Legacy, &sql).await {
                Ok(found) => {
                    let found: Vec<String> = found
                        .into_iter()
                        .filter_map(|r| r.into_iter().next())
                        .collect();
                    let lacks: Vec<String> = want
                        .iter()
                        .filter(|w| !found.contains(w))
                        .map(|w| format!("{}.{w}", target.database))
                        .collect();
                    if lacks.is_empty() {
                        NodeState::Complete
                    } else {
                        NodeState::Lacks(lacks)
                    }
                }
                Err(e) => NodeState::Unreachable(e.message),
            };
            out.push(ClusterNode {
                shard: shard.parse().unwrap_or(0),
                replica: replica.parse().unwrap_or(0),
                address,
                state,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(table: &str, cluster: bool) -> Target {
        Target {
            database: "adjust".into(),
            table: table.into(),
            cluster: cluster.then(|| "c".to_string()),
            ..Default::default()
        }
    }

    #[test]
    fn views_made_for_another_table_are_told_apart() {
        let stored = |from: &str| {
            vec![
                (
                    "t1".to_string(),
                    "CREATE TABLE adjust.t1 (x UInt8) ENGINE = Log".to_string(),
                ),
                (
                    "installs".to_string(),
                    format!(
                        "CREATE VIEW adjust.installs AS WITH 'adjust-sink 1' AS adjust_sink_definition SELECT received_at FROM adjust.{from} FINAL WHERE activity_kind IN ('install')"
                    ),
                ),
                (
                    "installs_daily_activities_mv".to_string(),
                    format!(
                        "CREATE MATERIALIZED VIEW adjust.installs_daily_activities_mv TO adjust.installs_daily_activities AS SELECT x FROM adjust.{from} WHERE 1"
                    ),
                ),
            ]
        };
        assert_eq!(
            views_owner(&stored("callbacks"), &target("callbacks", false)),
            None
        );
        assert_eq!(
            views_owner(&stored("callbacks"), &target("t1", false)).as_deref(),
            Some("callbacks")
        );
        // On a cluster the rollups read the local table, the views the Distributed one.
        assert_eq!(
            views_owner(&stored("callbacks_local"), &target("callbacks", true)),
            None
        );
        assert_eq!(
            views_owner(&stored("callbacks"), &target("callbacks", true)),
            None
        );
        assert_eq!(views_owner(&[], &target("t1", false)), None);
        // Views an earlier version turned to another table: the rollups decide.
        let mut mixed = stored("callbacks");
        mixed[1].1 = mixed[1].1.replace("adjust.callbacks", "adjust.t1");
        assert_eq!(views_owner(&mixed, &target("callbacks", false)), None);
        assert_eq!(
            views_owner(&mixed, &target("t1", false)).as_deref(),
            Some("callbacks")
        );
    }
}
