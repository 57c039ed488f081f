//! DESIGN §3 egress: https through a local CONNECT proxy (with credentials from the proxy
//! URL), `no_proxy` going direct, http in absolute form, and an unreachable or stalled
//! proxy failing the target over, never going around it. The rules are injected into
//! the in-process sidecar; the test process's environment is never changed.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use switchyard::upstream::egress::Egress;

use crate::support::egress_proxy::{Behaviour, EgressProxy};
use crate::support::tls_mock::{Ca, TlsMock};
use crate::support::*;
use crate::tls::policy;

fn egress(vars: &[(&str, String)]) -> Arc<Egress> {
    let vars = vars.to_vec();
    Arc::new(Egress::from_lookup(move |name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    }))
}

/// An HTTPS mock with a private CA and the `tls` line that trusts it.
async fn https_mock(dir: &tempfile::TempDir) -> (TlsMock, String) {
    let ca = Ca::new("switchyard test CA");
    let leaf = ca.server(&["127.0.0.1"], false);
    let mock = TlsMock::start(Ca::server_config(&leaf, None, true), ms(0), true).await;
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    (mock, format!("tls: {{caFile: {}}}", ca_file.display()))
}

fn has_header(head: &str, name: &str, value: &str) -> bool {
    head.lines().any(|line| {
        line.split_once(':')
            .is_some_and(|(n, v)| n.trim().eq_ignore_ascii_case(name) && v.trim() == value)
    })
}

#[tokio::test]
async fn https_goes_through_a_connect_tunnel_with_the_proxy_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let (mock, tls) = https_mock(&dir).await;
    let proxy = EgressProxy::start(Behaviour::Serve).await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    // Lower-case first: the upper-case variable names a proxy that is not there.
    let rules = egress(&[
        ("https_proxy", proxy.url(Some("svc-user:p%40ss"))),
        ("HTTPS_PROXY", dead_url),
    ]);
    let sidecar = Sidecar::start_configured(&policy(&[("internal", mock.base_url(), tls)]), |a| {
        a.egress = rules;
    })
    .await;

    let reply = sidecar.chat("gpt-4o").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let heads = proxy.heads();
    assert_eq!(heads.len(), 1, "{heads:?}");
    let port = mock.addr.port();
    assert!(
        heads[0].starts_with(&format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\n")),
        "{heads:?}"
    );
    let basic = base64::engine::general_purpose::STANDARD.encode("svc-user:p@ss");
    assert!(has_header(
        &heads[0],
        "proxy-authorization",
        &format!("Basic {basic}")
    ));
    assert_eq!(mock.connections(), 1);
}

#[tokio::test]
async fn no_proxy_sends_the_hosts_it_names_direct() {
    let dir = tempfile::tempdir().unwrap();
    let (mock, tls) = https_mock(&dir).await;
    let proxy = EgressProxy::start(Behaviour::Serve).await;
    for no_proxy in ["127.0.0.1", "127.0.0.0/8", "*"] {
        let rules = egress(&[
            ("HTTPS_PROXY", proxy.url(None)),
            ("NO_PROXY", no_proxy.to_owned()),
        ]);
        let text = policy(&[("internal", mock.base_url(), tls.clone())]);
        let sidecar = Sidecar::start_configured(&text, |a| a.egress = rules).await;
        let reply = sidecar.chat("gpt-4o").await;
        assert_eq!(reply.status, 200, "{no_proxy}: {}", reply.text());
    }
    assert!(proxy.heads().is_empty(), "{:?}", proxy.heads());
    assert_eq!(mock.connections(), 3);
}

#[tokio::test]
async fn http_goes_to_the_proxy_in_absolute_form() {
    let proxy = EgressProxy::start(Behaviour::Serve).await;
    // Nothing listens at the origin: only the proxy may be dialled.
    let origin = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let origin_addr = origin.local_addr().unwrap();
    drop(origin);
    let rules = egress(&[("http_proxy", proxy.url(Some("u:pw")))]);
    let base = format!("http://{origin_addr}/v1");
    let sidecar = Sidecar::start_configured(&policy(&[("internal", base, String::new())]), |a| {
        a.egress = rules;
    })
    .await;

    let reply = sidecar.chat("gpt-4o").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let heads = proxy.heads();
    assert!(
        heads[0].starts_with(&format!(
            "POST http://{origin_addr}/v1/chat/completions HTTP/1.1\r\n"
        )),
        "{heads:?}"
    );
    let basic = base64::engine::general_purpose::STANDARD.encode("u:pw");
    assert!(has_header(
        &heads[0],
        "proxy-authorization",
        &format!("Basic {basic}")
    ));
}

#[tokio::test]
async fn an_unreachable_or_stalled_proxy_fails_the_target_over_never_around_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mock, tls) = https_mock(&dir).await;
    let backup = MockServer::start("backup").await.unwrap();
    let refused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refused_url = format!("http://{}", refused.local_addr().unwrap());
    drop(refused);
    let stalled = EgressProxy::start(Behaviour::Stall).await;

    let cases = [
        (refused_url, "connect_error"),
        (stalled.url(None), "connect_timeout"),
    ];
    for (proxy_url, outcome) in cases {
        // Only https is proxied: the plain-http backup is reached directly.
        let rules = egress(&[("https_proxy", proxy_url)]);
        let text = policy(&[
            ("internal", mock.base_url(), tls.clone()),
            ("backup", format!("{}/v1", backup.url()), String::new()),
        ]);
        let sidecar = Sidecar::start_configured(&text, |a| a.egress = rules).await;
        let started = tokio::time::Instant::now();
        let reply = sidecar.chat("gpt-4o").await;
        assert_eq!(reply.status, 200, "{outcome}: {}", reply.text());
        assert_eq!(reply.header("x-switchyard-provider"), "backup");
        assert_eq!(reply.header("x-switchyard-attempts"), "2");
        assert!(started.elapsed() < Duration::from_secs(3), "{outcome}");
        let metrics = sidecar.metrics().await;
        assert!(
            metrics.contains(&format!(
                r#"switchyard_attempts_total{{provider="internal",model="*",outcome="{outcome}"}} 1"#
            )),
            "{metrics}"
        );
    }
    assert_eq!(
        mock.connections(),
        0,
        "the sidecar never went around the proxy"
    );
}
