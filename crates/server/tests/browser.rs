//! In a real browser: Debian's headless Chromium, driven by playwright-core from
//! `tests/browser/play.mjs`, opens the player page and plays a live stream over HLS and
//! then over HTTP-FLV, each for at least 5 s of `video.currentTime` with no fatal player
//! error. Screenshots are kept in `$CARGO_TARGET_TMPDIR/artifacts/{hls,flv}.png`.
//!
//! Needs `/usr/bin/chromium` (Debian package `chromium`) and `npm ci --prefix
//! tests/browser`; scripts/test.sh does both. Neither missing is a skip: it fails.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;

/// How long the whole browser run may take (two protocols, 40 s each at most, plus
/// start-up).
const NODE_TIMEOUT: Duration = Duration::from_secs(120);

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser")
}

#[test]
fn player_page_plays_hls_and_flv() {
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
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("artifacts");
    std::fs::create_dir_all(&artifacts).expect("create artifacts dir");
    for f in ["hls.png", "flv.png"] {
        let _ = std::fs::remove_file(artifacts.join(f));
    }

    let srv = Server::start(
        "browser",
        "[general]\ncontinue_push_ms = 500\nmax_stream_wait_ms = 8000\n",
    );
    // The test file looped for as long as the browser needs; killed at the end.
    let mut publisher = publish_file(&srv, "publisher", "b", &["-stream_loop", "-1"]);
    // The page starts HLS at once, so wait until there is a playlist to play.
    wait_http_ok(&srv, "/live/b/hls.m3u8", secs(10));

    let started = Instant::now();
    let mut node = Proc::spawn(
        "node",
        "node",
        &[
            dir.join("play.mjs").to_str().unwrap(),
            &srv.http_base(),
            artifacts.to_str().unwrap(),
            "live/b",
        ],
        &srv.dir.path,
    );
    let status = node.wait(NODE_TIMEOUT);
    let output = node.output();
    eprintln!(
        "play.mjs exited {status} after {:?}:\n{output}",
        started.elapsed()
    );
    assert!(
        publisher.is_running(),
        "the publisher stopped during the browser run:\n{}",
        publisher.output()
    );
    publisher.kill();
    assert!(
        status.success(),
        "the browser did not play the stream ({status}); play.mjs said:\n{output}"
    );
    for f in ["hls.png", "flv.png"] {
        let p = artifacts.join(f);
        let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        assert!(len > 10_000, "screenshot {} missing or tiny", p.display());
    }
}
