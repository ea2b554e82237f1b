//! Recording: MP4 files and HLS recordings of live streams.
//!
//! A recording is an internal subscriber of the stream (like the live HLS muxer): it
//! sees the GOP cache first, so it starts on the latest keyframe, at most one GOP
//! before `startRecord`. It keeps going across a publisher reconnect within
//! `continue_push` (same subscription), and is finished when the stream ends, on
//! `stopRecord`, and on shutdown ([`Recorder::shutdown`]).
//!
//! * MP4 ([`mp4`]): fragmented while recording, so a file cut by a crash plays up to
//!   its last fragment; finished in place with a complete index (moov at the end)
//!   on stop and on rotation every `max_second`.
//! * HLS ([`hls_recorder`]): MPEG-TS segments that are never deleted and an EVENT
//!   playlist, rewritten after each segment, that gets `#EXT-X-ENDLIST` on stop
//!   (VOD). The cut rules and the playlist text are `ferrocast_proto::hls`'s, the
//!   same as the live muxer's; the recorder only writes files.
//!
//! A write error (a full disk) pauses an MP4 recording until a new file can be
//! written ([`mp4`], "A write error") and stops an HLS one; either way with one
//! logged error and a state the API shows ([`Recorder::last_error`]); nothing else
//! is disturbed.
//!
//! * Crashes ([`repair`]): at start-up the MP4 files a crash left unfinished are
//!   found by their first bytes and finished in place in the background.
//! * Retention ([`retention`]): a periodic task deletes the oldest finished MP4
//!   files (`record.delete_after_s`, `record.max_disk_bytes`), never one that is
//!   being written ([`OpenFiles`]).
//!
//! Every file started and finished is described by a [`RecordEvent`] and logged in
//! one place ([`TaskContext::emit`]), which also sends the on_record_mp4 (a finished
//! MP4 file) and on_record_ts (a finished HLS segment) webhooks.
//!
//! A stream's publish gate (hook.on_publish) may set `enable_mp4` (true records the
//! stream as an auto-recorded app would be, false keeps an auto-recorded app's stream
//! from being recorded) and `mp4_max_second` (the file length of that stream's MP4
//! recordings, automatic or by startRecord without its own).

pub(crate) mod hls_recorder;
pub(crate) mod mp4;
pub(crate) mod repair;
pub(crate) mod retention;

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use thiserror::Error;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::hook::{Hooks, RecordedFile};
use crate::hub::{Hub, Stream, StreamKey};

/// What is recorded (startRecord's `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum RecordKind {
    Hls,
    Mp4,
}

impl RecordKind {
    /// ZLMediaKit's `type` parameter: 0 HLS, 1 MP4.
    pub(crate) fn from_type(t: &str) -> Option<Self> {
        match t.trim() {
            "0" => Some(RecordKind::Hls),
            "1" => Some(RecordKind::Mp4),
            _ => None,
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            RecordKind::Hls => "hls",
            RecordKind::Mp4 => "mp4",
        }
    }
}

/// Settings read when a recording starts (so `setServerConfig` applies to the next one).
#[derive(Debug, Clone)]
pub(crate) struct RecordSettings {
    pub root: PathBuf,
    pub max_second: u64,
    pub fragment_ms: u32,
    pub hls_segment_ms: u32,
    pub auto_mp4_apps: Vec<String>,
    pub auto_hls_apps: Vec<String>,
    pub fsync_interval_ms: u64,
    pub retention: retention::Retention,
}

impl RecordSettings {
    pub(crate) fn from_config(c: &Config) -> Self {
        RecordSettings {
            root: c.record_dir(),
            max_second: c.record.max_second,
            fragment_ms: c.record.fragment_ms,
            hls_segment_ms: c.record.hls_segment_ms,
            auto_mp4_apps: c.record.auto_mp4_apps.clone(),
            auto_hls_apps: c.record.auto_hls_apps.clone(),
            fsync_interval_ms: c.record.fsync_interval_ms,
            retention: retention::Retention {
                delete_after_s: c.record.delete_after_s,
                max_disk_bytes: c.record.max_disk_bytes,
            },
        }
    }
}

