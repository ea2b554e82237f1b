//! `ferrocast-bench publish`: N RTMP publishers pushing one FLV file in real time.
//!
//! The file is read and split into tags once; every publisher shares those `Bytes`.
//! Each publisher paces its tags by their timestamps against a monotonic clock
//! (like `ffmpeg -re`): tag `t` is sent once `t` ms have passed since Publish.Start.
//! With `--loop` the file starts over with timestamps continuing where the previous
//! pass ended, so the stream stays monotonic for players and segmenters.
//!
//! With `--stamp-wallclock` the onMetaData sent first carries `ferrocastT0`: the unix
//! time in ms (with a fraction) of the instant the pacing clock starts, when the
//! tags of timestamp 0 are sent. Every later tag of timestamp `ts` is due at
//! `T0 + ts`, across loops too (timestamps keep increasing over passes, so one T0
//! serves the whole run); a receiver computes a frame's latency as its arrival time
//! minus `T0 + ts` (`ferrocast-bench latency`). A tag sent late (see
//! `max_send_lag_ms`) adds its lateness to the latency measured.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferrocast_proto::amf0::{self, Amf0Limits, Amf0Value};
use ferrocast_proto::flv::{self, parse_audio_tag, parse_video_tag, VideoPacketKind};
use ferrocast_proto::rtmp::session::{ClientEvent, ClientTarget};
use serde::Serialize;
use tokio::time::{sleep_until, Instant};

use crate::conn::{epoch_ms, Conn, Failure, Input};
use crate::latency::{unix_ms, T0_FIELD};
use crate::play::start_deadline_failure;
use crate::ramp::{spawn_ramped, stopped, Stop, START_TIMEOUT};
use crate::stats::{round, Percentiles, Spread, Tally};

/// Frame duration assumed for a track with fewer than two tags to measure one from
/// (25 fps video; about one AAC frame at 44.1 kHz is 23 ms, so this errs long).
const DEFAULT_FRAME_GAP_MS: u32 = 40;

/// One audio or video tag of the file, timestamp relative to the file's first.
#[derive(Debug, Clone)]
pub struct MediaTag {
    pub video: bool,
    pub timestamp: u32,
    pub body: Bytes,
}

/// The file, prepared for sending.
#[derive(Debug)]
pub struct FlvMedia {
    /// The first script tag's values (`"onMetaData", {...}`), if it decoded.
    pub metadata: Option<Vec<Amf0Value>>,
    /// The first AVC/HEVC and AAC sequence headers, sent right after the metadata.
    pub headers: Vec<MediaTag>,
    /// Every other audio and video tag, in file order.
    pub tags: Vec<MediaTag>,
    /// Length of one pass, see [`pass_length`].
    pub pass_ms: u64,
    /// Non-fatal problems (truncated tail, undecodable metadata), for stderr.
    pub warnings: Vec<String>,
}

