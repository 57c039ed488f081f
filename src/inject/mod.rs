//! The mutating admission webhook behind `switchyard inject-webhook` (being built).

/// Flags of `switchyard inject-webhook`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:8443")]
    pub listen: std::net::SocketAddr,
}

/// Serves the webhook until interrupted.
pub async fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("the injector is being built")
}
