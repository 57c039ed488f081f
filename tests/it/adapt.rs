//! `targets[].request` (DESIGN §3): the system prefix and params reach the target in its
//! own wire for each dialect pair, and only that target: others, and embeddings, get the
//! app's bytes with only the model changed.

use serde_json::{json, Value};

use crate::support::*;

fn policy(openai: &MockServer, anthropic: &MockServer, down: &MockServer) -> String {
    format!(
        r#"
providers:
  - {{name: oa, api: openai, baseUrl: "{o}/v1", auth: {{apiKey: {{fromEnv: SWITCHYARD_TEST_KEY}}}}}}
  - {{name: an, api: anthropic, baseUrl: "{a}", auth: {{apiKey: {{fromEnv: SWITCHYARD_TEST_KEY}}}}}}
  - {{name: down, api: openai, baseUrl: "{d}/v1", auth: {{apiKey: {{fromEnv: SWITCHYARD_TEST_KEY}}}}}}
  - {{name: oar, api: openai, baseUrl: "{o}/v1", wires: [chat, responses], auth: {{apiKey: {{fromEnv: SWITCHYARD_TEST_KEY}}}}}}
routes:
  - model: to-responses
    targets:
      - provider: oar
        model: gpt-4o-mini
        request: {{systemPrefix: P-OR}}
  - model: to-openai
    targets:
      - provider: oa
        model: gpt-4o-mini
        request: {{systemPrefix: P-OA, params: {{temperature: 0.2, top_p: null}}}}
  - model: to-anthropic
    targets:
      - provider: an
        model: claude-haiku-4-5
        request: {{systemPrefix: P-AN, params: {{temperature: 0.3, top_k: 5}}}}
  - model: failing-adapted-first
    targets:
      - provider: down
        model: gpt-4o
        request: {{systemPrefix: P-DOWN, params: {{temperature: 0}}}}
      - {{provider: oa, model: gpt-4o-mini}}
"#,
        o = openai.url(),
        a = anthropic.url(),
        d = down.url(),
    )
}

async fn setup() -> (MockServer, MockServer, MockServer, Sidecar) {
    provider_key_env();
    let openai = MockServer::start("openai").await.unwrap();
    let anthropic = MockServer::start("anthropic").await.unwrap();
    let down = MockServer::start("down").await.unwrap();
    down.set_faults(faults(json!({"errorRate": 1.0, "errorStatus": 503})));
    let sidecar = Sidecar::start(&policy(&openai, &anthropic, &down)).await;
    (openai, anthropic, down, sidecar)
}

/// The last body `mock` received, as JSON.
fn last_body(mock: &MockServer) -> Value {
    let stats = mock.stats();
    let last = stats.recent.last().expect("the mock was called");
    serde_json::from_str(&last.body).unwrap()
}

/// The text of an OpenAI message's content, a string or the first text part.
fn text(content: &Value) -> &str {
    content
        .as_str()
        .or_else(|| content[0]["text"].as_str())
        .unwrap_or_default()
}

fn openai_call(model: &str) -> String {
    json!({
        "model": model,
        "top_p": 0.9,
        "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}],
    })
    .to_string()
}

fn anthropic_call(model: &str) -> String {
    json!({
        "model": model,
        "max_tokens": 64,
        "top_p": 0.9,
        "system": [{"type": "text", "text": "S", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "hi"}],
    })
    .to_string()
}

