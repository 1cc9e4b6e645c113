//! Command-line arguments → validated, typed settings. No I/O here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnetwork::IpNetwork;

use crate::adjust::DecodeOptions;
use crate::cli::{ClickHouseArgs, Durability, ServeArgs};
use crate::clickhouse::credentials::split_url;
use crate::clickhouse::schema::Target;
use crate::clickhouse::store::{ClickHouseConfig, Password};
use crate::http::allowlist::Allowlist;
use crate::http::edge::{EdgeConfig, TlsFiles};
use crate::http::token::{self, Tokens};
use crate::pipeline::Limits;

/// A configuration error, worded for the person running the command.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

/// Parses `123`, `64KiB`, `64MiB`, `4GiB`, `10MB`, `1GB` (KB/MB/GB are powers of 1000).
pub fn parse_bytes(s: &str) -> Result<u64, ConfigError> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().or_else(|_| {
        err(format!(
            "`{s}` is not a size (examples: 64MiB, 4GiB, 1000000)"
        ))
    })?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => {
            return err(format!(
                "`{s}`: unknown size unit (use B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)"
            ));
        }
    };
    n.checked_mul(mult)
        .map_or_else(|| err(format!("`{s}` is too large")), Ok)
}

/// Parses `250ms`, `1s`, `5m`, `1h` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, ConfigError> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .or_else(|_| err(format!("`{s}` is not a duration (examples: 500ms, 1s, 5m)")))?;
    Ok(match unit.trim() {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" | "min" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return err(format!("`{s}`: unknown duration unit (use ms, s, m, h)")),
    })
}

fn parse_nets(values: &[String], flag: &str) -> Result<Vec<IpNetwork>, ConfigError> {
    values
        .iter()
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<IpNetwork>()
                .or_else(|_| err(format!("{flag} `{v}` is not a network (examples: 203.0.113.0/24, 2001:db8::/32, 10.1.2.3)")))
        })
        .collect()
}

impl ClickHouseArgs {
    pub fn target(&self) -> Result<Target, ConfigError> {
        for (flag, name) in [("--database", &self.database), ("--table", &self.table)] {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return err(format!(
                    "{flag} `{name}`: use letters, digits and underscores only"
                ));
            }
        }
        let physical: Vec<String> = self
            .physical
            .iter()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .collect();
        crate::clickhouse::schema::check_physical(&physical).map_err(ConfigError)?;
        let mut columns: Vec<crate::adjust::decode::CustomColumn> = Vec::new();
        for spec in self.column.iter().filter(|s| !s.trim().is_empty()) {
            let c = crate::adjust::decode::CustomColumn::parse(spec)
                .map_err(|e| ConfigError(format!("--column `{spec}`: {e}")))?;
            if columns.iter().any(|o| o.name == c.name) {
                return err(format!("--column `{}` is given twice", c.name));
            }
            columns.push(c);
        }
        let cluster = self
            .cluster
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty());
        if let Some(c) = cluster
            && !c
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-' || ch == '.')
        {
            return err(format!(
                "--cluster `{c}`: use letters, digits, `_`, `-` and `.` only"
            ));
        }
        Ok(Target {
            database: self.database.clone(),
            table: self.table.clone(),
            physical,
            columns,
            cluster: cluster.map(str::to_string),
        })
    }

    pub fn config(
        &self,
        auto_migrate: bool,
        insert_timeout: Duration,
    ) -> Result<ClickHouseConfig, ConfigError> {
        // `self.clickhouse_url` prints with its password redacted.
        let raw = self.clickhouse_url.expose();
        let https = raw.starts_with("https://");
        if !https && !raw.starts_with("http://") {
            return err(format!(
                "--clickhouse-url `{}` must start with http:// or https://",
                self.clickhouse_url
            ));
        }
        let split = split_url(raw).map_err(|e| {
            ConfigError(format!(
                "--clickhouse-url `{}` is not a URL: {e}",
                self.clickhouse_url
            ))
        })?;
        let user = match (
            split.user,
            self.clickhouse_user.clone().filter(|u| !u.is_empty()),
        ) {
            (Some(_), Some(_)) => {
                return err(
                    "the ClickHouse user is given both in --clickhouse-url and with --clickhouse-user; keep one",
                );
            }
            (a, b) => a.or(b),
        };
        let given = self.clickhouse_password.clone().filter(|p| !p.is_empty());
        let password = match (split.password, given, &self.clickhouse_password_file) {
            (Some(p), None, None) => Some(Password::Given(p)),
            (None, Some(p), None) => Some(Password::Given(p)),
            (None, None, Some(path)) => Some(Password::File(path.clone())),
            (None, None, None) => None,
            _ => {
                return err(
                    "the ClickHouse password is given more than once (in --clickhouse-url, \
                     --clickhouse-password, --clickhouse-password-file); keep one",
                );
            }
        };
        if let Some(ca) = &self.clickhouse_ca
            && !https
        {
            return err(format!(
                "--clickhouse-ca {} is only used for https:// URLs, and --clickhouse-url is `{}`",
                ca.display(),
                self.clickhouse_url
            ));
        }
        Ok(ClickHouseConfig {
            url: split.url,
            user,
            password,
            ca: self.clickhouse_ca.clone(),
            target: self.target()?,
            auto_migrate,
            insert_timeout,
        })
    }
}

