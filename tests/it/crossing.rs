//! Cross-vendor chains: an OpenAI call answered by an Anthropic target and the reverse,
//! streamed and not, with tool calls.

use serde_json::json;

use crate::support::*;

fn cross_policy(primary: &MockServer, secondary: &MockServer) -> String {
    format!(
        r#"
providers:
  - {{name: openai, api: openai, baseUrl: "{p}/v1", auth: {{apiKey: {{fromEnv: SWITCHYARD_TEST_KEY}}}}}}
  - {{name: claude, api: anthropic, baseUrl: "{s}", auth: {{apiKey: {{fromEnv: SWITCHYARD_TEST_KEY}}}}}}
  - {{name: claude-first, api: anthropic, baseUrl: "{p}", auth: {{apiKey: {{fromEnv: SWITCHYARD_TEST_KEY}}}}}}
  - {{name: openai-backup, api: openai, baseUrl: "{s}/v1", auth: {{apiKey: {{fromEnv: SWITCHYARD_TEST_KEY}}}}}}
routes:
  - model: gpt-4o
    maxTokens: 321
    targets:
      - {{provider: openai, model: gpt-4o}}
      - {{provider: claude, model: claude-haiku-4-5}}
  - model: claude-chat
    targets:
      - {{provider: claude-first, model: claude-sonnet-4-5}}
      - {{provider: openai-backup, model: gpt-4o-mini}}
"#,
        p = primary.url(),
        s = secondary.url()
    )
}

async fn setup() -> (MockServer, MockServer, Sidecar) {
    provider_key_env();
    let primary = MockServer::start("primary").await.unwrap();
    let secondary = MockServer::start("secondary").await.unwrap();
    let sidecar = Sidecar::start(&cross_policy(&primary, &secondary)).await;
    primary.set_faults(faults(json!({"errorRate": 1.0, "errorStatus": 503})));
    (primary, secondary, sidecar)
}

fn tool_chat(stream: bool) -> String {
    json!({
        "model": "gpt-4o",
        "stream": stream,
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "weather?"}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
    })
    .to_string()
}

#[tokio::test]
async fn an_openai_call_is_answered_by_an_anthropic_target() {
    let (_primary, secondary, sidecar) = setup().await;
    let reply = post(&sidecar.url("/v1/chat/completions"), &tool_chat(false), &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("x-switchyard-provider"), "claude");
    let body = reply.json();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    let call = &body["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    let args: serde_json::Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args["mock"], "secondary");
    assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    let sent = &secondary.stats().recent[0];
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.headers["x-api-key"], "sk-test-provider-key");
    assert!(!sent.headers.contains_key("authorization"));
}

#[tokio::test]
async fn an_openai_stream_is_answered_by_an_anthropic_target() {
    let (_primary, _secondary, sidecar) = setup().await;
    let response = post_stream(&sidecar.url("/v1/chat/completions"), &tool_chat(true)).await;
    assert_eq!(response.status(), 200);
    let events = stream_events(response).await;
    assert_eq!(events.last().unwrap(), "[DONE]", "{events:?}");
    let chunks: Vec<serde_json::Value> = events
        .iter()
        .filter_map(|e| serde_json::from_str(e).ok())
        .collect();
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    let arguments: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    let args: serde_json::Value =
        serde_json::from_str(&arguments).expect("reassembled tool arguments");
    assert_eq!(args["mock"], "secondary");
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "tool_calls"));
}

#[tokio::test]
async fn an_anthropic_call_is_answered_by_an_openai_target() {
    let (_primary, secondary, sidecar) = setup().await;
    let reply = sidecar.messages("claude-chat").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("x-switchyard-provider"), "openai-backup");
    let body = reply.json();
    assert_eq!(body["type"], "message");
    assert_eq!(body["stop_reason"], "end_turn");
    assert!(body["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("secondary"));
    assert_eq!(secondary.stats().recent[0].path, "/v1/chat/completions");

    let response = post_stream(
        &sidecar.url("/v1/messages"),
        &messages_body("claude-chat", true),
    )
    .await;
    let events = stream_events(response).await;
    assert!(
        events.first().unwrap().starts_with("message_start"),
        "{events:?}"
    );
    assert!(
        events.last().unwrap().starts_with("message_stop"),
        "{events:?}"
    );
}

#[tokio::test]
async fn untranslatable_requests_skip_the_other_dialect() {
    let (primary, secondary, sidecar) = setup().await;
    let body = json!({"model": "gpt-4o", "n": 2, "messages": [{"role": "user", "content": "hi"}]})
        .to_string();
    let reply = post(&sidecar.url("/v1/chat/completions"), &body, &[]).await;
    assert_eq!(
        reply.status,
        502,
        "n > 1 cannot go to Anthropic: {}",
        reply.text()
    );
    assert_eq!((primary.calls(), secondary.calls()), (1, 0));
    let embeddings = post(
        &sidecar.url("/v1/embeddings"),
        &json!({"model": "gpt-4o", "input": "x"}).to_string(),
        &[],
    )
    .await;
    assert_eq!(embeddings.status, 502);
    assert_eq!(secondary.calls(), 0, "Anthropic has no embeddings API");
}

#[tokio::test]
async fn an_anthropic_targets_error_reaches_an_openai_app_in_openai_format() {
    let (_primary, secondary, sidecar) = setup().await;
    secondary.set_faults(faults(json!({"errorRate": 1.0, "errorStatus": 400})));
    let reply = sidecar.chat("gpt-4o").await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.json()["error"]["message"].is_string(),
        "{}",
        reply.text()
    );
    assert_eq!(
        secondary.stats().recent[0].model.as_deref(),
        Some("claude-haiku-4-5")
    );
}
