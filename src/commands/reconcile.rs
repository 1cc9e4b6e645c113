//! `adjust-sink reconcile`: per day and activity kind, how many activities reached the sink as
//! callbacks and how many only an export had (`import`); with `--by hour`, per hour of
//! `created_at`, app and activity kind: how complete the callbacks of each hourly export were.
//! `--app` keeps some apps in either report.

use anyhow::Context;

use crate::cli::{ReconcileArgs, ReconcileBy, ReportFormat};
use crate::clickhouse::store::ClickHouseStore;
use crate::row::INGEST_IMPORT;

pub fn command(args: &ReconcileArgs) -> anyhow::Result<()> {
    let config = args
        .clickhouse
        .config(false, std::time::Duration::from_secs(60))?;
    let store = ClickHouseStore::new(config)?;
    let rows = super::runtime()?.block_on(reconcile_by(
        &store,
        args.since.as_deref(),
        args.by,
        &args.app,
    ))?;
    match args.format {
        ReportFormat::Table => print!(
            "{}",
            render_table(&rows, matches!(args.by, ReconcileBy::Hour))
        ),
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
    }
    Ok(())
}

/// One line of `reconcile`: a day and activity kind.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Reconciled {
    /// The day (`YYYY-MM-DD`), or with `--by hour` the hour (`YYYY-MM-DD HH:00:00`).
    pub day: String,
    /// With `--by hour`: the app.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_token: Option<String>,
    pub activity_kind: String,
    /// Activities that reached the sink as callbacks.
    pub from_callbacks: u64,
    /// Activities only an export had (`ingest_source = 'import'`).
    pub only_export: u64,
    /// `from_callbacks` of all, in percent.
    pub completeness: f64,
}

/// The `reconcile` query: per day (`event_date`), or per hour of `created_at` and app, and
/// activity kind, the distinct activities by how they arrived (`FINAL`: each activity once).
/// `since` keeps the days from it on, `apps` (when not empty) only those apps.
pub fn reconcile_sql(table: &str, by: ReconcileBy, since: Option<&str>, apps: &[String]) -> String {
    let mut filters = Vec::new();
    if let Some(d) = since {
        filters.push(format!("event_date >= toDate('{}')", d.replace('\'', "")));
    }
    if !apps.is_empty() {
        filters.push(format!(
            "app_token IN ({})",
            crate::clickhouse::types::quote_list(apps)
        ));
    }
    let filter = if filters.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", filters.join(" AND "))
    };
    let (key, app, group) = match by {
        ReconcileBy::Day => ("toString(event_date) AS day", "", "day, activity_kind"),
        ReconcileBy::Hour => (
            "ifNull(toString(toStartOfHour(created_at)), 'unknown') AS hour",
            ", toString(app_token) AS app",
            "hour, app, activity_kind",
        ),
    };
    format!(
        "SELECT {key}, activity_kind, \
         uniqExactIf(callback_id, ingest_source != '{INGEST_IMPORT}'), \
         uniqExactIf(callback_id, ingest_source = '{INGEST_IMPORT}'){app} \
         FROM {table} FINAL{filter} GROUP BY {group} ORDER BY {group}"
    )
}

/// Runs the reconciliation by day, or by hour and app, of `apps` (every app when empty).
pub async fn reconcile_by(
    store: &ClickHouseStore,
    since: Option<&str>,
    by: ReconcileBy,
    apps: &[String],
) -> anyhow::Result<Vec<Reconciled>> {
    if let Some(d) = since {
        check_date(d)?;
    }
    let table = store.config().target.table();
    let sql = reconcile_sql(&table, by, since, apps);
    let rows = store.select(&sql).await.context("reconciling")?;
    Ok(rows
        .into_iter()
        .filter(|r| r.len() >= 4)
        .map(|r| {
            let from_callbacks = r[2].parse().unwrap_or(0);
            let only_export = r[3].parse().unwrap_or(0);
            Reconciled {
                day: r[0].clone(),
                app_token: r.get(4).cloned(),
                activity_kind: r[1].clone(),
                from_callbacks,
                only_export,
                completeness: completeness(from_callbacks, only_export),
            }
        })
        .collect())
}

/// `--since`: a day of the calendar as `YYYY-MM-DD` (it goes into the query as a literal).
fn check_date(d: &str) -> anyhow::Result<()> {
    let b = d.as_bytes();
    let shaped = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    let num = |r: std::ops::Range<usize>| d[r].parse::<u32>().unwrap_or(0);
    let ok = shaped && crate::clock::is_civil_date(i64::from(num(0..4)), num(5..7), num(8..10));
    anyhow::ensure!(ok, "--since `{d}` is not a date (YYYY-MM-DD)");
    Ok(())
}

