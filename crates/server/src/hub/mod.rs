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
//! The hub owns no sockets and does no I/O. Publishers (RTMP sessions, pull proxies)
//! and subscribers (RTMP and HTTP-FLV/WS-FLV/HTTP-TS viewers, the live HLS muxer,
//! recordings, transcoders, push proxies) drive it; services attach themselves to
//! new streams through [`Hub::add_on_new_stream`] and to wanted-but-absent streams
//! through [`Hub::add_on_demand`], so the hub imports none of them.

pub mod gop;
pub mod info;
pub mod packet;
pub mod session;
pub mod timeline;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrocast_proto::flv;
use thiserror::Error;
use tokio::sync::{broadcast, watch};

use crate::config::Config;
use gop::GopCache;
pub use packet::{Packet, PacketKind};
use session::SessionRegistry;
pub use session::{Role, SessionGuard, SessionInfo, KICKED_REASON};
use timeline::{Mapped, Timeline, Track};

pub use crate::config::DEFAULT_VHOST;

/// How a stream's media arrives. The API shows it as ZLMediaKit's originType number
/// and name; those live in `hook/` (shared with `api/`), not here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginKind {
    /// A client published it over RTMP (an encoder, OBS, ffmpeg, our transcoder).
    RtmpPush,
    /// A pull proxy plays it from a remote URL.
    Pull,
}

/// Who publishes a stream (ZLMediaKit's originType / originSock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub kind: OriginKind,
    pub peer: Option<std::net::SocketAddr>,
    pub local: Option<std::net::SocketAddr>,
    /// The publish URL's query (`?token=...`), without the `?`.
    pub params: String,
    pub url: String,
    /// What the publish gate (hook.on_publish) set for this stream.
    pub options: PublishOptions,
}

/// Per-stream options a publish gate may set (ZLMediaKit's on_publish answer);
/// `None` keeps the configured default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishOptions {
    pub enable_hls: Option<bool>,
    pub enable_mp4: Option<bool>,
    pub mp4_max_second: Option<u64>,
    pub continue_push_ms: Option<u64>,
}

/// vhost/app/stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamKey {
    pub vhost: String,
    pub app: String,
    pub stream: String,
}

impl StreamKey {
    /// Why this app/stream name cannot be published, if it cannot. Names become
    /// paths of recordings and disk HLS, so no empty, `.` or `..` part, no leading
    /// `/`, no backslash or control character, and at most 256 bytes each. A `/`
    /// inside a stream name (nested directories) is allowed.
    pub fn check_names(&self) -> Result<(), &'static str> {
        for name in [&self.app, &self.stream, &self.vhost] {
            if name.is_empty() || name.len() > 256 {
                return Err("empty or longer than 256 bytes");
            }
            if name.chars().any(|c| c.is_control() || c == '\\') {
                return Err("control character or backslash");
            }
            if name
                .split('/')
                .any(|part| part.is_empty() || part == "." || part == "..")
            {
                return Err("empty, '.' or '..' path part");
            }
        }
        if self.app.contains('/') {
            return Err("'/' in the app name");
        }
        // Signed URLs join vhost/app/stream with '/': a '/' in the vhost would let
        // one signature name two keys.
        if self.vhost.contains('/') {
            return Err("'/' in the vhost name");
        }
        Ok(())
    }

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
pub struct HubSettings {
    pub gop_cache: bool,
    pub gop_cache_max_frames: usize,
    pub gop_cache_max_bytes: usize,
    pub queue_len: usize,
    pub slow_player_timeout: Duration,
    pub continue_push: Duration,
    pub max_stream_wait: Duration,
}

