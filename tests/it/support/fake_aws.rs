//! Local fakes of the AWS credential endpoints: STS `AssumeRoleWithWebIdentity` (IRSA)
//! and an EKS Pod Identity / container credentials endpoint. Each answer is a fresh set
//! of temporary credentials (session token `token-N`) that expires after `life`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The access key every fake answer carries (the Bedrock mock is keyed to it).
pub const TEMP_KEY_ID: &str = "ASIATESTTEMPORARY";
/// The secret every fake answer carries.
pub const TEMP_SECRET: &str = "temporary-secret-never-logged";

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub body: String,
}

#[derive(Default)]
struct State {
    seen: Mutex<Vec<Seen>>,
}

/// The fake; stops when dropped.
pub struct FakeAws {
    pub addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeAws {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeAws {
    /// Serves credentials that expire `life` after each answer.
    pub async fn start(life: Duration) -> FakeAws {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let served = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = Arc::clone(&served);
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(answer(&state, req, life).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FakeAws { addr, state, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived, at most `within`.
    pub async fn wait_for(&self, n: usize, within: Duration) {
        let start = tokio::time::Instant::now();
        while self.seen().len() < n {
            assert!(
                start.elapsed() < within,
                "{} fetches, expected {n}",
                self.seen().len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn answer(state: &State, req: Request<Incoming>, life: Duration) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let n = {
        let mut seen = state.seen.lock().unwrap();
        seen.push(Seen {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            authorization: parts
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        seen.len()
    };
    let expires = humantime::format_rfc3339_seconds(SystemTime::now() + life).to_string();
    let token = format!("token-{n}");
    let (content_type, text) = if parts.method == http::Method::POST {
        (
            "text/xml",
            format!(
                "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
                 <AssumeRoleWithWebIdentityResult><Credentials>\
                 <AccessKeyId>{TEMP_KEY_ID}</AccessKeyId><SecretAccessKey>{TEMP_SECRET}</SecretAccessKey>\
                 <SessionToken>{token}</SessionToken><Expiration>{expires}</Expiration>\
                 </Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"
            ),
        )
    } else {
        (
            "application/json",
            serde_json::json!({"AccessKeyId": TEMP_KEY_ID, "SecretAccessKey": TEMP_SECRET,
                               "Token": token, "AccountId": "123456789012", "Expiration": expires})
            .to_string(),
        )
    };
    Response::builder()
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(text)))
        .unwrap()
}
