//! One retention round (`--retention DAYS`).
//!
//! - Modern servers: a TTL on the callbacks and rejects tables (their local tables on a
//!   cluster, `ON CLUSTER`), set only when the table's `engine_full` does not already have it:
//!   each `MODIFY TTL` makes the server rewrite the TTL of every part.
//! - 18.16 (no TTL): the monthly partitions wholly older than the limit are dropped, those of
//!   every shard on a cluster.

use super::unescape;
use crate::clickhouse::Profile;
use crate::clickhouse::schema::Target;
use crate::clickhouse::schema::erasure as sql;
use crate::metrics::Metrics;
use crate::sink::{Admin, StoreError};

/// One retention round for `days`.
pub async fn round<A: Admin>(
    admin: &A,
    target: &Target,
    metrics: &Metrics,
    days: u32,
) -> Result<(), StoreError> {
    let version = admin
        .select("SELECT version()")
        .await?
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().next())
        .unwrap_or_default();
    match Profile::for_version(&version) {
        Profile::Modern => set_ttl(admin, target, days).await,
        Profile::Legacy => drop_partitions(admin, target, metrics, days).await,
    }
}

/// The TTL statements a modern server still needs: those of tables whose `engine_full` lacks
/// the TTL for `days`.
pub async fn ttl_needed<A: Admin>(
    admin: &A,
    target: &Target,
    days: u32,
) -> Result<Vec<String>, StoreError> {
    let engines: Vec<(String, String)> = admin
        .select(&sql::engines_sql(target))
        .await?
        .into_iter()
        .filter_map(|r| match &r[..] {
            [name, engine] => Some((unescape(name), unescape(engine))),
            _ => None,
        })
        .collect();
    Ok(sql::erased_tables(target)
        .iter()
        .zip(sql::ttl_statements(target, days))
        .filter(|(table, _)| {
            !engines.iter().any(|(name, engine)| {
                table.ends_with(&format!(".{name}")) && sql::ttl_is_set(target, name, engine, days)
            })
        })
        .map(|(_, st)| st.sql)
        .collect())
}

async fn set_ttl<A: Admin>(admin: &A, target: &Target, days: u32) -> Result<(), StoreError> {
    for st in ttl_needed(admin, target, days).await? {
        admin.execute(&st).await?;
        tracing::info!(statement = %st, "retention set");
    }
    Ok(())
}

async fn drop_partitions<A: Admin>(
    admin: &A,
    target: &Target,
    metrics: &Metrics,
    days: u32,
) -> Result<(), StoreError> {
    let today = crate::clock::unix_now() / 86_400;
    let found = admin.select(&sql::partitions_sql(target)).await?;
    for table in sql::erased_tables(target) {
        let name = table.split_once('.').map_or(table.as_str(), |(_, n)| n);
        let partitions: Vec<u32> = found
            .iter()
            .filter(|r| r.first().is_some_and(|t| t == name))
            .filter_map(|r| r.get(1)?.trim_matches('\'').parse().ok())
            .collect::<std::collections::BTreeSet<u32>>()
            .into_iter()
            .collect();
        for p in sql::expired_partitions(&partitions, today, days) {
            admin
                .execute(&format!(
                    "ALTER TABLE {table}{} DROP PARTITION {p}",
                    target.on_cluster()
                ))
                .await?;
            metrics.retention_partitions_dropped.inc();
            tracing::info!(%table, partition = p, days, "dropped a partition past --retention");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::twin::TwinStore;

    fn target() -> Target {
        Target {
            database: "adjust".into(),
            table: "callbacks".into(),
            ..Default::default()
        }
    }

    /// A modern server gets the TTL once: not again when its tables already have it.
    #[tokio::test]
    async fn a_ttl_is_set_only_where_the_table_lacks_it() {
        let answer = |engines: &'static [(&'static str, &'static str)]| {
            TwinStore::scripted(move |q, _| {
                if q == "SELECT version()" {
                    Some(vec![vec!["26.9.2.1".into()]])
                } else if q.starts_with("SELECT name, engine_full FROM system.tables") {
                    Some(
                        engines
                            .iter()
                            .map(|(n, e)| vec![n.to_string(), e.to_string()])
                            .collect(),
                    )
                } else {
                    None
                }
            })
        };
        let fresh = answer(&[
            (
                "callbacks",
                "ReplacingMergeTree ORDER BY x SETTINGS index_granularity = 8192",
            ),
            ("callbacks_rejects", "MergeTree ORDER BY x"),
        ]);
        round(&fresh, &target(), &Metrics::new(), 30).await.unwrap();
        assert_eq!(
            fresh.statements(),
            [
                "ALTER TABLE adjust.callbacks MODIFY TTL event_date + INTERVAL 30 DAY",
                "ALTER TABLE adjust.callbacks_rejects MODIFY TTL toDate(rejected_at) + INTERVAL 30 DAY"
            ]
        );
        let set = answer(&[
            (
                "callbacks",
                "ReplacingMergeTree ORDER BY x TTL event_date + toIntervalDay(30) SETTINGS index_granularity = 8192",
            ),
            (
                "callbacks_rejects",
                "MergeTree ORDER BY x TTL toDate(rejected_at) + toIntervalDay(30)",
            ),
        ]);
        round(&set, &target(), &Metrics::new(), 30).await.unwrap();
        assert!(set.statements().is_empty(), "{:?}", set.statements());
        // Another number of days: set again.
        round(&set, &target(), &Metrics::new(), 60).await.unwrap();
        assert_eq!(set.statements().len(), 2);
    }

    /// 18.16 drops the partitions of every shard wholly past the limit, once each.
    #[tokio::test]
    async fn legacy_servers_drop_whole_expired_partitions_of_every_shard() {
        let twin = TwinStore::scripted(|q, _| {
            if q == "SELECT version()" {
                Some(vec![vec!["18.16.1".into()]])
            } else if q.contains("FROM cluster('adjust_local', system.parts)") {
                Some(vec![
                    vec!["callbacks_local".into(), "201407".into()],
                    vec!["callbacks_local".into(), "201407".into()],
                    vec!["callbacks_local".into(), "209912".into()],
                    vec!["callbacks_rejects_local".into(), "201408".into()],
                ])
            } else {
                None
            }
        });
        let t = Target {
            cluster: Some("adjust_local".into()),
            ..target()
        };
        let metrics = Metrics::new();
        round(&twin, &t, &metrics, 30).await.unwrap();
        assert_eq!(
            twin.statements(),
            [
                "ALTER TABLE adjust.callbacks_local ON CLUSTER adjust_local DROP PARTITION 201407",
                "ALTER TABLE adjust.callbacks_rejects_local ON CLUSTER adjust_local DROP PARTITION 201408",
            ]
        );
        assert_eq!(metrics.retention_partitions_dropped.get(), 2);
    }
}
