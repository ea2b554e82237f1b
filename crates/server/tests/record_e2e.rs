//! Recording, end to end: a real ffmpeg publishes, the API starts and stops
//! recordings, and ffprobe/ffmpeg judge the files as a user's player would
//! (durations, codecs, seeking, decoding without errors, playback after a crash).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const SECRET: &str = "rec-secret";

fn config(extra: &str) -> String {
    format!("[api]\nsecret = \"{SECRET}\"\n{extra}")
}

fn q(stream: &str, extra: &str) -> String {
    format!("secret={SECRET}&vhost=__defaultVhost__&app=live&stream={stream}{extra}")
}

fn msg(v: &Value) -> String {
    v["msg"].as_str().unwrap_or_default().to_string()
}

fn format_duration(path: &Path) -> f64 {
    let p = ffprobe(&["-show_entries", "format=duration", path.to_str().unwrap()]);
    p.iter()
        .find_map(|m| m.get("duration")?.parse().ok())
        .unwrap_or_else(|| panic!("no duration for {}: {p:?}", path.display()))
}

/// Top-level MP4 box types, in file order.
fn top_level_boxes(path: &Path) -> Vec<String> {
    let data = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos + 8 <= data.len() {
        let size32 = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as u64;
        let kind = String::from_utf8_lossy(&data[pos + 4..pos + 8]).into_owned();
        let size = match size32 {
            1 => u64::from_be_bytes(data[pos + 8..pos + 16].try_into().unwrap()),
            0 => (data.len() - pos) as u64,
            s => s,
        };
        out.push(kind);
        if size < 8 {
            break;
        }
        pos += size as usize;
    }
    out
}

/// The recorded MP4 files of `live/{stream}`, asking getMP4RecordFile.
fn recorded_files(server: &Server, stream: &str, custom: &str) -> Vec<(PathBuf, String)> {
    let days = api(server, "getMP4RecordFile", &q(stream, custom));
    assert_eq!(api_code(&days), 0, "{days}");
    let mut files = Vec::new();
    for day in days["data"]["paths"].as_array().unwrap() {
        let day = day.as_str().unwrap();
        let v = api(
            server,
            "getMP4RecordFile",
            &q(stream, &format!("{custom}&period={day}")),
        );
        assert_eq!(api_code(&v), 0, "{v}");
        let root = PathBuf::from(v["data"]["rootPath"].as_str().unwrap());
        let urls = v["data"]["urls"].as_array().unwrap();
        for (i, f) in v["data"]["paths"].as_array().unwrap().iter().enumerate() {
            files.push((
                root.join(f.as_str().unwrap()),
                urls[i].as_str().unwrap().to_string(),
            ));
        }
    }
    files
}

fn first_video_pts_after_seek(path: &Path, at: f64) -> f64 {
    let p = ffprobe(&[
        "-read_intervals",
        &format!("{at}%+0.5"),
        "-select_streams",
        "v",
        "-show_entries",
        "frame=pts_time",
        path.to_str().unwrap(),
    ]);
    p.iter()
        .find_map(|m| m.get("pts_time")?.parse().ok())
        .unwrap_or_else(|| panic!("no frame after seeking to {at}: {p:?}"))
}

