//! What analysts read: one plain view per activity and daily rollups fed by materialized views.
//!
//! - **Per-activity views** (`<db>.installs`, `<db>.events`, …): `SELECT <columns> FROM <table>
//!   FINAL WHERE activity_kind IN (…)`. `FINAL` collapses duplicates at query time, so a view shows
//!   each activity once. Which views exist and which kinds each shows is the activity table's
//!   ([`crate::adjust::activity`]). The columns come from the catalog: every placeholder whose
//!   scope applies to one of the view's activities (so every placeholder their callback URLs ask
//!   for) plus the few the view names itself ([`View::placeholders`]), the sink columns
//!   ([`HEAD`]) and `extra`. Views hold no data. Each carries a marker of its definition
//!   ([`marked`]: `WITH '<hash>' AS adjust_sink_definition`, which the server keeps as written and
//!   which selects nothing), so `migrate` leaves a view alone when the marker is current and
//!   otherwise replaces it in one step ([`replace_view`]): `CREATE OR REPLACE VIEW` on modern
//!   servers; on 18.16, which has neither that nor `EXCHANGE`, the new definition is created
//!   under a temporary name and swapped in with one `RENAME` (queries never find the view
//!   missing).
//! - **Daily rollups** (`<db>.installs_daily`, `<db>.revenue_daily`, `<db>.rejects_daily`): each
//!   counts every activity once, as the views do. A materialized view sees every inserted block,
//!   duplicates included (`FINAL` cannot apply to an insert), so `<rollup>_activities_mv` writes
//!   one narrow row per inserted callback (day, kind, `callback_id`, the dimensions, the values
//!   to sum) into `<rollup>_activities`, a `ReplacingMergeTree` sorted by `(day, activity_kind,
//!   callback_id)`: the copies of an activity collapse there as in the callbacks table (on a
//!   cluster both shard by `callback_id`). The rollup is a view adding up `<rollup>_activities
//!   FINAL` per day and key: exact at query time, merged or not. Being written by the INSERT
//!   that lands the callbacks, a rollup is as fresh as the table; late activities and imports
//!   land in their own day. `migrate` fills a new `<rollup>_activities` from the callbacks table
//!   and swaps the view in for an earlier release's summed table (kept as `<rollup>_received`;
//!   [`Rollup::fill_sql`]). The kinds a rollup counts derive from the activity table (the kinds
//!   of a view, or those that report revenue). A rollup's key columns are placeholders, of
//!   their catalog type.

use crate::adjust::activity::{ACTIVITIES, Activity, views};
use crate::adjust::catalog::{self, Ty};
use crate::clickhouse::Profile;
use crate::clickhouse::types::{placeholder_type, quote_list};
use crate::row::HEAD;

use super::{DEDUP_WINDOW, Statement, Target, cluster};

pub use crate::adjust::activity::{VIEWS, View};

/// A view's columns, as selected from the table: the sink columns, the placeholders it shows
/// ([`View::placeholders`]: those of [`Scope::All`] and of its activities' scopes, and those it
/// names itself; a parameters placeholder with its `<name>_kv` arrays, and on modern servers its
/// `<name>_map`), then `extra` (plus `extra_map` on modern servers).
///
/// [`Scope::All`]: crate::adjust::catalog::Scope::All
pub fn columns(view: &View, profile: Profile) -> Vec<String> {
    let mut cols: Vec<String> = HEAD.iter().map(|c| c.to_string()).collect();
    for p in view.placeholders() {
        cols.push(p.name.to_string());
        if p.ty == Ty::Params {
            cols.extend(nested(&format!("{}_kv", p.name), profile));
        }
    }
    cols.extend(nested("extra", profile));
    cols
}

/// A view's `SELECT`.
pub fn select(view: &View, profile: Profile, target: &Target) -> String {
    format!(
        "SELECT\n{}\nFROM {} FINAL\nWHERE activity_kind IN ({})",
        wrap(&columns(view, profile), "    ", 100),
        target.table(),
        quote_list(&view.kinds())
    )
}

/// The alias of a definition's marker (a constant of the `WITH` clause, selected by nobody).
pub const MARKER_ALIAS: &str = "adjust_sink_definition";

