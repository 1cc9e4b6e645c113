//! The command line: each command flattens the settings sections it needs (each section's flags
//! and validation live in the module that uses it, see [`crate::settings`]); `--help` groups the
//! flags by section. Every flag has a `///` doc (shown by `--help`) and an `ADJUST_SINK_*`
//! environment variable.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::clickhouse::Profile;
use crate::clickhouse::housekeeping::HousekeepingArgs;
use crate::clickhouse::settings::{ClickHouseArgs, ConnectionArgs, TableArgs};
use crate::http::settings::EdgeArgs;
use crate::pipeline::settings::{BatchArgs, DataDirArgs, DeliveryArgs, QueueArgs};
use crate::row::settings::RowArgs;
use crate::settings::Secret;

/// Receives Adjust server callbacks and lands every one of them, typed and exactly once, in
/// ClickHouse.
#[derive(Debug, Parser)]
#[command(name = "adjust-sink", version, about, long_about = None, max_term_width = 100, args_override_self = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log filter (`error`, `warn`, `info`, `debug`, or a tracing filter such as
    /// `adjust_sink=debug`).
    #[arg(long, global = true, env = "ADJUST_SINK_LOG", default_value = "info")]
    pub log: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Receive callbacks and deliver them to ClickHouse.
    Serve(Box<ServeArgs>),
    /// Create or upgrade the database and tables for the connected server (idempotent).
    Migrate(ClickHouseArgs),
    /// Print the DDL `migrate` runs.
    Schema(SchemaArgs),
    /// Print the callback URLs to paste into Adjust for this sink.
    CallbackUrl(CallbackUrlArgs),
    /// Deliver what a data directory's write-ahead log holds to ClickHouse, then exit.
    Replay(ReplayArgs),
    /// Show what a data directory holds for delivery, and whether the table matches this version.
    Check(CheckArgs),
    /// Backfill from Adjust's CSV exports (CSV or CSV.gz, `-` for stdin): each row is typed as a
    /// callback would be, with the same row settings as `serve`, and delivered the same way;
    /// activities already in the table are skipped
    Import(Box<ImportArgs>),
    /// Per day and activity kind: activities that arrived as callbacks, those only an export had
    /// (`import`), and the completeness of the callbacks in percent
    Reconcile(ReconcileArgs),
}

/// Create or upgrade the tables first, unless told not to (`serve`, `replay`, `import`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Target table")]
pub struct MigrateArgs {
    /// Do not create or upgrade the tables at start, or as soon as ClickHouse answers (run
    /// `migrate` yourself).
    #[arg(long, env = "ADJUST_SINK_NO_MIGRATE")]
    pub no_migrate: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(flatten)]
    pub exports: FollowExportsArgs,
    #[command(flatten)]
    pub table: TableArgs,
    #[command(flatten)]
    pub migrate: MigrateArgs,
    #[command(flatten)]
    pub rows: RowArgs,
    #[command(flatten)]
    pub edge: EdgeArgs,
    #[command(flatten)]
    pub data_dir: DataDirArgs,
    #[command(flatten)]
    pub queue: QueueArgs,
    #[command(flatten)]
    pub batch: BatchArgs,
    #[command(flatten)]
    pub delivery: DeliveryArgs,
    #[command(flatten)]
    pub housekeeping: HousekeepingArgs,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(flatten)]
    pub table: TableArgs,
    #[command(flatten)]
    pub migrate: MigrateArgs,
    #[command(flatten)]
    pub rows: RowArgs,
    #[command(flatten)]
    pub data_dir: DataDirArgs,
    #[command(flatten)]
    pub delivery: DeliveryArgs,

    /// Export files: a header row naming placeholders (`adid` or `{adid}`, any order and subset),
    /// then one activity per row; gzip is recognised by content; `-` reads stdin. A URL
    /// (`s3://bucket/prefix/`, `file:///dir`) or a directory is a source of export files, each
    /// loaded once (recorded in the `<table>_imports` manifest)
    #[arg(value_name = "FILE|URL", required = true)]
    pub files: Vec<String>,

    #[command(flatten)]
    pub follow: FollowArgs,

    /// Do not import activities whose `event_date` is older than this many days: the table's
    /// retention (`serve --retention`) would remove them. They are counted in the summary
    #[arg(
        long,
        value_name = "DAYS",
        env = "ADJUST_SINK_RETENTION",
        help_heading = "Import"
    )]
    pub retention: Option<u32>,

    /// Activities per existence check and delivery
    #[arg(
        long,
        env = "ADJUST_SINK_IMPORT_BATCH_ROWS",
        default_value_t = 5_000,
        help_heading = "Import"
    )]
    pub batch_rows: usize,

    /// Serve /metrics and /healthz here while importing (off by default): for a follower
    /// (`--follow`) that Prometheus watches
    #[arg(
        long,
        value_name = "ADDR",
        env = "ADJUST_SINK_IMPORT_ADMIN_LISTEN",
        help_heading = "Import"
    )]
    pub admin_listen: Option<std::net::SocketAddr>,
}

