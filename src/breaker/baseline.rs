//! A target's own normal (DESIGN §4 "Real model timing"): decayed estimates of its time to
//! first token (streams), time to first byte and latency per output token (non-streamed
//! calls), from which "slow", "black hole" and the `auto` hedge delay are judged.
//!
//! Pure: `now` is passed in, nothing here reads a clock or takes a lock; the caller keeps
//! a `Baseline` beside the target's breaker, under the same per-target lock.
//!
//! Each estimate is an exponentially weighted mean and mean deviation (Jacobson's RTT
//! estimator). The weight of a sample grows with the time since the previous one
//! (`dt / DECAY`, capped), so the baseline forgets over minutes whatever the call rate:
//! a brown-out is judged against the normal of the minutes before it, not absorbed within
//! a few calls.

use tokio::time::{Duration, Instant};

/// Samples an estimate needs before anything is judged against it.
pub const MIN_SAMPLES: u32 = 5;
/// The time scale over which the baseline forgets.
const DECAY: Duration = Duration::from_secs(120);
/// The most one sample can move an estimate once warmed up.
const MAX_WEIGHT: f64 = 0.2;
/// Once warmed up, a sample counts as at most this multiple of the mean: a brown-out's
/// calls still move the baseline (over minutes) but cannot blow its deviation up, which
/// would widen the black-hole bound for as long as the baseline remembers them.
const SAMPLE_CAP: f64 = 4.0;
/// Nothing faster than this is slow, whatever the baseline: sub-second noise.
pub const SLOW_FLOOR: Duration = Duration::from_secs(1);
/// A non-streamed answer is compared per output token, counting at least this many, so
/// short answers (dominated by the prompt's processing) are not judged per token.
const TOKEN_FLOOR: u64 = 32;
/// No life for this multiple of the worst normal is a black hole.
const BLACK_HOLE_MULTIPLE: f64 = 10.0;
/// ... and never less than this: a fast target that turns 30x slower (a brown-out) is
/// left to the slow-call rule, one that shows no life for seconds is a black hole.
pub const BLACK_HOLE_FLOOR: Duration = Duration::from_secs(5);

/// One decayed mean and mean deviation, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Estimate {
    mean: f64,
    deviation: f64,
    samples: u32,
    last: Option<Instant>,
}

impl Estimate {
    /// Folds in one sample taken at `now`.
    pub fn record(&mut self, sample: f64, now: Instant) {
        if !sample.is_finite() || sample < 0.0 {
            return;
        }
        self.samples = self.samples.saturating_add(1);
        let sample = if self.samples > MIN_SAMPLES {
            sample.min(SAMPLE_CAP * self.mean)
        } else {
            sample
        };
        let weight = if self.samples <= MIN_SAMPLES {
            // Warm-up: a plain average of the first samples.
            1.0 / f64::from(self.samples)
        } else {
            let dt = self
                .last
                .map_or(DECAY, |last| now.saturating_duration_since(last));
            (dt.as_secs_f64() / DECAY.as_secs_f64()).clamp(1e-4, MAX_WEIGHT)
        };
        let error = sample - self.mean;
        self.mean += weight * error;
        if self.samples > 1 {
            self.deviation += weight * (error.abs() - self.deviation);
        }
        self.last = Some(now);
    }

    /// The mean, once there are enough samples.
    pub fn mean(&self) -> Option<f64> {
        (self.samples >= MIN_SAMPLES).then_some(self.mean)
    }

    /// About the 95th percentile (mean + 2 deviations), once there are enough samples.
    pub fn p95(&self) -> Option<f64> {
        self.mean().map(|m| m + 2.0 * self.deviation)
    }

    /// The slowest normal call (mean + 4 deviations), once there are enough samples.
    pub fn worst(&self) -> Option<f64> {
        self.mean().map(|m| m + 4.0 * self.deviation)
    }

    /// Samples seen.
    pub fn samples(&self) -> u32 {
        self.samples
    }
}

/// How a finished call went, in the terms the baseline keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// A stream reached its commit point (first content) after this long.
    Stream {
        /// Time to first token.
        ttft: Duration,
    },
    /// A non-streamed answer.
    Whole {
        /// Until the response headers.
        first_byte: Duration,
        /// Until the whole body.
        latency: Duration,
        /// Output tokens the provider reported (0 when it did not say).
        output_tokens: u64,
    },
}

/// A target's normal.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Baseline {
    /// Time to first token of streams.
    pub ttft: Estimate,
    /// Time to response headers of non-streamed calls.
    pub first_byte: Estimate,
    /// Seconds per output token of non-streamed calls.
    pub per_token: Estimate,
}

fn per_token(latency: Duration, output_tokens: u64) -> f64 {
    latency.as_secs_f64() / output_tokens.max(TOKEN_FLOOR) as f64
}

