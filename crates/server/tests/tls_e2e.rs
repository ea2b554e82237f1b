//! RTMPS and HTTPS/WSS end to end, with a CA made at test time (openssl) and real
//! clients that verify the certificate against it:
//! - ffmpeg publishes over `rtmps://` and ffmpeg plays it back over `rtmps://`
//!   (both with `-tls_verify 1 -ca_file`); curl fetches HLS (playlist and a segment)
//!   and HTTP-FLV over `https://` with `--cacert`, and ffprobe checks what came;
//!   curl without the CA is refused (the listener really speaks TLS with our
//!   certificate, not anything a client accepts);
//! - SIGHUP: the certificate files are replaced, new connections (curl, openssl
//!   s_client on the RTMPS port) see the new certificate while an RTMPS player
//!   connected before keeps receiving; a broken key file at a reload keeps the old
//!   certificate and the log names the file;
//! - a missing certificate file at start-up stops the server with an error naming it;
//! - headless Chromium plays HLS and WS-FLV (`wss://`) through the player page served
//!   over HTTPS (Chromium is told to accept the test CA's certificate; the strict
//!   trust check is curl's above).

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::*;

const FFMPEG_QUIET: &[&str] = &["-nostdin", "-hide_banner", "-loglevel", "error"];

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// The test CA and the files of the server's certificate.
struct Pki {
    dir: PathBuf,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Pki {
    /// A CA (ECDSA P-256) and a first server certificate with `cn`.
    fn new(dir: &Path, cn: &str) -> Pki {
        let pki = Pki {
            dir: dir.join("pki"),
            ca: dir.join("pki/ca.pem"),
            cert: dir.join("pki/server.pem"),
            key: dir.join("pki/server.key"),
        };
        std::fs::create_dir_all(&pki.dir).unwrap();
        let ca_key = pki.dir.join("ca.key");
        run_ok(
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=ferrocast tls_e2e CA",
                "-keyout",
                ca_key.to_str().unwrap(),
                "-out",
                pki.ca.to_str().unwrap(),
            ],
        );
        std::fs::write(
            pki.dir.join("ext.cnf"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             extendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        let (cert, key) = pki.issue(cn);
        std::fs::rename(cert, &pki.cert).unwrap();
        std::fs::rename(key, &pki.key).unwrap();
        pki
    }

    /// A new server certificate for 127.0.0.1 and localhost with `cn`, signed by the
    /// CA, in new files (`<cn>.pem`, `<cn>.key`); returns their paths.
    fn issue(&self, cn: &str) -> (PathBuf, PathBuf) {
        let p = |n: String| self.dir.join(n);
        let (key, csr, cert) = (
            p(format!("{cn}.key")),
            p(format!("{cn}.csr")),
            p(format!("{cn}.pem")),
        );
        run_ok(
            "openssl",
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-subj",
                &format!("/CN={cn}"),
                "-keyout",
                key.to_str().unwrap(),
                "-out",
                csr.to_str().unwrap(),
            ],
        );
        run_ok(
            "openssl",
            &[
                "x509",
                "-req",
                "-in",
                csr.to_str().unwrap(),
                "-CA",
                self.ca.to_str().unwrap(),
                "-CAkey",
                self.dir.join("ca.key").to_str().unwrap(),
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                self.dir.join("ext.cnf").to_str().unwrap(),
                "-out",
                cert.to_str().unwrap(),
            ],
        );
        (cert, key)
    }
}

/// A server with RTMPS and HTTPS listeners on free ports, certificate from `pki`.
struct TlsServer {
    srv: Server,
    rtmps: u16,
    https: u16,
}

impl TlsServer {
    fn start(name: &str, pki: &Pki) -> TlsServer {
        let (rtmps, https) = (free_port(), free_port());
        let srv = Server::start(
            name,
            &format!(
                "[general]\ncontinue_push_ms = 500\nmax_stream_wait_ms = 8000\n\
                 [rtmp]\ntls_listen = \"127.0.0.1:{rtmps}\"\n\
                 [http]\ntls_listen = \"127.0.0.1:{https}\"\n\
                 [tls]\ncert = \"{}\"\nkey = \"{}\"\n",
                pki.cert.display(),
                pki.key.display()
            ),
        );
        srv.wait_for_log(
            &["ferrocast listening", &format!("https=127.0.0.1:{https}")],
            secs(5),
        );
        TlsServer { srv, rtmps, https }
    }

    fn rtmps_url(&self, name: &str) -> String {
        format!("rtmps://127.0.0.1:{}/live/{name}", self.rtmps)
    }