#[tokio::test]
async fn openai_app_to_openai_target() {
    let (openai, _anthropic, _down, sidecar) = setup().await;
    let reply = post(
        &sidecar.url("/v1/chat/completions"),
        &openai_call("to-openai"),
        &[],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = last_body(&openai);
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(
        body["messages"][0],
        json!({"role": "system", "content": "P-OA\n\nS"})
    );
    assert_eq!(body["messages"][1]["role"], "user");
    assert_eq!(body["temperature"], 0.2);
    assert!(
        body.get("top_p").is_none(),
        "null removes the field: {body}"
    );
}

#[tokio::test]
async fn responses_app_prefix_goes_before_the_instructions_natively_and_into_chat_crossed() {
    let (openai, _anthropic, _down, sidecar) = setup().await;
    let call = |model: &str| {
        json!({"model": model, "instructions": "I", "input": "hi", "top_p": 0.9}).to_string()
    };
    let reply = post(&sidecar.url("/v1/responses"), &call("to-responses"), &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let last = openai.stats().recent.last().cloned().unwrap();
    assert_eq!(
        last.path, "/v1/responses",
        "native: the Responses API itself"
    );
    let body: Value = serde_json::from_str(&last.body).unwrap();
    assert_eq!(body["instructions"], "P-OR\n\nI");
    assert_eq!(body["input"], "hi");

    // To a Chat-only target the call is translated first: the prefix joins the system
    // message the instructions became.
    let reply = post(&sidecar.url("/v1/responses"), &call("to-openai"), &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let last = openai.stats().recent.last().cloned().unwrap();
    assert_eq!(last.path, "/v1/chat/completions");
    let body: Value = serde_json::from_str(&last.body).unwrap();
    let system = &body["messages"][0];
    assert!(
        matches!(system["role"].as_str(), Some("system" | "developer")),
        "{body}"
    );
    assert_eq!(text(&system["content"]), "P-OA\n\nI", "{body}");
}

#[tokio::test]
async fn openai_app_to_anthropic_target() {
    let (_openai, anthropic, _down, sidecar) = setup().await;
    let reply = post(
        &sidecar.url("/v1/chat/completions"),
        &openai_call("to-anthropic"),
        &[],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = last_body(&anthropic);
    assert_eq!(body["model"], "claude-haiku-4-5");
    assert_eq!(body["system"][0], json!({"type": "text", "text": "P-AN"}));
    assert_eq!(body["system"][1]["text"], "S");
    assert_eq!(body["system"].as_array().unwrap().len(), 2);
    assert_eq!(
        (body["temperature"].clone(), body["top_k"].clone()),
        (json!(0.3), json!(5))
    );
    assert_eq!(body["messages"][0]["role"], "user");
}

#[tokio::test]
async fn anthropic_app_to_anthropic_target_keeps_cache_control() {
    let (_openai, anthropic, _down, sidecar) = setup().await;
    let reply = post(
        &sidecar.url("/v1/messages"),
        &anthropic_call("to-anthropic"),
        &[],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = last_body(&anthropic);
    assert_eq!(
        body["system"],
        json!([
            {"type": "text", "text": "P-AN"},
            {"type": "text", "text": "S", "cache_control": {"type": "ephemeral"}},
        ])
    );
    assert_eq!(body["top_k"], 5);
    assert_eq!(body["top_p"], 0.9, "params not named are the app's");
}

#[tokio::test]
async fn anthropic_app_to_openai_target() {
    let (openai, _anthropic, _down, sidecar) = setup().await;
    let reply = post(
        &sidecar.url("/v1/messages"),
        &anthropic_call("to-openai"),
        &[],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = last_body(&openai);
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(text(&body["messages"][0]["content"]), "P-OA\n\nS");
    assert_eq!(body["temperature"], 0.2);
    assert!(body.get("top_p").is_none(), "{body}");
}

#[tokio::test]
async fn other_targets_and_embeddings_get_the_apps_bytes() {
    let (openai, _anthropic, down, sidecar) = setup().await;
    // Unusual spacing and key order: a re-serialisation would show.
    let app = r#"{ "messages":[{"role":"user","content":"hi"}],  "model" : "failing-adapted-first", "top_p":0.9 }"#;
    let reply = post(&sidecar.url("/v1/chat/completions"), app, &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("x-switchyard-attempts"), "2");
    let adapted = last_body(&down);
    assert_eq!(text(&adapted["messages"][0]["content"]), "P-DOWN");
    let unchanged = openai.stats().recent.last().unwrap().body.clone();
    assert_eq!(
        unchanged,
        app.replace("\"failing-adapted-first\"", "\"gpt-4o-mini\"")
    );

    let embed = r#"{"input": "hi",  "model": "to-openai"}"#;
    let reply = post(&sidecar.url("/v1/embeddings"), embed, &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let sent = openai.stats().recent.last().unwrap().body.clone();
    assert_eq!(sent, r#"{"input": "hi",  "model": "gpt-4o-mini"}"#);
}

#[test]
fn validate_refuses_params_that_touch_the_call_itself() {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        file.path(),
        r#"
providers: [{name: a, api: openai, baseUrl: "http://127.0.0.1:1/v1", auth: {passthrough: true}}]
routes:
  - model: "*"
    targets:
      - {provider: a, request: {params: {model: x, stream: false, messages: [], temperature: 0}}}
      - {provider: a, request: {systemPrefix: ok, params: {system: x, input: y}, extra: 1}}
"#,
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("validate")
        .arg(file.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    for path in [
        "routes[0].targets[0].request.params.model",
        "routes[0].targets[0].request.params.stream",
        "routes[0].targets[0].request.params.messages",
        "routes[0].targets[1].request.params.system",
        "routes[0].targets[1].request.params.input",
        "routes[0].targets[1].request.extra",
    ] {
        assert!(text.contains(path), "missing {path} in:\n{text}");
    }
    assert!(!text.contains("temperature"), "{text}");
}
