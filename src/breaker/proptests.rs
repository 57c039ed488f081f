//! Property tests: random acquire / record / release / advance sequences against the
//! breaker's invariants, with a small model of what was recorded when.

use super::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Acquire,
    Record {
        pick: usize,
        failure: bool,
        slow: bool,
    },
    Release {
        pick: usize,
    },
    Advance {
        millis: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Acquire),
        3 => (any::<usize>(), any::<bool>(), prop::bool::weighted(0.2))
            .prop_map(|(pick, failure, slow)| Op::Record { pick, failure, slow }),
        1 => any::<usize>().prop_map(|pick| Op::Release { pick }),
        2 => (0u64..20_000).prop_map(|millis| Op::Advance { millis }),
    ]
}

fn config() -> impl Strategy<Value = BreakerConfig> {
    (
        (1u64..120, 1u32..20, 0.05f64..=1.0, 0u32..8),
        (0.05f64..=1.0, 1u64..60, 1u32..10, 1u32..5),
    )
        .prop_map(
            |((window, min, rate, consecutive), (slow, open, cap, probes))| BreakerConfig {
                window: Duration::from_secs(window),
                minimum_calls: min,
                failure_rate: rate,
                consecutive_failures: consecutive,
                slow_first_byte: Some(Duration::from_secs(20)),
                slow_factor: 3.0,
                slow_rate: slow,
                open_for: Duration::from_secs(open),
                max_open_for: Duration::from_secs(open * u64::from(cap)),
                half_open_calls: probes,
                active_probes: false,
            },
        )
}

/// What the test saw, to check the breaker against.
#[derive(Default)]
struct Model {
    /// When each verdict was handed to the breaker.
    recorded_at: Vec<Instant>,
    /// Verdicts and failures recorded while closed, since the breaker last closed.
    calls_since_close: u32,
    failures_since_close: u32,
}

fn check_transition(b: &Breaker, model: &mut Model, t: Transition, now: Instant) {
    let config = b.config().clone();
    match (t.from, t.to) {
        (State::Closed, State::Open) => {
            let streak = config.consecutive_failures > 0
                && model.failures_since_close >= config.consecutive_failures;
            let rate = model.calls_since_close >= config.minimum_calls;
            assert!(streak || rate, "opened on too little evidence: {t:?}");
        }
        (State::HalfOpen, State::Closed) => {
            model.calls_since_close = 0;
            model.failures_since_close = 0;
        }
        _ => {}
    }
    if t.to == State::Open {
        let period = b.snapshot(now).open_until.expect("open") - now;
        assert!(period <= config.max_open_for, "{period:?} over the cap");
        assert!(
            period >= config.open_for.mul_f64(0.79),
            "{period:?} under the jitter"
        );
    }
}

fn check_invariants(b: &Breaker, permits: &[Permit], model: &Model, now: Instant) {
    let probes = b.config().probes();
    assert!(b.probes_admitted <= b.trial_calls());
    assert!(b.trial_calls() >= probes && b.trial_calls() <= MAX_TRIAL_CALLS);
    if b.state == State::HalfOpen {
        let out = permits
            .iter()
            .filter(|p| p.probe && p.epoch == b.epoch)
            .count();
        assert!(out <= probes as usize, "{out} probes outstanding");
    }
    let snap = b.snapshot(now);
    let window = b.config().window;
    let recent = model
        .recorded_at
        .iter()
        .filter(|t| now - **t < window)
        .count();
    assert!(
        snap.calls <= recent as u64,
        "{} counted, {recent} recorded",
        snap.calls
    );
    assert!((0.0..=1.0).contains(&snap.failure_rate));
    assert!((0.0..=1.0).contains(&snap.slow_rate));
}

fn run(config: BreakerConfig, seed: u64, ops: Vec<Op>) {
    let t0 = Instant::now();
    let mut now = t0;
    let mut b = Breaker::with_seed(config, t0, seed);
    let mut permits: Vec<Permit> = Vec::new();
    let mut model = Model::default();
    for op in ops {
        match op {
            Op::Acquire => {
                let was_open_until = (b.state == State::Open).then_some(b.open_until);
                let (result, transition) = b.try_acquire(now);
                if let Some(until) = was_open_until.filter(|u| now < *u) {
                    assert_eq!((&result, transition), (&Err(until), None));
                }
                if let Some(t) = transition {
                    check_transition(&b, &mut model, t, now);
                }
                if let Ok(permit) = result {
                    permits.push(permit);
                }
            }
            Op::Record {
                pick,
                failure,
                slow,
            } if !permits.is_empty() => {
                let permit = permits.swap_remove(pick % permits.len());
                let stale = permit.epoch != b.epoch;
                model.recorded_at.push(now);
                if b.state == State::Closed {
                    model.calls_since_close += 1;
                    model.failures_since_close += u32::from(failure);
                }
                let outcome = if failure {
                    CallOutcome::Failure { slow }
                } else {
                    CallOutcome::Success { slow }
                };
                let transition = b.record(permit, outcome, now);
                if stale {
                    assert_eq!(transition, None, "a stale result caused a transition");
                }
                if let Some(t) = transition {
                    check_transition(&b, &mut model, t, now);
                }
            }
            Op::Release { pick } if !permits.is_empty() => {
                b.release(permits.swap_remove(pick % permits.len()));
            }
            Op::Record { .. } | Op::Release { .. } => {}
            Op::Advance { millis } => now += Duration::from_millis(millis),
        }
        check_invariants(&b, &permits, &model, now);
    }
}

