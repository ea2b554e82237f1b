//! The stream hub: the registry of live streams and their fan-out.
//!
//! Data flows one way: a publisher pushes messages into its [`Stream`]; each message
//! is stored once as an `Arc<Packet>` (its payload a `Bytes` from the socket, its RTMP
//! chunks built once on first use) and handed to every subscriber through a bounded
//! broadcast ring. The ring's memory is per stream, not per player: a slow player
//! only makes its own cursor lag. The publisher never waits for anyone: a send into
//! the ring cannot block. A subscriber that is overrun skips to the next keyframe
//! (with the sequence headers sent again), and one that stays behind for longer than
//! `hub.slow_player_timeout_ms` is told to disconnect.
//!
//! The hub owns no sockets and does no I/O; sessions (RTMP now, HTTP-FLV and HLS
//! later) drive it.

pub mod gop;
pub mod packet;
pub mod timeline;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrocast_proto::flv;
use thiserror::Error;
use tokio::sync::{broadcast, watch};

use crate::config::Config;
use gop::GopCache;
pub use packet::{Packet, PacketKind};
use timeline::{Mapped, Timeline, Track};

pub const DEFAULT_VHOST: &str = "__defaultVhost__";

/// vhost/app/stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamKey {
    pub vhost: String,
    pub app: String,
    pub stream: String,
}

impl StreamKey {
    pub fn new(vhost: Option<&str>, app: &str, stream: &str) -> Self {
        StreamKey {
            vhost: vhost
                .filter(|v| !v.is_empty())
                .unwrap_or(DEFAULT_VHOST)
                .to_owned(),
            app: app.to_owned(),
            stream: stream.to_owned(),
        }
    }
}

impl fmt::Display for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.vhost, self.app, self.stream)
    }
}

#[derive(Debug, Clone)]
pub struct HubConfig {
    pub gop_cache: bool,
    pub gop_cache_max_frames: usize,
    pub gop_cache_max_bytes: usize,
    pub queue_len: usize,
    pub slow_player_timeout: Duration,
    pub continue_push: Duration,
    pub max_stream_wait: Duration,
}

