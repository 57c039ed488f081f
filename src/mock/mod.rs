//! The fault-injecting mock provider behind `switchyard mock`: an OpenAI-, Azure-,
//! Anthropic-, Bedrock- and Gemini/Vertex-compatible server that tests, benchmarks, drills and the demo put behind
//! the proxy.
//!
//! Invariant: replies are deterministic for a given request, name and fault set, and the
//! hot path takes no lock but the short one that records stats.

mod anthropic;
mod bedrock;
mod body;
mod command;
mod faults;
mod gemini;
mod handler;
mod openai;
mod reply;
mod responses;
mod server;
mod stats;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use tokio_rustls::TlsAcceptor;

use crate::exit::BadConfig;

pub use faults::{Faults, FaultsError, ThinkAs};
pub use handler::MOCK_NAME_HEADER;
pub use server::{Hold, MockServer};
pub use stats::{RequestRecord, Stats, RECENT};

/// Flags of `switchyard mock`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:4100")]
    pub listen: SocketAddr,
    /// Name shown in the reply text and the `x-mock-name` header, to tell mocks apart.
    #[arg(long, default_value = "mock")]
    pub name: String,
    /// Faults to inject from the start (changeable later through `POST /_mock/faults`).
    #[command(flatten)]
    pub faults: Faults,
    /// Serve HTTPS (HTTP/2 or HTTP/1.1 by ALPN) with this PEM certificate chain.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `--tls-cert`.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// The TLS acceptor for `--tls-cert` / `--tls-key`, offering h2 then http/1.1.
fn tls_acceptor(cert: PathBuf, key: PathBuf) -> anyhow::Result<TlsAcceptor> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let resolver = crate::inject::tls::ReloadingCert::new(cert, key, Arc::clone(&provider))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves the mock until ctrl-c or SIGTERM. A blackholed call does not hold up the exit:
/// open connections are cut.
pub async fn run(args: Args) -> anyhow::Result<()> {
    args.faults
        .validate()
        .map_err(BadConfig::new)
        .context("invalid fault flags")?;
    let tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        _ => None,
    };
    let server = MockServer::start_serving(args.listen, &args.name, args.faults, tls)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(addr = %server.addr(), name = %args.name, "mock provider listening");
    shutdown_signal().await?;
    tracing::info!("mock provider stopping");
    server.shutdown().await;
    Ok(())
}

async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.context("cannot watch ctrl-c")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("cannot watch ctrl-c")?;
    Ok(())
}