    fn https_url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.https)
    }

    /// ffmpeg publishing the test file (looped) over RTMPS, verifying the server.
    fn publish(&self, pki: &Pki, name: &str) -> Proc {
        let src = src_flv();
        let url = self.rtmps_url(name);
        let mut args = FFMPEG_QUIET.to_vec();
        args.extend_from_slice(&["-re", "-stream_loop", "-1", "-i", src.to_str().unwrap()]);
        args.extend_from_slice(&["-c", "copy", "-f", "flv"]);
        args.extend_from_slice(&[
            "-tls_verify",
            "1",
            "-ca_file",
            pki.ca.to_str().unwrap(),
            &url,
        ]);
        let p = Proc::spawn("rtmps-publisher", "ffmpeg", &args, &self.srv.dir.path);
        self.srv
            .wait_for_log(&["publish started", &format!("live/{name}")], secs(10));
        p
    }

    /// ffmpeg playing `name` over RTMPS (verifying the server) into `out` for `seconds`.
    fn play(&self, pki: &Pki, label: &str, name: &str, out: &Path, seconds: u32) -> Proc {
        let url = self.rtmps_url(name);
        let t = seconds.to_string();
        let mut args = FFMPEG_QUIET.to_vec();
        args.extend_from_slice(&["-rw_timeout", "10000000", "-tls_verify", "1"]);
        args.extend_from_slice(&["-ca_file", pki.ca.to_str().unwrap(), "-i", &url]);
        // -flush_packets: the file grows as packets arrive (the reload test watches it).
        args.extend_from_slice(&["-t", &t, "-c", "copy", "-flush_packets", "1"]);
        args.extend_from_slice(&["-f", "flv", "-y", out.to_str().unwrap()]);
        Proc::spawn(label, "ffmpeg", &args, &self.srv.dir.path)
    }
}

/// `curl -sS --fail --cacert CA url` (plus `extra`): the body, or the failure.
fn curl(ca: Option<&Path>, url: &str, extra: &[&str]) -> Result<Vec<u8>, String> {
    require("curl");
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--fail", "--max-time", "10"]);
    if let Some(ca) = ca {
        cmd.arg("--cacert").arg(ca);
    }
    let out = cmd.args(extra).arg(url).output().expect("run curl");
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(format!(
            "curl {url} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The subject line of the certificate a new `curl -v` connection is shown.
fn https_subject(ca: &Path, url: &str) -> String {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-v",
            "--fail",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            "--cacert",
        ])
        .arg(ca)
        .arg(url)
        .output()
        .expect("run curl");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "curl -v {url} failed: {err}");
    err.lines()
        .find_map(|l| l.trim_start_matches('*').trim().strip_prefix("subject:"))
        .unwrap_or_else(|| panic!("no subject in curl -v output:\n{err}"))
        .trim()
        .to_string()
}

/// The subject of the certificate a new TLS connection to `port` is shown, verified
/// against `ca` (openssl s_client, as an RTMPS client's TLS layer sees it).
fn tls_subject(ca: &Path, port: u16) -> String {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-verify_return_error",
            "-CAfile",
        ])
        .arg(ca)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run openssl s_client");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("Verify return code: 0 (ok)"),
        "s_client did not verify the RTMPS certificate:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .find_map(|l| l.strip_prefix("subject="))
        .unwrap_or_else(|| panic!("no subject in s_client output:\n{text}"))
        .trim()
        .to_string()
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

