//! Who may publish and who may play (issue 11): ZLMediaKit-style gate hooks answered
//! by a receiver this test runs, signed URLs, publisher takeover, on every protocol,
//! with real clients (ffmpeg, ffprobe, rtmpdump, raw HTTP).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use serde_json::{json, Value};

const SECRET: &str = "access-e2e-api-secret";
const SIGN_KEY: &str = "0123456789abcdef-signing-key";

/// What the receiver answers: (delay, JSON body) for a hook path and its body.
type Answer = dyn Fn(&str, &Value) -> (Duration, Value) + Send + Sync;

/// A webhook receiver: records every POST (path, JSON body) and answers with
/// `answer`. One thread per connection, `Connection: close`.
struct Receiver {
    addr: SocketAddr,
    calls: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Receiver {
    fn start(
        answer: impl Fn(&str, &Value) -> (Duration, Value) + Send + Sync + 'static,
    ) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let answer: Arc<Answer> = Arc::new(answer);
        let c = calls.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (c, answer) = (c.clone(), answer.clone());
                std::thread::spawn(move || serve_one(conn, &c, &*answer));
            }
        });
        Receiver { addr, calls }
    }

    fn url(&self, hook: &str) -> String {
        format!("http://{}/index/hook/{hook}", self.addr)
    }

    fn calls(&self, hook: &str) -> Vec<Value> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p.ends_with(hook))
            .map(|(_, b)| b.clone())
            .collect()
    }
}

fn serve_one(conn: TcpStream, calls: &Mutex<Vec<(String, Value)>>, answer: &Answer) {
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut rd = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if rd.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if rd.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; len];
    if rd.read_exact(&mut body).is_err() {
        return;
    }
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    calls.lock().unwrap().push((path.clone(), json.clone()));
    let (delay, reply) = answer(&path, &json);
    std::thread::sleep(delay);
    let text = reply.to_string();
    let mut conn = conn;
    let _ = write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
}

fn ok() -> (Duration, Value) {
    (Duration::ZERO, json!({"code": 0, "msg": "success"}))
}

fn refuse(msg: &str) -> (Duration, Value) {
    (Duration::ZERO, json!({"code": -1, "msg": msg}))
}

fn config(extra: &str) -> String {
    format!(
        "[api]\nsecret = \"{SECRET}\"\n[general]\nmax_stream_wait_ms = 3000\ncontinue_push_ms = 1000\n{extra}"
    )
}

/// ffmpeg run to its end (or killed after `timeout`): (success, stderr).
fn ffmpeg_run(args: &[&str], timeout: Duration, dir: &std::path::Path) -> (bool, String) {
    let mut all = vec!["-nostdin", "-hide_banner", "-loglevel", "info"];
    all.extend_from_slice(args);
    let mut p = Proc::spawn("ffmpeg", "ffmpeg", &all, dir);
    let status = p.wait_for(timeout);
    if status.is_none() {
        p.kill();
    }
    (status.is_some_and(|s| s.success()), p.output())
}

/// A few seconds of the stream as an RTMP player records it: (ok, stderr, frames).
fn rtmp_play(server: &Server, name: &str, label: &str) -> (bool, String, u64) {
    let out = server.path(&format!("{label}.flv"));
    let url = server.url(name);
    let (ok, err) = ffmpeg_run(
        &[
            "-i",
            &url,
            "-t",
            "2",
            "-c",
            "copy",
            "-f",
            "flv",
            "-y",
            out.to_str().unwrap(),
        ],
        Duration::from_secs(20),
        &server.dir.path,
    );
    let frames = if ok { packet_counts(&out).video } else { 0 };
    (ok, err, frames)
}