/// Everything `serve` needs, validated.
#[derive(Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub clickhouse: ClickHouseConfig,
    pub allow: Allowlist,
    pub trusted_proxies: Allowlist,
    /// Token, TLS, timeouts and connection limits of the callback listener.
    pub edge: EdgeConfig,
    /// How callbacks become rows.
    pub row: crate::row::Options,
    pub durability: Durability,
    pub data_dir: PathBuf,
    pub disk_budget: u64,
    pub queue_max_rows: usize,
    pub queue_max_bytes: u64,
    pub limits: Limits,
    pub shutdown_timeout: Duration,
    pub retry_after: u32,
    pub workers: usize,
    pub housekeeping: Housekeeping,
}

/// Retention and erasure (README "Privacy").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Housekeeping {
    /// `--retention` days.
    pub retention_days: Option<u32>,
    /// `--erasure-interval`; `None` with `--no-erasure`.
    pub erasure_interval: Option<Duration>,
}

impl crate::cli::PrivacyArgs {
    pub fn privacy(&self) -> Result<crate::row::Privacy, ConfigError> {
        crate::row::Privacy::new(
            self.pseudonym_key.as_ref().map(|k| k.expose().as_bytes()),
            &self.pseudonymize,
            &self.drop,
        )
        .map_err(ConfigError)
    }

    pub fn housekeeping(&self) -> Result<Housekeeping, ConfigError> {
        if self.retention == Some(0) {
            return err("--retention must be at least 1 day");
        }
        let interval = parse_duration(&self.erasure_interval)?;
        if interval.is_zero() {
            return err("--erasure-interval must be above zero");
        }
        Ok(Housekeeping {
            retention_days: self.retention,
            erasure_interval: (!self.no_erasure).then_some(interval),
        })
    }
}

impl TryFrom<&ServeArgs> for ServeConfig {
    type Error = ConfigError;

    fn try_from(a: &ServeArgs) -> Result<Self, ConfigError> {
        let mut allow = if a.no_default_allow {
            Allowlist::default()
        } else {
            Allowlist::adjust()
        };
        allow.extend(parse_nets(&a.allow, "--allow")?);
        if allow.is_empty() {
            return err(
                "the allowlist is empty, so every callback would be refused: remove --no-default-allow \
                 to accept Adjust's ranges, or add the sources with --allow CIDR (for a local test: --allow 127.0.0.1/32)",
            );
        }
        let trusted_proxies = Allowlist::new(parse_nets(&a.trusted_proxy, "--trusted-proxy")?);
        let mut decode = DecodeOptions::new();
        for c in a.clickhouse.target()?.columns {
            decode = decode.with_column(c);
        }
        for pair in a.param_alias.iter().filter(|p| !p.trim().is_empty()) {
            let Some((alias, name)) = pair.split_once('=') else {
                return err(format!(
                    "--param-alias `{pair}` must be ALIAS=NAME, e.g. device_id=adid"
                ));
            };
            decode = decode
                .with_alias(alias.trim(), name.trim())
                .map_err(|e| ConfigError(format!("--param-alias `{pair}`: {e}")))?;
        }
        let limits = Limits {
            max_rows: a.batch_max_rows,
            max_bytes: parse_bytes(&a.batch_max_bytes)? as usize,
            max_age: parse_duration(&a.batch_max_age)?,
        };
        if limits.max_rows == 0 || limits.max_bytes == 0 || limits.max_age.is_zero() {
            return err(
                "--batch-max-rows, --batch-max-bytes and --batch-max-age must be above zero",
            );
        }
        if a.queue_max_rows == 0 {
            return err("--queue-max-rows must be above zero");
        }
        let workers = match a.workers {
            Some(0) => return err("--workers must be above zero"),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(2, |n| n.get()),
        };
        Ok(ServeConfig {
            listen: a.listen,
            admin_listen: a.admin_listen,
            clickhouse: a
                .clickhouse
                .config(!a.no_migrate, parse_duration(&a.insert_timeout)?)?,
            allow,
            trusted_proxies,
            edge: edge_config(a)?,
            row: crate::row::Options {
                decode,
                privacy: a.privacy.privacy()?,
            },
            housekeeping: a.privacy.housekeeping()?,
            durability: a.durability,
            data_dir: a.data_dir.clone(),
            disk_budget: parse_bytes(&a.disk_budget)?,
            queue_max_rows: a.queue_max_rows,
            queue_max_bytes: parse_bytes(&a.queue_max_bytes)?,
            limits,
            shutdown_timeout: parse_duration(&a.shutdown_timeout)?,
            retry_after: a.retry_after,
            workers,
        })
    }
}

