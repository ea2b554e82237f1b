//! Webhook events, end to end: the real server posts to a small HTTP receiver run by
//! the test, real ffmpeg publishes, and every body is checked field by field against
//! ZLMediaKit's names (server/WebHook.cpp): on_server_started, on_stream_changed
//! (regist true, then false after continue_push), on_stream_none_reader (close:true
//! closes an unwatched stream, close:false keeps one), on_record_mp4 after
//! startRecord/stopRecord, on_server_keepalive, on_server_exited on SIGTERM.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use serde_json::{json, Value};

const SECRET: &str = "hook-secret";

/// Every POST the receiver got: (path without the leading '/', JSON body).
type Posts = Arc<Mutex<Vec<(String, Value)>>>;

/// A hook receiver: records each POST, answers `{"code":0}`, and for
/// on_stream_none_reader `close: true` only for the stream named "idle".
fn receiver() -> (SocketAddr, Posts) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let posts: Posts = Arc::default();
    let p = posts.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let p = p.clone();
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut got = Vec::new();
                let mut buf = [0u8; 8192];
                let (head, body) = loop {
                    let n = s.read(&mut buf).unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                    let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&got[..end]).to_string();
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if got.len() >= end + 4 + len {
                        break (head, got[end + 4..end + 4 + len].to_vec());
                    }
                };
                let first = head.lines().next().unwrap_or("").to_string();
                let path = first
                    .split(' ')
                    .nth(1)
                    .unwrap_or("")
                    .trim_start_matches('/');
                assert!(first.starts_with("POST "), "hooks are POSTs: {first}");
                assert!(
                    head.to_ascii_lowercase()
                        .contains("content-type: application/json"),
                    "{head}"
                );
                let v: Value = serde_json::from_slice(&body).expect("hook body is JSON");
                let answer = if path == "on_stream_none_reader" {
                    json!({"code": 0, "close": v["stream"] == "idle"})
                } else {
                    json!({"code": 0, "msg": "success"})
                };
                p.lock().unwrap().push((path.to_string(), v));
                let a = answer.to_string();
                let _ = s.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{a}",
                        a.len()
                    )
                    .as_bytes(),
                );
            });
        }
    });
    (addr, posts)
}

