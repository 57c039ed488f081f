//! The `switchyard` binary: one CLI over the library's subcommands.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use switchyard::{inject, mock, policy};

/// A failover sidecar for LLM calls.
#[derive(Parser, Debug)]
#[command(name = "switchyard", version, about)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the fault-injecting mock provider.
    Mock(mock::Args),
    /// Serve the mutating admission webhook that injects the sidecar.
    InjectWebhook(inject::Args),
    /// Check policy files (YAML, a ConfigMap or a RoutingPolicy manifest); exit 1 on any problem.
    Validate {
        /// Policy files to check.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
    /// Print the RoutingPolicy CustomResourceDefinition.
    Crd,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime can always be built on this platform");
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Mock(args) => mock::run(args).await,
            Command::InjectWebhook(args) => inject::run(args).await,
            Command::Validate { files } => match policy::run_validate(&files) {
                true => Ok(()),
                false => Err(anyhow::anyhow!("invalid policy")),
            },
            Command::Crd => {
                print!("{}", policy::crd_yaml());
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("switchyard: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