#[test]
fn mp4_record_stop_seek_list_and_serve() {
    let server = Server::start("rec_mp4", &config(""));
    // Before the stream exists: -500 and nothing recorded.
    let v = api(&server, "startRecord", &q("cam", "&type=1"));
    assert_eq!(
        (api_code(&v), msg(&v).as_str()),
        (-500, "can not find the stream")
    );

    let _publisher = publish_short_gop(&server, "pub", "cam", 40);
    wait_online_with(&server, SECRET, "cam");
    std::thread::sleep(Duration::from_millis(1500));

    // Bad input: -300 naming the parameter, -100 for a wrong secret; nothing starts.
    let v = api(&server, "startRecord", &q("cam", ""));
    assert_eq!(api_code(&v), -300, "{v}");
    assert!(msg(&v).contains("type"), "{v}");
    let v = api(&server, "startRecord", &q("cam", "&type=7"));
    assert_eq!(api_code(&v), -300, "{v}");
    let v = api(
        &server,
        "startRecord",
        &format!("secret={SECRET}&app=live&type=1"),
    );
    assert!(api_code(&v) == -300 && msg(&v).contains("stream"), "{v}");
    // A stream name cannot point outside the record directory either.
    for bad in ["../../escape", "/tmp/abs"] {
        let v = api(
            &server,
            "getMP4RecordFile",
            &format!("secret={SECRET}&app=live&stream={bad}"),
        );
        assert_eq!(api_code(&v), -300, "{bad}: {v}");
        let v = api(
            &server,
            "startRecord",
            &format!("secret={SECRET}&app=live&type=1&stream={bad}"),
        );
        assert_eq!(api_code(&v), -300, "{bad}: {v}");
    }
    for bad in ["../../escape", "/tmp/abs", "a/../../b"] {
        let v = api(
            &server,
            "startRecord",
            &q("cam", &format!("&type=1&customized_path={bad}")),
        );
        assert_eq!(api_code(&v), -300, "{bad}: {v}");
        assert!(msg(&v).contains("customized_path"), "{v}");
    }
    let v = api(
        &server,
        "startRecord",
        "secret=wrong&app=live&stream=cam&type=1",
    );
    assert_eq!(api_code(&v), -100, "{v}");
    let v = api(&server, "isRecording", &q("cam", "&type=1"));
    assert_eq!(v["status"], false, "nothing started: {v}");
    let v = api(&server, "stopRecord", &q("cam", "&type=1"));
    assert_eq!(
        (api_code(&v), &v["result"]),
        (-1, &Value::Bool(false)),
        "{v}"
    );

    // Record 10 s.
    let v = api(&server, "startRecord", &q("cam", "&type=1"));
    assert_eq!((api_code(&v), &v["result"]), (0, &Value::Bool(true)), "{v}");
    let started = Instant::now();
    assert_eq!(
        api(&server, "isRecording", &q("cam", "&type=1"))["status"],
        true
    );
    let media = api(&server, "getMediaList", &q("cam", "&schema=rtmp"));
    assert_eq!(media["data"][0]["isRecordingMP4"], true, "{media}");
    assert_eq!(media["data"][0]["isRecordingHLS"], false, "{media}");
    let m = server.get("/metrics").text();
    assert_eq!(
        metric(&m, "ferrocast_recordings_in_progress", &["type=\"mp4\""]),
        1.0,
        "{m}"
    );
    std::thread::sleep(Duration::from_secs(10).saturating_sub(started.elapsed()));
    let v = api(&server, "stopRecord", &q("cam", "&type=1"));
    assert_eq!((api_code(&v), &v["result"]), (0, &Value::Bool(true)), "{v}");
    assert_eq!(
        api(&server, "isRecording", &q("cam", "&type=1"))["status"],
        false
    );
    let m = server.get("/metrics").text();
    assert_eq!(
        metric(&m, "ferrocast_recordings_in_progress", &["type=\"mp4\""]),
        0.0,
        "{m}"
    );

    // One file, listed by day, finished with its index at the end.
    let files = recorded_files(&server, "cam", "");
    assert_eq!(files.len(), 1, "{files:?}");
    let (path, url) = &files[0];
    assert!(
        path.starts_with(server.dir.join("data/record/live/cam")),
        "{path:?}"
    );
    let boxes = top_level_boxes(path);
    assert_eq!(boxes.first().map(String::as_str), Some("ftyp"), "{boxes:?}");
    assert_eq!(boxes.last().map(String::as_str), Some("moov"), "{boxes:?}");
    assert!(
        !boxes.iter().any(|b| b == "moof"),
        "fragments folded into the index: {boxes:?}"
    );

    let d = format_duration(path);
    assert!((d - 10.0).abs() <= 0.5, "duration {d} s, recorded 10 s");
    let streams = probe_streams(path.to_str().unwrap());
    assert!(
        streams
            .iter()
            .any(|s| s.codec_name == "h264" && s.width == Some(320) && s.height == Some(240)),
        "{streams:?}"
    );
    assert!(streams.iter().any(|s| s.codec_name == "aac"), "{streams:?}");
    assert_eq!(
        decode_errors(path, None),
        "",
        "the file decodes without errors"
    );
    // Seeking: the index takes a player to the keyframe at or before the target.
    let pts = first_video_pts_after_seek(path, 5.0);
    assert!((4.5..=5.1).contains(&pts), "seek to 5 s landed at {pts}");

    // Served over HTTP, with Range for seeking.
    assert!(
        url.starts_with("/record/live/cam/") && url.ends_with(".mp4"),
        "{url}"
    );
    let bytes = std::fs::read(path).unwrap();
    let full = server.get(url);
    assert_eq!(full.status, 200);
    assert_eq!(full.body, bytes, "the served file is the file");
    let part = http_request(server.http, "GET", url, &[("Range", "bytes=100-199")]);
    assert_eq!(part.status, 206);
    assert_eq!(part.body, bytes[100..200]);
    let escape = server.get("/record/../c.toml");
    assert!(matches!(escape.status, 400 | 404), "{}", escape.status);
}

