//! The [`Transcoder`]: the handle the server and the API hold. It starts, stops and
//! lists transcodes and ffmpeg sources, checks what callers ask for, and answers
//! with typed values and [`TranscodeError`]s; the ZLMediaKit codes and JSON are made
//! from those in `api/`, never here. The child processes themselves are
//! `supervisor.rs`'s.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use thiserror::Error;

use super::args::{
    ffmpeg_source_args, ffmpeg_source_key, local_stream_key, rendition_key, Rendition,
};
use super::supervisor::{supervise_source, supervise_transcode, Job, JobStatus, POLL};
use crate::config::TranscodeConfig;
use crate::hub::{Hub, StreamKey};
use crate::redact::redact;

/// The longest URL accepted by addFFmpegSource.
const MAX_URL_LEN: usize = 4096;

/// addFFmpegSource jobs at once: each is an ffmpeg process, and the API must not be
/// a way to fork without bound (a relay per camera of a large site fits).
pub(crate) const MAX_FFMPEG_SOURCES: usize = 64;

/// Why a transcode or an ffmpeg source was not started. Each names what was wrong;
/// `api/` turns them into ZLMediaKit codes and messages.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TranscodeError {
    /// No ladder of that name in `transcode.ladders`.
    #[error("invalid parameter ladder: no ladder named {name}")]
    UnknownLadder { name: String },
    /// The stream to transcode does not exist.
    #[error("can not find the stream {key}")]
    StreamNotFound { key: StreamKey },
    /// The stream is a rendition of another transcode.
    #[error("{key} is a rendition of a transcoded stream; it is not transcoded again")]
    IsRendition { key: StreamKey },
    /// `transcode.max_concurrent` transcodes are running.
    #[error("too many transcodes: transcode.max_concurrent is {limit}")]
    MaxConcurrent { limit: usize },
    /// [`MAX_FFMPEG_SOURCES`] addFFmpegSource jobs exist already.
    #[error("too many ffmpeg sources: at most {limit}")]
    TooManySources { limit: usize },
    /// A parameter that cannot be used, and why when there is more to say.
    #[error("invalid parameter {name}{}", why.map(|w| format!(": {w}")).unwrap_or_default())]
    InvalidParameter {
        name: &'static str,
        why: Option<&'static str>,
    },
    /// addFFmpegSource to a stream of this server that someone already publishes.
    #[error("stream {key} is already being published")]
    AlreadyPublished { key: StreamKey },
    /// addFFmpegSource: ffmpeg was not publishing when the timeout passed; the job
    /// was removed. `dst_url` has its password hidden; `last_error` is ffmpeg's last
    /// stderr line.
    #[error("ffmpeg did not start publishing to {dst_url} within {timeout_ms} ms{}", last_error.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    NotPublishing {
        dst_url: String,
        timeout_ms: u64,
        last_error: Option<String>,
    },
}

/// One transcode, as listTranscode shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscodeInfo {
    pub key: StreamKey,
    pub ladder: String,
    /// Started by `transcode.apps`, not by startTranscode.
    pub auto: bool,
    /// The renditions of the current (or last) run.
    pub renditions: Vec<Rendition>,
    /// ffmpeg's process id while it runs.
    pub pid: Option<u32>,
    pub restarts: u32,
    pub status: JobStatus,
    /// The last line ffmpeg wrote before it last died.
    pub last_error: Option<String>,
}

/// One ffmpeg source, as listFFmpegSource shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FfmpegSourceInfo {
    pub key: String,
    /// The URLs with any password hidden.
    pub src_url: String,
    pub dst_url: String,
    pub pid: Option<u32>,
    pub restarts: u32,
    pub status: JobStatus,
    pub last_error: Option<String>,
}

/// Who asked for a transcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Trigger {
    /// startTranscode: ends with the source's publisher (after [`super::SOURCE_GRACE`]).
    Api,
    /// `transcode.apps`: lives as long as the stream, continue_push included.
    App,
}

/// A transcode job: a source, its ladder and its supervised ffmpeg.
pub(super) struct Transcode {
    pub(super) key: StreamKey,
    pub(super) ladder: String,
    pub(super) trigger: Trigger,
    /// Every `{stream}_{rung}` of the ladder, held in [`Inner::rendition_keys`].
    pub(super) reserved: Vec<StreamKey>,
    pub(super) job: Job,
}

