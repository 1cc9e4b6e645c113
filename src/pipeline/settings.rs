//! The Queue and delivery section of the command line: the data directory and its disk budget,
//! the queue, batches, and the time limits of delivery. [`DataDir`] is the one place the log,
//! the rejects file and a deliverer are put together (`serve`, `replay` and `import` use it).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::Limits;
use super::deliver::{Backoff, Deliverer, RejectsFile, share_of_budget};
use super::wal::WalConfig;
use crate::metrics::Metrics;
use crate::settings::{ConfigError, err, parse_bytes, parse_duration, positive_duration};
use crate::sink::Store;

/// Segment size of the write-ahead log.
pub const SEGMENT_BYTES: u64 = 64 << 20;

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

/// The data directory (`serve`, `replay`, `check`, `import`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Queue and delivery")]
pub struct DataDirArgs {
    /// Directory for the write-ahead log and the rejects file (and an export file while a
    /// follower loads it).
    #[arg(long, env = "ADJUST_SINK_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Disk the sink may use (e.g. `4GiB`): the write-ahead log, past which callbacks get 503,
    /// and an eighth of it (at most 512 MiB) kept for the rejects file. The log never takes
    /// more than its filesystem has free, less 4 MiB: on a smaller disk, 503 comes earlier.
    #[arg(long, env = "ADJUST_SINK_DISK_BUDGET", default_value = "4GiB")]
    pub disk_budget: String,

    /// Keep delivered write-ahead log segments this long (e.g. `1h`, `26h`; `0s`: delete at
    /// once), for `replay --since` after ClickHouse lost acknowledged rows. Kept segments use
    /// the disk budget only while new callbacks do not need it: the oldest go first.
    #[arg(long, env = "ADJUST_SINK_KEEP_DELIVERED", default_value = "1h")]
    pub keep_delivered: String,
}

/// The in-memory side of the queue (`serve`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Queue and delivery")]
pub struct QueueArgs {
    /// When a callback is acknowledged: after fsync to the write-ahead log, or once queued in
    /// memory.
    #[arg(
        long,
        env = "ADJUST_SINK_DURABILITY",
        value_enum,
        default_value = "wal"
    )]
    pub durability: Durability,

    /// In-memory queue capacity in rows (`--durability memory`).
    #[arg(long, env = "ADJUST_SINK_QUEUE_MAX_ROWS", default_value_t = 100_000)]
    pub queue_max_rows: usize,

    /// In-memory queue capacity in bytes of encoded rows (`--durability memory`), and the memory
    /// bound of rows waiting for the write-ahead log (`--durability wal`).
    #[arg(long, env = "ADJUST_SINK_QUEUE_MAX_BYTES", default_value = "64MiB")]
    pub queue_max_bytes: String,
}

/// When a batch is cut (`serve`, `replay`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Queue and delivery")]
pub struct BatchArgs {
    /// Cut a batch at this many rows.
    #[arg(long, env = "ADJUST_SINK_BATCH_MAX_ROWS", default_value_t = 50_000)]
    pub batch_max_rows: usize,

    /// Cut a batch at this many bytes of encoded rows (a batch takes this much memory, and its
    /// compressed copy while it is sent): larger makes fewer, larger parts in ClickHouse for wide
    /// rows.
    #[arg(long, env = "ADJUST_SINK_BATCH_MAX_BYTES", default_value = "64MiB")]
    pub batch_max_bytes: String,

    /// Cut a batch when its oldest row is this old (e.g. `2s`, `500ms`): longer makes fewer,
    /// larger parts in ClickHouse, shorter lands rows sooner.
    #[arg(long, env = "ADJUST_SINK_BATCH_MAX_AGE", default_value = "2s")]
    pub batch_max_age: String,
}

