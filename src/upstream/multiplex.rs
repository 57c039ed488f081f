//! HTTP/2 to upstreams that offer it by ALPN, driven from the calling task.
//!
//! hyper 1's HTTP/2 client puts three tasks between a call and its stream: a dispatcher,
//! a body pipe and a response task, and the pipe waits for send capacity that h2 grants
//! only once the connection task has opened the stream, so a call's HEADERS and DATA
//! leave in two TLS records and two writes (`bench/ANALYSIS.md`). Here the caller opens
//! the stream and queues its whole body at once on the `h2` handle, so both frames go out
//! in the connection task's next flush, and it awaits the reply on the stream itself.
//!
//! Invariants: one connection per host per pool, dialled by one caller at a time (a cold
//! burst shares it instead of racing one handshake per call); a connection that ended is
//! forgotten before the next call looks, and one found dead when a call asks for it is
//! replaced once, the call not yet sent; a host whose ALPN answer is HTTP/1.1 is
//! remembered as such, and its calls go to the HTTP/1.1 pool.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use h2::client::SendRequest;
use h2::RecvStream;
use http::header::{self, HeaderValue};
use http::uri::Authority;
use http::{Request, Response, Uri};
use http_body::Frame;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::Connection;
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

use super::egress::EgressConnector;
use super::UpstreamError;

/// A connection no call has asked for in this long is let go (it closes once its last
/// stream ends), as the HTTP/1.1 pool's idle timeout does.
const IDLE: Duration = Duration::from_secs(90);

/// Receive windows as hyper's client sets them: a fast stream is not held to h2's 64 KiB
/// default while the app reads.
const STREAM_WINDOW: u32 = 2 << 20;
const CONNECTION_WINDOW: u32 = 5 << 20;

/// Headers HTTP/2 forbids (RFC 9113 §8.2.2); `host` travels as `:authority`.
const CONNECTION_SPECIFIC: [header::HeaderName; 6] = [
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::HOST,
    header::HeaderName::from_static("keep-alive"),
    header::HeaderName::from_static("proxy-connection"),
];

/// HTTP/2 connections by host, sharing the HTTP/1.1 pool's connector (TLS identity and
/// egress rules alike).
pub struct Multiplexer {
    connector: HttpsConnector<EgressConnector>,
    /// Read on every call without a lock; written when a host is first seen.
    hosts: ArcSwap<HashMap<Authority, Arc<Host>>>,
    next_id: AtomicU64,
}

/// What became of a call offered to the multiplexer.
pub enum Sent {
    /// Sent over HTTP/2: its response.
    Answered(Response<H2Body>),
    /// The host speaks HTTP/1.1 only: the call, untouched, for the pooled client.
    Http1(Request<Bytes>),
}

/// One host's connection. The lock is this host's alone and held only to copy a handle.
#[derive(Default)]
struct Host {
    live: Mutex<Live>,
    dialing: tokio::sync::Mutex<()>,
    /// Its ALPN answer was HTTP/1.1: read on every call, so no lock.
    http1: AtomicBool,
}

#[derive(Default)]
struct Live {
    conn: Option<(u64, SendRequest<Bytes>)>,
    last_used: Option<Instant>,
}

impl Host {
    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The connection to use now, marking the host as used.
    fn current(&self) -> Option<(u64, SendRequest<Bytes>)> {
        let mut live = self.live();
        live.last_used = Some(Instant::now());
        live.conn.clone()
    }

    /// Forgets connection `id` if it is still the host's (a newer one stays).
    fn forget(&self, id: u64) {
        let mut live = self.live();
        if live
            .conn
            .as_ref()
            .is_some_and(|(current, _)| *current == id)
        {
            live.conn = None;
        }
    }

    /// Whether connection `id` has gone unasked for `IDLE`.
    fn idle(&self, id: u64, now: Instant) -> bool {
        let live = self.live();
        let ours = live
            .conn
            .as_ref()
            .is_some_and(|(current, _)| *current == id);
        ours && live.last_used.is_none_or(|used| now - used >= IDLE)
    }
}

impl Multiplexer {
    /// Connections made by `connector`, which must offer `h2` by ALPN.
    pub fn new(connector: HttpsConnector<EgressConnector>) -> Self {
        Multiplexer {
            connector,
            hosts: ArcSwap::default(),
            next_id: AtomicU64::new(0),
        }
    }

