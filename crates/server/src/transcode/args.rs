//! The ffmpeg command lines, built without running anything: which renditions a
//! ladder makes of a source ([`plan_renditions`]), the transcode command
//! ([`transcode_args`]), the addFFmpegSource command ([`ffmpeg_source_args`]), and the
//! URLs and keys they use. Pure functions of their arguments, so every flag below is
//! checked by unit tests that need no ffmpeg; this file must never spawn a process,
//! read a clock or look at the hub.
//!
//! # Keyframes and timestamps follow the source
//! An HLS player switches variants at segment boundaries, so a rendition must have a
//! keyframe wherever the source has one, and the same timestamps, or a switch jumps
//! or stalls. The flags that achieve that with ffmpeg 5.1 (checked against the
//! server: every rendition frame carried a source timestamp, 0 ms off, and its
//! keyframes were exactly the source's; `tests/transcode_ffmpeg.rs` does that check
//! with real ffmpeg processes):
//! * `-copyts`: no shift of the input timestamps to zero, so a rendition of a stream
//!   that has been live for an hour starts at the hour too.
//! * `-fps_mode passthrough` and `-enc_time_base:v 1:1000`: every decoded frame is
//!   encoded once with its own millisecond timestamp (no frame-rate conversion, no
//!   rounding to a 1/fps time base).
//! * `-force_key_frames source` with `-forced-idr 1`: an IDR frame exactly where the
//!   source has a keyframe; `-sc_threshold 0` and `-g 1000` so the encoder adds none of
//!   its own (1000 frames is longer than any live GOP: 40 s at 25 fps).
//! * `-bf 0`: without B-frames dts equals pts, so the first dts is never negative;
//!   with them the first dts of a stream starting at 0 is, and the muxer would shift
//!   every timestamp by the encoder's B-frame delay (FLV cannot carry negative ones).
//! * `-bsf:a noise=drop=lt(pts\,0)`: the AAC encoder's first packet (its priming) is
//!   stamped 1024 samples before its input; for a source starting at 0 that is
//!   negative and the muxer would shift every track by ~23 ms. Only that packet is
//!   dropped, and only when negative.
//!
//! Rungs at or above the source's height are skipped (no upscaling); the width is
//! `-2` (the source's aspect, even).
//!
//! # Hardware encoders
//! `transcode.encoder` may be `h264_nvenc`, `h264_qsv` or `h264_vaapi` (only libx264
//! is tested). Their key-frame flags are set here (`-forced-idr`, `-forced_idr`,
//! `-no-scenecut`), and for VA-API each scaled picture is uploaded with
//! `format=nv12,hwupload`. The device itself must come from `transcode.extra_args`,
//! which are placed once, before the input: global and input options such as
//! `-vaapi_device /dev/dri/renderD128` or `-init_hw_device`. They are not repeated
//! per output, so per-encoder options there would reach no output.
//!
//! # ffmpeg sources
//! ZLMediaKit's default addFFmpegSource command is a re-encode; ferrocast's only
//! command copies: `ffmpeg [-re] -i {src_url} -c copy -f flv {dst_url}`, with `-re`
//! for files only (they would otherwise be pushed as fast as they can be read).

use std::net::{IpAddr, SocketAddr};

use crate::config::{Ladder, TranscodeConfig};
use crate::hub::{StreamKey, DEFAULT_VHOST};

const RW_TIMEOUT_US: &str = "10000000";
/// The encoders' maximum GOP, in frames: longer than any live GOP, so keyframes come
/// only from the source's (`-force_key_frames source`).
const MAX_GOP_FRAMES: &str = "1000";

/// One rendition of a source: a rung of its ladder, published as its own stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendition {
    /// The rung's name, the stream's suffix (`480p`).
    pub name: String,
    /// `{vhost}/{app}/{stream}_{name}`.
    pub key: StreamKey,
    /// Expected output size; width 0 when the source's size is unknown.
    pub width: u32,
    pub height: u32,
    pub video_kbps: u32,
    pub audio_kbps: u32,
    /// The configured video plus audio bitrate, bits per second (the master
    /// playlist's BANDWIDTH before anything was measured).
    pub bandwidth_bps: u64,
}

