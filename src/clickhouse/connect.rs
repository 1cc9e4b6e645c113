//! The HTTP(S) client under the `clickhouse` crate, and connection errors explained for people.
//!
//! `https://` goes through rustls, trusting the system's root certificates, or, with
//! `--clickhouse-ca`, only the certificates in that PEM file: CA certificates that signed the
//! server's, or the server's own self-signed certificate, pinned (the server must present
//! exactly it; its host name and dates are still checked). A self-signed certificate made as
//! ClickHouse's SSL guide makes it is marked `CA:TRUE` by OpenSSL 3, which a CA-path check
//! refuses as a server certificate; pinning is how curl and clickhouse-client accept it too. A TLS failure (a certificate
//! that is not trusted or not valid for the host, a port that does not speak TLS) is told apart
//! from a server that is merely down: waiting never fixes it, so start-up stops on it.

use std::error::Error as StdError;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

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
    let pinned = match (https, ca) {
        (true, Some(path)) => pem_certificates(path)?,
        _ => Vec::new(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = if https {
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| SetupError::Tls(e.to_string()))?;
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| SetupError::Tls(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Verifier { inner, pinned }))
            .with_no_client_auth()
    } else {
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| SetupError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth()
    };
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

/// The certificates of a PEM file (read again for pinning; [`ca_roots`] said what is wrong).
fn pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, SetupError> {
    let pem = std::fs::read(path).map_err(|source| SetupError::CaUnreadable {
        path: path.to_owned(),
        source,
    })?;
    Ok(CertificateDer::pem_slice_iter(&pem)
        .filter_map(Result::ok)
        .collect())
}

/// Checks the server's certificate against the trusted roots; failing that, accepts it when it
/// is one of the `--clickhouse-ca` file's certificates (pinned), valid for the host and now.
/// A refusal of a self-signed certificate says so.
#[derive(Debug)]
struct Verifier {
    inner: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

/// The server's certificate is self-signed (and not pinned by `--clickhouse-ca`).
#[derive(Debug, thiserror::Error)]
#[error("self-signed certificate")]
pub struct SelfSigned;

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let refused = match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(verified) => return Ok(verified),
            Err(e) => e,
        };
        if self
            .pinned
            .iter()
            .any(|p| p.as_ref() == end_entity.as_ref())
        {
            let parsed = ParsedCertificate::try_from(end_entity)?;
            if let Err(e) = rustls::client::verify_server_name(&parsed, server_name) {
                // A certificate without subjectAltName (as ClickHouse's guide makes it) names
                // its host in the common name, which curl and clickhouse-client accept.
                let by_common_name = !der::has_subject_alt_name(end_entity.as_ref())
                    && match server_name {
                        ServerName::DnsName(host) => der::common_name(end_entity.as_ref())
                            .is_some_and(|cn| cn.eq_ignore_ascii_case(host.as_ref())),
                        _ => false,
                    };
                if !by_common_name {
                    return Err(e);
                }
            }
            if let Some((not_before, not_after)) = der::validity(end_entity.as_ref()) {
                let now = now.as_secs() as i64;
                if now > not_after {
                    return Err(CertificateError::Expired.into());
                }
                if now < not_before {
                    return Err(CertificateError::NotValidYet.into());
                }
            }
            return Ok(ServerCertVerified::assertion());
        }
        match &refused {
            rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer
                | CertificateError::Other(_)
                | CertificateError::BadSignature,
            ) if intermediates.is_empty() && der::is_self_signed(end_entity.as_ref()) => {
                Err(CertificateError::Other(rustls::OtherError(Arc::new(SelfSigned))).into())
            }
            _ => Err(refused),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Just enough DER to read a certificate's issuer, validity and subject.
