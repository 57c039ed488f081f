//! Gemini and Vertex AI targets through the sidecar: OpenAI and Anthropic apps answered by
//! each (streamed and not, with tools), RetryInfo cooldowns, failover on each failure
//! signal, Vertex tokens from a fake metadata server (fetched once, renewed before they
//! expire, renewed and retried on a 401), and neither key nor token ever reaching the app,
//! the logs or the spans.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use switchyard::provider::google::GoogleEnv;
use tokio::io::AsyncReadExt;

use crate::support::google::{token, FakeMetadata};
use crate::support::otlp::{new_trace, receiver};
use crate::support::*;

/// `gpt-4o` → Gemini then an OpenAI backup; `claude-sonnet` → Vertex then an Anthropic
/// backup. Both Google providers sit on the `google` mock.
fn policy(google: &MockServer, backup: &MockServer, extra: &str) -> String {
    format!(
        r#"
providers:
  - name: gemini
    api: gemini
    baseUrl: {g}
    auth: {{apiKey: {{fromEnv: SWITCHYARD_TEST_KEY}}}}
  - name: vertex
    api: vertex
    baseUrl: {g}
    project: test-project
    region: europe-west4
    auth: {{google: {{}}}}
  - name: openai
    api: openai
    baseUrl: {b}/v1
    auth: {{apiKey: {{fromEnv: SWITCHYARD_TEST_KEY}}}}
  - name: claude
    api: anthropic
    baseUrl: {b}
    auth: {{apiKey: {{fromEnv: SWITCHYARD_TEST_KEY}}}}
routes:
  - model: gpt-4o
    targets:
      - {{provider: gemini, model: gemini-2.5-flash}}
      - {{provider: openai, model: gpt-4o-mini}}
  - model: claude-sonnet
    targets:
      - {{provider: vertex, model: gemini-2.5-pro}}
      - {{provider: claude, model: claude-haiku-4-5}}
{extra}
"#,
        g = google.url(),
        b = backup.url(),
    )
}

struct Setup {
    google: MockServer,
    backup: MockServer,
    metadata: FakeMetadata,
    sidecar: Sidecar,
}

async fn setup_with(expires_in: u64, extra: &str) -> Setup {
    provider_key_env();
    let google = MockServer::start("google").await.unwrap();
    let backup = MockServer::start("backup").await.unwrap();
    let metadata = FakeMetadata::start(expires_in).await;
    let host = metadata.host();
    let sidecar = Sidecar::start_configured(&policy(&google, &backup, extra), |args| {
        args.google = GoogleEnv {
            metadata_host: Some(host),
            credentials_file: None,
        };
    })
    .await;
    Setup {
        google,
        backup,
        metadata,
        sidecar,
    }
}

async fn setup() -> Setup {
    setup_with(3600, "").await
}

fn chat(stream: bool, tools: bool) -> String {
    let mut body = json!({
        "model": "gpt-4o",
        "stream": stream,
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "weather?"}],
    });
    if tools {
        body["tools"] = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
            "additionalProperties": false, "properties": {"city": {"type": "string"}}}}}]);
    }
    body.to_string()
}

