//! The ZLMediaKit-compatible HTTP API against the real binary, with a real ffmpeg
//! publisher: what an operator's script sees (codes, messages, stream facts).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const SECRET: &str = "t0p-secret";

/// One API call: GET with a query, or POST with a form or JSON body.
fn call(
    server: &Server,
    method: &str,
    name: &str,
    query: &str,
    body: Option<(&str, &str)>,
) -> Value {
    let path = if query.is_empty() {
        format!("/index/api/{name}")
    } else {
        format!("/index/api/{name}?{query}")
    };
    let mut s = TcpStream::connect_timeout(&server.http, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
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

fn get(server: &Server, name: &str, query: &str) -> Value {
    call(server, "GET", name, query, None)
}

fn code(v: &Value) -> i64 {
    v["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("no code in {v}"))
}

fn wait_online(server: &Server, stream: &str) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(15) {
        let v = get(
            server,
            "isMediaOnline",
            &format!("secret={SECRET}&schema=rtmp&app=live&stream={stream}"),
        );
        if v["online"] == Value::Bool(true) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("stream {stream} never came online");
}

#[test]
fn auth_params_and_media_list() {
    let server = Server::start("api_auth", &format!("[api]\nsecret = \"{SECRET}\"\n"));
    // Auth failures: -100 and nothing happens.
    let v = get(&server, "getMediaList", "");
    assert_eq!(code(&v), -100, "{v}");
    assert!(v["msg"].as_str().unwrap().contains("login"), "{v}");
    assert_eq!(code(&get(&server, "getMediaList", "secret=wrong")), -100);

    let mut publisher = publish_file(&server, "pub", "cam1", &[]);
    wait_online(&server, "cam1");
    // Let a couple of GOPs through so frame rate and GOP are known.
    std::thread::sleep(Duration::from_millis(4500));

    // GET, POST form and POST JSON all work and agree.
    let by_get = get(
        &server,
        "getMediaList",
        &format!("secret={SECRET}&schema=rtmp"),
    );
    let by_form = call(
        &server,
        "POST",
        "getMediaList",
        "",
        Some((
            "application/x-www-form-urlencoded",
            &format!("secret={SECRET}&schema=rtmp&app=live"),
        )),
    );
    let by_json = call(
        &server,
        "POST",
        "getMediaList",
        "",
        Some((
            "application/json",
            &format!("{{\"secret\":\"{SECRET}\",\"schema\":\"rtmp\",\"stream\":\"cam1\"}}"),
        )),
    );
    for v in [&by_get, &by_form, &by_json] {
        assert_eq!(code(v), 0, "{v}");
        let data = v["data"].as_array().unwrap();
        assert_eq!(data.len(), 1, "one rtmp entry: {v}");
        let m = &data[0];
        assert_eq!(
            (m["app"].as_str(), m["stream"].as_str(), m["vhost"].as_str()),
            (Some("live"), Some("cam1"), Some("__defaultVhost__"))
        );
        assert_eq!(m["schema"], "rtmp");
        assert_eq!(m["originType"], 1);
        assert_eq!(m["originTypeStr"], "rtmp_push");
        assert_eq!(m["originSock"]["peer_ip"], "127.0.0.1");
        let tracks = m["tracks"].as_array().unwrap();
        let video = tracks
            .iter()
            .find(|t| t["codec_type"] == 0)
            .expect("video track");
        assert_eq!(
            (
                video["codec_id_name"].as_str(),
                video["width"].as_u64(),
                video["height"].as_u64()
            ),
            (Some("H264"), Some(640), Some(360))
        );
        let fps = video["fps"].as_f64().unwrap();
        assert!((fps - 25.0).abs() < 1.0, "fps {fps}");
        assert_eq!(video["gop_interval_ms"].as_u64(), Some(2000), "{video}");
        let audio = tracks
            .iter()
            .find(|t| t["codec_type"] == 1)
            .expect("audio track");
        assert_eq!(
            (
                audio["codec_id_name"].as_str(),
                audio["sample_rate"].as_u64()
            ),
            (Some("mpeg4-generic"), Some(44100))
        );
        assert!(m["totalBytes"].as_u64().unwrap() > 100_000);
    }
    // Every schema is listed without a filter.
    let all = get(&server, "getMediaList", &format!("secret={SECRET}"));
    let schemas: Vec<_> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["schema"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(schemas, ["rtmp", "hls", "ts"]);

    // Invalid arguments name the parameter.
    let v = get(
        &server,
        "isMediaOnline",
        &format!("secret={SECRET}&schema=rtmp&app=live"),
    );
    assert_eq!(code(&v), -300);
    assert!(v["msg"].as_str().unwrap().contains("stream"), "{v}");
    let v = get(
        &server,
        "close_stream",
        &format!("secret={SECRET}&schema=rtmp&app=live&stream=nope"),
    );
    assert_eq!(code(&v), -500, "{v}");
    let v = get(
        &server,
        "isMediaOnline",
        &format!("secret={SECRET}&schema=rtmp&app=live&stream=nope"),
    );
    assert_eq!((code(&v), v["online"].as_bool()), (0, Some(false)));

    // The other read-only endpoints.
    let v = get(&server, "getApiList", &format!("secret={SECRET}"));
    let list: Vec<_> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_owned())
        .collect();
    for name in [
        "/index/api/getMediaList",
        "/index/api/close_streams",
        "/index/api/version",
    ] {
        assert!(list.iter().any(|l| l == name), "{name} in {list:?}");
    }
    assert_eq!(
        code(&get(&server, "version", &format!("secret={SECRET}"))),
        0
    );
    let v = get(&server, "getServerConfig", &format!("secret={SECRET}"));
    let cfg = &v["data"][0];
    assert_eq!(
        cfg["rtmp.listen"].as_str(),
        Some(server.rtmp.to_string().as_str())
    );
    assert_eq!(cfg["api.secret"], "", "the secret is never handed out");
    let v = get(&server, "getStatistic", &format!("secret={SECRET}"));
    assert_eq!(
        (
            v["data"]["MediaSource"].as_u64(),
            v["data"]["Publishers"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(
        code(&get(&server, "noSuchApi", &format!("secret={SECRET}"))),
        -500
    );

    // A wrong secret changes nothing.
    let v = get(&server, "close_streams", "secret=wrong&force=1");
    assert_eq!(code(&v), -100);
    assert!(publisher.is_running());

    // close_streams: with a viewer and no force, the stream is hit but not closed.
    let out = TestDir::new("api_viewer");
    let mut viewer = record(&server, "viewer", "cam1", &out.join("v.flv"), &[]);
    let t = Instant::now();
    loop {
        let v = get(
            &server,
            "getMediaList",
            &format!("secret={SECRET}&schema=rtmp"),
        );
        if v["data"][0]["readerCount"].as_u64() == Some(1) {
            assert!(v["data"][0]["totalReaderCount"].as_u64().unwrap() >= 1);
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "viewer never counted: {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let v = get(
        &server,
        "close_streams",
        &format!("secret={SECRET}&app=live"),
    );
    assert_eq!(
        (v["count_hit"].as_u64(), v["count_closed"].as_u64()),
        (Some(1), Some(0)),
        "{v}"
    );
    // With force: the publisher is disconnected and the stream is gone.
    let v = call(
        &server,
        "POST",
        "close_streams",
        "",
        Some((
            "application/json",
            &format!(
                "{{\"secret\":\"{SECRET}\",\"app\":\"live\",\"stream\":\"cam1\",\"force\":1}}"
            ),
        )),
    );
    assert_eq!(
        (v["count_hit"].as_u64(), v["count_closed"].as_u64()),
        (Some(1), Some(1)),
        "{v}"
    );
    let status = publisher.wait(Duration::from_secs(10));
    assert!(!status.success(), "ffmpeg publisher is cut off");
    viewer.wait(Duration::from_secs(10));
    let v = get(&server, "getMediaList", &format!("secret={SECRET}"));
    assert_eq!(v["data"].as_array().unwrap().len(), 0, "{v}");
    server.wait_for_log(&["stream closed by the operator"], Duration::from_secs(5));
}

#[test]
fn generated_secret_and_ip_range() {
    // No secret configured: one is generated and logged once; it works.
    let server = Server::start("api_gen", "");
    let log = server.wait_for_log(&["api.secret is not configured"], Duration::from_secs(5));
    let line = log
        .lines()
        .find(|l| l.contains("api.secret is not configured"))
        .unwrap()
        .to_owned();
    let secret = line
        .split("secret=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .trim_matches('"')
        .to_owned();
    assert_eq!(secret.len(), 32, "{line}");
    assert_eq!(log.matches("api.secret is not configured").count(), 1);
    assert_eq!(
        code(&get(&server, "getMediaList", &format!("secret={secret}"))),
        0
    );
    assert_eq!(code(&get(&server, "getMediaList", "secret=")), -100);

    // A caller outside allow_ip_range is refused even with the right secret.
    let server = Server::start(
        "api_ip",
        &format!("[api]\nsecret = \"{SECRET}\"\nallow_ip_range = \"10.0.0.0-10.255.255.255\"\n"),
    );
    let v = get(&server, "getMediaList", &format!("secret={SECRET}"));
    assert_eq!(code(&v), -100, "{v}");
    assert!(v["msg"].as_str().unwrap().contains("allow_ip_range"), "{v}");
}

/// Sums the values of a metric (all label sets matching `labels`) in Prometheus text.
fn metric(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn metrics_count_what_happened() {
    use std::io::Write;
    let server = Server::start("metrics", &format!("[api]\nsecret = \"{SECRET}\"\n"));
    let mut publisher = publish_file(&server, "pub", "m", &[]);
    wait_online(&server, "m");
    // One RTMP player for a while, and one bad peer.
    let out = TestDir::new("metrics_out");
    let mut player = record(&server, "player", "m", &out.join("p.flv"), &["-t", "4"]);
    let mut bad = raw_connect(&server);
    bad.write_all(&[0x47; 2000]).unwrap();
    wait_closed(&mut bad, Duration::from_secs(5)).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let text = server.get("/metrics").text();
    assert_eq!(metric(&text, "ferrocast_streams", &[]), 1.0, "{text}");
    assert_eq!(metric(&text, "ferrocast_publishers", &[]), 1.0, "{text}");
    assert_eq!(
        metric(&text, "ferrocast_players", &["protocol=\"rtmp\""]),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "ferrocast_sessions_closed_total",
            &["reason=\"bad_input\""]
        ),
        1.0,
        "{text}"
    );
    assert!(
        metric(&text, "ferrocast_stream_bytes_in_total", &["live/m"]) > 100_000.0,
        "{text}"
    );
    assert!(
        metric(&text, "ferrocast_stream_bytes_out_total", &["live/m"]) > 100_000.0,
        "{text}"
    );
    player.wait(Duration::from_secs(20));
    publisher.wait(Duration::from_secs(20));
    let text = server.get("/metrics").text();
    assert_eq!(
        metric(&text, "ferrocast_players", &["protocol=\"rtmp\""]),
        0.0,
        "{text}"
    );
    // 10 s at a 2 s GOP: at least 4 complete segments.
    assert!(
        metric(&text, "ferrocast_hls_segments_total", &[]) >= 4.0,
        "{text}"
    );
    assert!(
        metric(
            &text,
            "ferrocast_sessions_closed_total",
            &["reason=\"peer_closed\""]
        ) >= 1.0,
        "{text}"
    );
}