/// The key of the rendition `rung` of `source`: `{stream}_{rung}` in the same
/// vhost and app.
pub fn rendition_key(source: &StreamKey, rung: &str) -> StreamKey {
    StreamKey {
        vhost: source.vhost.clone(),
        app: source.app.clone(),
        stream: format!("{}_{rung}", source.stream),
    }
}

/// The renditions `ladder` makes of a `src_width`x`src_height` source, in ladder
/// order: rungs at or above the source's height are skipped (all are kept when the
/// height is unknown, 0). Heights are made even (4:2:0 needs it); widths are what
/// ffmpeg's `scale=-2:h` gives: the source's aspect, rounded to an even number.
pub fn plan_renditions(
    source: &StreamKey,
    ladder: &Ladder,
    src_width: u32,
    src_height: u32,
) -> Vec<Rendition> {
    ladder
        .rungs
        .iter()
        .filter(|r| src_height == 0 || r.height < src_height)
        .map(|r| {
            let height = (r.height & !1).max(2);
            let width = if src_width == 0 || src_height == 0 {
                0
            } else {
                // av_rescale(h, w, 2 * src_h) rounded to nearest, times 2.
                let num = u64::from(height) * u64::from(src_width);
                let den = 2 * u64::from(src_height);
                (((num + den / 2) / den) * 2) as u32
            };
            Rendition {
                name: r.name.clone(),
                key: rendition_key(source, &r.name),
                width,
                height,
                video_kbps: r.video_kbps,
                audio_kbps: ladder.audio_kbps,
                bandwidth_bps: (u64::from(r.video_kbps) + u64::from(ladder.audio_kbps)) * 1000,
            }
        })
        .collect()
}

/// The RTMP URL of `key` on this server at `addr`; `?vhost=` only for a vhost other
/// than the default (the RTMP listener reads it from the stream name's query).
pub fn rtmp_url(addr: SocketAddr, key: &StreamKey) -> String {
    let mut url = format!("rtmp://{addr}/{}/{}", key.app, key.stream);
    if key.vhost != DEFAULT_VHOST {
        url.push_str("?vhost=");
        url.push_str(&key.vhost);
    }
    url
}

/// An ffmpeg command line being built.
#[derive(Default)]
struct Args(Vec<String>);

impl Args {
    /// Fixed flags and values, separated by spaces (none may contain one).
    fn words(&mut self, s: &str) -> &mut Self {
        self.0.extend(s.split_whitespace().map(str::to_owned));
        self
    }

    /// One argument, taken as it is (a URL, a configured value).
    fn arg(&mut self, s: impl Into<String>) -> &mut Self {
        self.0.push(s.into());
        self
    }
}

/// The ffmpeg arguments (without the program) of a transcode reading `input` and
/// publishing each of `renditions` to this server at `rtmp_addr`. See the module
/// documentation for why each key-frame and timestamp flag is there.
pub fn transcode_args(
    config: &TranscodeConfig,
    input: &str,
    renditions: &[Rendition],
    rtmp_addr: SocketAddr,
) -> Vec<String> {
    let encoder = config.encoder.as_str();
    let mut a = Args::default();
    a.words("-hide_banner -nostdin -nostats -loglevel info -copyts");
    for extra in &config.extra_args {
        a.arg(extra);
    }
    a.words("-rw_timeout")
        .arg(RW_TIMEOUT_US)
        .words("-i")
        .arg(input);

    // [0:v:0]split=N[s0][s1];[s0]scale=-2:480[v0];[s1]scale=-2:360[v1]
    let upload = if encoder == "h264_vaapi" {
        ",format=nv12,hwupload"
    } else {
        ""
    };
    let mut graph = String::new();
    if renditions.len() > 1 {
        graph.push_str(&format!("[0:v:0]split={}", renditions.len()));
        for i in 0..renditions.len() {
            graph.push_str(&format!("[s{i}]"));
        }
        for (i, r) in renditions.iter().enumerate() {
            graph.push_str(&format!(";[s{i}]scale=-2:{}{upload}[v{i}]", r.height));
        }
    } else if let Some(r) = renditions.first() {
        graph.push_str(&format!("[0:v:0]scale=-2:{}{upload}[v0]", r.height));
    }
    a.words("-filter_complex").arg(graph);

    for (i, r) in renditions.iter().enumerate() {
        a.words(&format!("-map [v{i}] -map 0:a? -c:v")).arg(encoder);
        if !config.preset.is_empty() && encoder != "h264_vaapi" {
            a.words("-preset").arg(&config.preset);
        }
        if encoder == "libx264" || encoder.starts_with("h264_") {
            a.words("-profile:v main");
        }
        let v = r.video_kbps;
        a.words(&format!(
            "-b:v {v}k -maxrate {v}k -bufsize {}k",
            v.saturating_mul(2)
        ));
        match encoder {
            "h264_vaapi" => {} // hardware frames: the filter graph uploaded them
            "h264_qsv" => {
                a.words("-pix_fmt nv12");
            }
            _ => {
                a.words("-pix_fmt yuv420p");
            }
        }
        a.words(&format!(
            "-g {MAX_GOP_FRAMES} -bf 0 -force_key_frames source"
        ));
        match encoder {
            "libx264" => a.words("-forced-idr 1 -sc_threshold 0"),
            "h264_nvenc" => a.words("-forced-idr 1 -no-scenecut 1"),
            "h264_qsv" => a.words("-forced_idr 1"),
            _ => &mut a,
        };
        a.words("-fps_mode passthrough -enc_time_base:v 1:1000");
        a.words(&format!("-c:a aac -b:a {}k", r.audio_kbps));
        a.words(r"-bsf:a noise=drop=lt(pts\,0) -f flv");
        a.arg(rtmp_url(rtmp_addr, &r.key));
    }
    a.0
}

