//! What every settings section shares: the error worded for the person running the command, and
//! the parsers of sizes, durations and networks. Each section (its flags and its validation into
//! one typed value) lives in the module that uses it:
//!
//! | section | flags | module |
//! |---|---|---|
//! | Connection | `--clickhouse-*` | [`crate::clickhouse::settings::ConnectionArgs`] |
//! | Target table | `--database`, `--table`, `--cluster`, `--physical`, `--column` | [`crate::clickhouse::settings::TableArgs`] |
//! | Rows | `--param-alias`, `--pseudonymize`, `--drop` | [`crate::row::settings::RowArgs`] |
//! | Edge | listeners, allowlist, token, TLS, connection limits | [`crate::http::settings::EdgeArgs`] |
//! | Queue and delivery | data directory, queue, batches, timeouts | [`crate::pipeline::settings`] |
//! | Housekeeping | `--retention`, `--erasure-interval`, `--no-erasure` | [`crate::clickhouse::housekeeping::HousekeepingArgs`] |
//!
//! No I/O here.

use std::fmt;
use std::time::Duration;

use ipnetwork::IpNetwork;

/// A secret setting (a password, a key, a token). `Debug` and `Display` print `***`; only [`Secret::expose`] gives the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, to hand to the client. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// For clap: `--clickhouse-password VALUE`.
impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

/// A configuration error, worded for the person running the command.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

pub fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
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

pub fn parse_nets(values: &[String], flag: &str) -> Result<Vec<IpNetwork>, ConfigError> {
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

/// A duration flag that must be above zero.
pub fn positive_duration(flag: &str, value: &str) -> Result<Duration, ConfigError> {
    let d = parse_duration(value)?;
    if d.is_zero() {
        return err(format!("{flag} must be above zero"));
    }
    Ok(d)
}

/// The non-empty, trimmed values of a repeatable flag.
pub fn values(given: &[String]) -> impl Iterator<Item = &str> {
    given.iter().map(|v| v.trim()).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
