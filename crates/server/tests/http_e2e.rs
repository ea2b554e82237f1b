//! End to end over HTTP: ffmpeg publishes over RTMP, and HLS, HTTP-FLV, WebSocket-FLV
//! and HTTP-TS are read back from the real `ferrocast` binary and checked with ffmpeg
//! and ffprobe (issue 3, "Tests"), plus the HTTP rules: status codes for bad and
//! unknown paths, Range, HEAD, Content-Type, Cache-Control and CORS headers.
//!
//! The playlist is polled while the publisher runs and every segment it lists is
//! downloaded at once and kept by sequence number, the way a player sees them.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::*;

/// The HLS target duration under test (the default `hls.segment_ms`).
const TARGET_S: f64 = 2.0;
/// How far a segment (but the last) may be from the target.
const DURATION_TOLERANCE: f64 = 0.10;
/// Playlist polling interval: well under a segment, so none is missed.
const POLL: Duration = Duration::from_millis(400);

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

/// What a player saw of one stream's HLS: every playlist fetched and every segment
/// listed, downloaded as soon as it was listed.
struct HlsWatch {
    /// `/live/<name>`
    base: String,
    playlists: Vec<HlsPlaylist>,
    /// By sequence number: the entry as first listed and the segment's bytes.
    segments: BTreeMap<u64, (HlsEntry, Vec<u8>)>,
    first_playlist_after: Option<Duration>,
    started: Instant,
    /// The media playlist's path (with its session token), from the one-variant
    /// master playlist `hls.m3u8` answers first.
    media: Option<String>,
}

impl HlsWatch {
    fn new(name: &str) -> HlsWatch {
        HlsWatch {
            base: format!("/live/{name}"),
            media: None,
            playlists: Vec::new(),
            segments: BTreeMap::new(),
            first_playlist_after: None,
            started: Instant::now(),
        }
    }

    /// Fetches the playlist (`None` while it is 404: no complete segment yet), checks
    /// it against the earlier ones and downloads every segment not seen yet.
    fn poll(&mut self, srv: &Server) -> Option<HlsPlaylist> {
        if self.media.is_none() {
            let r = srv.get(&format!("{}/hls.m3u8", self.base));
            if r.status == 404 {
                return None;
            }
            self.media = Some(common::hls_variant(&self.base, &r));
        }
        let r = srv.get(self.media.as_deref().unwrap());
        if r.status == 404 && self.playlists.is_empty() {
            return None;
        }
        assert_eq!(r.status, 200, "playlist: {}", r.text());
        assert_eq!(
            r.header("content-type"),
            Some("application/vnd.apple.mpegurl"),
            "playlist Content-Type"
        );
        let text = r.text();
        let p = parse_playlist(&text);
        self.first_playlist_after
            .get_or_insert_with(|| self.started.elapsed());
        self.check_playlist(&p, &text);
        for e in &p.entries {
            if let Some((seen, _)) = self.segments.get(&e.sequence) {
                // The name, not the session token after it (renewed with time).
                let name = |u: &str| u.split('?').next().unwrap_or_default().to_owned();
                assert_eq!(
                    (seen.duration, name(&seen.uri)),
                    (e.duration, name(&e.uri)),
                    "segment {} changed between playlists:\n{text}",
                    e.sequence
                );
                continue;
            }
            let seg = srv.get(&format!("{}/{}", self.base, e.uri));
            assert_eq!(
                seg.status,
                200,
                "segment {} listed but not served: {}\nplaylist:\n{text}",
                e.uri,
                seg.text()
            );
            assert_eq!(seg.header("content-type"), Some("video/mp2t"));
            assert!(!seg.body.is_empty(), "segment {} is empty", e.uri);
            assert_eq!(
                seg.body.len() % 188,
                0,
                "segment {} is not a whole number of TS packets",
                e.uri
            );
            self.segments.insert(e.sequence, (e.clone(), seg.body));
        }
        self.playlists.push(p.clone());
        Some(p)
    }

