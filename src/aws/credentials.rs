//! AWS credentials as Kubernetes workloads get them, from the standard environment only
//! (DESIGN §3): static keys, IRSA web identity (STS `AssumeRoleWithWebIdentity`), EKS Pod
//! Identity (container credentials). Temporary credentials are fetched and refreshed by
//! a task of their own, before they expire, never on the request path; files are read
//! again at every fetch.
//!
//! Invariant: no key, secret, session token or identity token ever reaches a log line or
//! an error message (only the source's name, a status or an AWS error code).

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use serde::Deserialize;
use tokio::sync::watch;
use tokio::time::Instant;

use super::sigv4::Keys;
use super::Env;
use crate::log_limit;

/// How a credential fetch reaches its endpoint: the sidecar's own upstream client (one
/// HTTP and TLS stack, through the egress proxy), given by whoever starts the chain.
pub type HttpSend = Arc<
    dyn Fn(
            Request<Bytes>,
        ) -> Pin<Box<dyn Future<Output = Result<(StatusCode, Bytes), String>> + Send>>
        + Send
        + Sync,
>;

/// Refresh this long before expiry at most (a tenth of the life when that is shorter).
const REFRESH_AHEAD: Duration = Duration::from_secs(60);
/// First wait after a failed fetch; doubles up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(30);

/// Where credentials come from, in the order the AWS SDKs' default chain looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`.
    Static(Keys),
    /// IRSA: `AWS_ROLE_ARN` + `AWS_WEB_IDENTITY_TOKEN_FILE`, exchanged at STS.
    WebIdentity {
        /// The role to assume.
        role_arn: String,
        /// The projected service-account token, read at every fetch.
        token_file: PathBuf,
        /// `AWS_ROLE_SESSION_NAME`, or one made up.
        session_name: String,
        /// The STS endpoint root.
        sts: String,
    },
    /// EKS Pod Identity (and any container credentials endpoint).
    Container {
        /// `AWS_CONTAINER_CREDENTIALS_FULL_URI`.
        uri: String,
        /// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`: the raw `Authorization` value, read
        /// at every fetch (the agent rotates it).
        token_file: Option<PathBuf>,
        /// `AWS_CONTAINER_AUTHORIZATION_TOKEN`, when no file is named.
        token: Option<String>,
    },
}

impl Source {
    /// The first source the environment describes, or what is missing.
    pub fn from_env(env: &Env) -> Result<Source, String> {
        if let (Some(id), Some(secret)) = (
            env.get("AWS_ACCESS_KEY_ID"),
            env.get("AWS_SECRET_ACCESS_KEY"),
        ) {
            return Ok(Source::Static(Keys {
                access_key_id: id.to_owned(),
                secret_access_key: secret.to_owned(),
                session_token: env.get("AWS_SESSION_TOKEN").map(str::to_owned),
            }));
        }
        if let (Some(role_arn), Some(token_file)) = (
            env.get("AWS_ROLE_ARN"),
            env.get("AWS_WEB_IDENTITY_TOKEN_FILE"),
        ) {
            let region = env.get("AWS_REGION").or(env.get("AWS_DEFAULT_REGION"));
            let sts = env
                .get("AWS_ENDPOINT_URL_STS")
                .or(env.get("AWS_ENDPOINT_URL"))
                .map(str::to_owned)
                .unwrap_or_else(|| match region {
                    Some(region) => format!("https://sts.{region}.amazonaws.com"),
                    None => "https://sts.amazonaws.com".to_owned(),
                });
            let session_name = env
                .get("AWS_ROLE_SESSION_NAME")
                .map(str::to_owned)
                .unwrap_or_else(|| format!("switchyard-{}", unix_secs(SystemTime::now())));
            return Ok(Source::WebIdentity {
                role_arn: role_arn.to_owned(),
                token_file: PathBuf::from(token_file),
                session_name,
                sts: sts.trim_end_matches('/').to_owned(),
            });
        }
        if let Some(uri) = env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
            return Ok(Source::Container {
                uri: uri.to_owned(),
                token_file: env
                    .get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
                    .map(PathBuf::from),
                token: env
                    .get("AWS_CONTAINER_AUTHORIZATION_TOKEN")
                    .map(str::to_owned),
            });
        }
        Err(
            "no AWS credentials in the environment: set AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY, or AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE (IRSA), \
             or AWS_CONTAINER_CREDENTIALS_FULL_URI (EKS Pod Identity)"
                .to_owned(),
        )
    }

    /// The source's name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Source::Static(_) => "static keys",
            Source::WebIdentity { .. } => "web identity (IRSA)",
            Source::Container { .. } => "container credentials (Pod Identity)",
        }
    }
}

