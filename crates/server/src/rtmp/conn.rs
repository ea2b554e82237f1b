//! One RTMP connection: drives a sans-IO [`ServerSession`] from a TCP or TLS stream
//! and connects it to the hub as a publisher or a player.
//!
//! The task reads, feeds the session, acts on its events, and writes what the session
//! queued. A player additionally receives shared packets from its [`Subscription`] and
//! writes their pre-built chunk bytes, a whole batch per vectored write, at most once
//! per `hub.flush_interval_ms`.
//!
//! The byte stream is a [`Transport`]: boxed read and write halves, so one
//! connection type serves RTMP and RTMPS. Plain TCP keeps tokio's lock-free owned
//! halves; TLS goes through `tokio::io::split`. Both pass vectored writes through to
//! the socket (`writev`) or to rustls (one record for many slices). A virtual call per
//! read or write is nothing beside the system call it makes.

use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ferrocast_proto::rtmp::session::{ServerEvent, ServerSession};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::writer::write_all_vectored;
use super::RtmpSettings;
use crate::auth::Grant;
use crate::hook::Client;
use crate::hub::packet::PLAYER_STREAM_ID;
use crate::hub::{
    self, Hub, Origin, Packet, Publisher, SessionGuard, StreamKey, Subscription, SubscriptionEnd,
    KICKED_REASON,
};
use crate::hub::{OriginKind, PublisherEnd};
use crate::metrics::{self, PlayerGauge, Protocol};

/// Read buffer of a publisher: it sends up to a few MB/s, and 64 KiB per read keeps
/// syscalls few.
const READ_BUF: usize = 64 * 1024;
/// Read buffer of every other connection (players only send acknowledgements and
/// the odd command): small, so a thousand players do not hold 64 MB of buffers.
const SMALL_READ_BUF: usize = 4 * 1024;
/// Most packets taken from the ring for one write.
const MAX_BATCH: usize = 1024;

/// What this connection does with a stream: nothing yet, publishing or playing.
/// (The hub's [`hub::Role`] is the label the API lists; this holds the live parts.)
enum Attachment {
    None,
    Publisher(Publisher),
    Player {
        sub: Subscription,
        _gauge: PlayerGauge,
        stream_id: u32,
        name: String,
    },
}

struct ServerConn {
    peer: SocketAddr,
    session: ServerSession,
    hub: Arc<Hub>,
    /// This connection in the hub's session list; kicking it ends the connection.
    registration: SessionGuard,
    settings: Arc<RtmpSettings>,
    wr: Writer,
    local: Option<SocketAddr>,
    /// "rtmp" or "rtmps" (the session list's and the hooks' name for it).
    schema: &'static str,
    shutdown: watch::Receiver<bool>,
    app: Option<String>,
    vhost: Option<String>,
    key: Option<StreamKey>,
    role: Attachment,
    /// Who this connection is to the hooks, once it asked for a stream.
    client: Option<Client>,
    /// The last role taken, for the closing log line.
    role_seen: &'static str,
    connected: bool,
    /// Since when this connection has been neither publishing nor playing: accept, or
    /// the end of its last publish or play. `rtmp.handshake_timeout_ms` after it, a
    /// connection still doing neither is closed however much it sends (pings,
    /// createStream, unknown commands all cost us a little and serve no viewer).
    unattached_since: Instant,
    bytes_in: u64,
    bytes_out: u64,
    out: Vec<Bytes>,
}

/// Why a connection ended; logged once.
type Reason = String;

/// The read half of a connection's byte stream.
pub type Reader = Box<dyn AsyncRead + Send + Unpin>;
/// The write half of a connection's byte stream.
pub type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// A connection's byte stream, split, and what it is called in the session list.
pub struct Transport {
    rd: Reader,
    wr: Writer,
    schema: &'static str,
    local: Option<SocketAddr>,
}

