//! RTMP pull and push for the proxies: the tokio driver of the sans-IO
//! [`ClientSession`] of `ferrocast-proto`, over TCP (`rtmp://`) or TLS (`rtmps://`).
//!
//! What this module owns: resolving and connecting, TLS, the read/write loop, the
//! deadlines, and turning what the remote answers into a [`ProxyError`]. What it must
//! never do: parse RTMP itself. The handshake (digest form, as FFmpeg and Flash
//! Player send it), `connect` with `tcUrl`, `createStream` and `play`, or
//! `releaseStream` + `FCPublish` + `createStream` + `publish`, acknowledgements and
//! ping answers are all the session's work; this file only pumps bytes and reads
//! events.
//!
//! # Why hand-written
//! The RTMP state machines are ours (`crates/proto`), because no crate offers a
//! sans-IO RTMP client with a digest handshake, bounded buffers and `Bytes` out (see
//! `proto/src/rtmp/handshake.rs`, "Why hand-written"). The driver around it is
//! the same small loop as the server's connection (`rtmp/conn.rs`) and the load
//! generator's (`bench/src/conn.rs`), so it is written here too rather than pulled
//! in. TLS is not hand-written: `tokio-rustls` with the `ring` provider.
//!
//! # Run loop
//! Read once, feed `handle_input`, drain `poll_event`, then write what `poll_output`
//! holds. The session coalesces everything queued (our commands, acknowledgements,
//! and for a push the whole batch of media taken from the hub) into one buffer, so a
//! batch is one `write_all` (and one TLS flush): no per-message writes, no vectored
//! write needed. The read is the only await point inside a `select!`, so reading
//! stays cancel-safe next to the subscription or the channel.
//!
//! # Deadlines
//! * [`RtmpOptions::connect_timeout`] bounds everything up to the start of media:
//!   DNS, TCP connect, TLS, the RTMP handshake, `connect`, and `NetStream.Play.Start`
//!   or `NetStream.Publish.Start`. The error names the step that was still waiting.
//! * A write that does not finish within [`WRITE_TIMEOUT`] (the remote stopped
//!   reading) ends a push (or a pull's acknowledgements) with [`ProxyError::Timeout`].
//! * A pull has no read deadline: a live source may pause, and the proxy manager
//!   watches for stalls and reconnects.
//!
//! # What the remote says, as a [`ProxyError`]
//! | remote                                              | error                     |
//! |-----------------------------------------------------|---------------------------|
//! | DNS failure, TCP refused / unreachable              | `Connect { addr, reason }`|
//! | TLS failure (unknown issuer, name mismatch, not TLS)| `Tls`                     |
//! | nothing within `connect_timeout`                    | `Timeout` (names the step)|
//! | `onStatus NetStream.Play.StreamNotFound`            | `NotFound`                |
//! | other `onStatus` of level `error` (`Publish.BadName`, `Play.Failed`, ...) | `Refused("code: description")` |
//! | `_error` to `connect`, `createStream`, `play`, `publish` | `Refused` (`Auth` when it asks for `authmod=`) |
//! | bytes the session cannot parse                      | `Protocol` (names the layer) |
//! | end of the TCP stream                               | `Closed`                  |
//!
//! `_error` answers to `releaseStream` and `FCPublish` are ignored, as FFmpeg does:
//! they are Flash-era extras that several servers do not implement.
//!
//! # TLS roots
//! `rtmps://` trusts the Mozilla root programme as compiled into `webpki-roots`, plus
//! the PEM certificates of [`RtmpOptions::extra_ca_file`] for servers with a private
//! CA. Compiled-in roots, rather than the system store (`rustls-native-certs`), make
//! the proxy behave the same on every host, including slim containers without a
//! `ca-certificates` package, and a private CA is one config line either way. The
//! server name (SNI, and the name checked against the certificate) is the URL's host.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ferrocast_proto::amf0::{self, Amf0Limits};
use ferrocast_proto::rtmp::handshake::HandshakeError;
use ferrocast_proto::rtmp::session::{
    parse_rtmp_url, ClientEvent, ClientMode, ClientSession, ClientTarget, SessionConfig,
    SessionError,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{timeout, timeout_at, Instant};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use super::{Media, MediaKind, ProxyError};
use crate::hub::{Packet, PacketKind, Subscription, SubscriptionEnd};

/// How long a write may stay blocked before the remote counts as no longer reading.
/// Longer than any TCP hiccup on a working link; short enough that a stuck push is
/// noticed and restarted while the hub's ring still holds the recent GOP.
pub(crate) const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the polite end (closeStream / FCUnpublish, deleteStream, TLS
/// close_notify) may take before the socket is dropped anyway.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Read buffer: a pulled stream arrives at up to a few MB/s; 64 KiB per read keeps
/// the number of reads (and session calls) low, and there are few proxies.
const READ_BUF: usize = 64 * 1024;

/// Most hub packets taken for one write. A flush interval's worth at any ordinary
/// bitrate; bounds the session's output buffer when the ring is full.
const MAX_BATCH: usize = 256;

/// Chunk size we announce and send with. FFmpeg's value: every server accepts it
/// (some cap what they take, e.g. SRS at 64 KiB), and the 1-byte header per 4 KiB
/// of media costs 0.02 %.
const OUT_CHUNK_SIZE: u32 = 4096;

/// Media messages kept when a server sends them before `NetStream.Play.Start`
/// (metadata or sequence headers ahead of the status): a few are normal, more means
/// a confused server, and the rest are dropped.
const MAX_EARLY_EVENTS: usize = 64;

/// How to reach the remote.
#[derive(Debug, Clone)]
pub(crate) struct RtmpOptions {
    /// Bounds DNS, TCP connect, TLS, the RTMP handshake, `connect` and the start of
    /// play or publish, all together.
    pub connect_timeout: Duration,
    /// PEM certificates trusted for `rtmps://` in addition to the public roots (for
    /// servers with a private CA).
    pub extra_ca_file: Option<PathBuf>,
}

impl Default for RtmpOptions {
    fn default() -> Self {
        RtmpOptions {
            connect_timeout: Duration::from_secs(10),
            extra_ca_file: None,
        }
    }
}

/// Plays `url` (rtmp:// or rtmps://) and sends everything received into `tx` until the
/// remote ends the stream (Ok) or fails (Err). Returns Ok(()) also if `tx` is closed.
///
/// "The remote ends the stream" is Stream EOF or `NetStream.Play.UnpublishNotify` /
/// `NetStream.Play.Stop`; a connection that just closes is [`ProxyError::Closed`].
pub(crate) async fn pull(
    url: &str,
    opts: &RtmpOptions,
    tx: mpsc::Sender<Media>,
) -> Result<(), ProxyError> {
    let mut conn = tokio::select! {
        conn = open(url, ClientMode::Play, opts) => conn?,
        _ = tx.closed() => return Ok(()),
    };
    let mut early = std::mem::take(&mut conn.early).into_iter();
    loop {
        while let Some(event) = early.next().or_else(|| conn.session.poll_event()) {
            let media = match event {
                ClientEvent::Video { timestamp, payload } => Media {
                    kind: MediaKind::Video,
                    timestamp,
                    body: payload,
                },
                ClientEvent::Audio { timestamp, payload } => Media {
                    kind: MediaKind::Audio,
                    timestamp,
                    body: payload,
                },
                ClientEvent::Metadata {
                    timestamp, payload, ..
                } => Media {
                    kind: MediaKind::Metadata,
                    timestamp,
                    body: payload,
                },
                ClientEvent::StreamEnded => {
                    tracing::debug!(remote = %conn.remote, tolerated = conn.tolerated(),
                        "remote ended the stream");
                    conn.close().await;
                    return Ok(());
                }
                other => {
                    conn.check(other)?;
                    continue;
                }
            };
            // Some servers (FMS, Wowza) send empty audio/video messages around the
            // start; an empty FLV tag body is no frame, and the hub would only have
            // to skip it.
            if media.body.is_empty() {
                continue;
            }
            if tx.send(media).await.is_err() {
                conn.close().await;
                return Ok(());
            }
        }
        conn.flush(WRITE_TIMEOUT).await?;
        tokio::select! {
            r = conn.read_input() => r?,
            _ = tx.closed() => {
                conn.close().await;
                return Ok(());
            }
        }
    }
}

/// Publishes what `sub` delivers to `url` (rtmp:// or rtmps://): metadata, sequence
/// headers, frames. Returns Ok(()) when the local stream ends (subscription end), Err
/// when the remote fails or refuses, or stops reading for [`WRITE_TIMEOUT`].
pub(crate) async fn push(
    url: &str,
    opts: &RtmpOptions,
    sub: Subscription,
) -> Result<(), ProxyError> {
    push_with(url, opts, sub, WRITE_TIMEOUT).await
}

async fn push_with(
    url: &str,
    opts: &RtmpOptions,
    mut sub: Subscription,
    write_timeout: Duration,
) -> Result<(), ProxyError> {
    let mut conn = open(url, ClientMode::Publish, opts).await?;
    conn.early.clear(); // a server has nothing to send a publisher
    let mut batch: Vec<Arc<Packet>> = Vec::new();
    loop {
        while let Some(event) = conn.session.poll_event() {
            conn.check(event)?;
        }
        conn.flush(write_timeout).await?;
        tokio::select! {
            r = conn.read_input() => r?,
            r = sub.next_batch(&mut batch, MAX_BATCH) => {
                for p in batch.drain(..) {
                    send_packet(&mut conn.session, &p);
                }
                match r {
                    Ok(()) => {}
                    Err(SubscriptionEnd::StreamEnded) => {
                        tracing::debug!(remote = %conn.remote, tolerated = conn.tolerated(),
                            "local stream ended; unpublishing");
                        conn.close().await;
                        return Ok(());
                    }
                    Err(e @ SubscriptionEnd::TooSlow(_)) => {
                        return Err(ProxyError::Timeout(format!(
                            "{} takes the stream slower than it is produced ({e})",
                            conn.remote
                        )));
                    }
                }
            }
        }
    }
}

/// Queues one hub packet on the session (copied into its output buffer; the hub's
/// pre-built chunks are for its own players' chunk size and stream id, not ours).
fn send_packet(session: &mut ClientSession, p: &Packet) {
    match p.kind {
        PacketKind::Video => session.send_video(p.timestamp, &p.payload),
        PacketKind::Audio => session.send_audio(p.timestamp, &p.payload),
        // The payload is `"onMetaData", value` in AMF0; the session takes values (it
        // adds @setDataFrame). Metadata comes once per publish: decoding it is cheap.
        PacketKind::Metadata => match amf0::decode_all(&p.payload, &Amf0Limits::default()) {
            Ok(values) => session.send_metadata(&values),
            Err(e) => tracing::debug!(error = %e, "undecodable metadata not pushed"),
        },
        PacketKind::Eof => {}
    }
}

/// A parsed proxy URL.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Remote {
    host: String,
    port: u16,
    tls: bool,
    target: ClientTarget,
}

impl Remote {
    /// `host:port`, with brackets around an IPv6 host, for messages.
    fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

fn parse_url(url: &str, mode: ClientMode) -> Result<Remote, ProxyError> {
    let scheme = url
        .split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase())
        .unwrap_or_default();
    let tls = match scheme.as_str() {
        "rtmp" => false,
        "rtmps" => true,
        "rtmpt" | "rtmpts" | "rtmpe" | "rtmpte" => {
            return Err(ProxyError::Unsupported(format!(
                "{scheme}:// (RTMP over HTTP or encrypted RTMP); use rtmp:// or rtmps://"
            )))
        }
        _ => {
            return Err(ProxyError::BadUrl(format!(
                "{url}: not an rtmp:// or rtmps:// URL"
            )))
        }
    };
    let (host, port, target) = parse_rtmp_url(url, mode).ok_or_else(|| {
        ProxyError::BadUrl(format!("{url}: expected {scheme}://host[:port]/app/stream"))
    })?;
    Ok(Remote {
        host,
        port,
        tls,
        target,
    })
}

/// What [`open`] was waiting for, named in its timeout.
#[derive(Debug, Clone, Copy)]
enum Step {
    Resolve,
    TcpConnect,
    TlsHandshake,
    /// The RTMP handshake and the `connect` answer.
    RtmpConnect,
    /// `NetStream.Play.Start` / `NetStream.Publish.Start`.
    Start(bool),
}

impl Step {
    fn waiting_for(self) -> &'static str {
        match self {
            Step::Resolve => "DNS answer",
            Step::TcpConnect => "TCP connection",
            Step::TlsHandshake => "TLS handshake",
            Step::RtmpConnect => "RTMP handshake and connect answer",
            Step::Start(true) => "NetStream.Publish.Start",
            Step::Start(false) => "NetStream.Play.Start",
        }
    }
}

