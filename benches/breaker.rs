//! Micro-benchmark of the per-target breaker: one admitted call recorded into the sliding
//! window, the work every proxied request does under the target's lock. A regression
//! here shows up without the full `bench/run.sh` rig.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use switchyard::breaker::{Breaker, BreakerConfig, CallOutcome};
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

criterion_group!(benches, acquire_and_record);
criterion_main!(benches);
