//! The HTTP listeners' connection driver (plain and HTTPS): admission at accept,
//! hyper's HTTP/1.1 server with its timers, and graceful shutdown.
//!
//! Decisions (issue 12: no anonymous client may hold a connection without bound):
//! * **hyper's `http1::Builder`, not `axum::serve`**: axum gives hyper no timer, so
//!   hyper's header read timeout is off and a peer that connects and says nothing
//!   (or sends half a request head) is held forever; and hyper-util's `auto`
//!   builder reads the first bytes to tell HTTP/2 from HTTP/1 with no timer of its
//!   own. We never served HTTP/2 (axum's `http2` feature is off, HTTPS offers ALPN
//!   `http/1.1`), so the HTTP/1 builder loses nothing.
//! * **One deadline, `http.header_timeout_ms`, for the first bytes, the whole head
//!   and idle keep-alives**: hyper arms it when it starts reading a request head,
//!   which is at once on a new connection and again as soon as a response is done
//!   (the connection is then idle until the next head). A streaming response
//!   (HTTP-FLV, a long download) is not a head read and is not cut by it.
//! * **Head size**: `http.max_header_bytes` bounds the request line plus headers
//!   (431; hyper's own 414 for a URI over 64 KiB only shows above a 64 KiB limit);
//!   the connection's read buffer is capped just above it, so a peer sending
//!   endless headers costs that much and no more.
//! * **Admission at accept**: `http.max_connections` (shared by the plain and HTTPS
//!   listeners, TLS handshakes in progress included) and the optional
//!   `http.max_connections_per_ip`. A refused connection is closed at once, with no
//!   response: writing a 503 to a flood could itself stall. The permit travels
//!   inside the connection's I/O object, so an upgraded WebSocket keeps counting
//!   until its socket closes.
//! * **Stalled streaming responses**: hyper polls a response body only when it can
//!   write, so a viewer that stops reading leaves the body unpolled and its own
//!   timers never fire. The I/O object records since when a write has been
//!   pending; a live body arms a limit on that ([`ConnWatch::watch_stalls`]) and
//!   the connection task drops the connection when a write makes no progress for
//!   that long (`hub.slow_player_timeout_ms`, as for RTMP players). Other responses
//!   (a paused download of a recording) are not cut: a browser stops reading a
//!   file it has buffered enough of.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::server::TlsStream;
use tower_service::Service;

use crate::tls::TlsCerts;

/// Head bytes the read buffer may hold beyond `http.max_header_bytes`: hyper reads
/// in chunks, and the limit must be what answers 431, not the buffer filling up.
const READ_BUF_SLACK: usize = 8 * 1024;

/// The listeners' limits (the `http.*` settings).
#[derive(Debug, Clone)]
pub(crate) struct HttpLimits {
    pub max_connections: usize,
    /// 0: no per-address limit.
    pub max_connections_per_ip: usize,
    pub header_timeout: Duration,
    pub max_header_bytes: usize,
}

impl HttpLimits {
    pub(crate) fn from_config(c: &crate::config::Config) -> HttpLimits {
        HttpLimits {
            max_connections: c.http.max_connections,
            max_connections_per_ip: c.http.max_connections_per_ip,
            header_timeout: Duration::from_millis(c.http.header_timeout_ms),
            max_header_bytes: c.http.max_header_bytes,
        }
    }

    fn builder(&self) -> http1::Builder {
        let mut b = http1::Builder::new();
        b.timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout)
            .keep_alive(true)
            .max_header_size(self.max_header_bytes)
            .max_buf_size((self.max_header_bytes + READ_BUF_SLACK).max(8192));
        b
    }
}

/// Who may connect: the connection cap and the per-address counts, shared by the
/// plain and HTTPS listeners.
pub(crate) struct Admission {
    limits: HttpLimits,
    all: Arc<Semaphore>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection; dropping it gives its place back.
pub(crate) struct Permit {
    _all: OwnedSemaphorePermit,
    ip: Option<(Arc<Admission>, IpAddr)>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some((a, ip)) = &self.ip {
            let mut m = a.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = m.get_mut(ip) {
                *n -= 1;
                if *n == 0 {
                    m.remove(ip);
                }
            }
        }
    }
}

impl Admission {
    pub(crate) fn new(limits: HttpLimits) -> Arc<Admission> {
        Arc::new(Admission {
            all: Arc::new(Semaphore::new(limits.max_connections)),
            limits,
            per_ip: Mutex::new(HashMap::new()),
        })
    }

