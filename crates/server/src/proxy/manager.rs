//! The proxy manager: every pull and push proxy, its task, state and persistence.
//!
//! A pull proxy's task connects with the driver for its URL's scheme, publishes what
//! arrives into the hub as an ordinary publisher (originType 4, "pull"), and on a
//! failure or a stall (no media for `timeout`) drops the connection and retries with
//! back-off. Dropping the hub publisher starts the stream's continue_push window, so
//! players stay connected through a reconnection shorter than that, and the new
//! codec headers make the live HLS mark a discontinuity. An on-demand proxy connects
//! only while the stream has viewers (or one is waiting for it).
//!
//! A push proxy's task waits for its local stream, sends it to the remote with the
//! RTMP client, goes back to waiting when the stream ends, and retries with back-off
//! when the remote fails.
//!
//! Proxies added through the API are written to `{data_dir}/proxies.json` and started
//! again after a restart; the ones declared in the config file come from there.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;

use super::rtmp::RtmpOptions;
use super::rtsp::{RtspOptions, RtspTransport};
use super::{check_pull_url, check_push_url, Media, MediaKind, ProxyError};
use crate::backoff::backoff;
use crate::config::{Config, PullSpec, PushSpec};
use crate::hub::{Hub, Origin, Publisher, StreamKey};
use crate::record::{RecordKind, Recorder};
use crate::redact::{redact, redact_key};

/// ZLMediaKit's originType for a pulled stream.
/// Media items buffered between a driver and the hub.
const CHANNEL: usize = 512;

#[derive(Debug, Clone)]
pub(crate) struct ProxySettings {
    pub retry_delay: Duration,
    pub retry_max_delay: Duration,
    pub timeout: Duration,
    pub none_reader_delay: Duration,
    pub tls_ca_file: Option<PathBuf>,
    pub store: PathBuf,
}

impl ProxySettings {
    pub(crate) fn from_config(c: &Config) -> Self {
        let p = &c.proxy;
        ProxySettings {
            retry_delay: Duration::from_millis(p.retry_delay_ms),
            retry_max_delay: Duration::from_millis(p.retry_max_delay_ms),
            timeout: Duration::from_millis(p.timeout_ms),
            none_reader_delay: Duration::from_millis(p.stream_none_reader_delay_ms),
            tls_ca_file: (!p.tls_ca_file.is_empty()).then(|| PathBuf::from(&p.tls_ca_file)),
            store: c.data_dir.join("proxies.json"),
        }
    }
}

/// What a proxy is doing, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProxyState {
    /// "connecting", "playing" / "pushing", "retrying", "idle" (on demand, no
    /// viewers), "waiting for the local stream", "failed" (retries exhausted).
    pub status: &'static str,
    /// Failed attempts since the last success.
    pub retries: u32,
    /// Failed attempts over the proxy's life.
    pub total_failures: u64,
    pub last_error: Option<String>,
    /// Unix time of the last status change.
    pub since: u64,
}

impl ProxyState {
    fn new(status: &'static str) -> Self {
        ProxyState {
            status,
            retries: 0,
            total_failures: 0,
            last_error: None,
            since: crate::record::now_unix(),
        }
    }
}

struct Entry<S> {
    spec: S,
    /// Added through the API (kept in the store), not declared in the config.
    persistent: bool,
    state: Arc<Mutex<ProxyState>>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
    demand: Arc<Notify>,
}

impl<S> Entry<S> {
    fn new(spec: S, persistent: bool, status: &'static str) -> (Arc<Self>, watch::Receiver<bool>) {
        let (stop, stop_rx) = watch::channel(false);
        let entry = Arc::new(Entry {
            spec,
            persistent,
            state: Arc::new(Mutex::new(ProxyState::new(status))),
            stop,
            task: Mutex::new(None),
            demand: Arc::new(Notify::new()),
        });
        (entry, stop_rx)
    }
}

