//! The HTTP(S) client under the `clickhouse` crate, and connection errors explained for people.
//!
//! `https://` goes through rustls, trusting the system's root certificates, or, with
//! `--clickhouse-ca`, only the CA certificates in that PEM file. A TLS failure (a certificate
//! that is not trusted or not valid for the host, a port that does not speak TLS) is told apart
//! from a server that is merely down: waiting never fixes it, so start-up stops on it.

use std::error::Error as StdError;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::{CertificateError, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// TCP keepalive on connections to ClickHouse (as the `clickhouse` crate's own client).
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);
/// Idle pooled connections are closed before ClickHouse's own keep-alive timeout (3 s on old
/// servers) closes them under a request.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(2);
/// A host that does not answer the TCP handshake is an error after this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the client could not be set up (before any connection).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("--clickhouse-ca {}: {source}", path.display())]
    CaUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--clickhouse-ca {}: {reason}", path.display())]
    CaInvalid { path: PathBuf, reason: String },
    #[error(
        "no system root certificates found to check ClickHouse's TLS certificate (install the \
         ca-certificates package, or pass --clickhouse-ca with the CA that signed it)"
    )]
    NoSystemRoots,
    #[error("--clickhouse-password-file {}: {source}", path.display())]
    PasswordFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("setting up TLS: {0}")]
    Tls(String),
}

/// A `clickhouse` client whose connections use rustls for `https://` URLs. The roots are read
/// only when `https` is set.
pub fn client(https: bool, ca: Option<&Path>) -> Result<clickhouse::Client, SetupError> {
    let mut http = HttpConnector::new();
    http.set_keepalive(Some(TCP_KEEPALIVE));
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    http.enforce_http(false);
    let roots = if https {
        match ca {
            Some(path) => ca_roots(path)?,
            None => system_roots()?,
        }
    } else {
        RootCertStore::empty()
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SetupError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    let hyper = HyperClient::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .build(connector);
    Ok(clickhouse::Client::with_http_client(hyper))
}

/// The CA certificates of a PEM file.
fn ca_roots(path: &Path) -> Result<RootCertStore, SetupError> {
    let pem = std::fs::read(path).map_err(|source| SetupError::CaUnreadable {
        path: path.to_owned(),
        source,
    })?;
    let invalid = |reason: String| SetupError::CaInvalid {
        path: path.to_owned(),
        reason,
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| invalid(format!("not a PEM certificate file ({e})")))?;
        roots
            .add(cert)
            .map_err(|e| invalid(format!("a certificate in it is not usable ({e})")))?;
    }
    if roots.is_empty() {
        return Err(invalid(
            "holds no certificate (expected one or more `-----BEGIN CERTIFICATE-----` blocks)"
                .into(),
        ));
    }
    Ok(roots)
}

/// The system's root certificates (`SSL_CERT_FILE` / `SSL_CERT_DIR` when set).
fn system_roots() -> Result<RootCertStore, SetupError> {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::debug!(error = %e, "skipping unreadable system root certificates");
    }
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        return Err(SetupError::NoSystemRoots);
    }
    Ok(roots)
}

/// The error and its causes, outermost first. An `io::Error` wrapping another error hides it
/// from `source()`; it is unwrapped here.
fn causes<'e>(err: &'e (dyn StdError + 'static)) -> Vec<&'e (dyn StdError + 'static)> {
    let mut out = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        out.push(e);
        next = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => e.source(),
        };
        if out.len() > 16 {
            break;
        }
    }
    out
}

/// `err: cause: cause`, without repeating a cause already in the text before it.
pub fn describe(err: &(dyn StdError + 'static)) -> String {
    let mut text = String::new();
    for e in causes(err) {
        let part = e.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text
}

/// When `err` is a TLS failure, what went wrong and what to do, worded for the person running
/// the sink. `ca` is the `--clickhouse-ca` file, if any.
pub fn tls_problem(err: &(dyn StdError + 'static), ca: Option<&Path>) -> Option<String> {
    let tls = causes(err)
        .into_iter()
        .find_map(|e| e.downcast_ref::<rustls::Error>())?;
    let fix_trust = match ca {
        Some(path) => format!(
            "the CA in --clickhouse-ca {} did not sign it; pass the CA that did",
            path.display()
        ),
        None => "pass --clickhouse-ca with the CA that signed it".to_string(),
    };
    Some(match tls {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => {
                format!("TLS certificate not trusted (unknown issuer) — {fix_trust}")
            }
            CertificateError::BadSignature => {
                format!("TLS certificate not trusted (bad signature) — {fix_trust}")
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!(
                    "TLS certificate not valid for this host ({cert}) — connect with a name the \
                     certificate lists in --clickhouse-url"
                )
            }
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => {
                format!("TLS certificate not valid now ({cert}) — renew it on the server")
            }
            other => format!("TLS certificate rejected ({other}) — {fix_trust}"),
        },
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => format!(
            "TLS handshake failed ({tls}) — the port does not seem to speak HTTPS (ClickHouse's \
             HTTPS port is its `https_port`, 8443 by default; for its HTTP port use http://)"
        ),
        other => format!("TLS handshake failed ({other})"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_errors_are_found_under_io_errors() {
        let inner = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, inner);
        #[derive(Debug, thiserror::Error)]
        #[error("client error (Connect)")]
        struct Outer(#[source] std::io::Error);
        let err = Outer(io);
        let text = tls_problem(&err, None).expect("a TLS problem");
        assert!(text.contains("not trusted (unknown issuer)"), "{text}");
        assert!(text.contains("--clickhouse-ca"), "{text}");
        let text = tls_problem(&err, Some(Path::new("/etc/ca.pem"))).unwrap();
        assert!(text.contains("/etc/ca.pem did not sign it"), "{text}");
        assert!(describe(&err).contains("client error (Connect)"));

        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(tls_problem(&Outer(refused), None), None);
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let e = ca_roots(&path).unwrap_err().to_string();
        assert!(e.contains("holds no certificate"), "{e}");
        let e = ca_roots(&dir.path().join("missing.pem"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--clickhouse-ca "), "{e}");
    }
}