/// Connects and drives the session until the remote says media may flow, all within
/// `opts.connect_timeout`.
async fn open(url: &str, mode: ClientMode, opts: &RtmpOptions) -> Result<RemoteConn, ProxyError> {
    let remote = parse_url(url, mode)?;
    let deadline = Instant::now() + opts.connect_timeout;
    let mut step = Step::Resolve;
    // A `let`, not a `match` on the call: the future (which borrows `step`) must be
    // gone before the timeout arm reads `step`.
    let result = timeout_at(deadline, establish(&remote, opts, &mut step)).await;
    match result {
        Ok(conn) => conn,
        Err(_) => Err(ProxyError::Timeout(format!(
            "{}: no {} within {} ms",
            remote.addr(),
            step.waiting_for(),
            opts.connect_timeout.as_millis()
        ))),
    }
}

async fn establish(
    remote: &Remote,
    opts: &RtmpOptions,
    step: &mut Step,
) -> Result<RemoteConn, ProxyError> {
    let addr = remote.addr();
    *step = Step::Resolve;
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((remote.host.as_str(), remote.port))
        .await
        .map_err(|e| ProxyError::Connect {
            addr: addr.clone(),
            reason: format!("cannot resolve {}: {e}", remote.host),
        })?
        .collect();
    *step = Step::TcpConnect;
    let tcp = connect_any(&addr, &addrs).await?;
    // Commands and acknowledgements are small and must not wait for Nagle; media
    // goes out in large batches anyway.
    let _ = tcp.set_nodelay(true);
    let io: Box<dyn Transport> = if remote.tls {
        *step = Step::TlsHandshake;
        Box::new(tls_connect(tcp, remote, opts).await?)
    } else {
        Box::new(tcp)
    };
    *step = Step::RtmpConnect;
    let config = SessionConfig {
        out_chunk_size: OUT_CHUNK_SIZE,
        ..SessionConfig::default()
    };
    // The handshake's random bytes only have to differ between connections (the
    // digest keys are public); the std hasher's per-process random keys do that.
    let seed = {
        use std::hash::{BuildHasher, Hasher};
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    };
    let session = ClientSession::new(config, remote.target.clone(), 0, seed, true);
    let mut conn = RemoteConn {
        io,
        session,
        buf: vec![0u8; READ_BUF].into_boxed_slice(),
        remote: addr,
        early: Vec::new(),
    };
    let publish = remote.target.mode == ClientMode::Publish;
    loop {
        conn.flush(WRITE_TIMEOUT).await?;
        conn.read_input().await?;
        while let Some(event) = conn.session.poll_event() {
            match event {
                ClientEvent::Connected => *step = Step::Start(publish),
                ClientEvent::Started { .. } => {
                    // A push target's stream name is its key (a credential): not logged.
                    let stream = if publish {
                        "***"
                    } else {
                        remote.target.stream.as_str()
                    };
                    tracing::debug!(remote = %conn.remote, stream, publish, "RTMP proxy connection started");
                    return Ok(conn);
                }
                ClientEvent::Video { .. }
                | ClientEvent::Audio { .. }
                | ClientEvent::Metadata { .. } => {
                    if conn.early.len() < MAX_EARLY_EVENTS {
                        conn.early.push(event);
                    }
                }
                // Before the start, an ended stream means nothing yet (the status
                // that matters, if any, comes as an error).
                ClientEvent::StreamEnded => {}
                other => conn.check(other)?,
            }
        }
    }
}