mod der {
    /// The next element: tag, content, rest.
    fn next(buf: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let tag = *buf.first()?;
        let first = *buf.get(1)? as usize;
        let (len, header) = if first < 0x80 {
            (first, 2)
        } else {
            let n = first & 0x7f;
            if n == 0 || n > 4 {
                return None;
            }
            let mut len = 0usize;
            for &b in buf.get(2..2 + n)? {
                len = len << 8 | b as usize;
            }
            (len, 2 + n)
        };
        let content = buf.get(header..header + len)?;
        Some((tag, content, &buf[header + len..]))
    }

    /// Issuer, validity and subject of a certificate, as DER elements.
    fn fields(cert: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
        let (_, cert, _) = next(cert)?;
        let (_, tbs, _) = next(cert)?;
        let (tag, _, mut rest) = next(tbs)?;
        if tag != 0xa0 {
            rest = tbs; // no version: the serial number comes first
        }
        let (_, _, rest) = next(rest)?; // serial number
        let (_, _, rest) = next(rest)?; // signature algorithm
        let (_, issuer, rest) = next(rest)?;
        let (_, validity, rest) = next(rest)?;
        let (_, subject, _) = next(rest)?;
        Some((issuer, validity, subject))
    }

    /// Whether the certificate has a subjectAltName extension (OID 2.5.29.17).
    pub fn has_subject_alt_name(cert: &[u8]) -> bool {
        cert.windows(5).any(|w| w == [0x06, 0x03, 0x55, 0x1d, 0x11])
    }

    /// The subject's common name (OID 2.5.4.3).
    pub fn common_name(cert: &[u8]) -> Option<String> {
        let (_, _, mut subject) = fields(cert)?;
        while let Some((_, set, rest)) = next(subject) {
            subject = rest;
            let (_, attribute, _) = next(set)?;
            let (_, oid, value) = next(attribute)?;
            if oid == [0x55, 0x04, 0x03] {
                let (_, text, _) = next(value)?;
                return String::from_utf8(text.to_vec()).ok();
            }
        }
        None
    }

    /// Whether the certificate names itself as its issuer.
    pub fn is_self_signed(cert: &[u8]) -> bool {
        fields(cert).is_some_and(|(issuer, _, subject)| issuer == subject)
    }

    /// Not before and not after, in unix seconds.
    pub fn validity(cert: &[u8]) -> Option<(i64, i64)> {
        let (_, validity, _) = fields(cert)?;
        let (t1, before, rest) = next(validity)?;
        let (t2, after, _) = next(rest)?;
        Some((time(t1, before)?, time(t2, after)?))
    }

