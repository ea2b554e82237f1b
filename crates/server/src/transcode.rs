//! Adaptive bitrate: ffmpeg renditions of live streams, and ffmpeg-fed sources.
//!
//! The [`Transcoder`] supervises ffmpeg child processes. It owns no media path of its
//! own: ffmpeg is an ordinary RTMP player and publisher of this server.
//!
//! # One ffmpeg per transcoded source
//! A transcode of `{app}/{stream}` with a ladder is one ffmpeg process that plays
//! `rtmp://127.0.0.1:{port}/{app}/{stream}`, decodes once, splits the picture in a
//! `filter_complex` (`split`, then one `scale=-2:{height}` per rung) and writes one
//! FLV output per rung, published back to `rtmp://127.0.0.1:{port}/{app}/{stream}_{rung}`
//! ([`transcode_args`] builds the command). Decoding once and encoding every rung in
//! the same process costs one decoder instead of one per rung, and every rung sees
//! exactly the same frames with the same timestamps.
//!
//! # Why renditions are published back as streams
//! A rendition arriving through the RTMP listener is a stream like any other: it gets
//! its own GOP cache, HLS, HTTP-FLV, RTMP play, recording and API entry without any
//! code here, and the master playlist only has to list `{stream}_{rung}` next to the
//! source ([`Transcoder::renditions`]). The rendition keys are remembered so that the
//! per-app hook never transcodes a rendition again.
//!
//! # Keyframes and timestamps follow the source
//! An HLS player switches variants at segment boundaries, so a rendition must have a
//! keyframe wherever the source has one, and the same timestamps, or a switch jumps
//! or stalls. The flags that achieve that with ffmpeg 5.1 (checked against the
//! server: every rendition frame carried a source timestamp, 0 ms off, and its
//! keyframes were exactly the source's; the ffmpeg tests at the end of this file
//! do that check with real ffmpeg processes):
//! * `-copyts`: no shift of the input timestamps to zero, so a rendition of a stream
//!   that has been live for an hour starts at the hour too.
//! * `-fps_mode passthrough` and `-enc_time_base:v 1:1000`: every decoded frame is
//!   encoded once with its own millisecond timestamp (no frame-rate conversion, no
//!   rounding to a 1/fps time base).
//! * `-force_key_frames source` with `-forced-idr 1`: an IDR frame exactly where the
//!   source has a keyframe; `-sc_threshold 0` and `-g 1000` so the encoder adds none of
//!   its own (1000 frames is longer than any live GOP: 40 s at 25 fps).
//! * `-bf 0`: without B-frames dts equals pts, so the first dts is never negative;
//!   with them the first dts of a stream starting at 0 is, and the muxer would shift
//!   every timestamp by the encoder's B-frame delay (FLV cannot carry negative ones).
//! * `-bsf:a noise=drop=lt(pts\,0)`: the AAC encoder's first packet (its priming) is
//!   stamped 1024 samples before its input; for a source starting at 0 that is
//!   negative and the muxer would shift every track by ~23 ms. Only that packet is
//!   dropped, and only when negative.
//!
//! A rendition is restarted with back-off when ffmpeg dies while the source still
//! publishes. Its streams are then closed at once instead of waiting for
//! continue_push: a publisher that takes a stream over continues its timeline just
//! after the last message, which would move the rendition's clock away from the
//! source's; a fresh stream keeps ffmpeg's (the source's) timestamps.
//!
//! Rungs at or above the source's height are skipped (no upscaling); the width is
//! `-2` (the source's aspect, even). A transcode ends, and frees its
//! `max_concurrent` slot, when the source ends or has not been publishing for
//! [`SOURCE_GRACE`]. One started by the per-app hook (`transcode.apps`) instead waits
//! while the stream is in its continue_push window, and resumes with the publisher.
//!
//! # Hardware encoders
//! `transcode.encoder` may be `h264_nvenc`, `h264_qsv` or `h264_vaapi` (only libx264
//! is tested). Their key-frame flags are set here (`-forced-idr`, `-forced_idr`,
//! `-no-scenecut`), and for VA-API each scaled picture is uploaded with
//! `format=nv12,hwupload`. The device itself must come from `transcode.extra_args`,
//! which are placed once, before the input: global and input options such as
//! `-vaapi_device /dev/dri/renderD128` or `-init_hw_device`. They are not repeated
//! per output, so per-encoder options there would reach no output.
//!
//! # ffmpeg sources (ZLMediaKit's addFFmpegSource)
//! [`Transcoder::add_ffmpeg_source`] runs `ffmpeg [-re] -i {src_url} -c copy -f flv
//! {dst_url}` ([`ffmpeg_source_args`]), restarted with back-off until deleted.
//!
//! ffmpeg's stderr goes to `tracing::debug!` (target `ferrocast::transcode`, with the
//! stream or job key), its exit to info (status 0) or warn. Children are spawned with
//! `kill_on_drop`, and [`Transcoder::shutdown`] kills and reaps every one of them.
//! This module needs ffmpeg 5.1 or later (`-fps_mode`, the `noise` filter's `drop`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{ChildStderr, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Ladder, TranscodeConfig};
use crate::hub::{Hub, StreamKey, DEFAULT_VHOST};

/// A source that has not been publishing for this long (a publisher gone, the stream
/// kept by continue_push) has its transcode stopped: ffmpeg would only stall.
pub const SOURCE_GRACE: Duration = Duration::from_secs(2);
/// How long a new source may take to send its video sequence header (its size tells
/// which rungs to make) before the transcode goes on without it.
const SOURCE_INFO_WAIT: Duration = Duration::from_secs(5);
/// How often the source and the child are looked at.
const POLL: Duration = Duration::from_millis(100);
/// A child that ran this long was fine: its next failure restarts it after the
/// initial delay again, not the last, doubled one.
const STABLE_RUN: Duration = Duration::from_secs(30);
/// After ffmpeg exits, how long to wait for the server to notice that its rendition
/// publishers are gone before closing those streams.
const RELEASE_WAIT: Duration = Duration::from_secs(1);
/// ffmpeg gives up on an input that delivers no data for this long (its
/// `-rw_timeout`, microseconds): a stalled source then shows up as an exit.
const RW_TIMEOUT_US: &str = "10000000";
/// The encoders' maximum GOP, in frames: longer than any live GOP, so keyframes come
/// only from the source's (`-force_key_frames source`).
const MAX_GOP_FRAMES: &str = "1000";
/// The longest stderr line kept as a job's last error.
const MAX_ERROR_LEN: usize = 400;
/// The longest URL accepted by addFFmpegSource.
const MAX_URL_LEN: usize = 4096;

/// An API error: (ZLMediaKit code, message).
pub type ApiError = (i32, String);

/// One rendition of a source: a rung of its ladder, published as its own stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendition {
    /// The rung's name, the stream's suffix (`480p`).
    pub name: String,
    /// `{vhost}/{app}/{stream}_{name}`.
    pub key: StreamKey,
    /// Expected output size; width 0 when the source's size is unknown.
    pub width: u32,
    pub height: u32,
    pub video_kbps: u32,
    pub audio_kbps: u32,
    /// The configured video plus audio bitrate, bits per second (the master
    /// playlist's BANDWIDTH before anything was measured).
    pub bandwidth_bps: u64,
}

/// The key of the rendition `rung` of `source`: `{stream}_{rung}` in the same
/// vhost and app.
pub fn rendition_key(source: &StreamKey, rung: &str) -> StreamKey {
    StreamKey {
        vhost: source.vhost.clone(),
        app: source.app.clone(),
        stream: format!("{}_{rung}", source.stream),
    }
}