/// Splits an FLV file into what a publisher sends. Video end-of-sequence tags are
/// dropped: sent at a loop boundary they would make players reset their decoders.
pub fn load_flv(file: Bytes) -> Result<FlvMedia, String> {
    let mut offset = flv::read_file_header(&file).map_err(|e| format!("FLV header: {e}"))?;
    let mut warnings = Vec::new();
    let mut metadata = None;
    let mut headers = Vec::new();
    let mut tags: Vec<MediaTag> = Vec::new();
    let (mut have_video_header, mut have_audio_header) = (false, false);
    loop {
        let (tag, next) = match flv::read_tag(&file, offset) {
            Ok(Some(found)) => found,
            Ok(None) => break,
            Err(e) => {
                // An encoder that was killed leaves a cut last tag; the rest is usable.
                warnings.push(format!("FLV file read stopped at offset {offset}: {e}"));
                break;
            }
        };
        offset = next;
        match tag.tag_type {
            flv::TAG_SCRIPT if metadata.is_none() => {
                match amf0::decode_all(&tag.body, &Amf0Limits::default()) {
                    Ok(mut values) => {
                        // A file dumped from RTMP may keep the @setDataFrame wrapper;
                        // send_metadata adds its own.
                        if matches!(values.first(), Some(Amf0Value::String(s)) if s == "@setDataFrame")
                        {
                            values.remove(0);
                        }
                        metadata = Some(values);
                    }
                    Err(e) => warnings.push(format!("onMetaData not decoded, not sent: {e}")),
                }
            }
            flv::TAG_VIDEO => {
                let Ok(h) = parse_video_tag(&tag.body) else {
                    warnings.push(format!("bad video tag at {offset} skipped"));
                    continue;
                };
                let media = MediaTag {
                    video: true,
                    timestamp: tag.timestamp,
                    body: tag.body,
                };
                match h.kind {
                    VideoPacketKind::SequenceHeader if !have_video_header => {
                        have_video_header = true;
                        headers.push(media);
                    }
                    VideoPacketKind::SequenceEnd => {}
                    _ => tags.push(media),
                }
            }
            flv::TAG_AUDIO => {
                let Ok(h) = parse_audio_tag(&tag.body) else {
                    warnings.push(format!("bad audio tag at {offset} skipped"));
                    continue;
                };
                let media = MediaTag {
                    video: false,
                    timestamp: tag.timestamp,
                    body: tag.body,
                };
                if h.sequence_header && !have_audio_header {
                    have_audio_header = true;
                    headers.push(media);
                } else {
                    tags.push(media);
                }
            }
            _ => {}
        }
    }
    if tags.is_empty() {
        return Err("the FLV file has no audio or video frames".into());
    }
    let first = tags.iter().map(|t| t.timestamp).min().unwrap_or(0);
    for t in &mut tags {
        t.timestamp = t.timestamp.saturating_sub(first);
    }
    for h in &mut headers {
        h.timestamp = 0;
    }
    let pass_ms = pass_length(&tags);
    Ok(FlvMedia {
        metadata,
        headers,
        tags,
        pass_ms,
        warnings,
    })
}

/// How far timestamps advance from one pass through the file to the next: the
/// smallest value that keeps each track monotonic with its usual frame spacing,
/// i.e. the longest track span (last - first timestamp + one frame of that track).
/// Tracks rarely end together (an AAC encoder's tail runs ~100 ms past the video),
/// so the shorter track gets a small gap at the loop point rather than the longer
/// one going backwards, which players and muxers reject as non-monotonic.
fn pass_length(tags: &[MediaTag]) -> u64 {
    let span = |video: bool| -> Option<u64> {
        let mut ts = tags
            .iter()
            .filter(|t| t.video == video)
            .map(|t| t.timestamp);
        let first = ts.next()?;
        let mut last = first;
        let mut gap = DEFAULT_FRAME_GAP_MS;
        for t in ts {
            if t > last {
                gap = (t - last).min(1000);
                last = t;
            }
        }
        Some(u64::from(last - first) + u64::from(gap))
    };
    span(true)
        .max(span(false))
        .unwrap_or(u64::from(DEFAULT_FRAME_GAP_MS))
}

/// Stream name of publisher `index` of `count`: `name_{index}` when there are
/// several, keeping a `?query` after the suffix.
pub fn stream_name(name: &str, index: u32, count: u32) -> String {
    if count <= 1 {
        return name.to_owned();
    }
    match name.split_once('?') {
        Some((base, query)) => format!("{base}_{index}?{query}"),
        None => format!("{name}_{index}"),
    }
}

/// What to run, from the command line.
pub struct PublishPlan {
    pub url: String,
    pub file: String,
    pub addr: SocketAddr,
    pub target: ClientTarget,
    pub publishers: u32,
    pub duration: Option<Duration>,
    pub looping: bool,
    pub ramp: f64,
    pub digest: bool,
    /// Put `ferrocastT0` into onMetaData (see the module doc).
    pub stamp_wallclock: bool,
    /// Publisher 0 writes its T0 here (written whole, then renamed into place).
    pub t0_file: Option<PathBuf>,
}