/// A file of a recording started or finished.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RecordEvent {
    FileStarted {
        kind: RecordKind,
        key: StreamKey,
        path: PathBuf,
        start_unix: u64,
    },
    /// An MP4 file, an HLS segment (`kind` Hls, `.ts` path) or an HLS recording's
    /// playlist (`.m3u8` path, on its end) is complete.
    FileFinished {
        kind: RecordKind,
        key: StreamKey,
        path: PathBuf,
        start_unix: u64,
        duration_ms: u64,
        size: u64,
    },
}

#[derive(Debug, Error, PartialEq)]
pub(crate) enum RecordError {
    #[error("can not find the stream")]
    StreamNotFound,
    #[error("invalid customized_path: {0}")]
    BadPath(String),
}

/// Options of one recording.
#[derive(Debug, Clone)]
pub(crate) struct StartOptions {
    /// Where this recording's `{app}/{stream}/...` tree goes.
    pub root: PathBuf,
    pub max_second: u64,
    pub fragment_ms: u32,
    pub hls_segment_ms: u32,
    /// 0: sync only when a file is finished.
    pub fsync_interval_ms: u64,
}

struct Active {
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

struct Inner {
    hub: Arc<Hub>,
    hooks: Option<Arc<Hooks>>,
    settings: RwLock<RecordSettings>,
    active: Mutex<HashMap<(StreamKey, RecordKind), Arc<Active>>>,
    errors: Errors,
    /// MP4 files being written or finished: retention never deletes them.
    open_files: OpenFiles,
    /// Set by [`Recorder::shutdown`]: no recording starts any more.
    closed: std::sync::atomic::AtomicBool,
}

/// All recordings of the server.
#[derive(Clone)]
pub(crate) struct Recorder {
    inner: Arc<Inner>,
}

/// Why each recording last stopped writing (startRecord clears it, a resumed
/// recording too).
pub(crate) type Errors = Arc<Mutex<HashMap<(StreamKey, RecordKind), String>>>;

/// Paths of the MP4 files being written or finished.
pub(crate) type OpenFiles = Arc<Mutex<std::collections::HashSet<PathBuf>>>;

/// What a recording task is given.
#[derive(Clone)]
pub(crate) struct TaskContext {
    pub key: StreamKey,
    pub opts: StartOptions,
    /// The record directory (`/record` serves it): webhook URLs are relative to it.
    pub record_dir: PathBuf,
    pub hooks: Option<Arc<Hooks>>,
    pub errors: Errors,
    pub open_files: OpenFiles,
}

impl TaskContext {
    /// A write error paused this recording (`Some`), or it resumed (`None`).
    pub(crate) fn set_error(&self, kind: RecordKind, e: Option<String>) {
        let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        match e {
            Some(e) => errors.insert((self.key.clone(), kind), e),
            None => errors.remove(&(self.key.clone(), kind)),
        };
    }

    pub(crate) fn emit(&self, e: RecordEvent) {
        match &e {
            RecordEvent::FileStarted { kind, path, .. } => {
                tracing::info!(stream = %self.key, kind = kind.label(), path = %path.display(), "recording file started")
            }
            RecordEvent::FileFinished {
                kind,
                path,
                duration_ms,
                size,
                ..
            } => {
                tracing::info!(stream = %self.key, kind = kind.label(), path = %path.display(), duration_ms, size, "recording file finished")
            }
        }
        if let (
            Some(hooks),
            RecordEvent::FileFinished {
                kind,
                key,
                path,
                start_unix,
                duration_ms,
                size,
            },
        ) = (&self.hooks, e)
        {
            let file = RecordedFile {
                url_path: path
                    .strip_prefix(&self.record_dir)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .into_owned(),
                folder: self.opts.root.join(stream_dir(&key)),
                key,
                file_path: path.clone(),
                file_size: size,
                start_time: start_unix,
                time_len: duration_ms as f64 / 1000.0,
            };
            match kind {
                RecordKind::Mp4 => hooks.record_mp4(&file),
                // The HLS recording's playlist is also reported finished; only
                // segments are on_record_ts.
                RecordKind::Hls if path.extension().is_some_and(|x| x == "ts") => {
                    hooks.record_ts(&file)
                }
                RecordKind::Hls => {}
            }
        }
    }

