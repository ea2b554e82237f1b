//! End to end: ffmpeg, ffprobe and rtmpdump publish to and play from the real
//! `ferrocast` binary, and we check what they end up with.

mod common;

use std::thread::sleep;
use std::time::{Duration, Instant};

use common::*;

/// Publish the test file, probe the live stream, record it whole and count frames.
#[test]
fn publish_and_play() {
    let srv = Server::start(
        "publish_and_play",
        "[general]\ncontinue_push_ms = 1000\nmax_stream_wait_ms = 8000\n",
    );
    let mut publisher = publish_file(&srv, "publisher", "x", &[]);
    srv.wait_for_log(&["publish started", "live/x"], secs(10));
    sleep(secs(1));
    let out = srv.path("out.flv");
    let mut player = record(&srv, "player", "x", &out, &[]);

    let streams = probe_streams(&srv.url("x"));
    assert_src_streams(&streams, "ffprobe of the live stream");

    publisher.wait_success(secs(40));
    let ended = Instant::now();
    // continue_push_ms = 1000: the stream ends a second after the publisher, and the
    // player gets UnpublishNotify / EOF and finishes on its own.
    player.wait_success(secs(10));
    eprintln!("player exited {:?} after the publisher", ended.elapsed());

    let counts = packet_counts(&out);
    eprintln!("publish_and_play: recorded {counts:?}");
    // The player started ~1 s in; the GOP cache gives it the current GOP, so it misses
    // at most one GOP plus the late start.
    let min = SRC_FRAMES - SRC_GOP - 25;
    assert!(
        (min..=SRC_FRAMES).contains(&counts.video),
        "recorded {counts:?}: video frames should be in {min}..={SRC_FRAMES}"
    );
    assert!(counts.audio > 0, "recorded {counts:?}: no audio");
    assert!(
        first_video_is_keyframe(&out),
        "the player's first video frame is not a keyframe"
    );
    assert_src_streams(
        &probe_streams(out.to_str().unwrap()),
        "ffprobe of the recording",
    );
}

/// Twenty concurrent players all get their four seconds.
#[test]
fn twenty_players() {
    let srv = Server::start(
        "twenty_players",
        "[general]\ncontinue_push_ms = 1000\nmax_stream_wait_ms = 8000\n",
    );
    // 20 s of media (the file twice) so no player runs out of stream.
    let mut publisher = publish_file(&srv, "publisher", "many", &["-stream_loop", "1"]);
    srv.wait_for_log(&["publish started", "live/many"], secs(10));
    sleep(secs(1));
    let mut players: Vec<(Proc, std::path::PathBuf)> = (0..20)
        .map(|i| {
            let out = srv.path(&format!("out{i}.flv"));
            let p = record(&srv, &format!("player{i}"), "many", &out, &["-t", "4"]);
            (p, out)
        })
        .collect();
    for (p, _) in &mut players {
        p.wait_success(secs(40));
    }
    assert!(
        publisher.is_running(),
        "the publisher stopped before the players were done:\n{}",
        publisher.output()
    );
    publisher.kill();
    for (p, out) in &players {
        let counts = packet_counts(out);
        eprintln!("twenty_players: {} recorded {counts:?}", p.label);
        // 4 s at 25 fps is 100 frames; 75 leaves room for where -t cuts.
        assert!(
            counts.video >= 75,
            "{} got only {counts:?} (starved?)",
            p.label
        );
        assert!(
            first_video_is_keyframe(out),
            "{}: first video frame is not a keyframe",
            p.label
        );
    }
}

/// A second publisher to a live name is refused; the first one's players are not
/// disturbed.
#[test]
fn second_publisher_refused() {
    let srv = Server::start(
        "second_publisher_refused",
        "[general]\ncontinue_push_ms = 3000\nmax_stream_wait_ms = 8000\n",
    );
    let mut first = publish_file(&srv, "publisher1", "dup", &["-stream_loop", "1"]);
    srv.wait_for_log(&["publish started", "live/dup"], secs(10));

    // A different picture size, so a take-over would show in what the player gets.
    let mut second = publish_live(&srv, "publisher2", "dup", "320x240", 10);
    let started = Instant::now();
    let status = second.wait(secs(10));
    assert!(
        !status.success(),
        "the second publisher was not refused ({status}); its output:\n{}",
        second.output()
    );
    eprintln!(
        "second publisher exited {status} after {:?}: {}",
        started.elapsed(),
        second.output().trim()
    );
    let line = srv.wait_for_log(&["RTMP session closed", "publish refused"], secs(5));
    assert!(
        line.contains("already being published"),
        "refusal does not say why: {line}"
    );

    let out = srv.path("out.flv");
    let mut player = record(&srv, "player", "dup", &out, &["-t", "2"]);
    player.wait_success(secs(30));
    let counts = packet_counts(&out);
    assert!(counts.video > 0, "player got no video: {counts:?}");
    assert_src_streams(
        &probe_streams(out.to_str().unwrap()),
        "the player's recording",
    );
    assert!(
        first.is_running(),
        "the first publisher was disturbed:\n{}",
        first.output()
    );
    first.kill();
}