/// The metadata to send with `ferrocastT0 = t0` added to its first object or ECMA
/// array (replacing one already there), or a minimal onMetaData if the file had none.
pub fn stamped_metadata(values: Option<&[Amf0Value]>, t0: f64) -> Vec<Amf0Value> {
    let mut values = values
        .map(<[Amf0Value]>::to_vec)
        .unwrap_or_else(|| vec![Amf0Value::String("onMetaData".into())]);
    let field = (T0_FIELD.to_owned(), Amf0Value::Number(t0));
    let pairs = values.iter_mut().find_map(|v| match v {
        Amf0Value::EcmaArray(p) | Amf0Value::Object(p) => Some(p),
        _ => None,
    });
    match pairs {
        Some(pairs) => {
            pairs.retain(|(k, _)| k != T0_FIELD);
            pairs.push(field);
        }
        None => values.push(Amf0Value::EcmaArray(vec![field])),
    }
    values
}

/// Writes T0 to `path` via a temporary file and a rename, so a reader polling for
/// the file never sees half a number.
fn write_t0_file(path: &Path, t0: f64) {
    let tmp = path.with_extension("tmp");
    let written =
        std::fs::write(&tmp, format!("{t0:.3}\n")).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        eprintln!("warning: cannot write T0 to `{}`: {e}", path.display());
    }
}

struct PublisherResult {
    failure: Option<Failure>,
    lost: Option<Failure>,
    stopped: Instant,
    bytes_out: u64,
    payload_bytes: u64,
    tags_sent: u64,
    /// Passes through the file finished.
    loops: u64,
    /// How late the latest tag was sent relative to its due time.
    max_lag: Duration,
    /// The wall clock stamped into onMetaData (`--stamp-wallclock`).
    t0_unix_ms: Option<f64>,
    /// From TCP connect start to NetStream.Publish.Start (publishers that started).
    publish_start: Option<Duration>,
}

impl PublisherResult {
    fn failed(mut self, failure: Failure) -> PublisherResult {
        self.failure = Some(failure);
        self.stopped = Instant::now();
        self
    }
}

/// How a publishing loop ended.
enum Finish {
    /// The file was sent (no --loop), the run ended or was stopped: close politely.
    Close,
    /// The run ended or was stopped in the middle of a write: the socket is dropped,
    /// since a closing command after a cut message would be garbage to the server.
    Abandon,
    /// The connection broke; nothing more can be written.
    Lost(Failure),
}

