//! The command line as an operator meets it: the printed config, config errors and
//! their exit code, and a clean exit on SIGTERM under load.

mod common;

use std::fs;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::*;

fn ferrocast(args: &[&str]) -> Output {
    Command::new(FERROCAST)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run ferrocast")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn print_config_shows_the_defaults_and_reads_back() {
    let out = ferrocast(&["--print-config"]);
    assert!(
        out.status.success(),
        "exit {}: {}",
        out.status,
        text(&out.stderr)
    );
    let toml = text(&out.stdout);
    assert!(toml.contains("[rtmp]"), "no [rtmp] table in:\n{toml}");
    assert!(
        toml.contains("listen = \"0.0.0.0:1935\""),
        "no default RTMP listen address in:\n{toml}"
    );
    for table in ["[http]", "[general]", "[hub]"] {
        assert!(toml.contains(table), "no {table} table in:\n{toml}");
    }

    // What it prints is a config file the server accepts, and means the same.
    let dir = TestDir::new("print_config");
    let file = dir.join("printed.toml");
    fs::write(&file, &toml).unwrap();
    let again = ferrocast(&["--config", file.to_str().unwrap(), "--print-config"]);
    assert!(
        again.status.success(),
        "the printed config is refused: {}",
        text(&again.stderr)
    );
    assert_eq!(text(&again.stdout), toml);

    // Flags override the file.
    let flagged = ferrocast(&["--rtmp", "127.0.0.1:19999", "--print-config"]);
    assert!(flagged.status.success(), "{}", text(&flagged.stderr));
    assert!(
        text(&flagged.stdout).contains("listen = \"127.0.0.1:19999\""),
        "--rtmp not reflected:\n{}",
        text(&flagged.stdout)
    );
}

/// Runs the server with `toml` as its config; it must exit 2 naming `key`.
fn assert_config_refused(name: &str, toml: &str, key: &str) {
    let dir = TestDir::new(name);
    let file = dir.join("c.toml");
    fs::write(&file, toml).unwrap();
    // --print-config too: the config is checked before anything else happens, so the
    // server would not start either; but without it a passing config would start
    // serving, so also run it plain with a time limit.
    for extra in [&["--print-config"][..], &[][..]] {
        let mut args = vec![
            "--config",
            file.to_str().unwrap(),
            "--rtmp",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        let mut p = Proc::spawn("ferrocast", FERROCAST, &args, &dir.path);
        let status = p.wait(secs(10));
        let said = p.output();
        assert_eq!(
            status.code(),
            Some(2),
            "{name}: expected exit code 2, got {status}; output:\n{said}"
        );
        assert!(
            said.contains(key),
            "{name}: the error does not name `{key}`:\n{said}"
        );
    }
}

#[test]
fn unknown_config_key_exits_2_naming_it() {
    assert_config_refused("unknown_key", "[rtmp]\nchunk_sise = 4096\n", "chunk_sise");
    assert_config_refused(
        "unknown_table",
        "[rtmpp]\nlisten = \"0.0.0.0:1\"\n",
        "rtmpp",
    );
}

#[test]
fn bad_config_value_exits_2_naming_the_key() {
    assert_config_refused(
        "bad_chunk_size",
        "[rtmp]\nchunk_size = 1\n",
        "rtmp.chunk_size",
    );
    assert_config_refused(
        "bad_listen",
        "[rtmp]\nlisten = \"not an address\"\n",
        "rtmp.listen",
    );
}

#[test]
fn missing_config_file_exits_2_naming_it() {
    let dir = TestDir::new("missing_config");
    let file = dir.join("does-not-exist.toml");
    let out = ferrocast(&["--config", file.to_str().unwrap(), "--print-config"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("does-not-exist.toml"),
        "the error does not name the file: {}",
        text(&out.stderr)
    );
}

/// SIGTERM while a publisher and a player are connected: the server ends their
/// sessions and exits 0 within 5 s.
#[test]
fn sigterm_during_publish_and_play_exits_0() {
    let mut srv = Server::start(
        "sigterm",
        "[general]\ncontinue_push_ms = 3000\nmax_stream_wait_ms = 8000\n",
    );
    let mut publisher = publish_file(&srv, "publisher", "t", &["-stream_loop", "1"]);
    srv.wait_for_log(&["publish started", "live/t"], secs(10));
    let out = srv.path("out.flv");
    let mut player = record(&srv, "player", "t", &out, &[]);
    srv.wait_for_log(&["play started", "live/t"], secs(10));
    std::thread::sleep(secs(1));

    let started = Instant::now();
    let status = srv
        .terminate(secs(5))
        .unwrap_or_else(|| panic!("ferrocast still running 5 s after SIGTERM:\n{}", srv.log()));
    let took = started.elapsed();
    assert!(
        status.success(),
        "ferrocast exited with {status} on SIGTERM:\n{}",
        srv.log()
    );
    eprintln!("ferrocast exited {took:?} after SIGTERM");
    let log = srv.log();
    assert!(log.contains("SIGTERM"), "no shutdown line:\n{log}");
    // Both peers see their connection end and stop on their own.
    publisher.wait(secs(10));
    player.wait(secs(10));
}

/// The signature of `message` under `secret`, computed by Python's hmac module: an
/// implementation independent of ours.
fn python_hmac(secret: &str, message: &str) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import hmac,hashlib,sys; \
             print(hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), hashlib.sha256).hexdigest())",
            secret,
            message,
        ])
        .output()
        .expect("run python3");
    assert!(out.status.success(), "python3: {}", text(&out.stderr));
    text(&out.stdout).trim().to_owned()
}

