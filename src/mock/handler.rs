//! Request handling: routes a request to a provider endpoint or the `/_mock/*` control
//! API, and applies the faults to provider calls.
//!
//! Invariant: each provider call takes one snapshot of the fault set when it arrives and
//! uses it to the end; the control API is never subject to faults.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONNECTION, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::{mpsc, Notify};

use super::body::{self, Body};
use super::command::Command;
use super::gemini::{self, Streaming};
use super::reply::{self, Reply};
use super::stats::Recorder;
use super::{anthropic, bedrock, openai, responses, Faults};

/// The response header that names the mock that answered.
pub const MOCK_NAME_HEADER: &str = "x-mock-name";

/// State shared by every connection of one mock.
pub(crate) struct Shared {
    pub(crate) name: String,
    name_header: HeaderValue,
    pub(crate) faults: ArcSwap<Faults>,
    pub(crate) stats: Recorder,
    /// Well-formed calls since the fault set last changed: drives the `errorRate` pattern.
    fault_calls: AtomicU64,
    /// Sequence for response ids.
    ids: AtomicU64,
    /// Weak, so the listener task still ends when the handle is dropped.
    commands: mpsc::WeakUnboundedSender<Command>,
    /// Provider calls wait while this is set ([`super::MockServer::hold`]).
    held: AtomicBool,
    /// Wakes the waiting calls when the hold ends.
    released: Notify,
}

impl Shared {
    pub(crate) fn new(
        name: &str,
        name_header: HeaderValue,
        commands: mpsc::WeakUnboundedSender<Command>,
    ) -> Self {
        Self {
            name: name.to_owned(),
            name_header,
            faults: ArcSwap::from_pointee(Faults::default()),
            stats: Recorder::default(),
            fault_calls: AtomicU64::new(0),
            ids: AtomicU64::new(0),
            commands,
            held: AtomicBool::new(false),
            released: Notify::new(),
        }
    }

    /// Makes provider calls wait in [`Self::until_released`].
    pub(crate) fn hold(&self) {
        self.held.store(true, Ordering::SeqCst);
    }

    /// Lets every waiting call go on.
    pub(crate) fn release(&self) {
        self.held.store(false, Ordering::SeqCst);
        self.released.notify_waiters();
    }

    /// Returns at once unless the mock is held (one atomic load: the hot path stays
    /// lock-free), else when it is released.
    async fn until_released(&self) {
        while self.held.load(Ordering::SeqCst) {
            let released = self.released.notified();
            tokio::pin!(released);
            // Registered before the second look, so a release in between is not missed.
            released.as_mut().enable();
            if !self.held.load(Ordering::SeqCst) {
                return;
            }
            released.await;
        }
    }

