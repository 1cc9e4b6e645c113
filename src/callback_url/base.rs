//! The sink's public base URL as the user gives it, and the tokens a callback URL embeds:
//! checked before anything is generated.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::Error;

/// A validated sink base URL (`https://sink.example.com`, or with a path prefix), without a
/// trailing `/`, and what is worth warning about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    url: String,
    warnings: Vec<String>,
}

impl BaseUrl {
    /// Validates `http(s)://host[:port][/prefix]`: no query string, fragment or credentials, and no
    /// character that would need percent-encoding. An IP-address host, plain `http` and a prefix
    /// already ending in `/adjust` are only warnings.
    pub fn parse(input: &str) -> Result<BaseUrl, Error> {
        let fail = |reason: &str| Error::BaseUrl {
            url: input.to_owned(),
            reason: reason.to_owned(),
        };
        let (scheme, rest) = input
            .split_once("://")
            .ok_or_else(|| fail("must start with https:// (or http://)"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "https" && scheme != "http" {
            return Err(fail("must start with https:// (or http://)"));
        }
        if rest.contains('?') {
            return Err(fail(
                "must not have a query string (the callback parameters are appended to it)",
            ));
        }
        if rest.contains('#') {
            return Err(fail("must not have a fragment (`#…`)"));
        }
        if let Some(c) = rest.chars().find(|&c| !is_url_char(c)) {
            return Err(fail(&format!(
                "{c:?} is not allowed in a URL (percent-encode it; use the xn-- form of an international domain)"
            )));
        }
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.contains('@') {
            return Err(fail("must not carry credentials (`user@host`)"));
        }
        let (host, port) = split_host_port(authority).map_err(|r| fail(&r))?;
        if let Some(port) = port.filter(|p| !matches!(p.parse::<u16>(), Ok(n) if n > 0)) {
            return Err(fail(&format!("port `{port}` is not a port number")));
        }
        let mut warnings = Vec::new();
        let is_ip = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) => {
                v6.parse::<Ipv6Addr>()
                    .map_err(|_| fail(&format!("`{host}` is not an IPv6 address")))?;
                true
            }
            None => host.parse::<Ipv4Addr>().is_ok(),
        };
        if is_ip {
            warnings.push(format!(
                "the host of {input} is an IP address; Adjust does not send callbacks to IP-address hosts, use a domain name"
            ));
        } else if host.is_empty()
            || host.starts_with(['.', '-'])
            || host.ends_with('-')
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err(fail(&format!("`{host}` is not a host name")));
        }
        if scheme == "http" {
            warnings.push(format!(
                "{input} is plain http; Adjust recommends https (some partner data is only sent over https)"
            ));
        }
        let path = path.trim_end_matches('/');
        if path.ends_with("/adjust") {
            warnings.push(format!(
                "{input} already ends in /adjust; the sink's routes are appended to it ({path}/adjust…)"
            ));
        }
        Ok(BaseUrl {
            url: format!("{scheme}://{authority}{path}"),
            warnings,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.url
    }

    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

/// Characters a URL may hold as they are (RFC 3986 unreserved, reserved and `%`).
fn is_url_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@/%[]".contains(c)
}

/// `host[:port]` or `[v6][:port]`.
fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), String> {
    if authority.starts_with('[') {
        let end = authority
            .find(']')
            .ok_or_else(|| format!("`{authority}`: unclosed `[`"))?;
        let (host, rest) = authority.split_at(end + 1);
        return match rest.strip_prefix(':') {
            Some(port) => Ok((host, Some(port))),
            None if rest.is_empty() => Ok((host, None)),
            None => Err(format!("`{authority}` is not host[:port]")),
        };
    }
    if authority.is_empty() {
        return Err("has no host".to_owned());
    }
    Ok(match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    })
}

pub(super) fn check_tracker(token: &str) -> Result<(), Error> {
    if token.len() >= 6 && is_token(token) {
        Ok(())
    } else {
        Err(Error::Tracker(token.to_owned()))
    }
}

pub(super) fn check_event_token(token: &str) -> Result<(), Error> {
    if is_token(token) {
        Ok(())
    } else {
        Err(Error::EventToken(token.to_owned()))
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}