    /// `{root}/{app}/{stream}/{YYYY-MM-DD}/{HH-MM-SS}{ext}`, with a suffix if that
    /// name is taken (two files started within one second).
    pub(crate) fn new_path(&self, start_unix: u64, ext: &str) -> PathBuf {
        let (date, time) = date_time(start_unix);
        let dir = self.opts.root.join(stream_dir(&self.key)).join(date);
        let mut path = dir.join(format!("{time}{ext}"));
        let mut n = 1;
        while path.exists() {
            path = dir.join(format!("{time}-{n}{ext}"));
            n += 1;
        }
        path
    }
}

impl Recorder {
    pub(crate) fn new(hub: Arc<Hub>, settings: RecordSettings, hooks: Option<Arc<Hooks>>) -> Self {
        Recorder {
            inner: Arc::new(Inner {
                hub,
                hooks,
                settings: RwLock::new(settings),
                active: Mutex::new(HashMap::new()),
                errors: Arc::new(Mutex::new(HashMap::new())),
                open_files: Arc::new(Mutex::new(Default::default())),
                closed: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// Starts the automatic recordings of every new stream: those of its app, and an
    /// MP4 one when its publish gate said `enable_mp4` (which can also say no).
    pub(crate) fn attach(&self) {
        let me = self.clone();
        self.inner.hub.add_on_new_stream(move |stream| {
            let s = me.settings();
            let gate = stream.options();
            for (apps, kind) in [
                (&s.auto_mp4_apps, RecordKind::Mp4),
                (&s.auto_hls_apps, RecordKind::Hls),
            ] {
                let auto = apps.iter().any(|a| *a == stream.key.app);
                let wanted = match kind {
                    RecordKind::Mp4 => gate.enable_mp4.unwrap_or(auto),
                    RecordKind::Hls => auto,
                };
                if wanted {
                    let opts = me.options_for(stream);
                    me.start_on(stream.clone(), kind, opts);
                }
            }
        });
    }

    /// The default options, with the stream's gate-set MP4 file length.
    fn options_for(&self, stream: &Stream) -> StartOptions {
        let mut opts = self.default_options();
        if let Some(m) = stream.options().mp4_max_second {
            opts.max_second = m.clamp(10, 86_400);
        }
        opts
    }

    pub(crate) fn settings(&self) -> RecordSettings {
        self.inner.settings.read().unwrap().clone()
    }

    pub(crate) fn set_settings(&self, s: RecordSettings) {
        *self.inner.settings.write().unwrap() = s;
    }

    fn default_options(&self) -> StartOptions {
        let s = self.settings();
        StartOptions {
            root: s.root,
            max_second: s.max_second,
            fragment_ms: s.fragment_ms,
            hls_segment_ms: s.hls_segment_ms,
            fsync_interval_ms: s.fsync_interval_ms,
        }
    }

    /// The record root for a `customized_path` (relative, inside the record dir).
    pub(crate) fn root_for(&self, customized_path: Option<&str>) -> Result<PathBuf, RecordError> {
        let root = self.settings().root;
        match customized_path.map(str::trim).filter(|p| !p.is_empty()) {
            None => Ok(root),
            Some(p) => Ok(root.join(safe_relative(p)?)),
        }
    }

    /// startRecord. `Ok(false)`: it was already recording (nothing changes).
    pub(crate) fn start(
        &self,
        key: &StreamKey,
        kind: RecordKind,
        customized_path: Option<&str>,
        max_second: Option<u64>,
    ) -> Result<bool, RecordError> {
        let root = self.root_for(customized_path)?;
        let stream = self
            .inner
            .hub
            .find(key)
            .ok_or(RecordError::StreamNotFound)?;
        let mut opts = self.options_for(&stream);
        opts.root = root;
        if let Some(m) = max_second.filter(|m| *m > 0) {
            opts.max_second = m.clamp(10, 86_400);
        }
        Ok(self.start_on(stream, kind, opts))
    }

    fn start_on(&self, stream: Arc<Stream>, kind: RecordKind, opts: StartOptions) -> bool {
        let key = stream.key.clone();
        let mut active = self.inner.active.lock().unwrap();
        if self.inner.closed.load(std::sync::atomic::Ordering::Acquire) {
            // Shutting down: recordings are being finished, none may start.
            return false;
        }
        if active.contains_key(&(key.clone(), kind)) {
            return false;
        }
        let Some(sub) = self.inner.hub.subscribe_internal(&stream) else {
            return false;
        };
        self.inner
            .errors
            .lock()
            .unwrap()
            .remove(&(key.clone(), kind));
        let (stop_tx, stop_rx) = watch::channel(false);
        let entry = Arc::new(Active {
            stop: stop_tx,
            task: Mutex::new(None),
        });
        tracing::info!(stream = %key, kind = kind.label(), root = %opts.root.display(), "recording started");
        crate::metrics::recording_started(kind.label());
        let ctx = TaskContext {
            key: key.clone(),
            opts,
            record_dir: self.settings().root,
            hooks: self.inner.hooks.clone(),
            errors: self.inner.errors.clone(),
            open_files: self.inner.open_files.clone(),
        };
        let inner = self.inner.clone();
        let me = entry.clone();
        let handle = tokio::spawn(async move {
            let result = match kind {
                RecordKind::Mp4 => mp4::run(&ctx, sub, stop_rx).await,
                RecordKind::Hls => hls_recorder::run(&ctx, sub, stop_rx).await,
            };
            crate::metrics::recording_ended(kind.label(), result.is_err());
            match result {
                Ok(()) => {
                    tracing::info!(stream = %ctx.key, kind = kind.label(), "recording ended")
                }
                Err(e) => {
                    tracing::error!(stream = %ctx.key, kind = kind.label(), error = %e, "recording stopped by a write error");
                    inner
                        .errors
                        .lock()
                        .unwrap()
                        .insert((ctx.key.clone(), kind), e.to_string());
                }
            }
            let mut active = inner.active.lock().unwrap();
            if active
                .get(&(ctx.key.clone(), kind))
                .is_some_and(|a| Arc::ptr_eq(a, &me))
            {
                active.remove(&(ctx.key.clone(), kind));
            }
        });
        // Listed only with its task handle in place, and still under the lock: a
        // stopRecord or shutdown that finds it always waits for the file to be finished.
        *entry.task.lock().unwrap() = Some(handle);
        active.insert((key.clone(), kind), entry);
        true
    }

    /// stopRecord: finishes the recording and returns once its files are complete.
    /// `false` if it was not recording.
    pub(crate) async fn stop(&self, key: &StreamKey, kind: RecordKind) -> bool {
        let entry = self
            .inner
            .active
            .lock()
            .unwrap()
            .remove(&(key.clone(), kind));
        let Some(entry) = entry else {
            return false;
        };
        finish(entry).await;
        true
    }

    pub(crate) fn is_recording(&self, key: &StreamKey, kind: RecordKind) -> bool {
        self.inner
            .active
            .lock()
            .unwrap()
            .contains_key(&(key.clone(), kind))
    }

    /// Why the last recording of this kind stopped on its own, if it failed.
    pub(crate) fn last_error(&self, key: &StreamKey, kind: RecordKind) -> Option<String> {
        self.inner
            .errors
            .lock()
            .unwrap()
            .get(&(key.clone(), kind))
            .cloned()
    }

    /// At start-up, before any recording starts: lists the MP4 recordings a crash
    /// left unfinished (to hand to [`Recorder::repair_interrupted`]) and starts the
    /// retention task ([`retention`]).
    pub(crate) async fn start_maintenance(&self) -> Vec<PathBuf> {
        let root = self.settings().root;
        let files = tokio::task::spawn_blocking(move || repair::find_interrupted(&root))
            .await
            .unwrap_or_default();
        let inner = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            // The first pass once start-up is over (the metrics recorder installed).
            tokio::time::sleep(Duration::from_secs(1)).await;
            loop {
                let (root, r) = {
                    let Some(inner) = inner.upgrade() else { return };
                    if inner.closed.load(std::sync::atomic::Ordering::Acquire) {
                        return;
                    }
                    let s = inner.settings.read().unwrap_or_else(|p| p.into_inner());
                    (s.root.clone(), s.retention)
                };
                if r.enabled() {
                    let open = match inner.upgrade() {
                        Some(i) => i.open_files.clone(),
                        None => return,
                    };
                    let _ =
                        tokio::task::spawn_blocking(move || retention::pass(&root, &open, r)).await;
                }
                tokio::time::sleep(if r.enabled() {
                    r.interval()
                } else {
                    Duration::from_secs(10)
                })
                .await;
            }
        });
        files
    }

    /// Finishes the files [`Recorder::start_maintenance`] found, in the background
    /// ([`repair`]).
    pub(crate) fn repair_interrupted(&self, files: Vec<PathBuf>) {
        if !files.is_empty() {
            tracing::info!(
                count = files.len(),
                "MP4 recordings interrupted by a crash: finishing them"
            );
            tokio::task::spawn_blocking(move || repair::repair_all(files));
        }
    }

    pub(crate) fn in_progress(&self) -> usize {
        self.inner.active.lock().unwrap().len()
    }

    /// Finishes every recording (on shutdown).
    pub(crate) async fn shutdown(&self) {
        let all: Vec<_> = {
            let mut active = self.inner.active.lock().unwrap();
            self.inner
                .closed
                .store(true, std::sync::atomic::Ordering::Release);
            active.drain().collect()
        };
        if !all.is_empty() {
            tracing::info!(count = all.len(), "finishing recordings");
        }
        futures_util::future::join_all(all.into_iter().map(|(_, e)| finish(e))).await;
    }

    /// getMP4RecordFile: without `period`, the days that have MP4 recordings; with
    /// it (`YYYY-MM-DD`), that day's files. Returns (paths, root dir).
    pub(crate) fn list_mp4(
        &self,
        key: &StreamKey,
        period: Option<&str>,
        customized_path: Option<&str>,
    ) -> Result<(Vec<String>, PathBuf), RecordError> {
        let root = self.root_for(customized_path)?.join(stream_dir(key));
        let names = |dir: &Path, want_dir: bool| -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir() == want_dir))
                .filter_map(|e| e.file_name().into_string().ok())
                .collect();
            v.sort();
            v
        };
        match period.map(str::trim).filter(|p| !p.is_empty()) {
            None => {
                let days = names(&root, true)
                    .into_iter()
                    .filter(|d| is_date(d))
                    .filter(|d| {
                        names(&root.join(d), false)
                            .iter()
                            .any(|f| f.ends_with(".mp4"))
                    })
                    .collect();
                Ok((days, root))
            }
            Some(day) => {
                if !is_date(day) {
                    return Err(RecordError::BadPath(format!(
                        "period {day:?} is not YYYY-MM-DD"
                    )));
                }
                let dir = root.join(day);
                let files = names(&dir, false)
                    .into_iter()
                    .filter(|f| f.ends_with(".mp4"))
                    .collect();
                Ok((files, dir))
            }
        }
    }
}

