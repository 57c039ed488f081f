//! Unit tests of each breaker rule, on explicit instants.

use super::*;

const FAIL: CallOutcome = CallOutcome::Failure { slow: false };
const OK: CallOutcome = CallOutcome::Success { slow: false };
const SLOW_OK: CallOutcome = CallOutcome::Success { slow: true };

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// One call at `now`: acquire (must be admitted) and record.
fn call(b: &mut Breaker, outcome: CallOutcome, now: Instant) -> Option<Transition> {
    let (permit, _) = b.try_acquire(now);
    b.record(permit.expect("breaker admits"), outcome, now)
}

fn open_until(b: &Breaker, now: Instant) -> Instant {
    b.snapshot(now).open_until.expect("breaker is open")
}

/// A breaker opened by consecutive failures at `t0`.
fn opened(config: BreakerConfig, t0: Instant) -> Breaker {
    let mut b = Breaker::with_seed(config.clone(), t0, 7);
    for _ in 0..config.consecutive_failures {
        call(&mut b, FAIL, t0);
    }
    assert_eq!(b.state(), State::Open);
    b
}

#[test]
fn defaults_match_design() {
    let c = BreakerConfig::default();
    assert_eq!(c.window, secs(60));
    assert_eq!(
        (c.minimum_calls, c.consecutive_failures, c.half_open_calls),
        (10, 5, 3)
    );
    assert_eq!((c.failure_rate, c.slow_rate), (0.2, 0.5));
    assert_eq!(
        (c.slow_first_byte, c.slow_factor, c.open_for, c.max_open_for),
        (None, 3.0, secs(30), secs(300))
    );
    assert!(!c.is_slow_absolute(secs(3600)));
    let absolute = BreakerConfig {
        slow_first_byte: Some(secs(20)),
        ..c.clone()
    };
    assert!(absolute.is_slow_absolute(secs(21)) && !absolute.is_slow_absolute(secs(20)));
}

#[test]
fn state_labels_and_gauge_values() {
    let all = [State::Closed, State::Open, State::HalfOpen];
    let labels: Vec<_> = all.iter().map(|s| s.as_str()).collect();
    assert_eq!(labels, ["closed", "open", "half-open"]);
    let values: Vec<_> = all.iter().map(|s| s.metric_value()).collect();
    assert_eq!(values, [0, 1, 2]);
    assert_eq!(State::HalfOpen.to_string(), "half-open");
}

#[test]
fn consecutive_failures_open() {
    let t0 = Instant::now();
    let mut b = Breaker::with_seed(BreakerConfig::default(), t0, 1);
    for _ in 0..4 {
        assert_eq!(call(&mut b, FAIL, t0), None);
    }
    let t = call(&mut b, FAIL, t0).expect("fifth failure opens");
    assert_eq!(
        (t.from, t.to, t.reason),
        (State::Closed, State::Open, Reason::ConsecutiveFailures)
    );
}

#[test]
fn success_breaks_the_failure_streak() {
    let t0 = Instant::now();
    let config = BreakerConfig {
        minimum_calls: 100,
        ..BreakerConfig::default()
    };
    let mut b = Breaker::with_seed(config, t0, 1);
    for _ in 0..4 {
        call(&mut b, FAIL, t0);
    }
    call(&mut b, OK, t0);
    for _ in 0..4 {
        assert_eq!(call(&mut b, FAIL, t0), None);
    }
    assert_eq!(b.snapshot(t0).consecutive_failures, 4);
}

#[test]
fn failure_rate_waits_for_minimum_calls() {
    let t0 = Instant::now();
    let config = BreakerConfig {
        consecutive_failures: 0,
        ..BreakerConfig::default()
    };
    let mut b = Breaker::with_seed(config, t0, 1);
    // 2 failures in 9 calls is 22% but under minimumCalls.
    for outcome in [FAIL, FAIL, OK, OK, OK, OK, OK, OK, OK] {
        assert_eq!(call(&mut b, outcome, t0), None);
    }
    let t = call(&mut b, OK, t0).expect("tenth call gives a verdict");
    assert_eq!(t.reason, Reason::FailureRate);
    assert_eq!(b.snapshot(t0).calls, 10);
}