#[test]
fn rtmps_and_https_serve_what_the_plain_listeners_serve() {
    let scratch = TestDir::new("tls_pki");
    let pki = Pki::new(&scratch.path, "ferrocast one");
    let t = TlsServer::start("tls_serves", &pki);
    let mut publisher = t.publish(&pki, "x");

    // RTMPS play: ffmpeg verifying the certificate gets the test file's codecs and
    // real frames.
    let played = t.srv.path("rtmps-play.flv");
    let mut player = t.play(&pki, "rtmps-player", "x", &played, 4);
    player.wait_success(secs(20));
    assert_src_streams(&probe_streams(played.to_str().unwrap()), "RTMPS play");
    let counts = packet_counts(&played);
    assert!(
        counts.video >= 75 && counts.audio >= 100,
        "RTMPS play: {counts:?}"
    );
    // The session list calls both RTMPS sessions so.
    let line = t
        .srv
        .wait_for_log(&["RTMP session closed", "role=\"player\""], secs(5));
    assert!(line.contains("schema=\"rtmps\""), "{line}");

    // HLS over HTTPS: the playlist (a master playlist is followed to its variant),
    // then a segment, which ffprobe reads.
    let ca = Some(pki.ca.as_path());
    let playlist_url = t.https_url("127.0.0.1", "/live/x/hls.m3u8");
    // The first answer is the viewer's one-variant master playlist.
    let master = wait_until("an HLS playlist over HTTPS", secs(15), || {
        let body = curl(ca, &playlist_url, &[]).ok()?;
        let text = String::from_utf8(body).ok()?;
        text.contains("#EXT-X-STREAM-INF").then_some(text)
    });
    let variant = master
        .lines()
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or_else(|| panic!("no variant in {master}"))
        .to_owned();
    assert!(variant.starts_with("hls.m3u8?session="), "{variant}");
    let url = t.https_url("127.0.0.1", &format!("/live/x/{variant}"));
    let text = String::from_utf8(curl(ca, &url, &[]).expect("variant playlist")).unwrap();
    let playlist = parse_playlist(&text);
    let segment = &playlist.entries.last().expect("a segment").uri;
    let seg_path = t.srv.path("https-segment.ts");
    let seg_url = t.https_url("localhost", &format!("/live/x/{segment}"));
    curl(ca, &seg_url, &["-o", seg_path.to_str().unwrap()]).unwrap();
    let streams = probe_streams(seg_path.to_str().unwrap());
    assert_src_streams(&streams, "HLS segment over HTTPS");
    assert!(
        packet_counts(&seg_path).video >= 25,
        "{:?}",
        packet_counts(&seg_path)
    );

    // HTTP-FLV over HTTPS, 3 s of it: the codecs and frames arrive.
    let flv_path = t.srv.path("https.flv");
    let flv_url = t.https_url("localhost", "/live/x.live.flv");
    // --max-time ends the endless body: curl then exits 28, with the bytes written.
    let _ = curl(
        ca,
        &flv_url,
        &["--max-time", "3", "-o", flv_path.to_str().unwrap()],
    );
    assert_src_streams(
        &probe_streams(flv_path.to_str().unwrap()),
        "HTTP-FLV over HTTPS",
    );
    let counts = stream_packet_counts(&flv_path, Some("flv"));
    assert!(counts.video >= 40, "HTTP-FLV over HTTPS: {counts:?}");

    // A client that does not trust the CA is refused, and so is plain HTTP on the
    // TLS port: the listener serves TLS with our certificate, nothing else.
    let e = curl(None, &playlist_url, &[]).expect_err("curl without the CA must refuse");
    assert!(e.contains("certificate"), "{e}");
    let plain = format!("http://127.0.0.1:{}/live/x/hls.m3u8", t.https);
    assert!(
        curl(None, &plain, &[]).is_err(),
        "plain HTTP on the HTTPS port"
    );

    assert!(publisher.is_running(), "publisher: {}", publisher.output());
    publisher.kill();
}

#[test]
fn sighup_reloads_the_certificate_and_keeps_sessions() {
    let scratch = TestDir::new("tls_pki_reload");
    let pki = Pki::new(&scratch.path, "ferrocast one");
    let t = TlsServer::start("tls_reload", &pki);
    let mut publisher = t.publish(&pki, "r");
    let root = t.https_url("127.0.0.1", "/");
    assert!(https_subject(&pki.ca, &root).contains("CN=ferrocast one"));
    assert!(tls_subject(&pki.ca, t.rtmps).contains("ferrocast one"));

    // An RTMPS player connected before the reload, for 12 s.
    let played = t.srv.path("before-reload.flv");
    let mut player = t.play(&pki, "rtmps-player", "r", &played, 12);
    wait_until("the RTMPS player receiving", secs(10), || {
        (file_len(&played) > 50_000).then_some(())
    });
    let reloaded_at = Instant::now();

    // New files put in place by rename (as certbot and friends do), then SIGHUP.
    let (cert, key) = pki.issue("ferrocast two");
    std::fs::rename(&cert, &pki.cert).unwrap();
    std::fs::rename(&key, &pki.key).unwrap();
    let _ = Command::new("kill")
        .args(["-HUP", &t.srv.pid().to_string()])
        .status();
    t.srv.wait_for_log(&["TLS certificate reloaded"], secs(5));
    let subject = https_subject(&pki.ca, &root);
    assert!(
        subject.contains("CN=ferrocast two"),
        "after SIGHUP: {subject}"
    );
    let subject = tls_subject(&pki.ca, t.rtmps);
    assert!(
        subject.contains("ferrocast two"),
        "RTMPS after SIGHUP: {subject}"
    );

    // The player from before keeps receiving after the reload.
    let len_at_reload = file_len(&played);
    sleep(secs(2));
    assert!(player.is_running(), "player: {}", player.output());
    assert!(
        file_len(&played) > len_at_reload + 50_000,
        "the RTMPS player got nothing after the reload ({} -> {} bytes)",
        len_at_reload,
        file_len(&played)
    );

    // A broken key at a reload: the error names the file, the current certificate
    // stays.
    std::fs::write(&pki.key, "not a key\n").unwrap();
    let _ = Command::new("kill")
        .args(["-HUP", &t.srv.pid().to_string()])
        .status();
    let line = t
        .srv
        .wait_for_log(&["TLS certificate not reloaded"], secs(5));
    assert!(line.contains(pki.key.to_str().unwrap()), "{line}");
    let subject = https_subject(&pki.ca, &root);
    assert!(
        subject.contains("CN=ferrocast two"),
        "after a failed reload: {subject}"
    );
    // A well-formed key of another certificate (a half-done renewal): refused too.
    let (_, other_key) = pki.issue("ferrocast three");
    std::fs::rename(&other_key, &pki.key).unwrap();
    let _ = Command::new("kill")
        .args(["-HUP", &t.srv.pid().to_string()])
        .status();
    let line = t.srv.wait_for_log(
        &[
            "TLS certificate not reloaded",
            "do not make a server config",
        ],
        secs(5),
    );
    assert!(line.contains(pki.key.to_str().unwrap()), "{line}");
    let subject = https_subject(&pki.ca, &root);
    assert!(
        subject.contains("CN=ferrocast two"),
        "after a mismatched key: {subject}"
    );

    // The player ran its 12 s through both reloads, with no gap: its frames cover
    // the whole time (25 fps, less a little for start-up).
    player.wait_success(secs(20));
    assert!(reloaded_at.elapsed() > secs(2));
    let counts = packet_counts(&played);
    assert!(
        counts.video >= 11 * 25,
        "RTMPS player across the reload: {counts:?}"
    );
    assert!(publisher.is_running(), "publisher: {}", publisher.output());
    publisher.kill();
}

