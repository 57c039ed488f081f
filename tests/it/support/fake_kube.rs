//! A fake Kubernetes API server on 127.0.0.1: list and `watch=true` for namespaced
//! collections (ConfigMaps, RoutingPolicies) with resourceVersions, BOOKMARKs, 410 Gone
//! after compaction, dropped watch connections, `fieldSelector=metadata.name=...`, and
//! POSTed events; plus a kubeconfig that points a kube client at it.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Where ConfigMaps of a namespace live.
pub fn configmaps(ns: &str) -> String {
    format!("/api/v1/namespaces/{ns}/configmaps")
}

/// Where RoutingPolicies of a namespace live.
pub fn routingpolicies(ns: &str) -> String {
    format!("/apis/switchyard.dev/v1alpha1/namespaces/{ns}/routingpolicies")
}

struct Watch {
    collection: String,
    name: Option<String>,
    tx: mpsc::UnboundedSender<Bytes>,
}

struct Change {
    rv: u64,
    collection: String,
    name: String,
    kind: &'static str,
    object: Value,
}

#[derive(Default)]
struct Inner {
    rv: u64,
    objects: BTreeMap<(String, String), Value>,
    history: Vec<Change>,
    /// Resuming a watch from at or below this resourceVersion gets 410 Gone.
    compacted: u64,
    watches: Vec<Watch>,
    events: Vec<Value>,
}

#[derive(Default)]
struct State {
    inner: Mutex<Inner>,
    up: AtomicBool,
    refused: AtomicUsize,
    lists: AtomicUsize,
    watches: AtomicUsize,
    changed: tokio::sync::Notify,
}

/// The fake API server; stops when dropped.
pub struct FakeKube {
    pub addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
    kubeconfig: tempfile::NamedTempFile,
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeKube {
    /// A server that answers.
    pub async fn start() -> FakeKube {
        Self::start_with(true).await
    }

    /// A server that accepts connections and closes them at once, as an API server that
    /// is not there yet, until [`set_up`](Self::set_up).
    pub async fn start_down() -> FakeKube {
        Self::start_with(false).await
    }

    async fn start_with(up: bool) -> FakeKube {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        state.up.store(up, Ordering::SeqCst);
        state.inner.lock().unwrap().rv = 100;
        let task = tokio::spawn(accept(listener, Arc::clone(&state)));
        let kubeconfig = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            kubeconfig.path(),
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {{server: \"http://{addr}\"}}\n\
                 users:\n- name: fake\n  user: {{token: fake-token}}\ncontexts:\n- name: fake\n  \
                 context: {{cluster: fake, user: fake, namespace: default}}\ncurrent-context: fake\n"
            ),
        )
        .unwrap();
        FakeKube {
            addr,
            state,
            task,
            kubeconfig,
        }
    }

    pub fn kubeconfig(&self) -> std::path::PathBuf {
        self.kubeconfig.path().to_owned()
    }

    pub fn set_up(&self, up: bool) {
        self.state.up.store(up, Ordering::SeqCst);
    }

    /// Connections closed unanswered while down.
    pub fn refused(&self) -> usize {
        self.state.refused.load(Ordering::SeqCst)
    }

    /// List and watch requests served so far.
    pub fn lists(&self) -> usize {
        self.state.lists.load(Ordering::SeqCst)
    }

    pub fn watch_requests(&self) -> usize {
        self.state.watches.load(Ordering::SeqCst)
    }

    /// Creates or replaces a ConfigMap holding `policy` under `policy.yaml`.
    pub fn put_configmap(&self, ns: &str, name: &str, policy: &str) {
        let body =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"policy.yaml": policy}});
        self.put(&configmaps(ns), ns, name, body, false);
    }

    /// Creates or replaces a RoutingPolicy with `spec`.
    pub fn put_routing_policy(&self, ns: &str, name: &str, spec: Value) {
        self.put(&routingpolicies(ns), ns, name, routing_policy(spec), false);
    }

    /// Replaces a RoutingPolicy while every watch connection is cut, so the change can
    /// only be seen by resuming (or, after `compact`, relisting).
    pub fn put_routing_policy_while_disconnected(
        &self,
        ns: &str,
        name: &str,
        spec: Value,
        compact: bool,
    ) {
        self.drop_watches();
        self.put(
            &routingpolicies(ns),
            ns,
            name,
            routing_policy(spec),
            compact,
        );
    }

    /// Cuts every open watch connection.
    pub fn drop_watches(&self) {
        self.state.inner.lock().unwrap().watches.clear();
    }

    /// Sends a BOOKMARK with the current resourceVersion on every watch.
    pub fn bookmark(&self) {
        let inner = self.state.inner.lock().unwrap();
        for watch in &inner.watches {
            let kind = if watch.collection.contains("configmaps") {
                "ConfigMap"
            } else {
                "RoutingPolicy"
            };
            let line = json!({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": "v1",
                "metadata": {"resourceVersion": inner.rv.to_string()}}});
            let _ = watch.tx.send(line_bytes(&line));
        }
    }

    pub fn delete(&self, collection: &str, name: &str) {
        let mut inner = self.state.inner.lock().unwrap();
        let key = (collection.to_owned(), name.to_owned());
        if let Some(mut object) = inner.objects.remove(&key) {
            inner.rv += 1;
            object["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
            publish(&mut inner, collection, name, "DELETED", object);
        }
    }

    fn put(&self, collection: &str, ns: &str, name: &str, mut object: Value, compact: bool) {
        let mut inner = self.state.inner.lock().unwrap();
        inner.rv += 1;
        let key = (collection.to_owned(), name.to_owned());
        let kind = if inner.objects.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        object["metadata"] = json!({
            "name": name, "namespace": ns, "uid": format!("uid-{name}"),
            "resourceVersion": inner.rv.to_string(),
            "creationTimestamp": "2026-01-01T00:00:00Z",
        });
        inner.objects.insert(key, object.clone());
        publish(&mut inner, collection, name, kind, object);
        if compact {
            inner.compacted = inner.rv;
        }
    }

    /// Events POSTed so far.
    pub fn events(&self) -> Vec<Value> {
        self.state.inner.lock().unwrap().events.clone()
    }

    /// Waits (bounded) until `n` events were POSTed.
    pub async fn wait_events(&self, n: usize, within: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.state.changed.notified();
            let events = self.events();
            if events.len() >= n {
                return events;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("expected {n} events within {within:?}, got {events:?}");
            }
        }
    }
}

