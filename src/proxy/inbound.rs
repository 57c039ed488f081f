//! The inbound call: its body read once into a replayable buffer (with a cap), and the
//! few fields routing needs, found without building a JSON tree so the body can be
//! resent byte for byte with only `model` spliced in.

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::ProxyError;

/// The request body and what routing needs from it.
#[derive(Debug, Clone)]
pub struct InboundBody {
    /// The body as the app sent it.
    pub bytes: Bytes,
    /// The requested model.
    pub model: String,
    /// Whether the app asked for a stream.
    pub stream: bool,
    /// The stored response a Responses call continues, which pins it to its holder.
    pub previous_response_id: Option<String>,
    /// Byte range of the `model` value (quotes included) within `bytes`.
    model_span: (usize, usize),
}

#[derive(Deserialize)]
struct Peek<'a> {
    #[serde(borrow)]
    model: Option<&'a RawValue>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default, borrow)]
    previous_response_id: Option<std::borrow::Cow<'a, str>>,
}

/// Reads the whole body, refusing more than `limit` bytes.
pub async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, ProxyError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => {
            Err(ProxyError::BodyTooLarge { limit })
        }
        Err(err) => Err(ProxyError::BadRequest(format!(
            "could not read the request body: {err}"
        ))),
    }
}

impl InboundBody {
    /// Parses what routing needs; the body must be a JSON object with a string `model`.
    pub fn parse(bytes: Bytes) -> Result<InboundBody, ProxyError> {
        // A derived struct also reads from a JSON array (`["gpt-4o", true]` by field
        // order), which no provider takes for a request (found by fuzzing).
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            return Err(ProxyError::BadRequest(
                "the body is not a JSON object".into(),
            ));
        }
        let peek: Peek<'_> = serde_json::from_slice(&bytes).map_err(|e| {
            ProxyError::BadRequest(format!("the body is not a valid JSON object: {e}"))
        })?;
        let raw = peek
            .model
            .ok_or_else(|| ProxyError::BadRequest("the body has no \"model\" field".into()))?;
        let model: String = serde_json::from_str(raw.get())
            .map_err(|_| ProxyError::BadRequest("\"model\" must be a string".into()))?;
        // `raw` borrows from `bytes`: its offset locates the value for splicing.
        let start = raw.get().as_ptr() as usize - bytes.as_ptr() as usize;
        let model_span = (start, start + raw.get().len());
        let stream = peek.stream.unwrap_or(false);
        Ok(InboundBody {
            model,
            stream,
            previous_response_id: peek.previous_response_id.map(|id| id.into_owned()),
            model_span,
            bytes,
        })
    }

    /// The body to send with `model` set to `target_model` (shared, not copied, when it
    /// is the requested model already).
    pub fn with_model(&self, target_model: &str) -> Bytes {
        if target_model == self.model {
            return self.bytes.clone();
        }
        let quoted = serde_json::to_string(target_model).expect("a string always serialises");
        let (start, end) = self.model_span;
        let mut out = BytesMut::with_capacity(self.bytes.len() + quoted.len());
        out.extend_from_slice(&self.bytes[..start]);
        out.extend_from_slice(quoted.as_bytes());
        out.extend_from_slice(&self.bytes[end..]);
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn splices_the_model_and_nothing_else() {
        let body = InboundBody::parse(Bytes::from_static(
            br#"{"messages":[{"model":"x"}], "model" : "gpt-4o","stream":true}"#,
        ))
        .unwrap();
        assert_eq!(body.model, "gpt-4o");
        assert!(body.stream);
        assert_eq!(
            &body.with_model("claude \"q\"")[..],
            br#"{"messages":[{"model":"x"}], "model" : "claude \"q\"","stream":true}"#
        );
    }

    #[test]
    fn rejects_what_is_not_a_request() {
        for bad in [
            &b"not json"[..],
            b"[]",
            br#"[ "gpt-4o", true ]"#,
            b"{}",
            br#"{"model":3}"#,
            br#"{"model":"a""#,
        ] {
            assert!(
                matches!(
                    InboundBody::parse(Bytes::from_static(bad)),
                    Err(ProxyError::BadRequest(_))
                ),
                "{bad:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn rewrite_equals_reserialising(model in "\\PC{0,20}", target in "\\PC{0,20}", extra in "[a-z]{1,8}") {
            let original = serde_json::json!({"a": extra, "model": model, "z": [1, 2]});
            let body = InboundBody::parse(Bytes::from(original.to_string())).unwrap();
            let rewritten: serde_json::Value = serde_json::from_slice(&body.with_model(&target)).unwrap();
            let mut expected = original.clone();
            expected["model"] = serde_json::Value::String(target);
            prop_assert_eq!(rewritten, expected);
        }

        #[test]
        fn parse_never_panics(input in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = InboundBody::parse(Bytes::from(input));
        }
    }
}