impl HubSettings {
    pub fn from_config(c: &Config) -> Self {
        HubSettings {
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
    #[error("stream {0} is ended by its operator")]
    Closing(StreamKey),
    #[error("invalid stream name {0}: {1}")]
    BadName(StreamKey, &'static str),
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
    config: HubSettings,
    streams: Mutex<HashMap<StreamKey, Arc<Stream>>>,
    /// Bumped on every publish start, so waiting players look again.
    published: watch::Sender<u64>,
    next_id: AtomicU64,
    /// Called (outside the hub's locks) for each newly created stream: how
    /// per-stream services such as the HLS muxer and the recorder attach themselves.
    /// Installed at start-up, read once per new stream.
    on_new_stream: RwLock<Vec<NewStreamHook>>,
    /// Called when a player asks for a stream that does not exist (yet): how an
    /// on-demand pull proxy learns that it is wanted.
    on_demand: RwLock<Vec<DemandHook>>,
    /// Called (outside the hub's locks) when a stream has ended for good.
    on_stream_end: RwLock<Vec<NewStreamHook>>,
    /// Every client connection, for the API (list, kick).
    sessions: Arc<SessionRegistry>,
}

type NewStreamHook = Arc<dyn Fn(&Arc<Stream>) + Send + Sync>;
type DemandHook = Arc<dyn Fn(&StreamKey) + Send + Sync>;

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
    info: info::MediaInfo,
    origin: Option<Origin>,
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
    bytes_out: AtomicU64,
    frames_dropped: AtomicU64,
    /// Wall-clock creation time (unix seconds), ZLMediaKit's createStamp.
    pub created_unix: u64,
    /// Set when the stream is closed by the operator: its publisher disconnects.
    kicked: watch::Sender<bool>,
    /// The session id of the current (or last) publisher: a publisher replaced by a
    /// takeover sees another id and disconnects.
    publisher_id: watch::Sender<u64>,
    /// (instant, bytes_in) of the last speed sample, and the speed then, bytes/s.
    speed: Mutex<(Instant, u64, u64)>,
}

/// What the API shows of a stream.
#[derive(Debug, Clone)]
pub struct StreamSnapshot {
    pub info: info::MediaInfo,
    pub origin: Option<Origin>,
    pub publishing: bool,
}

impl Hub {
    pub fn new(config: HubSettings) -> Arc<Hub> {
        Arc::new(Hub {
            config,
            streams: Mutex::new(HashMap::new()),
            published: watch::channel(0).0,
            next_id: AtomicU64::new(1),
            on_new_stream: RwLock::new(Vec::new()),
            on_demand: RwLock::new(Vec::new()),
            on_stream_end: RwLock::new(Vec::new()),
            sessions: Arc::default(),
        })
    }

    /// Adds a hook called for each newly created stream (not for a publisher taking
    /// back a stream within continue_push), in the order the hooks were added,
    /// outside the hub's locks. Meant for start-up.
    pub fn add_on_new_stream(&self, hook: impl Fn(&Arc<Stream>) + Send + Sync + 'static) {
        self.on_new_stream
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(hook));
    }

    /// Adds a hook called (outside the hub's locks) when a player starts waiting for
    /// a stream that is not published.
    pub fn add_on_demand(&self, hook: impl Fn(&StreamKey) + Send + Sync + 'static) {
        self.on_demand
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(hook));
    }

