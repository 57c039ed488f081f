//! The fleet sync loop: publish this pod's changes, apply the fleet's, reconnect when
//! Redis goes away. Every Redis exchange is bounded by `REDIS_TIMEOUT`; none is on the
//! request path.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands, ErrorKind, RedisError, RedisResult};
use tokio::time::{timeout, Instant};

use super::{keys, quorum, POD_WINDOW, REDIS_TIMEOUT};
use crate::breaker::State;
use crate::routing::Policy;
use crate::shared::Shared;
use crate::target::TargetState;

/// Local changes are looked for this often: the bound on how late the fleet hears of them.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);
/// The full read that backs pub/sub up (a missed message is repaired within this).
const FULL_READ_EVERY: Duration = Duration::from_secs(1);
/// A cooldown key outlives its deadline by this much, then Redis drops it.
const COOLDOWN_GRACE_MS: u64 = 1_000;

/// "Blocked until" only ever moves later: a late or repeated write never shortens or
/// re-applies an old cooldown.
const SET_LATER: &str = r"
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('PUBLISH', ARGV[3], KEYS[1])
  return 1
end
return 0
";

/// This sidecar process as the fleet knows it.
pub struct Pod {
    /// Random per start, so a restarted pod is a new voice.
    pub id: String,
    /// `POD_NAME` (downward API) when set, for people reading the logs.
    pub name: String,
}

impl Pod {
    pub(super) fn new() -> Self {
        let id = format!("{:016x}", fastrand::u64(..));
        let name = std::env::var("POD_NAME").unwrap_or_else(|_| id.clone());
        Self { id, name }
    }
}

