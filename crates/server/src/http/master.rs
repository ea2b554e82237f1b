//! The master playlist of a stream (`/{app}/{stream}/master.m3u8`): the source and
//! its transcoded renditions (`{stream}_{rung}`), each with BANDWIDTH,
//! AVERAGE-BANDWIDTH, RESOLUTION, FRAME-RATE and CODECS, ordered by bandwidth.
//! Written with m3u8-rs. The source's bandwidths are measured from what its
//! publisher sends (its whole life for the average; the last second for the peak).
//! A rendition's BANDWIDTH is its configured rate (the encoder's `-maxrate`) plus 10%
//! for the container, because a rendition that has just started has sent a burst (the
//! GOP cache, encoded faster than real time) that would overstate a measurement; its
//! AVERAGE-BANDWIDTH is measured, at most that.

use m3u8_rs::{MasterPlaylist, Resolution, VariantStream};

use crate::hub::{Hub, StreamKey};

/// One variant, as the master playlist lists it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Variant {
    pub uri: String,
    pub bandwidth: u64,
    pub average_bandwidth: u64,
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    pub codecs: Option<String>,
}

/// What the hub knows of a stream, as a variant at `uri`; `None` while it has no
/// media yet. `configured`: a rendition's encoder rate (bits/s).
pub(crate) fn variant(
    hub: &Hub,
    key: &StreamKey,
    uri: String,
    configured: Option<u64>,
) -> Option<Variant> {
    let s = hub.find(key)?;
    let snap = s.snapshot();
    let alive = s.created.elapsed().as_secs_f64().max(1.0);
    let average = (s.bytes_in() as f64 * 8.0 / alive) as u64;
    if average == 0 {
        return None;
    }
    let now = s.bytes_speed() * 8;
    let codecs: Vec<String> = [
        snap.info
            .video
            .as_ref()
            .and_then(|v| v.codec_string.clone()),
        snap.info
            .audio
            .as_ref()
            .and_then(|a| a.codec_string.clone()),
    ]
    .into_iter()
    .flatten()
    .collect();
    let video = snap.info.video.as_ref();
    // A peak a little above what was seen (or allowed), so players do not pick a
    // variant their bandwidth only just covers.
    let bandwidth = match configured {
        Some(rate) => (rate as f64 * 1.1) as u64,
        None => (average.max(now) as f64 * 1.1) as u64,
    };
    Some(Variant {
        uri,
        bandwidth,
        average_bandwidth: average.min(bandwidth),
        width: video.map(|v| v.width).unwrap_or(0),
        height: video.map(|v| v.height).unwrap_or(0),
        fps: video
            .map(|v| (v.fps() * 1000.0).round() / 1000.0)
            .unwrap_or(0.0),
        codecs: (!codecs.is_empty()).then(|| codecs.join(",")),
    })
}

/// Renders the master playlist, variants ordered by bandwidth (lowest first).
pub(crate) fn render(mut variants: Vec<Variant>) -> Vec<u8> {
    variants.sort_by_key(|v| v.bandwidth);
    let playlist = MasterPlaylist {
        version: Some(3),
        independent_segments: true,
        variants: variants
            .into_iter()
            .map(|v| VariantStream {
                uri: v.uri,
                bandwidth: v.bandwidth,
                average_bandwidth: Some(v.average_bandwidth),
                codecs: v.codecs,
                resolution: (v.width > 0 && v.height > 0).then_some(Resolution {
                    width: u64::from(v.width),
                    height: u64::from(v.height),
                }),
                frame_rate: (v.fps > 0.0).then_some(v.fps),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let mut out = Vec::new();
    let _ = playlist.write_to(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_by_bandwidth_with_attributes() {
        let v = |uri: &str, bw: u64, h: u32| Variant {
            uri: uri.into(),
            bandwidth: bw,
            average_bandwidth: bw * 9 / 10,
            width: h * 16 / 9,
            height: h,
            fps: 25.0,
            codecs: Some("avc1.64001f,mp4a.40.2".into()),
        };
        let text = String::from_utf8(render(vec![
            v("hls.m3u8", 3_000_000, 720),
            v("../s_360p/hls.m3u8", 700_000, 360),
            v("../s_480p/hls.m3u8", 1_300_000, 480),
        ]))
        .unwrap();
        let parsed = m3u8_rs::parse_master_playlist_res(text.as_bytes()).unwrap();
        let uris: Vec<&str> = parsed.variants.iter().map(|v| v.uri.as_str()).collect();
        assert_eq!(
            uris,
            ["../s_360p/hls.m3u8", "../s_480p/hls.m3u8", "hls.m3u8"]
        );
        let top = &parsed.variants[2];
        assert_eq!(top.bandwidth, 3_000_000);
        assert_eq!(top.average_bandwidth, Some(2_700_000));
        assert_eq!(
            top.resolution.map(|r| (r.width, r.height)),
            Some((1280, 720))
        );
        assert_eq!(top.frame_rate, Some(25.0));
        assert_eq!(top.codecs.as_deref(), Some("avc1.64001f,mp4a.40.2"));
        assert!(text.contains("RESOLUTION=1280x720"), "{text}");
    }
}
