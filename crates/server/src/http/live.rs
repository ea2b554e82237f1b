//! Live HTTP delivery of a hub stream: HTTP-FLV, WebSocket-FLV and HTTP-TS.
//!
//! HTTP-FLV and WS-FLV send each packet's FLV tag, built once per stream
//! ([`Packet::flv_tag`]) and shared by every viewer, after the FLV file header and
//! the GOP cache. Writes are coalesced like RTMP's (`hub.flush_interval_ms`).
//!
//! A viewer registered in the hub's session list ([`subscribe_viewer`], then the
//! `*_session` body functions) is listed as a player of its stream and ends when the
//! API kicks it. Every viewer logs one close line with its reason when it ends.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ws::{Message, WebSocket};
use bytes::{Bytes, BytesMut};
use ferrocast_proto::flv;
use ferrocast_proto::mpegts::TsMuxer;
use futures_util::stream;
use thiserror::Error;
use tokio::sync::watch;

use crate::hook::{Client, Hooks};
use crate::hub::{
    Hub, Packet, PacketKind, Role, SessionGuard, StreamKey, SubscribeError, Subscription,
    SubscriptionEnd, KICKED_REASON,
};
use crate::metrics::{self, PlayerGauge, Protocol};

use super::serve::ConnWatch;

/// Most packets taken from the ring per write.
const MAX_BATCH: usize = 1024;

/// Why a viewer got no stream.
#[derive(Debug, Error)]
pub(super) enum ViewerRefused {
    #[error(transparent)]
    NotFound(#[from] SubscribeError),
    #[error("{}", KICKED_REASON)]
    Kicked,
}

/// Subscribes a registered viewer to `key`, waiting for the stream like
/// [`Hub::subscribe`], unless the session is kicked meanwhile.
pub(super) async fn subscribe_viewer(
    hub: &Arc<Hub>,
    key: &StreamKey,
    session: &SessionGuard,
) -> Result<Subscription, ViewerRefused> {
    tokio::select! {
        biased;
        _ = session.kicked() => Err(ViewerRefused::Kicked),
        r = hub.subscribe(key) => Ok(r?),
    }
}

/// What a live body produces, one piece at a time.
struct Feed {
    sub: Subscription,
    pending: VecDeque<Bytes>,
    batch: Vec<Arc<Packet>>,
    flush_interval: Duration,
    shutdown: watch::Receiver<bool>,
    first: bool,
    format: Format,
    _gauge: PlayerGauge,
    /// The viewer in the hub's session list, when registered.
    session: Option<SessionGuard>,
    protocol: &'static str,
    started: Instant,
    /// Why the feed ended, once it did; logged when it is dropped (a body dropped
    /// before its end means the client went away).
    reason: Option<String>,
    /// Where the session's end is reported (hook.on_flow_report), and as whom.
    flow: Flow,
    /// Bytes handed to the body.
    bytes: u64,
    /// The HTTP connection of an HTTP-FLV/TS body, which closes it when a write
    /// makes no progress for `slow_timeout`.
    conn: Option<ConnWatch>,
    slow_timeout: Duration,
}

/// How a viewer is written to: the coalescing interval (`hub.flush_interval_ms`),
/// and how a peer that stopped reading is found: after `slow_timeout`
/// (`hub.slow_player_timeout_ms`) without write progress, watched by its
/// connection (`conn`, for an HTTP body) or by timing each send (a WebSocket).
pub(super) struct Pace {
    pub flush_interval: Duration,
    pub slow_timeout: Duration,
    pub conn: Option<ConnWatch>,
}

/// The hooks a viewer's end is reported to, and the viewer as the hooks know it.
pub(super) type Flow = Option<(Arc<Hooks>, Client)>;

enum Format {
    Flv,
    Ts(Box<TsMuxer>),
}

impl Feed {
    fn new(
        session: Option<SessionGuard>,
        sub: Subscription,
        format: Format,
        protocol: Protocol,
        shutdown: watch::Receiver<bool>,
        flow: Flow,
        Pace {
            flush_interval,
            slow_timeout,
            conn,
        }: Pace,
    ) -> Self {
        if let Some(c) = &conn {
            c.watch_stalls(slow_timeout);
        }
        if let Some(s) = &session {
            s.set_stream(Role::Player, Some(sub.stream().key.clone()));
        }
        let mut pending = VecDeque::new();
        if let Format::Flv = format {
            let (audio, video) = sub.stream().tracks();
            pending.push_back(Bytes::copy_from_slice(&flv::file_header(audio, video)));
        }
        Feed {
            sub,
            pending,
            batch: Vec::new(),
            flush_interval,
            shutdown,
            first: true,
            format,
            _gauge: PlayerGauge::new(protocol),
            session,
            protocol: match protocol {
                Protocol::Rtmp => "rtmp",
                Protocol::HttpFlv => "http-flv",
                Protocol::WsFlv => "ws-flv",
                Protocol::HttpTs => "http-ts",
            },
            started: Instant::now(),
            reason: None,
            flow,
            bytes: 0,
            conn,
            slow_timeout,
        }
    }