/// A player that asks before the publisher starts waits for it.
#[test]
fn player_waits_for_publisher() {
    let srv = Server::start(
        "player_waits_for_publisher",
        "[general]\ncontinue_push_ms = 3000\nmax_stream_wait_ms = 8000\n",
    );
    let out = srv.path("out.flv");
    let mut player = record(&srv, "player", "late", &out, &["-t", "3"]);
    sleep(secs(2));
    assert!(
        player.is_running(),
        "the player gave up before the publisher came:\n{}",
        player.output()
    );
    let mut publisher = publish_file(&srv, "publisher", "late", &[]);
    player.wait_success(secs(30));
    let counts = packet_counts(&out);
    assert!(counts.video > 0, "player got no video: {counts:?}");
    assert!(
        first_video_is_keyframe(&out),
        "the player's first video frame is not a keyframe"
    );
    publisher.kill();
}

/// A player for a name nobody publishes gets StreamNotFound after max_stream_wait.
#[test]
fn player_for_unpublished_stream_is_refused() {
    let srv = Server::start(
        "player_for_unpublished_stream",
        "[general]\nmax_stream_wait_ms = 2000\n",
    );
    let url = srv.url("nobody");
    let started = Instant::now();
    let mut player = Proc::spawn(
        "player",
        "ffmpeg",
        &[
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-i",
            &url,
            "-t",
            "1",
            "-f",
            "null",
            "-",
        ],
        &srv.dir.path,
    );
    let status = player.wait(secs(10));
    let waited = started.elapsed();
    assert!(
        !status.success(),
        "ffmpeg played a stream nobody publishes:\n{}",
        player.output()
    );
    assert!(
        waited >= Duration::from_millis(1500),
        "refused after {waited:?}, before max_stream_wait_ms = 2000"
    );
    let said = player.output();
    assert!(
        said.contains("not found"),
        "ffmpeg does not report StreamNotFound; it said:\n{said}"
    );
    let line = srv.wait_for_log(&["RTMP session closed", "play refused"], secs(5));
    assert!(line.contains("not found"), "unexpected refusal: {line}");
    assert!(
        line.contains("live/nobody"),
        "refusal names no stream: {line}"
    );
}

/// The publisher dies and another comes back within continue_push: the same player
/// process keeps going across both, on one continuous timeline.
#[test]
fn player_survives_publisher_restart() {
    let srv = Server::start(
        "player_survives_publisher_restart",
        "[general]\ncontinue_push_ms = 8000\nmax_stream_wait_ms = 8000\n",
    );
    let mut a = publish_file(&srv, "publisherA", "restart", &[]);
    srv.wait_for_log(&["publish started", "live/restart"], secs(10));
    let out = srv.path("out.flv");
    let url = srv.url("restart");
    let out_s = out.to_str().unwrap();
    // Warnings on: ffmpeg complains about non-monotonic timestamps it receives.
    let mut player = Proc::spawn(
        "player",
        "ffmpeg",
        &[
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "warning",
            "-i",
            &url,
            "-c",
            "copy",
            "-copyinkf",
            "-f",
            "flv",
            "-y",
            out_s,
        ],
        &srv.dir.path,
    );
    sleep(secs(4));
    a.kill(); // SIGKILL: no FCUnpublish, the socket just goes away
    sleep(secs(1));
    assert!(
        player.is_running(),
        "the player stopped when the publisher died:\n{}",
        player.output()
    );
    let mut b = publish_file(&srv, "publisherB", "restart", &["-t", "4"]);
    b.wait_success(secs(30));
    assert!(
        player.is_running(),
        "the player stopped during the second publish:\n{}",
        player.output()
    );
    srv.wait_for_log(&["publisher returned within continue_push"], secs(1));
    // The stream ends continue_push_ms after B; the player then finishes by itself.
    player.wait_success(secs(30));

    let counts = packet_counts(&out);
    eprintln!("player_survives_publisher_restart: recorded {counts:?}");
    assert!(
        counts.video >= 150,
        "the recording does not cover both publishers: {counts:?}"
    );
    let said = player.output();
    assert!(
        !said.contains("onotonous") && !said.contains("non monotonically"),
        "the player saw timestamps going backwards:\n{said}"
    );
    let mut last: std::collections::HashMap<String, i64> = Default::default();
    for (kind, dts) in packet_dts(&out) {
        let prev = last.insert(kind.clone(), dts);
        if let Some(prev) = prev {
            assert!(
                dts >= prev,
                "{kind} dts goes back from {prev} to {dts} in the recording"
            );
        }
    }
}

/// rtmpdump (librtmp, Flash-style handshake) plays a live-encoded stream.
#[test]
fn rtmpdump_plays() {
    let srv = Server::start(
        "rtmpdump_plays",
        "[general]\ncontinue_push_ms = 1000\nmax_stream_wait_ms = 8000\n",
    );
    let mut publisher = publish_live(&srv, "publisher", "rd", "640x360", 6);
    srv.wait_for_log(&["publish started", "live/rd"], secs(20));
    let out = srv.path("out.flv");
    let url = srv.url("rd");
    let mut player = Proc::spawn(
        "rtmpdump",
        "rtmpdump",
        &["-q", "-r", &url, "--live", "-o", out.to_str().unwrap()],
        &srv.dir.path,
    );
    publisher.wait_success(secs(40));
    // The stream ends a second after the publisher; rtmpdump sees the end and stops.
    player.wait_success(secs(15));
    assert_src_streams(
        &probe_streams(out.to_str().unwrap()),
        "rtmpdump's recording",
    );
    let counts = packet_counts(&out);
    eprintln!("rtmpdump_plays: recorded {counts:?}");
    assert!(
        counts.video >= 50,
        "rtmpdump recorded too little: {counts:?}"
    );
}