/// Connects to the first of `addrs` that accepts, like a browser without the racing.
async fn connect_any(addr: &str, addrs: &[SocketAddr]) -> Result<TcpStream, ProxyError> {
    let mut last = None;
    for a in addrs {
        match TcpStream::connect(a).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    let reason = match last {
        None => "the name resolved to no address".to_string(),
        Some(e) => match e.kind() {
            io::ErrorKind::ConnectionRefused => "connection refused (nothing listening)".into(),
            io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
                format!("unreachable ({e})")
            }
            _ => e.to_string(),
        },
    };
    Err(ProxyError::Connect {
        addr: addr.to_string(),
        reason,
    })
}

async fn tls_connect(
    tcp: TcpStream,
    remote: &Remote,
    opts: &RtmpOptions,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ProxyError> {
    let config = tls_config(opts.extra_ca_file.as_deref())?;
    let name = ServerName::try_from(remote.host.clone()).map_err(|e| {
        ProxyError::Tls(format!(
            "{} is not a valid TLS server name: {e}",
            remote.host
        ))
    })?;
    TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| ProxyError::Tls(format!("handshake with {} failed: {e}", remote.addr())))
}

/// The client configuration: the `ring` provider (chosen explicitly, so another
/// crate enabling a second provider cannot make rustls' default ambiguous), TLS 1.2
/// and 1.3, the public roots plus `extra_ca_file`. Built per connection: proxies
/// connect rarely, and an edited CA file is picked up on the next reconnect.
fn tls_config(extra_ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, ProxyError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = extra_ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            ProxyError::Tls(format!("cannot read the CA file {}: {e}", path.display()))
        })?;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| {
                ProxyError::Tls(format!("bad PEM in the CA file {}: {e}", path.display()))
            })?;
            roots
                .add(cert)
                .map_err(|e| ProxyError::Tls(format!("unusable CA in {}: {e}", path.display())))?;
            added += 1;
        }
        if added == 0 {
            return Err(ProxyError::Tls(format!(
                "no certificate in the CA file {}",
                path.display()
            )));
        }
    }
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| ProxyError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A TCP or TLS stream.
trait Transport: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Transport for T {}