/// An addFFmpegSource job.
pub(super) struct Source {
    pub(super) key: String,
    pub(super) src_url: String,
    pub(super) dst_url: String,
    pub(super) args: Vec<String>,
    pub(super) job: Job,
}

/// Everything the [`Transcoder`] handles and its supervisor tasks share.
pub(super) struct Inner {
    pub(super) hub: Arc<Hub>,
    pub(super) config: TranscodeConfig,
    /// Where ffmpeg connects: the RTMP listener, unspecified addresses made loopback.
    pub(super) rtmp_addr: SocketAddr,
    /// The listener's address as bound, to recognize our own URLs in addFFmpegSource.
    listen_addr: SocketAddr,
    pub(super) transcodes: Mutex<HashMap<StreamKey, Arc<Transcode>>>,
    /// Streams that are renditions: never transcoded themselves.
    pub(super) rendition_keys: Mutex<HashSet<StreamKey>>,
    sources: Mutex<BTreeMap<String, Arc<Source>>>,
}

/// The ffmpeg supervisor: transcodes (ladders) and ffmpeg sources. Cheap to clone.
#[derive(Clone)]
pub struct Transcoder {
    inner: Arc<Inner>,
}

/// The ladder `transcode.apps` gives a stream: an `"app/stream"` entry wins over an
/// `"app"` one.
pub fn ladder_for<'a>(
    apps: &'a std::collections::BTreeMap<String, String>,
    key: &StreamKey,
) -> Option<&'a String> {
    apps.get(&format!("{}/{}", key.app, key.stream))
        .or_else(|| apps.get(&key.app))
}