/// Callbacks of all activities, in percent (100 when there are none).
pub fn completeness(from_callbacks: u64, only_export: u64) -> f64 {
    let all = from_callbacks + only_export;
    if all == 0 {
        100.0
    } else {
        from_callbacks as f64 * 100.0 / all as f64
    }
}

/// The reconciliation as an aligned table (by hour and app when `hourly`: the header says which
/// even when there are no rows), with a total line.
pub fn render_table(rows: &[Reconciled], hourly: bool) -> String {
    let mut out = if hourly {
        format!(
            "{:<19}  {:<16}  {:<24}  {:>14}  {:>11}  {:>12}\n",
            "hour", "app_token", "activity_kind", "from_callbacks", "only_export", "completeness"
        )
    } else {
        format!(
            "{:<10}  {:<24}  {:>14}  {:>11}  {:>12}\n",
            "day", "activity_kind", "from_callbacks", "only_export", "completeness"
        )
    };
    for r in rows {
        if let Some(app) = &r.app_token {
            out.push_str(&format!(
                "{:<19}  {:<16}  {:<24}  {:>14}  {:>11}  {:>11.1}%\n",
                r.day, app, r.activity_kind, r.from_callbacks, r.only_export, r.completeness
            ));
        } else {
            out.push_str(&format!(
                "{:<10}  {:<24}  {:>14}  {:>11}  {:>11.1}%\n",
                r.day, r.activity_kind, r.from_callbacks, r.only_export, r.completeness
            ));
        }
    }
    let (cb, ex) = rows.iter().fold((0, 0), |(a, b), r| {
        (a + r.from_callbacks, b + r.only_export)
    });
    let total = if hourly {
        format!(
            "{:<19}  {:<16}  {:<24}  {:>14}  {:>11}  {:>11.1}%\n",
            "total",
            "",
            "",
            cb,
            ex,
            completeness(cb, ex)
        )
    } else {
        format!(
            "{:<10}  {:<24}  {:>14}  {:>11}  {:>11.1}%\n",
            "total",
            "",
            cb,
            ex,
            completeness(cb, ex)
        )
    };
    out.push_str(&total);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completeness_in_percent() {
        assert_eq!(completeness(90, 10), 90.0);
        assert_eq!(completeness(0, 0), 100.0);
        let t = render_table(
            &[Reconciled {
                day: "2024-01-01".into(),
                app_token: None,
                activity_kind: "install".into(),
                from_callbacks: 9,
                only_export: 1,
                completeness: 90.0,
            }],
            false,
        );
        assert!(t.lines().nth(1).unwrap().ends_with("90.0%"), "{t}");
        assert!(t.lines().last().unwrap().starts_with("total"), "{t}");
        // No rows: the header still says which report it is.
        assert!(render_table(&[], true).starts_with("hour "));
        assert!(render_table(&[], false).starts_with("day "));
    }

    #[test]
    fn since_must_be_a_date() {
        assert!(check_date("2024-01-31").is_ok());
        assert!(check_date("2024-02-29").is_ok());
        for bad in [
            "2024-01-31' OR 1",
            "2024-13-01",
            "2023-02-29",
            "2024-04-31",
            "2024-00-10",
        ] {
            assert!(check_date(bad).is_err(), "{bad}");
        }
        let t = "adjust.callbacks";
        let daily = reconcile_sql(t, ReconcileBy::Day, Some("2024-01-31"), &[]);
        assert!(
            daily.contains(
                "FINAL WHERE event_date >= toDate('2024-01-31') GROUP BY day, activity_kind"
            ),
            "{daily}"
        );
        let hourly = reconcile_sql(t, ReconcileBy::Hour, None, &["ab'c".into()]);
        assert!(hourly.contains("WHERE app_token IN ('ab\\'c')"), "{hourly}");
        assert!(
            hourly.contains("GROUP BY hour, app, activity_kind"),
            "{hourly}"
        );
        // --app keeps its apps in the daily report too.
        let daily = reconcile_sql(t, ReconcileBy::Day, Some("2024-01-31"), &["a".into()]);
        assert!(
            daily.contains("WHERE event_date >= toDate('2024-01-31') AND app_token IN ('a')"),
            "{daily}"
        );
    }
}
