//! Amazon Bedrock targets through the sidecar: OpenAI and Anthropic apps answered by
//! Converse / ConverseStream (SigV4-checked by the mock), failover on each Bedrock
//! failure signal, in-stream exceptions, credentials from IRSA and Pod Identity fakes
//! refreshed across an expiry, and no secret ever shown.

use std::time::Duration;

use serde_json::{json, Value};
use switchyard::aws::Env;

use crate::support::fake_aws::{FakeAws, TEMP_KEY_ID, TEMP_SECRET};
use crate::support::{
    faults, post, post_stream, provider_key_env, stream_events, MockServer, Sidecar,
};

const KEY_ID: &str = "AKIDSWITCHYARDTEST";
const SECRET: &str = "wJalrXUtnFEMI-test-secret-never-shown";
/// An inference-profile ARN: `:` and `/` in the model id.
const MODEL: &str =
    "arn:aws:bedrock:eu-west-3:123456789012:inference-profile/eu.anthropic.claude-sonnet-4-5-v1:0";

fn static_env(secret: &str) -> Env {
    Env::from_pairs([
        ("AWS_ACCESS_KEY_ID", KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", secret),
        // Never the signing region: the provider's region is.
        ("AWS_REGION", "us-west-2"),
    ])
}

fn policy(bedrock: &MockServer, backup: &MockServer) -> String {
    format!(
        r#"
providers:
  - name: bedrock
    api: bedrock
    region: eu-west-3
    baseUrl: {b}
    auth: {{aws: {{}}}}
    timeouts: {{connect: 1s}}
  - name: backup
    api: openai
    baseUrl: {o}/v1
    auth: {{apiKey: {{fromEnv: SWITCHYARD_TEST_KEY}}}}
routes:
  - model: claude
    targets:
      - provider: bedrock
        model: "{MODEL}"
      - provider: backup
        model: gpt-4o-mini
"#,
        b = bedrock.url(),
        o = backup.url(),
    )
}

/// A Bedrock mock keyed to [`KEY_ID`] / `mock_secret`, a backup, and a sidecar whose
/// environment holds `env`.
async fn setup(mock_secret: &str, env: Env) -> (MockServer, MockServer, Sidecar) {
    provider_key_env();
    let bedrock = MockServer::start("bedrock").await.unwrap();
    bedrock.set_faults(faults(
        json!({"sigv4Key": format!("{KEY_ID}:{mock_secret}")}),
    ));
    let backup = MockServer::start("backup").await.unwrap();
    let sidecar =
        Sidecar::start_configured(&policy(&bedrock, &backup), |args| args.aws_env = env).await;
    (bedrock, backup, sidecar)
}

async fn signed() -> (MockServer, MockServer, Sidecar) {
    setup(SECRET, static_env(SECRET)).await
}

fn chat(stream: bool, tools: bool) -> String {
    let mut body = json!({
        "model": "claude",
        "stream": stream,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}],
    });
    if stream {
        body["stream_options"] = json!({"include_usage": true});
    }
    if tools {
        body["tools"] = json!([{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]);
    }
    body.to_string()
}

fn messages(stream: bool, tools: bool) -> String {
    let mut body = json!({
        "model": "claude",
        "stream": stream,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hello"}],
    });
    if tools {
        body["tools"] = json!([{"name": "weather", "input_schema": {"type": "object"}}]);
    }
    body.to_string()
}

