//! `switchyard drill`: asks a running sidecar, over its admin port on loopback, to force a
//! target's breaker open for a while (or closed again), to rehearse failover.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::exit::BadConfig;

/// Flags of `switchyard drill`.
#[derive(clap::Args, Debug, Clone)]
pub struct DrillArgs {
    /// The target as `provider/model` (see `GET /breakers`).
    pub target: String,
    /// How long to hold the breaker open.
    #[arg(long = "for", default_value = "60s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Close the breaker (and end any cooldown) instead of opening it.
    #[arg(long)]
    pub close: bool,
    /// The sidecar's admin address; drills are accepted only from loopback.
    #[arg(long, default_value = "127.0.0.1:4001")]
    pub admin: SocketAddr,
}

/// Sends the drill and prints the sidecar's answer.
pub async fn run(args: DrillArgs) -> anyhow::Result<()> {
    let Some((provider, model)) = args.target.split_once('/') else {
        return Err(BadConfig::new("target must be provider/model, e.g. openai/gpt-4o").into());
    };
    let action = if args.close {
        "close".to_owned()
    } else {
        format!("open?for={}ms", args.duration.as_millis())
    };
    let uri = format!("http://{}/breakers/{provider}/{model}/{action}", args.admin);
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let request = http::Request::post(&uri)
        .body(Empty::new())
        .context("building the drill request")?;
    let response = client
        .request(request)
        .await
        .with_context(|| format!("calling {uri}"))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .context("reading the answer")?
        .to_bytes();
    let text = String::from_utf8_lossy(&body);
    if !status.is_success() {
        bail!("the sidecar refused the drill ({status}): {text}");
    }
    println!("{text}");
    Ok(())
}
