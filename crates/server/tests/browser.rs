//! In a real browser: Debian's headless Chromium, driven by playwright-core from
//! `tests/browser/*.mjs`, opens the player page and
//! - plays a live stream over HLS and then over HTTP-FLV, each for at least 5 s of
//!   `video.currentTime` with no fatal player error (`play.mjs`);
//! - plays an MP4 and an HLS recording made through the API, checks their length as the
//!   page shows it, and seeks into them (`play-recording.mjs`).
//!
//! Screenshots are kept in `$CARGO_TARGET_TMPDIR/artifacts/{hls,flv,record-mp4,record-hls}.png`.
//!
//! Needs `/usr/bin/chromium` (Debian package `chromium`) and `npm ci --prefix
//! tests/browser`; scripts/test.sh does both. Neither missing is a skip: it fails.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;

/// How long the live run may take (two protocols, 40 s each at most, plus start-up).
const NODE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the recordings run may take (two recordings, 30 s of playing and 10 s of
/// seeking each at most, plus start-up).
const NODE_RECORD_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the ABR run may take (20 s to play and 20 s to switch at most, per step,
/// plus start-up); it takes about 15 s when all is well.
const NODE_ABR_TIMEOUT: Duration = Duration::from_secs(120);

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser")
}

/// Fails (never skips) when node, Chromium or playwright-core is missing; returns
/// tests/browser.
fn require_browser() -> PathBuf {
    require("node");
    let dir = browser_dir();
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: install the Debian package `chromium` \
         (scripts/test.sh does this)"
    );
    assert!(
        dir.join("node_modules/playwright-core/package.json")
            .exists(),
        "playwright-core is not installed in {}: run `npm ci --prefix tests/browser` \
         (scripts/test.sh does this)",
        dir.display()
    );
    dir
}

/// `$CARGO_TARGET_TMPDIR/artifacts`, with `files` from an earlier run removed.
fn artifacts_dir(files: &[&str]) -> PathBuf {
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("artifacts");
    std::fs::create_dir_all(&artifacts).expect("create artifacts dir");
    for f in files {
        let _ = std::fs::remove_file(artifacts.join(f));
    }
    artifacts
}

/// Runs `node tests/browser/<script> <args>` and fails with its output unless it exits 0
/// within `timeout`.
fn run_node(srv: &Server, script: &str, args: &[&str], timeout: Duration) {
    let script_path = browser_dir().join(script);
    let mut argv = vec![script_path.to_str().unwrap()];
    argv.extend_from_slice(args);
    let started = Instant::now();
    let mut node = Proc::spawn("node", "node", &argv, &srv.dir.path);
    let status = node.wait(timeout);
    let output = node.output();
    eprintln!(
        "{script} exited {status} after {:?}:\n{output}",
        started.elapsed()
    );
    assert!(
        status.success(),
        "the browser run failed ({status}); {script} said:\n{output}"
    );
}

/// Each screenshot exists and is more than a blank page.
fn assert_screenshots(artifacts: &Path, files: &[&str]) {
    for f in files {
        let p = artifacts.join(f);
        let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        assert!(len > 10_000, "screenshot {} missing or tiny", p.display());
    }
}

/// A signed link to the player page (`/?app=live&stream=s&proto=hls&exp=...&sig=...`)
/// plays over HLS (hls.js: master playlist, session-token segments) and HTTP-FLV,
/// on a server where playing needs a signature.
#[test]
fn player_page_plays_a_signed_stream() {
    require_browser();
    let shots = ["hls.png", "flv.png"];
    // Its own directory: the unsigned test writes the same file names meanwhile.
    let artifacts = artifacts_dir(&[]).join("signed");
    std::fs::create_dir_all(&artifacts).expect("create artifacts dir");
    for f in shots {
        let _ = std::fs::remove_file(artifacts.join(f));
    }
    let key = "browser-signing-key-0123456789";
    let srv = Server::start(
        "browser_signed",
        &format!(
            "[general]\ncontinue_push_ms = 500\nmax_stream_wait_ms = 8000\n[auth]\nplay = \"signed\"\nsecret = \"{key}\"\n"
        ),
    );
    let mut publisher = publish_file(&srv, "publisher", "s", &["-stream_loop", "-1"]);
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    // Signed independently of the server's code, with python3's hmac.
    let sig = run_ok(
        "python3",
        &[
            "-c",
            "import hmac,hashlib,sys; print(hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), hashlib.sha256).hexdigest())",
            key,
            &format!("play/__defaultVhost__/live/s/{exp}"),
        ],
    );
    let query = format!("exp={exp}&sig={}", sig.trim());
    assert_eq!(
        srv.get("/live/s/master.m3u8").status,
        403,
        "unsigned, the master playlist is refused"
    );
    wait_http_ok(&srv, &format!("/live/s/hls.m3u8?{query}"), secs(10));
    run_node(
        &srv,
        "play.mjs",
        &[
            &srv.http_base(),
            artifacts.to_str().unwrap(),
            "live/s",
            "hls,flv",
            &query,
        ],
        NODE_TIMEOUT,
    );
    assert!(publisher.is_running(), "{}", publisher.output());
    publisher.kill();
    assert_screenshots(&artifacts, &shots);
}