/// Whether ffmpeg should read `src_url` at its native rate (`-re`): files (a path,
/// `file:`, or an http(s) URL of an MP4/MKV/MOV/WebM/AVI file) would otherwise be
/// pushed as fast as they can be read; live protocols arrive at their own pace.
fn reads_a_file(src_url: &str) -> bool {
    let lower = src_url.to_ascii_lowercase();
    match lower.split_once("://") {
        None => true,
        Some(("file", _)) => true,
        Some(("http" | "https", rest)) => {
            let path = rest.split(['?', '#']).next().unwrap_or("");
            [".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v"]
                .iter()
                .any(|ext| path.ends_with(ext))
        }
        Some(_) => lower.starts_with("file:"),
    }
}

/// The ffmpeg arguments of an addFFmpegSource job (ZLMediaKit's default command is a
/// re-encode; ferrocast's only command copies): `[-re] -i src -c copy -f flv dst`
/// (`-f rtsp` for an `rtsp://` destination).
pub fn ffmpeg_source_args(src_url: &str, dst_url: &str) -> Vec<String> {
    let mut a = Args::default();
    a.words("-hide_banner -nostdin -nostats -loglevel info -rw_timeout")
        .arg(RW_TIMEOUT_US);
    if reads_a_file(src_url) {
        a.words("-re");
    }
    let format = if dst_url.to_ascii_lowercase().starts_with("rtsp://") {
        "rtsp"
    } else {
        "flv"
    };
    a.words("-i")
        .arg(src_url)
        .words("-c copy -f")
        .arg(format)
        .arg(dst_url);
    a.0
}

/// The key of an addFFmpegSource job: ZLMediaKit uses the MD5 of `dst_url`;
/// ferrocast a 64-bit FNV-1a hash (no crypto needed, one job per destination).
pub fn ffmpeg_source_key(dst_url: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in dst_url.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The stream `dst_url` publishes to if it points at this server's RTMP listener
/// (`rtmp_addr` as bound, which may be unspecified), split the way ffmpeg splits an
/// RTMP URL into app and stream name; `None` for any other destination.
pub fn local_stream_key(dst_url: &str, rtmp_addr: SocketAddr) -> Option<StreamKey> {
    let rest = dst_url.strip_prefix("rtmp://")?;
    let (authority, path_query) = rest.split_once('/')?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, p) = v6.split_once(']')?;
        (h, p.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port: u16 = match port {
        Some(p) => p.parse().ok()?,
        None => 1935,
    };
    if port != rtmp_addr.port() {
        return None;
    }
    let ours = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip == rtmp_addr.ip());
    if !ours {
        return None;
    }
    let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
    // ffmpeg: `a/b` is app a, stream b; `a/b/c` is app a/b, stream c (unless a `:`
    // comes before the second slash: `a/mp4:b/c` is app a, stream mp4:b/c).
    let (app, stream) = match path.split_once('/') {
        None => ("", path),
        Some((first, rest)) => match rest.find('/') {
            Some(i) if !rest[..i].contains(':') => (&path[..first.len() + 1 + i], &rest[i + 1..]),
            _ => (first, rest),
        },
    };
    let stream = stream.strip_suffix(".flv").unwrap_or(stream);
    if stream.is_empty() {
        return None;
    }
    let vhost = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("vhost="))
        .filter(|v| !v.is_empty());
    Some(StreamKey::new(vhost, app, stream))
}

