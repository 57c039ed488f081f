//! The inbound API (README, "Point your SDK at it"), the sidecar's own errors in the
//! caller's format, and what is (never) forwarded upstream.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn bad_input_gets_a_clear_error_in_the_callers_format_and_never_reaches_upstream() {
    let (primary, secondary, sidecar) = pair("").await;
    let openai = post(&sidecar.url("/v1/chat/completions"), "{not json", &[]).await;
    assert_eq!(openai.status, 400);
    assert_eq!(openai.header("x-switchyard-error"), "bad_request");
    assert_eq!(openai.json()["error"]["type"], "invalid_request_error");

    let anthropic = post(&sidecar.url("/v1/messages"), r#"{"max_tokens":1}"#, &[]).await;
    assert_eq!(anthropic.status, 400);
    assert_eq!(anthropic.json()["type"], "error");
    assert_eq!(anthropic.json()["error"]["type"], "invalid_request_error");

    let unknown = sidecar.chat("gpt-9").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.header("x-switchyard-error"), "unknown_model");
    assert!(unknown.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("gpt-9"));

    let big = format!(
        r#"{{"model":"gpt-4o","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(2 << 20)
    );
    let too_large = post(&sidecar.url("/v1/chat/completions"), &big, &[]).await;
    assert_eq!(too_large.status, 413);
    assert_eq!(too_large.header("x-switchyard-error"), "body_too_large");

    for path in [
        "/v1/completions",
        "/admin",
        "/http://evil.example/v1/chat/completions",
        "/",
    ] {
        let stray = post(&sidecar.url(path), &chat_body("gpt-4o", false), &[]).await;
        assert_eq!(stray.status, 404, "{path}");
    }
    assert_eq!(primary.calls() + secondary.calls(), 0);
}

/// A known model, so only the Host header could send the call elsewhere.
#[tokio::test]
async fn the_host_header_never_picks_an_upstream() {
    let (primary, secondary, sidecar) = pair("").await;
    let reply = collect(
        send(
            http::Request::post(sidecar.url("/v1/chat/completions"))
                .header("host", "api.openai.com")
                .header("content-type", "application/json")
                .body(http_body_util::Full::new(bytes::Bytes::from(chat_body(
                    "gpt-4o", false,
                ))))
                .unwrap(),
        )
        .await,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.header("x-switchyard-provider"),
        "primary",
        "the route's first target answers, whatever the Host says"
    );
    assert_eq!((primary.calls(), secondary.calls()), (1, 0));
    let sent = &primary.stats().recent[0].headers;
    assert_eq!(
        sent["host"],
        primary.addr().to_string(),
        "the upstream gets its own Host, not the app's"
    );
}

#[tokio::test]
async fn the_apps_credentials_are_dropped_and_the_providers_key_is_sent() {
    let (primary, _secondary, sidecar) = pair("").await;
    let reply = post(
        &sidecar.url("/v1/chat/completions"),
        &chat_body("gpt-4o", false),
        &[
            ("authorization", "Bearer sk-app-secret"),
            ("x-api-key", "app-anthropic-secret"),
            ("cookie", "session=abc"),
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "1"),
            (
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ),
        ],
    )
    .await;
    assert_eq!(reply.status, 200);
    let stats = serde_json::to_value(primary.stats()).unwrap();
    let headers = &stats["recent"][0]["headers"];
    assert_eq!(
        headers["authorization"], "Bearer sk-test-provider-key",
        "{stats}"
    );
    assert!(headers.get("x-api-key").is_none(), "{headers}");
    assert!(headers.get("cookie").is_none());
    assert!(
        headers.get("x-hop").is_none(),
        "headers named by Connection are hop-by-hop"
    );
    // The app's trace goes on: its own parent when tracing is off, the attempt's span when
    // another test of this process has turned the exporter on.
    assert!(
        headers["traceparent"]
            .as_str()
            .unwrap()
            .starts_with("00-0af7651916cd43dd8448eb211c80319c-"),
        "{headers}"
    );
    let admin = format!(
        "{}{}{}",
        get(&sidecar.admin("/policy")).await.text(),
        sidecar.metrics().await,
        get(&sidecar.admin("/breakers")).await.text()
    );
    assert!(!admin.contains("sk-test-provider-key") && !admin.contains("sk-app-secret"));
    assert!(
        admin.contains("SWITCHYARD_TEST_KEY"),
        "secrets are shown by their source"
    );
}