    /// Replaces the fault set; a `downFor` in it takes the mock down now (sparing
    /// connection `keep`, which carried the request) and is not kept.
    pub(crate) fn set_faults(&self, mut faults: Faults, keep: Option<u64>) -> Arc<Faults> {
        let down_for = faults.down_for.take();
        let faults = Arc::new(faults);
        self.faults.store(Arc::clone(&faults));
        self.fault_calls.store(0, Ordering::SeqCst);
        if let (Some(duration), Some(commands)) = (down_for, self.commands.upgrade()) {
            let until = Some(tokio::time::Instant::now() + duration);
            // A closed channel means the mock is shutting down: nothing left to take down.
            let _ = commands.send(Command::Down {
                keep,
                until,
                ack: None,
            });
        }
        faults
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Api {
    OpenAi,
    Anthropic,
    Gemini,
    Bedrock,
}

#[derive(Clone, Copy, Debug)]
enum Endpoint {
    Chat,
    Embeddings,
    Messages,
    Responses,
    CountTokens,
    /// Gemini generateContent (`None`) or streamGenerateContent, by its framing.
    Gemini(Option<Streaming>),
    /// Bedrock `POST /model/{id}/converse`.
    Converse,
    /// Bedrock `POST /model/{id}/converse-stream`.
    ConverseStream,
}

impl Endpoint {
    fn api(self) -> Api {
        match self {
            Endpoint::Chat | Endpoint::Embeddings | Endpoint::Responses => Api::OpenAi,
            Endpoint::Messages | Endpoint::CountTokens => Api::Anthropic,
            Endpoint::Gemini(_) => Api::Gemini,
            Endpoint::Converse | Endpoint::ConverseStream => Api::Bedrock,
        }
    }
}

enum Route<'a> {
    Provider(Endpoint, Option<&'a str>),
    /// A Gemini or Vertex path: the model is in it (percent-decoded).
    Gemini(Endpoint, String),
    Faults,
    Stats,
    Reset,
    Unknown,
}

fn route<'a>(path: &'a str, query: Option<&str>) -> Route<'a> {
    if let Some(call) = gemini::route(path, query) {
        return Route::Gemini(Endpoint::Gemini(call.stream), call.model);
    }
    match path {
        "/_mock/faults" => return Route::Faults,
        "/_mock/stats" => return Route::Stats,
        "/_mock/reset" => return Route::Reset,
        _ => {}
    }
    // Bedrock names the model (percent-encoded) in the path.
    if let Some(rest) = path.strip_prefix("/model/") {
        return match rest.rsplit_once('/') {
            Some((model, "converse")) => Route::Provider(Endpoint::Converse, Some(model)),
            Some((model, "converse-stream")) => {
                Route::Provider(Endpoint::ConverseStream, Some(model))
            }
            _ => Route::Unknown,
        };
    }
    // Azure's Responses API names the deployment in the body, not the path.
    if path == "/openai/responses" {
        return Route::Provider(Endpoint::Responses, None);
    }
    if let Some(rest) = path.strip_prefix("/openai/deployments/") {
        return match rest.split_once('/') {
            Some((deployment, "chat/completions")) => {
                Route::Provider(Endpoint::Chat, Some(deployment))
            }
            Some((deployment, "embeddings")) => {
                Route::Provider(Endpoint::Embeddings, Some(deployment))
            }
            _ => Route::Unknown,
        };
    }
    // Also without `/v1`, for clients whose base URL leaves it out.
    match path.strip_prefix("/v1").unwrap_or(path) {
        "/chat/completions" => Route::Provider(Endpoint::Chat, None),
        "/embeddings" => Route::Provider(Endpoint::Embeddings, None),
        "/messages" => Route::Provider(Endpoint::Messages, None),
        "/responses" => Route::Provider(Endpoint::Responses, None),
        "/messages/count_tokens" => Route::Provider(Endpoint::CountTokens, None),
        _ => Route::Unknown,
    }
}

/// Answers one request on connection `conn`.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    conn: u64,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let uri = req.uri().clone();
    let mut response = match (route(uri.path(), uri.query()), req.method()) {
        (Route::Provider(endpoint, deployment), &Method::POST) => {
            let deployment = deployment.map(|d| {
                percent_encoding::percent_decode_str(d)
                    .decode_utf8_lossy()
                    .into_owned()
            });
            provider(&shared, endpoint, deployment, req).await
        }
        (Route::Gemini(endpoint, model), &Method::POST) => {
            provider(&shared, endpoint, Some(model), req).await
        }
        (Route::Provider(endpoint, _) | Route::Gemini(endpoint, _), _) => {
            error(endpoint.api(), 405, "method not allowed")
        }
        (Route::Faults, &Method::GET) => json(StatusCode::OK, &*shared.faults.load_full()),
        (Route::Faults, &Method::POST) => post_faults(&shared, conn, req).await,
        (Route::Stats, &Method::GET) => json(StatusCode::OK, &shared.stats.snapshot()),
        (Route::Reset, &Method::POST) => {
            shared.stats.reset();
            shared.set_faults(Faults::default(), None);
            let mut response = Response::new(body::full(Bytes::new()));
            *response.status_mut() = StatusCode::NO_CONTENT;
            response
        }
        (Route::Faults | Route::Stats | Route::Reset, _) => {
            error(Api::OpenAi, 405, "method not allowed")
        }
        (Route::Unknown, _) => error(Api::OpenAi, 404, "no such endpoint on the mock"),
    };
    response
        .headers_mut()
        .insert(MOCK_NAME_HEADER, shared.name_header.clone());
    Ok(response)
}

