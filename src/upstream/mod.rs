//! The outbound HTTP client: HTTP/2 by ALPN over our own connections to `https` hosts
//! that offer it (`multiplex`), hyper-util's pooled HTTP/1.1 client for the rest (rustls,
//! through the egress proxy where the rules say), the TLS trust and identity they use
//! (`tls`) and the egress proxy rules (`egress`). Below the proxy and the compiled
//! policy: it knows nothing of providers or calls. Invariant: one client, so one pool, per
//! connect timeout and TLS identity: providers with different client certificates never
//! share a connection.

pub mod egress;
pub mod multiplex;
pub mod tls;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header;
use http::uri::Scheme;
use http::{Request, Response};
use http_body::Frame;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::body::BoxError;
use crate::policy::spec::TlsSpec;
use egress::{Egress, EgressConnector};
use multiplex::{H2Body, Multiplexer, Sent};
use tls::{TlsFileError, TlsMaterial};

/// A pooled HTTP client; cloning shares the pool.
#[derive(Clone)]
pub struct Client {
    http1: HyperClient<HttpsConnector<EgressConnector>, Full<Bytes>>,
    http2: Arc<Multiplexer>,
    egress: Arc<Egress>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("egress", &self.egress)
            .finish_non_exhaustive()
    }
}

/// Why an upstream call got no response.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// From the HTTP/1.1 pool.
    #[error(transparent)]
    Pooled(#[from] hyper_util::client::legacy::Error),
    /// No connection for HTTP/2 (TCP, the egress proxy or TLS).
    #[error("client error (Connect)")]
    Connect(#[source] BoxError),
    /// The HTTP/2 handshake, connection or stream failed.
    #[error("HTTP/2")]
    Multiplexed(#[source] h2::Error),
}

impl UpstreamError {
    /// Whether no connection could be made: the request never left.
    pub fn is_connect(&self) -> bool {
        match self {
            UpstreamError::Pooled(error) => error.is_connect(),
            UpstreamError::Connect(_) => true,
            UpstreamError::Multiplexed(_) => false,
        }
    }
}

/// A response body from either pool.
pub enum UpstreamBody {
    /// Read by hyper (HTTP/1.1).
    Pooled(Incoming),
    /// Read from an h2 stream.
    Multiplexed(H2Body),
}

impl http_body::Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            UpstreamBody::Pooled(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            UpstreamBody::Multiplexed(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Pooled(body) => body.is_end_stream(),
            UpstreamBody::Multiplexed(body) => body.is_end_stream(),
        }
    }
}

impl Client {
    /// Sends a request: over HTTP/2 to an `https` host that offers it, else through the
    /// HTTP/1.1 pool, adding the proxy's credentials when it goes to an http proxy in
    /// absolute form (a CONNECT tunnel carries them on the CONNECT instead).
    pub async fn request(
        &self,
        mut request: Request<Bytes>,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        if request.uri().scheme() == Some(&Scheme::HTTPS) {
            request = match self.http2.send(request).await? {
                Sent::Answered(response) => return Ok(response.map(UpstreamBody::Multiplexed)),
                Sent::Http1(request) => request,
            };
        }
        if let Some(auth) = self.egress.forward_auth(request.uri()) {
            request
                .headers_mut()
                .insert(header::PROXY_AUTHORIZATION, auth);
        }
        let response = self.http1.request(request.map(Full::new)).await?;
        Ok(response.map(UpstreamBody::Pooled))
    }

    /// This client as the AWS credential chain's transport (STS, the container
    /// credentials endpoint): each fetch bounded, the body read whole.
    pub fn http_send(&self) -> crate::aws::HttpSend {
        const FETCH: Duration = Duration::from_secs(10);
        let client = self.clone();
        Arc::new(move |request: Request<Bytes>| {
            let client = client.clone();
            Box::pin(async move {
                let exchange = async {
                    let response = client
                        .request(request)
                        .await
                        .map_err(|e| format!("request failed: {e}"))?;
                    let (parts, body) = response.into_parts();
                    let body = http_body_util::BodyExt::collect(body)
                        .await
                        .map_err(|e| format!("reply cut: {e}"))?
                        .to_bytes();
                    Ok((parts.status, body))
                };
                tokio::time::timeout(FETCH, exchange)
                    .await
                    .map_err(|_| format!("no answer within {FETCH:?}"))?
            })
        })
    }
}

/// The TLS identity a pool belongs to: the files named, and what they held when the
/// client was built (a rotation builds a new client).
type PoolKey = (Duration, Option<TlsSpec>);

/// Clients by connect timeout and TLS files: pools are shared by every provider with the
/// same of both and survive policy reloads.
#[derive(Default)]
pub struct Upstreams {
    egress: Arc<Egress>,
    clients: Mutex<HashMap<PoolKey, (Option<TlsMaterial>, Client)>>,
}

impl Upstreams {
    /// Pools whose connections follow these egress rules.
    pub fn new(egress: Arc<Egress>) -> Self {
        Upstreams {
            egress,
            clients: Mutex::default(),
        }
    }

    /// The client for a connect timeout and a provider's TLS files as read into
    /// `material` (compile time only, never per request). A file that changed since the
    /// pool was built replaces it: connections with the old identity are not reused.
    pub fn client(
        &self,
        connect_timeout: Duration,
        tls: Option<(&TlsSpec, &TlsMaterial)>,
    ) -> Result<Client, TlsFileError> {
        let key = (connect_timeout, tls.map(|(spec, _)| spec.clone()));
        let material = tls.map(|(_, material)| material.clone());
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((built_from, client)) = clients.get(&key) {
            if *built_from == material {
                return Ok(client.clone());
            }
        }
        let config = match &material {
            Some(material) => material.client_config()?,
            None => tls::default_config(),
        };
        let client = build_client(connect_timeout, config, Arc::clone(&self.egress));
        clients.insert(key, (material, client.clone()));
        Ok(client)
    }
}

/// A client with the web roots only that never uses the egress proxy (the OTLP
/// exporter's: a collector is usually local, and DESIGN routes only upstream calls
/// through the proxy).
pub fn direct_client(connect_timeout: Duration) -> Client {
    build_client(
        connect_timeout,
        tls::default_config(),
        Arc::new(Egress::default()),
    )
}

/// A client over rustls (HTTP/2 by ALPN, else HTTP/1.1) with this connect timeout.
fn build_client(
    connect_timeout: Duration,
    tls: rustls::ClientConfig,
    egress: Arc<Egress>,
) -> Client {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    let connector = EgressConnector::new(http, Arc::clone(&egress), connect_timeout);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(connector);
    let http2 = Arc::new(Multiplexer::new(https.clone()));
    // The idle timeout only runs with a timer; without one, idle sockets (to hosts a
    // reload removed, too) stay open until a request happens to find them.
    let http1 = HyperClient::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(64)
        .build(https);
    Client {
        http1,
        http2,
        egress,
    }
}
