//! The `switchyard` binary: one CLI over the library's subcommands.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use switchyard::{app, demo, drill, exit, inject, mock, policy, status, telemetry};

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
    /// Run the sidecar.
    Run(app::RunArgs),
    /// Check policy files (YAML, a ConfigMap manifest or a RoutingPolicy manifest).
    Validate {
        /// Files to check.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
    /// Watch failover live: mocks, a sidecar and traffic through an outage of the primary.
    Demo(demo::DemoArgs),
    /// Force a target's breaker open (or closed) on a running sidecar, to rehearse failover.
    Drill(drill::DrillArgs),
    /// Show a running sidecar's routes, targets and breakers (from its admin port).
    Status(status::StatusArgs),
    /// Serve the fault-injecting mock provider.
    Mock(mock::Args),
    /// Serve the mutating admission webhook that injects the sidecar.
    InjectWebhook(inject::Args),
    /// Print the RoutingPolicy CustomResourceDefinition.
    Crd,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version are answers, not errors; clap exits 0 for them.
        Err(err) if !err.use_stderr() => err.exit(),
        Err(err) => {
            // Bad flags are bad configuration too: 64 for every subcommand, not clap's 2.
            let _ = err.print();
            return ExitCode::from(exit::BAD_CONFIG);
        }
    };
    // On one core (a CPU limit or an affinity mask of one, as sidecars usually get) a
    // single-threaded runtime, as Envoy's `--concurrency 1` and Linkerd's proxy on one
    // core: worker threads sharing one core only add cross-thread wake-ups.
    let one_core = std::thread::available_parallelism().map_or(true, |n| n.get() == 1);
    let mut runtime = if one_core {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = runtime
        .enable_all()
        .build()
        .expect("a tokio runtime can always be built on this platform");
    // The demo's screen is its live view: its sidecar logs go to a file it names at the end.
    let demo_log = matches!(cli.command, Command::Demo(_)).then(demo::log_path);
    let telemetry = {
        // The exporter's transports run on this runtime.
        let _entered = runtime.enter();
        match init_telemetry(cli.log_format, demo_log.as_deref()) {
            Ok(telemetry) => telemetry,
            Err(err) => {
                eprintln!("switchyard: {err}");
                return ExitCode::from(exit::BAD_CONFIG);
            }
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Run(args) => return app::run(args).await,
            Command::Validate { files } => {
                return Ok(if policy::load::run_validate(&files) {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                });
            }
            Command::Drill(args) => drill::run(args).await,
            Command::Status(args) => status::run(args).await,
            Command::Demo(args) => demo::run(args, demo_log.as_deref()).await,
            Command::Mock(args) => mock::run(args).await,
            Command::InjectWebhook(args) => inject::run(args).await,
            Command::Crd => {
                print!("{}", policy::crd_yaml());
                Ok(())
            }
        }
        .map(|()| ExitCode::SUCCESS)
    });
    // Flush the spans still queued while the runtime that carries the exporter's
    // connections is driven: a single-threaded runtime runs only inside `block_on`.
    runtime.block_on(async move {
        let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("switchyard: {err:#}");
            if exit::is_bad_config(&err) {
                ExitCode::from(exit::BAD_CONFIG)
            } else if exit::is_unavailable(&err) {
                ExitCode::from(exit::UNAVAILABLE)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Logs to stderr (or to `log_file`, when it can be created), plus OTLP traces when the
/// standard `OTEL_*` variables ask for them.
fn init_telemetry(
    format: LogFormat,
    log_file: Option<&std::path::Path>,
) -> Result<telemetry::Telemetry, telemetry::TelemetryError> {
    let otlp = telemetry::OtlpConfig::from_env()?;
    let file = log_file.and_then(|path| std::fs::File::create(path).ok());
    telemetry::init_to(matches!(format, LogFormat::Json), otlp.as_ref(), file)
}
