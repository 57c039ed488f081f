//! The mutating admission webhook behind `switchyard inject-webhook`: HTTPS server for
//! `POST /mutate` and `GET /healthz` that adds the sidecar to opted-in pods.
//!
//! Invariant: bad flags or an unreadable certificate fail before the port is bound; once
//! serving, every review is answered with `allowed: true` (see `review`), and a
//! connection's failure never stops the server.

pub mod patch;
pub mod review;
pub mod sidecar;
pub mod tls;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::exit::BadConfig;

use sidecar::{SidecarConfig, SidecarMode};

/// Largest AdmissionReview accepted; the API server's own object limit is about 3 MiB.
const MAX_BODY: usize = 8 * 1024 * 1024;
/// How long in-flight reviews may finish after SIGTERM.
const DRAIN: Duration = Duration::from_secs(10);

/// Flags of `switchyard inject-webhook`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Address to listen on (HTTPS).
    #[arg(long, default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// PEM certificate (chain) to serve; reloaded when the file changes.
    #[arg(long)]
    pub tls_cert: PathBuf,
    /// PEM private key of the certificate; reloaded when the file changes.
    #[arg(long)]
    pub tls_key: PathBuf,
    /// Longest a peer may take to finish the TLS handshake, then to send a request head.
    /// The API server calls with a 10 s budget of its own; a slower peer is not one, and
    /// must not hold a connection.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub handshake_timeout: Duration,
    /// What is injected (boxed: these flags are many and the CLI's enum stays small).
    #[command(flatten)]
    pub sidecar: Box<SidecarArgs>,
}

/// Flags of `switchyard inject-webhook` that shape the injected sidecar.
#[derive(clap::Args, Debug, Clone)]
pub struct SidecarArgs {
    /// Image of the injected sidecar.
    #[arg(long)]
    pub sidecar_image: String,
    /// `imagePullPolicy` of the sidecar.
    #[arg(long, default_value = "IfNotPresent")]
    pub sidecar_image_pull_policy: String,
    /// `native` (init container with restartPolicy Always, Kubernetes >= 1.29) or
    /// `container` (a regular container, for older clusters).
    #[arg(long, value_enum, default_value = "native")]
    pub sidecar_mode: SidecarMode,
    /// CPU request of the sidecar (a Kubernetes quantity; empty for none).
    #[arg(long, default_value = "50m")]
    pub sidecar_cpu_request: String,
    /// Memory request of the sidecar.
    #[arg(long, default_value = "64Mi")]
    pub sidecar_memory_request: String,
    /// CPU limit of the sidecar (empty for none).
    #[arg(long, default_value = "")]
    pub sidecar_cpu_limit: String,
    /// Memory limit of the sidecar (empty for none).
    #[arg(long, default_value = "256Mi")]
    pub sidecar_memory_limit: String,
    /// Extra sidecar environment as NAME=VALUE, e.g. OTEL_EXPORTER_OTLP_ENDPOINT=...;
    /// repeatable.
    #[arg(long = "sidecar-env", value_parser = parse_env)]
    pub sidecar_env: Vec<(String, String)>,
    /// Secret of provider keys mounted read-only into the sidecar at /etc/switchyard/keys;
    /// a pod may name another with the `switchyard.dev/keys-secret` annotation.
    #[arg(long)]
    pub keys_secret: Option<String>,
    /// `--drain-timeout` given to the sidecar.
    #[arg(long, default_value = "30s")]
    pub sidecar_drain_timeout: humantime::Duration,
    /// Numeric user (and group) the sidecar runs as.
    #[arg(long, default_value_t = 65532)]
    pub sidecar_uid: i64,
    /// `--shared-state` given to the sidecar: the fleet's Redis, `redis://HOST:PORT[/DB]`.
    #[arg(long)]
    pub sidecar_shared_state: Option<String>,
    /// `SECRET/KEY` holding the shared-state Redis password, given to the sidecar as
    /// `SWITCHYARD_REDIS_PASSWORD`.
    #[arg(long, value_parser = parse_secret_key)]
    pub sidecar_shared_state_password: Option<(String, String)>,
}

fn parse_secret_key(s: &str) -> Result<(String, String), String> {
    match s.split_once('/') {
        Some((secret, key)) if sidecar::is_dns_subdomain(secret) && !key.is_empty() => {
            Ok((secret.to_owned(), key.to_owned()))
        }
        _ => Err(format!(
            "expected SECRET/KEY with a valid Secret name, got {s:?}"
        )),
    }
}

