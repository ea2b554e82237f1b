//! End to end, the HTTP half of the hostile-client suite (issue 12): while a normal
//! publisher (ffmpeg), an RTMP player and an HTTP-FLV viewer keep going, hostile
//! HTTP clients attack, and for each attack the test asserts that the server is
//! alive, the normal viewers keep at least 90% of their frame rate over the attack,
//! the server's RSS grows by at most a stated bound, and the attacking connections
//! are closed within a stated time.
//!
//! The config shortens the timeouts (`http.header_timeout_ms` 2 s,
//! `hub.slow_player_timeout_ms` 3 s) so that each test ends within a minute. The
//! tests run one at a time (a lock): each measures throughput, which a concurrent
//! attack from another test would disturb.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Mutex;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::*;

static SERIAL: Mutex<()> = Mutex::new(());

const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
const SLOW_PLAYER_TIMEOUT: Duration = Duration::from_secs(3);
const SECRET: &str = "hostile-secret";

/// Frame rate of the source (25 fps) and the share the normal viewers must keep.
const FPS: f64 = 25.0;
const MIN_SHARE: f64 = 0.9;
/// Shortest throughput window.
const MIN_WINDOW: Duration = Duration::from_secs(12);

fn config() -> String {
    format!(
        "[http]\nheader_timeout_ms = {}\n[hub]\nslow_player_timeout_ms = {}\n\
         [general]\nmax_stream_wait_ms = 8000\ncontinue_push_ms = 1000\n[api]\nsecret = \"{SECRET}\"\n",
        HEADER_TIMEOUT.as_millis(),
        SLOW_PLAYER_TIMEOUT.as_millis()
    )
}

/// The normal traffic: a looping publisher, an RTMP player and an HTTP-FLV viewer
/// (both ffmpeg, writing FLV files whose video packets are counted).
struct Normal {
    _publisher: Proc,
    rtmp_player: Proc,
    flv_viewer: Proc,
    rtmp_out: PathBuf,
    flv_out: PathBuf,
}

fn start_normal(srv: &Server) -> Normal {
    let publisher = publish_file(srv, "publisher", "n", &["-stream_loop", "-1"]);
    srv.wait_for_log(&["publish started", "live/n"], secs(15));
    let rtmp_out = srv.path("rtmp.flv");
    // Packets flushed as written, without interleaving delay: the files are counted
    // while they grow.
    let flush = ["-flush_packets", "1", "-max_interleave_delta", "0"];
    let rtmp_player = record(srv, "rtmp-player", "n", &rtmp_out, &flush);
    let flv_out = srv.path("http.flv");
    let url = srv.http_url("/live/n.live.flv");
    let flv_viewer = Proc::spawn(
        "flv-viewer",
        "ffmpeg",
        &[
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-i",
            &url,
            "-flush_packets",
            "1",
            "-max_interleave_delta",
            "0",
            "-c",
            "copy",
            "-copyinkf",
            "-f",
            "flv",
            "-y",
            flv_out.to_str().unwrap(),
        ],
        &srv.dir.path,
    );
    let n = Normal {
        _publisher: publisher,
        rtmp_player,
        flv_viewer,
        rtmp_out,
        flv_out,
    };
    // Both viewers have begun writing frames.
    let t = Instant::now();
    loop {
        let (a, b) = n.frames();
        if a >= 25 && b >= 25 {
            break;
        }
        assert!(
            t.elapsed() < secs(20),
            "normal viewers did not start: {a} and {b} video frames after 20 s"
        );
        sleep(Duration::from_millis(300));
    }
    n
}

impl Normal {
    /// Video frames written so far by (the RTMP player, the HTTP-FLV viewer).
    fn frames(&self) -> (u64, u64) {
        let count = |p: &PathBuf| {
            if p.exists() && std::fs::metadata(p).map(|m| m.len()).unwrap_or(0) > 0 {
                packet_counts(p).video
            } else {
                0
            }
        };
        (count(&self.rtmp_out), count(&self.flv_out))
    }
}

/// An attack's measurement: the normal viewers' frames and the server's RSS at its
/// start.
struct Window {
    start: Instant,
    frames: (u64, u64),
    rss_kib: u64,
}

fn begin(srv: &Server, n: &Normal) -> Window {
    Window {
        start: Instant::now(),
        frames: n.frames(),
        rss_kib: vm_rss_kib(srv.pid()),
    }
}