    /// Why a viewer whose peer stopped reading is closed (RTMP players' words).
    fn stalled_reason(&self) -> String {
        format!(
            "peer stopped reading: no write progress for {} ms",
            self.slow_timeout.as_millis()
        )
    }

    /// Ends the feed for `reason` (the first reason given is the one logged).
    fn end(&mut self, reason: impl Into<String>) {
        if self.reason.is_none() {
            self.reason = Some(reason.into());
        }
    }

    /// The next piece of the body; `None` when the stream (or the server) ends.
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if self.reason.is_some() {
                return None;
            }
            if let Some(b) = self.pending.pop_front() {
                return Some(b);
            }
            if !self.first && !self.flush_interval.is_zero() {
                tokio::time::sleep(self.flush_interval).await;
            }
            self.first = false;
            let session = &self.session;
            let kicked = async {
                match session {
                    Some(s) => s.kicked().await,
                    None => std::future::pending().await,
                }
            };
            let result = tokio::select! {
                biased;
                _ = self.shutdown.changed() => {
                    self.end("server shutting down");
                    return None;
                }
                _ = kicked => {
                    self.end(KICKED_REASON);
                    return None;
                }
                r = self.sub.next_batch(&mut self.batch, MAX_BATCH) => r,
            };
            for p in self.batch.drain(..) {
                match &mut self.format {
                    Format::Flv => self.pending.push_back(p.flv_tag().clone()),
                    Format::Ts(mux) => {
                        let mut out = BytesMut::new();
                        let r = match p.kind {
                            PacketKind::Video => mux
                                .write_video(p.timestamp, &p.payload, &mut out)
                                .map(|_| ()),
                            PacketKind::Audio => mux
                                .write_audio(p.timestamp, &p.payload, &mut out)
                                .map(|_| ()),
                            PacketKind::Metadata | PacketKind::Eof => Ok(()),
                        };
                        if let Err(e) = r {
                            tracing::debug!(stream = %self.sub.stream().key, error = %e, "HTTP-TS: frame dropped");
                        }
                        if !out.is_empty() {
                            self.pending.push_back(out.freeze());
                        }
                    }
                }
            }
            // One atomic add per batch, not per tag: bytes handed to the body.
            let queued: usize = self.pending.iter().map(Bytes::len).sum();
            self.sub.stream().add_bytes_out(queued as u64);
            self.bytes += queued as u64;
            if let Err(e) = result {
                if self.pending.is_empty() {
                    self.end(match e {
                        SubscriptionEnd::StreamEnded => "stream ended".to_owned(),
                        e @ SubscriptionEnd::TooSlow(_) => e.to_string(),
                    });
                    return None;
                }
            }
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        if let Some(c) = &self.conn {
            if c.stalled() && self.reason.is_none() {
                self.reason = Some(self.stalled_reason());
            }
            // A keep-alive connection's next response is not a live one.
            c.watch_stalls(Duration::ZERO);
        }
        let reason = self.reason.take().unwrap_or_else(|| {
            if self.first {
                // A HEAD request, or a client gone before the first write.
                "peer closed the connection before streaming began".to_owned()
            } else {
                "peer closed the connection".to_owned()
            }
        });
        metrics::session_closed(self.protocol, &reason);
        if let Some((hooks, client)) = &self.flow {
            hooks.flow_report(client, true, self.bytes, self.started.elapsed());
        }
        let peer = self
            .session
            .as_ref()
            .map(|s| s.peer().to_string())
            .unwrap_or_default();
        tracing::info!(
            peer,
            session = self.session.as_ref().map(SessionGuard::id),
            stream = %self.sub.stream().key,
            protocol = self.protocol,
            frames_dropped = self.sub.dropped(),
            duration_ms = self.started.elapsed().as_millis() as u64,
            reason,
            "live HTTP viewer closed"
        );
    }
}

/// A chunked HTTP body streaming FLV to a registered viewer: it ends when the
/// session is kicked, and the session is deregistered when the body is dropped.
pub(super) fn flv_session_body(
    session: SessionGuard,
    sub: Subscription,
    shutdown: watch::Receiver<bool>,
    flow: Flow,
    pace: Pace,
) -> Body {
    body(Feed::new(
        Some(session),
        sub,
        Format::Flv,
        Protocol::HttpFlv,
        shutdown,
        flow,
        pace,
    ))
}

/// A chunked HTTP body streaming MPEG-TS (muxed for this viewer) to a registered
/// viewer (see [`flv_session_body`]).
pub(super) fn ts_session_body(
    session: SessionGuard,
    sub: Subscription,
    shutdown: watch::Receiver<bool>,
    flow: Flow,
    pace: Pace,
) -> Body {
    body(Feed::new(
        Some(session),
        sub,
        Format::Ts(Box::new(TsMuxer::new())),
        Protocol::HttpTs,
        shutdown,
        flow,
        pace,
    ))
}