    /// A place for a connection from `peer`, or why there is none (logged by the
    /// caller, which closes the socket).
    pub(crate) fn admit(self: &Arc<Self>, peer: SocketAddr) -> Result<Permit, &'static str> {
        let all = self
            .all
            .clone()
            .try_acquire_owned()
            .map_err(|_| "too many HTTP connections (http.max_connections)")?;
        let cap = self.limits.max_connections_per_ip;
        if cap == 0 {
            return Ok(Permit {
                _all: all,
                ip: None,
            });
        }
        let ip = peer.ip();
        let mut m = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(ip).or_insert(0);
        if *n >= cap {
            return Err(
                "too many HTTP connections from this address (http.max_connections_per_ip)",
            );
        }
        *n += 1;
        Ok(Permit {
            _all: all,
            ip: Some((self.clone(), ip)),
        })
    }
}

/// What a connection's I/O, its task and its responses share.
struct ConnState {
    started: Instant,
    /// Milliseconds since `started` + 1 when a write first returned Pending; 0
    /// while writes make progress.
    blocked_since: AtomicU64,
    /// The stall limit in ms a streaming response armed; 0: none.
    stall_limit: AtomicU64,
    /// Set when the connection was dropped for a stall.
    stalled: AtomicBool,
    armed: Notify,
}

impl ConnState {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64 + 1
    }

    /// How long writes have been blocked, if they are.
    fn blocked_for(&self) -> Option<Duration> {
        match self.blocked_since.load(Ordering::Relaxed) {
            0 => None,
            since => Some(Duration::from_millis(self.now_ms().saturating_sub(since))),
        }
    }

    /// Returns when writes have been blocked for longer than the armed limit.
    async fn stall(&self) {
        loop {
            let armed = self.armed.notified();
            let limit = Duration::from_millis(self.stall_limit.load(Ordering::Relaxed));
            if limit.is_zero() {
                armed.await;
                continue;
            }
            let wait = match self.blocked_for() {
                Some(b) if b >= limit => return,
                Some(b) => limit - b,
                None => limit,
            };
            // Re-checked after `wait`, or sooner if the limit changes.
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = armed => {}
            }
        }
    }
}

/// The connection a request came on, as its handler sees it (a request extension):
/// a streaming response arms the stall limit with it.
#[derive(Clone)]
pub(crate) struct ConnWatch(Arc<ConnState>);

impl ConnWatch {
    /// From now on, the connection is closed when a write makes no progress for
    /// `limit` (zero: never).
    pub(crate) fn watch_stalls(&self, limit: Duration) {
        let ms = limit.as_millis().min(u64::MAX as u128) as u64;
        self.0.stall_limit.store(ms, Ordering::Relaxed);
        self.0.armed.notify_one();
    }

    /// Whether the connection was closed because the peer stopped reading.
    pub(crate) fn stalled(&self) -> bool {
        self.0.stalled.load(Ordering::Relaxed)
    }
}

/// A connection's socket, recording write progress, holding its admission.
struct Tracked<I> {
    io: I,
    state: Arc<ConnState>,
    _permit: Permit,
}

