//! The accept loop both listeners share: HTTP/1.1 and HTTP/2 (h2c) on one port,
//! accept errors logged and survived, and a graceful drain bounded by a timeout.
//!
//! Which protocol a connection speaks is judged by peeking at its first bytes, not by
//! reading them: hyper-util's auto-detection reads them itself and replays them, and
//! hyper's HTTP/1 reader, handed that short first read, doubled its buffer to 16 KiB on
//! every connection (8 KiB of each open stream's memory; `bench/ANALYSIS.md`).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};

use crate::body::Body;

/// The HTTP/1 and HTTP/2 connection builder of the webhook's TLS listener (the sidecar's
/// plain listeners peek instead, `serve`): with a timer, without which hyper enforces
/// no header-read timeout at all and a silent client holds its connection for ever.
pub fn connection_builder(header_read_timeout: Duration) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    builder
}

/// The HTTP/2 client preface (RFC 9113 §3.4), how a prior-knowledge h2c client opens.
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether a new connection opens with the HTTP/2 preface, from its first bytes left
/// unread. Every HTTP/1 request differs from it in its first byte or four, so only an
/// h2c client's preface arriving in pieces waits for more.
async fn speaks_h2(stream: &TcpStream) -> std::io::Result<bool> {
    let mut first = [0u8; H2_PREFACE.len()];
    loop {
        let n = stream.peek(&mut first).await?;
        if n == 0 || first[..n] != H2_PREFACE[..n] {
            return Ok(false);
        }
        if n == H2_PREFACE.len() {
            return Ok(true);
        }
        // Peeking again at once would see the same bytes: give the rest time to come.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Serves `handler` on `listener` until `shutdown` resolves, then lets open connections
/// (and their streams) finish for up to `drain`. Returns whether the drain completed.
pub async fn serve<H, F>(
    listener: TcpListener,
    handler: H,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
    header_read_timeout: Duration,
) -> bool
where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let mut h1 = http1::Builder::new();
    h1.timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let mut h2 = http2::Builder::new(TokioExecutor::new());
    h2.timer(TokioTimer::new());
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Out of file descriptors and the like: back off briefly, keep serving.
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let handler = handler.clone();
                let service = service_fn(move |req| {
                    // Boxed: hyper keeps a slot the size of this future for the whole life
                    // of the connection, and the request's future (the failover walk) is
                    // kilobytes; boxed, it is freed once the response head is ready, so an
                    // open stream holds only its body.
                    let response = Box::pin(handler(req, peer));
                    async move { Ok::<_, Infallible>(response.await) }
                });
                let (h1, h2, watcher) = (h1.clone(), h2.clone(), graceful.watcher());
                tokio::spawn(async move {
                    let result = match tokio::time::timeout(header_read_timeout, speaks_h2(&stream)).await {
                        Ok(Ok(true)) => watcher.watch(h2.serve_connection(TokioIo::new(stream), service)).await,
                        Ok(Ok(false)) => watcher.watch(h1.serve_connection(TokioIo::new(stream), service)).await,
                        // Silent or gone before its first bytes: nothing to answer.
                        Ok(Err(_)) | Err(_) => return,
                    };
                    if let Err(err) = result {
                        tracing::debug!(error = %err, %peer, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_ok()
}
