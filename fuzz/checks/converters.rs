//! The non-streamed converters (requests, responses and errors between OpenAI Chat,
//! Anthropic Messages and Responses) and the usage readers, over arbitrary JSON: no
//! panic, and a converted request or response is itself a JSON object.

use serde_json::Value;
use switchyard::policy::spec::Wire;
use switchyard::translate::{
    anthropic_to_openai_request, anthropic_to_openai_response, chat_to_responses_response,
    embeddings_to_anthropic, error_to_anthropic, error_to_openai, openai_to_anthropic_request,
    openai_to_anthropic_response, responses_to_chat_request,
};
use switchyard::wire::body_usage;

fn object(v: &Value) {
    assert!(v.is_object(), "{v}");
}

/// The first two bytes are an HTTP status for the error converters; the rest is a body.
pub fn run(data: &[u8]) {
    let Some((status, body)) = data.split_at_checked(2) else {
        return;
    };
    let status = 400 + u16::from_be_bytes([status[0], status[1]]) % 200;
    // Statuses may be mapped (Anthropic's 529 overloaded is OpenAI's 503), never to a
    // success.
    let (code, v) = error_to_openai(status, body);
    assert!((400..=599).contains(&code), "{code}");
    object(&v);
    let (code, v) = error_to_anthropic(status, body);
    assert!((400..=599).contains(&code), "{code}");
    object(&v);
    for wire in [
        Wire::Chat,
        Wire::Messages,
        Wire::Responses,
        Wire::Embeddings,
    ] {
        body_usage(wire, body);
    }
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    if let Ok(v) = openai_to_anthropic_request(&req, "m", 4096) {
        object(&v);
    }
    if let Ok(v) = anthropic_to_openai_request(&req, "m") {
        object(&v);
    }
    if let Ok(v) = responses_to_chat_request(&req, "m") {
        object(&v);
        if let Ok(v) = openai_to_anthropic_request(&v, "m", 4096) {
            object(&v);
        }
    }
    let _ = embeddings_to_anthropic(&req);
    object(&anthropic_to_openai_response(&req, "m"));
    object(&openai_to_anthropic_response(&req, "m"));
    object(&chat_to_responses_response(&req, "m"));
    object(&chat_to_responses_response(
        &anthropic_to_openai_response(&req, "m"),
        "m",
    ));
}