/// How export files are followed (`import URL`, `serve --follow-exports`).
#[derive(Debug, Args)]
pub struct FollowArgs {
    /// Keep following the URLs or directories: list them again every --follow-interval and load
    /// the new files
    #[arg(long, env = "ADJUST_SINK_FOLLOW", help_heading = "Exports")]
    pub follow: bool,

    /// Time between two listings of the exports
    #[arg(
        long,
        value_name = "DURATION",
        env = "ADJUST_SINK_FOLLOW_INTERVAL",
        default_value = "5m",
        help_heading = "Exports"
    )]
    pub follow_interval: String,

    /// A follower's claim on a file expires when not renewed for this long (its holder stopped):
    /// another follower then loads the file
    #[arg(
        long,
        value_name = "DURATION",
        env = "ADJUST_SINK_FOLLOW_CLAIM_TTL",
        default_value = "2m",
        help_heading = "Exports"
    )]
    pub follow_claim_ttl: String,
}

/// `serve` following Adjust's cloud-storage exports as `import URL --follow` does.
#[derive(Debug, Args)]
pub struct FollowExportsArgs {
    /// Follow Adjust's cloud-storage exports at this URL (`s3://bucket/prefix/`, `file:///dir`
    /// or a directory) while serving: load each new export file once, every --follow-interval
    #[arg(
        long,
        value_name = "URL",
        env = "ADJUST_SINK_FOLLOW_EXPORTS",
        help_heading = "Exports"
    )]
    pub follow_exports: Option<String>,

    /// Time between two listings of the exports
    #[arg(
        long,
        value_name = "DURATION",
        env = "ADJUST_SINK_FOLLOW_INTERVAL",
        default_value = "5m",
        help_heading = "Exports"
    )]
    pub follow_interval: String,

    /// A follower's claim on a file expires when not renewed for this long
    #[arg(
        long,
        value_name = "DURATION",
        env = "ADJUST_SINK_FOLLOW_CLAIM_TTL",
        default_value = "2m",
        help_heading = "Exports"
    )]
    pub follow_claim_ttl: String,
}

/// How `reconcile` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    #[command(flatten)]
    pub clickhouse: ClickHouseArgs,

    /// First day (YYYY-MM-DD, by event_date) to report; every day when absent
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,

    /// `table` (aligned, with a total line) or `json` (one array of objects)
    #[arg(long, value_enum, default_value = "table")]
    pub format: ReportFormat,

    /// `day` (by event_date and activity kind) or `hour` (by the hour of created_at, app and
    /// activity kind: the completeness of each hourly export)
    #[arg(long, value_enum, default_value = "day")]
    pub by: ReconcileBy,

    /// Only this app (app token; repeatable)
    #[arg(long, value_name = "TOKEN")]
    pub app: Vec<String>,
}