/// Asserts, at the end of an attack: the server alive and serving, both normal
/// viewers at >= 90% of the source's frame rate over the window, RSS growth within
/// `rss_bound_mib`.
fn end(srv: &mut Server, n: &mut Normal, w: Window, what: &str, rss_bound_mib: u64) {
    // A window long enough that a viewer's buffering (a GOP at most) is noise.
    if let Some(rest) = MIN_WINDOW.checked_sub(w.start.elapsed()) {
        sleep(rest);
    }
    let frames = n.frames();
    let elapsed = w.start.elapsed().as_secs_f64();
    let rss = vm_rss_kib(srv.pid());
    assert!(srv.is_alive(), "{what}: the server died");
    assert_eq!(srv.get("/healthz").status, 200, "{what}: /healthz");
    assert!(
        n.rtmp_player.is_running() && n.flv_viewer.is_running(),
        "{what}: a normal viewer ended"
    );
    let expected = FPS * elapsed;
    let got = (
        (frames.0 - w.frames.0) as f64,
        (frames.1 - w.frames.1) as f64,
    );
    let growth_mib = rss.saturating_sub(w.rss_kib) / 1024;
    eprintln!(
        "{what}: {elapsed:.1} s, expected {expected:.0} frames; RTMP player {} ({:.0}%), \
         HTTP-FLV viewer {} ({:.0}%); RSS {} -> {} KiB (+{growth_mib} MiB, bound {rss_bound_mib})",
        got.0,
        100.0 * got.0 / expected,
        got.1,
        100.0 * got.1 / expected,
        w.rss_kib,
        rss
    );
    assert!(
        got.0 >= MIN_SHARE * expected,
        "{what}: the RTMP player got {} of {expected:.0} frames",
        got.0
    );
    assert!(
        got.1 >= MIN_SHARE * expected,
        "{what}: the HTTP-FLV viewer got {} of {expected:.0} frames",
        got.1
    );
    assert!(
        growth_mib <= rss_bound_mib,
        "{what}: RSS grew by {growth_mib} MiB (bound {rss_bound_mib} MiB)"
    );
}

/// Whether the server has closed `s` (EOF or reset), reading and discarding what
/// it sent; `s` must be non-blocking.
fn is_closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
}

/// Attacking connections, each with the instant it opened (or went idle) and, once
/// seen closed, how long it had been open then.
struct Conns {
    socks: Vec<TcpStream>,
    opened: Vec<Instant>,
    closed: Vec<Option<Duration>>,
}

impl Conns {
    fn new() -> Conns {
        Conns {
            socks: Vec::new(),
            opened: Vec::new(),
            closed: Vec::new(),
        }
    }

    /// Adds `s`, opened `at`.
    fn push_at(&mut self, s: TcpStream, at: Instant) {
        s.set_nonblocking(true).unwrap();
        self.socks.push(s);
        self.opened.push(at);
        self.closed.push(None);
    }

    fn push(&mut self, s: TcpStream) {
        self.push_at(s, Instant::now());
    }

    /// Notes the connections the server has closed since the last scan; while a
    /// long attack is being opened, scans keep the times exact.
    fn scan(&mut self) {
        for (i, s) in self.socks.iter_mut().enumerate() {
            if self.closed[i].is_none() && is_closed(s) {
                self.closed[i] = Some(self.opened[i].elapsed());
            }
        }
    }

    /// Scans until all are closed; panics once one has been open longer than
    /// `limit`. Returns the longest time a connection stayed open. `tick` runs
    /// every round (e.g. a slowloris trickle).
    fn wait_all_closed(
        &mut self,
        limit: Duration,
        what: &str,
        mut tick: impl FnMut(&mut [TcpStream], &[Option<Duration>]),
    ) -> Duration {
        loop {
            self.scan();
            let open = self.closed.iter().filter(|c| c.is_none()).count();
            if open == 0 {
                let longest = self
                    .closed
                    .iter()
                    .flatten()
                    .max()
                    .copied()
                    .unwrap_or_default();
                eprintln!(
                    "{what}: all {} closed, the last {longest:?} after it opened",
                    self.socks.len()
                );
                return longest;
            }
            let overdue = (0..self.socks.len())
                .filter(|&i| self.closed[i].is_none() && self.opened[i].elapsed() > limit)
                .count();
            assert!(
                overdue == 0,
                "{what}: {overdue} connections still open {limit:?} after they opened ({open} of {} open)",
                self.socks.len()
            );
            tick(&mut self.socks, &self.closed);
            sleep(Duration::from_millis(100));
        }
    }
}

/// `socks`, all opened `at`.
fn to_conns(socks: Vec<TcpStream>, at: Instant) -> Conns {
    let mut c = Conns::new();
    for s in socks {
        c.push_at(s, at);
    }
    c
}

fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect_timeout(&addr, secs(5)).unwrap_or_else(|e| panic!("connect {addr}: {e}"))
}

