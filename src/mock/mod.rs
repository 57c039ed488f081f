//! The fault-injecting mock provider behind `switchyard mock` (being built).

/// Flags of `switchyard mock`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:4100")]
    pub listen: std::net::SocketAddr,
}

/// Runs the mock until interrupted.
pub async fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("the mock is being built")
}