    /// The rules every single playlist must follow, and how it must relate to the
    /// previous one.
    fn check_playlist(&self, p: &HlsPlaylist, text: &str) {
        assert!(p.version.is_some(), "no #EXT-X-VERSION:\n{text}");
        let target = p
            .target_duration
            .unwrap_or_else(|| panic!("no #EXT-X-TARGETDURATION:\n{text}"));
        assert!(
            p.media_sequence.is_some(),
            "no #EXT-X-MEDIA-SEQUENCE:\n{text}"
        );
        assert!(
            !p.entries.is_empty(),
            "a served playlist lists no segment:\n{text}"
        );
        assert!(
            p.entries.len() <= 3,
            "more than window = 3 segments listed:\n{text}"
        );
        for e in &p.entries {
            let (name, query) = e.uri.split_once('?').unwrap_or((&e.uri, ""));
            assert_eq!(
                name,
                format!("{}.ts", e.sequence),
                "segment names follow the media sequence:\n{text}"
            );
            assert!(
                query.starts_with("session="),
                "a segment URI carries the viewer's session token:\n{text}"
            );
            assert!(
                e.duration.round() as u64 <= target,
                "EXTINF {} above TARGETDURATION {target} (RFC 8216 4.3.3.1):\n{text}",
                e.duration
            );
        }
        assert!(
            p.entries[0].program_date_time.is_some(),
            "no #EXT-X-PROGRAM-DATE-TIME for the first listed segment:\n{text}"
        );
        for e in p
            .entries
            .iter()
            .filter_map(|e| e.program_date_time.as_ref())
        {
            // 2026-11-24T09:02:41.246Z
            assert!(
                e.len() >= 20 && e.as_bytes()[4] == b'-' && e.as_bytes()[10] == b'T',
                "PROGRAM-DATE-TIME {e:?} is not ISO 8601:\n{text}"
            );
        }
        if let Some(prev) = self.playlists.last() {
            assert!(
                p.media_sequence >= prev.media_sequence,
                "MEDIA-SEQUENCE went back from {:?}:\n{text}",
                prev.media_sequence
            );
            assert!(
                p.target_duration >= prev.target_duration,
                "TARGETDURATION lowered from {:?}:\n{text}",
                prev.target_duration
            );
            assert!(!prev.endlist || p.endlist, "ENDLIST went away:\n{text}");
            // A player polling every target duration must never miss a segment: the
            // window moves by at most what was added.
            let prev_last = prev.entries.last().unwrap().sequence;
            assert!(
                p.entries[0].sequence <= prev_last + 1,
                "segments {}..{} never listed while polling every {POLL:?}:\n{text}",
                prev_last + 1,
                p.entries[0].sequence
            );
        }
    }

    /// Polls until the playlist has `#EXT-X-ENDLIST`.
    fn until_endlist(&mut self, srv: &Server, timeout: Duration) -> HlsPlaylist {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(p) = self.poll(srv) {
                if p.endlist {
                    return p;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no #EXT-X-ENDLIST within {timeout:?}; last playlist: {:?}",
                self.playlists.last()
            );
            sleep(POLL);
        }
    }

    /// Writes each segment to `dir/<seq>.ts` and all of them, in order, to
    /// `dir/all.ts` (plain concatenation, as `cat` would); returns the paths.
    fn write_files(&self, dir: &Path) -> (Vec<(u64, PathBuf)>, PathBuf) {
        let mut all = Vec::new();
        let mut files = Vec::new();
        for (seq, (_, bytes)) in &self.segments {
            let path = dir.join(format!("{seq}.ts"));
            fs::write(&path, bytes).expect("write segment");
            all.extend_from_slice(bytes);
            files.push((*seq, path));
        }
        let all_path = dir.join("all.ts");
        fs::write(&all_path, &all).expect("write all.ts");
        (files, all_path)
    }
}

/// What a stream is expected to carry.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tracks {
    AudioVideo,
    VideoOnly,
    AudioOnly,
}