/// The renditions `ladder` makes of a `src_width`x`src_height` source, in ladder
/// order: rungs at or above the source's height are skipped (all are kept when the
/// height is unknown, 0). Heights are made even (4:2:0 needs it); widths are what
/// ffmpeg's `scale=-2:h` gives: the source's aspect, rounded to an even number.
pub fn plan_renditions(
    source: &StreamKey,
    ladder: &Ladder,
    src_width: u32,
    src_height: u32,
) -> Vec<Rendition> {
    ladder
        .rungs
        .iter()
        .filter(|r| src_height == 0 || r.height < src_height)
        .map(|r| {
            let height = (r.height & !1).max(2);
            let width = if src_width == 0 || src_height == 0 {
                0
            } else {
                // av_rescale(h, w, 2 * src_h) rounded to nearest, times 2.
                let num = u64::from(height) * u64::from(src_width);
                let den = 2 * u64::from(src_height);
                (((num + den / 2) / den) * 2) as u32
            };
            Rendition {
                name: r.name.clone(),
                key: rendition_key(source, &r.name),
                width,
                height,
                video_kbps: r.video_kbps,
                audio_kbps: ladder.audio_kbps,
                bandwidth_bps: (u64::from(r.video_kbps) + u64::from(ladder.audio_kbps)) * 1000,
            }
        })
        .collect()
}

/// The RTMP URL of `key` on this server at `addr`; `?vhost=` only for a vhost other
/// than the default (the RTMP listener reads it from the stream name's query).
pub fn rtmp_url(addr: SocketAddr, key: &StreamKey) -> String {
    let mut url = format!("rtmp://{addr}/{}/{}", key.app, key.stream);
    if key.vhost != DEFAULT_VHOST {
        url.push_str("?vhost=");
        url.push_str(&key.vhost);
    }
    url
}

/// An ffmpeg command line being built.
#[derive(Default)]
struct Args(Vec<String>);

impl Args {
    /// Fixed flags and values, separated by spaces (none may contain one).
    fn words(&mut self, s: &str) -> &mut Self {
        self.0.extend(s.split_whitespace().map(str::to_owned));
        self
    }

    /// One argument, taken as it is (a URL, a configured value).
    fn arg(&mut self, s: impl Into<String>) -> &mut Self {
        self.0.push(s.into());
        self
    }
}

/// The ffmpeg arguments (without the program) of a transcode reading `input` and
/// publishing each of `renditions` to this server at `rtmp_addr`. See the module
/// documentation for why each key-frame and timestamp flag is there.
pub fn transcode_args(
    config: &TranscodeConfig,
    input: &str,
    renditions: &[Rendition],
    rtmp_addr: SocketAddr,
) -> Vec<String> {
    let encoder = config.encoder.as_str();
    let mut a = Args::default();
    a.words("-hide_banner -nostdin -nostats -loglevel info -copyts");
    for extra in &config.extra_args {
        a.arg(extra);
    }
    a.words("-rw_timeout")
        .arg(RW_TIMEOUT_US)
        .words("-i")
        .arg(input);

    // [0:v:0]split=N[s0][s1];[s0]scale=-2:480[v0];[s1]scale=-2:360[v1]
    let upload = if encoder == "h264_vaapi" {
        ",format=nv12,hwupload"
    } else {
        ""
    };
    let mut graph = String::new();
    if renditions.len() > 1 {
        graph.push_str(&format!("[0:v:0]split={}", renditions.len()));
        for i in 0..renditions.len() {
            graph.push_str(&format!("[s{i}]"));
        }
        for (i, r) in renditions.iter().enumerate() {
            graph.push_str(&format!(";[s{i}]scale=-2:{}{upload}[v{i}]", r.height));
        }
    } else if let Some(r) = renditions.first() {
        graph.push_str(&format!("[0:v:0]scale=-2:{}{upload}[v0]", r.height));
    }
    a.words("-filter_complex").arg(graph);

    for (i, r) in renditions.iter().enumerate() {
        a.words(&format!("-map [v{i}] -map 0:a? -c:v")).arg(encoder);
        if !config.preset.is_empty() && encoder != "h264_vaapi" {
            a.words("-preset").arg(&config.preset);
        }
        if encoder == "libx264" || encoder.starts_with("h264_") {
            a.words("-profile:v main");
        }
        let v = r.video_kbps;
        a.words(&format!(
            "-b:v {v}k -maxrate {v}k -bufsize {}k",
            v.saturating_mul(2)
        ));
        match encoder {
            "h264_vaapi" => {} // hardware frames: the filter graph uploaded them
            "h264_qsv" => {
                a.words("-pix_fmt nv12");
            }
            _ => {
                a.words("-pix_fmt yuv420p");
            }
        }
        a.words(&format!(
            "-g {MAX_GOP_FRAMES} -bf 0 -force_key_frames source"
        ));
        match encoder {
            "libx264" => a.words("-forced-idr 1 -sc_threshold 0"),
            "h264_nvenc" => a.words("-forced-idr 1 -no-scenecut 1"),
            "h264_qsv" => a.words("-forced_idr 1"),
            _ => &mut a,
        };
        a.words("-fps_mode passthrough -enc_time_base:v 1:1000");
        a.words(&format!("-c:a aac -b:a {}k", r.audio_kbps));
        a.words(r"-bsf:a noise=drop=lt(pts\,0) -f flv");
        a.arg(rtmp_url(rtmp_addr, &r.key));
    }
    a.0
}

/// Whether ffmpeg should read `src_url` at its native rate (`-re`): files (a path,
/// `file:`, or an http(s) URL of an MP4/MKV/MOV/WebM/AVI file) would otherwise be
/// pushed as fast as they can be read; live protocols arrive at their own pace.
fn reads_a_file(src_url: &str) -> bool {
    let lower = src_url.to_ascii_lowercase();
    match lower.split_once("://") {
        None => true,
        Some(("file", _)) => true,
        Some(("http" | "https", rest)) => {
            let path = rest.split(['?', '#']).next().unwrap_or("");
            [".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v"]
                .iter()
                .any(|ext| path.ends_with(ext))
        }
        Some(_) => lower.starts_with("file:"),
    }
}

/// The ffmpeg arguments of an addFFmpegSource job (ZLMediaKit's default command is a
/// re-encode; ferrocast's only command copies): `[-re] -i src -c copy -f flv dst`
/// (`-f rtsp` for an `rtsp://` destination).
pub fn ffmpeg_source_args(src_url: &str, dst_url: &str) -> Vec<String> {
    let mut a = Args::default();
    a.words("-hide_banner -nostdin -nostats -loglevel info -rw_timeout")
        .arg(RW_TIMEOUT_US);
    if reads_a_file(src_url) {
        a.words("-re");
    }
    let format = if dst_url.to_ascii_lowercase().starts_with("rtsp://") {
        "rtsp"
    } else {
        "flv"
    };
    a.words("-i")
        .arg(src_url)
        .words("-c copy -f")
        .arg(format)
        .arg(dst_url);
    a.0
}

/// The key of an addFFmpegSource job: ZLMediaKit uses the MD5 of `dst_url`;
/// ferrocast a 64-bit FNV-1a hash (no crypto needed, one job per destination).
pub fn ffmpeg_source_key(dst_url: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in dst_url.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The stream `dst_url` publishes to if it points at this server's RTMP listener
/// (`rtmp_addr` as bound, which may be unspecified), split the way ffmpeg splits an
/// RTMP URL into app and stream name; `None` for any other destination.
pub fn local_stream_key(dst_url: &str, rtmp_addr: SocketAddr) -> Option<StreamKey> {
    let rest = dst_url.strip_prefix("rtmp://")?;
    let (authority, path_query) = rest.split_once('/')?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, p) = v6.split_once(']')?;
        (h, p.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port: u16 = match port {
        Some(p) => p.parse().ok()?,
        None => 1935,
    };
    if port != rtmp_addr.port() {
        return None;
    }
    let ours = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip == rtmp_addr.ip());
    if !ours {
        return None;
    }
    let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
    // ffmpeg: `a/b` is app a, stream b; `a/b/c` is app a/b, stream c (unless a `:`
    // comes before the second slash: `a/mp4:b/c` is app a, stream mp4:b/c).
    let (app, stream) = match path.split_once('/') {
        None => ("", path),
        Some((first, rest)) => match rest.find('/') {
            Some(i) if !rest[..i].contains(':') => (&path[..first.len() + 1 + i], &rest[i + 1..]),
            _ => (first, rest),
        },
    };
    let stream = stream.strip_suffix(".flv").unwrap_or(stream);
    if stream.is_empty() {
        return None;
    }
    let vhost = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("vhost="))
        .filter(|v| !v.is_empty());
    Some(StreamKey::new(vhost, app, stream))
}