#[test]
fn slow_rate_opens() {
    let t0 = Instant::now();
    let mut b = Breaker::with_seed(BreakerConfig::default(), t0, 1);
    for i in 0..9 {
        let outcome = if i % 2 == 0 { SLOW_OK } else { OK };
        assert_eq!(call(&mut b, outcome, t0), None);
    }
    let t = call(&mut b, SLOW_OK, t0).expect("5 of 10 slow");
    assert_eq!(t.reason, Reason::SlowRate);
}

#[test]
fn window_expiry_forgets_old_failures() {
    let t0 = Instant::now();
    let config = BreakerConfig {
        consecutive_failures: 0,
        ..BreakerConfig::default()
    };
    let mut b = Breaker::with_seed(config, t0, 1);
    for _ in 0..5 {
        call(&mut b, FAIL, t0);
    }
    let later = t0 + secs(61);
    assert_eq!(b.snapshot(later).calls, 0);
    for _ in 0..10 {
        assert_eq!(call(&mut b, OK, later), None);
    }
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn open_refuses_until_period_then_half_opens_lazily() {
    let t0 = Instant::now();
    let mut b = opened(BreakerConfig::default(), t0);
    let until = open_until(&b, t0);
    let (refused, transition) = b.try_acquire(until - Duration::from_millis(1));
    assert_eq!((refused, transition), (Err(until), None));
    assert_eq!(b.available_at(t0), until);
    assert_eq!(b.state(), State::Open);
    let (permit, transition) = b.try_acquire(until);
    assert!(permit.expect("probe admitted").is_probe());
    let t = transition.expect("open -> half-open");
    assert_eq!(
        (t.from, t.to, t.reason),
        (State::Open, State::HalfOpen, Reason::OpenElapsed)
    );
}

#[test]
fn jitter_stays_within_twenty_percent() {
    let t0 = Instant::now();
    let mut periods = std::collections::HashSet::new();
    for seed in 0..200 {
        let mut b = Breaker::with_seed(BreakerConfig::default(), t0, seed);
        for _ in 0..5 {
            call(&mut b, FAIL, t0);
        }
        let period = open_until(&b, t0) - t0;
        assert!(period >= secs(24) && period <= secs(36), "{period:?}");
        periods.insert(period);
    }
    assert!(periods.len() > 100, "jitter varies between breakers");
}

#[test]
fn failed_rounds_double_up_to_max_then_close_resets() {
    let t0 = Instant::now();
    let config = BreakerConfig {
        max_open_for: secs(100),
        ..BreakerConfig::default()
    };
    let mut b = opened(config, t0);
    let mut now = t0;
    let mut bases = Vec::new();
    for _ in 0..4 {
        let until = open_until(&b, now);
        now = until;
        let (permit, _) = b.try_acquire(now);
        let t = b
            .record(permit.expect("probe"), FAIL, now)
            .expect("probe failure reopens");
        assert_eq!(
            (t.from, t.to, t.reason),
            (State::HalfOpen, State::Open, Reason::ProbeFailed)
        );
        bases.push(open_until(&b, now) - now);
    }
    // Bases 60s, 100s (capped), 100s, 100s, each jittered within [0.8, 1.2] and capped at 100s.
    assert!(bases[0] >= secs(48) && bases[0] <= secs(72), "{bases:?}");
    for period in &bases[1..] {
        assert!(*period >= secs(80) && *period <= secs(100), "{bases:?}");
    }
    // Close, reopen: back to the first period.
    now = open_until(&b, now);
    for _ in 0..3 {
        call(&mut b, OK, now);
    }
    assert_eq!(b.state(), State::Closed);
    for _ in 0..5 {
        call(&mut b, FAIL, now);
    }
    let period = open_until(&b, now) - now;
    assert!(period >= secs(24) && period <= secs(36), "{period:?}");
}

#[test]
fn half_open_admits_exactly_the_probe_count() {
    let t0 = Instant::now();
    let mut b = opened(BreakerConfig::default(), t0);
    let now = open_until(&b, t0);
    let permits: Vec<_> = (0..3)
        .map(|_| b.try_acquire(now).0.expect("probe"))
        .collect();
    for _ in 0..5 {
        assert_eq!(b.try_acquire(now), (Err(now + HALF_OPEN_RETRY), None));
    }
    assert_eq!(b.available_at(now), now + HALF_OPEN_RETRY);
    let mut transitions = permits.into_iter().map(|p| b.record(p, OK, now));
    assert_eq!(transitions.next(), Some(None));
    assert_eq!(transitions.next(), Some(None));
    let t = transitions.next().flatten().expect("last probe closes");
    assert_eq!(
        (t.from, t.to, t.reason),
        (State::HalfOpen, State::Closed, Reason::ProbesSucceeded)
    );
    assert_eq!(b.snapshot(now).calls, 0, "window cleared on close");
    assert_eq!(b.snapshot(now).open_until, None);
}

#[test]
fn release_frees_a_probe_slot_without_counting() {
    let t0 = Instant::now();
    let config = BreakerConfig {
        half_open_calls: 1,
        ..BreakerConfig::default()
    };
    let mut b = opened(config, t0);
    let now = open_until(&b, t0);
    let permit = b.try_acquire(now).0.expect("probe");
    assert!(b.try_acquire(now).0.is_err());
    b.release(permit);
    assert_eq!(b.available_at(now), now);
    let permit = b.try_acquire(now).0.expect("slot freed");
    assert_eq!(b.state(), State::HalfOpen);
    assert!(b.record(permit, OK, now).is_some());
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn slow_probe_fails_the_round() {
    let t0 = Instant::now();
    let mut b = opened(BreakerConfig::default(), t0);
    let now = open_until(&b, t0);
    let t = call(&mut b, SLOW_OK, now).expect("slow probe reopens");
    assert_eq!(t.to, State::Open);
}

#[test]
fn stale_results_never_transition() {
    let t0 = Instant::now();
    let mut b = Breaker::with_seed(BreakerConfig::default(), t0, 1);
    let early: Vec<_> = (0..14)
        .map(|_| b.try_acquire(t0).0.expect("closed"))
        .collect();
    let mut early = early.into_iter();
    for _ in 0..5 {
        call(&mut b, FAIL, t0);
    }
    // Open: stale results are dropped.
    assert_eq!(b.record(early.next().expect("permit"), OK, t0), None);
    let now = open_until(&b, t0);
    let probe = b.try_acquire(now).0.expect("probe");
    // Half-open: a stale failure neither reopens nor counts as a probe.
    assert_eq!(b.record(early.next().expect("permit"), FAIL, now), None);
    assert_eq!(b.state(), State::HalfOpen);
    b.record(probe, OK, now);
    call(&mut b, OK, now);
    call(&mut b, OK, now);
    assert_eq!(b.state(), State::Closed);
    // Closed again: twelve stale failures are counted but trip nothing, not even the streak.
    for permit in early {
        assert_eq!(b.record(permit, FAIL, now), None);
    }
    assert_eq!(b.state(), State::Closed);
    let snap = b.snapshot(now);
    assert_eq!((snap.calls, snap.consecutive_failures), (12, 0));
    // The next fresh call sees the window (12 failures in 13 calls) and opens.
    assert_eq!(
        call(&mut b, OK, now).map(|t| t.reason),
        Some(Reason::FailureRate)
    );
}

#[test]
fn stale_probe_from_an_earlier_round_is_ignored() {
    let t0 = Instant::now();
    let config = BreakerConfig {
        half_open_calls: 2,
        ..BreakerConfig::default()
    };
    let mut b = opened(config, t0);
    let mut now = open_until(&b, t0);
    let old_probe = b.try_acquire(now).0.expect("probe");
    call(&mut b, FAIL, now);
    now = open_until(&b, now);
    let p1 = b.try_acquire(now).0.expect("probe");
    let p2 = b.try_acquire(now).0.expect("probe");
    assert_eq!(b.record(old_probe, OK, now), None);
    assert!(b.try_acquire(now).0.is_err(), "both probes are out");
    b.release(p1);
    assert_eq!(b.available_at(now), now, "released p1, not the stale probe");
    assert_eq!(b.record(p2, OK, now), None);
    assert_eq!(b.state(), State::HalfOpen);
}

#[test]
fn force_open_and_force_close() {
    let t0 = Instant::now();
    let mut b = Breaker::with_seed(BreakerConfig::default(), t0, 1);
    call(&mut b, FAIL, t0);
    let until = t0 + secs(600);
    let t = b.force_open(until, t0).expect("closed -> open");
    assert_eq!(
        (t.from, t.to, t.reason),
        (State::Closed, State::Open, Reason::Forced)
    );
    assert_eq!(
        b.force_open(until + secs(1), t0),
        None,
        "already open: only moves the end"
    );
    assert_eq!(b.available_at(t0), until + secs(1));
    let t = b.force_close(t0).expect("open -> closed");
    assert_eq!((t.from, t.to), (State::Open, State::Closed));
    let snap = b.snapshot(t0);
    assert_eq!((snap.calls, snap.consecutive_failures), (0, 0));
    call(&mut b, FAIL, t0);
    assert_eq!(b.force_close(t0), None);
    assert_eq!(
        b.snapshot(t0).calls,
        0,
        "force_close while closed still resets"
    );
}

#[test]
fn reconfigure_keeps_state() {
    let t0 = Instant::now();
    let mut b = opened(BreakerConfig::default(), t0);
    let until = open_until(&b, t0);
    let config = BreakerConfig {
        half_open_calls: 1,
        ..BreakerConfig::default()
    };
    b.reconfigure(config.clone());
    assert_eq!(b.config(), &config);
    assert_eq!((b.state(), open_until(&b, t0)), (State::Open, until));
    call(&mut b, OK, until);
    assert_eq!(b.state(), State::Closed, "the new probe count applies");
    // Same window length keeps the counts; a new length starts empty.
    call(&mut b, FAIL, until);
    b.reconfigure(BreakerConfig {
        minimum_calls: 3,
        ..config.clone()
    });
    assert_eq!(b.snapshot(until).calls, 1);
    b.reconfigure(BreakerConfig {
        window: secs(10),
        ..config
    });
    assert_eq!(b.snapshot(until).calls, 0);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn with_active_probes_only_a_probe_makes_the_half_open_trial() {
    let start = Instant::now();
    let config = BreakerConfig {
        consecutive_failures: 1,
        half_open_calls: 2,
        active_probes: true,
        ..BreakerConfig::default()
    };
    let mut b = Breaker::with_seed(config, start, 1);
    let (permit, _) = b.try_acquire(start);
    b.record(permit.unwrap(), CallOutcome::Failure { slow: false }, start);
    assert_eq!(b.state(), State::Open);
    let later = open_until(&b, start) + secs(1);
    // An app's call after the open period does not become the trial...
    let (refused, transition) = b.try_acquire(later);
    assert!(refused.is_err() && transition.is_none());
    assert_eq!(b.state(), State::Open);
    // ... a probe does, and the app waits until the probes close the breaker.
    let (probe, transition) = b.try_acquire_probe(later);
    assert_eq!(transition.unwrap().to, State::HalfOpen);
    assert!(b.try_acquire(later).0.is_err());
    b.record(probe.unwrap(), CallOutcome::Success { slow: false }, later);
    let (probe, _) = b.try_acquire_probe(later);
    let closed = b.record(probe.unwrap(), CallOutcome::Success { slow: false }, later);
    assert_eq!(closed.unwrap().to, State::Closed);
    assert!(b.try_acquire(later).0.is_ok());
}

#[test]
fn a_last_chance_settles_the_trial_of_an_open_or_half_open_breaker() {
    let t0 = Instant::now();
    let config = BreakerConfig {
        consecutive_failures: 1,
        open_for: secs(10),
        max_open_for: secs(300),
        ..BreakerConfig::default()
    };
    let mut b = opened(config.clone(), t0);
    let first_end = open_until(&b, t0);
    // A failure while open: no transition, but a doubled open period from now.
    assert_eq!(b.record_last_chance(FAIL, t0 + secs(1)), None);
    assert_eq!(b.state(), State::Open);
    assert!(open_until(&b, t0 + secs(1)) >= t0 + secs(1) + secs(16));
    assert!(open_until(&b, t0 + secs(1)) > first_end);
    // A slow success is not a recovery either.
    assert_eq!(b.record_last_chance(SLOW_OK, t0 + secs(2)), None);
    assert_eq!(b.state(), State::Open);
    // A success closes it at once, with the open period reset.
    let closed = b.record_last_chance(OK, t0 + secs(3)).expect("closes");
    assert_eq!(
        (closed.from, closed.to, closed.reason),
        (State::Open, State::Closed, Reason::LastChanceSucceeded)
    );
    // Half-open: a failure reopens it.
    let mut b = opened(config.clone(), t0);
    let (permit, _) = b.try_acquire(t0 + secs(13));
    let permit = permit.expect("half-open admits a probe");
    assert_eq!(b.state(), State::HalfOpen);
    let reopened = b.record_last_chance(FAIL, t0 + secs(13)).expect("reopens");
    assert_eq!(
        (reopened.from, reopened.to, reopened.reason),
        (State::HalfOpen, State::Open, Reason::LastChanceFailed)
    );
    // The probe admitted before it is stale now.
    assert_eq!(b.record(permit, OK, t0 + secs(14)), None);
    assert_eq!(b.state(), State::Open);
    // Closed: a last chance (the target was cooling down or shed) changes nothing.
    let mut b = Breaker::with_seed(config, t0, 7);
    assert_eq!(b.record_last_chance(FAIL, t0), None);
    assert_eq!(b.snapshot(t0).calls, 0);
}

/// A breaker opened by its failure-rate rule at `t0`: `failures` of `calls`, spread so no
/// streak trips first.
fn opened_by_rate(calls: u32, failures: u32, t0: Instant) -> Breaker {
    let mut b = Breaker::with_seed(BreakerConfig::default(), t0, 7);
    let mut transition = None;
    for n in 0..calls {
        let failed = (n + 1) * failures / calls > n * failures / calls;
        transition = call(&mut b, if failed { FAIL } else { OK }, t0);
    }
    let t = transition.expect("the last call trips the rate rule");
    assert_eq!((t.to, t.reason), (State::Open, Reason::FailureRate));
    b
}

#[test]
fn a_rate_trip_asks_a_trial_a_target_that_sick_would_fail() {
    let t0 = Instant::now();
    let mut b = opened_by_rate(10, 3, t0);
    assert_eq!(b.trial_calls(), 20, "0.7^20 < 0.001 <= 0.7^19");
    let now = open_until(&b, t0);
    // No more than `halfOpenCalls` out at once, however long the trial.
    let first: Vec<_> = (0..3)
        .map(|_| b.try_acquire(now).0.expect("probe"))
        .collect();
    assert_eq!(b.available_at(now), now + HALF_OPEN_RETRY);
    for permit in first {
        assert_eq!(b.record(permit, OK, now), None);
    }
    for _ in 3..19 {
        assert_eq!(call(&mut b, OK, now), None, "still on trial");
    }
    let t = call(&mut b, OK, now).expect("the twentieth success closes");
    assert_eq!((t.to, t.reason), (State::Closed, Reason::ProbesSucceeded));
    assert_eq!(
        b.trial_calls(),
        3,
        "closed: the next trip sets its own trial"
    );
}

#[test]
fn a_failed_trial_is_repeated_at_its_length_and_a_streak_trip_asks_the_configured_one() {
    let t0 = Instant::now();
    let mut b = opened_by_rate(10, 5, t0);
    assert_eq!(b.trial_calls(), 10, "0.5^10 < 0.001 <= 0.5^9");
    let now = open_until(&b, t0);
    for _ in 0..9 {
        call(&mut b, OK, now);
    }
    let t = call(&mut b, FAIL, now).expect("one failure ends the trial");
    assert_eq!((t.to, t.reason), (State::Open, Reason::ProbeFailed));
    assert_eq!(b.trial_calls(), 10);
    let now = open_until(&b, now);
    for _ in 0..9 {
        assert_eq!(call(&mut b, OK, now), None);
    }
    assert_eq!(call(&mut b, OK, now).map(|t| t.to), Some(State::Closed));
    let b = opened(BreakerConfig::default(), now);
    assert_eq!(
        b.trial_calls(),
        3,
        "a failure streak: any success tells it apart"
    );
}

#[test]
fn trial_length_bounds_a_false_pass_at_every_rate_up_to_its_cap() {
    for percent in 1..100 {
        let rate = f64::from(percent) / 100.0;
        let calls = trial_for(rate);
        let pass = (1.0 - rate).powi(i32::try_from(calls).expect("small"));
        assert!(
            calls == MAX_TRIAL_CALLS || pass <= TRIAL_FALSE_PASS,
            "{rate}: {calls} calls pass {pass}"
        );
        assert!(calls <= MAX_TRIAL_CALLS);
        if calls > 1 && calls < MAX_TRIAL_CALLS {
            let shorter = (1.0 - rate).powi(i32::try_from(calls - 1).expect("small"));
            assert!(
                shorter > TRIAL_FALSE_PASS,
                "{rate}: {calls} is not the fewest"
            );
        }
    }
    assert_eq!((trial_for(0.0), trial_for(1.0)), (0, 0));
    assert_eq!(trial_for(0.2), 31);
}
