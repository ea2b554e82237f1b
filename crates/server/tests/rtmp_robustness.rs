//! End to end: peers that misbehave (garbage, silence) cost only their own
//! connection; Enhanced RTMP (HEVC) passes through byte for byte.

mod common;

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::*;
use ferrocast_proto::amf0::Amf0Value;
use ferrocast_proto::rtmp::session::{
    parse_rtmp_url, ClientEvent, ClientMode, ClientSession, SessionConfig,
};

/// Sends `bytes` on a raw connection, then checks that the server closes it within
/// 5 s and logs the fault; returns the `RTMP session closed` line.
fn expect_refused(srv: &Server, mut s: TcpStream, bytes: &[u8], what: &str) -> String {
    let peer = s.local_addr().unwrap();
    // The server may close (and reset) before reading everything: a failed write is
    // fine, the close is what we check.
    let _ = s.write_all(bytes);
    if let Err(e) = wait_closed(&mut s, secs(5)) {
        panic!("{what}: {e}");
    }
    let line = srv.closed_line(peer, secs(5));
    eprintln!("{what}: {line}");
    line
}

/// Random bytes, a valid handshake followed by random chunks, and Set Chunk Size 0,
/// each on its own connection while a player is receiving: each faulty connection is
/// closed with a reason, and the player does not notice.
#[test]
fn garbage_clients_do_not_disturb() {
    let mut srv = Server::start(
        "garbage_clients",
        "[general]\ncontinue_push_ms = 1000\nmax_stream_wait_ms = 8000\n",
    );
    let mut publisher = publish_file(&srv, "publisher", "g", &[]);
    srv.wait_for_log(&["publish started", "live/g"], secs(10));
    sleep(secs(1));
    let out = srv.path("out.flv");
    let mut player = record(&srv, "player", "g", &out, &[]);
    srv.wait_for_log(&["play started", "live/g"], secs(10));

    let mut rng = Rng::new(0x5eed_f00d);

    // 1. 10 KB of noise instead of a handshake (C0 must not be 3 by chance).
    let mut noise = rng.bytes(10 * 1024);
    if noise[0] == 3 {
        noise[0] = 0xEE;
    }
    let line = expect_refused(&srv, raw_connect(&srv), &noise, "random bytes");
    assert!(
        line.contains("bad input from peer") && line.contains("handshake"),
        "random bytes: the reason does not name the fault: {line}"
    );

    // 2. A valid handshake, then 10 KB of noise as chunks.
    let mut s = raw_connect(&srv);
    raw_handshake(&mut s, &mut rng);
    let noise = rng.bytes(10 * 1024);
    let line = expect_refused(&srv, s, &noise, "handshake + random chunks");
    assert!(
        line.contains("bad input from peer"),
        "handshake + random chunks: the reason does not name the fault: {line}"
    );

    // 3. A valid handshake, then Set Chunk Size 0: a type-0 chunk on chunk stream 2,
    //    timestamp 0, length 4, message type 1, message stream 0, payload 0.
    let mut s = raw_connect(&srv);
    raw_handshake(&mut s, &mut rng);
    let set_chunk_size_0 = [
        0x02, // fmt 0, csid 2
        0, 0, 0, // timestamp
        0, 0, 4, // length
        1, // Set Chunk Size
        0, 0, 0, 0, // message stream id (little endian)
        0, 0, 0, 0, // chunk size 0
    ];
    let line = expect_refused(&srv, s, &set_chunk_size_0, "Set Chunk Size 0");
    assert!(
        line.contains("bad input from peer") && line.contains("chunk size"),
        "Set Chunk Size 0: the reason does not name the fault: {line}"
    );

    assert!(srv.is_alive(), "the server died");
    publisher.wait_success(secs(40));
    player.wait_success(secs(15));
    let counts = packet_counts(&out);
    let min = SRC_FRAMES - SRC_GOP - 25;
    assert!(
        (min..=SRC_FRAMES).contains(&counts.video),
        "the player got {counts:?}: video frames should be in {min}..={SRC_FRAMES}"
    );
    assert!(first_video_is_keyframe(&out), "first frame not a keyframe");
    assert!(srv.is_alive(), "the server died");
}

/// A TCP peer that never says anything is closed after handshake_timeout_ms.
#[test]
fn silent_peer_times_out() {
    let srv = Server::start("silent_peer", "[rtmp]\nhandshake_timeout_ms = 1000\n");
    let mut s = raw_connect(&srv);
    let peer = s.local_addr().unwrap();
    let took = wait_closed(&mut s, secs(5)).unwrap_or_else(|e| panic!("silent peer: {e}"));
    assert!(
        took >= Duration::from_millis(800),
        "closed after {took:?}, before handshake_timeout_ms = 1000"
    );
    let line = srv.closed_line(peer, secs(5));
    assert!(
        line.contains("handshake timeout"),
        "the reason does not say handshake timeout: {line}"
    );

    // A peer that stops in the middle of the handshake is timed out the same way.
    let mut s = raw_connect(&srv);
    let peer = s.local_addr().unwrap();
    s.write_all(&[3u8; 700]).unwrap(); // C0 and half of C1
    wait_closed(&mut s, secs(5)).unwrap_or_else(|e| panic!("half handshake: {e}"));
    let line = srv.closed_line(peer, secs(5));
    assert!(
        line.contains("handshake timeout"),
        "the reason does not say handshake timeout: {line}"
    );
}