impl Transport {
    /// Plain RTMP on a TCP socket.
    pub fn tcp(socket: TcpStream) -> Transport {
        let local = socket.local_addr().ok();
        let (rd, wr) = socket.into_split();
        Transport {
            rd: Box::new(rd),
            wr: Box::new(wr),
            schema: "rtmp",
            local,
        }
    }

    /// RTMPS: RTMP inside a TLS session already handshaken.
    pub fn tls<S>(stream: S, local: Option<SocketAddr>) -> Transport
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (rd, wr) = tokio::io::split(stream);
        Transport {
            rd: Box::new(rd),
            wr: Box::new(wr),
            schema: "rtmps",
            local,
        }
    }
}

/// Serves one connection until it ends. `started` is when it was accepted: the
/// handshake deadline (`rtmp.handshake_timeout_ms`) counts from there, so it covers
/// a TLS handshake made before this call.
pub async fn run(
    transport: Transport,
    peer: SocketAddr,
    started: Instant,
    hub: Arc<Hub>,
    settings: Arc<RtmpSettings>,
    mut shutdown: watch::Receiver<bool>,
) {
    let Transport {
        mut rd,
        wr,
        schema,
        local,
    } = transport;
    let registration = hub.register_session(
        peer,
        local.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
        schema,
    );
    let seed = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let epoch = started.elapsed().as_millis() as u32;
    let mut conn = ServerConn {
        peer,
        session: ServerSession::new(settings.session, epoch, seed),
        hub,
        registration,
        settings,
        wr,
        local,
        schema,
        shutdown: shutdown.clone(),
        app: None,
        vhost: None,
        key: None,
        role: Attachment::None,
        client: None,
        role_seen: "none",
        connected: false,
        unattached_since: started,
        bytes_in: 0,
        bytes_out: 0,
        out: Vec::new(),
    };
    tracing::debug!(%peer, session = conn.registration.id(), schema, "RTMP connection accepted");
    let reason = conn.drive(&mut rd, &mut shutdown).await;
    let dropped = match &conn.role {
        Attachment::Player { sub, .. } => sub.dropped(),
        _ => 0,
    };
    conn.role = Attachment::None; // ends a publish (continue_push starts) or a subscription
    metrics::session_closed("rtmp", &reason);
    if let (Some(hooks), Some(client)) = (&conn.settings.hooks, &conn.client) {
        let player = conn.role_seen == "player";
        let bytes = if player {
            conn.bytes_out
        } else {
            conn.bytes_in
        };
        hooks.flow_report(client, player, bytes, started.elapsed());
    }
    let stream = conn.key.as_ref().map(|k| k.to_string()).unwrap_or_default();
    // The peer quirks the session let pass, once per connection; absent when none.
    let tolerated = conn.session.tolerated();
    let tolerated = (!tolerated.is_empty()).then(|| tolerated.to_string());
    tracing::info!(
        %peer,
        session = conn.registration.id(),
        schema = conn.schema,
        stream,
        role = conn.role_seen,
        bytes_in = conn.bytes_in,
        bytes_out = conn.bytes_out,
        frames_dropped = dropped,
        duration_ms = started.elapsed().as_millis() as u64,
        reason,
        tolerated,
        "RTMP session closed"
    );
}

