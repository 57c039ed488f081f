//! DESIGN §6 "Fleet-shared state": several sidecars sharing a real `redis-server` (started
//! here on a free loopback port; `tests/run.sh` installs it) learn a 429 once, open on a
//! quorum's word, and run on their own state, without failing a call, while Redis is gone.
//!
//! Real time, not paused: the Redis server is another process.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use crate::support::*;

/// A `redis-server` on a free loopback port, with nothing persisted; killed on drop.
struct Redis {
    port: u16,
    child: Child,
}

impl Redis {
    #[allow(
        clippy::disallowed_types,
        reason = "waits on another process in real time, before any runtime timer matters"
    )]
    fn start_on(port: u16) -> Redis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (tests/run.sh installs Debian's redis-server)");
        let start = std::time::Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Redis { port, child }
    }

    fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Redis::start_on(port)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn kill(mut self) -> u16 {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.port
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn pods(
    n: usize,
    redis: Option<&Redis>,
    extra: &str,
) -> (MockServer, MockServer, Vec<Sidecar>) {
    provider_key_env();
    let primary = MockServer::start("primary").await.unwrap();
    let secondary = MockServer::start("secondary").await.unwrap();
    let policy = two_target_policy(&primary, &secondary, extra);
    let mut sidecars = Vec::new();
    for _ in 0..n {
        let url = redis.map(Redis::url);
        sidecars.push(Sidecar::start_configured(&policy, |args| args.shared_state = url).await);
    }
    for sidecar in &sidecars {
        if redis.is_some() {
            wait_for_metric(sidecar, "switchyard_shared_state_up 1").await;
        }
    }
    (primary, secondary, sidecars)
}

async fn wait_for_metric(sidecar: &Sidecar, line: &str) -> Duration {
    let start = Instant::now();
    loop {
        if sidecar.metrics().await.lines().any(|l| l == line) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no {line:?} in /metrics"
        );
        tokio::time::sleep(ms(20)).await;
    }
}

#[tokio::test]
async fn a_429_seen_by_one_pod_stops_the_others_within_200_ms() {
    let redis = Redis::start();
    let (primary, secondary, pods) = pods(3, Some(&redis), "").await;
    primary.set_faults(faults(
        json!({"errorRate": 1.0, "errorStatus": 429, "retryAfter": 30}),
    ));
    let reply = pods[0].chat("gpt-4o").await;
    assert_eq!(reply.header("x-switchyard-provider"), "secondary");
    // The primary is healthy again: any call that reaches it shows in its count.
    primary.set_faults(Faults::default());
    let seen = primary.calls();
    tokio::time::sleep(ms(200)).await;
    for pod in &pods[1..] {
        let reply = pod.chat("gpt-4o").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("x-switchyard-provider"), "secondary");
        assert_eq!(
            reply.header("x-switchyard-attempts"),
            "1",
            "the primary was skipped"
        );
    }
    assert_eq!(
        primary.calls(),
        seen,
        "no other pod called the throttled target"
    );
    assert_eq!(secondary.calls(), 3);
}

#[tokio::test]
async fn with_redis_killed_no_call_fails_or_waits_and_sharing_resumes_when_it_returns() {
    let redis = Redis::start();
    let (primary, _secondary, pods) = pods(2, Some(&redis), "").await;
    let port = redis.kill();
    let start = Instant::now();
    for _ in 0..20 {
        let before = Instant::now();
        let reply = pods[0].chat("gpt-4o").await;
        assert_eq!(reply.status, 200);
        assert!(
            before.elapsed() < ms(200),
            "a call waited on Redis: {:?}",
            before.elapsed()
        );
    }
    wait_for_metric(&pods[0], "switchyard_shared_state_up 0").await;
    assert!(start.elapsed() < Duration::from_secs(5));
    let _redis = Redis::start_on(port);
    for pod in &pods {
        wait_for_metric(pod, "switchyard_shared_state_up 1").await;
    }
    primary.set_faults(faults(
        json!({"errorRate": 1.0, "errorStatus": 429, "retryAfter": 30}),
    ));
    pods[0].chat("gpt-4o").await;
    primary.set_faults(Faults::default());
    let seen = primary.calls();
    tokio::time::sleep(ms(300)).await;
    let reply = pods[1].chat("gpt-4o").await;
    assert_eq!(reply.header("x-switchyard-provider"), "secondary");
    assert_eq!(primary.calls(), seen, "shared again after Redis came back");
}

