//! Property: an OpenAI request translated to Anthropic and back keeps its messages, tools
//! and parameters, up to the normalisations both dialects share (string content is one
//! text part, consecutive user turns are one turn, `max_tokens` is
//! `max_completion_tokens`, a single stop string is a one-element list).

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::*;

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 .,!?{}\"\\\\]{1,24}"
}

fn user_content() -> impl Strategy<Value = Value> {
    let part = prop_oneof![
        text().prop_map(|t| json!({"type": "text", "text": t})),
        "[A-Za-z0-9+/]{4,16}".prop_map(|d| json!({"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{d}")}})),
        "[a-z]{1,8}".prop_map(|p| json!({"type": "image_url", "image_url": {"url": format!("https://img.test/{p}.jpg")}})),
    ];
    prop_oneof![
        text().prop_map(Value::String),
        proptest::collection::vec(part, 1..4).prop_map(Value::Array),
    ]
}

fn args() -> impl Strategy<Value = Value> {
    proptest::collection::btree_map(
        "[a-z]{1,6}",
        prop_oneof![
            text().prop_map(Value::from),
            any::<i32>().prop_map(Value::from),
            any::<bool>().prop_map(Value::from)
        ],
        0..3,
    )
    .prop_map(|m| Value::Object(m.into_iter().collect()))
}

/// One exchange: one or two user messages, an assistant reply (text and/or tool calls),
/// and a result for every tool call.
type Exchange = (
    Vec<Value>,
    Option<String>,
    Vec<(String, Value)>,
    Vec<String>,
);

fn exchange() -> impl Strategy<Value = Exchange> {
    (
        proptest::collection::vec(user_content(), 1..3),
        proptest::option::of(text()),
        proptest::collection::vec(("[a-z_]{1,8}", args()), 0..3),
        proptest::collection::vec(text(), 3),
    )
}

fn request() -> impl Strategy<Value = Value> {
    let params = (
        proptest::option::of(1u32..100_000),
        any::<bool>(),
        proptest::option::of(0u32..=100),
        proptest::option::of(1u32..=100),
        proptest::option::of(proptest::collection::vec("[a-z#]{1,5}", 1..=4)),
        proptest::option::of("[a-z0-9]{1,10}"),
        any::<bool>(),
    );
    let tools = proptest::collection::btree_map(
        "[a-z_]{1,10}",
        (proptest::option::of(text()), args()),
        0..3,
    );
    let choice = proptest::option::of(prop_oneof![
        Just(json!("auto")),
        Just(json!("none")),
        Just(json!("required")),
        "[a-z]{1,6}".prop_map(|n| json!({"type": "function", "function": {"name": n}})),
    ]);
    (
        proptest::option::of(text()),
        proptest::collection::vec(exchange(), 1..4),
        params,
        tools,
        choice,
        proptest::option::of(any::<bool>()),
    )
        .prop_map(|(system, exchanges, params, tools, choice, parallel)| {
            let mut messages = Vec::new();
            if let Some(s) = system {
                messages.push(json!({"role": "system", "content": s}));
            }
            for (e, (users, reply, calls, results)) in exchanges.into_iter().enumerate() {
                for u in users {
                    messages.push(json!({"role": "user", "content": u}));
                }
                let calls: Vec<Value> = calls
                    .iter()
                    .enumerate()
                    .map(|(i, (name, a))| json!({"id": format!("call_{e}_{i}"), "type": "function", "function": {"name": name, "arguments": a.to_string()}}))
                    .collect();
                let content = match (reply, calls.is_empty()) {
                    (Some(t), _) => json!(t),
                    (None, true) => json!("ok"),
                    (None, false) => Value::Null,
                };
                let mut assistant = json!({"role": "assistant", "content": content});
                if !calls.is_empty() {
                    assistant["tool_calls"] = Value::Array(calls.clone());
                }
                messages.push(assistant);
                for (call, result) in calls.iter().zip(results.iter().cycle()) {
                    messages.push(json!({"role": "tool", "tool_call_id": call["id"], "content": result}));
                }
            }
            let (max, use_completion, temp, top_p, stop, user, stream) = params;
            let mut req = json!({"model": "gpt-4o", "messages": messages});
            if let Some(m) = max {
                req[if use_completion { "max_completion_tokens" } else { "max_tokens" }] = json!(m);
            }
            if let Some(t) = temp {
                req["temperature"] = json!(f64::from(t) / 100.0);
            }
            if let Some(p) = top_p {
                req["top_p"] = json!(f64::from(p) / 100.0);
            }
            match stop {
                Some(s) if s.len() == 1 => req["stop"] = json!(s[0]),
                Some(s) => req["stop"] = json!(s),
                None => {}
            }
            if let Some(u) = user {
                req["user"] = json!(u);
            }
            if stream {
                req["stream"] = json!(true);
            }
            if !tools.is_empty() {
                req["tools"] = tools
                    .into_iter()
                    .map(|(name, (desc, params))| {
                        let mut f = json!({"name": name, "parameters": {"type": "object", "properties": params}});
                        if let Some(d) = desc {
                            f["description"] = json!(d);
                        }
                        json!({"type": "function", "function": f})
                    })
                    .collect();
            }
            if let Some(c) = choice {
                req["tool_choice"] = c;
            }
            if let Some(p) = parallel {
                req["parallel_tool_calls"] = json!(p);
            }
            req
        })
}

