//! Micro-benchmark of the per-target breaker: one admitted call recorded into the sliding
//! window, the work every proxied request does under the target's lock. A regression
//! here shows up without the full `bench/run.sh` rig.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use switchyard::breaker::{Baseline, Breaker, BreakerConfig, CallOutcome, Timing};
use tokio::time::{Duration, Instant};

fn acquire_and_record(c: &mut Criterion) {
    let start = Instant::now();
    let mut group = c.benchmark_group("breaker");
    group.bench_function("acquire_record_success", |b| {
        let mut breaker = Breaker::with_seed(BreakerConfig::default(), start, 7);
        let mut now = start;
        b.iter(|| {
            // Time moves 1 ms per call so the window rotates its buckets as in production.
            now += Duration::from_millis(1);
            let (permit, _) = breaker.try_acquire(now);
            let permit = permit.expect("a closed breaker admits every call");
            black_box(breaker.record(permit, CallOutcome::Success { slow: false }, now))
        });
    });
    group.bench_function("acquire_record_mixed", |b| {
        // One failure in eight: below the 20% threshold, so the breaker stays closed and
        // every call exercises the rate check.
        let mut breaker = Breaker::with_seed(BreakerConfig::default(), start, 7);
        let mut now = start;
        let mut n = 0u32;
        b.iter(|| {
            now += Duration::from_millis(1);
            n = n.wrapping_add(1);
            let (permit, _) = breaker.try_acquire(now);
            let permit = permit.expect("under the thresholds the breaker stays closed");
            let outcome = if n.is_multiple_of(8) {
                CallOutcome::Failure { slow: false }
            } else {
                CallOutcome::Success { slow: false }
            };
            black_box(breaker.record(permit, outcome, now))
        });
    });
    group.bench_function("snapshot", |b| {
        let mut breaker = Breaker::with_seed(BreakerConfig::default(), start, 7);
        for i in 0..1000 {
            let now = start + Duration::from_millis(i * 50);
            if let (Ok(permit), _) = breaker.try_acquire(now) {
                let _ = breaker.record(permit, CallOutcome::Success { slow: false }, now);
            }
        }
        let now = start + Duration::from_secs(50);
        b.iter(|| black_box(breaker.snapshot(now)));
    });
    group.finish();
}

/// The baseline's share of every call: judge it against the target's normal, then learn
/// from it (target: well under 100 ns), and the attempt's black-hole bound.
fn baseline(c: &mut Criterion) {
    let start = Instant::now();
    let mut group = c.benchmark_group("baseline");
    group.bench_function("judge_and_record", |b| {
        let mut baseline = Baseline::default();
        let mut now = start;
        let mut n = 0u64;
        b.iter(|| {
            now += Duration::from_millis(1);
            n = n.wrapping_add(1);
            let timing = Timing::Stream {
                ttft: Duration::from_millis(100 + n % 50),
            };
            let slow = baseline.is_slow(black_box(timing), 3.0);
            baseline.record(timing, now);
            black_box(slow)
        });
    });
    group.bench_function("black_hole_after", |b| {
        let mut baseline = Baseline::default();
        for i in 0..100 {
            let ttft = Duration::from_millis(100 + i % 50);
            baseline.record(Timing::Stream { ttft }, start + Duration::from_secs(i));
        }
        b.iter(|| black_box(black_box(&baseline).black_hole_after(true)));
    });
    group.finish();
}

criterion_group!(benches, acquire_and_record, baseline);
criterion_main!(benches);
