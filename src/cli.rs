//! The command line: every flag has a `///` doc (shown by `--help`) and an `ADJUST_SINK_*`
//! environment variable. Values are validated into typed settings by [`crate::config`].

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::clickhouse::Profile;
use crate::clickhouse::credentials::{Secret, ServerUrl};

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
    /// callback would be, activities already in the table are skipped
    Import(ImportArgs),
    /// Per day and activity kind: activities that arrived as callbacks, those only an export had
    /// (`import`), and the completeness of the callbacks in percent
    Reconcile(ReconcileArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub clickhouse: ClickHouseArgs,

    /// Export files: a header row naming placeholders (`adid` or `{adid}`, any order and subset),
    /// then one activity per row; gzip is recognised by content; `-` reads stdin
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<String>,

    /// Activities per existence check and insert
    #[arg(long, env = "ADJUST_SINK_IMPORT_BATCH_ROWS", default_value_t = 5_000)]
    pub batch_rows: usize,

    /// Do not create or upgrade the tables before importing
    #[arg(long, env = "ADJUST_SINK_NO_MIGRATE")]
    pub no_migrate: bool,
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
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub clickhouse: ClickHouseArgs,

    /// Data directory whose write-ahead log is delivered (the sink using it must be stopped).
    #[arg(long, env = "ADJUST_SINK_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Cut a batch at this many rows.
    #[arg(long, env = "ADJUST_SINK_BATCH_MAX_ROWS", default_value_t = 50_000)]
    pub batch_max_rows: usize,

    /// Cut a batch at this many bytes of encoded rows.
    #[arg(long, env = "ADJUST_SINK_BATCH_MAX_BYTES", default_value = "32MiB")]
    pub batch_max_bytes: String,

    /// Do not create or upgrade the tables first.
    #[arg(long, env = "ADJUST_SINK_NO_MIGRATE")]
    pub no_migrate: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub clickhouse: ClickHouseArgs,

    /// Data directory to inspect.
    #[arg(long, env = "ADJUST_SINK_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
}

/// How to reach ClickHouse and where the table lives. `Debug` shows no password.
#[derive(Debug, Clone, Args)]
pub struct ClickHouseArgs {
    /// ClickHouse HTTP interface URL; `https://` for TLS (ClickHouse's `https_port`, 8443 on
    /// ClickHouse Cloud). `user:password@` in it is used as the credentials and never printed.
    #[arg(
        long,
        value_name = "URL",
        env = "ADJUST_SINK_CLICKHOUSE_URL",
        default_value = "http://127.0.0.1:8123",
        hide_env_values = true
    )]
    pub clickhouse_url: ServerUrl,

    /// ClickHouse user (the server's default user when not set).
    #[arg(long, env = "ADJUST_SINK_CLICKHOUSE_USER")]
    pub clickhouse_user: Option<String>,

    /// ClickHouse password (prefer --clickhouse-password-file: a value given here is visible
    /// in the process list; an empty one counts as not given).
    #[arg(long, env = "ADJUST_SINK_CLICKHOUSE_PASSWORD", hide_env_values = true)]
    pub clickhouse_password: Option<Secret>,

    /// File holding the ClickHouse password (read at start; a trailing newline is not part of
    /// it). Not together with --clickhouse-password.
    #[arg(
        long,
        value_name = "PATH",
        env = "ADJUST_SINK_CLICKHOUSE_PASSWORD_FILE"
    )]
    pub clickhouse_password_file: Option<PathBuf>,

    /// PEM file with the CA certificate(s) that signed ClickHouse's TLS certificate, trusted
    /// instead of the system's root certificates (for `https://` URLs).
    #[arg(long, value_name = "PATH", env = "ADJUST_SINK_CLICKHOUSE_CA")]
    pub clickhouse_ca: Option<PathBuf>,

    /// Database holding the callbacks table.
    #[arg(long, env = "ADJUST_SINK_DATABASE", default_value = "adjust")]
    pub database: String,

    /// Callbacks table (rejected rows go to `<table>_rejects`).
    #[arg(long, env = "ADJUST_SINK_TABLE", default_value = "callbacks")]
    pub table: String,

    /// Give this cold placeholder a physical column (repeatable, or comma-separated in the env
    /// var): `migrate` turns its ALIAS column into a DEFAULT column that ClickHouse fills from the
    /// stored text, for new rows at insert and for older rows as parts merge.
    #[arg(
        long = "physical",
        env = "ADJUST_SINK_PHYSICAL",
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub physical: Vec<String>,

    /// A typed column of your own for a key Adjust's catalog does not know (an SDK callback or
    /// partner parameter), `NAME:TYPE` with TYPE one of string, lowcard, int, float, bool,
    /// timestamp (repeatable); `migrate` adds it, and its values land there instead of `extra`
    #[arg(
        long = "column",
        env = "ADJUST_SINK_COLUMN",
        value_name = "NAME:TYPE",
        value_delimiter = ','
    )]
    pub column: Vec<String>,
    /// ClickHouse cluster (a name in the servers' `<remote_servers>`): the DDL runs ON CLUSTER,
    /// the rows live in replicated `<table>_local` tables on every node behind a Distributed
    /// `<table>` sharded by callback_id, and inserts wait for every shard
    /// (insert_distributed_sync=1). Point --clickhouse-url at any node.
    #[arg(long, value_name = "NAME", env = "ADJUST_SINK_CLUSTER")]
    pub cluster: Option<String>,
}

