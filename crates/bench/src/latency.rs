//! `ferrocast-bench latency`: live latency of HTTP-FLV and HLS, against the wall
//! clock the publisher stamped into the stream.
//!
//! `ferrocast-bench publish --stamp-wallclock` puts `ferrocastT0` into onMetaData:
//! the unix time (ms) at which it sent timestamp 0. It paces in real time from that
//! instant, so a frame with FLV timestamp `ts` left the publisher at `T0 + ts`
//! (looping keeps timestamps increasing, so this holds across loops). Publisher,
//! server and this reader share one machine and one clock.
//!
//! * **HTTP-FLV** (any URL not ending in `.m3u8`): one GET, FLV tags parsed as the
//!   body arrives. Per coded video frame, latency = arrival time of the read that
//!   completed its tag − (T0 + ts). Frames sent before the request was made (the
//!   server's GOP cache, delivered in a burst at the start) are counted but not
//!   measured: their age is the cache's, not the delivery path's.
//! * **HLS** (`.m3u8`): the playlist is fetched every `poll` interval over a kept-alive
//!   connection, each newly listed segment downloaded at once and its first video PES
//!   read (PTS/DTS), mapped back to the FLV timestamp with the muxer's constant
//!   offset: `ts = (DTS − offset) / 90`. Segments listed in the first playlist seen
//!   are not measured (when they appeared is unknown). Per measured segment:
//!   - `edge_ms` = download complete − (T0 + ts of its first frame): the latency of a
//!     player that starts each new segment the moment it appears;
//!   - `after_segment_end_ms` = download complete − (T0 + ts + EXTINF): how long after
//!     the segment's last instant of media it could be had (the server's and this
//!     poller's share; the rest of `edge_ms` is the segment duration itself);
//!   - `player_ms` (one entry per modelled hold-back N, e.g. `hold_back_3`): a
//!     standard player (hls.js with `liveSyncDurationCount` = N; its default is 3)
//!     that joins at time t starts at `E(t) − N × TARGETDURATION`, where `E(t)` is
//!     the media end of the newest segment available at t, and plays at 1x from
//!     there, so its latency is `t − T0 − (E(t) − N × TARGETDURATION)`. Evaluated for
//!     join times every 10 ms over the measured span, i.e. for a uniformly random
//!     join phase; it lies between `edge_ms` + N × TARGETDURATION − EXTINF (joining
//!     just as a segment appears) and `edge_ms` + N × TARGETDURATION (just before
//!     the next). The model leaves out the player's own start-up (one segment
//!     download, a few ms on loopback) and assumes it never stalls.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Buf, BytesMut};
use ferrocast_proto::amf0::{self, Amf0Limits};
use ferrocast_proto::flv::{self, parse_video_tag, FlvError, VideoPacketKind};
use serde::Serialize;
use tokio::time::{sleep_until, timeout, Instant};

use crate::http::{HttpConn, HttpUrl};
use crate::playlist;
use crate::ramp::{stopped, Stop};
use crate::stats::{round, Spread, Summary, Tally};
use crate::tsread::first_video_time;

/// The onMetaData field `publish --stamp-wallclock` writes.
pub const T0_FIELD: &str = "ferrocastT0";

/// How long to wait for a T0 file to appear or for a stream's response head: a
/// publisher still starting up, or the server's max_stream_wait.
const START_WAIT: Duration = Duration::from_secs(20);
/// Step of the simulated player's join times.
const JOIN_STEP_MS: f64 = 10.0;
/// PTS/DTS are 33-bit.
const WRAP_90K: u64 = 1 << 33;

/// Where T0 comes from.
#[derive(Debug, Clone)]
pub enum T0Source {
    /// `--t0`: given.
    Value(f64),
    /// `--t0-file`: written by `publish --t0-file` (waited for).
    File(PathBuf),
    /// The stream's own onMetaData (HTTP-FLV), or for HLS the onMetaData of the
    /// ferrocast HTTP-FLV URL of the same stream.
    Metadata,
}

pub struct LatencyPlan {
    pub url: String,
    pub http: HttpUrl,
    pub duration: Duration,
    pub t0: T0Source,
    pub pts_offset_90k: u64,
    pub poll: Duration,
    /// Player hold-backs to model, in target durations (3 is hls.js's default
    /// `liveSyncDurationCount`, 2 is what ferrocast's player page sets).
    pub hold_back_segments: Vec<f64>,
}