/// Three pods meet a black hole one after another: how many of the third pod's calls
/// wait out the first-byte timeout.
async fn third_pod_timeouts(shared: bool) -> usize {
    let redis = Redis::start();
    let breaker = "circuitBreaker: {consecutiveFailures: 3, openFor: 30s}";
    let (primary, _secondary, pods) = pods(3, shared.then_some(&redis), breaker).await;
    primary.set_faults(faults(json!({"blackhole": true})));
    for pod in &pods[..2] {
        for _ in 0..3 {
            assert_eq!(pod.chat("gpt-4o").await.status, 200);
        }
    }
    // The two pods' reports reach the third within a sync.
    tokio::time::sleep(ms(1_500)).await;
    let mut waited = 0;
    for _ in 0..3 {
        let reply = pods[2].chat("gpt-4o").await;
        assert_eq!(reply.header("x-switchyard-provider"), "secondary");
        waited += usize::from(reply.header("x-switchyard-attempts") == "2");
    }
    waited
}

#[tokio::test]
async fn a_black_hole_learned_by_a_quorum_costs_the_other_pods_no_timeout() {
    assert_eq!(
        third_pod_timeouts(false).await,
        3,
        "alone, the third pod learns it itself"
    );
    assert_eq!(
        third_pod_timeouts(true).await,
        0,
        "with sharing, it opens on the quorum's word"
    );
}

#[tokio::test]
async fn one_sick_pod_never_opens_the_fleet() {
    let redis = Redis::start();
    let breaker = "circuitBreaker: {consecutiveFailures: 3, openFor: 30s}";
    let (primary, _secondary, pods) = pods(3, Some(&redis), breaker).await;
    primary.set_faults(faults(json!({"errorRate": 1.0, "errorStatus": 503})));
    for _ in 0..3 {
        pods[0].chat("gpt-4o").await;
    }
    primary.set_faults(Faults::default());
    tokio::time::sleep(ms(1_500)).await;
    let reply = pods[1].chat("gpt-4o").await;
    assert_eq!(reply.header("x-switchyard-provider"), "primary");
}

#[tokio::test]
async fn without_shared_state_there_is_no_shared_state_metric() {
    let (_primary, _secondary, pods) = pods(1, None, "").await;
    assert!(!pods[0].metrics().await.contains("switchyard_shared_state"));
}

/// Waits out the end of a unix minute, the window budgets count in, so a test's calls all
/// fall in one.
async fn within_one_minute(seconds_needed: u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let into = now.as_secs() % 60;
    if into + seconds_needed >= 60 {
        tokio::time::sleep(Duration::from_secs(60 - into)).await;
    }
}

const LIMITED: &str = "requestsPerMinute: 30";

/// Three pods, each sending 20 calls paced across the fleet: how many reach the primary.
async fn primary_calls_with_a_shared_limit(shared: bool) -> u64 {
    let redis = Redis::start();
    provider_key_env();
    let primary = MockServer::start("primary").await.unwrap();
    let secondary = MockServer::start("secondary").await.unwrap();
    let policy = two_target_policy(&primary, &secondary, "").replacen(
        "timeouts: {connect: 1s, firstByte: 2s, idle: 2s}",
        &format!("timeouts: {{connect: 1s, firstByte: 2s, idle: 2s}}\n    limits: {{{LIMITED}}}"),
        1,
    );
    let mut pods = Vec::new();
    for _ in 0..3 {
        let url = shared.then(|| redis.url());
        pods.push(Sidecar::start_configured(&policy, |args| args.shared_state = url).await);
    }
    if shared {
        for pod in &pods {
            wait_for_metric(pod, "switchyard_shared_state_up 1").await;
        }
    }
    within_one_minute(20).await;
    for _ in 0..20 {
        for pod in &pods {
            let reply = pod.chat("gpt-4o").await;
            assert_eq!(
                reply.status, 200,
                "a call over the limit goes to the backup"
            );
            tokio::time::sleep(ms(100)).await;
        }
    }
    primary.calls()
}

#[tokio::test]
async fn a_limit_is_held_per_pod_alone_and_across_the_fleet_with_shared_state() {
    let alone = primary_calls_with_a_shared_limit(false).await;
    assert_eq!(alone, 60, "each pod alone stays under its own 30 a minute");
    let shared = primary_calls_with_a_shared_limit(true).await;
    // One sync of slack: the other two pods may each admit one call before they read it.
    assert!(
        (30..=32).contains(&shared),
        "the three pods together stay under 30 a minute (one sync of slack): {shared}"
    );
}