fn routing_policy(spec: Value) -> Value {
    json!({"apiVersion": "switchyard.dev/v1alpha1", "kind": "RoutingPolicy", "spec": spec})
}

fn publish(inner: &mut Inner, collection: &str, name: &str, kind: &'static str, object: Value) {
    let line = line_bytes(&json!({"type": kind, "object": object}));
    inner.watches.retain(|w| {
        !(w.collection == collection && w.name.as_deref().is_none_or(|n| n == name))
            || w.tx.send(line.clone()).is_ok()
    });
    let rv = inner.rv;
    inner.history.push(Change {
        rv,
        collection: collection.to_owned(),
        name: name.to_owned(),
        kind,
        object,
    });
}

fn line_bytes(value: &Value) -> Bytes {
    let mut text = value.to_string();
    text.push('\n');
    Bytes::from(text)
}

async fn accept(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        if !state.up.load(Ordering::SeqCst) {
            state.refused.fetch_add(1, Ordering::SeqCst);
            state.changed.notify_waiters();
            drop(stream);
            continue;
        }
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(handle(&state, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

type Body = BoxBody<Bytes, Infallible>;

fn full(status: StatusCode, value: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(value.to_string())).boxed())
        .unwrap()
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

async fn handle(state: &State, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let query = parse_query(req.uri().query().unwrap_or(""));
    if path.ends_with("/events") && req.method() == Method::POST {
        let body = req
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        state.inner.lock().unwrap().events.push(event.clone());
        state.changed.notify_waiters();
        return full(StatusCode::CREATED, &event);
    }
    if req.method() != Method::GET
        || !(path.ends_with("/configmaps") || path.ends_with("/routingpolicies"))
    {
        return full(
            StatusCode::NOT_FOUND,
            &status(404, "NotFound", "no such path"),
        );
    }
    let name = query
        .get("fieldSelector")
        .and_then(|s| s.strip_prefix("metadata.name="))
        .map(str::to_owned);
    if query.get("watch").map(String::as_str) == Some("true") {
        state.watches.fetch_add(1, Ordering::SeqCst);
        let since: u64 = query
            .get("resourceVersion")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        return watch(state, path, name, since);
    }
    state.lists.fetch_add(1, Ordering::SeqCst);
    let inner = state.inner.lock().unwrap();
    let items: Vec<Value> = inner
        .objects
        .iter()
        .filter(|((c, n), _)| *c == path && name.as_deref().is_none_or(|want| want == n))
        .map(|(_, object)| object.clone())
        .collect();
    full(
        StatusCode::OK,
        &json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": inner.rv.to_string()}, "items": items}),
    )
}

fn watch(state: &State, collection: String, name: Option<String>, since: u64) -> Response<Body> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut inner = state.inner.lock().unwrap();
    if since < inner.compacted {
        let _ = tx.send(line_bytes(
            &json!({"type": "ERROR", "object": status(410, "Expired", "too old resource version")}),
        ));
    } else {
        for change in inner.history.iter().filter(|c| {
            c.rv > since
                && c.collection == collection
                && name.as_deref().is_none_or(|n| n == c.name)
        }) {
            let _ = tx.send(line_bytes(
                &json!({"type": change.kind, "object": change.object}),
            ));
        }
        inner.watches.push(Watch {
            collection,
            name,
            tx,
        });
    }
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|bytes| (Ok::<_, Infallible>(Frame::data(bytes)), rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .unwrap()
}

fn parse_query(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
