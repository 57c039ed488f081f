//! The sidecar's logs as an operator reads them: the human format is one short line per
//! event (message, its fields, the route/provider/status of its spans; no OpenTelemetry
//! attributes), JSON keeps every span field, and a warning that repeats with the traffic
//! (a target's 401, a missing key file) is printed once, not per request.

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Runs the binary against a mock that answers every call 401, sends `calls` chat calls,
/// and returns what it wrote to stderr.
async fn stderr_after_401s(format: &str, calls: usize) -> String {
    let mock = MockServer::start("rejecting").await.unwrap();
    mock.set_faults(faults(json!({"errorRate": 1.0, "errorStatus": 401})));
    let policy = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        policy.path(),
        format!(
            r#"
providers:
  - {{name: rejecting, api: openai, baseUrl: "{}/v1", auth: {{apiKey: {{fromEnv: LOGS_TEST_KEY}}}}}}
  - {{name: keyless, api: openai, baseUrl: "http://127.0.0.1:1/v1", auth: {{apiKey: {{fromFile: /nonexistent/switchyard/key}}}}}}
routes:
  - model: gpt-4o
    targets: [{{provider: rejecting, model: gpt-4o}}, {{provider: keyless, model: gpt-4o}}]
"#,
            mock.url()
        ),
    )
    .unwrap();
    let (proxy, admin) = (loopback(free_port()), loopback(free_port()));
    let mut child = Command::new(BIN)
        .args(["--log-format", format, "run", "--policy-file"])
        .arg(policy.path())
        .args([
            "--listen",
            &proxy.to_string(),
            "--admin",
            &admin.to_string(),
        ])
        .env("LOGS_TEST_KEY", "sk-logs")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let ready = format!("http://{admin}/readyz");
    let start = tokio::time::Instant::now();
    while tokio::net::TcpStream::connect(admin).await.is_err() || get(&ready).await.status != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "sidecar not ready"
        );
        tokio::time::sleep(ms(20)).await;
    }
    let chat = format!("http://{proxy}/v1/chat/completions");
    for _ in 0..calls {
        assert_eq!(
            post(&chat, &chat_body("gpt-4o", false), &[]).await.status,
            401
        );
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
async fn human_lines_are_short_and_repeated_warnings_are_printed_once() {
    let stderr = stderr_after_401s("text", 6).await;
    let rejected: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("provider rejected our credentials"))
        .collect();
    assert_eq!(rejected.len(), 1, "one line for six 401s:\n{stderr}");
    let line = rejected[0];
    for field in ["provider=rejecting", "status=401", "route=gpt-4o"] {
        assert!(line.contains(field), "{field} missing: {line}");
    }
    let keyless = stderr
        .lines()
        .filter(|l| l.contains("no API key found"))
        .count();
    assert_eq!(keyless, 1, "{stderr}");
    for line in stderr.lines() {
        assert!(
            !line.contains("gen_ai") && !line.contains("server.address"),
            "{line}"
        );
        assert!(line.len() < 300, "a long line: {line}");
    }
}

#[tokio::test]
async fn json_lines_keep_the_span_fields() {
    let stderr = stderr_after_401s("json", 2).await;
    let line = stderr
        .lines()
        .find(|l| l.contains("provider rejected our credentials"))
        .unwrap_or_else(|| panic!("no 401 line in:\n{stderr}"));
    let value: serde_json::Value = serde_json::from_str(line).unwrap();
    let spans = value["spans"].to_string();
    assert!(
        spans.contains("gen_ai.operation.name") && spans.contains("server.address"),
        "{line}"
    );
}
