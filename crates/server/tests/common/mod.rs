//! The end-to-end harness: runs the real `ferrocast` binary on free loopback ports and
//! drives it with programs we did not write (ffmpeg, ffprobe, rtmpdump).
//!
//! Every process a test starts is owned by a guard that kills it on drop, so a failed
//! assertion never leaves a server or an encoder running. Each server gets its own
//! directory under `CARGO_TARGET_TMPDIR` (its config, its log, the players'
//! recordings); the directory is removed when the test passes and kept when it fails,
//! so the log and the recordings can be looked at.
//!
//! A missing tool is a failure with a message naming the Debian package: these tests
//! are never skipped.

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// The server binary under test.
pub const FERROCAST: &str = env!("CARGO_BIN_EXE_ferrocast");

/// How long the server may take to accept on its RTMP port after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a process gets between SIGTERM and SIGKILL when a guard is dropped.
const TERM_GRACE: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------
// Tools
// ---------------------------------------------------------------------------------

/// Fails the test (never skips it) when `tool` cannot be started.
pub fn require(tool: &str) {
    let (arg, package) = match tool {
        "ffmpeg" | "ffprobe" => ("-version", "ffmpeg"),
        "rtmpdump" => ("--help", "rtmpdump"),
        other => ("--version", other),
    };
    match Command::new(tool)
        .arg(arg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => {}
        Err(e) => panic!(
            "`{tool}` cannot be run ({e}): the end-to-end tests need it; install the Debian \
             package `{package}` (scripts/test.sh does this)"
        ),
    }
}

