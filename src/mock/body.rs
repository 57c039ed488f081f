//! Response bodies with the timing and cut faults applied.
//!
//! Invariant: a body is laid out as a list of steps before the first byte is sent (send
//! these bytes, wait, cut), so the per-frame hot path only walks a vector.

use std::ops::Range;
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};

use super::Faults;

/// The body type of every mock response.
pub(crate) type Body = UnsyncBoxBody<Bytes, BodyError>;

/// Why a body ended early; hyper reacts to it by aborting the connection (HTTP/1) or
/// resetting the stream (HTTP/2), which is exactly the cut the fault asks for.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    /// The `dropAfterChunks` fault fired.
    #[error("the mock cut the connection (dropAfterChunks)")]
    Dropped,
}

/// A whole body at once.
pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// The events of one stream, in order, with the content deltas marked.
pub(crate) struct StreamPlan {
    /// Every SSE event of a complete, well-formed stream.
    pub(crate) events: Vec<Bytes>,
    /// Which of `events` are content deltas (the ones the chunk faults count).
    pub(crate) content: Range<usize>,
    /// Which of `events` show thinking (just before `content`), spread over `think`.
    pub(crate) thinking: Range<usize>,
    /// The in-band error event of this API, for `errorEventAfterChunks`.
    pub(crate) error_event: Bytes,
}

enum Step {
    Send(Bytes),
    Wait(Duration),
    Cut,
}

/// A streaming body: `firstByte` before the first event, `think` spread over the thinking
/// events (or spent in silence), `chunkInterval` (or the generation speed) between content
/// deltas, and the stream cut or ended with an error event where the faults say.
pub(crate) fn stream(plan: StreamPlan, faults: &Faults) -> Body {
    let StreamPlan {
        events,
        content,
        thinking,
        error_event,
    } = plan;
    let think_step = faults
        .think
        .map(|think| think / u32::try_from(thinking.len().max(1)).unwrap_or(u32::MAX));
    let interval = faults.delta_interval();
    let deltas = content.len();
    let cut_at = faults.drop_after_chunks.map(|k| deltas.min(k as usize));
    let error_at = faults
        .error_event_after_chunks
        .map(|k| deltas.min(k as usize));
    let mut steps = Vec::with_capacity(events.len() * 2 + 1);
    steps.extend(faults.first_byte.map(Step::Wait));
    for (i, event) in events.into_iter().enumerate() {
        if i >= content.start {
            let sent = deltas.min(i - content.start);
            if cut_at == Some(sent) {
                steps.push(Step::Cut);
                break;
            }
            if error_at == Some(sent) {
                steps.push(Step::Send(error_event));
                break;
            }
        }
        if thinking.contains(&i) || (thinking.is_empty() && i == content.start) {
            steps.extend(think_step.map(Step::Wait));
        }
        if i > content.start && i < content.end {
            steps.extend(interval.map(Step::Wait));
        }
        steps.push(Step::Send(event));
    }
    from_steps(steps)
}

/// A non-streaming body: `firstByte` before it, and cut halfway under `dropAfterChunks`.
pub(crate) fn single(bytes: Bytes, faults: &Faults) -> Body {
    if faults.first_byte.is_none() && faults.drop_after_chunks.is_none() {
        return full(bytes);
    }
    let mut steps = Vec::with_capacity(3);
    steps.extend(faults.first_byte.map(Step::Wait));
    if faults.drop_after_chunks.is_some() {
        steps.push(Step::Send(bytes.slice(..bytes.len() / 2)));
        steps.push(Step::Cut);
    } else {
        steps.push(Step::Send(bytes));
    }
    from_steps(steps)
}

fn from_steps(steps: Vec<Step>) -> Body {
    let frames = futures_util::stream::unfold(steps.into_iter(), |mut steps| async move {
        loop {
            match steps.next()? {
                Step::Wait(delay) => tokio::time::sleep(delay).await,
                Step::Send(bytes) => return Some((Ok(Frame::data(bytes)), steps)),
                Step::Cut => {
                    // Give hyper one turn to flush what was sent (headers included), so
                    // the client sees a cut body rather than no response at all.
                    tokio::task::yield_now().await;
                    return Some((Err(BodyError::Dropped), steps));
                }
            }
        }
    });
    StreamBody::new(frames).boxed_unsync()
}

/// Splits `text` into `n` non-empty pieces of nearly equal length (in characters);
/// `text` must have at least `n` characters.
pub(crate) fn split_even(text: &str, n: usize) -> Vec<&str> {
    let bounds: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()))
        .collect();
    let chars = bounds.len() - 1;
    (0..n)
        .map(|i| &text[bounds[i * chars / n]..bounds[(i + 1) * chars / n]])
        .collect()
}

/// `base` repeated (space-separated) until it has at least `n` characters, so a stream of
/// `n` deltas never needs an empty one.
pub(crate) fn at_least_chars(base: &str, n: usize) -> String {
    let base_chars = base.chars().count().max(1);
    let copies = (n + 1).div_ceil(base_chars + 1).max(1);
    let mut text = String::with_capacity(copies * (base.len() + 1));
    for i in 0..copies {
        if i > 0 {
            text.push(' ');
        }
        text.push_str(base);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_evenly_without_empty_pieces() {
        let pieces = split_even("Hello from mock a", 4);
        assert_eq!(pieces, ["Hell", "o fr", "om m", "ock a"]);
        assert_eq!(pieces.concat(), "Hello from mock a");
        assert_eq!(split_even("héllo", 5), ["h", "é", "l", "l", "o"]);
        assert_eq!(split_even("abc", 1), ["abc"]);
        let long = at_least_chars("Hello from mock a", 100);
        assert!(long.chars().count() >= 100);
        assert!(split_even(&long, 100).iter().all(|p| !p.is_empty()));
        assert_eq!(at_least_chars("Hello", 3), "Hello");
    }
}
