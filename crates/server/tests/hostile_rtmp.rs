//! End to end: hostile RTMP clients against a running server while a normal
//! publisher (ffmpeg), an RTMP player and an HTTP-FLV viewer keep going. For each
//! attack: the server stays alive, the viewers keep at least 90% of their media
//! throughput (media time received per wall-clock second, compared with a baseline
//! measured before the attacks: bytes depend on what the encoder happens to
//! produce, media time does not), the server's RSS grows by at most [`RSS_BOUND_KB`],
//! and every attacking connection is closed within the time stated per attack.
//!
//! The config is short-fused so that each test stays under a minute:
//! handshake (and attach) deadline 2 s, idle timeout 3 s. Counts are bounded (at
//! most 300 connections at once: within the default fd limit of both processes).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{sleep, JoinHandle};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::*;
use ferrocast_proto::amf0::Amf0Value;
use ferrocast_proto::rtmp::chunk::{encode_message, DEFAULT_CHUNK_SIZE};
use ferrocast_proto::rtmp::message::{command_payload, csid, type_id};
use ferrocast_proto::rtmp::session::{
    parse_rtmp_url, ClientEvent, ClientMode, ClientSession, SessionConfig,
};

const CONFIG: &str = "[rtmp]\nhandshake_timeout_ms = 2000\nidle_timeout_ms = 3000\n\
                      [general]\nmax_stream_wait_ms = 1000\ncontinue_push_ms = 0\n";
/// The attach deadline (rtmp.handshake_timeout_ms) of [`CONFIG`].
const ATTACH: Duration = Duration::from_secs(2);
/// Most RSS growth one attack may cause, measured once its connections are closed.
const RSS_BOUND_KB: u64 = 64 * 1024;
/// Share of the baseline media rate the viewers must keep during an attack.
const KEEP: f64 = 0.9;

/// What a viewer thread has received: bytes and the last video timestamp (ms).
#[derive(Default)]
struct Progress {
    bytes: AtomicU64,
    video_ms: AtomicU64,
}

struct Viewers {
    stop: Arc<AtomicBool>,
    rtmp: Arc<Progress>,
    flv: Arc<Progress>,
    threads: Vec<JoinHandle<()>>,
    curl: std::process::Child,
}

impl Viewers {
    fn start(srv: &Server, name: &str) -> Viewers {
        let stop = Arc::new(AtomicBool::new(false));
        let rtmp = Arc::new(Progress::default());
        let flv = Arc::new(Progress::default());
        let url = srv.url(name);
        let (s, p) = (stop.clone(), rtmp.clone());
        let player = std::thread::spawn(move || rtmp_player(&url, &s, &p));
        let mut curl = Command::new("curl")
            .args(["-sN", &format!("http://{}/live/{name}.live.flv", srv.http)])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("curl");
        let out = curl.stdout.take().unwrap();
        let p = flv.clone();
        let viewer = std::thread::spawn(move || flv_viewer(out, &p));
        Viewers {
            stop,
            rtmp,
            flv,
            threads: vec![player, viewer],
            curl,
        }
    }

    fn sample(&self) -> [(u64, u64); 2] {
        [&self.rtmp, &self.flv].map(|p| {
            (
                p.bytes.load(Ordering::Relaxed),
                p.video_ms.load(Ordering::Relaxed),
            )
        })
    }

    /// Media ms per wall ms and bytes per second of both viewers over `run`.
    fn measure(&self, run: impl FnOnce()) -> [(f64, f64); 2] {
        let (t0, s0) = (Instant::now(), self.sample());
        run();
        let (wall, s1) = (t0.elapsed().as_secs_f64(), self.sample());
        [0, 1].map(|i| {
            let media = s1[i].1.saturating_sub(s0[i].1) as f64 / 1000.0;
            let bytes = s1[i].0.saturating_sub(s0[i].0) as f64;
            (media / wall, bytes / wall)
        })
    }
}