impl HubConfig {
    pub fn from_config(c: &Config) -> Self {
        HubConfig {
            gop_cache: c.hub.gop_cache,
            gop_cache_max_frames: c.hub.gop_cache_max_frames,
            gop_cache_max_bytes: c.hub.gop_cache_max_bytes,
            queue_len: c.hub.queue_len,
            slow_player_timeout: Duration::from_millis(c.hub.slow_player_timeout_ms),
            continue_push: Duration::from_millis(c.general.continue_push_ms),
            max_stream_wait: Duration::from_millis(c.general.max_stream_wait_ms),
        }
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum PublishError {
    #[error("stream {0} is already being published")]
    AlreadyPublishing(StreamKey),
}

#[derive(Debug, Error, PartialEq)]
pub enum SubscribeError {
    #[error("stream {0} not found (waited {1:?})")]
    NotFound(StreamKey, Duration),
}

/// Why a subscription ended.
#[derive(Debug, Error, PartialEq)]
pub enum SubscriptionEnd {
    #[error("stream ended")]
    StreamEnded,
    #[error("player too slow: behind for more than {0:?}")]
    TooSlow(Duration),
}

/// The registry of streams.
pub struct Hub {
    config: HubConfig,
    streams: Mutex<HashMap<StreamKey, Arc<Stream>>>,
    /// Bumped on every publish start, so waiting players look again.
    published: watch::Sender<u64>,
    next_id: AtomicU64,
}

struct StreamState {
    /// Id of the publishing session; `None` while waiting for a publisher to return.
    publisher: Option<u64>,
    /// Bumped on every publisher change; a continue_push timer only ends the stream
    /// if the generation is still the one it was started for.
    generation: u64,
    gop: GopCache,
    timeline: Timeline,
    jump_logged: bool,
    ended: bool,
}

/// One live stream: its publisher state, GOP cache and fan-out ring.
pub struct Stream {
    pub key: StreamKey,
    pub created: Instant,
    tx: broadcast::Sender<Arc<Packet>>,
    state: Mutex<StreamState>,
    readers: AtomicUsize,
    total_readers: AtomicU64,
    bytes_in: AtomicU64,
    frames_dropped: AtomicU64,
}

impl Hub {
    pub fn new(config: HubConfig) -> Arc<Hub> {
        Arc::new(Hub {
            config,
            streams: Mutex::new(HashMap::new()),
            published: watch::channel(0).0,
            next_id: AtomicU64::new(1),
        })
    }

    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// A fresh id for a session (publisher or subscriber).
    pub fn next_session_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn find(&self, key: &StreamKey) -> Option<Arc<Stream>> {
        self.streams.lock().unwrap().get(key).cloned()
    }

    pub fn streams(&self) -> Vec<Arc<Stream>> {
        self.streams.lock().unwrap().values().cloned().collect()
    }

    /// Starts publishing `key`. A stream whose publisher left less than
    /// `continue_push` ago is taken over, keeping its players.
    pub fn publish(self: &Arc<Self>, key: StreamKey) -> Result<Publisher, PublishError> {
        let id = self.next_session_id();
        let stream = {
            let mut streams = self.streams.lock().unwrap();
            match streams.get(&key) {
                Some(existing) => {
                    let mut st = existing.state.lock().unwrap();
                    if st.publisher.is_some() || st.ended {
                        return Err(PublishError::AlreadyPublishing(key));
                    }
                    st.publisher = Some(id);
                    st.generation += 1;
                    st.timeline.restart();
                    st.jump_logged = false;
                    drop(st);
                    tracing::info!(stream = %key, "publisher returned within continue_push; players keep going");
                    existing.clone()
                }
                None => {
                    let (tx, _) = broadcast::channel(self.config.queue_len);
                    let stream = Arc::new(Stream {
                        key: key.clone(),
                        created: Instant::now(),
                        tx,
                        state: Mutex::new(StreamState {
                            publisher: Some(id),
                            generation: 0,
                            gop: GopCache::new(
                                self.config.gop_cache,
                                self.config.gop_cache_max_frames,
                                self.config.gop_cache_max_bytes,
                            ),
                            timeline: Timeline::new(),
                            jump_logged: false,
                            ended: false,
                        }),
                        readers: AtomicUsize::new(0),
                        total_readers: AtomicU64::new(0),
                        bytes_in: AtomicU64::new(0),
                        frames_dropped: AtomicU64::new(0),
                    });
                    streams.insert(key, stream.clone());
                    stream
                }
            }
        };
        self.published.send_modify(|n| *n += 1);
        Ok(Publisher {
            hub: self.clone(),
            stream,
            id,
        })
    }

    /// Subscribes to `key`, waiting up to `max_stream_wait` for it to be published.
    pub async fn subscribe(
        self: &Arc<Self>,
        key: &StreamKey,
    ) -> Result<Subscription, SubscribeError> {
        let deadline = tokio::time::Instant::now() + self.config.max_stream_wait;
        let mut published = self.published.subscribe();
        loop {
            if let Some(stream) = self.find(key) {
                if let Some(sub) = stream.subscribe(&self.config) {
                    return Ok(sub);
                }
            }
            match tokio::time::timeout_at(deadline, published.changed()).await {
                Ok(Ok(())) => continue,
                _ => {
                    return Err(SubscribeError::NotFound(
                        key.clone(),
                        self.config.max_stream_wait,
                    ))
                }
            }
        }
    }

    fn publisher_left(self: &Arc<Self>, stream: &Arc<Stream>, id: u64) {
        let generation = {
            let mut st = stream.state.lock().unwrap();
            if st.publisher != Some(id) {
                return;
            }
            st.publisher = None;
            st.generation += 1;
            // The next publisher sends its own metadata and headers.
            st.gop.clear();
            st.generation
        };
        let wait = self.config.continue_push;
        if wait.is_zero() {
            self.end_stream(stream, generation);
            return;
        }
        let hub = self.clone();
        let stream = stream.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    tokio::time::sleep(wait).await;
                    hub.end_stream(&stream, generation);
                });
            }
            Err(_) => self.end_stream(&stream, generation),
        }
    }

    /// Ends the stream for good if no publisher came back since `generation`.
    fn end_stream(&self, stream: &Arc<Stream>, generation: u64) {
        {
            let mut st = stream.state.lock().unwrap();
            if st.generation != generation || st.publisher.is_some() || st.ended {
                return;
            }
            st.ended = true;
            let _ = stream.tx.send(Arc::new(Packet::eof()));
        }
        let mut streams = self.streams.lock().unwrap();
        if streams
            .get(&stream.key)
            .is_some_and(|s| Arc::ptr_eq(s, stream))
        {
            streams.remove(&stream.key);
        }
        tracing::info!(stream = %stream.key, "stream ended");
    }
}

