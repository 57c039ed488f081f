//! What the mock received, for tests to assert on (which credentials, headers and bodies
//! arrived, how many calls each path got).
//!
//! Invariant: `calls` is an atomic read without a lock and only ever grows between resets;
//! the per-path counts and the last [`RECENT`] requests sit behind one short-held mutex.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

/// How many recent requests the stats keep.
pub const RECENT: usize = 50;

/// A snapshot of what the mock received (the body of `GET /_mock/stats`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Provider calls received since start or the last reset (control calls excluded).
    pub calls: u64,
    /// Of `calls`, the sidecar's active probes (a `user-agent` of `switchyard-probe/…`), so
    /// a bench can tell the app's traffic to a target from the synthetic calls.
    #[serde(default)]
    pub probes: u64,
    /// Calls per request path.
    pub paths: BTreeMap<String, u64>,
    /// The last calls, oldest first.
    pub recent: Vec<RequestRecord>,
    /// Client connections open now: a cancelled hedge shows as a closed connection.
    #[serde(default)]
    pub open_connections: u64,
}

/// One received provider call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    /// HTTP method.
    pub method: String,
    /// Request path, without the query.
    pub path: String,
    /// The query string, if any (e.g. Azure's `api-version=...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The body's `model` (for Azure paths, the deployment), if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Every request header, names lower-case, repeated values joined with ", ".
    pub headers: BTreeMap<String, String>,
    /// The request body as received (UTF-8, lossily), so tests can check what a target
    /// was sent byte for byte.
    #[serde(default)]
    pub body: String,
}

/// A call as the handler saw it; kept cheap (header values are reference-counted) so
/// recording costs little on the hot path, and only turned into strings on a snapshot.
struct Received {
    method: http::Method,
    uri: http::Uri,
    model: Option<String>,
    headers: http::HeaderMap,
    body: bytes::Bytes,
}

#[derive(Default)]
struct Log {
    probes: u64,
    paths: HashMap<String, u64>,
    recent: VecDeque<Received>,
}

/// The live counters behind [`Stats`].
#[derive(Default)]
pub(crate) struct Recorder {
    calls: AtomicU64,
    open_connections: AtomicU64,
    log: Mutex<Log>,
    changed: Notify,
}

impl Recorder {
    /// Records one provider call and wakes whoever waits for a call count.
    pub(crate) fn record(
        &self,
        method: &http::Method,
        uri: &http::Uri,
        model: Option<&str>,
        headers: &http::HeaderMap,
        body: &bytes::Bytes,
    ) {
        {
            let mut log = self.lock();
            let probe = headers
                .get(http::header::USER_AGENT)
                .is_some_and(|ua| ua.as_bytes().starts_with(b"switchyard-probe/"));
            log.probes += u64::from(probe);
            match log.paths.get_mut(uri.path()) {
                Some(count) => *count += 1,
                None => {
                    log.paths.insert(uri.path().to_owned(), 1);
                }
            }
            if log.recent.len() == RECENT {
                log.recent.pop_front();
            }
            log.recent.push_back(Received {
                method: method.clone(),
                uri: uri.clone(),
                model: model.map(str::to_owned),
                headers: headers.clone(),
                body: body.clone(),
            });
            // Counted under the lock so a snapshot never shows more calls than records.
            self.calls.fetch_add(1, Ordering::SeqCst);
        }
        self.changed.notify_waiters();
    }

    /// Calls received since start or the last reset.
    pub(crate) fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// Resolves once at least `n` calls have been received.
    pub(crate) async fn wait_for_calls(&self, n: u64) {
        self.wait_until(|r| r.calls() >= n).await;
    }

    /// Resolves once `done` holds, looking again whenever a call or connection changes.
    async fn wait_until(&self, done: impl Fn(&Self) -> bool) {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            // Registered before the check, so a change landing in between still wakes us.
            notified.as_mut().enable();
            if done(self) {
                return;
            }
            notified.await;
        }
    }

    /// A client connection opened (`true`) or closed; wakes whoever waits on the stats.
    pub(crate) fn connection(&self, opened: bool) {
        if opened {
            self.open_connections.fetch_add(1, Ordering::SeqCst);
        } else {
            self.open_connections.fetch_sub(1, Ordering::SeqCst);
        }
        self.changed.notify_waiters();
    }

    /// Client connections open now.
    pub(crate) fn open_connections(&self) -> u64 {
        self.open_connections.load(Ordering::SeqCst)
    }

    /// Resolves once at most `n` client connections are open.
    pub(crate) async fn wait_for_connections_at_most(&self, n: u64) {
        self.wait_until(|r| r.open_connections() <= n).await;
    }

    /// Forgets every call.
    pub(crate) fn reset(&self) {
        let mut log = self.lock();
        *log = Log::default();
        self.calls.store(0, Ordering::SeqCst);
    }

    /// The current stats.
    pub(crate) fn snapshot(&self) -> Stats {
        let log = self.lock();
        Stats {
            calls: self.calls(),
            probes: log.probes,
            paths: log.paths.iter().map(|(p, c)| (p.clone(), *c)).collect(),
            recent: log.recent.iter().map(Received::to_record).collect(),
            open_connections: self.open_connections(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        // A panic while holding the lock cannot leave the log inconsistent (every update
        // is a single push or increment), so a poisoned lock is still usable.
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Received {
    fn to_record(&self) -> RequestRecord {
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in &self.headers {
            let value = String::from_utf8_lossy(value.as_bytes());
            headers
                .entry(name.as_str().to_owned())
                .and_modify(|v| {
                    v.push_str(", ");
                    v.push_str(&value);
                })
                .or_insert_with(|| value.into_owned());
        }
        RequestRecord {
            method: self.method.to_string(),
            path: self.uri.path().to_owned(),
            query: self.uri.query().map(str::to_owned),
            model: self.model.clone(),
            headers,
            body: String::from_utf8_lossy(&self.body).into_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_requests_and_counts_paths() {
        let rec = Recorder::default();
        let mut headers = http::HeaderMap::new();
        headers.append("x-api-key", "k".parse().expect("valid"));
        headers.append("x-multi", "a".parse().expect("valid"));
        headers.append("x-multi", "b".parse().expect("valid"));
        let uri: http::Uri = "/v1/messages?beta=true".parse().expect("valid");
        for _ in 0..(RECENT + 5) {
            rec.record(
                &http::Method::POST,
                &uri,
                Some("m"),
                &headers,
                &bytes::Bytes::from_static(b"{}"),
            );
        }
        let stats = rec.snapshot();
        assert_eq!(stats.calls, (RECENT + 5) as u64);
        assert_eq!(stats.paths["/v1/messages"], (RECENT + 5) as u64);
        assert_eq!(stats.recent.len(), RECENT);
        let last = &stats.recent[RECENT - 1];
        assert_eq!(last.headers["x-api-key"], "k");
        assert_eq!(last.headers["x-multi"], "a, b");
        assert_eq!(last.query.as_deref(), Some("beta=true"));
        assert_eq!(last.body, "{}");
        rec.reset();
        assert_eq!(rec.snapshot(), Stats::default());
    }
}
