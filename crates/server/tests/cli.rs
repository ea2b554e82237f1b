//! The command line as an operator meets it: the printed config, config errors and
//! their exit code, and a clean exit on SIGTERM under load.

mod common;

use std::fs;
use std::process::{Command, Output};
use std::time::Instant;

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