proptest! {
    #[test]
    fn random_sequences_keep_invariants(
        config in config(),
        seed in any::<u64>(),
        ops in prop::collection::vec(op(), 1..200),
    ) {
        run(config, seed, ops);
    }

    #[test]
    fn closed_breaker_with_little_evidence_stays_closed(
        config in config(),
        ops in prop::collection::vec(op(), 1..200),
    ) {
        // Stay under minimumCalls verdicts and under consecutiveFailures failures (when that
        // rule is on): whatever the order and timing, it must never open.
        let max_calls = config.minimum_calls - 1;
        let max_failures = match config.consecutive_failures {
            0 => u32::MAX,
            n => n - 1,
        };
        let t0 = Instant::now();
        let mut now = t0;
        let mut b = Breaker::new(config, t0);
        let (mut calls, mut failures) = (0, 0);
        for op in ops {
            match op {
                Op::Record { failure, slow, .. } if calls < max_calls => {
                    let failure = failure && failures < max_failures;
                    let permit = b.try_acquire(now).0.expect("closed admits");
                    let outcome = if failure {
                        CallOutcome::Failure { slow }
                    } else {
                        CallOutcome::Success { slow }
                    };
                    prop_assert_eq!(b.record(permit, outcome, now), None);
                    calls += 1;
                    failures += u32::from(failure);
                }
                Op::Advance { millis } => now += Duration::from_millis(millis),
                _ => {}
            }
            prop_assert_eq!(b.state(), State::Closed);
        }
    }
}

/// Random baselines: a series of (gap, ttft) samples in milliseconds.
fn samples() -> impl Strategy<Value = Vec<(u64, u64)>> {
    prop::collection::vec((1u64..60_000, 1u64..120_000), 0..40)
}

fn learned(series: &[(u64, u64)]) -> Baseline {
    let mut b = Baseline::default();
    let mut now = Instant::now();
    for &(gap, ttft) in series {
        now += Duration::from_millis(gap);
        b.record(
            Timing::Stream {
                ttft: Duration::from_millis(ttft),
            },
            now,
        );
    }
    b
}

proptest! {
    /// The slow-against-baseline rule: nothing is slow without enough samples or under the
    /// floor; slowness is monotonic in the time taken; a call at its target's normal is
    /// never slow; the black-hole bound never undercuts the floor or the worst normal.
    #[test]
    fn slow_against_the_baseline(series in samples(), factor in 1.0f64..10.0, probe in 0u64..600_000) {
        let b = learned(&series);
        let slow = |ms: u64| b.is_slow(Timing::Stream { ttft: Duration::from_millis(ms) }, factor);
        if (series.len() as u32) < MIN_SAMPLES {
            prop_assert!(!slow(probe));
            prop_assert!(b.black_hole_after(true).is_none());
            return Ok(());
        }
        prop_assert!(!slow(SLOW_FLOOR.as_millis() as u64));
        if slow(probe) {
            prop_assert!(slow(probe + 1) && slow(probe * 2));
        }
        let mean = b.ttft.mean().expect("enough samples");
        prop_assert!(!slow((mean * 1000.0).floor() as u64));
        let bound = b.black_hole_after(true).expect("a baseline");
        prop_assert!(bound >= BLACK_HOLE_FLOOR);
        prop_assert!(bound.as_secs_f64() >= b.ttft.worst().unwrap());
    }

    /// A steady target's brown-out is slow exactly past `factor` times its normal.
    #[test]
    fn a_steady_targets_brown_out_is_slow(ttft in 10u64..5_000, factor in 1.5f64..5.0, n in 5usize..30) {
        let series: Vec<(u64, u64)> = (0..n).map(|_| (1_000, ttft)).collect();
        let b = learned(&series);
        let threshold = (ttft as f64 * factor).max(SLOW_FLOOR.as_millis() as f64);
        let at = |ms: f64| b.is_slow(Timing::Stream { ttft: Duration::from_secs_f64(ms / 1000.0) }, factor);
        prop_assert!(at(threshold * 1.01 + 1.0));
        prop_assert!(!at(threshold * 0.99));
    }
}