impl Transcoder {
    /// `rtmp_addr`: the RTMP listener, where ffmpeg reads sources and publishes
    /// renditions (an unspecified address is reached through loopback).
    pub fn new(hub: Arc<Hub>, config: TranscodeConfig, rtmp_addr: SocketAddr) -> Self {
        let mut connect = rtmp_addr;
        if connect.ip().is_unspecified() {
            connect.set_ip(match connect.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            });
        }
        Transcoder {
            inner: Arc::new(Inner {
                hub,
                config,
                rtmp_addr: connect,
                listen_addr: rtmp_addr,
                transcodes: Mutex::new(HashMap::new()),
                rendition_keys: Mutex::new(HashSet::new()),
                sources: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    /// Transcodes every new stream of the apps (`"live"`) and streams (`"live/match"`)
    /// in `transcode.apps` with their ladder, renditions excepted. Meant for start-up.
    pub fn attach(&self) {
        if self.inner.config.apps.is_empty() {
            return;
        }
        let me: Weak<Inner> = Arc::downgrade(&self.inner);
        self.inner.hub.add_on_new_stream(move |stream| {
            let Some(inner) = me.upgrade() else { return };
            let Some(ladder) = ladder_for(&inner.config.apps, &stream.key).cloned() else {
                return;
            };
            if inner.rendition_keys.lock().unwrap().contains(&stream.key) {
                return;
            }
            let t = Transcoder { inner };
            match t.start_with(&stream.key, &ladder, Trigger::App) {
                Ok(_) => tracing::info!(stream = %stream.key, ladder, "transcoding the app's new stream"),
                Err(e) => tracing::warn!(stream = %stream.key, ladder, error = %e, "the app's new stream is not transcoded"),
            }
        });
    }

    /// startTranscode: transcodes `key` with the ladder named `ladder`; the job's key
    /// (`{vhost}/{app}/{stream}`). Already transcoding: the same key, unchanged.
    pub fn start(&self, key: &StreamKey, ladder: &str) -> Result<String, TranscodeError> {
        self.start_with(key, ladder, Trigger::Api)
    }

    fn start_with(
        &self,
        key: &StreamKey,
        ladder: &str,
        trigger: Trigger,
    ) -> Result<String, TranscodeError> {
        let inner = &self.inner;
        let Some(rungs) = inner.config.ladders.get(ladder) else {
            return Err(TranscodeError::UnknownLadder {
                name: ladder.to_owned(),
            });
        };
        if inner.hub.find(key).is_none() {
            return Err(TranscodeError::StreamNotFound { key: key.clone() });
        }
        let id = key.to_string();
        let mut transcodes = inner.transcodes.lock().unwrap();
        if transcodes.contains_key(key) {
            return Ok(id);
        }
        if inner.rendition_keys.lock().unwrap().contains(key) {
            return Err(TranscodeError::IsRendition { key: key.clone() });
        }
        if transcodes.len() >= inner.config.max_concurrent {
            return Err(TranscodeError::MaxConcurrent {
                limit: inner.config.max_concurrent,
            });
        }
        let reserved: Vec<StreamKey> = rungs
            .rungs
            .iter()
            .map(|r| rendition_key(key, &r.name))
            .collect();
        inner
            .rendition_keys
            .lock()
            .unwrap()
            .extend(reserved.iter().cloned());
        let t = Arc::new(Transcode {
            key: key.clone(),
            ladder: ladder.to_owned(),
            trigger,
            reserved,
            job: Job::new(JobStatus::WaitingForSource),
        });
        transcodes.insert(key.clone(), t.clone());
        // Spawned under the lock, so a stop() right after finds the task to wait for.
        let task = tokio::spawn(supervise_transcode(inner.clone(), t.clone()));
        *t.job.task.lock().unwrap() = Some(task);
        tracing::info!(stream = %key, ladder, "transcode started");
        Ok(id)
    }

    /// stopTranscode: kills the transcode's ffmpeg (and waits for it) and ends its
    /// renditions. False if `key` is not being transcoded.
    pub async fn stop(&self, key: &StreamKey) -> bool {
        let t = self.inner.transcodes.lock().unwrap().get(key).cloned();
        let Some(t) = t else { return false };
        t.job.stop_and_wait().await;
        true
    }

    /// listTranscode: every transcode, by key.
    pub fn list(&self) -> Vec<TranscodeInfo> {
        let mut all: Vec<Arc<Transcode>> = self
            .inner
            .transcodes
            .lock()
            .unwrap()
            .values()
            .cloned()
            .collect();
        all.sort_by_key(|t| t.key.to_string());
        all.iter()
            .map(|t| {
                let st = t.job.state.lock().unwrap();
                TranscodeInfo {
                    key: t.key.clone(),
                    ladder: t.ladder.clone(),
                    auto: t.trigger == Trigger::App,
                    renditions: st.renditions.clone(),
                    pid: st.pid,
                    restarts: st.restarts,
                    status: st.status,
                    last_error: st.last_error.clone(),
                }
            })
            .collect()
    }

    /// The renditions of `key` being produced now (ffmpeg running and the
    /// rendition's stream publishing), for the master playlist, in ladder order.
    pub fn renditions(&self, key: &StreamKey) -> Vec<Rendition> {
        let t = self.inner.transcodes.lock().unwrap().get(key).cloned();
        let Some(t) = t else { return Vec::new() };
        let st = t.job.state.lock().unwrap();
        if st.status != JobStatus::Running {
            return Vec::new();
        }
        st.renditions
            .iter()
            .filter(|r| {
                self.inner
                    .hub
                    .find(&r.key)
                    .is_some_and(|s| s.is_publishing())
            })
            .cloned()
            .collect()
    }

    /// addFFmpegSource: runs `ffmpeg [-re] -i src_url -c copy -f flv dst_url`,
    /// restarted with back-off until [`Transcoder::del_ffmpeg_source`]. Its key;
    /// the same key if `dst_url` already has a job. Within `timeout_ms` (0: no
    /// check) the job must be publishing: the destination stream is live in the hub
    /// when `dst_url` is this server, else ffmpeg has opened its output and runs.
    /// Otherwise the job is removed and the call fails with
    /// [`TranscodeError::NotPublishing`].
    pub async fn add_ffmpeg_source(
        &self,
        src_url: &str,
        dst_url: &str,
        timeout_ms: u64,
    ) -> Result<String, TranscodeError> {
        // src_url follows `-i`, so ffmpeg never takes it for an option; dst_url must be
        // a URL of a streaming protocol (not a file path, not an option).
        let bad = |url: &str| {
            url.is_empty() || url.len() > MAX_URL_LEN || url.chars().any(char::is_control)
        };
        if bad(src_url) {
            return Err(TranscodeError::InvalidParameter {
                name: "src_url",
                why: None,
            });
        }
        let dst_lower = dst_url.to_ascii_lowercase();
        if bad(dst_url)
            || !["rtmp://", "rtmps://", "rtsp://"]
                .iter()
                .any(|s| dst_lower.starts_with(s))
        {
            return Err(TranscodeError::InvalidParameter {
                name: "dst_url",
                why: Some("an rtmp://, rtmps:// or rtsp:// URL"),
            });
        }
        let inner = &self.inner;
        let local = local_stream_key(dst_url, inner.listen_addr);
        let key = ffmpeg_source_key(dst_url);
        let source = {
            let mut sources = inner.sources.lock().unwrap();
            if sources.contains_key(&key) {
                return Ok(key);
            }
            if sources.len() >= MAX_FFMPEG_SOURCES {
                return Err(TranscodeError::TooManySources {
                    limit: MAX_FFMPEG_SOURCES,
                });
            }
            if let Some(k) = &local {
                if inner.hub.find(k).is_some_and(|s| s.is_publishing()) {
                    return Err(TranscodeError::AlreadyPublished { key: k.clone() });
                }
            }
            let s = Arc::new(Source {
                key: key.clone(),
                src_url: src_url.to_owned(),
                dst_url: dst_url.to_owned(),
                args: ffmpeg_source_args(src_url, dst_url),
                job: Job::new(JobStatus::Running),
            });
            sources.insert(key.clone(), s.clone());
            let task = tokio::spawn(supervise_source(inner.clone(), s.clone()));
            *s.job.task.lock().unwrap() = Some(task);
            s
        };
        tracing::info!(key, src = %redact(src_url), dst = %redact(dst_url), "ffmpeg source added");
        if timeout_ms == 0 {
            return Ok(key);
        }
        let deadline = Instant::now() + Duration::from_millis(timeout_ms);
        loop {
            let publishing = match &local {
                Some(k) => inner.hub.find(k).is_some_and(|s| s.is_publishing()),
                None => {
                    source.job.output_opened.load(Ordering::Relaxed)
                        && source.job.state.lock().unwrap().pid.is_some()
                }
            };
            if publishing {
                return Ok(key);
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            tokio::time::sleep(POLL.min(deadline - now)).await;
        }
        let last = source.job.state.lock().unwrap().last_error.clone();
        self.del_ffmpeg_source(&key).await;
        Err(TranscodeError::NotPublishing {
            dst_url: redact(dst_url),
            timeout_ms,
            last_error: last,
        })
    }

    /// delFFmpegSource: kills the job's ffmpeg (and waits for it). False if there is
    /// no such job.
    pub async fn del_ffmpeg_source(&self, key: &str) -> bool {
        let s = self.inner.sources.lock().unwrap().get(key).cloned();
        let Some(s) = s else { return false };
        s.job.stop_and_wait().await;
        self.inner.sources.lock().unwrap().remove(key);
        true
    }

    /// listFFmpegSource: every ffmpeg source, by key.
    pub fn list_ffmpeg_sources(&self) -> Vec<FfmpegSourceInfo> {
        let all: Vec<Arc<Source>> = self
            .inner
            .sources
            .lock()
            .unwrap()
            .values()
            .cloned()
            .collect();
        all.iter()
            .map(|s| {
                let st = s.job.state.lock().unwrap();
                FfmpegSourceInfo {
                    key: s.key.clone(),
                    src_url: redact(&s.src_url),
                    dst_url: redact(&s.dst_url),
                    pid: st.pid,
                    restarts: st.restarts,
                    status: st.status,
                    last_error: st.last_error.clone(),
                }
            })
            .collect()
    }

    /// Kills every ffmpeg child and waits for them all.
    pub async fn shutdown(&self) {
        let transcodes: Vec<Arc<Transcode>> = self
            .inner
            .transcodes
            .lock()
            .unwrap()
            .values()
            .cloned()
            .collect();
        let sources: Vec<Arc<Source>> = self
            .inner
            .sources
            .lock()
            .unwrap()
            .values()
            .cloned()
            .collect();
        for t in &transcodes {
            t.job.stop.send_replace(true);
        }
        for s in &sources {
            s.job.stop.send_replace(true);
        }
        for t in &transcodes {
            t.job.stop_and_wait().await;
        }
        for s in &sources {
            s.job.stop_and_wait().await;
        }
        self.inner.sources.lock().unwrap().clear();
    }
}

#[cfg(test)]
mod tests {
    //! The transcoder with a fake ffmpeg (a shell script): what the API calls check,
    //! restarts, and children killed and reaped. The tests with a real ffmpeg are in
    //! `tests/transcode_ffmpeg.rs`.
    use super::super::args::tests::{addr, config, key};
    use super::super::SOURCE_GRACE;
    use super::*;
    use crate::hub::{HubSettings, Origin};
    use bytes::Bytes;

    #[test]
    fn ladders_per_app_and_per_stream() {
        let apps: std::collections::BTreeMap<String, String> = [
            ("live".to_owned(), "default".to_owned()),
            ("live/match".to_owned(), "sports".to_owned()),
        ]
        .into();
        let k = |app: &str, stream: &str| StreamKey::new(None, app, stream);
        assert_eq!(
            ladder_for(&apps, &k("live", "match")).map(String::as_str),
            Some("sports")
        );
        assert_eq!(
            ladder_for(&apps, &k("live", "other")).map(String::as_str),
            Some("default")
        );
        assert_eq!(ladder_for(&apps, &k("vod", "match")), None);
    }

    fn hub(continue_push_ms: u64) -> Arc<Hub> {
        Hub::new(HubSettings {
            gop_cache: true,
            gop_cache_max_frames: 1024,
            gop_cache_max_bytes: 1 << 20,
            queue_len: 64,
            slow_player_timeout: Duration::from_secs(5),
            continue_push: Duration::from_millis(continue_push_ms),
            max_stream_wait: Duration::from_millis(100),
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

    /// An FLV AVC sequence header of a 1280x720 stream (from ffmpeg's libx264).
    const AVC_720P: &[u8] = &[
        0x17, 0x00, 0x00, 0x00, 0x00, 0x01, 0x42, 0xc0, 0x1f, 0xff, 0xe1, 0x00, 0x17, 0x67, 0x42,
        0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xec, 0x04, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40, 0x00,
        0x00, 0x0c, 0x83, 0xc6, 0x0c, 0xa8, 0x01, 0x00, 0x04, 0x68, 0xce, 0x0f, 0xc8,
    ];

    #[tokio::test]
    async fn start_checks_ladder_stream_and_max_concurrent() {
        let hub = hub(0);
        let _a = hub.publish(key("a"), origin()).unwrap();
        let _b = hub.publish(key("b"), origin()).unwrap();
        let t = Transcoder::new(hub.clone(), config("/nonexistent/ffmpeg", 1), addr());
        assert_eq!(
            t.start(&key("a"), "nope"),
            Err(TranscodeError::UnknownLadder {
                name: "nope".into()
            })
        );
        assert_eq!(
            t.start(&key("zzz"), "default"),
            Err(TranscodeError::StreamNotFound { key: key("zzz") })
        );
        assert_eq!(
            t.start(&key("a"), "default"),
            Ok("__defaultVhost__/live/a".into())
        );
        assert_eq!(
            t.start(&key("a"), "default"),
            Ok("__defaultVhost__/live/a".into()),
            "already: unchanged"
        );
        assert_eq!(
            t.start(&key("b"), "default"),
            Err(TranscodeError::MaxConcurrent { limit: 1 })
        );
        let list = t.list();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].key.to_string(), "__defaultVhost__/live/a");
        assert_eq!(list[0].ladder, "default");
        assert_eq!(list[0].status, JobStatus::WaitingForSource);
        // A rendition is not transcoded itself.
        let _r = hub.publish(key("a_480p"), origin()).unwrap();
        let e = t.start(&key("a_480p"), "default").unwrap_err();
        assert_eq!(e, TranscodeError::IsRendition { key: key("a_480p") });
        // Stopping frees the slot.
        assert!(t.stop(&key("a")).await);
        assert!(!t.stop(&key("a")).await);
        assert!(t.list().is_empty());
        assert_eq!(
            t.start(&key("b"), "default"),
            Ok("__defaultVhost__/live/b".into())
        );
        t.shutdown().await;
        assert!(t.list().is_empty());
    }

    /// A fake ffmpeg: records its arguments, prints an output header, then runs the
    /// given shell snippet.
    fn fake_ffmpeg(dir: &std::path::Path, body: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join("ffmpeg");
        let script = format!(
            "#!/bin/sh\necho \"$@\" >> '{}'\necho \"Output #0, flv, to 'x':\" >&2\n{body}\n",
            dir.join("args").display()
        );
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.to_str().unwrap().to_owned()
    }

    fn test_dir(name: &str) -> std::path::PathBuf {
        let d =
            std::env::temp_dir().join(format!("ferrocast-transcode-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    async fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
        let t = Instant::now();
        while !check() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn a_dying_ffmpeg_is_restarted_and_the_transcode_ends_with_the_source() {
        let dir = test_dir("restart");
        let ffmpeg = fake_ffmpeg(&dir, "echo 'boom: bad things' >&2\nexit 1");
        let hub = hub(0);
        let publisher = hub.publish(key("m"), origin()).unwrap();
        publisher.push_video(0, Bytes::from_static(AVC_720P));
        let t = Transcoder::new(
            hub.clone(),
            config(&ffmpeg, 2),
            "0.0.0.0:19350".parse().unwrap(),
        );
        t.start(&key("m"), "default").unwrap();
        wait_for("two restarts", || t.list()[0].restarts >= 2).await;
        let l = t.list();
        assert!(
            l[0].last_error
                .as_deref()
                .unwrap()
                .contains("boom: bad things"),
            "{l:?}"
        );
        let names: Vec<&str> = l[0].renditions.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["480p", "360p"]);
        let args = std::fs::read_to_string(dir.join("args")).unwrap();
        let first = args.lines().next().unwrap();
        assert!(
            first.contains("-i rtmp://127.0.0.1:19350/live/m "),
            "{first}"
        );
        assert!(
            first.ends_with("rtmp://127.0.0.1:19350/live/m_360p"),
            "{first}"
        );
        assert!(t.renditions(&key("m")).is_empty(), "nothing is produced");
        // The source ends: so does the transcode, and its slot is free.
        drop(publisher);
        wait_for("the transcode to end", || t.list().is_empty()).await;
        t.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_running_ffmpeg_is_killed_when_the_source_stops_publishing() {
        let dir = test_dir("grace");
        let ffmpeg = fake_ffmpeg(&dir, "exec sleep 60");
        let hub = hub(60_000); // the stream stays, not publishing
        let publisher = hub.publish(key("m"), origin()).unwrap();
        publisher.push_video(0, Bytes::from_static(AVC_720P));
        let t = Transcoder::new(hub.clone(), config(&ffmpeg, 2), addr());
        t.start(&key("m"), "default").unwrap();
        wait_for("ffmpeg to run", || t.list()[0].pid.is_some()).await;
        let pid = t.list()[0].pid.unwrap();
        assert_eq!(t.list()[0].status, JobStatus::Running);
        let stopped = Instant::now();
        drop(publisher);
        wait_for("the transcode to end", || t.list().is_empty()).await;
        assert!(stopped.elapsed() >= SOURCE_GRACE, "not before the grace");
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "child reaped"
        );
        t.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn ffmpeg_sources_check_their_start_and_are_killed_on_delete() {
        let dir = test_dir("source");
        let hub = hub(0);
        // Exits at once: never publishing; the job is removed.
        let failing = fake_ffmpeg(&dir, "echo 'Connection refused' >&2\nexit 1");
        let t = Transcoder::new(hub.clone(), config(&failing, 2), addr());
        let e = t
            .add_ffmpeg_source("/media/a.mp4", "rtmp://remote.example/live/a", 300)
            .await
            .unwrap_err();
        assert!(
            matches!(
                &e,
                TranscodeError::NotPublishing { timeout_ms: 300, last_error: Some(last), .. }
                    if last.contains("Connection refused")
            ),
            "{e:?}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains("within 300 ms") && msg.contains("Connection refused"),
            "{msg}"
        );
        assert!(t.list_ffmpeg_sources().is_empty());
        // To our own server: the destination stream must appear in the hub.
        let e = t
            .add_ffmpeg_source("/media/a.mp4", "rtmp://127.0.0.1:19350/live/a", 200)
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                TranscodeError::NotPublishing {
                    timeout_ms: 200,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(t.add_ffmpeg_source("x", "-o", 100).await.is_err());
        assert!(t
            .add_ffmpeg_source("x", "/tmp/file.flv", 100)
            .await
            .is_err());
        t.shutdown().await;

        // Keeps running after printing its output header: started.
        let dir2 = test_dir("source2");
        let running = fake_ffmpeg(&dir2, "exec sleep 60");
        let t = Transcoder::new(hub.clone(), config(&running, 2), addr());
        let k = t
            .add_ffmpeg_source("/media/a.mp4", "rtmp://remote.example/live/a", 5000)
            .await
            .unwrap();
        assert_eq!(
            t.add_ffmpeg_source("/media/b.mp4", "rtmp://remote.example/live/a", 5000)
                .await,
            Ok(k.clone())
        );
        let l = t.list_ffmpeg_sources();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].status, JobStatus::Running);
        let pid = l[0].pid.unwrap();
        assert!(t.del_ffmpeg_source(&k).await);
        assert!(!t.del_ffmpeg_source(&k).await);
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "child reaped"
        );
        assert!(t.list_ffmpeg_sources().is_empty());
        t.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&dir2);
    }
}