/// Splits a signed URL into (the URL without exp and sig, exp, sig), checking that
/// each appears once, last, in that order.
fn split_signed(url: &str) -> (String, u64, String) {
    let (rest, sig) = url.rsplit_once("&sig=").expect("no &sig= at the end");
    let (base, exp) = rest.rsplit_once("exp=").expect("no exp=");
    assert!(base.ends_with('?') || base.ends_with('&'), "{url}");
    assert_eq!(url.matches("exp=").count(), 1, "{url}");
    assert_eq!(url.matches("sig=").count(), 1, "{url}");
    let base = base[..base.len() - 1].to_owned();
    (base, exp.parse().expect("exp is a number"), sig.to_owned())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

const SIGN_SECRET: &str = "a-secret-of-24-characters";

fn sign_config(name: &str, secret: &str) -> (TestDir, String) {
    let dir = TestDir::new(name);
    let file = dir.join("c.toml");
    fs::write(&file, format!("[auth]\nsecret = \"{secret}\"\n")).unwrap();
    let file = file.to_str().unwrap().to_owned();
    (dir, file)
}

#[test]
fn sign_prints_a_url_python_agrees_with() {
    let (_dir, config) = sign_config("sign_ok", SIGN_SECRET);
    let cases = [
        // (action, URL, the message Python signs, without the expiry)
        (
            "publish",
            "rtmp://127.0.0.1/live/cam1",
            "publish/__defaultVhost__/live/cam1/",
        ),
        (
            "play",
            "http://h:8080/live/c%20am/hls.m3u8",
            "play/__defaultVhost__/live/c am/",
        ),
        (
            "play",
            "ws://h:8080/live/cam1.live.flv",
            "play/__defaultVhost__/live/cam1/",
        ),
        // A query already there, naming the vhost: `&`, and the sig covers that vhost.
        (
            "publish",
            "rtmp://h:1935/live/cam1?vhost=x",
            "publish/x/live/cam1/",
        ),
    ];
    for (action, url, message) in cases {
        let before = unix_now();
        let out = ferrocast(&["sign", "--config", &config, action, url]);
        let after = unix_now();
        assert!(out.status.success(), "{url}: {}", text(&out.stderr));
        let signed = text(&out.stdout).trim().to_owned();
        let (base, exp, sig) = split_signed(&signed);
        assert_eq!(base, url, "{signed}");
        assert!(
            (before + 3600..=after + 3600).contains(&exp),
            "default ttl is not 3600 s: exp {exp}, now {before}"
        );
        assert_eq!(
            sig,
            python_hmac(SIGN_SECRET, &format!("{message}{exp}")),
            "{signed}"
        );
    }

    // The global flag works before the subcommand too.
    let out = ferrocast(&["--config", &config, "sign", "play", "rtmp://h/live/a"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn sign_honours_ttl() {
    let (_dir, config) = sign_config("sign_ttl", SIGN_SECRET);
    let before = unix_now();
    let out = ferrocast(&[
        "sign",
        "--config",
        &config,
        "play",
        "https://h/live/cam1.live.ts?token=1",
        "--ttl",
        "60",
    ]);
    let after = unix_now();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let signed = text(&out.stdout).trim().to_owned();
    let (base, exp, sig) = split_signed(&signed);
    assert_eq!(base, "https://h/live/cam1.live.ts?token=1");
    assert!(
        (before + 60..=after + 60).contains(&exp),
        "--ttl 60 not honoured: exp {exp}, now {before}"
    );
    assert_eq!(
        sig,
        python_hmac(
            SIGN_SECRET,
            &format!("play/__defaultVhost__/live/cam1/{exp}")
        )
    );
}

#[test]
fn sign_refuses_without_a_usable_secret_or_stream() {
    // No config at all: the embedded default secret is empty.
    let out = ferrocast(&["sign", "publish", "rtmp://h/live/cam1"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("auth.secret"),
        "the refusal does not name auth.secret: {}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "printed {}", text(&out.stdout));

    let (_dir, short) = sign_config("sign_short", "fifteen-chars!!");
    let out = ferrocast(&["sign", "--config", &short, "publish", "rtmp://h/live/cam1"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("auth.secret"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());

    let (_dir, config) = sign_config("sign_nostream", SIGN_SECRET);
    for url in ["rtmp://h/live", "http://h/live/cam1", "file:///etc/passwd"] {
        let out = ferrocast(&["sign", "--config", &config, "play", url]);
        assert_eq!(out.status.code(), Some(2), "{url}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("names no stream"),
            "{url}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty());
    }
}

/// The start-up log says so when anyone may publish on a public address, and not
/// when publishing needs a signature.
#[test]
fn open_publishing_on_a_public_address_is_announced() {
    for (label, toml, warned) in [
        ("open_public", "", true),
        (
            "signed_public",
            "[auth]\npublish = \"signed\"\nsecret = \"0123456789abcdef0\"\n",
            false,
        ),
    ] {
        let dir = TestDir::new(label);
        let config = dir.join("c.toml");
        std::fs::write(&config, toml).unwrap();
        let log = dir.join("log");
        let mut child = Command::new(FERROCAST)
            .args(["--rtmp", "0.0.0.0:0", "--http", "127.0.0.1:0", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.join("data"))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + secs(10);
        let mut text = String::new();
        while Instant::now() < deadline {
            text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("ferrocast listening") {
                // The warning follows within the same start-up.
                std::thread::sleep(Duration::from_millis(500));
                text = std::fs::read_to_string(&log).unwrap_or_default();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(text.contains("ferrocast listening"), "{label}: {text}");
        assert_eq!(
            text.contains("publishing is open to anyone"),
            warned,
            "{label}: start-up log:\n{text}"
        );
    }
}