    /// UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
    pub(super) fn time(tag: u8, text: &[u8]) -> Option<i64> {
        let text = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
        let (year, rest) = match tag {
            0x17 => {
                let yy: i64 = text.get(0..2)?.parse().ok()?;
                (if yy >= 50 { 1900 + yy } else { 2000 + yy }, text.get(2..)?)
            }
            0x18 => (text.get(0..4)?.parse().ok()?, text.get(4..)?),
            _ => return None,
        };
        let n = |r: std::ops::Range<usize>| -> Option<i64> { rest.get(r)?.parse().ok() };
        let (m, d, h, mi, s) = (n(0..2)?, n(2..4)?, n(4..6)?, n(6..8)?, n(8..10)?);
        let (m, d) = (u32::try_from(m).ok()?, u32::try_from(d).ok()?);
        let days = crate::clock::days_from_civil(year, m, d);
        Some(days * 86_400 + h * 3600 + mi * 60 + s)
    }
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
            CertificateError::Other(other) if other.0.downcast_ref::<SelfSigned>().is_some() => {
                match ca {
                    Some(path) => format!(
                        "TLS certificate not trusted: it is self-signed, and not the certificate in \
                         --clickhouse-ca {} — pass the server's own certificate (the file its \
                         https configuration names) or the CA that signed it",
                        path.display()
                    ),
                    None => "TLS certificate not trusted: it is self-signed — pass it as \
                             --clickhouse-ca (the server's own certificate file; it is pinned, \
                             the host name is still checked)"
                        .to_string(),
                }
            }
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
    fn a_self_signed_refusal_says_so() {
        let err = rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(
            Arc::new(SelfSigned),
        )));
        let text = tls_problem(&err, None).unwrap();
        assert!(text.contains("self-signed"), "{text}");
        assert!(text.contains("pass it as --clickhouse-ca"), "{text}");
        let text = tls_problem(&err, Some(Path::new("/etc/other.pem"))).unwrap();
        assert!(text.contains("not the certificate in --clickhouse-ca /etc/other.pem"));
    }

    /// The guide's certificate (CA:TRUE, the host only in the common name), made with openssl.
    fn guide_certificate(dir: &Path) -> Option<PathBuf> {
        let cert = dir.join("server.crt");
        let made = std::process::Command::new("openssl")
            .args([
                "req",
                "-subj",
                "/CN=localhost",
                "-new",
                "-newkey",
                "rsa:2048",
            ])
            .args(["-days", "365", "-nodes", "-x509", "-keyout"])
            .arg(dir.join("server.key"))
            .arg("-out")
            .arg(&cert)
            .output()
            .ok()?;
        made.status.success().then_some(cert)
    }

    #[test]
    fn the_guides_certificate_is_pinned_by_name_and_refused_as_self_signed_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let Some(path) = guide_certificate(dir.path()) else {
            eprintln!("openssl not available: skipped");
            return;
        };
        let cert = pem_certificates(&path).unwrap().remove(0);
        assert!(der::is_self_signed(cert.as_ref()));
        assert!(!der::has_subject_alt_name(cert.as_ref()));
        assert_eq!(
            der::common_name(cert.as_ref()).as_deref(),
            Some("localhost")
        );
        let (not_before, not_after) = der::validity(cert.as_ref()).unwrap();
        assert!((not_after - not_before - 365 * 86_400).abs() < 5);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = |pinned: Vec<CertificateDer<'static>>| Verifier {
            inner: WebPkiServerVerifier::builder_with_provider(
                Arc::new(ca_roots(&path).unwrap()),
                provider.clone(),
            )
            .build()
            .unwrap(),
            pinned,
        };
        let name = |n: &str| ServerName::try_from(n.to_string()).unwrap();
        let now = UnixTime::now();
        let pinned = verifier(vec![cert.clone()]);
        assert!(
            pinned
                .verify_server_cert(&cert, &[], &name("localhost"), &[], now)
                .is_ok()
        );
        let wrong = pinned
            .verify_server_cert(&cert, &[], &name("db.example.com"), &[], now)
            .unwrap_err();
        assert!(
            tls_problem(&wrong, None)
                .unwrap()
                .contains("not valid for this host"),
            "{wrong}"
        );
        let later =
            UnixTime::since_unix_epoch(std::time::Duration::from_secs(not_after as u64 + 86_400));
        let expired = pinned
            .verify_server_cert(&cert, &[], &name("localhost"), &[], later)
            .unwrap_err();
        assert!(
            tls_problem(&expired, None)
                .unwrap()
                .contains("not valid now")
        );
        // Trusted as a CA only (not pinned): refused, and the error says why.
        let refused = verifier(Vec::new())
            .verify_server_cert(&cert, &[], &name("localhost"), &[], now)
            .unwrap_err();
        let text = tls_problem(&refused, Some(Path::new("ca.pem"))).unwrap();
        assert!(text.contains("self-signed"), "{text}");
    }

    #[test]
    fn der_times_read_as_unix_seconds() {
        assert_eq!(der::time(0x17, b"261206040000Z"), Some(1_796_529_600));
        assert_eq!(der::time(0x18, b"20261206040000Z"), Some(1_796_529_600));
        assert_eq!(der::time(0x17, b"700101000000Z"), Some(0));
        assert_eq!(der::time(0x17, b"garbage"), None);
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
