//! The tracing pipeline: logs to stderr and, when an OTLP endpoint is configured by the
//! standard `OTEL_*` variables, one OpenTelemetry trace per call
//! (`docs/observability.md`). Invariant: telemetry never sits on the request path; export
//! runs on its own worker and a down or slow collector only costs dropped spans, which
//! are counted.

mod compact;
mod export;
mod http;
pub mod spans;

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Spans held for export at most; past it new spans are dropped (and counted).
const QUEUE_CAPACITY: usize = 2048;

/// OTLP transport, from `OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `grpc`.
    Grpc,
    /// `http/protobuf` (the OTLP default).
    HttpProtobuf,
}

/// Where and how spans are exported; everything else the exporter reads from the
/// standard variables itself (`OTEL_EXPORTER_OTLP_HEADERS`, `..._TIMEOUT`, the sampler).
#[derive(Debug, Clone)]
pub struct OtlpConfig {
    /// The full traces endpoint (for HTTP, including `/v1/traces`).
    pub endpoint: String,
    /// The transport.
    pub protocol: Protocol,
    /// Export timeout per batch.
    pub timeout: Duration,
    /// How long spans wait for a batch.
    pub delay: Duration,
    /// The resource: `service.name`, `OTEL_RESOURCE_ATTRIBUTES`, pod and namespace.
    pub resource: Resource,
}

/// Why the OTLP pipeline could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The exporter rejected its configuration.
    #[error("OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    /// `OTEL_EXPORTER_OTLP_PROTOCOL` names a transport this build does not speak.
    #[error("OTEL_EXPORTER_OTLP_PROTOCOL={0:?}: use grpc or http/protobuf")]
    Protocol(String),
}

impl OtlpConfig {
    /// Reads the standard variables; `None` when no endpoint is set (tracing off).
    pub fn from_env() -> Result<Option<Self>, TelemetryError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// As [`Self::from_env`], over any variable lookup (tests).
    pub fn from_lookup(
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, TelemetryError> {
        let protocol = match var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"))
            .as_deref()
        {
            None | Some("http/protobuf") => Protocol::HttpProtobuf,
            Some("grpc") => Protocol::Grpc,
            Some(other) => return Err(TelemetryError::Protocol(other.to_owned())),
        };
        let endpoint = match (
            var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            var("OTEL_EXPORTER_OTLP_ENDPOINT"),
        ) {
            (Some(traces), _) => traces,
            (None, Some(base)) if protocol == Protocol::HttpProtobuf => {
                format!("{}/v1/traces", base.trim_end_matches('/'))
            }
            (None, Some(base)) => base,
            (None, None) => return Ok(None),
        };
        let millis = |name: &str, default: u64| {
            Duration::from_millis(var(name).and_then(|v| v.parse().ok()).unwrap_or(default))
        };
        Ok(Some(Self {
            endpoint,
            protocol,
            timeout: millis("OTEL_EXPORTER_OTLP_TIMEOUT", 10_000),
            delay: millis("OTEL_BSP_SCHEDULE_DELAY", 5_000),
            resource: resource(&var),
        }))
    }
}

/// `service.name` defaults to `switchyard`; the pod and namespace come from the
/// downward API (`POD_NAME`, `POD_NAMESPACE`) when present.
fn resource(var: &impl Fn(&str) -> Option<String>) -> Resource {
    let mut builder = Resource::builder();
    if var("OTEL_SERVICE_NAME").is_none() {
        builder = builder.with_service_name("switchyard");
    }
    for (attribute, name) in [
        ("k8s.pod.name", "POD_NAME"),
        ("k8s.namespace.name", "POD_NAMESPACE"),
    ] {
        if let Some(value) = var(name) {
            builder = builder.with_attribute(KeyValue::new(attribute, value));
        }
    }
    builder.build()
}

/// Builds the tracer provider; must run inside the tokio runtime that will carry exports.
pub fn provider(config: &OtlpConfig) -> Result<SdkTracerProvider, TelemetryError> {
    let builder = opentelemetry_otlp::SpanExporter::builder();
    let processor = match config.protocol {
        Protocol::Grpc => {
            let exporter = builder
                .with_tonic()
                .with_endpoint(&config.endpoint)
                .with_timeout(config.timeout)
                .build()?;
            export::Gate::new(exporter, QUEUE_CAPACITY, config.delay)
        }
        Protocol::HttpProtobuf => {
            let client =
                http::TokioHttpClient::new(tokio::runtime::Handle::current(), config.timeout);
            let exporter = builder
                .with_http()
                .with_http_client(client)
                .with_endpoint(&config.endpoint)
                .with_timeout(config.timeout)
                .build()?;
            export::Gate::new(exporter, QUEUE_CAPACITY, config.delay)
        }
    };
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(config.resource.clone())
        .build())
}

/// Keeps the pipeline alive; [`Telemetry::shutdown`] flushes the spans still queued.
#[must_use = "dropping the guard without shutdown loses queued spans"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans queued so far without waiting for the next batch (tests and
    /// tools that must see a trace at once).
    pub fn flush(&self) {
        if let Some(provider) = &self.provider {
            if let Err(err) = provider.force_flush() {
                tracing::debug!(error = %err, "flushing spans failed");
            }
        }
    }

    /// Exports every span still queued and stops the exporter (at exit).
    pub fn shutdown(self) {
        if let Some(provider) = self.provider {
            if let Err(err) = provider.shutdown() {
                tracing::warn!(error = %err, "flushing spans at exit failed");
            }
        }
    }
}

/// The OpenTelemetry layer over `provider`: this crate's spans only (every call's spans,
/// whatever `RUST_LOG` says for logs), carrying the attributes `docs/observability.md`
/// names and none of tracing's own (`target`, `busy_ns`, `idle_ns`, `code.*`,
/// `thread.*`), which would otherwise ride on every span. Public so a test can run calls
/// under a pipeline of its own (a black-holed collector) without replacing the
/// process-wide one.
pub fn layer<S>(provider: &SdkTracerProvider) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("switchyard"))
        .with_threads(false)
        .with_location(false)
        .with_target(false)
        .with_level(false)
        .with_tracked_inactivity(false)
        .with_filter(spans::filter())
}

/// Installs the process-wide subscriber: logs to stderr (`json` or text, level from
/// `RUST_LOG`) plus, when `otlp` is given, the OpenTelemetry layer. Call inside the
/// runtime that will carry exports.
pub fn init(json: bool, otlp: Option<&OtlpConfig>) -> Result<Telemetry, TelemetryError> {
    init_to(json, otlp, None)
}

/// As [`init`], writing the logs to `file` instead of stderr when one is given (the demo,
/// whose screen belongs to its live view).
pub fn init_to(
    json: bool,
    otlp: Option<&OtlpConfig>,
    file: Option<std::fs::File>,
) -> Result<Telemetry, TelemetryError> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let writer = match file {
        Some(file) => BoxMakeWriter::new(std::sync::Mutex::new(file)),
        None => BoxMakeWriter::new(std::io::stderr),
    };
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false);
    let fmt = if json {
        fmt.json().boxed()
    } else {
        fmt.fmt_fields(compact::SpanKeys)
            .event_format(compact::Compact)
            .boxed()
    };
    let provider = otlp.map(provider).transpose()?;
    let otel = provider.as_ref().map(|provider| {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        layer(provider)
    });
    // A second init (tests start several sidecars in one process) keeps the first.
    let _ = tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(otel)
        .try_init();
    Ok(Telemetry { provider })
}