#[cfg(test)]
pub(super) mod tests {
    //! The ladder, config and keys shared with the transcoder's tests.
    use super::*;
    use crate::config::Rung;
    use std::collections::BTreeMap;

    pub(crate) fn ladder() -> Ladder {
        let rung = |name: &str, height, video_kbps| Rung {
            name: name.into(),
            height,
            video_kbps,
        };
        Ladder {
            audio_kbps: 128,
            rungs: vec![
                rung("1080p", 1080, 6000),
                rung("720p", 720, 3000),
                rung("480p", 480, 1200),
                rung("360p", 360, 600),
            ],
        }
    }

    pub(crate) fn config(ffmpeg: &str, max_concurrent: usize) -> TranscodeConfig {
        TranscodeConfig {
            max_concurrent,
            ffmpeg: ffmpeg.into(),
            encoder: "libx264".into(),
            preset: "veryfast".into(),
            extra_args: vec![],
            restart_delay_ms: 50,
            restart_max_delay_ms: 200,
            apps: BTreeMap::new(),
            ladders: [("default".to_owned(), ladder())].into(),
        }
    }

    pub(crate) fn addr() -> SocketAddr {
        "127.0.0.1:19350".parse().unwrap()
    }

    pub(crate) fn key(stream: &str) -> StreamKey {
        StreamKey::new(None, "live", stream)
    }