async fn finish(entry: Arc<Active>) {
    entry.stop.send_replace(true);
    let task = entry.task.lock().unwrap().take();
    if let Some(t) = task {
        let _ = t.await;
    }
}

/// `{app}/{stream}` as a relative path. Published names are checked by the hub
/// ([`StreamKey::check_names`]); this keeps any other name inside the root too.
fn stream_dir(key: &StreamKey) -> PathBuf {
    let part =
        |s: &str| safe_relative(s).unwrap_or_else(|_| PathBuf::from(s.replace(['/', '.'], "_")));
    part(&key.app).join(part(&key.stream))
}

/// A `customized_path` as a path relative to the record dir: no root, no `..`.
fn safe_relative(p: &str) -> Result<PathBuf, RecordError> {
    if p.len() > 512 {
        return Err(RecordError::BadPath("longer than 512 bytes".into()));
    }
    let mut out = PathBuf::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(RecordError::BadPath(format!(
                    "{p:?} leaves the record directory"
                )))
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(RecordError::BadPath(format!(
                    "{p:?} is absolute; it must be relative to the record directory"
                )))
            }
        }
    }
    Ok(out)
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

pub(crate) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// (`YYYY-MM-DD`, `HH-MM-SS`) in UTC: a recording's directory and file names.
pub(crate) fn date_time(unix: u64) -> (String, String) {
    let (y, m, d) = ferrocast_proto::time::civil_from_days((unix / 86_400) as i64);
    let secs = unix % 86_400;
    (
        format!("{y:04}-{m:02}-{d:02}"),
        format!("{:02}-{:02}-{:02}", secs / 3600, secs / 60 % 60, secs % 60),
    )
}

