//! DESIGN §3 `providers[].tls` against a local HTTPS mock whose private CA is made in the
//! test: trust only with `caFile`, the named causes of a failed handshake, mTLS, files
//! that cannot be read, rotation of the CA and client files, HTTP/2 by ALPN with many
//! concurrent streams on one connection (dialled once for a cold burst, replaced when
//! cut), and HTTP/1.1 where ALPN says so.

use std::path::Path;
use std::time::Duration;

use futures_util::future::join_all;
use http::Version;

use crate::support::tls_mock::{Ca, TlsMock};
use crate::support::*;

/// One openai provider per `(name, baseUrl, extra YAML line)`, all targets of `gpt-4o`.
pub fn policy(providers: &[(&str, String, String)]) -> String {
    let mut out = String::from("providers:\n");
    for (name, base_url, extra) in providers {
        out.push_str(&format!(
            "  - name: {name}\n    api: openai\n    baseUrl: {base_url}\n    auth: {{passthrough: true}}\n    timeouts: {{connect: 500ms, firstByte: 5s, idle: 5s}}\n"
        ));
        if !extra.is_empty() {
            out.push_str(&format!("    {extra}\n"));
        }
    }
    let targets: Vec<String> = providers
        .iter()
        .map(|(name, _, _)| format!("{{provider: {name}}}"))
        .collect();
    out.push_str(&format!(
        "routes:\n  - model: gpt-4o\n    targets: [{}]\n",
        targets.join(", ")
    ));
    out
}

