//! The table's columns against the code: what it lacks (`check`, `--no-migrate`), adding it
//! (`migrate`, in `CREATE TABLE` order on a cluster), promoting `--physical` placeholders, and
//! moving the cold tier of a second-release table from two arrays to one JSON text.

use super::{ClickHouseStore, Profile, StoreError, row, schema};
use crate::clickhouse::quote;

impl ClickHouseStore {
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
    pub(super) async fn move_cold_arrays(&self, profile: Profile) -> Result<(), StoreError> {
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
        self.repoint_cold_columns(profile).await
    }

    /// Points every cold column (and `cold_map` on modern servers) at the cold text as this
    /// version keys it.
    async fn repoint_cold_columns(&self, profile: Profile) -> Result<(), StoreError> {
        let target = &self.config.target;
        let table = format!("{}{}", target.storage().table(), target.on_cluster());
        let mut modify: Vec<String> = schema::cold_columns(profile, target)
            .iter()
            .map(|c| format!("MODIFY COLUMN {}", c.definition()))
            .collect();
        if profile == Profile::Modern {
            modify.push(format!(
                "MODIFY COLUMN cold_map Map(String, String) ALIAS {}",
                schema::cold_map_sql()
            ));
        }
        let sql = format!("ALTER TABLE {table} {}", modify.join(", "));
        self.execute(
            profile,
            &crate::clickhouse::types::server_types(sql, profile),
        )
        .await
    }

    /// Whether the table's cold columns read the cold text by placeholder name: a table made
    /// before the text was keyed by codes (its rows have names as keys).
    pub async fn cold_keyed_by_names(&self) -> Result<bool, StoreError> {
        let t = self.config.target.storage();
        let sql = format!(
            "SELECT count() FROM system.columns WHERE database = {} AND table = {} \
             AND position(default_expression, concat('({}, \\'', name, '\\')')) > 0",
            quote(&t.database),
            quote(&t.table),
            row::COLD
        );
        Ok(self.count(Profile::Legacy, &sql).await? > 0)
    }

    /// A table of [`cold_keyed_by_names`](Self::cold_keyed_by_names): rewrites the stored texts'
    /// keys (one `ALTER … UPDATE`, waited for on every node), then points its cold columns at the codes. In
    /// this order an interrupted run leaves the columns reading names, so the next `migrate`
    /// finds the table again and finishes (the rewrite is idempotent); rows already rewritten
    /// read their cold columns empty until the columns are re-pointed.
    pub(super) async fn rekey_cold(&self, profile: Profile) -> Result<(), StoreError> {
        let target = &self.config.target;
        let storage = target.storage();
        self.execute(
            profile,
            &format!(
                "ALTER TABLE {}{} UPDATE {cold} = {} WHERE {}",
                storage.table(),
                target.on_cluster(),
                schema::cold_names_to_keys_sql(row::COLD),
                schema::cold_has_named_key_sql(row::COLD),
                cold = row::COLD,
            ),
        )
        .await?;
        // On a cluster every replica runs the mutation on its own parts: wait for all of them.
        let mutations = if target.cluster.is_some() {
            let nodes: Vec<String> = self
                .cluster_nodes()
                .await?
                .into_iter()
                .map(|n| n.address)
                .collect();
            format!("remote({}, system.mutations)", quote(&nodes.join(",")))
        } else {
            "system.mutations".to_string()
        };
        let running = format!(
            "SELECT count() FROM {mutations} WHERE database = {} AND table = {} AND is_done = 0",
            quote(&storage.database),
            quote(&storage.table)
        );
        let started = std::time::Instant::now();
        let mut told = 0;
        while self.count(Profile::Legacy, &running).await? > 0 {
            let waited = started.elapsed().as_secs();
            if waited >= told + 10 {
                told = waited;
                tracing::info!(
                    table = %storage.table(),
                    waited_s = waited,
                    "rewriting the keys of the cold text: the mutation is still running"
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        self.repoint_cold_columns(profile).await
    }

    /// Adds missing columns; turns the ALIAS column of a `--physical` placeholder into a DEFAULT
    /// one. A DEFAULT column no longer asked for is left as it is (it holds data).
    pub(super) async fn add_missing_columns(
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