fn body(feed: Feed) -> Body {
    let s = stream::unfold(feed, |mut feed| async move {
        feed.next()
            .await
            .map(|b| (Ok::<Bytes, std::io::Error>(b), feed))
    });
    Body::from_stream(s)
}

/// Streams FLV over a WebSocket, one binary message per FLV tag, to a registered
/// viewer: the WebSocket is closed when the session is kicked.
pub(super) async fn ws_flv_session(
    socket: WebSocket,
    session: SessionGuard,
    sub: Subscription,
    shutdown: watch::Receiver<bool>,
    flow: Flow,
    pace: Pace,
) {
    let feed = Feed::new(
        Some(session),
        sub,
        Format::Flv,
        Protocol::WsFlv,
        shutdown,
        flow,
        pace,
    );
    ws_flv_feed(socket, feed).await;
}

async fn ws_flv_feed(mut socket: WebSocket, mut feed: Feed) {
    loop {
        tokio::select! {
            piece = feed.next() => match piece {
                Some(b) => {
                    // A send finishes when the message is written to the socket: one
                    // that takes longer than the slow-player timeout made no progress.
                    match tokio::time::timeout(feed.slow_timeout, socket.send(Message::Binary(b))).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            feed.end(format!("write error: {e}"));
                            break;
                        }
                        Err(_) => {
                            feed.end(feed.stalled_reason());
                            // The close frame would wait on the same full socket.
                            return;
                        }
                    }
                }
                None => break,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None => {
                    feed.end("peer closed the connection");
                    break;
                }
                Some(Err(e)) => {
                    feed.end(format!("read error: {e}"));
                    break;
                }
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = tokio::time::timeout(feed.slow_timeout, socket.send(Message::Close(None))).await;
    // Dropping the feed logs the close line and deregisters the session.
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::hub::{HubSettings, Origin};

    fn hub() -> Arc<Hub> {
        Hub::new(HubSettings {
            gop_cache: true,
            gop_cache_max_frames: 16,
            gop_cache_max_bytes: 1 << 20,
            queue_len: 64,
            slow_player_timeout: Duration::from_secs(5),
            continue_push: Duration::ZERO,
            max_stream_wait: Duration::from_secs(5),
        })
    }

    fn origin() -> Origin {
        Origin {
            kind: crate::hub::OriginKind::RtmpPush,
            peer: None,
            local: None,
            params: String::new(),
            url: String::new(),
            options: Default::default(),
        }
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    const AVC_HEADER: &[u8] = &[0x17, 0x00, 0, 0, 0, 1, 0x64, 0, 0x1e, 0xff];
    const KEY: &[u8] = &[0x17, 0x01, 0, 0, 0, 0, 0, 0, 1, 0x65];

    #[tokio::test]
    async fn a_kicked_viewer_is_listed_as_player_then_its_feed_ends() {
        let hub = hub();
        let key = StreamKey::new(None, "live", "k");
        let publisher = hub.publish(key.clone(), origin()).unwrap();
        publisher.push_video(0, Bytes::from_static(AVC_HEADER));
        publisher.push_video(0, Bytes::from_static(KEY));
        let session = hub.register_session(addr(4000), addr(8080), "http-flv");
        let id = session.id();
        let sub = subscribe_viewer(&hub, &key, &session).await.unwrap();
        let (_stop, shutdown) = watch::channel(false);
        let mut feed = Feed::new(
            Some(session),
            sub,
            Format::Flv,
            Protocol::HttpFlv,
            shutdown,
            None,
            Pace {
                flush_interval: Duration::ZERO,
                slow_timeout: Duration::from_secs(5),
                conn: None,
            },
        );
        let listed = hub.sessions();
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].id, listed[0].role), (id, Role::Player));
        assert_eq!(listed[0].key.as_ref(), Some(&key));
        // FLV header, then the cached header and keyframe tags.
        for _ in 0..3 {
            assert!(feed.next().await.is_some());
        }
        assert!(hub.kick_session(id));
        let end = tokio::time::timeout(Duration::from_secs(1), feed.next()).await;
        assert_eq!(end.expect("feed ends promptly after a kick"), None);
        assert_eq!(feed.reason.as_deref(), Some(KICKED_REASON));
        assert!(feed.next().await.is_none());
        drop(feed);
        assert!(hub.sessions().is_empty(), "dropping the feed deregisters");
        assert_eq!(publisher.stream().readers(), 0);
    }

    #[tokio::test]
    async fn a_viewer_kicked_while_waiting_for_its_stream_is_refused() {
        let hub = hub();
        let key = StreamKey::new(None, "live", "later");
        let session = Arc::new(hub.register_session(addr(4001), addr(8080), "http-ts"));
        let waiting = {
            let (hub, key, session) = (hub.clone(), key.clone(), session.clone());
            tokio::spawn(async move { subscribe_viewer(&hub, &key, &session).await.map(|_| ()) })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(hub.sessions()[0].role, Role::Unknown);
        assert!(hub.kick_session(session.id()));
        let r = tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("refused promptly")
            .unwrap();
        assert!(matches!(r, Err(ViewerRefused::Kicked)), "{r:?}");
    }
}