    /// The values following each occurrence of `flag`.
    fn values<'a>(args: &'a [String], flag: &str) -> Vec<&'a str> {
        args.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    }

    #[test]
    fn rungs_at_or_above_the_source_height_are_skipped() {
        let r = plan_renditions(&key("m"), &ladder(), 1280, 720);
        let names: Vec<&str> = r.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["480p", "360p"]);
        assert_eq!(
            (r[0].width, r[0].height),
            (854, 480),
            "ffmpeg's scale=-2:480 of 1280x720"
        );
        assert_eq!((r[1].width, r[1].height), (640, 360));
        assert_eq!(r[0].key, key("m_480p"));
        assert_eq!(r[0].bandwidth_bps, 1_328_000);
        assert_eq!(r[1].bandwidth_bps, 728_000);
        // 1080p source: 720p and below.
        let r = plan_renditions(&key("m"), &ladder(), 1920, 1080);
        assert_eq!(r.len(), 3);
        assert_eq!((r[0].width, r[0].height), (1280, 720));
        // 360p source: nothing. Unknown height: everything, width unknown.
        assert!(plan_renditions(&key("m"), &ladder(), 640, 360).is_empty());
        let r = plan_renditions(&key("m"), &ladder(), 0, 0);
        assert_eq!(r.len(), 4);
        assert_eq!(r[0].width, 0);
        // Odd heights are made even; 4:3 sources keep their aspect.
        let mut l = ladder();
        l.rungs[3].height = 361;
        let r = plan_renditions(&key("m"), &l, 640, 480);
        assert_eq!((r[0].width, r[0].height), (480, 360));
    }

    #[test]
    fn urls_carry_the_vhost_only_when_not_default() {
        assert_eq!(rtmp_url(addr(), &key("m")), "rtmp://127.0.0.1:19350/live/m");
        let k = StreamKey::new(Some("example.com"), "live", "m_480p");
        assert_eq!(
            rtmp_url(addr(), &k),
            "rtmp://127.0.0.1:19350/live/m_480p?vhost=example.com"
        );
        let v6: SocketAddr = "[::1]:1935".parse().unwrap();
        assert_eq!(rtmp_url(v6, &key("m")), "rtmp://[::1]:1935/live/m");
    }

    #[test]
    fn transcode_command_has_one_output_per_rung_with_aligned_keyframes() {
        let cfg = config("ffmpeg", 2);
        let r = plan_renditions(&key("m"), &ladder(), 1280, 720);
        let args = transcode_args(&cfg, "rtmp://127.0.0.1:19350/live/m", &r, addr());
        let pos = |a: &str| args.iter().position(|x| x == a).unwrap();
        // Input side.
        assert!(pos("-copyts") < pos("-i"));
        assert_eq!(values(&args, "-i"), ["rtmp://127.0.0.1:19350/live/m"]);
        assert_eq!(values(&args, "-rw_timeout"), [RW_TIMEOUT_US]);
        assert_eq!(
            values(&args, "-filter_complex"),
            ["[0:v:0]split=2[s0][s1];[s0]scale=-2:480[v0];[s1]scale=-2:360[v1]"]
        );
        // One FLV output per rung, in rung order, published back as {stream}_{rung}.
        assert_eq!(values(&args, "-f"), ["flv", "flv"]);
        assert_eq!(args.last().unwrap(), "rtmp://127.0.0.1:19350/live/m_360p");
        let outputs: Vec<&String> = args
            .iter()
            .filter(|a| a.starts_with("rtmp://127.0.0.1:19350/live/m_"))
            .collect();
        assert_eq!(
            outputs,
            [
                "rtmp://127.0.0.1:19350/live/m_480p",
                "rtmp://127.0.0.1:19350/live/m_360p"
            ]
        );
        assert_eq!(values(&args, "-map"), ["[v0]", "0:a?", "[v1]", "0:a?"]);
        // Bitrates.
        assert_eq!(values(&args, "-b:v"), ["1200k", "600k"]);
        assert_eq!(values(&args, "-maxrate"), ["1200k", "600k"]);
        assert_eq!(values(&args, "-bufsize"), ["2400k", "1200k"]);
        assert_eq!(values(&args, "-b:a"), ["128k", "128k"]);
        assert_eq!(values(&args, "-c:a"), ["aac", "aac"]);
        // Key frames and timestamps, per output.
        assert_eq!(values(&args, "-c:v"), ["libx264", "libx264"]);
        assert_eq!(values(&args, "-preset"), ["veryfast", "veryfast"]);
        assert_eq!(values(&args, "-profile:v"), ["main", "main"]);
        assert_eq!(values(&args, "-force_key_frames"), ["source", "source"]);
        assert_eq!(values(&args, "-forced-idr"), ["1", "1"]);
        assert_eq!(values(&args, "-sc_threshold"), ["0", "0"]);
        assert_eq!(values(&args, "-g"), ["1000", "1000"]);
        assert_eq!(values(&args, "-bf"), ["0", "0"]);
        assert_eq!(values(&args, "-fps_mode"), ["passthrough", "passthrough"]);
        assert_eq!(values(&args, "-enc_time_base:v"), ["1:1000", "1:1000"]);
        assert_eq!(values(&args, "-pix_fmt"), ["yuv420p", "yuv420p"]);
        assert_eq!(values(&args, "-bsf:a"), ["noise=drop=lt(pts\\,0)"; 2]);
        // Each output's options come after the previous output's URL.
        let first_url = pos("rtmp://127.0.0.1:19350/live/m_480p");
        assert!(args[first_url + 1..].iter().any(|a| a == "[v1]"));
        assert!(!args[..first_url].iter().any(|a| a == "[v1]"));
    }

    #[test]
    fn single_rung_needs_no_split_and_vhost_reaches_outputs() {
        let cfg = config("ffmpeg", 2);
        let source = StreamKey::new(Some("example.com"), "live", "m");
        let r = plan_renditions(&source, &ladder(), 854, 480);
        assert_eq!(r.len(), 1);
        let args = transcode_args(&cfg, &rtmp_url(addr(), &source), &r, addr());
        assert_eq!(
            values(&args, "-filter_complex"),
            ["[0:v:0]scale=-2:360[v0]"]
        );
        assert_eq!(
            values(&args, "-i"),
            ["rtmp://127.0.0.1:19350/live/m?vhost=example.com"]
        );
        assert_eq!(
            args.last().unwrap(),
            "rtmp://127.0.0.1:19350/live/m_360p?vhost=example.com"
        );
    }

    #[test]
    fn hardware_encoders_get_their_own_flags_and_extra_args_precede_the_input() {
        let mut cfg = config("ffmpeg", 2);
        let r = plan_renditions(&key("m"), &ladder(), 1280, 720);
        cfg.encoder = "h264_nvenc".into();
        cfg.preset = "p4".into();
        cfg.extra_args = vec!["-hwaccel".into(), "cuda".into()];
        let args = transcode_args(&cfg, "in", &r, addr());
        assert!(
            args.iter().position(|a| a == "cuda").unwrap()
                < args.iter().position(|a| a == "-i").unwrap()
        );
        assert_eq!(
            values(&args, "-hwaccel").len(),
            1,
            "extra_args once, not per output"
        );
        assert_eq!(values(&args, "-no-scenecut"), ["1", "1"]);
        assert_eq!(values(&args, "-forced-idr"), ["1", "1"]);
        assert!(values(&args, "-sc_threshold").is_empty());
        assert_eq!(values(&args, "-preset"), ["p4", "p4"]);
        cfg.encoder = "h264_vaapi".into();
        let args = transcode_args(&cfg, "in", &r, addr());
        assert!(
            values(&args, "-filter_complex")[0].contains("scale=-2:480,format=nv12,hwupload[v0]")
        );
        assert!(values(&args, "-preset").is_empty());
        assert!(values(&args, "-pix_fmt").is_empty());
        assert_eq!(values(&args, "-force_key_frames"), ["source", "source"]);
        cfg.encoder = "h264_qsv".into();
        let args = transcode_args(&cfg, "in", &r, addr());
        assert_eq!(values(&args, "-forced_idr"), ["1", "1"]);
        assert_eq!(values(&args, "-pix_fmt"), ["nv12", "nv12"]);
    }

    #[test]
    fn ffmpeg_source_command_reads_files_at_native_rate() {
        let a = ffmpeg_source_args("/media/a.mp4", "rtmp://127.0.0.1/live/a");
        assert!(a.contains(&"-re".to_owned()));
        assert_eq!(values(&a, "-i"), ["/media/a.mp4"]);
        assert_eq!(values(&a, "-c"), ["copy"]);
        assert_eq!(values(&a, "-f"), ["flv"]);
        assert_eq!(a.last().unwrap(), "rtmp://127.0.0.1/live/a");
        assert!(
            ffmpeg_source_args("http://h/v.MP4?x=1", "rtmp://h/a/b").contains(&"-re".to_owned())
        );
        assert!(!ffmpeg_source_args("rtsp://cam/1", "rtmp://h/a/b").contains(&"-re".to_owned()));
        assert!(
            !ffmpeg_source_args("http://h/live.flv", "rtmp://h/a/b").contains(&"-re".to_owned())
        );
        assert_eq!(
            values(&ffmpeg_source_args("rtsp://cam/1", "rtsp://h/a/b"), "-f"),
            ["rtsp"]
        );
    }

    #[test]
    fn own_rtmp_urls_are_recognized_like_ffmpeg_splits_them() {
        let any: SocketAddr = "0.0.0.0:19350".parse().unwrap();
        let k = |s| local_stream_key(s, any);
        assert_eq!(k("rtmp://127.0.0.1:19350/live/a"), Some(key("a")));
        assert_eq!(k("rtmp://localhost:19350/live/a.flv"), Some(key("a")));
        assert_eq!(
            k("rtmp://127.0.0.1:19350/live/a?vhost=v.example&x=1"),
            Some(StreamKey::new(Some("v.example"), "live", "a"))
        );
        assert_eq!(
            k("rtmp://127.0.0.1:19350/a/b/c"),
            Some(StreamKey::new(None, "a/b", "c"))
        );
        assert_eq!(k("rtmp://[::1]:19350/live/a"), Some(key("a")));
        assert_eq!(k("rtmp://127.0.0.1/live/a"), None, "port 1935");
        assert_eq!(k("rtmp://10.1.2.3:19350/live/a"), None, "another host");
        assert_eq!(k("rtsp://127.0.0.1:19350/live/a"), None);
        let bound: SocketAddr = "10.1.2.3:1935".parse().unwrap();
        assert_eq!(
            local_stream_key("rtmp://10.1.2.3/live/a", bound),
            Some(key("a"))
        );
        assert_eq!(
            ffmpeg_source_key("rtmp://x/a/b"),
            ffmpeg_source_key("rtmp://x/a/b")
        );
        assert_ne!(
            ffmpeg_source_key("rtmp://x/a/b"),
            ffmpeg_source_key("rtmp://x/a/c")
        );
    }
}
