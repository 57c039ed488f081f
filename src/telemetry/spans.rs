//! The spans and span events of `docs/observability.md`: a SERVER span per inbound call,
//! a CLIENT span per attempt, GenAI semantic-convention attributes, and W3C context in
//! and out (the `switchyard.breaker` event is `target.rs`'s, where a breaker changes
//! state). Invariant: nothing here reads or records credentials, and prompt or
//! completion text is recorded only when the policy's `telemetry.captureContent` is true.

use http::HeaderMap;
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::KeyValue;
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use serde::Deserialize;
use serde_json::value::RawValue;
use tracing::field::Empty;
use tracing::{Metadata, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::filter::FilterFn;

use crate::event_kind::Usage;
use crate::operation::Operation;
use crate::routing::Target;

/// The OpenTelemetry layer sees this crate's spans only: logs stay logs.
pub fn filter() -> FilterFn<fn(&Metadata<'_>) -> bool> {
    FilterFn::new(|meta: &Metadata<'_>| meta.is_span() && meta.target().starts_with("switchyard"))
}

/// The SERVER span of one inbound call, child of the app's `traceparent` if it sent one.
pub fn call(operation: Operation, headers: &HeaderMap) -> Span {
    let span = tracing::info_span!(
        "call",
        otel.name = operation.genai_name(),
        otel.kind = "server",
        otel.status_code = Empty,
        gen_ai.operation.name = operation.genai_name(),
        gen_ai.request.model = Empty,
        gen_ai.response.model = Empty,
        http.response.status_code = Empty,
        error.type = Empty,
        switchyard.route = Empty,
        switchyard.provider = Empty,
        switchyard.attempts = Empty,
    );
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(headers))
    });
    if parent.span().span_context().is_valid() {
        // Fails only when the OpenTelemetry layer is absent: then there is no trace.
        let _ = span.set_parent(parent);
    }
    span
}

/// Names the call's span `{operation} {requested model}` once the body is read.
pub fn requested(span: &Span, operation: Operation, model: &str) {
    // The OpenTelemetry span has started by now, so rename it there: `otel.name` is
    // only read before the start.
    span.context()
        .span()
        .update_name(format!("{} {model}", operation.genai_name()));
    span.record("gen_ai.request.model", model);
}

/// Records which route the call took, who answered it (provider, model) if anyone did,
/// and after how many attempts.
pub fn routed(span: &Span, route: &str, served: Option<(&str, &str)>, attempts: usize) {
    span.record("switchyard.route", route);
    if let Some((provider, model)) = served {
        span.record("switchyard.provider", provider);
        span.record("gen_ai.response.model", model);
    }
    span.record("switchyard.attempts", int(attempts));
}

/// The CLIENT span of one attempt, named `{operation} {target model}`.
pub fn attempt(
    target: &Target,
    operation: Operation,
    model: &str,
    route: &str,
    number: usize,
) -> Span {
    let (host, port) = server(&target.provider.server_address, &target.provider.base_url);
    tracing::info_span!(
        "attempt",
        otel.name = format!("{} {model}", operation.genai_name()),
        otel.kind = "client",
        otel.status_code = Empty,
        gen_ai.operation.name = operation.genai_name(),
        gen_ai.provider.name = crate::provider::of(target.provider.api).genai_name,
        gen_ai.request.model = model,
        gen_ai.response.model = Empty,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        server.address = host,
        server.port = port,
        http.response.status_code = Empty,
        error.type = Empty,
        otel.status_description = Empty,
        switchyard.provider = %target.provider.name,
        switchyard.route = route,
        switchyard.attempt = int(number),
        switchyard.time_to_first_token_s = Empty,
    )
}

/// A count as the `i64` OpenTelemetry's integer attributes hold. tracing-opentelemetry
/// turns only `i64` fields into integers (`u64` and `u16` arrive as strings), so every
/// integer attribute goes through here; a count past `i64::MAX` saturates.
fn int(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// `server.address` (the host alone, IPv6 without brackets) and `server.port` of a base
/// URL's `host[:port]`; the port defaults to the scheme's when the URL leaves it out.
fn server<'a>(authority: &'a str, base_url: &str) -> (&'a str, Option<i64>) {
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    // An IPv6 host is bracketed, so the last `:` outside the brackets is the port's.
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => match port.parse::<u16>() {
            Ok(port) => (host, Some(i64::from(port))),
            Err(_) => (authority, None),
        },
        None => (authority, None),
    };
    let port = port.or_else(|| {
        let scheme = base_url.split_once("://").map(|(scheme, _)| scheme);
        match scheme {
            Some(s) if s.eq_ignore_ascii_case("https") => Some(443),
            Some(s) if s.eq_ignore_ascii_case("http") => Some(80),
            _ => None,
        }
    });
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    (host, port)
}