/// The meaning of an OpenAI request, in a form both sides of the round trip agree on.
fn normalise(req: &Value) -> Value {
    let mut system = Vec::new();
    let mut messages: Vec<Value> = Vec::new();
    for m in req["messages"].as_array().expect("messages") {
        let parts = match &m["content"] {
            Value::String(s) => vec![json!({"type": "text", "text": s})],
            Value::Array(a) => a.clone(),
            _ => Vec::new(),
        };
        let role = m["role"].as_str().expect("role");
        if role == "system" {
            system.extend(parts);
            continue;
        }
        let calls: Vec<Value> = m["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                let args: Value =
                    serde_json::from_str(c["function"]["arguments"].as_str().expect("args"))
                        .expect("JSON args");
                json!([c["id"], c["function"]["name"], args])
            })
            .collect();
        match messages.last_mut() {
            Some(last) if role == "user" && last["role"] == "user" => {
                last["parts"].as_array_mut().expect("parts").extend(parts);
            }
            _ => messages.push(
                json!({"role": role, "parts": parts, "calls": calls, "id": m.get("tool_call_id")}),
            ),
        }
    }
    let mut out = Map::new();
    out.insert("system".into(), json!(system));
    out.insert("messages".into(), json!(messages));
    let max = req
        .get("max_completion_tokens")
        .or_else(|| req.get("max_tokens"))
        .cloned()
        .unwrap_or(json!(4096));
    out.insert("max".into(), max);
    for key in ["temperature", "top_p", "user", "tools"] {
        out.insert(key.into(), req.get(key).cloned().unwrap_or(Value::Null));
    }
    let stop = match req.get("stop") {
        Some(Value::String(s)) => json!([s]),
        other => other.cloned().unwrap_or(Value::Null),
    };
    out.insert("stop".into(), stop);
    out.insert(
        "stream".into(),
        json!(req.get("stream") == Some(&json!(true))),
    );
    let choice = req.get("tool_choice").cloned().unwrap_or(json!("auto"));
    let parallel = choice == "none" || req.get("parallel_tool_calls") != Some(&json!(false));
    out.insert("tool_choice".into(), choice);
    out.insert("parallel".into(), json!(parallel));
    Value::Object(out)
}

proptest! {
    #[test]
    fn openai_request_round_trips_through_anthropic(req in request()) {
        let anthropic = openai_to_anthropic_request(&req, "claude-x", 4096).expect("translatable");
        let roles: Vec<&Value> = anthropic["messages"].as_array().expect("messages").iter().map(|m| &m["role"]).collect();
        prop_assert!(roles.windows(2).all(|w| w[0] != w[1]), "turns alternate: {roles:?}");
        let back = anthropic_to_openai_request(&anthropic, "gpt-4o").expect("translatable back");
        prop_assert_eq!(normalise(&back), normalise(&req));
    }
}