#[test]
fn a_missing_certificate_stops_the_start_up_naming_the_file() {
    let dir = TestDir::new("tls_missing_cert");
    let missing = dir.join("nowhere/cert.pem");
    let key = dir.join("nowhere/key.pem");
    std::fs::write(
        dir.join("c.toml"),
        format!(
            "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
            missing.display(),
            key.display()
        ),
    )
    .unwrap();
    let out = Command::new(FERROCAST)
        .args([
            "--rtmp",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--https",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--config")
        .arg(dir.join("c.toml"))
        .env("NO_COLOR", "1")
        .output()
        .expect("run ferrocast");
    let log = strip_ansi(&format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ));
    assert!(
        !out.status.success(),
        "started without a certificate:\n{log}"
    );
    assert!(
        log.contains(missing.to_str().unwrap()) && log.contains("cannot read TLS certificate"),
        "the error does not name the file:\n{log}"
    );
}

#[test]
fn player_page_plays_hls_and_wss_flv_over_https() {
    require("node");
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser");
    assert!(
        Path::new("/usr/bin/chromium").exists()
            && browser_dir
                .join("node_modules/playwright-core/package.json")
                .exists(),
        "needs /usr/bin/chromium and `npm ci --prefix tests/browser` (scripts/test.sh does both)"
    );
    let scratch = TestDir::new("tls_pki_browser");
    let pki = Pki::new(&scratch.path, "ferrocast one");
    let t = TlsServer::start("tls_browser", &pki);
    let mut publisher = t.publish(&pki, "b");
    wait_until("an HLS playlist over HTTPS", secs(15), || {
        curl(
            Some(&pki.ca),
            &t.https_url("127.0.0.1", "/live/b/hls.m3u8"),
            &[],
        )
        .ok()
    });
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("artifacts/tls");
    std::fs::create_dir_all(&artifacts).unwrap();
    let script = browser_dir.join("play.mjs");
    let base = t.https_url("localhost", "");
    let mut node = Proc::spawn(
        "node",
        "node",
        &[
            script.to_str().unwrap(),
            &base,
            artifacts.to_str().unwrap(),
            "live/b",
            "hls,wsflv",
        ],
        &t.srv.dir.path,
    );
    let status = node.wait(Duration::from_secs(120));
    let output = node.output();
    eprintln!("play.mjs over HTTPS:\n{output}");
    assert!(
        status.success(),
        "the browser run over HTTPS failed:\n{output}"
    );
    // The page was given only the https:// address, so its WS-FLV viewer came over
    // wss:// to the TLS listener; the server saw it play and leave.
    t.srv.wait_for_log(
        &["live HTTP viewer closed", "protocol=\"ws-flv\""],
        secs(10),
    );
    assert!(publisher.is_running(), "publisher: {}", publisher.output());
    publisher.kill();
}
