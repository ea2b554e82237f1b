//! # ferrocast-bench: an RTMP load generator
//!
//! In the spirit of SRS's srs-bench: many RTMP clients against one server, driven by
//! the same sans-IO [`ClientSession`](ferrocast_proto::rtmp::session::ClientSession)
//! the server's proxies use, on a multi-thread tokio runtime with one task per
//! connection. Works against any RTMP server (ferrocast, nginx-rtmp, SRS).
//!
//! ```text
//! ferrocast-bench play    rtmp://HOST[:PORT]/APP/STREAM -n N --duration S [--ramp R] [--digest] [--expect-kbps K]
//! ferrocast-bench publish rtmp://HOST[:PORT]/APP/STREAM --file F.flv [-n N] [--duration S] [--loop]
//!                         [--stamp-wallclock [--t0-file PATH]]
//! ferrocast-bench latency http://HOST[:PORT]/APP/STREAM.live.flv --duration S [--t0 MS | --t0-file PATH]
//! ferrocast-bench latency http://HOST[:PORT]/APP/STREAM/hls.m3u8 --duration S [--t0 MS | --t0-file PATH]
//!                         [--poll-ms 20] [--pts-offset-90k N] [--hold-back 3 --hold-back 2]
//! ferrocast-bench first-playlist http://HOST[:PORT]/APP/STREAM/hls.m3u8 [--interval-ms 20] [--timeout S] -- PUBLISHER...
//! ```
//!
//! `latency` and `first-playlist` measure HTTP delivery (HTTP-FLV and HLS) with a
//! minimal HTTP/1.1 client of their own; their methods are in `latency.rs` and
//! `first_playlist.rs`. Publisher, server and bench must share one clock (one machine).
//!
//! Each prints one JSON object on stdout when it is done (progress and warnings go to
//! stderr). The exit code is 0 when the run happened, even if every connection
//! failed (the JSON says so), and 2 for bad arguments (also an unreadable FLV file
//! or a host that does not resolve). Ctrl-C ends a run early and still prints it.
//!
//! ## `play` output
//! * `url`, `players` (N asked for), `connected` (players that got Play.Start),
//!   `failed` (the others), `failures` (count per reason: `connect refused`,
//!   `handshake error`, `status NetStream.Play.StreamNotFound`,
//!   `timeout (no Started within 15 s)`, `closed by server`, ...) and
//!   `failure_examples` (the first full error message per reason).
//! * `duration_s`: from the first connect to the last player stopping.
//! * `bytes_total`: bytes read from all sockets (handshake, chunk headers and all);
//!   `payload_bytes_total`: audio + video + metadata message payloads.
//! * `throughput_kbps` `{min, median, max}` over connected players: payload kbit/s
//!   from a player's first media message to its end (run end or disconnect).
//! * `throughput_reference_kbps`: `--expect-kbps`, else the median throughput;
//!   `players_at_ge_90pct`: share of all N players (failed ones count as below)
//!   whose throughput is >= 0.9 x that reference.
//! * `first_video_frame_ms` `{p50, p95, max}` (nearest rank): from TCP connect start
//!   to the first coded video frame (sequence headers do not count).
//! * `first_video_is_keyframe` `{all, count_keyframe, count_not}`: whether that first
//!   frame was a keyframe; `all` is false when no player got video.
//! * `video_frames` `{min, median, max}`: coded video frames per connected player.
//! * `disconnected_early`: players that started and lost the connection before the
//!   end, with `disconnect_reasons`; `stream_ended`: players told the stream ended
//!   (Stream EOF / UnpublishNotify), who keep waiting for it to come back.
//!
//! ## `publish` output
//! `url`, `file`, `publishers`, `connected` (got Publish.Start), `failed`, `failures`,
//! `failure_examples`, `duration_s`, `bytes_sent` (all bytes written),
//! `payload_bytes_sent`, `tags_sent` (audio + video tags, sequence headers included),
//! `loops` `{min, median, max}` (complete passes through the file per publisher),
//! `max_send_lag_ms` (how late the latest tag left relative to its real-time due
//! time: large values mean the bench or the server could not keep up),
//! `publish_start_ms` `{p50, p95, max}` (nearest rank, over the publishers that
//! started): from TCP connect start to NetStream.Publish.Start, i.e. handshake,
//! connect, createStream and the server's publish decision (an `on_publish` hook
//! included), `disconnected_early`, `disconnect_reasons`, and with `--stamp-wallclock`
//! `t0_unix_ms` (publisher 0's stamped T0).
//!
//! ## `latency` output
//! HTTP-FLV: `url`, `mode` ("http-flv"), `t0_unix_ms`, `duration_s`, `bytes`,
//! `video_frames`, `gop_cache_frames` (sent before the request, not measured),
//! `frames_measured`, `latency_ms` `{min, p50, p95, max}`, `error`.
//! HLS: `url`, `mode` ("hls"), `t0_unix_ms`, `duration_s`, `poll_ms`,
//! `playlist_polls`, `segments_listed_at_start` (not measured),
//! `segments_measured`, `target_duration_s`, `segment_duration_s` and
//! `segment_bytes` `{min, median, max}`, `edge_ms`, `after_segment_end_ms`
//! `{min, p50, p95, max}`, `player_ms` (`hold_back_N` -> `{min, p50, p95, max}` per
//! modelled hold-back), `per_segment_edge_ms`
//! (`[sequence, ms]`), `problems` (count per kind), `error`.
//!
//! ## `first-playlist` output
//! `url`, `command`, `interval_ms`, `playlist_ms` (publisher spawned -> first
//! playlist that lists a segment), `first_segment_ms` (-> that segment downloaded),
//! `polls`, `polls_not_found`, `polls_failed`, `target_duration_s`,
//! `first_segment_duration_s`, `first_segment_bytes`, `error`.

