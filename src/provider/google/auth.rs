//! Google access tokens for Vertex AI, as Google's own SDKs find them: a service-account
//! key file named by `GOOGLE_APPLICATION_CREDENTIALS` (a signed JWT exchanged at the
//! file's `token_uri`), else the metadata server (`GCE_METADATA_HOST`, default
//! `metadata.google.internal`; GKE workload identity answers there).
//!
//! Invariants: one token per process, shared by every Vertex provider and kept across
//! policy reloads; a request waits for a fetch only when there is no valid token at all
//! (the first call, or after refreshes failed until it expired); otherwise a background
//! task renews it ahead of expiry (a minute ahead, or a tenth of its life when that is
//! shorter); the key file is read again at every renewal; one fetch at a time; a failure
//! is logged at most once a minute and never carries a token or a key.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, Request, StatusCode};
use serde::Deserialize;
use tokio::time::Instant;

use super::account::Account;
use super::error::CredentialError;
use crate::log_limit;

/// The metadata server's name when `GCE_METADATA_HOST` is not set.
const METADATA_HOST: &str = "metadata.google.internal";
/// The metadata server's token endpoint for the pod's (or VM's) service account.
const METADATA_TOKEN_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/token";
/// How soon a failed background renewal is tried again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);
/// The longest a token is renewed ahead of its expiry.
const MAX_MARGIN: Duration = Duration::from_secs(60);

/// What one credential request came to: the status and body, or why there was none.
pub type FetchFuture = Pin<Box<dyn Future<Output = Result<(StatusCode, Bytes), String>> + Send>>;
/// Sends a credential request (through the sidecar's egress rules) and reads its answer;
/// the caller bounds its time.
pub type Fetch = Arc<dyn Fn(Request<Bytes>) -> FetchFuture + Send + Sync>;

/// The two variables Google's SDKs read, taken once at start-up (tests pass their own).
#[derive(Debug, Clone, Default)]
pub struct GoogleEnv {
    /// `GCE_METADATA_HOST`: the metadata server's `host[:port]`.
    pub metadata_host: Option<String>,
    /// `GOOGLE_APPLICATION_CREDENTIALS`: a service-account key file.
    pub credentials_file: Option<PathBuf>,
}

impl GoogleEnv {
    /// The variables of the process environment.
    pub fn from_env() -> GoogleEnv {
        GoogleEnv::from_lookup(|name| std::env::var(name).ok())
    }

    /// The variables from any lookup (tests pass a map instead of the environment).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> GoogleEnv {
        let set = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        GoogleEnv {
            metadata_host: set("GCE_METADATA_HOST"),
            credentials_file: set("GOOGLE_APPLICATION_CREDENTIALS").map(PathBuf::from),
        }
    }
}

/// The process's Google credentials: made on first use by a Vertex provider, kept for the
/// life of the process (so reloads keep the token).
pub struct GoogleCredentials {
    env: GoogleEnv,
    auth: OnceLock<Arc<GoogleAuth>>,
}

impl GoogleCredentials {
    /// Credentials found where `env` says.
    pub fn new(env: GoogleEnv) -> Self {
        GoogleCredentials {
            env,
            auth: OnceLock::new(),
        }
    }

    /// The shared token source; `fetch` is only called the first time.
    pub fn auth(&self, fetch: impl FnOnce() -> Fetch) -> Arc<GoogleAuth> {
        Arc::clone(
            self.auth
                .get_or_init(|| Arc::new(GoogleAuth::new(&self.env, fetch()))),
        )
    }
}

/// Where tokens come from.
enum Source {
    File(PathBuf),
    Metadata(String),
}

impl Source {
    fn describe(&self) -> String {
        match self {
            Source::File(path) => format!("service-account key {}", path.display()),
            Source::Metadata(host) => format!("metadata server {host}"),
        }
    }
}

struct Token {
    /// `Bearer …`, marked sensitive.
    header: HeaderValue,
    expires: Instant,
    refresh_at: Instant,
}