impl Drop for Viewers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.curl.kill();
        let _ = self.curl.wait();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Plays `url` with our own client session until `stop`, counting what arrives.
fn rtmp_player(url: &str, stop: &AtomicBool, progress: &Progress) {
    let (host, port, target) = parse_rtmp_url(url, ClientMode::Play).unwrap();
    let mut sock = TcpStream::connect((host.as_str(), port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut session = ClientSession::new(SessionConfig::default(), target, 0, 9, false);
    let mut buf = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::Relaxed) {
        while let Some(b) = session.poll_output() {
            if sock.write_all(&b).is_err() {
                return;
            }
        }
        match sock.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                progress.bytes.fetch_add(n as u64, Ordering::Relaxed);
                if session.handle_input(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return,
        }
        while let Some(e) = session.poll_event() {
            if let ClientEvent::Video { timestamp, .. } = e {
                progress
                    .video_ms
                    .store(u64::from(timestamp), Ordering::Relaxed);
            }
        }
    }
}

/// Reads an HTTP-FLV body (curl undoes the chunking), following its tags.
fn flv_viewer(mut out: impl Read, progress: &Progress) {
    let mut buf = Vec::new();
    let mut pos = 13; // FLV header + PreviousTagSize0
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match out.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        progress.bytes.fetch_add(n as u64, Ordering::Relaxed);
        buf.extend_from_slice(&chunk[..n]);
        while buf.len() >= pos + 11 {
            let h = &buf[pos..pos + 11];
            let size = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
            let ts = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
            if buf.len() < pos + 11 + size + 4 {
                break;
            }
            if h[0] == 9 {
                progress.video_ms.store(u64::from(ts), Ordering::Relaxed);
            }
            pos += 11 + size + 4;
        }
        let done = pos.min(buf.len());
        buf.drain(..done);
        pos -= done;
    }
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

/// One command message, chunked at the default chunk size.
fn command(stream_id: u32, name: &str, tx: f64, object: &Amf0Value, args: &[Amf0Value]) -> Vec<u8> {
    raw_message(
        csid::COMMAND,
        type_id::COMMAND_AMF0,
        stream_id,
        &command_payload(name, tx, object, args),
    )
}

fn raw_message(cs: u32, ty: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_message(&mut out, cs, 0, ty, stream_id, payload, DEFAULT_CHUNK_SIZE);
    out.to_vec()
}

fn connect_command() -> Vec<u8> {
    let object = Amf0Value::Object(vec![
        ("app".into(), Amf0Value::String("live".into())),
        ("tcUrl".into(), Amf0Value::String("rtmp://x/live".into())),
    ]);
    command(0, "connect", 1.0, &object, &[])
}

/// A handshaken (and, with `connect`, connected) raw connection.
fn attacker(srv: &Server, rng: &mut Rng, connect: bool) -> TcpStream {
    let mut s = raw_connect(srv);
    raw_handshake(&mut s, rng);
    if connect {
        let _ = s.write_all(&connect_command());
    }
    s
}

/// Writes `bytes` on every connection each `every` until every connection refuses
/// writes (the server closed it), or 5 s.
fn keep_sending(conns: &mut [TcpStream], bytes: &[u8], every: Duration) {
    let started = Instant::now();
    let mut open = vec![true; conns.len()];
    while open.contains(&true) && started.elapsed() < secs(5) {
        for (s, open) in conns.iter_mut().zip(&mut open) {
            if *open && s.write_all(bytes).is_err() {
                *open = false;
            }
        }
        sleep(every);
    }
}

/// What an attack runs: opens its connections (and keeps sending, if it does) and
/// hands them back.
type AttackFn = Box<dyn Fn(&Server, &mut Rng) -> Vec<TcpStream>>;

struct Attack {
    name: &'static str,
    /// Every attacking connection must be closed this long after the attack began.
    closed_within: Duration,
    run: AttackFn,
}

/// Runs each attack in turn against `srv`, asserting the bounds of the module docs.
fn run_attacks(srv: &mut Server, viewers: &Viewers, attacks: Vec<Attack>) {
    let baseline = viewers.measure(|| sleep(secs(3)));
    eprintln!(
        "baseline (media s/s, B/s) rtmp {:?} flv {:?}",
        baseline[0], baseline[1]
    );
    for (i, v) in baseline.iter().enumerate() {
        assert!(v.0 > 0.8, "viewer {i} is not receiving in real time: {v:?}");
    }
    let mut rng = Rng::new(0x0405_711e);
    for attack in attacks {
        let rss_before = rss_kb(srv.pid());
        let mut open_for = Duration::ZERO;
        let rates = viewers.measure(|| {
            let started = Instant::now();
            let mut conns = (attack.run)(srv, &mut rng);
            let deadline = started + attack.closed_within;
            for c in &mut conns {
                let left = deadline.saturating_duration_since(Instant::now());
                if let Err(e) = wait_closed(c, left.max(Duration::from_millis(1))) {
                    panic!(
                        "{}: an attacking connection: {e} ({:?} after the attack began)",
                        attack.name,
                        started.elapsed()
                    );
                }
            }
            open_for = started.elapsed();
            // At least 3 s of measurement per attack.
            sleep(secs(3).saturating_sub(open_for));
        });
        let rss_after = rss_kb(srv.pid());
        eprintln!(
            "{}: all closed after {open_for:?}; rtmp {:?} flv {:?}; RSS {rss_before} -> {rss_after} kB",
            attack.name, rates[0], rates[1]
        );
        assert!(srv.is_alive(), "{}: the server died", attack.name);
        for i in 0..2 {
            assert!(
                rates[i].0 >= KEEP * baseline[i].0,
                "{}: viewer {i} got {:.2} media s/s, baseline {:.2}",
                attack.name,
                rates[i].0,
                baseline[i].0
            );
        }
        assert!(
            rss_after <= rss_before + RSS_BOUND_KB,
            "{}: RSS grew from {rss_before} to {rss_after} kB",
            attack.name
        );
    }
}

fn start(name: &str) -> (Server, Proc, Viewers) {
    require("ffmpeg");
    require("curl");
    let srv = Server::start(name, CONFIG);
    let publisher = publish_live(&srv, "publisher", "h", "320x240", 55);
    srv.wait_for_log(&["publish started", "live/h"], secs(15));
    let viewers = Viewers::start(&srv, "h");
    srv.wait_for_log(&["play started", "live/h"], secs(10));
    sleep(secs(2));
    (srv, publisher, viewers)
}

/// Byte-level attacks: each connection is refused for what it sends, or closed by
/// the handshake or attach deadline.
#[test]
fn hostile_bytes() {
    let (mut srv, _publisher, viewers) = start("hostile_bytes");
    let fault = ATTACH / 2; // a malformed peer is closed at once
    let deadline = ATTACH + secs(1);
    let attacks = vec![
        Attack {
            name: "random bytes",
            closed_within: fault,
            run: Box::new(|srv, rng| {
                (0..20)
                    .map(|_| {
                        let mut s = raw_connect(srv);
                        let mut noise = rng.bytes(64 * 1024);
                        noise[0] = 0xEE;
                        let _ = s.write_all(&noise);
                        s
                    })
                    .collect()
            }),
        },
        Attack {
            name: "truncated handshakes left open",
            closed_within: deadline,
            run: Box::new(|srv, rng| {
                (0..50)
                    .map(|_| {
                        let mut s = raw_connect(srv);
                        let mut c = vec![3u8];
                        c.extend(rng.bytes(700));
                        let _ = s.write_all(&c);
                        s
                    })
                    .collect()
            }),
        },
        Attack {
            name: "wrong RTMP version",
            closed_within: fault,
            run: Box::new(|srv, rng| {
                (0..20)
                    .map(|_| {
                        let mut s = raw_connect(srv);
                        let mut c = vec![6u8];
                        c.extend(rng.bytes(1536));
                        let _ = s.write_all(&c);
                        s
                    })
                    .collect()
            }),
        },
        Attack {
            name: "chunk size 0, and 2^31-1 then silence",
            // 0 is refused at once; 2^31-1 is legal, and the peer then does nothing:
            // the attach deadline closes it.
            closed_within: deadline,
            run: Box::new(|srv, rng| {
                [0u32, 0x7FFF_FFFF]
                    .iter()
                    .flat_map(|&size| {
                        (0..10)
                            .map(|_| {
                                let mut s = attacker(srv, rng, false);
                                let m = raw_message(
                                    csid::PROTOCOL_CONTROL,
                                    type_id::SET_CHUNK_SIZE,
                                    0,
                                    &size.to_be_bytes(),
                                );
                                let _ = s.write_all(&m);
                                s
                            })
                            .collect::<Vec<_>>()
                    })
                    .collect()
            }),
        },
        Attack {
            name: "a 16 MiB message header, then a trickle",
            closed_within: deadline,
            run: Box::new(|srv, rng| {
                let mut conns: Vec<TcpStream> = (0..20)
                    .map(|_| {
                        let mut s = attacker(srv, rng, true);
                        // Chunk size 2^31-1, then a type-0 header of a 16 MiB - 1 video
                        // message on csid 6.
                        let mut m = raw_message(
                            csid::PROTOCOL_CONTROL,
                            type_id::SET_CHUNK_SIZE,
                            0,
                            &0x7FFF_FFFFu32.to_be_bytes(),
                        );
                        m.extend_from_slice(&[0x06, 0, 0, 0, 0xFF, 0xFF, 0xFF, 9, 1, 0, 0, 0]);
                        let _ = s.write_all(&m);
                        s
                    })
                    .collect();
                // One byte every 100 ms on every connection (each keeps the idle
                // timer fed) until the server has closed them all, or 5 s.
                keep_sending(&mut conns, &[0x42], Duration::from_millis(100));
                conns
            }),
        },
        Attack {
            name: "65536 chunk stream ids",
            closed_within: fault,
            run: Box::new(|srv, rng| {
                (0..4)
                    .map(|_| {
                        let mut s = attacker(srv, rng, true);
                        // A type-0 header (3-byte basic header: csid 64 + n) of a
                        // 1000-byte message and its first 128 bytes, per chunk stream.
                        let mut m = Vec::new();
                        for n in 0..65536u32 {
                            let v = n.to_le_bytes();
                            m.extend_from_slice(&[
                                1, v[0], v[1], 0, 0, 0, 0, 0x03, 0xE8, 9, 1, 0, 0, 0,
                            ]);
                            m.extend_from_slice(&[0x17; 128]);
                        }
                        let _ = s.write_all(&m);
                        s
                    })
                    .collect()
            }),
        },
        Attack {
            name: "AMF0 nested 100k deep, and a string claiming 4 GiB",
            closed_within: fault,
            run: Box::new(|srv, rng| {
                let mut deep = command_payload("connect", 1.0, &Amf0Value::Null, &[]).to_vec();
                for _ in 0..100_000 {
                    deep.extend_from_slice(&[0x03, 0, 1, b'a']);
                }
                let mut long = command_payload("connect", 1.0, &Amf0Value::Null, &[]).to_vec();
                long.extend_from_slice(&[0x0C, 0xFF, 0xFF, 0xFF, 0xFF, b'x', b'y']);
                [deep, long]
                    .iter()
                    .flat_map(|payload| {
                        (0..5)
                            .map(|_| {
                                let mut s = attacker(srv, rng, false);
                                let m =
                                    raw_message(csid::COMMAND, type_id::COMMAND_AMF0, 0, payload);
                                let _ = s.write_all(&m);
                                s
                            })
                            .collect::<Vec<_>>()
                    })
                    .collect()
            }),
        },
    ];
    run_attacks(&mut srv, &viewers, attacks);
    let log = srv.log();
    for reason in [
        "chunk size 0 out of range",
        "more than 64 chunk streams",
        "AMF0 nesting deeper than",
        "neither publishing nor playing within 2000 ms",
    ] {
        assert!(log.contains(reason), "no close line says {reason:?}");
    }
}

/// Connection-level attacks: idle sockets, a peer that pings forever, churn and
/// stalled publishers.
#[test]
fn hostile_connections() {
    let (mut srv, _publisher, viewers) = start("hostile_connections");
    let deadline = ATTACH + secs(1);
    let attacks = vec![
        Attack {
            name: "300 idle TCP connections",
            // Opening 300 connections takes a moment of its own.
            closed_within: deadline + secs(1),
            run: Box::new(|srv, _| (0..300).map(|_| raw_connect(srv)).collect()),
        },
        Attack {
            name: "a connection that pings but never publishes or plays",
            closed_within: deadline,
            run: Box::new(|srv, rng| {
                let mut conns: Vec<TcpStream> = (0..10).map(|_| attacker(srv, rng, true)).collect();
                // An unknown command every 200 ms (well inside the 3 s idle timeout).
                let ping = command(0, "_checkbw", 0.0, &Amf0Value::Null, &[]);
                keep_sending(&mut conns, &ping, Duration::from_millis(200));
                conns
            }),
        },
        Attack {
            name: "publish/unpublish churn",
            closed_within: secs(2),
            run: Box::new(|srv, rng| {
                let mut conns: Vec<TcpStream> = (0..10)
                    .map(|_| {
                        let mut s = attacker(srv, rng, true);
                        let _ =
                            s.write_all(&command(0, "createStream", 2.0, &Amf0Value::Null, &[]));
                        s
                    })
                    .collect();
                // Publish, let the server accept it, unpublish: 12 rounds on each
                // connection (the server allows 8).
                for _ in 0..12 {
                    for (i, s) in conns.iter_mut().enumerate() {
                        let name = Amf0Value::String(format!("churn{i}"));
                        let _ = s.write_all(&command(1, "publish", 0.0, &Amf0Value::Null, &[name]));
                    }
                    sleep(Duration::from_millis(50));
                    for (i, s) in conns.iter_mut().enumerate() {
                        let name = Amf0Value::String(format!("churn{i}"));
                        let _ =
                            s.write_all(&command(0, "FCUnpublish", 0.0, &Amf0Value::Null, &[name]));
                    }
                    sleep(Duration::from_millis(20));
                }
                conns
            }),
        },
        Attack {
            name: "50 publishers that send a sequence header and stall",
            // The idle timeout (3 s) closes them.
            closed_within: secs(3) + secs(1),
            run: Box::new(|srv, rng| {
                (0..50)
                    .map(|i| {
                        let mut s = attacker(srv, rng, true);
                        let name = Amf0Value::String(format!("stall{i}"));
                        let mut m = command(0, "createStream", 2.0, &Amf0Value::Null, &[]);
                        m.extend(command(1, "publish", 0.0, &Amf0Value::Null, &[name]));
                        let avc = [0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 0];
                        m.extend(raw_message(csid::VIDEO, type_id::VIDEO, 1, &avc));
                        let _ = s.write_all(&m);
                        s
                    })
                    .collect()
            }),
        },
    ];
    run_attacks(&mut srv, &viewers, attacks);
    let log = srv.log();
    for reason in [
        "neither publishing nor playing within 2000 ms",
        "more than 8 publish requests on one connection",
        "idle: nothing received for 3000 ms",
    ] {
        assert!(log.contains(reason), "no close line says {reason:?}");
    }
}
