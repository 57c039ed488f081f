//! The OTLP/HTTP transport on the sidecar's own hyper-util client and rustls stack (no
//! second HTTP client or TLS stack). Invariant: every request runs on the tokio runtime
//! the exporter was built on and is bounded by the export timeout, so the exporter's
//! worker thread never blocks longer than that.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use opentelemetry_http::{HttpClient, HttpError};
use tokio::runtime::Handle;

use crate::upstream::{self, Client};

/// Responses from a collector are tiny; anything larger is not worth reading.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// Why an export over HTTP did not complete.
#[derive(Debug, thiserror::Error)]
enum ExportError {
    #[error("the collector did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the collector's answer is larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
    #[error("the export task was cancelled")]
    Cancelled,
}

/// An [`HttpClient`] for the OTLP exporter that runs its calls on a tokio runtime.
#[derive(Debug, Clone)]
pub struct TokioHttpClient {
    client: Client,
    runtime: Handle,
    timeout: Duration,
}

impl TokioHttpClient {
    /// A client whose calls run on `runtime` and give up after `timeout`.
    pub fn new(runtime: Handle, timeout: Duration) -> Self {
        Self {
            client: upstream::direct_client(timeout),
            runtime,
            timeout,
        }
    }
}

#[async_trait::async_trait]
impl HttpClient for TokioHttpClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let timeout = self.timeout;
        let call = async move {
            let response = client.request(request).await?;
            let (parts, body) = response.into_parts();
            let bytes = http_body_util::Limited::new(body, MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|_| ExportError::TooLarge)?
                .to_bytes();
            Ok::<_, HttpError>(Response::from_parts(parts, bytes))
        };
        let task = self
            .runtime
            .spawn(async move { tokio::time::timeout(timeout, call).await });
        match task.await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ExportError::Timeout(timeout).into()),
            Err(_) => Err(ExportError::Cancelled.into()),
        }
    }
}
