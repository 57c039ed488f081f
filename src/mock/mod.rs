//! The fault-injecting mock provider behind `switchyard mock`: an OpenAI-, Azure- and
//! Anthropic-compatible server that tests, benchmarks, drills and the demo put behind
//! the proxy.
//!
//! Invariant: replies are deterministic for a given request, name and fault set, and the
//! hot path takes no lock but the short one that records stats.

mod anthropic;
mod body;
mod command;
mod faults;
mod handler;
mod openai;
mod reply;
mod responses;
mod server;
mod stats;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;

use anyhow::Context as _;

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
}

/// Serves the mock until ctrl-c or SIGTERM. A blackholed call does not hold up the exit:
/// open connections are cut.
pub async fn run(args: Args) -> anyhow::Result<()> {
    args.faults
        .validate()
        .map_err(BadConfig::new)
        .context("invalid fault flags")?;
    let server = MockServer::start_on(args.listen, &args.name, args.faults)
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
