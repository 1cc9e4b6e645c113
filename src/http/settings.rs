//! The Edge section of the command line (`serve` only): the listeners, who may call, the
//! callback token, HTTPS, and the limits on connections.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::allowlist::Allowlist;
use super::edge::{EdgeConfig, TlsFiles};
use super::token::{self, Tokens};
use crate::settings::{ConfigError, Secret, err, parse_bytes, parse_nets, positive_duration};

/// Least `--max-held-bytes`: room for a few long callbacks arriving at once.
const MIN_HELD_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Edge")]
pub struct EdgeArgs {
    /// Address of the callback listener (point Adjust here). The default takes IPv6 and IPv4
    /// (on a host without IPv6: IPv4 only, with a warning).
    #[arg(long, env = "ADJUST_SINK_LISTEN", default_value = "[::]:8080")]
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

    /// Open callback connections at most per direct peer (an IPv4 address, or an IPv6 /64);
    /// further ones are closed at accept. Trusted proxies are not limited. Default: a quarter of
    /// --max-connections.
    #[arg(long, value_name = "N", env = "ADJUST_SINK_MAX_CONNECTIONS_PER_SOURCE")]
    pub max_connections_per_source: Option<usize>,

    /// Bytes of unfinished request heads all callback connections may hold together (a head
    /// that arrives in one read is not counted); past it, the connections whose heads have been
    /// unfinished longest are closed. At least 1MiB.
    #[arg(
        long,
        value_name = "SIZE",
        env = "ADJUST_SINK_MAX_HELD_BYTES",
        default_value = "32MiB"
    )]
    pub max_held_bytes: String,

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
            .collect();
        if tokens.iter().any(|t| t.is_empty()) {
            // An empty ADJUST_SINK_CALLBACK_TOKEN (or `,`) must not quietly turn the check off.
            return err(
                "--callback-token (or ADJUST_SINK_CALLBACK_TOKEN) is empty or has an empty entry: \
                 give every token, or unset it to take callbacks without a token",
            );
        }
        for t in &tokens {
            token::check(t).or_else(|e| err(format!("--callback-token: {e}")))?;
        }
        if self.max_connections == 0 {
            return err("--max-connections must be above zero");
        }
        let max_per_source = match self.max_connections_per_source {
            Some(0) => return err("--max-connections-per-source must be above zero"),
            Some(n) => n,
            None => EdgeConfig::default_per_source(self.max_connections),
        };
        let max_held_bytes =
            parse_bytes(&self.max_held_bytes).or_else(|e| err(format!("--max-held-bytes: {e}")))?;
        if max_held_bytes < MIN_HELD_BYTES {
            return err(format!(
                "--max-held-bytes must be at least 1MiB (a single long callback holds up to 384 KiB \
                 while it arrives), not {}",
                self.max_held_bytes
            ));
        }
        let positive =
            |flag: &str, v: &str| -> Result<Duration, ConfigError> { positive_duration(flag, v) };
        Ok(EdgeConfig {
            tokens: Tokens::new(tokens),
            body_timeout: positive("--body-timeout", &self.body_timeout)?,
            head_timeout: positive("--head-timeout", &self.head_timeout)?,
            keep_alive: positive("--keep-alive", &self.keep_alive)?,
            max_connections: self.max_connections,
            max_per_source,
            max_held_bytes: usize::try_from(max_held_bytes).unwrap_or(usize::MAX),
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        edge: EdgeArgs,
    }

    fn edge(args: &[&str]) -> Result<EdgeSettings, ConfigError> {
        Cli::try_parse_from([&["edge"], args].concat())
            .unwrap()
            .edge
            .settings()
    }

    #[test]
    fn the_default_listener_takes_ipv6_and_ipv4() {
        let s = edge(&[]).unwrap();
        assert_eq!(s.listen.to_string(), "[::]:8080");
    }

    #[test]
    fn an_empty_callback_token_is_an_error_not_no_token() {
        for given in ["", ",", " ", "0123456789abcdef,"] {
            let e = edge(&["--callback-token", given])
                .err()
                .unwrap()
                .to_string();
            assert!(e.contains("empty"), "{given:?}: {e}");
        }
        assert!(!edge(&[]).unwrap().edge.tokens.required());
        let s = edge(&["--callback-token", "0123456789abcdef,fedcba9876543210"]).unwrap();
        assert!(s.edge.tokens.required());
    }

    #[test]
    fn per_source_and_held_bytes_limits() {
        let s = edge(&[]).unwrap().edge;
        assert_eq!(s.max_per_source, 2_500);
        assert_eq!(s.max_held_bytes, 32 << 20);
        let s = edge(&["--max-connections", "50"]).unwrap().edge;
        assert_eq!(s.max_per_source, 12, "a quarter of --max-connections");
        let s = edge(&["--max-connections", "5"]).unwrap().edge;
        assert_eq!(s.max_per_source, 1);
        let s = edge(&[
            "--max-connections-per-source",
            "3",
            "--max-held-bytes",
            "8MiB",
        ])
        .unwrap()
        .edge;
        assert_eq!((s.max_per_source, s.max_held_bytes), (3, 8 << 20));
        assert!(edge(&["--max-connections-per-source", "0"]).is_err());
        let e = edge(&["--max-held-bytes", "100KiB"])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("at least 1MiB"), "{e}");
        assert!(edge(&["--max-held-bytes", "lots"]).is_err());
    }
}