/// 500 silent connections, 500 slowloris connections (half a request head, then a
/// byte every 500 ms) and 100 idle keep-alives (one request answered, then nothing):
/// all closed within the header timeout + 3 s, while the server keeps serving.
#[test]
fn silent_slowloris_and_idle_connections_are_closed() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require("ffmpeg");
    let mut srv = Server::start("hostile_http_idle", &config());
    let mut normal = start_normal(&srv);
    let w = begin(&srv, &normal);
    let limit = HEADER_TIMEOUT + secs(3);

    let started = Instant::now();
    let mut conns = Conns::new();
    for i in 0..500 {
        conns.push(connect(srv.http));
        if i % 50 == 0 {
            conns.scan();
        }
    }
    let silent = conns.socks.len();
    for i in 0..500 {
        let mut s = connect(srv.http);
        let head = format!("GET /live/n.live.flv?i={i} HTTP/1.1\r\nHost: x\r\nX-Slow: ");
        s.write_all(head.as_bytes()).unwrap();
        conns.push(s);
        if i % 50 == 0 {
            conns.scan();
        }
    }
    let slowloris = silent..conns.socks.len();
    for i in 0..100 {
        let mut s = connect(srv.http);
        s.set_read_timeout(Some(secs(5))).unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !String::from_utf8_lossy(&got).contains("\r\n\r\nok") {
            let n = s.read(&mut buf).expect("keep-alive response");
            assert!(n > 0, "keep-alive connection closed before its response");
            got.extend_from_slice(&buf[..n]);
        }
        // Idle from here.
        conns.push(s);
        if i % 20 == 0 {
            conns.scan();
        }
    }
    eprintln!(
        "opened {} connections in {:?}",
        conns.socks.len(),
        started.elapsed()
    );
    // Served meanwhile.
    assert_eq!(srv.get("/healthz").status, 200, "served during the attack");
    let mut last_trickle = Instant::now();
    let last = conns.wait_all_closed(
        limit,
        "silent, slowloris and idle keep-alive connections",
        |socks, closed| {
            if last_trickle.elapsed() >= Duration::from_millis(500) {
                last_trickle = Instant::now();
                for i in slowloris.clone() {
                    if closed[i].is_none() {
                        let _ = socks[i].write(b"a");
                    }
                }
            }
        },
    );
    assert!(
        last >= HEADER_TIMEOUT - Duration::from_millis(500),
        "closed before the header timeout: {last:?}"
    );
    drop(conns);
    end(&mut srv, &mut normal, w, "silent/slowloris/idle", 48);
}

/// Reads a response head (or the close) from `s`: the status, or `None` when the
/// server closed without answering.
fn response_status(s: &mut TcpStream) -> Option<u16> {
    s.set_read_timeout(Some(secs(5))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                if got.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
        }
    }
    let text = String::from_utf8_lossy(&got);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|t| t.get(..3))
        .and_then(|c| c.parse().ok())
}

/// A WebSocket-FLV upgrade of the normal stream; returns the socket after the 101.
fn ws_upgrade(addr: SocketAddr) -> TcpStream {
    let mut s = connect(addr);
    s.set_read_timeout(Some(secs(5))).unwrap();
    let req = format!(
        "GET /live/n.live.flv HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {WS_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut buf).expect("upgrade response");
        assert!(n > 0, "closed during the upgrade");
        got.push(buf[0]);
    }
    let head = String::from_utf8_lossy(&got);
    assert!(head.starts_with("HTTP/1.1 101"), "upgrade refused: {head}");
    s
}

