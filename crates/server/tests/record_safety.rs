//! Recordings that survive faults, end to end: a real ffmpeg publishes, the
//! server is killed or its disk fills, and ffprobe/ffmpeg judge the files as a
//! user's player would. Also retention, which deletes old recordings.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;

const SECRET: &str = "safe-secret";

fn config(extra: &str) -> String {
    format!("[api]\nsecret = \"{SECRET}\"\n{extra}")
}

fn q(stream: &str, extra: &str) -> String {
    format!("secret={SECRET}&vhost=__defaultVhost__&app=live&stream={stream}{extra}")
}

/// Every `.mp4` under `dir`, sorted (names are start times).
fn mp4_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "mp4") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Top-level MP4 box types, in file order.
fn top_level_boxes(path: &Path) -> Vec<String> {
    let data = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos + 8 <= data.len() {
        let size32 = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as u64;
        let size = match size32 {
            1 => u64::from_be_bytes(data[pos + 8..pos + 16].try_into().unwrap()),
            0 => (data.len() - pos) as u64,
            s => s,
        };
        out.push(String::from_utf8_lossy(&data[pos + 4..pos + 8]).into_owned());
        if size < 8 {
            break;
        }
        pos += size as usize;
    }
    out
}

fn format_duration(path: &Path) -> f64 {
    let p = ffprobe(&["-show_entries", "format=duration", path.to_str().unwrap()]);
    p.iter()
        .find_map(|m| m.get("duration")?.parse().ok())
        .unwrap_or_else(|| panic!("no duration for {}: {p:?}", path.display()))
}

/// A finished file: progressive (index at the end, no fragment headers left),
/// decodes without an error, and its video frame count matches its duration.
fn assert_finished_and_plays(path: &Path, min_seconds: f64) -> f64 {
    let boxes = top_level_boxes(path);
    assert_eq!(boxes.last().map(String::as_str), Some("moov"), "{boxes:?}");
    assert!(!boxes.iter().any(|b| b == "moof"), "{boxes:?}");
    assert_eq!(boxes.get(1).map(String::as_str), Some("free"), "{boxes:?}");
    let d = format_duration(path);
    assert!(d >= min_seconds, "{}: {d} s", path.display());
    let counts = stream_packet_counts(path, None);
    let expected = d * 25.0;
    assert!(
        (counts.video as f64 - expected).abs() <= 3.0,
        "{} video frames for {d} s at 25 fps",
        counts.video
    );
    assert!(counts.audio > 0, "{counts:?}");
    assert_eq!(decode_errors(path, None), "", "{}", path.display());
    eprintln!("{}: {d} s, {counts:?}", path.display());
    d
}

#[test]
fn mp4_recording_killed_9_is_finished_at_the_next_start() {
    let mut server = Server::start(
        "safe_kill9",
        &config("[record]\nfragment_ms = 1000\nfsync_interval_ms = 500\n"),
    );
    let _publisher = publish_short_gop(&server, "pub", "cam", 40);
    wait_online_with(&server, SECRET, "cam");
    let v = api(&server, "startRecord", &q("cam", "&type=1"));
    assert_eq!(api_code(&v), 0, "{v}");
    std::thread::sleep(Duration::from_secs(8));
    server.kill9();
    let root = server.dir.join("data/record");
    let files = mp4_files(&root);
    assert_eq!(files.len(), 1, "{files:?}");
    let path = &files[0];
    let boxes = top_level_boxes(path);
    assert_eq!(&boxes[..2], ["ftyp", "moov"], "cut while fragmented");
    assert!(boxes.iter().any(|b| b == "moof"), "{boxes:?}");

    server.restart();
    let line = server.wait_for_log(&["finished with a full index"], Duration::from_secs(10));
    assert!(line.contains(path.to_str().unwrap()), "{line}");
    // Everything up to the last complete fragment (1 s) is indexed: about 8 s were
    // recorded.
    let d = assert_finished_and_plays(path, 6.0);
    assert!(d <= 9.0, "{d}");
    assert_eq!(mp4_files(&root), files, "repaired in place, nothing else");
    let metrics = server.get("/metrics").text();
    assert!(
        metrics.contains("ferrocast_recordings_repaired_total 1"),
        "{metrics}"
    );
    // A second start finds nothing left to do.
    server.restart();
    std::thread::sleep(Duration::from_millis(500));
    assert!(!server.log().contains("finished with a full index"));
}

/// Unmounts the tmpfs of a test, even when the test fails.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Fills the file system of `dir` with one file; returns its path.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let block = vec![0u8; 16 * 1024];
    while f.write_all(&block).is_ok() {}
    let _ = f.sync_all();
    path
}

