//! The outbound side: pooled hyper-util clients (rustls, HTTP/1.1 and HTTP/2 by ALPN,
//! through the egress proxy where the rules say) and the construction of each provider's
//! request. Invariant: one client, so one pool, per connect timeout and TLS identity:
//! providers with different client certificates never share a connection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Uri};
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client as HyperClient, ResponseFuture};
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::policy::spec::{ApiKind, TlsSpec, Wire};
use crate::policy::Provider;
use crate::provider::google;
use crate::proxy::egress::{Egress, EgressConnector};
use crate::proxy::tls::{self, TlsFileError, TlsMaterial};

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

/// Which operation an inbound call asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// OpenAI chat completions.
    Chat,
    /// OpenAI embeddings.
    Embeddings,
    /// Anthropic messages.
    Messages,
    /// OpenAI Responses.
    Responses,
    /// Anthropic token counting (`/v1/messages/count_tokens`): Messages, not generation.
    CountTokens,
}

impl Operation {
    /// The GenAI semantic-convention operation name.
    pub fn genai_name(self) -> &'static str {
        match self {
            // The GenAI conventions have no Responses name: a Responses call is a chat.
            Operation::Chat | Operation::Messages | Operation::Responses => "chat",
            Operation::Embeddings => "embeddings",
            // Not a GenAI operation: named for what it does.
            Operation::CountTokens => "count_tokens",
        }
    }

    /// Whether it generates text, so a target's `request` adaptation applies to it.
    pub fn is_generation(self) -> bool {
        match self {
            Operation::Chat | Operation::Messages | Operation::Responses => true,
            Operation::Embeddings | Operation::CountTokens => false,
        }
    }

    /// The API family of the inbound call: it picks the route (`routes[].inbound`) and
    /// the format of the sidecar's own errors (Responses errors are OpenAI's shape).
    pub fn dialect(self) -> ApiKind {
        match self {
            Operation::Chat | Operation::Embeddings | Operation::Responses => ApiKind::Openai,
            Operation::Messages | Operation::CountTokens => ApiKind::Anthropic,
        }
    }

    /// The protocol the inbound call speaks.
    pub fn wire(self) -> Wire {
        match self {
            Operation::Chat => Wire::Chat,
            Operation::Embeddings => Wire::Embeddings,
            Operation::Messages | Operation::CountTokens => Wire::Messages,
            Operation::Responses => Wire::Responses,
        }
    }
}

/// Request headers never forwarded: hop-by-hop (RFC 9110 §7.6.1), the host, framing we
/// recompute, compression we must not receive (we read streams), credentials and cookies.
const DROPPED: [&str; 16] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "accept-encoding",
    "authorization",
    "x-api-key",
    "api-key",
    "cookie",
];

/// Builds the upstream request for one attempt of an `operation` call sent in `wire`
/// (its own, or the one it is translated into); `stream` picks Bedrock's stream path.
/// Not yet sendable: [`seal`] signs it (when the provider signs) once nothing changes it.
pub fn build_request(
    provider: &Provider,
    (operation, wire): (Operation, Wire),
    (target_model, stream): (&str, bool),
    inbound: &HeaderMap,
    body: Bytes,
) -> Result<Request<Bytes>, http::Error> {
    let uri = upstream_uri(provider, (operation, wire), (target_model, stream))?;
    let mut builder = Request::builder().method(Method::POST).uri(uri);
    let headers = builder
        .headers_mut()
        .expect("method and a parsed uri are always valid");
    copy_forwardable(inbound, headers);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    for (name, value) in &provider.headers {
        headers.insert(name.clone(), value.clone());
    }
    match provider.api {
        ApiKind::Anthropic => {
            if !headers.contains_key("anthropic-version") {
                headers.insert("anthropic-version", HeaderValue::from_static("2023-06-01"));
            }
        }
        ApiKind::Openai
        | ApiKind::AzureOpenai
        | ApiKind::Bedrock
        | ApiKind::Gemini
        | ApiKind::Vertex => {
            headers.remove("anthropic-version");
            headers.remove("anthropic-beta");
        }
    }
    provider
        .auth
        .apply(provider.api, operation.dialect(), inbound, headers);
    builder.body(body)
}

/// Why a request could not be made sendable.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// No valid AWS credentials (a configuration problem, logged by the chain).
    #[error("no AWS credentials")]
    NoCredentials,
    /// The signer refused the request.
    #[error(transparent)]
    Sign(#[from] crate::aws::sigv4::SignError),
}