/// The text of an OpenAI chunk stream.
fn chat_text(events: &[String]) -> String {
    events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|v| {
            v.pointer("/choices/0/delta/content")?
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

#[tokio::test]
async fn openai_app_answered_by_converse_signed_for_the_provider_region() {
    let (bedrock, backup, sidecar) = signed().await;
    let reply = post(
        &sidecar.url("/v1/chat/completions"),
        &chat(false, false),
        &[],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("x-switchyard-provider"), "bedrock");
    let body = reply.json();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from mock bedrock"
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert!(body["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    assert_eq!(backup.calls(), 0);
    let seen = &bedrock.stats().recent[0];
    assert_eq!(
        seen.path,
        format!(
            "/model/{}/converse",
            MODEL.replace(':', "%3A").replace('/', "%2F")
        )
    );
    assert_eq!(seen.model.as_deref(), Some(MODEL));
    let authorization = &seen.headers["authorization"];
    assert!(
        authorization.contains("/eu-west-3/bedrock/aws4_request"),
        "{authorization}"
    );
    let sent: Value = serde_json::from_str(&seen.body).unwrap();
    assert_eq!(sent["system"], json!([{"text": "Be brief."}]));
    assert!(sent.get("model").is_none(), "the model is in the path");
}

#[tokio::test]
async fn openai_app_streams_from_converse_stream() {
    let (bedrock, _backup, sidecar) = signed().await;
    let response = post_stream(&sidecar.url("/v1/chat/completions"), &chat(true, false)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events = stream_events(response).await;
    assert_eq!(chat_text(&events), "Hello from mock bedrock");
    assert!(
        events.iter().any(|e| e.contains("\"completion_tokens\"")),
        "{events:?}"
    );
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    assert!(bedrock.stats().recent[0].path.ends_with("/converse-stream"));
}

#[tokio::test]
async fn anthropic_app_answered_and_streamed_by_converse() {
    let (_bedrock, _backup, sidecar) = signed().await;
    let reply = post(&sidecar.url("/v1/messages"), &messages(false, false), &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["type"], "message");
    assert_eq!(body["content"][0]["text"], "Hello from mock bedrock");
    assert_eq!(body["stop_reason"], "end_turn");
    let events =
        stream_events(post_stream(&sidecar.url("/v1/messages"), &messages(true, false)).await)
            .await;
    let names: Vec<&str> = events.iter().filter_map(|e| e.split(':').next()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    let text: String = events
        .iter()
        .filter_map(|e| e.strip_prefix("content_block_delta: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| v.pointer("/delta/text")?.as_str().map(str::to_owned))
        .collect();
    assert_eq!(text, "Hello from mock bedrock");
}

#[tokio::test]
async fn tool_calls_cross_both_ways() {
    let (bedrock, _backup, sidecar) = signed().await;
    let reply = post(
        &sidecar.url("/v1/chat/completions"),
        &chat(false, true),
        &[],
    )
    .await;
    let call = &reply.json()["choices"][0];
    assert_eq!(call["finish_reason"], "tool_calls", "{}", reply.text());
    assert_eq!(
        call["message"]["tool_calls"][0]["function"]["name"],
        "weather"
    );
    assert_eq!(
        call["message"]["tool_calls"][0]["function"]["arguments"],
        "{\"mock\":\"bedrock\"}"
    );
    let sent: Value = serde_json::from_str(&bedrock.stats().recent[0].body).unwrap();
    assert_eq!(
        sent["toolConfig"]["tools"][0]["toolSpec"]["name"],
        "weather"
    );
    let events =
        stream_events(post_stream(&sidecar.url("/v1/messages"), &messages(true, true)).await).await;
    let start = events
        .iter()
        .find_map(|e| e.strip_prefix("content_block_start: "))
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(start).unwrap()["content_block"]["name"],
        "weather"
    );
    assert!(
        events
            .iter()
            .any(|e| e.contains("\"stop_reason\":\"tool_use\"")),
        "{events:?}"
    );
    // The agent loop's next turn: the tool result goes back as a toolResult, with the
    // toolConfig Converse requires, and the answer is text.
    let next = json!({
        "model": "claude",
        "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "tooluse_1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "tooluse_1", "content": "sunny"},
        ],
    });
    let reply = post(&sidecar.url("/v1/chat/completions"), &next.to_string(), &[]).await;
    assert_eq!(
        reply.json()["choices"][0]["message"]["content"],
        "Hello from mock bedrock"
    );
    let sent: Value = serde_json::from_str(&bedrock.stats().recent.last().unwrap().body).unwrap();
    assert_eq!(
        sent["toolConfig"]["tools"][0]["toolSpec"]["name"],
        "weather"
    );
    assert_eq!(
        sent["messages"][1]["content"],
        json!([{"toolUse": {"toolUseId": "tooluse_1", "name": "weather", "input": {}}}])
    );
}

#[tokio::test]
async fn each_failure_signal_fails_over_by_its_name() {
    for (status, name, cools) in [
        (429, "ThrottlingException", true),
        (429, "ModelNotReadyException", true),
        (400, "ServiceQuotaExceededException", true),
        (503, "ServiceUnavailableException", false),
        (500, "InternalServerException", false),
        (408, "ModelTimeoutException", false),
        (424, "ModelErrorException", false),
    ] {
        let (bedrock, backup, sidecar) = signed().await;
        bedrock.set_faults(faults(json!({
            "sigv4Key": format!("{KEY_ID}:{SECRET}"),
            "errorRate": 1.0, "errorStatus": status,
            "errorHeaders": {"x-amzn-ErrorType": format!("{name}:http://internal.amazon.com/coral/com.amazon.bedrock/")},
        })));
        let reply = post(
            &sidecar.url("/v1/chat/completions"),
            &chat(false, false),
            &[],
        )
        .await;
        assert_eq!(reply.status, 200, "{name}: {}", reply.text());
        assert_eq!(reply.header("x-switchyard-provider"), "backup", "{name}");
        assert_eq!(backup.calls(), 1, "{name}");
        let breakers = sidecar.breakers().await;
        let bedrock_state = breakers
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["provider"] == "bedrock")
            .unwrap()
            .clone();
        assert_eq!(
            bedrock_state["cooldown_ms"].as_u64().is_some(),
            cools,
            "{name}: {bedrock_state}"
        );
    }
}

#[tokio::test]
async fn client_errors_go_back_in_the_app_dialect() {
    let (bedrock, backup, sidecar) = signed().await;
    bedrock.set_faults(faults(json!({
        "sigv4Key": format!("{KEY_ID}:{SECRET}"),
        "errorRate": 1.0, "errorStatus": 400,
        "errorBody": r#"{"message":"The provided model identifier is invalid."}"#,
    })));
    let reply = post(
        &sidecar.url("/v1/chat/completions"),
        &chat(false, false),
        &[],
    )
    .await;
    assert_eq!(reply.status, 400);
    let error = &reply.json()["error"];
    assert_eq!(error["type"], "invalid_request_error");
    assert_eq!(
        error["message"],
        "ValidationException: The provided model identifier is invalid."
    );
    bedrock.set_faults(faults(json!({
        "sigv4Key": format!("{KEY_ID}:{SECRET}"), "errorRate": 1.0, "errorStatus": 403,
    })));
    let reply = post(&sidecar.url("/v1/messages"), &messages(false, false), &[]).await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.json()["type"], "error");
    assert_eq!(reply.json()["error"]["type"], "permission_error");
    assert_eq!(backup.calls(), 0, "client errors do not fail over");
}

#[tokio::test]
async fn an_exception_frame_before_content_fails_over_invisibly() {
    for (status, throttled) in [(503, false), (429, true)] {
        let (bedrock, _backup, sidecar) = signed().await;
        bedrock.set_faults(faults(json!({
            "sigv4Key": format!("{KEY_ID}:{SECRET}"),
            "errorEventAfterChunks": 0, "errorStatus": status,
        })));
        let response = post_stream(&sidecar.url("/v1/chat/completions"), &chat(true, false)).await;
        assert_eq!(response.headers()["x-switchyard-provider"], "backup");
        let events = stream_events(response).await;
        assert_eq!(chat_text(&events), "Hello from mock backup");
        assert!(
            !events.iter().any(|e| e.contains("Exception")),
            "{events:?}"
        );
        let breakers = sidecar.breakers().await;
        let state = breakers
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["provider"] == "bedrock")
            .unwrap()
            .clone();
        assert_eq!(
            state["cooldown_ms"].as_u64().is_some(),
            throttled,
            "{state}"
        );
    }
}

#[tokio::test]
async fn an_exception_frame_after_content_ends_the_stream_failed() {
    let (bedrock, _backup, sidecar) = signed().await;
    bedrock.set_faults(faults(json!({
        "sigv4Key": format!("{KEY_ID}:{SECRET}"), "errorEventAfterChunks": 2,
    })));
    let events =
        stream_events(post_stream(&sidecar.url("/v1/chat/completions"), &chat(true, false)).await)
            .await;
    assert!(
        events.iter().any(|e| e.contains("\"content\":\"")),
        "{events:?}"
    );
    let last = events.last().unwrap();
    assert!(last.contains("\"error\""), "{events:?}");
    assert!(!events.iter().any(|e| e == "[DONE]"), "{events:?}");
}

#[tokio::test]
async fn a_wrong_signature_is_a_client_error_that_shows_no_secret() {
    let wrong = "the-wrong-secret-of-the-sidecar";
    let (bedrock, backup, sidecar) = setup(SECRET, static_env(wrong)).await;
    let reply = post(
        &sidecar.url("/v1/chat/completions"),
        &chat(false, false),
        &[],
    )
    .await;
    assert_eq!(reply.status, 403, "{}", reply.text());
    assert!(
        reply.text().contains("InvalidSignatureException"),
        "{}",
        reply.text()
    );
    assert_eq!(backup.calls(), 0);
    let seen = &bedrock.stats().recent[0];
    let shown = [
        reply.text(),
        format!("{:?}", reply.headers),
        serde_json::to_string(&seen.headers).unwrap(),
        crate::support::get(&sidecar.admin("/policy")).await.text(),
        sidecar.breakers().await.to_string(),
        sidecar.metrics().await,
    ];
    for text in shown {
        assert!(!text.contains(wrong) && !text.contains(SECRET), "{text}");
    }
}

#[tokio::test]
async fn without_credentials_the_target_is_skipped_as_config() {
    let (bedrock, backup, sidecar) = setup(SECRET, Env::default()).await;
    let reply = post(
        &sidecar.url("/v1/chat/completions"),
        &chat(false, false),
        &[],
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-switchyard-provider"), "backup");
    assert_eq!(reply.header("x-switchyard-attempts"), "1");
    assert_eq!((bedrock.calls(), backup.calls()), (0, 1));
}

/// The session token the last call to the Bedrock mock carried.
fn last_token(bedrock: &MockServer) -> String {
    bedrock.stats().recent.last().unwrap().headers["x-amz-security-token"].clone()
}

#[tokio::test]
async fn irsa_credentials_come_from_sts_and_are_refreshed_across_expiry() {
    let sts = FakeAws::start(Duration::from_secs(3)).await;
    let token_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token_file.path(), "eyJ-service-account-token\n").unwrap();
    let path = token_file.path().to_str().unwrap().to_owned();
    let sts_url = sts.url();
    let env = Env::from_pairs([
        ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/switchyard"),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", path.as_str()),
        ("AWS_ROLE_SESSION_NAME", "pod-a"),
        ("AWS_REGION", "us-west-2"),
        ("AWS_ENDPOINT_URL_STS", sts_url.as_str()),
    ]);
    provider_key_env();
    let bedrock = MockServer::start("bedrock").await.unwrap();
    bedrock.set_faults(faults(
        json!({"sigv4Key": format!("{TEMP_KEY_ID}:{TEMP_SECRET}")}),
    ));
    let backup = MockServer::start("backup").await.unwrap();
    let sidecar =
        Sidecar::start_configured(&policy(&bedrock, &backup), |args| args.aws_env = env).await;
    let reply = post(
        &sidecar.url("/v1/chat/completions"),
        &chat(false, false),
        &[],
    )
    .await;
    assert_eq!(
        reply.header("x-switchyard-provider"),
        "bedrock",
        "{}",
        reply.text()
    );
    assert_eq!(last_token(&bedrock), "token-1");
    let first = &sts.seen()[0];
    assert_eq!(first.method, "POST");
    for part in [
        "Action=AssumeRoleWithWebIdentity",
        "RoleSessionName=pod-a",
        "WebIdentityToken=eyJ-service-account-token",
        "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fswitchyard",
    ] {
        assert!(first.body.contains(part), "{part} in {}", first.body);
    }
    // Refreshed ahead of the expiry, off the request path.
    sts.wait_for(2, Duration::from_secs(10)).await;
    let reply = post(
        &sidecar.url("/v1/chat/completions"),
        &chat(false, false),
        &[],
    )
    .await;
    assert_eq!(reply.header("x-switchyard-provider"), "bedrock");
    assert_eq!(last_token(&bedrock), "token-2");
}

#[tokio::test]
async fn pod_identity_reads_its_token_file_at_every_fetch() {
    let agent = FakeAws::start(Duration::from_secs(2)).await;
    let token_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token_file.path(), "first-agent-token\n").unwrap();
    let path = token_file.path().to_str().unwrap().to_owned();
    let uri = format!("{}/v1/credentials", agent.url());
    let env = Env::from_pairs([
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri.as_str()),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", path.as_str()),
    ]);
    provider_key_env();
    let bedrock = MockServer::start("bedrock").await.unwrap();
    bedrock.set_faults(faults(
        json!({"sigv4Key": format!("{TEMP_KEY_ID}:{TEMP_SECRET}")}),
    ));
    let backup = MockServer::start("backup").await.unwrap();
    let sidecar =
        Sidecar::start_configured(&policy(&bedrock, &backup), |args| args.aws_env = env).await;
    let reply = post(&sidecar.url("/v1/messages"), &messages(false, false), &[]).await;
    assert_eq!(
        reply.header("x-switchyard-provider"),
        "bedrock",
        "{}",
        reply.text()
    );
    assert_eq!(last_token(&bedrock), "token-1");
    std::fs::write(token_file.path(), "rotated-agent-token\n").unwrap();
    agent.wait_for(2, Duration::from_secs(10)).await;
    let seen = agent.seen();
    assert_eq!(seen[0].path, "/v1/credentials");
    assert_eq!(seen[0].authorization.as_deref(), Some("first-agent-token"));
    assert_eq!(
        seen[1].authorization.as_deref(),
        Some("rotated-agent-token")
    );
    let reply = post(&sidecar.url("/v1/messages"), &messages(false, false), &[]).await;
    assert_eq!(reply.header("x-switchyard-provider"), "bedrock");
    assert_eq!(last_token(&bedrock), "token-2");
}