mod conn;
mod first_playlist;
mod http;
mod latency;
mod play;
mod playlist;
mod publish;
mod ramp;
mod stats;
mod tsread;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, Parser, Subcommand};
use ferrocast_proto::rtmp::session::{parse_rtmp_url, ClientMode, ClientTarget};
use serde::Serialize;
use tokio::sync::watch;

/// Exit code for bad arguments (clap uses the same for its own usage errors).
const EXIT_USAGE: u8 = 2;

/// File descriptors kept beyond one per connection (stdio, the runtime's own).
const SPARE_FDS: u64 = 64;

#[derive(Parser)]
#[command(
    name = "ferrocast-bench",
    version,
    about = "RTMP load generator: many players or publishers against one server, JSON report on stdout"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Open N RTMP players on one stream and report what they received.
    Play(PlayArgs),
    /// Push an FLV file in real time from N RTMP publishers.
    Publish(PublishArgs),
    /// Live latency of an HTTP-FLV stream or an HLS playlist, against the wall clock
    /// a `publish --stamp-wallclock` stamped into the stream.
    Latency(LatencyArgs),
    /// Time from starting a publisher command to its first playable HLS playlist.
    FirstPlaylist(FirstPlaylistArgs),
}

#[derive(Args)]
struct PlayArgs {
    /// Stream to play: rtmp://HOST[:PORT]/APP/STREAM (port 1935 if omitted).
    url: String,
    /// Number of players to open.
    #[arg(short = 'n', long = "connections", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    connections: u32,
    /// Run time in seconds, counted from the first connect; then every player closes.
    #[arg(short = 'd', long, value_parser = positive_seconds)]
    duration: f64,
    /// Connections opened per second while ramping up.
    #[arg(short = 'r', long, default_value_t = 100.0, value_parser = positive_number)]
    ramp: f64,
    /// Use the digest (Flash Player / FMS) handshake instead of the simple one.
    #[arg(long)]
    digest: bool,
    /// Reference throughput in kbit/s for players_at_ge_90pct (default: the median).
    #[arg(long, value_name = "KBPS", value_parser = positive_number)]
    expect_kbps: Option<f64>,
}

