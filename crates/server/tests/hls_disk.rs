//! `[hls] write_to_disk`: the live playlist and segments mirrored under
//! `{data_dir}/www/{app}/{stream}/`, identical to what HTTP serves, cleaned up after.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
fn hls_mirrored_to_disk_matches_http_and_is_cleaned_up() {
    let server = Server::start(
        "hls_disk",
        "[hls]\nwrite_to_disk = true\nkeep_after_end_ms = 1000\n[general]\ncontinue_push_ms = 300\n",
    );
    let dir = server.path("data").join("www").join("live").join("disk");
    let mut publisher = publish_file(&server, "pub", "disk", &[]);
    let t = Instant::now();
    let mut checked = 0;
    while publisher.is_running() && t.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(500));
        let Ok(text) = std::fs::read_to_string(dir.join("hls.m3u8")) else {
            continue;
        };
        assert!(text.starts_with("#EXTM3U"), "{text}");
        for name in text.lines().filter(|l| l.ends_with(".ts")) {
            let on_disk = std::fs::read(dir.join(name)).unwrap_or_else(|e| {
                panic!("{name} is listed in the playlist on disk but not on disk: {e}")
            });
            let served = server.get(&format!("/live/disk/{name}"));
            if served.status == 200 {
                assert_eq!(served.body, on_disk, "{name}: disk and HTTP differ");
                checked += 1;
            }
        }
    }
    assert!(checked >= 3, "only {checked} segments compared");
    // After the end: ENDLIST on disk, then everything removed once the stream's HLS is dropped.
    let t = Instant::now();
    loop {
        let text = std::fs::read_to_string(dir.join("hls.m3u8")).unwrap_or_default();
        if text.contains("#EXT-X-ENDLIST") {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no ENDLIST on disk: {text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let t = Instant::now();
    while dir.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{} not cleaned up",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