/// What the chain holds.
#[derive(Clone, Debug)]
enum State {
    /// The first fetch has not answered yet.
    Pending,
    /// Usable until `expires` (never, for static keys).
    Ready {
        keys: Arc<Keys>,
        expires: Option<SystemTime>,
    },
    /// No credentials: the last fetch failed and nothing valid is left.
    Failed,
}

/// What a request finds when it looks for credentials.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// Sign with these.
    Ready(Arc<Keys>),
    /// The first fetch is still in flight.
    Pending,
    /// None to be had: a configuration problem (logged by the chain).
    Unavailable,
}

/// Credentials kept fresh by their own task; requests only read them.
#[derive(Debug)]
pub struct Credentials {
    state: watch::Receiver<State>,
    source: &'static str,
}

impl Credentials {
    /// Credentials from `source`: static keys at once; temporary ones fetched with
    /// `send` and refreshed ahead of expiry on a spawned task (needs a Tokio runtime).
    pub fn start(source: Result<Source, String>, send: HttpSend) -> Arc<Credentials> {
        let (tx, rx) = watch::channel(State::Pending);
        let name = source.as_ref().map_or("none", Source::name);
        match source {
            Ok(Source::Static(keys)) => {
                tx.send_replace(State::Ready {
                    keys: Arc::new(keys),
                    expires: None,
                });
            }
            Ok(source) => {
                tokio::spawn(refresh(source, send, tx));
            }
            Err(missing) => {
                tracing::error!(reason = %missing, "no AWS credentials: Bedrock targets with auth.aws are skipped (reason config)");
                tx.send_replace(State::Failed);
            }
        }
        Arc::new(Credentials {
            state: rx,
            source: name,
        })
    }

    /// The source's name, for logs.
    pub fn source(&self) -> &'static str {
        self.source
    }

    /// The credentials usable at `now`.
    pub fn lookup(&self, now: SystemTime) -> Lookup {
        match &*self.state.borrow() {
            State::Pending => Lookup::Pending,
            State::Ready { keys, expires } if expires.is_none_or(|at| at > now) => {
                Lookup::Ready(Arc::clone(keys))
            }
            State::Ready { .. } | State::Failed => Lookup::Unavailable,
        }
    }

    /// The credentials, waiting until `until` at most for a first fetch in flight.
    pub async fn wait(&self, until: Instant) -> Option<Arc<Keys>> {
        let mut state = self.state.clone();
        let settled =
            tokio::time::timeout_at(until, state.wait_for(|s| !matches!(s, State::Pending))).await;
        match settled {
            Ok(Ok(_)) => match self.lookup(SystemTime::now()) {
                Lookup::Ready(keys) => Some(keys),
                Lookup::Pending | Lookup::Unavailable => None,
            },
            Ok(Err(_)) | Err(_) => None,
        }
    }
}

