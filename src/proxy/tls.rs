//! Trust and identity of the upstream client (DESIGN §3 `providers[].tls`): the built-in
//! web roots plus a provider's own CA file, an optional client certificate, and the cause
//! of a failed handshake in the words an operator acts on. Invariant: verification is
//! never off; a provider whose files cannot be read or parsed gets no client at all.

use std::fmt;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{AlertDescription, CertificateError, ClientConfig, RootCertStore};

use crate::policy::spec::TlsSpec;
use crate::proxy::unreachable;

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

/// Why a handshake failed, in the terms DESIGN §3 names (unknown CA, name mismatch,
/// expired) so a log line says what to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsCause {
    /// The server's chain does not lead to a trusted root (set `tls.caFile`).
    UnknownCa,
    /// The certificate is not valid for the base URL's host.
    NameMismatch,
    /// The certificate has expired.
    Expired,
    /// The certificate is not valid yet.
    NotYetValid,
    /// Another problem with the server's certificate.
    BadCertificate,
    /// The server refused us, e.g. it requires a client certificate we did not send.
    RejectedByServer(AlertDescription),
    /// Any other handshake failure.
    Handshake,
}

impl TlsCause {
    /// Classifies a rustls error.
    pub fn of(error: &rustls::Error) -> TlsCause {
        match error {
            rustls::Error::InvalidCertificate(cert) => match cert {
                CertificateError::UnknownIssuer => TlsCause::UnknownCa,
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => TlsCause::NameMismatch,
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    TlsCause::Expired
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    TlsCause::NotYetValid
                }
                _ => TlsCause::BadCertificate,
            },
            rustls::Error::AlertReceived(alert) => TlsCause::RejectedByServer(*alert),
            _ => TlsCause::Handshake,
        }
    }

    /// Finds a rustls error in an error's chain, however deep inside `io::Error`s.
    pub fn find(error: &(dyn std::error::Error + 'static)) -> Option<TlsCause> {
        let mut cause = Some(error);
        while let Some(current) = cause {
            if let Some(tls) = current.downcast_ref::<rustls::Error>() {
                return Some(TlsCause::of(tls));
            }
            cause = unreachable::next(current);
        }
        None
    }
}

impl fmt::Display for TlsCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsCause::UnknownCa => f.write_str("unknown CA"),
            TlsCause::NameMismatch => f.write_str("name mismatch"),
            TlsCause::Expired => f.write_str("certificate expired"),
            TlsCause::NotYetValid => f.write_str("certificate not yet valid"),
            TlsCause::BadCertificate => f.write_str("invalid certificate"),
            TlsCause::RejectedByServer(alert) => write!(f, "rejected by the server ({alert:?})"),
            TlsCause::Handshake => f.write_str("handshake failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_name_what_to_fix() {
        let unknown = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        assert_eq!(TlsCause::of(&unknown).to_string(), "unknown CA");
        let name = rustls::Error::InvalidCertificate(CertificateError::NotValidForName);
        assert_eq!(TlsCause::of(&name), TlsCause::NameMismatch);
        let wrapped =
            std::io::Error::other(rustls::Error::InvalidCertificate(CertificateError::Expired));
        assert_eq!(TlsCause::find(&wrapped), Some(TlsCause::Expired));
    }

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
