//! Why a TLS handshake failed, in the words an operator acts on, found anywhere in an
//! error's chain of sources.

use std::fmt;

use rustls::{AlertDescription, CertificateError};

/// The next error in a chain. `io::Error::source` skips the error it wraps (it returns
/// that error's source), so a wrapped error is taken as the next link itself.
pub fn next<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a (dyn std::error::Error + 'static)> {
    match error
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
    {
        Some(inner) => Some(inner),
        None => error.source(),
    }
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
    #[allow(
        clippy::wildcard_enum_match_arm,
        reason = "rustls' error enums are non_exhaustive: the rest is a generic cause"
    )]
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
            cause = next(current);
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
}