/// One connection to the remote: the socket, the session it drives, the read buffer.
struct RemoteConn {
    io: Box<dyn Transport>,
    session: ClientSession,
    buf: Box<[u8]>,
    /// `host:port`, for messages.
    remote: String,
    /// Media that arrived before the start (see [`MAX_EARLY_EVENTS`]).
    early: Vec<ClientEvent>,
}

impl RemoteConn {
    /// One read, fed to the session. Cancel-safe: the read is the only await.
    async fn read_input(&mut self) -> Result<(), ProxyError> {
        let n = match self.io.read(&mut self.buf).await {
            Ok(0) => return Err(ProxyError::Closed),
            Ok(n) => n,
            // TLS without close_notify: the remote went away all the same.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(ProxyError::Closed),
            Err(e) => return Err(ProxyError::Io(e)),
        };
        self.session
            .handle_input(&self.buf[..n])
            .map_err(|e| protocol_error(&self.remote, e))
    }

    /// Writes what the session queued (one coalesced buffer), within `limit`.
    async fn flush(&mut self, limit: Duration) -> Result<(), ProxyError> {
        let Some(bytes) = self.session.poll_output() else {
            return Ok(());
        };
        let io = &mut self.io;
        let write = async {
            io.write_all(&bytes).await?;
            // TLS keeps the last record until flushed; plain TCP ignores this.
            io.flush().await
        };
        match timeout(limit, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => Err(ProxyError::Closed),
            Ok(Err(e)) => Err(ProxyError::Io(e)),
            Err(_) => Err(ProxyError::Timeout(format!(
                "{} stopped reading: a write did not finish within {} ms",
                self.remote,
                limit.as_millis()
            ))),
        }
    }

    /// Turns an error status or command error into the matching [`ProxyError`];
    /// everything else is fine.
    fn check(&self, event: ClientEvent) -> Result<(), ProxyError> {
        match event {
            ClientEvent::Status {
                level,
                code,
                description,
            } if level == "error" => Err(status_error(&code, &description)),
            ClientEvent::Status { code, .. } => {
                tracing::trace!(remote = %self.remote, %code, "RTMP status");
                Ok(())
            }
            ClientEvent::CommandError {
                command,
                description,
            } => {
                if matches!(command.as_str(), "releaseStream" | "FCPublish") {
                    tracing::debug!(remote = %self.remote, %command, %description,
                        "remote refused an optional command; going on, as FFmpeg does");
                    return Ok(());
                }
                let what = format!("{command}: {description}");
                if description.contains("authmod=") {
                    Err(ProxyError::Auth(what))
                } else {
                    Err(ProxyError::Refused(what))
                }
            }
            _ => Ok(()),
        }
    }

    /// What the session let pass from the remote, for the end-of-stream log line;
    /// `None` (no field) when nothing was.
    fn tolerated(&self) -> Option<String> {
        let tolerated = self.session.tolerated();
        (!tolerated.is_empty()).then(|| tolerated.to_string())
    }

    /// Ends politely: closeStream or FCUnpublish, deleteStream, TLS close_notify,
    /// FIN; all bounded by [`CLOSE_TIMEOUT`], errors ignored (we are leaving).
    async fn close(mut self) {
        self.session.close();
        let _ = timeout(CLOSE_TIMEOUT, async {
            if let Some(bytes) = self.session.poll_output() {
                self.io.write_all(&bytes).await?;
            }
            self.io.shutdown().await
        })
        .await;
    }
}

fn status_error(code: &str, description: &str) -> ProxyError {
    let what = if description.is_empty() {
        code.to_string()
    } else {
        format!("{code}: {description}")
    };
    match code {
        "NetStream.Play.StreamNotFound" => ProxyError::NotFound(what),
        _ if description.contains("authmod=") => ProxyError::Auth(what),
        _ => ProxyError::Refused(what),
    }
}