/// 50 requests with a 64 KiB URL, 50 with 1 MiB of headers, 50 WebSocket-FLV
/// viewers sending garbage frames and 50 whose first frame claims 2^63 - 1 bytes
/// (and 2^63, which RFC 6455 forbids): each answered 414/431 or closed, all closed
/// within 8 s of the first, nothing buffered (RSS bound). Then 50 API calls whose
/// bodies trickle: closed within the API's 10 s body deadline + 4 s.
#[test]
fn oversized_requests_and_websocket_garbage_are_refused() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require("ffmpeg");
    let mut srv = Server::start("hostile_http_big", &config());
    let mut normal = start_normal(&srv);
    let w = begin(&srv, &normal);

    // 64 KiB URLs.
    let long_url = format!(
        "GET /live/{}.live.flv HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let mut statuses = Vec::new();
    let t = Instant::now();
    let mut conns: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut s = connect(srv.http);
            s.set_write_timeout(Some(secs(5))).unwrap();
            let _ = s.write_all(long_url.as_bytes());
            s
        })
        .collect();
    for s in &mut conns {
        statuses.push(response_status(s));
    }
    eprintln!("64 KiB URL: statuses {:?}", &statuses[..3]);
    for st in &statuses {
        assert!(
            matches!(st, None | Some(414) | Some(431)),
            "64 KiB URL answered {st:?}"
        );
    }
    to_conns(conns, t).wait_all_closed(secs(8), "64 KiB URL", |_, _| {});

    // 1 MiB of headers, sent by a thread per connection (the server stops reading).
    let mut headers = String::from("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    let mut i = 0;
    while headers.len() < 1 << 20 {
        headers.push_str(&format!("X-Pad-{i}: {}\r\n", "b".repeat(1000)));
        i += 1;
    }
    headers.push_str("\r\n");
    let headers = std::sync::Arc::new(headers);
    let t = Instant::now();
    let mut conns = Vec::new();
    let mut writers = Vec::new();
    for _ in 0..50 {
        let s = connect(srv.http);
        let mut wr = s.try_clone().unwrap();
        let h = headers.clone();
        writers.push(std::thread::spawn(move || {
            wr.set_write_timeout(Some(secs(5))).unwrap();
            let _ = wr.write_all(h.as_bytes());
        }));
        conns.push(s);
    }
    let statuses: Vec<_> = conns.iter_mut().map(response_status).collect();
    eprintln!("1 MiB headers: statuses {:?}", &statuses[..3]);
    for st in &statuses {
        assert!(
            matches!(st, None | Some(431)),
            "1 MiB of headers answered {st:?}"
        );
    }
    to_conns(conns, t).wait_all_closed(secs(8), "1 MiB of headers", |_, _| {});
    for wr in writers {
        wr.join().unwrap();
    }

    // WebSocket garbage: random bytes after the upgrade.
    let mut rng = Rng::new(0xbad_f00d);
    let t = Instant::now();
    let conns: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut s = ws_upgrade(srv.http);
            let mut garbage = rng.bytes(4096);
            // RSV1 set without an extension: the first frame is always a protocol
            // error (random bytes alone could stop inside a frame that looks valid).
            garbage[0] |= 0x40;
            let _ = s.write_all(&garbage);
            s
        })
        .collect();
    to_conns(conns, t).wait_all_closed(secs(8), "WebSocket garbage", |_, _| {});

    // A masked binary frame claiming 2^63 - 1 bytes (and 2^63), then a trickle.
    let t = Instant::now();
    let conns: Vec<TcpStream> = (0..50)
        .map(|i| {
            let mut s = ws_upgrade(srv.http);
            let len: u64 = if i % 2 == 0 { (1 << 63) - 1 } else { 1 << 63 };
            let mut frame = vec![0x82, 0x80 | 127];
            frame.extend_from_slice(&len.to_be_bytes());
            frame.extend_from_slice(&[1, 2, 3, 4]);
            frame.extend_from_slice(&[0u8; 100]);
            let _ = s.write_all(&frame);
            s
        })
        .collect();
    to_conns(conns, t).wait_all_closed(
        secs(8),
        "WebSocket frame of 2^63 bytes",
        |socks, closed| {
            for (i, s) in socks.iter_mut().enumerate() {
                if closed[i].is_none() {
                    let _ = s.write(&[0u8; 10]);
                }
            }
        },
    );
    // API request bodies trickled a byte at a time: the API reads a body within
    // 10 s (api::BODY_TIMEOUT), then answers and the connection closes.
    let t = Instant::now();
    let req = format!(
        "POST /index/api/getServerConfig?secret={SECRET} HTTP/1.1\r\nHost: x\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n"
    );
    let conns: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut s = connect(srv.http);
            s.write_all(req.as_bytes()).unwrap();
            s
        })
        .collect();
    let mut last_trickle = Instant::now();
    to_conns(conns, t).wait_all_closed(secs(14), "trickled API bodies", |socks, closed| {
        if last_trickle.elapsed() >= Duration::from_millis(300) {
            last_trickle = Instant::now();
            for (i, s) in socks.iter_mut().enumerate() {
                if closed[i].is_none() {
                    let _ = s.write(b"a");
                }
            }
        }
    });
    srv.wait_for_log(&["API call refused: body not received"], secs(2));

    // Each WS-FLV viewer was closed for what it sent, not as a slow reader.
    let log = srv.log();
    let ws_closed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("live HTTP viewer closed") && l.contains("ws-flv"))
        .collect();
    assert!(
        ws_closed.len() >= 100,
        "{} WS-FLV close lines",
        ws_closed.len()
    );
    assert!(
        ws_closed.iter().all(|l| l.contains("read error")),
        "a WS-FLV viewer closed for another reason than what it sent: {:?}",
        ws_closed.iter().find(|l| !l.contains("read error"))
    );
    sleep(secs(2));
    end(
        &mut srv,
        &mut normal,
        w,
        "oversized requests and WebSocket garbage",
        48,
    );
}

