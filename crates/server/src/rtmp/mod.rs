//! The RTMP and RTMPS listeners: accept connections and run one [`conn`] task per
//! peer. An RTMPS connection's TLS handshake is made in its own task (a silent peer
//! must not stall the accept loop), under the same deadline as the RTMP handshake.
//!
//! Bounds at accept: `rtmp.max_connections` per listener and, when set,
//! `rtmp.max_connections_per_ip` per peer address across both listeners (a refused
//! peer is closed at once, with a log line). Everything after accept is bounded by
//! the session ([`ferrocast_proto::rtmp::session`]: message sizes, chunk streams,
//! bytes held in partial messages, `connect` strings, publish and play requests)
//! and by [`conn`]'s timers (handshake, attach, idle and write deadlines).

pub mod conn;
pub mod writer;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::config::Config;
use crate::hub::Hub;
use crate::tls::TlsCerts;

/// Settings the connection tasks need, resolved once from the config.
#[derive(Clone)]
pub struct RtmpSettings {
    pub session: ferrocast_proto::rtmp::session::SessionConfig,
    pub handshake_timeout: Duration,
    pub idle_timeout: Duration,
    pub flush_interval: Duration,
    pub tcp_nodelay: bool,
    pub write_timeout: Duration,
    /// Who may publish and play; `None` lets everyone (in-process tests).
    pub(crate) auth: Option<Arc<crate::auth::Auth>>,
    /// Hook events of sessions (on_stream_not_found, on_flow_report).
    pub(crate) hooks: Option<Arc<crate::hook::Hooks>>,
    /// Open connections per peer address, shared by the RTMP and RTMPS listeners.
    pub(crate) per_ip: PerIp,
}

/// Open connections per peer address, capped at `limit` (0: no cap, nothing
/// counted). A connection holds an [`IpSlot`] for its lifetime.
#[derive(Clone, Default)]
pub(crate) struct PerIp {
    limit: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl PerIp {
    pub(crate) fn new(limit: usize) -> Self {
        PerIp {
            limit,
            open: Arc::default(),
        }
    }

    /// A slot for one more connection from `ip`, or `None` when it has `limit`.
    fn acquire(&self, ip: IpAddr) -> Option<IpSlot> {
        if self.limit == 0 {
            return Some(IpSlot(None));
        }
        // Nothing panics under this lock; a poisoned one still holds valid counts.
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(IpSlot(Some((self.clone(), ip))))
    }
}

/// One counted connection; dropping it frees the slot (and the address's entry
/// with its last slot, so the map holds only addresses with open connections).
pub(crate) struct IpSlot(Option<(PerIp, IpAddr)>);

impl Drop for IpSlot {
    fn drop(&mut self) {
        if let Some((per_ip, ip)) = self.0.take() {
            let mut open = per_ip.open.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = open.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    open.remove(&ip);
                }
            }
        }
    }
}

impl RtmpSettings {
    pub fn from_config(c: &Config) -> Self {
        use ferrocast_proto::amf0::Amf0Limits;
        use ferrocast_proto::rtmp::chunk::ChunkLimits;
        use ferrocast_proto::rtmp::session::SessionConfig;
        RtmpSettings {
            session: SessionConfig {
                chunk_limits: ChunkLimits {
                    max_message_size: c.rtmp.max_message_size,
                    max_chunk_streams: c.rtmp.max_chunk_streams,
                },
                amf0_limits: Amf0Limits::default(),
                out_chunk_size: c.rtmp.chunk_size,
                window_ack_size: c.rtmp.window_ack_size,
            },
            handshake_timeout: Duration::from_millis(c.rtmp.handshake_timeout_ms),
            idle_timeout: Duration::from_millis(c.rtmp.idle_timeout_ms),
            flush_interval: Duration::from_millis(c.hub.flush_interval_ms),
            tcp_nodelay: c.hub.tcp_nodelay,
            write_timeout: Duration::from_millis(c.hub.slow_player_timeout_ms),
            auth: None,
            hooks: None,
            per_ip: PerIp::new(c.rtmp.max_connections_per_ip),
        }
    }
}

