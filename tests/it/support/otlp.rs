//! A real OTLP receiver on 127.0.0.1 (gRPC via tonic's generated `TraceServiceServer`,
//! HTTP/protobuf via hyper + prost), and the one process-wide telemetry pipeline every
//! telemetry test shares. Each test sends its own random trace id and reads back only
//! the spans of that trace, so tests stay parallel-safe.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// Everything the receiver got, raw and decoded.
#[derive(Default)]
pub struct Received {
    requests: Mutex<Vec<ExportTraceServiceRequest>>,
    raw: Mutex<Vec<u8>>,
    arrived: Notify,
}

impl Received {
    fn push(&self, request: ExportTraceServiceRequest) {
        self.raw
            .lock()
            .unwrap()
            .extend_from_slice(&request.encode_to_vec());
        self.requests.lock().unwrap().push(request);
        self.arrived.notify_waiters();
    }

    /// Spans of one trace, with their resource attributes.
    pub fn trace(&self, trace_id: &[u8]) -> Vec<(Vec<KeyValue>, Span)> {
        let requests = self.requests.lock().unwrap();
        let mut out = Vec::new();
        for request in requests.iter() {
            for rs in &request.resource_spans {
                let resource = rs
                    .resource
                    .as_ref()
                    .map(|r| r.attributes.clone())
                    .unwrap_or_default();
                for ss in &rs.scope_spans {
                    for span in &ss.spans {
                        if span.trace_id == trace_id {
                            out.push((resource.clone(), span.clone()));
                        }
                    }
                }
            }
        }
        out
    }

    /// Every byte received, to search for things that must never be exported.
    pub fn raw(&self) -> Vec<u8> {
        self.raw.lock().unwrap().clone()
    }

    /// Waits (flushing) until `n` spans of the trace have arrived.
    pub async fn wait_for(&self, trace_id: &[u8], n: usize) -> Vec<(Vec<KeyValue>, Span)> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let arrived = self.arrived.notified();
            flush();
            let spans = self.trace(trace_id);
            if spans.len() >= n {
                return spans;
            }
            assert!(
                tokio::time::timeout_at(deadline, arrived).await.is_ok()
                    || self.trace(trace_id).len() >= n,
                "only {} of {n} spans arrived",
                self.trace(trace_id).len()
            );
        }
    }
}

struct Grpc(Arc<Received>);

#[tonic::async_trait]
impl TraceService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// Receivers (gRPC and HTTP) feeding one store, on their own runtime so they outlive
/// every test's runtime.
pub struct Receiver {
    pub received: Arc<Received>,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub runtime: tokio::runtime::Handle,
}

fn start_receiver() -> Receiver {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let received = Arc::new(Received::default());
    let grpc_listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let http_listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let grpc = grpc_listener.local_addr().unwrap();
    let http = http_listener.local_addr().unwrap();
    let service = TraceServiceServer::new(Grpc(Arc::clone(&received)));
    runtime.spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming(grpc_listener)),
    );
    let store = Arc::clone(&received);
    runtime.spawn(async move {
        loop {
            let Ok((stream, _)) = http_listener.accept().await else {
                continue;
            };
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let store = Arc::clone(&store);
                        async move {
                            assert_eq!(req.uri().path(), "/v1/traces");
                            let body = req.into_body().collect().await?.to_bytes();
                            let request =
                                ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                            store.push(request);
                            let reply = ExportTraceServiceResponse::default().encode_to_vec();
                            Ok::<_, hyper::Error>(
                                http::Response::builder()
                                    .header("content-type", "application/x-protobuf")
                                    .body(Full::new(Bytes::from(reply)))
                                    .unwrap(),
                            )
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let handle = runtime.handle().clone();
    // The runtime lives for the whole test process.
    std::mem::forget(runtime);
    Receiver {
        received,
        grpc,
        http,
        runtime: handle,
    }
}

fn incoming(
    listener: TcpListener,
) -> impl futures_util::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures_util::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(stream, _)| stream);
        Some((accepted, listener))
    })
}

struct Pipeline {
    receiver: Receiver,
    telemetry: switchyard::telemetry::Telemetry,
}

static PIPELINE: OnceLock<Pipeline> = OnceLock::new();

/// The shared receiver, with the process-wide subscriber exporting to it over gRPC.
pub fn receiver() -> &'static Receiver {
    &PIPELINE
        .get_or_init(|| {
            // Built on a plain thread: tests call this from inside their own runtime.
            let receiver = std::thread::spawn(start_receiver).join().unwrap();
            let endpoint = format!("http://{}", receiver.grpc);
            let config = switchyard::telemetry::OtlpConfig::from_lookup(|name| match name {
                "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(endpoint.clone()),
                "OTEL_EXPORTER_OTLP_PROTOCOL" => Some("grpc".into()),
                "OTEL_BSP_SCHEDULE_DELAY" => Some("50".into()),
                "POD_NAME" => Some("app-7d9f".into()),
                "POD_NAMESPACE" => Some("shop".into()),
                _ => None,
            })
            .unwrap()
            .unwrap();
            let _entered = receiver.runtime.enter();
            let telemetry = switchyard::telemetry::init(false, Some(&config)).unwrap();
            Pipeline {
                receiver,
                telemetry,
            }
        })
        .receiver
}

/// Pushes queued spans out now.
pub fn flush() {
    if let Some(pipeline) = PIPELINE.get() {
        pipeline.telemetry.flush();
    }
}

/// A fresh random trace id and the `traceparent` that carries it.
pub fn new_trace() -> ([u8; 16], [u8; 8], String) {
    let trace: [u8; 16] = std::array::from_fn(|_| fastrand::u8(..));
    let parent: [u8; 8] = std::array::from_fn(|_| fastrand::u8(1..));
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let header = format!("00-{}-{}-01", hex(&trace), hex(&parent));
    (trace, parent, header)
}

fn value<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()
}

/// A string attribute (a string array joined by commas). `None` for an attribute of any
/// other type, so a number exported as text, or text as a number, fails the comparison.
pub fn attr(attributes: &[KeyValue], key: &str) -> Option<String> {
    match value(attributes, key)? {
        Value::StringValue(s) => Some(s.clone()),
        Value::ArrayValue(array) => Some(
            array
                .values
                .iter()
                .filter_map(|v| match v.value.as_ref()? {
                    Value::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join(","),
        ),
        _ => None,
    }
}

/// An integer attribute, as OTLP's `intValue`; `None` when absent or of another type.
pub fn int(attributes: &[KeyValue], key: &str) -> Option<i64> {
    match value(attributes, key)? {
        Value::IntValue(i) => Some(*i),
        _ => None,
    }
}

/// A floating-point attribute, as OTLP's `doubleValue`; `None` when absent or of another
/// type.
pub fn double(attributes: &[KeyValue], key: &str) -> Option<f64> {
    match value(attributes, key)? {
        Value::DoubleValue(d) => Some(*d),
        _ => None,
    }
}

/// The attributes `docs/observability.md` allows on a span; anything else (tracing's own `target`,
/// `busy_ns`, `idle_ns`, `code.*`, `thread.*`, `level`) must not be exported.
pub fn assert_only_convention_attributes(span: &Span) {
    const NAMED: [&str; 4] = [
        "server.address",
        "server.port",
        "http.response.status_code",
        "error.type",
    ];
    for kv in &span.attributes {
        let key = kv.key.as_str();
        assert!(
            key.starts_with("gen_ai.") || key.starts_with("switchyard.") || NAMED.contains(&key),
            "span {:?} exports {key:?}, which docs/observability.md does not name",
            span.name
        );
    }
}