// ---------------------------------------------------------------------------------
// Enhanced RTMP
// ---------------------------------------------------------------------------------

/// A blocking driver for our own sans-IO [`ClientSession`].
struct Client {
    sock: TcpStream,
    session: ClientSession,
    events: VecDeque<ClientEvent>,
}

impl Client {
    fn connect(srv: &Server, name: &str, mode: ClientMode, seed: u64) -> Client {
        let url = srv.url(name);
        let (host, port, target) = parse_rtmp_url(&url, mode).expect("parse url");
        let sock = TcpStream::connect((host.as_str(), port)).expect("connect");
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        sock.set_write_timeout(Some(secs(5))).unwrap();
        let session = ClientSession::new(SessionConfig::default(), target, 0, seed, false);
        let mut c = Client {
            sock,
            session,
            events: VecDeque::new(),
        };
        c.flush();
        c
    }

    fn flush(&mut self) {
        while let Some(b) = self.session.poll_output() {
            self.sock.write_all(&b).expect("write to server");
        }
    }

    /// Reads once (up to 100 ms) and queues the events.
    fn pump(&mut self) {
        let mut buf = [0u8; 64 * 1024];
        match self.sock.read(&mut buf) {
            Ok(0) => panic!("the server closed the connection"),
            Ok(n) => self
                .session
                .handle_input(&buf[..n])
                .unwrap_or_else(|e| panic!("bad input from the server: {e}")),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("read from server: {e}"),
        }
        while let Some(e) = self.session.poll_event() {
            self.events.push_back(e);
        }
        self.flush();
    }

    /// The next event, waiting up to `timeout`.
    fn next_event(&mut self, timeout: Duration) -> Option<ClientEvent> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.events.pop_front() {
                return Some(e);
            }
            if Instant::now() >= deadline {
                return None;
            }
            self.pump();
        }
    }

    /// Skips events until `pred` matches; fails after `timeout`.
    fn wait_for(&mut self, what: &str, timeout: Duration, pred: impl Fn(&ClientEvent) -> bool) {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            if let Some(e) = self.next_event(deadline - Instant::now()) {
                if pred(&e) {
                    return;
                }
                seen.push(e);
            }
        }
        panic!("no {what} within {timeout:?}; events: {seen:?}");
    }

    /// The next media (audio/video) message or end of stream, skipping status events.
    fn next_media(&mut self, timeout: Duration) -> Option<ClientEvent> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(
                e @ (ClientEvent::Video { .. }
                | ClientEvent::Audio { .. }
                | ClientEvent::Metadata { .. }
                | ClientEvent::StreamEnded),
            ) = self.next_event(deadline - Instant::now())
            {
                return Some(e);
            }
        }
        None
    }
}

const HVC1: &[u8; 4] = b"hvc1";

/// An Enhanced RTMP video tag: `0x80 | frame_type << 4 | packet_type`, FourCC, body.
fn ex_video(frame_type: u8, packet_type: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![0x80 | frame_type << 4 | packet_type];
    v.extend_from_slice(HVC1);
    v.extend_from_slice(body);
    v
}

/// A minimal HEVCDecoderConfigurationRecord: Main profile, level 3.1, 4:2:0 8-bit,
/// 4-byte NAL lengths, no parameter set arrays.
fn tiny_hvcc() -> Vec<u8> {
    vec![
        0x01, // configurationVersion
        0x01, // profile space 0, tier 0, profile idc 1 (Main)
        0x60, 0x00, 0x00, 0x00, // profile compatibility flags
        0x90, 0x00, 0x00, 0x00, 0x00, 0x00, // constraint indicator flags
        0x5D, // level idc 93 (3.1)
        0xF0, 0x00, // min_spatial_segmentation_idc
        0xFC, // parallelismType
        0xFD, // chroma 4:2:0
        0xF8, // bit depth luma 8
        0xF8, // bit depth chroma 8
        0x00, 0x00, // avgFrameRate
        0x0F, // 1 temporal layer, nested, lengthSizeMinusOne 3
        0x00, // numOfArrays
    ]
}

/// CodedFrames body: SI24 composition time, then 4-byte length-prefixed NAL units.
fn coded_frames(cts: i32, nal_type: u8, fill: u8) -> Vec<u8> {
    let mut v = cts.to_be_bytes()[1..].to_vec();
    let nal = [nal_type << 1, 0x01, fill, fill ^ 0x5A, 0x80];
    v.extend_from_slice(&(nal.len() as u32).to_be_bytes());
    v.extend_from_slice(&nal);
    v
}

