//! The listener task and the [`MockServer`] handle that steers it.
//!
//! Invariant: one task owns the socket and every connection task, so going down (close
//! the listener, cut the connections), coming back up on the same port and shutting
//! down are plain state changes of that task, ordered by its command channel.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use http::HeaderValue;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{AbortHandle, JoinError, JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use super::command::Command;
use super::handler::{self, Shared};
use super::{Faults, Stats};

/// Pending connections the kernel queues for us.
const BACKLOG: u32 = 1024;

/// A running mock provider; dropping it stops the mock (as [`MockServer::shutdown`]
/// does, without waiting).
pub struct MockServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
    task: JoinHandle<()>,
}

impl MockServer {
    /// Starts a mock named `name` on a free loopback port, without faults.
    pub async fn start(name: &str) -> io::Result<MockServer> {
        Self::start_on(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            name,
            Faults::default(),
        )
        .await
    }

    /// Starts a mock named `name` on `addr` (port 0 picks a free one) with `faults`.
    pub async fn start_on(addr: SocketAddr, name: &str, faults: Faults) -> io::Result<MockServer> {
        Self::start_serving(addr, name, faults, None).await
    }

    /// As [`MockServer::start_on`], over TLS when `tls` is given (HTTPS, HTTP/2 by ALPN
    /// if the acceptor offers it), so benchmarks can measure an HTTPS upstream.
    pub async fn start_serving(
        addr: SocketAddr,
        name: &str,
        faults: Faults,
        tls: Option<TlsAcceptor>,
    ) -> io::Result<MockServer> {
        let name_header = HeaderValue::try_from(name).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("mock name {name:?} must be a valid header value"),
            )
        })?;
        let listener = reserve(addr)?.listen(BACKLOG)?;
        let addr = listener.local_addr()?;
        let (commands, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared::new(name, name_header, commands.downgrade()));
        shared.set_faults(faults, None);
        let acceptor = Acceptor {
            addr,
            socket: Socket::Listening(listener),
            conns: JoinSet::new(),
            conn_ids: HashMap::new(),
            next_conn: 0,
            up_at: None,
            shared: Arc::clone(&shared),
            builder: builder(),
            tls,
        };
        let task = tokio::spawn(acceptor.run(receiver));
        Ok(MockServer {
            addr,
            shared,
            commands,
            task,
        })
    }

    /// The address the mock listens on (the same across going down and back up).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, e.g. `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The mock's name, as in its replies and the `x-mock-name` header.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Replaces the fault set (a `down_for` in it takes the mock down for that long).
    pub fn set_faults(&self, faults: Faults) {
        self.shared.set_faults(faults, None);
    }

    /// The current fault set.
    pub fn faults(&self) -> Faults {
        Faults::clone(&self.shared.faults.load())
    }

    /// What the mock received, as `GET /_mock/stats` reports it.
    pub fn stats(&self) -> Stats {
        self.shared.stats.snapshot()
    }

    /// Provider calls received since start or the last reset.
    pub fn calls(&self) -> u64 {
        self.shared.stats.calls()
    }

    /// Takes the mock down (connections refused, open ones cut) or brings it back on the
    /// same port; resolves once the change is made. Failing to listen again is logged
    /// and leaves the mock down.
    pub async fn set_down(&self, down: bool) {
        if down {
            let (ack, done) = oneshot::channel();
            let command = Command::Down {
                keep: None,
                until: None,
                ack: Some(ack),
            };
            if self.commands.send(command).is_ok() {
                let _ = done.await;
            }
        } else {
            let (ack, done) = oneshot::channel();
            if self.commands.send(Command::Up { ack }).is_ok() {
                if let Ok(Err(err)) = done.await {
                    tracing::error!(addr = %self.addr, %err, "mock could not listen again");
                }
            }
        }
    }

    /// Holds every provider call from now on where it stands once counted (before any
    /// fault or answer) until the returned guard is dropped: a test can keep a call in
    /// flight for exactly as long as it needs, with no latency to race against.
    pub fn hold(&self) -> Hold {
        self.shared.hold();
        Hold {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Resolves once at least `n` calls have been received.
    pub async fn wait_for_calls(&self, n: u64) {
        self.shared.stats.wait_for_calls(n).await;
    }

    /// Resolves once at most `n` client connections are open.
    pub async fn wait_for_connections_at_most(&self, n: u64) {
        self.shared.stats.wait_for_connections_at_most(n).await;
    }

    /// Client connections open now.
    pub fn open_connections(&self) -> u64 {
        self.shared.stats.open_connections()
    }

    /// Stops the mock: the listener closes and open connections are cut.
    pub async fn shutdown(self) {
        let MockServer { commands, task, .. } = self;
        drop(commands);
        if let Err(err) = task.await {
            tracing::error!(%err, "mock listener task failed");
        }
    }
}

/// Keeps a mock's provider calls waiting (see [`MockServer::hold`]); dropping it lets
/// them all go on.
#[must_use = "the calls are released when the guard is dropped"]
pub struct Hold {
    shared: Arc<Shared>,
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.shared.release();
    }
}

/// A socket bound to `addr` but not listening: it holds the port while connections to
/// it are refused, and becomes the listener again with `listen`.
fn reserve(addr: SocketAddr) -> io::Result<TcpSocket> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    Ok(socket)
}