/// What this pod last told or learned from the fleet about one target.
#[derive(Default)]
struct Known {
    /// Latest cooldown deadline sent or applied, unix ms.
    cooldown_ms: u64,
    /// Whether this pod reports the target open.
    reported_open: bool,
    /// The breaker is open on the fleet's word, not this pod's evidence: not reported,
    /// so hints never feed on themselves.
    hinted: bool,
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn timed_out() -> RedisError {
    RedisError::from((
        ErrorKind::IoError,
        "no answer within the shared-state timeout",
    ))
}

async fn bounded<T>(f: impl std::future::Future<Output = RedisResult<T>>) -> RedisResult<T> {
    timeout(REDIS_TIMEOUT, f)
        .await
        .unwrap_or_else(|_| Err(timed_out()))
}

/// Runs for the life of the sidecar.
pub async fn run(shared: Arc<Shared>, client: redis::Client, pod: Pod) {
    let mut known: HashMap<String, Known> = HashMap::new();
    let mut last_sync = Instant::now();
    let mut logged_down = false;
    loop {
        let result = session(
            &shared,
            &client,
            &pod,
            &mut known,
            &mut last_sync,
            &mut logged_down,
        )
        .await;
        shared.metrics.shared_state_up.set(0);
        if let Err(err) = result {
            if !logged_down {
                tracing::warn!(%err, "shared state unreachable: running on this pod's own state");
                logged_down = true;
            }
        }
        let age = last_sync.elapsed().as_secs_f64();
        shared.metrics.shared_state_sync_age.set(age);
        tokio::time::sleep(FULL_READ_EVERY).await;
    }
}

/// One connection's life: subscribe, read everything, then publish and apply until an
/// error ends it.
async fn session(
    shared: &Shared,
    client: &redis::Client,
    pod: &Pod,
    known: &mut HashMap<String, Known>,
    last_sync: &mut Instant,
    logged_down: &mut bool,
) -> RedisResult<()> {
    let mut conn = bounded(client.get_multiplexed_async_connection()).await?;
    let mut pubsub = bounded(client.get_async_pubsub()).await?;
    bounded(pubsub.subscribe(keys::channel())).await?;
    let mut messages = pubsub.into_on_message();
    let script = redis::Script::new(SET_LATER);
    let mut targets = Targets::default();
    full_read(shared, &mut conn, pod, (known, &mut targets)).await?;
    *last_sync = Instant::now();
    shared.metrics.shared_state_up.set(1);
    if std::mem::take(logged_down) {
        tracing::info!("shared state reachable again: resynchronised");
    }
    let mut tick = tokio::time::interval(PUBLISH_EVERY);
    let news = shared.target_news();
    loop {
        let read_now = tokio::select! {
            // A cooldown or an opened breaker goes out at once; the tick catches the rest.
            () = news.notified() => {
                publish(shared, &mut conn, &script, pod, (known, &mut targets)).await?;
                false
            }
            _ = tick.tick() => {
                publish(shared, &mut conn, &script, pod, (known, &mut targets)).await?;
                last_sync.elapsed() >= FULL_READ_EVERY
            }
            message = messages.next() => match message {
                Some(_) => true,
                None => return Err(RedisError::from((ErrorKind::IoError, "pub/sub connection closed"))),
            },
        };
        if read_now {
            full_read(shared, &mut conn, pod, (known, &mut targets)).await?;
            *last_sync = Instant::now();
        }
        shared
            .metrics
            .shared_state_sync_age
            .set(last_sync.elapsed().as_secs_f64());
    }
}

/// The running policy's targets by fleet key, each once; the keys (a hash each) are worked
/// out once per policy generation, not on every tick.
#[derive(Default)]
struct Targets {
    generation: u64,
    list: Vec<(String, Arc<TargetState>)>,
}

impl Targets {
    fn of(&mut self, policy: &Policy) -> &[(String, Arc<TargetState>)] {
        if self.generation != policy.generation || self.list.is_empty() {
            self.list.clear();
            for target in policy.routes.iter().flat_map(|r| &r.targets) {
                let key = keys::target(target);
                if !self.list.iter().any(|(k, _)| *k == key) {
                    self.list.push((key, Arc::clone(&target.state)));
                }
            }
            self.generation = policy.generation;
        }
        &self.list
    }
}

/// Sends what changed here: a later cooldown, a breaker that opened or closed.
async fn publish(
    shared: &Shared,
    conn: &mut MultiplexedConnection,
    script: &redis::Script,
    pod: &Pod,
    (known, targets): (&mut HashMap<String, Known>, &mut Targets),
) -> RedisResult<()> {
    let Some(policy) = shared.policy() else {
        return Ok(());
    };
    let (now, wall) = (Instant::now(), unix_ms(SystemTime::now()));
    for (key, state) in targets.of(&policy) {
        let entry = known.entry(key.clone()).or_default();
        if let Some(until) = state.cooldown_until(now) {
            let deadline = wall + until.duration_since(now).as_millis() as u64;
            // Deadlines learned from the fleet come back a few ms apart: not news.
            if deadline > entry.cooldown_ms + 50 {
                let ttl = deadline - wall + COOLDOWN_GRACE_MS;
                bounded(
                    script
                        .key(keys::cooldown(key))
                        .arg(deadline)
                        .arg(ttl)
                        .arg(keys::channel())
                        .invoke_async::<i64>(conn),
                )
                .await?;
                entry.cooldown_ms = deadline;
            }
        }
        if state.limits.is_limited() {
            share_usage(conn, key, pod, state, wall).await?;
        }
        let breaker = state.state();
        if breaker != State::Open {
            entry.hinted = false;
        }
        let open = breaker == State::Open && !entry.hinted;
        if open != entry.reported_open {
            report(conn, key, pod, open, wall).await?;
            bounded(conn.publish::<_, _, i64>(keys::channel(), keys::open(key))).await?;
            entry.reported_open = open;
        }
    }
    Ok(())
}

/// Writes this pod's use of a limited target's budget this minute and reads the others'.
async fn share_usage(
    conn: &mut MultiplexedConnection,
    key: &str,
    pod: &Pod,
    state: &TargetState,
    wall: u64,
) -> RedisResult<()> {
    let minute = wall / 60_000;
    let (requests, tokens) = state.limits.used(minute);
    let usage = keys::usage(key, minute);
    let (mine_r, mine_t) = (format!("{}:requests", pod.id), format!("{}:tokens", pod.id));
    let (_, _, all): ((), i64, HashMap<String, u64>) = bounded(
        redis::pipe()
            .hset_multiple(&usage, &[(&mine_r, requests), (&mine_t, tokens)])
            .expire(&usage, 120)
            .hgetall(&usage)
            .query_async(conn),
    )
    .await?;
    let (mut others_r, mut others_t) = (0, 0);
    for (field, value) in &all {
        if *field == mine_r || *field == mine_t {
            continue;
        }
        if field.ends_with(":requests") {
            others_r += value;
        } else if field.ends_with(":tokens") {
            others_t += value;
        }
    }
    state.limits.set_fleet_used(minute, others_r, others_t);
    Ok(())
}

/// Adds or removes this pod's "open" report for a target.
async fn report(
    conn: &mut MultiplexedConnection,
    key: &str,
    pod: &Pod,
    open: bool,
    wall: u64,
) -> RedisResult<()> {
    let hash = keys::open(key);
    if open {
        bounded(conn.hset::<_, _, _, i64>(&hash, &pod.id, wall)).await?;
        let ttl = 2 * POD_WINDOW.as_secs() as i64;
        bounded(conn.expire::<_, i64>(&hash, ttl)).await?;
    } else {
        bounded(conn.hdel::<_, _, i64>(&hash, &pod.id)).await?;
    }
    Ok(())
}

/// Reads the whole shared view and applies it: cooldowns at once, open hints once a
/// quorum of the pods seen agrees. Also says this pod is alive and refreshes its reports.
async fn full_read(
    shared: &Shared,
    conn: &mut MultiplexedConnection,
    pod: &Pod,
    (known, targets): (&mut HashMap<String, Known>, &mut Targets),
) -> RedisResult<()> {
    let wall = unix_ms(SystemTime::now());
    let window = POD_WINDOW.as_millis() as u64;
    let pods = keys::pods();
    let (_, _, _, seen): (i64, i64, i64, usize) = bounded(
        redis::pipe()
            .zadd(&pods, &pod.id, wall)
            .expire(&pods, 2 * POD_WINDOW.as_secs() as i64)
            .zrembyscore(&pods, "-inf", wall.saturating_sub(window))
            .zcard(&pods)
            .query_async(conn),
    )
    .await?;
    let Some(policy) = shared.policy() else {
        return Ok(());
    };
    let now = Instant::now();
    for (key, state) in targets.of(&policy) {
        let entry = known.entry(key.clone()).or_default();
        let (cooldown, reports): (Option<u64>, HashMap<String, u64>) = bounded(
            redis::pipe()
                .get(keys::cooldown(key))
                .hgetall(keys::open(key))
                .query_async(conn),
        )
        .await?;
        if let Some(deadline) = cooldown.filter(|d| *d > wall) {
            if deadline > entry.cooldown_ms {
                state.cool_down(now + Duration::from_millis(deadline - wall));
                entry.cooldown_ms = deadline;
            }
        }
        let agreeing = reports.values().filter(|at| **at + window > wall).count();
        if agreeing >= quorum(seen) && state.state() == State::Closed {
            tracing::warn!(target = %key, pods = agreeing, of = seen, "the fleet reports this target open: opening here too");
            state.open_by_hint(now);
            entry.hinted = true;
        }
        if entry.reported_open {
            report(conn, key, pod, true, wall).await?;
        }
    }
    Ok(())
}