/// The checks every HLS stream gets once it has ended: sequence numbers contiguous,
/// durations on target, each segment starting on a keyframe and decoding on its own
/// (a player may join at any segment), and all of them concatenated decoding with
/// no error. Returns the concatenation.
fn check_finished_hls(w: &HlsWatch, dir: &Path, tracks: Tracks, min_segments: usize) -> PathBuf {
    let seqs: Vec<u64> = w.segments.keys().copied().collect();
    eprintln!(
        "{}: {} playlists polled, segments {:?}, first playlist {:?} after the publisher started",
        w.base,
        w.playlists.len(),
        seqs,
        w.first_playlist_after
    );
    assert!(
        seqs.len() >= min_segments,
        "only {} segments collected, expected at least {min_segments}",
        seqs.len()
    );
    let first = seqs[0];
    assert_eq!(
        seqs,
        (first..first + seqs.len() as u64).collect::<Vec<_>>(),
        "the collected sequence numbers have gaps"
    );
    assert_eq!(first, 0, "a new stream's first segment is 0");
    let last = *seqs.last().unwrap();
    for (seq, (e, _)) in &w.segments {
        assert!(!e.discontinuity, "unexpected discontinuity before {seq}");
        if *seq == last {
            assert!(e.duration > 0.0, "last segment has EXTINF {}", e.duration);
            continue;
        }
        assert!(
            (e.duration - TARGET_S).abs() <= TARGET_S * DURATION_TOLERANCE,
            "segment {seq}: EXTINF {} not within 10% of {TARGET_S} s; all: {:?}",
            e.duration,
            w.segments
                .values()
                .map(|(e, _)| e.duration)
                .collect::<Vec<_>>()
        );
    }

    let (files, all) = w.write_files(dir);
    for (seq, path) in &files {
        let streams = probe_ts_streams(path);
        let has = |t: &str| streams.iter().any(|s| s == t);
        match tracks {
            Tracks::AudioVideo => assert!(has("video") && has("audio"), "{seq}.ts: {streams:?}"),
            Tracks::VideoOnly => assert!(has("video") && !has("audio"), "{seq}.ts: {streams:?}"),
            Tracks::AudioOnly => assert!(!has("video") && has("audio"), "{seq}.ts: {streams:?}"),
        }
        if tracks != Tracks::AudioOnly {
            assert!(
                first_video_is_keyframe(path),
                "segment {seq} does not start with a keyframe"
            );
        }
        let errors = decode_errors(path, Some("mpegts"));
        assert!(
            errors.trim().is_empty(),
            "segment {seq} alone does not decode cleanly:\n{errors}"
        );
    }
    let errors = decode_errors(&all, None);
    assert!(
        errors.trim().is_empty(),
        "the {} segments concatenated do not decode cleanly (ffmpeg -v error):\n{errors}",
        files.len()
    );
    all
}

/// Sum of EXTINF of everything collected.
fn total_duration(w: &HlsWatch) -> f64 {
    w.segments.values().map(|(e, _)| e.duration).sum()
}

const FFMPEG_QUIET: &[&str] = &["-nostdin", "-hide_banner", "-loglevel", "error"];

/// `ffmpeg -re -i <test file> <out_opts> -f flv <url>` (a copy or a re-encode of it).
fn publish_with(
    srv: &Server,
    label: &str,
    name: &str,
    in_opts: &[&str],
    out_opts: &[&str],
) -> Proc {
    let src = src_flv();
    let url = srv.url(name);
    let mut args: Vec<&str> = FFMPEG_QUIET.to_vec();
    args.push("-re");
    args.extend_from_slice(in_opts);
    args.extend_from_slice(&["-i", src.to_str().unwrap()]);
    args.extend_from_slice(out_opts);
    args.extend_from_slice(&["-f", "flv", &url]);
    Proc::spawn(label, "ffmpeg", &args, &srv.dir.path)
}

/// A server whose streams end half a second after their publisher does; a player
/// waits up to `max_stream_wait_ms` for a stream.
fn start_server(name: &str, max_stream_wait_ms: u32) -> Server {
    Server::start(
        name,
        &format!("[general]\ncontinue_push_ms = 500\nmax_stream_wait_ms = {max_stream_wait_ms}\n"),
    )
}

/// The codec types of a segment's streams, each once (demuxed as MPEG-TS).
fn probe_ts_streams(path: &Path) -> Vec<String> {
    let mut types: Vec<String> = ffprobe(&[
        "-f",
        "mpegts",
        "-show_entries",
        "stream=codec_type",
        path.to_str().unwrap(),
    ])
    .into_iter()
    .filter_map(|m| m.get("codec_type").cloned())
    .collect();
    types.sort();
    types.dedup();
    types
}