enum Socket {
    Listening(TcpListener),
    /// Down, holding the port when it could be reserved.
    Down(Option<TcpSocket>),
}

struct Acceptor {
    addr: SocketAddr,
    socket: Socket,
    conns: JoinSet<()>,
    conn_ids: HashMap<tokio::task::Id, (u64, AbortHandle)>,
    next_conn: u64,
    up_at: Option<Instant>,
    shared: Arc<Shared>,
    builder: auto::Builder<TokioExecutor>,
    tls: Option<TlsAcceptor>,
}

/// HTTP/1.1 and HTTP/2; over h2, far more concurrent streams than hyper's default of
/// 200, so a benchmark's 1,000 held streams fit on one connection as a provider's would
/// on several.
fn builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http2().max_concurrent_streams(MAX_STREAMS);
    builder
}

/// Streams one h2 connection may carry at once.
const MAX_STREAMS: u32 = 10_000;

enum Event {
    Command(Option<Command>),
    Accepted(io::Result<(TcpStream, SocketAddr)>),
    WakeUp,
    Finished(Result<(tokio::task::Id, ()), JoinError>),
}

impl Acceptor {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        loop {
            let event = tokio::select! {
                command = commands.recv() => Event::Command(command),
                accepted = accept(&self.socket) => Event::Accepted(accepted),
                () = wake_at(self.up_at) => Event::WakeUp,
                Some(done) = self.conns.join_next_with_id() => Event::Finished(done),
            };
            match event {
                Event::Command(None) => break,
                Event::Command(Some(command)) => self.command(command),
                Event::Accepted(Ok((stream, _))) => self.serve(stream),
                // Accept errors (e.g. out of file descriptors) are not fatal.
                Event::Accepted(Err(err)) => tracing::debug!(%err, "mock accept failed"),
                Event::WakeUp => {
                    self.up_at = None;
                    if let Err(err) = self.go_up() {
                        tracing::error!(addr = %self.addr, %err, "mock could not listen again");
                    }
                }
                Event::Finished(done) => {
                    let id = match done {
                        Ok((id, ())) => id,
                        Err(err) => err.id(),
                    };
                    self.conn_ids.remove(&id);
                }
            }
        }
        self.conns.shutdown().await;
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Down { keep, until, ack } => {
                self.go_down(keep);
                self.up_at = until;
                if let Some(ack) = ack {
                    let _ = ack.send(());
                }
            }
            Command::Up { ack } => {
                self.up_at = None;
                let _ = ack.send(self.go_up());
            }
        }
    }

    fn serve(&mut self, stream: TcpStream) {
        // Small SSE events must leave at once, not wait for Nagle.
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(%err, "mock could not set TCP_NODELAY");
        }
        let conn = self.next_conn;
        self.next_conn += 1;
        let shared = Arc::clone(&self.shared);
        let builder = self.builder.clone();
        let open = OpenConnection::new(Arc::clone(&shared));
        let tls = self.tls.clone();
        let abort = self.conns.spawn(async move {
            let _open = open;
            let service = service_fn(move |req| handler::handle(Arc::clone(&shared), conn, req));
            let served = match tls {
                None => {
                    builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                }
                Some(tls) => match tls.accept(stream).await {
                    Ok(stream) => {
                        builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await
                    }
                    Err(err) => Err(err.into()),
                },
            };
            if let Err(err) = served {
                tracing::debug!(%err, "mock connection ended with an error");
            }
        });
        self.conn_ids.insert(abort.id(), (conn, abort));
    }

    fn go_down(&mut self, keep: Option<u64>) {
        if let Socket::Listening(_) = self.socket {
            // The listener must close before the port can be reserved again.
            self.socket = Socket::Down(None);
            match reserve(self.addr) {
                Ok(socket) => self.socket = Socket::Down(Some(socket)),
                Err(err) => tracing::debug!(%err, "mock could not hold its port while down"),
            }
        }
        for (conn, abort) in self.conn_ids.values() {
            if Some(*conn) != keep {
                abort.abort();
            }
        }
    }

    fn go_up(&mut self) -> io::Result<()> {
        let socket = match std::mem::replace(&mut self.socket, Socket::Down(None)) {
            Socket::Listening(listener) => {
                self.socket = Socket::Listening(listener);
                return Ok(());
            }
            Socket::Down(Some(socket)) => socket,
            Socket::Down(None) => reserve(self.addr)?,
        };
        self.socket = Socket::Listening(socket.listen(BACKLOG)?);
        Ok(())
    }
}

/// Counts a client connection as open for as long as it lives, however its task ends
/// (closed, failed or aborted by `down`).
struct OpenConnection(Arc<Shared>);

impl OpenConnection {
    fn new(shared: Arc<Shared>) -> Self {
        shared.stats.connection(true);
        Self(shared)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.stats.connection(false);
    }
}

async fn accept(socket: &Socket) -> io::Result<(TcpStream, SocketAddr)> {
    match socket {
        Socket::Listening(listener) => listener.accept().await,
        Socket::Down(_) => std::future::pending().await,
    }
}

async fn wake_at(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
