//! The ZLMediaKit-compatible HTTP API against the real binary, with a real ffmpeg
//! publisher: what an operator's script sees (codes, messages, stream facts).

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const SECRET: &str = "t0p-secret";

fn wait_online(server: &Server, stream: &str) {
    wait_online_with(server, SECRET, stream);
}

#[test]
fn auth_params_and_media_list() {
    let server = Server::start("api_auth", &format!("[api]\nsecret = \"{SECRET}\"\n"));
    // Auth failures: -100 and nothing happens.
    let v = api(&server, "getMediaList", "");
    assert_eq!(api_code(&v), -100, "{v}");
    assert!(v["msg"].as_str().unwrap().contains("login"), "{v}");
    assert_eq!(
        api_code(&api(&server, "getMediaList", "secret=wrong")),
        -100
    );

    let mut publisher = publish_file(&server, "pub", "cam1", &[]);
    wait_online(&server, "cam1");
    // Let a couple of GOPs through so frame rate and GOP are known.
    std::thread::sleep(Duration::from_millis(4500));

    // GET, POST form and POST JSON all work and agree.
    let by_get = api(
        &server,
        "getMediaList",
        &format!("secret={SECRET}&schema=rtmp"),
    );
    let by_form = api_call(
        &server,
        "POST",
        "getMediaList",
        "",
        Some((
            "application/x-www-form-urlencoded",
            &format!("secret={SECRET}&schema=rtmp&app=live"),
        )),
    );
    let by_json = api_call(
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
        assert_eq!(api_code(v), 0, "{v}");
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
    let all = api(&server, "getMediaList", &format!("secret={SECRET}"));
    let schemas: Vec<_> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["schema"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(schemas, ["rtmp", "hls", "ts"]);

    // Invalid arguments name the parameter.
    let v = api(
        &server,
        "isMediaOnline",
        &format!("secret={SECRET}&schema=rtmp&app=live"),
    );
    assert_eq!(api_code(&v), -300);
    assert!(v["msg"].as_str().unwrap().contains("stream"), "{v}");
    let v = api(
        &server,
        "close_stream",
        &format!("secret={SECRET}&schema=rtmp&app=live&stream=nope"),
    );
    assert_eq!(api_code(&v), -500, "{v}");
    let v = api(
        &server,
        "isMediaOnline",
        &format!("secret={SECRET}&schema=rtmp&app=live&stream=nope"),
    );
    assert_eq!((api_code(&v), v["online"].as_bool()), (0, Some(false)));

    // The other read-only endpoints.
    let v = api(&server, "getApiList", &format!("secret={SECRET}"));
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
        api_code(&api(&server, "version", &format!("secret={SECRET}"))),
        0
    );
    let v = api(&server, "getServerConfig", &format!("secret={SECRET}"));
    let cfg = &v["data"][0];
    assert_eq!(
        cfg["rtmp.listen"].as_str(),
        Some(server.rtmp.to_string().as_str())
    );
    assert_eq!(cfg["api.secret"], "", "the secret is never handed out");
    let v = api(&server, "getStatistic", &format!("secret={SECRET}"));
    assert_eq!(
        (
            v["data"]["MediaSource"].as_u64(),
            v["data"]["Publishers"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(
        api_code(&api(&server, "noSuchApi", &format!("secret={SECRET}"))),
        -500
    );

    // A wrong secret changes nothing.
    let v = api(&server, "close_streams", "secret=wrong&force=1");
    assert_eq!(api_code(&v), -100);
    assert!(publisher.is_running());

    // close_streams: with a viewer and no force, the stream is hit but not closed.
    let out = TestDir::new("api_viewer");
    let mut viewer = record(&server, "viewer", "cam1", &out.join("v.flv"), &[]);
    let t = Instant::now();
    loop {
        let v = api(
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
    let v = api(
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
    let v = api_call(
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
    let v = api(&server, "getMediaList", &format!("secret={SECRET}"));
    assert_eq!(v["data"].as_array().unwrap().len(), 0, "{v}");
    server.wait_for_log(&["stream closed by the operator"], Duration::from_secs(5));
}

#[test]
fn generated_secret_and_ip_range() {
    use std::os::unix::fs::PermissionsExt;
    // No secret configured: one is generated into {data_dir}/api_secret (mode 0600);
    // the log names the file, never the value; it works as secret= and as a Bearer token.
    let mut server = Server::start("api_gen", "");
    let log = server.wait_for_log(&["api.secret is not configured"], Duration::from_secs(5));
    let file = server.dir.join("data").join("api_secret");
    let secret = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    assert_eq!(secret.len(), 32, "{secret:?}");
    assert!(secret.chars().all(|c| c.is_ascii_hexdigit()), "{secret:?}");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "api_secret mode {mode:o}");
    assert!(
        !log.contains(&secret),
        "the secret's value is in the log:\n{log}"
    );
    assert!(log.contains("api_secret"), "the log names the file:\n{log}");
    assert_eq!(log.matches("api.secret is not configured").count(), 1);
    assert_eq!(
        api_code(&api(&server, "getMediaList", &format!("secret={secret}"))),
        0
    );
    assert_eq!(api_code(&api(&server, "getMediaList", "secret=")), -100);
    // Right length, wrong value: refused like any other wrong secret.
    let wrong: String = secret
        .chars()
        .map(|c| if c == '0' { '1' } else { '0' })
        .collect();
    assert_eq!(
        api_code(&api(&server, "getMediaList", &format!("secret={wrong}"))),
        -100
    );
    let bearer = format!("Bearer {secret}");
    let v = api_request(
        &server,
        "GET",
        "getMediaList",
        "",
        None,
        &[("Authorization", &bearer)],
    );
    assert_eq!(api_code(&v), 0, "{v}");
    let bad = format!("Bearer {wrong}");
    let v = api_request(
        &server,
        "GET",
        "getMediaList",
        "",
        None,
        &[("Authorization", &bad)],
    );
    assert_eq!(api_code(&v), -100, "{v}");
    // A restart keeps the secret: scripts go on working.
    server.restart();
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), secret);
    assert_eq!(
        api_code(&api(&server, "getMediaList", &format!("secret={secret}"))),
        0
    );
    // setServerConfig: a new secret replaces it; emptying api.secret is refused.
    let v = api(
        &server,
        "setServerConfig",
        &format!("secret={secret}&api.secret=operator-chosen-1234"),
    );
    assert_eq!(api_code(&v), 0, "{v}");
    assert_eq!(
        api_code(&api(&server, "getMediaList", "secret=operator-chosen-1234")),
        0
    );
    assert_eq!(
        api_code(&api(&server, "getMediaList", &format!("secret={secret}"))),
        -100
    );
    let v = api(
        &server,
        "setServerConfig",
        "secret=operator-chosen-1234&api.secret=",
    );
    assert_eq!(api_code(&v), -300, "{v}");
    assert_eq!(api_code(&api(&server, "getMediaList", "secret=")), -100);
    assert_eq!(
        api_code(&api(&server, "getMediaList", "secret=operator-chosen-1234")),
        0
    );

    // A caller outside allow_ip_range is refused even with the right secret.
    let server = Server::start(
        "api_ip",
        &format!("[api]\nsecret = \"{SECRET}\"\nallow_ip_range = \"10.0.0.0-10.255.255.255\"\n"),
    );
    let v = api(&server, "getMediaList", &format!("secret={SECRET}"));
    assert_eq!(api_code(&v), -100, "{v}");
    assert!(v["msg"].as_str().unwrap().contains("allow_ip_range"), "{v}");
}

/// Sums the values of a metric (all label sets matching `labels`) in Prometheus text.
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

#[test]
fn sessions_kick_config_snap_load_and_openapi() {
    let mut server = Server::start(
        "api_more",
        &format!("threads = 2\n[api]\nsecret = \"{SECRET}\"\n[record]\nmax_second = 3600\n"),
    );
    let _publisher = publish_file(&server, "pub", "s1", &["-stream_loop", "-1"]);
    wait_online(&server, "s1");
    let out = server.path("p.flv");
    let mut player = record(&server, "player", "s1", &out, &[]);

    // Sessions: the player is listed for its stream, both sessions overall.
    let t = Instant::now();
    let players = loop {
        let v = api(
            &server,
            "getMediaPlayerList",
            &format!("secret={SECRET}&schema=rtmp&app=live&stream=s1"),
        );
        assert_eq!(api_code(&v), 0, "{v}");
        if v["data"].as_array().is_some_and(|d| !d.is_empty()) {
            break v;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "player never listed: {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let p = &players["data"][0];
    assert_eq!(players["data"].as_array().unwrap().len(), 1, "{players}");
    assert_eq!(p["peer_ip"], "127.0.0.1");
    assert_eq!(p["local_port"], server.rtmp.port());
    assert_eq!(p["role"], "player");
    let player_id = p["id"].as_str().unwrap().to_string();
    let all = api(
        &server,
        "getAllSession",
        &format!("secret={SECRET}&local_port={}", server.rtmp.port()),
    );
    let roles: Vec<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["role"].as_str().unwrap())
        .collect();
    assert!(
        roles.contains(&"publisher") && roles.contains(&"player"),
        "{all}"
    );
    let none = api(
        &server,
        "getAllSession",
        &format!("secret={SECRET}&peer_ip=10.9.9.9"),
    );
    assert_eq!(none["data"].as_array().unwrap().len(), 0, "{none}");

    // kick_session: bad ids, then the player is disconnected and nothing else is.
    let v = api(&server, "kick_session", &format!("secret={SECRET}"));
    assert!(
        api_code(&v) == -300 && v["msg"].as_str().unwrap().contains("id"),
        "{v}"
    );
    let v = api(&server, "kick_session", &format!("secret={SECRET}&id=abc"));
    assert_eq!(api_code(&v), -300, "{v}");
    let v = api(
        &server,
        "kick_session",
        &format!("secret={SECRET}&id=987654321"),
    );
    assert_eq!(api_code(&v), -500, "{v}");
    let v = api(
        &server,
        "kick_session",
        &format!("secret=wrong&id={player_id}"),
    );
    assert_eq!(api_code(&v), -100, "{v}");
    assert!(player.is_running(), "a refused kick changes nothing");
    let v = api(
        &server,
        "kick_session",
        &format!("secret={SECRET}&id={player_id}"),
    );
    assert_eq!(api_code(&v), 0, "{v}");
    player.wait(Duration::from_secs(10));
    server.wait_for_log(&["kicked by the API"], Duration::from_secs(5));
    let v = api(
        &server,
        "getMediaPlayerList",
        &format!("secret={SECRET}&schema=rtmp&app=live&stream=s1"),
    );
    assert_eq!(v["data"].as_array().unwrap().len(), 0, "{v}");
    let v = api(
        &server,
        "isMediaOnline",
        &format!("secret={SECRET}&schema=rtmp&app=live&stream=s1"),
    );
    assert_eq!(v["online"], true, "the publisher goes on: {v}");

    // An HTTP-FLV viewer is a session too, and can be kicked the same way.
    let flv_url = format!("http://{}/live/s1.live.flv", server.http);
    let flv_out = server.path("h.flv");
    let mut flv_player = Proc::spawn(
        "flv-player",
        "ffmpeg",
        &[
            "-nostdin",
            "-v",
            "error",
            "-i",
            &flv_url,
            "-c",
            "copy",
            "-f",
            "flv",
            "-y",
            flv_out.to_str().unwrap(),
        ],
        &server.dir.path,
    );
    let t = Instant::now();
    let flv_id = loop {
        let v = api(
            &server,
            "getMediaPlayerList",
            &format!("secret={SECRET}&app=live&stream=s1"),
        );
        let found = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["schema"] == "http-flv")
            .cloned();
        if let Some(s) = found {
            assert_eq!(s["local_port"], server.http.port(), "{s}");
            break s["id"].as_str().unwrap().to_string();
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "HTTP-FLV viewer never listed: {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let v = api(
        &server,
        "kick_session",
        &format!("secret={SECRET}&id={flv_id}"),
    );
    assert_eq!(api_code(&v), 0, "{v}");
    flv_player.wait(Duration::from_secs(10));
    assert!(
        stream_packet_counts(&flv_out, None).video > 0,
        "it played before the kick"
    );

    // setServerConfig: applied, shown, written back; bad keys and values change nothing.
    let cfg_value = |server: &Server, key: &str| -> String {
        let v = api(server, "getServerConfig", &format!("secret={SECRET}"));
        v["data"][0][key].as_str().unwrap_or_default().to_string()
    };
    let v = api(
        &server,
        "setServerConfig",
        &format!("secret={SECRET}&record.max_second=120"),
    );
    assert_eq!(
        (api_code(&v), v["changed"].as_u64(), &v["saved"]),
        (0, Some(1), &Value::Bool(true)),
        "{v}"
    );
    assert_eq!(cfg_value(&server, "record.max_second"), "120");
    let file = std::fs::read_to_string(server.dir.join("c.toml")).unwrap();
    assert!(
        file.contains("max_second = 120") && file.contains(SECRET),
        "{file}"
    );
    for (bad, named) in [
        ("record.max_secnd=5", "record.max_secnd"),
        ("record.max_second=abc", "record.max_second"),
        ("hls.segment_ms=100", "hls.segment_ms"),
        ("record.max_second=60&rtmp.listen=nowhere", "rtmp.listen"),
    ] {
        let v = api(
            &server,
            "setServerConfig",
            &format!("secret={SECRET}&{bad}"),
        );
        assert_eq!(api_code(&v), -300, "{bad}: {v}");
        assert!(v["msg"].as_str().unwrap().contains(named), "{bad}: {v}");
    }
    let v = api(
        &server,
        "setServerConfig",
        "secret=wrong&record.max_second=60",
    );
    assert_eq!(api_code(&v), -100, "{v}");
    assert_eq!(
        cfg_value(&server, "record.max_second"),
        "120",
        "nothing changed"
    );
    assert_eq!(cfg_value(&server, "hls.segment_ms"), "2000");
    assert!(std::fs::read_to_string(server.dir.join("c.toml"))
        .unwrap()
        .contains("max_second = 120"));

    // getThreadsLoad: one entry per worker thread.
    std::thread::sleep(Duration::from_millis(1200));
    let v = api(&server, "getThreadsLoad", &format!("secret={SECRET}"));
    let loads = v["data"].as_array().unwrap();
    assert_eq!(loads.len(), 2, "{v}");
    for l in loads {
        assert!(
            l["load"].as_u64().unwrap() <= 100 && l["delay"].is_u64(),
            "{v}"
        );
    }

    // getSnap: a JPEG of the live stream (ffmpeg), then the cached one.
    let url = format!(
        "/index/api/getSnap?secret={SECRET}&url=rtmp://{}/live/s1&timeout_sec=15&expire_sec=60",
        server.rtmp
    );
    let snap = http_request(server.http, "GET", &url, &[]);
    assert_eq!(snap.status, 200);
    assert_eq!(
        snap.header("content-type"),
        Some("image/jpeg"),
        "{}",
        snap.text()
    );
    assert_eq!(&snap.body[..2], &[0xFF, 0xD8]);
    let jpeg = server.path("snap.jpg");
    std::fs::write(&jpeg, &snap.body).unwrap();
    let s = probe_streams(jpeg.to_str().unwrap());
    assert_eq!((s[0].width, s[0].height), (Some(640), Some(360)), "{s:?}");
    let t = Instant::now();
    let again = http_request(server.http, "GET", &url, &[]);
    assert_eq!(
        again.body, snap.body,
        "served from the cache within expire_sec"
    );
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "cached: {:?}",
        t.elapsed()
    );
    let v = api(
        &server,
        "getSnap",
        &format!("secret={SECRET}&url=file:///etc/passwd"),
    );
    assert_eq!(api_code(&v), -1, "{v}");
    let v = api(&server, "getSnap", &format!("secret={SECRET}"));
    assert_eq!(api_code(&v), -300, "{v}");

    // The OpenAPI document names every endpoint getApiList lists.
    let doc = server.get("/index/api/openapi.json");
    assert_eq!(doc.status, 200);
    let doc: Value = serde_json::from_slice(&doc.body).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    let list = api(&server, "getApiList", &format!("secret={SECRET}"));
    for name in list["data"].as_array().unwrap() {
        let name = name.as_str().unwrap();
        assert!(
            doc["paths"].get(name).is_some(),
            "{name} missing from openapi.json"
        );
    }
    server.terminate(Duration::from_secs(6));
}

/// Sends a raw request head (and `body`), then reads the answer; returns it and how
/// long it took.
fn raw_api(server: &Server, head: &str, body: &[u8]) -> (String, Duration) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(server.http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let t = std::time::Instant::now();
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut buf = [0u8; 4096];
    let mut out = Vec::new();
    // The answer's head and JSON body arrive together; read until the JSON closes.
    while !out.ends_with(b"}") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), t.elapsed())
}

/// The address is checked before any body is read; bodies are small and must
/// arrive in time.
#[test]
fn api_body_is_read_only_from_allowed_callers_bounded_and_in_time() {
    // A caller outside the allow-list announces a big body and sends none: it is
    // answered at once (the old extractor waited for the body first).
    let closed = Server::start(
        "api_body_closed",
        &format!("[api]\nsecret = \"{SECRET}\"\nallow_ip_range = \"10.0.0.0-10.255.255.255\"\n"),
    );
    let (answer, took) = raw_api(
        &closed,
        "POST /index/api/getMediaList HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n",
        b"",
    );
    assert!(answer.contains("\"code\":-100"), "{answer}");
    assert!(took < Duration::from_secs(3), "answered after {took:?}");

    let open = Server::start("api_body_open", &format!("[api]\nsecret = \"{SECRET}\"\n"));
    // Too large: refused, naming the limit.
    let big = format!(
        "{{\"secret\":\"{SECRET}\",\"pad\":\"{}\"}}",
        "x".repeat(100_000)
    );
    let (answer, _) = raw_api(
        &open,
        &format!(
            "POST /index/api/getMediaList HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            big.len()
        ),
        big.as_bytes(),
    );
    assert!(answer.contains("\"code\":-300"), "{answer}");
    assert!(answer.contains("too large"), "{answer}");
    // Announced but not sent: answered when the body timeout (10 s) runs out.
    let (answer, took) = raw_api(
        &open,
        "POST /index/api/getMediaList HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n",
        b"{\"secret\":",
    );
    assert!(answer.contains("\"code\":-300"), "{answer}");
    assert!(answer.contains("not received within 10 s"), "{answer}");
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(20),
        "answered after {took:?}"
    );
    // A normal JSON body still works.
    let ok = format!("{{\"secret\":\"{SECRET}\"}}");
    let (answer, _) = raw_api(
        &open,
        &format!(
            "POST /index/api/getMediaList HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            ok.len()
        ),
        ok.as_bytes(),
    );
    assert!(answer.contains("\"code\":0"), "{answer}");
}

/// `/metrics` names every stream: it follows the API's allow-list, and with
/// `api.metrics_token` it wants that bearer token; both change live with
/// setServerConfig.
#[test]
fn metrics_follow_the_api_allow_list_and_token() {
    let closed = Server::start(
        "metrics_closed",
        &format!("[api]\nsecret = \"{SECRET}\"\nallow_ip_range = \"10.0.0.0-10.255.255.255\"\n"),
    );
    let r = closed.get("/metrics");
    assert_eq!(r.status, 403, "{}", r.text());

    let server = Server::start(
        "metrics_token",
        &format!("[api]\nsecret = \"{SECRET}\"\nmetrics_token = \"scrape-me-123\"\n"),
    );
    assert_eq!(server.get("/metrics").status, 401);
    let wrong = http_request(
        server.http,
        "GET",
        "/metrics",
        &[("Authorization", "Bearer scrape-me-124")],
    );
    assert_eq!(wrong.status, 401);
    let right = http_request(
        server.http,
        "GET",
        "/metrics",
        &[("Authorization", "Bearer scrape-me-123")],
    );
    assert_eq!(right.status, 200);
    assert!(
        right.text().contains("ferrocast_streams"),
        "{}",
        right.text()
    );
    // Changed live: a new token replaces the old one at once.
    let v = api(
        &server,
        "setServerConfig",
        &format!("secret={SECRET}&api.metrics_token=scrape-me-456"),
    );
    assert_eq!(api_code(&v), 0, "{v}");
    let old = http_request(
        server.http,
        "GET",
        "/metrics",
        &[("Authorization", "Bearer scrape-me-123")],
    );
    assert_eq!(old.status, 401);
    let new = http_request(
        server.http,
        "GET",
        "/metrics",
        &[("Authorization", "Bearer scrape-me-456")],
    );
    assert_eq!(new.status, 200);
    // getServerConfig never shows it.
    let v = api(&server, "getServerConfig", &format!("secret={SECRET}"));
    assert_eq!(v["data"][0]["api.metrics_token"], "", "{v}");
}

/// The API secret is no way to make the server run another program: such keys are
/// refused unless the file allows it, and the write-back keeps the operator's file
/// (symlink, mode) and never replaces one it cannot read.
#[test]
fn set_server_config_guards_programs_and_the_file() {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::start("config_guard", &format!("[api]\nsecret = \"{SECRET}\"\n"));
    let set = |server: &Server, kv: &str| {
        api(server, "setServerConfig", &format!("secret={SECRET}&{kv}"))
    };
    // The operator keeps the real file elsewhere, 0640, behind a symlink.
    let link = server.dir.join("c.toml");
    let real = server.dir.join("real.toml");
    std::fs::rename(&link, &real).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::symlink(&real, &link).unwrap();

    let v = set(&server, "transcode.ffmpeg=/bin/sh");
    assert_eq!(api_code(&v), -300, "{v}");
    assert!(
        v["msg"]
            .as_str()
            .unwrap()
            .contains("api.allow_unsafe_config"),
        "{v}"
    );
    for key in [
        "data_dir=/tmp",
        "transcode.extra_args=-f,lavfi",
        "proxy.tls_ca_file=/tmp/ca.pem",
    ] {
        assert_eq!(api_code(&set(&server, key)), -300, "{key}");
    }
    let v = set(&server, "api.allow_unsafe_config=true");
    assert_eq!(api_code(&v), -300, "{v}");
    assert!(
        v["msg"]
            .as_str()
            .unwrap()
            .contains("only be set in the config file"),
        "{v}"
    );
    assert!(!std::fs::read_to_string(&real).unwrap().contains("/bin/sh"));

    let v = set(&server, "record.max_second=77");
    assert_eq!((api_code(&v), &v["saved"]), (0, &Value::Bool(true)), "{v}");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "still a link"
    );
    let mode = std::fs::metadata(&real).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "mode kept");
    let text = std::fs::read_to_string(&real).unwrap();
    assert!(
        text.contains("max_second = 77") && text.contains(SECRET),
        "{text}"
    );

    // The file went away: applied in memory, not saved, and no file made of defaults.
    std::fs::remove_file(&real).unwrap();
    let v = set(&server, "record.max_second=78");
    assert_eq!((api_code(&v), &v["saved"]), (0, &Value::Bool(false)), "{v}");
    assert!(v["msg"].as_str().unwrap().contains("not saved"), "{v}");
    assert!(!real.exists(), "a new file was written");

    // An operator who wants it says so in the file.
    let open = Server::start(
        "config_unsafe",
        &format!("[api]\nsecret = \"{SECRET}\"\nallow_unsafe_config = true\n"),
    );
    let v = set(&open, "transcode.ffmpeg=/usr/bin/ffmpeg");
    assert_eq!(api_code(&v), 0, "{v}");
}

