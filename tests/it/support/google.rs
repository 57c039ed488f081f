//! A fake GCE metadata server: the token endpoint Vertex credentials come from on GKE.
//! Counts token requests, refuses those without `Metadata-Flavor: Google`, and hands out
//! `ya29.fake-<n>` tokens of a set life.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

pub const TOKEN_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/token";

pub struct FakeMetadata {
    pub addr: SocketAddr,
    pub tokens: Arc<AtomicU64>,
}

impl FakeMetadata {
    /// Serves tokens that live `expires_in` seconds.
    pub async fn start(expires_in: u64) -> FakeMetadata {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tokens = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&tokens);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let counter = Arc::clone(&counter);
                        async move { Ok::<_, Infallible>(answer(&req, &counter, expires_in)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FakeMetadata { addr, tokens }
    }

    /// Token requests answered so far.
    pub fn fetched(&self) -> u64 {
        self.tokens.load(Ordering::SeqCst)
    }

    /// The `GCE_METADATA_HOST` value that names this server.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }
}

/// The token the metadata server handed out `n`th.
pub fn token(n: u64) -> String {
    format!("ya29.fake-{n}")
}

fn answer(req: &Request<Incoming>, counter: &AtomicU64, expires_in: u64) -> Response<Full<Bytes>> {
    let flavored = req
        .headers()
        .get("metadata-flavor")
        .is_some_and(|v| v == "Google");
    if req.uri().path() != TOKEN_PATH || !flavored {
        let mut response = Response::new(Full::new(Bytes::from_static(b"forbidden")));
        *response.status_mut() = StatusCode::FORBIDDEN;
        return response;
    }
    let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
    let body = serde_json::json!({"access_token": token(n), "expires_in": expires_in, "token_type": "Bearer"});
    Response::new(Full::new(Bytes::from(body.to_string())))
}