/// `(major, minor)` of the installed ffmpeg.
pub fn ffmpeg_version() -> (u32, u32) {
    require("ffmpeg");
    let out = Command::new("ffmpeg")
        .arg("-version")
        .output()
        .expect("run ffmpeg -version");
    let text = String::from_utf8_lossy(&out.stdout);
    // "ffmpeg version 5.1.9-0+deb12u1 Copyright ..." or "ffmpeg version n6.1 ..."
    let word = text
        .split_whitespace()
        .nth(2)
        .unwrap_or_else(|| panic!("unexpected `ffmpeg -version` output: {text}"));
    let digits = word.trim_start_matches(|c: char| !c.is_ascii_digit());
    let mut parts = digits
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

// ---------------------------------------------------------------------------------
// Directories
// ---------------------------------------------------------------------------------

static DIR_COUNTER: AtomicU32 = AtomicU32::new(0);

/// A per-test directory; removed on drop unless the test is failing.
pub struct TestDir {
    pub path: PathBuf,
}

impl TestDir {
    pub fn new(name: &str) -> TestDir {
        let n = DIR_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("e2e")
            .join(format!("{name}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        TestDir { path }
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test files kept in {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

// ---------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------

/// A child process whose stderr (and stdout, unless piped elsewhere) goes to a file in
/// the test directory. Killed with SIGKILL on drop.
pub struct Proc {
    pub label: String,
    child: Child,
    output: PathBuf,
    status: Option<ExitStatus>,
}

impl Proc {
    /// Starts `program args` with its output in `dir/<label>.log`.
    pub fn spawn(label: &str, program: &str, args: &[&str], dir: &Path) -> Proc {
        require(program);
        let output = dir.join(format!("{label}.log"));
        let file = File::create(&output).expect("create process log");
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("dup log fd"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}"));
        Proc {
            label: label.to_string(),
            child,
            output,
            status: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the process printed so far.
    pub fn output(&self) -> String {
        strip_ansi(&fs::read_to_string(&self.output).unwrap_or_default())
    }

    /// The exit status, if it exited within `timeout`.
    pub fn wait_for(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.status.is_some() {
            return self.status;
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                self.status = Some(s);
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            sleep(Duration::from_millis(20));
        }
    }

    /// The exit status; fails the test if the process runs longer than `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        match self.wait_for(timeout) {
            Some(s) => s,
            None => panic!(
                "{} still running after {timeout:?}; its output:\n{}",
                self.label,
                self.output()
            ),
        }
    }

    /// Waits (up to `timeout`) and fails the test unless the process exited with 0.
    pub fn wait_success(&mut self, timeout: Duration) {
        let status = self.wait(timeout);
        assert!(
            status.success(),
            "{} failed ({status}); its output:\n{}",
            self.label,
            self.output()
        );
    }

    pub fn is_running(&mut self) -> bool {
        self.wait_for(Duration::ZERO).is_none()
    }

    /// Sends `signal` (a name such as "TERM" or "INT") with kill(1).
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill -{signal} {} failed", self.child.id());
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------

/// A running `ferrocast` with its own ports, directory, config and log.
pub struct Server {
    child: Option<Child>,
    pub rtmp: SocketAddr,
    pub http: SocketAddr,
    log_path: PathBuf,
    // Last: the directory outlives the process writing into it.
    pub dir: TestDir,
}

/// Starts the binary on `dir` (its `c.toml`, its `data/`) on free ports and waits
/// until it accepts; retries with other ports if one was taken meanwhile.
fn launch(
    dir: &TestDir,
    wrapper: &[&str],
    log_base: usize,
) -> (Child, SocketAddr, SocketAddr, PathBuf) {
    let config = dir.join("c.toml");
    // A port found free may be taken by someone else before the server binds it:
    // then the server exits with "cannot listen" and we try other ports.
    for attempt in 0..3 {
        let rtmp: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log_path = dir.join(&format!("ferrocast-{}.log", log_base + attempt));
        let log = File::create(&log_path).expect("create server log");
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(FERROCAST);
                c
            }
            None => Command::new(FERROCAST),
        };
        let mut child = cmd
            .arg("--rtmp")
            .arg(rtmp.to_string())
            .arg("--http")
            .arg(http.to_string())
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log fd"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {FERROCAST}: {e}"));
        let deadline = Instant::now() + START_TIMEOUT;
        let accepted = loop {
            if TcpStream::connect_timeout(&rtmp, Duration::from_millis(200)).is_ok() {
                break true;
            }
            if !matches!(child.try_wait(), Ok(None)) || Instant::now() >= deadline {
                break false;
            }
            sleep(Duration::from_millis(25));
        };
        if accepted {
            return (child, rtmp, http, log_path);
        }
        let exited = !matches!(child.try_wait(), Ok(None));
        let _ = child.kill();
        let _ = child.wait();
        let text = strip_ansi(&fs::read_to_string(&log_path).unwrap_or_default());
        if exited && text.contains("cannot listen") && attempt < 2 {
            continue;
        }
        if exited {
            panic!("ferrocast exited during start-up; log:\n{text}");
        }
        panic!("ferrocast did not accept on {rtmp} within {START_TIMEOUT:?}; log:\n{text}");
    }
    unreachable!("the last attempt returns or panics")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

impl Server {
    /// Starts the server with `toml` as its config file and waits until it accepts.
    pub fn start(name: &str, toml: &str) -> Server {
        Server::start_wrapped(name, toml, &[])
    }

    /// Like [`Server::start`], run under `wrapper` (e.g. `prlimit --fsize=N --`).
    pub fn start_wrapped(name: &str, toml: &str, wrapper: &[&str]) -> Server {
        let dir = TestDir::new(name);
        let config = dir.join("c.toml");
        fs::write(&config, toml).expect("write config");
        let (child, rtmp, http, log_path) = launch(&dir, wrapper, 0);
        Server {
            child: Some(child),
            rtmp,
            http,
            log_path,
            dir,
        }
    }

    /// Stops the server (SIGTERM) and starts it again on the same directory, config
    /// and data (new ports).
    pub fn restart(&mut self) {
        self.terminate(Duration::from_secs(6));
        let n = fs::read_dir(&self.dir.path).map(|d| d.count()).unwrap_or(0);
        let (child, rtmp, http, log_path) = launch(&self.dir, &[], 10 + n);
        self.child = Some(child);
        self.rtmp = rtmp;
        self.http = http;
        self.log_path = log_path;
    }

    /// `rtmp://127.0.0.1:P/live/<name>`
    pub fn url(&self, name: &str) -> String {
        format!("rtmp://{}/live/{name}", self.rtmp)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// The server's log so far (stdout and stderr, colour codes removed).
    pub fn log(&self) -> String {
        strip_ansi(&fs::read_to_string(&self.log_path).unwrap_or_default())
    }

    /// Waits until a log line contains every one of `needles`; returns that line.
    pub fn wait_for_log(&self, needles: &[&str], timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log();
            if let Some(line) = log.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
                return line.to_string();
            }
            if Instant::now() >= deadline {
                panic!("no log line with {needles:?} within {timeout:?}; server log:\n{log}");
            }
            sleep(Duration::from_millis(50));
        }
    }

    /// The `RTMP session closed` line of the connection from `peer`, waiting for it.
    pub fn closed_line(&self, peer: SocketAddr, timeout: Duration) -> String {
        let peer_field = format!("peer={peer} ");
        self.wait_for_log(&["RTMP session closed", &peer_field], timeout)
    }

    pub fn is_alive(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit; `None` if still running.
    /// SIGKILL (a crash), then reap.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(s)) = child.try_wait() {
                self.child = None;
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            sleep(Duration::from_millis(20));
        }
    }

    fn stop_now(&mut self) {
        if self.child.is_some() && self.terminate(TERM_GRACE).is_none() {
            if let Some(mut c) = self.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop_now();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- ferrocast log (last 40 lines) ---");
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

/// Removes ANSI colour sequences (in case a subscriber ignores NO_COLOR).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

// ---------------------------------------------------------------------------------
// Media
// ---------------------------------------------------------------------------------

/// Frames in [`src_flv`]: 10 s at 25 fps.
pub const SRC_FRAMES: u64 = 250;
/// Frames per GOP in [`src_flv`] (2 s).
pub const SRC_GOP: u64 = 50;

/// The 10 s test file (H.264 640x360 25 fps, GOP 2 s, AAC 44.1 kHz), made once and
/// kept in the target directory. Written under a temporary name and renamed, so
/// concurrent test binaries never see half a file.
pub fn src_flv() -> PathBuf {
    static SRC: OnceLock<PathBuf> = OnceLock::new();
    SRC.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("media");
        fs::create_dir_all(&dir).expect("create media dir");
        let path = dir.join("src-testsrc2-640x360-25fps-g50-aac44100-10s.flv");
        if path.exists() {
            return path;
        }
        let tmp = dir.join(format!("src.{}.tmp.flv", std::process::id()));
        let t = tmp.to_str().unwrap();
        run_ok(
            "ffmpeg",
            &[
                "-nostdin",
                "-hide_banner",
                "-loglevel",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=640x360:rate=25",
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
                t,
            ],
        );
        fs::rename(&tmp, &path).expect("rename media file");
        path
    })
    .clone()
}

/// A 10 s 1280x720 25 fps H.264 (GOP 2 s, no scene cuts) + AAC file: the source of
/// the transcoding tests (stream copy, so only the renditions are encoded live).
/// Made once and kept in the target directory, like [`src_flv`].
pub fn src_720p_flv() -> PathBuf {
    static SRC: OnceLock<PathBuf> = OnceLock::new();
    SRC.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("media");
        fs::create_dir_all(&dir).expect("create media dir");
        let path = dir.join("src-testsrc2-1280x720-25fps-g50-aac44100-10s.flv");
        if path.exists() {
            return path;
        }
        let tmp = dir.join(format!("src720.{}.tmp.flv", std::process::id()));
        run_ok(
            "ffmpeg",
            &[
                "-nostdin",
                "-hide_banner",
                "-loglevel",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=1280x720:rate=25",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=44100",
                "-t",
                "10",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-b:v",
                "2500k",
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
                "128k",
                "-f",
                "flv",
                tmp.to_str().unwrap(),
            ],
        );
        fs::rename(&tmp, &path).expect("rename media file");
        path
    })
    .clone()
}

/// Runs a short command to completion; fails the test on a non-zero exit.
pub fn run_ok(program: &str, args: &[&str]) -> String {
    require(program);
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const FFMPEG_COMMON: &[&str] = &["-nostdin", "-hide_banner", "-loglevel", "error"];

/// `ffmpeg -re -i <file> -c copy -f flv <url>` with `extra_in` before `-i`.
pub fn publish_file(server: &Server, label: &str, name: &str, extra_in: &[&str]) -> Proc {
    let src = src_flv();
    let url = server.url(name);
    let mut args: Vec<&str> = FFMPEG_COMMON.to_vec();
    args.push("-re");
    args.extend_from_slice(extra_in);
    args.extend_from_slice(&["-i", src.to_str().unwrap(), "-c", "copy", "-f", "flv", &url]);
    Proc::spawn(label, "ffmpeg", &args, &server.dir.path)
}

/// A live encoder: lavfi testsrc2 + sine, libx264 ultrafast + AAC, for `seconds`,
/// paced in real time.
pub fn publish_live(server: &Server, label: &str, name: &str, size: &str, seconds: u32) -> Proc {
    let url = server.url(name);
    let video = format!("testsrc2=size={size}:rate=25");
    let secs = seconds.to_string();
    let mut args: Vec<&str> = FFMPEG_COMMON.to_vec();
    args.extend_from_slice(&[
        "-re",
        "-f",
        "lavfi",
        "-i",
        &video,
        "-re",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=44100",
        "-t",
        &secs,
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-tune",
        "zerolatency",
        "-g",
        "25",
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
    Proc::spawn(label, "ffmpeg", &args, &server.dir.path)
}

/// A player recording to `out` as FLV: `ffmpeg -i <url> <extra_out> -c copy -f flv out`.
/// `-copyinkf` is always given, so the file shows exactly where the server started
/// the player (ffmpeg would otherwise drop frames before the first keyframe).
pub fn record(server: &Server, label: &str, name: &str, out: &Path, extra_out: &[&str]) -> Proc {
    let url = server.url(name);
    let mut args: Vec<&str> = FFMPEG_COMMON.to_vec();
    args.extend_from_slice(&["-i", &url]);
    args.extend_from_slice(extra_out);
    args.extend_from_slice(&["-c", "copy", "-copyinkf", "-f", "flv", "-y"]);
    args.push(out.to_str().unwrap());
    Proc::spawn(label, "ffmpeg", &args, &server.dir.path)
}

// ---------------------------------------------------------------------------------
// ffprobe
// ---------------------------------------------------------------------------------

/// Runs ffprobe with `-of compact=p=0` and returns one `key -> value` map per line.
pub fn ffprobe(args: &[&str]) -> Vec<HashMap<String, String>> {
    let mut all = vec!["-v", "error", "-of", "compact=p=0"];
    all.extend_from_slice(args);
    let out = run_ok("ffprobe", &all);
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split('|')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    pub codec_type: String,
    pub codec_name: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub sample_rate: Option<u32>,
}

/// The streams ffprobe finds in a file or URL.
pub fn probe_streams(target: &str) -> Vec<StreamInfo> {
    let mut args = Vec::new();
    if target.starts_with("rtmp://") {
        // A live URL: give up after 20 s of silence instead of hanging.
        args.extend_from_slice(&["-rw_timeout", "20000000"]);
    }
    args.extend_from_slice(&[
        "-show_entries",
        "stream=codec_type,codec_name,width,height,sample_rate",
        target,
    ]);
    ffprobe(&args)
        .into_iter()
        .map(|m| StreamInfo {
            codec_type: m.get("codec_type").cloned().unwrap_or_default(),
            codec_name: m.get("codec_name").cloned().unwrap_or_default(),
            width: m.get("width").and_then(|v| v.parse().ok()),
            height: m.get("height").and_then(|v| v.parse().ok()),
            sample_rate: m.get("sample_rate").and_then(|v| v.parse().ok()),
        })
        .collect()
}

/// Asserts the streams of the test media: H.264 640x360 and AAC 44.1 kHz.
pub fn assert_src_streams(streams: &[StreamInfo], what: &str) {
    let video = streams
        .iter()
        .find(|s| s.codec_type == "video")
        .unwrap_or_else(|| panic!("{what}: no video stream in {streams:?}"));
    assert_eq!(video.codec_name, "h264", "{what}: {streams:?}");
    assert_eq!(
        (video.width, video.height),
        (Some(640), Some(360)),
        "{what}: {streams:?}"
    );
    let audio = streams
        .iter()
        .find(|s| s.codec_type == "audio")
        .unwrap_or_else(|| panic!("{what}: no audio stream in {streams:?}"));
    assert_eq!(audio.codec_name, "aac", "{what}: {streams:?}");
    assert_eq!(audio.sample_rate, Some(44100), "{what}: {streams:?}");
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub video: u64,
    pub audio: u64,
}

/// Packets per media type in a file (`-count_packets`).
pub fn packet_counts(path: &Path) -> Counts {
    let mut c = Counts::default();
    for m in ffprobe(&[
        "-count_packets",
        "-show_entries",
        "stream=codec_type,nb_read_packets",
        path.to_str().unwrap(),
    ]) {
        let n: u64 = m
            .get("nb_read_packets")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        match m.get("codec_type").map(String::as_str) {
            Some("video") => c.video += n,
            Some("audio") => c.audio += n,
            _ => {}
        }
    }
    c
}

/// Whether the first video packet of a file is a keyframe (ffprobe flags contain K).
pub fn first_video_is_keyframe(path: &Path) -> bool {
    let rows = ffprobe(&[
        "-select_streams",
        "v",
        "-read_intervals",
        "%+#1",
        "-show_entries",
        "packet=flags",
        path.to_str().unwrap(),
    ]);
    let flags = rows
        .first()
        .and_then(|m| m.get("flags"))
        .unwrap_or_else(|| panic!("no video packet in {}", path.display()));
    flags.contains('K')
}

/// `(codec_type, dts in the stream's time base)` of every packet, in file order.
pub fn packet_dts(path: &Path) -> Vec<(String, i64)> {
    ffprobe(&[
        "-show_entries",
        "packet=codec_type,dts",
        path.to_str().unwrap(),
    ])
    .into_iter()
    .filter_map(|m| {
        let dts = m.get("dts")?.parse().ok()?;
        Some((m.get("codec_type")?.clone(), dts))
    })
    .collect()
}

// ---------------------------------------------------------------------------------
// Raw TCP peers
// ---------------------------------------------------------------------------------

/// A small deterministic PRNG (xorshift64*) for garbage bytes.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next_u64() >> 56) as u8).collect()
    }
}

/// Connects to the server's RTMP port with read/write timeouts set.
pub fn raw_connect(server: &Server) -> TcpStream {
    let s = TcpStream::connect_timeout(&server.rtmp, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Does the simple RTMP handshake by hand: C0 = 3, C1 = 1536 bytes (zero time, zero
/// version, random), reads S0 S1 S2, sends C2 = S1 echoed.
pub fn raw_handshake(s: &mut TcpStream, rng: &mut Rng) {
    use std::io::Write;
    let mut c0c1 = vec![3u8];
    c0c1.extend_from_slice(&[0u8; 8]);
    c0c1.extend_from_slice(&rng.bytes(1528));
    s.write_all(&c0c1).expect("send C0 C1");
    let mut s0s1s2 = vec![0u8; 1 + 1536 * 2];
    read_exact_within(s, &mut s0s1s2, Duration::from_secs(10));
    assert_eq!(s0s1s2[0], 3, "S0 is the RTMP version 3");
    s.write_all(&s0s1s2[1..1537]).expect("send C2");
}

fn read_exact_within(s: &mut TcpStream, buf: &mut [u8], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let mut got = 0;
    while got < buf.len() {
        match s.read(&mut buf[got..]) {
            Ok(0) => panic!("server closed during the handshake after {got} bytes"),
            Ok(n) => got += n,
            Err(e) if is_timeout(&e) => {
                assert!(
                    Instant::now() < deadline,
                    "handshake: only {got} of {} bytes within {timeout:?}",
                    buf.len()
                );
            }
            Err(e) => panic!("handshake read: {e}"),
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// Reads (discarding) until the server closes the connection; `Err` if it is still
/// open after `timeout`. A reset counts as closed.
pub fn wait_closed(s: &mut TcpStream, timeout: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(start.elapsed()),
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {}
            Err(_) => return Ok(start.elapsed()),
        }
        if start.elapsed() >= timeout {
            return Err(format!("connection still open after {timeout:?}"));
        }
    }
}

/// `Duration::from_secs`, short.
pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

// ---------------------------------------------------------------------------------
// HTTP and WebSocket clients
// ---------------------------------------------------------------------------------
//
// Written by hand on `std::net::TcpStream` (no client crate): the requests go on the
// wire exactly as written, so paths like `/live/../x` reach the server unnormalised,
// and a HEAD response can be checked to carry no body bytes at all.

/// How long an HTTP request or a WebSocket read may wait for the server.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

impl Server {
    /// `http://127.0.0.1:Q` (no trailing slash).
    pub fn http_base(&self) -> String {
        format!("http://{}", self.http)
    }

    /// `http://127.0.0.1:Q<path>`
    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    /// `GET path` on the server's HTTP port.
    pub fn get(&self, path: &str) -> HttpResponse {
        http_request(self.http, "GET", path, &[])
    }
}

/// A complete HTTP/1.1 response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// In the order received; names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Every byte after the header block (de-chunked when the response was chunked).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request with `Connection: close`, read to the end. Only for responses that
/// end (playlists, segments, errors), not for live FLV/TS bodies.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> HttpResponse {
    use std::io::Write;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    s.set_read_timeout(Some(HTTP_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(HTTP_TIMEOUT)).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())
        .unwrap_or_else(|e| panic!("{method} {}: send: {e}", short(path)));
    let mut raw = Vec::new();
    if let Err(e) = s.read_to_end(&mut raw) {
        // A server may reset after answering a request it refused; keep what came.
        if raw.is_empty() {
            panic!("{method} {}: no response: {e}", short(path));
        }
    }
    parse_response(&raw).unwrap_or_else(|why| {
        panic!(
            "{method} {}: bad response ({why}): {:?}",
            short(path),
            String::from_utf8_lossy(&raw[..raw.len().min(512)])
        )
    })
}

fn short(path: &str) -> String {
    if path.len() > 80 {
        format!("{}... ({} bytes)", &path[..80], path.len())
    } else {
        path.to_string()
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Splits a raw response into status, headers and (de-chunked) body.
fn parse_response(raw: &[u8]) -> Result<HttpResponse, String> {
    let end = find(raw, b"\r\n\r\n").ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| "headers are not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or("empty response")?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body)?;
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = find(data, b"\r\n").ok_or("chunk size line not terminated")?;
        let size_text = std::str::from_utf8(&data[..eol]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("chunk size {size_text:?}"))?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// What [`ws_capture`] received.
#[derive(Debug, Default, Clone)]
pub struct WsCapture {
    /// The HTTP response head of the upgrade.
    pub handshake: String,
    pub binary_messages: u64,
    pub text_messages: u64,
    pub bytes: u64,
    /// Whether the server sent a Close frame (or closed the socket) before `duration`.
    pub closed_early: bool,
}

/// The `Sec-WebSocket-Key` of RFC 6455 section 1.3 and the accept value it must get.
pub const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const WS_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A minimal RFC 6455 client: upgrades `GET path`, then for `duration` appends the
/// payload of every binary message to `out`, answers pings, and finally sends a Close.
/// Panics if the upgrade is not `101` with the right `Sec-WebSocket-Accept`.
pub fn ws_capture(addr: SocketAddr, path: &str, duration: Duration, out: &Path) -> WsCapture {
    use std::io::Write;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    s.set_write_timeout(Some(HTTP_TIMEOUT)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {WS_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).expect("send WebSocket upgrade");
    let start = Instant::now();
    let mut buf: Vec<u8> = Vec::new();
    let mut tmp = vec![0u8; 64 * 1024];
    // The response head.
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        assert!(
            start.elapsed() < HTTP_TIMEOUT,
            "no WebSocket upgrade answer within {HTTP_TIMEOUT:?}"
        );
        match s.read(&mut tmp) {
            Ok(0) => panic!(
                "server closed instead of upgrading: {:?}",
                String::from_utf8_lossy(&buf)
            ),
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
            Err(e) if is_timeout(&e) => {}
            Err(e) => panic!("WebSocket upgrade read: {e}"),
        }
    };
    let mut cap = WsCapture {
        handshake: String::from_utf8_lossy(&buf[..head_end]).into_owned(),
        ..WsCapture::default()
    };
    let head = parse_response(&buf[..head_end + 4]).expect("upgrade response");
    assert_eq!(
        head.status, 101,
        "WebSocket upgrade refused:\n{}",
        cap.handshake
    );
    assert_eq!(
        head.header("sec-websocket-accept"),
        Some(WS_ACCEPT),
        "wrong Sec-WebSocket-Accept:\n{}",
        cap.handshake
    );
    buf.drain(..head_end + 4);

    let mut file = File::create(out).expect("create WebSocket capture file");
    let mut message: Vec<u8> = Vec::new();
    let mut message_is_binary = false;
    let deadline = Instant::now() + duration;
    'read: while Instant::now() < deadline {
        // Every complete frame in the buffer.
        while let Some((fin, opcode, payload, used)) = ws_frame(&buf) {
            buf.drain(..used);
            match opcode {
                0x0..=0x2 => {
                    if opcode != 0x0 {
                        message_is_binary = opcode == 0x2;
                        message.clear();
                    }
                    message.extend_from_slice(&payload);
                    if fin {
                        if message_is_binary {
                            cap.binary_messages += 1;
                            cap.bytes += message.len() as u64;
                            file.write_all(&message).expect("write WebSocket capture");
                        } else {
                            cap.text_messages += 1;
                        }
                    }
                }
                0x8 => {
                    cap.closed_early = true;
                    break 'read;
                }
                0x9 => {
                    let _ = s.write_all(&ws_client_frame(0xA, &payload));
                }
                _ => {}
            }
        }
        match s.read(&mut tmp) {
            Ok(0) => {
                cap.closed_early = true;
                break;
            }
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
            Err(e) if is_timeout(&e) => {}
            Err(_) => {
                cap.closed_early = true;
                break;
            }
        }
    }
    // Close with 1000 (normal closure).
    let _ = s.write_all(&ws_client_frame(0x8, &1000u16.to_be_bytes()));
    cap
}

/// One server frame at the start of `buf`: `(fin, opcode, unmasked payload, bytes used)`.
fn ws_frame(buf: &[u8]) -> Option<(bool, u8, Vec<u8>, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let fin = buf[0] & 0x80 != 0;
    let opcode = buf[0] & 0x0f;
    let masked = buf[1] & 0x80 != 0;
    let (len, mut at) = match buf[1] & 0x7f {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let mask = if masked {
        let m: [u8; 4] = buf.get(at..at + 4)?.try_into().ok()?;
        at += 4;
        Some(m)
    } else {
        None
    };
    let mut payload = buf.get(at..at + len)?.to_vec();
    if let Some(m) = mask {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= m[i % 4];
        }
    }
    Some((fin, opcode, payload, at + len))
}

/// A client frame (clients must mask; the mask value does not matter).
fn ws_client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126, "control frames only");
    let mask = [0x12u8, 0x34, 0x56, 0x78];
    let mut f = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

// ---------------------------------------------------------------------------------
// HLS playlists
// ---------------------------------------------------------------------------------

/// One `#EXTINF` entry of a media playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct HlsEntry {
    /// MEDIA-SEQUENCE plus the entry's index.
    pub sequence: u64,
    pub duration: f64,
    pub uri: String,
    /// The `#EXT-X-PROGRAM-DATE-TIME` just before it, if any.
    pub program_date_time: Option<String>,
    /// An `#EXT-X-DISCONTINUITY` stands before it.
    pub discontinuity: bool,
}

/// The parts of a live media playlist the tests check.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HlsPlaylist {
    pub version: Option<u32>,
    pub target_duration: Option<u64>,
    pub media_sequence: Option<u64>,
    pub entries: Vec<HlsEntry>,
    pub endlist: bool,
}

/// Parses a media playlist; panics (with the text) on anything malformed.
pub fn parse_playlist(text: &str) -> HlsPlaylist {
    let mut p = HlsPlaylist::default();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    assert_eq!(lines.next(), Some("#EXTM3U"), "not a playlist:\n{text}");
    let mut pending_duration: Option<f64> = None;
    let mut pending_pdt: Option<String> = None;
    let mut pending_disc = false;
    let bad = |what: &str| -> ! { panic!("playlist: bad {what}:\n{text}") };
    for line in lines {
        if let Some(v) = line.strip_prefix("#EXT-X-VERSION:") {
            p.version = Some(v.parse().unwrap_or_else(|_| bad("VERSION")));
        } else if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            p.target_duration = Some(v.parse().unwrap_or_else(|_| bad("TARGETDURATION")));
        } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            p.media_sequence = Some(v.parse().unwrap_or_else(|_| bad("MEDIA-SEQUENCE")));
        } else if let Some(v) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            pending_pdt = Some(v.to_string());
        } else if line == "#EXT-X-DISCONTINUITY" {
            pending_disc = true;
        } else if line == "#EXT-X-ENDLIST" {
            p.endlist = true;
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            let d = v.split(',').next().unwrap_or("");
            pending_duration = Some(d.parse().unwrap_or_else(|_| bad("EXTINF")));
        } else if line.starts_with('#') {
            // Other tags (DISCONTINUITY-SEQUENCE, ...) are not checked here.
        } else {
            let duration = pending_duration
                .take()
                .unwrap_or_else(|| bad("URI without #EXTINF"));
            let sequence = p.media_sequence.unwrap_or(0) + p.entries.len() as u64;
            p.entries.push(HlsEntry {
                sequence,
                duration,
                uri: line.to_string(),
                program_date_time: pending_pdt.take(),
                discontinuity: std::mem::take(&mut pending_disc),
            });
        }
    }
    p
}

/// Waits until `GET path` answers 200 and returns that response.
pub fn wait_http_ok(server: &Server, path: &str, timeout: Duration) -> HttpResponse {
    let deadline = Instant::now() + timeout;
    loop {
        let r = server.get(path);
        if r.status == 200 {
            return r;
        }
        if Instant::now() >= deadline {
            panic!(
                "GET {path} still {} after {timeout:?}: {}",
                r.status,
                r.text()
            );
        }
        sleep(Duration::from_millis(100));
    }
}

/// ffmpeg's own decoder errors for a file: `ffmpeg -v error [-f format] -i <path> -f
/// null -`, returning its stderr (empty when the file decodes cleanly). `format`
/// forces the demuxer, as for [`stream_packet_counts`].
pub fn decode_errors(path: &Path, format: Option<&str>) -> String {
    require("ffmpeg");
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-v", "error"]);
    if let Some(f) = format {
        cmd.args(["-f", f]);
    }
    let out = cmd
        .arg("-i")
        .arg(path)
        .args(["-f", "null", "-"])
        .stdin(Stdio::null())
        .output()
        .expect("run ffmpeg");
    let mut err = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        err.push_str(&format!("\n(ffmpeg exited with {})", out.status));
    }
    err
}

