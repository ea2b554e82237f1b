//! ZLMediaKit-compatible webhooks: a POST of a JSON body per event, with ZLMediaKit's
//! field names (`server/WebHook.cpp`), so a receiver written for ZLMediaKit works
//! unchanged. The bodies are built in [`body`] (pure, unit-tested field by field);
//! the HTTP exchange is [`client`].
//!
//! Two kinds of hook, two disciplines:
//! * **Gates** (`on_publish`, `on_play`) decide: the caller awaits the answer. They run
//!   concurrently, each on its own connection, so a thousand players joining at once
//!   do not queue behind one another; a semaphore of `hook.max_concurrent` bounds the
//!   sockets and the receiver's load, and waiting for a slot counts in
//!   `hook.timeout_sec` (the client's wait is bounded by one number). `{"code":0}`
//!   allows; an integer code other than 0 refuses with the receiver's `msg`. A gate is
//!   not retried: a retry would multiply the client's wait, and the client itself
//!   retries.
//! * **Events** (everything else) inform: they go into a bounded queue
//!   (`hook.queue_len`) that [`WORKERS`] senders drain, and the caller never waits: a
//!   full queue drops the event and counts it (`ferrocast_hook_dropped_total`). A
//!   receiver that is slow or down must never slow a publisher or fill the memory; a
//!   dropped keepalive or flow report is a smaller harm than a stalled media path.
//!   A failed event is retried `hook.retry` times, `hook.retry_delay_ms` apart (as
//!   ZLMediaKit), but not one that got an answer with a code: that receiver heard it.
//!
//! **A gate that fails** (timeout, connection refused, non-200, an answer that is not
//! a JSON object with an integer `code`) follows `hook.on_error`: "deny" by default,
//! because a gate exists to keep someone out, and a receiver an attacker can knock
//! over (or a misconfigured URL) must not open the door; "allow" is for operators
//! who put availability first. Either way the log names the hook, the stream and the
//! cause. (ZLMediaKit denies too: its failed hook is an error string to the invoker.)
//! A gate's answer without a `code` is garbage, as in ZLMediaKit; an event's answer
//! without one is taken as meant (`{"close":true}` closes), which ZLMediaKit would
//! reject, so receivers written for it (that send `"code":0`) behave the same.
//!
//! **Schemas.** ZLMediaKit's `schema` is the muxer a client reads: FLV over HTTP or
//! WebSocket comes from the RTMP muxer ("rtmp"), HTTP-TS from the TS muxer ("ts"),
//! HLS "hls"; its `protocol` is the transport ("rtmp", "rtmps", "http", "ws", ...).
//! A stream registers (`on_stream_changed`) once per schema it is served in: "rtmp",
//! "ts", and "hls" when live HLS is on for it. The registration waits (up to
//! [`TRACKS_WAIT`]) for the first media, because ZLMediaKit registers a source when its
//! tracks are ready and receivers read `tracks` from it.
//!
//! **on_stream_none_reader**: one task per stream polls its reader count; after
//! `general.stream_none_reader_delay_ms` at zero it asks the receiver once, and
//! `{"close":true}` closes the stream. It asks again only after a viewer came and
//! left. Internal subscribers (HLS muxer, recorders, pushers) are not readers.
//!
//! **Shutdown**: [`Hooks::shutdown`] lets queued events (the last unregistrations and
//! recordings) go out for a moment, then sends on_server_exited and waits for it.
//!
//! This module imports config, redact, hub and metrics, and is called by the inputs
//! and outputs above it; it never touches a socket of a client.

mod body;

/// ZLMediaKit's numbers for codecs and origins, one definition for the hooks and the API.
pub(crate) use body::{codec_id, origin_type};
mod client;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::task::JoinHandle;

use crate::config::{Config, HookConfig};
use crate::hub::{Hub, OriginKind, PublishOptions, Stream, StreamKey};
use body::Body;
use client::HttpClient;

/// Events sent at once from the queue: enough that one slow receiver URL does not
/// hold up the others for long, few enough to be gentle with a receiver.
const WORKERS: usize = 4;

/// How long a new stream's registration waits for its first media (tracks).
const TRACKS_WAIT: Duration = Duration::from_secs(3);