/// A cached access token and how to get the next one.
pub struct GoogleAuth {
    source: Source,
    fetch: Fetch,
    token: ArcSwapOption<Token>,
    /// Held while a token is fetched: one fetch at a time.
    fetching: tokio::sync::Mutex<()>,
    refresher: AtomicBool,
}

#[derive(Deserialize)]
struct TokenReply {
    access_token: Option<String>,
    expires_in: Option<f64>,
}

/// How far ahead of expiry a token of this life is renewed.
fn margin(life: Duration) -> Duration {
    (life / 10).min(MAX_MARGIN)
}

impl GoogleAuth {
    /// A token source for `env`: the key file when one is named, else the metadata server.
    pub fn new(env: &GoogleEnv, fetch: Fetch) -> GoogleAuth {
        let source = match (&env.credentials_file, &env.metadata_host) {
            (Some(path), _) => Source::File(path.clone()),
            (None, host) => {
                Source::Metadata(host.clone().unwrap_or_else(|| METADATA_HOST.to_owned()))
            }
        };
        GoogleAuth {
            source,
            fetch,
            token: ArcSwapOption::empty(),
            fetching: tokio::sync::Mutex::new(()),
            refresher: AtomicBool::new(false),
        }
    }

    /// The `authorization` value of the current token, unless it has expired.
    pub fn header(&self) -> Option<HeaderValue> {
        let token = self.token.load();
        token
            .as_ref()
            .filter(|t| Instant::now() < t.expires)
            .map(|t| t.header.clone())
    }

    /// Makes sure a valid token is cached, fetching one only when there is none.
    pub async fn ready(self: &Arc<Self>) -> Result<(), CredentialError> {
        if self.header().is_some() {
            return Ok(());
        }
        let _one_at_a_time = self.fetching.lock().await;
        if self.header().is_some() {
            return Ok(());
        }
        self.renew().await
    }

    /// The provider refused `sent` (a 401): fetch a new token, unless another call has
    /// already replaced that one.
    pub async fn rejected(
        self: &Arc<Self>,
        sent: Option<&HeaderValue>,
    ) -> Result<(), CredentialError> {
        let _one_at_a_time = self.fetching.lock().await;
        let current = self.token.load_full();
        if let (Some(current), Some(sent)) = (current, sent) {
            if current.header != sent {
                return Ok(());
            }
        }
        self.renew().await
    }

    /// Fetches and stores a token (the caller holds `fetching`), and starts the renewals.
    async fn renew(self: &Arc<Self>) -> Result<(), CredentialError> {
        match self.fetch_token().await {
            Ok(token) => {
                self.token.store(Some(Arc::new(token)));
                if !self.refresher.swap(true, Ordering::SeqCst) {
                    tokio::spawn(refresh_loop(Arc::downgrade(self)));
                }
                Ok(())
            }
            Err(error) => {
                self.report(&error);
                Err(error)
            }
        }
    }

    fn report(&self, error: &CredentialError) {
        let source = self.source.describe();
        if let Some(suppressed) = log_limit::admit(&format!("google credentials {source}")) {
            tracing::error!(%source, %error, suppressed, "cannot get a Google access token: Vertex AI calls fail over until it works");
        }
    }

