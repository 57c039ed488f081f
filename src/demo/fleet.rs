//! `switchyard demo --pods N`: N sidecars in front of one primary whose quota they share,
//! run twice, each pod alone and then sharing through Redis (a `redis-server` started
//! here on a free loopback port, or `--shared-state`), with the difference printed side
//! by side: what the provider saw (calls over its quota, 429s) and what the apps saw.
//!
//! Each round: the key throttled (every call 429 with `retry-after`), then healthy, with
//! the primary's quota (`limits.requestsPerMinute`) the constraint.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::time::Instant;

use super::{faults, Tally};
use crate::app::{self, RunArgs};
use crate::mock::MockServer;

/// Calls a minute the primary's key may make, fleet-wide.
const QUOTA_PER_MINUTE: u32 = 60;
/// The 429 storm, then the healthy phase.
const PHASES: [(&str, u64); 2] = [("key throttled: 429s", 7), ("healthy, quota-bound", 8)];
/// How long the primary's 429s ask callers to wait.
const RETRY_AFTER_SECS: u64 = 3;
/// Each pod's app sends a call this often.
const PACE: Duration = Duration::from_millis(100);

fn policy(primary: &str, backup: &str, key_file: &std::path::Path) -> String {
    format!(
        r#"
providers:
  - name: primary
    api: openai
    baseUrl: {primary}/v1
    auth: {{apiKey: {{fromFile: {key}}}}}
    limits: {{requestsPerMinute: {QUOTA_PER_MINUTE}}}
  - name: backup
    api: anthropic
    baseUrl: {backup}
    auth: {{apiKey: {{fromFile: {key}}}}}
routes:
  - model: gpt-4o
    targets:
      - {{provider: primary, model: gpt-4o}}
      - {{provider: backup, model: claude-haiku-4-5}}
"#,
        key = serde_json::Value::from(key_file.display().to_string()),
    )
}

/// A `redis-server` child on a free loopback port, nothing persisted; killed on drop.
struct LocalRedis {
    child: Child,
    url: String,
}

