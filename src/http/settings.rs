//! The Edge section of the command line (`serve` only): the listeners, who may call, the
//! callback token, HTTPS, and the limits on connections.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::allowlist::Allowlist;
use super::edge::{EdgeConfig, TlsFiles};
use super::token::{self, Tokens};
use crate::settings::{ConfigError, Secret, err, parse_nets, positive_duration};

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Edge")]
pub struct EdgeArgs {
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

    /// Retry-After seconds sent with 503 when the queue is full or the disk budget is spent.
    #[arg(long, env = "ADJUST_SINK_RETRY_AFTER", default_value_t = 60)]
    pub retry_after: u32,

    /// HTTP worker threads (default: one per CPU core).
    #[arg(long, env = "ADJUST_SINK_WORKERS")]
    pub workers: Option<usize>,
}

/// The Edge section, validated.
#[derive(Debug, Clone)]
pub struct EdgeSettings {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub allow: Allowlist,
    pub trusted_proxies: Allowlist,
    /// Token, TLS, timeouts and connection limits of the callback listener.
    pub edge: EdgeConfig,
    pub retry_after: u32,
    pub workers: usize,
}

impl EdgeArgs {
    pub fn settings(&self) -> Result<EdgeSettings, ConfigError> {
        let mut allow = if self.no_default_allow {
            Allowlist::default()
        } else {
            Allowlist::adjust()
        };
        allow.extend(parse_nets(&self.allow, "--allow")?);
        if allow.is_empty() {
            return err(
                "the allowlist is empty, so every callback would be refused: remove --no-default-allow \
                 to accept Adjust's ranges, or add the sources with --allow CIDR (for a local test: --allow 127.0.0.1/32)",
            );
        }
        let trusted_proxies = Allowlist::new(parse_nets(&self.trusted_proxy, "--trusted-proxy")?);
        let workers = match self.workers {
            Some(0) => return err("--workers must be above zero"),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(2, |n| n.get()),
        };
        Ok(EdgeSettings {
            listen: self.listen,
            admin_listen: self.admin_listen,
            allow,
            trusted_proxies,
            edge: self.edge()?,
            retry_after: self.retry_after,
            workers,
        })
    }

    fn edge(&self) -> Result<EdgeConfig, ConfigError> {
        let tokens: Vec<&str> = self
            .callback_token
            .iter()
            .map(|t| t.expose().trim())
            .filter(|t| !t.is_empty())
            .collect();
        for t in &tokens {
            token::check(t).or_else(|e| err(format!("--callback-token: {e}")))?;
        }
        if self.max_connections == 0 {
            return err("--max-connections must be above zero");
        }
        let positive =
            |flag: &str, v: &str| -> Result<Duration, ConfigError> { positive_duration(flag, v) };
        Ok(EdgeConfig {
            tokens: Tokens::new(tokens),
            body_timeout: positive("--body-timeout", &self.body_timeout)?,
            head_timeout: positive("--head-timeout", &self.head_timeout)?,
            keep_alive: positive("--keep-alive", &self.keep_alive)?,
            max_connections: self.max_connections,
            tls: match (&self.tls_cert, &self.tls_key) {
                (Some(cert), Some(key)) => Some(TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                }),
                _ => None,
            },
        })
    }
}
