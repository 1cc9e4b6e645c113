//! The export follower inside `serve` (`--follow-exports`): its settings and its rounds.

use std::path::PathBuf;
use std::time::Duration;

use super::{SETTLE, Settings, Source, default_holder, round, timing};
use crate::clickhouse::schema::Target;
use crate::commands::import::Destination;
use crate::row;
use crate::sink::{Admin, Store};

/// `serve --follow-exports`: what to follow, and how.
#[derive(Clone)]
pub struct Following {
    pub url: String,
    /// Opened when the settings are read: a URL or directory that cannot be followed stops the
    /// sink at its start, not its follower in silence later.
    pub source: Source,
    pub interval: Duration,
    pub claim_ttl: Duration,
    /// `serve --retention`: older activities are not loaded.
    pub retention_days: Option<u32>,
}

impl Following {
    pub fn from_args(
        a: &crate::cli::FollowExportsArgs,
        retention_days: Option<u32>,
    ) -> Result<Option<Following>, crate::settings::ConfigError> {
        let Some(url) = &a.follow_exports else {
            return Ok(None);
        };
        let source = Source::open(url)
            .map_err(|e| crate::settings::ConfigError(format!("--follow-exports: {e:#}")))?;
        let (interval, claim_ttl) = timing(&a.follow_interval, &a.follow_claim_ttl)?;
        Ok(Some(Following {
            url: url.clone(),
            source,
            interval,
            claim_ttl,
            retention_days,
        }))
    }
}

/// Follows the exports inside `serve` until the sink stops: a round every interval, errors
/// logged and tried again at the next round.
pub async fn run<S: Store + Admin>(
    f: Following,
    spool: PathBuf,
    deliverer: crate::pipeline::deliver::Deliverer<S>,
    manifest: Target,
    options: row::Options,
    metrics: crate::metrics::Metrics,
    shutdown: crate::shutdown::Shutdown,
) {
    let source = &f.source;
    let to = Destination::new(
        &deliverer,
        manifest.table(),
        &metrics,
        &shutdown,
        f.retention_days,
    );
    let settings = Settings {
        holder: default_holder(),
        claim_ttl: f.claim_ttl,
        batch_rows: 5_000,
        settle: SETTLE,
        spool,
    };
    loop {
        match round(&to, &manifest, source, &options, &settings).await {
            Ok(r) => tracing::info!(
                url = %f.url,
                listed = r.listed,
                loaded = r.loaded,
                failed = r.failed,
                new = r.rows.new,
                older_than_retention = r.rows.expired,
                "export round"
            ),
            Err(e) => {
                tracing::warn!(url = %f.url, error = %format!("{e:#}"), "export round failed")
            }
        }
        if !shutdown.pause(f.interval).await {
            break;
        }
    }
}
