//! Test support: a sidecar on ephemeral ports with a policy, mock providers, and a small
//! HTTP client.

#![allow(dead_code)]

pub mod egress_proxy;
pub mod fake_aws;
pub mod fake_kube;
pub mod google;
pub mod tls_mock;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use switchyard::app::{self, RunArgs, Running};

pub use switchyard::mock::{Faults, MockServer};

pub mod otlp;

/// A sidecar started in-process from a policy text.
pub struct Sidecar {
    pub running: Running,
    _policy: Option<tempfile::NamedTempFile>,
}

impl Sidecar {
    pub async fn start(policy: &str) -> Sidecar {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), policy).unwrap();
        let mut args = RunArgs::loopback(Some(file.path().to_owned()));
        args.max_body_bytes = 1 << 20;
        let running = app::start(&args).await.expect("sidecar starts");
        Sidecar {
            running,
            _policy: Some(file),
        }
    }

    /// A sidecar from a policy text with its flags adjusted by `configure` (egress
    /// rules, the key refresh interval).
    pub async fn start_configured(policy: &str, configure: impl FnOnce(&mut RunArgs)) -> Sidecar {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), policy).unwrap();
        let mut args = RunArgs::loopback(Some(file.path().to_owned()));
        configure(&mut args);
        let running = app::start(&args).await.expect("sidecar starts");
        Sidecar {
            running,
            _policy: Some(file),
        }
    }

    /// A sidecar started from explicit flags (listeners on free loopback ports).
    pub async fn start_with(args: RunArgs) -> Sidecar {
        let running = app::start(&args).await.expect("sidecar starts");
        Sidecar {
            running,
            _policy: None,
        }
    }

    /// The running policy's generation, 0 before the first one loads.
    pub async fn generation(&self) -> u64 {
        let reply = get(&self.admin("/policy")).await;
        if reply.status != 200 {
            return 0;
        }
        reply.json()["generation"].as_u64().unwrap_or(0)
    }

    /// Waits (polling, bounded by `within`) until the policy reaches `generation`;
    /// returns how long it took.
    pub async fn wait_generation(&self, generation: u64, within: Duration) -> Duration {
        let start = tokio::time::Instant::now();
        loop {
            let now = self.generation().await;
            if now >= generation {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < within,
                "policy generation {now}, expected {generation} within {within:?}"
            );
            tokio::time::sleep(ms(5)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running.proxy_addr)
    }

    pub fn admin(&self, path: &str) -> String {
        format!("http://{}{path}", self.running.admin_addr)
    }

    pub async fn chat(&self, model: &str) -> Reply {
        post(
            &self.url("/v1/chat/completions"),
            &chat_body(model, false),
            &[],
        )
        .await
    }

    pub async fn messages(&self, model: &str) -> Reply {
        post(&self.url("/v1/messages"), &messages_body(model, false), &[]).await
    }

    pub async fn breakers(&self) -> serde_json::Value {
        get(&self.admin("/breakers")).await.json()
    }

    pub async fn metrics(&self) -> String {
        get(&self.admin("/metrics")).await.text()
    }
}

/// Two providers in front of two mocks, one route `gpt-4o`: primary then secondary.
pub fn two_target_policy(primary: &MockServer, secondary: &MockServer, extra: &str) -> String {
    format!(
        r#"
providers:
  - name: primary
    api: openai
    baseUrl: {p}/v1
    auth: {{apiKey: {{fromEnv: SWITCHYARD_TEST_KEY}}}}
    timeouts: {{connect: 1s, firstByte: 2s, idle: 2s}}
  - name: secondary
    api: openai
    baseUrl: {s}/v1
    auth: {{apiKey: {{fromEnv: SWITCHYARD_TEST_KEY}}}}
    timeouts: {{connect: 1s, firstByte: 2s, idle: 2s}}
  - name: claude
    api: anthropic
    baseUrl: {p}
    auth: {{apiKey: {{fromEnv: SWITCHYARD_TEST_KEY}}}}
    timeouts: {{connect: 1s, firstByte: 2s, idle: 2s}}
  - name: claude-backup
    api: anthropic
    baseUrl: {s}
    auth: {{apiKey: {{fromEnv: SWITCHYARD_TEST_KEY}}}}
    timeouts: {{connect: 1s, firstByte: 2s, idle: 2s}}
routes:
  - model: gpt-4o
    targets:
      - provider: primary
        model: gpt-4o
      - provider: secondary
        model: gpt-4o-mini
  - model: claude-sonnet
    targets:
      - provider: claude
        model: claude-sonnet-4-5
      - provider: claude-backup
        model: claude-haiku-4-5
{extra}
"#,
        p = primary.url(),
        s = secondary.url(),
    )
}