async fn post_faults(shared: &Shared, conn: u64, req: Request<Incoming>) -> Response<Body> {
    let Ok(bytes) = req.into_body().collect().await.map(|b| b.to_bytes()) else {
        return error(Api::OpenAi, 400, "could not read the request body");
    };
    let faults: Faults = match serde_json::from_slice(&bytes) {
        Ok(faults) => faults,
        Err(err) => return error(Api::OpenAi, 400, &format!("invalid faults: {err}")),
    };
    if let Err(err) = faults.validate() {
        return error(Api::OpenAi, 400, &format!("invalid faults: {err}"));
    }
    let going_down = faults.down_for.is_some();
    let stored = shared.set_faults(faults, Some(conn));
    let mut response = json(StatusCode::OK, &*stored);
    if going_down {
        // The mock is going down: this connection must not be reused.
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

async fn provider(
    shared: &Shared,
    endpoint: Endpoint,
    deployment: Option<String>,
    req: Request<Incoming>,
) -> Response<Body> {
    let api = endpoint.api();
    let (parts, body) = req.into_parts();
    let Ok(bytes) = body.collect().await.map(|b| b.to_bytes()) else {
        return error(api, 400, "could not read the request body");
    };
    let parsed = match endpoint {
        // Gemini's body is its own shape; the model and streaming are in the path.
        Endpoint::Gemini(stream) => serde_json::from_slice::<serde_json::Value>(&bytes)
            .map(|body| gemini::request(&body, stream.is_some())),
        Endpoint::Converse | Endpoint::ConverseStream => {
            serde_json::from_slice(&bytes).map(|body| {
                reply::Request::from_converse(&body, matches!(endpoint, Endpoint::ConverseStream))
            })
        }
        Endpoint::Chat
        | Endpoint::Embeddings
        | Endpoint::Messages
        | Endpoint::Responses
        | Endpoint::CountTokens => serde_json::from_slice::<reply::Request>(&bytes),
    };
    let model = deployment.or_else(|| parsed.as_ref().ok().and_then(|r| r.model.clone()));
    shared.stats.record(
        &parts.method,
        &parts.uri,
        model.as_deref(),
        &parts.headers,
        &bytes,
    );
    shared.until_released().await;
    let faults = shared.faults.load_full();
    if faults.blackhole {
        // Never answer; the connection stays open until the client gives up or the mock
        // goes down or shuts down.
        return std::future::pending().await;
    }
    let call = shared.fault_calls.fetch_add(1, Ordering::SeqCst);
    let delay = faults.latency.unwrap_or_default() + faults.slow_tail(call).unwrap_or_default();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let (Api::Bedrock, Some(key)) = (api, faults.sigv4_key.as_deref()) {
        if let Err((name, message)) = bedrock::check_signature(&parts, &bytes, key) {
            let mut refused = error(api, 403, &message);
            refused
                .headers_mut()
                .insert("x-amzn-errortype", HeaderValue::from_static(name));
            return refused;
        }
    }
    let request = match parsed {
        Ok(request) => request,
        Err(err) => return error(api, 400, &format!("invalid JSON body: {err}")),
    };
    if faults.fails_call(call) {
        return injected_error(api, &faults, &shared.name);
    }
    if let (false, Some(generation)) = (request.is_stream(), faults.generation_time()) {
        // A non-streamed answer sends nothing until it is complete.
        tokio::time::sleep(generation).await;
    }
    let id = shared.ids.fetch_add(1, Ordering::Relaxed) + 1;
    let model = model.as_deref().unwrap_or("mock");
    let chunks = faults.deltas();
    let reply = Reply::new(&shared.name, id, model, &request, bytes.len(), chunks);
    match (endpoint, request.is_stream()) {
        (Endpoint::Embeddings, _) => ok_json(body::single(
            openai::embeddings(&request, model, reply.prompt_tokens),
            &faults,
        )),
        (Endpoint::Chat, false) => ok_json(body::single(openai::completion(&reply), &faults)),
        (Endpoint::Chat, true) => {
            let plan = openai::completion_stream(&reply, request.include_usage(), &faults);
            ok_sse(body::stream(plan, &faults))
        }
        (Endpoint::CountTokens, _) => {
            let count = serde_json::json!({ "input_tokens": reply.prompt_tokens });
            ok_json(body::single(Bytes::from(count.to_string()), &faults))
        }
        (Endpoint::Responses, false) => ok_json(body::single(responses::response(&reply), &faults)),
        (Endpoint::Responses, true) => ok_sse(body::stream(
            responses::response_stream(&reply, &faults),
            &faults,
        )),
        (Endpoint::Messages, false) => ok_json(body::single(anthropic::message(&reply), &faults)),
        (Endpoint::Messages, true) => ok_sse(body::stream(
            anthropic::message_stream(&reply, &faults),
            &faults,
        )),
        (Endpoint::Gemini(None), _) => ok_json(body::single(gemini::generate(&reply), &faults)),
        (Endpoint::Gemini(Some(Streaming::Sse)), _) => {
            ok_sse(body::stream(gemini::stream(&reply, &faults), &faults))
        }
        (Endpoint::Gemini(Some(Streaming::Array)), _) => {
            ok_json(body::single(gemini::array(&reply, &faults), &faults))
        }
        (Endpoint::Converse, _) => ok_json(body::single(bedrock::converse(&reply), &faults)),
        (Endpoint::ConverseStream, _) => with_body(
            StatusCode::OK,
            "application/vnd.amazon.eventstream",
            body::stream(
                bedrock::converse_stream(&reply, faults.error_status),
                &faults,
            ),
        ),
    }
}

fn injected_error(api: Api, faults: &Faults, name: &str) -> Response<Body> {
    let status =
        StatusCode::from_u16(faults.error_status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let message = format!("mock {name}: injected {status}");
    let body = match (&faults.error_body, api) {
        (Some(raw), _) => Bytes::from(raw.clone()),
        // Google says how long to wait in the body (RetryInfo), not in a header.
        (None, Api::Gemini) => gemini::error(status.as_u16(), &message, faults.retry_after),
        (None, Api::OpenAi | Api::Anthropic | Api::Bedrock) => {
            error_body(api, status.as_u16(), &message)
        }
    };
    let mut response = with_body(status, "application/json", body::full(body));
    let headers = response.headers_mut();
    let named = faults
        .error_headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("x-amzn-errortype"));
    if api == Api::Bedrock && !named {
        headers.insert(
            "x-amzn-errortype",
            HeaderValue::from_static(bedrock::error_name(status.as_u16())),
        );
    }
    if let (Some(seconds), Api::OpenAi | Api::Anthropic | Api::Bedrock) = (faults.retry_after, api)
    {
        headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    for (name, value) in &faults.error_headers {
        // Validated when the fault set came in over flags or HTTP; a bad pair set through
        // the Rust handle is skipped rather than failing the call.
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            headers.append(name, value);
        }
    }
    response
}

fn error_body(api: Api, status: u16, message: &str) -> Bytes {
    match api {
        Api::OpenAi => openai::error(status, message),
        Api::Anthropic => anthropic::error(status, message),
        Api::Gemini => gemini::error(status, message, None),
        Api::Bedrock => bedrock::error(message),
    }
}

fn error(api: Api, status: u16, message: &str) -> Response<Body> {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    with_body(
        code,
        "application/json",
        body::full(error_body(api, status, message)),
    )
}

fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(bytes) => with_body(status, "application/json", body::full(bytes)),
        Err(err) => error(Api::OpenAi, 500, &format!("could not serialise: {err}")),
    }
}

fn ok_json(body: Body) -> Response<Body> {
    with_body(StatusCode::OK, "application/json", body)
}

fn ok_sse(body: Body) -> Response<Body> {
    let mut response = with_body(StatusCode::OK, "text/event-stream", body);
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn with_body(status: StatusCode, content_type: &'static str, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