/// Delay before restart number `attempt` (1, 2, ...): doubling from `base`, at most
/// `max`.
pub fn backoff(base: Duration, max: Duration, attempt: u32) -> Duration {
    let factor = 1u32 << attempt.saturating_sub(1).min(16);
    base.saturating_mul(factor).min(max.max(base))
}

/// What a supervised ffmpeg is doing, as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// The source is not publishing yet (or, for an app's transcode, not again), or
    /// its video size is not known yet.
    WaitingForSource,
    /// ffmpeg is running.
    Running,
    /// ffmpeg died; it is started again after the back-off delay.
    Restarting,
    /// The source is not taller than any rung: nothing to make.
    Idle,
    Stopped,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::WaitingForSource => "waiting for the source",
            Status::Running => "running",
            Status::Restarting => "restarting",
            Status::Idle => "idle",
            Status::Stopped => "stopped",
        }
    }
}

/// The mutable part of a job, shared with the API.
#[derive(Debug)]
struct RunState {
    status: Status,
    pid: Option<u32>,
    restarts: u32,
    last_error: Option<String>,
    /// The renditions of the current (or last) run.
    renditions: Vec<Rendition>,
}

impl RunState {
    fn new(status: Status) -> Self {
        RunState {
            status,
            pid: None,
            restarts: 0,
            last_error: None,
            renditions: Vec::new(),
        }
    }
}

/// Who asked for a transcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// startTranscode: ends with the source's publisher (after [`SOURCE_GRACE`]).
    Api,
    /// `transcode.apps`: lives as long as the stream, continue_push included.
    App,
}

/// A supervised ffmpeg: a transcode or an ffmpeg source.
struct Job {
    state: Mutex<RunState>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
    /// Set when the current child printed its `Output #` header: its output is open
    /// and the first packets are written.
    output_opened: Arc<AtomicBool>,
}

impl Job {
    fn new(status: Status) -> Self {
        Job {
            state: Mutex::new(RunState::new(status)),
            stop: watch::channel(false).0,
            task: Mutex::new(None),
            output_opened: Arc::new(AtomicBool::new(false)),
        }
    }

    fn update(&self, f: impl FnOnce(&mut RunState)) {
        f(&mut self.state.lock().unwrap());
    }

