//! The response body of a committed stream: the upstream's events pass through as they
//! arrive (whole events only, never coalesced or delayed), and a failure after the
//! commit point ends the stream with a well-formed error event in the app's format,
//! never with a clean end that would pass a truncated answer off as complete.
//!
//! A committed stream that is still flowing is cut only by `timeouts.idle` (when set) or
//! the deadline the app asked for: the route's `timeout` bounds the search for an answer,
//! never the length of one.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use serde_json::json;
use tokio::time::{Instant, Sleep};

use crate::body::BoxError;
use crate::classify::FailReason;
use crate::event_kind::{EventKind, Usage};
use crate::policy::spec::Wire;
use crate::proxy::events::inspect;
use crate::proxy::framing::Framer;
use crate::proxy::settle::Settle;
use crate::sse::{format_event, Event};
use crate::translate::StreamTranslator;

/// A committed stream on its way to the app.
pub struct StreamBody {
    upstream: Incoming,
    parser: Framer,
    /// Whole events ready to send, in order.
    ready: VecDeque<Bytes>,
    /// The target's wire, in which events are inspected.
    upstream_wire: Wire,
    /// The app's wire, in which a failure is reported.
    inbound_wire: Wire,
    translator: Option<Box<dyn StreamTranslator>>,
    usage: Usage,
    idle: Option<Duration>,
    deadline: Option<Instant>,
    /// Armed only when an idle limit or an app deadline is set.
    timer: Option<Pin<Box<Sleep>>>,
    settle: Option<Settle>,
    done: bool,
}

/// Where a stream stood when the commit point was reached.
pub struct Committed {
    /// The upstream body, positioned after the bytes already parsed.
    pub upstream: Incoming,
    /// The framer, holding any partial event.
    pub parser: Framer,
    /// Held lifecycle events followed by the first content event(s).
    pub ready: VecDeque<Bytes>,
    /// Usage seen so far.
    pub usage: Usage,
    /// Whether the upstream already ended cleanly.
    pub ended: bool,
    /// Translates the target's events into the app's dialect, when they differ.
    pub translator: Option<Box<dyn StreamTranslator>>,
}

/// Queues an event for the app: its own bytes, or its translation.
pub fn emit(
    translator: &mut Option<Box<dyn StreamTranslator>>,
    event: Event,
    out: &mut VecDeque<Bytes>,
) {
    match translator {
        Some(translator) => out.extend(translator.event(&event)),
        None => out.push_back(event.raw),
    }
}

impl StreamBody {
    /// Continues a stream past its commit point.
    pub fn new(
        committed: Committed,
        (upstream_wire, inbound_wire): (Wire, Wire),
        idle: Option<Duration>,
        deadline: Option<Instant>,
        settle: Settle,
    ) -> Self {
        let mut body = StreamBody {
            upstream: committed.upstream,
            parser: committed.parser,
            ready: committed.ready,
            upstream_wire,
            inbound_wire,
            translator: committed.translator,
            usage: committed.usage,
            idle,
            deadline,
            timer: next_wake(idle, deadline).map(|at| Box::pin(tokio::time::sleep_until(at))),
            settle: Some(settle),
            done: false,
        };
        if committed.ended {
            body.finish(None);
        }
        body
    }

    /// Settles the attempt; on failure appends the error event the app will see.
    fn finish(&mut self, failure: Option<FailReason>) {
        self.done = true;
        if let Some(settle) = self.settle.take() {
            settle.finish(failure.map_or(Ok(self.usage), Err));
        }
        match failure {
            Some(reason) => {
                let message = failure_message(reason);
                let failed = self
                    .translator
                    .as_mut()
                    .and_then(|t| t.fail(reason.as_str(), &message));
                match failed {
                    Some(events) => self.ready.extend(events),
                    None => self
                        .ready
                        .push_back(error_event(self.inbound_wire, reason, &message)),
                }
            }
            None => {
                if let Some(translator) = &mut self.translator {
                    self.ready.extend(translator.finish());
                }
            }
        }
    }

    /// Parses newly arrived bytes into whole events.
    fn absorb(&mut self, chunk: &[u8]) {
        self.parser.push(chunk);
        while let Some(event) = self.parser.next_event() {
            match inspect(self.upstream_wire, &event, &mut self.usage) {
                EventKind::End => {
                    emit(&mut self.translator, event, &mut self.ready);
                    self.finish(None);
                    return;
                }
                EventKind::Error | EventKind::Throttled => {
                    emit(&mut self.translator, event, &mut self.ready);
                    self.done = true;
                    if let Some(settle) = self.settle.take() {
                        settle.finish(Err(FailReason::StreamError));
                    }
                    return;
                }
                EventKind::Lifecycle | EventKind::Content => {
                    emit(&mut self.translator, event, &mut self.ready)
                }
            }
        }
    }
}

fn next_wake(idle: Option<Duration>, deadline: Option<Instant>) -> Option<Instant> {
    let idle = idle.map(|idle| Instant::now() + idle);
    match (idle, deadline) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn failure_message(reason: FailReason) -> String {
    format!(
        "upstream stream failed after it started: {}",
        reason.as_str()
    )
}

/// The event that tells the app's SDK the stream failed, in the app's format, when no
/// translator knows a better one (a Responses stream's translator ends it with a
/// `response.failed` that names the response).
pub fn error_event(wire: Wire, reason: FailReason, message: &str) -> Bytes {
    match wire {
        Wire::Responses => {
            let data = json!({"type": "error", "code": reason.as_str(), "message": message, "param": null, "sequence_number": 0});
            format_event(Some("error"), &data.to_string())
        }
        Wire::Messages => {
            let kind = if reason == FailReason::StreamError {
                "overloaded_error"
            } else {
                "api_error"
            };
            let data = json!({"type": "error", "error": {"type": kind, "message": message}});
            format_event(Some("error"), &data.to_string())
        }
        // No app calls in generateContent or Converse: their streams always reach the app
        // translated; were one to, OpenAI's shape is the sidecar's default error format.
        Wire::Chat | Wire::Embeddings | Wire::GenerateContent | Wire::Converse => {
            let data = json!({"error": {"message": message, "type": "server_error", "code": reason.as_str()}});
            format_event(None, &data.to_string())
        }
    }
}

impl HttpBody for StreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if let Some(bytes) = this.ready.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(bytes))));
            }
            if this.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.upstream).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        if let (Some(timer), Some(wake)) =
                            (this.timer.as_mut(), next_wake(this.idle, this.deadline))
                        {
                            timer.as_mut().reset(wake);
                        }
                        this.absorb(&data);
                    }
                }
                Poll::Ready(Some(Err(_))) | Poll::Ready(None) => this.finish(Some(FailReason::Cut)),
                Poll::Pending => {
                    let Some(timer) = this.timer.as_mut() else {
                        return Poll::Pending;
                    };
                    ready!(timer.as_mut().poll(cx));
                    let reason = if this.deadline.is_some_and(|d| Instant::now() >= d) {
                        FailReason::Deadline
                    } else {
                        FailReason::IdleTimeout
                    };
                    this.finish(Some(reason));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.ready.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

impl Drop for StreamBody {
    fn drop(&mut self) {
        if let Some(settle) = self.settle.take() {
            settle.cancel();
        }
    }
}