/// Accepts plain RTMP until `shutdown` flips, then waits for the sessions to end.
pub async fn serve(
    listener: TcpListener,
    hub: Arc<Hub>,
    settings: Arc<RtmpSettings>,
    max_connections: usize,
    shutdown: watch::Receiver<bool>,
) {
    serve_with(listener, None, hub, settings, max_connections, shutdown).await
}

/// Accepts until `shutdown` flips, then waits for the sessions to end; with `tls`,
/// every connection is RTMPS (the certificate read at each accept, so a reload
/// applies to new connections only). Each listener has its own cap of
/// `max_connections`.
pub(crate) async fn serve_with(
    listener: TcpListener,
    tls: Option<Arc<TlsCerts>>,
    hub: Arc<Hub>,
    settings: Arc<RtmpSettings>,
    max_connections: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    let limit = Arc::new(Semaphore::new(max_connections));
    let mut tasks = JoinSet::new();
    let what = if tls.is_some() { "RTMPS" } else { "RTMP" };
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (socket, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "{what} accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = limit.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, max_connections, "{what} connection refused: too many connections");
                    continue;
                };
                let Some(ip_slot) = settings.per_ip.acquire(peer.ip()) else {
                    tracing::warn!(
                        %peer,
                        max_connections_per_ip = settings.per_ip.limit,
                        "{what} connection refused: too many connections from this address"
                    );
                    continue;
                };
                let started = Instant::now();
                let hub = hub.clone();
                let settings = settings.clone();
                let shutdown = shutdown.clone();
                let tls = tls.clone();
                tasks.spawn(async move {
                    let _ = socket.set_nodelay(settings.tcp_nodelay);
                    let transport = match tls {
                        None => Some(conn::Transport::tcp(socket)),
                        Some(certs) => tls_handshake(socket, peer, &certs, &settings, shutdown.clone()).await,
                    };
                    if let Some(transport) = transport {
                        conn::run(transport, peer, started, hub, settings, shutdown).await;
                    }
                    drop(ip_slot);
                    drop(permit);
                });
                // Reap finished tasks so the set does not grow with history.
                while tasks.try_join_next().is_some() {}
            }
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    while tasks.join_next().await.is_some() {}
}