    /// Asks the supervisor to end and waits for it (child killed and reaped).
    async fn stop_and_wait(&self) {
        self.stop.send_replace(true);
        let task = self.task.lock().unwrap().take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

struct Transcode {
    key: StreamKey,
    ladder: String,
    trigger: Trigger,
    /// Every `{stream}_{rung}` of the ladder, held in [`Inner::rendition_keys`].
    reserved: Vec<StreamKey>,
    job: Job,
}

struct Source {
    key: String,
    src_url: String,
    dst_url: String,
    args: Vec<String>,
    job: Job,
}

struct Inner {
    hub: Arc<Hub>,
    config: TranscodeConfig,
    /// Where ffmpeg connects: the RTMP listener, unspecified addresses made loopback.
    rtmp_addr: SocketAddr,
    /// The listener's address as bound, to recognize our own URLs in addFFmpegSource.
    listen_addr: SocketAddr,
    transcodes: Mutex<HashMap<StreamKey, Arc<Transcode>>>,
    /// Streams that are renditions: never transcoded themselves.
    rendition_keys: Mutex<HashSet<StreamKey>>,
    sources: Mutex<BTreeMap<String, Arc<Source>>>,
}

impl Inner {
    fn restart_delay(&self, attempt: u32) -> Duration {
        backoff(
            Duration::from_millis(self.config.restart_delay_ms),
            Duration::from_millis(self.config.restart_max_delay_ms),
            attempt,
        )
    }
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
                Err((_, e)) => tracing::warn!(stream = %stream.key, ladder, error = %e, "the app's new stream is not transcoded"),
            }
        });
    }

    /// startTranscode: transcodes `key` with the ladder named `ladder`; the job's key
    /// (`{vhost}/{app}/{stream}`). Already transcoding: the same key, unchanged.
    pub fn start(&self, key: &StreamKey, ladder: &str) -> Result<String, ApiError> {
        self.start_with(key, ladder, Trigger::Api)
    }

    fn start_with(
        &self,
        key: &StreamKey,
        ladder: &str,
        trigger: Trigger,
    ) -> Result<String, ApiError> {
        let inner = &self.inner;
        let Some(rungs) = inner.config.ladders.get(ladder) else {
            return Err((
                -300,
                format!("invalid parameter ladder: no ladder named {ladder}"),
            ));
        };
        if inner.hub.find(key).is_none() {
            return Err((-500, "can not find the stream".to_owned()));
        }
        let id = key.to_string();
        let mut transcodes = inner.transcodes.lock().unwrap();
        if transcodes.contains_key(key) {
            return Ok(id);
        }
        if inner.rendition_keys.lock().unwrap().contains(key) {
            return Err((
                -1,
                format!("{id} is a rendition of a transcoded stream; it is not transcoded again"),
            ));
        }
        if transcodes.len() >= inner.config.max_concurrent {
            return Err((
                -1,
                format!(
                    "too many transcodes: transcode.max_concurrent is {}",
                    inner.config.max_concurrent
                ),
            ));
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
            job: Job::new(Status::WaitingForSource),
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
    pub fn list(&self) -> Vec<Value> {
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
                json!({
                    "key": t.key.to_string(),
                    "vhost": t.key.vhost,
                    "app": t.key.app,
                    "stream": t.key.stream,
                    "ladder": t.ladder,
                    "auto": t.trigger == Trigger::App,
                    "renditions": st.renditions.iter().map(|r| json!({
                        "name": r.name,
                        "stream": r.key.stream,
                        "width": r.width,
                        "height": r.height,
                        "video_kbps": r.video_kbps,
                    })).collect::<Vec<_>>(),
                    "pid": st.pid,
                    "restarts": st.restarts,
                    "status": st.status.label(),
                    "last_error": st.last_error,
                })
            })
            .collect()
    }

    /// The renditions of `key` being produced now (ffmpeg running and the
    /// rendition's stream publishing), for the master playlist, in ladder order.
    pub fn renditions(&self, key: &StreamKey) -> Vec<Rendition> {
        let t = self.inner.transcodes.lock().unwrap().get(key).cloned();
        let Some(t) = t else { return Vec::new() };
        let st = t.job.state.lock().unwrap();
        if st.status != Status::Running {
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
    /// Otherwise the job is removed and the call fails with code -1.
    pub async fn add_ffmpeg_source(
        &self,
        src_url: &str,
        dst_url: &str,
        timeout_ms: u64,
    ) -> Result<String, ApiError> {
        // src_url follows `-i`, so ffmpeg never takes it for an option; dst_url must be
        // a URL of a streaming protocol (not a file path, not an option).
        let bad = |url: &str| {
            url.is_empty() || url.len() > MAX_URL_LEN || url.chars().any(char::is_control)
        };
        if bad(src_url) {
            return Err((-300, "invalid parameter src_url".to_owned()));
        }
        let dst_lower = dst_url.to_ascii_lowercase();
        if bad(dst_url)
            || !["rtmp://", "rtmps://", "rtsp://"]
                .iter()
                .any(|s| dst_lower.starts_with(s))
        {
            return Err((
                -300,
                "invalid parameter dst_url: an rtmp://, rtmps:// or rtsp:// URL".to_owned(),
            ));
        }
        let inner = &self.inner;
        let local = local_stream_key(dst_url, inner.listen_addr);
        let key = ffmpeg_source_key(dst_url);
        let source = {
            let mut sources = inner.sources.lock().unwrap();
            if sources.contains_key(&key) {
                return Ok(key);
            }
            if let Some(k) = &local {
                if inner.hub.find(k).is_some_and(|s| s.is_publishing()) {
                    return Err((-1, format!("stream {k} is already being published")));
                }
            }
            let s = Arc::new(Source {
                key: key.clone(),
                src_url: src_url.to_owned(),
                dst_url: dst_url.to_owned(),
                args: ffmpeg_source_args(src_url, dst_url),
                job: Job::new(Status::Running),
            });
            sources.insert(key.clone(), s.clone());
            let task = tokio::spawn(supervise_source(inner.clone(), s.clone()));
            *s.job.task.lock().unwrap() = Some(task);
            s
        };
        tracing::info!(key, src = %crate::proxy::redact(src_url), dst = %crate::proxy::redact(dst_url), "ffmpeg source added");
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
        let mut msg = format!(
            "ffmpeg did not start publishing to {} within {timeout_ms} ms",
            crate::proxy::redact(dst_url)
        );
        if let Some(last) = last {
            msg.push_str(": ");
            msg.push_str(&last);
        }
        Err((-1, msg))
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

    /// Every ffmpeg source, by key.
    pub fn list_ffmpeg_sources(&self) -> Vec<Value> {
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
                json!({
                    "key": s.key,
                    "src_url": crate::proxy::redact(&s.src_url),
                    "dst_url": crate::proxy::redact(&s.dst_url),
                    "pid": st.pid,
                    "restarts": st.restarts,
                    "status": st.status.label(),
                    "last_error": st.last_error,
                })
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

/// Why a child run ended.
#[derive(Debug)]
enum Exit {
    /// Stop requested; the child was killed and reaped.
    Stopped,
    /// The watch said the run is pointless (the source left); killed and reaped.
    Abandoned,
    /// The child exited by itself: a description for the API.
    Exited { message: String },
}

/// Runs one ffmpeg child to its end: its stderr lines to debug logs, `job`'s pid and
/// status kept up to date. `keep_going` is asked every [`POLL`]; false kills the child.
async fn run_ffmpeg(
    program: &str,
    args: &[String],
    label: &str,
    job: &Job,
    stop: &mut watch::Receiver<bool>,
    mut keep_going: impl FnMut() -> bool,
) -> Exit {
    job.output_opened.store(false, Ordering::Relaxed);
    let spawned = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            return Exit::Exited {
                message: format!("cannot run {program}: {e}"),
            }
        }
    };
    let pid = child.id();
    job.update(|s| {
        s.pid = pid;
        s.status = Status::Running;
    });
    tracing::info!(stream = label, pid, "ffmpeg started");
    tracing::debug!(stream = label, command = %format!("{program} {}", args.join(" ")), "ffmpeg command");
    let stderr = child
        .stderr
        .take()
        .map(|e| tokio::spawn(log_stderr(e, label.to_owned(), job.output_opened.clone())));
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ended = loop {
        tokio::select! {
            status = child.wait() => break Ok(status),
            _ = stop.wait_for(|s| *s) => break Err(Exit::Stopped),
            _ = tick.tick() => {
                if !keep_going() {
                    break Err(Exit::Abandoned);
                }
            }
        }
    };
    let status = match ended {
        Ok(status) => status,
        Err(exit) => {
            let _ = child.start_kill();
            let _ = child.wait().await;
            job.update(|s| s.pid = None);
            tracing::info!(stream = label, pid, "ffmpeg stopped");
            return exit;
        }
    };
    job.update(|s| s.pid = None);
    // ffmpeg has exited, so its stderr is at its end (or about to be).
    let last = match stderr {
        Some(h) => tokio::time::timeout(Duration::from_secs(1), h)
            .await
            .ok()
            .and_then(Result::ok)
            .flatten(),
        None => None,
    };
    let (status_text, success) = match &status {
        Ok(s) => (s.to_string(), s.success()),
        Err(e) => (format!("wait failed: {e}"), false),
    };
    let message = match last {
        Some(line) => format!("ffmpeg {status_text}: {line}"),
        None => format!("ffmpeg {status_text}"),
    };
    if success {
        tracing::info!(stream = label, pid, "ffmpeg exited");
    } else {
        tracing::warn!(stream = label, pid, error = %message, "ffmpeg failed");
    }
    Exit::Exited { message }
}

/// Logs ffmpeg's stderr lines; the last non-empty one is returned (for the API's
/// last_error). Sets `opened` on the `Output #` header.
async fn log_stderr(stderr: ChildStderr, label: String, opened: Arc<AtomicBool>) -> Option<String> {
    let mut reader = BufReader::new(stderr);
    let mut buf = Vec::new();
    let mut last = None;
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return last,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf);
        for part in line.split(['\r', '\n']) {
            let part = part.trim_end();
            if part.is_empty() {
                continue;
            }
            tracing::debug!(target: "ferrocast::transcode", stream = %label, "ffmpeg: {part}");
            if part.starts_with("Output #") {
                opened.store(true, Ordering::Relaxed);
            }
            let mut kept = part.trim().to_owned();
            if kept.len() > MAX_ERROR_LEN {
                let mut end = MAX_ERROR_LEN;
                while !kept.is_char_boundary(end) {
                    end -= 1;
                }
                kept.truncate(end);
            }
            last = Some(kept);
        }
    }
}

/// Tells when a source has been away for too long: gone from the hub, or not
/// publishing for more than [`SOURCE_GRACE`].
struct SourceWatch {
    away_since: Option<Instant>,
}

impl SourceWatch {
    fn new() -> Self {
        SourceWatch { away_since: None }
    }

    fn alive(&mut self, hub: &Hub, key: &StreamKey) -> bool {
        match hub.find(key) {
            None => false,
            Some(s) if s.is_publishing() => {
                self.away_since = None;
                true
            }
            Some(_) => self.away_since.get_or_insert_with(Instant::now).elapsed() <= SOURCE_GRACE,
        }
    }
}

/// What waiting for the source gave.
enum SourceReady {
    /// Publishing, with this video size (0x0: unknown).
    Ready(u32, u32),
    /// The transcode is over: why.
    Over(&'static str),
}

/// Sleeps `d`; false if a stop was asked meanwhile.
async fn sleep_unless_stopped(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = stop.wait_for(|s| *s) => false,
    }
}

/// Waits for the source to publish and to have told its video size.
async fn wait_for_source(
    inner: &Inner,
    t: &Transcode,
    stop: &mut watch::Receiver<bool>,
) -> SourceReady {
    t.job.update(|s| s.status = Status::WaitingForSource);
    let mut watch = SourceWatch::new();
    let mut info_deadline: Option<Instant> = None;
    loop {
        let Some(stream) = inner.hub.find(&t.key) else {
            return SourceReady::Over("the source ended");
        };
        if stream.is_publishing() {
            watch.away_since = None;
            let video = stream.snapshot().info.video;
            match video {
                Some(v) if v.height > 0 => return SourceReady::Ready(v.width, v.height),
                video => {
                    if Instant::now()
                        >= *info_deadline.get_or_insert_with(|| Instant::now() + SOURCE_INFO_WAIT)
                    {
                        return match video {
                            Some(_) => SourceReady::Ready(0, 0),
                            None => SourceReady::Over("the source has no video track"),
                        };
                    }
                }
            }
        } else {
            info_deadline = None;
            if t.trigger == Trigger::Api && !watch.alive(&inner.hub, &t.key) {
                return SourceReady::Over("the source stopped publishing");
            }
        }
        if !sleep_unless_stopped(POLL, stop).await {
            return SourceReady::Over("stopped");
        }
    }
}

