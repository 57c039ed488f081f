//! Gemini-format bodies (the Gemini API and Vertex AI share them): generateContent,
//! streamGenerateContent as SSE (`alt=sse`, CRLF-framed as Google sends it) or as one JSON
//! array (without `alt=sse`), and Google's error bodies (`RESOURCE_EXHAUSTED` with a
//! `RetryInfo` for 429s).
//!
//! Invariant: every body parses with Google's own SDK (`google-genai`): candidates with
//! `content.role` `model`, `finishReason`, `usageMetadata`, `modelVersion` and
//! `responseId` where it expects them; a function call is one whole part, as Gemini
//! sends it, with a thought signature.

use bytes::Bytes;
use serde_json::{json, Value};

use super::body::StreamPlan;
use super::faults::{Faults, ThinkAs};
use super::reply::{Content, Reply, Request, ToolDef};

/// Where a Gemini call is in a path: the model and whether it streams (and how).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Call {
    pub(crate) model: String,
    pub(crate) stream: Option<Streaming>,
}

/// How a streamed answer is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Streaming {
    /// `alt=sse`: server-sent events.
    Sse,
    /// No `alt=sse`: one JSON array of the chunks.
    Array,
}

/// Reads `/v1beta/models/{model}:{method}` or `/v1/models/…` (the Gemini API serves both;
/// `google-genai` 3 calls `v1`) or
/// `/v1/projects/{p}/locations/{r}/publishers/google/models/{model}:{method}` (Vertex).
pub(crate) fn route(path: &str, query: Option<&str>) -> Option<Call> {
    let rest = path
        .strip_prefix("/v1beta/models/")
        .or_else(|| path.strip_prefix("/v1/models/"))
        .or_else(|| {
            let rest = path.strip_prefix("/v1/projects/")?;
            let (_, models) = rest.split_once("/publishers/google/models/")?;
            Some(models)
        })?;
    let (model, method) = rest.rsplit_once(':')?;
    let model = percent_decode(model)?;
    let stream = match method {
        "generateContent" => None,
        "streamGenerateContent" => {
            let sse = query.is_some_and(|q| q.split('&').any(|kv| kv == "alt=sse"));
            Some(if sse {
                Streaming::Sse
            } else {
                Streaming::Array
            })
        }
        _ => return None,
    };
    Some(Call { model, stream })
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The request as the shared reply logic sees it: the first declared function, and
/// whether the conversation ends with a function response.
pub(crate) fn request(body: &Value, stream: bool) -> Request {
    let first_tool = body
        .pointer("/tools/0/functionDeclarations/0/name")
        .and_then(Value::as_str);
    let answered = body
        .get("contents")
        .and_then(Value::as_array)
        .and_then(|c| c.last())
        .and_then(|c| c.get("parts"))
        .and_then(Value::as_array)
        .is_some_and(|parts| parts.iter().any(|p| p.get("functionResponse").is_some()));
    Request {
        stream: Some(stream),
        tools: first_tool.map(|name| vec![ToolDef::named(name)]),
        messages: answered.then(|| json!([{ "role": "tool" }])),
        ..Request::default()
    }
}

fn response_id(reply: &Reply<'_>) -> String {
    format!("mock-{}", reply.id)
}

fn usage(reply: &Reply<'_>, thoughts: usize) -> Value {
    let completion = reply.completion_tokens();
    let thoughts = u32::try_from(thoughts).unwrap_or(u32::MAX);
    let mut usage = json!({
        "promptTokenCount": reply.prompt_tokens,
        "candidatesTokenCount": completion,
        "totalTokenCount": reply.prompt_tokens.saturating_add(completion).saturating_add(thoughts),
    });
    if thoughts > 0 {
        usage["thoughtsTokenCount"] = json!(thoughts);
    }
    usage
}

fn chunk(reply: &Reply<'_>, parts: Value, finish: Option<&str>, usage: Value) -> Value {
    let mut candidate = json!({ "content": { "role": "model", "parts": parts }, "index": 0 });
    if let Some(finish) = finish {
        candidate["finishReason"] = json!(finish);
    }
    json!({
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": reply.model,
        "responseId": response_id(reply),
    })
}

fn call_part(name: &str, arguments: &str) -> Value {
    let args: Value = serde_json::from_str(arguments).unwrap_or_else(|_| json!({}));
    json!({ "functionCall": { "name": name, "args": args }, "thoughtSignature": "bW9jay1zaWduYXR1cmU=" })
}

/// A generateContent answer.
pub(crate) fn generate(reply: &Reply<'_>) -> Bytes {
    let part = match &reply.content {
        Content::Text(text) => json!({ "text": text }),
        Content::Tool { name, arguments } => call_part(name, arguments),
    };
    Bytes::from(chunk(reply, json!([part]), Some("STOP"), usage(reply, 0)).to_string())
}

/// The chunks of a streamed answer: thoughts (one a second of `think`, as thought
/// parts), the text in `chunks` pieces or the call whole, then the finish with usage.
fn chunks(
    reply: &Reply<'_>,
    faults: &Faults,
) -> (Vec<Value>, std::ops::Range<usize>, std::ops::Range<usize>) {
    let thoughts = match faults.think_as {
        ThinkAs::Reasoning => faults.think_events(),
        // Gemini has no keep-alive events: thinking out of sight is silence.
        ThinkAs::Pings | ThinkAs::Silence => 0,
    };
    let mut out = Vec::new();
    for step in 0..thoughts {
        let thought =
            json!([{ "text": format!("Thinking, step {}. ", step + 1), "thought": true }]);
        out.push(chunk(reply, thought, None, usage(reply, step + 1)));
    }
    let thinking = 0..out.len();
    let start = out.len();
    match &reply.content {
        Content::Text(_) => {
            for piece in reply.pieces() {
                out.push(chunk(
                    reply,
                    json!([{ "text": piece }]),
                    None,
                    usage(reply, thoughts),
                ));
            }
        }
        Content::Tool { name, arguments } => {
            out.push(chunk(
                reply,
                json!([call_part(name, arguments)]),
                None,
                usage(reply, thoughts),
            ));
        }
    }
    let content = start..out.len();
    out.push(chunk(
        reply,
        json!([{ "text": "" }]),
        Some("STOP"),
        usage(reply, thoughts),
    ));
    (out, content, thinking)
}

/// A streamGenerateContent answer as server-sent events.
pub(crate) fn stream(reply: &Reply<'_>, faults: &Faults) -> StreamPlan {
    let (chunks, content, thinking) = chunks(reply, faults);
    let sse = |data: &Value| Bytes::from(format!("data: {data}\r\n\r\n"));
    StreamPlan {
        events: chunks.iter().map(sse).collect(),
        content,
        thinking,
        error_event: sse(
            &json!({ "error": { "code": 503, "message": "The model is overloaded. Please try again later. (mock fault)", "status": "UNAVAILABLE" } }),
        ),
    }
}

/// A streamGenerateContent answer without `alt=sse`: one JSON array.
pub(crate) fn array(reply: &Reply<'_>, faults: &Faults) -> Bytes {
    let (chunks, _, _) = chunks(reply, faults);
    Bytes::from(Value::Array(chunks).to_string())
}

/// Google's status name for an HTTP status.
fn status_name(status: u16) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        500 => "INTERNAL",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "UNKNOWN",
    }
}

