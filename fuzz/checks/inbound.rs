//! The inbound request parser and the model rewrite: never a panic; a body that parses
//! keeps every byte but the `model` value when the model is rewritten, and the rewritten
//! body parses again to the new model and the same `stream` flag.

use bytes::Bytes;
use switchyard::proxy::inbound::InboundBody;

/// The first line (up to a newline) is the target model, the rest the request body.
pub fn run(data: &[u8]) {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let Ok(model) = std::str::from_utf8(&data[..split]) else {
        return;
    };
    let body = Bytes::copy_from_slice(data.get(split + 1..).unwrap_or_default());
    let Ok(parsed) = InboundBody::parse(body.clone()) else {
        return;
    };
    let same = parsed.with_model(&parsed.model);
    assert_eq!(same, body, "rewriting to the same model changes nothing");
    let rewritten = parsed.with_model(model);
    let again = InboundBody::parse(rewritten.clone()).expect("a rewritten body still parses");
    assert_eq!(again.model, model);
    assert_eq!(again.stream, parsed.stream);
    // Everything outside the model's value is untouched: same prefix up to the value,
    // same suffix after it.
    let quoted = serde_json::to_string(model).expect("a string serialises");
    let prefix = body
        .iter()
        .zip(rewritten.iter())
        .take_while(|(a, b)| a == b)
        .count();
    let suffix = body
        .iter()
        .rev()
        .zip(rewritten.iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    assert!(
        prefix + suffix + quoted.len() >= rewritten.len(),
        "only the model's value differs"
    );
    if let Ok(mut expected) = serde_json::from_slice::<serde_json::Value>(&body) {
        expected["model"] = serde_json::Value::String(model.to_owned());
        let got: serde_json::Value =
            serde_json::from_slice(&rewritten).expect("a rewritten body is JSON");
        assert_eq!(got, expected);
    }
}