/// Writes a file the way kubelet updates a mounted Secret: whole, in one rename.
pub fn write_atomically(path: &Path, contents: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn tls_line(ca: Option<&Path>, client: Option<(&Path, &Path)>) -> String {
    let mut fields = Vec::new();
    if let Some(ca) = ca {
        fields.push(format!("caFile: {}", ca.display()));
    }
    if let Some((cert, key)) = client {
        fields.push(format!("clientCert: {}", cert.display()));
        fields.push(format!("clientKey: {}", key.display()));
    }
    format!("tls: {{{}}}", fields.join(", "))
}

/// A mock with a certificate from a CA made here (offering h2 or not) and a sidecar that
/// trusts the CA through `caFile`; the directory holds that file while the test runs.
async fn trusted_mock(h2: bool, delay: Duration) -> (TlsMock, Sidecar, tempfile::TempDir) {
    let ca = Ca::new("switchyard test CA");
    let leaf = ca.server(&["127.0.0.1"], false);
    let mock = TlsMock::start(Ca::server_config(&leaf, None, h2), delay, true).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let line = tls_line(Some(&ca_file), None);
    let sidecar = Sidecar::start(&policy(&[("internal", mock.base_url(), line)])).await;
    (mock, sidecar, dir)
}

/// Polls until `ok` holds for a chat reply (rotations land on the next refresh tick).
async fn eventually(sidecar: &Sidecar, ok: impl Fn(&Reply) -> bool) -> Reply {
    let start = tokio::time::Instant::now();
    loop {
        let reply = sidecar.chat("gpt-4o").await;
        if ok(&reply) || start.elapsed() > Duration::from_secs(10) {
            return reply;
        }
        tokio::time::sleep(ms(50)).await;
    }
}

#[tokio::test]
async fn a_private_ca_is_trusted_only_with_ca_file() {
    let ca = Ca::new("switchyard test CA");
    let leaf = ca.server(&["127.0.0.1"], false);
    let mock = TlsMock::start(Ca::server_config(&leaf, None, false), ms(0), true).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();

    let without = Sidecar::start(&policy(&[("internal", mock.base_url(), String::new())])).await;
    let refused = without.chat("gpt-4o").await;
    assert_eq!(refused.status, 502, "{}", refused.text());
    assert_eq!(refused.header("x-switchyard-error"), "tls_error");
    assert!(
        refused.text().contains("tls_error (unknown CA)"),
        "{}",
        refused.text()
    );
    assert!(without.metrics().await.contains(r#"outcome="tls_error""#));

    let line = tls_line(Some(&ca_file), None);
    let with = Sidecar::start(&policy(&[("internal", mock.base_url(), line)])).await;
    let reply = with.chat("gpt-4o").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.json()["choices"][0]["message"]["content"],
        "hello over tls"
    );
}

#[tokio::test]
async fn handshake_failures_name_their_cause() {
    let ca = Ca::new("switchyard test CA");
    let good = ca.server(&["127.0.0.1"], false);
    let mock = TlsMock::start(Ca::server_config(&good, None, false), ms(0), false).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let line = tls_line(Some(&ca_file), None);
    let sidecar = Sidecar::start(&policy(&[("internal", mock.base_url(), line)])).await;
    assert_eq!(sidecar.chat("gpt-4o").await.status, 200);

    let cases = [
        (
            ca.server(&["model.internal"], false),
            "tls_error (name mismatch)",
        ),
        (
            ca.server(&["127.0.0.1"], true),
            "tls_error (certificate expired)",
        ),
    ];
    for (leaf, cause) in cases {
        mock.set_config(Ca::server_config(&leaf, None, false));
        let reply = sidecar.chat("gpt-4o").await;
        assert_eq!(reply.status, 502, "{}", reply.text());
        assert_eq!(reply.header("x-switchyard-error"), "tls_error");
        assert!(reply.text().contains(cause), "{cause}: {}", reply.text());
    }
    mock.set_config(Ca::server_config(&good, None, false));
    assert_eq!(sidecar.chat("gpt-4o").await.status, 200);
}

#[tokio::test]
async fn mtls_presents_the_client_certificate_the_server_requires() {
    let ca = Ca::new("server CA");
    let clients = Ca::new("client CA");
    let leaf = ca.server(&["127.0.0.1"], false);
    let config = Ca::server_config(&leaf, Some(&clients), false);
    let mock = TlsMock::start(config, ms(0), true).await;
    let dir = tempfile::tempdir().unwrap();
    let (ca_file, cert, key) = (
        dir.path().join("ca.pem"),
        dir.path().join("tls.crt"),
        dir.path().join("tls.key"),
    );
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let client = clients.client("app-one", None);
    std::fs::write(&cert, &client.cert_pem).unwrap();
    std::fs::write(&key, &client.key_pem).unwrap();

    let anonymous = tls_line(Some(&ca_file), None);
    let without = Sidecar::start(&policy(&[("internal", mock.base_url(), anonymous)])).await;
    let refused = without.chat("gpt-4o").await;
    assert_eq!(refused.status, 502, "{}", refused.text());
    assert!(refused.text().contains("tls_error"), "{}", refused.text());

    let line = tls_line(Some(&ca_file), Some((&cert, &key)));
    let with = Sidecar::start(&policy(&[("internal", mock.base_url(), line)])).await;
    let reply = with.chat("gpt-4o").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let seen = mock.seen();
    assert_eq!(seen.last().unwrap().client_cert.as_ref(), Some(&client.der));
}

#[tokio::test]
async fn unreadable_tls_files_skip_the_target_as_config() {
    let ca = Ca::new("switchyard test CA");
    let leaf = ca.server(&["127.0.0.1"], false);
    let mock = TlsMock::start(Ca::server_config(&leaf, None, false), ms(0), true).await;
    let backup = MockServer::start("backup").await.unwrap();
    let missing = Path::new("/nonexistent/switchyard/ca.pem");
    let sidecar = Sidecar::start(&policy(&[
        ("internal", mock.base_url(), tls_line(Some(missing), None)),
        ("backup", format!("{}/v1", backup.url()), String::new()),
    ]))
    .await;
    let reply = sidecar.chat("gpt-4o").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("x-switchyard-provider"), "backup");
    assert_eq!(reply.header("x-switchyard-attempts"), "1");
    assert_eq!(
        mock.connections(),
        0,
        "a target without usable TLS files is never dialled"
    );
}

#[tokio::test]
async fn rotated_ca_and_client_files_are_used_without_a_restart() {
    let (ca_one, ca_two) = (Ca::new("server CA one"), Ca::new("server CA two"));
    let clients = Ca::new("client CA");
    let server_one = ca_one.server(&["127.0.0.1"], false);
    let config = Ca::server_config(&server_one, Some(&clients), false);
    let mock = TlsMock::start(config, ms(0), false).await;
    let dir = tempfile::tempdir().unwrap();
    let (ca_file, cert, key) = (
        dir.path().join("ca.pem"),
        dir.path().join("tls.crt"),
        dir.path().join("tls.key"),
    );
    let first = clients.client("app-one", None);
    write_atomically(&ca_file, &ca_one.pem);
    write_atomically(&cert, &first.cert_pem);
    write_atomically(&key, &first.key_pem);
    let line = tls_line(Some(&ca_file), Some((&cert, &key)));
    let sidecar = Sidecar::start_configured(&policy(&[("internal", mock.base_url(), line)]), |a| {
        a.key_refresh_interval = ms(100);
    })
    .await;
    assert_eq!(sidecar.chat("gpt-4o").await.status, 200);
    let client_cert = |mock: &TlsMock| mock.seen().last().and_then(|s| s.client_cert.clone());
    assert_eq!(client_cert(&mock), Some(first.der.clone()));

    // cert-manager reissues the client certificate, this time with an RSA key in PKCS#1.
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures");
    let rsa = std::fs::read_to_string(fixtures.join("client-rsa.pkcs8.pem")).unwrap();
    let second = clients.client("app-two", Some(rcgen::KeyPair::from_pem(&rsa).unwrap()));
    let pkcs1 = std::fs::read_to_string(fixtures.join("client-rsa.pkcs1.pem")).unwrap();
    assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    write_atomically(&cert, &second.cert_pem);
    write_atomically(&key, &pkcs1);
    let reply = eventually(&sidecar, |_| client_cert(&mock) == Some(second.der.clone())).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(client_cert(&mock), Some(second.der.clone()));

    // The server moves to a new CA: refused until the mounted CA file follows.
    let server_two = ca_two.server(&["127.0.0.1"], false);
    mock.set_config(Ca::server_config(&server_two, Some(&clients), false));
    let refused = sidecar.chat("gpt-4o").await;
    assert!(
        refused.text().contains("tls_error (unknown CA)"),
        "{}",
        refused.text()
    );
    write_atomically(&ca_file, &ca_two.pem);
    let reply = eventually(&sidecar, |r| r.status == 200).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test]
async fn h2_upstream_serves_many_concurrent_streams_on_one_connection() {
    const STREAMS: usize = 100;
    let (mock, sidecar, _dir) = trusted_mock(true, ms(300)).await;

    assert_eq!(sidecar.chat("gpt-4o").await.status, 200);
    let replies = join_all((0..STREAMS).map(|_| sidecar.chat("gpt-4o"))).await;
    assert!(replies.iter().all(|r| r.status == 200));
    let seen = mock.seen();
    assert_eq!(seen.len(), STREAMS + 1);
    assert!(seen.iter().all(|s| s.version == Version::HTTP_2));
    eprintln!(
        "{STREAMS} concurrent calls: {} upstream connection(s), {} streams at once at most",
        mock.connections(),
        mock.max_in_flight()
    );
    assert!(
        mock.max_in_flight() > STREAMS / 2,
        "the calls overlapped upstream"
    );
    assert_eq!(
        mock.connections(),
        1,
        "every stream shares one h2 connection"
    );
    assert_eq!(mock.connections_used(), 1);
}

#[tokio::test]
async fn a_cold_burst_of_calls_dials_one_h2_connection_and_every_body_arrives() {
    const CALLS: usize = 50;
    let (mock, sidecar, _dir) = trusted_mock(true, ms(100)).await;

    let replies = join_all((0..CALLS).map(|_| sidecar.chat("gpt-4o"))).await;
    assert!(replies.iter().all(|r| r.status == 200));
    assert_eq!(
        mock.connections(),
        1,
        "the first call dials; the others wait for its connection instead of racing a handshake each"
    );
    let seen = mock.seen();
    assert_eq!(seen.len(), CALLS);
    for s in &seen {
        assert_eq!(s.version, Version::HTTP_2);
        let body: serde_json::Value = serde_json::from_slice(&s.body).unwrap();
        assert_eq!(
            body["model"], "gpt-4o",
            "the whole body went out with its headers"
        );
    }
}

#[tokio::test]
async fn a_cut_h2_connection_is_replaced_by_a_new_one() {
    let (mock, sidecar, _dir) = trusted_mock(true, ms(0)).await;
    assert_eq!(sidecar.chat("gpt-4o").await.status, 200);
    assert_eq!(mock.connections(), 1);

    mock.cut_connections().await;
    for _ in 0..3 {
        let reply = sidecar.chat("gpt-4o").await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    }
    assert_eq!(mock.connections(), 2, "one new connection, then reused");
}

#[tokio::test]
async fn an_upstream_that_answers_alpn_with_http1_is_served_over_http1() {
    let (mock, sidecar, _dir) = trusted_mock(false, ms(0)).await;

    for _ in 0..3 {
        let reply = sidecar.chat("gpt-4o").await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    }
    let seen = mock.seen();
    assert_eq!(seen.len(), 3);
    for s in &seen {
        assert_eq!(s.version, Version::HTTP_11);
        let body: serde_json::Value = serde_json::from_slice(&s.body).unwrap();
        assert_eq!(body["model"], "gpt-4o");
    }
    assert_eq!(
        mock.connections_used(),
        1,
        "one kept-alive HTTP/1.1 connection carries every call"
    );
}

#[tokio::test]
async fn providers_with_different_client_certificates_never_share_a_connection() {
    let ca = Ca::new("server CA");
    let clients = Ca::new("client CA");
    let leaf = ca.server(&["127.0.0.1"], false);
    // HTTP/2 with keep-alive: one pool would carry both providers on one connection.
    let config = Ca::server_config(&leaf, Some(&clients), true);
    let mock = TlsMock::start(config, ms(0), true).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let mut identities = Vec::new();
    let mut providers = String::from("providers:\n");
    for name in ["team-a", "team-b"] {
        let client = clients.client(name, None);
        let (cert, key) = (
            dir.path().join(format!("{name}.crt")),
            dir.path().join(format!("{name}.key")),
        );
        std::fs::write(&cert, &client.cert_pem).unwrap();
        std::fs::write(&key, &client.key_pem).unwrap();
        providers.push_str(&format!(
            "  - name: {name}\n    api: openai\n    baseUrl: {}\n    auth: {{passthrough: true}}\n    {}\n",
            mock.base_url(),
            tls_line(Some(&ca_file), Some((&cert, &key)))
        ));
        identities.push(client.der);
    }
    let text = format!(
        "{providers}routes:\n  - model: model-a\n    targets: [{{provider: team-a}}]\n  - model: model-b\n    targets: [{{provider: team-b}}]\n"
    );
    let sidecar = Sidecar::start(&text).await;
    for model in ["model-a", "model-b", "model-a", "model-b"] {
        assert_eq!(sidecar.chat(model).await.status, 200);
    }
    let certs: Vec<_> = mock
        .seen()
        .into_iter()
        .map(|s| s.client_cert.unwrap())
        .collect();
    let expected = [0, 1, 0, 1].map(|i| identities[i].clone());
    assert_eq!(
        certs, expected,
        "each provider presents its own certificate"
    );
    assert_eq!(
        mock.connections(),
        2,
        "one h2 connection per client identity"
    );
}
