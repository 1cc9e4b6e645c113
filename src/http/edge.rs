//! What the callback listener lets in, and for how long: the settings that make it safe on the
//! open internet, and the bounded body read.
//!
//! The allowlist (and the token, when the query carries it) is decided from the connection and the
//! request head, before a byte of the body is read; a refused request is answered at once and its
//! connection closed. A body is read only for an admitted request, as it came (no
//! `Content-Encoding` is undone: Adjust does not compress callbacks, so a compressed body is
//! refused with 415 instead of being inflated), up to [`super::MAX_BODY`] and within
//! `body_timeout`. Who gets a connection at all is decided at accept ([`super::gate`]), and what
//! waiting connections hold is bounded by one budget ([`super::held`]).

use std::path::PathBuf;
use std::time::Duration;

use actix_web::http::header::{self, HeaderMap};
use actix_web::web;

use super::token::Tokens;

/// Default of `--max-held-bytes`: room for 256 heads of the largest size actix takes (128 KiB)
/// arriving at once, a small share of a 1 GiB pod.
pub const DEFAULT_MAX_HELD_BYTES: usize = 32 << 20;

/// Settings of the callback listener's edge.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// Tokens a callback must carry as `sink_token` (none: no token needed).
    pub tokens: Tokens,
    /// The whole body must arrive within this time after the head.
    pub body_timeout: Duration,
    /// The request head must arrive within this time (from the connection or the previous
    /// request).
    pub head_timeout: Duration,
    /// An idle keep-alive connection is closed after this time.
    pub keep_alive: Duration,
    /// Open callback connections at most (all workers together); more wait in the backlog.
    pub max_connections: usize,
    /// Open connections at most per direct peer (an IPv4 address or an IPv6 /64; trusted
    /// proxies are not limited); more are closed at accept.
    pub max_per_source: usize,
    /// Bytes of unfinished request heads held at most, all connections together; past it the
    /// connections whose heads have been unfinished longest are closed.
    pub max_held_bytes: usize,
    /// Certificate and key (PEM) for HTTPS on the callback listener.
    pub tls: Option<TlsFiles>,
}

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            tokens: Tokens::default(),
            body_timeout: Duration::from_secs(10),
            head_timeout: Duration::from_secs(10),
            keep_alive: Duration::from_secs(30),
            max_connections: 10_000,
            max_per_source: 2_500,
            max_held_bytes: DEFAULT_MAX_HELD_BYTES,
            tls: None,
        }
    }
}

impl EdgeConfig {
    /// The longest a connection may go between two answers: idle, then a head, then a body.
    pub fn request_budget(&self) -> Duration {
        self.keep_alive + self.head_timeout + self.body_timeout
    }

    /// The default per-source limit for `max_connections`: a quarter of it, at least 1 (room for
    /// a load generator of 1,024 connections on loopback at the default).
    pub fn default_per_source(max_connections: usize) -> usize {
        (max_connections / 4).max(1)
    }

    /// Connections per worker, so that all workers together hold at most `max_connections`.
    pub fn per_worker(&self, workers: usize) -> usize {
        (self.max_connections / workers.max(1)).max(1)
    }
}

/// Why a body was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Over the limit (by `Content-Length` or by what arrived).
    TooLarge,
    /// Not complete within the deadline.
    Timeout,
    /// The connection ended or broke before the body was complete.
    Incomplete,
}

/// Whether the body comes with a `Content-Encoding` other than `identity`.
pub fn is_encoded(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CONTENT_ENCODING)
        .any(|v| !v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"identity"))
}

/// The declared body length, when declared.
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Reads the whole body, at most `limit` bytes, within `deadline`.
pub async fn read_body(
    payload: web::Payload,
    declared: Option<u64>,
    limit: usize,
    deadline: Duration,
) -> Result<web::Bytes, BodyError> {
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let read = async {
        match payload.to_bytes_limited(limit).await {
            Ok(Ok(body)) => Ok(body),
            Ok(Err(_)) => Err(BodyError::Incomplete),
            Err(_) => Err(BodyError::TooLarge),
        }
    };
    tokio::time::timeout(deadline, read)
        .await
        .unwrap_or(Err(BodyError::Timeout))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    #[test]
    fn only_identity_is_not_an_encoding() {
        let mut h = HeaderMap::new();
        assert!(!is_encoded(&h));
        h.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static("Identity"),
        );
        assert!(!is_encoded(&h));
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        assert!(is_encoded(&h));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static(" 42"));
        assert_eq!(content_length(&h), Some(42));
    }

    #[test]
    fn the_connection_limit_is_shared_by_the_workers() {
        let e = EdgeConfig {
            max_connections: 10_000,
            ..EdgeConfig::default()
        };
        assert_eq!(e.per_worker(4), 2_500);
        assert_eq!(e.per_worker(3), 3_333);
        assert_eq!(
            EdgeConfig {
                max_connections: 2,
                ..e
            }
            .per_worker(8),
            1
        );
    }
}
