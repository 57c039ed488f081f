//! The webhook's server certificate, reloaded from its files when they change so that a
//! rotated Secret (cert-manager, or the chart on upgrade) needs no restart.
//!
//! Invariant: a handshake always gets a complete, matching certificate and key. The files
//! are checked (modification time and size, following symlinks as a mounted Secret's
//! are swapped) on each handshake; a pair that fails to load keeps the last good one and
//! is retried on the next handshake.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pemfile::Item;

/// Why the certificate or key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The certificate file holds no PEM certificate.
    #[error("{0}: no PEM certificate found")]
    NoCertificate(PathBuf),
    /// The key file holds no PEM private key.
    #[error("{0}: no PEM private key found")]
    NoKey(PathBuf),
    /// rustls refused the pair (unsupported key, or key and certificate do not match).
    #[error("certificate {cert} and key {key}: {source}")]
    Rejected {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        source: rustls::Error,
    },
}

/// (modification time, length) of both files: a change in either means reload.
type Stamp = [(Option<SystemTime>, u64); 2];

/// Serves the certificate from `cert` and `key`, reloading when the files change.
#[derive(Debug)]
pub struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: Mutex<(Stamp, Arc<CertifiedKey>)>,
}

impl ReloadingCert {
    /// Loads the pair now, so a bad certificate fails start-up before a port is bound.
    pub fn new(
        cert: PathBuf,
        key: PathBuf,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, TlsError> {
        let stamp = stamp(&cert, &key);
        let loaded = load(&cert, &key, &provider)?;
        Ok(Self {
            cert,
            key,
            provider,
            current: Mutex::new((stamp, Arc::new(loaded))),
        })
    }

    /// The pair to serve now, reloaded first if the files changed.
    fn get(&self) -> Arc<CertifiedKey> {
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = stamp(&self.cert, &self.key);
        if now != current.0 {
            match load(&self.cert, &self.key, &self.provider) {
                Ok(loaded) => {
                    tracing::info!(cert = %self.cert.display(), "webhook certificate reloaded");
                    *current = (now, Arc::new(loaded));
                }
                Err(err) => {
                    tracing::warn!(error = %err, "webhook certificate not reloaded; serving the previous one");
                }
            }
        }
        Arc::clone(&current.1)
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

fn stamp(cert: &Path, key: &Path) -> Stamp {
    [cert, key].map(|path| match fs::metadata(path) {
        Ok(meta) => (meta.modified().ok(), meta.len()),
        Err(_) => (None, 0),
    })
}

#[allow(
    clippy::wildcard_enum_match_arm,
    reason = "rustls_pemfile::Item is non_exhaustive: anything but a private key is skipped"
)]
fn load(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let read = |path: &Path| {
        fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })
    };
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let chain: Vec<_> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(cert.to_owned()));
    }
    let private_key = rustls_pemfile::read_all(&mut key_pem.as_slice())
        .filter_map(Result::ok)
        .find_map(|item| match item {
            Item::Pkcs1Key(k) => Some(k.into()),
            Item::Pkcs8Key(k) => Some(k.into()),
            Item::Sec1Key(k) => Some(k.into()),
            _ => None,
        })
        .ok_or_else(|| TlsError::NoKey(key.to_owned()))?;
    CertifiedKey::from_der(chain, private_key, provider).map_err(|source| TlsError::Rejected {
        cert: cert.to_owned(),
        key: key.to_owned(),
        source,
    })
}