/// With `publisher` already started (and `w` made when it was), watches HLS to the
/// end and runs every check on it.
fn watch_publish(
    srv: &Server,
    mut w: HlsWatch,
    mut publisher: Proc,
    tracks: Tracks,
    media_s: f64,
) -> (HlsWatch, PathBuf) {
    let name = w.base.clone();
    let timeout = Duration::from_secs_f64(media_s + 20.0);
    let deadline = Instant::now() + timeout;
    // Live: poll until the publisher is done, then until ENDLIST.
    while publisher.is_running() {
        w.poll(srv);
        assert!(
            Instant::now() < deadline,
            "publisher still running after {timeout:?}"
        );
        sleep(POLL);
    }
    publisher.wait_success(secs(1));
    let ended = Instant::now();
    let end = w.until_endlist(srv, secs(10));
    eprintln!(
        "{name}: #EXT-X-ENDLIST {:?} after the publisher exited; final playlist {end:?}",
        ended.elapsed()
    );
    let segments = (media_s / TARGET_S).floor() as usize;
    let all = check_finished_hls(&w, &srv.dir.path, tracks, segments - 1);
    let total = total_duration(&w);
    assert!(
        (total - media_s).abs() <= 1.0,
        "the segments add up to {total:.3} s for {media_s} s published"
    );
    (w, all)
}

// ---------------------------------------------------------------------------------
// HLS
// ---------------------------------------------------------------------------------

/// Issue 3: publish for 30 s (the 10 s test file three times over); the playlist,
/// every segment and their concatenation are what a player needs.
#[test]
fn hls_30s_publish() {
    // The checks after the end (every segment probed and decoded: some 45 ffmpeg runs)
    // can take longer than the default 10 s a finished stream's HLS is kept, and the
    // re-fetch and expiry checks below must meet the finished stream, not its absence.
    let srv = Server::start(
        "hls_30s_publish",
        "[general]\ncontinue_push_ms = 500\nmax_stream_wait_ms = 8000\n[hls]\nkeep_after_end_ms = 120000\n",
    );
    let publisher = publish_file(&srv, "publisher", "x", &["-stream_loop", "2"]);
    let mut w = HlsWatch::new("x");

    // While it is live (segment 0 collected first): ffprobe reads the playlist itself.
    let deadline = Instant::now() + secs(10);
    while w.poll(&srv).is_none() {
        assert!(Instant::now() < deadline, "no playlist within 10 s");
        sleep(Duration::from_millis(100));
    }
    let first = wait_http_ok(&srv, "/live/x/hls.m3u8", secs(1));
    assert_eq!(first.header("cache-control"), Some("no-cache"));
    assert_eq!(first.header("access-control-allow-origin"), Some("*"));
    let probe_started = Instant::now();
    assert_src_streams(
        &probe_streams(&srv.http_url("/live/x/hls.m3u8")),
        "ffprobe of the live hls.m3u8",
    );
    eprintln!(
        "ffprobe of the live playlist took {:?}",
        probe_started.elapsed()
    );

    let (w, all) = watch_publish(&srv, w, publisher, Tracks::AudioVideo, 30.0);
    let last_playlist = w.playlists.last().unwrap();
    let last_seq = *w.segments.keys().last().unwrap();
    assert_eq!(
        last_playlist.media_sequence,
        Some(last_seq - 2),
        "the final playlist lists the last 3 segments: {last_playlist:?}"
    );
    let counts = stream_packet_counts(&all, None);
    eprintln!("hls_30s_publish: all.ts has {counts:?}");
    // 750 frames were published; the segments hold every one of them.
    assert_eq!(
        counts.video,
        3 * SRC_FRAMES,
        "video frames in the concatenated segments"
    );
    assert_src_streams(&probe_streams(all.to_str().unwrap()), "ffprobe of all.ts");

    // Every segment is immutable: fetched again, still the same bytes.
    let again = srv.get(&format!("/live/x/{last_seq}.ts"));
    assert_eq!(again.status, 200);
    assert!(
        again.body == w.segments[&last_seq].1,
        "segment {last_seq} changed after it was listed"
    );

    // Segment 0 left the window (3) and the retention (5 more) long ago.
    assert!(last_seq >= 10, "too few segments for an expiry check");
    let expired = srv.get("/live/x/0.ts");
    assert_eq!(
        expired.status,
        404,
        "an expired segment is still served ({} bytes)",
        expired.body.len()
    );
    // Never listed yet: also 404.
    let future = srv.get(&format!("/live/x/{}.ts", last_seq + 100));
    assert_eq!(future.status, 404);
}

