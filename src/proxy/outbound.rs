//! The outbound request: the construction of each provider's request for one attempt
//! (its endpoint, forwarded headers, auth) and `seal`, the signing seam every request
//! passes last. The client that sends it is `crate::upstream`'s.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Uri};

use crate::operation::Operation;
use crate::policy::spec::Wire;
use crate::provider::{self as kind, Endpoint};
use crate::routing::Provider;

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
    let kind = kind::of(provider.api);
    if let Some((name, default)) = kind.required_header {
        if !headers.contains_key(name) {
            headers.insert(name, HeaderValue::from_static(default));
        }
    }
    for name in kind.foreign_headers {
        headers.remove(*name);
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
) -> Result<Request<Bytes>, SealError> {
    if let crate::routing::Auth::Aws(credentials) = &provider.auth {
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
    Ok(request)
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
    let model = path_segment(target_model);
    let uri = (kind::of(provider.api).endpoint)(&Endpoint {
        base: provider.base_url.trim_end_matches('/'),
        api_version: provider.api_version.as_deref().unwrap_or_default(),
        vertex: provider
            .vertex
            .as_ref()
            .map(|(project, region)| (project.as_str(), region.as_str())),
        operation,
        wire,
        model: &model,
        stream,
    });
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
