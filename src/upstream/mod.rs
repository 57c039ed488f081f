//! The outbound HTTP client: pooled hyper-util clients (rustls, HTTP/1.1 and HTTP/2 by
//! ALPN, through the egress proxy where the rules say), the TLS trust and identity they
//! use (`tls`) and the egress proxy rules (`egress`). Below the proxy and the compiled
//! policy: it knows nothing of providers or calls. Invariant: one client, so one pool, per
//! connect timeout and TLS identity: providers with different client certificates never
//! share a connection.

pub mod egress;
pub mod tls;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header;
use http::Request;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client as HyperClient, ResponseFuture};
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::policy::spec::TlsSpec;
use egress::{Egress, EgressConnector};
use tls::{TlsFileError, TlsMaterial};

/// A pooled HTTP client; cloning shares the pool.
#[derive(Clone, Debug)]
pub struct Client {
    inner: HyperClient<HttpsConnector<EgressConnector>, Full<Bytes>>,
    egress: Arc<Egress>,
}

impl Client {
    /// Sends a request, adding the proxy's credentials when it goes to an http proxy in
    /// absolute form (a CONNECT tunnel carries them on the CONNECT instead).
    pub fn request(&self, mut request: Request<Full<Bytes>>) -> ResponseFuture {
        if let Some(auth) = self.egress.forward_auth(request.uri()) {
            request
                .headers_mut()
                .insert(header::PROXY_AUTHORIZATION, auth);
        }
        self.inner.request(request)
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
                        .request(request.map(Full::new))
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

/// A pooled client over rustls (HTTP/1.1 and HTTP/2 by ALPN) with this connect timeout.
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
    // The idle timeout only runs with a timer; without one, idle sockets (to hosts a
    // reload removed, too) stay open until a request happens to find them.
    let inner = HyperClient::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(64)
        .build(https);
    Client { inner, egress }
}