/// The marker of a definition: `adjust-sink <hash of the SELECT>`. The server stores the query
/// reformatted (parentheses, spacing, `tupleElement(t, 2)` as `t.2`), but a string literal as
/// written, so the marker tells whether a stored view has this definition.
pub fn marker(select: &str) -> String {
    format!(
        "adjust-sink {:016x}",
        xxhash_rust::xxh3::xxh3_64(select.as_bytes())
    )
}

/// `select` preceded by its marker: `WITH '<marker>' AS adjust_sink_definition\n<select>`.
pub fn marked(select: &str) -> String {
    format!("WITH '{}' AS {MARKER_ALIAS}\n{select}", marker(select))
}

/// `CREATE VIEW IF NOT EXISTS …` of a view, its `SELECT` marked.
pub fn create_view(view: &View, profile: Profile, target: &Target) -> String {
    format!(
        "CREATE VIEW IF NOT EXISTS {}.{}{} AS\n{}",
        target.database,
        view.name,
        target.on_cluster(),
        marked(&select(view, profile, target))
    )
}

/// Suffixes of the temporary names 18.16 uses to swap a view's definition.
pub const NEW_SUFFIX: &str = "__new";
pub const OLD_SUFFIX: &str = "__old";

/// The statements that replace plain view `name` (`<db>.<name>`) by `select` in one step:
/// `CREATE OR REPLACE VIEW` on modern servers; on 18.16 the new view is created as
/// `<name>__new`, swapped in with one `RENAME` (`<name>` → `<name>__old`, `<name>__new` →
/// `<name>`) and the old one dropped. What an interrupted run left is dropped first.
pub fn replace_view(name: &str, select: &str, profile: Profile, target: &Target) -> Vec<String> {
    let (db, on) = (&target.database, target.on_cluster());
    let view = format!("{db}.{name}");
    match profile {
        Profile::Modern => vec![format!(
            "CREATE OR REPLACE VIEW {view}{on} AS\n{}",
            marked(select)
        )],
        Profile::Legacy => {
            let new = format!("{view}{NEW_SUFFIX}");
            let old = format!("{view}{OLD_SUFFIX}");
            vec![
                format!("DROP TABLE IF EXISTS {new}{on}"),
                format!("DROP TABLE IF EXISTS {old}{on}"),
                format!("CREATE VIEW {new}{on} AS\n{}", marked(select)),
                format!("RENAME TABLE {view} TO {old}, {new} TO {view}{on}"),
                format!("DROP TABLE IF EXISTS {old}{on}"),
            ]
        }
    }
}

/// `'a', 'b'`.
/// A `Nested(key, value)` column as a view selects it: the two arrays (the shape 18.16 knows),
/// and on modern servers the table's `Map` ALIAS column too.
fn nested(name: &str, profile: Profile) -> Vec<String> {
    let mut cols = vec![format!("{name}.key"), format!("{name}.value")];
    if profile == Profile::Modern {
        cols.push(format!("{}_map", name.trim_end_matches("_kv")));
    }
    cols
}

/// `items` joined with `, `, broken into lines of at most `width` characters.
fn wrap(items: &[String], indent: &str, width: usize) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for (i, item) in items.iter().enumerate() {
        let piece = if i + 1 < items.len() {
            format!("{item},")
        } else {
            item.clone()
        };
        if !line.is_empty() && indent.len() + line.len() + 1 + piece.len() > width {
            lines.push(format!("{indent}{line}"));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&piece);
    }
    if !line.is_empty() {
        lines.push(format!("{indent}{line}"));
    }
    lines.join("\n")
}

/// One column of a rollup: name, type, and the expression the materialized view computes it with.
#[derive(Debug, Clone, Copy)]
pub struct RollupColumn {
    pub name: &'static str,
    pub ty: &'static str,
    pub expr: &'static str,
}

const fn col(name: &'static str, ty: &'static str, expr: &'static str) -> RollupColumn {
    RollupColumn { name, ty, expr }
}

/// What a rollup adds up per day and key: the activities (`value: None`, `count()`), or one
/// value of each activity (`value: Some(expr)`, kept per activity as column `name` and summed).
#[derive(Debug, Clone, Copy)]
pub struct Measure {
    pub name: &'static str,
    /// The type of the per-activity column (a count is `UInt64`).
    pub ty: &'static str,
    pub value: Option<&'static str>,
}

const fn count(name: &'static str) -> Measure {
    Measure {
        name,
        ty: "UInt64",
        value: None,
    }
}

