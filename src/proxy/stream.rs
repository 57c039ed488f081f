//! The response body of a committed stream: it feeds the upstream's bytes to the
//! stream's [`StreamMachine`] and hands its whole events on as they arrive (never
//! coalesced or delayed); a cut, an idle stall or the app's deadline ends it through the
//! machine, with an error event in the app's format.
//!
//! A committed stream that is still flowing is cut only by `timeouts.idle` (when set) or
//! the deadline the app asked for: the route's `timeout` bounds the search for an answer,
//! never the length of one.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::body::BoxError;
use crate::classify::FailReason;
use crate::proxy::settle::Settle;
use crate::proxy::stream_machine::{Step, StreamMachine};
use crate::upstream::UpstreamBody;

/// A committed stream on its way to the app.
pub(crate) struct StreamBody {
    /// The upstream body, positioned after the bytes the machine has read.
    upstream: UpstreamBody,
    machine: StreamMachine,
    idle: Option<Duration>,
    deadline: Option<Instant>,
    /// Armed only when an idle limit or an app deadline is set.
    timer: Option<Pin<Box<Sleep>>>,
    settle: Option<Settle>,
}

impl StreamBody {
    /// Continues a stream past its commit point; `step` is what its last chunk did
    /// (`Flowing`, or `Ended` when the upstream already ended cleanly).
    pub(crate) fn new(
        (upstream, machine, step): (UpstreamBody, StreamMachine, Step),
        idle: Option<Duration>,
        deadline: Option<Instant>,
        settle: Settle,
    ) -> Self {
        let mut body = StreamBody {
            upstream,
            machine,
            idle,
            deadline,
            timer: next_wake(idle, deadline).map(|at| Box::pin(tokio::time::sleep_until(at))),
            settle: Some(settle),
        };
        body.settle_on(step);
        body
    }

    /// Settles the attempt once the machine says the stream is over.
    fn settle_on(&mut self, step: Step) {
        let verdict = match step {
            Step::Holding | Step::Flowing => return,
            Step::Ended => Ok(self.machine.usage()),
            Step::Refused(_) | Step::Broken => Err(FailReason::StreamError),
        };
        if let Some(settle) = self.settle.take() {
            settle.finish(verdict);
        }
    }

    /// Ends the stream with the app's error event and settles the attempt as failed.
    fn fail(&mut self, reason: FailReason) {
        self.machine.finish(Some(reason));
        if let Some(settle) = self.settle.take() {
            settle.finish(Err(reason));
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

impl HttpBody for StreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if let Some(bytes) = this.machine.next_ready() {
                return Poll::Ready(Some(Ok(Frame::data(bytes))));
            }
            if this.machine.is_over() {
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
                        let step = this.machine.push(&data);
                        this.settle_on(step);
                    }
                }
                Poll::Ready(Some(Err(_))) | Poll::Ready(None) => this.fail(FailReason::Cut),
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
                    this.fail(reason);
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.machine.is_drained()
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