    /// Adds a hook called (outside the hub's locks) when a stream ends for good
    /// (continue_push over, or closed), after it left the registry.
    pub fn add_on_stream_end(&self, hook: impl Fn(&Arc<Stream>) + Send + Sync + 'static) {
        self.on_stream_end
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(hook));
    }

    fn demand(&self, key: &StreamKey) {
        let hooks: Vec<DemandHook> = self
            .on_demand
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for h in hooks {
            h(key);
        }
    }

    /// Registers a client connection (`schema`: "rtmp", "http-flv", "ws-flv",
    /// "http-ts") under a fresh [`Hub::next_session_id`]; it is listed until the
    /// guard is dropped.
    pub fn register_session(
        &self,
        peer: std::net::SocketAddr,
        local: std::net::SocketAddr,
        schema: &'static str,
    ) -> SessionGuard {
        self.sessions
            .register(self.next_session_id(), peer, local, schema)
    }

    /// Every registered session, by id.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        self.sessions.list()
    }

    /// Asks session `id` to end ([`SessionGuard::kicked`] resolves; the session
    /// closes with [`KICKED_REASON`]). False if there is no such session.
    pub fn kick_session(&self, id: u64) -> bool {
        self.sessions.kick(id)
    }

    /// Subscribes a server-internal consumer (the HLS muxer, a recorder) to a stream
    /// already in hand: no waiting, and not counted as a viewer.
    pub fn subscribe_internal(&self, stream: &Arc<Stream>) -> Option<Subscription> {
        stream.subscribe(&self.config, false)
    }

    /// Closes a stream now, whatever continue_push says: its publisher is
    /// disconnected and its viewers get the end of the stream.
    pub fn close_stream(&self, stream: &Arc<Stream>) {
        stream.kicked.send_replace(true);
        let generation = {
            let mut st = stream.state.lock().unwrap();
            st.publisher = None;
            st.generation += 1;
            st.generation
        };
        self.end_stream(stream, generation);
    }

    pub fn config(&self) -> &HubSettings {
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
    pub fn publish(
        self: &Arc<Self>,
        key: StreamKey,
        origin: Origin,
    ) -> Result<Publisher, PublishError> {
        self.publish_with(key, origin, false)
    }

    /// [`Hub::publish`], and with `takeover` a live publisher of `key` is replaced:
    /// its [`Publisher::kicked`] resolves (its connection should close) and its
    /// further pushes are ignored; the players keep going. The caller decides who
    /// may do that (a publisher that proved its right again).
    pub fn publish_with(
        self: &Arc<Self>,
        key: StreamKey,
        origin: Origin,
        takeover: bool,
    ) -> Result<Publisher, PublishError> {
        if let Err(why) = key.check_names() {
            return Err(PublishError::BadName(key, why));
        }
        let id = self.next_session_id();
        let mut created = false;
        let stream = {
            let mut streams = self.streams.lock().unwrap();
            // A stream that just ended but is not yet out of the map is replaced.
            let live = streams
                .get(&key)
                .filter(|s| !s.state.lock().unwrap().ended)
                .cloned();
            match live {
                Some(existing) => {
                    if *existing.kicked.borrow() {
                        return Err(PublishError::Closing(key));
                    }
                    let mut st = existing.state.lock().unwrap();
                    let replaced = st.publisher;
                    if replaced.is_some() && !takeover {
                        return Err(PublishError::AlreadyPublishing(key));
                    }
                    st.publisher = Some(id);
                    st.generation += 1;
                    st.timeline.restart();
                    if replaced.is_some() {
                        // The new publisher sends its own metadata and headers.
                        st.gop.clear();
                    }
                    st.origin = Some(origin);
                    drop(st);
                    existing.publisher_id.send_replace(id);
                    if replaced.is_some() {
                        tracing::info!(stream = %key, "publisher taken over by a new connection; players keep going");
                    } else {
                        tracing::info!(stream = %key, "publisher returned within continue_push; players keep going");
                    }
                    existing
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
                            info: info::MediaInfo::default(),
                            origin: Some(origin),
                        }),
                        readers: AtomicUsize::new(0),
                        total_readers: AtomicU64::new(0),
                        bytes_in: AtomicU64::new(0),
                        bytes_out: AtomicU64::new(0),
                        frames_dropped: AtomicU64::new(0),
                        created_unix: std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map(|d| d.as_secs())
                            .unwrap_or(0),
                        kicked: watch::channel(false).0,
                        publisher_id: watch::channel(id).0,
                        speed: Mutex::new((Instant::now(), 0, 0)),
                    });
                    streams.insert(key, stream.clone());
                    created = true;
                    stream
                }
            }
        };
        if created {
            // Copied out so a hook runs with no hub lock held, this one included.
            let hooks = self
                .on_new_stream
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            for hook in &hooks {
                hook(&stream);
            }
        }
        self.published.send_modify(|n| *n += 1);
        let kicked = stream.kicked.subscribe();
        let current = stream.publisher_id.subscribe();
        Ok(Publisher {
            hub: self.clone(),
            stream,
            id,
            kicked,
            current,
        })
    }

    /// Subscribes to `key`, waiting up to `max_stream_wait` for it to be published.
    pub async fn subscribe(
        self: &Arc<Self>,
        key: &StreamKey,
    ) -> Result<Subscription, SubscribeError> {
        let deadline = tokio::time::Instant::now() + self.config.max_stream_wait;
        let mut published = self.published.subscribe();
        let mut asked = false;
        loop {
            if let Some(stream) = self.find(key) {
                if let Some(sub) = stream.subscribe(&self.config, true) {
                    return Ok(sub);
                }
            }
            if !asked {
                asked = true;
                self.demand(key);
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
        let wait = stream
            .state
            .lock()
            .unwrap()
            .origin
            .as_ref()
            .and_then(|o| o.options.continue_push_ms)
            .map(Duration::from_millis)
            .unwrap_or(self.config.continue_push);
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
        {
            let mut streams = self.streams.lock().unwrap();
            if streams
                .get(&stream.key)
                .is_some_and(|s| Arc::ptr_eq(s, stream))
            {
                streams.remove(&stream.key);
            }
        }
        tracing::info!(stream = %stream.key, "stream ended");
        let hooks = self
            .on_stream_end
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for hook in &hooks {
            hook(stream);
        }
    }
}

impl Stream {
    fn subscribe(self: &Arc<Self>, config: &HubSettings, counted: bool) -> Option<Subscription> {
        let st = self.state.lock().unwrap();
        if st.ended {
            return None;
        }
        let mut initial = Vec::new();
        st.gop.snapshot(&mut initial);
        let skip = if st.gop.has_video() && !initial.iter().any(|p| p.keyframe) {
            Skip::ToFirstKeyframe
        } else {
            Skip::No
        };
        let rx = self.tx.subscribe();
        drop(st);
        if counted {
            self.readers.fetch_add(1, Ordering::Relaxed);
            self.total_readers.fetch_add(1, Ordering::Relaxed);
        }
        Some(Subscription {
            stream: self.clone(),
            initial: initial.into(),
            rx,
            skip,
            behind_since: None,
            last_lag: None,
            slow_timeout: config.slow_player_timeout,
            dropped: 0,
            ended: false,
            counted,
        })
    }

    pub fn readers(&self) -> usize {
        self.readers.load(Ordering::Relaxed)
    }

    /// Counts a viewer that holds no subscription (an HLS session reads segments
    /// from the HLS store) in [`Stream::readers`] until the guard is dropped.
    pub fn reader_guard(self: &Arc<Self>) -> ReaderGuard {
        self.readers.fetch_add(1, Ordering::Relaxed);
        self.total_readers.fetch_add(1, Ordering::Relaxed);
        ReaderGuard(self.clone())
    }

    /// What the publish gate set for this stream.
    pub fn options(&self) -> PublishOptions {
        self.state
            .lock()
            .unwrap()
            .origin
            .as_ref()
            .map(|o| o.options.clone())
            .unwrap_or_default()
    }

    pub fn total_readers(&self) -> u64 {
        self.total_readers.load(Ordering::Relaxed)
    }

    pub fn bytes_in(&self) -> u64 {
        self.bytes_in.load(Ordering::Relaxed)
    }

    /// Bytes written to this stream's viewers (all protocols).
    pub fn bytes_out(&self) -> u64 {
        self.bytes_out.load(Ordering::Relaxed)
    }

    pub fn add_bytes_out(&self, n: u64) {
        self.bytes_out.fetch_add(n, Ordering::Relaxed);
    }

    pub fn frames_dropped(&self) -> u64 {
        self.frames_dropped.load(Ordering::Relaxed)
    }

    /// (has audio, has video) as far as the stream's sequence headers tell; both
    /// true while nothing is known yet (FLV players then expect both).
    pub fn tracks(&self) -> (bool, bool) {
        let st = self.state.lock().unwrap();
        let (audio, video) = (st.gop.audio_header.is_some(), st.gop.has_video());
        if !audio && !video {
            (true, true)
        } else {
            (audio, video)
        }
    }

    pub fn snapshot(&self) -> StreamSnapshot {
        let st = self.state.lock().unwrap();
        StreamSnapshot {
            info: st.info.clone(),
            origin: st.origin.clone(),
            publishing: st.publisher.is_some(),
        }
    }

    /// Incoming bytes per second, over the last second or more.
    pub fn bytes_speed(&self) -> u64 {
        let mut sp = self.speed.lock().unwrap();
        let now = Instant::now();
        let total = self.bytes_in();
        let elapsed = now.duration_since(sp.0);
        if elapsed >= Duration::from_secs(1) {
            sp.2 = ((total - sp.1) as f64 / elapsed.as_secs_f64()) as u64;
            *sp = (now, total, sp.2);
        }
        sp.2
    }

    pub fn is_publishing(&self) -> bool {
        self.state.lock().unwrap().publisher.is_some()
    }
}

/// The tag header a push parsed (once), handed to the track statistics.
enum Parsed {
    Video(Option<flv::VideoTagHeader>),
    Audio(Option<flv::AudioTagHeader>),
    None,
}

/// Why a [`Publisher`] must leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublisherEnd {
    /// The operator closed the stream.
    Closed,
    /// Another connection took the stream over (`publish.takeover`).
    TakenOver,
}

