//! The classifiers of Chat Completions and Messages, through the table.

use super::*;
use crate::event_kind::{EventKind, Usage};
use crate::sse::Event;

fn ev(event: Option<&str>, data: &str) -> Event {
    test_event(event, data)
}

#[test]
fn openai_commit_point() {
    let mut u = Usage::default();
    let role = r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#;
    assert_eq!(
        inspect(Wire::Chat, &ev(None, role), &mut u),
        EventKind::Lifecycle
    );
    let text = r#"{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#;
    assert_eq!(
        inspect(Wire::Chat, &ev(None, text), &mut u),
        EventKind::Content
    );
    for reasoning in [
        r#"{"choices":[{"index":0,"delta":{"reasoning_content":"Let me think"}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"reasoning":"Let me think"}}]}"#,
    ] {
        assert_eq!(
            inspect(Wire::Chat, &ev(None, reasoning), &mut u),
            EventKind::Content,
            "{reasoning}"
        );
    }
    let empty_reasoning = r#"{"choices":[{"index":0,"delta":{"reasoning_content":""}}]}"#;
    assert_eq!(
        inspect(Wire::Chat, &ev(None, empty_reasoning), &mut u),
        EventKind::Lifecycle
    );
    let tool = r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0}]}}]}"#;
    assert_eq!(
        inspect(Wire::Chat, &ev(None, tool), &mut u),
        EventKind::Content
    );
    let usage =
        r#"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}"#;
    assert_eq!(
        inspect(Wire::Chat, &ev(None, usage), &mut u),
        EventKind::Lifecycle
    );
    assert_eq!((u.input, u.output), (7, 3));
    let finish = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#;
    inspect(Wire::Chat, &ev(None, finish), &mut u);
    assert_eq!(u.finish, Some("tool_calls"));
    assert_eq!(
        inspect(
            Wire::Chat,
            &ev(None, r#"{"error":{"message":"x"}}"#),
            &mut u
        ),
        EventKind::Error
    );
    assert_eq!(
        inspect(Wire::Chat, &ev(None, "[DONE]"), &mut u),
        EventKind::End
    );
}

#[test]
fn anthropic_commit_point_and_usage() {
    let mut u = Usage::default();
    let start =
        r#"{"type":"message_start","message":{"usage":{"input_tokens":12,"output_tokens":1}}}"#;
    assert_eq!(
        inspect(Wire::Messages, &ev(Some("message_start"), start), &mut u),
        EventKind::Lifecycle
    );
    assert_eq!(
        inspect(Wire::Messages, &ev(Some("ping"), "{}"), &mut u),
        EventKind::Lifecycle
    );
    assert_eq!(
        inspect(
            Wire::Messages,
            &ev(Some("content_block_delta"), "{}"),
            &mut u
        ),
        EventKind::Content
    );
    let delta = r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":30}}"#;
    inspect(Wire::Messages, &ev(Some("message_delta"), delta), &mut u);
    assert_eq!((u.input, u.output, u.finish), (12, 30, Some("end_turn")));
    assert_eq!(
        inspect(Wire::Messages, &ev(Some("error"), "{}"), &mut u),
        EventKind::Error
    );
    assert_eq!(
        inspect(Wire::Messages, &ev(Some("message_stop"), "{}"), &mut u),
        EventKind::End
    );
}