/// Fetches, publishes, sleeps until the refresh point; on failure keeps what is still
/// valid and retries with a doubling wait. Ends when no one reads the credentials.
async fn refresh(source: Source, send: HttpSend, tx: watch::Sender<State>) {
    let mut retry = FIRST_RETRY;
    loop {
        let wait = match fetch(&source, &send).await {
            Ok((keys, expires)) => {
                retry = FIRST_RETRY;
                let fetched = SystemTime::now();
                tx.send_replace(State::Ready {
                    keys: Arc::new(keys),
                    expires: Some(expires),
                });
                tracing::debug!(source = source.name(), "AWS credentials fetched");
                until_refresh(fetched, expires)
            }
            Err(error) => {
                if let Some(suppressed) =
                    log_limit::admit(&format!("aws credentials {}", source.name()))
                {
                    tracing::error!(source = source.name(), %error, suppressed, "AWS credentials could not be fetched: Bedrock targets are skipped (reason config) while none are valid");
                }
                let still_valid = matches!(
                    &*tx.borrow(),
                    State::Ready { expires, .. } if expires.is_none_or(|at| at > SystemTime::now())
                );
                if !still_valid {
                    tx.send_replace(State::Failed);
                }
                let wait = retry;
                retry = (retry * 2).min(MAX_RETRY);
                wait
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = tx.closed() => return,
        }
    }
}

/// How long from now until credentials fetched at `fetched` and expiring at `expires`
/// should be fetched again: a minute ahead, or a tenth of their life when that is less.
fn until_refresh(fetched: SystemTime, expires: SystemTime) -> Duration {
    let life = expires.duration_since(fetched).unwrap_or_default();
    let ahead = REFRESH_AHEAD.min(life / 10);
    let at = expires.checked_sub(ahead).unwrap_or(expires);
    at.duration_since(SystemTime::now()).unwrap_or_default()
}

async fn fetch(source: &Source, send: &HttpSend) -> Result<(Keys, SystemTime), String> {
    match source {
        // Static keys are published once by `start` and never fetched.
        Source::Static(_) => Err("static keys are not fetched".to_owned()),
        Source::WebIdentity {
            role_arn,
            token_file,
            session_name,
            sts,
        } => {
            let token = std::fs::read_to_string(token_file).map_err(|e| {
                format!(
                    "cannot read AWS_WEB_IDENTITY_TOKEN_FILE {}: {e}",
                    token_file.display()
                )
            })?;
            let form = form_urlencoded::Serializer::new(String::new())
                .append_pair("Action", "AssumeRoleWithWebIdentity")
                .append_pair("Version", "2011-06-15")
                .append_pair("RoleArn", role_arn)
                .append_pair("RoleSessionName", session_name)
                .append_pair("WebIdentityToken", token.trim())
                .finish();
            let request = Request::builder()
                .method(Method::POST)
                .uri(format!("{sts}/"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Bytes::from(form))
                .map_err(|e| format!("bad STS endpoint {sts}: {e}"))?;
            let (status, body) = send(request)
                .await
                .map_err(|e| format!("STS at {sts}: {e}"))?;
            if !status.is_success() {
                let code = xml_text(&body, "Code").unwrap_or("no error code");
                return Err(format!("STS at {sts} answered {status} ({code})"));
            }
            sts_credentials(&body)
                .ok_or_else(|| format!("STS at {sts} answered without credentials"))
        }
        Source::Container {
            uri,
            token_file,
            token,
        } => {
            let authorization = match token_file {
                Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                    format!(
                        "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE {}: {e}",
                        path.display()
                    )
                })?),
                None => token.clone(),
            };
            let mut request = Request::builder().method(Method::GET).uri(uri.as_str());
            if let Some(value) = authorization {
                request = request.header("authorization", value.trim());
            }
            let request = request
                .body(Bytes::new())
                .map_err(|e| format!("bad container credentials URI {uri}: {e}"))?;
            let (status, body) = send(request)
                .await
                .map_err(|e| format!("container credentials at {uri}: {e}"))?;
            if !status.is_success() {
                return Err(format!("container credentials at {uri} answered {status}"));
            }
            container_credentials(&body).ok_or_else(|| {
                format!("container credentials at {uri} answered without credentials")
            })
        }
    }
}

/// The text of the first `<tag>…</tag>` (STS answers in XML; its values hold no markup).
fn xml_text<'a>(body: &'a [u8], tag: &str) -> Option<&'a str> {
    let text = std::str::from_utf8(body).ok()?;
    let open = format!("<{tag}>");
    let start = text.find(&open)? + open.len();
    let end = start + text[start..].find(&format!("</{tag}>"))?;
    Some(text[start..end].trim())
}