/// A flag value that would make every injected pod invalid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A resource flag is not a Kubernetes quantity.
    #[error("--sidecar-{flag} {value:?} is not a Kubernetes quantity")]
    Quantity {
        /// The flag, without its prefix.
        flag: &'static str,
        /// What was given.
        value: String,
    },
    /// The keys Secret name is not a Kubernetes object name.
    #[error("--keys-secret {0:?} is not a valid Secret name")]
    SecretName(String),
    /// The sidecar user would be root.
    #[error("--sidecar-uid must be a non-root user id, got {0}")]
    Root(i64),
}

impl SidecarArgs {
    /// Checks the flags and turns them into what the patch builder needs.
    pub fn sidecar_config(&self) -> Result<SidecarConfig, ConfigError> {
        let requests = quantities([
            ("cpu-request", "cpu", &self.sidecar_cpu_request),
            ("memory-request", "memory", &self.sidecar_memory_request),
        ])?;
        let limits = quantities([
            ("cpu-limit", "cpu", &self.sidecar_cpu_limit),
            ("memory-limit", "memory", &self.sidecar_memory_limit),
        ])?;
        if let Some(secret) = &self.keys_secret {
            if !sidecar::is_dns_subdomain(secret) {
                return Err(ConfigError::SecretName(secret.clone()));
            }
        }
        if self.sidecar_uid <= 0 {
            return Err(ConfigError::Root(self.sidecar_uid));
        }
        Ok(SidecarConfig {
            image: self.sidecar_image.clone(),
            image_pull_policy: self.sidecar_image_pull_policy.clone(),
            mode: self.sidecar_mode,
            requests,
            limits,
            env: self.sidecar_env.clone(),
            keys_secret: self.keys_secret.clone(),
            drain_timeout: self.sidecar_drain_timeout.to_string(),
            run_as_user: self.sidecar_uid,
            shared_state: self.sidecar_shared_state.clone(),
            shared_state_password: self.sidecar_shared_state_password.clone(),
        })
    }
}

/// The non-empty `(flag, resource, value)` entries as a resource map, each checked.
fn quantities(
    entries: [(&'static str, &str, &String); 2],
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut map = BTreeMap::new();
    for (flag, resource, value) in entries {
        if value.is_empty() {
            continue;
        }
        if !sidecar::is_quantity(value) {
            return Err(ConfigError::Quantity {
                flag,
                value: value.clone(),
            });
        }
        map.insert(resource.to_owned(), value.clone());
    }
    Ok(map)
}

fn parse_env(value: &str) -> Result<(String, String), String> {
    match value.split_once('=') {
        Some((name, val)) if !name.is_empty() => Ok((name.to_owned(), val.to_owned())),
        _ => Err(format!("{value:?} is not NAME=VALUE")),
    }
}

/// Serves the webhook until SIGTERM or Ctrl-C, then lets in-flight reviews finish.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = Arc::new(args.sidecar.sidecar_config().map_err(BadConfig::new)?);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let resolver = tls::ReloadingCert::new(
        args.tls_cert.clone(),
        args.tls_key.clone(),
        Arc::clone(&provider),
    )
    .map_err(BadConfig::new)?;
    let mut tls_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    tls_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(tls_config));
    let listener = TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, image = %config.image, mode = ?config.mode, "inject-webhook listening");

    let graceful = GracefulShutdown::new();
    let handshake_timeout = args.handshake_timeout;
    let builder = crate::server::connection_builder(handshake_timeout);
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: back off, or this loop spins.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let acceptor = acceptor.clone();
        let config = Arc::clone(&config);
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(err)) => {
                    tracing::debug!(%peer, error = %err, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let service = hyper::service::service_fn(move |req| handle(req, Arc::clone(&config)));
            let conn = builder
                .serve_connection(TokioIo::new(tls), service)
                .into_owned();
            if let Err(err) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %err, "connection ended with an error");
            }
        });
    }
    tracing::info!("shutting down");
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("in-flight reviews did not finish in time");
    }
    Ok(())
}

async fn handle(
    req: Request<Incoming>,
    config: Arc<SidecarConfig>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, body: Bytes| {
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = status;
        response
    };
    Ok(match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => reply(StatusCode::OK, Bytes::from_static(b"ok\n")),
        (&Method::POST, "/mutate") => match Limited::new(req.into_body(), MAX_BODY).collect().await
        {
            Ok(body) => {
                let answer = review::answer(&body.to_bytes(), &config);
                let mut response = reply(StatusCode::OK, Bytes::from(answer));
                response.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json"),
                );
                response
            }
            Err(err) => {
                tracing::warn!(error = %err, "review body unreadable");
                reply(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    Bytes::from(format!("{err}\n")),
                )
            }
        },
        _ => reply(StatusCode::NOT_FOUND, Bytes::from_static(b"not found\n")),
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot watch SIGTERM; Ctrl-C only");
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
