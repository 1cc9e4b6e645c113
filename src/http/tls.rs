//! HTTPS on the callback listener: the certificate and key come from PEM files and are read again
//! on SIGHUP and when either file changes, without a restart. The server asks a [`CertStore`] for
//! the certificate at every handshake; a reload swaps it there atomically (a reload that fails
//! keeps serving the previous certificate and says why in the log). Without TLS, SIGHUP is
//! logged and otherwise ignored (its default action would end the process).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::edge::TlsFiles;

/// How often the files' modification times are looked at.
const WATCH_EVERY: Duration = Duration::from_secs(30);

/// The certificate the listener serves, swappable while it runs.
#[derive(Debug)]
pub struct CertStore {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    stamp: RwLock<Option<(SystemTime, SystemTime)>>,
}

fn load(cert: &Path, key: &Path) -> Result<CertifiedKey, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| format!("reading the certificate {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{} holds no certificate", cert.display()));
    }
    let der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("reading the private key {}: {e}", key.display()))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&der)
        .map_err(|e| format!("the private key {}: {e}", key.display()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| {
        format!(
            "the key {} does not belong to the certificate {}: {e}",
            key.display(),
            cert.display()
        )
    })?;
    Ok(certified)
}

fn stamp(cert: &Path, key: &Path) -> Option<(SystemTime, SystemTime)> {
    let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    Some((m(cert)?, m(key)?))
}

impl CertStore {
    /// Reads the certificate chain and key (errors name the file and what is wrong).
    pub fn open(cert: &Path, key: &Path) -> Result<Arc<CertStore>, String> {
        let stamp = stamp(cert, key);
        let certified = load(cert, key)?;
        Ok(Arc::new(CertStore {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: RwLock::new(Arc::new(certified)),
            stamp: RwLock::new(stamp),
        }))
    }

    /// Reads the files again; on success the next handshakes get the new certificate.
    pub fn reload(&self) -> Result<(), String> {
        let stamp = stamp(&self.cert, &self.key);
        let certified = load(&self.cert, &self.key)?;
        *self.current.write().expect("cert lock") = Arc::new(certified);
        *self.stamp.write().expect("stamp lock") = stamp;
        Ok(())
    }

    /// [`CertStore::reload`] with the outcome logged.
    pub fn reload_logged(&self, why: &str) {
        match self.reload() {
            Ok(()) => tracing::info!(cert = %self.cert.display(), why, "TLS certificate reloaded"),
            Err(e) => tracing::error!(
                error = %e,
                why,
                "TLS certificate not reloaded; the previous one is still served"
            ),
        }
    }

    /// Whether either file changed since the last (attempted) load.
    fn changed(&self) -> bool {
        let now = stamp(&self.cert, &self.key);
        now.is_some() && now != *self.stamp.read().expect("stamp lock")
    }

    /// The server configuration: HTTP/1.1, TLS 1.2 and 1.3, no client certificates.
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// Reloads on SIGHUP and when the files change, until the process ends.
    pub async fn watch(self: Arc<Self>, mut hangups: Hangups) {
        let mut tick = tokio::time::interval(WATCH_EVERY);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = hangups.recv() => self.reload_logged("SIGHUP"),
                _ = tick.tick() => {
                    if self.changed() {
                        self.reload_logged("file changed");
                    }
                }
            }
        }
    }
}

/// SIGHUP, taken from the moment it is installed.
pub struct Hangups {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Hangups {
    /// Installs the handler (on the current runtime).
    pub fn install() -> std::io::Result<Hangups> {
        Ok(Hangups {
            #[cfg(unix)]
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?,
        })
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        self.signal.recv().await;
        #[cfg(not(unix))]
        std::future::pending::<()>().await;
    }

    /// Logs each SIGHUP, and does nothing else, until the process ends.
    pub async fn ignore(mut self) {
        loop {
            self.recv().await;
            tracing::info!("SIGHUP: nothing to reload (no --tls-cert); carrying on");
        }
    }
}

/// HTTPS for the callback listener when `files` are given, its certificate reloaded on SIGHUP
/// and when the files change; without, SIGHUP is only logged. Either way the SIGHUP handler is
/// in place when this returns (call it on the runtime the listener runs on).
pub fn start(files: Option<&TlsFiles>) -> Result<Option<Arc<ServerConfig>>, String> {
    let hangups = Hangups::install().map_err(|e| format!("installing the SIGHUP handler: {e}"))?;
    match files {
        Some(files) => {
            let certs = CertStore::open(&files.cert, &files.key)?;
            let config = certs.server_config()?;
            actix_web::rt::spawn(certs.watch(hangups));
            Ok(Some(config))
        }
        None => {
            actix_web::rt::spawn(hangups.ignore());
            Ok(None)
        }
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().expect("cert lock").clone())
    }
}