/// When a callback is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Durability {
    /// 200 only once the callback is fsynced to the local write-ahead log (nothing acknowledged
    /// is lost on a crash or a ClickHouse outage).
    Wal,
    /// 200 once the callback is in the in-memory queue (lower latency; a crash loses what is
    /// queued, up to --queue-max-rows).
    Memory,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address of the callback listener (point Adjust here).
    #[arg(long, env = "ADJUST_SINK_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    /// Address of the admin listener (/metrics, /healthz, /readyz).
    #[arg(
        long,
        env = "ADJUST_SINK_ADMIN_LISTEN",
        default_value = "127.0.0.1:9100"
    )]
    pub admin_listen: SocketAddr,

    #[command(flatten)]
    pub clickhouse: ClickHouseArgs,

    /// Also accept callbacks from this network (CIDR; repeatable, or comma-separated in the env
    /// var), in addition to Adjust's ranges.
    #[arg(
        long = "allow",
        value_name = "CIDR",
        env = "ADJUST_SINK_ALLOW",
        value_delimiter = ','
    )]
    pub allow: Vec<String>,

    /// Do not allow Adjust's built-in source ranges (then --allow must list every source).
    #[arg(long, env = "ADJUST_SINK_NO_DEFAULT_ALLOW")]
    pub no_default_allow: bool,

    /// Proxy network whose X-Forwarded-For is believed (CIDR; repeatable). The client is then the
    /// right-most X-Forwarded-For entry that is not a trusted proxy.
    #[arg(
        long = "trusted-proxy",
        value_name = "CIDR",
        env = "ADJUST_SINK_TRUSTED_PROXY",
        value_delimiter = ','
    )]
    pub trusted_proxy: Vec<String>,

    /// Shared secret every callback must carry as `sink_token=TOKEN` in its query string (or
    /// POST body); refused with 403 otherwise. Repeatable (or comma-separated in the env var) to
    /// rotate: every listed token is accepted. At least 16 characters of `A-Za-z0-9-._~`.
    #[arg(
        long = "callback-token",
        value_name = "TOKEN",
        env = "ADJUST_SINK_CALLBACK_TOKEN",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub callback_token: Vec<Secret>,

    /// PEM certificate chain: serve the callback listener over HTTPS (with --tls-key). Read again
    /// on SIGHUP and when the file changes.
    #[arg(
        long,
        value_name = "PATH",
        env = "ADJUST_SINK_TLS_CERT",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(
        long,
        value_name = "PATH",
        env = "ADJUST_SINK_TLS_KEY",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// Open callback connections at most, all workers together; further connections wait in
    /// the listen backlog.
    #[arg(long, env = "ADJUST_SINK_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// A request head (line and headers) must arrive within this time (also bounds the TLS
    /// handshake); 408 and close otherwise.
    #[arg(long, env = "ADJUST_SINK_HEAD_TIMEOUT", default_value = "10s")]
    pub head_timeout: String,

    /// A callback's body must arrive whole within this time after its head; 408 and close
    /// otherwise.
    #[arg(long, env = "ADJUST_SINK_BODY_TIMEOUT", default_value = "10s")]
    pub body_timeout: String,

    /// An idle keep-alive connection is closed after this time.
    #[arg(long, env = "ADJUST_SINK_KEEP_ALIVE", default_value = "30s")]
    pub keep_alive: String,

    /// Treat query key ALIAS as the placeholder NAME (`ALIAS=NAME`, e.g. `device_id=adid`;
    /// repeatable).
    #[arg(
        long = "param-alias",
        value_name = "ALIAS=NAME",
        env = "ADJUST_SINK_PARAM_ALIAS",
        value_delimiter = ','
    )]
    pub param_alias: Vec<String>,

    /// When a callback is acknowledged: after fsync to the write-ahead log, or once queued in
    /// memory.
    #[arg(
        long,
        env = "ADJUST_SINK_DURABILITY",
        value_enum,
        default_value = "wal"
    )]
    pub durability: Durability,

    /// Directory for the write-ahead log and the rejects file.
    #[arg(long, env = "ADJUST_SINK_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Disk the sink may use (e.g. `4GiB`): the write-ahead log, past which callbacks get 503,
    /// and an eighth of it (at most 512 MiB) kept for the rejects file.
    #[arg(long, env = "ADJUST_SINK_DISK_BUDGET", default_value = "4GiB")]
    pub disk_budget: String,

    /// In-memory queue capacity in rows (`--durability memory`).
    #[arg(long, env = "ADJUST_SINK_QUEUE_MAX_ROWS", default_value_t = 100_000)]
    pub queue_max_rows: usize,

    /// In-memory queue capacity in bytes of encoded rows (`--durability memory`), and the memory
    /// bound of rows waiting for the write-ahead log (`--durability wal`).
    #[arg(long, env = "ADJUST_SINK_QUEUE_MAX_BYTES", default_value = "64MiB")]
    pub queue_max_bytes: String,

    /// Cut a batch at this many rows.
    #[arg(long, env = "ADJUST_SINK_BATCH_MAX_ROWS", default_value_t = 50_000)]
    pub batch_max_rows: usize,

    /// Cut a batch at this many bytes of encoded rows.
    #[arg(long, env = "ADJUST_SINK_BATCH_MAX_BYTES", default_value = "32MiB")]
    pub batch_max_bytes: String,

    /// Cut a batch when its oldest row is this old (e.g. `1s`, `500ms`).
    #[arg(long, env = "ADJUST_SINK_BATCH_MAX_AGE", default_value = "1s")]
    pub batch_max_age: String,

    /// On SIGTERM/SIGINT: how long to drain requests and flush before exiting.
    #[arg(long, env = "ADJUST_SINK_SHUTDOWN_TIMEOUT", default_value = "30s")]
    pub shutdown_timeout: String,

    /// Upper bound of one INSERT request.
    #[arg(long, env = "ADJUST_SINK_INSERT_TIMEOUT", default_value = "60s")]
    pub insert_timeout: String,

    /// Retry-After seconds sent with 503 when the queue is full or the disk budget is spent.
    #[arg(long, env = "ADJUST_SINK_RETRY_AFTER", default_value_t = 60)]
    pub retry_after: u32,

    /// HTTP worker threads (default: one per CPU core).
    #[arg(long, env = "ADJUST_SINK_WORKERS")]
    pub workers: Option<usize>,

    /// Do not create or upgrade the tables on first contact with ClickHouse (run `migrate`
    /// yourself).
    #[arg(long, env = "ADJUST_SINK_NO_MIGRATE")]
    pub no_migrate: bool,

    #[command(flatten)]
    pub privacy: PrivacyArgs,
}

