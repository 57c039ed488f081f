//! Fleet-shared state through Redis or Valkey (`--shared-state`, DESIGN §6): pods learn a
//! 429 cooldown once and act on breaker-open hints that enough pods agree on.
//!
//! Local first: nothing on the request path touches Redis. A background task reads the
//! pod's own target states every 100 ms and publishes what changed (a later cooldown
//! deadline, a breaker that opened or closed), and applies what others published, pushed
//! by pub/sub and re-read in full every second as a backstop (and after every reconnect).
//! When Redis is unreachable the pod runs on its own state, says so once in the log and in
//! `switchyard_shared_state_up`, and resynchronises when it returns.

mod keys;
mod sync;

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::shared::Shared;

/// How long one Redis exchange may take before the pod gives up on it and runs alone.
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);

/// A pod reports a target open; others act only when at least max(2, ⌈n/3⌉) of the n pods
/// seen in this window agree.
const POD_WINDOW: Duration = Duration::from_secs(60);

/// The running fleet sync; dropping it stops it.
pub struct Fleet(JoinHandle<()>);

impl Drop for Fleet {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Why `--shared-state` cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("--shared-state: {0}")]
pub struct FleetError(String);

/// Starts sharing state through the Redis at `url` (`redis://` or `rediss://`; the
/// password from `SWITCHYARD_REDIS_PASSWORD` when set). Only the URL is checked here: an
/// unreachable Redis is not a start-up error, the pod runs alone until it answers.
pub fn spawn(
    shared: Arc<Shared>,
    url: &str,
    password: Option<String>,
) -> Result<Fleet, FleetError> {
    let mut info: redis::ConnectionInfo = url
        .parse()
        .map_err(|e: redis::RedisError| FleetError(format!("{url:?} is not a Redis URL ({e})")))?;
    if !matches!(url.split_once("://"), Some(("redis" | "rediss", _))) {
        return Err(FleetError(format!("{url:?}: use redis:// or rediss://")));
    }
    if password.is_some() {
        info.redis.password = password;
    }
    let client = redis::Client::open(info).map_err(|e| FleetError(e.to_string()))?;
    let pod = sync::Pod::new();
    tracing::info!(pod = %pod.name, "sharing state with the fleet through Redis");
    Ok(Fleet(tokio::spawn(sync::run(shared, client, pod))))
}

/// The quorum of pods that must report a target open before another pod acts on it.
pub fn quorum(pods_seen: usize) -> usize {
    pods_seen.div_ceil(3).max(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sick_pod_never_opens_the_fleet() {
        assert_eq!(quorum(1), 2);
        assert_eq!(quorum(3), 2);
        assert_eq!(quorum(7), 3);
        assert_eq!(quorum(30), 10);
    }
}