async fn publisher(
    index: u32,
    plan: Arc<PublishPlan>,
    media: Arc<FlvMedia>,
    clock: std::time::Instant,
    end: Option<Instant>,
    mut stop: Stop,
) -> PublisherResult {
    let mut result = PublisherResult {
        failure: None,
        lost: None,
        stopped: Instant::now(),
        bytes_out: 0,
        payload_bytes: 0,
        tags_sent: 0,
        loops: 0,
        max_lag: Duration::ZERO,
        t0_unix_ms: None,
        publish_start: None,
    };
    let mut target = plan.target.clone();
    target.stream = stream_name(&target.stream, index, plan.publishers);
    let connect_start = Instant::now();
    let mut start_deadline = connect_start + START_TIMEOUT;
    let mut run_ended = false;
    if let Some(end) = end {
        if end <= start_deadline {
            start_deadline = end;
            run_ended = true;
        }
    }

    let open = Conn::open(
        plan.addr,
        target,
        plan.digest,
        epoch_ms(clock),
        u64::from(index),
    );
    let mut conn = tokio::select! {
        biased;
        _ = stopped(&mut stop) => {
            return result.failed(Failure::new("not started: interrupted", "stopped while connecting"));
        }
        _ = sleep_until(start_deadline) => {
            return result.failed(start_deadline_failure("TCP connect", run_ended));
        }
        opened = open => match opened {
            Ok(conn) => conn,
            Err(failure) => return result.failed(failure),
        },
    };

    // Until Publish.Start: read and answer, nothing else.
    let mut stage = "handshake / connect result";
    loop {
        let input = tokio::select! {
            biased;
            _ = stopped(&mut stop) => {
                result.bytes_out = conn.bytes_out;
                return result.failed(Failure::new("not started: interrupted", "stopped before Publish.Start"));
            }
            _ = sleep_until(start_deadline) => {
                result.bytes_out = conn.bytes_out;
                return result.failed(start_deadline_failure(stage, run_ended));
            }
            input = conn.read_input() => input,
        };
        let mut outcome = match input {
            Ok(Input::Data) => None,
            Ok(Input::Eof) => Some(Err(Failure::new(
                "closed by server",
                "EOF before Publish.Start",
            ))),
            Err(failure) => Some(Err(failure)),
        };
        while let Some(event) = conn.session.poll_event() {
            match event {
                ClientEvent::Connected => stage = "Publish.Start",
                ClientEvent::Started { .. } => {
                    outcome.get_or_insert(Ok(()));
                }
                ClientEvent::Status {
                    level,
                    code,
                    description,
                } if level == "error" => {
                    outcome.get_or_insert(Err(Failure::new(format!("status {code}"), description)));
                }
                ClientEvent::CommandError {
                    command,
                    description,
                } => {
                    outcome.get_or_insert(Err(Failure::new(
                        format!("command error: {command}"),
                        description,
                    )));
                }
                _ => {}
            }
        }
        if let Err(e) = conn.flush().await {
            outcome.get_or_insert(Err(Failure::io(&e)));
        }
        match outcome {
            None => {}
            Some(Ok(())) => {
                result.publish_start = Some(connect_start.elapsed());
                break;
            }
            Some(Err(failure)) => {
                result.bytes_out = conn.bytes_out;
                return result.failed(failure);
            }
        }
    }

    let stamp = plan.stamp_wallclock.then(|| Stamp {
        t0_file: plan.t0_file.as_deref().filter(|_| index == 0),
    });
    let finish = send_media(
        &mut conn,
        &media,
        plan.looping,
        stamp,
        end,
        &mut stop,
        &mut result,
    )
    .await;
    result.stopped = Instant::now();
    result.bytes_out = conn.bytes_out;
    match finish {
        Finish::Close => result.bytes_out = conn.close().await,
        Finish::Abandon => {}
        Finish::Lost(failure) => result.lost = Some(failure),
    }
    result
}

/// `--stamp-wallclock` for one publisher.
struct Stamp<'a> {
    t0_file: Option<&'a Path>,
}

/// Metadata, sequence headers, then the tags at their due times until the file
/// ends (no `looping`), the run ends, a stop, or the connection breaks.
async fn send_media(
    conn: &mut Conn,
    media: &FlvMedia,
    looping: bool,
    stamp: Option<Stamp<'_>>,
    end: Option<Instant>,
    stop: &mut Stop,
    result: &mut PublisherResult,
) -> Finish {
    // The pacing clock and the wall clock read together: tag `ts` is due at
    // `base + ts`, i.e. at wall time `t0 + ts`.
    let base = Instant::now();
    let t0 = unix_ms();
    match stamp {
        Some(stamp) => {
            conn.session
                .send_metadata(&stamped_metadata(media.metadata.as_deref(), t0));
            result.t0_unix_ms = Some(t0);
            if let Some(path) = stamp.t0_file {
                write_t0_file(path, t0);
            }
        }
        None => {
            if let Some(values) = &media.metadata {
                conn.session.send_metadata(values);
            }
        }
    }
    for h in &media.headers {
        send_tag(conn, h, 0, result);
    }
    // A run without an end still needs an instant to sleep until; a year is "never".
    let end = end.unwrap_or_else(|| base + Duration::from_secs(365 * 24 * 3600));
    let mut pos = 0;
    let mut pass_offset: u64 = 0;
    loop {
        // Queue every tag that is due.
        let now = Instant::now();
        let next_due = loop {
            if pos == media.tags.len() {
                result.loops += 1;
                if !looping {
                    break None;
                }
                pos = 0;
                pass_offset += media.pass_ms;
            }
            let tag = &media.tags[pos];
            let ts = pass_offset + u64::from(tag.timestamp);
            let due = base + Duration::from_millis(ts);
            if due > now {
                break Some(due);
            }
            result.max_lag = result.max_lag.max(now - due);
            // RTMP timestamps are 32-bit milliseconds and wrap after 49.7 days.
            send_tag(conn, tag, ts as u32, result);
            pos += 1;
        };
        // Write it; a server that stops reading must not hold the bench past the end.
        tokio::select! {
            biased;
            _ = stopped(stop) => return Finish::Abandon,
            _ = sleep_until(end) => return Finish::Abandon,
            written = conn.flush() => {
                if let Err(e) = written {
                    return Finish::Lost(Failure::io(&e));
                }
            }
        }
        let Some(next_due) = next_due else {
            return Finish::Close;
        };
        // Wait for the next tag, answering the server (acks, pings) meanwhile.
        loop {
            let input = tokio::select! {
                biased;
                _ = stopped(stop) => return Finish::Close,
                _ = sleep_until(end) => return Finish::Close,
                _ = sleep_until(next_due) => break,
                input = conn.read_input() => input,
            };
            match input {
                Ok(Input::Data) => {}
                Ok(Input::Eof) => {
                    return Finish::Lost(Failure::new("closed by server", "EOF while publishing"))
                }
                Err(failure) => return Finish::Lost(failure),
            }
            while let Some(event) = conn.session.poll_event() {
                if let ClientEvent::Status {
                    level,
                    code,
                    description,
                } = event
                {
                    if level == "error" {
                        return Finish::Lost(Failure::new(format!("status {code}"), description));
                    }
                }
            }
            if let Err(e) = conn.flush().await {
                return Finish::Lost(Failure::io(&e));
            }
        }
    }
}