#[test]
fn player_page_plays_hls_and_flv() {
    require_browser();
    let shots = ["hls.png", "flv.png"];
    let artifacts = artifacts_dir(&shots);

    let srv = Server::start(
        "browser",
        "[general]\ncontinue_push_ms = 500\nmax_stream_wait_ms = 8000\n",
    );
    // The test file looped for as long as the browser needs; killed at the end.
    let mut publisher = publish_file(&srv, "publisher", "b", &["-stream_loop", "-1"]);
    // The page starts HLS at once, so wait until there is a playlist to play.
    wait_http_ok(&srv, "/live/b/hls.m3u8", secs(10));

    run_node(
        &srv,
        "play.mjs",
        &[&srv.http_base(), artifacts.to_str().unwrap(), "live/b"],
        NODE_TIMEOUT,
    );
    assert!(
        publisher.is_running(),
        "the publisher stopped during the browser run:\n{}",
        publisher.output()
    );
    publisher.kill();
    assert_screenshots(&artifacts, &shots);
}

#[test]
fn player_page_plays_recordings() {
    const SECRET: &str = "browser-secret";
    /// How long each recording runs, between startRecord and stopRecord.
    const RECORD_FOR: Duration = Duration::from_secs(8);
    let q =
        |extra: &str| format!("secret={SECRET}&vhost=__defaultVhost__&app=live&stream=r{extra}");
    require_browser();
    let shots = ["record-mp4.png", "record-hls.png"];
    let artifacts = artifacts_dir(&shots);

    let srv = Server::start(
        "browser_rec",
        &format!("[api]\nsecret = \"{SECRET}\"\n[general]\ncontinue_push_ms = 500\n"),
    );
    let mut publisher = publish_file(&srv, "publisher", "r", &["-stream_loop", "-1"]);
    wait_online_with(&srv, SECRET, "r");

    // MP4 (type 1) and HLS (type 0) at once, for RECORD_FOR.
    for t in ["1", "0"] {
        let v = api(&srv, "startRecord", &q(&format!("&type={t}")));
        assert_eq!(api_code(&v), 0, "startRecord type={t}: {v}");
    }
    let started = Instant::now();
    std::thread::sleep(RECORD_FOR);
    for t in ["1", "0"] {
        let v = api(&srv, "stopRecord", &q(&format!("&type={t}")));
        assert_eq!(api_code(&v), 0, "stopRecord type={t}: {v}");
    }
    let recorded = started.elapsed().as_secs_f64();
    assert!(
        publisher.is_running(),
        "the publisher stopped while recording:\n{}",
        publisher.output()
    );
    // The browser plays the files, not the live stream.
    publisher.kill();

    // The MP4 file and its URL, as getMP4RecordFile lists them.
    let days = api(&srv, "getMP4RecordFile", &q(""));
    assert_eq!(api_code(&days), 0, "{days}");
    let day = days["data"]["paths"][0]
        .as_str()
        .unwrap_or_else(|| panic!("no recording day: {days}"))
        .to_string();
    let v = api(&srv, "getMP4RecordFile", &q(&format!("&period={day}")));
    assert_eq!(api_code(&v), 0, "{v}");
    let mp4_url = v["data"]["urls"][0]
        .as_str()
        .unwrap_or_else(|| panic!("no MP4 URL: {v}"))
        .to_string();
    let mp4_path = PathBuf::from(v["data"]["rootPath"].as_str().unwrap())
        .join(v["data"]["paths"][0].as_str().unwrap());
    let mp4_secs = ffprobe(&[
        "-show_entries",
        "format=duration",
        mp4_path.to_str().unwrap(),
    ])
    .iter()
    .find_map(|m| m.get("duration")?.parse::<f64>().ok())
    .unwrap_or_else(|| panic!("no duration for {}", mp4_path.display()));
    // A recording starts on the latest keyframe: up to one GOP (2 s) early.
    assert!(
        (recorded - 0.5..=recorded + 2.5).contains(&mp4_secs),
        "MP4 is {mp4_secs} s, recorded for {recorded:.2} s"
    );

    // The HLS recording: `{day}/{HH-MM-SS}/index.m3u8`, a finished VOD playlist.
    let day_dir = srv.dir.join(&format!("data/record/live/r/{day}"));
    let playlists: Vec<PathBuf> = std::fs::read_dir(&day_dir)
        .unwrap_or_else(|e| panic!("{}: {e}", day_dir.display()))
        .flatten()
        .map(|e| e.path().join("index.m3u8"))
        .filter(|p| p.exists())
        .collect();
    assert_eq!(playlists.len(), 1, "one HLS recording: {playlists:?}");
    let text = std::fs::read_to_string(&playlists[0]).unwrap();
    assert!(text.trim_end().ends_with("#EXT-X-ENDLIST"), "{text}");
    let hls_secs: f64 = parse_playlist(&text)
        .entries
        .iter()
        .map(|e| e.duration)
        .sum();
    let time = playlists[0]
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    let hls_url = format!("/record/live/r/{day}/{time}/index.m3u8");

    run_node(
        &srv,
        "play-recording.mjs",
        &[
            &srv.http_base(),
            artifacts.to_str().unwrap(),
            &format!("mp4={mp4_url}@{mp4_secs:.3}"),
            &format!("hls={hls_url}@{hls_secs:.3}"),
        ],
        NODE_RECORD_TIMEOUT,
    );
    assert_screenshots(&artifacts, &shots);
}

