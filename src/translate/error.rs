//! Provider error bodies translated into the inbound dialect, so the app's SDK raises
//! the error class it would have raised against its own provider.
//!
//! Invariant: the result is always a well-formed error body of the target dialect, even
//! when the upstream body is not JSON; statuses keep their meaning (Anthropic's 529
//! "overloaded" is OpenAI's 503 and back).

use serde_json::{json, Value};

use super::response::str_at;

/// How much of a non-JSON upstream body is quoted in the translated message.
const MAX_QUOTED: usize = 512;

/// Translates an Anthropic error (status and body) into an OpenAI-shaped error.
pub fn error_to_openai(status: u16, anthropic_body: &[u8]) -> (u16, Value) {
    let (kind, message) = match serde_json::from_slice::<Value>(anthropic_body) {
        Ok(v) => {
            let err = v.get("error").unwrap_or(&Value::Null);
            (
                str_at(err, "type").to_owned(),
                str_at(err, "message").to_owned(),
            )
        }
        Err(_) => (String::new(), quote(anthropic_body)),
    };
    let status = if status == 529 || kind == "overloaded_error" {
        503
    } else {
        status
    };
    let openai_type = match kind.as_str() {
        "invalid_request_error" | "request_too_large" | "not_found_error" => {
            "invalid_request_error"
        }
        "authentication_error" => "authentication_error",
        "permission_error" => "permission_error",
        "rate_limit_error" => "rate_limit_exceeded",
        _ if status >= 500 => "server_error",
        _ => "invalid_request_error",
    };
    let code = if kind.is_empty() {
        Value::Null
    } else {
        json!(kind)
    };
    let message = if message.is_empty() {
        format!("upstream returned status {status}")
    } else {
        message
    };
    (
        status,
        json!({ "error": { "message": message, "type": openai_type, "param": null, "code": code } }),
    )
}

/// Translates an OpenAI error (status and body) into an Anthropic-shaped error.
pub fn error_to_anthropic(status: u16, openai_body: &[u8]) -> (u16, Value) {
    let message = match serde_json::from_slice::<Value>(openai_body) {
        Ok(v) => str_at(v.get("error").unwrap_or(&Value::Null), "message").to_owned(),
        Err(_) => quote(openai_body),
    };
    let status = if status == 503 { 529 } else { status };
    let message = if message.is_empty() {
        format!("upstream returned status {status}")
    } else {
        message
    };
    (
        status,
        anthropic_error_body(anthropic_error_type(status), &message),
    )
}

/// The Anthropic error type the official SDKs associate with a status.
pub(super) fn anthropic_error_type(status: u16) -> &'static str {
    match status {
        400 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ if status >= 500 => "api_error",
        _ => "invalid_request_error",
    }
}

/// An Anthropic error body (also the data of a stream `error` event).
pub(super) fn anthropic_error_body(kind: &str, message: &str) -> Value {
    json!({ "type": "error", "error": { "type": kind, "message": message } })
}

fn quote(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(MAX_QUOTED) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anthropic_errors_become_openai_errors() {
        let cases: &[(u16, &str, u16, &str, &str)] = &[
            (
                529,
                "overloaded_error",
                503,
                "server_error",
                "overloaded_error",
            ),
            (
                429,
                "rate_limit_error",
                429,
                "rate_limit_exceeded",
                "rate_limit_error",
            ),
            (
                400,
                "invalid_request_error",
                400,
                "invalid_request_error",
                "invalid_request_error",
            ),
            (
                401,
                "authentication_error",
                401,
                "authentication_error",
                "authentication_error",
            ),
            (500, "api_error", 500, "server_error", "api_error"),
        ];
        for &(status, kind, want_status, want_type, want_code) in cases {
            let body = format!(r#"{{"type":"error","error":{{"type":"{kind}","message":"m"}}}}"#);
            let (s, v) = error_to_openai(status, body.as_bytes());
            assert_eq!(s, want_status, "{kind}");
            assert_eq!(v["error"]["type"], want_type, "{kind}");
            assert_eq!(v["error"]["code"], want_code, "{kind}");
            assert_eq!(v["error"]["message"], "m");
        }
    }

    #[test]
    fn openai_errors_become_anthropic_errors() {
        let cases: &[(u16, u16, &str)] = &[
            (503, 529, "overloaded_error"),
            (429, 429, "rate_limit_error"),
            (400, 400, "invalid_request_error"),
            (401, 401, "authentication_error"),
            (404, 404, "not_found_error"),
            (500, 500, "api_error"),
        ];
        for &(status, want_status, want_type) in cases {
            let body = br#"{"error":{"message":"m","type":"x","code":null}}"#;
            let (s, v) = error_to_anthropic(status, body);
            assert_eq!(s, want_status);
            assert_eq!(v["type"], "error");
            assert_eq!(v["error"]["type"], want_type);
            assert_eq!(v["error"]["message"], "m");
        }
    }

    #[test]
    fn non_json_bodies_are_quoted_and_bounded() {
        let html = format!("<html>{}</html>", "x".repeat(2000));
        let (s, v) = error_to_openai(502, html.as_bytes());
        assert_eq!(s, 502);
        assert_eq!(v["error"]["type"], "server_error");
        assert!(v["error"]["message"].as_str().unwrap().len() < 600);
        let (s, v) = error_to_anthropic(502, b"");
        assert_eq!((s, &v["error"]["type"]), (502, &json!("api_error")));
        assert_eq!(v["error"]["message"], "upstream returned status 502");
    }
}
