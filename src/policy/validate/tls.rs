//! Validation of `providers[].tls`: only what can be checked without reading the files
//! (they are mounted Secrets that may appear later; unreadable files skip the target at
//! run time instead).

use super::Validator;
use crate::policy::spec::TlsSpec;

impl Validator {
    /// `tls` belongs to https base URLs; a client certificate needs its key and back.
    pub(super) fn tls(&mut self, at: &str, base_url: &str, tls: &TlsSpec) {
        let at = format!("{at}.tls");
        if !base_url
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("https://")
        {
            self.err(
                at.clone(),
                "only allowed with an https:// baseUrl (there is no TLS to configure on http://)",
            );
        }
        let fields = [
            ("caFile", &tls.ca_file),
            ("clientCert", &tls.client_cert),
            ("clientKey", &tls.client_key),
        ];
        for (name, value) in fields {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                self.err(format!("{at}.{name}"), "must not be empty");
            }
        }
        match (&tls.client_cert, &tls.client_key) {
            (Some(_), None) => self.err(
                format!("{at}.clientKey"),
                "required with clientCert (the certificate's private key)",
            ),
            (None, Some(_)) => self.err(
                format!("{at}.clientCert"),
                "required with clientKey (the certificate the key belongs to)",
            ),
            _ => {}
        }
        if fields.iter().all(|(_, value)| value.is_none()) {
            self.err(at, "set caFile, or clientCert with clientKey, or both");
        }
    }
}