/// The publishing side of a stream. Dropping it starts the continue_push window.
pub struct Publisher {
    hub: Arc<Hub>,
    stream: Arc<Stream>,
    id: u64,
    kicked: watch::Receiver<bool>,
    current: watch::Receiver<u64>,
}

impl Publisher {
    pub fn stream(&self) -> &Arc<Stream> {
        &self.stream
    }

    /// Resolves when the operator closes the stream (close_streams) or another
    /// publisher took it over: the publishing session should then disconnect.
    pub async fn kicked(&mut self) -> PublisherEnd {
        let id = self.id;
        tokio::select! {
            _ = self.kicked.wait_for(|k| *k) => PublisherEnd::Closed,
            _ = self.current.wait_for(|c| *c != id) => PublisherEnd::TakenOver,
        }
    }

    pub fn push_metadata(&self, timestamp: u32, payload: Bytes) {
        self.push(
            PacketKind::Metadata,
            timestamp,
            false,
            false,
            payload,
            Parsed::None,
        );
    }

    /// Pushes an FLV video tag body. Malformed headers are forwarded as non-key frames.
    pub fn push_video(&self, timestamp: u32, payload: Bytes) {
        // Parsed once here; the keyframe flag and the track info both come from it.
        let tag = flv::parse_video_tag(&payload).ok();
        let key = tag.is_some_and(|h| h.keyframe && h.kind == flv::VideoPacketKind::Frame);
        let hdr = tag.is_some_and(|h| h.kind == flv::VideoPacketKind::SequenceHeader);
        self.push(
            PacketKind::Video,
            timestamp,
            key,
            hdr,
            payload,
            Parsed::Video(tag),
        );
    }

