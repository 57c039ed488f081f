//! The time limits of one attempt before its commit point, in one place: which comes
//! first, and what it means (DESIGN §4 "Real model timing").
//!
//! Invariant: nothing here cuts a call that shows life within its target's normal; the
//! fixed timeouts apply only when the policy sets them.

use std::time::Duration;

use tokio::time::Instant;

use crate::classify::FailReason;

/// The limits of one attempt, from its start.
#[derive(Debug, Clone, Copy)]
pub struct Watch {
    /// `timeouts.firstByte` from the attempt's start, when set.
    first_byte: Option<Instant>,
    /// `timeouts.idle`, when set: the longest gap between frames.
    idle: Option<Duration>,
    /// The target's black-hole bound, once it has a baseline: the longest time without
    /// any sign of life (headers, a frame, an event).
    no_life: Option<Duration>,
    /// The request's search deadline.
    deadline: Instant,
}

impl Watch {
    /// The limits of an attempt started at `started`.
    pub fn new(
        started: Instant,
        first_byte: Option<Duration>,
        idle: Option<Duration>,
        no_life: Option<Duration>,
        deadline: Instant,
    ) -> Self {
        Self {
            first_byte: first_byte.map(|d| started + d),
            idle,
            no_life,
            deadline,
        }
    }

    /// When to give up if nothing arrives, given the last sign of life, and why; a
    /// `Deadline` reason means the request's own deadline, which is no verdict on the
    /// target. `before_headers` is true while no response has arrived, when `idle` does
    /// not apply yet (it bounds gaps within a body).
    pub fn next(&self, last_life: Instant, before_headers: bool) -> (Instant, FailReason) {
        let mut next = (self.deadline, FailReason::Deadline);
        let mut consider = |at: Instant, reason: FailReason| {
            if at < next.0 {
                next = (at, reason);
            }
        };
        if let Some(at) = self.first_byte {
            consider(at, FailReason::FirstByteTimeout);
        }
        if let (Some(idle), false) = (self.idle, before_headers) {
            consider(last_life + idle, FailReason::IdleTimeout);
        }
        if let Some(no_life) = self.no_life {
            consider(last_life + no_life, FailReason::Stalled);
        }
        next
    }

    /// The same limits once the first-byte bound no longer applies (a non-streamed body
    /// whose headers arrived).
    pub fn after_first_byte(mut self) -> Self {
        self.first_byte = None;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earliest_limit_wins_and_unset_limits_never_fire() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let deadline = t0 + s(600);
        let none = Watch::new(t0, None, None, None, deadline);
        assert_eq!(none.next(t0, true), (deadline, FailReason::Deadline));
        let all = Watch::new(t0, Some(s(30)), Some(s(5)), Some(s(3)), deadline);
        assert_eq!(all.next(t0, true), (t0 + s(3), FailReason::Stalled));
        let idle_first = Watch::new(t0, Some(s(30)), Some(s(2)), Some(s(3)), deadline);
        assert_eq!(idle_first.next(t0, true), (t0 + s(3), FailReason::Stalled));
        assert_eq!(
            idle_first.next(t0, false),
            (t0 + s(2), FailReason::IdleTimeout)
        );
        let first_byte = Watch::new(t0, Some(s(1)), None, Some(s(3)), deadline);
        assert_eq!(
            first_byte.next(t0, true),
            (t0 + s(1), FailReason::FirstByteTimeout)
        );
        assert_eq!(
            first_byte.after_first_byte().next(t0, false),
            (t0 + s(3), FailReason::Stalled)
        );
    }
}