impl ServerConn {
    async fn drive(&mut self, rd: &mut Reader, shutdown: &mut watch::Receiver<bool>) -> Reason {
        let mut buf = vec![0u8; SMALL_READ_BUF];
        let mut batch: Vec<Arc<Packet>> = Vec::new();
        loop {
            if *shutdown.borrow() {
                return "server shutting down".into();
            }
            if let Attachment::Player { sub, .. } = &mut self.role {
                tokio::select! {
                    biased;
                    _ = shutdown.changed() => return "server shutting down".into(),
                    _ = self.registration.kicked() => return KICKED_REASON.into(),
                    r = rd.read(&mut buf) => {
                        if let Some(reason) = self.on_read(r, &buf).await {
                            return reason;
                        }
                    }
                    r = sub.next_batch(&mut batch, MAX_BATCH) => {
                        if let Some(reason) = self.on_batch(r, &mut batch).await {
                            return reason;
                        }
                        if !self.settings.flush_interval.is_zero() {
                            tokio::time::sleep(self.settings.flush_interval).await;
                        }
                    }
                }
                continue;
            }
            if matches!(self.role, Attachment::Publisher(_)) && buf.len() < READ_BUF {
                buf.resize(READ_BUF, 0);
            }
            // A publisher answers to the idle timeout only; a connection that is not
            // attached also to what is left of the attach deadline.
            let attach_left = self
                .settings
                .handshake_timeout
                .saturating_sub(self.unattached_since.elapsed());
            let limit = match (&self.role, self.connected) {
                (Attachment::None, true) => self.settings.idle_timeout.min(attach_left),
                (Attachment::None, false) => attach_left,
                _ => self.settings.idle_timeout,
            };
            let kicked = async {
                match &mut self.role {
                    Attachment::Publisher(p) => p.kicked().await,
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = shutdown.changed() => return "server shutting down".into(),
                end = kicked => return match end {
                    PublisherEnd::Closed => "stream closed by the operator (API)".into(),
                    PublisherEnd::TakenOver => "taken over by a new publisher of the stream".into(),
                },
                _ = self.registration.kicked() => return KICKED_REASON.into(),
                r = tokio::time::timeout(limit, rd.read(&mut buf)) => match r {
                    Ok(r) => {
                        if let Some(reason) = self.on_read(r, &buf).await {
                            return reason;
                        }
                    }
                    Err(_) if self.connected && (limit < attach_left || !matches!(self.role, Attachment::None)) => {
                        return format!("idle: nothing received for {} ms", limit.as_millis());
                    }
                    Err(_) if self.connected => {
                        return format!(
                            "neither publishing nor playing within {} ms (rtmp.handshake_timeout_ms)",
                            self.settings.handshake_timeout.as_millis()
                        );
                    }
                    Err(_) => {
                        return format!(
                            "handshake timeout: no connect within {} ms",
                            self.settings.handshake_timeout.as_millis()
                        );
                    }
                },
            }
        }
    }

    /// Handles one read result; `Some(reason)` ends the connection.
    async fn on_read(&mut self, r: std::io::Result<usize>, buf: &[u8]) -> Option<Reason> {
        let n = match r {
            Ok(0) => return Some("peer closed the connection".into()),
            Ok(n) => n,
            // RTMPS: rustls reports a TCP close without close_notify so. Encoders do
            // that routinely; for RTMP it means what a plain close means.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Some("peer closed the connection (without TLS close_notify)".into())
            }
            Err(e) => return Some(format!("read error: {e}")),
        };
        self.bytes_in += n as u64;
        if let Err(e) = self.session.handle_input(&buf[..n]) {
            // Say what we can before closing (e.g. nothing), then name the fault.
            let _ = self.flush().await;
            return Some(format!("bad input from peer: {e}"));
        }
        while let Some(event) = self.session.poll_event() {
            if let Some(reason) = self.on_event(event).await {
                let _ = self.flush().await;
                return Some(reason);
            }
        }
        self.flush().await.err()
    }