const fn sum(name: &'static str, value: &'static str) -> Measure {
    Measure {
        name,
        ty: "Float64",
        value: Some(value),
    }
}

impl Measure {
    /// How the rollup view computes it from the activities of one day and key.
    pub fn aggregate(&self) -> String {
        match self.value {
            None => format!("count() AS {}", self.name),
            Some(_) => format!("sum({0}) AS {0}", self.name),
        }
    }
}

/// A daily rollup that counts each activity once: the materialized view `<rollup>_activities_mv`
/// writes one row per inserted callback of the activities it counts (sandbox traffic left out)
/// into `<rollup>_activities`, a `ReplacingMergeTree` sorted by `(day, activity_kind,
/// callback_id)` (the callbacks table's dedup key), so the copies of one activity collapse as
/// they do in the callbacks table and the latest copy's values stay. The rollup itself,
/// `<rollup>`, is a view that adds them up per day and key over `<rollup>_activities FINAL`:
/// exact at query time, merges or not.
#[derive(Debug, Clone, Copy)]
pub struct Rollup {
    /// The view analysts query.
    pub table: &'static str,
    /// Which activities of the activity table it counts.
    pub counts: fn(&Activity) -> bool,
    /// The dimensions of the key (after `day`): placeholders, each a column of its catalog type.
    pub keys: &'static [&'static str],
    /// What it adds up.
    pub sums: &'static [Measure],
    /// What a row counts (shown by `migrate`).
    pub what: &'static str,
}

const DAY: RollupColumn = col("day", "Date", "event_date");

/// The activities of the `installs` view.
fn installs(a: &Activity) -> bool {
    a.view == Some(&views::INSTALLS)
}

/// The activities that report revenue.
fn revenue(a: &Activity) -> bool {
    a.revenue
}

/// The activities of the `rejected` view.
fn rejects(a: &Activity) -> bool {
    a.view == Some(&views::REJECTED)
}

/// The rollups, in creation order.
pub const ROLLUPS: &[Rollup] = &[
    Rollup {
        table: "installs_daily",
        counts: installs,
        keys: &[
            "app_token",
            "app_name",
            "network_name",
            "campaign_name",
            "country",
        ],
        sums: &[count("installs")],
        what: "installs per day, app, network, campaign and country",
    },
    Rollup {
        table: "revenue_daily",
        counts: revenue,
        keys: &[
            "activity_kind",
            "app_token",
            "event",
            "event_name",
            "currency",
            "network_name",
            "campaign_name",
            "country",
        ],
        sums: &[
            count("events"),
            sum("revenue", "ifNull(revenue_float, 0)"),
            sum("reporting_revenue", "ifNull(reporting_revenue, 0)"),
        ],
        what: "activities and revenue per day, kind, app, event, currency, network, campaign and country",
    },
    Rollup {
        table: "rejects_daily",
        counts: rejects,
        keys: &[
            "activity_kind",
            "app_token",
            "rejection_reason",
            "network_name",
        ],
        sums: &[count("rejects")],
        what: "fraud rejections per day, kind, app, reason and network",
    },
];

/// The suffix of a rollup's per-activity table.
pub const ACTIVITIES_SUFFIX: &str = "_activities";
/// The suffix the summed table of an earlier release is renamed to when `migrate` turns its
/// name into the rollup view (its rows are kept there: callbacks as received, not activities).
pub const RECEIVED_SUFFIX: &str = "_received";

impl Rollup {
    fn names(cols: &[RollupColumn]) -> String {
        cols.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
    }

    /// The key's columns: `day`, then each dimension as a column of its placeholder's type (as a
    /// modern server takes it; the legacy DDL turns it into what 18.16 declares).
    pub fn key_columns(&self) -> Vec<RollupColumn> {
        let dimensions = self.keys.iter().map(|name| {
            let p = catalog::find(name)
                .unwrap_or_else(|| panic!("rollup {}: {name} is no placeholder", self.table));
            col(p.name, placeholder_type(p.ty, Profile::Modern), p.name)
        });
        std::iter::once(DAY).chain(dimensions).collect()
    }

