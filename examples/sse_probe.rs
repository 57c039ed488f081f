//! SSE timing client for `bench/run.sh`: opens streaming chat (or Responses) calls, timestamps every
//! server-sent event the moment the frame completing it is read, and prints one JSON
//! summary (time to first event, gaps between events, coalescing, errors).
//!
//! Invariant: timing uses one monotonic clock and the read that completes an event, so
//! the numbers compare directly between a direct call and a proxied one. Only ever
//! pointed at loopback addresses by the rig.
#![allow(
    clippy::disallowed_types,
    reason = "a benchmark client measuring real elapsed time; it never runs on paused time"
)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use http::{Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tokio::sync::Notify;

/// Flags of the probe.
#[derive(Parser, Debug, Clone)]
struct Args {
    /// Full URL of the chat completions endpoint, or of a Responses one (`…/responses`),
    /// which gets a Responses body.
    #[arg(long)]
    url: Uri,
    /// Model name to request.
    #[arg(long, default_value = "bench-sse")]
    model: String,
    /// Streams to run in total.
    #[arg(long, default_value_t = 10)]
    streams: usize,
    /// Streams open at once.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// When every concurrent stream has its first event, read this process's RSS.
    #[arg(long)]
    rss_pid: Option<u32>,
    /// Bearer token to send (LiteLLM wants its master key; the others ignore it).
    #[arg(long, default_value = "sk-bench")]
    auth: String,
}

/// Timings of one stream.
#[derive(Default)]
struct StreamTimes {
    first_event_us: Option<u64>,
    gaps_us: Vec<u64>,
    events: usize,
    /// Events that completed in the same read as an earlier event of the same stream,
    /// counted separately for the first read (the commit-point flush) and the rest.
    coalesced_first_read: usize,
    coalesced_after: usize,
    error: Option<String>,
}

async fn one_stream(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    args: &Args,
    opened: &AtomicUsize,
    all_open: &Notify,
) -> StreamTimes {
    let mut times = StreamTimes::default();
    let prompt = "Count to sixty-four.";
    let body = if args.url.path().ends_with("/responses") {
        json!({"model": args.model, "stream": true, "input": prompt})
    } else {
        json!({"model": args.model, "stream": true, "messages": [{"role": "user", "content": prompt}]})
    }
    .to_string();
    let request = Request::post(args.url.clone())
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {}", args.auth))
        .body(Full::new(Bytes::from(body)))
        .expect("a static request is valid");
    let started = Instant::now();
    let response = match client.request(request).await {
        Ok(response) => response,
        Err(err) => {
            times.error = Some(format!("request: {err}"));
            return times;
        }
    };
    if !response.status().is_success() {
        times.error = Some(format!("status {}", response.status()));
        return times;
    }
    let mut body = response.into_body();
    let mut pending: Vec<u8> = Vec::new();
    let mut last: Option<Instant> = None;
    let mut reads = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(err) => {
                times.error = Some(format!("body: {err}"));
                break;
            }
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let now = Instant::now();
        pending.extend_from_slice(&data);
        let mut completed = 0usize;
        while let Some(end) = find_event_end(&pending) {
            pending.drain(..end);
            completed += 1;
        }
        if completed == 0 {
            continue;
        }
        reads += 1;
        match last {
            None => {
                times.first_event_us = Some(micros(now - started));
                if opened.fetch_add(1, Ordering::AcqRel) + 1 == args.concurrency {
                    all_open.notify_one();
                }
            }
            Some(previous) => times.gaps_us.push(micros(now - previous)),
        }
        if reads == 1 {
            times.coalesced_first_read += completed - 1;
        } else {
            times.coalesced_after += completed - 1;
        }
        times.events += completed;
        last = Some(now);
    }
    times
}

/// End (exclusive) of the first complete event in `buf`: a blank line, LF or CRLF framed.
fn find_event_end(buf: &[u8]) -> Option<usize> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

#[tokio::main]
async fn main() {
    let args = Arc::new(Args::parse());
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(args.concurrency)
        .build(connector);
    let opened = Arc::new(AtomicUsize::new(0));
    let all_open = Arc::new(Notify::new());
    let rss_at_open = args.rss_pid.map(|pid| {
        let all_open = Arc::clone(&all_open);
        tokio::spawn(async move {
            all_open.notified().await;
            rss_kib(pid)
        })
    });
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::with_capacity(args.concurrency);
    for _ in 0..args.concurrency {
        let (client, args, next) = (client.clone(), Arc::clone(&args), Arc::clone(&next));
        let (opened, all_open) = (Arc::clone(&opened), Arc::clone(&all_open));
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while next.fetch_add(1, Ordering::AcqRel) < args.streams {
                mine.push(one_stream(&client, &args, &opened, &all_open).await);
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.expect("a probe worker never panics"));
    }
    let rss = match rss_at_open {
        Some(task) if opened.load(Ordering::Acquire) >= args.concurrency => {
            task.await.ok().flatten()
        }
        _ => None,
    };
    let summary = json!({
        "streams": all.len(),
        "errors": all.iter().filter_map(|t| t.error.clone()).collect::<Vec<_>>(),
        "events": all.iter().map(|t| t.events).sum::<usize>(),
        "first_event_us": all.iter().filter_map(|t| t.first_event_us).collect::<Vec<_>>(),
        "gaps_us": all.iter().flat_map(|t| t.gaps_us.iter().copied()).collect::<Vec<_>>(),
        "coalesced_first_read": all.iter().map(|t| t.coalesced_first_read).sum::<usize>(),
        "coalesced_after_first": all.iter().map(|t| t.coalesced_after).sum::<usize>(),
        "rss_kib_all_open": rss,
    });
    println!("{summary}");
}