/// The local stream of a proxy, checked: a publishable name and a bounded timeout.
fn check_target(
    vhost: &str,
    app: &str,
    stream: &str,
    timeout_sec: u64,
) -> Result<StreamKey, AddProxyError> {
    let key = key_of(vhost, app, stream);
    key.check_names()
        .map_err(|why| AddProxyError::InvalidParameter {
            name: "app/stream",
            why: why.to_owned(),
        })?;
    if timeout_sec > 3600 {
        return Err(AddProxyError::InvalidParameter {
            name: "timeout_sec",
            why: "at most 3600".to_owned(),
        });
    }
    Ok(key)
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Store {
    pull: Vec<PullSpec>,
    push: Vec<PushSpec>,
}

struct Inner {
    /// Held for a whole save: concurrent API calls must not interleave their writes.
    /// `Some(why)` when the store file is never to be written (it could not be read
    /// nor moved aside: overwriting it would lose what the operator saved).
    saving: Mutex<Option<String>>,
    hub: Arc<Hub>,
    hls: Arc<crate::live_hls::HlsStore>,
    recorder: Recorder,
    settings: ProxySettings,
    pulls: Mutex<BTreeMap<String, Arc<Entry<PullSpec>>>>,
    pushes: Mutex<BTreeMap<String, Arc<Entry<PushSpec>>>>,
}

#[derive(Clone)]
pub(crate) struct ProxyManager {
    inner: Arc<Inner>,
}

/// Why a proxy was not added. Each names what was wrong; `api/` turns them into
/// ZLMediaKit codes and messages.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(crate) enum AddProxyError {
    /// A parameter that cannot be used (`url`, `dst_url`, `rtp_type`, `app/stream`,
    /// `timeout_sec`), and why.
    #[error("invalid parameter {name}: {why}")]
    InvalidParameter { name: &'static str, why: String },
    /// A pull proxy of that key exists, or someone publishes its stream already.
    #[error("the stream {key} already exists")]
    StreamExists { key: String },
    /// A push proxy of that key (stream and URL) exists.
    #[error("the pusher {key} already exists")]
    PusherExists { key: String },
}

/// One pull proxy, as listStreamProxy and getProxyInfo show it.
#[derive(Debug, Clone)]
pub(crate) struct PullInfo {
    pub key: String,
    /// Its spec, with any password in the URL hidden.
    pub spec: PullSpec,
    /// Added through the API (kept in the store), not declared in the config.
    pub persistent: bool,
    pub state: ProxyState,
}

/// One push proxy, as listStreamPusherProxy shows it.
#[derive(Debug, Clone)]
pub(crate) struct PushInfo {
    pub key: String,
    /// Its spec, with any password in the URL hidden.
    pub spec: PushSpec,
    /// Added through the API (kept in the store), not declared in the config.
    pub persistent: bool,
    pub state: ProxyState,
}

pub(crate) fn pull_key(spec: &PullSpec) -> String {
    format!("{}/{}/{}", spec.vhost, spec.app, spec.stream)
}

/// ZLMediaKit's pusher key is `{schema}/{vhost}/{app}/{stream}/{md5(dst_url)}`;
/// ferrocast's has a 64-bit FNV-1a hash of the URL instead (no crypto needed).
pub(crate) fn push_key(spec: &PushSpec) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in spec.url.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("rtmp/{}/{}/{}/{h:016x}", spec.vhost, spec.app, spec.stream)
}

fn key_of(vhost: &str, app: &str, stream: &str) -> StreamKey {
    StreamKey::new(Some(vhost), app, stream)
}