/// An error body as Google sends it; a 429 carries a `RetryInfo` of `retry_after`.
pub(crate) fn error(status: u16, message: &str, retry_after: Option<u64>) -> Bytes {
    let mut error = json!({ "code": status, "message": message, "status": status_name(status) });
    if let (429, Some(seconds)) = (status, retry_after) {
        error["details"] = json!([{ "@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": format!("{seconds}s") }]);
    }
    Bytes::from(json!({ "error": error }).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_apis_route() {
        assert_eq!(
            route(
                "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
                Some("alt=sse")
            ),
            Some(Call {
                model: "gemini-2.5-flash".into(),
                stream: Some(Streaming::Sse)
            })
        );
        assert_eq!(
            route("/v1/projects/p/locations/europe-west4/publishers/google/models/gemini-2.5-pro:generateContent", None),
            Some(Call {
                model: "gemini-2.5-pro".into(),
                stream: None
            })
        );
        assert_eq!(
            route("/v1beta/models/a%2Fb:streamGenerateContent", None).map(|c| (c.model, c.stream)),
            Some(("a/b".into(), Some(Streaming::Array)))
        );
        assert_eq!(
            route("/v1/models/gemini-2.5-flash:generateContent", None).map(|c| c.model),
            Some("gemini-2.5-flash".into())
        );
        assert_eq!(route("/v1beta/models/x:countTokens", None), None);
    }
}