/// Privacy settings of `serve` (README "Privacy").
#[derive(Debug, Args)]
pub struct PrivacyArgs {
    /// Store this text placeholder (`adid`, `idfa`, `gps_adid`, `android_id`, `ip_address`, …)
    /// as the hex HMAC-SHA256 of its value under the key in ADJUST_SINK_PSEUDONYM_KEY, wherever
    /// it would be written (repeatable, or comma-separated in the env var). `ip_address` also
    /// pseudonymizes `source_ip`.
    #[arg(
        long = "pseudonymize",
        value_name = "NAME",
        env = "ADJUST_SINK_PSEUDONYMIZE",
        value_delimiter = ','
    )]
    pub pseudonymize: Vec<String>,

    /// The secret key of --pseudonymize (set it in the environment, not on the command line).
    #[arg(
        long = "pseudonym-key",
        env = "ADJUST_SINK_PSEUDONYM_KEY",
        hide = true,
        hide_env_values = true
    )]
    pub pseudonym_key: Option<Secret>,

    /// Never store this placeholder (column empty or NULL, left out of `extra` and `raw_query`;
    /// repeatable, or comma-separated in the env var). `ip_address` also empties `source_ip`.
    #[arg(
        long = "drop",
        value_name = "NAME",
        env = "ADJUST_SINK_DROP",
        value_delimiter = ','
    )]
    pub drop: Vec<String>,

    /// Keep callbacks and rejects this many days (by `event_date` and `rejected_at`), then
    /// remove them: a TTL on modern servers, whole monthly partitions dropped hourly on 18.16.
    #[arg(long, value_name = "DAYS", env = "ADJUST_SINK_RETENTION")]
    pub retention: Option<u32>,

    /// How often erasure requests (`gdpr_forget_device` callbacks) are carried out.
    #[arg(long, env = "ADJUST_SINK_ERASURE_INTERVAL", default_value = "60s")]
    pub erasure_interval: String,

    /// Do not erase a device's rows on `gdpr_forget_device` (requests are still recorded in
    /// `<table>_erasures`).
    #[arg(long, env = "ADJUST_SINK_NO_ERASURE")]
    pub no_erasure: bool,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Server generation to print the DDL for. Without it, the server at --clickhouse-url is
    /// asked for its version.
    #[arg(long, env = "ADJUST_SINK_PROFILE", value_enum)]
    pub profile: Option<Profile>,

    #[command(flatten)]
    pub clickhouse: ClickHouseArgs,
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