/// A B-frame stream (`-bf 2`, fixed B-frame pattern): PTS stays >= DTS in every
/// segment and the segments decode.
#[test]
fn hls_b_frames() {
    let srv = start_server("hls_b_frames", 8000);
    let url = srv.url("bf");
    let mut args: Vec<&str> = FFMPEG_QUIET.to_vec();
    args.extend_from_slice(&[
        "-re",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=640x360:rate=25",
        "-re",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=44100",
        "-t",
        "10",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-bf",
        "2",
        "-x264-params",
        "b-adapt=0",
        "-g",
        "50",
        "-keyint_min",
        "50",
        "-sc_threshold",
        "0",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "64k",
        "-f",
        "flv",
        &url,
    ]);
    let publisher = Proc::spawn("publisher", "ffmpeg", &args, &srv.dir.path);
    let (_w, all) = watch_publish(
        &srv,
        HlsWatch::new("bf"),
        publisher,
        Tracks::AudioVideo,
        10.0,
    );

    let rows = ffprobe(&[
        "-select_streams",
        "v",
        "-show_entries",
        "packet=pts,dts",
        all.to_str().unwrap(),
    ]);
    // In decode order, a B-frame's PTS is below that of a frame decoded before it (the
    // reference it is shown ahead of).
    let mut reordered = 0;
    let mut max_pts = None;
    for r in &rows {
        let (Some(pts), Some(dts)) = (
            r.get("pts").and_then(|v| v.parse::<i64>().ok()),
            r.get("dts").and_then(|v| v.parse::<i64>().ok()),
        ) else {
            panic!("video packet without pts/dts: {r:?}");
        };
        assert!(pts >= dts, "PTS {pts} < DTS {dts} in the segments");
        if max_pts.is_some_and(|m| pts < m) {
            reordered += 1;
        }
        max_pts = max_pts.max(Some(pts));
    }
    eprintln!(
        "hls_b_frames: {} video packets, {reordered} shown before one decoded ahead of them",
        rows.len()
    );
    // -bf 2 without adaptive placement: two B-frames in every three frames.
    assert!(
        reordered > rows.len() / 2,
        "B-frames were published but only {reordered} of {} packets are reordered",
        rows.len()
    );
}

/// Audio only (`-vn`): segments are cut on time, about every 2 s.
#[test]
fn hls_audio_only() {
    let srv = start_server("hls_audio_only", 8000);
    let publisher = publish_with(&srv, "publisher", "a", &[], &["-vn", "-c", "copy"]);
    watch_publish(&srv, HlsWatch::new("a"), publisher, Tracks::AudioOnly, 10.0);
}

/// Video only (`-an`).
#[test]
fn hls_video_only() {
    let srv = start_server("hls_video_only", 8000);
    let publisher = publish_with(&srv, "publisher", "v", &[], &["-an", "-c", "copy"]);
    let (_w, all) = watch_publish(&srv, HlsWatch::new("v"), publisher, Tracks::VideoOnly, 10.0);
    assert_eq!(stream_packet_counts(&all, None).video, SRC_FRAMES);
}

// ---------------------------------------------------------------------------------
// HTTP-FLV, WebSocket-FLV, HTTP-TS
// ---------------------------------------------------------------------------------

