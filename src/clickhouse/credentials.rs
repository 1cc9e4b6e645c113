//! Credentials for ClickHouse, kept out of logs: a [`Secret`] that never prints its value, and
//! URLs whose `user:password@` part is redacted before they are shown.

use std::fmt;

pub use crate::settings::Secret;

/// A ClickHouse URL as given (it may hold `user:password@`). `Debug` and `Display` show it
/// with the password redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerUrl(String);

impl ServerUrl {
    pub fn new(value: impl Into<String>) -> ServerUrl {
        ServerUrl(value.into())
    }

    /// The URL as given, credentials included. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerUrl({:?})", redact_url(&self.0))
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

/// For clap: `--clickhouse-url VALUE`.
impl From<String> for ServerUrl {
    fn from(value: String) -> ServerUrl {
        ServerUrl(value)
    }
}

/// `url` with the password of its `user:password@` part replaced by `***` (the user is kept, it
/// helps to tell which account is used). Works on text that does not parse as a URL too.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    // The last `@` ends the user info (an unencoded `@` in a password is not valid, but happens).
    let Some(at) = authority.rfind('@') else {
        return url.to_string();
    };
    let userinfo = &authority[..at];
    let user = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => userinfo.to_string(),
    };
    format!(
        "{}{user}@{}",
        &url[..scheme_end],
        &rest[at + 1..] // host, port, path, query
    )
}

/// A URL split into the address the client connects to (no user info) and the credentials it
/// held, percent-decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitUrl {
    pub url: String,
    pub user: Option<String>,
    pub password: Option<Secret>,
}

/// Splits `user:password@` off a URL. `Err` when it is not a URL (the message does not repeat
/// the URL, which may hold a password).
pub fn split_url(raw: &str) -> Result<SplitUrl, String> {
    let mut url = url::Url::parse(raw).map_err(|e| e.to_string())?;
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| "the user or password in the URL is not UTF-8".to_string())
    };
    let user = match url.username() {
        "" => None,
        u => Some(decode(u)?),
    };
    let password = url.password().map(decode).transpose()?.map(Secret::new);
    // Both always succeed for http(s) URLs, which have a host.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Ok(SplitUrl {
        url: url.as_str().trim_end_matches('/').to_string(),
        user,
        password,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn urls_with_credentials_print_redacted() {
        for (raw, shown) in [
            (
                "https://sink:hunter2@ch.example.com:8443",
                "https://sink:***@ch.example.com:8443",
            ),
            (
                "https://sink:hunter2@ch.example.com:8443/?database=x",
                "https://sink:***@ch.example.com:8443/?database=x",
            ),
            (
                "http://sink:p%40ss@127.0.0.1:8123",
                "http://sink:***@127.0.0.1:8123",
            ),
            // An unencoded `@` in the password: everything before the last `@` is user info.
            ("http://u:a@b@host", "http://u:***@host"),
            ("http://sink@host:8123", "http://sink@host:8123"),
            ("http://127.0.0.1:8123", "http://127.0.0.1:8123"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(redact_url(raw), shown, "{raw}");
            let url = ServerUrl::new(raw);
            assert_eq!(url.to_string(), shown);
            assert!(!format!("{url:?}").contains("hunter2"));
            assert!(!format!("{url:?}").contains("p%40ss"));
        }
    }

    #[test]
    fn credentials_come_out_of_the_url() {
        let s = split_url("https://sink:p%40ss%3Aw@ch.example.com:8443/").unwrap();
        assert_eq!(s.url, "https://ch.example.com:8443");
        assert_eq!(s.user.as_deref(), Some("sink"));
        assert_eq!(s.password.unwrap().expose(), "p@ss:w");
        let s = split_url("http://127.0.0.1:8123").unwrap();
        assert_eq!(s.url, "http://127.0.0.1:8123");
        assert_eq!((s.user, s.password), (None, None));
        let e = split_url("http://sink:secret@[::1").unwrap_err();
        assert!(!e.contains("secret"), "{e}");
    }
}