/// Like [`packet_counts`], but each stream counted once: for MPEG-TS, ffprobe lists
/// a stream again under its program, which [`packet_counts`] would add twice.
/// `format` forces the demuxer (`Some("mpegts")`: ffmpeg's probe can mistake a very
/// short TS file for MPEG-PS).
pub fn stream_packet_counts(path: &Path, format: Option<&str>) -> Counts {
    let mut args = Vec::new();
    if let Some(f) = format {
        args.extend_from_slice(&["-f", f]);
    }
    args.extend_from_slice(&[
        "-count_packets",
        "-show_entries",
        "stream=index,codec_type,nb_read_packets",
        path.to_str().unwrap(),
    ]);
    let mut seen = std::collections::HashSet::new();
    let mut c = Counts::default();
    for m in ffprobe(&args) {
        if !seen.insert(m.get("index").cloned().unwrap_or_default()) {
            continue;
        }
        let n: u64 = m
            .get("nb_read_packets")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        match m.get("codec_type").map(String::as_str) {
            Some("video") => c.video += n,
            Some("audio") => c.audio += n,
            _ => {}
        }
    }
    c
}

// ---------------------------------------------------------------------------------
// The HTTP API
// ---------------------------------------------------------------------------------

/// One API call: GET with a query, or POST with a form or JSON body.
pub fn api_call(
    server: &Server,
    method: &str,
    name: &str,
    query: &str,
    body: Option<(&str, &str)>,
) -> serde_json::Value {
    api_request(server, method, name, query, body, &[])
}

