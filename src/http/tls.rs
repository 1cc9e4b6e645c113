//! HTTPS on the callback listener: the certificate and key come from PEM files and are read again
//! on SIGHUP and when either file changes, without a restart. The server asks a [`CertStore`] for
//! the certificate at every handshake; a reload swaps it there atomically (a reload that fails
//! keeps serving the previous certificate and says why in the log).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

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
    pub async fn watch(self: Arc<Self>) {
        #[cfg(unix)]
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .expect("SIGHUP handler");
        let mut tick = tokio::time::interval(WATCH_EVERY);
        tick.tick().await;
        loop {
            #[cfg(unix)]
            let hangup = hup.recv();
            #[cfg(not(unix))]
            let hangup = std::future::pending::<Option<()>>();
            tokio::select! {
                _ = hangup => self.reload_logged("SIGHUP"),
                _ = tick.tick() => {
                    if self.changed() {
                        self.reload_logged("file changed");
                    }
                }
            }
        }
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().expect("cert lock").clone())
    }
}
