//! A lock-free histogram for the request path. prometheus-client's `Histogram` guards its
//! buckets with a mutex; a route's duration and the sidecar's overhead are observed by
//! every request, so here each bucket, the count and the sum are plain atomics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// A histogram with fixed upper bounds, observed without locks.
#[derive(Clone, Debug)]
pub struct AtomicHistogram(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    bounds: &'static [f64],
    /// One count per bound plus the +Inf bucket (not cumulative).
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    /// The f64 sum's bits, updated by compare-and-swap.
    sum_bits: AtomicU64,
}

impl AtomicHistogram {
    /// A histogram with these upper bounds (ascending).
    pub fn new(bounds: &'static [f64]) -> Self {
        let buckets = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        Self(Arc::new(Inner {
            bounds,
            buckets,
            count: AtomicU64::new(0),
            sum_bits: AtomicU64::new(0),
        }))
    }

    /// Records one value.
    pub fn observe(&self, value: f64) {
        let inner = &self.0;
        let bucket = inner
            .bounds
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(inner.bounds.len());
        inner.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        inner.count.fetch_add(1, Ordering::Relaxed);
        let _ = inner
            .sum_bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
    }
}

impl TypedMetric for AtomicHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        let inner = &self.0;
        // The encoder takes per-bucket counts and accumulates them itself.
        let buckets: Vec<(f64, u64)> = inner
            .bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(inner.buckets.iter())
            .map(|(bound, n)| (bound, n.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = f64::from_bits(inner.sum_bits.load(Ordering::Relaxed));
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    #[test]
    fn encodes_cumulative_buckets() {
        static BOUNDS: [f64; 2] = [0.1, 1.0];
        let h = AtomicHistogram::new(&BOUNDS);
        for v in [0.05, 0.5, 0.7, 3.0] {
            h.observe(v);
        }
        let mut registry = Registry::default();
        registry.register("t", "test", h);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        assert!(out.contains("t_bucket{le=\"0.1\"} 1"), "{out}");
        assert!(out.contains("t_bucket{le=\"1.0\"} 3"), "{out}");
        assert!(out.contains("t_bucket{le=\"+Inf\"} 4"), "{out}");
        assert!(out.contains("t_count 4"), "{out}");
        assert!(out.contains("t_sum 4.25"), "{out}");
    }
}