    async fn on_event(&mut self, event: ServerEvent) -> Option<Reason> {
        match event {
            ServerEvent::Connect { app, tc_url, .. } => {
                self.connected = true;
                // `rtmp://host/app?vhost=x` (tcUrl) or the SRS form `app?vhost=x`.
                self.vhost = tc_url
                    .as_deref()
                    .and_then(|u| query_param(u, "vhost"))
                    .or_else(|| {
                        self.session
                            .app_params()
                            .and_then(|q| query_param(q, "vhost"))
                    })
                    .map(str::to_owned);
                self.app = Some(app);
            }
            ServerEvent::Publish {
                stream_id,
                stream_name,
                params,
                ..
            } => {
                if !matches!(self.role, Attachment::None) {
                    return Some(
                        "publish on a connection that is already publishing or playing".into(),
                    );
                }
                let key = self.stream_key(&stream_name, &params);
                let client = self.client(&key, &params);
                let grant = match &self.settings.auth {
                    Some(auth) => auth.publish(&client, OriginKind::RtmpPush).await,
                    None => Ok(Grant::default()),
                };
                let grant = match grant {
                    Ok(g) => g,
                    Err(denied) => {
                        self.session.reject_publish(
                            stream_id,
                            "NetStream.Publish.Unauthorized",
                            &denied.msg,
                        );
                        self.key = Some(key);
                        self.role_seen = "publisher";
                        return Some(format!("publish refused: {}", denied.reason));
                    }
                };
                let origin = Origin {
                    kind: OriginKind::RtmpPush,
                    peer: Some(self.peer),
                    local: self.local,
                    url: format!(
                        "rtmp://{}/{}/{}",
                        self.local.map(|a| a.to_string()).unwrap_or_default(),
                        key.app,
                        key.stream
                    ),
                    params,
                    options: grant.options,
                };
                match self.hub.publish_with(key.clone(), origin, grant.proven) {
                    Ok(p) => {
                        self.client = Some(client);
                        self.session.accept_publish(stream_id);
                        tracing::info!(peer = %self.peer, stream = %key, "publish started");
                        self.registration
                            .set_stream(hub::Role::Publisher, Some(key.clone()));
                        self.key = Some(key);
                        self.role = Attachment::Publisher(p);
                        self.role_seen = "publisher";
                    }
                    Err(e) => {
                        self.session.reject_publish(
                            stream_id,
                            "NetStream.Publish.BadName",
                            &e.to_string(),
                        );
                        self.key = Some(key);
                        self.role_seen = "publisher";
                        return Some(format!("publish refused: {e}"));
                    }
                }
            }
            ServerEvent::Play {
                stream_id,
                stream_name,
                params,
                reset,
                ..
            } => {
                if !matches!(self.role, Attachment::None) {
                    return Some(
                        "play on a connection that is already publishing or playing".into(),
                    );
                }
                let key = self.stream_key(&stream_name, &params);
                self.key = Some(key.clone());
                self.role_seen = "player";
                let client = self.client(&key, &params);
                if let Some(auth) = &self.settings.auth {
                    if let Err(denied) = auth.play(&client).await {
                        self.session.reject_play(
                            stream_id,
                            "NetStream.Play.Unauthorized",
                            &denied.msg,
                        );
                        return Some(format!("play refused: {}", denied.reason));
                    }
                }
                if let Some(hooks) = &self.settings.hooks {
                    if self.hub.find(&key).is_none() {
                        hooks.stream_not_found(&client);
                    }
                }
                self.client = Some(client);
                if stream_id != PLAYER_STREAM_ID {
                    // Media chunks are built once per stream on message stream id 1
                    // and shared; a second NetStream on one connection is not served.
                    self.session.play_not_found(stream_id, &stream_name);
                    return Some(format!(
                        "play refused: message stream id {stream_id} (only one stream per connection is served)"
                    ));
                }
                // Say nothing until the stream is there (a player may wait for it).
                if let Err(e) = self.flush().await {
                    return Some(e);
                }
                let mut shutdown = self.shutdown.clone();
                let found = tokio::select! {
                    r = self.hub.subscribe(&key) => r,
                    _ = shutdown.changed() => return Some("server shutting down".into()),
                    _ = self.registration.kicked() => return Some(KICKED_REASON.into()),
                };
                match found {
                    Ok(sub) => {
                        self.session.accept_play(stream_id, &stream_name, reset);
                        tracing::info!(peer = %self.peer, stream = %key, "play started");
                        self.registration
                            .set_stream(hub::Role::Player, Some(key.clone()));
                        self.role = Attachment::Player {
                            sub,
                            _gauge: PlayerGauge::new(Protocol::Rtmp),
                            stream_id,
                            name: stream_name,
                        };
                    }
                    Err(e) => {
                        self.session.play_not_found(stream_id, &stream_name);
                        return Some(format!("play refused: {e}"));
                    }
                }
            }
            ServerEvent::Unpublish { .. } => {
                if matches!(self.role, Attachment::Publisher(_)) {
                    self.role = Attachment::None;
                    self.unattached_since = Instant::now();
                    self.registration.set_stream(hub::Role::Unknown, None);
                }
            }
            ServerEvent::StopPlay { .. } => {
                if matches!(self.role, Attachment::Player { .. }) {
                    self.role = Attachment::None;
                    self.unattached_since = Instant::now();
                    self.registration.set_stream(hub::Role::Unknown, None);
                }
            }
            ServerEvent::Metadata {
                timestamp, payload, ..
            } => {
                if let Attachment::Publisher(p) = &self.role {
                    p.push_metadata(timestamp, payload);
                }
            }
            ServerEvent::Audio { timestamp, payload } => {
                if let Attachment::Publisher(p) = &self.role {
                    p.push_audio(timestamp, payload);
                }
            }
            ServerEvent::Video { timestamp, payload } => {
                if let Attachment::Publisher(p) = &self.role {
                    p.push_video(timestamp, payload);
                }
            }
        }
        None
    }