impl Stream {
    fn subscribe(self: &Arc<Self>, config: &HubConfig) -> Option<Subscription> {
        let st = self.state.lock().unwrap();
        if st.ended {
            return None;
        }
        let mut initial = Vec::new();
        st.gop.snapshot(&mut initial);
        let rx = self.tx.subscribe();
        drop(st);
        self.readers.fetch_add(1, Ordering::Relaxed);
        self.total_readers.fetch_add(1, Ordering::Relaxed);
        Some(Subscription {
            stream: self.clone(),
            initial: initial.into(),
            rx,
            skip_to_keyframe: false,
            behind_since: None,
            slow_timeout: config.slow_player_timeout,
            dropped: 0,
        })
    }

    pub fn readers(&self) -> usize {
        self.readers.load(Ordering::Relaxed)
    }

    pub fn total_readers(&self) -> u64 {
        self.total_readers.load(Ordering::Relaxed)
    }

    pub fn bytes_in(&self) -> u64 {
        self.bytes_in.load(Ordering::Relaxed)
    }

    pub fn frames_dropped(&self) -> u64 {
        self.frames_dropped.load(Ordering::Relaxed)
    }

    pub fn is_publishing(&self) -> bool {
        self.state.lock().unwrap().publisher.is_some()
    }
}

/// The publishing side of a stream. Dropping it starts the continue_push window.
pub struct Publisher {
    hub: Arc<Hub>,
    stream: Arc<Stream>,
    id: u64,
}

impl Publisher {
    pub fn stream(&self) -> &Arc<Stream> {
        &self.stream
    }

    pub fn push_metadata(&self, timestamp: u32, payload: Bytes) {
        self.push(
            PacketKind::Metadata,
            Track::Data,
            timestamp,
            false,
            false,
            payload,
        );
    }

    /// Pushes an FLV video tag body. Malformed headers are forwarded as non-key frames.
    pub fn push_video(&self, timestamp: u32, payload: Bytes) {
        let (key, hdr) = match flv::parse_video_tag(&payload) {
            Ok(h) => (
                h.keyframe && h.kind == flv::VideoPacketKind::Frame,
                h.kind == flv::VideoPacketKind::SequenceHeader,
            ),
            Err(_) => (false, false),
        };
        self.push(
            PacketKind::Video,
            Track::Video,
            timestamp,
            key,
            hdr,
            payload,
        );
    }

    pub fn push_audio(&self, timestamp: u32, payload: Bytes) {
        let hdr = flv::parse_audio_tag(&payload)
            .map(|h| h.sequence_header)
            .unwrap_or(false);
        self.push(
            PacketKind::Audio,
            Track::Audio,
            timestamp,
            false,
            hdr,
            payload,
        );
    }