/// Writes pieces to a file off the async threads.
pub(crate) struct FileSink {
    file: Option<std::fs::File>,
    pub path: PathBuf,
    pub written: u64,
}

impl FileSink {
    pub(crate) async fn create(path: PathBuf) -> std::io::Result<Self> {
        let p = path.clone();
        let file = tokio::task::spawn_blocking(move || {
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&p)
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok(FileSink {
            file: Some(file),
            path,
            written: 0,
        })
    }

    fn take(&mut self) -> std::io::Result<std::fs::File> {
        self.file
            .take()
            .ok_or_else(|| std::io::Error::other("file closed after an earlier error"))
    }

    /// Appends `pieces` in order. On a write error (a full disk) the file is cut
    /// back to where this append began, so it never ends in half a fragment header
    /// (a player could not open it) but at the end of the last whole fragment.
    pub(crate) async fn append(&mut self, pieces: Vec<bytes::Bytes>) -> std::io::Result<()> {
        if pieces.is_empty() {
            return Ok(());
        }
        let mut f = self.take()?;
        let start = self.written;
        let (f, r) = tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut n = 0u64;
            for p in &pieces {
                if let Err(e) = f.write_all(p) {
                    let _ = f.set_len(start);
                    return (f, Err(e));
                }
                n += p.len() as u64;
            }
            (f, Ok(n))
        })
        .await
        .map_err(std::io::Error::other)?;
        self.written += r?;
        self.file = Some(f);
        Ok(())
    }

    /// Overwrites bytes at absolute offsets, then flushes the file to disk.
    pub(crate) async fn patch_and_sync(
        &mut self,
        patches: Vec<(u64, [u8; 4])>,
    ) -> std::io::Result<()> {
        let f = self.take()?;
        let (f, r) = tokio::task::spawn_blocking(move || {
            use std::os::unix::fs::FileExt;
            let r = (|| {
                f.sync_data()?;
                for (off, b) in &patches {
                    f.write_all_at(b, *off)?;
                }
                f.sync_data()
            })();
            (f, r)
        })
        .await
        .map_err(std::io::Error::other)?;
        self.file = Some(f);
        r
    }

    pub(crate) async fn sync(&mut self) -> std::io::Result<()> {
        self.patch_and_sync(Vec::new()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn publish_gate_options_start_prevent_and_size_mp4_recordings() {
        use crate::hub::{HubSettings, Origin, OriginKind, PublishOptions};
        let config = Config::default();
        let hub = Hub::new(HubSettings::from_config(&config));
        let mut settings = RecordSettings::from_config(&config);
        settings.root =
            std::env::temp_dir().join(format!("ferrocast-record-gate-{}", std::process::id()));
        settings.auto_mp4_apps = vec!["auto".into()];
        let rec = Recorder::new(hub.clone(), settings.clone(), None);
        rec.attach();
        let publish = |app: &str, options: PublishOptions| {
            let origin = Origin {
                kind: OriginKind::RtmpPush,
                peer: None,
                local: None,
                params: String::new(),
                url: String::new(),
                options,
            };
            hub.publish(StreamKey::new(None, app, "s"), origin).unwrap()
        };
        let on = PublishOptions {
            enable_mp4: Some(true),
            mp4_max_second: Some(30),
            ..Default::default()
        };
        let off = PublishOptions {
            enable_mp4: Some(false),
            ..Default::default()
        };
        let cases = [
            ("live", on.clone(), true),
            ("auto", off, false),
            ("other", PublishOptions::default(), false),
        ];
        let mut publishers = Vec::new();
        for (app, options, recorded) in cases {
            publishers.push(publish(app, options));
            let key = StreamKey::new(None, app, "s");
            assert_eq!(rec.is_recording(&key, RecordKind::Mp4), recorded, "{app}");
        }
        // auto/s was kept from recording by its gate; a stream of the app without
        // options is recorded.
        let other = StreamKey::new(None, "auto", "t");
        let origin = Origin {
            kind: OriginKind::RtmpPush,
            peer: None,
            local: None,
            params: String::new(),
            url: String::new(),
            options: PublishOptions::default(),
        };
        let _p = hub.publish(other.clone(), origin).unwrap();
        assert!(rec.is_recording(&other, RecordKind::Mp4));
        // mp4_max_second is the stream's file length.
        let stream = hub.find(&StreamKey::new(None, "live", "s")).unwrap();
        assert_eq!(rec.options_for(&stream).max_second, 30);
        assert_eq!(
            rec.options_for(&hub.find(&other).unwrap()).max_second,
            settings.max_second
        );
        rec.shutdown().await;
        let _ = std::fs::remove_dir_all(&settings.root);
    }

    #[test]
    fn dates_in_utc() {
        assert_eq!(date_time(0), ("1970-01-01".into(), "00-00-00".into()));
        // 2026-11-24 10:57:21 UTC
        assert_eq!(
            date_time(1_795_517_841),
            ("2026-11-24".into(), "10-57-21".into())
        );
        // 2024-02-29 23:59:59 UTC (leap day)
        assert_eq!(
            date_time(1_709_251_199),
            ("2024-02-29".into(), "23-59-59".into())
        );
    }

    #[test]
    fn customized_path_stays_inside() {
        assert_eq!(safe_relative("a/b").unwrap(), PathBuf::from("a/b"));
        assert_eq!(safe_relative("./a").unwrap(), PathBuf::from("a"));
        assert!(safe_relative("../x").is_err());
        assert!(safe_relative("a/../../x").is_err());
        assert!(safe_relative("/etc").is_err());
        assert!(safe_relative(&"a".repeat(600)).is_err());
    }

    #[test]
    fn record_types() {
        assert_eq!(RecordKind::from_type("0"), Some(RecordKind::Hls));
        assert_eq!(RecordKind::from_type("1"), Some(RecordKind::Mp4));
        assert_eq!(RecordKind::from_type("2"), None);
        assert!(is_date("2026-11-24"));
        assert!(!is_date("2026-11-2x"));
        assert!(!is_date("../../etc"));
    }
}