#[test]
fn mp4_recording_cut_by_kill_9_still_plays() {
    let mut server = Server::start("rec_kill9", &config("[record]\nfragment_ms = 1000\n"));
    let _publisher = publish_short_gop(&server, "pub", "cam", 30);
    wait_online_with(&server, SECRET, "cam");
    let v = api(&server, "startRecord", &q("cam", "&type=1"));
    assert_eq!(api_code(&v), 0, "{v}");
    std::thread::sleep(Duration::from_secs(6));
    let files = recorded_files(&server, "cam", "");
    assert_eq!(files.len(), 1, "{files:?}");
    server.kill9();
    let path = &files[0].0;
    let boxes = top_level_boxes(path);
    assert!(
        boxes.iter().any(|b| b == "moof"),
        "still fragmented: {boxes:?}"
    );
    let d = format_duration(path);
    // Everything up to the last complete fragment (1 s) plays.
    assert!(d >= 4.0, "only {d} s playable of about 6 s recorded");
    let counts = stream_packet_counts(path, None);
    assert!(counts.video >= 100, "{counts:?}");
    // At most the cut last fragment may be reported.
    let errors = decode_errors(path, None);
    assert!(errors.lines().count() <= 3, "{errors}");
}

#[test]
fn hls_and_mp4_recording_across_a_publisher_reconnect() {
    let server = Server::start("rec_hls", &config("[record]\nhls_segment_ms = 2000\n"));
    let mut first = publish_short_gop(&server, "pub1", "cam", 30);
    wait_online_with(&server, SECRET, "cam");
    for t in ["0", "1"] {
        let v = api(&server, "startRecord", &q("cam", &format!("&type={t}")));
        assert_eq!(api_code(&v), 0, "{v}");
    }
    assert_eq!(
        api(&server, "getMediaList", &q("cam", "&schema=rtmp"))["data"][0]["isRecordingHLS"],
        true
    );
    std::thread::sleep(Duration::from_secs(5));
    // The publisher drops and a new one comes back within continue_push.
    first.kill();
    std::thread::sleep(Duration::from_millis(1500));
    let _second = publish_short_gop(&server, "pub2", "cam", 30);
    wait_online_with(&server, SECRET, "cam");
    std::thread::sleep(Duration::from_secs(5));
    for t in ["0", "1"] {
        let v = api(&server, "stopRecord", &q("cam", &format!("&type={t}")));
        assert_eq!(api_code(&v), 0, "{v}");
    }

    // HLS: one VOD playlist with a discontinuity, every segment on disk.
    let day_dirs: Vec<_> = std::fs::read_dir(server.dir.join("data/record/live/cam"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(day_dirs.len(), 1);
    let playlists: Vec<PathBuf> = std::fs::read_dir(day_dirs[0].path())
        .unwrap()
        .flatten()
        .map(|e| e.path().join("index.m3u8"))
        .filter(|p| p.exists())
        .collect();
    assert_eq!(playlists.len(), 1, "one HLS recording: {playlists:?}");
    let text = std::fs::read_to_string(&playlists[0]).unwrap();
    assert!(text.contains("#EXT-X-PLAYLIST-TYPE:EVENT"), "{text}");
    assert!(text.trim_end().ends_with("#EXT-X-ENDLIST"), "{text}");
    assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{text}");
    let pl = parse_playlist(&text);
    assert!(pl.entries.len() >= 4, "{text}");
    let listed: f64 = pl.entries.iter().map(|e| e.duration).sum();
    assert!(
        (8.0..=13.0).contains(&listed),
        "listed {listed} s of about 10.5 s: {text}"
    );
    for e in &pl.entries {
        assert!(
            playlists[0].with_file_name(&e.uri).exists(),
            "{} missing",
            e.uri
        );
    }
    // ffmpeg plays it from start to end.
    assert_eq!(decode_errors(&playlists[0], None), "");
    let played = format_duration(&playlists[0]);
    assert!(
        (listed - played).abs() < 1.0,
        "playlist {listed} s, ffprobe {played} s"
    );

    // MP4: the same settings came back, so it is one file spanning both publishers.
    let files = recorded_files(&server, "cam", "");
    assert_eq!(files.len(), 1, "{files:?}");
    let d = format_duration(&files[0].0);
    assert!((8.0..=13.0).contains(&d), "MP4 duration {d} s");
    assert_eq!(decode_errors(&files[0].0, None), "");
}

#[test]
fn auto_record_rotates_and_is_finished_on_sigterm() {
    let mut server = Server::start(
        "rec_auto",
        &config("[record]\nauto_mp4_apps = [\"live\"]\nmax_second = 10\n"),
    );
    let _publisher = publish_short_gop(&server, "pub", "cam", 60);
    wait_online_with(&server, SECRET, "cam");
    assert_eq!(
        api(&server, "isRecording", &q("cam", "&type=1"))["status"],
        true,
        "recording from the start"
    );
    // Into the second file (rotation after 10 s on a keyframe).
    std::thread::sleep(Duration::from_secs(14));
    let status = server
        .terminate(Duration::from_secs(6))
        .expect("exits on SIGTERM");
    assert!(status.success(), "{status:?}");
    let log = server.log();
    assert!(log.contains("recording file finished"), "{log}");
    let mut files: Vec<PathBuf> = Vec::new();
    for day in std::fs::read_dir(server.dir.join("data/record/live/cam"))
        .unwrap()
        .flatten()
    {
        for f in std::fs::read_dir(day.path()).unwrap().flatten() {
            files.push(f.path());
        }
    }
    files.sort();
    assert_eq!(files.len(), 2, "rotated once: {files:?}");
    let d0 = format_duration(&files[0]);
    assert!(
        (10.0..=10.6).contains(&d0),
        "first file cut on the first keyframe after 10 s: {d0}"
    );
    for f in &files {
        let boxes = top_level_boxes(f);
        assert_eq!(
            boxes.last().map(String::as_str),
            Some("moov"),
            "{f:?} finished: {boxes:?}"
        );
        assert_eq!(decode_errors(f, None), "");
    }
    let d1 = format_duration(&files[1]);
    assert!(d1 >= 2.0, "second file {d1} s");
}

#[test]
fn a_full_disk_pauses_the_recording_not_the_server() {
    // Files the server writes may not exceed 400 kB: every recording file hits EFBIG
    // (the limit never goes away, so each new file fills up in turn).
    let server = Server::start_wrapped(
        "rec_full",
        &config(""),
        &["prlimit", "--fsize=400000", "--"],
    );
    let _publisher = publish_short_gop(&server, "pub", "cam", 40);
    wait_online_with(&server, SECRET, "cam");
    let v = api(&server, "startRecord", &q("cam", "&type=1"));
    assert_eq!(api_code(&v), 0, "{v}");
    server.wait_for_log(
        &["MP4 recording paused by a write error"],
        Duration::from_secs(30),
    );
    // The recording is paused, not ended, and says why.
    let status = api(&server, "isRecording", &q("cam", "&type=1"));
    assert_eq!(status["status"], true, "{status}");
    let err = status["error"].as_str().unwrap_or_default();
    assert!(err.to_lowercase().contains("file too large"), "{status}");
    // It resumes into a new file.
    server.wait_for_log(&["resumed into a new file"], Duration::from_secs(10));
    let files = recorded_files(&server, "cam", "");
    assert!(files.len() >= 2, "{files:?}");
    for (path, _) in &files {
        let len = std::fs::metadata(path).unwrap().len();
        assert!(len <= 400_000, "{len}");
    }
    // The first file was cut back to its last whole fragment: it still plays.
    let first = &files[0].0;
    assert!(format_duration(first) >= 1.0);
    assert_eq!(decode_errors(first, None), "", "ends on a whole fragment");
    // The server and the stream go on.
    let v = api(&server, "isMediaOnline", &q("cam", "&schema=rtmp"));
    assert_eq!(v["online"], true, "{v}");
    let out = server.path("after.flv");
    let mut player = record(&server, "player", "cam", &out, &["-t", "2"]);
    player.wait_success(Duration::from_secs(20));
    assert!(stream_packet_counts(&out, None).video >= 25);
}

#[test]
fn recordings_are_finished_when_the_stream_ends() {
    let server = Server::start(
        "rec_end",
        &config("[general]\ncontinue_push_ms = 500\n[record]\nhls_segment_ms = 1000\n"),
    );
    let mut publisher = publish_short_gop(&server, "pub", "cam", 5);
    wait_online_with(&server, SECRET, "cam");
    let custom = "&customized_path=matches/final";
    for t in ["0", "1"] {
        let v = api(
            &server,
            "startRecord",
            &q("cam", &format!("&type={t}{custom}")),
        );
        assert_eq!(api_code(&v), 0, "{v}");
    }
    publisher.wait_success(Duration::from_secs(20));
    // No stopRecord: the stream's end (after continue_push) finishes both.
    let t = Instant::now();
    while ["0", "1"]
        .iter()
        .any(|ty| api(&server, "isRecording", &q("cam", &format!("&type={ty}")))["status"] == true)
    {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "recordings still running after the stream ended"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The MP4 is under the customized path and listed with it, finished.
    assert!(
        recorded_files(&server, "cam", "").is_empty(),
        "not in the default tree"
    );
    let files = recorded_files(&server, "cam", custom);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0]
        .0
        .starts_with(server.dir.join("data/record/matches/final/live/cam")));
    assert!(
        files[0].1.starts_with("/record/matches/final/live/cam/"),
        "{}",
        files[0].1
    );
    assert_eq!(
        top_level_boxes(&files[0].0).last().map(String::as_str),
        Some("moov")
    );
    let d = format_duration(&files[0].0);
    assert!(d > 2.0 && d < 6.0, "{d}");
    // The HLS recording got its ENDLIST.
    let day = files[0].0.parent().unwrap();
    let hls: Vec<PathBuf> = std::fs::read_dir(day)
        .unwrap()
        .flatten()
        .map(|e| e.path().join("index.m3u8"))
        .filter(|p| p.exists())
        .collect();
    assert_eq!(hls.len(), 1, "{hls:?}");
    let text = std::fs::read_to_string(&hls[0]).unwrap();
    assert!(text.trim_end().ends_with("#EXT-X-ENDLIST"), "{text}");
    assert_eq!(decode_errors(&hls[0], None), "");
    server.wait_for_log(&["recording file finished"], Duration::from_secs(1));
}