fn send_tag(conn: &mut Conn, tag: &MediaTag, timestamp: u32, result: &mut PublisherResult) {
    if tag.video {
        conn.session.send_video(timestamp, &tag.body);
    } else {
        conn.session.send_audio(timestamp, &tag.body);
    }
    result.tags_sent += 1;
    result.payload_bytes += tag.body.len() as u64;
}

/// The JSON report of a publish run; field meanings are in main.rs's module doc.
#[derive(Debug, Serialize)]
pub struct PublishReport {
    pub url: String,
    pub file: String,
    pub publishers: u32,
    pub connected: u64,
    pub failed: u64,
    pub failures: BTreeMap<String, u64>,
    pub failure_examples: BTreeMap<String, String>,
    pub duration_s: f64,
    pub bytes_sent: u64,
    pub payload_bytes_sent: u64,
    pub tags_sent: u64,
    pub loops: Spread,
    pub max_send_lag_ms: f64,
    /// TCP connect start -> NetStream.Publish.Start, over the publishers that started.
    pub publish_start_ms: Percentiles,
    pub disconnected_early: u64,
    pub disconnect_reasons: BTreeMap<String, u64>,
    /// Publisher 0's `ferrocastT0`, with `--stamp-wallclock`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub t0_unix_ms: Option<f64>,
}

