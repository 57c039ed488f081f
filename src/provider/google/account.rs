//! A service-account key file (`GOOGLE_APPLICATION_CREDENTIALS`) and the signed JWT
//! (RS256, by `jsonwebtoken`) exchanged for an access token at the file's `token_uri`.
//!
//! Invariant: the private key never leaves this module in any printable form; errors
//! name the field that is wrong, never its value.

use std::time::{Duration, SystemTime};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use super::error::CredentialError;
use super::CLOUD_PLATFORM_SCOPE;

/// How long the signed assertion is valid: Google accepts at most an hour.
const ASSERTION_LIFE: Duration = Duration::from_secs(3600);

/// The OAuth grant type of a JWT bearer assertion, form-encoded.
const JWT_BEARER: &str = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer";

#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_email: Option<String>,
    private_key: Option<String>,
    private_key_id: Option<String>,
    token_uri: Option<String>,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

/// A service account, ready to sign assertions.
pub(super) struct Account {
    email: String,
    key: EncodingKey,
    key_id: Option<String>,
    /// Where the assertion is exchanged for a token.
    pub(super) token_uri: String,
}

impl Account {
    /// Reads a key file's JSON; only `service_account` files are supported.
    pub(super) fn parse(bytes: &[u8]) -> Result<Account, CredentialError> {
        let file: KeyFile = serde_json::from_slice(bytes)
            .map_err(|_| CredentialError::new("the credentials file is not JSON"))?;
        match file.kind.as_deref() {
            Some("service_account") => {}
            Some(other) => {
                return Err(CredentialError::new(format!(
                    "credentials of type {other:?} are not supported (a service_account key is)"
                )))
            }
            None => return Err(CredentialError::new("the credentials file has no type")),
        }
        let field = |value: Option<String>, name: &str| {
            value
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| CredentialError::new(format!("the credentials file has no {name}")))
        };
        let email = field(file.client_email, "client_email")?;
        let pem = field(file.private_key, "private_key")?;
        let token_uri = field(file.token_uri, "token_uri")?;
        let key = EncodingKey::from_rsa_pem(pem.as_bytes())
            .map_err(|_| CredentialError::new("the private_key is not an RSA key in PEM"))?;
        Ok(Account {
            email,
            key,
            key_id: file.private_key_id,
            token_uri,
        })
    }

    /// The form body that exchanges a fresh assertion for an access token.
    pub(super) fn token_request(&self, now: SystemTime) -> Result<String, CredentialError> {
        let iat = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = Claims {
            iss: &self.email,
            scope: CLOUD_PLATFORM_SCOPE,
            aud: &self.token_uri,
            iat,
            exp: iat + ASSERTION_LIFE.as_secs(),
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid.clone_from(&self.key_id);
        let jwt = jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|_| CredentialError::new("could not sign the token request"))?;
        // A JWT is base64url and dots: nothing in it needs form encoding.
        Ok(format!("grant_type={JWT_BEARER}&assertion={jwt}"))
    }
}
