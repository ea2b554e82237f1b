//! Live HTTP delivery of a hub stream: HTTP-FLV, WebSocket-FLV and HTTP-TS.
//!
//! HTTP-FLV and WS-FLV send each packet's FLV tag, built once per stream
//! ([`Packet::flv_tag`]) and shared by every viewer, after the FLV file header and
//! the GOP cache. Writes are coalesced like RTMP's (`hub.flush_interval_ms`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::{Message, WebSocket};
use bytes::{Bytes, BytesMut};
use ferrocast_proto::flv;
use ferrocast_proto::mpegts::TsMuxer;
use futures_util::stream;
use tokio::sync::watch;

use crate::hub::{Packet, PacketKind, Subscription};
use crate::metrics::{PlayerGauge, Protocol};

/// Most packets taken from the ring per write.
const MAX_BATCH: usize = 1024;

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
}

enum Format {
    Flv,
    Ts(Box<TsMuxer>),
}

impl Feed {
    fn new(
        sub: Subscription,
        format: Format,
        protocol: Protocol,
        flush_interval: Duration,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
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
        }
    }

    /// The next piece of the body; `None` when the stream (or the server) ends.
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some(b) = self.pending.pop_front() {
                return Some(b);
            }
            if !self.first && !self.flush_interval.is_zero() {
                tokio::time::sleep(self.flush_interval).await;
            }
            self.first = false;
            let result = tokio::select! {
                r = self.sub.next_batch(&mut self.batch, MAX_BATCH) => r,
                _ = self.shutdown.changed() => return None,
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
            if result.is_err() && self.pending.is_empty() {
                return None;
            }
        }
    }
}

/// A chunked HTTP body streaming FLV.
pub fn flv_body(
    sub: Subscription,
    flush_interval: Duration,
    shutdown: watch::Receiver<bool>,
) -> Body {
    body(Feed::new(
        sub,
        Format::Flv,
        Protocol::HttpFlv,
        flush_interval,
        shutdown,
    ))
}

/// A chunked HTTP body streaming MPEG-TS (muxed for this viewer).
pub fn ts_body(
    sub: Subscription,
    flush_interval: Duration,
    shutdown: watch::Receiver<bool>,
) -> Body {
    body(Feed::new(
        sub,
        Format::Ts(Box::new(TsMuxer::new())),
        Protocol::HttpTs,
        flush_interval,
        shutdown,
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

/// Streams FLV over a WebSocket, one binary message per FLV tag.
pub async fn ws_flv(
    mut socket: WebSocket,
    sub: Subscription,
    flush_interval: Duration,
    shutdown: watch::Receiver<bool>,
) {
    let key = sub.stream().key.clone();
    let mut feed = Feed::new(sub, Format::Flv, Protocol::WsFlv, flush_interval, shutdown);
    loop {
        tokio::select! {
            piece = feed.next() => match piece {
                Some(b) => {
                    if socket.send(Message::Binary(b)).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = socket.send(Message::Close(None)).await;
    tracing::info!(stream = %key, "WS-FLV viewer closed");
}