impl ProxyManager {
    pub(crate) fn new(
        hub: Arc<Hub>,
        hls: Arc<crate::live_hls::HlsStore>,
        recorder: Recorder,
        settings: ProxySettings,
    ) -> Self {
        ProxyManager {
            inner: Arc::new(Inner {
                saving: Mutex::new(None),
                hub,
                hls,
                recorder,
                settings,
                pulls: Mutex::new(BTreeMap::new()),
                pushes: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    /// Starts the proxies of the config file and of the store, and listens for
    /// players asking for on-demand streams.
    pub(crate) fn start(&self, config: &Config) {
        let me = Arc::downgrade(&self.inner);
        self.inner.hub.add_on_demand(move |key| {
            let Some(inner) = me.upgrade() else { return };
            let wanted = inner.pulls.lock().unwrap().values().find_map(|e| {
                (e.spec.on_demand && key_of(&e.spec.vhost, &e.spec.app, &e.spec.stream) == *key)
                    .then(|| e.demand.clone())
            });
            if let Some(d) = wanted {
                d.notify_one();
            }
        });
        for spec in &config.proxy.pull {
            if let Err(e) = self.add_pull(spec.clone(), false) {
                tracing::error!(stream = %pull_key(spec), error = %e, "pull proxy from the config not started");
            }
        }
        for spec in &config.proxy.push {
            if let Err(e) = self.add_push(spec.clone(), false) {
                tracing::error!(stream = %spec.stream, error = %e, "push proxy from the config not started");
            }
        }
        match std::fs::read(&self.inner.settings.store) {
            Ok(bytes) => match serde_json::from_slice::<Store>(&bytes) {
                Ok(store) => {
                    for spec in store.pull {
                        let _ = self.add_pull(spec, true);
                    }
                    for spec in store.push {
                        let _ = self.add_push(spec, true);
                    }
                }
                Err(e) => self.set_aside(&format!("not valid JSON of proxies: {e}")),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => self.set_aside(&format!("cannot be read: {e}")),
        }
    }

    /// A store file that cannot be used is moved aside (never silently overwritten by
    /// the next save); if even that fails, this run never writes it.
    fn set_aside(&self, why: &str) {
        let path = &self.inner.settings.store;
        let aside = path.with_extension(format!(
            "json.bad-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        ));
        match std::fs::rename(path, &aside) {
            Ok(()) => tracing::error!(path = %path.display(), moved_to = %aside.display(),
                "SAVED PROXIES NOT LOADED: the file {why}; it was moved aside, starting without them"),
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e,
                    "SAVED PROXIES NOT LOADED: the file {why}, and it cannot be moved aside; it will not be written in this run");
                *self.inner.saving.lock().unwrap() = Some(format!("{} {why}", path.display()));
            }
        }
    }

    /// addStreamProxy. Returns the key.
    pub(crate) fn add_pull(
        &self,
        spec: PullSpec,
        persistent: bool,
    ) -> Result<String, AddProxyError> {
        check_pull_url(&spec.url)
            .map_err(|why| AddProxyError::InvalidParameter { name: "url", why })?;
        if !matches!(spec.rtsp_transport.as_str(), "tcp" | "udp") {
            return Err(AddProxyError::InvalidParameter {
                name: "rtp_type",
                why: "0 (TCP) or 1 (UDP)".to_owned(),
            });
        }
        let key = pull_key(&spec);
        let stream_key = check_target(&spec.vhost, &spec.app, &spec.stream, spec.timeout_sec)?;
        {
            let mut pulls = self.inner.pulls.lock().unwrap();
            if pulls.contains_key(&key)
                || self
                    .inner
                    .hub
                    .find(&stream_key)
                    .is_some_and(|s| s.is_publishing())
            {
                return Err(AddProxyError::StreamExists { key });
            }
            let (entry, stop_rx) = Entry::new(spec.clone(), persistent, "connecting");
            self.inner.hls.set_enabled(&stream_key, spec.enable_hls);
            let task = tokio::spawn(run_pull(self.inner.clone(), entry.clone(), stop_rx));
            *entry.task.lock().unwrap() = Some(task);
            pulls.insert(key.clone(), entry);
        }
        tracing::info!(key = %key, url = %redact(&spec.url), on_demand = spec.on_demand, "pull proxy added");
        if persistent {
            self.save();
        }
        Ok(key)
    }

    /// delStreamProxy: `true` if it existed. Its stream ends (players get the end
    /// after continue_push).
    pub(crate) async fn del_pull(&self, key: &str) -> bool {
        let entry = self.inner.pulls.lock().unwrap().remove(key);
        let Some(entry) = entry else { return false };
        stop_entry(&entry).await;
        // Its players get the end now instead of waiting out continue_push.
        let stream_key = key_of(&entry.spec.vhost, &entry.spec.app, &entry.spec.stream);
        if let Some(stream) = self.inner.hub.find(&stream_key) {
            if !stream.is_publishing() {
                self.inner.hub.close_stream(&stream);
            }
        }
        self.inner.hls.set_enabled(&stream_key, true);
        tracing::info!(key, "pull proxy deleted");
        if entry.persistent {
            self.save();
        }
        true
    }

    /// addStreamPusherProxy. Returns the key.
    pub(crate) fn add_push(
        &self,
        spec: PushSpec,
        persistent: bool,
    ) -> Result<String, AddProxyError> {
        check_push_url(&spec.url).map_err(|why| AddProxyError::InvalidParameter {
            name: "dst_url",
            why,
        })?;
        check_target(&spec.vhost, &spec.app, &spec.stream, spec.timeout_sec)?;
        let key = push_key(&spec);
        {
            let mut pushes = self.inner.pushes.lock().unwrap();
            if pushes.contains_key(&key) {
                return Err(AddProxyError::PusherExists { key });
            }
            let (entry, stop_rx) =
                Entry::new(spec.clone(), persistent, "waiting for the local stream");
            let task = tokio::spawn(run_push(self.inner.clone(), entry.clone(), stop_rx));
            *entry.task.lock().unwrap() = Some(task);
            pushes.insert(key.clone(), entry);
        }
        tracing::info!(key = %key, url = %redact_key(&spec.url), "push proxy added");
        if persistent {
            self.save();
        }
        Ok(key)
    }

    /// delStreamPusherProxy: `true` if it existed.
    pub(crate) async fn del_push(&self, key: &str) -> bool {
        let entry = self.inner.pushes.lock().unwrap().remove(key);
        let Some(entry) = entry else { return false };
        stop_entry(&entry).await;
        tracing::info!(key, "push proxy deleted");
        if entry.persistent {
            self.save();
        }
        true
    }

    /// listStreamProxy: every pull proxy, by key.
    pub(crate) fn list_pulls(&self) -> Vec<PullInfo> {
        let pulls = self.inner.pulls.lock().unwrap();
        pulls.iter().map(|(k, e)| pull_info(k, e)).collect()
    }

    /// getProxyInfo.
    pub(crate) fn pull_info(&self, key: &str) -> Option<PullInfo> {
        let pulls = self.inner.pulls.lock().unwrap();
        pulls.get(key).map(|e| pull_info(key, e))
    }

    /// listStreamPusherProxy: every push proxy, by key.
    pub(crate) fn list_pushes(&self) -> Vec<PushInfo> {
        let pushes = self.inner.pushes.lock().unwrap();
        pushes
            .iter()
            .map(|(k, e)| PushInfo {
                key: k.clone(),
                spec: PushSpec {
                    url: redact(&e.spec.url),
                    ..e.spec.clone()
                },
                persistent: e.persistent,
                state: e.state.lock().unwrap().clone(),
            })
            .collect()
    }

    /// Stops every proxy (on shutdown).
    pub(crate) async fn shutdown(&self) {
        let pulls: Vec<_> = std::mem::take(&mut *self.inner.pulls.lock().unwrap())
            .into_values()
            .collect();
        let pushes: Vec<_> = std::mem::take(&mut *self.inner.pushes.lock().unwrap())
            .into_values()
            .collect();
        futures_util::future::join_all(pulls.iter().map(|e| stop_entry(e))).await;
        futures_util::future::join_all(pushes.iter().map(|e| stop_entry(e))).await;
    }

    /// Writes the API-added proxies to the store (atomically).
    fn save(&self) {
        let saving = self.inner.saving.lock().unwrap();
        let store = Store {
            pull: self
                .inner
                .pulls
                .lock()
                .unwrap()
                .values()
                .filter(|e| e.persistent)
                .map(|e| e.spec.clone())
                .collect(),
            push: self
                .inner
                .pushes
                .lock()
                .unwrap()
                .values()
                .filter(|e| e.persistent)
                .map(|e| e.spec.clone())
                .collect(),
        };
        let path = self.inner.settings.store.clone();
        if let Some(why) = saving.as_ref() {
            tracing::error!(path = %path.display(), reason = %why, "proxies not saved: the store file is kept as it was");
            return;
        }
        // Whole or not at all, and mode 0600: the URLs carry credentials.
        let result = crate::files::write_atomic(
            &path,
            &serde_json::to_vec_pretty(&store).unwrap_or_default(),
            0o600,
        );
        if let Err(e) = result {
            tracing::error!(path = %path.display(), error = %e, "could not save the proxies; they will not survive a restart");
        }
    }
}

fn pull_info(key: &str, e: &Entry<PullSpec>) -> PullInfo {
    PullInfo {
        key: key.to_owned(),
        spec: PullSpec {
            url: redact(&e.spec.url),
            ..e.spec.clone()
        },
        persistent: e.persistent,
        state: e.state.lock().unwrap().clone(),
    }
}

async fn stop_entry<S>(e: &Entry<S>) {
    e.stop.send_replace(true);
    let task = e.task.lock().unwrap().take();
    if let Some(t) = task {
        let _ = t.await;
    }
}

fn set_status(state: &Mutex<ProxyState>, status: &'static str) {
    let mut st = state.lock().unwrap();
    if st.status != status {
        st.status = status;
        st.since = crate::record::now_unix();
    }
}

fn note_failure(state: &Mutex<ProxyState>, err: &str) -> u32 {
    let mut st = state.lock().unwrap();
    st.retries += 1;
    st.total_failures += 1;
    st.last_error = Some(err.to_owned());
    st.retries
}

/// Sleeps, or returns `true` early if the proxy is stopped.
async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

/// What ended one connection of a pull proxy.
enum PullEnd {
    Stopped,
    /// On demand and nobody watched for `none_reader_delay`.
    NoViewers,
    Failed(String),
    /// The remote ended the stream cleanly.
    Ended,
}

async fn run_pull(inner: Arc<Inner>, entry: Arc<Entry<PullSpec>>, mut stop: watch::Receiver<bool>) {
    let spec = &entry.spec;
    let key = key_of(&spec.vhost, &spec.app, &spec.stream);
    let timeout = if spec.timeout_sec > 0 {
        Duration::from_secs(spec.timeout_sec)
    } else {
        inner.settings.timeout
    };
    loop {
        if *stop.borrow() {
            return;
        }
        if spec.on_demand && !has_viewers(&inner.hub, &key) {
            set_status(&entry.state, "idle");
            // Woken by a player waiting for the stream, or (a stream kept by
            // continue_push) one that is watching it.
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = entry.demand.notified() => break,
                    _ = tick.tick() => if has_viewers(&inner.hub, &key) { break },
                }
            }
            tracing::info!(stream = %key, "on-demand pull proxy: a viewer is waiting, connecting");
        }
        set_status(&entry.state, "connecting");
        let end = pull_once(&inner, &entry, &key, timeout, &mut stop).await;
        match end {
            PullEnd::Stopped => return,
            PullEnd::NoViewers => {
                tracing::info!(stream = %key, "on-demand pull proxy: no viewers, disconnected");
                entry.state.lock().unwrap().retries = 0;
                continue;
            }
            PullEnd::Ended | PullEnd::Failed(_) => {
                let err = match end {
                    PullEnd::Failed(e) => e,
                    _ => "the remote ended the stream".to_owned(),
                };
                let attempt = note_failure(&entry.state, &err);
                if spec.retry_count >= 0 && i64::from(attempt) > spec.retry_count {
                    tracing::error!(stream = %key, url = %redact(&spec.url), error = %err, attempts = attempt,
                        "pull proxy failed; no retries left");
                    set_status(&entry.state, "failed");
                    let _ = stop.changed().await;
                    return;
                }
                let delay = backoff(
                    inner.settings.retry_delay,
                    inner.settings.retry_max_delay,
                    attempt,
                );
                tracing::warn!(stream = %key, url = %redact(&spec.url), error = %err, attempt,
                    retry_in_ms = delay.as_millis() as u64, "pull proxy lost its source; retrying");
                set_status(&entry.state, "retrying");
                if sleep_or_stop(delay, &mut stop).await {
                    return;
                }
            }
        }
    }
}

fn has_viewers(hub: &Hub, key: &StreamKey) -> bool {
    hub.find(key).is_some_and(|s| s.readers() > 0)
}

async fn pull_once(
    inner: &Arc<Inner>,
    entry: &Arc<Entry<PullSpec>>,
    key: &StreamKey,
    timeout: Duration,
    stop: &mut watch::Receiver<bool>,
) -> PullEnd {
    let spec = &entry.spec;
    let (tx, mut rx) = mpsc::channel::<Media>(CHANNEL);
    let url = spec.url.clone();
    let scheme = url.split("://").next().unwrap_or("").to_ascii_lowercase();
    let driver: std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(), ProxyError>> + Send>,
    > = if scheme == "rtsp" {
        let opts = RtspOptions {
            transport: if spec.rtsp_transport == "udp" {
                RtspTransport::Udp
            } else {
                RtspTransport::Tcp
            },
            connect_timeout: timeout,
        };
        Box::pin(async move { super::rtsp::pull(&url, &opts, tx).await })
    } else {
        let opts = RtmpOptions {
            connect_timeout: timeout,
            extra_ca_file: inner.settings.tls_ca_file.clone(),
        };
        Box::pin(async move { super::rtmp::pull(&url, &opts, tx).await })
    };
    tokio::pin!(driver);
    let mut publisher: Option<Publisher> = None;
    let mut driver_done: Option<Result<(), ProxyError>> = None;
    let mut last_viewer = Instant::now();
    let mut deadline = tokio::time::Instant::now() + timeout;
    let mut check = tokio::time::interval(Duration::from_millis(500));
    let end = loop {
        tokio::select! {
            _ = stop.changed() => break PullEnd::Stopped,
            r = &mut driver, if driver_done.is_none() => {
                // Deliver what is still queued, then report.
                driver_done = Some(r);
            }
            m = tokio::time::timeout_at(deadline, rx.recv()) => match m {
                Ok(Some(media)) => {
                    deadline = tokio::time::Instant::now() + timeout;
                    if publisher.is_none() {
                        let origin = Origin {
                            kind: crate::hub::OriginKind::Pull,
                            peer: None,
                            local: None,
                            params: String::new(),
                            url: redact(&spec.url),
                            options: Default::default(),
                        };
                        match inner.hub.publish(key.clone(), origin) {
                            Ok(p) => {
                                tracing::info!(stream = %key, url = %redact(&spec.url), "pull proxy playing");
                                set_status(&entry.state, "playing");
                                entry.state.lock().unwrap().retries = 0;
                                if spec.enable_mp4 {
                                    let _ = inner.recorder.start(key, RecordKind::Mp4, None, None);
                                }
                                publisher = Some(p);
                            }
                            Err(e) => break PullEnd::Failed(format!("cannot publish locally: {e}")),
                        }
                    }
                    if let Some(p) = &publisher {
                        match media.kind {
                            MediaKind::Video => p.push_video(media.timestamp, media.body),
                            MediaKind::Audio => p.push_audio(media.timestamp, media.body),
                            MediaKind::Metadata => p.push_metadata(media.timestamp, media.body),
                        }
                    }
                }
                Ok(None) => {
                    break match driver_done.take() {
                        Some(Ok(())) | None => PullEnd::Ended,
                        Some(Err(e)) => PullEnd::Failed(e.to_string()),
                    };
                }
                Err(_) => {
                    break match driver_done.take() {
                        Some(Err(e)) => PullEnd::Failed(e.to_string()),
                        _ => PullEnd::Failed(format!(
                            "timeout: no media from the remote for {} s",
                            timeout.as_secs_f32()
                        )),
                    };
                }
            },
            _ = check.tick() => {
                if let Some(p) = &publisher {
                    if p.stream().readers() > 0 {
                        last_viewer = Instant::now();
                    } else if spec.on_demand && last_viewer.elapsed() >= inner.settings.none_reader_delay {
                        break PullEnd::NoViewers;
                    }
                }
            }
        }
    };
    drop(publisher);
    end
}

async fn run_push(inner: Arc<Inner>, entry: Arc<Entry<PushSpec>>, mut stop: watch::Receiver<bool>) {
    let spec = &entry.spec;
    let key = key_of(&spec.vhost, &spec.app, &spec.stream);
    let opts = RtmpOptions {
        connect_timeout: if spec.timeout_sec > 0 {
            Duration::from_secs(spec.timeout_sec)
        } else {
            inner.settings.timeout
        },
        extra_ca_file: inner.settings.tls_ca_file.clone(),
    };
    loop {
        // Wait for the local stream to be published.
        set_status(&entry.state, "waiting for the local stream");
        let sub = loop {
            if let Some(s) = inner.hub.find(&key).filter(|s| s.is_publishing()) {
                if let Some(sub) = inner.hub.subscribe_internal(&s) {
                    break sub;
                }
            }
            if sleep_or_stop(Duration::from_millis(250), &mut stop).await {
                return;
            }
        };
        set_status(&entry.state, "pushing");
        tracing::info!(stream = %key, url = %redact_key(&spec.url), "push proxy started");
        let result = tokio::select! {
            r = super::rtmp::push(&spec.url, &opts, sub) => r,
            _ = stop.changed() => return,
        };
        match result {
            Ok(()) => {
                tracing::info!(stream = %key, "push proxy: the local stream ended; waiting for it");
                entry.state.lock().unwrap().retries = 0;
            }
            Err(e) => {
                let err = e.to_string();
                let attempt = note_failure(&entry.state, &err);
                if spec.retry_count >= 0 && i64::from(attempt) > spec.retry_count {
                    tracing::error!(stream = %key, url = %redact_key(&spec.url), error = %err, "push proxy failed; no retries left");
                    set_status(&entry.state, "failed");
                    let _ = stop.changed().await;
                    return;
                }
                let delay = backoff(
                    inner.settings.retry_delay,
                    inner.settings.retry_max_delay,
                    attempt,
                );
                tracing::warn!(stream = %key, url = %redact_key(&spec.url), error = %err, attempt,
                    retry_in_ms = delay.as_millis() as u64, "push proxy failed; retrying");
                set_status(&entry.state, "retrying");
                if sleep_or_stop(delay, &mut stop).await {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pusher_keys_differ_by_url() {
        let a = PushSpec {
            vhost: "v".into(),
            app: "live".into(),
            stream: "s".into(),
            url: "rtmp://a/live/s".into(),
            retry_count: -1,
            timeout_sec: 0,
        };
        let mut b = a.clone();
        b.url = "rtmp://b/live/s".into();
        assert_ne!(push_key(&a), push_key(&b));
        assert!(push_key(&a).starts_with("rtmp/v/live/s/"));
    }
}