/// How long [`Hooks::shutdown`] lets queued events go out before on_server_exited.
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// A client about to publish or play, or whose session ended.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    /// Our protocol name: "rtmp", "rtmps", "http-flv", "ws-flv", "http-ts", "hls".
    pub protocol: &'static str,
    pub key: StreamKey,
    /// The URL's query, without the `?`.
    pub params: String,
    pub peer: SocketAddr,
    /// The session id (the hub's session registry id; an HLS session's id).
    pub session_id: u64,
}

/// A gate refused, or failed with `hook.on_error = "deny"`.
#[derive(Debug, Clone, Error)]
#[error("{reason}")]
pub(crate) struct Refused {
    /// What the client is told (the receiver's `msg`, or a generic line).
    pub msg: String,
    /// What the log says: the hook, the stream, the cause.
    pub reason: String,
}

/// A recording file that was finished (on_record_mp4 / on_record_ts).
#[derive(Debug, Clone)]
pub(crate) struct RecordedFile {
    pub key: StreamKey,
    pub file_path: std::path::PathBuf,
    pub file_size: u64,
    /// Unix seconds of the first frame.
    pub start_time: u64,
    /// Seconds of media.
    pub time_len: f64,
    /// The file's path under the record directory (for the `/record/...` URL).
    pub url_path: String,
    /// The stream's recording directory (`{root}/{app}/{stream}`), ZLMediaKit's `folder`.
    pub folder: std::path::PathBuf,
}

/// The hooks, by their config key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Publish,
    Play,
    StreamChanged,
    StreamNoneReader,
    StreamNotFound,
    RecordMp4,
    RecordTs,
    FlowReport,
    ServerStarted,
    ServerExited,
    ServerKeepalive,
}

impl Event {
    fn name(self) -> &'static str {
        match self {
            Event::Publish => "on_publish",
            Event::Play => "on_play",
            Event::StreamChanged => "on_stream_changed",
            Event::StreamNoneReader => "on_stream_none_reader",
            Event::StreamNotFound => "on_stream_not_found",
            Event::RecordMp4 => "on_record_mp4",
            Event::RecordTs => "on_record_ts",
            Event::FlowReport => "on_flow_report",
            Event::ServerStarted => "on_server_started",
            Event::ServerExited => "on_server_exited",
            Event::ServerKeepalive => "on_server_keepalive",
        }
    }

    fn url(self, c: &HookConfig) -> &str {
        match self {
            Event::Publish => &c.on_publish,
            Event::Play => &c.on_play,
            Event::StreamChanged => &c.on_stream_changed,
            Event::StreamNoneReader => &c.on_stream_none_reader,
            Event::StreamNotFound => &c.on_stream_not_found,
            Event::RecordMp4 => &c.on_record_mp4,
            Event::RecordTs => &c.on_record_ts,
            Event::FlowReport => &c.on_flow_report,
            Event::ServerStarted => &c.on_server_started,
            Event::ServerExited => &c.on_server_exited,
            Event::ServerKeepalive => &c.on_server_keepalive,
        }
    }
}

/// How one request went.
enum Outcome {
    /// Answered with code 0 (or, for an event, no code).
    Answered(body::Answer),
    /// Answered with another code.
    Refused(body::Answer),
    Failed {
        timeout: bool,
        cause: String,
    },
}

impl Outcome {
    fn label(&self) -> &'static str {
        match self {
            Outcome::Answered(_) => "ok",
            Outcome::Refused(_) => "refused",
            Outcome::Failed { timeout: true, .. } => "timeout",
            Outcome::Failed { .. } => "error",
        }
    }
}

/// A live stream and the signal its watcher gets when it ends.
type StreamEnd = (Arc<Stream>, watch::Sender<bool>);

/// A stream's identity while it is held: its address.
fn stream_id(stream: &Arc<Stream>) -> usize {
    Arc::as_ptr(stream) as usize
}

/// A queued event; `answer` gets the receiver's answer (`None`: none usable).
struct Job {
    event: Event,
    body: Body,
    vhost: Option<String>,
    answer: Option<oneshot::Sender<Option<Body>>>,
}