pub async fn run(plan: PublishPlan, media: FlvMedia, mut stop: Stop) -> PublishReport {
    let plan = Arc::new(plan);
    let media = Arc::new(media);
    let clock = std::time::Instant::now();
    let t0 = Instant::now();
    let end = plan.duration.map(|d| t0 + d);
    let task_stop = stop.clone();
    let (handles, not_started) =
        spawn_ramped(plan.publishers, plan.ramp, t0, end, &mut stop, |i| {
            publisher(
                i,
                plan.clone(),
                media.clone(),
                clock,
                end,
                task_stop.clone(),
            )
        })
        .await;

    let mut failures = Tally::default();
    let mut lost = Tally::default();
    let mut loops = Vec::with_capacity(handles.len());
    let mut publish_start = Vec::with_capacity(handles.len());
    let (mut bytes_sent, mut payload, mut tags_sent) = (0, 0, 0);
    let mut max_lag = Duration::ZERO;
    let mut last_stop = t0;
    let mut first_t0 = None;
    for handle in handles {
        let r = match handle.await {
            Ok(r) => r,
            Err(e) => {
                failures.add("bench task panicked", &e.to_string());
                continue;
            }
        };
        if first_t0.is_none() {
            first_t0 = r.t0_unix_ms;
        }
        bytes_sent += r.bytes_out;
        payload += r.payload_bytes;
        tags_sent += r.tags_sent;
        last_stop = last_stop.max(r.stopped);
        if let Some(f) = &r.failure {
            failures.add(&f.reason, &f.detail);
            continue;
        }
        if let Some(f) = &r.lost {
            lost.add(&f.reason, &f.detail);
        }
        loops.push(r.loops as f64);
        if let Some(t) = r.publish_start {
            publish_start.push(t.as_secs_f64() * 1000.0);
        }
        max_lag = max_lag.max(r.max_lag);
    }
    if let Some(ns) = &not_started {
        for _ in 0..ns.count {
            failures.add(ns.reason, ns.reason);
        }
    }
    PublishReport {
        url: plan.url.clone(),
        file: plan.file.clone(),
        publishers: plan.publishers,
        connected: loops.len() as u64,
        failed: failures.total(),
        failures: failures.counts,
        failure_examples: failures.examples,
        duration_s: round(last_stop.saturating_duration_since(t0).as_secs_f64(), 3),
        bytes_sent,
        payload_bytes_sent: payload,
        tags_sent,
        loops: Spread::of(&mut loops, 0),
        max_send_lag_ms: round(max_lag.as_secs_f64() * 1000.0, 1),
        publish_start_ms: Percentiles::of(&mut publish_start, 1),
        disconnected_early: lost.total(),
        disconnect_reasons: lost.counts,
        t0_unix_ms: first_t0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names() {
        assert_eq!(stream_name("cam", 0, 1), "cam");
        assert_eq!(stream_name("cam", 3, 5), "cam_3");
        assert_eq!(stream_name("cam?key=a", 1, 2), "cam_1?key=a");
    }

    #[test]
    fn loads_tags_and_pass_length() {
        let mut file = bytes::BytesMut::from(&flv::file_header(true, true)[..]);
        let meta = amf0::encode_to_vec(&Amf0Value::String("onMetaData".into()));
        flv::write_tag(&mut file, flv::TAG_SCRIPT, 0, &meta);
        flv::write_tag(&mut file, flv::TAG_VIDEO, 100, &[0x17, 0, 0, 0, 0, 1]);
        flv::write_tag(&mut file, flv::TAG_AUDIO, 100, &[0xaf, 0, 0x12]);
        flv::write_tag(&mut file, flv::TAG_VIDEO, 100, &[0x17, 1, 0, 0, 0, 9]);
        flv::write_tag(&mut file, flv::TAG_AUDIO, 120, &[0xaf, 1, 0x21]);
        flv::write_tag(&mut file, flv::TAG_VIDEO, 133, &[0x27, 1, 0, 0, 0, 9]);
        flv::write_tag(&mut file, flv::TAG_VIDEO, 166, &[0x27, 1, 0, 0, 0, 9]);
        flv::write_tag(&mut file, flv::TAG_VIDEO, 166, &[0x17, 2, 0, 0, 0]);
        let media = load_flv(file.freeze()).unwrap();
        assert_eq!(media.metadata.as_deref().map(<[_]>::len), Some(1));
        assert_eq!(media.headers.len(), 2);
        let ts: Vec<u32> = media.tags.iter().map(|t| t.timestamp).collect();
        // The end-of-sequence tag is dropped; timestamps start at 0.
        assert_eq!(ts, [0, 20, 33, 66]);
        // Video spans 0..66 plus a 33 ms frame; the lone audio tag 40 ms.
        assert_eq!(media.pass_ms, 66 + 33);
        assert!(media.warnings.is_empty());
    }

    #[test]
    fn stamping_metadata() {
        let file_meta = vec![
            Amf0Value::String("onMetaData".into()),
            Amf0Value::ecma_array([
                ("duration", Amf0Value::Number(60.0)),
                (T0_FIELD, Amf0Value::Number(1.0)),
            ]),
        ];
        let v = stamped_metadata(Some(&file_meta), 1_764_000_000_000.5);
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].get("duration"), Some(&Amf0Value::Number(60.0)));
        assert_eq!(
            v[1].get(T0_FIELD),
            Some(&Amf0Value::Number(1_764_000_000_000.5))
        );
        assert_eq!(v[1].as_pairs().unwrap().len(), 2);
        // The latency reader finds it in what the server forwards.
        let mut body = Vec::new();
        amf0::encode_all(&v, &mut body);
        assert_eq!(
            crate::latency::t0_from_script(&body),
            Some(1_764_000_000_000.5)
        );
        let bare = stamped_metadata(None, 7.0);
        assert_eq!(bare[0].as_str(), Some("onMetaData"));
        assert_eq!(bare[1].get(T0_FIELD), Some(&Amf0Value::Number(7.0)));
    }

    /// A one-connection RTMP server (the proto crate's session) that answers publish
    /// `delay` late, like a server waiting for an `on_publish` hook. Returns its address.
    async fn slow_publish_server(delay: Duration) -> SocketAddr {
        use ferrocast_proto::rtmp::session::{ServerEvent, ServerSession, SessionConfig};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut session = ServerSession::new(SessionConfig::default(), 0, 0);
            let mut buf = vec![0; 64 * 1024];
            loop {
                let n = match sock.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if session.handle_input(&buf[..n]).is_err() {
                    return;
                }
                while let Some(event) = session.poll_event() {
                    if let ServerEvent::Publish { stream_id, .. } = event {
                        tokio::time::sleep(delay).await;
                        session.accept_publish(stream_id);
                    }
                }
                while let Some(out) = session.poll_output() {
                    if sock.write_all(&out).await.is_err() {
                        return;
                    }
                }
            }
        });
        addr
    }

    #[tokio::test]
    async fn reports_connect_to_publish_start() {
        let delay = Duration::from_millis(150);
        let addr = slow_publish_server(delay).await;
        let url = format!("rtmp://{addr}/live/cam");
        let (_, _, target) = ferrocast_proto::rtmp::session::parse_rtmp_url(
            &url,
            ferrocast_proto::rtmp::session::ClientMode::Publish,
        )
        .unwrap();
        let mut file = bytes::BytesMut::from(&flv::file_header(true, false)[..]);
        flv::write_tag(&mut file, flv::TAG_VIDEO, 0, &[0x17, 0, 0, 0, 0, 1]);
        flv::write_tag(&mut file, flv::TAG_VIDEO, 0, &[0x17, 1, 0, 0, 0, 9]);
        flv::write_tag(&mut file, flv::TAG_VIDEO, 40, &[0x27, 1, 0, 0, 0, 9]);
        let media = load_flv(file.freeze()).unwrap();
        let plan = PublishPlan {
            url,
            file: "test.flv".into(),
            addr,
            target,
            publishers: 1,
            duration: Some(Duration::from_secs(5)),
            looping: false,
            ramp: 100.0,
            digest: false,
            stamp_wallclock: false,
            t0_file: None,
        };
        let (_stop_tx, stop) = tokio::sync::watch::channel(false);
        let report = run(plan, media, stop).await;
        assert_eq!(report.connected, 1, "{report:?}");
        let p50 = report.publish_start_ms.p50.expect("a start time");
        // The server's delay is inside the measured time, and nothing else of note is.
        assert!((150.0..1500.0).contains(&p50), "{p50}");
        assert_eq!(report.publish_start_ms.p95, Some(p50));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["publish_start_ms"]["p50"], p50);
    }

    fn tag(video: bool, timestamp: u32) -> MediaTag {
        MediaTag {
            video,
            timestamp,
            body: Bytes::new(),
        }
    }

    #[test]
    fn pass_length_keeps_the_longer_track_continuous() {
        // 30 fps video at 0..2966 and AAC at 44..3057 every 23 ms, like an ffmpeg file.
        let mut tags: Vec<MediaTag> = (0..90).map(|i| tag(true, i * 1000 / 30)).collect();
        tags.extend((0..132).map(|i| tag(false, 44 + i * 23)));
        // Video spans 2966 + 33 = 2999, audio 3057 - 44 + 23 = 3036: audio continues
        // seamlessly and video gets a 70 ms gap (instead of audio going backwards).
        assert_eq!(pass_length(&tags), 3036);
        assert_eq!(pass_length(&[tag(false, 7)]), 40);
        assert_eq!(pass_length(&[]), 40);
    }
}
