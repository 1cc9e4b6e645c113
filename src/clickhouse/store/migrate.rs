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
    /// copy is for the `migrate` command, not for a sink's first insert).
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
            // something; `migrate --cluster` always runs it.
            if !upgrade && self.cluster_schema_complete().await? {
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
            if !added.is_empty() || !promoted.is_empty() || local != distributed {
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
        self.upgrade_rollups(profile, &stored, &mut report).await?;
        // A view of an earlier definition (its marker differs) is replaced in one step; a
        // current one is left alone, so queries on it never fail.
        for v in schema::views::VIEWS {
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
    async fn definitions(&self) -> Result<Vec<(String, String)>, StoreError> {
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

    /// Brings the erasure requests' table and view of an earlier version up to date: the
    /// table's missing columns (`app_token`, `outcome`), and the view's definition. 18.16
    /// refuses a materialized view's block that lacks a column of its table, and a view cannot
    /// be altered or renamed there: the view is dropped first, the table altered, and the view
    /// statements create the view again. Returns whether every forget callback must be
    /// recorded afterwards (the view was dropped, or is new on a table that may hold some).
    async fn upgrade_erasures(
        &self,
        profile: Profile,
        stored: &[(String, String)],
        report: &mut MigrateReport,
    ) -> Result<bool, StoreError> {
        use schema::erasure;
        let target = &self.config.target;
        let mv = erasure::mv_name(target);
        let mv_name = mv.split_once('.').map_or(mv.as_str(), |(_, n)| n);
        let current = schema::views::marker(&erasure::view_select(target));
        let view = stored.iter().find(|(n, _)| n == mv_name);
        let stale = view.is_some_and(|(_, q)| !q.contains(&current));
        let table = erasure::erasures_target(target);
        let have: Vec<String> = self
            .columns_of(&table.storage())
            .await?
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        let missing: Vec<&str> = erasure::COLUMNS
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| !have.iter().any(|h| h == n))
            .collect();
        if view.is_some() && !stale && missing.is_empty() {
            return Ok(false);
        }
        if view.is_some() {
            self.execute(
                profile,
                &format!("DROP TABLE IF EXISTS {mv}{}", target.on_cluster()),
            )
            .await?;
        }
        if !missing.is_empty() {
            // 18.16 cannot change a sorting key ON CLUSTER (code 48): there `app_token` is
            // added without joining it.
            let mut key = target.cluster.is_none() || profile == Profile::Modern;
            if let Err(e) = self
                .execute(profile, &erasure::add_columns_sql(target, &missing, key))
                .await
            {
                if !(key && e.code == Some(48) && target.cluster.is_some()) {
                    return Err(e);
                }
                key = false;
                self.execute(profile, &erasure::add_columns_sql(target, &missing, key))
                    .await?;
            }
            if target.cluster.is_some() {
                self.execute(profile, &schema::cluster::drop_distributed(&table))
                    .await?;
                self.execute(
                    profile,
                    &schema::cluster::create_distributed(&table, "cityHash64(device_id)"),
                )
                .await?;
            }
            let joined = if !missing.contains(&"app_token") {
                ""
            } else if key {
                "; app_token joins its key"
            } else {
                "; 18.16 cannot change a key ON CLUSTER: app_token is not part of it, see docs/privacy.md"
            };
            report.replaced.push(format!(
                "table {} (added column {}{joined})",
                table.table(),
                missing.join(", ")
            ));
        }
        if view.is_some() {
            report.replaced.push(format!(
                "materialized view {mv} (its definition changed: dropped, created again, and every forget callback in the table recorded again)"
            ));
        }
        Ok(true)
    }

    /// Brings each rollup to its current definition once its materialized view runs (the
    /// view statements created it): when the rollup view is missing or of an earlier
    /// definition, or its name still holds an earlier release's summed table, the per-activity
    /// table is filled from the callbacks already stored (copies collapse with the rows the
    /// materialized view writes meanwhile, so nothing is lost or counted twice), the earlier
    /// release's materialized view `<rollup>_mv` is dropped (the new one already sees every
    /// insert), and the view is swapped in with one `RENAME`; a summed table is kept as
    /// `<rollup>_received`.
    async fn upgrade_rollups(
        &self,
        profile: Profile,
        stored: &[(String, String)],
        report: &mut MigrateReport,
    ) -> Result<(), StoreError> {
        use schema::views::{NEW_SUFFIX, RECEIVED_SUFFIX};
        let target = &self.config.target;
        let (db, on) = (&target.database, target.on_cluster());
        let now = self.definitions().await?;
        for r in schema::views::ROLLUPS {
            let select = r.select(target);
            let marker = schema::views::marker(&select);
            let current = now.iter().find(|(n, _)| n == r.table);
            let fresh = stored.iter().all(|(n, _)| n != r.table);
            if current.is_some_and(|(_, q)| q.contains(&marker)) && !fresh {
                continue;
            }
            let started = std::time::Instant::now();
            self.execute(profile, &r.fill_sql(target)).await?;
            let filled = started.elapsed();
            let summed_mv = format!("{db}.{}", r.summed_mv_name());
            if now.iter().any(|(n, _)| *n == r.summed_mv_name()) {
                self.execute(profile, &format!("DROP TABLE IF EXISTS {summed_mv}{on}"))
                    .await?;
            }
            let is_table = current.is_some_and(|(_, q)| !q.starts_with("CREATE VIEW"));
            if is_table {
                let view = format!("{db}.{}", r.table);
                let new = format!("{view}{NEW_SUFFIX}");
                let kept = format!("{view}{RECEIVED_SUFFIX}");
                self.execute(profile, &format!("DROP TABLE IF EXISTS {new}{on}"))
                    .await?;
                self.execute(
                    profile,
                    &format!(
                        "CREATE VIEW {new}{on} AS\n{}",
                        schema::views::marked(&select)
                    ),
                )
                .await?;
                self.execute(
                    profile,
                    &format!("RENAME TABLE {view} TO {kept}, {new} TO {view}{on}"),
                )
                .await?;
                report.replaced.push(format!(
                    "rollup {view}: now counts each activity once (a view over {db}.{}, filled from the callbacks table in {:.1} s); the summed table of callbacks as received is kept as {kept}, its materialized view {summed_mv} dropped",
                    r.activities_name(),
                    filled.as_secs_f64()
                ));
            } else if current.is_some() {
                for sql in schema::views::replace_view(r.table, &select, profile, target) {
                    self.execute(profile, &sql).await?;
                }
                report.replaced.push(format!(
                    "view {db}.{} (its definition changed; {db}.{} filled from the callbacks table in {:.1} s)",
                    r.table,
                    r.activities_name(),
                    filled.as_secs_f64()
                ));
            }
        }
        Ok(())
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
    /// column, and every other object of [`schema::cluster::objects`].
    async fn cluster_schema_complete(&self) -> Result<bool, StoreError> {
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
        Ok(local == distributed && self.missing_columns().await?.is_empty())
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

    /// A table whose cold tier is the two arrays of the second release: adds the `cold` text,
    /// computed from the arrays in parts written before (ClickHouse fills a column missing from a
    /// part from its `DEFAULT` when read, and writes it at the next merge), and points every cold
    /// placeholder's column at it. Rows keep their values; new rows write `cold` only.
    async fn move_cold_arrays(&self, profile: Profile) -> Result<(), StoreError> {
        let target = &self.config.target;
        let table = format!("{}{}", target.storage().table(), target.on_cluster());
        self.execute(
            profile,
            &format!(
                "ALTER TABLE {table} ADD COLUMN {} String DEFAULT {} AFTER {}",
                row::COLD,
                schema::cold_from_arrays_sql(),
                row::COLD_VALUES
            ),
        )
        .await?;
        let mut modify: Vec<String> = schema::cold_columns(profile, target)
            .iter()
            .map(|c| format!("MODIFY COLUMN {}", c.definition()))
            .collect();
        if profile == Profile::Modern {
            modify.push(format!(
                "MODIFY COLUMN cold_map Map(String, String) ALIAS JSONExtract({}, 'Map(String, String)')",
                row::COLD
            ));
        }
        let sql = format!("ALTER TABLE {table} {}", modify.join(", "));
        self.execute(
            profile,
            &crate::clickhouse::types::server_types(sql, profile),
        )
        .await
    }

    /// Adds missing columns; turns the ALIAS column of a `--physical` placeholder into a DEFAULT
    /// one. A DEFAULT column no longer asked for is left as it is (it holds data).
    async fn add_missing_columns(
        &self,
        profile: Profile,
    ) -> Result<(Vec<String>, Vec<String>), StoreError> {
        let have = self.existing_columns().await?;
        let target = &self.config.target;
        // On a cluster: the local tables, on every node.
        let table = format!("{}{}", target.storage().table(), target.on_cluster());
        let fit = |sql: String| crate::clickhouse::types::server_types(sql, profile);
        let mut added = Vec::new();
        let mut promoted = Vec::new();
        if target.cluster.is_some() {
            self.add_missing_columns_in_order(profile, &have, &table, &mut added, &mut promoted)
                .await?;
            return Ok((added, promoted));
        }
        for c in row::wire_columns() {
            if c.wire_names()
                .iter()
                .any(|n| !have.iter().any(|(h, _)| h == n))
            {
                let sql = format!(
                    "ALTER TABLE {table} ADD COLUMN {} {}{}",
                    c.name,
                    crate::clickhouse::types::column_type(&c, profile),
                    row::column_default(&c.name).map_or(String::new(), |d| format!(" {d}"))
                );
                self.execute(profile, &fit(sql)).await?;
                added.push(c.name);
            }
        }
        for c in schema::cold_columns(profile, &self.config.target) {
            match have.iter().find(|(h, _)| h == c.name) {
                None => {
                    let sql = format!("ALTER TABLE {table} ADD COLUMN {}", c.definition());
                    self.execute(profile, &fit(sql)).await?;
                    added.push(c.name.to_string());
                }
                Some((_, kind)) if kind == "ALIAS" && c.kind == schema::ColdKind::Default => {
                    let sql = format!("ALTER TABLE {table} MODIFY COLUMN {}", c.definition());
                    self.execute(profile, &fit(sql)).await?;
                    promoted.push(c.name.to_string());
                }
                Some(_) => {}
            }
        }
        Ok((added, promoted))
    }

    /// [`add_missing_columns`](Self::add_missing_columns) on a cluster: each column goes `AFTER`
    /// the one `CREATE TABLE` puts before it. A replica created later (a new node, or a local
    /// table dropped and created again) runs the `CREATE TABLE` and must find the column order
    /// its shard keeps in ZooKeeper, or it fails with code 122.
    async fn add_missing_columns_in_order(
        &self,
        profile: Profile,
        have: &[(String, String)],
        table: &str,
        added: &mut Vec<String>,
        promoted: &mut Vec<String>,
    ) -> Result<(), StoreError> {
        let target = &self.config.target;
        let wire = row::wire_columns();
        let cold = schema::cold_columns(profile, target);
        let create = schema::create_table(profile, target);
        // 18.16 keeps ordinary and ALIAS columns in separate lists (a column goes AFTER one of
        // its own kind there); modern servers keep one list.
        let mut previous: Option<String> = None;
        let mut previous_alias: Option<String> = None;
        for line in create.lines().filter(|l| l.starts_with("    ")) {
            let definition = line.trim().trim_end_matches(',');
            let Some(name) = definition.split(' ').next() else {
                continue;
            };
            if name == "INDEX" {
                continue;
            }
            let names: Vec<String> = wire
                .iter()
                .find(|c| c.name == name)
                .map_or_else(|| vec![name.to_string()], |c| c.wire_names());
            let known = wire.iter().any(|c| c.name == name) || cold.iter().any(|c| c.name == name);
            let exists = names.iter().all(|n| have.iter().any(|(h, _)| h == n));
            let alias = definition.contains(" ALIAS ") && profile == Profile::Legacy;
            let before = if alias { &previous_alias } else { &previous };
            if known && !exists {
                let after = before
                    .as_ref()
                    .map_or(String::new(), |p| format!(" AFTER {p}"));
                let sql = format!("ALTER TABLE {table} ADD COLUMN {definition}{after}");
                self.execute(profile, &sql).await?;
                added.push(name.to_string());
            } else if let Some(c) = cold.iter().find(|c| c.name == name)
                && c.kind == schema::ColdKind::Default
                && have.iter().any(|(h, k)| h == name && k == "ALIAS")
            {
                let sql = format!("ALTER TABLE {table} MODIFY COLUMN {}", c.definition());
                self.execute(
                    profile,
                    &crate::clickhouse::types::server_types(sql, profile),
                )
                .await?;
                promoted.push(name.to_string());
            } else if !exists {
                continue;
            }
            if alias {
                previous_alias = names.last().cloned();
            } else {
                previous = names.last().cloned();
            }
        }
        Ok(())
    }
}

/// Whether view `name` exists with a definition other than `select` (its marker differs).
fn is_stale(stored: &[(String, String)], name: &str, select: &str) -> bool {
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