    pub fn push_audio(&self, timestamp: u32, payload: Bytes) {
        let tag = flv::parse_audio_tag(&payload).ok();
        let hdr = tag.is_some_and(|h| h.sequence_header);
        self.push(
            PacketKind::Audio,
            timestamp,
            false,
            hdr,
            payload,
            Parsed::Audio(tag),
        );
    }

    fn push(
        &self,
        kind: PacketKind,
        timestamp: u32,
        keyframe: bool,
        header: bool,
        payload: Bytes,
        parsed: Parsed,
    ) {
        let track = match kind {
            PacketKind::Video => Track::Video,
            PacketKind::Audio => Track::Audio,
            PacketKind::Metadata | PacketKind::Eof => Track::Data,
        };
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
        match &parsed {
            Parsed::Video(Some(tag)) => st.info.on_video(ts, &payload, tag, keyframe, header),
            Parsed::Audio(Some(tag)) => st.info.on_audio(ts, &payload, tag, header),
            _ => {}
        }
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

/// Why a subscriber is dropping media until the next video keyframe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    No,
    /// Joined when the GOP cache held no keyframe (cache off, overflowed, or the
    /// stream between publishers): its first video frame must still be a keyframe.
    ToFirstKeyframe,
    /// Overrun by the ring: resume on a keyframe, with the headers sent again.
    AfterLag,
}

/// One subscriber's view of a stream.
pub struct Subscription {
    stream: Arc<Stream>,
    initial: std::collections::VecDeque<Arc<Packet>>,
    rx: broadcast::Receiver<Arc<Packet>>,
    skip: Skip,
    /// Start of the current episode of being behind (lagging or skipping).
    behind_since: Option<Instant>,
    last_lag: Option<Instant>,
    slow_timeout: Duration,
    dropped: u64,
    /// The end of the stream was seen while a batch was being delivered.
    ended: bool,
    /// Counted as a viewer (readerCount).
    counted: bool,
}

impl Subscription {
    pub fn stream(&self) -> &Arc<Stream> {
        &self.stream
    }