impl LocalRedis {
    async fn start() -> anyhow::Result<LocalRedis> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context(
                "the fleet demo shares state through Redis: put redis-server on PATH \
                 (Debian: apt-get install redis-server) or pass --shared-state redis://HOST:PORT",
            )?;
        let redis = LocalRedis {
            child,
            url: format!("redis://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not start listening on 127.0.0.1:{port}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(redis)
    }
}

impl Drop for LocalRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one round counted.
struct Round {
    tally: Arc<Tally>,
    primary_429s: u64,
    healthy_primary_calls: u64,
}

/// Runs the fleet demo with `pods` sidecars; `shared_state` is a Redis to use instead of
/// starting one.
pub async fn run(pods: usize, shared_state: Option<String>) -> anyhow::Result<()> {
    let local = match &shared_state {
        Some(_) => None,
        None => Some(LocalRedis::start().await?),
    };
    let url = shared_state
        .or_else(|| local.as_ref().map(|r| r.url.clone()))
        .expect("either given or started");
    let dir = std::env::temp_dir().join(format!("switchyard-fleet-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let key_file = dir.join("api-key");
    std::fs::write(&key_file, "sk-demo-not-a-real-key")?;

    println!("switchyard fleet demo: {pods} sidecars, one primary whose key they share");
    println!(
        "  the primary's quota: {QUOTA_PER_MINUTE} calls a minute (providers[].limits); each pod's app sends a call every {} ms",
        PACE.as_millis()
    );
    println!("  the backup speaks Anthropic's API; shared state: {url}\n");
    let alone = round(pods, None, &dir, &key_file).await?;
    let shared = round(pods, Some(url), &dir, &key_file).await?;
    let _ = std::fs::remove_dir_all(&dir);

    let row = |label: &str, a: u64, b: u64| println!("  {label:<44} {a:>10} {b:>12}");
    println!("\nsummary                                       each alone   sharing Redis");
    row(
        "app calls",
        alone.tally.sent.load(Ordering::Relaxed),
        shared.tally.sent.load(Ordering::Relaxed),
    );
    row(
        "failures the apps saw",
        alone.tally.app_errors.load(Ordering::Relaxed),
        shared.tally.app_errors.load(Ordering::Relaxed),
    );
    row(
        &format!("429s the primary answered ({} s)", PHASES[0].1),
        alone.primary_429s,
        shared.primary_429s,
    );
    row(
        &format!(
            "calls the primary got, healthy ({} s, quota {QUOTA_PER_MINUTE})",
            PHASES[1].1
        ),
        alone.healthy_primary_calls,
        shared.healthy_primary_calls,
    );
    println!(
        "\nAlone, each pod meets the key's 429s itself and holds its own {QUOTA_PER_MINUTE}-a-minute budget, so the fleet may spend {} against the provider's {QUOTA_PER_MINUTE}; sharing, one pod's 429 cools the key down for all, and the pods reserve from one budget (atomically, in Redis).",
        QUOTA_PER_MINUTE as usize * pods
    );
    Ok(())
}

/// `providers[].limits` budgets are per calendar minute, so a round that ran across a
/// minute's end would meet two budgets and show the fleet spending twice its quota. When
/// the minute has less than the round left, wait for the next one to begin.
async fn within_one_quota_minute(round: Duration) {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let left = Duration::from_millis(60_000 - (since_epoch.as_millis() % 60_000) as u64);
    let margin = Duration::from_millis(500);
    if left < round + margin {
        println!(
            "  (waiting {:.0} s for a fresh quota minute, so the round meets one budget)",
            left.as_secs_f64().ceil()
        );
        tokio::time::sleep(left + margin).await;
    }
}

async fn round(
    pods: usize,
    shared_state: Option<String>,
    dir: &std::path::Path,
    key_file: &std::path::Path,
) -> anyhow::Result<Round> {
    let sharing = shared_state.is_some();
    let primary = MockServer::start("primary").await?;
    let backup = MockServer::start("backup").await?;
    let policy_path = dir.join(if sharing { "shared.yaml" } else { "alone.yaml" });
    std::fs::write(
        &policy_path,
        policy(&primary.url(), &backup.url(), key_file),
    )?;
    let mut sidecars = Vec::with_capacity(pods);
    for _ in 0..pods {
        let mut args = RunArgs::loopback(Some(policy_path.clone()));
        args.shared_state = shared_state.clone();
        sidecars.push(app::start(&args).await?);
    }
    if sharing {
        // Every pod connected: the budget and cooldowns are shared from the first call.
        let started = Instant::now();
        while !sidecars.iter().all(|s| {
            s.shared
                .metrics
                .encode()
                .contains("switchyard_shared_state_up 1")
        }) {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(10),
                "the sidecars could not reach Redis"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    println!(
        "round: {}",
        if sharing {
            "sharing through Redis"
        } else {
            "each pod alone"
        }
    );
    let tally = Arc::new(Tally::default());
    let total: u64 = PHASES.iter().map(|p| p.1).sum();
    within_one_quota_minute(Duration::from_secs(total)).await;
    let deadline = Instant::now() + Duration::from_secs(total);
    // The pods' apps are not in step: each starts its pace a fraction later.
    let workers: Vec<_> = sidecars
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let url = format!("http://{}/v1/chat/completions", s.proxy_addr);
            let (tally, offset) = (Arc::clone(&tally), PACE * i as u32 / pods as u32);
            tokio::spawn(async move {
                tokio::time::sleep(offset).await;
                super::drive(url, false, tally, deadline, PACE).await;
            })
        })
        .collect();
    primary.set_faults(faults(&format!(
        r#"{{"errorRate": 1.0, "errorStatus": 429, "retryAfter": {RETRY_AFTER_SECS}}}"#
    )));
    let mut primary_429s = 0;
    for (index, (phase, seconds)) in PHASES.iter().enumerate() {
        if index == 1 {
            primary_429s = primary.calls();
            primary.set_faults(faults("{}"));
        }
        tokio::time::sleep(Duration::from_secs(*seconds)).await;
        println!(
            "  {phase:<20} app calls {:>5}  answered by primary {:>4}  by backup {:>4}  app errors {}",
            tally.sent.load(Ordering::Relaxed),
            tally.by_primary.load(Ordering::Relaxed),
            tally.by_backup.load(Ordering::Relaxed),
            tally.app_errors.load(Ordering::Relaxed),
        );
    }
    for worker in workers {
        worker.await?;
    }
    let result = Round {
        healthy_primary_calls: primary.calls() - primary_429s,
        primary_429s,
        tally,
    };
    for sidecar in sidecars {
        sidecar.shutdown();
        sidecar.wait().await;
    }
    primary.shutdown().await;
    backup.shutdown().await;
    Ok(result)
}