    /// The per-activity table's columns: `day`, `activity_kind`, `callback_id` (its sorting
    /// key), the other dimensions, and the value of each summed measure.
    pub fn activity_columns(&self) -> Vec<RollupColumn> {
        let mut cols = vec![
            DAY,
            col(
                "activity_kind",
                placeholder_type(
                    catalog::find("activity_kind").expect("activity_kind").ty,
                    Profile::Modern,
                ),
                "activity_kind",
            ),
            col("callback_id", "UInt64", "callback_id"),
        ];
        cols.extend(
            self.key_columns()
                .into_iter()
                .skip(1)
                .filter(|c| c.name != "activity_kind"),
        );
        cols.extend(
            self.sums
                .iter()
                .filter_map(|m| m.value.map(|v| col(m.name, m.ty, v))),
        );
        cols
    }

    /// The `activity_kind` values it counts, in table order.
    pub fn kinds(&self) -> Vec<&'static str> {
        ACTIVITIES
            .iter()
            .filter(|a| (self.counts)(a))
            .map(|a| a.kind)
            .collect()
    }

    /// `<rollup>_activities`: one row per activity (after merges, or with `FINAL`).
    pub fn activities_name(&self) -> String {
        format!("{}{ACTIVITIES_SUFFIX}", self.table)
    }

    /// The materialized view that feeds `<rollup>_activities`.
    pub fn mv_name(&self) -> String {
        format!("{}_mv", self.activities_name())
    }

    /// The materialized view an earlier release fed its summed `<rollup>` table with
    /// (`migrate` drops it once the per-activity one runs).
    pub fn summed_mv_name(&self) -> String {
        format!("{}_mv", self.table)
    }

    /// The placeholders the materialized view reads (for the tests: all must be table columns).
    pub fn reads(&self) -> Vec<&'static str> {
        let mut names = vec!["activity_kind", "environment", "event_date", "callback_id"];
        for c in self.activity_columns() {
            for word in c
                .expr
                .split(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                .filter(|w| !w.is_empty())
            {
                if !["ifNull", "0"].contains(&word) && !names.contains(&word) {
                    names.push(word);
                }
            }
        }
        names
    }

    /// `<rollup>_activities` as a [`Target`] (on a cluster the `Distributed` one; its rows are
    /// in `<rollup>_activities_local`, sharded by `callback_id` as the callbacks are).
    pub fn activities(&self, target: &Target) -> Target {
        Target {
            table: self.activities_name(),
            ..target.clone()
        }
    }

    /// The rollup view as a [`Target`].
    pub fn target(&self, target: &Target) -> Target {
        Target {
            table: self.table.to_string(),
            ..target.clone()
        }
    }

    /// `CREATE TABLE IF NOT EXISTS <db>.<rollup>_activities … ENGINE = ReplacingMergeTree`,
    /// sorted by `(day, activity_kind, callback_id)`. On modern servers with the same insert
    /// deduplication window as the callbacks table (a batch re-sent with the same token is
    /// skipped here too).
    pub fn create_table(&self, profile: Profile, target: &Target) -> String {
        let cols: Vec<String> = self
            .activity_columns()
            .iter()
            .map(|c| format!("    {} {}", c.name, c.ty))
            .collect();
        let settings = match profile {
            Profile::Legacy => String::new(),
            Profile::Modern => format!(
                "\nSETTINGS {} = {DEDUP_WINDOW}",
                super::dedup_window_setting(target)
            ),
        };
        let storage = self.activities(target).storage();
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {}{}\n(\n{}\n)\nENGINE = {}\nPARTITION BY toYYYYMM(day)\nORDER BY (day, activity_kind, callback_id){settings}",
            storage.table(),
            target.on_cluster(),
            cols.join(",\n"),
            cluster::engine("ReplacingMergeTree", &[], &storage),
        );
        crate::clickhouse::types::server_types(sql, profile)
    }

    /// The `SELECT` that turns callbacks of `source` into rows of `<rollup>_activities` (the
    /// materialized view's, and the one `migrate` fills the table with from the callbacks
    /// already stored).
    pub fn activities_select(&self, source: &str) -> String {
        let select: Vec<String> = self
            .activity_columns()
            .iter()
            .map(|c| {
                if c.expr == c.name {
                    format!("    {}", c.name)
                } else {
                    format!("    {} AS {}", c.expr, c.name)
                }
            })
            .collect();
        format!(
            "SELECT\n{}\nFROM {source}\nWHERE activity_kind IN ({}) AND environment != 'sandbox'",
            select.join(",\n"),
            quote_list(&self.kinds()),
        )
    }

    /// `CREATE MATERIALIZED VIEW IF NOT EXISTS <db>.<rollup>_activities_mv TO
    /// <db>.<rollup>_activities AS SELECT …`: one row per inserted callback, no aggregation (the
    /// copies of an activity collapse in the table).
    pub fn create_mv(&self, target: &Target) -> String {
        format!(
            "-- One row per inserted callback; the copies of one activity (global and single-activity\n\
             -- URL, Adjust's retries) share day, kind and callback_id, and collapse in the table.\n\
             CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{mv}{on_cluster} TO {table} AS\n{select}",
            db = target.database,
            mv = self.mv_name(),
            on_cluster = target.on_cluster(),
            table = self.activities(target).storage().table(),
            // On a cluster the local table: the view runs on the node that receives the rows,
            // which is the shard of their callback_id.
            select = self.activities_select(&target.storage().table()),
        )
    }

    /// `INSERT INTO <db>.<rollup>_activities SELECT … FROM <callbacks>`: the activities of the
    /// callbacks already stored (copies collapse with those the materialized view writes).
    pub fn fill_sql(&self, target: &Target) -> String {
        format!(
            "INSERT INTO {} ({})\n{}",
            self.activities(target).table(),
            Self::names(&self.activity_columns()),
            self.activities_select(&target.table())
        )
    }

    /// The rollup view's `SELECT`: per day and key, the activities of `<rollup>_activities
    /// FINAL` (each once, its latest copy) and the sums of their values.
    pub fn select(&self, target: &Target) -> String {
        let keys = Self::names(&self.key_columns());
        let sums: Vec<String> = self.sums.iter().map(Measure::aggregate).collect();
        format!(
            "SELECT\n    {keys},\n    {}\nFROM {} FINAL\nGROUP BY {keys}",
            sums.join(",\n    "),
            self.activities(target).table(),
        )
    }

    /// `CREATE VIEW IF NOT EXISTS <db>.<rollup> …`, its `SELECT` marked.
    pub fn create_view(&self, target: &Target) -> String {
        format!(
            "CREATE VIEW IF NOT EXISTS {}.{}{} AS\n{}",
            target.database,
            self.table,
            target.on_cluster(),
            marked(&self.select(target))
        )
    }
}