#[test]
fn player_page_switches_abr_levels() {
    const SECRET: &str = "browser-abr-secret";
    require_browser();
    let shots = ["abr-360.png"];
    let artifacts = artifacts_dir(&["abr-360.png", "abr-failure.png"]);

    let srv = Server::start(
        "browser_abr",
        &format!(
            "[api]\nsecret = \"{SECRET}\"\n[general]\ncontinue_push_ms = 1000\n\
             [transcode]\npreset = \"ultrafast\"\n"
        ),
    );
    // The 720p file looped (stream copy); only the renditions are encoded live.
    let mut publisher =
        publish_path_to(&srv.dir.path, "publisher", &src_720p_flv(), &srv.url("abr"));
    wait_online_with(&srv, SECRET, "abr");
    let v = api(
        &srv,
        "startTranscode",
        &format!("secret={SECRET}&app=live&stream=abr&ladder=default"),
    );
    assert_eq!(api_code(&v), 0, "startTranscode: {v}");

    // The source, 480p and 360p: the page is opened once all three are listed.
    wait_until(
        "three variants in /live/abr/master.m3u8",
        Duration::from_secs(40),
        || {
            let r = srv.get("/live/abr/master.m3u8");
            (r.status == 200 && r.text().matches("#EXT-X-STREAM-INF").count() == 3).then_some(())
        },
    );

    run_node(
        &srv,
        "play-abr.mjs",
        &[&srv.http_base(), artifacts.to_str().unwrap(), "live/abr"],
        NODE_ABR_TIMEOUT,
    );
    assert!(
        publisher.is_running(),
        "the publisher stopped during the browser run:\n{}",
        publisher.output()
    );
    let list = api(&srv, "listTranscode", &format!("secret={SECRET}"));
    assert_eq!(
        list["data"][0]["status"], "running",
        "transcoding stopped during the browser run: {list}"
    );
    publisher.kill();
    assert_screenshots(&artifacts, &shots);
}