/// Publishes Enhanced RTMP HEVC (FourCC `hvc1`) with our client and plays it back
/// with a second one that joins mid-stream: it must start with the sequence start and
/// the keyframe from the GOP cache, and every tag must arrive byte for byte.
#[test]
fn enhanced_rtmp_hevc() {
    let srv = Server::start(
        "enhanced_rtmp_hevc",
        "[general]\ncontinue_push_ms = 0\nmax_stream_wait_ms = 8000\n",
    );
    let mut publisher = Client::connect(&srv, "hevc", ClientMode::Publish, 1);
    publisher.wait_for("NetStream.Publish.Start", secs(10), |e| {
        matches!(e, ClientEvent::Started { .. })
    });
    publisher.session.send_metadata(&[
        Amf0Value::String("onMetaData".into()),
        Amf0Value::EcmaArray(vec![
            ("width".into(), Amf0Value::Number(64.0)),
            ("height".into(), Amf0Value::Number(64.0)),
            (
                "videocodecid".into(),
                Amf0Value::Number(f64::from(u32::from_be_bytes(*HVC1))),
            ),
        ]),
    ]);
    // (timestamp, tag) in send order. Frame types: 1 key, 2 inter. Packet types:
    // 0 SequenceStart, 1 CodedFrames.
    let first_gop = vec![
        (1000u32, ex_video(1, 0, &tiny_hvcc())),
        (1000, ex_video(1, 1, &coded_frames(0, 19, 0x11))), // IDR_W_RADL
        (1040, ex_video(2, 1, &coded_frames(40, 1, 0x22))), // TRAIL_R
        (1080, ex_video(2, 1, &coded_frames(-40, 1, 0x33))),
    ];
    for (ts, tag) in &first_gop {
        publisher.session.send_video(*ts, tag);
    }
    publisher.flush();
    srv.wait_for_log(&["publish started", "live/hevc"], secs(5));
    sleep(Duration::from_millis(500)); // let the server take it all in

    let mut player = Client::connect(&srv, "hevc", ClientMode::Play, 2);
    player.wait_for("NetStream.Play.Start", secs(10), |e| {
        matches!(e, ClientEvent::Started { .. })
    });
    let mut received = Vec::new();
    let mut metadata = None;
    while received.len() < first_gop.len() {
        match player.next_media(secs(10)) {
            Some(ClientEvent::Video { timestamp, payload }) => {
                received.push((timestamp, payload.to_vec()))
            }
            Some(ClientEvent::Metadata { values, .. }) => metadata = Some(values),
            Some(other) => panic!("unexpected {other:?} after {} tags", received.len()),
            None => panic!(
                "the late player got only {} of {} tags of the current GOP",
                received.len(),
                first_gop.len()
            ),
        }
    }
    assert_eq!(
        received, first_gop,
        "the late player's GOP differs from what was published"
    );
    let metadata = metadata.expect("the late player got no onMetaData");
    assert!(
        format!("{metadata:?}").contains("videocodecid"),
        "metadata changed on the way: {metadata:?}"
    );

    // Live from here: a new GOP, then the publisher leaves (continue_push_ms = 0).
    let second_gop = vec![
        (1120u32, ex_video(1, 1, &coded_frames(0, 19, 0x44))),
        (1160, ex_video(2, 1, &coded_frames(40, 1, 0x55))),
    ];
    for (ts, tag) in &second_gop {
        publisher.session.send_video(*ts, tag);
    }
    publisher.flush();
    let mut live = Vec::new();
    while live.len() < second_gop.len() {
        match player.next_media(secs(10)) {
            Some(ClientEvent::Video { timestamp, payload }) => {
                live.push((timestamp, payload.to_vec()))
            }
            other => panic!("expected a live video tag, got {other:?}"),
        }
    }
    assert_eq!(live, second_gop, "live tags differ from what was published");

    publisher.session.close();
    publisher.flush();
    match player.next_media(secs(10)) {
        Some(ClientEvent::StreamEnded) => {}
        other => panic!("expected the end of the stream, got {other:?}"),
    }

    // With an ffmpeg that can put HEVC in FLV (6.1 and later), a real encoder too.
    let (major, minor) = ffmpeg_version();
    eprintln!("ffmpeg {major}.{minor}");
    if (major, minor) >= (6, 1) {
        let url = srv.url("x265");
        let mut enc = Proc::spawn(
            "x265",
            "ffmpeg",
            &[
                "-nostdin",
                "-hide_banner",
                "-loglevel",
                "error",
                "-re",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=320x240:rate=25",
                "-t",
                "8",
                "-c:v",
                "libx265",
                "-preset",
                "ultrafast",
                "-x265-params",
                "keyint=25:log-level=error",
                "-f",
                "flv",
                &url,
            ],
            &srv.dir.path,
        );
        srv.wait_for_log(&["publish started", "live/x265"], secs(20));
        let streams = probe_streams(&url);
        let video = streams.iter().find(|s| s.codec_type == "video");
        assert_eq!(
            video.map(|s| s.codec_name.as_str()),
            Some("hevc"),
            "{streams:?}"
        );
        enc.kill();
    }
}