/// The TLS handshake of an RTMPS connection, bounded by the RTMP handshake deadline
/// and by shutdown; `None` (logged) when it fails.
async fn tls_handshake(
    socket: TcpStream,
    peer: SocketAddr,
    certs: &TlsCerts,
    settings: &RtmpSettings,
    mut shutdown: watch::Receiver<bool>,
) -> Option<conn::Transport> {
    let local = socket.local_addr().ok();
    let acceptor = certs.rtmps_acceptor();
    let outcome = tokio::select! {
        r = tokio::time::timeout(settings.handshake_timeout, acceptor.accept(socket)) => r,
        _ = shutdown.changed() => return None,
    };
    match outcome {
        Ok(Ok(stream)) => Some(conn::Transport::tls(stream, local)),
        Ok(Err(e)) => {
            tracing::info!(%peer, error = %e, "RTMPS: TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::info!(
                %peer,
                "RTMPS: no TLS handshake within {} ms",
                settings.handshake_timeout.as_millis()
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use ferrocast_proto::rtmp::session::{
        parse_rtmp_url, ClientEvent, ClientMode, ClientSession, SessionConfig,
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;
    use crate::hub::{HubSettings, Role, StreamKey};

    const WAIT: Duration = Duration::from_secs(5);

    fn settings() -> Arc<RtmpSettings> {
        settings_with(Duration::from_secs(30))
    }

    fn settings_with(handshake_timeout: Duration) -> Arc<RtmpSettings> {
        Arc::new(RtmpSettings {
            session: SessionConfig::default(),
            handshake_timeout,
            idle_timeout: Duration::from_secs(30),
            flush_interval: Duration::ZERO,
            tcp_nodelay: true,
            write_timeout: Duration::from_secs(5),
            auth: None,
            hooks: None,
            per_ip: PerIp::new(2),
        })
    }

    async fn start() -> (Arc<Hub>, SocketAddr, watch::Sender<bool>) {
        start_with(settings()).await
    }

    async fn start_with(
        settings: Arc<RtmpSettings>,
    ) -> (Arc<Hub>, SocketAddr, watch::Sender<bool>) {
        let hub = Hub::new(HubSettings {
            gop_cache: true,
            gop_cache_max_frames: 16,
            gop_cache_max_bytes: 1 << 20,
            queue_len: 64,
            slow_player_timeout: Duration::from_secs(5),
            continue_push: Duration::ZERO,
            max_stream_wait: Duration::from_secs(5),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(serve(listener, hub.clone(), settings, 16, stopped));
        (hub, addr, stop)
    }

    /// A client that publishes or plays `live/k` until the server says it started.
    async fn started_client(addr: SocketAddr, mode: ClientMode) -> TcpStream {
        let url = format!("rtmp://{addr}/live/k");
        let (_, _, target) = parse_rtmp_url(&url, mode).unwrap();
        let mut session = ClientSession::new(SessionConfig::default(), target, 0, 7, false);
        let mut sock = TcpStream::connect(addr).await.unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let work = async {
            loop {
                while let Some(b) = session.poll_output() {
                    sock.write_all(&b).await.unwrap();
                }
                while let Some(e) = session.poll_event() {
                    if matches!(e, ClientEvent::Started { .. }) {
                        return;
                    }
                }
                let n = sock.read(&mut buf).await.unwrap();
                assert!(n > 0, "server closed the connection");
                session.handle_input(&buf[..n]).unwrap();
            }
        };
        tokio::time::timeout(WAIT, work).await.expect("started");
        sock
    }

    /// Reads until the server closes the connection.
    async fn closed_by_server(sock: &mut TcpStream) {
        let mut buf = vec![0u8; 64 * 1024];
        let closed = async {
            loop {
                match sock.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        };
        tokio::time::timeout(WAIT, closed)
            .await
            .expect("server closes a kicked session");
    }

    async fn wait_for(hub: &Hub, what: impl Fn(&[crate::hub::SessionInfo]) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !what(&hub.sessions()) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{:?}",
                hub.sessions()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn kicking_a_handshaking_connection_closes_it() {
        let (hub, addr, _stop) = start().await;
        let mut sock = TcpStream::connect(addr).await.unwrap();
        let local = sock.local_addr().unwrap();
        wait_for(&hub, |s| s.len() == 1).await;
        let s = &hub.sessions()[0];
        assert_eq!(
            (s.schema, s.role, s.key.clone()),
            ("rtmp", Role::Unknown, None)
        );
        assert_eq!((s.peer, s.local), (local, addr));
        assert!(hub.kick_session(s.id));
        closed_by_server(&mut sock).await;
        wait_for(&hub, |s| s.is_empty()).await;
    }

    #[tokio::test]
    async fn kicking_a_player_or_a_publisher_closes_that_session_only() {
        let (hub, addr, _stop) = start().await;
        let key = StreamKey::new(None, "live", "k");
        let mut publisher = started_client(addr, ClientMode::Publish).await;
        let mut player = started_client(addr, ClientMode::Play).await;
        let sessions = hub.sessions();
        assert_eq!(sessions.len(), 2);
        let (p, v) = (&sessions[0], &sessions[1]);
        assert_eq!((p.role, p.key.as_ref()), (Role::Publisher, Some(&key)));
        assert_eq!((v.role, v.key.as_ref()), (Role::Player, Some(&key)));
        assert_eq!(p.peer, publisher.local_addr().unwrap());

        assert!(hub.kick_session(v.id));
        closed_by_server(&mut player).await;
        wait_for(&hub, |s| s.len() == 1 && s[0].id == p.id).await;
        assert!(hub.find(&key).is_some(), "the publisher goes on");

        assert!(hub.kick_session(p.id));
        closed_by_server(&mut publisher).await;
        wait_for(&hub, |s| s.is_empty()).await;
        assert!(!hub.kick_session(p.id));
    }

    /// Handshakes (C2 echoes S1) and sends `connect`.
    async fn connected_raw(addr: SocketAddr) -> TcpStream {
        use ferrocast_proto::rtmp::handshake::HANDSHAKE_SIZE;
        let mut sock = TcpStream::connect(addr).await.unwrap();
        let mut c0c1 = vec![3u8];
        c0c1.extend((0..HANDSHAKE_SIZE).map(|i| if i < 8 { 0 } else { i as u8 }));
        sock.write_all(&c0c1).await.unwrap();
        let mut s0s1s2 = vec![0u8; 1 + 2 * HANDSHAKE_SIZE];
        sock.read_exact(&mut s0s1s2).await.unwrap();
        sock.write_all(&s0s1s2[1..1 + HANDSHAKE_SIZE])
            .await
            .unwrap();
        let object = ferrocast_proto::amf0::Amf0Value::Object(vec![(
            "app".into(),
            ferrocast_proto::amf0::Amf0Value::String("live".into()),
        )]);
        sock.write_all(&command("connect", 1.0, &object))
            .await
            .unwrap();
        sock
    }

    fn command(
        name: &str,
        transaction_id: f64,
        object: &ferrocast_proto::amf0::Amf0Value,
    ) -> Vec<u8> {
        use ferrocast_proto::rtmp::chunk::{encode_message, DEFAULT_CHUNK_SIZE};
        use ferrocast_proto::rtmp::message::{command_payload, csid, type_id};
        let payload = command_payload(name, transaction_id, object, &[]);
        let mut out = bytes::BytesMut::new();
        encode_message(
            &mut out,
            csid::COMMAND,
            0,
            type_id::COMMAND_AMF0,
            0,
            &payload,
            DEFAULT_CHUNK_SIZE,
        );
        out.to_vec()
    }

    #[tokio::test]
    async fn a_connection_that_neither_publishes_nor_plays_is_closed_though_it_keeps_sending() {
        let deadline = Duration::from_millis(600);
        let (hub, addr, _stop) = start_with(settings_with(deadline)).await;
        let accepted = tokio::time::Instant::now();
        let mut sock = connected_raw(addr).await;
        // An unknown command every 50 ms: far inside the idle timeout (30 s).
        let null = ferrocast_proto::amf0::Amf0Value::Null;
        let mut buf = vec![0u8; 64 * 1024];
        let closed_after = loop {
            tokio::select! {
                r = sock.read(&mut buf) => match r {
                    Ok(0) | Err(_) => break accepted.elapsed(),
                    Ok(_) => {}
                },
                _ = tokio::time::sleep(Duration::from_millis(50)) => {
                    if sock.write_all(&command("_checkbw", 0.0, &null)).await.is_err() {
                        break accepted.elapsed();
                    }
                }
            }
            assert!(accepted.elapsed() < WAIT, "still open after {WAIT:?}");
        };
        assert!(
            closed_after >= deadline && closed_after < deadline + Duration::from_secs(1),
            "closed after {closed_after:?}"
        );
        wait_for(&hub, |s| s.is_empty()).await;
    }

    #[tokio::test]
    async fn a_publisher_is_not_held_to_the_attach_deadline() {
        let deadline = Duration::from_millis(600);
        let (_hub, addr, _stop) = start_with(settings_with(deadline)).await;
        // A publisher that publishes for longer than the deadline is not closed.
        let publisher = started_client(addr, ClientMode::Publish).await;
        tokio::time::sleep(deadline * 2).await;
        let mut buf = [0u8; 1];
        let still_open = tokio::time::timeout(Duration::from_millis(50), async {
            let mut p = publisher;
            let r = p.read(&mut buf).await;
            (p, r)
        })
        .await;
        assert!(still_open.is_err(), "publisher closed: {still_open:?}");
    }

    #[tokio::test]
    async fn connections_per_address_are_capped_at_accept() {
        // settings() allows 2 per address; the listener itself 16.
        let (hub, addr, _stop) = start().await;
        let first = TcpStream::connect(addr).await.unwrap();
        let _second = TcpStream::connect(addr).await.unwrap();
        wait_for(&hub, |s| s.len() == 2).await;
        let mut third = TcpStream::connect(addr).await.unwrap();
        closed_by_server(&mut third).await;
        assert_eq!(hub.sessions().len(), 2);
        // A slot frees when a connection ends.
        drop(first);
        wait_for(&hub, |s| s.len() == 1).await;
        let _fourth = TcpStream::connect(addr).await.unwrap();
        wait_for(&hub, |s| s.len() == 2).await;
    }
}
