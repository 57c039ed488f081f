//! The binary's contract: `validate` reports every problem with its path and exits 1;
//! `run` refuses a bad policy with exit 64 before binding any port; `crd` prints the CRD
//! that `deploy/crd.yaml` holds.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

const BAD: &str = r#"
providers:
  - {name: openai, api: openai, baseUrl: "http://127.0.0.1:1/v1", auth: {apiKey: {fromEnv: K}}, colour: blue}
routes:
  - model: gpt-4o
    targets: [{provider: opena}]
circuitBreaker: {failureRate: 1.5, window: soon}
"#;

fn policy_file(text: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), text).unwrap();
    file
}

#[test]
fn validate_reports_every_problem_with_its_path() {
    let file = policy_file(BAD);
    let out = Command::new(BIN)
        .arg("validate")
        .arg(file.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    for expected in [
        "providers[0].colour",
        r#"routes[0].targets[0].provider: no provider named "opena" (did you mean "openai"?)"#,
        "circuitBreaker.failureRate",
        "circuitBreaker.window",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    let good = policy_file("providers: [{name: a, api: openai, baseUrl: 'http://127.0.0.1:1', auth: {passthrough: true}}]\nroutes: [{model: '*', targets: [{provider: a}]}]\n");
    let out = Command::new(BIN)
        .arg("validate")
        .arg(good.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn run_refuses_a_bad_policy_with_exit_64_before_binding() {
    let file = policy_file(BAD);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let out = Command::new(BIN)
        .args([
            "run",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--admin",
            "127.0.0.1:0",
            "--policy-file",
        ])
        .arg(file.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("opena") && stderr.contains("failureRate"),
        "{stderr}"
    );
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
        "nothing was left bound"
    );
}

#[test]
fn crd_matches_the_committed_manifest() {
    let out = Command::new(BIN).arg("crd").output().unwrap();
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/crd.yaml")).unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        committed,
        "regenerate with: switchyard crd > deploy/crd.yaml"
    );
}