pub fn chat_body(model: &str, stream: bool) -> String {
    serde_json::json!({
        "model": model,
        "stream": stream,
        "messages": [{"role": "user", "content": "hello"}],
    })
    .to_string()
}

pub fn messages_body(model: &str, stream: bool) -> String {
    serde_json::json!({
        "model": model,
        "stream": stream,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hello"}],
    })
    .to_string()
}

/// A buffered response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

fn client() -> Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

pub async fn send(request: Request<Full<Bytes>>) -> http::Response<Incoming> {
    client()
        .request(request)
        .await
        .expect("request reaches the listener")
}

pub async fn post(url: &str, body: &str, headers: &[(&str, &str)]) -> Reply {
    let mut builder = Request::post(url).header("content-type", "application/json");
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    collect(
        send(
            builder
                .body(Full::new(Bytes::from(body.to_owned())))
                .unwrap(),
        )
        .await,
    )
    .await
}

pub async fn get(url: &str) -> Reply {
    collect(send(Request::get(url).body(Full::new(Bytes::new())).unwrap()).await).await
}

pub async fn collect(response: http::Response<Incoming>) -> Reply {
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// Reads a streamed response to its end, returning each SSE event's data (with the
/// event name, if any, as `name: data`).
pub async fn stream_events(response: http::Response<Incoming>) -> Vec<String> {
    let mut parser = switchyard::sse::Parser::new();
    let mut body = response.into_body();
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Ok(data) = frame.into_data() {
            parser.push(&data);
            while let Some(ev) = parser.next_event() {
                out.push(match ev.event {
                    Some(name) => format!("{name}: {}", ev.data),
                    None => ev.data,
                });
            }
        }
    }
    out
}

pub async fn post_stream(url: &str, body: &str) -> http::Response<Incoming> {
    let request = Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    send(request).await
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Faults from their JSON form (the same names as `POST /_mock/faults`).
pub fn faults(value: serde_json::Value) -> Faults {
    serde_json::from_value(value).expect("valid mock faults")
}

/// The provider key test policies read with `apiKey: {fromEnv: SWITCHYARD_TEST_KEY}`.
pub const PROVIDER_KEY: &str = "sk-test-provider-key";

/// Sets `SWITCHYARD_TEST_KEY` to [`PROVIDER_KEY`] once for the whole test process, not
/// again by every test while others run.
pub fn provider_key_env() {
    static SET: std::sync::Once = std::sync::Once::new();
    SET.call_once(|| {
        #[allow(
            clippy::disallowed_methods,
            reason = "test policies name the key by variable, as deployments do; set once, \
                      always to the same value, under std's environment lock"
        )]
        std::env::set_var("SWITCHYARD_TEST_KEY", PROVIDER_KEY);
    });
}

/// Two mocks and a sidecar with [`two_target_policy`].
pub async fn pair(extra: &str) -> (MockServer, MockServer, Sidecar) {
    provider_key_env();
    let primary = MockServer::start("primary").await.unwrap();
    let secondary = MockServer::start("secondary").await.unwrap();
    let sidecar = Sidecar::start(&two_target_policy(&primary, &secondary, extra)).await;
    (primary, secondary, sidecar)
}