fn metric(server: &Server, line_start: &str) -> f64 {
    let text = server.get("/metrics").text();
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn a_recording_stopped_by_a_full_disk_resumes_into_a_new_file_when_space_returns() {
    let server = Server::start("safe_full", &config("[record]\nfragment_ms = 500\n"));
    // A 3 MiB tmpfs as the recording's customized_path.
    let small = server.dir.join("data/record/small");
    std::fs::create_dir_all(&small).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=3m", "tmpfs"])
        .arg(&small)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!(
            "SKIPPED: mounting a tmpfs needs root (the prlimit test in record_e2e covers EFBIG)"
        );
        return;
    }
    let _unmount = Unmount(small.clone());
    let _publisher = publish_short_gop(&server, "pub", "cam", 50);
    wait_online_with(&server, SECRET, "cam");
    let v = api(
        &server,
        "startRecord",
        &q("cam", "&type=1&customized_path=small"),
    );
    assert_eq!(api_code(&v), 0, "{v}");
    // Recording for a while, then the disk is full.
    let t = Instant::now();
    while mp4_files(&small)
        .first()
        .map_or(0, |f| std::fs::metadata(f).map_or(0, |m| m.len()))
        < 100_000
    {
        assert!(t.elapsed() < Duration::from_secs(15), "nothing recorded");
        std::thread::sleep(Duration::from_millis(100));
    }
    let filler = fill(&small);
    server.wait_for_log(
        &["MP4 recording paused by a write error"],
        Duration::from_secs(10),
    );
    let v = api(&server, "isRecording", &q("cam", "&type=1"));
    assert_eq!(v["status"], true, "{v}");
    let err = v["error"].as_str().unwrap_or_default().to_lowercase();
    assert!(err.contains("no space left"), "{v}");
    // Meanwhile the live stream and HLS from memory go on.
    let out = server.path("during.flv");
    let mut player = record(&server, "player", "cam", &out, &["-t", "2"]);
    player.wait_success(Duration::from_secs(20));
    assert!(stream_packet_counts(&out, None).video >= 40);
    let hls = server.get("/live/cam/hls.m3u8");
    assert_eq!(hls.status, 200, "{}", hls.text());
    // Still paused (each retry fails), then space returns.
    assert!(!server.log().contains("resumed into a new file"));
    std::fs::remove_file(&filler).unwrap();
    let line = server.wait_for_log(&["resumed into a new file"], Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(4));
    let v = api(&server, "isRecording", &q("cam", "&type=1"));
    assert!(
        v.get("error").is_none(),
        "the error is cleared on resume: {v}"
    );
    let v = api(&server, "stopRecord", &q("cam", "&type=1"));
    assert_eq!(api_code(&v), 0, "{v}");
    let files = mp4_files(&small);
    assert_eq!(
        files.len(),
        2,
        "the cut file and the new one, no empty attempts: {files:?}"
    );
    assert!(line.contains(files[1].to_str().unwrap()), "{line}");
    // The file cut by the full disk was finished once space came back.
    assert_finished_and_plays(&files[0], 1.0);
    assert_finished_and_plays(&files[1], 3.0);
    assert_eq!(
        metric(&server, "ferrocast_recordings_failed_total{type=\"mp4\"}"),
        1.0
    );
    assert_eq!(
        metric(&server, "ferrocast_recordings_resumed_total{type=\"mp4\"}"),
        1.0
    );
}

#[test]
fn retention_deletes_finished_recordings_never_the_one_being_written() {
    // Every finished file is over the 1-byte cap; passes every 2 s.
    let server = Server::start(
        "safe_retention",
        &config("[record]\ndelete_after_s = 4\nmax_disk_bytes = 1\n"),
    );
    let _publisher = publish_short_gop(&server, "pub", "cam", 40);
    wait_online_with(&server, SECRET, "cam");
    let root = server.dir.join("data/record");
    let v = api(&server, "startRecord", &q("cam", "&type=1"));
    assert_eq!(api_code(&v), 0, "{v}");
    // Over the cap for several passes, but being written: kept.
    std::thread::sleep(Duration::from_secs(5));
    let first = mp4_files(&root);
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(!server.log().contains("deleted by retention"));
    let v = api(&server, "stopRecord", &q("cam", "&type=1"));
    assert_eq!(api_code(&v), 0, "{v}");
    std::thread::sleep(Duration::from_millis(1100));
    let v = api(&server, "startRecord", &q("cam", "&type=1"));
    assert_eq!(api_code(&v), 0, "{v}");
    // Finished: the next pass deletes it; the new recording goes on.
    let line = server.wait_for_log(&["deleted by retention"], Duration::from_secs(6));
    assert!(line.contains(first[0].to_str().unwrap()), "{line}");
    assert!(!first[0].exists());
    std::thread::sleep(Duration::from_secs(3));
    let now = mp4_files(&root);
    assert_eq!(now.len(), 1, "{now:?}");
    assert_ne!(now[0], first[0]);
    let v = api(&server, "stopRecord", &q("cam", "&type=1"));
    assert_eq!(api_code(&v), 0, "{v}");
    assert_eq!(
        server.log().matches("deleted by retention").count(),
        1,
        "only the finished file"
    );
}
