//! Moving a table of the first release's layout to the two-tier one (see
//! [`crate::clickhouse::schema::upgrade`]): copied partition by partition, counts checked, swapped with one
//! `RENAME`.

use super::migrate::Upgraded;
use super::{ClickHouseStore, ErrorClass, Profile, StoreError, Target, row, schema, upgrade};

impl ClickHouseStore {
    /// Moves a first-layout table to the two-tier layout (see [`upgrade`]).
    pub(super) async fn upgrade_layout(&self, profile: Profile) -> Result<Upgraded, StoreError> {
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
                    crate::clickhouse::types::column_type(&c, profile)
                );
                self.execute(
                    profile,
                    &crate::clickhouse::types::server_types(sql, profile),
                )
                .await?;
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
        // The rollups' materialized views read the old table (those of an earlier release
        // too); they are created again over the new one after the swap (their tables keep
        // every row).
        for r in schema::views::ROLLUPS {
            for mv in [r.mv_name(), r.summed_mv_name()] {
                let sql = format!("DROP TABLE IF EXISTS {}.{mv}", old.database);
                self.execute(profile, &sql).await?;
            }
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
}