    /// Writes a batch of shared packets after any queued control output.
    async fn on_batch(
        &mut self,
        r: Result<(), SubscriptionEnd>,
        batch: &mut Vec<Arc<Packet>>,
    ) -> Option<Reason> {
        let chunk_size = self.session.out_chunk_size();
        for p in batch.drain(..) {
            self.out.push(p.rtmp_chunks(chunk_size).clone());
        }
        match r {
            Ok(()) => self.flush().await.err(),
            Err(SubscriptionEnd::StreamEnded) => {
                if let Attachment::Player {
                    stream_id, name, ..
                } = &self.role
                {
                    let (id, name) = (*stream_id, name.clone());
                    self.session.unpublish_notify(id, &name);
                }
                let _ = self.flush().await;
                Some("stream ended".into())
            }
            Err(e @ SubscriptionEnd::TooSlow(_)) => Some(e.to_string()),
        }
    }

    /// Writes the session's queued output (after any shared packets already queued).
    async fn flush(&mut self) -> Result<(), Reason> {
        while let Some(b) = self.session.poll_output() {
            self.out.push(b);
        }
        if self.out.is_empty() {
            return Ok(());
        }
        match tokio::time::timeout(
            self.settings.write_timeout,
            write_all_vectored(&mut self.wr, &mut self.out),
        )
        .await
        {
            Ok(Ok(n)) => {
                self.bytes_out += n;
                if let Attachment::Player { sub, .. } = &self.role {
                    sub.stream().add_bytes_out(n);
                }
                Ok(())
            }
            Ok(Err(e)) => Err(format!("write error: {e}")),
            Err(_) => Err(format!(
                "peer stopped reading: a write did not finish within {} ms",
                self.settings.write_timeout.as_millis()
            )),
        }
    }

    /// This connection as a hook and auth client asking for `key`.
    fn client(&self, key: &StreamKey, params: &str) -> Client {
        Client {
            protocol: self.registration.schema(),
            key: key.clone(),
            params: params.to_owned(),
            peer: self.peer,
            session_id: self.registration.id(),
        }
    }

    fn stream_key(&self, name: &str, params: &str) -> StreamKey {
        let vhost = query_param(params, "vhost").or(self.vhost.as_deref());
        StreamKey::new(vhost, self.app.as_deref().unwrap_or(""), name)
    }
}

/// The value of `key` in a `a=b&c=d` query (or a URL with one).
fn query_param<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    let q = s.split_once('?').map(|(_, q)| q).unwrap_or(s);
    q.split('&').find_map(|kv| {
        kv.split_once('=')
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v)
    })
}