/// Bad bytes from the remote, naming the RTMP layer that refused them.
fn protocol_error(remote: &str, e: SessionError) -> ProxyError {
    ProxyError::Protocol(match e {
        SessionError::Handshake(HandshakeError::BadVersion(v @ (0x15 | 0x16))) => format!(
            "RTMP handshake with {remote}: the server answered with TLS (byte 0x{v:02x}); use rtmps://"
        ),
        SessionError::Handshake(HandshakeError::BadVersion(v)) => format!(
            "RTMP handshake with {remote}: version byte 0x{v:02x} instead of 3 (not an RTMP server?)"
        ),
        SessionError::Handshake(e) => format!("RTMP handshake with {remote}: {e}"),
        SessionError::Chunk(e) => format!("RTMP chunk stream from {remote}: {e}"),
        SessionError::Message(e) => format!("RTMP message from {remote}: {e}"),
        SessionError::Protocol(e) => format!("RTMP session with {remote}: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use ferrocast_proto::amf0::Amf0Value;
    use ferrocast_proto::rtmp::chunk::encode_message;
    use ferrocast_proto::rtmp::message::{self, csid, type_id};
    use ferrocast_proto::rtmp::session::{ServerEvent, ServerSession};
    use tokio::net::TcpListener;
    use tokio::task::JoinHandle;
    use tokio_rustls::rustls::pki_types::PrivateKeyDer;
    use tokio_rustls::TlsAcceptor;

    use super::*;
    use crate::hub::{Hub, HubSettings, Origin, StreamKey};

    const WAIT: Duration = Duration::from_secs(10);

    /// A test CA (ECDSA P-256, valid 2000-2099) and a leaf for `localhost` and
    /// 127.0.0.1 that it signed; made with `openssl ca`, for the rtmps tests only.
    const TEST_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBazCCARGgAwIBAgIBATAKBggqhkjOPQQDAjAcMRowGAYDVQQDDBFmZXJyb2Nh
c3QgdGVzdCBDQTAgFw0wMDAxMDEwMDAwMDBaGA8yMDk5MTIzMTAwMDAwMFowHDEa
MBgGA1UEAwwRZmVycm9jYXN0IHRlc3QgQ0EwWTATBgcqhkjOPQIBBggqhkjOPQMB
BwNCAAQyw0zn2Htkx6wzMGdS07NbjM3vgpjKaFgi8A8rUraIm0c9Lr0njm4p3Z/D
vII7WPACkQzvih+a9sOmfBZTmzx3o0IwQDAPBgNVHRMBAf8EBTADAQH/MA4GA1Ud
DwEB/wQEAwIBBjAdBgNVHQ4EFgQU//Odt50hSVHljGVNcNuRhNPY5C0wCgYIKoZI
zj0EAwIDSAAwRQIgBWYVXTJd+93/1whPJ34cMq9t7Z5CTTwONAKcOOJSIrcCIQD4
MrGSVxlKw5fcBbgrqQcsZHVPu8ITlfR8oFH0fUGkDQ==
-----END CERTIFICATE-----
";
    const TEST_LEAF: &str = "-----BEGIN CERTIFICATE-----
MIIBszCCAVqgAwIBAgIBAjAKBggqhkjOPQQDAjAcMRowGAYDVQQDDBFmZXJyb2Nh
c3QgdGVzdCBDQTAgFw0wMDAxMDEwMDAwMDBaGA8yMDk5MTIzMTAwMDAwMFowFDES
MBAGA1UEAwwJbG9jYWxob3N0MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEquVL
rQ4vUuSHz1D1LBYLF3QQbIfjd+CDi0QKseREoLi0CsnzvWEMqde3sjYc/11tGT+o
+wn7cKddvZnNnn2D4aOBkjCBjzAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQEAwIH
gDATBgNVHSUEDDAKBggrBgEFBQcDATAaBgNVHREEEzARgglsb2NhbGhvc3SHBH8A
AAEwHwYDVR0jBBgwFoAU//Odt50hSVHljGVNcNuRhNPY5C0wHQYDVR0OBBYEFFqy
NcqhLK3K8LVHZ3I/UPZzOp8sMAoGCCqGSM49BAMCA0cAMEQCIBEqCsv+b0uYS8yn
uuL5/+e7ugm8vXtfcY5RCwNG90b1AiBh68TlSMu+BQ6OOkxAhjR6kLC79qpEj3Eb
U9ufozG+Tw==
-----END CERTIFICATE-----
";
    const TEST_LEAF_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgxGUmcbdDfxipGQGF
zyXfKgICCr318GsoHPxZqhaV2gqhRANCAASq5UutDi9S5IfPUPUsFgsXdBBsh+N3
4IOLRAqx5ESguLQKyfO9YQyp17eyNhz/XW0ZP6j7Cftwp129mc2efYPh
-----END PRIVATE KEY-----
";

    fn opts() -> RtmpOptions {
        RtmpOptions {
            connect_timeout: Duration::from_secs(5),
            extra_ca_file: None,
        }
    }

    /// How the fake server answers.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Answer {
        /// Accept play or publish (a play gets the scripted media, then the end).
        Accept,
        /// play → NetStream.Play.StreamNotFound.
        NotFound,
        /// publish → NetStream.Publish.BadName.
        BadName,
        /// connect → `_error` NetConnection.Connect.Rejected.
        RejectConnect,
        /// Accept publish, then never read again.
        AcceptThenStall,
    }

    /// What the fake server saw.
    #[derive(Debug, Default)]
    struct Seen {
        app: String,
        tc_url: Option<String>,
        stream: String,
        params: String,
        /// Metadata, audio and video of a publish, in order.
        media: Vec<ServerEvent>,
        /// Unpublish or StopPlay arrived (the client closed politely).
        stopped: bool,
    }

    fn media_fixture() -> Vec<Media> {
        let mut meta = Vec::new();
        amf0::encode(&Amf0Value::String("onMetaData".into()), &mut meta);
        amf0::encode(
            &Amf0Value::ecma_array([("width", Amf0Value::Number(32.0))]),
            &mut meta,
        );
        let m = |kind, timestamp, body: &[u8]| Media {
            kind,
            timestamp,
            body: Bytes::copy_from_slice(body),
        };
        vec![
            m(MediaKind::Metadata, 0, &meta),
            m(MediaKind::Video, 0, &[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f]),
            m(MediaKind::Audio, 0, &[0xaf, 0, 0x12, 0x10]),
            m(MediaKind::Video, 40, &[0x17, 1, 0, 0, 0, 0, 0, 0, 1, 0x65]),
            m(MediaKind::Audio, 46, &[0xaf, 1, 0x21, 0x10]),
            m(MediaKind::Video, 80, &[0x27, 1, 0, 0, 0, 0, 0, 0, 1, 0x41]),
        ]
    }

    /// One RTMP server connection on a ServerSession: answers as `answer` says and,
    /// for an accepted play, sends `media` and then the end of the stream.
    async fn fake_server<S: AsyncRead + AsyncWrite + Unpin>(
        mut sock: S,
        answer: Answer,
        media: Vec<Media>,
    ) -> Seen {
        let mut session = ServerSession::new(SessionConfig::default(), 0, 42);
        let mut seen = Seen::default();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match sock.read(&mut buf).await {
                Ok(0) | Err(_) => return seen,
                Ok(n) => n,
            };
            if session.handle_input(&buf[..n]).is_err() {
                return seen;
            }
            let mut out = BytesMut::new();
            while let Some(event) = session.poll_event() {
                match event {
                    ServerEvent::Connect { app, tc_url, .. } => {
                        seen.app = app;
                        seen.tc_url = tc_url;
                        if answer == Answer::RejectConnect {
                            // The session already queued its success answer: replace
                            // it with the `_error` an FMS-style server sends.
                            let _ = session.poll_output();
                            let info = Amf0Value::object([
                                ("level", Amf0Value::String("error".into())),
                                ("code", "NetConnection.Connect.Rejected".into()),
                                ("description", "No such application.".into()),
                            ]);
                            let payload =
                                message::command_payload("_error", 1.0, &Amf0Value::Null, &[info]);
                            encode_message(
                                &mut out,
                                csid::COMMAND,
                                0,
                                type_id::COMMAND_AMF0,
                                0,
                                &payload,
                                128,
                            );
                            sock.write_all(&out).await.unwrap();
                            out.clear();
                        }
                    }
                    ServerEvent::Play {
                        stream_id,
                        stream_name,
                        params,
                        reset,
                        ..
                    } => {
                        seen.stream = stream_name.clone();
                        seen.params = params;
                        if answer == Answer::NotFound {
                            session.play_not_found(stream_id, &stream_name);
                            continue;
                        }
                        session.accept_play(stream_id, &stream_name, reset);
                        if let Some(b) = session.poll_output() {
                            out.extend_from_slice(&b);
                        }
                        for m in &media {
                            let (cs, ty) = match m.kind {
                                MediaKind::Video => (csid::VIDEO, type_id::VIDEO),
                                MediaKind::Audio => (csid::AUDIO, type_id::AUDIO),
                                MediaKind::Metadata => (csid::DATA, type_id::DATA_AMF0),
                            };
                            let chunk = session.out_chunk_size();
                            encode_message(
                                &mut out,
                                cs,
                                m.timestamp,
                                ty,
                                stream_id,
                                &m.body,
                                chunk,
                            );
                        }
                        session.unpublish_notify(stream_id, &stream_name);
                    }
                    ServerEvent::Publish {
                        stream_id,
                        stream_name,
                        params,
                        ..
                    } => {
                        seen.stream = stream_name;
                        seen.params = params;
                        match answer {
                            Answer::BadName => session.reject_publish(
                                stream_id,
                                "NetStream.Publish.BadName",
                                "Stream already publishing.",
                            ),
                            Answer::AcceptThenStall => {
                                session.accept_publish(stream_id);
                                let b = session.poll_output().unwrap();
                                sock.write_all(&b).await.unwrap();
                                // Keep the socket open and unread.
                                std::future::pending::<()>().await;
                            }
                            _ => session.accept_publish(stream_id),
                        }
                    }
                    e @ (ServerEvent::Metadata { .. }
                    | ServerEvent::Audio { .. }
                    | ServerEvent::Video { .. }) => seen.media.push(e),
                    ServerEvent::Unpublish { .. } | ServerEvent::StopPlay { .. } => {
                        seen.stopped = true;
                    }
                }
            }
            if let Some(b) = session.poll_output() {
                out.extend_from_slice(&b);
            }
            if !out.is_empty() && sock.write_all(&out).await.is_err() {
                return seen;
            }
        }
    }

    /// A fake server for one connection on 127.0.0.1; its port and what it saw.
    async fn spawn_fake(answer: Answer, media: Vec<Media>) -> (u16, JoinHandle<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (sock, _) = listener.accept().await.unwrap();
            fake_server(sock, answer, media).await
        });
        (port, task)
    }

    /// The same behind TLS with the test leaf certificate.
    async fn spawn_tls_fake(answer: Answer, media: Vec<Media>) -> (u16, JoinHandle<Option<Seen>>) {
        let leaf = CertificateDer::from_pem_slice(TEST_LEAF.as_bytes()).unwrap();
        let key = PrivateKeyDer::from_pem_slice(TEST_LEAF_KEY.as_bytes()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf], key)
        .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (sock, _) = listener.accept().await.unwrap();
            let tls = acceptor.accept(sock).await.ok()?;
            Some(fake_server(tls, answer, media).await)
        });
        (port, task)
    }

    async fn pull_all(url: &str, opts: &RtmpOptions) -> (Result<(), ProxyError>, Vec<Media>) {
        let (tx, mut rx) = mpsc::channel(64);
        let result = timeout(WAIT, pull(url, opts, tx)).await.expect("pull ends");
        let mut got = Vec::new();
        while let Ok(m) = rx.try_recv() {
            got.push(m);
        }
        (result, got)
    }

    fn summary(media: &[Media]) -> Vec<(MediaKind, u32, Bytes)> {
        media
            .iter()
            .map(|m| (m.kind, m.timestamp, m.body.clone()))
            .collect()
    }

    #[test]
    fn urls() {
        let r = parse_url("rtmps://example.com/live/cam?token=1", ClientMode::Play).unwrap();
        assert_eq!((r.host.as_str(), r.port, r.tls), ("example.com", 443, true));
        assert_eq!(r.target.tc_url, "rtmps://example.com/live");
        assert_eq!(r.target.stream, "cam?token=1");
        let r = parse_url("rtmp://[::1]/a/b/c", ClientMode::Publish).unwrap();
        assert_eq!((r.addr(), r.tls), ("[::1]:1935".to_string(), false));
        assert_eq!(r.target.app, "a/b");
        assert!(matches!(
            parse_url("rtmpt://h/a/b", ClientMode::Play),
            Err(ProxyError::Unsupported(_))
        ));
        assert!(matches!(
            parse_url("http://h/a/b", ClientMode::Play),
            Err(ProxyError::BadUrl(_))
        ));
        assert!(matches!(
            parse_url("rtmp://h/onlyapp", ClientMode::Play),
            Err(ProxyError::BadUrl(_))
        ));
    }

    #[tokio::test]
    async fn pull_receives_the_media_until_the_remote_ends_the_stream() {
        let media = media_fixture();
        let (port, fake) = spawn_fake(Answer::Accept, media.clone()).await;
        let url = format!("rtmp://127.0.0.1:{port}/live/cam?token=abc");
        let (result, got) = pull_all(&url, &opts()).await;
        result.unwrap();
        assert_eq!(summary(&got), summary(&media));
        let seen = timeout(WAIT, fake).await.unwrap().unwrap();
        assert_eq!(seen.app, "live");
        assert_eq!(
            seen.tc_url.as_deref(),
            Some(&*format!("rtmp://127.0.0.1:{port}/live"))
        );
        assert_eq!(
            (seen.stream.as_str(), seen.params.as_str()),
            ("cam", "token=abc")
        );
        assert!(seen.stopped, "closeStream sent on the way out");
    }

    #[tokio::test]
    async fn pull_stops_when_the_receiver_is_gone() {
        let (port, _fake) = spawn_fake(Answer::Accept, media_fixture()).await;
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        let url = format!("rtmp://127.0.0.1:{port}/live/cam");
        timeout(WAIT, pull(&url, &opts(), tx))
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn stream_not_found_is_not_found() {
        let (port, _fake) = spawn_fake(Answer::NotFound, Vec::new()).await;
        let (result, _) = pull_all(&format!("rtmp://127.0.0.1:{port}/live/nope"), &opts()).await;
        match result {
            Err(ProxyError::NotFound(m)) => {
                assert!(m.contains("NetStream.Play.StreamNotFound"), "{m}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn connect_rejected_is_refused_with_the_description() {
        let (port, _fake) = spawn_fake(Answer::RejectConnect, Vec::new()).await;
        let (result, _) = pull_all(&format!("rtmp://127.0.0.1:{port}/nope/cam"), &opts()).await;
        match result {
            Err(ProxyError::Refused(m)) => {
                assert!(
                    m.contains("connect") && m.contains("No such application."),
                    "{m}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let (result, _) = pull_all(&format!("rtmp://{addr}/live/cam"), &opts()).await;
        match result {
            Err(ProxyError::Connect { addr: a, reason }) => {
                assert_eq!(a, addr.to_string());
                assert!(reason.contains("refused"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_silent_server_is_a_timeout_naming_the_step() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _hold = tokio::spawn(async move {
            let (_sock, _) = listener.accept().await.unwrap();
            std::future::pending::<()>().await;
        });
        let opts = RtmpOptions {
            connect_timeout: Duration::from_millis(300),
            extra_ca_file: None,
        };
        let (result, _) = pull_all(&format!("rtmp://{addr}/live/cam"), &opts).await;
        match result {
            Err(ProxyError::Timeout(m)) => {
                assert!(m.contains("RTMP handshake") && m.contains("300 ms"), "{m}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn garbage_is_a_protocol_error_naming_the_layer() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _server = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let _ = sock.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
            std::future::pending::<()>().await;
        });
        let (result, _) = pull_all(&format!("rtmp://{addr}/live/cam"), &opts()).await;
        match result {
            Err(ProxyError::Protocol(m)) => {
                assert!(m.contains("RTMP handshake") && m.contains("0x48"), "{m}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_server_that_closes_at_once_is_closed() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _server = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            // Read C0 + C1 first: closing with unread data would be a reset, not EOF.
            let mut c0c1 = [0u8; 1537];
            sock.read_exact(&mut c0c1).await.unwrap();
            drop(sock);
        });
        let (result, _) = pull_all(&format!("rtmp://{addr}/live/cam"), &opts()).await;
        assert!(matches!(result, Err(ProxyError::Closed)), "{result:?}");
    }

    #[tokio::test]
    async fn rtmps_with_the_extra_ca_pulls() {
        let media = media_fixture();
        let (port, fake) = spawn_tls_fake(Answer::Accept, media.clone()).await;
        let ca = std::env::temp_dir().join(format!(
            "ferrocast-proxy-test-ca-{}-{port}.pem",
            std::process::id()
        ));
        std::fs::write(&ca, TEST_CA).unwrap();
        let opts = RtmpOptions {
            connect_timeout: Duration::from_secs(5),
            extra_ca_file: Some(ca.clone()),
        };
        let (result, got) = pull_all(&format!("rtmps://localhost:{port}/live/cam"), &opts).await;
        let _ = std::fs::remove_file(&ca);
        result.unwrap();
        assert_eq!(summary(&got), summary(&media));
        let seen = timeout(WAIT, fake)
            .await
            .unwrap()
            .unwrap()
            .expect("TLS accepted");
        assert_eq!(
            seen.tc_url.as_deref(),
            Some(&*format!("rtmps://localhost:{port}/live"))
        );
    }

    #[tokio::test]
    async fn rtmps_without_the_ca_is_a_tls_error() {
        let (port, _fake) = spawn_tls_fake(Answer::Accept, Vec::new()).await;
        let (result, _) = pull_all(&format!("rtmps://localhost:{port}/live/cam"), &opts()).await;
        match result {
            Err(ProxyError::Tls(m)) => assert!(m.contains("UnknownIssuer"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    fn hub(queue_len: usize) -> Arc<Hub> {
        Hub::new(HubSettings {
            gop_cache: true,
            gop_cache_max_frames: 64,
            gop_cache_max_bytes: 1 << 24,
            queue_len,
            slow_player_timeout: Duration::from_secs(60),
            continue_push: Duration::ZERO,
            max_stream_wait: Duration::from_secs(1),
        })
    }

    fn origin() -> Origin {
        Origin {
            kind: crate::hub::OriginKind::Pull,
            peer: None,
            local: None,
            params: String::new(),
            url: String::new(),
            options: Default::default(),
        }
    }

    fn publish(p: &crate::hub::Publisher, m: &Media) {
        match m.kind {
            MediaKind::Video => p.push_video(m.timestamp, m.body.clone()),
            MediaKind::Audio => p.push_audio(m.timestamp, m.body.clone()),
            MediaKind::Metadata => p.push_metadata(m.timestamp, m.body.clone()),
        }
    }

    #[tokio::test]
    async fn push_delivers_the_frames_in_order_then_unpublishes() {
        let hub = hub(64);
        let publisher = hub
            .publish(StreamKey::new(None, "live", "src"), origin())
            .unwrap();
        let sub = hub.subscribe_internal(publisher.stream()).unwrap();
        let media = media_fixture();
        for m in &media {
            publish(&publisher, m);
        }
        drop(publisher); // the local stream ends: push returns Ok after unpublishing
        let (port, fake) = spawn_fake(Answer::Accept, Vec::new()).await;
        let url = format!("rtmp://127.0.0.1:{port}/app/out?key=1");
        timeout(WAIT, push(&url, &opts(), sub))
            .await
            .unwrap()
            .unwrap();
        let seen = timeout(WAIT, fake).await.unwrap().unwrap();
        assert_eq!(seen.app, "app");
        assert_eq!(
            (seen.stream.as_str(), seen.params.as_str()),
            ("out", "key=1")
        );
        let received: Vec<(MediaKind, u32, Bytes)> = seen
            .media
            .iter()
            .map(|e| match e {
                ServerEvent::Metadata {
                    timestamp, payload, ..
                } => (MediaKind::Metadata, *timestamp, payload.clone()),
                ServerEvent::Audio { timestamp, payload } => {
                    (MediaKind::Audio, *timestamp, payload.clone())
                }
                ServerEvent::Video { timestamp, payload } => {
                    (MediaKind::Video, *timestamp, payload.clone())
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(received, summary(&media));
        assert!(seen.stopped, "FCUnpublish sent at the end");
    }

    #[tokio::test]
    async fn push_refused_is_refused_with_the_code() {
        let hub = hub(64);
        let publisher = hub
            .publish(StreamKey::new(None, "live", "src"), origin())
            .unwrap();
        let sub = hub.subscribe_internal(publisher.stream()).unwrap();
        let (port, _fake) = spawn_fake(Answer::BadName, Vec::new()).await;
        let url = format!("rtmp://127.0.0.1:{port}/live/taken");
        match timeout(WAIT, push(&url, &opts(), sub)).await.unwrap() {
            Err(ProxyError::Refused(m)) => {
                assert!(m.contains("NetStream.Publish.BadName"), "{m}");
                assert!(m.contains("Stream already publishing."), "{m}");
            }
            other => panic!("{other:?}"),
        }
        drop(publisher);
    }

    #[tokio::test]
    async fn push_to_a_remote_that_stops_reading_times_out() {
        let hub = hub(4096);
        let publisher = hub
            .publish(StreamKey::new(None, "live", "src"), origin())
            .unwrap();
        let sub = hub.subscribe_internal(publisher.stream()).unwrap();
        let (port, _fake) = spawn_fake(Answer::AcceptThenStall, Vec::new()).await;
        let url = format!("rtmp://127.0.0.1:{port}/live/out");
        let pushing =
            tokio::spawn(
                async move { push_with(&url, &opts(), sub, Duration::from_millis(300)).await },
            );
        // 64 MB of frames: far more than the loopback socket buffers hold.
        let mut frame = vec![0u8; 256 * 1024];
        frame[..2].copy_from_slice(&[0x17, 1]);
        let frame = Bytes::from(frame);
        publisher.push_video(0, Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f]));
        let feeding = async {
            for i in 0..256u32 {
                publisher.push_video(i * 40, frame.clone());
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            std::future::pending::<()>().await;
        };
        let result = tokio::select! {
            r = pushing => r.unwrap(),
            _ = feeding => unreachable!(),
        };
        match result {
            Err(ProxyError::Timeout(m)) => assert!(m.contains("stopped reading"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
