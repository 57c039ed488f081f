//! Trust and identity of the upstream client (DESIGN §3 `providers[].tls`): the built-in
//! web roots plus a provider's own CA file, an optional client certificate, and the cause
//! of a failed handshake in the words an operator acts on. Invariant: verification is
//! never off; a provider whose files cannot be read or parsed gets no client at all.

use std::fmt;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use crate::policy::spec::TlsSpec;

/// What a provider's TLS files held when they were read: compared with a fresh read to
/// notice a rotated Secret, and the identity its connection pool is keyed by.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TlsMaterial {
    ca: Option<FileRead>,
    cert: Option<FileRead>,
    key: Option<FileRead>,
}

/// One file as read: its bytes, or why it could not be read.
#[derive(Clone, PartialEq, Eq, Hash)]
struct FileRead {
    field: &'static str,
    path: String,
    bytes: Result<Vec<u8>, String>,
}

impl FileRead {
    fn read(field: &'static str, path: &str) -> FileRead {
        FileRead {
            field,
            path: path.to_owned(),
            bytes: std::fs::read(path).map_err(|e| e.to_string()),
        }
    }

    fn bytes(&self) -> Result<&[u8], TlsFileError> {
        self.bytes.as_deref().map_err(|error| self.problem(error))
    }

    fn problem(&self, what: impl fmt::Display) -> TlsFileError {
        TlsFileError(format!("tls.{} {}: {what}", self.field, self.path))
    }
}

/// Why a provider's TLS files give no usable configuration (the target is skipped with
/// reason `config`). Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TlsFileError(String);

impl TlsMaterial {
    /// Reads the files a `tls` block names. Blocking: call it where compiling a policy
    /// already reads key files, never on the request path.
    pub fn read(spec: &TlsSpec) -> TlsMaterial {
        TlsMaterial {
            ca: spec.ca_file.as_deref().map(|p| FileRead::read("caFile", p)),
            cert: spec
                .client_cert
                .as_deref()
                .map(|p| FileRead::read("clientCert", p)),
            key: spec
                .client_key
                .as_deref()
                .map(|p| FileRead::read("clientKey", p)),
        }
    }

    /// The rustls configuration these files describe, on top of the web roots.
    pub fn client_config(&self) -> Result<ClientConfig, TlsFileError> {
        let mut roots = web_roots();
        if let Some(ca) = &self.ca {
            let certs = certificates(ca)?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(ca.problem("no usable CA certificate in the file"));
            }
        }
        let builder = builder().with_root_certificates(roots);
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let chain = certificates(cert)?;
                let private = private_key(key)?;
                builder
                    .with_client_auth_cert(chain, private)
                    .map_err(|e| key.problem(format!("does not fit the certificate ({e})")))
            }
            _ => Ok(builder.with_no_client_auth()),
        }
    }
}

/// The configuration of a provider without a `tls` block: the web roots only.
pub fn default_config() -> ClientConfig {
    builder()
        .with_root_certificates(web_roots())
        .with_no_client_auth()
}

fn builder() -> rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier> {
    ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
}

fn web_roots() -> RootCertStore {
    RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned())
}

fn certificates(file: &FileRead) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let certs = rustls_pemfile::certs(&mut file.bytes()?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file.problem(format!("not PEM ({e})")))?;
    if certs.is_empty() {
        return Err(file.problem("no CERTIFICATE block in the file"));
    }
    Ok(certs)
}

fn private_key(file: &FileRead) -> Result<PrivateKeyDer<'static>, TlsFileError> {
    // Reads PKCS#8 ("PRIVATE KEY"), PKCS#1 ("RSA PRIVATE KEY") and SEC1 ("EC PRIVATE KEY").
    rustls_pemfile::private_key(&mut file.bytes()?)
        .map_err(|e| file.problem(format!("not PEM ({e})")))?
        .ok_or_else(|| file.problem("no private key block (PKCS#8, PKCS#1 or SEC1) in the file"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_files_say_which_field() {
        let material = TlsMaterial::read(&TlsSpec {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..TlsSpec::default()
        });
        let error = material.client_config().unwrap_err().to_string();
        assert!(
            error.starts_with("tls.caFile /nonexistent/ca.pem: "),
            "{error}"
        );
    }
}
