//! `adjust-sink migrate`: create or upgrade the database, tables and views, and say what was done.

use std::time::Duration;

use crate::clickhouse::Profile;
use crate::clickhouse::settings::ClickHouseArgs;
use crate::clickhouse::store::{ClickHouseStore, MigrateReport};
use crate::sink::classify::is_privilege_code;

pub fn command(args: &ClickHouseArgs) -> anyhow::Result<()> {
    let config = args.config(true, Duration::from_secs(60))?;
    let store = ClickHouseStore::new(config.clone())?;
    let rt = super::runtime()?;
    // Bounded: a server that accepts the connection and never answers is an error within
    // seconds, not a hang.
    rt.block_on(store.probe(Duration::from_secs(10)))?;
    let report = rt.block_on(store.migrate()).map_err(|e| {
        let hint = match e.code {
            Some(c) if is_privilege_code(c) => {
                " (migrate needs a user that may create databases and create and alter tables \
                 and views)"
            }
            _ => "",
        };
        anyhow::anyhow!("migrating ClickHouse at {}: {e}{hint}", config.url)
    })?;
    let on = config
        .target
        .cluster
        .as_ref()
        .map_or(String::new(), |c| format!(", on cluster {c}"));
    print!("{}", render(&report, &config.url, &on));
    Ok(())
}

/// What `migrate` prints.
fn render(report: &MigrateReport, url: &str, on: &str) -> String {
    let profile = report.profile.map_or("?", Profile::as_str);
    let mut out = format!(
        "ClickHouse {} ({profile} profile) at {url}{on}\n",
        report.version
    );
    for what in &report.statements {
        out += &format!("  ensured {what}\n");
    }
    if let Some(u) = &report.upgraded {
        out += &format!(
            "  moved {} rows in {} partitions to the two-tier layout in {:.1}s ({} partitions were already copied); the old table is kept as {} (drop it once satisfied)\n",
            u.rows, u.partitions, u.seconds, u.resumed, u.kept_as
        );
    }
    for c in &report.added_columns {
        out += &format!("  added column {c}\n");
    }
    for c in &report.promoted_columns {
        out += &format!("  made column {c} physical (DEFAULT, filled from the stored text)\n");
    }
    for what in &report.replaced {
        out += &format!("  replaced {what}\n");
    }
    for name in &report.created {
        out += &format!("  created {name}\n");
    }
    for note in &report.notes {
        out += &format!("  note: {note}\n");
    }
    out += if report.changed() {
        "schema is up to date\n"
    } else {
        "schema is up to date; nothing changed (every object was current)\n"
    };
    out
}