#[tokio::test]
async fn responses_app_answered_and_streamed_by_converse() {
    let (_bedrock, _backup, sidecar) = signed().await;
    let call =
        |stream: bool| json!({"model": "claude", "input": "hello", "stream": stream}).to_string();
    let reply = post(&sidecar.url("/v1/responses"), &call(false), &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["status"], "completed");
    assert_eq!(
        body["output"][0]["content"][0]["text"],
        "Hello from mock bedrock"
    );
    let events = stream_events(post_stream(&sidecar.url("/v1/responses"), &call(true)).await).await;
    let text: String = events
        .iter()
        .filter_map(|e| {
            serde_json::from_str::<Value>(e.split_once(": ").map_or(e, |(_, d)| d)).ok()
        })
        .filter(|v| v["type"] == "response.output_text.delta")
        .filter_map(|v| v["delta"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(text, "Hello from mock bedrock");
    assert!(
        events.last().unwrap().contains("response.completed"),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_system_prefix_becomes_the_first_converse_system_block() {
    provider_key_env();
    let bedrock = MockServer::start("bedrock").await.unwrap();
    let backup = MockServer::start("backup").await.unwrap();
    let text = policy(&bedrock, &backup).replace(
        &format!("        model: \"{MODEL}\"\n"),
        &format!(
            "        model: \"{MODEL}\"\n        request: {{systemPrefix: Answer in JSON.}}\n"
        ),
    );
    let sidecar = Sidecar::start_configured(&text, |args| args.aws_env = static_env(SECRET)).await;
    let reply = post(
        &sidecar.url("/v1/chat/completions"),
        &chat(false, false),
        &[],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let sent: Value = serde_json::from_str(&bedrock.stats().recent[0].body).unwrap();
    assert_eq!(
        sent["system"],
        json!([{"text": "Answer in JSON."}, {"text": "Be brief."}])
    );
}

#[tokio::test]
async fn a_bedrock_api_key_goes_as_a_bearer_token_unsigned() {
    provider_key_env();
    let bedrock = MockServer::start("bedrock").await.unwrap();
    bedrock.set_faults(faults(json!({"sigv4Key": format!("{KEY_ID}:{SECRET}")})));
    let backup = MockServer::start("backup").await.unwrap();
    let text = policy(&bedrock, &backup).replace(
        "auth: {aws: {}}",
        "auth: {apiKey: {fromEnv: SWITCHYARD_TEST_KEY}}",
    );
    let sidecar = Sidecar::start(&text).await;
    let reply = post(&sidecar.url("/v1/messages"), &messages(false, false), &[]).await;
    assert_eq!(
        reply.header("x-switchyard-provider"),
        "bedrock",
        "{}",
        reply.text()
    );
    let headers = &bedrock.stats().recent[0].headers;
    assert_eq!(
        headers["authorization"],
        format!("Bearer {}", crate::support::PROVIDER_KEY)
    );
    assert!(!headers.contains_key("x-amz-date"), "not signed");
}

/// Runs the binary with `policy` and `env`, sends `calls` chat calls (each answered
/// `status`), and returns what it wrote to stderr.
async fn stderr_of_run(policy: &str, env: &[(&str, &str)], calls: usize, status: u16) -> String {
    use tokio::io::AsyncReadExt;
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), policy).unwrap();
    let port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    };
    let (proxy, admin) = (port(), port());
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["run", "--policy-file"])
        .arg(file.path())
        .args([
            "--listen",
            &proxy.to_string(),
            "--admin",
            &admin.to_string(),
        ])
        .env_clear()
        .envs(env.iter().copied())
        .env("SWITCHYARD_TEST_KEY", crate::support::PROVIDER_KEY)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let ready = format!("http://{admin}/readyz");
    let start = tokio::time::Instant::now();
    while tokio::net::TcpStream::connect(admin).await.is_err()
        || crate::support::get(&ready).await.status != 200
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "sidecar not ready"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..calls {
        let url = format!("http://{proxy}/v1/chat/completions");
        assert_eq!(post(&url, &chat(false, false), &[]).await.status, status);
    }
    child.kill().await.unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    stderr
}

#[tokio::test]
async fn credential_failures_are_logged_once_and_never_show_a_secret() {
    let bedrock = MockServer::start("bedrock").await.unwrap();
    let backup = MockServer::start("backup").await.unwrap();
    let token_file = tempfile::NamedTempFile::new().unwrap();
    let identity_token = "eyJhbGciOiJSUzI1NiJ9.secret-identity-token";
    std::fs::write(token_file.path(), identity_token).unwrap();
    let path = token_file.path().to_str().unwrap().to_owned();
    // STS unreachable: no credentials, the Bedrock target skipped, the backup answers.
    let stderr = stderr_of_run(
        &policy(&bedrock, &backup),
        &[
            ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/switchyard"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", &path),
            ("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1"),
        ],
        6,
        200,
    )
    .await;
    let count = |text: &str| stderr.lines().filter(|l| l.contains(text)).count();
    assert_eq!(count("AWS credentials could not be fetched"), 1, "{stderr}");
    assert_eq!(
        count("this Bedrock target is skipped (reason config)"),
        1,
        "{stderr}"
    );
    assert!(!stderr.contains(identity_token), "{stderr}");
    assert_eq!((bedrock.calls(), backup.calls()), (0, 6));
    // A wrong secret: Bedrock's 403 goes back, logged once, the secret nowhere.
    bedrock.set_faults(faults(json!({"sigv4Key": format!("{KEY_ID}:{SECRET}")})));
    let wrong = "wrong-secret-of-this-sidecar";
    let stderr = stderr_of_run(
        &policy(&bedrock, &backup),
        &[
            ("AWS_ACCESS_KEY_ID", KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", wrong),
        ],
        3,
        403,
    )
    .await;
    let rejected = stderr
        .lines()
        .filter(|l| l.contains("provider rejected our credentials"))
        .count();
    assert_eq!(rejected, 1, "{stderr}");
    assert!(
        !stderr.contains(wrong) && !stderr.contains(SECRET),
        "{stderr}"
    );
}
