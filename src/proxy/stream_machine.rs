//! The one state machine of a streamed answer, holding → committed → over, fed the same
//! way before and after the commit point. While holding, lifecycle events wait and an
//! in-band error or throttle refuses the attempt (the app saw nothing, so the call fails
//! over); a chunk that brings content commits the stream; once committed, every event
//! passes on as it came, and a failure ends the stream with an error event in the app's
//! format, never with a clean end that would pass a truncated answer off as complete.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::classify::FailReason;
use crate::event_kind::{EventKind, Usage};
use crate::policy::spec::Wire;
use crate::sse::Event;
use crate::translate::StreamTranslator;
use crate::wire::responses;
use crate::wire::Framer;
use crate::wire::{self, inspect};

/// Where a stream stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing has reached the app; `content` once a content event of the chunk being
    /// read arrived (the stream commits at the end of that chunk).
    Holding { content: bool },
    /// Content has been handed on: events pass through.
    Committed,
    /// Ended, refused or failed: nothing more is read.
    Over,
}

/// What the bytes just pushed did to the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Still holding: nothing for the app yet.
    Holding,
    /// Committed and flowing: [`StreamMachine::next_ready`] has what to send.
    Flowing,
    /// The upstream ended cleanly (committed or not): the rest is ready.
    Ended,
    /// An in-band error or throttle before the commit point: fail over.
    Refused(Refusal),
    /// An in-band error after the commit point, passed on to the app: the stream is over.
    Broken,
}

/// Why a held stream was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// An error event.
    Error,
    /// A rate-limit event (which says nothing of how long to rest).
    Throttled,
}

/// One streamed answer's parser, held and ready events, translation and usage.
pub(crate) struct StreamMachine {
    parser: Framer,
    /// Whole events for the app, in order (held ones until the commit point).
    ready: VecDeque<Bytes>,
    /// The target's wire, in which events are inspected.
    upstream_wire: Wire,
    /// The app's wire, in which a failure is reported.
    inbound_wire: Wire,
    translator: Option<Box<dyn StreamTranslator>>,
    usage: Usage,
    phase: Phase,
    /// Whether the stored response a Responses stream names first is still to be found.
    id_sought: bool,
    /// That response's id, until [`StreamMachine::take_created_id`] takes it.
    created: Option<String>,
}

impl StreamMachine {
    /// A stream from a target speaking `upstream_wire` to an app speaking `inbound_wire`.
    pub(crate) fn new(
        (upstream_wire, inbound_wire): (Wire, Wire),
        translator: Option<Box<dyn StreamTranslator>>,
    ) -> Self {
        Self {
            parser: Framer::new(upstream_wire),
            ready: VecDeque::new(),
            upstream_wire,
            inbound_wire,
            translator,
            usage: Usage::default(),
            phase: Phase::Holding { content: false },
            id_sought: upstream_wire == Wire::Responses,
            created: None,
        }
    }

    /// Reads newly arrived bytes; whole events move the machine on.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Step {
        self.parser.push(chunk);
        while let Some(event) = self.parser.next_event() {
            let kind = inspect(self.upstream_wire, &event, &mut self.usage);
            match (self.phase, kind) {
                (Phase::Over, _) => return Step::Ended,
                (Phase::Holding { .. }, EventKind::Error) => return self.refuse(Refusal::Error),
                (Phase::Holding { .. }, EventKind::Throttled) => {
                    return self.refuse(Refusal::Throttled)
                }
                (Phase::Holding { .. }, EventKind::Lifecycle) => {
                    if self.id_sought {
                        self.created = responses::created_id(&event);
                        self.id_sought = self.created.is_none();
                    }
                    self.emit(event);
                }
                (Phase::Holding { .. }, EventKind::Content) => {
                    self.emit(event);
                    self.phase = Phase::Holding { content: true };
                }
                (Phase::Holding { .. } | Phase::Committed, EventKind::End) => {
                    self.emit(event);
                    self.finish(None);
                    return Step::Ended;
                }
                (Phase::Committed, EventKind::Error | EventKind::Throttled) => {
                    self.emit(event);
                    self.phase = Phase::Over;
                    return Step::Broken;
                }
                (Phase::Committed, EventKind::Lifecycle | EventKind::Content) => self.emit(event),
            }
        }
        match self.phase {
            Phase::Holding { content: false } => Step::Holding,
            Phase::Holding { content: true } | Phase::Committed => {
                self.phase = Phase::Committed;
                Step::Flowing
            }
            Phase::Over => Step::Ended,
        }
    }

    /// Ends the stream: cleanly (`None`: the translator's own last events) or with the
    /// error event that tells the app's SDK the answer is incomplete.
    pub(crate) fn finish(&mut self, failure: Option<FailReason>) {
        self.phase = Phase::Over;
        match failure {
            Some(reason) => {
                let message = format!(
                    "upstream stream failed after it started: {}",
                    reason.as_str()
                );
                let failed = self
                    .translator
                    .as_mut()
                    .and_then(|t| t.fail(reason.as_str(), &message));
                match failed {
                    Some(events) => self.ready.extend(events),
                    None => self
                        .ready
                        .push_back((wire::of(self.inbound_wire).stream_error)(reason, &message)),
                }
            }
            None => {
                if let Some(translator) = &mut self.translator {
                    self.ready.extend(translator.finish());
                }
            }
        }
    }

    /// The next whole event for the app.
    pub(crate) fn next_ready(&mut self) -> Option<Bytes> {
        self.ready.pop_front()
    }

    /// Whether nothing more is read from the upstream.
    pub(crate) fn is_over(&self) -> bool {
        self.phase == Phase::Over
    }

    /// Whether every event for the app has been taken and nothing more will come.
    pub(crate) fn is_drained(&self) -> bool {
        self.is_over() && self.ready.is_empty()
    }

    /// The usage the stream reported so far.
    pub(crate) fn usage(&self) -> Usage {
        self.usage
    }

    /// The stored response a Responses stream named, once (for `previous_response_id`).
    pub(crate) fn take_created_id(&mut self) -> Option<String> {
        self.created.take()
    }

    fn refuse(&mut self, refusal: Refusal) -> Step {
        self.phase = Phase::Over;
        Step::Refused(refusal)
    }

    /// Queues an event for the app: its own bytes, or its translation.
    fn emit(&mut self, event: Event) {
        match &mut self.translator {
            Some(translator) => self.ready.extend(translator.event(&event)),
            None => self.ready.push_back(event.raw),
        }
    }
}

#[cfg(test)]
#[path = "stream_machine_tests.rs"]
mod tests;