/// The three live paths play: ffmpeg reads HTTP-FLV and HTTP-TS, our WebSocket client
/// reads WS-FLV; each recording has H.264 640x360 + AAC and over 50 video frames.
#[test]
fn live_flv_ws_flv_and_ts_play() {
    let srv = start_server("live_flv_ws_flv_and_ts_play", 8000);
    // 20 s of media: the players below need 4 s of it after a second of start-up.
    let mut publisher = publish_file(&srv, "publisher", "x", &["-stream_loop", "1"]);
    srv.wait_for_log(&["publish started", "live/x"], secs(10));
    sleep(secs(1));

    let flv_out = srv.path("http.flv");
    let ts_out = srv.path("http.ts");
    let flv_url = srv.http_url("/live/x.live.flv");
    let ts_url = srv.http_url("/live/x.live.ts");
    let mut http_flv = Proc::spawn(
        "http-flv-player",
        "ffmpeg",
        &[
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-rw_timeout",
            "10000000",
            "-i",
            &flv_url,
            "-t",
            "4",
            "-c",
            "copy",
            "-f",
            "flv",
            "-y",
            flv_out.to_str().unwrap(),
        ],
        &srv.dir.path,
    );
    let mut http_ts = Proc::spawn(
        "http-ts-player",
        "ffmpeg",
        &[
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-rw_timeout",
            "10000000",
            "-i",
            &ts_url,
            "-t",
            "4",
            "-c",
            "copy",
            "-f",
            "mpegts",
            "-y",
            ts_out.to_str().unwrap(),
        ],
        &srv.dir.path,
    );
    let ws_out = srv.path("ws.flv");
    let ws = ws_capture(srv.http, "/live/x.live.flv", secs(4), &ws_out);
    eprintln!(
        "WS-FLV: {} binary and {} text messages, {} bytes, closed early: {}",
        ws.binary_messages, ws.text_messages, ws.bytes, ws.closed_early
    );
    http_flv.wait_success(secs(20));
    http_ts.wait_success(secs(20));
    assert!(
        publisher.is_running(),
        "the publisher ended before the players were done"
    );
    publisher.kill();

    assert!(!ws.closed_early, "the server closed the WebSocket early");
    assert_eq!(ws.text_messages, 0, "WS-FLV sends binary messages only");
    let head = fs::read(&ws_out).expect("read ws.flv");
    assert!(
        head.starts_with(b"FLV\x01"),
        "WS-FLV does not start with an FLV header: {:?}",
        &head[..head.len().min(16)]
    );

    for (what, path) in [
        ("HTTP-FLV", &flv_out),
        ("WS-FLV", &ws_out),
        ("HTTP-TS", &ts_out),
    ] {
        assert_src_streams(&probe_streams(path.to_str().unwrap()), what);
        let counts = stream_packet_counts(path, None);
        eprintln!("{what}: {counts:?}");
        assert!(
            counts.video > 50,
            "{what}: only {counts:?} in about 4 s of playing"
        );
        assert!(counts.audio > 0, "{what}: no audio: {counts:?}");
        assert!(
            first_video_is_keyframe(path),
            "{what}: the first video frame is not a keyframe"
        );
        let errors = decode_errors(path, None);
        assert!(
            errors.trim().is_empty(),
            "{what} does not decode cleanly:\n{errors}"
        );
    }
}

// ---------------------------------------------------------------------------------
// HTTP rules
// ---------------------------------------------------------------------------------