/// Ends the rendition streams left by a dead ffmpeg at once (see the module docs),
/// once the server has seen their publishers go. A stream someone else publishes is
/// left alone.
async fn close_renditions<'a>(hub: &Hub, keys: impl Iterator<Item = &'a StreamKey> + Clone) {
    let deadline = Instant::now() + RELEASE_WAIT;
    while Instant::now() < deadline
        && keys
            .clone()
            .any(|k| hub.find(k).is_some_and(|s| s.is_publishing()))
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for k in keys {
        if let Some(s) = hub.find(k) {
            if !s.is_publishing() {
                hub.close_stream(&s);
            }
        }
    }
}

async fn supervise_transcode(inner: Arc<Inner>, t: Arc<Transcode>) {
    let mut stop = t.job.stop.subscribe();
    let label = t.key.to_string();
    let ladder = inner.config.ladders.get(&t.ladder).cloned();
    let mut attempt = 0u32;
    let why = 'run: loop {
        let Some(ladder) = &ladder else {
            break "the ladder is gone";
        };
        let (width, height) = match wait_for_source(&inner, &t, &mut stop).await {
            SourceReady::Ready(w, h) => (w, h),
            SourceReady::Over(why) => break why,
        };
        let renditions = plan_renditions(&t.key, ladder, width, height);
        if renditions.is_empty() {
            // Nothing to make of this source; keep the slot while it publishes, and
            // look again if its size changes (a new publisher).
            t.job.update(|s| {
                s.status = Status::Idle;
                s.renditions.clear();
            });
            tracing::info!(stream = %label, height, ladder = t.ladder, "no rung below the source's height: nothing to transcode");
            let mut watch = SourceWatch::new();
            loop {
                if !sleep_unless_stopped(POLL * 5, &mut stop).await {
                    break 'run "stopped";
                }
                let Some(s) = inner.hub.find(&t.key) else {
                    break 'run "the source ended";
                };
                if t.trigger == Trigger::Api && !watch.alive(&inner.hub, &t.key) {
                    break 'run "the source stopped publishing";
                }
                if s.snapshot().info.video.is_some_and(|v| v.height != height) {
                    continue 'run;
                }
            }
        }
        let input = rtmp_url(inner.rtmp_addr, &t.key);
        let args = transcode_args(&inner.config, &input, &renditions, inner.rtmp_addr);
        t.job.update(|s| s.renditions = renditions.clone());
        let started = Instant::now();
        let mut watch = SourceWatch::new();
        let exit = run_ffmpeg(
            &inner.config.ffmpeg,
            &args,
            &label,
            &t.job,
            &mut stop,
            || watch.alive(&inner.hub, &t.key),
        )
        .await;
        close_renditions(&inner.hub, renditions.iter().map(|r| &r.key)).await;
        match exit {
            Exit::Stopped => break "stopped",
            Exit::Abandoned => {
                if t.trigger == Trigger::Api {
                    break "the source stopped publishing";
                }
                // An app's transcode waits for the publisher to come back.
                continue;
            }
            Exit::Exited { message } => {
                if inner.hub.find(&t.key).is_none() {
                    break "the source ended";
                }
                if started.elapsed() >= STABLE_RUN {
                    attempt = 0;
                }
                attempt += 1;
                let delay = inner.restart_delay(attempt);
                t.job.update(|s| {
                    s.status = Status::Restarting;
                    s.restarts += 1;
                    s.last_error = Some(message);
                });
                tracing::warn!(stream = %label, delay_ms = delay.as_millis() as u64, "restarting ffmpeg");
                if !sleep_unless_stopped(delay, &mut stop).await {
                    break "stopped";
                }
            }
        }
    };
    t.job.update(|s| {
        s.status = Status::Stopped;
        s.pid = None;
    });
    close_renditions(&inner.hub, t.reserved.iter()).await;
    {
        let mut keys = inner.rendition_keys.lock().unwrap();
        for k in &t.reserved {
            keys.remove(k);
        }
    }
    let mut transcodes = inner.transcodes.lock().unwrap();
    if transcodes.get(&t.key).is_some_and(|x| Arc::ptr_eq(x, &t)) {
        transcodes.remove(&t.key);
    }
    tracing::info!(stream = %label, reason = why, "transcode ended");
}

async fn supervise_source(inner: Arc<Inner>, s: Arc<Source>) {
    let mut stop = s.job.stop.subscribe();
    let mut attempt = 0u32;
    loop {
        let started = Instant::now();
        let exit = run_ffmpeg(
            &inner.config.ffmpeg,
            &s.args,
            &s.key,
            &s.job,
            &mut stop,
            || true,
        )
        .await;
        let Exit::Exited { message } = exit else {
            break;
        };
        if started.elapsed() >= STABLE_RUN {
            attempt = 0;
        }
        attempt += 1;
        let delay = inner.restart_delay(attempt);
        s.job.update(|st| {
            st.status = Status::Restarting;
            st.restarts += 1;
            st.last_error = Some(message);
        });
        if !sleep_unless_stopped(delay, &mut stop).await {
            break;
        }
    }
    s.job.update(|st| {
        st.status = Status::Stopped;
        st.pid = None;
    });
    tracing::info!(key = s.key, "ffmpeg source ended");
}

#[cfg(test)]
mod tests {

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
    use super::*;
    use crate::config::Rung;
    use crate::hub::{HubSettings, Origin};
    use bytes::Bytes;

    fn ladder() -> Ladder {
        let rung = |name: &str, height, video_kbps| Rung {
            name: name.into(),
            height,
            video_kbps,
        };
        Ladder {
            audio_kbps: 128,
            rungs: vec![
                rung("1080p", 1080, 6000),
                rung("720p", 720, 3000),
                rung("480p", 480, 1200),
                rung("360p", 360, 600),
            ],
        }
    }

    fn config(ffmpeg: &str, max_concurrent: usize) -> TranscodeConfig {
        TranscodeConfig {
            max_concurrent,
            ffmpeg: ffmpeg.into(),
            encoder: "libx264".into(),
            preset: "veryfast".into(),
            extra_args: vec![],
            restart_delay_ms: 50,
            restart_max_delay_ms: 200,
            apps: BTreeMap::new(),
            ladders: [("default".to_owned(), ladder())].into(),
        }
    }

    fn addr() -> SocketAddr {
        "127.0.0.1:19350".parse().unwrap()
    }

    fn key(stream: &str) -> StreamKey {
        StreamKey::new(None, "live", stream)
    }

