//! The binary's contract: `validate` reports every problem with its path and exits 1;
//! `run` refuses a bad policy with exit 64 before binding any port; every subcommand exits
//! 64 on bad configuration (flags, fault settings, certificates, `OTEL_*`); `crd` prints
//! the CRD that `deploy/crd.yaml` holds.

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

const GOOD: &str = "providers: [{name: a, api: openai, baseUrl: 'http://127.0.0.1:1', auth: {passthrough: true}}]\nroutes: [{model: '*', targets: [{provider: a}]}]\n";

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
    let good = policy_file(GOOD);
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
    // Both ports stay taken for the whole run: a sidecar that bound before checking its
    // policy would meet them and fail as a bind error (exit 1, "cannot listen") instead.
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let admin = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let run = |policy: &std::path::Path| {
        Command::new(BIN)
            .arg("run")
            .arg("--listen")
            .arg(proxy.local_addr().unwrap().to_string())
            .arg("--admin")
            .arg(admin.local_addr().unwrap().to_string())
            .arg("--policy-file")
            .arg(policy)
            .output()
            .unwrap()
    };
    let bad = policy_file(BAD);
    let out = run(bad.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains("opena") && stderr.contains("failureRate"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("cannot listen"),
        "the policy was refused before any port was bound: {stderr}"
    );
    // The taken ports are what binding would have met: a good policy gets that far.
    let good = policy_file(GOOD);
    let out = run(good.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot listen on"), "{stderr}");
}

#[test]
fn every_subcommand_exits_64_on_bad_configuration() {
    let missing = std::env::temp_dir().join("switchyard-no-such-dir");
    let cert = missing.join("cert.pem");
    let key = missing.join("key.pem");
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let webhook = [
        "inject-webhook",
        "--listen",
        "127.0.0.1:0",
        "--sidecar-image",
        "switchyard:test",
        "--tls-cert",
        cert,
        "--tls-key",
        key,
    ];
    let quantity = [&webhook[..], &["--sidecar-cpu-request", "lots"]].concat();
    let cases: [(&str, &[&str]); 9] = [
        ("run: a flag's value", &["run", "--listen", "nowhere"]),
        (
            "run: a policy file that is not there",
            &[
                "run",
                "--listen",
                "127.0.0.1:0",
                "--admin",
                "127.0.0.1:0",
                "--policy-file",
                cert,
            ],
        ),
        (
            "validate: an unknown flag",
            &["validate", "--strict", "policy.yaml"],
        ),
        ("demo: an unknown flag", &["demo", "--fast"]),
        ("crd: an unknown flag", &["crd", "--v2"]),
        (
            "drill: the target",
            &["drill", "no-slash", "--admin", "127.0.0.1:9"],
        ),
        (
            "mock: a fault",
            &["mock", "--listen", "127.0.0.1:0", "--error-rate", "2"],
        ),
        ("inject-webhook: a quantity", &quantity),
        ("inject-webhook: the certificate", &webhook),
    ];
    for (case, args) in cases {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(64),
            "{case}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The telemetry variables are configuration of every subcommand.
    let out = Command::new(BIN)
        .arg("crd")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("carrier-pigeon"), "{stderr}");
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

#[test]
fn the_example_policies_validate() {
    for example in [
        "routingpolicy.yaml",
        "policy-configmap.yaml",
        "bedrock-routingpolicy.yaml",
    ] {
        let path = format!("{}/deploy/examples/{example}", env!("CARGO_MANIFEST_DIR"));
        let out = Command::new(BIN)
            .arg("validate")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{example}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