    /// Sends `request` over HTTP/2 unless its host is known to speak HTTP/1.1 only.
    pub async fn send(&self, request: Request<Bytes>) -> Result<Sent, UpstreamError> {
        let Some(host) = self.host(request.uri()) else {
            return Ok(Sent::Http1(request));
        };
        let Some(mut sender) = self.ready(&host, request.uri()).await? else {
            return Ok(Sent::Http1(request));
        };
        let (mut parts, body) = request.into_parts();
        for name in &CONNECTION_SPECIFIC {
            parts.headers.remove(name);
        }
        if !parts.headers.contains_key(header::CONTENT_LENGTH) {
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        let head = Request::from_parts(parts, ());
        let end = body.is_empty();
        let (response, mut send_stream) = sender
            .send_request(head, end)
            .map_err(UpstreamError::Multiplexed)?;
        if !end {
            // Queued without waiting for capacity: the connection task writes it with the
            // HEADERS once it opens the stream.
            send_stream
                .send_data(body, true)
                .map_err(UpstreamError::Multiplexed)?;
        }
        let response = response.await.map_err(UpstreamError::Multiplexed)?;
        Ok(Sent::Answered(response.map(H2Body::new)))
    }

    /// The host of an `https` URI, unless it is known to speak HTTP/1.1 only.
    fn host(&self, uri: &Uri) -> Option<Arc<Host>> {
        let authority = uri.authority()?;
        let host = match self.hosts.load().get(authority) {
            Some(host) => Arc::clone(host),
            None => {
                let mut added = None;
                self.hosts.rcu(|hosts| {
                    let mut hosts = HashMap::clone(hosts);
                    let host = hosts.entry(authority.clone()).or_default();
                    added = Some(Arc::clone(host));
                    hosts
                });
                added?
            }
        };
        (!host.http1.load(Ordering::Acquire)).then_some(host)
    }

    /// A handle ready for one more stream: the host's connection, or a new one when it
    /// has none or the one it had turns out closed. `None`: the host answered HTTP/1.1.
    async fn ready(
        &self,
        host: &Arc<Host>,
        uri: &Uri,
    ) -> Result<Option<SendRequest<Bytes>>, UpstreamError> {
        if let Some((id, sender)) = host.current() {
            match sender.ready().await {
                Ok(sender) => return Ok(Some(sender)),
                Err(_) => host.forget(id),
            }
        }
        // Boxed: the dial's state (TCP, CONNECT, TLS and h2 handshakes) would otherwise
        // size every call's future, held for as long as its stream is open.
        let Some(sender) = Box::pin(self.dial(host, uri)).await? else {
            return Ok(None);
        };
        sender
            .ready()
            .await
            .map(Some)
            .map_err(UpstreamError::Multiplexed)
    }

    /// Connects to the host, one caller at a time; the others then share its connection.
    async fn dial(
        &self,
        host: &Arc<Host>,
        uri: &Uri,
    ) -> Result<Option<SendRequest<Bytes>>, UpstreamError> {
        let _one_at_a_time = host.dialing.lock().await;
        if let Some((_, sender)) = host.current() {
            return Ok(Some(sender));
        }
        if host.http1.load(Ordering::Acquire) {
            return Ok(None);
        }
        let mut connector = self.connector.clone();
        let io = tower_service::Service::call(&mut connector, uri.clone())
            .await
            .map_err(UpstreamError::Connect)?;
        if !io.connected().is_negotiated_h2() {
            // This connection is dropped; the HTTP/1.1 pool makes its own from now on.
            host.http1.store(true, Ordering::Release);
            return Ok(None);
        }
        let (sender, connection) = h2::client::Builder::new()
            .enable_push(false)
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .handshake::<_, Bytes>(TokioIo::new(io))
            .await
            .map_err(UpstreamError::Multiplexed)?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        host.live().conn = Some((id, sender.clone()));
        tokio::spawn(drive(Arc::clone(host), id, connection));
        Ok(Some(sender))
    }
}

/// Runs a connection until it ends, forgetting it then; lets it go once idle, after which
/// it closes when its last stream ends.
async fn drive<T>(host: Arc<Host>, id: u64, connection: h2::client::Connection<T, Bytes>)
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut connection = std::pin::pin!(connection);
    let mut check = tokio::time::interval_at(Instant::now() + IDLE, IDLE / 3);
    loop {
        tokio::select! {
            result = &mut connection => {
                if let Err(error) = result {
                    tracing::debug!(%error, "upstream HTTP/2 connection ended");
                }
                break;
            }
            now = check.tick() => {
                if host.idle(id, now) {
                    host.forget(id);
                }
            }
        }
    }
    host.forget(id);
}

/// A response body read from an h2 stream, handing flow-control credit back as the
/// proxy takes each chunk (so the upstream sends only as fast as the app reads).
pub struct H2Body {
    recv: RecvStream,
    data_done: bool,
}

impl H2Body {
    fn new(recv: RecvStream) -> Self {
        H2Body {
            recv,
            data_done: false,
        }
    }
}

impl http_body::Body for H2Body {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        if !self.data_done {
            match ready!(self.recv.poll_data(cx)) {
                Some(Ok(data)) => {
                    // Only fails when the stream is already gone, which the next poll says.
                    let _ = self.recv.flow_control().release_capacity(data.len());
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Some(Err(error)) => return Poll::Ready(Some(Err(error))),
                None => self.data_done = true,
            }
        }
        Poll::Ready(match ready!(self.recv.poll_trailers(cx)) {
            Ok(Some(trailers)) => Some(Ok(Frame::trailers(trailers))),
            Ok(None) => None,
            Err(error) => Some(Err(error)),
        })
    }

    fn is_end_stream(&self) -> bool {
        self.recv.is_end_stream()
    }
}
