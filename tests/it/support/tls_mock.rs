//! A private PKI made in the test (rcgen) and an HTTPS OpenAI-shaped mock on 127.0.0.1
//! that counts TCP connections, records each request's HTTP version and client
//! certificate, and can swap its certificate or client-CA rules mid-test or cut every
//! open connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// A certificate authority that exists only in this test.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// Its certificate, PEM, for `tls.caFile`.
    pub pem: String,
    der: CertificateDer<'static>,
}

/// A certificate with its key, PEM and DER.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for these names (`127.0.0.1` becomes an IP SAN).
    pub fn server(&self, names: &[&str], expired: bool) -> Leaf {
        let mut params = leaf_params(names);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        self.sign(params, KeyPair::generate().unwrap())
    }

    /// A client certificate (ECDSA key, PKCS#8), or for the given key.
    pub fn client(&self, name: &str, key: Option<KeyPair>) -> Leaf {
        let mut params = leaf_params(&[]);
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params, key.unwrap_or_else(|| KeyPair::generate().unwrap()))
    }

    fn sign(&self, params: CertificateParams, key: KeyPair) -> Leaf {
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
            key_der: key.serialize_der(),
        }
    }

    /// A server config presenting `leaf`; with `clients`, client certificates from that
    /// CA are required.
    pub fn server_config(leaf: &Leaf, clients: Option<&Ca>, h2: bool) -> ServerConfig {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match clients {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                roots.add(ca.der.clone()).unwrap();
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der.clone()));
        let mut config = builder
            .with_single_cert(vec![leaf.der.clone()], key)
            .unwrap();
        config.alpn_protocols = if h2 {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };
        config
    }
}

fn leaf_params(names: &[&str]) -> CertificateParams {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    CertificateParams::new(names).unwrap()
}

/// What the mock saw of one request.
#[derive(Clone, Debug)]
pub struct Seen {
    pub version: Version,
    pub client_cert: Option<CertificateDer<'static>>,
    pub body: Bytes,
}

#[derive(Default)]
struct Counters {
    connections: AtomicUsize,
    /// Connections the mock has not closed yet.
    open: AtomicUsize,
    /// Connections that carried at least one request.
    used: AtomicUsize,
    handshakes_failed: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    seen: Mutex<Vec<Seen>>,
}

/// An HTTPS mock answering every request with one chat completion after `delay`.
pub struct TlsMock {
    pub addr: SocketAddr,
    config: Arc<Mutex<Arc<ServerConfig>>>,
    counters: Arc<Counters>,
    cut: watch::Sender<u64>,
    task: JoinHandle<()>,
}

impl TlsMock {
    /// With `keep_alive` false every HTTP/1.1 response closes its connection, so each
    /// request makes a fresh handshake (what rotation tests need to observe).
    pub async fn start(config: ServerConfig, delay: Duration, keep_alive: bool) -> TlsMock {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let config = Arc::new(Mutex::new(Arc::new(config)));
        let counters = Arc::new(Counters::default());
        let (shared_config, shared_counters) = (Arc::clone(&config), Arc::clone(&counters));
        let (cut, cuts) = watch::channel(0);
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                shared_counters.connections.fetch_add(1, Ordering::SeqCst);
                shared_counters.open.fetch_add(1, Ordering::SeqCst);
                let acceptor = TlsAcceptor::from(Arc::clone(&shared_config.lock().unwrap()));
                let counters = Arc::clone(&shared_counters);
                let mut cuts = cuts.clone();
                // Only cuts from now on: a clone starts at the version the original saw.
                cuts.mark_unchanged();
                tokio::spawn(async move {
                    let open = Arc::clone(&counters);
                    tokio::select! {
                        _ = serve(acceptor, tcp, counters, delay, keep_alive) => {}
                        _ = cuts.changed() => {}
                    }
                    open.open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        TlsMock {
            addr,
            config,
            counters,
            cut,
            task,
        }
    }

    /// The base URL of an OpenAI-compatible provider here.
    pub fn base_url(&self) -> String {
        format!("https://{}/v1", self.addr)
    }

    /// New connections use this config from now on.
    pub fn set_config(&self, config: ServerConfig) {
        *self.config.lock().unwrap() = Arc::new(config);
    }

    /// Closes every open connection at once, as a restarting server or a load balancer
    /// dropping idle connections does, and returns once they are closed; the listener
    /// stays up.
    pub async fn cut_connections(&self) {
        self.cut.send_modify(|n| *n += 1);
        while self.counters.open.load(Ordering::SeqCst) > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    pub fn connections(&self) -> usize {
        self.counters.connections.load(Ordering::SeqCst)
    }

    /// Connections that carried at least one request.
    pub fn connections_used(&self) -> usize {
        self.counters.used.load(Ordering::SeqCst)
    }

    pub fn handshakes_failed(&self) -> usize {
        self.counters.handshakes_failed.load(Ordering::SeqCst)
    }

    pub fn max_in_flight(&self) -> usize {
        self.counters.max_in_flight.load(Ordering::SeqCst)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.counters.seen.lock().unwrap().clone()
    }
}

impl Drop for TlsMock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    acceptor: TlsAcceptor,
    tcp: tokio::net::TcpStream,
    counters: Arc<Counters>,
    delay: Duration,
    keep_alive: bool,
) {
    let tls = match acceptor.accept(tcp).await {
        Ok(tls) => tls,
        Err(_) => {
            counters.handshakes_failed.fetch_add(1, Ordering::SeqCst);
            return;
        }
    };
    let client_cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first().cloned());
    let first = Arc::new(std::sync::Once::new());
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let counters = Arc::clone(&counters);
        let client_cert = client_cert.clone();
        first.call_once(|| {
            counters.used.fetch_add(1, Ordering::SeqCst);
        });
        async move {
            let now = counters.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            counters.max_in_flight.fetch_max(now, Ordering::SeqCst);
            let version = request.version();
            let body = request.into_body().collect().await.unwrap().to_bytes();
            counters.seen.lock().unwrap().push(Seen {
                version,
                client_cert,
                body,
            });
            tokio::time::sleep(delay).await;
            counters.in_flight.fetch_sub(1, Ordering::SeqCst);
            Ok::<_, std::convert::Infallible>(completion())
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().keep_alive(keep_alive);
    let _ = builder.serve_connection(TokioIo::new(tls), service).await;
}

/// The body the mock answers with, as OpenAI would.
pub const COMPLETION: &str = r#"{"id":"chatcmpl-tls","object":"chat.completion","created":0,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"hello over tls"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":3,"total_tokens":6}}"#;

fn completion() -> Response<Full<Bytes>> {
    Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(COMPLETION.as_bytes())))
        .unwrap()
}