    fn push(
        &self,
        kind: PacketKind,
        track: Track,
        timestamp: u32,
        keyframe: bool,
        header: bool,
        payload: Bytes,
    ) {
        self.stream
            .bytes_in
            .fetch_add(payload.len() as u64, Ordering::Relaxed);
        let mut st = self.stream.state.lock().unwrap();
        if st.publisher != Some(self.id) {
            return;
        }
        let ts = match st.timeline.map(track, timestamp) {
            Mapped::Normal(t) => t,
            Mapped::Jump { output, from, to } => {
                if !st.jump_logged {
                    st.jump_logged = true;
                    tracing::warn!(stream = %self.stream.key, from, to,
                        "publisher timestamps jumped; players get a continuous timeline (logged once per publish)");
                }
                output
            }
        };
        let packet = Arc::new(Packet::new(kind, ts, keyframe, header, payload));
        st.gop.push(&packet);
        // Under the state lock so a new subscriber's GOP snapshot and its ring cursor
        // agree: nothing is missed or sent twice.
        let _ = self.stream.tx.send(packet);
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.hub.publisher_left(&self.stream, self.id);
    }
}

/// One subscriber's view of a stream.
pub struct Subscription {
    stream: Arc<Stream>,
    initial: std::collections::VecDeque<Arc<Packet>>,
    rx: broadcast::Receiver<Arc<Packet>>,
    skip_to_keyframe: bool,
    behind_since: Option<Instant>,
    slow_timeout: Duration,
    dropped: u64,
}

impl Subscription {
    pub fn stream(&self) -> &Arc<Stream> {
        &self.stream
    }

    /// Messages this subscriber skipped because it fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Waits for at least one packet, then appends everything available now (at most
    /// `max` packets) to `out`.
    pub async fn next_batch(
        &mut self,
        out: &mut Vec<Arc<Packet>>,
        max: usize,
    ) -> Result<(), SubscriptionEnd> {
        let start = out.len();
        while out.len() - start < max {
            if let Some(p) = self.initial.pop_front() {
                out.push(p);
                continue;
            }
            let received = if out.len() > start {
                match self.rx.try_recv() {
                    Ok(p) => Ok(p),
                    Err(broadcast::error::TryRecvError::Empty) => break,
                    Err(broadcast::error::TryRecvError::Lagged(n)) => Err(n),
                    Err(broadcast::error::TryRecvError::Closed) => {
                        return Err(SubscriptionEnd::StreamEnded)
                    }
                }
            } else {
                match self.rx.recv().await {
                    Ok(p) => Ok(p),
                    Err(broadcast::error::RecvError::Lagged(n)) => Err(n),
                    Err(broadcast::error::RecvError::Closed) => {
                        return Err(SubscriptionEnd::StreamEnded)
                    }
                }
            };
            match received {
                Ok(p) => {
                    if p.kind == PacketKind::Eof {
                        if out.len() > start {
                            // Deliver what we have; report the end on the next call.
                            self.initial.push_back(p);
                            break;
                        }
                        return Err(SubscriptionEnd::StreamEnded);
                    }
                    if self.skip_to_keyframe {
                        if p.kind == PacketKind::Video && p.keyframe {
                            self.skip_to_keyframe = false;
                            // Headers again, in case the skipped part changed them.
                            let st = self.stream.state.lock().unwrap();
                            out.extend(st.gop.headers());
                        } else if !(p.sequence_header || p.kind == PacketKind::Metadata) {
                            self.dropped += 1;
                            self.stream.frames_dropped.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    }
                    out.push(p);
                }
                Err(lagged) => {
                    self.dropped += lagged;
                    self.stream
                        .frames_dropped
                        .fetch_add(lagged, Ordering::Relaxed);
                    let now = Instant::now();
                    match self.behind_since {
                        Some(since) if now.duration_since(since) > self.slow_timeout => {
                            return Err(SubscriptionEnd::TooSlow(self.slow_timeout));
                        }
                        Some(_) => {}
                        None => self.behind_since = Some(now),
                    }
                    let has_video = self.stream.state.lock().unwrap().gop.has_video();
                    self.skip_to_keyframe = has_video;
                }
            }
        }
        if self.rx.is_empty() && self.initial.is_empty() {
            self.behind_since = None;
        }
        Ok(())
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.stream.readers.fetch_sub(1, Ordering::Relaxed);
    }
}