fn messages(stream: bool, tools: bool) -> String {
    let mut body = json!({
        "model": "claude-sonnet",
        "stream": stream,
        "max_tokens": 64,
        "system": "be brief",
        "messages": [{"role": "user", "content": "weather?"}],
    });
    if tools {
        body["tools"] = json!([{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    }
    body.to_string()
}

fn last_request(mock: &MockServer) -> switchyard::mock::RequestRecord {
    mock.stats()
        .recent
        .last()
        .cloned()
        .expect("the mock got a call")
}

#[tokio::test]
async fn an_openai_app_is_answered_by_gemini_with_tools() {
    let s = setup().await;
    let reply = post(
        &s.sidecar.url("/v1/chat/completions"),
        &chat(false, true),
        &[],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("x-switchyard-provider"), "gemini");
    let body = reply.json();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls", "{body}");
    let call = &body["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(
        serde_json::from_str::<Value>(call["function"]["arguments"].as_str().unwrap()).unwrap(),
        json!({"mock": "google"})
    );
    assert!(call["id"].as_str().unwrap().starts_with("call_"));
    assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() > 0);

    let sent = last_request(&s.google);
    assert_eq!(sent.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(sent.query, None, "the key never goes in the URL");
    assert_eq!(sent.headers["x-goog-api-key"], PROVIDER_KEY);
    assert!(!sent.headers.contains_key("authorization"));
    let upstream: Value = serde_json::from_str(&sent.body).unwrap();
    assert_eq!(
        upstream["systemInstruction"]["parts"][0]["text"],
        "be brief"
    );
    let declared = &upstream["tools"][0]["functionDeclarations"][0];
    assert_eq!(
        declared["parameters"],
        json!({"type": "OBJECT", "properties": {"city": {"type": "STRING"}}})
    );
    assert!(!reply.text().contains(PROVIDER_KEY));
    assert!(reply
        .headers
        .values()
        .all(|v| v.as_bytes() != PROVIDER_KEY.as_bytes()));

    // The app sends the result back: answered with text by name, the call's signature
    // returned to the target that issued it.
    let next = json!({"model": "gpt-4o", "messages": [
        {"role": "user", "content": "weather?"},
        body["choices"][0]["message"],
        {"role": "tool", "tool_call_id": call["id"], "content": "sunny"},
    ], "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]});
    let reply = post(
        &s.sidecar.url("/v1/chat/completions"),
        &next.to_string(),
        &[],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["choices"][0]["finish_reason"], "stop");
    let upstream: Value = serde_json::from_str(&last_request(&s.google).body).unwrap();
    assert_eq!(
        upstream["contents"][1]["parts"][0]["thoughtSignature"],
        "bW9jay1zaWduYXR1cmU="
    );
    assert_eq!(
        upstream["contents"][2]["parts"][0]["functionResponse"],
        json!({"name": "get_weather", "response": {"result": "sunny"}})
    );
}

#[tokio::test]
async fn an_openai_stream_is_answered_by_gemini() {
    let s = setup().await;
    let response = post_stream(&s.sidecar.url("/v1/chat/completions"), &chat(true, false)).await;
    assert_eq!(response.status(), 200);
    let events = stream_events(response).await;
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{events:?}"
    );
    let text: String = events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(text, "Hello from mock google");
    let sent = last_request(&s.google);
    assert_eq!(
        sent.path,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    );
    assert_eq!(sent.query.as_deref(), Some("alt=sse"));
}

#[tokio::test]
async fn an_anthropic_app_is_answered_by_vertex_streamed_and_not() {
    let s = setup().await;
    let reply = post(&s.sidecar.url("/v1/messages"), &messages(false, true), &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("x-switchyard-provider"), "vertex");
    let body = reply.json();
    assert_eq!(body["type"], "message");
    assert_eq!(body["stop_reason"], "tool_use", "{body}");
    assert_eq!(body["content"][0]["type"], "tool_use");
    assert_eq!(body["content"][0]["input"], json!({"mock": "google"}));
    let sent = last_request(&s.google);
    assert_eq!(
        sent.path,
        "/v1/projects/test-project/locations/europe-west4/publishers/google/models/gemini-2.5-pro:generateContent"
    );
    assert_eq!(
        sent.headers["authorization"],
        format!("Bearer {}", token(1))
    );
    assert!(!sent.headers.contains_key("x-api-key"));

    let response = post_stream(&s.sidecar.url("/v1/messages"), &messages(true, false)).await;
    assert_eq!(response.status(), 200);
    let events = stream_events(response).await;
    assert!(events[0].starts_with("message_start: "), "{events:?}");
    assert!(
        events.last().unwrap().starts_with("message_stop: "),
        "{events:?}"
    );
    let text: String = events
        .iter()
        .filter_map(|e| e.strip_prefix("content_block_delta: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|d| d["delta"]["text"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(text, "Hello from mock google");
    // An OpenAI app on Vertex too, and still the one token.
    let body = chat(false, false).replace("gpt-4o", "claude-sonnet");
    let reply = post(&s.sidecar.url("/v1/chat/completions"), &body, &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.json()["choices"][0]["message"]["content"],
        "Hello from mock google"
    );
    assert_eq!(s.metadata.fetched(), 1, "one token for every call");
    assert!(!reply.text().contains("ya29."));
}

#[tokio::test]
async fn a_token_is_renewed_before_it_expires() {
    // A 2 s token is renewed a tenth of its life before expiry, off the request path.
    let s = setup_with(2, "").await;
    assert_eq!(s.sidecar.messages("claude-sonnet").await.status, 200);
    assert_eq!(s.sidecar.messages("claude-sonnet").await.status, 200);
    assert_eq!(s.metadata.fetched(), 1);
    let start = tokio::time::Instant::now();
    while s.metadata.fetched() < 2 {
        assert!(start.elapsed() < Duration::from_secs(5), "no renewal");
        tokio::time::sleep(ms(50)).await;
    }
    assert_eq!(s.sidecar.messages("claude-sonnet").await.status, 200);
    let sent = last_request(&s.google);
    assert_ne!(
        sent.headers["authorization"],
        format!("Bearer {}", token(1))
    );
}

#[tokio::test]
async fn a_vertex_401_renews_the_token_and_retries_once() {
    let s = setup().await;
    assert_eq!(s.sidecar.messages("claude-sonnet").await.status, 200);
    // Every second call is refused: the next one is, and its retry is not.
    s.google
        .set_faults(faults(json!({"errorRate": 0.5, "errorStatus": 401})));
    assert_eq!(s.sidecar.messages("claude-sonnet").await.status, 200);
    let reply = s.sidecar.messages("claude-sonnet").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("x-switchyard-provider"), "vertex");
    assert_eq!(reply.header("x-switchyard-attempts"), "1");
    assert_eq!(s.metadata.fetched(), 2);
    assert_eq!(
        last_request(&s.google).headers["authorization"],
        format!("Bearer {}", token(2))
    );
    // Refused again after the renewal: passed back, not retried a second time.
    s.google
        .set_faults(faults(json!({"errorRate": 1.0, "errorStatus": 401})));
    let before = s.google.calls();
    let reply = s.sidecar.messages("claude-sonnet").await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["error"]["type"], "authentication_error");
    assert_eq!(s.google.calls(), before + 2);
    assert_eq!(s.backup.calls(), 0);
}

#[tokio::test]
async fn retry_info_sets_the_cooldown_and_a_daily_quota_the_longest() {
    let s = setup_with(3600, "rateLimit: {defaultCooldown: 5s, maxCooldown: 2m}").await;
    s.google.set_faults(faults(
        json!({"errorRate": 1.0, "errorStatus": 429, "retryAfter": 40}),
    ));
    let reply = s.sidecar.chat("gpt-4o").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("x-switchyard-provider"), "openai");
    let gemini = |breakers: &Value| {
        breakers
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["provider"] == "gemini")
            .cloned()
            .unwrap()
    };
    let breakers = s.sidecar.breakers().await;
    let cooldown = gemini(&breakers)["cooldown_ms"].as_u64().unwrap();
    assert!((39_000..=40_000).contains(&cooldown), "{cooldown}");
    assert_eq!(
        gemini(&breakers)["calls"],
        0,
        "a 429 is not a breaker failure"
    );

    let daily = json!({"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED", "details": [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3s"}]}});
    s.google.set_faults(faults(
        json!({"errorRate": 1.0, "errorStatus": 429, "errorBody": daily.to_string()}),
    ));
    let reply = s.sidecar.messages("claude-sonnet").await;
    assert_eq!(reply.header("x-switchyard-provider"), "claude");
    let breakers = s.sidecar.breakers().await;
    let vertex = breakers
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["provider"] == "vertex")
        .unwrap();
    assert!(
        vertex["cooldown_ms"].as_u64().unwrap() > 110_000,
        "{vertex}"
    );
}

#[tokio::test]
async fn each_failure_signal_fails_over_and_client_errors_come_back() {
    let s = setup().await;
    for status in [500, 503, 504] {
        s.google
            .set_faults(faults(json!({"errorRate": 1.0, "errorStatus": status})));
        let reply = s.sidecar.chat("gpt-4o").await;
        assert_eq!(reply.status, 200, "{status}: {}", reply.text());
        assert_eq!(reply.header("x-switchyard-provider"), "openai", "{status}");
        assert_eq!(reply.header("x-switchyard-attempts"), "2", "{status}");
    }
    // A stream that fails in-band before its first content fails over too.
    s.google
        .set_faults(faults(json!({"errorEventAfterChunks": 0})));
    let response = post_stream(&s.sidecar.url("/v1/chat/completions"), &chat(true, false)).await;
    assert_eq!(response.headers()["x-switchyard-provider"], "openai");
    for status in [400u16, 403, 404] {
        s.google
            .set_faults(faults(json!({"errorRate": 1.0, "errorStatus": status})));
        let before = s.backup.calls();
        let reply = s.sidecar.chat("gpt-4o").await;
        assert_eq!(reply.status.as_u16(), status);
        let error = &reply.json()["error"];
        assert!(
            error["message"].as_str().unwrap().contains("injected"),
            "{error}"
        );
        assert!(error["code"].as_str().is_some(), "{error}");
        let reply = s.sidecar.messages("claude-sonnet").await;
        assert_eq!(reply.status.as_u16(), status);
        assert_eq!(reply.json()["type"], "error");
        assert_eq!(s.backup.calls(), before, "{status} does not fail over");
    }
}

#[tokio::test]
async fn neither_key_nor_token_reaches_a_span() {
    let receiver = receiver();
    let s = setup().await;
    let (trace, _, traceparent) = new_trace();
    for (path, body) in [
        ("/v1/chat/completions", chat(false, true)),
        ("/v1/messages", messages(true, false)),
    ] {
        let reply = post(
            &s.sidecar.url(path),
            &body,
            &[("traceparent", &traceparent)],
        )
        .await;
        assert_eq!(reply.status, 200);
    }
    let spans = receiver.received.wait_for(&trace, 4).await;
    assert!(spans.len() >= 4);
    let raw = receiver.received.raw();
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.contains("gcp.vertex_ai") && raw.contains("gcp.gemini"));
    assert!(!raw.contains(PROVIDER_KEY) && !raw.contains("ya29."));
}

#[tokio::test]
async fn neither_key_nor_token_reaches_a_log() {
    let google = MockServer::start("google").await.unwrap();
    let backup = MockServer::start("backup").await.unwrap();
    let metadata = FakeMetadata::start(3600).await;
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), policy(&google, &backup, "")).unwrap();
    let port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    };
    let (proxy, admin) = (port(), port());
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["--log-format", "json", "run", "--policy-file"])
        .arg(file.path())
        .args([
            "--listen",
            &proxy.to_string(),
            "--admin",
            &admin.to_string(),
        ])
        .env(
            "RUST_LOG",
            "trace,h2=info,hyper=info,hyper_util=info,rustls=info",
        )
        .env("SWITCHYARD_TEST_KEY", PROVIDER_KEY)
        .env("GCE_METADATA_HOST", metadata.host())
        .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = |path: &str| format!("http://{proxy}{path}");
    let start = tokio::time::Instant::now();
    while tokio::net::TcpStream::connect(proxy).await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "sidecar did not start"
        );
        tokio::time::sleep(ms(20)).await;
    }
    google.set_faults(faults(json!({"errorRate": 1.0, "errorStatus": 401})));
    for _ in 0..2 {
        post(&url("/v1/chat/completions"), &chat(false, false), &[]).await;
        post(&url("/v1/messages"), &messages(false, false), &[]).await;
    }
    assert!(metadata.fetched() >= 2, "the 401s renewed the token");
    child.start_kill().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    assert!(
        stderr.contains("provider rejected our credentials"),
        "{stderr}"
    );
    assert!(!stderr.contains(PROVIDER_KEY), "the key leaked into a log");
    assert!(!stderr.contains("ya29."), "a token leaked into a log");
}

#[test]
fn the_three_vendor_example_validates() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/examples/three-vendors.yaml"
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["validate", path])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