/// What `reconcile` groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReconcileBy {
    Day,
    Hour,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub clickhouse: ClickHouseArgs,
    #[command(flatten)]
    pub migrate: MigrateArgs,
    /// The data directory whose write-ahead log is delivered (the sink using it must be
    /// stopped).
    #[command(flatten)]
    pub data_dir: DataDirArgs,
    #[command(flatten)]
    pub batch: BatchArgs,
    #[command(flatten)]
    pub delivery: DeliveryArgs,

    /// Re-deliver every callback the log acknowledged since TIME, delivered already or not, from
    /// the segments it keeps (--keep-delivered): an RFC 3339 time (`2026-12-06T04:00:00Z`) or a
    /// duration back from now (`30m`, `26h`). Reads the log without its lock and changes none
    /// of its positions, so a sink may keep running on the directory. Copies collapse by
    /// callback_id (query with FINAL).
    #[arg(long, value_name = "TIME", env = "ADJUST_SINK_SINCE")]
    pub since: Option<String>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub clickhouse: ClickHouseArgs,

    /// Data directory to inspect.
    #[arg(long, env = "ADJUST_SINK_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    #[command(flatten)]
    pub clickhouse: ClickHouseArgs,

    /// Server generation to print the DDL for. Without it, the server at --clickhouse-url is
    /// asked for its version.
    #[arg(long, env = "ADJUST_SINK_PROFILE", value_enum)]
    pub profile: Option<Profile>,
}

#[derive(Debug, Args)]
pub struct CallbackUrlArgs {
    /// The sink's public base URL, as Adjust reaches it (e.g. `https://sink.example.com`; a path
    /// prefix is kept). The callback paths `/adjust` and `/adjust/<trigger>` are appended.
    #[arg(long, value_name = "URL", env = "ADJUST_SINK_BASE_URL")]
    pub base_url: String,

    /// Print only this callback: `global` or a trigger (`install`, `event`, `ad_revenue`,
    /// `sk_install`, …; repeatable, or comma-separated in the env var). Default: the global
    /// callback and every trigger.
    #[arg(
        long = "trigger",
        value_name = "NAME",
        env = "ADJUST_SINK_TRIGGER",
        value_delimiter = ','
    )]
    pub trigger: Vec<String>,

    /// Event token to print the event callback for (repeatable, or comma-separated in the env
    /// var); with --partner the tokens share one `event_callback_<t1>_<t2>` parameter.
    #[arg(
        long = "event-token",
        value_name = "TOKEN",
        env = "ADJUST_SINK_EVENT_TOKEN",
        value_delimiter = ','
    )]
    pub event_token: Vec<String>,

    /// Put `sink_token=TOKEN` into every URL (the token `serve --callback-token` requires).
    #[arg(
        long = "callback-token",
        value_name = "TOKEN",
        env = "ADJUST_SINK_CALLBACK_TOKEN",
        hide_env_values = true
    )]
    pub callback_token: Option<Secret>,

    /// Put every placeholder of the catalog in every URL, not only those of its activities.
    #[arg(long, env = "ADJUST_SINK_ALL")]
    pub all: bool,

    /// Print the partner form: one Adjust tracker URL with the callback URLs attached
    /// (`https://app.adjust.com/<tracker>?install_callback=<encoded>&…`).
    #[arg(long, env = "ADJUST_SINK_PARTNER", requires = "tracker")]
    pub partner: bool,

    /// Tracker (link) token of the partner form (6 or more lowercase letters and digits).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "ADJUST_SINK_TRACKER",
        requires = "partner"
    )]
    pub tracker: Option<String>,

    /// Which placeholders each URL carries: `minimal` (identity, dedup key, attribution, revenue:
    /// short URLs), `standard` (every placeholder of the URL's activities), `all` (the catalog);
    /// default `minimal` with --partner, `standard` otherwise (--all is `--fields all`)
    #[arg(long, value_enum, value_name = "SET", env = "ADJUST_SINK_FIELDS")]
    pub fields: Option<crate::callback_url::Fields>,

    /// Adds this placeholder to every URL (repeatable)
    #[arg(
        long = "placeholder",
        value_name = "NAME",
        env = "ADJUST_SINK_PLACEHOLDER",
        value_delimiter = ','
    )]
    pub placeholder: Vec<String>,
}

impl CallbackUrlArgs {
    /// The generator's options.
    pub fn options(&self) -> crate::callback_url::Options {
        crate::callback_url::Options {
            base_url: self.base_url.clone(),
            triggers: self.trigger.clone(),
            event_tokens: self.event_token.clone(),
            all: self.all,
            partner: self.partner,
            tracker: self.tracker.clone(),
            callback_token: self.callback_token.as_ref().map(|t| t.expose().to_owned()),
            fields: self.fields,
            placeholders: self.placeholder.clone(),
        }
    }
}
