//! Span export off the request path: a bounded queue in front of the SDK's batch
//! processor, whose worker thread ships batches to the collector. Invariant: ending a span
//! never waits on the network; a span that finds the queue full, or whose batch the
//! collector did not take, is dropped and counted in `switchyard_otlp_spans_dropped_total`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Span, SpanData, SpanExporter, SpanProcessor,
};
use opentelemetry_sdk::Resource;

use crate::metrics::spans_dropped;

/// Spans waiting for export, shared by the gate and the exporter that drains it.
#[derive(Debug, Default)]
struct Queue {
    len: AtomicUsize,
}

/// Admits ended spans to the batch processor while its queue has room.
#[derive(Debug)]
pub struct Gate {
    inner: BatchSpanProcessor,
    queue: Arc<Queue>,
    capacity: usize,
}

impl Gate {
    /// A batch processor over `exporter` holding at most `capacity` spans.
    pub fn new<E: SpanExporter + 'static>(exporter: E, capacity: usize, delay: Duration) -> Self {
        let queue = Arc::new(Queue::default());
        let config = BatchConfigBuilder::default()
            .with_max_queue_size(capacity)
            .with_scheduled_delay(delay)
            .build();
        let counting = Counting {
            inner: exporter,
            queue: Arc::clone(&queue),
        };
        Self {
            inner: BatchSpanProcessor::new(counting, config),
            queue,
            capacity,
        }
    }
}

impl SpanProcessor for Gate {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        let admitted = self
            .queue
            .len
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |len| {
                (len < self.capacity).then_some(len + 1)
            })
            .is_ok();
        if admitted {
            self.inner.on_end(span);
        } else {
            spans_dropped().inc();
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Takes spans off the gate's count as batches leave, counting batches the collector
/// did not accept as dropped.
#[derive(Debug)]
struct Counting<E> {
    inner: E,
    queue: Arc<Queue>,
}

impl<E: SpanExporter> SpanExporter for Counting<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let count = batch.len();
        self.queue.len.fetch_sub(count, Ordering::AcqRel);
        let result = self.inner.export(batch).await;
        if result.is_err() {
            spans_dropped().inc_by(count as u64);
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}
