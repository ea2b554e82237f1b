//! Adaptive bitrate, end to end: a 720p stream published with ffmpeg (stream copy),
//! transcoded by ferrocast's ffmpeg supervisor with the `default` ladder into 480p and
//! 360p, listed in master.m3u8; what a player sees is checked with ffprobe.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use serde_json::Value;

const SECRET: &str = "abr-secret";

fn s(q: &str) -> String {
    format!("secret={SECRET}&{q}")
}

fn publish_720p(server: &Server, label: &str, name: &str) -> Proc {
    publish_path_to(&server.dir.path, label, &src_720p_flv(), &server.url(name))
}

/// The variants of a master playlist: (uri, attributes).
fn master(server: &Server, stream: &str) -> Option<Vec<m3u8_rs::VariantStream>> {
    let r = server.get(&format!("/live/{stream}/master.m3u8"));
    if r.status != 200 {
        return None;
    }
    let pl = m3u8_rs::parse_master_playlist_res(&r.body).ok()?;
    Some(pl.variants)
}

/// Downloads the newest `n` segments of a variant playlist into one TS file.
fn fetch_segments(server: &Server, playlist: &str, n: usize, out: &std::path::Path) -> Vec<String> {
    let text = common::get_hls_media(server, playlist).text();
    let pl = parse_playlist(&text);
    let base = playlist.rsplit_once('/').unwrap().0;
    let mut data = Vec::new();
    let mut names = Vec::new();
    for e in pl.entries.iter().rev().take(n).rev() {
        let r = server.get(&format!("{base}/{}", e.uri));
        assert_eq!(r.status, 200, "{}", e.uri);
        data.extend_from_slice(&r.body);
        names.push(e.uri.split('?').next().unwrap_or_default().to_owned());
    }
    std::fs::write(out, data).unwrap();
    names
}

/// (pts seconds, keyframe) of the video packets of a TS file.
fn video_packets(path: &std::path::Path) -> Vec<(f64, bool)> {
    ffprobe(&[
        "-f",
        "mpegts",
        "-select_streams",
        "v",
        "-show_entries",
        "packet=pts_time,flags",
        path.to_str().unwrap(),
    ])
    .into_iter()
    .filter_map(|m| {
        Some((
            m.get("pts_time")?.parse().ok()?,
            m.get("flags")?.contains('K'),
        ))
    })
    .collect()
}

/// The first video packet of each segment of a variant: (pts, is keyframe).
fn segment_starts(server: &Server, playlist: &str, n: usize, label: &str) -> Vec<(f64, bool)> {
    let text = common::get_hls_media(server, playlist).text();
    let pl = parse_playlist(&text);
    let base = playlist.rsplit_once('/').unwrap().0;
    let mut starts = Vec::new();
    for e in pl.entries.iter().rev().take(n).rev() {
        let r = server.get(&format!("{base}/{}", e.uri));
        let name = e.uri.split('?').next().unwrap_or_default();
        let path = server.path(&format!("{label}-{name}"));
        std::fs::write(&path, &r.body).unwrap();
        if let Some(first) = video_packets(&path).first() {
            starts.push(*first);
        }
    }
    starts
}

/// RFC 6381 avc1.PPCCLL: the profile and level bytes ffprobe reports must match.
fn codec_matches(codecs: &str, profile: &str, level: u32) -> bool {
    let Some(avc) = codecs.split(',').find(|c| c.starts_with("avc1.")) else {
        return false;
    };
    let hex = &avc[5..];
    let pp = match profile {
        "High" => "64",
        "Main" => "4d",
        "Baseline" | "Constrained Baseline" => "42",
        _ => return false,
    };
    hex.len() == 6
        && hex[..2].eq_ignore_ascii_case(pp)
        && u32::from_str_radix(&hex[4..], 16) == Ok(level)
}