    async fn fetch_token(&self) -> Result<Token, CredentialError> {
        let request = match &self.source {
            Source::Metadata(host) => Request::builder()
                .method(Method::GET)
                .uri(format!("http://{host}{METADATA_TOKEN_PATH}"))
                .header("metadata-flavor", "Google")
                .body(Bytes::new())
                .map_err(|_| CredentialError::new(format!("{host:?} is not a metadata host"))),
            Source::File(path) => {
                let bytes = tokio::fs::read(path).await.map_err(|e| {
                    CredentialError::new(format!("cannot read {}: {e}", path.display()))
                })?;
                let account = Account::parse(&bytes)?;
                let form = account.token_request(SystemTime::now())?;
                Request::builder()
                    .method(Method::POST)
                    .uri(&account.token_uri)
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Bytes::from(form))
                    .map_err(|_| CredentialError::new("the token_uri is not a URL"))
            }
        }?;
        let host = request
            .uri()
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let mut request = request;
        if let Ok(value) = HeaderValue::from_str(&host) {
            request.headers_mut().insert(HOST, value);
        }
        let (status, body) = (self.fetch)(request)
            .await
            .map_err(|e| CredentialError::new(format!("{}: {e}", self.source.describe())))?;
        if !status.is_success() {
            return Err(CredentialError::new(format!(
                "{} answered {status}",
                self.source.describe()
            )));
        }
        let reply: TokenReply = serde_json::from_slice(&body).map_err(|_| {
            CredentialError::new(format!("{} sent no token", self.source.describe()))
        })?;
        let (Some(token), Some(expires_in)) = (reply.access_token, reply.expires_in) else {
            return Err(CredentialError::new(format!(
                "{} sent no token",
                self.source.describe()
            )));
        };
        let mut header = HeaderValue::from_str(&format!("Bearer {}", token.trim()))
            .map_err(|_| CredentialError::new("the token is not a header value"))?;
        header.set_sensitive(true);
        let life = Duration::from_secs_f64(expires_in.clamp(0.0, 1e7));
        let now = Instant::now();
        Ok(Token {
            header,
            expires: now + life,
            refresh_at: now + life - margin(life),
        })
    }
}

