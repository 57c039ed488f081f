//! A tiny one-request-per-connection client for the mock tests.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::net::TcpStream;

use crate::sse::{Event, Parser};

fn build(method: &str, path: &str, body: &str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1")
        .header("content-type", "application/json");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.body(Full::new(Bytes::from(body.to_owned())))
        .expect("valid request")
}

/// Sends one HTTP/1.1 request on a new connection.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> Response<Incoming> {
    let stream = TcpStream::connect(addr).await.expect("connects");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    sender
        .send_request(build(method, path, body, headers))
        .await
        .expect("response")
}

/// POSTs a JSON body.
pub async fn post(addr: SocketAddr, path: &str, body: &str) -> Response<Incoming> {
    request(addr, "POST", path, body, &[]).await
}

/// POSTs a JSON body over h2c (prior knowledge).
pub async fn post_h2(addr: SocketAddr, path: &str, body: &str) -> Response<Incoming> {
    let stream = TcpStream::connect(addr).await.expect("connects");
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    let uri = format!("http://{addr}{path}");
    sender
        .send_request(build("POST", &uri, body, &[]))
        .await
        .expect("response")
}

/// The whole body as JSON.
pub async fn body_json(resp: Response<Incoming>) -> Value {
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    serde_json::from_slice(&bytes).expect("body is JSON")
}

/// The body bytes that arrived, and whether the body ended in an error (a cut).
pub async fn collect_frames(resp: Response<Incoming>) -> (Vec<u8>, bool) {
    let mut body = resp.into_body();
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => bytes.extend_from_slice(frame.data_ref().map_or(&[][..], |d| &d[..])),
            Err(_) => return (bytes, true),
        }
    }
    (bytes, false)
}

/// The SSE events in `bytes`; panics on a half event, which a mock never sends.
pub fn events(bytes: &[u8]) -> Vec<Event> {
    let mut parser = Parser::new();
    parser.push(bytes);
    let mut out = Vec::new();
    while let Some(event) = parser.next_event() {
        out.push(event);
    }
    assert!(!parser.has_partial(), "a partial SSE event was sent");
    out
}