impl Baseline {
    /// Whether `timing` is slow against this normal: more than `factor` times it and more
    /// than [`SLOW_FLOOR`]. Nothing is slow before the baseline has enough samples.
    pub fn is_slow(&self, timing: Timing, factor: f64) -> bool {
        let (taken, expected) = match timing {
            Timing::Stream { ttft } => (ttft, self.ttft.mean()),
            Timing::Whole {
                latency,
                output_tokens,
                ..
            } => (
                latency,
                self.per_token
                    .mean()
                    .map(|m| m * output_tokens.max(TOKEN_FLOOR) as f64),
            ),
        };
        taken > SLOW_FLOOR && expected.is_some_and(|e| taken.as_secs_f64() > factor * e)
    }

    /// Learns from a successful call.
    pub fn record(&mut self, timing: Timing, now: Instant) {
        match timing {
            Timing::Stream { ttft } => self.ttft.record(ttft.as_secs_f64(), now),
            Timing::Whole {
                first_byte,
                latency,
                output_tokens,
            } => {
                self.first_byte.record(first_byte.as_secs_f64(), now);
                self.per_token
                    .record(per_token(latency, output_tokens), now);
            }
        }
    }

    fn estimate(&self, stream: bool) -> &Estimate {
        if stream {
            &self.ttft
        } else {
            &self.first_byte
        }
    }

    /// How long an attempt may show no life before it is a black hole; `None` before a
    /// baseline exists (then only the route's deadline and any configured timeout apply).
    pub fn black_hole_after(&self, stream: bool) -> Option<Duration> {
        let worst = self.estimate(stream).worst()?;
        Some(Duration::from_secs_f64(worst * BLACK_HOLE_MULTIPLE).max(BLACK_HOLE_FLOOR))
    }

    /// The `auto` hedge delay: about the 95th percentile of the time to first content.
    pub fn p95_first_content(&self, stream: bool) -> Option<Duration> {
        self.estimate(stream)
            .p95()
            .map(|p| Duration::from_secs_f64(p.max(0.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn warmed(ttft: Duration, n: u32) -> (Baseline, Instant) {
        let mut b = Baseline::default();
        let mut now = Instant::now();
        for _ in 0..n {
            now += Duration::from_secs(1);
            b.record(Timing::Stream { ttft }, now);
        }
        (b, now)
    }

    #[test]
    fn nothing_is_slow_before_the_baseline() {
        let (b, _) = warmed(ms(100), MIN_SAMPLES - 1);
        assert!(!b.is_slow(Timing::Stream { ttft: ms(60_000) }, 3.0));
        assert_eq!(b.black_hole_after(true), None);
    }

    #[test]
    fn a_brown_out_is_slow_and_a_black_hole_is_found_within_seconds() {
        let (b, _) = warmed(ms(100), 20);
        assert!(!b.is_slow(Timing::Stream { ttft: ms(250) }, 3.0));
        assert!(b.is_slow(Timing::Stream { ttft: ms(3_000) }, 3.0));
        let bound = b.black_hole_after(true).unwrap();
        assert!(bound < Duration::from_secs(7), "{bound:?}");
        assert_eq!(b.black_hole_after(false), None);
    }

    #[test]
    fn long_answers_are_judged_per_token() {
        let mut b = Baseline::default();
        let mut now = Instant::now();
        for _ in 0..10 {
            now += Duration::from_secs(1);
            b.record(
                Timing::Whole {
                    first_byte: ms(2_000),
                    latency: ms(2_000),
                    output_tokens: 100,
                },
                now,
            );
        }
        let long = Timing::Whole {
            first_byte: ms(40_000),
            latency: ms(40_000),
            output_tokens: 4_000,
        };
        assert!(!b.is_slow(long, 3.0));
        let stuck = Timing::Whole {
            first_byte: ms(40_000),
            latency: ms(40_000),
            output_tokens: 100,
        };
        assert!(b.is_slow(stuck, 3.0));
    }

    #[test]
    fn a_brown_out_cannot_blow_the_black_hole_bound_up() {
        // Ten slow calls (about what the slow rule needs to open the breaker) leave the
        // bound of a 100 ms target near its floor; uncapped, they would take it to ~30 s.
        let (mut b, mut now) = warmed(ms(100), 20);
        for _ in 0..10 {
            now += Duration::from_secs(3);
            b.record(Timing::Stream { ttft: ms(3_000) }, now);
        }
        let bound = b.black_hole_after(true).unwrap();
        assert!(bound < Duration::from_secs(7), "{bound:?}");
    }

    #[test]
    fn the_baseline_forgets_over_minutes_not_calls() {
        let (mut b, mut now) = warmed(ms(100), 20);
        // A burst of a hundred slow calls within a second barely moves it...
        for _ in 0..100 {
            now += ms(10);
            b.record(Timing::Stream { ttft: ms(3_000) }, now);
        }
        assert!(b.ttft.mean().is_some_and(|m| m < 0.5), "{:?}", b.ttft);
        // ... minutes of them make them the new normal.
        for _ in 0..60 {
            now += Duration::from_secs(10);
            b.record(Timing::Stream { ttft: ms(3_000) }, now);
        }
        assert!(!b.is_slow(Timing::Stream { ttft: ms(3_000) }, 3.0));
    }
}