/// A viewer socket whose receive buffer is tiny (set before connecting, so the TCP
/// window stays small) and which is never read.
fn stalled_viewer(addr: SocketAddr, request: &str) -> TcpStream {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
    s.set_recv_buffer_size(4096).unwrap();
    s.connect_timeout(&addr.into(), secs(5)).unwrap();
    let mut s: TcpStream = s.into();
    s.write_all(request.as_bytes()).unwrap();
    s
}

/// 10 HTTP-FLV, 10 HTTP-TS and 10 WS-FLV viewers that stop reading: each closed
/// within the slow-player timeout + 8 s (the time to fill the socket buffers
/// counts), with the close line naming it, and gone from getAllSession.
#[test]
fn viewers_that_stop_reading_are_closed() {
    const PER_KIND: usize = 10;
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require("ffmpeg");
    let mut srv = Server::start("hostile_http_stall", &config());
    let mut normal = start_normal(&srv);
    let w = begin(&srv, &normal);
    let sessions = || {
        let v = api(&srv, "getAllSession", &format!("secret={SECRET}"));
        v["data"].as_array().map(Vec::len).unwrap_or(0)
    };
    // The stalled viewers play a stream sent at 20 times its rate (~2 MB/s): a
    // write blocks only once the kernel's socket buffers are full (several MiB on
    // loopback), which would take a minute at the normal stream's 100 KB/s.
    let src = src_flv();
    let fast_url = srv.url("fast");
    let _fast = Proc::spawn(
        "fast-publisher",
        "ffmpeg",
        &[
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-readrate",
            "20",
            "-stream_loop",
            "-1",
            "-i",
            src.to_str().unwrap(),
            "-c",
            "copy",
            "-f",
            "flv",
            &fast_url,
        ],
        &srv.dir.path,
    );
    srv.wait_for_log(&["publish started", "live/fast"], secs(15));
    let before = sessions();

    let t = Instant::now();
    let mut conns = Vec::new();
    for _ in 0..PER_KIND {
        conns.push(stalled_viewer(
            srv.http,
            "GET /live/fast.live.flv HTTP/1.1\r\nHost: x\r\n\r\n",
        ));
        conns.push(stalled_viewer(
            srv.http,
            "GET /live/fast.live.ts HTTP/1.1\r\nHost: x\r\n\r\n",
        ));
        conns.push(stalled_viewer(
            srv.http,
            &format!(
                "GET /live/fast.live.flv HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: {WS_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ),
        ));
    }
    sleep(secs(1));
    assert!(
        sessions() >= before + 3 * PER_KIND,
        "the stalled viewers are listed while they last"
    );
    // Not read: checked for the close without reading (a read would make progress).
    let limit = SLOW_PLAYER_TIMEOUT + secs(8);
    loop {
        let log = srv.log();
        let closed_lines = log
            .lines()
            .filter(|l| l.contains("live HTTP viewer closed") && l.contains("peer stopped reading"))
            .count();
        if closed_lines >= 3 * PER_KIND {
            eprintln!(
                "stalled viewers: {closed_lines} closed after {:?}",
                t.elapsed()
            );
            break;
        }
        assert!(
            t.elapsed() < limit,
            "{closed_lines} of {} stalled viewers closed within {limit:?}",
            3 * PER_KIND
        );
        sleep(Duration::from_millis(200));
    }
    let took = t.elapsed();
    assert!(
        took >= SLOW_PLAYER_TIMEOUT,
        "closed before the slow-player timeout: {took:?}"
    );
    for proto in ["http-flv", "http-ts", "ws-flv"] {
        let n = srv
            .log()
            .lines()
            .filter(|l| {
                l.contains("live HTTP viewer closed")
                    && l.contains("peer stopped reading")
                    && l.contains(&format!("protocol=\"{proto}\""))
            })
            .count();
        assert_eq!(n, PER_KIND, "{proto}: {n} stalled viewers closed");
    }
    // Their sockets are closed too (reading now drains what was buffered, then EOF).
    to_conns(conns, Instant::now()).wait_all_closed(secs(5), "stalled viewers' sockets", |_, _| {});
    assert_eq!(
        sessions(),
        before,
        "the stalled viewers are gone from getAllSession"
    );
    end(&mut srv, &mut normal, w, "viewers that stop reading", 48);
}