#[test]
fn ladder_master_playlist_alignment_restart_and_stop() {
    let server = Server::start(
        "abr",
        &format!(
            "[api]\nsecret = \"{SECRET}\"\n[general]\ncontinue_push_ms = 1000\n\
             [transcode]\npreset = \"ultrafast\"\nmax_concurrent = 1\nrestart_delay_ms = 500\n"
        ),
    );
    let _publisher = publish_720p(&server, "pub", "m");
    let _small = publish_file(&server, "pub-small", "other", &["-stream_loop", "-1"]);
    wait_online_with(&server, SECRET, "m");
    wait_online_with(&server, SECRET, "other");

    // Bad input.
    let v = api(
        &server,
        "startTranscode",
        &s("app=live&stream=m&ladder=nope"),
    );
    assert!(
        api_code(&v) == -300 && v["msg"].as_str().unwrap().contains("ladder"),
        "{v}"
    );
    let v = api(
        &server,
        "startTranscode",
        &s("app=live&stream=missing&ladder=default"),
    );
    assert_eq!(api_code(&v), -500, "{v}");

    let v = api(
        &server,
        "startTranscode",
        &s("vhost=__defaultVhost__&app=live&stream=m&ladder=default"),
    );
    assert_eq!(api_code(&v), 0, "{v}");
    // One at a time on this machine: the next one is refused, clearly.
    let v = api(
        &server,
        "startTranscode",
        &s("app=live&stream=other&ladder=default"),
    );
    assert_eq!(api_code(&v), -1, "{v}");
    assert!(v["msg"].as_str().unwrap().contains("max_concurrent"), "{v}");

    // master.m3u8: the source and 480p, 360p (1080p and 720p skipped: no upscaling).
    let variants = wait_until(
        "three variants in master.m3u8",
        Duration::from_secs(40),
        || master(&server, "m").filter(|v| v.len() == 3),
    );
    // Each variant URI carries its own HLS session token.
    for v in &variants {
        assert!(v.uri.contains("hls.m3u8?session="), "{}", v.uri);
    }
    let bare = |uri: &str| uri.split('?').next().unwrap_or_default().to_owned();
    let mut uris: Vec<String> = variants.iter().map(|v| bare(&v.uri)).collect();
    let bandwidths: Vec<u64> = variants.iter().map(|v| v.bandwidth).collect();
    assert!(
        bandwidths.windows(2).all(|w| w[0] <= w[1]),
        "ordered by bandwidth: {variants:?}"
    );
    uris.sort();
    assert_eq!(
        uris,
        ["../m_360p/hls.m3u8", "../m_480p/hls.m3u8", "hls.m3u8"]
    );
    let media = api(&server, "getMediaList", &s("schema=hls&app=live&stream=m"));
    assert_eq!(
        media["data"][0]["hlsMaster"], "/live/m/master.m3u8",
        "{media}"
    );
    let expected: HashMap<&str, (u64, u64)> = [
        ("../m_360p/hls.m3u8", (640, 360)),
        ("../m_480p/hls.m3u8", (854, 480)),
        ("hls.m3u8", (1280, 720)),
    ]
    .into();
    for v in &variants {
        let res = v.resolution.expect("RESOLUTION");
        assert_eq!(
            (res.width, res.height),
            expected[bare(&v.uri).as_str()],
            "{}",
            v.uri
        );
        assert!(
            v.bandwidth > 0 && v.average_bandwidth.is_some_and(|a| a <= v.bandwidth),
            "{v:?}"
        );
        assert!(
            v.frame_rate.is_some_and(|f| (f - 25.0).abs() < 1.0),
            "{v:?}"
        );
        let codecs = v.codecs.as_deref().expect("CODECS");
        assert!(codecs.contains("mp4a.40.2"), "{codecs}");
        // Check against what ffprobe sees in the variant's own segments.
        let playlist = format!("/live/m/{}", v.uri).replace("/m/../", "/");
        let ts = server.path(&format!("variant-{}.ts", bare(&v.uri).replace('/', "_")));
        fetch_segments(&server, &playlist, 1, &ts);
        let p = ffprobe(&[
            "-f",
            "mpegts",
            "-select_streams",
            "v",
            "-show_entries",
            "stream=width,height,profile,level",
            ts.to_str().unwrap(),
        ]);
        let w: u64 = p[0]["width"].parse().unwrap();
        let h: u64 = p[0]["height"].parse().unwrap();
        assert_eq!(
            (w, h),
            (res.width, res.height),
            "{} RESOLUTION vs ffprobe",
            v.uri
        );
        let level: u32 = p[0]["level"].parse().unwrap();
        assert!(
            codec_matches(codecs, &p[0]["profile"], level),
            "{codecs} vs ffprobe {p:?}"
        );
        assert_eq!(decode_errors(&ts, Some("mpegts")), "", "{} decodes", v.uri);
    }

    // Keyframes aligned: every rendition segment starts on a keyframe at a time where
    // the source has a keyframe too (within one frame).
    std::thread::sleep(Duration::from_secs(4));
    let src_ts = server.path("source-keys.ts");
    fetch_segments(&server, "/live/m/hls.m3u8", 4, &src_ts);
    let source_keys: Vec<f64> = video_packets(&src_ts)
        .into_iter()
        .filter(|p| p.1)
        .map(|p| p.0)
        .collect();
    assert!(source_keys.len() >= 3, "{source_keys:?}");
    for r in ["m_480p", "m_360p"] {
        let starts = segment_starts(&server, &format!("/live/{r}/hls.m3u8"), 3, r);
        assert!(!starts.is_empty());
        let mut compared = 0;
        for (pts, key) in starts {
            assert!(key, "{r}: segment at {pts} starts on a keyframe");
            if pts >= source_keys[0] - 0.5 && pts <= source_keys[source_keys.len() - 1] + 0.5 {
                let near = source_keys.iter().any(|k| (k - pts).abs() <= 0.041);
                assert!(near, "{r}: segment start {pts} has no source keyframe within a frame: {source_keys:?}");
                compared += 1;
            }
        }
        assert!(
            compared >= 1,
            "{r}: no segment start inside the source's fetched range {source_keys:?}"
        );
    }

    // Kill the ffmpeg child: it is restarted.
    let list = api(&server, "listTranscode", &s(""));
    let pid = list["data"][0]["pid"].as_u64().expect("pid");
    run_ok("kill", &["-9", &pid.to_string()]);
    let list = wait_until("ffmpeg to be restarted", Duration::from_secs(20), || {
        let l = api(&server, "listTranscode", &s(""));
        (l["data"][0]["restarts"].as_u64() >= Some(1)
            && l["data"][0]["pid"].as_u64().is_some_and(|p| p != pid))
        .then_some(l)
    });
    assert_eq!(list["data"][0]["status"], "running", "{list}");
    wait_until(
        "the renditions to come back",
        Duration::from_secs(30),
        || {
            let v = api(
                &server,
                "isMediaOnline",
                &s("schema=rtmp&app=live&stream=m_360p"),
            );
            (v["online"] == true).then_some(())
        },
    );

    // Stopping the publisher stops transcoding (and frees the slot).
    let new_pid = list["data"][0]["pid"].as_u64().unwrap();
    drop(_publisher);
    wait_until("transcoding to stop", Duration::from_secs(20), || {
        let l = api(&server, "listTranscode", &s(""));
        l["data"].as_array().unwrap().is_empty().then_some(())
    });
    assert!(
        !std::path::Path::new(&format!("/proc/{new_pid}")).exists(),
        "ffmpeg {new_pid} is gone"
    );
    let v = api(
        &server,
        "startTranscode",
        &s("app=live&stream=other&ladder=default"),
    );
    assert_eq!(api_code(&v), 0, "the slot is free again: {v}");
    let v = api(&server, "stopTranscode", &s("app=live&stream=other"));
    assert_eq!(api_code(&v), 0, "{v}");
    let _ = Value::Null;
}