/// Puts the span's context on an upstream request as `traceparent`/`tracestate`,
/// replacing the app's; leaves the app's when tracing is off.
pub fn inject(span: &Span, headers: &mut HeaderMap) {
    let context = span.context();
    if context.span().span_context().is_valid() {
        opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.inject_context(&context, &mut HeaderInjector(headers));
        });
    }
}

/// Records the upstream's status code.
pub fn status(span: &Span, status: http::StatusCode) {
    span.record("http.response.status_code", int(status.as_u16()));
}

/// Marks a span failed with a low-cardinality reason (`error.type`).
pub fn failed(span: &Span, reason: &str) {
    span.record("error.type", reason);
    span.record("otel.status_code", "ERROR");
}

/// Says why an attempt could not connect (the TLS cause, the proxy's answer) in the
/// span's status description; the error type stays one low-cardinality word.
pub fn failure_detail(span: &Span, detail: &str) {
    span.record("otel.status_description", detail);
}

/// Records the model that answered an attempt.
pub fn response_model(span: &Span, model: &str) {
    span.record("gen_ai.response.model", model);
}

/// Records a complete answer's usage and time to first token.
pub fn usage(span: &Span, usage: Usage, ttft: Option<std::time::Duration>) {
    span.record("gen_ai.usage.input_tokens", int(usage.input));
    span.record("gen_ai.usage.output_tokens", int(usage.output));
    if let Some(reason) = usage.finish {
        let reasons = opentelemetry::Array::from(vec![opentelemetry::StringValue::from(reason)]);
        span.set_attribute(
            "gen_ai.response.finish_reasons",
            opentelemetry::Value::Array(reasons),
        );
    }
    if let Some(ttft) = ttft {
        span.record("switchyard.time_to_first_token_s", ttft.as_secs_f64());
    }
}

/// The parts of a request or response body that carry content.
#[derive(Deserialize)]
struct Content<'a> {
    #[serde(borrow)]
    messages: Option<&'a RawValue>,
    #[serde(borrow)]
    choices: Option<&'a RawValue>,
    #[serde(borrow)]
    content: Option<&'a RawValue>,
}

/// Records the prompt (`gen_ai.input.messages`), only with `captureContent: true`.
pub fn prompt(span: &Span, capture: bool, body: &[u8]) {
    if let Some(Content {
        messages: Some(messages),
        ..
    }) = capture.then(|| serde_json::from_slice(body).ok()).flatten()
    {
        // An OpenTelemetry attribute only, never a tracing field: fields reach the logs.
        span.set_attribute("gen_ai.input.messages", messages.get().to_owned());
    }
}

/// Records a non-streamed completion (`gen_ai.output.messages`), only with
/// `captureContent: true`.
pub fn completion(span: &Span, capture: bool, body: &[u8]) {
    let Some(content) = capture
        .then(|| serde_json::from_slice::<Content<'_>>(body).ok())
        .flatten()
    else {
        return;
    };
    if let Some(output) = content.choices.or(content.content) {
        span.set_attribute("gen_ai.output.messages", output.get().to_owned());
    }
}

/// Span event on the call: moving from a failed target to the next.
pub fn failover(span: &Span, from: &str, to: &str, reason: &str) {
    event(
        span,
        "switchyard.failover",
        vec![
            KeyValue::new("from", from.to_owned()),
            KeyValue::new("to", to.to_owned()),
            KeyValue::new("reason", reason.to_owned()),
        ],
    );
}

/// Span event: a target passed over without an attempt.
pub fn skipped(span: &Span, target: &str, reason: &str) {
    event(
        span,
        "switchyard.skipped",
        vec![
            KeyValue::new("target", target.to_owned()),
            KeyValue::new("reason", reason.to_owned()),
        ],
    );
}

fn event(span: &Span, name: &'static str, attributes: Vec<KeyValue>) {
    if !span.is_disabled() {
        span.add_event(name, attributes);
    }
}

/// Marks an attempt of a hedged call: `true` on the one that answered, `false` on the one
/// cancelled.
pub fn hedge_winner(span: &Span, won: bool) {
    span.set_attribute("switchyard.hedge.winner", won);
}

#[cfg(test)]
mod tests {
    use super::server;

    #[test]
    fn server_address_is_the_host_and_the_port_an_integer() {
        for (authority, base_url, expected) in [
            (
                "127.0.0.1:8080",
                "http://127.0.0.1:8080/v1",
                ("127.0.0.1", Some(8080)),
            ),
            (
                "api.openai.com",
                "https://api.openai.com/v1",
                ("api.openai.com", Some(443)),
            ),
            (
                "example.com",
                "HTTP://example.com",
                ("example.com", Some(80)),
            ),
            ("[::1]:4000", "http://[::1]:4000", ("::1", Some(4000))),
            ("[::1]", "https://[::1]/v1", ("::1", Some(443))),
            ("user@host:81", "http://user@host:81", ("host", Some(81))),
            ("", "", ("", None)),
        ] {
            assert_eq!(server(authority, base_url), expected, "{authority}");
        }
    }
}