/// The rollups' per-activity tables (created before the columns of the callbacks table are
/// brought up to date).
pub fn rollup_tables(profile: Profile, target: &Target) -> Vec<Statement> {
    let mut out = Vec::new();
    for r in ROLLUPS {
        let sql = r.create_table(profile, target);
        let what = format!("one row per activity of {}", r.table);
        if target.cluster.is_none() {
            out.push(Statement {
                what: format!("table {}.{} ({what})", target.database, r.activities_name()),
                sql,
            });
        } else {
            out.extend(cluster::sharded(
                &r.activities(target),
                &what,
                sql,
                "callback_id",
            ));
        }
    }
    out
}

/// Each rollup's materialized view and view, then every per-activity view (`CREATE … IF NOT
/// EXISTS`: `migrate` replaces a view whose marker is not current with [`replace_view`], and an
/// earlier release's rollup table by its view). They read columns of the callbacks table, so
/// they come after its columns are up to date.
pub fn view_statements(profile: Profile, target: &Target) -> Vec<Statement> {
    let mut out: Vec<Statement> = Vec::new();
    for r in ROLLUPS {
        out.push(Statement {
            what: format!(
                "materialized view {}.{} -> {}",
                target.database,
                r.mv_name(),
                r.activities(target).storage().table(),
            ),
            sql: r.create_mv(target),
        });
        out.push(Statement {
            what: format!("view {}.{} ({})", target.database, r.table, r.what),
            sql: r.create_view(target),
        });
    }
    for v in VIEWS {
        out.push(Statement {
            what: format!(
                "view {}.{} ({})",
                target.database,
                v.name,
                v.kinds().join(", ")
            ),
            sql: create_view(v, profile, target),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(view: &str, col: &str) -> bool {
        let v = VIEWS.iter().find(|v| v.name == view).unwrap();
        columns(v, Profile::Legacy).iter().any(|c| c == col)
    }

    #[test]
    fn views_take_their_columns_from_the_scopes_that_apply() {
        for v in VIEWS {
            let cols = columns(v, Profile::Legacy);
            for head in HEAD {
                assert!(cols.iter().any(|c| c == head), "{} lacks {head}", v.name);
            }
            assert!(cols.ends_with(&["extra.key".to_string(), "extra.value".to_string()]));
            assert!(!cols.iter().any(|c| c == "raw_query"));
        }
        for col in [
            "installed_at",
            "click_time",
            "att_status",
            "match_type",
            "cost_amount",
        ] {
            assert!(has("installs", col), "installs lacks {col}");
        }
        assert!(!has("installs", "revenue_float"));
        for col in [
            "event",
            "revenue_float",
            "reporting_revenue",
            "installed_at",
            "session_count",
            "publisher_parameters",
            "publisher_parameters_kv.key",
        ] {
            assert!(has("events", col), "events lacks {col}");
        }
        assert!(!has("events", "rejection_reason"));
        for col in [
            "ad_mediation_platform",
            "reporting_revenue",
            "revenue",
            "installed_at",
            "att_status",
            "publisher_parameters",
        ] {
            assert!(has("ad_revenue", col), "ad_revenue lacks {col}");
        }
        assert!(!has("ad_revenue", "click_time"));
        assert!(has("rejected", "rejection_reason"));
        assert!(has("rejected", "fb_campaign_name"));
        assert!(has("skan", "sk_transaction_id"));
        assert!(has("skan", "sk_conversion_value"));
        assert!(has("skan", "installed_at"));
        assert!(!has("skan", "installed_at_hour"));
        assert!(has("uninstalls", "uninstalled_at"));
        assert!(has("sessions", "session_count"));
        assert!(has("clicks", "google_ads_campaign_id"));
        assert!(!has("clicks", "session_count"));
        let modern = columns(&VIEWS[0], Profile::Modern);
        assert!(modern.ends_with(&[
            "extra.key".to_string(),
            "extra.value".to_string(),
            "extra_map".to_string()
        ]));
    }

    /// Both ways between a view and its activities' callback URLs: the view shows every
    /// placeholder they ask for, and nothing else but what it names itself.
    #[test]
    fn every_view_shows_what_its_activities_callback_urls_ask_for() {
        for v in VIEWS {
            let cols = columns(v, Profile::Legacy);
            let mut asked: Vec<&str> = Vec::new();
            for a in v.activities() {
                for p in catalog::placeholders(&a.trigger.scopes(), false) {
                    assert!(
                        cols.iter().any(|c| c == p.name),
                        "view {} lacks {}, which the {} callback URL asks for",
                        v.name,
                        p.name,
                        a.trigger.name
                    );
                    asked.push(p.name);
                }
            }
            for p in catalog::CATALOG
                .iter()
                .filter(|p| cols.iter().any(|c| c == p.name))
            {
                assert!(
                    asked.contains(&p.name) || v.also.contains(&p.name),
                    "view {} shows {}, which none of its callback URLs asks for",
                    v.name,
                    p.name
                );
            }
        }
    }

    /// A rollup's key dimensions are placeholders, and everything its materialized view reads is
    /// a column of the callbacks table: every placeholder it reads is hot.
    #[test]
    fn rollups_read_hot_placeholders() {
        for r in ROLLUPS {
            for name in r.keys {
                assert!(catalog::find(name).is_some(), "{}: {name}", r.table);
            }
            for name in r.reads() {
                if let Some(p) = catalog::find(name) {
                    assert!(p.is_hot(), "rollup {} reads {name}, which is cold", r.table);
                }
            }
            assert_eq!(r.key_columns()[0].name, "day");
        }
        let revenue = ROLLUPS[1].create_table(Profile::Modern, &Target::default());
        assert!(revenue.contains("\n    event_name LowCardinality(String),\n"));
        assert!(revenue.contains("\n    revenue Float64,\n"));
        let installs = ROLLUPS[0].create_table(Profile::Modern, &Target::default());
        assert!(installs.contains("\n    campaign_name String,\n"));
        assert!(installs.contains("ENGINE = ReplacingMergeTree\n"));
        assert!(installs.contains("ORDER BY (day, activity_kind, callback_id)"));
    }

    /// A rollup counts activities, not callbacks: its view adds up `<rollup>_activities FINAL`,
    /// whose rows are keyed as the callbacks table collapses copies; revenue is a value per
    /// activity, summed once.
    #[test]
    fn rollups_add_up_one_row_per_activity() {
        let t = Target::default();
        for r in ROLLUPS {
            let select = r.select(&t);
            assert!(select.contains(&format!("FROM {}.{}_activities FINAL", t.database, r.table)));
            let mv = r.create_mv(&t);
            assert!(!mv.contains("GROUP BY") && !mv.contains("count()"));
            assert!(mv.contains("callback_id"));
            assert_eq!(
                r.activity_columns()[..3]
                    .iter()
                    .map(|c| c.name)
                    .collect::<Vec<_>>(),
                ["day", "activity_kind", "callback_id"]
            );
            let names: Vec<&str> = r.activity_columns().iter().map(|c| c.name).collect();
            let mut unique = names.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), names.len(), "{}", r.table);
        }
        let revenue = ROLLUPS[1].select(&t);
        assert!(revenue.contains("count() AS events"));
        assert!(revenue.contains("sum(revenue) AS revenue"));
        assert!(
            ROLLUPS[1]
                .create_mv(&t)
                .contains("ifNull(revenue_float, 0) AS revenue")
        );
    }

    /// The rollups' kinds derive from the activity table. Their materialized views are never
    /// re-created by `migrate`, so a change here must be deliberate (and come with a migration).
    #[test]
    fn rollups_count_the_kinds_they_always_counted() {
        let kinds: Vec<(&str, Vec<&str>)> = ROLLUPS.iter().map(|r| (r.table, r.kinds())).collect();
        assert_eq!(
            kinds,
            [
                ("installs_daily", vec!["install"]),
                ("revenue_daily", vec!["event", "ad_revenue", "subscription"]),
                (
                    "rejects_daily",
                    vec!["rejected_install", "rejected_reattribution"]
                ),
            ]
        );
    }

    /// The README's table of views lists every view with exactly its kinds, and the kinds it
    /// says are only in the table are those without a view.
    #[test]
    fn the_readme_describes_every_view() {
        let readme = include_str!("../../../docs/views.md");
        let section = readme
            .split("\n## Views and rollups\n")
            .nth(1)
            .expect("a Views and rollups section")
            .split("\n## ")
            .next()
            .unwrap_or("");
        let ticked = |text: &str| -> Vec<String> {
            let mut names: Vec<String> = text
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect();
            names.sort();
            names
        };
        let mut described = Vec::new();
        let rows = section
            .lines()
            .skip_while(|l| !l.starts_with("| view |"))
            .skip(2)
            .take_while(|l| l.starts_with('|'));
        for row in rows {
            let cells: Vec<&str> = row.split('|').collect();
            let names = ticked(cells[1]);
            let mut kinds: Vec<String> = names
                .iter()
                .flat_map(|n| {
                    VIEWS
                        .iter()
                        .find(|v| v.name == n)
                        .unwrap_or_else(|| panic!("README: no view {n}"))
                        .kinds()
                })
                .map(str::to_owned)
                .collect();
            kinds.sort();
            assert_eq!(ticked(cells[2]), kinds, "README row {row}");
            described.extend(names);
        }
        described.sort();
        let mut all: Vec<String> = VIEWS.iter().map(|v| v.name.to_owned()).collect();
        all.sort();
        assert_eq!(described, all, "the README's views");
        let only = section
            .split(" and unknown kinds are only in the table")
            .next()
            .and_then(|before| before.rsplit(". ").next())
            .expect("the sentence on kinds only in the table");
        let mut without: Vec<String> = ACTIVITIES
            .iter()
            .filter(|a| a.view.is_none())
            .map(|a| a.kind.to_owned())
            .collect();
        without.sort();
        assert_eq!(ticked(only), without, "README: {only}");
    }

    #[test]
    fn wrap_breaks_lines_at_the_width() {
        let items: Vec<String> = (0..30).map(|i| format!("column_{i}")).collect();
        let text = wrap(&items, "    ", 40);
        assert!(text.lines().all(|l| l.len() <= 40 && l.starts_with("    ")));
        assert_eq!(
            text.split(',').map(str::trim).collect::<Vec<_>>(),
            items.iter().map(String::as_str).collect::<Vec<_>>()
        );
    }
}
