//! Objects of earlier versions brought up to date by `migrate`: the erasure requests table and
//! view, and rollups that summed every copy of an activity.

use super::{ClickHouseStore, MigrateReport, Profile, StoreError, schema};

/// The erasure view's name in its database.
fn erasure_view_name(target: &super::Target) -> String {
    let mv = schema::erasure::mv_name(target);
    mv.split_once('.')
        .map_or(mv.clone(), |(_, n)| n.to_string())
}

impl ClickHouseStore {
    /// The columns of [`schema::erasure::COLUMNS`] the erasure requests' table lacks (on a
    /// cluster, its local table on the connected node).
    async fn erasure_columns_missing(&self) -> Result<Vec<&'static str>, StoreError> {
        let table = schema::erasure::erasures_target(&self.config.target);
        let have: Vec<String> = self
            .columns_of(&table.storage())
            .await?
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        Ok(schema::erasure::COLUMNS
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| !have.iter().any(|h| h == n))
            .collect())
    }

    /// Whether an object that `migrate` brings up to date in place is behind: the erasure
    /// requests' table lacks a column, the cold columns read names, or the erasure view, a
    /// rollup or a view has an earlier definition (its marker differs). A sink on a cluster runs its `migrate` only then (or when
    /// an object is missing), since DDL `ON CLUSTER` waits for every node.
    pub(super) async fn upgrades_pending(&self, profile: Profile) -> Result<bool, StoreError> {
        use schema::{erasure, views};
        let target = &self.config.target;
        let stored = self.definitions().await?;
        let current = |name: &str, select: &str| {
            let marker = views::marker(select);
            stored.iter().any(|(n, q)| n == name && q.contains(&marker))
        };
        if !current(&erasure_view_name(target), &erasure::view_select(target))
            || !self.erasure_columns_missing().await?.is_empty()
            || self.cold_keyed_by_names().await?
        {
            return Ok(true);
        }
        // Views and rollups made for another table of the database are left to it.
        if super::migrate::views_owner(&stored, target).is_some() {
            return Ok(false);
        }
        if views::ROLLUPS
            .iter()
            .any(|r| !current(r.table, &r.select(target)))
        {
            return Ok(true);
        }
        Ok(views::VIEWS
            .iter()
            .any(|v| super::migrate::is_stale(&stored, v.name, &views::select(v, profile, target))))
    }

    /// Brings the erasure requests' table and view of an earlier version up to date: the
    /// table's missing columns (`app_token`, `outcome`), and the view's definition. 18.16
    /// refuses a materialized view's block that lacks a column of its table, and a view cannot
    /// be altered or renamed there: the view is dropped first, the table altered, and the view
    /// statements create the view again. Returns whether every forget callback must be
    /// recorded afterwards (the view was dropped, or is new on a table that may hold some).
    pub(super) async fn upgrade_erasures(
        &self,
        profile: Profile,
        stored: &[(String, String)],
        report: &mut MigrateReport,
    ) -> Result<bool, StoreError> {
        use schema::erasure;
        let target = &self.config.target;
        let mv = erasure::mv_name(target);
        let mv_name = erasure_view_name(target);
        let current = schema::views::marker(&erasure::view_select(target));
        let view = stored.iter().find(|(n, _)| *n == mv_name);
        let stale = view.is_some_and(|(_, q)| !q.contains(&current));
        let table = erasure::erasures_target(target);
        let missing = self.erasure_columns_missing().await?;
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
    pub(super) async fn upgrade_rollups(
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
}