/// A few seconds of an HTTP URL as ffmpeg records it: (ok, stderr, video frames).
fn http_play(server: &Server, path: &str, label: &str, format: &str) -> (bool, String, u64) {
    let out = server.path(&format!("{label}.{format}"));
    let url = server.http_url(path);
    let (ok, err) = ffmpeg_run(
        &[
            "-i",
            &url,
            "-t",
            "2",
            "-c",
            "copy",
            "-f",
            format,
            "-y",
            out.to_str().unwrap(),
        ],
        Duration::from_secs(25),
        &server.dir.path,
    );
    let frames = if ok {
        stream_packet_counts(&out, Some(format)).video
    } else {
        0
    };
    (ok, err, frames)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `exp=..&sig=..` for `action` on live/{stream}, computed with python3's hmac
/// (independently of the server's code).
fn signed_query(action: &str, stream: &str, exp: u64, key: &str) -> String {
    let msg = format!("{action}/__defaultVhost__/live/{stream}/{exp}");
    let sig = run_ok(
        "python3",
        &[
            "-c",
            "import hmac,hashlib,sys; print(hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), hashlib.sha256).hexdigest())",
            key,
            &msg,
        ],
    );
    format!("exp={exp}&sig={}", sig.trim())
}

fn play_refused_everywhere(server: &Server, name: &str, query: &str, why: &str) {
    let q = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    for path in [
        format!("/live/{name}.live.flv{q}"),
        format!("/live/{name}.live.ts{q}"),
        format!("/live/{name}/hls.m3u8{q}"),
        format!("/live/{name}/master.m3u8{q}"),
    ] {
        let r = server.get(&path);
        assert_eq!(
            r.status,
            403,
            "{why}: {path} answered {} {}",
            r.status,
            r.text()
        );
    }
    // WS-FLV: the upgrade is refused.
    let r = http_request(
        server.http,
        "GET",
        &format!("/live/{name}.live.flv{q}"),
        &[
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", WS_KEY),
            ("Sec-WebSocket-Version", "13"),
        ],
    );
    assert_eq!(r.status, 403, "{why}: WS-FLV upgrade answered {}", r.status);
    let (ok, err, _) = rtmp_play(server, &format!("{name}{q}"), "refused");
    assert!(!ok, "{why}: RTMP play succeeded");
    assert!(
        err.contains("Unauthorized") || err.contains("unauthorized") || err.contains("no ticket"),
        "{why}: ffmpeg names the refusal: {err}"
    );
}

/// on_publish allows and refuses (ffmpeg names the refusal; the receiver's msg
/// reaches it), and its `enable_hls: false` answer is honoured.
#[test]
fn on_publish_gates_publishers_and_sets_options() {
    let rx = Receiver::start(|path, body| {
        if path.ends_with("on_publish") {
            match body["stream"].as_str() {
                Some("good") => (Duration::ZERO, json!({"code": 0, "enable_hls": false})),
                _ => refuse("stream key banned"),
            }
        } else {
            ok()
        }
    });
    let server = Server::start(
        "access_on_publish",
        &config(&format!(
            "[hook]\nenable = true\non_publish = \"{}\"\n",
            rx.url("on_publish")
        )),
    );
    let mut bad = publish_file(&server, "bad", "bad?token=abc", &[]);
    let status = bad.wait(Duration::from_secs(15));
    assert!(!status.success(), "a refused publish must fail");
    let out = bad.output();
    assert!(
        out.contains("stream key banned"),
        "ffmpeg names the refusal: {out}"
    );
    let log = server.wait_for_log(&["publish refused"], secs(5));
    assert!(log.contains("live/bad"), "{log}");
    // The receiver got ZLMediaKit's fields.
    let calls = rx.calls("on_publish");
    let b = &calls[0];
    for f in [
        "mediaServerId",
        "app",
        "stream",
        "vhost",
        "schema",
        "params",
        "ip",
        "port",
        "id",
        "originType",
        "originTypeStr",
    ] {
        assert!(!b[f].is_null(), "on_publish body lacks {f}: {b}");
    }
    assert_eq!(b["app"], "live");
    assert_eq!(b["stream"], "bad");
    assert_eq!(b["params"], "token=abc");
    assert_eq!(b["schema"], "rtmp");
    assert_eq!(b["ip"], "127.0.0.1");

    let mut good = publish_file(&server, "good", "good", &["-stream_loop", "-1"]);
    wait_online_with(&server, SECRET, "good");
    // FLV plays; HLS is off for this stream (the hook said so).
    let (ok, err, frames) = http_play(&server, "/live/good.live.flv", "good", "flv");
    assert!(
        ok && frames > 10,
        "HTTP-FLV of an allowed publish: {frames} frames {err}"
    );
    std::thread::sleep(Duration::from_secs(3));
    let r = server.get("/live/good/hls.m3u8");
    assert_eq!(r.status, 404, "enable_hls=false: no HLS, got {}", r.text());
    good.kill();
}

/// on_play refuses every protocol (RTMP via ffmpeg and rtmpdump, HTTP-FLV, WS-FLV,
/// HTTP-TS, HLS playlist, master playlist, segments without a token) and allows
/// them all when it answers 0; HLS asks once per viewer session.
#[test]
fn on_play_gates_every_protocol() {
    let rx = Receiver::start(|path, body| {
        if path.ends_with("on_play") {
            if body["params"]
                .as_str()
                .unwrap_or("")
                .contains("ticket=good")
            {
                ok()
            } else {
                refuse("no ticket")
            }
        } else {
            ok()
        }
    });
    let server = Server::start(
        "access_on_play",
        &config(&format!(
            "[hook]\nenable = true\non_play = \"{}\"\n",
            rx.url("on_play")
        )),
    );
    let mut publisher = publish_file(&server, "pub", "cam", &["-stream_loop", "-1"]);
    wait_online_with(&server, SECRET, "cam");
    wait_until("HLS of cam", secs(15), || {
        (server.get("/live/cam/hls.m3u8?ticket=good").status == 200).then_some(())
    });
    play_refused_everywhere(&server, "cam", "", "no ticket");
    play_refused_everywhere(&server, "cam", "ticket=bad", "wrong ticket");
    // rtmpdump is refused too (it reports the error status and exits non-zero).
    require("rtmpdump");
    let out = std::process::Command::new("rtmpdump")
        .args([
            "-z",
            "-r",
            &server.url("cam"),
            "-o",
            "/dev/null",
            "-m",
            "10",
        ])
        .output()
        .unwrap();
    // librtmp logs an onStatus code it does not know (ours) at debug level (`-z`).
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "rtmpdump must fail");
    assert!(
        text.contains("NetStream.Play.Unauthorized"),
        "rtmpdump sees the refusal: {}",
        &text[text.len().saturating_sub(3000)..]
    );
    // Allowed everywhere with a good ticket.
    let (ok1, err, frames) = rtmp_play(&server, "cam?ticket=good", "rtmp-ok");
    assert!(ok1 && frames > 10, "RTMP allowed: {frames} frames {err}");
    let (ok2, err, frames) = http_play(&server, "/live/cam.live.flv?ticket=good", "flv-ok", "flv");
    assert!(ok2 && frames > 10, "HTTP-FLV allowed: {frames} {err}");
    let (ok3, err, frames) = http_play(&server, "/live/cam.live.ts?ticket=good", "ts-ok", "mpegts");
    assert!(ok3 && frames > 10, "HTTP-TS allowed: {frames} {err}");
    let before = rx.calls("on_play").len();
    let (ok4, err, frames) = http_play(
        &server,
        "/live/cam/hls.m3u8?ticket=good",
        "hls-ok",
        "mpegts",
    );
    assert!(ok4 && frames > 10, "HLS allowed: {frames} {err}");
    let hls_calls: Vec<Value> = rx.calls("on_play").into_iter().skip(before).collect();
    assert_eq!(
        hls_calls.len(),
        1,
        "HLS asks on_play once per viewer, not per playlist or segment: {hls_calls:?}"
    );
    assert_eq!(hls_calls[0]["schema"], "hls");
    // The session's segments carry a token; one of another stream is refused.
    let master = server.get("/live/cam/hls.m3u8?ticket=good");
    let media_path = hls_variant("/live/cam", &master);
    let media = server.get(&media_path).text();
    let seg_uri = media
        .lines()
        .find(|l| l.contains(".ts?session="))
        .unwrap_or_else(|| panic!("no tokenized segment in {media}"))
        .to_owned();
    assert_eq!(server.get(&format!("/live/cam/{seg_uri}")).status, 200);
    let (name, token) = seg_uri.split_once("?session=").unwrap();
    assert_eq!(
        server.get(&format!("/live/cam/{name}")).status,
        403,
        "a listed segment without the session token"
    );
    let mut forged = token.to_owned();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    assert_eq!(
        server
            .get(&format!("/live/cam/{name}?session={forged}"))
            .status,
        403,
        "a tampered segment token"
    );
    // A segment token opens segments only: it cannot start (or revive) a session.
    assert_eq!(
        server
            .get(&format!("/live/cam/hls.m3u8?session={token}"))
            .status,
        403,
        "a segment token used as the playlist's session token"
    );
    // The HLS viewer is listed, as a player of the stream, and can be kicked: its
    // token then opens nothing.
    let sessions = api(&server, "getAllSession", &format!("secret={SECRET}"));
    let hls: Vec<Value> = sessions["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["schema"] == "hls")
        .cloned()
        .collect();
    assert!(!hls.is_empty(), "an HLS session is listed: {sessions}");
    for h in &hls {
        assert_eq!(h["role"], "player", "{h}");
        assert_eq!(h["stream"], "cam", "{h}");
        let id = h["id"].as_str().unwrap();
        let v = api(&server, "kick_session", &format!("secret={SECRET}&id={id}"));
        assert_eq!(api_code(&v), 0, "{v}");
    }
    wait_until("the kicked HLS session refused", secs(5), || {
        (server.get(&media_path).status == 403).then_some(())
    });
    publisher.kill();
}

/// A receiver that is down or too slow: refused with on_error = "deny" (the log
/// names the hook and the cause), allowed with "allow".
#[test]
fn failing_hooks_follow_on_error() {
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap(); // closed at once
    let slow = Receiver::start(|_, _| (Duration::from_secs(4), json!({"code": 0})));
    for (label, url, on_error, allowed) in [
        ("down_deny", format!("http://{dead}/on_play"), "deny", false),
        (
            "down_allow",
            format!("http://{dead}/on_play"),
            "allow",
            true,
        ),
        ("slow_deny", slow.url("on_play"), "deny", false),
    ] {
        let server = Server::start(
            &format!("access_{label}"),
            &config(&format!(
                "[hook]\nenable = true\ntimeout_sec = 1\non_error = \"{on_error}\"\non_play = \"{url}\"\n"
            )),
        );
        let mut publisher = publish_file(&server, "pub", "cam", &["-stream_loop", "-1"]);
        wait_online_with(&server, SECRET, "cam");
        let t = Instant::now();
        let r = http_request(server.http, "HEAD", "/live/cam.live.flv", &[]);
        if allowed {
            assert_eq!(r.status, 200, "{label}");
        } else {
            assert_eq!(r.status, 403, "{label}: {}", r.text());
            assert!(
                t.elapsed() < Duration::from_secs(4),
                "{label}: the timeout bounds the wait"
            );
            let log = server.wait_for_log(&["play refused"], secs(5));
            assert!(
                log.contains("on_play"),
                "{label}: the log names the hook: {log}"
            );
        }
        publisher.kill();
    }
}

/// Signed URLs: valid, expired, tampered, wrong action, wrong stream, on RTMP
/// publish and play, HTTP-FLV, WS-FLV, HTTP-TS, HLS (with segment tokens) and
/// /record.
#[test]
fn signed_urls_on_every_protocol() {
    let server = Server::start(
        "access_signed",
        &config(&format!(
            "[auth]\npublish = \"signed\"\nplay = \"signed\"\nsecret = \"{SIGN_KEY}\"\n[record]\nauto_mp4_apps = [\"live\"]\n"
        )),
    );
    let exp = unix_now() + 600;
    // Publishing: unsigned, expired, tampered, play-signed, other-stream: refused.
    let cases = [
        ("unsigned", String::new()),
        (
            "expired",
            signed_query("publish", "cam", unix_now() - 5, SIGN_KEY),
        ),
        (
            "tampered",
            signed_query("publish", "cam", exp, SIGN_KEY)
                .replace(&format!("exp={exp}"), &format!("exp={}", exp + 1)),
        ),
        ("wrong action", signed_query("play", "cam", exp, SIGN_KEY)),
        (
            "wrong stream",
            signed_query("publish", "other", exp, SIGN_KEY),
        ),
        (
            "wrong key",
            signed_query("publish", "cam", exp, "another-key-0123456789"),
        ),
    ];
    for (why, q) in &cases {
        let name = if q.is_empty() {
            "cam".to_owned()
        } else {
            format!("cam?{q}")
        };
        let mut p = publish_file(&server, "refused", &name, &[]);
        let status = p.wait(Duration::from_secs(15));
        assert!(!status.success(), "{why}: publish must be refused");
        assert!(p.output().contains("nauthorized"), "{why}: {}", p.output());
    }
    let log = server.log();
    assert!(log.contains("expired"), "the log says why: {log}");
    let pq = signed_query("publish", "cam", exp, SIGN_KEY);
    let mut publisher = publish_file(
        &server,
        "pub",
        &format!("cam?{pq}"),
        &["-stream_loop", "-1"],
    );
    wait_online_with(&server, SECRET, "cam");
    wait_until("the HLS playlist", secs(15), || {
        let q = signed_query("play", "cam", unix_now() + 60, SIGN_KEY);
        (server.get(&format!("/live/cam/hls.m3u8?{q}")).status == 200).then_some(())
    });

    // Names are not listed while playing needs a signature.
    assert_eq!(
        server.get("/streams.json").status,
        404,
        "public list while play is signed"
    );
    // Playing: refused without or with a bad signature, on every protocol.
    play_refused_everywhere(&server, "cam", "", "unsigned");
    play_refused_everywhere(
        &server,
        "cam",
        &signed_query("play", "cam", unix_now() - 1, SIGN_KEY),
        "expired",
    );
    play_refused_everywhere(
        &server,
        "cam",
        &signed_query("publish", "cam", exp, SIGN_KEY),
        "wrong action",
    );
    play_refused_everywhere(
        &server,
        "cam",
        &signed_query("play", "other", exp, SIGN_KEY),
        "wrong stream",
    );

    let q = signed_query("play", "cam", exp, SIGN_KEY);
    let (ok1, err, frames) = rtmp_play(&server, &format!("cam?{q}"), "rtmp-signed");
    assert!(ok1 && frames > 10, "signed RTMP play: {frames} {err}");
    let (ok2, err, frames) = http_play(
        &server,
        &format!("/live/cam.live.flv?{q}"),
        "flv-signed",
        "flv",
    );
    assert!(ok2 && frames > 10, "signed HTTP-FLV: {frames} {err}");
    let (ok3, err, frames) = http_play(
        &server,
        &format!("/live/cam.live.ts?{q}"),
        "ts-signed",
        "mpegts",
    );
    assert!(ok3 && frames > 10, "signed HTTP-TS: {frames} {err}");
    let (ok4, err, frames) = http_play(
        &server,
        &format!("/live/cam/hls.m3u8?{q}"),
        "hls-signed",
        "mpegts",
    );
    assert!(ok4 && frames > 10, "signed HLS: {frames} {err}");
    let cap = ws_capture(
        server.http,
        &format!("/live/cam.live.flv?{q}"),
        secs(2),
        &server.path("ws.flv"),
    );
    assert!(cap.binary_messages > 10, "signed WS-FLV: {cap:?}");
    // Segments: a bare URL is refused, the session's token works.
    let media_path = hls_variant("/live/cam", &server.get(&format!("/live/cam/hls.m3u8?{q}")));
    let media = server.get(&media_path).text();
    let seg_uri = media
        .lines()
        .find(|l| l.contains(".ts?session="))
        .unwrap()
        .to_owned();
    let bare = seg_uri.split('?').next().unwrap();
    assert_eq!(
        server.get(&format!("/live/cam/{bare}")).status,
        403,
        "bare segment"
    );
    assert_eq!(
        server.get(&format!("/live/cam/{seg_uri}")).status,
        200,
        "session segment"
    );

    // Recordings: the file is refused unsigned and served signed.
    publisher.kill();
    let day = wait_until("an MP4 recording", secs(15), || {
        let v = api(
            &server,
            "getMP4RecordFile",
            &format!("secret={SECRET}&app=live&stream=cam"),
        );
        v["data"]["paths"]
            .as_array()
            .and_then(|p| p.first())
            .and_then(|d| d.as_str())
            .map(str::to_owned)
    });
    let url = wait_until("a finished file", secs(15), || {
        let v = api(
            &server,
            "getMP4RecordFile",
            &format!("secret={SECRET}&app=live&stream=cam&period={day}"),
        );
        v["data"]["urls"]
            .as_array()
            .and_then(|u| u.first())
            .and_then(|u| u.as_str())
            .map(str::to_owned)
    });
    let path = url
        .split_once("/record/")
        .map(|(_, p)| format!("/record/{p}"))
        .unwrap_or_else(|| panic!("a /record URL: {url}"));
    assert_eq!(server.get(&path).status, 403, "unsigned recording {path}");
    let r = server.get(&format!("{path}?{q}"));
    assert_eq!(r.status, 200, "signed recording {path}");
    assert!(r.body.len() > 1000);
}

/// A publisher that reconnects before the server noticed its old connection died
/// takes the stream over when it proves the right again (a signed URL); players
/// keep going. With open publishing a second publisher is refused.
#[test]
fn proven_publisher_takes_over() {
    let server = Server::start(
        "access_takeover",
        &config(&format!(
            "[auth]\npublish = \"signed\"\nsecret = \"{SIGN_KEY}\"\n"
        )),
    );
    let q = signed_query("publish", "cam", unix_now() + 600, SIGN_KEY);
    let mut first = publish_file(
        &server,
        "first",
        &format!("cam?{q}"),
        &["-stream_loop", "-1"],
    );
    wait_online_with(&server, SECRET, "cam");
    let player_out = server.path("player.flv");
    let mut player = record(&server, "player", "cam", &player_out, &["-t", "8"]);
    std::thread::sleep(Duration::from_secs(2));
    let mut second = publish_file(
        &server,
        "second",
        &format!("cam?{q}"),
        &["-stream_loop", "-1"],
    );
    // The replaced connection is closed: its ffmpeg ends.
    first.wait(Duration::from_secs(10));
    server.wait_for_log(&["taken over by a new publisher"], secs(10));
    assert!(
        second.is_running(),
        "the new publisher goes on: {}",
        second.output()
    );
    player.wait_success(Duration::from_secs(20));
    let c = packet_counts(&player_out);
    assert!(
        c.video > 150,
        "the player kept receiving through the takeover: {c:?}"
    );
    second.kill();

    // Open publishing: no takeover.
    let open = Server::start("access_no_takeover", &config(""));
    let mut a = publish_file(&open, "a", "cam", &["-stream_loop", "-1"]);
    wait_online_with(&open, SECRET, "cam");
    let mut b = publish_file(&open, "b", "cam", &[]);
    assert!(
        !b.wait(Duration::from_secs(15)).success(),
        "second publisher refused"
    );
    assert!(a.is_running(), "the first publisher keeps the stream");
    a.kill();
}

/// on_stream_not_found: the receiver calls addStreamProxy (as ZLMediaKit users do
/// for on-demand pulls) and the waiting player gets the stream.
#[test]
fn stream_not_found_hook_pulls_on_demand() {
    let origin = Server::start("access_nf_origin", &config(""));
    let mut publisher = publish_file(&origin, "pub", "src", &["-stream_loop", "-1"]);
    wait_online_with(&origin, SECRET, "src");
    let edge_http: Arc<Mutex<Option<SocketAddr>>> = Arc::new(Mutex::new(None));
    let src_url = origin.url("src");
    let e = edge_http.clone();
    let rx = Receiver::start(move |path, body| {
        if path.ends_with("on_stream_not_found") && body["stream"] == "wanted" {
            let http = e.lock().unwrap().expect("edge address");
            let q = format!(
                "secret={SECRET}&vhost=__defaultVhost__&app=live&stream=wanted&url={src_url}"
            );
            let mut s = TcpStream::connect(http).unwrap();
            let _ = write!(
                s,
                "GET /index/api/addStreamProxy?{q} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            );
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer);
            assert!(answer.contains("\"code\":0"), "addStreamProxy: {answer}");
        }
        ok()
    });
    let edge = Server::start(
        "access_nf_edge",
        &format!(
            "[api]\nsecret = \"{SECRET}\"\n[general]\nmax_stream_wait_ms = 10000\n[hook]\nenable = true\non_stream_not_found = \"{}\"\n",
            rx.url("on_stream_not_found")
        ),
    );
    *edge_http.lock().unwrap() = Some(edge.http);
    let (ok, err, frames) = rtmp_play(&edge, "wanted", "wanted");
    assert!(
        ok && frames > 10,
        "the waiting player got the pulled stream: {frames} {err}"
    );
    let calls = rx.calls("on_stream_not_found");
    assert!(!calls.is_empty());
    let b = &calls[0];
    for f in [
        "mediaServerId",
        "app",
        "stream",
        "vhost",
        "schema",
        "params",
        "ip",
        "port",
        "id",
    ] {
        assert!(!b[f].is_null(), "on_stream_not_found lacks {f}: {b}");
    }
    // HTTP-FLV of a stream nobody has asks too (and waits).
    let (ok, err, frames) = http_play(&edge, "/live/wanted.live.flv", "wanted-flv", "flv");
    assert!(ok && frames > 10, "{frames} {err}");
    publisher.kill();
}

/// on_stream_none_reader with `close: true` closes a stream watched only over HLS,
/// once its last HLS viewer has left (HLS sessions count as readers), not before.
#[test]
fn none_reader_closes_an_hls_only_stream_after_its_viewer_leaves() {
    let watched = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let w = watched.clone();
    let rx = Receiver::start(move |path, _| {
        if path.ends_with("on_stream_none_reader") {
            let close = w.load(std::sync::atomic::Ordering::SeqCst);
            (Duration::ZERO, json!({"code": 0, "close": close}))
        } else {
            ok()
        }
    });
    let server = Server::start(
        "access_none_reader",
        &format!(
            "[api]\nsecret = \"{SECRET}\"\n[general]\ncontinue_push_ms = 1000\nstream_none_reader_delay_ms = 2000\n[hls]\nsession_timeout_ms = 2000\n[hook]\nenable = true\non_stream_none_reader = \"{}\"\non_flow_report = \"{}\"\n",
            rx.url("on_stream_none_reader"),
            rx.url("on_flow_report")
        ),
    );
    let mut publisher = publish_file(&server, "pub", "h", &["-stream_loop", "-1"]);
    wait_online_with(&server, SECRET, "h");
    let master = wait_http_ok(&server, "/live/h/hls.m3u8", secs(15));
    let media = hls_variant("/live/h", &master);
    watched.store(true, std::sync::atomic::Ordering::SeqCst);
    // An HLS viewer for 8 s: the stream stays, and it counts as a reader.
    let until = Instant::now() + Duration::from_secs(8);
    let mut readers = 0;
    while Instant::now() < until {
        assert_eq!(server.get(&media).status, 200);
        let v = api(
            &server,
            "getMediaList",
            &format!("secret={SECRET}&schema=rtmp&app=live&stream=h"),
        );
        readers = readers.max(v["data"][0]["readerCount"].as_i64().unwrap_or(0));
        std::thread::sleep(Duration::from_millis(700));
    }
    assert!(readers >= 1, "the HLS viewer counted in readerCount");
    assert!(publisher.is_running(), "closed while an HLS viewer watched");
    let left = Instant::now();
    // Viewer gone: session timeout (2 s) + none-reader delay (2 s), then closed.
    publisher.wait(Duration::from_secs(15));
    let took = left.elapsed();
    assert!(took >= Duration::from_secs(3), "closed too early: {took:?}");
    let v = api(
        &server,
        "isMediaOnline",
        &format!("secret={SECRET}&schema=rtmp&app=live&stream=h"),
    );
    assert_eq!(v["online"], false, "{v}");
    let calls = rx.calls("on_stream_none_reader");
    let b = calls.last().unwrap();
    for f in ["mediaServerId", "app", "stream", "vhost", "schema"] {
        assert!(!b[f].is_null(), "on_stream_none_reader lacks {f}: {b}");
    }
    assert_eq!(b["stream"], "h");
    // The HLS viewer was reported when its session ended: a player, over HLS, with
    // the bytes of the segments it fetched (here: none, it read playlists only).
    let flows = rx.calls("on_flow_report");
    let hls = flows
        .iter()
        .find(|b| b["schema"] == "hls")
        .unwrap_or_else(|| panic!("no HLS flow report in {flows:?}"));
    assert_eq!(hls["player"], true, "{hls}");
    assert_eq!(hls["stream"], "h", "{hls}");
    assert!(hls["duration"].as_u64().unwrap_or(0) >= 7, "{hls}");
}