impl<I> Tracked<I> {
    fn on_write<T>(&self, r: &Poll<io::Result<T>>) {
        match r {
            Poll::Pending => {
                if self.state.blocked_since.load(Ordering::Relaxed) == 0 {
                    self.state
                        .blocked_since
                        .store(self.state.now_ms(), Ordering::Relaxed);
                }
            }
            Poll::Ready(_) => self.state.blocked_since.store(0, Ordering::Relaxed),
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Tracked<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Tracked<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        self.on_write(&r);
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.on_write(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.io).poll_flush(cx);
        self.on_write(&r);
        r
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Where connections come from: a TCP listener, or the HTTPS listener's
/// handshaken connections. `None` when no more will come.
pub(crate) trait Accept: Send {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn next(&mut self) -> impl Future<Output = Option<(Self::Io, SocketAddr, Permit)>> + Send;
}

/// The plain listener: admits at accept.
pub(crate) struct Plain {
    pub listener: TcpListener,
    pub admission: Arc<Admission>,
}

impl Accept for Plain {
    type Io = tokio::net::TcpStream;

    async fn next(&mut self) -> Option<(Self::Io, SocketAddr, Permit)> {
        loop {
            let (socket, peer) = match self.listener.accept().await {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            match self.admission.admit(peer) {
                Ok(permit) => {
                    let _ = socket.set_nodelay(true);
                    return Some((socket, peer, permit));
                }
                Err(why) => tracing::warn!(%peer, "HTTP connection refused: {why}"),
            }
        }
    }
}

/// Time an HTTPS client has to finish its TLS handshake.
const HTTPS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Most HTTPS handshakes in progress at once (besides `http.max_connections`, which
/// counts them too): each holds a task and a few KiB of TLS state. Beyond it new
/// connections are closed at once (browsers retry).
const MAX_PENDING_HANDSHAKES: usize = 1024;

/// Handshaken HTTPS connections waiting for [`serve`] to take them: it takes them
/// as fast as it can spawn tasks, so a short queue suffices.
const ACCEPTED_QUEUE: usize = 64;

type Handshaken = (TlsStream<TcpStream>, SocketAddr, Permit);

/// The HTTPS listener: a TCP listener whose connections come out handshaken. One
/// task accepts (admitting each connection before its handshake, so handshakes in
/// progress count against the limits) and spawns a handshake task per connection
/// under a deadline, so a peer that says nothing holds only its own task, never
/// the listener; the finished ones queue for [`serve`]. Dropping it (when the
/// server stops accepting) ends the accepting task and the pending handshakes.
pub(crate) struct Https {
    accepted: mpsc::Receiver<Handshaken>,
    acceptor_task: tokio::task::JoinHandle<()>,
}

impl Https {
    pub(crate) fn new(
        listener: TcpListener,
        certs: Arc<TlsCerts>,
        admission: Arc<Admission>,
    ) -> Https {
        let (tx, accepted) = mpsc::channel(ACCEPTED_QUEUE);
        let acceptor_task = tokio::spawn(https_accept_loop(listener, certs, admission, tx));
        Https {
            accepted,
            acceptor_task,
        }
    }
}

impl Drop for Https {
    fn drop(&mut self) {
        self.acceptor_task.abort();
    }
}

impl Accept for Https {
    type Io = TlsStream<TcpStream>;

    async fn next(&mut self) -> Option<Handshaken> {
        // The accepting task never ends on its own while we hold its handle.
        self.accepted.recv().await
    }
}

async fn https_accept_loop(
    listener: TcpListener,
    certs: Arc<TlsCerts>,
    admission: Arc<Admission>,
    tx: mpsc::Sender<Handshaken>,
) {
    let pending = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    let mut handshakes = tokio::task::JoinSet::new();
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "HTTPS accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        while handshakes.try_join_next().is_some() {}
        let admitted = match admission.admit(peer) {
            Ok(p) => p,
            Err(why) => {
                tracing::warn!(%peer, "HTTPS connection refused: {why}");
                continue;
            }
        };
        let Ok(pending_permit) = pending.clone().try_acquire_owned() else {
            tracing::warn!(%peer, MAX_PENDING_HANDSHAKES, "HTTPS connection refused: too many TLS handshakes in progress");
            continue;
        };
        let _ = socket.set_nodelay(true);
        let acceptor = certs.https_acceptor();
        let tx = tx.clone();
        // In the set: aborted with this task when the listener is dropped.
        handshakes.spawn(async move {
            match tokio::time::timeout(HTTPS_HANDSHAKE_TIMEOUT, acceptor.accept(socket)).await {
                Ok(Ok(tls)) => {
                    drop(pending_permit);
                    let _ = tx.send((tls, peer, admitted)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "HTTPS: TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "HTTPS: TLS handshake timed out"),
            }
        });
    }
}

/// Serves `app` on the connections `incoming` yields until `stop` flips; then
/// stops accepting, lets each connection finish its response in progress (live
/// bodies end on the same signal) and returns when they are all closed.
pub(crate) async fn serve<C: Accept>(
    mut incoming: C,
    app: Router,
    limits: &HttpLimits,
    mut stop: watch::Receiver<bool>,
    what: &'static str,
) {
    let builder = Arc::new(limits.builder());
    let (close_tx, close_rx) = watch::channel(());
    loop {
        let (io, peer, permit) = tokio::select! {
            c = incoming.next() => match c {
                Some(c) => c,
                None => break,
            },
            _ = stop.wait_for(|s| *s) => break,
        };
        let state = Arc::new(ConnState {
            started: Instant::now(),
            blocked_since: AtomicU64::new(0),
            stall_limit: AtomicU64::new(0),
            stalled: AtomicBool::new(false),
            armed: Notify::new(),
        });
        let io = Tracked {
            io,
            state: state.clone(),
            _permit: permit,
        };
        let app = app.clone();
        let watch = ConnWatch(state.clone());
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req.extensions_mut().insert(watch.clone());
            app.clone().call(req.map(axum::body::Body::new))
        });
        let builder = builder.clone();
        let mut stop = stop.clone();
        let close_rx = close_rx.clone();
        tokio::spawn(async move {
            let conn = builder
                .serve_connection(TokioIo::new(io), service)
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            let mut stopping = false;
            loop {
                tokio::select! {
                    r = conn.as_mut() => {
                        if let Err(e) = r {
                            tracing::debug!(%peer, error = %e, "{what} connection ended");
                        }
                        break;
                    }
                    _ = stop.wait_for(|s| *s), if !stopping => {
                        stopping = true;
                        conn.as_mut().graceful_shutdown();
                    }
                    _ = state.stall() => {
                        // Dropping the connection drops the response body, whose
                        // viewer logs its close line with this reason.
                        state.stalled.store(true, Ordering::Relaxed);
                        break;
                    }
                }
            }
            drop(close_rx);
        });
    }
    drop(incoming);
    drop(close_rx);
    close_tx.closed().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(all: usize, per_ip: usize) -> HttpLimits {
        HttpLimits {
            max_connections: all,
            max_connections_per_ip: per_ip,
            header_timeout: Duration::from_secs(1),
            max_header_bytes: 8192,
        }
    }

    fn peer(last: u8, port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, last], port))
    }

    #[test]
    fn the_connection_cap_refuses_beyond_it_and_a_dropped_permit_frees_a_place() {
        let a = Admission::new(limits(2, 0));
        let p1 = a.admit(peer(1, 1)).unwrap();
        let _p2 = a.admit(peer(1, 2)).unwrap();
        let e = a.admit(peer(2, 3)).err().unwrap();
        assert!(e.contains("http.max_connections"), "{e}");
        drop(p1);
        assert!(a.admit(peer(2, 3)).is_ok());
    }

    #[test]
    fn the_per_address_cap_counts_each_address_apart() {
        let a = Admission::new(limits(100, 2));
        let p1 = a.admit(peer(1, 1)).unwrap();
        let _p2 = a.admit(peer(1, 2)).unwrap();
        let e = a.admit(peer(1, 3)).err().unwrap();
        assert!(e.contains("http.max_connections_per_ip"), "{e}");
        // Another address is not affected, and a refused one took no global place.
        let _p3 = a.admit(peer(2, 1)).unwrap();
        assert_eq!(a.all.available_permits(), 97);
        drop(p1);
        assert!(a.admit(peer(1, 3)).is_ok());
        // Addresses with no connection are forgotten (the map stays bounded).
        drop(_p3);
        assert!(!a.per_ip.lock().unwrap().contains_key(&peer(2, 1).ip()));
    }

    #[tokio::test]
    async fn a_stall_is_reported_only_when_armed_and_blocked_for_the_limit() {
        let ms = Duration::from_millis;
        let state = Arc::new(ConnState {
            started: Instant::now(),
            blocked_since: AtomicU64::new(0),
            stall_limit: AtomicU64::new(0),
            stalled: AtomicBool::new(false),
            armed: Notify::new(),
        });
        let watch = ConnWatch(state.clone());
        let stall = state.stall();
        tokio::pin!(stall);
        // Not armed: blocked writes are not a stall (a paused download).
        state.blocked_since.store(1, Ordering::Relaxed);
        let r = tokio::time::timeout(ms(600), &mut stall).await;
        assert!(r.is_err(), "not armed");
        // Armed, and not blocked: no stall either.
        state.blocked_since.store(0, Ordering::Relaxed);
        watch.watch_stalls(ms(300));
        let r = tokio::time::timeout(ms(600), &mut stall).await;
        assert!(r.is_err(), "writes not blocked");
        // Blocked from now: a stall after 300 ms, not before.
        state.blocked_since.store(state.now_ms(), Ordering::Relaxed);
        let r = tokio::time::timeout(ms(200), &mut stall).await;
        assert!(r.is_err(), "before the limit");
        tokio::time::timeout(ms(400), &mut stall)
            .await
            .expect("a stall after the limit");
    }
}