pub(crate) struct Hooks {
    config: HookConfig,
    hub: Arc<Hub>,
    none_reader_delay: Duration,
    hls_enabled: bool,
    started_body: Body,
    timeout: Duration,
    client: HttpClient,
    gate_slots: Semaphore,
    queue: mpsc::Sender<Job>,
    queue_rx: Mutex<Option<mpsc::Receiver<Job>>>,
    /// Events queued or being sent (for the drain at shutdown).
    pending: AtomicUsize,
    /// Per-stream watcher tasks alive (their last unregistration is still to come).
    watching: AtomicUsize,
    dropped: AtomicU64,
    index: AtomicU64,
    /// Each live stream's end signal, set by the hub's end hook. Keyed by the
    /// stream's address, not its name: a new stream of the same name may be created
    /// before the old one's end hook ran.
    ends: Mutex<HashMap<usize, StreamEnd>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    shut: AtomicBool,
}

impl Hooks {
    /// Takes the whole config: besides `[hook]`, the none-reader delay
    /// (`general.stream_none_reader_delay_ms`), whether live HLS is on (which schemas
    /// a stream registers) and the flattened config of on_server_started.
    pub(crate) fn new(config: &Config, hub: Arc<Hub>) -> Arc<Hooks> {
        let (tx, rx) = mpsc::channel(config.hook.queue_len.max(1));
        Arc::new(Hooks {
            config: config.hook.clone(),
            hub,
            none_reader_delay: Duration::from_millis(config.general.stream_none_reader_delay_ms),
            hls_enabled: config.hls.enabled,
            started_body: if config.hook.on_server_started.is_empty() {
                Body::new()
            } else {
                body::server_started(config)
            },
            timeout: Duration::from_secs(config.hook.timeout_sec.max(1)),
            client: HttpClient::new(),
            gate_slots: Semaphore::new(config.hook.max_concurrent.max(1)),
            queue: tx,
            queue_rx: Mutex::new(Some(rx)),
            pending: AtomicUsize::new(0),
            watching: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            index: AtomicU64::new(0),
            ends: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
            shut: AtomicBool::new(false),
        })
    }

    fn on(&self, event: Event) -> bool {
        self.config.enable && !event.url(&self.config).is_empty()
    }