/// Waits for a post to `hook` whose body satisfies `pred`; returns that body.
fn wait_post(posts: &Posts, hook: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
    let t = Instant::now();
    loop {
        if let Some(v) = posts
            .lock()
            .unwrap()
            .iter()
            .find(|(p, v)| p == hook && pred(v))
            .map(|(_, v)| v.clone())
        {
            return v;
        }
        assert!(
            t.elapsed() < timeout,
            "no {hook} within {timeout:?}; got: {:#?}",
            posts.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The fields ZLMediaKit's `dumpMediaTuple` puts in a body, and mediaServerId.
fn assert_tuple(v: &Value, stream: &str) {
    assert_eq!(v["mediaServerId"], "hook-test-1", "{v}");
    assert_eq!(v["vhost"], "__defaultVhost__", "{v}");
    assert_eq!(v["app"], "live", "{v}");
    assert_eq!(v["stream"], stream, "{v}");
    assert!(v["params"].is_string(), "{v}");
    assert!(v["hook_index"].is_u64(), "{v}");
}

fn online(server: &Server, stream: &str) -> bool {
    let v = api(
        server,
        "isMediaOnline",
        &format!("secret={SECRET}&schema=rtmp&app=live&stream={stream}"),
    );
    v["online"] == Value::Bool(true)
}

#[test]
fn webhook_events_of_a_server_and_its_streams() {
    let (addr, posts) = receiver();
    let url = |h: &str| format!("http://{addr}/{h}");
    let toml = format!(
        r#"
[api]
secret = "{SECRET}"
[general]
continue_push_ms = 500
stream_none_reader_delay_ms = 1000
[hls]
enabled = true
[hook]
enable = true
media_server_id = "hook-test-1"
alive_interval_sec = 1
timeout_sec = 5
on_stream_changed = "{}"
on_stream_none_reader = "{}"
on_record_mp4 = "{}"
on_record_ts = "{}"
on_server_started = "{}"
on_server_keepalive = "{}"
on_server_exited = "{}"
"#,
        url("on_stream_changed"),
        url("on_stream_none_reader"),
        url("on_record_mp4"),
        url("on_record_ts"),
        url("on_server_started"),
        url("on_server_keepalive"),
        url("on_server_exited"),
    );
    let mut server = Server::start("hook_events", &toml);

    // on_server_started: the flat config, every value a string, no secret.
    let v = wait_post(&posts, "on_server_started", secs(5), |_| true);
    assert_eq!(v["mediaServerId"], "hook-test-1");
    assert_eq!(v["hook.media_server_id"], "hook-test-1");
    assert_eq!(v["general.continue_push_ms"], "500");
    assert!(v.get("api.secret").is_none(), "the API secret is sent: {v}");
    assert!(
        !v.to_string().contains(SECRET),
        "the API secret is sent: {v}"
    );
    assert!(
        v.as_object()
            .unwrap()
            .iter()
            .all(|(k, x)| x.is_string() || k == "hook_index"),
        "{v}"
    );

    let mut cam = publish_file(&server, "pub-cam", "cam", &["-stream_loop", "2"]);
    let mut idle = publish_file(&server, "pub-idle", "idle", &[]);
    wait_online_with(&server, SECRET, "cam");

    // on_stream_changed regist=true, once per schema, with getMediaList's fields.
    let mut schemas = Vec::new();
    for schema in ["rtmp", "hls", "ts"] {
        let v = wait_post(&posts, "on_stream_changed", secs(8), |v| {
            v["stream"] == "cam" && v["regist"] == true && v["schema"] == schema
        });
        assert_tuple(&v, "cam");
        assert_eq!(v["originType"], 1, "{v}");
        assert_eq!(v["originTypeStr"], "rtmp_push", "{v}");
        assert!(
            v["originUrl"].as_str().unwrap().contains("/live/cam"),
            "{v}"
        );
        assert_eq!(v["originSock"]["peer_ip"], "127.0.0.1", "{v}");
        let created = v["createStamp"].as_u64().unwrap();
        assert!(created.abs_diff(now_unix()) < 30, "{v}");
        for k in [
            "aliveSecond",
            "bytesSpeed",
            "totalBytes",
            "readerCount",
            "totalReaderCount",
        ] {
            assert!(v[k].is_u64(), "{k}: {v}");
        }
        let names: Vec<&str> = v["tracks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["codec_id_name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["H264", "mpeg4-generic"], "{v}");
        assert_eq!(v["tracks"][0]["width"], 640, "{v}");
        schemas.push(schema);
    }
    assert_eq!(schemas.len(), 3);

    // on_stream_none_reader: asked for both unwatched streams after 1 s; "idle" is
    // closed by its answer (its publisher is disconnected), "cam" stays.
    let v = wait_post(&posts, "on_stream_none_reader", secs(8), |v| {
        v["stream"] == "idle"
    });
    assert_tuple(&v, "idle");
    assert_eq!(v["schema"], "rtmp");
    let v = wait_post(&posts, "on_stream_none_reader", secs(8), |v| {
        v["stream"] == "cam"
    });
    assert_tuple(&v, "cam");
    wait_until("idle closed", secs(5), || {
        (!online(&server, "idle")).then_some(())
    });
    assert!(
        idle.wait_for(secs(5)).is_some(),
        "the publisher of the closed stream is still connected"
    );
    server.wait_for_log(&["on_stream_none_reader said close", "live/idle"], secs(2));
    // ... and it unregisters.
    wait_post(&posts, "on_stream_changed", secs(5), |v| {
        v["stream"] == "idle" && v["regist"] == false
    });
    assert!(online(&server, "cam"), "close:false closed the stream");

    // on_record_mp4 and on_record_ts: the finished files, their sizes and lengths.
    for t in ["0", "1"] {
        let v = api(
            &server,
            "startRecord",
            &format!("secret={SECRET}&vhost=__defaultVhost__&app=live&stream=cam&type={t}"),
        );
        assert_eq!(api_code(&v), 0, "{v}");
    }
    std::thread::sleep(Duration::from_secs(3));
    for t in ["0", "1"] {
        let v = api(
            &server,
            "stopRecord",
            &format!("secret={SECRET}&vhost=__defaultVhost__&app=live&stream=cam&type={t}"),
        );
        assert_eq!(api_code(&v), 0, "{v}");
    }
    let v = wait_post(&posts, "on_record_ts", secs(5), |_| true);
    assert_tuple(&v, "cam");
    let ts = std::path::PathBuf::from(v["file_path"].as_str().unwrap());
    assert_eq!(ts.extension().unwrap(), "ts", "{v}");
    let len = std::fs::metadata(&ts)
        .unwrap_or_else(|e| panic!("{}: {e}", ts.display()))
        .len();
    assert_eq!(v["file_size"].as_u64(), Some(len), "{v}");
    assert_eq!(
        v["file_name"],
        ts.file_name().unwrap().to_str().unwrap(),
        "{v}"
    );
    assert!(v["time_len"].as_f64().unwrap() > 0.5, "{v}");
    let url_path = v["url"].as_str().unwrap();
    assert_eq!(
        server.get(&format!("/{url_path}")).body.len() as u64,
        len,
        "{v}"
    );
    // Only segments: the recording's playlist is not a TS file.
    assert!(
        posts
            .lock()
            .unwrap()
            .iter()
            .all(|(p, v)| p != "on_record_ts" || v["file_path"].as_str().unwrap().ends_with(".ts")),
        "on_record_ts of something other than a segment"
    );
    let v = wait_post(&posts, "on_record_mp4", secs(5), |_| true);
    assert_tuple(&v, "cam");
    let path = std::path::PathBuf::from(v["file_path"].as_str().unwrap());
    let meta = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(v["file_size"].as_u64(), Some(meta.len()), "{v}");
    let name = path.file_name().unwrap().to_str().unwrap();
    assert_eq!(v["file_name"], name, "{v}");
    assert!(name.ends_with(".mp4"), "{v}");
    let folder = v["folder"].as_str().unwrap();
    assert!(folder.ends_with("live/cam/"), "{v}");
    assert!(v["file_path"].as_str().unwrap().starts_with(folder), "{v}");
    let url_path = v["url"].as_str().unwrap();
    assert!(
        url_path.starts_with("record/live/cam/") && url_path.ends_with(name),
        "{v}"
    );
    // The URL serves the file.
    let r = server.get(&format!("/{url_path}"));
    assert_eq!(r.status, 200, "GET /{url_path}");
    assert_eq!(r.body.len() as u64, meta.len());
    let time_len = v["time_len"].as_f64().unwrap();
    assert!((1.5..6.0).contains(&time_len), "{v}");
    let start = v["start_time"].as_u64().unwrap();
    assert!(start.abs_diff(now_unix()) < 30, "{v}");

    // on_server_keepalive: every second, counting the live stream.
    let v = wait_post(&posts, "on_server_keepalive", secs(5), |v| {
        v["data"]["MediaSource"].as_u64() >= Some(1)
    });
    assert_eq!(v["mediaServerId"], "hook-test-1");

    // The publisher leaves: after continue_push (0.5 s) the stream unregisters in
    // every schema.
    cam.kill();
    let left = Instant::now();
    for schema in ["rtmp", "hls", "ts"] {
        let v = wait_post(&posts, "on_stream_changed", secs(5), |v| {
            v["stream"] == "cam" && v["regist"] == false && v["schema"] == schema
        });
        assert_tuple(&v, "cam");
    }
    assert!(
        left.elapsed() >= Duration::from_millis(400),
        "unregistered before continue_push"
    );

    // on_server_exited on SIGTERM, and the process is still gone within 5 s.
    let t = Instant::now();
    let status = server.terminate(secs(6)).expect("server did not exit");
    assert!(status.success(), "{status}");
    assert!(t.elapsed() < secs(5), "exit took {:?}", t.elapsed());
    let v = wait_post(&posts, "on_server_exited", secs(1), |_| true);
    assert_eq!(v["mediaServerId"], "hook-test-1");
    // Registration came before unregistration for every stream and schema.
    let all = posts.lock().unwrap().clone();
    for stream in ["cam", "idle"] {
        for schema in ["rtmp", "hls", "ts"] {
            let pos = |regist: bool| {
                all.iter().position(|(p, v)| {
                    p == "on_stream_changed"
                        && v["stream"] == stream
                        && v["schema"] == schema
                        && v["regist"] == regist
                })
            };
            assert!(
                pos(true) < pos(false) && pos(true).is_some(),
                "{stream} {schema}"
            );
        }
    }
}