/// Makes a built request sendable: signs it over its method, URI, headers and body at
/// `now` when the provider uses SigV4 (service `bedrock`, the provider's own region,
/// never `AWS_REGION`), waiting until `until` at most for a first credential fetch
/// still in flight. Anything that changes the request must happen before this.
pub async fn seal(
    provider: &Provider,
    mut request: Request<Bytes>,
    now: std::time::SystemTime,
    until: tokio::time::Instant,
) -> Result<Request<Full<Bytes>>, SealError> {
    if let crate::policy::Auth::Aws(credentials) = &provider.auth {
        let keys = match credentials.lookup(now) {
            crate::aws::Lookup::Ready(keys) => keys,
            crate::aws::Lookup::Pending => credentials
                .wait(until)
                .await
                .ok_or(SealError::NoCredentials)?,
            crate::aws::Lookup::Unavailable => return Err(SealError::NoCredentials),
        };
        let region = provider.region.as_deref().unwrap_or_default();
        crate::aws::sigv4::sign(
            &mut request,
            &keys,
            (region, crate::aws::sigv4::BEDROCK_SERVICE),
            now,
        )?;
    }
    Ok(request.map(Full::new))
}

fn copy_forwardable(inbound: &HeaderMap, out: &mut HeaderMap) {
    let listed_in_connection: Vec<HeaderName> = inbound
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for (name, value) in inbound {
        let n = name.as_str();
        if DROPPED.contains(&n)
            || n.starts_with("x-switchyard-")
            || listed_in_connection.contains(name)
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
}

fn upstream_uri(
    provider: &Provider,
    (operation, wire): (Operation, Wire),
    (target_model, stream): (&str, bool),
) -> Result<Uri, http::Error> {
    let base = provider.base_url.trim_end_matches('/');
    let version = provider.api_version.as_deref().unwrap_or_default();
    let uri = match (provider.api, wire) {
        (ApiKind::Anthropic, _) if operation == Operation::CountTokens => {
            format!("{base}/v1/messages/count_tokens")
        }
        (ApiKind::Anthropic, _) => format!("{base}/v1/messages"),
        // Azure's Responses API takes the deployment in the body's `model`, not the path.
        (ApiKind::AzureOpenai, Wire::Responses) => {
            format!("{base}/openai/responses?api-version={version}")
        }
        (ApiKind::AzureOpenai, wire) => format!(
            "{base}/openai/deployments/{}/{}?api-version={version}",
            path_segment(target_model),
            openai_suffix(wire),
        ),
        (ApiKind::Openai, wire) => format!("{base}/{}", openai_suffix(wire)),
        (ApiKind::Gemini | ApiKind::Vertex, _) => {
            let vertex = provider
                .vertex
                .as_ref()
                .map(|(project, region)| (project.as_str(), region.as_str()));
            let path = google::model_path(vertex, &path_segment(target_model), stream);
            format!("{base}{path}")
        }
        // The model id (often an inference profile or an ARN, with `:` and `/`) is one
        // percent-encoded segment; SigV4 encodes the path once more when it signs.
        (ApiKind::Bedrock, _) => format!(
            "{base}/model/{}/{}",
            path_segment(target_model),
            if stream {
                "converse-stream"
            } else {
                "converse"
            }
        ),
    };
    Ok(uri.parse::<Uri>()?)
}

/// Percent-encodes a model name for use as one path segment: the requested model comes
/// from the app and must never reshape the upstream URL.
fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// The path of a wire under an OpenAI base URL; Messages and Converse never reach one
/// (a call is translated to Chat first), so they name the Chat path.
fn openai_suffix(wire: Wire) -> &'static str {
    match wire {
        Wire::Embeddings => "embeddings",
        Wire::Responses => "responses",
        Wire::Chat | Wire::Messages | Wire::GenerateContent | Wire::Converse => "chat/completions",
    }
}

#[cfg(test)]
mod tests {
    use super::path_segment;

    #[test]
    fn model_names_stay_one_path_segment() {
        assert_eq!(path_segment("gpt-4o_v1.2~x"), "gpt-4o_v1.2~x");
        assert_eq!(
            path_segment("arn:aws:bedrock:us-east-1:1:inference-profile/us.anthropic.claude-v2:1"),
            "arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fus.anthropic.claude-v2%3A1"
        );
        assert_eq!(path_segment("../admin?x=1#"), "..%2Fadmin%3Fx%3D1%23");
    }
}