fn sts_credentials(body: &[u8]) -> Option<(Keys, SystemTime)> {
    let keys = Keys {
        access_key_id: xml_text(body, "AccessKeyId")?.to_owned(),
        secret_access_key: xml_text(body, "SecretAccessKey")?.to_owned(),
        session_token: xml_text(body, "SessionToken").map(str::to_owned),
    };
    let expires = humantime::parse_rfc3339_weak(xml_text(body, "Expiration")?).ok()?;
    Some((keys, expires))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ContainerReply {
    access_key_id: String,
    secret_access_key: String,
    token: Option<String>,
    expiration: String,
}

fn container_credentials(body: &[u8]) -> Option<(Keys, SystemTime)> {
    let reply: ContainerReply = serde_json::from_slice(body).ok()?;
    let expires = humantime::parse_rfc3339_weak(&reply.expiration).ok()?;
    Some((
        Keys {
            access_key_id: reply.access_key_id,
            secret_access_key: reply.secret_access_key,
            session_token: reply.token,
        },
        expires,
    ))
}

fn unix_secs(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn the_chain_order_of_the_sdks() {
        let all = [
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token"),
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://169.254.170.23/v1/credentials",
            ),
        ];
        assert!(matches!(
            Source::from_env(&env(&all)),
            Ok(Source::Static(_))
        ));
        assert!(matches!(
            Source::from_env(&env(&all[2..])),
            Ok(Source::WebIdentity { .. })
        ));
        assert!(matches!(
            Source::from_env(&env(&all[4..])),
            Ok(Source::Container { .. })
        ));
        assert!(Source::from_env(&env(&[])).is_err());
    }

    #[test]
    fn sts_endpoint_regional_then_overridden() {
        let base = [
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
            ("AWS_REGION", "eu-west-3"),
        ];
        let sts = |extra: &[(&str, &str)]| {
            let pairs: Vec<_> = base.iter().chain(extra).copied().collect();
            match Source::from_env(&env(&pairs)).unwrap() {
                Source::WebIdentity { sts, .. } => sts,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(sts(&[]), "https://sts.eu-west-3.amazonaws.com");
        assert_eq!(
            sts(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:9/")]),
            "http://127.0.0.1:9"
        );
        assert_eq!(
            sts(&[
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
                ("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:8")
            ]),
            "http://127.0.0.1:8"
        );
    }

    #[test]
    fn parses_sts_and_container_answers() {
        let xml = br#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <SessionToken>tok</SessionToken>
      <SecretAccessKey>sec</SecretAccessKey>
      <Expiration>2030-01-01T00:00:00Z</Expiration>
      <AccessKeyId>ASIAX</AccessKeyId>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>"#;
        let (keys, expires) = sts_credentials(xml).unwrap();
        assert_eq!(keys.access_key_id, "ASIAX");
        assert_eq!(keys.session_token.as_deref(), Some("tok"));
        assert_eq!(
            expires,
            humantime::parse_rfc3339("2030-01-01T00:00:00Z").unwrap()
        );
        let json = br#"{"AccessKeyId":"ASIAY","SecretAccessKey":"s","Token":"t","AccountId":"1","Expiration":"2030-01-01T00:00:00Z"}"#;
        assert_eq!(
            container_credentials(json).unwrap().0.access_key_id,
            "ASIAY"
        );
    }

    #[test]
    fn refreshes_a_minute_ahead_or_a_tenth_of_a_short_life() {
        let now = SystemTime::now();
        let hour = until_refresh(now, now + Duration::from_secs(3600));
        assert!(
            hour <= Duration::from_secs(3540) && hour > Duration::from_secs(3530),
            "{hour:?}"
        );
        let short = until_refresh(now, now + Duration::from_secs(100));
        assert!(
            short <= Duration::from_secs(90) && short > Duration::from_secs(80),
            "{short:?}"
        );
    }
}