/// Status codes for unknown, bad and oversized paths; Range and HEAD on segments;
/// Content-Type, Cache-Control and CORS headers.
#[test]
fn http_rules() {
    let srv = start_server("http_rules", 1000);

    // Unknown streams: 404 (the live FLV path first waits max_stream_wait for it).
    let r = srv.get("/live/nosuch/hls.m3u8");
    assert_eq!(r.status, 404, "unknown stream's playlist: {}", r.text());
    assert_eq!(srv.get("/live/nosuch/0.ts").status, 404);
    let t = Instant::now();
    let r = srv.get("/live/nosuch.live.flv");
    assert_eq!(r.status, 404, "unknown live FLV: {}", r.text());
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "the live FLV path answered 404 after {:?}, without waiting max_stream_wait_ms",
        t.elapsed()
    );
    assert_eq!(srv.get("/live/nosuch.live.ts").status, 404);

    // Traversal and abuse: 400, and never a file.
    for path in [
        "/live/%2e%2e/hls.m3u8",
        "/live/%2E%2E/hls.m3u8",
        "/..%2f..%2fetc/passwd",
        "/live/..%2f..%2fetc%2fpasswd.live.flv",
        "/live/../hls.m3u8",
        "/live/a%00b/hls.m3u8",
        "/live/a%5cb/hls.m3u8",
    ] {
        let r = srv.get(path);
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        assert!(!r.text().contains("root:"), "{path} served /etc/passwd");
    }
    let long = format!("/live/{}/hls.m3u8", "a".repeat(8000));
    let r = srv.get(&long);
    assert!(
        r.status == 414 || r.status == 400,
        "an 8 kB URL got {} {}",
        r.status,
        r.text()
    );
    // Unknown extensions and names: 404.
    for path in [
        "/live/x/0.mp4",
        "/live/x/hls.m3u",
        "/live/x.flv",
        "/a/b/c/d",
    ] {
        assert_eq!(srv.get(path).status, 404, "{path}");
    }

    let mut publisher = publish_file(&srv, "publisher", "x", &[]);
    let master = wait_http_ok(&srv, "/live/x/hls.m3u8", secs(10));
    for r in [&master, &srv.get(&hls_variant("/live/x", &master))] {
        assert_eq!(
            r.header("content-type"),
            Some("application/vnd.apple.mpegurl")
        );
        assert_eq!(r.header("cache-control"), Some("no-cache"));
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    }
    let playlist = get_hls_media(&srv, "/live/x/hls.m3u8");
    let p = parse_playlist(&playlist.text());
    let seg_path = format!("/live/x/{}", p.entries[0].uri);

    let full = srv.get(&seg_path);
    assert_eq!(full.status, 200);
    let len = full.body.len();
    assert!(len > 1000, "segment of {len} bytes");
    assert_eq!(full.header("content-type"), Some("video/mp2t"));
    assert_eq!(
        full.header("content-length"),
        Some(len.to_string().as_str())
    );
    let cache = full.header("cache-control").unwrap_or_default();
    assert!(
        cache.contains("immutable") && cache.contains("max-age=60"),
        "segment Cache-Control {cache:?}"
    );
    assert_eq!(full.header("access-control-allow-origin"), Some("*"));
    assert_eq!(full.header("accept-ranges"), Some("bytes"));
    // A browser on another origin gets the CORS header too.
    let cors = http_request(
        srv.http,
        "GET",
        &seg_path,
        &[("Origin", "http://example.test")],
    );
    assert_eq!(cors.header("access-control-allow-origin"), Some("*"));

    // HEAD: the length, no body.
    let head = http_request(srv.http, "HEAD", &seg_path, &[]);
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(len.to_string().as_str())
    );
    assert!(
        head.body.is_empty(),
        "HEAD returned {} body bytes",
        head.body.len()
    );
    let head = http_request(srv.http, "HEAD", "/live/x/hls.m3u8", &[]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty(), "HEAD of the playlist returned a body");

    // Ranges: 206 with the right Content-Range and exactly those bytes.
    let cases = [
        ("bytes=0-187".to_string(), 0, 187),
        (format!("bytes=188-{}", 188 * 10 - 1), 188, 188 * 10 - 1),
        (format!("bytes={}-", len - 100), len - 100, len - 1),
        ("bytes=-376".to_string(), len - 376, len - 1),
    ];
    for (range, start, end) in cases {
        let r = http_request(srv.http, "GET", &seg_path, &[("Range", &range)]);
        assert_eq!(r.status, 206, "{range}: {}", r.status);
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes {start}-{end}/{len}").as_str()),
            "{range}"
        );
        assert_eq!(
            r.header("content-length"),
            Some((end - start + 1).to_string().as_str()),
            "{range}"
        );
        assert!(
            r.body == full.body[start..=end],
            "{range}: the bytes are not that slice of the segment"
        );
    }
    let r = http_request(
        srv.http,
        "GET",
        &seg_path,
        &[("Range", &format!("bytes={}-", len + 10))],
    );
    assert_eq!(r.status, 416, "unsatisfiable range");
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes */{len}").as_str())
    );

    // The live paths' headers (HEAD, so the response ends).
    let head = http_request(srv.http, "HEAD", "/live/x.live.flv", &[]);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("video/x-flv"));
    assert_eq!(head.header("access-control-allow-origin"), Some("*"));
    let head = http_request(srv.http, "HEAD", "/live/x.live.ts", &[]);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("video/mp2t"));

    // Only GET and HEAD on media.
    let r = http_request(srv.http, "POST", &seg_path, &[("Content-Length", "0")]);
    assert_eq!(r.status, 405);

    // The player page and its scripts are served.
    let page = srv.get("/");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("player.js"));
    for path in ["/player.js", "/vendor/hls.min.js", "/vendor/mpegts.js"] {
        let r = srv.get(path);
        assert_eq!(r.status, 200, "{path}");
        assert!(
            r.header("content-type")
                .is_some_and(|t| t.starts_with("text/javascript")),
            "{path}: {:?}",
            r.header("content-type")
        );
    }
    publisher.kill();
}