/// Unix time now, in milliseconds with microsecond resolution.
pub fn unix_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as f64 / 1000.0)
        .unwrap_or(0.0)
}

/// Whether a URL names an HLS playlist (by its path, query ignored).
pub fn is_hls(path: &str) -> bool {
    path.split('?')
        .next()
        .unwrap_or_default()
        .ends_with(".m3u8")
}

/// ferrocast's HTTP-FLV path for an HLS playlist path: `/app/stream/hls.m3u8` ->
/// `/app/stream.live.flv` (query kept).
fn sibling_flv_path(path: &str) -> Option<String> {
    let (p, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let base = p.strip_suffix("/hls.m3u8")?;
    Some(match query {
        Some(q) => format!("{base}.live.flv?{q}"),
        None => format!("{base}.live.flv"),
    })
}

/// `ferrocastT0` from an onMetaData script tag body.
pub fn t0_from_script(body: &[u8]) -> Option<f64> {
    let values = amf0::decode_all(body, &Amf0Limits::default()).ok()?;
    values
        .iter()
        .find_map(|v| v.get(T0_FIELD).and_then(|n| n.as_f64()))
}

/// Splits complete FLV tags off the front of an HTTP-FLV body as it grows.
#[derive(Default)]
struct FlvSplitter {
    header_done: bool,
}

impl FlvSplitter {
    /// The next complete tag in `buf` (removed from it), `Ok(None)` if more bytes
    /// are needed.
    fn next(&mut self, buf: &mut BytesMut) -> Result<Option<flv::FlvTag>, String> {
        if !self.header_done {
            match flv::read_file_header(buf) {
                Ok(first) => {
                    buf.advance(first);
                    self.header_done = true;
                }
                Err(FlvError::Truncated { .. }) => return Ok(None),
                Err(e) => return Err(format!("FLV header: {e}")),
            }
        }
        if buf.len() < flv::TAG_HEADER_LEN {
            return Ok(None);
        }
        let size = u32::from_be_bytes([0, buf[1], buf[2], buf[3]]) as usize;
        let whole = flv::TAG_HEADER_LEN + size + 4;
        if buf.len() < whole {
            return Ok(None);
        }
        let bytes = buf.split_to(whole).freeze();
        match flv::read_tag(&bytes, 0) {
            Ok(Some((tag, _))) => Ok(Some(tag)),
            Ok(None) => Ok(None),
            Err(e) => Err(format!("FLV tag: {e}")),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct FlvReport {
    pub url: String,
    pub mode: &'static str,
    pub t0_unix_ms: Option<f64>,
    pub duration_s: f64,
    pub bytes: u64,
    /// Coded video frames received.
    pub video_frames: u64,
    /// Of those, sent before the request (GOP cache) and so not measured.
    pub gop_cache_frames: u64,
    pub frames_measured: u64,
    pub latency_ms: Summary,
    pub error: Option<String>,
}

/// Reads an HTTP-FLV stream for the run and measures every frame.
pub async fn run_flv(plan: &LatencyPlan, mut stop: Stop) -> FlvReport {
    let start = Instant::now();
    let end = start + plan.duration;
    let mut report = FlvReport {
        url: plan.url.clone(),
        mode: "http-flv",
        t0_unix_ms: None,
        duration_s: 0.0,
        bytes: 0,
        video_frames: 0,
        gop_cache_frames: 0,
        frames_measured: 0,
        latency_ms: Summary::of(&mut [], 1),
        error: None,
    };
    let mut t0 = match &plan.t0 {
        T0Source::Value(v) => Some(*v),
        T0Source::File(path) => match read_t0_file(path, &mut stop).await {
            Ok(v) => Some(v),
            Err(e) => {
                report.error = Some(e);
                return report;
            }
        },
        T0Source::Metadata => None,
    };
    let requested = unix_ms();
    let opened = timeout(
        START_WAIT,
        HttpConn::open_stream(&plan.http, &plan.http.path),
    )
    .await;
    let mut body = match opened {
        Ok(Ok((head, body))) if head.status == 200 => body,
        Ok(Ok((head, _))) => {
            report.error = Some(format!("HTTP status {}", head.status));
            return report;
        }
        Ok(Err(e)) => {
            report.error = Some(e);
            return report;
        }
        Err(_) => {
            report.error = Some(format!("no response within {START_WAIT:?}"));
            return report;
        }
    };
    let mut buf = BytesMut::new();
    let mut splitter = FlvSplitter::default();
    let mut samples = Vec::new();
    loop {
        let before = buf.len();
        let more = tokio::select! {
            biased;
            _ = stopped(&mut stop) => break,
            _ = sleep_until(end) => break,
            more = body.read(&mut buf) => more,
        };
        let now = unix_ms();
        report.bytes += (buf.len() - before) as u64;
        match more {
            Ok(true) => {}
            Ok(false) => {
                report.error = Some("the stream ended".into());
                break;
            }
            Err(e) => {
                report.error = Some(e);
                break;
            }
        }
        loop {
            let tag = match splitter.next(&mut buf) {
                Ok(Some(tag)) => tag,
                Ok(None) => break,
                Err(e) => {
                    report.error = Some(e);
                    break;
                }
            };
            match tag.tag_type {
                flv::TAG_SCRIPT if t0.is_none() => t0 = t0_from_script(&tag.body),
                flv::TAG_VIDEO => {
                    let Ok(h) = parse_video_tag(&tag.body) else {
                        continue;
                    };
                    if h.kind != VideoPacketKind::Frame {
                        continue;
                    }
                    report.video_frames += 1;
                    let Some(t0) = t0 else { continue };
                    let sent = t0 + f64::from(tag.timestamp);
                    if sent < requested {
                        report.gop_cache_frames += 1;
                    } else {
                        samples.push(now - sent);
                    }
                }
                _ => {}
            }
        }
        if report.error.is_some() {
            break;
        }
    }
    if t0.is_none() && report.error.is_none() {
        report.error = Some(format!(
            "no {T0_FIELD} in onMetaData (publish with --stamp-wallclock, or give --t0)"
        ));
    }
    report.t0_unix_ms = t0;
    report.duration_s = round(start.elapsed().as_secs_f64(), 3);
    report.frames_measured = samples.len() as u64;
    report.latency_ms = Summary::of(&mut samples, 1);
    report
}

/// Waits for `publish --t0-file` to have written the file, and reads it.
async fn read_t0_file(path: &PathBuf, stop: &mut Stop) -> Result<f64, String> {
    let give_up = Instant::now() + START_WAIT;
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Ok(v) = text.trim().parse::<f64>() {
                return Ok(v);
            }
        }
        if Instant::now() >= give_up {
            return Err(format!(
                "no T0 in `{}` after {START_WAIT:?}",
                path.display()
            ));
        }
        tokio::select! {
            biased;
            _ = stopped(stop) => return Err("stopped while waiting for the T0 file".into()),
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
}

/// T0 from the stream's HTTP-FLV onMetaData (ferrocast serves both from one hub).
async fn t0_from_sibling_flv(http: &HttpUrl) -> Result<f64, String> {
    let path = sibling_flv_path(&http.path).ok_or_else(|| {
        format!(
            "cannot derive an HTTP-FLV URL from `{}` for T0: give --t0 or --t0-file",
            http.path
        )
    })?;
    let read = async {
        let (head, mut body) = HttpConn::open_stream(http, &path).await?;
        if head.status != 200 {
            return Err(format!("{path}: HTTP status {}", head.status));
        }
        let (mut buf, mut splitter) = (BytesMut::new(), FlvSplitter::default());
        while body.read(&mut buf).await? {
            while let Some(tag) = splitter.next(&mut buf)? {
                match tag.tag_type {
                    flv::TAG_SCRIPT => {
                        return t0_from_script(&tag.body)
                            .ok_or_else(|| format!("{path}: no {T0_FIELD} in onMetaData"))
                    }
                    // onMetaData comes first when there is one.
                    flv::TAG_AUDIO | flv::TAG_VIDEO => {
                        return Err(format!("{path}: media before any onMetaData"))
                    }
                    _ => {}
                }
            }
        }
        Err(format!("{path}: ended before onMetaData"))
    };
    timeout(START_WAIT, read)
        .await
        .unwrap_or_else(|_| Err(format!("{path}: no onMetaData within {START_WAIT:?}")))
}

/// One measured HLS segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub sequence: u64,
    pub duration_ms: f64,
    /// FLV timestamp of the first video frame.
    pub first_ts_ms: f64,
    /// Unix ms when its download completed.
    pub done_unix_ms: f64,
    /// `#EXT-X-TARGETDURATION` of the playlist that listed it, ms.
    pub target_ms: f64,
    pub bytes: u64,
}

/// FLV timestamp (ms) of a 90 kHz TS timestamp written as `ts_ms * 90 + offset`
/// modulo 2^33.
pub fn flv_ms_from_90k(ts_90k: u64, offset_90k: u64) -> f64 {
    let ticks = (ts_90k + WRAP_90K - offset_90k % WRAP_90K) % WRAP_90K;
    ticks as f64 / 90.0
}

/// Latencies of a hls.js-like player joining every `step_ms` between the first and
/// the last segment's arrival: see the module doc.
pub fn player_latencies(segments: &[Segment], t0: f64, hold_back: f64, step_ms: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let (Some(first), Some(last)) = (segments.first(), segments.last()) else {
        return out;
    };
    let mut newest = 0;
    let mut t = first.done_unix_ms;
    while t < last.done_unix_ms {
        while newest + 1 < segments.len() && segments[newest + 1].done_unix_ms <= t {
            newest += 1;
        }
        let s = &segments[newest];
        let edge_media = s.first_ts_ms + s.duration_ms;
        let start_media = edge_media - hold_back * s.target_ms;
        out.push(t - t0 - start_media);
        t += step_ms;
    }
    out
}

#[derive(Debug, Serialize)]
pub struct HlsReport {
    pub url: String,
    pub mode: &'static str,
    pub t0_unix_ms: Option<f64>,
    pub duration_s: f64,
    pub poll_ms: f64,
    pub playlist_polls: u64,
    pub segments_listed_at_start: u64,
    pub segments_measured: u64,
    pub target_duration_s: Option<f64>,
    pub segment_duration_s: Spread,
    pub segment_bytes: Spread,
    pub edge_ms: Summary,
    pub after_segment_end_ms: Summary,
    pub player_ms: BTreeMap<String, Summary>,
    /// Per measured segment: `[sequence, edge_ms]`, for checking by hand.
    pub per_segment_edge_ms: Vec<(u64, f64)>,
    pub problems: BTreeMap<String, u64>,
    pub error: Option<String>,
}

/// Follows a live HLS playlist for the run, downloading each new segment.
pub async fn run_hls(plan: &LatencyPlan, mut stop: Stop) -> HlsReport {
    let start = Instant::now();
    let end = start + plan.duration;
    let mut report = HlsReport {
        url: plan.url.clone(),
        mode: "hls",
        t0_unix_ms: None,
        duration_s: 0.0,
        poll_ms: plan.poll.as_secs_f64() * 1000.0,
        playlist_polls: 0,
        segments_listed_at_start: 0,
        segments_measured: 0,
        target_duration_s: None,
        segment_duration_s: Spread::of(&mut [], 3),
        segment_bytes: Spread::of(&mut [], 0),
        edge_ms: Summary::of(&mut [], 1),
        after_segment_end_ms: Summary::of(&mut [], 1),
        player_ms: BTreeMap::new(),
        per_segment_edge_ms: Vec::new(),
        problems: BTreeMap::new(),
        error: None,
    };
    let t0 = match &plan.t0 {
        T0Source::Value(v) => Ok(*v),
        T0Source::File(path) => read_t0_file(path, &mut stop).await,
        T0Source::Metadata => t0_from_sibling_flv(&plan.http).await,
    };
    let t0 = match t0 {
        Ok(v) => v,
        Err(e) => {
            report.error = Some(e);
            return report;
        }
    };
    report.t0_unix_ms = Some(t0);
    let mut problems = Tally::default();
    let mut conn = HttpConn::new(&plan.http);
    let mut next_sequence: Option<u64> = None;
    let mut segments: Vec<Segment> = Vec::new();
    'run: while Instant::now() < end {
        let poll_start = Instant::now();
        report.playlist_polls += 1;
        match conn.get(&plan.http.path).await {
            Err(e) => problems.add("playlist request failed", &e),
            Ok(r) if r.status != 200 => problems.add(&format!("playlist HTTP {}", r.status), ""),
            Ok(r) => match playlist::parse(&String::from_utf8_lossy(&r.body)) {
                Err(e) => problems.add("playlist unreadable", &e),
                Ok(list) => {
                    let target_ms = list.target_duration_s as f64 * 1000.0;
                    report.target_duration_s = Some(list.target_duration_s as f64);
                    let from = match next_sequence {
                        Some(n) => n,
                        None => {
                            report.segments_listed_at_start = list.entries.len() as u64;
                            let n = list.entries.last().map_or(0, |e| e.sequence + 1);
                            next_sequence = Some(n);
                            n
                        }
                    };
                    if list.entries.first().is_some_and(|e| e.sequence > from) {
                        problems.add("segments left the playlist before being seen", "");
                    }
                    for entry in list.entries.iter().filter(|e| e.sequence >= from) {
                        next_sequence = Some(entry.sequence + 1);
                        let path = match plan.http.join(&entry.uri) {
                            Ok(p) => p,
                            Err(e) => {
                                problems.add("bad segment URI", &e);
                                continue;
                            }
                        };
                        let got = conn.get(&path).await;
                        let done = unix_ms();
                        let body = match got {
                            Ok(r) if r.status == 200 => r.body,
                            Ok(r) => {
                                problems.add(&format!("segment HTTP {}", r.status), &path);
                                continue;
                            }
                            Err(e) => {
                                problems.add("segment request failed", &e);
                                continue;
                            }
                        };
                        match first_video_time(&body) {
                            Ok(t) => segments.push(Segment {
                                sequence: entry.sequence,
                                duration_ms: entry.duration_s * 1000.0,
                                first_ts_ms: flv_ms_from_90k(t.dts_90k, plan.pts_offset_90k),
                                done_unix_ms: done,
                                target_ms,
                                bytes: body.len() as u64,
                            }),
                            Err(e) => problems.add("segment without video timing", &e),
                        }
                    }
                    if list.ended {
                        problems.add("stream ended (#EXT-X-ENDLIST)", "");
                        break 'run;
                    }
                }
            },
        }
        tokio::select! {
            biased;
            _ = stopped(&mut stop) => break,
            _ = sleep_until(end) => break,
            _ = sleep_until(poll_start + plan.poll) => {}
        }
    }
    report.duration_s = round(start.elapsed().as_secs_f64(), 3);
    report.segments_measured = segments.len() as u64;
    let mut durations: Vec<f64> = segments.iter().map(|s| s.duration_ms / 1000.0).collect();
    let mut sizes: Vec<f64> = segments.iter().map(|s| s.bytes as f64).collect();
    let mut edge: Vec<f64> = segments
        .iter()
        .map(|s| s.done_unix_ms - (t0 + s.first_ts_ms))
        .collect();
    report.per_segment_edge_ms = segments
        .iter()
        .zip(&edge)
        .map(|(s, e)| (s.sequence, round(*e, 1)))
        .collect();
    let mut after_end: Vec<f64> = segments
        .iter()
        .map(|s| s.done_unix_ms - (t0 + s.first_ts_ms + s.duration_ms))
        .collect();
    report.segment_duration_s = Spread::of(&mut durations, 3);
    report.segment_bytes = Spread::of(&mut sizes, 0);
    report.edge_ms = Summary::of(&mut edge, 1);
    report.after_segment_end_ms = Summary::of(&mut after_end, 1);
    for &n in &plan.hold_back_segments {
        let mut player = player_latencies(&segments, t0, n, JOIN_STEP_MS);
        report
            .player_ms
            .insert(format!("hold_back_{n}"), Summary::of(&mut player, 1));
    }
    report.problems = problems.counts;
    if segments.len() < 2 && report.error.is_none() {
        report.error = Some("fewer than two new segments seen".into());
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrocast_proto::amf0::Amf0Value;

    #[test]
    fn url_kinds() {
        assert!(is_hls("/live/x/hls.m3u8"));
        assert!(is_hls("/live/x/hls.m3u8?vhost=a"));
        assert!(!is_hls("/live/x.live.flv"));
        assert_eq!(
            sibling_flv_path("/live/x/hls.m3u8").as_deref(),
            Some("/live/x.live.flv")
        );
        assert_eq!(
            sibling_flv_path("/live/x/hls.m3u8?vhost=a").as_deref(),
            Some("/live/x.live.flv?vhost=a")
        );
        assert_eq!(sibling_flv_path("/hls/x.m3u8"), None);
    }

    #[test]
    fn t0_in_metadata() {
        let body = amf0::encode_to_vec(&Amf0Value::String("onMetaData".into()));
        let mut body = body;
        amf0::encode(
            &Amf0Value::ecma_array([
                ("width", Amf0Value::Number(1280.0)),
                (T0_FIELD, Amf0Value::Number(1_764_000_000_123.25)),
            ]),
            &mut body,
        );
        assert_eq!(t0_from_script(&body), Some(1_764_000_000_123.25));
        let plain = amf0::encode_to_vec(&Amf0Value::String("onMetaData".into()));
        assert_eq!(t0_from_script(&plain), None);
        assert_eq!(t0_from_script(&[0xff]), None);
    }

    #[test]
    fn flv_splitter_takes_tags_as_they_complete() {
        let mut file = BytesMut::from(&flv::file_header(true, true)[..]);
        flv::write_tag(&mut file, flv::TAG_SCRIPT, 0, b"meta");
        flv::write_tag(&mut file, flv::TAG_VIDEO, 40, &[0x17, 1, 0, 0, 0, 9, 9]);
        let wire = file.freeze();
        for cut in 0..wire.len() {
            let mut s = FlvSplitter::default();
            let mut buf = BytesMut::from(&wire[..cut]);
            let mut got = Vec::new();
            while let Some(t) = s.next(&mut buf).unwrap() {
                got.push(t.timestamp);
            }
            buf.extend_from_slice(&wire[cut..]);
            while let Some(t) = s.next(&mut buf).unwrap() {
                got.push(t.timestamp);
            }
            assert_eq!(got, [0, 40], "cut at {cut}");
            assert!(buf.is_empty());
        }
        let mut bad = BytesMut::from(&b"GIF89a......."[..]);
        assert!(FlvSplitter::default().next(&mut bad).is_err());
    }

    #[test]
    fn pts_to_flv_ms() {
        assert_eq!(flv_ms_from_90k(126_000, 126_000), 0.0);
        assert_eq!(flv_ms_from_90k(126_000 + 90 * 2_000, 126_000), 2_000.0);
        // Wrapped past 2^33.
        let ts_ms = 100_000_000u64; // 27.8 h
        let wrapped = (ts_ms * 90 + 126_000) % WRAP_90K;
        let back = flv_ms_from_90k(wrapped, 126_000);
        assert_eq!(back, ((ts_ms * 90) % WRAP_90K) as f64 / 90.0);
        assert_eq!(flv_ms_from_90k(90, 0), 1.0);
    }

    fn seg(first_ts_ms: f64, done: f64) -> Segment {
        Segment {
            sequence: 0,
            duration_ms: 2000.0,
            first_ts_ms,
            done_unix_ms: done,
            target_ms: 2000.0,
            bytes: 0,
        }
    }

    #[test]
    fn player_model() {
        // T0 = 1000; segments of 2 s, each available 100 ms after its end.
        let t0 = 1000.0;
        let segs = [
            seg(0.0, t0 + 2100.0),
            seg(2000.0, t0 + 4100.0),
            seg(4000.0, t0 + 6100.0),
        ];
        let l = player_latencies(&segs, t0, 3.0, 10.0);
        assert_eq!(l.len(), 400);
        // Joining as a segment appears: 3 x 2 s + the 100 ms production delay.
        assert_eq!(l[0], 6100.0);
        // Just before the next one: 2 s more.
        assert_eq!(*l.last().unwrap(), 6100.0 + 1990.0);
        assert_eq!(l[200], 6100.0);
        assert!(player_latencies(&segs[..1], t0, 3.0, 10.0).is_empty());
        assert!(player_latencies(&[], t0, 3.0, 10.0).is_empty());
    }
}