/// The edge settings of `serve`.
fn edge_config(a: &ServeArgs) -> Result<EdgeConfig, ConfigError> {
    let tokens: Vec<&str> = a
        .callback_token
        .iter()
        .map(|t| t.expose().trim())
        .filter(|t| !t.is_empty())
        .collect();
    for t in &tokens {
        token::check(t).or_else(|e| err(format!("--callback-token: {e}")))?;
    }
    let positive = |flag: &str, v: &str| -> Result<Duration, ConfigError> {
        let d = parse_duration(v)?;
        if d.is_zero() {
            return err(format!("{flag} must be above zero"));
        }
        Ok(d)
    };
    if a.max_connections == 0 {
        return err("--max-connections must be above zero");
    }
    Ok(EdgeConfig {
        tokens: Tokens::new(tokens),
        body_timeout: positive("--body-timeout", &a.body_timeout)?,
        head_timeout: positive("--head-timeout", &a.head_timeout)?,
        keep_alive: positive("--keep-alive", &a.keep_alive)?,
        max_connections: a.max_connections,
        tls: match (&a.tls_cert, &a.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use crate::clickhouse::credentials::Secret;
    use clap::Parser;
    use std::path::Path;

    fn serve(args: &[&str]) -> Result<ServeConfig, ConfigError> {
        let cli = Cli::try_parse_from([&["adjust-sink", "serve"], args].concat()).unwrap();
        let Command::Serve(a) = cli.command else {
            unreachable!()
        };
        ServeConfig::try_from(&*a)
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_bytes("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("1GB").unwrap(), 1_000_000_000);
        assert_eq!(parse_bytes("512").unwrap(), 512);
        assert!(parse_bytes("lots").is_err());
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("1 fortnight").is_err());
    }

    #[test]
    fn defaults_are_valid() {
        let c = serve(&[]).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(c.durability, Durability::Wal);
        assert!(c.allow.contains("178.162.216.70".parse().unwrap()));
        assert_eq!(c.clickhouse.target.table(), "adjust.callbacks");
    }

    #[test]
    fn an_empty_allowlist_says_how_to_fix_it() {
        let e = serve(&["--no-default-allow"]).err().unwrap().to_string();
        assert!(e.contains("--allow"), "{e}");
        let c = serve(&["--no-default-allow", "--allow", "127.0.0.1/32,10.0.0.0/8"]).unwrap();
        assert_eq!(c.allow.len(), 2);
    }

    #[test]
    fn edge_settings() {
        let c = serve(&[]).unwrap();
        assert!(!c.edge.tokens.required());
        assert_eq!(c.edge.body_timeout, Duration::from_secs(10));
        assert_eq!(c.edge.max_connections, 10_000);
        assert!(c.edge.tls.is_none());
        let c = serve(&[
            "--callback-token",
            "0123456789abcdef,fedcba9876543210",
            "--max-connections",
            "500",
            "--body-timeout",
            "2s",
        ])
        .unwrap();
        assert!(c.edge.tokens.accepts(b"fedcba9876543210"));
        assert_eq!(c.edge.per_worker(2), 250);
        assert_eq!(c.edge.body_timeout, Duration::from_secs(2));
        let e = serve(&["--callback-token", "short"])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("16"), "{e}");
        assert!(!e.contains("short"), "the token is not repeated: {e}");
        assert!(serve(&["--max-connections", "0"]).is_err());
        assert!(serve(&["--body-timeout", "0s"]).is_err());
        let cli = Cli::try_parse_from(["adjust-sink", "serve", "--tls-cert", "c.pem"]);
        assert!(cli.is_err(), "--tls-cert needs --tls-key");
    }

    #[test]
    fn bad_values_are_named() {
        assert!(
            serve(&["--allow", "nope"])
                .err()
                .unwrap()
                .to_string()
                .contains("--allow `nope`")
        );
        assert!(
            serve(&["--param-alias", "device_id"])
                .err()
                .unwrap()
                .to_string()
                .contains("ALIAS=NAME")
        );
        assert!(serve(&["--param-alias", "x=not_a_placeholder"]).is_err());
        assert!(serve(&["--table", "bad;name"]).is_err());
        assert!(serve(&["--clickhouse-url", "localhost:8123"]).is_err());
        assert!(serve(&["--param-alias", "device_id=adid"]).is_ok());
    }

    #[test]
    fn passwords_never_show_in_debug_output() {
        let c = serve(&["--clickhouse-password", "hunter2"]).unwrap();
        assert_eq!(
            c.clickhouse.password,
            Some(Password::Given(Secret::new("hunter2")))
        );
        let shown = format!("{:?}", c.clickhouse);
        assert!(!shown.contains("hunter2"), "{shown}");
        let cli = Cli::try_parse_from([
            "adjust-sink",
            "serve",
            "--clickhouse-url",
            "https://sink:s3cr%40t@ch.example.com:8443",
            "--clickhouse-password-file",
            "/run/secrets/ch",
        ])
        .unwrap();
        let shown = format!("{cli:?}");
        assert!(!shown.contains("s3cr"), "{shown}");
        assert!(
            shown.contains("https://sink:***@ch.example.com:8443"),
            "{shown}"
        );
    }

    #[test]
    fn credentials_in_the_url_are_used_and_never_printed() {
        let c = serve(&[
            "--clickhouse-url",
            "https://sink:s3cr%40t@ch.example.com:8443/",
        ])
        .unwrap();
        assert_eq!(c.clickhouse.url, "https://ch.example.com:8443");
        assert_eq!(c.clickhouse.user.as_deref(), Some("sink"));
        assert_eq!(
            c.clickhouse.password,
            Some(Password::Given(Secret::new("s3cr@t")))
        );
        assert!(!format!("{:?}", c.clickhouse).contains("s3cr"));
        // Errors that repeat the URL redact it.
        for args in [
            &["--clickhouse-url", "ftp://sink:s3cr3t@host"][..],
            &["--clickhouse-url", "http://sink:s3cr3t@[::1"],
            &[
                "--clickhouse-url",
                "http://sink:s3cr3t@host",
                "--clickhouse-ca",
                "ca.pem",
            ],
            &[
                "--clickhouse-url",
                "http://sink:s3cr3t@host",
                "--clickhouse-password",
                "other",
            ],
        ] {
            let e = serve(args).err().unwrap().to_string();
            assert!(!e.contains("s3cr3t"), "{e}");
        }
        let e = serve(&["--clickhouse-url", "ftp://sink:s3cr3t@host"])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("ftp://sink:***@host"), "{e}");
    }

    #[test]
    fn one_password_source_at_most() {
        let c = serve(&["--clickhouse-password-file", "/run/secrets/ch"]).unwrap();
        assert_eq!(
            c.clickhouse.password,
            Some(Password::File("/run/secrets/ch".into()))
        );
        let e = serve(&[
            "--clickhouse-password",
            "a",
            "--clickhouse-password-file",
            "/run/secrets/ch",
        ])
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("more than once"), "{e}");
        // An empty password (e.g. an empty environment variable) is no password.
        let c = serve(&[
            "--clickhouse-password",
            "",
            "--clickhouse-password-file",
            "/run/secrets/ch",
        ])
        .unwrap();
        assert_eq!(
            c.clickhouse.password,
            Some(Password::File("/run/secrets/ch".into()))
        );
        let e = serve(&[
            "--clickhouse-url",
            "http://u:a@host",
            "--clickhouse-password-file",
            "/run/secrets/ch",
        ])
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("more than once"), "{e}");
        let e = serve(&[
            "--clickhouse-url",
            "http://u@host",
            "--clickhouse-user",
            "v",
        ])
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("--clickhouse-user"), "{e}");
    }

    #[test]
    fn privacy_settings_are_validated() {
        let e = serve(&["--pseudonymize", "adid"])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("ADJUST_SINK_PSEUDONYM_KEY"), "{e}");
        let e = serve(&["--pseudonymize", "created_at", "--pseudonym-key", "k"])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("only text placeholders"), "{e}");
        let c = serve(&[
            "--pseudonymize",
            "adid,ip_address",
            "--pseudonym-key",
            "k",
            "--drop",
            "user_agent",
            "--retention",
            "30",
            "--erasure-interval",
            "2s",
        ])
        .unwrap();
        assert!(c.row.privacy.is_active());
        assert!(!format!("{:?}", c.row.privacy).contains("\"k\""));
        assert_eq!(c.housekeeping.retention_days, Some(30));
        assert_eq!(
            c.housekeeping.erasure_interval,
            Some(Duration::from_secs(2))
        );
        let c = serve(&["--no-erasure"]).unwrap();
        assert_eq!(c.housekeeping.erasure_interval, None);
        assert!(serve(&["--retention", "0"]).is_err());
    }

    #[test]
    fn a_ca_needs_https() {
        let e = serve(&["--clickhouse-ca", "/etc/ca.pem"])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("https://"), "{e}");
        let c = serve(&[
            "--clickhouse-url",
            "https://ch.example.com:8443",
            "--clickhouse-ca",
            "/etc/ca.pem",
        ])
        .unwrap();
        assert_eq!(c.clickhouse.ca.as_deref(), Some(Path::new("/etc/ca.pem")));
    }
}