#[derive(Args)]
struct PublishArgs {
    /// Stream to publish: rtmp://HOST[:PORT]/APP/STREAM; with -n > 1 publisher i uses
    /// STREAM_i (i from 0).
    url: String,
    /// FLV file to push (read into memory once, shared by all publishers).
    #[arg(short = 'f', long, value_name = "F.flv")]
    file: String,
    /// Number of publishers.
    #[arg(short = 'n', long = "connections", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    connections: u32,
    /// Stop after this many seconds from the first connect (default: at the end of
    /// the file, or with --loop until Ctrl-C).
    #[arg(short = 'd', long, value_parser = positive_seconds)]
    duration: Option<f64>,
    /// Start the file over at its end, timestamps continuing.
    #[arg(short = 'l', long = "loop")]
    looping: bool,
    /// Connections opened per second while ramping up.
    #[arg(short = 'r', long, default_value_t = 100.0, value_parser = positive_number)]
    ramp: f64,
    /// Use the digest (Flash Player / FMS) handshake instead of the simple one.
    #[arg(long)]
    digest: bool,
    /// Put the unix time (ms) at which timestamp 0 is sent into onMetaData as
    /// `ferrocastT0`, for `ferrocast-bench latency`.
    #[arg(long)]
    stamp_wallclock: bool,
    /// With --stamp-wallclock: also write publisher 0's T0 to this file.
    #[arg(long, value_name = "PATH", requires = "stamp_wallclock")]
    t0_file: Option<PathBuf>,
}

#[derive(Args)]
struct LatencyArgs {
    /// http://HOST[:PORT]/APP/STREAM.live.flv (HTTP-FLV) or a URL ending in .m3u8 (HLS).
    url: String,
    /// Run time in seconds.
    #[arg(short = 'd', long, value_parser = positive_seconds)]
    duration: f64,
    /// T0 (unix ms) to use instead of the stream's onMetaData.
    #[arg(long, value_name = "MS", conflicts_with = "t0_file")]
    t0: Option<f64>,
    /// Read T0 from this file (written by `publish --t0-file`; waited for).
    #[arg(long, value_name = "PATH")]
    t0_file: Option<PathBuf>,
    /// HLS: playlist poll interval in milliseconds.
    #[arg(long, default_value_t = 20.0, value_parser = positive_number)]
    poll_ms: f64,
    /// HLS: the muxer's constant added to PTS/DTS (90 kHz ticks); ferrocast's by default.
    #[arg(long, value_name = "TICKS", default_value_t = ferrocast_proto::mpegts::TIMESTAMP_OFFSET_90K)]
    pts_offset_90k: u64,
    /// HLS: a modelled player starts this many target durations behind the live
    /// edge (hls.js liveSyncDurationCount); repeat to model several.
    #[arg(long, default_values_t = [3.0, 2.0], value_parser = positive_number)]
    hold_back: Vec<f64>,
}

#[derive(Args)]
struct FirstPlaylistArgs {
    /// http://HOST[:PORT]/APP/STREAM/hls.m3u8
    url: String,
    /// Playlist poll interval in milliseconds.
    #[arg(long, default_value_t = 20.0, value_parser = positive_number)]
    interval_ms: f64,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 15.0, value_parser = positive_seconds)]
    timeout: f64,
    /// The publisher to start (e.g. ffmpeg -re -i F.flv -c copy -f flv rtmp://...).
    #[arg(last = true, required = true, num_args = 1..)]
    command: Vec<String>,
}

fn positive_number(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("`{s}` is not a positive number")),
    }
}

/// Seconds, positive and small enough for a `Duration` (up to about 31 years).
fn positive_seconds(s: &str) -> Result<f64, String> {
    let v = positive_number(s)?;
    if v > 1e9 {
        return Err(format!("`{s}` seconds is too long"));
    }
    Ok(v)
}

/// A bad-argument error: message on stderr, exit code 2.
fn usage_error(message: String) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(EXIT_USAGE)
}

/// URL -> socket address and session target.
fn resolve(url: &str, mode: ClientMode) -> Result<(SocketAddr, ClientTarget), String> {
    use std::net::ToSocketAddrs;
    let (host, port, target) = parse_rtmp_url(url, mode)
        .ok_or_else(|| format!("`{url}` is not an rtmp://HOST[:PORT]/APP/STREAM URL"))?;
    // Resolve once here rather than per connection: 2000 getaddrinfo calls would
    // measure the resolver, not the server.
    let host_port = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let addr = host_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve `{host}`: {e}"))?
        .next()
        .ok_or_else(|| format!("`{host}` resolves to no address"))?;
    Ok((addr, target))
}

