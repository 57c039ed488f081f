//! The machine against a model of it: any Chat Completions stream of lifecycle, content,
//! error and end events, cut into chunks anywhere, fed as the attempt feeds it (holding)
//! and then as the committed body does.

use super::*;
use proptest::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Lifecycle,
    Content,
    Error,
    End,
}

fn raw(kind: Kind, n: usize) -> String {
    match kind {
        Kind::Lifecycle => format!(
            "data: {{\"id\":\"{n}\",\"choices\":[{{\"delta\":{{\"role\":\"assistant\"}}}}]}}\n\n"
        ),
        Kind::Content => format!(
            "data: {{\"id\":\"{n}\",\"choices\":[{{\"delta\":{{\"content\":\"w{n}\"}}}}]}}\n\n"
        ),
        Kind::Error => format!("data: {{\"error\":{{\"message\":\"overloaded {n}\"}}}}\n\n"),
        Kind::End => "data: [DONE]\n\n".to_owned(),
    }
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        3 => Just(Kind::Lifecycle),
        4 => Just(Kind::Content),
        1 => Just(Kind::Error),
        1 => Just(Kind::End),
    ]
}

proptest! {
    #[test]
    fn any_split_of_any_stream_matches_the_model(
        kinds in prop::collection::vec(kind(), 0..12),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let events: Vec<String> = kinds.iter().enumerate().map(|(n, &k)| raw(k, n)).collect();
        let bytes = events.concat();
        let ends: Vec<usize> = events
            .iter()
            .scan(0, |at, event| {
                *at += event.len();
                Some(*at)
            })
            .collect();
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        points.extend([0, bytes.len()]);
        points.sort_unstable();
        points.dedup();

        let mut machine = StreamMachine::new((Wire::Chat, Wire::Chat), None);
        let mut sent = Vec::new();
        let mut committed = false;
        let mut last = Step::Holding;
        for pair in points.windows(2) {
            if machine.is_over() {
                break;
            }
            last = machine.push(&bytes.as_bytes()[pair[0]..pair[1]]);
            match last {
                Step::Holding => {}
                Step::Refused(_) => prop_assert!(!committed, "refused after the commit point"),
                Step::Flowing | Step::Ended | Step::Broken => committed = true,
            }
            if committed {
                while let Some(event) = machine.next_ready() {
                    sent.extend_from_slice(&event);
                }
            }
        }

        // The model: the first error or end decides how the stream stops. An error is a
        // refusal when no content event had arrived in a chunk before the error's own
        // (content in the same chunk has not reached the app yet).
        let terminal = kinds.iter().position(|k| matches!(k, Kind::Error | Kind::End));
        let chunk_start = |end: usize| points.iter().copied().filter(|&p| p < end).max().unwrap_or(0);
        let content_before = |upto: usize, limit: usize| {
            (0..upto).any(|i| kinds[i] == Kind::Content && ends[i] <= limit)
        };
        match terminal {
            Some(t) if kinds[t] == Kind::Error && !content_before(t, chunk_start(ends[t])) => {
                prop_assert_eq!(last, Step::Refused(Refusal::Error));
                prop_assert!(sent.is_empty(), "a refused stream sent nothing");
            }
            Some(t) => {
                let expected = if kinds[t] == Kind::End { Step::Ended } else { Step::Broken };
                prop_assert_eq!(last, expected);
                prop_assert_eq!(String::from_utf8(sent).unwrap(), events[..=t].concat());
            }
            None if kinds.contains(&Kind::Content) => {
                prop_assert_eq!(last, Step::Flowing);
                prop_assert_eq!(String::from_utf8(sent).unwrap(), bytes);
            }
            None => prop_assert_eq!(last, Step::Holding),
        }
    }
}

#[test]
fn a_failure_after_the_commit_point_ends_with_the_apps_error_event() {
    for inbound in [Wire::Chat, Wire::Messages, Wire::Responses] {
        let mut machine = StreamMachine::new((Wire::Chat, inbound), None);
        assert_eq!(
            machine.push(raw(Kind::Content, 0).as_bytes()),
            Step::Flowing
        );
        machine.finish(Some(FailReason::Cut));
        assert!(machine.is_over());
        let mut out = Vec::new();
        while let Some(event) = machine.next_ready() {
            out.extend_from_slice(&event);
        }
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(&raw(Kind::Content, 0)),
            "{inbound:?}: {text}"
        );
        assert!(text.ends_with("\n\n"), "{inbound:?}: {text}");
        assert!(text.contains("upstream stream failed after it started: stream_cut"));
        assert!(!text.contains("[DONE]"), "{inbound:?}: {text}");
        assert!(machine.is_drained());
    }
}