    /// Messages this subscriber skipped because it fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn count_dropped(&mut self, n: u64) {
        self.dropped += n;
        self.stream.frames_dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// A player is "behind" from its first lag until it has gone a whole
    /// `slow_timeout` without lagging; behind for longer than that, it is too slow.
    fn note_lag(&mut self) -> Result<(), SubscriptionEnd> {
        // Internal consumers (HLS muxer, recordings) skip to the next keyframe when
        // they fall behind but are never dropped: a slow disk must not end a recording.
        if !self.counted {
            return Ok(());
        }
        let now = Instant::now();
        let new_episode = match self.last_lag {
            Some(last) => now.duration_since(last) > self.slow_timeout,
            None => true,
        };
        self.last_lag = Some(now);
        match self.behind_since {
            Some(since) if !new_episode => {
                if now.duration_since(since) > self.slow_timeout {
                    return Err(SubscriptionEnd::TooSlow(self.slow_timeout));
                }
            }
            _ => self.behind_since = Some(now),
        }
        Ok(())
    }

    /// Waits for at least one packet, then appends everything available now (at most
    /// `max` packets) to `out`. Cancel-safe: it only awaits while `out` is unchanged.
    pub async fn next_batch(
        &mut self,
        out: &mut Vec<Arc<Packet>>,
        max: usize,
    ) -> Result<(), SubscriptionEnd> {
        if self.ended {
            return Err(SubscriptionEnd::StreamEnded);
        }
        let start = out.len();
        while out.len() - start < max {
            let received = if let Some(p) = self.initial.pop_front() {
                Ok(p)
            } else if out.len() > start {
                match self.rx.try_recv() {
                    Ok(p) => Ok(p),
                    Err(broadcast::error::TryRecvError::Empty) => break,
                    Err(broadcast::error::TryRecvError::Lagged(n)) => Err(n),
                    Err(broadcast::error::TryRecvError::Closed) => {
                        self.ended = true;
                        break;
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
            let p = match received {
                Ok(p) => p,
                Err(lagged) => {
                    self.count_dropped(lagged);
                    self.note_lag()?;
                    let has_video = self.stream.state.lock().unwrap().gop.has_video();
                    if has_video {
                        self.skip = Skip::AfterLag;
                    }
                    continue;
                }
            };
            if p.kind == PacketKind::Eof {
                if out.len() > start {
                    // Deliver what we have; report the end on the next call.
                    self.ended = true;
                    break;
                }
                return Err(SubscriptionEnd::StreamEnded);
            }
            if self.skip != Skip::No && p.kind != PacketKind::Metadata && !p.sequence_header {
                if !(p.kind == PacketKind::Video && p.keyframe) {
                    if self.skip == Skip::AfterLag {
                        self.count_dropped(1);
                        // A stream whose keyframes stopped coming must not keep a
                        // player connected and starved for ever.
                        if self
                            .behind_since
                            .is_some_and(|since| since.elapsed() > self.slow_timeout)
                        {
                            return Err(SubscriptionEnd::TooSlow(self.slow_timeout));
                        }
                    }
                    continue;
                }
                if self.skip == Skip::AfterLag {
                    // The headers again, stamped with the keyframe's time so the
                    // player's timestamps never go back.
                    let st = self.stream.state.lock().unwrap();
                    out.extend(st.gop.headers().map(|h| {
                        Arc::new(Packet::new(
                            h.kind,
                            p.timestamp,
                            false,
                            true,
                            h.payload.clone(),
                        ))
                    }));
                }
                self.skip = Skip::No;
            }
            out.push(p);
        }
        if self.behind_since.is_some() && self.skip == Skip::No {
            let caught_up = self.initial.is_empty() && self.rx.is_empty();
            let calm = self
                .last_lag
                .is_some_and(|l| l.elapsed() > self.slow_timeout);
            if caught_up && calm {
                self.behind_since = None;
            }
        }
        Ok(())
    }
}

/// A viewer counted in [`Stream::readers`] ([`Stream::reader_guard`]).
pub struct ReaderGuard(Arc<Stream>);

impl ReaderGuard {
    pub fn stream(&self) -> &Arc<Stream> {
        &self.0
    }
}

impl Drop for ReaderGuard {
    fn drop(&mut self) {
        self.0.readers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if self.counted {
            self.stream.readers.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn names_that_would_escape_a_directory_are_refused() {
        let k = |app: &str, stream: &str| StreamKey::new(None, app, stream);
        assert!(k("live", "cam1").check_names().is_ok());
        assert!(k("live", "match/cam-2").check_names().is_ok());
        for (app, stream) in [
            ("live", "../../etc/x"),
            ("live", "/etc/x"),
            ("live", "a/../b"),
            ("..", "x"),
            ("a/b", "x"),
            ("live", ""),
            ("live", "a\\b"),
            ("live", "a\u{0}b"),
        ] {
            assert!(k(app, stream).check_names().is_err(), "{app}/{stream}");
        }
        let hub = Hub::new(HubSettings::from_config(&crate::config::Config::default()));
        assert!(matches!(
            hub.publish(k("live", "../x"), test_origin()),
            Err(PublishError::BadName(..))
        ));
    }
    use super::*;

    fn config(continue_push_ms: u64, queue_len: usize) -> HubSettings {
        HubSettings {
            gop_cache: true,
            gop_cache_max_frames: 4,
            gop_cache_max_bytes: 1 << 20,
            queue_len,
            slow_player_timeout: Duration::from_millis(200),
            continue_push: Duration::from_millis(continue_push_ms),
            max_stream_wait: Duration::from_millis(300),
        }
    }

    fn key() -> StreamKey {
        StreamKey::new(None, "live", "t")
    }

    fn test_origin() -> Origin {
        Origin {
            kind: OriginKind::RtmpPush,
            peer: None,
            local: None,
            params: String::new(),
            url: String::new(),
            options: Default::default(),
        }
    }

    // FLV video tag bodies: AVC sequence header, keyframe, inter frame.
    const AVC_HEADER: &[u8] = &[0x17, 0x00, 0, 0, 0, 1, 0x64, 0, 0x1e, 0xff];
    const KEY: &[u8] = &[0x17, 0x01, 0, 0, 0, 0, 0, 0, 1, 0x65];
    const INTER: &[u8] = &[0x27, 0x01, 0, 0, 0, 0, 0, 0, 1, 0x41];

    async fn batch(sub: &mut Subscription) -> Result<Vec<Arc<Packet>>, SubscriptionEnd> {
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(2), sub.next_batch(&mut out, 1024))
            .await
            .expect("no batch within 2 s")?;
        Ok(out)
    }

    #[tokio::test]
    async fn end_of_stream_in_a_batch_with_media_ends_the_next_call() {
        let hub = Hub::new(config(0, 64));
        let publisher = hub.publish(key(), test_origin()).unwrap();
        publisher.push_video(0, Bytes::from_static(AVC_HEADER));
        publisher.push_video(0, Bytes::from_static(KEY));
        let mut sub = hub.subscribe(&key()).await.unwrap();
        publisher.push_video(40, Bytes::from_static(INTER));
        drop(publisher); // continue_push 0: ends at once
        let got = batch(&mut sub).await.unwrap();
        assert!(got.iter().all(|p| p.kind != PacketKind::Eof));
        assert_eq!(got.len(), 3);
        assert_eq!(
            batch(&mut sub).await.unwrap_err(),
            SubscriptionEnd::StreamEnded
        );
        assert!(hub.find(&key()).is_none());
    }

    #[tokio::test]
    async fn first_video_frame_is_a_keyframe_even_without_a_cached_gop() {
        let hub = Hub::new(config(0, 64));
        let publisher = hub.publish(key(), test_origin()).unwrap();
        publisher.push_video(0, Bytes::from_static(AVC_HEADER));
        publisher.push_video(0, Bytes::from_static(KEY));
        for i in 1..8 {
            publisher.push_video(i * 40, Bytes::from_static(INTER)); // overflows the cache (4 frames)
        }
        let mut sub = hub.subscribe(&key()).await.unwrap();
        publisher.push_video(400, Bytes::from_static(INTER));
        publisher.push_video(440, Bytes::from_static(KEY));
        let got = batch(&mut sub).await.unwrap();
        let first_frame = got
            .iter()
            .find(|p| p.kind == PacketKind::Video && !p.sequence_header)
            .unwrap();
        assert!(first_frame.keyframe);
        assert_eq!(first_frame.timestamp, 440);
    }

    #[tokio::test]
    async fn second_publisher_refused_and_returning_publisher_keeps_players() {
        let hub = Hub::new(config(1000, 64));
        let first = hub.publish(key(), test_origin()).unwrap();
        assert_eq!(
            hub.publish(key(), test_origin()).err(),
            Some(PublishError::AlreadyPublishing(key()))
        );
        first.push_video(0, Bytes::from_static(AVC_HEADER));
        first.push_video(1000, Bytes::from_static(KEY));
        let mut sub = hub.subscribe(&key()).await.unwrap();
        assert_eq!(batch(&mut sub).await.unwrap().len(), 2);
        drop(first);
        let again = hub.publish(key(), test_origin()).unwrap();
        again.push_video(0, Bytes::from_static(AVC_HEADER));
        again.push_video(0, Bytes::from_static(KEY));
        let got = batch(&mut sub).await.unwrap();
        assert_eq!(got.len(), 2);
        assert!(
            got[1].timestamp > 1000,
            "timeline continues: {}",
            got[1].timestamp
        );
        assert_eq!(sub.stream().readers(), 1);
    }

    #[test]
    fn every_new_stream_hook_is_called_once_per_new_stream() {
        let hub = Hub::new(config(1000, 64));
        let calls = Arc::new(Mutex::new(Vec::new()));
        for name in ["hls", "record"] {
            let calls = calls.clone();
            hub.add_on_new_stream(move |s| calls.lock().unwrap().push((name, s.key.clone())));
        }
        let calls2 = calls.clone();
        hub.add_on_new_stream(move |s| calls2.lock().unwrap().push(("alias", s.key.clone())));
        let first = hub.publish(key(), test_origin()).unwrap();
        drop(first); // continue_push 1 s, and no runtime: the stream ends at once
        let _again = hub.publish(key(), test_origin()).unwrap();
        let calls = calls.lock().unwrap();
        let names: Vec<_> = calls.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["hls", "record", "alias", "hls", "record", "alias"]);
        assert!(calls.iter().all(|(_, k)| *k == key()));
    }

    #[tokio::test]
    async fn player_waits_for_a_stream_then_gets_not_found() {
        let hub = Hub::new(config(0, 64));
        let h = hub.clone();
        let waiter = tokio::spawn(async move { h.subscribe(&key()).await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _p = hub.publish(key(), test_origin()).unwrap();
        assert!(waiter.await.unwrap().is_ok());
        let other = StreamKey::new(None, "live", "never");
        assert!(matches!(
            hub.subscribe(&other).await,
            Err(SubscribeError::NotFound(..))
        ));
    }

    #[tokio::test]
    async fn overrun_player_skips_to_a_keyframe_then_too_slow_is_disconnected() {
        let hub = Hub::new(config(0, 16));
        let publisher = hub.publish(key(), test_origin()).unwrap();
        publisher.push_video(0, Bytes::from_static(AVC_HEADER));
        publisher.push_video(0, Bytes::from_static(KEY));
        let mut sub = hub.subscribe(&key()).await.unwrap();
        assert_eq!(batch(&mut sub).await.unwrap().len(), 2);
        // Overrun the 16-slot ring without the player reading.
        for i in 1..40 {
            publisher.push_video(i * 40, Bytes::from_static(INTER));
        }
        publisher.push_video(1600, Bytes::from_static(KEY));
        publisher.push_video(1640, Bytes::from_static(INTER));
        let got = batch(&mut sub).await.unwrap();
        assert!(sub.dropped() > 0);
        let frames: Vec<_> = got.iter().filter(|p| !p.sequence_header).collect();
        assert!(
            frames[0].keyframe && frames[0].timestamp == 1600,
            "{frames:?}"
        );
        assert!(
            got[0].sequence_header && got[0].timestamp == 1600,
            "headers resent, restamped"
        );
        // Behind again and again for longer than slow_player_timeout (200 ms): dropped.
        let mut ended = None;
        for round in 0..20 {
            for i in 0..40 {
                publisher.push_video(2000 + round * 2000 + i * 40, Bytes::from_static(INTER));
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
            let mut out = Vec::new();
            // Skipping players get nothing until a keyframe: a timeout is expected.
            let r = tokio::time::timeout(Duration::from_millis(50), sub.next_batch(&mut out, 1024))
                .await;
            if let Ok(Err(e)) = r {
                ended = Some(e);
                break;
            }
        }
        assert!(
            matches!(ended, Some(SubscriptionEnd::TooSlow(_))),
            "{ended:?}"
        );
    }
}
