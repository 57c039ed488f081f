//! Why a Google credential could not be had: shared by the key-file reader and the token
//! cache, so neither imports the other for it.

/// Why no token could be had. The text names the source and the failure, never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CredentialError(String);

impl CredentialError {
    pub(super) fn new(reason: impl Into<String>) -> Self {
        CredentialError(reason.into())
    }
}