/// Renews the token ahead of its expiry for as long as the credentials are in use.
async fn refresh_loop(auth: Weak<GoogleAuth>) {
    let mut wake = None;
    loop {
        let at = match wake.take() {
            Some(at) => at,
            None => {
                let Some(auth) = auth.upgrade() else { return };
                let token = auth.token.load();
                let Some(token) = token.as_ref() else { return };
                token.refresh_at
            }
        };
        tokio::time::sleep_until(at).await;
        let Some(auth) = auth.upgrade() else { return };
        let _one_at_a_time = auth.fetching.lock().await;
        let due = auth
            .token
            .load()
            .as_ref()
            .is_none_or(|t| Instant::now() >= t.refresh_at);
        if !due {
            // A 401 renewed it meanwhile.
            continue;
        }
        match auth.fetch_token().await {
            Ok(token) => auth.token.store(Some(Arc::new(token))),
            Err(error) => {
                auth.report(&error);
                wake = Some(Instant::now() + RETRY_AFTER_FAILURE);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;
    use std::sync::Mutex;

    /// A fake token endpoint: counts requests, keeps the last one, answers `life` seconds.
    struct Fake {
        calls: AtomicU64,
        last: Mutex<Option<(String, String, String)>>,
        life: f64,
        status: StatusCode,
    }

    fn fetch(fake: &Arc<Fake>) -> Fetch {
        let fake = Arc::clone(fake);
        Arc::new(move |request: Request<Bytes>| {
            let fake = Arc::clone(&fake);
            Box::pin(async move {
                let n = fake.calls.fetch_add(1, Ordering::SeqCst) + 1;
                let flavor = request
                    .headers()
                    .get("metadata-flavor")
                    .map(|v| v.to_str().unwrap().to_owned())
                    .unwrap_or_default();
                let uri = request.uri().to_string();
                let body = request.into_body();
                *fake.last.lock().unwrap() =
                    Some((uri, flavor, String::from_utf8_lossy(&body).into_owned()));
                let reply = serde_json::json!({"access_token": format!("tok-{n}"), "expires_in": fake.life, "token_type": "Bearer"});
                Ok((fake.status, Bytes::from(reply.to_string())))
            }) as FetchFuture
        })
    }

    fn fake(life: f64, status: StatusCode) -> Arc<Fake> {
        Arc::new(Fake {
            calls: AtomicU64::new(0),
            last: Mutex::new(None),
            life,
            status,
        })
    }

    fn metadata(fake: &Arc<Fake>) -> Arc<GoogleAuth> {
        let env = GoogleEnv {
            metadata_host: Some("127.0.0.1:9".to_owned()),
            credentials_file: None,
        };
        Arc::new(GoogleAuth::new(&env, fetch(fake)))
    }

    #[test]
    fn renewal_margin_is_a_minute_or_a_tenth() {
        assert_eq!(margin(Duration::from_secs(3600)), Duration::from_secs(60));
        assert_eq!(margin(Duration::from_secs(100)), Duration::from_secs(10));
    }

    #[test]
    fn the_environment_picks_the_source() {
        let env = GoogleEnv::from_lookup(|name| match name {
            "GCE_METADATA_HOST" => Some("10.0.0.1:8080".to_owned()),
            "GOOGLE_APPLICATION_CREDENTIALS" => Some(" ".to_owned()),
            _ => None,
        });
        assert_eq!(env.metadata_host.as_deref(), Some("10.0.0.1:8080"));
        assert_eq!(env.credentials_file, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_is_fetched_once_and_renewed_ahead_of_expiry() {
        let fake = fake(100.0, StatusCode::OK);
        let auth = metadata(&fake);
        auth.ready().await.unwrap();
        auth.ready().await.unwrap();
        assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
        let (uri, flavor, _) = fake.last.lock().unwrap().clone().unwrap();
        assert_eq!(uri, format!("http://127.0.0.1:9{METADATA_TOKEN_PATH}"));
        assert_eq!(flavor, "Google");
        let first = auth.header().unwrap();
        assert!(first.is_sensitive());
        assert_eq!(first, "Bearer tok-1");
        // Renewed 10 s (a tenth of 100 s) before expiry, off the request path.
        tokio::time::sleep(Duration::from_secs(89)).await;
        assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
        assert_eq!(auth.header().unwrap(), "Bearer tok-2");
    }

    #[tokio::test(start_paused = true)]
    async fn a_rejected_token_is_replaced_once() {
        let fake = fake(3600.0, StatusCode::OK);
        let auth = metadata(&fake);
        auth.ready().await.unwrap();
        let sent = auth.header();
        auth.rejected(sent.as_ref()).await.unwrap();
        // A second caller that sent the same old token does not fetch again.
        auth.rejected(sent.as_ref()).await.unwrap();
        assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
        assert_eq!(auth.header().unwrap(), "Bearer tok-2");
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_is_an_error_without_the_body() {
        let fake = fake(3600.0, StatusCode::FORBIDDEN);
        let auth = metadata(&fake);
        let error = auth.ready().await.unwrap_err();
        assert!(error.to_string().contains("403"), "{error}");
        assert!(!error.to_string().contains("tok-"), "{error}");
        assert!(auth.header().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_service_account_signs_a_jwt_for_its_token_uri() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sa.json");
        let key = include_str!("../../../tests/it/fixtures/client-rsa.pkcs8.pem");
        let file = serde_json::json!({
            "type": "service_account",
            "client_email": "sidecar@p.iam.gserviceaccount.com",
            "private_key": key,
            "private_key_id": "k1",
            "token_uri": "http://127.0.0.1:9/token",
        });
        std::fs::write(&path, file.to_string()).unwrap();
        let fake = fake(3600.0, StatusCode::OK);
        let env = GoogleEnv {
            metadata_host: Some("127.0.0.1:1".to_owned()),
            credentials_file: Some(path),
        };
        let auth = Arc::new(GoogleAuth::new(&env, fetch(&fake)));
        auth.ready().await.unwrap();
        let (uri, _, form) = fake.last.lock().unwrap().clone().unwrap();
        assert_eq!(uri, "http://127.0.0.1:9/token");
        let jwt = form
            .strip_prefix(
                "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=",
            )
            .unwrap();
        let public = include_str!("../../../tests/it/fixtures/client-rsa.pub.pem");
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_audience(&["http://127.0.0.1:9/token"]);
        let decoded = jsonwebtoken::decode::<serde_json::Value>(
            jwt,
            &jsonwebtoken::DecodingKey::from_rsa_pem(public.as_bytes()).unwrap(),
            &validation,
        )
        .unwrap();
        assert_eq!(decoded.header.kid.as_deref(), Some("k1"));
        assert_eq!(decoded.claims["iss"], "sidecar@p.iam.gserviceaccount.com");
        assert_eq!(decoded.claims["scope"], super::super::CLOUD_PLATFORM_SCOPE);
    }
}