/// Credentials inside URLs (a pull source's password, a push target's password and
/// stream key) appear neither in getServerConfig nor in the log.
#[test]
fn get_server_config_and_logs_hide_url_credentials() {
    let server = Server::start(
        "config_redact",
        &format!(
            "[api]\nsecret = \"{SECRET}\"\n[proxy]\n\
             pull = [{{ app = \"live\", stream = \"cam\", url = \"rtsp://viewer:pull-pass-1@127.0.0.1:9/cam\", on_demand = true }}]\n\
             push = [{{ app = \"live\", stream = \"match\", url = \"rtmp://pusher:push-pass-2@127.0.0.1:9/live2/stream-key-3\" }}]\n"
        ),
    );
    server.wait_for_log(&["push proxy added"], Duration::from_secs(5));
    let v = api(&server, "getServerConfig", &format!("secret={SECRET}"));
    assert_eq!(api_code(&v), 0, "{v}");
    let text = v.to_string();
    assert!(text.contains("127.0.0.1:9/live2/***"), "{text}");
    assert!(text.contains("viewer:***@"), "{text}");
    let log = server.log();
    for secret in ["pull-pass-1", "push-pass-2", "stream-key-3"] {
        assert!(
            !text.contains(secret),
            "{secret} in getServerConfig: {text}"
        );
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}

/// addFFmpegSource and getSnap run ffmpeg: only on network URLs (no local files,
/// `file:`, `concat:` or pipes, unless the config file allows it), and getSnap at
/// most four at once.
#[test]
fn ffmpeg_jobs_take_network_urls_only_and_are_capped() {
    let server = Server::start("ffmpeg_guard", &format!("[api]\nsecret = \"{SECRET}\"\n"));
    let dst = format!("rtmp://{}/live/relay", server.rtmp);
    for src in [
        "/etc/passwd",
        "file:/etc/passwd",
        "concat:/etc/passwd",
        "pipe:0",
        "udp://0.0.0.0:5000?listen=1",
    ] {
        let v = api(
            &server,
            "addFFmpegSource",
            &format!("secret={SECRET}&src_url={src}&dst_url={dst}&timeout_ms=0"),
        );
        assert_eq!(api_code(&v), -300, "{src}: {v}");
        assert!(
            v["msg"].as_str().unwrap().contains("allow_unsafe_config"),
            "{v}"
        );
    }
    let v = api(
        &server,
        "getSnap",
        &format!("secret={SECRET}&url=file:/etc/passwd"),
    );
    assert_eq!(api_code(&v), -1, "{v}");
    let v = api(&server, "listFFmpegSource", &format!("secret={SECRET}"));
    assert_eq!(
        v["data"].as_array().unwrap().len(),
        0,
        "nothing started: {v}"
    );

    // A silent RTMP "server": ffmpeg waits on it until its timeout, so snapshots of
    // six different URLs pile up: four run, the others are refused at once.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    {
        let held = held.clone();
        std::thread::spawn(move || {
            for c in silent.incoming().flatten() {
                held.lock().unwrap().push(c);
            }
        });
    }
    let answers: Vec<Value> = std::thread::scope(|s| {
        let calls: Vec<_> = (0..6)
            .map(|i| {
                let server = &server;
                s.spawn(move || {
                    std::thread::sleep(Duration::from_millis(150 * i));
                    api(
                        server,
                        "getSnap",
                        &format!(
                            "secret={SECRET}&url=rtmp://127.0.0.1:{port}/live/s{i}&timeout_sec=4"
                        ),
                    )
                })
            })
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let refused = answers
        .iter()
        .filter(|v| {
            v["msg"]
                .as_str()
                .unwrap_or("")
                .contains("too many snapshots")
        })
        .count();
    assert_eq!(refused, 2, "{answers:?}");
    // The file case above: the server's files stay unread, but an operator may allow it.
    let open = Server::start(
        "ffmpeg_unsafe",
        &format!("[api]\nsecret = \"{SECRET}\"\nallow_unsafe_config = true\n"),
    );
    let dst = format!("rtmp://{}/live/relay", open.rtmp);
    let v = api(
        &open,
        "addFFmpegSource",
        &format!("secret={SECRET}&src_url=/nonexistent.mp4&dst_url={dst}&timeout_ms=0"),
    );
    assert_eq!(api_code(&v), 0, "{v}");
}

/// The player page's list: no secret, the live streams with their codecs, and
/// nothing a viewer must not see (the publish URL's token, the origin).
#[test]
fn public_stream_list_needs_no_secret_and_hides_urls() {
    let server = Server::start("public_list", &format!("[api]\nsecret = \"{SECRET}\"\n"));
    let mut publisher = publish_file_to(
        &server.dir.path,
        "pub",
        &format!("{}?token=publish-token-9", server.url("pl")),
    );
    wait_online(&server, "pl");
    let r = server.get("/streams.json");
    assert_eq!(r.status, 200);
    let text = r.text();
    let v: Value = serde_json::from_str(&text).unwrap();
    let entries = v["data"].as_array().unwrap();
    assert!(!entries.is_empty(), "{text}");
    for e in entries {
        assert_eq!(
            (e["app"].as_str(), e["stream"].as_str()),
            (Some("live"), Some("pl")),
            "{e}"
        );
        let codecs: Vec<_> = e["tracks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["codec_id_name"].as_str().unwrap().to_owned())
            .collect();
        assert!(codecs.contains(&"H264".to_owned()), "{e}");
        for hidden in ["params", "originUrl", "originSock", "originType"] {
            assert!(e.get(hidden).is_none(), "{hidden} in {e}");
        }
    }
    assert!(!text.contains("publish-token-9"), "{text}");
    publisher.kill();

    let closed = Server::start(
        "public_list_off",
        &format!("[api]\nsecret = \"{SECRET}\"\n[http]\npublic_stream_list = false\n"),
    );
    assert_eq!(closed.get("/streams.json").status, 404);
}

/// A stream's series leave /metrics with the stream.
#[test]
fn per_stream_metrics_end_with_the_stream() {
    let server = Server::start(
        "metrics_gone",
        &format!("[api]\nsecret = \"{SECRET}\"\n[general]\ncontinue_push_ms = 300\n"),
    );
    let mut publisher = publish_file(&server, "pub", "gone", &[]);
    wait_online(&server, "gone");
    let label = "stream=\"__defaultVhost__/live/gone\"";
    let text = server.get("/metrics").text();
    assert!(
        metric(&text, "ferrocast_stream_bytes_in_total", &[label]) > 0.0,
        "{text}"
    );
    assert_eq!(
        metric(&text, "ferrocast_stream_players", &[label]),
        0.0,
        "{text}"
    );
    publisher.kill();
    wait_until("the stream to end", Duration::from_secs(10), || {
        let v = api(&server, "getMediaList", &format!("secret={SECRET}"));
        v["data"].as_array().unwrap().is_empty().then_some(())
    });
    let text = server.get("/metrics").text();
    assert!(!text.contains("live/gone"), "{text}");
    assert!(text.contains("ferrocast_streams 0"), "{text}");
}