    /// Starts the queue's senders, the per-stream watchers (on_stream_changed,
    /// on_stream_none_reader), the keepalive timer, and sends on_server_started.
    /// Call once, inside the runtime.
    pub(crate) fn start(self: &Arc<Self>) {
        if !self.config.enable {
            return;
        }
        let Some(mut rx) = self.queue_rx.lock().unwrap().take() else {
            return;
        };
        let mut tasks = Vec::new();
        let me = self.clone();
        tasks.push(tokio::spawn(async move {
            let workers = Arc::new(Semaphore::new(WORKERS));
            while let Some(job) = rx.recv().await {
                let Ok(permit) = workers.clone().acquire_owned().await else {
                    break;
                };
                let me = me.clone();
                tokio::spawn(async move {
                    me.deliver(job).await;
                    me.pending.fetch_sub(1, Ordering::AcqRel);
                    drop(permit);
                });
            }
        }));
        if self.on(Event::StreamChanged) || self.on(Event::StreamNoneReader) {
            let me = self.clone();
            self.hub.add_on_new_stream(move |stream| {
                let (tx, rx) = watch::channel(false);
                me.ends
                    .lock()
                    .unwrap()
                    .insert(stream_id(stream), (stream.clone(), tx));
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    me.watching.fetch_add(1, Ordering::AcqRel);
                    let me = me.clone();
                    let stream = stream.clone();
                    rt.spawn(async move {
                        me.watch_stream(&stream, rx).await;
                        me.watching.fetch_sub(1, Ordering::AcqRel);
                    });
                }
            });
            let me = self.clone();
            self.hub.add_on_stream_end(move |stream| {
                // The entry holds the stream, so its address is not reused meanwhile.
                if let Some((_, tx)) = me.ends.lock().unwrap().remove(&stream_id(stream)) {
                    tx.send_replace(true);
                }
            });
        }
        if self.on(Event::ServerKeepalive) {
            let me = self.clone();
            let period = Duration::from_secs(self.config.alive_interval_sec.max(1));
            tasks.push(tokio::spawn(async move {
                let mut tick =
                    tokio::time::interval_at(tokio::time::Instant::now() + period, period);
                loop {
                    tick.tick().await;
                    let streams = me.hub.streams();
                    let readers = streams.iter().map(|s| s.readers()).sum();
                    let b = body::keepalive(streams.len(), readers, me.hub.sessions().len());
                    me.enqueue(Event::ServerKeepalive, b, None, None);
                }
            }));
        }
        self.tasks.lock().unwrap().extend(tasks);
        if self.on(Event::ServerStarted) {
            self.enqueue(Event::ServerStarted, self.started_body.clone(), None, None);
        }
    }

    /// Lets queued events go out (up to [`DRAIN_GRACE`]), sends on_server_exited and
    /// waits for its answer (up to `hook.timeout_sec`), then stops the hook tasks.
    pub(crate) async fn shutdown(&self) {
        if self.shut.swap(true, Ordering::AcqRel) {
            return;
        }
        let until = Instant::now() + DRAIN_GRACE;
        while (self.pending.load(Ordering::Acquire) > 0
            || self.watching.load(Ordering::Acquire) > 0)
            && Instant::now() < until
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if self.on(Event::ServerExited) {
            let url = Event::ServerExited.url(&self.config).to_owned();
            let started = Instant::now();
            let outcome = self.attempt(&url, &Body::new(), None).await;
            crate::metrics::hook_request(
                Event::ServerExited.name(),
                outcome.label(),
                started.elapsed(),
            );
            if let Outcome::Failed { cause, .. } = &outcome {
                tracing::warn!(hook = "on_server_exited", cause = %cause, "hook failed");
            }
        }
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    pub(crate) fn gates_publish(&self) -> bool {
        self.on(Event::Publish)
    }

    pub(crate) fn gates_play(&self) -> bool {
        self.on(Event::Play)
    }

    /// Asks on_publish; the answer's per-stream options come back.
    pub(crate) async fn on_publish(
        &self,
        client: &Client,
        origin: OriginKind,
    ) -> Result<PublishOptions, Refused> {
        let answer = self
            .gate(Event::Publish, &client.key, body::publish(client, origin))
            .await?;
        Ok(answer
            .map(|a| body::publish_options(&a.body))
            .unwrap_or_default())
    }

    pub(crate) async fn on_play(&self, client: &Client) -> Result<(), Refused> {
        self.gate(Event::Play, &client.key, body::client(client))
            .await
            .map(|_| ())
    }

    /// A viewer asked for a stream that is not live (the receiver may start a proxy).
    pub(crate) fn stream_not_found(&self, client: &Client) {
        self.enqueue(
            Event::StreamNotFound,
            body::client(client),
            Some(&client.key),
            None,
        );
    }

    /// Whether on_stream_not_found is configured (a receiver may then start the
    /// stream, so a viewer waits for it).
    pub(crate) fn handles_not_found(&self) -> bool {
        self.config.enable && !self.config.on_stream_not_found.is_empty()
    }

    /// A session ended: what it moved and for how long.
    pub(crate) fn flow_report(
        &self,
        client: &Client,
        player: bool,
        total_bytes: u64,
        duration: Duration,
    ) {
        self.enqueue(
            Event::FlowReport,
            body::flow_report(client, player, total_bytes, duration),
            Some(&client.key),
            None,
        );
    }

    pub(crate) fn record_mp4(&self, file: &RecordedFile) {
        self.enqueue(Event::RecordMp4, body::record(file), Some(&file.key), None);
    }

    pub(crate) fn record_ts(&self, file: &RecordedFile) {
        self.enqueue(Event::RecordTs, body::record(file), Some(&file.key), None);
    }

    /// One gate call. `Ok(None)`: not configured, or failed with on_error = allow.
    async fn gate(
        &self,
        event: Event,
        key: &StreamKey,
        body: Body,
    ) -> Result<Option<body::Answer>, Refused> {
        if !self.on(event) {
            return Ok(None);
        }
        let url = event.url(&self.config);
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + self.timeout;
        // Waiting for a slot is our own overload, not the receiver's failure: it
        // refuses whatever hook.on_error says (else a flood of requests would be let
        // in by "allow").
        let Ok(Ok(_slot)) = tokio::time::timeout_at(deadline, self.gate_slots.acquire()).await
        else {
            crate::metrics::hook_request(event.name(), "timeout", started.elapsed());
            tracing::warn!(hook = event.name(), stream = %key, "gate refused: every hook.max_concurrent slot busy until the timeout");
            return Err(Refused {
                msg: "unauthorized".into(),
                reason: format!(
                    "{} hook for {key}: no free slot within {} s (hook.max_concurrent)",
                    event.name(),
                    self.timeout.as_secs()
                ),
            });
        };
        let outcome =
            tokio::time::timeout_at(deadline, self.exchange(url, &body, Some(&key.vhost)))
                .await
                .unwrap_or_else(|_| Outcome::Failed {
                    timeout: true,
                    cause: format!("no answer within {} s", self.timeout.as_secs()),
                });
        crate::metrics::hook_request(event.name(), outcome.label(), started.elapsed());
        let name = event.name();
        match outcome {
            Outcome::Answered(a) if a.code == Some(0) => Ok(Some(a)),
            Outcome::Answered(a) | Outcome::Refused(a) if a.code.is_some() => {
                let code = a.code.unwrap_or_default();
                let reason = format!(
                    "{name} hook refused {key}: code {code}, msg {:?}",
                    a.msg().unwrap_or("")
                );
                tracing::info!(hook = name, stream = %key, code, msg = a.msg().unwrap_or(""), "gate refused");
                Err(Refused {
                    msg: a
                        .msg()
                        .map(str::to_owned)
                        .unwrap_or_else(|| format!("refused by {name} hook")),
                    reason,
                })
            }
            Outcome::Answered(_) | Outcome::Refused(_) => {
                self.gate_failed(name, key, "answer has no code".into())
            }
            Outcome::Failed { cause, .. } => self.gate_failed(name, key, cause),
        }
    }

    fn gate_failed(
        &self,
        name: &'static str,
        key: &StreamKey,
        cause: String,
    ) -> Result<Option<body::Answer>, Refused> {
        if self.config.on_error == "allow" {
            tracing::warn!(hook = name, stream = %key, cause = %cause, "gate failed; allowed (hook.on_error = allow)");
            Ok(None)
        } else {
            tracing::warn!(hook = name, stream = %key, cause = %cause, "gate failed; refused (hook.on_error = deny)");
            Err(Refused {
                // The cause is for the log; the client is only refused.
                msg: "unauthorized".into(),
                reason: format!("{name} hook for {key} failed: {cause} (hook.on_error = deny)"),
            })
        }
    }

    /// Queues an event; never waits. False if it is not configured or was dropped.
    fn enqueue(
        &self,
        event: Event,
        body: Body,
        key: Option<&StreamKey>,
        answer: Option<oneshot::Sender<Option<Body>>>,
    ) -> bool {
        if !self.on(event) {
            return false;
        }
        self.pending.fetch_add(1, Ordering::AcqRel);
        let job = Job {
            event,
            body,
            vhost: key.map(|k| k.vhost.clone()),
            answer,
        };
        match self.queue.try_send(job) {
            Ok(()) => true,
            Err(_) => {
                self.pending.fetch_sub(1, Ordering::AcqRel);
                crate::metrics::hook_dropped(event.name());
                let n = self.dropped.fetch_add(1, Ordering::Relaxed);
                // One line per 1000 drops: a receiver that is down must not flood the log.
                if n.is_multiple_of(1000) {
                    tracing::warn!(
                        hook = event.name(),
                        dropped = n + 1,
                        "hook queue full; event dropped"
                    );
                }
                false
            }
        }
    }

    /// Sends a queued event, with its retries.
    async fn deliver(&self, job: Job) {
        let url = job.event.url(&self.config).to_owned();
        let name = job.event.name();
        let mut attempt = 0;
        let answer = loop {
            let started = Instant::now();
            let outcome = self.attempt(&url, &job.body, job.vhost.as_deref()).await;
            crate::metrics::hook_request(name, outcome.label(), started.elapsed());
            match outcome {
                Outcome::Answered(a) => break Some(a.body),
                Outcome::Refused(a) => {
                    tracing::warn!(
                        hook = name,
                        code = a.code.unwrap_or_default(),
                        msg = a.msg().unwrap_or(""),
                        "hook answered an error code"
                    );
                    break None;
                }
                Outcome::Failed { cause, .. } => {
                    if attempt < self.config.retry && !self.shut.load(Ordering::Acquire) {
                        attempt += 1;
                        tracing::debug!(hook = name, cause = %cause, attempt, "hook failed; retrying");
                        tokio::time::sleep(Duration::from_millis(self.config.retry_delay_ms)).await;
                        continue;
                    }
                    tracing::warn!(hook = name, url = %crate::redact::redact(&url), cause = %cause, "hook failed");
                    break None;
                }
            }
        };
        if let Some(tx) = job.answer {
            let _ = tx.send(answer);
        }
    }

    /// One request of an event, bounded by `hook.timeout_sec`.
    async fn attempt(&self, url: &str, body: &Body, vhost: Option<&str>) -> Outcome {
        tokio::time::timeout(self.timeout, self.exchange(url, body, vhost))
            .await
            .unwrap_or_else(|_| Outcome::Failed {
                timeout: true,
                cause: format!("no answer within {} s", self.timeout.as_secs()),
            })
    }

    /// POSTs `body` (stamped) and reads the answer; no timeout of its own.
    async fn exchange(&self, url: &str, body: &Body, vhost: Option<&str>) -> Outcome {
        let index = self.index.fetch_add(1, Ordering::Relaxed);
        let stamped = body::stamp(body, &self.config.media_server_id, index);
        let bytes = match serde_json::to_vec(&stamped) {
            Ok(b) => Bytes::from(b),
            Err(e) => {
                return Outcome::Failed {
                    timeout: false,
                    cause: e.to_string(),
                }
            }
        };
        match self.client.post(url, bytes, vhost).await {
            Err(e) => Outcome::Failed {
                timeout: false,
                cause: e.to_string(),
            },
            Ok(answer) => match body::parse_answer(answer.status, &answer.body) {
                Err(e) => Outcome::Failed {
                    timeout: false,
                    cause: e.to_string(),
                },
                Ok(a) if a.code.is_none_or(|c| c == 0) => Outcome::Answered(a),
                Ok(a) => Outcome::Refused(a),
            },
        }
    }

    /// The schemas `stream` is served in, as on_stream_changed announces them.
    fn schemas(&self, stream: &Stream) -> Vec<&'static str> {
        let mut v = vec!["rtmp"];
        if self.hls_enabled && stream.options().enable_hls != Some(false) {
            v.push("hls");
        }
        v.push("ts");
        v
    }

    /// One stream's life: registration, none-reader checks, unregistration.
    async fn watch_stream(&self, stream: &Arc<Stream>, mut ended: watch::Receiver<bool>) {
        let changed = self.on(Event::StreamChanged);
        let schemas = self.schemas(stream);
        if changed {
            let until = Instant::now() + TRACKS_WAIT;
            while !has_media(stream) && Instant::now() < until && !*ended.borrow() {
                tokio::select! {
                    _ = ended.changed() => {}
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
            for s in &schemas {
                self.enqueue(
                    Event::StreamChanged,
                    body::stream_registered(stream, s),
                    Some(&stream.key),
                    None,
                );
            }
        }
        if self.on(Event::StreamNoneReader) {
            self.none_reader(stream, &mut ended).await;
        } else {
            while !*ended.borrow() {
                if ended.changed().await.is_err() {
                    break;
                }
            }
        }
        if changed {
            let params = stream
                .snapshot()
                .origin
                .map(|o| o.params)
                .unwrap_or_default();
            for s in &schemas {
                self.enqueue(
                    Event::StreamChanged,
                    body::stream_unregistered(&stream.key, &params, s),
                    Some(&stream.key),
                    None,
                );
            }
        }
    }

    /// Until the stream ends: after `none_reader_delay` without a reader, asks the
    /// receiver (once per idle spell), and closes the stream if it says so.
    async fn none_reader(&self, stream: &Arc<Stream>, ended: &mut watch::Receiver<bool>) {
        let poll =
            (self.none_reader_delay / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
        let mut idle_since: Option<Instant> = None;
        let mut armed = true;
        loop {
            tokio::select! {
                r = ended.changed() => if r.is_err() { return },
                _ = tokio::time::sleep(poll) => {}
            }
            if *ended.borrow() {
                return;
            }
            if stream.readers() > 0 {
                idle_since = None;
                armed = true;
                continue;
            }
            let since = *idle_since.get_or_insert_with(Instant::now);
            if !armed || since.elapsed() < self.none_reader_delay {
                continue;
            }
            armed = false;
            let params = stream
                .snapshot()
                .origin
                .map(|o| o.params)
                .unwrap_or_default();
            let (tx, rx) = oneshot::channel();
            if !self.enqueue(
                Event::StreamNoneReader,
                body::none_reader(&stream.key, &params),
                Some(&stream.key),
                Some(tx),
            ) {
                continue;
            }
            let answer = rx.await.ok().flatten();
            let close = answer
                .as_ref()
                .and_then(|a| body::flag(a.get("close")))
                .unwrap_or(false);
            let live = self
                .hub
                .find(&stream.key)
                .is_some_and(|s| Arc::ptr_eq(&s, stream));
            if close && live && stream.readers() == 0 {
                tracing::info!(stream = %stream.key, "closed: no reader, and on_stream_none_reader said close");
                self.hub.close_stream(stream);
            }
        }
    }
}

/// Whether the stream has had a media frame (its tracks are known).
fn has_media(stream: &Stream) -> bool {
    let info = stream.snapshot().info;
    info.video.is_some_and(|v| v.frames > 0) || info.audio.is_some_and(|a| a.frames > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(f: impl FnOnce(&mut Config)) -> Config {
        let mut c = Config::default();
        c.hook.enable = true;
        f(&mut c);
        c
    }

    fn client() -> Client {
        Client {
            protocol: "rtmp",
            key: StreamKey::new(None, "live", "s"),
            params: String::new(),
            peer: "127.0.0.1:4000".parse().unwrap(),
            session_id: 1,
        }
    }

    fn hub() -> Arc<Hub> {
        Hub::new(crate::hub::HubSettings::from_config(&Config::default()))
    }

    /// A one-shot HTTP receiver on 127.0.0.1 answering every request with `answer`.
    async fn receiver(answer: &'static str) -> String {
        receiver_with(200, answer, Duration::ZERO).await.0
    }

    /// A receiver answering `status` and `answer` after `delay`; counts requests.
    async fn receiver_with(
        status: u16,
        answer: &'static str,
        delay: Duration,
    ) -> (String, Arc<AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let count = Arc::new(AtomicUsize::new(0));
        let counter = count.clone();
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 65536];
                    let mut got = Vec::new();
                    loop {
                        let n = s.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        got.extend_from_slice(&buf[..n]);
                        let text = String::from_utf8_lossy(&got).to_string();
                        if let Some(end) = text.find("\r\n\r\n") {
                            let len = text[..end]
                                .lines()
                                .find_map(|l| {
                                    l.to_ascii_lowercase()
                                        .strip_prefix("content-length:")
                                        .map(|v| v.trim().parse::<usize>().unwrap())
                                })
                                .unwrap_or(0);
                            if got.len() >= end + 4 + len {
                                break;
                            }
                        }
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(delay).await;
                    let res = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
                        answer.len()
                    );
                    let _ = s.write_all(res.as_bytes()).await;
                });
            }
        });
        (format!("http://{addr}/hook"), count)
    }

    #[tokio::test]
    async fn waiting_for_a_gate_slot_counts_in_the_timeout() {
        let (url, count) = receiver_with(200, r#"{"code":0}"#, Duration::from_millis(1500)).await;
        let h = Hooks::new(
            &config(|c| {
                c.hook.on_play = url.clone();
                c.hook.timeout_sec = 1;
                c.hook.max_concurrent = 1;
            }),
            hub(),
        );
        let t = Instant::now();
        let c = client();
        let (a, b) = tokio::join!(h.on_play(&c), h.on_play(&c));
        assert!(a.is_err() && b.is_err());
        // Both decided within the one timeout: the second's wait for the slot (held
        // by the first until its timeout) was not followed by a timeout of its own.
        assert!(
            t.elapsed() < Duration::from_millis(1400),
            "{:?}",
            t.elapsed()
        );
        assert!(count.load(Ordering::SeqCst) >= 1);
    }

    #[tokio::test]
    async fn failed_events_are_retried_refused_ones_not() {
        let (url, count) = receiver_with(500, "oops", Duration::ZERO).await;
        let h = Hooks::new(
            &config(|c| {
                c.hook.on_flow_report = url.clone();
                c.hook.retry = 2;
                c.hook.retry_delay_ms = 10;
            }),
            hub(),
        );
        h.start();
        h.flow_report(&client(), true, 1, Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(count.load(Ordering::SeqCst), 3, "1 + hook.retry attempts");
        assert_eq!(h.pending.load(Ordering::SeqCst), 0);

        let (url, count) = receiver_with(200, r#"{"code":-1,"msg":"no"}"#, Duration::ZERO).await;
        let h = Hooks::new(
            &config(|c| {
                c.hook.on_flow_report = url.clone();
                c.hook.retry = 2;
                c.hook.retry_delay_ms = 10;
            }),
            hub(),
        );
        h.start();
        h.flow_report(&client(), true, 1, Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn gates_allow_refuse_and_fail_by_policy() {
        let url = receiver(r#"{"code":0,"enable_hls":false,"continue_push_ms":"500"}"#).await;
        let h = Hooks::new(&config(|c| c.hook.on_publish = url.clone()), hub());
        assert!(h.gates_publish() && !h.gates_play());
        let o = h.on_publish(&client(), OriginKind::RtmpPush).await.unwrap();
        assert_eq!(o.enable_hls, Some(false));
        assert_eq!(o.continue_push_ms, Some(500));
        // Not configured: allowed.
        h.on_play(&client()).await.unwrap();

        let url = receiver(r#"{"code":-1,"msg":"no such key"}"#).await;
        let h = Hooks::new(&config(|c| c.hook.on_play = url.clone()), hub());
        let r = h.on_play(&client()).await.unwrap_err();
        assert_eq!(r.msg, "no such key");
        assert!(
            r.reason.contains("on_play") && r.reason.contains("live/s"),
            "{}",
            r.reason
        );

        let url = receiver("<html>not json</html>").await;
        let h = Hooks::new(&config(|c| c.hook.on_play = url.clone()), hub());
        let r = h.on_play(&client()).await.unwrap_err();
        assert!(r.reason.contains("not a JSON object"), "{}", r.reason);
        let h = Hooks::new(
            &config(|c| {
                c.hook.on_play = url.clone();
                c.hook.on_error = "allow".into();
            }),
            hub(),
        );
        h.on_play(&client()).await.unwrap();

        // A gate's answer without a code is garbage.
        let url = receiver(r#"{"msg":"hi"}"#).await;
        let h = Hooks::new(&config(|c| c.hook.on_play = url.clone()), hub());
        assert!(h
            .on_play(&client())
            .await
            .unwrap_err()
            .reason
            .contains("no code"));
    }

    #[tokio::test]
    async fn gate_timeout_and_unreachable_deny() {
        // Accepts and never answers.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", l.local_addr().unwrap());
        let h = Hooks::new(
            &config(|c| {
                c.hook.on_play = url.clone();
                c.hook.timeout_sec = 1;
            }),
            hub(),
        );
        let t = Instant::now();
        let r = h.on_play(&client()).await.unwrap_err();
        assert!(r.reason.contains("no answer within 1 s"), "{}", r.reason);
        assert!(t.elapsed() < Duration::from_secs(3));
        drop(l);
        let h = Hooks::new(&config(|c| c.hook.on_play = url.clone()), hub());
        let r = h.on_play(&client()).await.unwrap_err();
        assert!(r.reason.contains("cannot connect"), "{}", r.reason);
    }

    #[tokio::test]
    async fn a_full_queue_drops_without_waiting() {
        let h = Hooks::new(
            &config(|c| {
                c.hook.on_flow_report = "http://127.0.0.1:9/".into();
                c.hook.queue_len = 2;
            }),
            hub(),
        );
        // Not started: nothing drains the queue.
        let d = Duration::from_secs(1);
        h.flow_report(&client(), true, 1, d);
        h.flow_report(&client(), true, 1, d);
        h.flow_report(&client(), true, 1, d);
        assert_eq!(h.dropped.load(Ordering::Relaxed), 1);
        assert_eq!(h.pending.load(Ordering::Relaxed), 2);
    }
}