    /// The values following each occurrence of `flag`.
    fn values<'a>(args: &'a [String], flag: &str) -> Vec<&'a str> {
        args.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    }

    #[test]
    fn rungs_at_or_above_the_source_height_are_skipped() {
        let r = plan_renditions(&key("m"), &ladder(), 1280, 720);
        let names: Vec<&str> = r.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["480p", "360p"]);
        assert_eq!(
            (r[0].width, r[0].height),
            (854, 480),
            "ffmpeg's scale=-2:480 of 1280x720"
        );
        assert_eq!((r[1].width, r[1].height), (640, 360));
        assert_eq!(r[0].key, key("m_480p"));
        assert_eq!(r[0].bandwidth_bps, 1_328_000);
        assert_eq!(r[1].bandwidth_bps, 728_000);
        // 1080p source: 720p and below.
        let r = plan_renditions(&key("m"), &ladder(), 1920, 1080);
        assert_eq!(r.len(), 3);
        assert_eq!((r[0].width, r[0].height), (1280, 720));
        // 360p source: nothing. Unknown height: everything, width unknown.
        assert!(plan_renditions(&key("m"), &ladder(), 640, 360).is_empty());
        let r = plan_renditions(&key("m"), &ladder(), 0, 0);
        assert_eq!(r.len(), 4);
        assert_eq!(r[0].width, 0);
        // Odd heights are made even; 4:3 sources keep their aspect.
        let mut l = ladder();
        l.rungs[3].height = 361;
        let r = plan_renditions(&key("m"), &l, 640, 480);
        assert_eq!((r[0].width, r[0].height), (480, 360));
    }

    #[test]
    fn urls_carry_the_vhost_only_when_not_default() {
        assert_eq!(rtmp_url(addr(), &key("m")), "rtmp://127.0.0.1:19350/live/m");
        let k = StreamKey::new(Some("example.com"), "live", "m_480p");
        assert_eq!(
            rtmp_url(addr(), &k),
            "rtmp://127.0.0.1:19350/live/m_480p?vhost=example.com"
        );
        let v6: SocketAddr = "[::1]:1935".parse().unwrap();
        assert_eq!(rtmp_url(v6, &key("m")), "rtmp://[::1]:1935/live/m");
    }

    #[test]
    fn transcode_command_has_one_output_per_rung_with_aligned_keyframes() {
        let cfg = config("ffmpeg", 2);
        let r = plan_renditions(&key("m"), &ladder(), 1280, 720);
        let args = transcode_args(&cfg, "rtmp://127.0.0.1:19350/live/m", &r, addr());
        let pos = |a: &str| args.iter().position(|x| x == a).unwrap();
        // Input side.
        assert!(pos("-copyts") < pos("-i"));
        assert_eq!(values(&args, "-i"), ["rtmp://127.0.0.1:19350/live/m"]);
        assert_eq!(values(&args, "-rw_timeout"), [RW_TIMEOUT_US]);
        assert_eq!(
            values(&args, "-filter_complex"),
            ["[0:v:0]split=2[s0][s1];[s0]scale=-2:480[v0];[s1]scale=-2:360[v1]"]
        );
        // One FLV output per rung, in rung order, published back as {stream}_{rung}.
        assert_eq!(values(&args, "-f"), ["flv", "flv"]);
        assert_eq!(args.last().unwrap(), "rtmp://127.0.0.1:19350/live/m_360p");
        let outputs: Vec<&String> = args
            .iter()
            .filter(|a| a.starts_with("rtmp://127.0.0.1:19350/live/m_"))
            .collect();
        assert_eq!(
            outputs,
            [
                "rtmp://127.0.0.1:19350/live/m_480p",
                "rtmp://127.0.0.1:19350/live/m_360p"
            ]
        );
        assert_eq!(values(&args, "-map"), ["[v0]", "0:a?", "[v1]", "0:a?"]);
        // Bitrates.
        assert_eq!(values(&args, "-b:v"), ["1200k", "600k"]);
        assert_eq!(values(&args, "-maxrate"), ["1200k", "600k"]);
        assert_eq!(values(&args, "-bufsize"), ["2400k", "1200k"]);
        assert_eq!(values(&args, "-b:a"), ["128k", "128k"]);
        assert_eq!(values(&args, "-c:a"), ["aac", "aac"]);
        // Key frames and timestamps, per output.
        assert_eq!(values(&args, "-c:v"), ["libx264", "libx264"]);
        assert_eq!(values(&args, "-preset"), ["veryfast", "veryfast"]);
        assert_eq!(values(&args, "-profile:v"), ["main", "main"]);
        assert_eq!(values(&args, "-force_key_frames"), ["source", "source"]);
        assert_eq!(values(&args, "-forced-idr"), ["1", "1"]);
        assert_eq!(values(&args, "-sc_threshold"), ["0", "0"]);
        assert_eq!(values(&args, "-g"), ["1000", "1000"]);
        assert_eq!(values(&args, "-bf"), ["0", "0"]);
        assert_eq!(values(&args, "-fps_mode"), ["passthrough", "passthrough"]);
        assert_eq!(values(&args, "-enc_time_base:v"), ["1:1000", "1:1000"]);
        assert_eq!(values(&args, "-pix_fmt"), ["yuv420p", "yuv420p"]);
        assert_eq!(values(&args, "-bsf:a"), ["noise=drop=lt(pts\\,0)"; 2]);
        // Each output's options come after the previous output's URL.
        let first_url = pos("rtmp://127.0.0.1:19350/live/m_480p");
        assert!(args[first_url + 1..].iter().any(|a| a == "[v1]"));
        assert!(!args[..first_url].iter().any(|a| a == "[v1]"));
    }

    #[test]
    fn single_rung_needs_no_split_and_vhost_reaches_outputs() {
        let cfg = config("ffmpeg", 2);
        let source = StreamKey::new(Some("example.com"), "live", "m");
        let r = plan_renditions(&source, &ladder(), 854, 480);
        assert_eq!(r.len(), 1);
        let args = transcode_args(&cfg, &rtmp_url(addr(), &source), &r, addr());
        assert_eq!(
            values(&args, "-filter_complex"),
            ["[0:v:0]scale=-2:360[v0]"]
        );
        assert_eq!(
            values(&args, "-i"),
            ["rtmp://127.0.0.1:19350/live/m?vhost=example.com"]
        );
        assert_eq!(
            args.last().unwrap(),
            "rtmp://127.0.0.1:19350/live/m_360p?vhost=example.com"
        );
    }

    #[test]
    fn hardware_encoders_get_their_own_flags_and_extra_args_precede_the_input() {
        let mut cfg = config("ffmpeg", 2);
        let r = plan_renditions(&key("m"), &ladder(), 1280, 720);
        cfg.encoder = "h264_nvenc".into();
        cfg.preset = "p4".into();
        cfg.extra_args = vec!["-hwaccel".into(), "cuda".into()];
        let args = transcode_args(&cfg, "in", &r, addr());
        assert!(
            args.iter().position(|a| a == "cuda").unwrap()
                < args.iter().position(|a| a == "-i").unwrap()
        );
        assert_eq!(
            values(&args, "-hwaccel").len(),
            1,
            "extra_args once, not per output"
        );
        assert_eq!(values(&args, "-no-scenecut"), ["1", "1"]);
        assert_eq!(values(&args, "-forced-idr"), ["1", "1"]);
        assert!(values(&args, "-sc_threshold").is_empty());
        assert_eq!(values(&args, "-preset"), ["p4", "p4"]);
        cfg.encoder = "h264_vaapi".into();
        let args = transcode_args(&cfg, "in", &r, addr());
        assert!(
            values(&args, "-filter_complex")[0].contains("scale=-2:480,format=nv12,hwupload[v0]")
        );
        assert!(values(&args, "-preset").is_empty());
        assert!(values(&args, "-pix_fmt").is_empty());
        assert_eq!(values(&args, "-force_key_frames"), ["source", "source"]);
        cfg.encoder = "h264_qsv".into();
        let args = transcode_args(&cfg, "in", &r, addr());
        assert_eq!(values(&args, "-forced_idr"), ["1", "1"]);
        assert_eq!(values(&args, "-pix_fmt"), ["nv12", "nv12"]);
    }

    #[test]
    fn ffmpeg_source_command_reads_files_at_native_rate() {
        let a = ffmpeg_source_args("/media/a.mp4", "rtmp://127.0.0.1/live/a");
        assert!(a.contains(&"-re".to_owned()));
        assert_eq!(values(&a, "-i"), ["/media/a.mp4"]);
        assert_eq!(values(&a, "-c"), ["copy"]);
        assert_eq!(values(&a, "-f"), ["flv"]);
        assert_eq!(a.last().unwrap(), "rtmp://127.0.0.1/live/a");
        assert!(
            ffmpeg_source_args("http://h/v.MP4?x=1", "rtmp://h/a/b").contains(&"-re".to_owned())
        );
        assert!(!ffmpeg_source_args("rtsp://cam/1", "rtmp://h/a/b").contains(&"-re".to_owned()));
        assert!(
            !ffmpeg_source_args("http://h/live.flv", "rtmp://h/a/b").contains(&"-re".to_owned())
        );
        assert_eq!(
            values(&ffmpeg_source_args("rtsp://cam/1", "rtsp://h/a/b"), "-f"),
            ["rtsp"]
        );
    }

    #[test]
    fn own_rtmp_urls_are_recognized_like_ffmpeg_splits_them() {
        let any: SocketAddr = "0.0.0.0:19350".parse().unwrap();
        let k = |s| local_stream_key(s, any);
        assert_eq!(k("rtmp://127.0.0.1:19350/live/a"), Some(key("a")));
        assert_eq!(k("rtmp://localhost:19350/live/a.flv"), Some(key("a")));
        assert_eq!(
            k("rtmp://127.0.0.1:19350/live/a?vhost=v.example&x=1"),
            Some(StreamKey::new(Some("v.example"), "live", "a"))
        );
        assert_eq!(
            k("rtmp://127.0.0.1:19350/a/b/c"),
            Some(StreamKey::new(None, "a/b", "c"))
        );
        assert_eq!(k("rtmp://[::1]:19350/live/a"), Some(key("a")));
        assert_eq!(k("rtmp://127.0.0.1/live/a"), None, "port 1935");
        assert_eq!(k("rtmp://10.1.2.3:19350/live/a"), None, "another host");
        assert_eq!(k("rtsp://127.0.0.1:19350/live/a"), None);
        let bound: SocketAddr = "10.1.2.3:1935".parse().unwrap();
        assert_eq!(
            local_stream_key("rtmp://10.1.2.3/live/a", bound),
            Some(key("a"))
        );
        assert_eq!(
            ffmpeg_source_key("rtmp://x/a/b"),
            ffmpeg_source_key("rtmp://x/a/b")
        );
        assert_ne!(
            ffmpeg_source_key("rtmp://x/a/b"),
            ffmpeg_source_key("rtmp://x/a/c")
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let (b, m) = (Duration::from_millis(1000), Duration::from_millis(10_000));
        let d: Vec<u64> = (1..=6)
            .map(|a| backoff(b, m, a).as_millis() as u64)
            .collect();
        assert_eq!(d, [1000, 2000, 4000, 8000, 10_000, 10_000]);
        assert_eq!(backoff(b, m, 100), m);
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
            Err((
                -300,
                "invalid parameter ladder: no ladder named nope".into()
            ))
        );
        assert_eq!(
            t.start(&key("zzz"), "default"),
            Err((-500, "can not find the stream".into()))
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
            Err((
                -1,
                "too many transcodes: transcode.max_concurrent is 1".into()
            ))
        );
        let list = t.list();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["key"], "__defaultVhost__/live/a");
        assert_eq!(list[0]["ladder"], "default");
        assert_eq!(list[0]["status"], "waiting for the source");
        // A rendition is not transcoded itself.
        let _r = hub.publish(key("a_480p"), origin()).unwrap();
        let e = t.start(&key("a_480p"), "default").unwrap_err();
        assert_eq!(e.0, -1);
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
        wait_for("two restarts", || {
            t.list()[0]["restarts"].as_u64() >= Some(2)
        })
        .await;
        let l = t.list();
        assert!(
            l[0]["last_error"]
                .as_str()
                .unwrap()
                .contains("boom: bad things"),
            "{l:?}"
        );
        let names: Vec<&str> = l[0]["renditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
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
        wait_for("ffmpeg to run", || t.list()[0]["pid"].as_u64().is_some()).await;
        let pid = t.list()[0]["pid"].as_u64().unwrap();
        assert_eq!(t.list()[0]["status"], "running");
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
        assert_eq!(e.0, -1);
        assert!(
            e.1.contains("within 300 ms") && e.1.contains("Connection refused"),
            "{e:?}"
        );
        assert!(t.list_ffmpeg_sources().is_empty());
        // To our own server: the destination stream must appear in the hub.
        let e = t
            .add_ffmpeg_source("/media/a.mp4", "rtmp://127.0.0.1:19350/live/a", 200)
            .await
            .unwrap_err();
        assert_eq!(e.0, -1);
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
        assert_eq!(l[0]["status"], "running");
        let pid = l[0]["pid"].as_u64().unwrap();
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

    /// (pts, keyframe) of the coded video frames of `key`, from its GOP cache on, for
    /// `d`.
    async fn video_frames(hub: Arc<Hub>, key: StreamKey, d: Duration) -> Vec<(i64, bool)> {
        let stream = hub.find(&key).expect("stream");
        let mut sub = hub.subscribe_internal(&stream).expect("subscription");
        let mut out = Vec::new();
        let end = tokio::time::Instant::now() + d;
        let mut batch = Vec::new();
        while let Ok(Ok(())) = tokio::time::timeout_at(end, sub.next_batch(&mut batch, 256)).await {
            for p in batch.drain(..) {
                if p.kind == crate::hub::PacketKind::Video
                    && !p.sequence_header
                    && p.payload.len() > 5
                {
                    let b = &p.payload;
                    // AVC composition time: signed 24 bits.
                    let cts = (i32::from_be_bytes([b[2], b[3], b[4], 0]) >> 8) as i64;
                    out.push((i64::from(p.timestamp) + cts, p.keyframe));
                }
            }
        }
        out
    }

    /// The server's RTMP listener on a free loopback port, in this process.
    async fn rtmp_server(
        hub: &Arc<Hub>,
        c: &crate::config::Config,
    ) -> (SocketAddr, watch::Sender<bool>, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = watch::channel(false);
        let settings = Arc::new(crate::rtmp::RtmpSettings::from_config(c));
        let server = tokio::spawn(crate::rtmp::serve(
            listener,
            hub.clone(),
            settings,
            64,
            stop_rx,
        ));
        (addr, stop_tx, server)
    }

    async fn wait_async(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
        let t = Instant::now();
        while !check() {
            assert!(t.elapsed() < limit, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The real thing: ffmpeg publishes a 720p stream (B-frames, keyframes every
    /// 1.7 s: no multiple of any fixed GOP) to the RTMP listener, the transcoder's
    /// ffmpeg makes 480p and 360p of it; every rendition frame must carry a source
    /// timestamp and the keyframes must be the source's. Then ffmpeg is killed
    /// (restarted) and the publisher stopped (the transcode ends).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ffmpeg_renditions_follow_the_source_keyframes_and_timestamps() {
        let dir = test_dir("e2e");
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("src.flv");
        let ok = std::process::Command::new("ffmpeg")
            .args(
                "-nostdin -hide_banner -loglevel error -y \
                 -f lavfi -i testsrc2=size=1280x720:rate=25 -f lavfi -i sine=sample_rate=44100 \
                 -t 10 -c:v libx264 -preset ultrafast -bf 2 -g 1000 -sc_threshold 0 \
                 -force_key_frames expr:gte(t,n_forced*1.7) -pix_fmt yuv420p \
                 -c:a aac -b:a 128k -f flv"
                    .split_whitespace(),
            )
            .arg(&src)
            .status()
            .unwrap();
        assert!(ok.success());

        let mut c = crate::config::Config::default();
        c.general.continue_push_ms = 1000;
        let hub = Hub::new(HubSettings::from_config(&c));
        let (addr, stop_tx, server) = rtmp_server(&hub, &c).await;
        let mut tc = c.transcode.clone();
        tc.preset = "ultrafast".into();
        tc.restart_delay_ms = 300;
        let t = Transcoder::new(hub.clone(), tc, addr);

        let m = key("m");
        let mut publisher = Command::new("ffmpeg")
            .args("-nostdin -hide_banner -loglevel error -re -stream_loop -1 -i".split_whitespace())
            .arg(&src)
            .args("-c copy -f flv".split_whitespace())
            .arg(rtmp_url(addr, &m))
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        wait_async("the source", Duration::from_secs(10), || {
            hub.find(&m).is_some_and(|s| s.is_publishing())
        })
        .await;
        assert_eq!(t.start(&m, "default"), Ok("__defaultVhost__/live/m".into()));
        wait_async("two renditions", Duration::from_secs(30), || {
            t.renditions(&m).len() == 2
        })
        .await;
        let names: Vec<String> = t
            .renditions(&m)
            .iter()
            .map(|r| r.key.stream.clone())
            .collect();
        assert_eq!(names, ["m_480p", "m_360p"]);

        let d = Duration::from_secs(8);
        let (source, r480, r360) = tokio::join!(
            video_frames(hub.clone(), m.clone(), d),
            video_frames(hub.clone(), key("m_480p"), d),
            video_frames(hub.clone(), key("m_360p"), d),
        );
        let source_pts: HashSet<i64> = source.iter().map(|f| f.0).collect();
        for (name, frames) in [("480p", &r480), ("360p", &r360)] {
            let lo = frames[0].0.max(source.iter().map(|f| f.0).min().unwrap());
            let hi = frames
                .iter()
                .map(|f| f.0)
                .max()
                .unwrap()
                .min(source.iter().map(|f| f.0).max().unwrap());
            let in_range = |f: &&(i64, bool)| f.0 >= lo && f.0 <= hi;
            let rk: Vec<i64> = frames
                .iter()
                .filter(in_range)
                .filter(|f| f.1)
                .map(|f| f.0)
                .collect();
            let sk: Vec<i64> = source
                .iter()
                .filter(in_range)
                .filter(|f| f.1)
                .map(|f| f.0)
                .collect();
            let off: Vec<i64> = frames
                .iter()
                .filter(in_range)
                .map(|f| f.0)
                .filter(|p| !source_pts.contains(p))
                .collect();
            let n = frames.iter().filter(in_range).count();
            eprintln!("{name}: {n} frames in [{lo}, {hi}] ms, {} not at a source pts; keyframes {rk:?}, source's {sk:?}", off.len());
            assert!(n > 100, "{name}: {n} frames");
            assert!(off.is_empty(), "{name}: pts not in the source: {off:?}");
            assert!(sk.len() >= 3, "{sk:?}");
            assert_eq!(rk, sk, "{name}: keyframes");
        }

        // Killed: restarted, renditions back.
        let pid = t.list()[0]["pid"].as_u64().unwrap();
        std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
        wait_async("a restart", Duration::from_secs(20), || {
            let l = t.list();
            l[0]["restarts"].as_u64() >= Some(1) && l[0]["pid"].as_u64().is_some_and(|p| p != pid)
        })
        .await;
        assert_eq!(t.list()[0]["status"], "running");
        wait_async("renditions again", Duration::from_secs(30), || {
            t.renditions(&m).len() == 2
        })
        .await;
        let new_pid = t.list()[0]["pid"].as_u64().unwrap();

        // The publisher goes: the transcode ends.
        publisher.kill().await.unwrap();
        let _ = publisher.wait().await;
        wait_async("the transcode to end", Duration::from_secs(20), || {
            t.list().is_empty()
        })
        .await;
        assert!(!std::path::Path::new(&format!("/proc/{new_pid}")).exists());
        t.shutdown().await;
        let _ = stop_tx.send(true);
        let _ = server.await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A stream of an app in `transcode.apps` is transcoded from its first frame (the
    /// case where the AAC priming or B-frames would make timestamps negative and the
    /// muxer shift them): the renditions' first keyframe is the source's, at the same
    /// time; the renditions themselves are not transcoded.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_apps_stream_is_transcoded_from_its_first_frame() {
        let dir = test_dir("auto");
        std::fs::create_dir_all(&dir).unwrap();
        let mut c = crate::config::Config::default();
        c.general.continue_push_ms = 0;
        let hub = Hub::new(HubSettings::from_config(&c));
        // Every stream subscribed to as it is created: everything from its start.
        let subs: Arc<Mutex<Vec<crate::hub::Subscription>>> = Arc::default();
        let s2 = subs.clone();
        let h2 = Arc::downgrade(&hub);
        hub.add_on_new_stream(move |stream| {
            if let Some(sub) = h2.upgrade().and_then(|h| h.subscribe_internal(stream)) {
                s2.lock().unwrap().push(sub);
            }
        });
        let (addr, stop_tx, server) = rtmp_server(&hub, &c).await;
        let mut tc = c.transcode.clone();
        tc.preset = "ultrafast".into();
        tc.apps = [("auto".to_owned(), "default".to_owned())].into();
        let t = Transcoder::new(hub.clone(), tc, addr);
        t.attach();

        // A live encoder whose video and audio both start at 0: no B-frames, and PCM
        // audio (an AAC encoder's priming would shift the publisher's video).
        let a = StreamKey::new(None, "auto", "a");
        let mut publisher = Command::new("ffmpeg")
            .args(
                "-nostdin -hide_banner -loglevel error \
                 -re -f lavfi -i testsrc2=size=1280x720:rate=25 -re -f lavfi -i sine=sample_rate=44100 \
                 -t 8 -c:v libx264 -preset ultrafast -bf 0 -g 40 -pix_fmt yuv420p \
                 -c:a pcm_s16le -f flv"
                    .split_whitespace(),
            )
            .arg(rtmp_url(addr, &a))
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        wait_async("two renditions", Duration::from_secs(30), || {
            t.renditions(&a).len() == 2
        })
        .await;
        assert_eq!(
            t.list().len(),
            1,
            "renditions are not transcoded: {:?}",
            t.list()
        );
        let _ = publisher.wait().await;
        wait_async("the transcode to end", Duration::from_secs(20), || {
            t.list().is_empty()
        })
        .await;

        let subs: Vec<crate::hub::Subscription> = std::mem::take(&mut *subs.lock().unwrap());
        let mut frames: HashMap<String, Vec<(i64, bool)>> = HashMap::new();
        for mut sub in subs {
            let name = sub.stream().key.stream.clone();
            let mut batch = Vec::new();
            let mut v = Vec::new();
            while let Ok(Ok(())) =
                tokio::time::timeout(Duration::from_secs(1), sub.next_batch(&mut batch, 256)).await
            {
                for p in batch.drain(..) {
                    if p.kind == crate::hub::PacketKind::Video
                        && !p.sequence_header
                        && p.payload.len() > 5
                    {
                        let b = &p.payload;
                        let cts = (i32::from_be_bytes([b[2], b[3], b[4], 0]) >> 8) as i64;
                        v.push((i64::from(p.timestamp) + cts, p.keyframe));
                    }
                }
            }
            frames.insert(name, v);
        }
        let source = &frames["a"];
        let source_pts: HashSet<i64> = source.iter().map(|f| f.0).collect();
        let source_keys: Vec<i64> = source.iter().filter(|f| f.1).map(|f| f.0).collect();
        for r in ["a_480p", "a_360p"] {
            let v = &frames[r];
            let keys: Vec<i64> = v.iter().filter(|f| f.1).map(|f| f.0).collect();
            eprintln!("{r}: first frame {:?}, {} frames; keyframes {keys:?}; source: first {:?}, keyframes {source_keys:?}", v[0], v.len(), source[0]);
            assert_eq!(
                v[0], source[0],
                "{r} starts with the source's first keyframe"
            );
            assert!(
                v.iter().all(|f| source_pts.contains(&f.0)),
                "{r}: every pts is a source pts"
            );
            assert_eq!(keys, source_keys[..keys.len()], "{r}: keyframes");
        }
        t.shutdown().await;
        let _ = stop_tx.send(true);
        let _ = server.await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