/// Raises the open-file limit to fit `connections` sockets, as far as the hard
/// limit allows, and says so when that is not enough.
fn raise_fd_limit(connections: u32) {
    let wanted = u64::from(connections) + SPARE_FDS;
    match rlimit::increase_nofile_limit(wanted) {
        Ok(got) if got < wanted => eprintln!(
            "warning: open file limit is {got}, {wanted} wanted: raise it with `ulimit -n {wanted}`"
        ),
        Ok(_) => {}
        Err(e) => {
            eprintln!("warning: cannot raise the open file limit ({e}): use `ulimit -n {wanted}`")
        }
    }
}

fn print_json<T: Serialize>(report: &T) {
    match serde_json::to_string_pretty(report) {
        Ok(json) => println!("{json}"),
        Err(e) => eprintln!("error: cannot serialise the report: {e}"),
    }
}

/// Runs `body` on a multi-thread runtime with a Ctrl-C handler that flips the
/// stop signal every connection watches.
fn with_runtime<F, Fut>(body: F) -> ExitCode
where
    F: FnOnce(ramp::Stop) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let (stop_tx, stop_rx) = watch::channel(false);
        let stop_tx = Arc::new(stop_tx);
        let on_signal = Arc::clone(&stop_tx);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("stopping (Ctrl-C)...");
                let _ = on_signal.send(true);
            }
        });
        body(stop_rx).await;
        // The sender must outlive the run: its drop would read as a stop.
        drop(stop_tx);
    });
    // Do not wait for the Ctrl-C task (or a player stuck in close) to finish.
    runtime.shutdown_timeout(Duration::from_millis(100));
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    // clap exits with 2 on usage errors and 0 for --help / --version.
    let cli = Cli::parse();
    match cli.command {
        Command::Play(args) => {
            let (addr, target) = match resolve(&args.url, ClientMode::Play) {
                Ok(found) => found,
                Err(message) => return usage_error(message),
            };
            let duration = Duration::from_secs_f64(args.duration);
            let ramp_secs = f64::from(args.connections) / args.ramp;
            if ramp_secs >= args.duration {
                eprintln!(
                    "warning: ramping {} players at {}/s takes {ramp_secs:.1} s, longer than the run",
                    args.connections, args.ramp
                );
            }
            raise_fd_limit(args.connections);
            let plan = play::PlayPlan {
                url: args.url,
                addr,
                target,
                players: args.connections,
                duration,
                ramp: args.ramp,
                digest: args.digest,
                expect_kbps: args.expect_kbps,
            };
            with_runtime(|stop| async move {
                let report = play::run(plan, stop).await;
                print_json(&report);
            })
        }
        Command::Publish(args) => {
            let (addr, target) = match resolve(&args.url, ClientMode::Publish) {
                Ok(found) => found,
                Err(message) => return usage_error(message),
            };
            let data = match std::fs::read(&args.file) {
                Ok(data) => Bytes::from(data),
                Err(e) => return usage_error(format!("cannot read `{}`: {e}", args.file)),
            };
            let media = match publish::load_flv(data) {
                Ok(media) => media,
                Err(message) => return usage_error(format!("`{}`: {message}", args.file)),
            };
            for warning in &media.warnings {
                eprintln!("warning: {}: {warning}", args.file);
            }
            raise_fd_limit(args.connections);
            let plan = publish::PublishPlan {
                url: args.url,
                file: args.file,
                addr,
                target,
                publishers: args.connections,
                duration: args.duration.map(Duration::from_secs_f64),
                looping: args.looping,
                ramp: args.ramp,
                digest: args.digest,
                stamp_wallclock: args.stamp_wallclock,
                t0_file: args.t0_file,
            };
            with_runtime(|stop| async move {
                let report = publish::run(plan, media, stop).await;
                print_json(&report);
            })
        }
        Command::Latency(args) => {
            let http = match http::HttpUrl::parse(&args.url) {
                Ok(u) => u,
                Err(message) => return usage_error(message),
            };
            let t0 = match (args.t0, args.t0_file) {
                (Some(v), _) => latency::T0Source::Value(v),
                (None, Some(path)) => latency::T0Source::File(path),
                (None, None) => latency::T0Source::Metadata,
            };
            let hls = latency::is_hls(&http.path);
            let plan = latency::LatencyPlan {
                url: args.url,
                http,
                duration: Duration::from_secs_f64(args.duration),
                t0,
                pts_offset_90k: args.pts_offset_90k,
                poll: Duration::from_secs_f64(args.poll_ms / 1000.0),
                hold_back_segments: args.hold_back,
            };
            with_runtime(|stop| async move {
                if hls {
                    print_json(&latency::run_hls(&plan, stop).await);
                } else {
                    print_json(&latency::run_flv(&plan, stop).await);
                }
            })
        }
        Command::FirstPlaylist(args) => {
            let http = match http::HttpUrl::parse(&args.url) {
                Ok(u) => u,
                Err(message) => return usage_error(message),
            };
            let plan = first_playlist::FirstPlaylistPlan {
                url: args.url,
                http,
                interval: Duration::from_secs_f64(args.interval_ms / 1000.0),
                timeout: Duration::from_secs_f64(args.timeout),
                command: args.command,
            };
            with_runtime(|stop| async move {
                print_json(&first_playlist::run(plan, stop).await);
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn number_arguments() {
        assert_eq!(positive_number("2.5"), Ok(2.5));
        assert!(positive_number("0").is_err());
        assert!(positive_number("-1").is_err());
        assert!(positive_number("nan").is_err());
        assert!(positive_number("inf").is_err());
        assert!(positive_seconds("1e12").is_err());
    }

    #[test]
    fn flags_parse() {
        let cli = Cli::try_parse_from([
            "ferrocast-bench",
            "play",
            "rtmp://127.0.0.1/live/s",
            "-n",
            "20",
            "--duration",
            "5",
            "--expect-kbps",
            "2000",
        ])
        .unwrap();
        let Command::Play(p) = cli.command else {
            panic!("not play")
        };
        assert_eq!((p.connections, p.duration, p.ramp), (20, 5.0, 100.0));
        assert_eq!(p.expect_kbps, Some(2000.0));
        assert!(Cli::try_parse_from([
            "ferrocast-bench",
            "play",
            "rtmp://h/a/s",
            "-n",
            "0",
            "--duration",
            "1"
        ])
        .is_err());
        assert!(Cli::try_parse_from(["ferrocast-bench", "publish", "rtmp://h/a/s"]).is_err());
    }

    #[test]
    fn delivery_flags_parse() {
        let cli = Cli::try_parse_from([
            "ferrocast-bench",
            "publish",
            "rtmp://h/a/s",
            "-f",
            "x.flv",
            "--stamp-wallclock",
            "--t0-file",
            "t0.txt",
        ])
        .unwrap();
        let Command::Publish(p) = cli.command else {
            panic!("not publish")
        };
        assert!(p.stamp_wallclock);
        assert_eq!(p.t0_file, Some(PathBuf::from("t0.txt")));
        // A T0 file without stamping would never be written.
        assert!(Cli::try_parse_from([
            "ferrocast-bench",
            "publish",
            "rtmp://h/a/s",
            "-f",
            "x.flv",
            "--t0-file",
            "t0.txt"
        ])
        .is_err());

        let cli = Cli::try_parse_from([
            "ferrocast-bench",
            "latency",
            "http://127.0.0.1:8080/live/x/hls.m3u8",
            "--duration",
            "20",
        ])
        .unwrap();
        let Command::Latency(l) = cli.command else {
            panic!("not latency")
        };
        assert_eq!((l.poll_ms, l.hold_back), (20.0, vec![3.0, 2.0]));
        assert_eq!(l.pts_offset_90k, 126_000);

        let cli = Cli::try_parse_from([
            "ferrocast-bench",
            "first-playlist",
            "http://127.0.0.1:8080/live/x/hls.m3u8",
            "--",
            "ffmpeg",
            "-re",
            "-i",
            "x.flv",
        ])
        .unwrap();
        let Command::FirstPlaylist(f) = cli.command else {
            panic!("not first-playlist")
        };
        assert_eq!(f.command, ["ffmpeg", "-re", "-i", "x.flv"]);
        assert_eq!(f.interval_ms, 20.0);
        assert!(Cli::try_parse_from([
            "ferrocast-bench",
            "first-playlist",
            "http://127.0.0.1:8080/live/x/hls.m3u8"
        ])
        .is_err());
    }
}