#[tokio::test]
async fn models_lists_the_route_names() {
    let (_p, _s, sidecar) = pair("").await;
    let reply = get(&sidecar.url("/v1/models")).await;
    let ids: Vec<String> = reply.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["gpt-4o", "claude-sonnet"]);
}

#[tokio::test]
async fn embeddings_are_proxied() {
    let (primary, _secondary, sidecar) = pair("").await;
    let reply = post(
        &sidecar.url("/v1/embeddings"),
        &json!({"model": "gpt-4o", "input": "hi"}).to_string(),
        &[],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["object"], "list");
    assert_eq!(primary.stats().recent[0].path, "/v1/embeddings");
}

#[tokio::test]
async fn azure_passthrough_and_file_keys_reach_the_right_provider() {
    let mock = MockServer::start("edge").await.unwrap();
    let key_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(key_file.path(), "azure-key-from-file\n").unwrap();
    let policy = format!(
        r#"
providers:
  - {{name: azure, api: azure-openai, baseUrl: "{u}", apiVersion: "2024-10-21", auth: {{apiKey: {{fromFile: "{k}"}}}}}}
  - {{name: own-key, api: openai, baseUrl: "{u}/v1", auth: {{passthrough: true}}}}
  - {{name: own-key-claude, api: anthropic, baseUrl: "{u}", auth: {{passthrough: true}}}}
routes:
  - {{model: azure-gpt, targets: [{{provider: azure, model: my-deployment}}]}}
  - {{model: mine, targets: [{{provider: own-key}}]}}
  - {{model: cross, targets: [{{provider: own-key-claude, model: claude-x}}]}}
"#,
        u = mock.url(),
        k = key_file.path().display()
    );
    let sidecar = Sidecar::start(&policy).await;
    let auth = [("authorization", "Bearer sk-app-own")];

    let reply = post(
        &sidecar.url("/v1/chat/completions"),
        &chat_body("azure-gpt", false),
        &auth,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let sent = &mock.stats().recent[0];
    assert_eq!(
        sent.path,
        "/openai/deployments/my-deployment/chat/completions"
    );
    assert_eq!(sent.query.as_deref(), Some("api-version=2024-10-21"));
    assert_eq!(sent.headers["api-key"], "azure-key-from-file");
    assert!(!sent.headers.contains_key("authorization"));

    post(
        &sidecar.url("/v1/chat/completions"),
        &chat_body("mine", false),
        &auth,
    )
    .await;
    assert_eq!(
        mock.stats().recent[1].headers["authorization"],
        "Bearer sk-app-own",
        "passthrough to the same kind"
    );

    let reply = post(
        &sidecar.url("/v1/chat/completions"),
        &chat_body("cross", false),
        &auth,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let sent = &mock.stats().recent[2];
    assert_eq!(sent.path, "/v1/messages");
    assert!(
        !sent.headers.contains_key("x-api-key"),
        "an OpenAI key never goes to an Anthropic provider"
    );
    assert!(!sent.headers.contains_key("authorization"));
}

/// A client that stalls mid-body gets a 408 in its own format after
/// `--request-read-timeout`; one that stalls mid-head is disconnected. Neither holds a
/// connection for ever, and nothing reaches an upstream.
#[tokio::test]
async fn a_stalled_client_is_timed_out_on_the_body_and_on_the_head() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let primary = MockServer::start("primary").await.unwrap();
    let secondary = MockServer::start("secondary").await.unwrap();
    let policy = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(policy.path(), two_target_policy(&primary, &secondary, "")).unwrap();
    let mut args = switchyard::app::RunArgs::loopback(Some(policy.path().to_owned()));
    args.request_read_timeout = ms(200);
    let sidecar = Sidecar::start_with(args).await;
    let bound = std::time::Duration::from_secs(10);

    let mut body_staller = tokio::net::TcpStream::connect(sidecar.running.proxy_addr)
        .await
        .unwrap();
    body_staller
        .write_all(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\
              content-type: application/json\r\ncontent-length: 100\r\n\r\n{\"model\":",
        )
        .await
        .unwrap();
    let mut reply = String::new();
    tokio::time::timeout(bound, body_staller.read_to_string(&mut reply))
        .await
        .expect("the sidecar answers a stalled body")
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(
        reply.contains("x-switchyard-error: body_timeout"),
        "{reply}"
    );
    assert!(reply.contains("\"invalid_request_error\""), "{reply}");

    let mut head_staller = tokio::net::TcpStream::connect(sidecar.running.proxy_addr)
        .await
        .unwrap();
    head_staller
        .write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(bound, head_staller.read_to_end(&mut rest))
        .await
        .expect("the sidecar closes a connection whose head stalls")
        .unwrap();
    assert_eq!(primary.calls() + secondary.calls(), 0);
}

/// h2c with prior knowledge and HTTP/1.1 on the same port: the listener tells them apart
/// by peeking at the first bytes, also when the preface arrives in pieces.
#[tokio::test]
async fn the_listener_serves_h2c_and_http1_on_one_port() {
    use http_body_util::{BodyExt, Full};
    use tokio::io::AsyncWriteExt;

    let (primary, _secondary, sidecar) = pair("").await;
    let request = || {
        http::Request::post(sidecar.url("/v1/chat/completions"))
            .header("content-type", "application/json")
            .body(Full::new(bytes::Bytes::from(chat_body("gpt-4o", false))))
            .unwrap()
    };
    let tcp = tokio::net::TcpStream::connect(sidecar.running.proxy_addr)
        .await
        .unwrap();
    let (mut h2, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let reply = h2.send_request(request()).await.unwrap();
    assert_eq!(reply.version(), http::Version::HTTP_2);
    assert_eq!(reply.status(), 200);
    let body = reply.into_body().collect().await.unwrap().to_bytes();
    assert!(serde_json::from_slice::<serde_json::Value>(&body).is_ok());

    // The preface in two writes: the first ten bytes could still be either protocol.
    let mut tcp = tokio::net::TcpStream::connect(sidecar.running.proxy_addr)
        .await
        .unwrap();
    tcp.set_nodelay(true).unwrap();
    tcp.write_all(b"PRI * HTTP").await.unwrap();
    tcp.flush().await.unwrap();
    // No signal says the listener has peeked: the pause makes the split likely, and the
    // assertions below hold whether it came or not.
    tokio::time::sleep(ms(20)).await;
    let (mut split, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(Resumed(tcp)),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    assert_eq!(split.send_request(request()).await.unwrap().status(), 200);

    assert_eq!(sidecar.chat("gpt-4o").await.status, 200, "HTTP/1.1 still");
    assert_eq!(primary.calls(), 3);
}

/// A stream whose first ten bytes of the HTTP/2 preface were already written: the
/// client's preface write skips them.
struct Resumed(tokio::net::TcpStream);

impl tokio::io::AsyncRead for Resumed {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Resumed {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let written = b"PRI * HTTP";
        if buf.starts_with(written) {
            // Claim the already-sent prefix as written by this call, then send the rest.
            return match std::pin::Pin::new(&mut self.0).poll_write(cx, &buf[written.len()..]) {
                std::task::Poll::Ready(Ok(n)) => std::task::Poll::Ready(Ok(n + written.len())),
                other => other,
            };
        }
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