/// An API call with extra request headers (`("Authorization", "Bearer ...")`).
pub fn api_request(
    server: &Server,
    method: &str,
    name: &str,
    query: &str,
    body: Option<(&str, &str)>,
    headers: &[(&str, &str)],
) -> serde_json::Value {
    let path = if query.is_empty() {
        format!("/index/api/{name}")
    } else {
        format!("/index/api/{name}?{query}")
    };
    let mut s = TcpStream::connect_timeout(&server.http, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some((ct, b)) = body {
        req.push_str(&format!(
            "Content-Type: {ct}\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        ));
    } else {
        req.push_str("\r\n");
    }
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("bad response {text:?}"));
    assert!(
        head.starts_with("HTTP/1.1 200"),
        "API answers 200 always: {head}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{name}: body is not JSON ({e}): {body}"))
}

pub fn api(server: &Server, name: &str, query: &str) -> serde_json::Value {
    api_call(server, "GET", name, query, None)
}

pub fn api_code(v: &serde_json::Value) -> i64 {
    v["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("no code in {v}"))
}

/// Waits (15 s at most) until `live/{stream}` is published, asking the API.
pub fn wait_online_with(server: &Server, secret: &str, stream: &str) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(15) {
        let v = api(
            server,
            "isMediaOnline",
            &format!("secret={secret}&schema=rtmp&app=live&stream={stream}"),
        );
        if v["online"] == serde_json::Value::Bool(true) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("stream {stream} never came online");
}

/// The sum of a Prometheus metric's samples whose labels contain all of `labels`.
pub fn metric(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

// ---------------------------------------------------------------------------------
// nginx with the RTMP module, as a remote server for the proxy tests
// ---------------------------------------------------------------------------------

/// nginx-rtmp (Debian `nginx` + `libnginx-mod-rtmp`) on a loopback port, in the
/// foreground, application `live`.
pub struct Nginx {
    pub port: u16,
    /// The TLS front (nginx `stream` with `ssl`, to the RTMP port), when started.
    pub tls_port: Option<u16>,
    proc: Option<Proc>,
    dir: PathBuf,
}

impl Nginx {
    pub fn start(dir: &Path, label: &str) -> Nginx {
        Nginx::start_on(dir, label, free_port())
    }

    /// On a given port (to restart it where proxies expect it).
    pub fn start_on(dir: &Path, label: &str, port: u16) -> Nginx {
        Nginx::launch(dir, label, port, None)
    }

    /// With a TLS front on another port (`rtmps://`), certificate and key in PEM
    /// files (needs the Debian package libnginx-mod-stream).
    pub fn start_with_tls(dir: &Path, label: &str, cert: &Path, key: &Path) -> Nginx {
        Nginx::launch(dir, label, free_port(), Some((free_port(), cert, key)))
    }

    fn launch(dir: &Path, label: &str, port: u16, tls: Option<(u16, &Path, &Path)>) -> Nginx {
        require("nginx");
        let module = "/usr/lib/nginx/modules/ngx_rtmp_module.so";
        assert!(
            Path::new(module).exists(),
            "{module} is missing: install the Debian package libnginx-mod-rtmp \
             (scripts/test.sh does this)"
        );
        let d = dir.join(label);
        fs::create_dir_all(d.join("logs")).expect("nginx dir");
        let stream_module = "/usr/lib/nginx/modules/ngx_stream_module.so";
        let tls_conf = match tls {
            Some((tls_port, cert, key)) => {
                assert!(
                    Path::new(stream_module).exists(),
                    "{stream_module} is missing: install the Debian package libnginx-mod-stream \
                     (scripts/test.sh does this)"
                );
                format!(
                    "stream {{ server {{ listen 127.0.0.1:{tls_port} ssl; ssl_certificate {}; \
                     ssl_certificate_key {}; proxy_pass 127.0.0.1:{port}; }} }}\n",
                    cert.display(),
                    key.display()
                )
            }
            None => String::new(),
        };
        let load_stream = if tls.is_some() {
            format!("load_module {stream_module};\n")
        } else {
            String::new()
        };
        let conf = format!(
            "{load_stream}load_module {module};\ndaemon off;\nmaster_process off;\nworker_processes 1;\n\
             error_log {logs}/error.log info;\npid {d}/nginx.pid;\nevents {{ worker_connections 1024; }}\n\
             rtmp {{ server {{ listen 127.0.0.1:{port}; chunk_size 4096; \
             application live {{ live on; wait_key on; }} }} }}\n{tls_conf}",
            logs = d.join("logs").display(),
            d = d.display(),
        );
        fs::write(d.join("nginx.conf"), conf).expect("nginx.conf");
        let conf_path = d.join("nginx.conf");
        let proc = Proc::spawn(
            label,
            "nginx",
            &["-c", conf_path.to_str().unwrap(), "-p", d.to_str().unwrap()],
            dir,
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(
            &SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_millis(200),
        )
        .is_err()
        {
            assert!(Instant::now() < deadline, "nginx did not listen on {port}");
            sleep(Duration::from_millis(50));
        }
        if let Some((tls_port, _, _)) = tls {
            while TcpStream::connect_timeout(
                &SocketAddr::from(([127, 0, 0, 1], tls_port)),
                Duration::from_millis(200),
            )
            .is_err()
            {
                assert!(
                    Instant::now() < deadline,
                    "nginx did not listen on {tls_port}"
                );
                sleep(Duration::from_millis(50));
            }
        }
        Nginx {
            port,
            tls_port: tls.map(|t| t.0),
            proc: Some(proc),
            dir: d,
        }
    }

    pub fn url(&self, name: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{name}", self.port)
    }

    /// Kills it (every connection drops at once, as in a crash).
    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    pub fn error_log(&self) -> String {
        fs::read_to_string(self.dir.join("logs/error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `ffmpeg -re -stream_loop -1 -i <test file> -c copy -f flv <url>`: a publisher to
/// any RTMP URL.
pub fn publish_file_to(dir: &Path, label: &str, url: &str) -> Proc {
    publish_path_to(dir, label, &src_flv(), url)
}

/// Like [`publish_file_to`], from the file `src`.
pub fn publish_path_to(dir: &Path, label: &str, src: &Path, url: &str) -> Proc {
    Proc::spawn(
        label,
        "ffmpeg",
        &[
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-stream_loop",
            "-1",
            "-i",
            src.to_str().unwrap(),
            "-c",
            "copy",
            "-f",
            "flv",
            url,
        ],
        dir,
    )
}

/// Waits until `check` returns Some (polling every 200 ms), or fails naming `what`.
pub fn wait_until<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let t = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            t.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        sleep(Duration::from_millis(200));
    }
}

/// The path of the media playlist a first `hls.m3u8` answer (`r`, for the stream at
/// `base` = `/app/stream`) points to: it is a one-variant master playlist whose URI
/// carries the viewer's HLS session token. Panics (naming the answer) otherwise.
pub fn hls_variant(base: &str, r: &HttpResponse) -> String {
    let text = r.text();
    assert_eq!(r.status, 200, "first hls.m3u8 answer: {text}");
    assert!(
        text.contains("#EXT-X-STREAM-INF:"),
        "the first hls.m3u8 answer is a master playlist:\n{text}"
    );
    let uri = text
        .lines()
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or_else(|| panic!("no variant URI in:\n{text}"));
    assert!(
        uri.starts_with("hls.m3u8?session="),
        "the variant is this stream's playlist with a session token: {uri}"
    );
    format!("{base}/{uri}")
}

/// GET of a live `hls.m3u8` as a player sees it: the first answer is a one-variant
/// master playlist ([`hls_variant`]), whose media playlist is fetched and returned.
/// Any other answer (404...) is returned as it is.
pub fn get_hls_media(server: &Server, path: &str) -> HttpResponse {
    let r = server.get(path);
    if r.status != 200 || !r.text().contains("#EXT-X-STREAM-INF:") {
        return r;
    }
    let base = path.rsplit_once('/').map(|(b, _)| b).unwrap_or("");
    server.get(&hls_variant(base, &r))
}

// ---------------------------------------------------------------------------------
// Resource use
// ---------------------------------------------------------------------------------

/// The resident set size of process `pid` in KiB (`VmRSS` of /proc/PID/status).
pub fn vm_rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
}

/// A live encoder with a short GOP (10 frames = 0.4 s at 25 fps), so a recording,
/// which starts on the latest keyframe, starts at most 0.4 s before startRecord.
pub fn publish_short_gop(server: &Server, label: &str, name: &str, seconds: u32) -> Proc {
    let url = server.url(name);
    let secs = seconds.to_string();
    let args = [
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-re",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=25",
        "-re",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=44100",
        "-t",
        &secs,
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "10",
        "-keyint_min",
        "10",
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
    ];
    Proc::spawn(label, "ffmpeg", &args, &server.dir.path)
}