/// The time limits of delivery (`serve`, `replay`, `import`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Queue and delivery")]
pub struct DeliveryArgs {
    /// Upper bound of one INSERT request.
    #[arg(long, env = "ADJUST_SINK_INSERT_TIMEOUT", default_value = "60s")]
    pub insert_timeout: String,

    /// On SIGTERM/SIGINT: how long to drain requests and flush before exiting.
    #[arg(long, env = "ADJUST_SINK_SHUTDOWN_TIMEOUT", default_value = "30s")]
    pub shutdown_timeout: String,
}

/// The data directory, validated.
#[derive(Debug, Clone)]
pub struct DataDir {
    pub path: PathBuf,
    pub disk_budget: u64,
    /// How long delivered log segments are kept.
    pub keep_delivered: Duration,
}

impl DataDirArgs {
    pub fn settings(&self) -> Result<DataDir, ConfigError> {
        let disk_budget = parse_bytes(&self.disk_budget)?;
        if disk_budget == 0 {
            return err("--disk-budget must be above zero");
        }
        Ok(DataDir {
            path: self.data_dir.clone(),
            disk_budget,
            keep_delivered: parse_duration(&self.keep_delivered)?,
        })
    }
}

impl DataDir {
    /// The write-ahead log's directory.
    pub fn wal_dir(&self) -> PathBuf {
        self.path.join("wal")
    }

    /// The log's settings: the budget less the rejects file's share; `max_pending_bytes` bounds
    /// the rows waiting for the appender.
    pub fn wal_config(&self, max_pending_bytes: u64) -> WalConfig {
        WalConfig {
            dir: self.wal_dir(),
            segment_bytes: SEGMENT_BYTES,
            disk_budget: self.disk_budget - share_of_budget(self.disk_budget),
            max_pending_bytes,
            keep_delivered: self.keep_delivered,
        }
    }

    /// The rejects file, with its share of the budget.
    pub fn rejects_file(&self) -> RejectsFile {
        RejectsFile::new(
            self.path.join("rejects.jsonl"),
            share_of_budget(self.disk_budget),
        )
    }

    /// A deliverer to `store` that keeps refused rows in this directory when the rejects table
    /// cannot take them.
    pub fn deliverer<S: Store>(&self, store: S, metrics: Metrics) -> Deliverer<S> {
        Deliverer::new(store, metrics, Backoff::default(), self.rejects_file())
    }
}

/// The queue, validated.
#[derive(Debug, Clone, Copy)]
pub struct Queue {
    pub durability: Durability,
    pub max_rows: usize,
    pub max_bytes: u64,
}

impl QueueArgs {
    pub fn settings(&self) -> Result<Queue, ConfigError> {
        let max_bytes = parse_bytes(&self.queue_max_bytes)?;
        if self.queue_max_rows == 0 || max_bytes == 0 {
            return err("--queue-max-rows and --queue-max-bytes must be above zero");
        }
        Ok(Queue {
            durability: self.durability,
            max_rows: self.queue_max_rows,
            max_bytes,
        })
    }
}

impl BatchArgs {
    pub fn limits(&self) -> Result<Limits, ConfigError> {
        let limits = Limits {
            max_rows: self.batch_max_rows,
            max_bytes: parse_bytes(&self.batch_max_bytes)? as usize,
            max_age: parse_duration(&self.batch_max_age)?,
        };
        if limits.max_rows == 0 || limits.max_bytes == 0 || limits.max_age.is_zero() {
            return err(
                "--batch-max-rows, --batch-max-bytes and --batch-max-age must be above zero",
            );
        }
        Ok(limits)
    }
}

/// The time limits of delivery, validated.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub insert: Duration,
    pub shutdown: Duration,
}

impl DeliveryArgs {
    pub fn timeouts(&self) -> Result<Timeouts, ConfigError> {
        Ok(Timeouts {
            insert: positive_duration("--insert-timeout", &self.insert_timeout)?,
            shutdown: parse_duration(&self.shutdown_timeout)?,
        })
    }
}
