//! Pull and push proxies against servers we did not write: nginx with the RTMP module
//! as the remote, a second ferrocast as origin or edge, and ffmpeg/ffprobe as the
//! publishers and players whose view is checked.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const SECRET: &str = "proxy-secret";

fn config(extra: &str) -> String {
    format!("[api]\nsecret = \"{SECRET}\"\n{extra}")
}

fn s(q: &str) -> String {
    format!("secret={SECRET}&{q}")
}

fn msg(v: &Value) -> String {
    v["msg"].as_str().unwrap_or_default().to_string()
}

fn proxy_state(server: &Server, key: &str) -> Value {
    let v = api(server, "getProxyInfo", &s(&format!("key={key}")));
    assert_eq!(api_code(&v), 0, "{v}");
    v["data"]["state"].clone()
}

/// Video packets in a file a player is still writing (0 while it has no header yet).
fn video_packets(path: &Path) -> u64 {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v", "-count_packets"])
        .args(["-show_entries", "stream=nb_read_packets", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("run ffprobe");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn pull_rtmp_from_nginx_and_survive_its_restart() {
    let server = Server::start(
        "proxy_pull_nginx",
        &config("[proxy]\nretry_delay_ms = 500\nretry_max_delay_ms = 2000\ntimeout_ms = 5000\n"),
    );
    let mut nginx = Nginx::start(&server.dir.path, "nginx");
    let mut source = publish_file_to(&server.dir.path, "src", &nginx.url("src"));

    // Bad input first: nothing is added.
    let v = api(
        &server,
        "addStreamProxy",
        &s("app=live&stream=p&url=http://example.com/x.flv"),
    );
    assert_eq!(api_code(&v), -300, "{v}");
    assert!(msg(&v).contains("unsupported URL scheme http://"), "{v}");
    let v = api(&server, "addStreamProxy", &s("app=live&stream=p"));
    assert!(api_code(&v) == -300 && msg(&v).contains("url"), "{v}");
    let v = api(
        &server,
        "addStreamProxy",
        &format!("secret=wrong&app=live&stream=p&url={}", nginx.url("src")),
    );
    assert_eq!(api_code(&v), -100, "{v}");
    assert_eq!(
        api(&server, "listStreamProxy", &s(""))["data"]
            .as_array()
            .unwrap()
            .len(),
        0
    );

    let v = api(
        &server,
        "addStreamProxy",
        &s(&format!(
            "vhost=__defaultVhost__&app=live&stream=p&url={}",
            nginx.url("src")
        )),
    );
    assert_eq!(api_code(&v), 0, "{v}");
    let key = v["data"]["key"].as_str().unwrap().to_string();
    assert_eq!(key, "__defaultVhost__/live/p");
    let again = api(
        &server,
        "addStreamProxy",
        &s(&format!("app=live&stream=p&url={}", nginx.url("src"))),
    );
    assert_eq!(
        (api_code(&again), msg(&again).as_str()),
        (-1, "This stream already exists")
    );

    wait_online_with(&server, SECRET, "p");
    let media = api(&server, "getMediaList", &s("schema=rtmp&app=live&stream=p"));
    let m = &media["data"][0];
    assert_eq!(
        (m["originType"].as_i64(), m["originTypeStr"].as_str()),
        (Some(4), Some("pull")),
        "{media}"
    );
    assert_eq!(m["originUrl"], nginx.url("src"));
    assert_eq!(proxy_state(&server, &key)["status"], "playing");

    // A local player, then the remote dies and comes back on the same port.
    let out = server.path("player.flv");
    let mut player = record(&server, "player", "p", &out, &[]);
    wait_until("the player to get video", Duration::from_secs(15), || {
        (out.exists() && video_packets(&out) > 50).then_some(())
    });
    let port = nginx.port;
    nginx.kill();
    source.kill();
    let failed = wait_until("the proxy to notice", Duration::from_secs(10), || {
        let st = proxy_state(&server, &key);
        (st["total_failures"].as_u64() >= Some(1)).then_some(st)
    });
    assert!(failed["last_error"].as_str().is_some(), "{failed}");
    let before = video_packets(&out);
    nginx = Nginx::start_on(&server.dir.path, "nginx2", port);
    let _source2 = publish_file_to(&server.dir.path, "src2", &nginx.url("src"));
    wait_until("the proxy to play again", Duration::from_secs(20), || {
        (proxy_state(&server, &key)["status"] == "playing").then_some(())
    });
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        player.is_running(),
        "the local player stayed connected through the reconnection"
    );
    let after = video_packets(&out);
    assert!(
        after >= before + 50,
        "player got {before} then {after} video packets"
    );
    let dts = packet_dts(&out);
    let video: Vec<i64> = dts
        .iter()
        .filter(|(k, _)| k == "video")
        .map(|(_, d)| *d)
        .collect();
    assert!(
        video.windows(2).all(|w| w[1] >= w[0]),
        "DTS stays monotonic for the player"
    );
    // Live HLS marks the break.
    let pl = wait_until(
        "a playlist with a discontinuity",
        Duration::from_secs(15),
        || {
            let r = common::get_hls_media(&server, "/live/p/hls.m3u8");
            let text = r.text();
            (r.status == 200 && text.contains("#EXT-X-DISCONTINUITY")).then_some(text)
        },
    );
    assert!(pl.contains("#EXTINF"), "{pl}");

    // delStreamProxy ends it; an unknown key is flag false.
    let v = api(&server, "delStreamProxy", &s(&format!("key={key}")));
    assert_eq!(v["data"]["flag"], true, "{v}");
    let v = api(&server, "delStreamProxy", &s(&format!("key={key}")));
    assert_eq!(v["data"]["flag"], false, "{v}");
    assert_eq!(
        api(&server, "getProxyInfo", &s(&format!("key={key}")))["code"],
        -500
    );
    player.kill();
}

#[test]
fn unreachable_remotes_retry_per_policy_and_proxies_survive_a_restart() {
    let mut server = Server::start(
        "proxy_retry",
        &config("[proxy]\nretry_delay_ms = 200\nretry_max_delay_ms = 400\ntimeout_ms = 2000\n"),
    );
    // Nothing listens on this port: connection refused, retried twice, then failed.
    let dead = format!("127.0.0.1:{}", {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    });
    let v = api(
        &server,
        "addStreamProxy",
        &s(&format!(
            "app=live&stream=dead&retry_count=2&url=rtmp://{dead}/live/x"
        )),
    );
    assert_eq!(api_code(&v), 0, "{v}");
    let key = v["data"]["key"].as_str().unwrap().to_string();
    let st = wait_until("the proxy to give up", Duration::from_secs(15), || {
        let st = proxy_state(&server, &key);
        (st["status"] == "failed").then_some(st)
    });
    assert_eq!(st["total_failures"], 3, "first try + 2 retries: {st}");
    let err = st["last_error"].as_str().unwrap();
    assert!(
        err.contains("cannot connect") && err.contains(&dead),
        "{err}"
    );
    // A remote that answers with garbage: a clear error, no retry left, nothing else disturbed.
    let garbage = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let garbage_addr = garbage.local_addr().unwrap();
    std::thread::spawn(move || {
        use std::io::Write;
        for mut c in garbage.incoming().flatten().take(4) {
            let _ = c.write_all(&[0x42; 4000]);
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    let v = api(
        &server,
        "addStreamProxy",
        &s(&format!(
            "app=live&stream=junk&retry_count=0&url=rtmp://{garbage_addr}/live/x"
        )),
    );
    let junk = v["data"]["key"].as_str().unwrap().to_string();
    let st = wait_until("the garbage proxy to fail", Duration::from_secs(15), || {
        let st = proxy_state(&server, &junk);
        (st["status"] == "failed").then_some(st)
    });
    let err = st["last_error"].as_str().unwrap().to_lowercase();
    assert!(
        err.contains("bad data") || err.contains("handshake"),
        "{st}"
    );
    assert_eq!(
        api_code(&api(&server, "delStreamProxy", &s(&format!("key={junk}")))),
        0
    );
    // A pusher to nowhere retries forever and says why.
    let v = api(
        &server,
        "addStreamPusherProxy",
        &s(&format!(
            "schema=rtmp&app=live&stream=src&dst_url=rtmp://{dead}/live/out"
        )),
    );
    assert_eq!(api_code(&v), 0, "{v}");
    let v = api(
        &server,
        "addStreamPusherProxy",
        &s("schema=rtmp&app=live&stream=src&dst_url=rtsp://x/y"),
    );
    assert_eq!(api_code(&v), -300, "{v}");
    // Both are kept across a restart (in the data dir).
    server.restart();
    let pulls = api(&server, "listStreamProxy", &s(""));
    assert_eq!(pulls["data"].as_array().unwrap().len(), 1, "{pulls}");
    assert_eq!(pulls["data"][0]["key"], key.as_str());
    let pushes = api(&server, "listStreamPusherProxy", &s(""));
    assert_eq!(pushes["data"].as_array().unwrap().len(), 1, "{pushes}");
    assert_eq!(
        pushes["data"][0]["state"]["status"], "waiting for the local stream",
        "{pushes}"
    );
}

#[test]
fn push_to_nginx_and_to_a_second_ferrocast_following_the_source() {
    let server = Server::start(
        "proxy_push",
        &config("[general]\ncontinue_push_ms = 1000\n[proxy]\nretry_delay_ms = 300\n"),
    );
    let other = Server::start("proxy_push_b", &config(""));
    let nginx = Nginx::start(&server.dir.path, "nginx");
    for dst in [nginx.url("pushed"), other.url("pushed")] {
        let v = api(
            &server,
            "addStreamPusherProxy",
            &s(&format!(
                "schema=rtmp&vhost=__defaultVhost__&app=live&stream=src&dst_url={dst}"
            )),
        );
        assert_eq!(api_code(&v), 0, "{v}");
        assert!(v["data"]["key"]
            .as_str()
            .unwrap()
            .starts_with("rtmp/__defaultVhost__/live/src/"));
    }
    // The pushers wait for their source.
    std::thread::sleep(Duration::from_millis(800));
    let list = api(&server, "listStreamPusherProxy", &s(""));
    for p in list["data"].as_array().unwrap() {
        assert_eq!(
            p["state"]["status"], "waiting for the local stream",
            "{list}"
        );
    }
    let mut publisher = publish_file(&server, "pub", "src", &["-stream_loop", "-1"]);
    wait_online_with(&other, SECRET, "pushed");
    // What nginx and the other ferrocast serve is the stream.
    for url in [nginx.url("pushed"), other.url("pushed")] {
        let streams = probe_streams(&url);
        assert_src_streams(&streams, &url);
    }
    // The source goes away (past continue_push) and comes back: the pushers follow.
    publisher.kill();
    wait_until("the pusher to wait again", Duration::from_secs(15), || {
        let list = api(&server, "listStreamPusherProxy", &s(""));
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["state"]["status"] == "waiting for the local stream")
            .then_some(())
    });
    let _publisher2 = publish_file(&server, "pub2", "src", &["-stream_loop", "-1"]);
    wait_until(
        "the pushed stream to return",
        Duration::from_secs(20),
        || {
            let v = api(
                &other,
                "isMediaOnline",
                &s("schema=rtmp&app=live&stream=pushed"),
            );
            (v["online"] == true).then_some(())
        },
    );
    let out = server.path("from-b.flv");
    let mut player = record(&other, "player-b", "pushed", &out, &["-t", "3"]);
    player.wait_success(Duration::from_secs(20));
    assert!(
        video_packets(&out) >= 50,
        "the second ferrocast serves the resumed push"
    );
    let streams = probe_streams(&nginx.url("pushed"));
    assert_src_streams(&streams, "nginx after the source returned");
}

#[test]
fn edge_pulls_from_origin_on_demand_only_while_watched() {
    let origin = Server::start("proxy_origin", &config(""));
    let mut publisher = publish_file(&origin, "pub", "cam", &["-stream_loop", "-1"]);
    wait_online_with(&origin, SECRET, "cam");
    let edge = Server::start(
        "proxy_edge",
        &config(&format!(
            "[proxy]\nstream_none_reader_delay_ms = 2000\npull = [{{ app = \"live\", stream = \"cam\", url = \"{}\", on_demand = true }}]\n",
            origin.url("cam")
        )),
    );
    let origin_players = || {
        let v = api(
            &origin,
            "getMediaPlayerList",
            &s("schema=rtmp&app=live&stream=cam"),
        );
        v["data"].as_array().unwrap().len()
    };
    // Declared, idle: the edge does not pull while nobody watches.
    std::thread::sleep(Duration::from_secs(2));
    let list = api(&edge, "listStreamProxy", &s(""));
    assert_eq!(list["data"][0]["state"]["status"], "idle", "{list}");
    assert_eq!(
        list["data"][0]["persistent"], false,
        "declared in the config"
    );
    assert_eq!(origin_players(), 0);
    // A viewer on the edge: it pulls, the viewer plays.
    let out = edge.path("viewer.flv");
    let mut viewer = record(&edge, "viewer", "cam", &out, &["-t", "4"]);
    wait_until(
        "the edge to pull from the origin",
        Duration::from_secs(15),
        || (origin_players() == 1).then_some(()),
    );
    viewer.wait_success(Duration::from_secs(30));
    // The last viewer left (timed from its exit, before the checks of what it got:
    // each ffprobe run takes time): the edge lets go after stream_none_reader_delay (2 s).
    let left = Instant::now();
    wait_until("the edge to stop pulling", Duration::from_secs(15), || {
        (origin_players() == 0).then_some(())
    });
    assert!(
        left.elapsed() >= Duration::from_millis(1500),
        "not before the delay: {:?}",
        left.elapsed()
    );
    assert!(
        video_packets(&out) >= 75,
        "the viewer played through the edge"
    );
    assert!(first_video_is_keyframe(&out));
    wait_until("the proxy to be idle", Duration::from_secs(5), || {
        let list = api(&edge, "listStreamProxy", &s(""));
        (list["data"][0]["state"]["status"] == "idle").then_some(())
    });
    publisher.kill();
}

/// GStreamer's RTSP server (tests/rtsp/rtsp_server.py, Debian's python3-gi and
/// gst-rtsp-server) on a free port; returns it and its URL.
fn rtsp_server(server: &Server, label: &str, args: &[&str]) -> (Proc, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/rtsp/rtsp_server.py");
    assert!(
        Path::new("/usr/bin/python3").exists(),
        "/usr/bin/python3 is missing (Debian python3; scripts/test.sh installs python3-gi)"
    );
    let mut all = vec![script.to_str().unwrap(), "--port", "0", "--path", "/cam"];
    all.extend_from_slice(args);
    let mut p = Proc::spawn(label, "/usr/bin/python3", &all, &server.dir.path);
    let url = wait_until("the RTSP server to listen", Duration::from_secs(20), || {
        assert!(p.is_running(), "the RTSP server exited: {}", p.output());
        p.output()
            .lines()
            .find_map(|l| l.strip_prefix("READY ").map(str::to_owned))
    });
    (p, url)
}

fn with_credentials(url: &str, user: &str, pass: &str) -> String {
    url.replacen("rtsp://", &format!("rtsp://{user}:{pass}@"), 1)
}

#[test]
fn pull_rtsp_over_tcp_and_udp_with_digest_auth() {
    let server = Server::start(
        "proxy_rtsp",
        &config("[proxy]\nretry_delay_ms = 300\ntimeout_ms = 5000\n"),
    );
    let (_auth_src, auth_url) = rtsp_server(
        &server,
        "rtsp-auth",
        &["--auth", "viewer:pa55", "--audio", "aac"],
    );
    let (_g711_src, g711_url) = rtsp_server(&server, "rtsp-g711", &["--audio", "pcma"]);

    // Wrong password: the proxy fails with the reason, and nothing else is disturbed.
    let bad = with_credentials(&auth_url, "viewer", "wrong");
    let v = api(
        &server,
        "addStreamProxy",
        &s(&format!("app=live&stream=bad&retry_count=0&url={bad}")),
    );
    let bad_key = v["data"]["key"].as_str().unwrap().to_string();
    let st = wait_until(
        "the wrong password to fail",
        Duration::from_secs(20),
        || {
            let st = proxy_state(&server, &bad_key);
            (st["status"] == "failed").then_some(st)
        },
    );
    assert!(
        st["last_error"]
            .as_str()
            .unwrap()
            .contains("authentication failed"),
        "{st}"
    );

    // Digest auth over TCP: H.264 + AAC, as a player sees it.
    let good = with_credentials(&auth_url, "viewer", "pa55");
    let v = api(
        &server,
        "addStreamProxy",
        &s(&format!("app=live&stream=tcp&rtp_type=0&url={good}")),
    );
    assert_eq!(api_code(&v), 0, "{v}");
    wait_online_with(&server, SECRET, "tcp");
    let list = api(&server, "listStreamProxy", &s(""));
    assert!(
        !list.to_string().contains("pa55"),
        "passwords are not shown: {list}"
    );
    let media = api(
        &server,
        "getMediaList",
        &s("schema=rtmp&app=live&stream=tcp"),
    );
    assert_eq!(
        media["data"][0]["originUrl"],
        with_credentials(&auth_url, "viewer", "***")
    );
    let out = server.path("tcp.flv");
    let mut player = record(&server, "player-tcp", "tcp", &out, &["-t", "4"]);
    player.wait_success(Duration::from_secs(30));
    let streams = probe_streams(out.to_str().unwrap());
    assert!(
        streams
            .iter()
            .any(|s| s.codec_name == "h264" && s.width == Some(320) && s.height == Some(240)),
        "{streams:?}"
    );
    assert!(streams.iter().any(|s| s.codec_name == "aac"), "{streams:?}");
    let counts = stream_packet_counts(&out, None);
    assert!(counts.video >= 75 && counts.audio >= 100, "{counts:?}");
    assert!(first_video_is_keyframe(&out));
    assert_eq!(decode_errors(&out, None), "");
    let dts = packet_dts(&out);
    for kind in ["video", "audio"] {
        let d: Vec<i64> = dts
            .iter()
            .filter(|(k, _)| k == kind)
            .map(|(_, d)| *d)
            .collect();
        assert!(d.windows(2).all(|w| w[1] >= w[0]), "{kind} DTS monotonic");
        let span = (d.last().unwrap() - d[0]) as f64 / 1000.0;
        assert!(
            (3.0..=4.6).contains(&span),
            "{kind}: {span} s of timestamps in a 4 s recording"
        );
    }

    // UDP, with G.711 audio that FLV/TS do not carry here: video goes on, audio dropped.
    let v = api(
        &server,
        "addStreamProxy",
        &s(&format!("app=live&stream=udp&rtp_type=1&url={g711_url}")),
    );
    assert_eq!(api_code(&v), 0, "{v}");
    wait_online_with(&server, SECRET, "udp");
    let out = server.path("udp.flv");
    let mut player = record(&server, "player-udp", "udp", &out, &["-t", "3"]);
    player.wait_success(Duration::from_secs(30));
    let streams = probe_streams(out.to_str().unwrap());
    assert_eq!(streams.len(), 1, "video only: {streams:?}");
    assert_eq!(streams[0].codec_name, "h264");
    assert!(stream_packet_counts(&out, None).video >= 50);
    server.wait_for_log(&["track not pulled", "audio/pcma"], Duration::from_secs(2));
}

/// A private CA and a certificate for `localhost` signed by it (openssl).
fn make_certs(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let p = |n: &str| dir.join(n).to_str().unwrap().to_string();
    run_ok(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=ferrocast test CA",
            "-keyout",
            &p("ca.key"),
            "-out",
            &p("ca.pem"),
        ],
    );
    run_ok(
        "openssl",
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            &p("leaf.key"),
            "-out",
            &p("leaf.csr"),
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run_ok(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            &p("leaf.csr"),
            "-CA",
            &p("ca.pem"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &p("ext.cnf"),
            "-out",
            &p("leaf.pem"),
        ],
    );
    (
        dir.join("ca.pem"),
        dir.join("leaf.pem"),
        dir.join("leaf.key"),
    )
}

#[test]
fn rtmps_pull_and_push_through_tls() {
    let certs = TestDir::new("proxy_rtmps_certs");
    let (ca, cert, key) = make_certs(&certs.path);
    let server = Server::start(
        "proxy_rtmps",
        &config(&format!(
            "[proxy]\nretry_delay_ms = 300\ntls_ca_file = \"{}\"\n",
            ca.display()
        )),
    );
    let nginx = Nginx::start_with_tls(&server.dir.path, "nginx", &cert, &key);
    let tls = nginx.tls_port.unwrap();
    let _source = publish_file_to(&server.dir.path, "src", &nginx.url("src"));
    std::thread::sleep(Duration::from_secs(2));

    // Pull over rtmps:// (certificate checked against tls_ca_file, name localhost).
    let v = api(
        &server,
        "addStreamProxy",
        &s(&format!(
            "app=live&stream=tls&url=rtmps://localhost:{tls}/live/src"
        )),
    );
    assert_eq!(api_code(&v), 0, "{v}");
    wait_online_with(&server, SECRET, "tls");
    assert_src_streams(&probe_streams(&server.url("tls")), "pulled over rtmps");

    // The certificate is not valid for 127.0.0.1: refused with a TLS error.
    let v = api(
        &server,
        "addStreamProxy",
        &s(&format!(
            "app=live&stream=badname&retry_count=0&url=rtmps://127.0.0.1:{tls}/live/src"
        )),
    );
    let bad = v["data"]["key"].as_str().unwrap().to_string();
    let st = wait_until("the name mismatch to fail", Duration::from_secs(15), || {
        let st = proxy_state(&server, &bad);
        (st["status"] == "failed").then_some(st)
    });
    assert!(st["last_error"].as_str().unwrap().contains("TLS"), "{st}");

    // Push the pulled stream back over rtmps://; nginx serves it.
    let v = api(
        &server,
        "addStreamPusherProxy",
        &s(&format!(
            "schema=rtmp&app=live&stream=tls&dst_url=rtmps://localhost:{tls}/live/back"
        )),
    );
    assert_eq!(api_code(&v), 0, "{v}");
    wait_until("the push over TLS", Duration::from_secs(20), || {
        let list = api(&server, "listStreamPusherProxy", &s(""));
        (list["data"][0]["state"]["status"] == "pushing").then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_src_streams(
        &probe_streams(&nginx.url("back")),
        "pushed over rtmps to nginx",
    );
}

/// proxies.json carries credentials and the operator's work: it is written whole
/// with mode 0600, and a file that cannot be read is moved aside, never overwritten.
#[test]
fn proxy_store_is_private_and_never_overwritten_when_corrupt() {
    use std::os::unix::fs::PermissionsExt;
    let mut server = Server::start("proxy_store", &config(""));
    let add = |server: &Server, stream: &str| {
        let v = api(
            server,
            "addStreamProxy",
            &s(&format!(
                "app=live&stream={stream}&on_demand=1&url=rtsp://u:pw@127.0.0.1:9/{stream}"
            )),
        );
        assert_eq!(api_code(&v), 0, "{v}");
    };
    add(&server, "one");
    let store = server.dir.join("data").join("proxies.json");
    let mode = std::fs::metadata(&store).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "proxies.json mode {mode:o}");
    let text = std::fs::read_to_string(&store).unwrap();
    assert!(text.contains("live") && text.contains("one"), "{text}");
    let data_dir = store.parent().unwrap().to_owned();
    let names = || -> Vec<String> {
        std::fs::read_dir(&data_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("proxies") || n.contains(".tmp"))
            .collect()
    };
    assert_eq!(
        names(),
        vec!["proxies.json".to_owned()],
        "no temporary file left"
    );

    // Damaged by hand (or by a disk): the next start loads nothing, says so loudly,
    // and keeps the damaged file aside with its bytes intact.
    let damaged = "{\"pull\": [ {\"app\": \"live\", truncated";
    std::fs::write(&store, damaged).unwrap();
    server.restart();
    server.wait_for_log(&["SAVED PROXIES NOT LOADED"], Duration::from_secs(5));
    let pulls = api(&server, "listStreamProxy", &s(""));
    assert_eq!(pulls["data"].as_array().unwrap().len(), 0, "{pulls}");
    let aside: Vec<String> = names()
        .into_iter()
        .filter(|n| n.starts_with("proxies.json.bad-"))
        .collect();
    assert_eq!(aside.len(), 1, "{:?}", names());
    assert_eq!(
        std::fs::read_to_string(data_dir.join(&aside[0])).unwrap(),
        damaged
    );
    // A new proxy is saved to a new file; the damaged one stays as it was.
    add(&server, "two");
    let text = std::fs::read_to_string(&store).unwrap();
    assert!(
        text.contains("two") && !text.contains("truncated"),
        "{text}"
    );
    assert_eq!(
        std::fs::read_to_string(data_dir.join(&aside[0])).unwrap(),
        damaged
    );
}
