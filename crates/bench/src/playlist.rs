//! Reading a live HLS media playlist (RFC 8216) as a player does: the target
//! duration, and each segment's media sequence number, duration and URI. Tags the
//! bench does not need are skipped. Pure.

/// One listed segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub sequence: u64,
    /// `#EXTINF` duration, seconds.
    pub duration_s: f64,
    pub uri: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MediaPlaylist {
    pub target_duration_s: u64,
    pub entries: Vec<Entry>,
    /// `#EXT-X-ENDLIST`: the stream ended.
    pub ended: bool,
}

/// Parses a media playlist; `Err` when it is not one (no `#EXTM3U`, a master
/// playlist, a bad number).
pub fn parse(text: &str) -> Result<MediaPlaylist, String> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next() != Some("#EXTM3U") {
        return Err("not a playlist (no #EXTM3U)".into());
    }
    let mut target = None;
    let mut sequence = 0u64;
    let mut duration = None;
    let mut entries = Vec::new();
    let mut ended = false;
    for line in lines {
        if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            target = Some(
                v.parse::<u64>()
                    .map_err(|_| format!("bad #EXT-X-TARGETDURATION `{v}`"))?,
            );
        } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            sequence = v
                .parse()
                .map_err(|_| format!("bad #EXT-X-MEDIA-SEQUENCE `{v}`"))?;
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            let v = v.split(',').next().unwrap_or_default();
            duration = Some(v.parse::<f64>().map_err(|_| format!("bad #EXTINF `{v}`"))?);
        } else if line == "#EXT-X-ENDLIST" {
            ended = true;
        } else if line.starts_with("#EXT-X-STREAM-INF") {
            return Err("a master playlist, not a media playlist".into());
        } else if !line.starts_with('#') {
            entries.push(Entry {
                sequence,
                duration_s: duration.take().unwrap_or(0.0),
                uri: line.to_owned(),
            });
            sequence += 1;
        }
    }
    Ok(MediaPlaylist {
        target_duration_s: target.ok_or("no #EXT-X-TARGETDURATION")?,
        entries,
        ended,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_playlist() {
        let p = parse(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n\
             #EXT-X-DISCONTINUITY-SEQUENCE:0\n\n#EXT-X-PROGRAM-DATE-TIME:2026-11-24T10:00:00.000Z\n\
             #EXTINF:2.000,\n7.ts\n\n#EXTINF:1.967,\n8.ts\n",
        )
        .unwrap();
        assert_eq!(p.target_duration_s, 2);
        assert!(!p.ended);
        assert_eq!(
            p.entries,
            vec![
                Entry {
                    sequence: 7,
                    duration_s: 2.0,
                    uri: "7.ts".into()
                },
                Entry {
                    sequence: 8,
                    duration_s: 1.967,
                    uri: "8.ts".into()
                }
            ]
        );
    }

    #[test]
    fn nginx_rtmp_style_and_errors() {
        let p = parse(
            "#EXTM3U\r\n#EXT-X-VERSION:3\r\n#EXT-X-MEDIA-SEQUENCE:0\r\n#EXT-X-TARGETDURATION:2\r\n\
             #EXTINF:2.000,\r\nx-0.ts\r\n#EXT-X-ENDLIST\r\n",
        )
        .unwrap();
        assert_eq!(p.entries[0].uri, "x-0.ts");
        assert!(p.ended);
        assert!(parse("").is_err());
        assert!(parse("#EXTM3U\n#EXTINF:2,\na.ts\n").is_err());
        assert!(parse("#EXTM3U\n#EXT-X-TARGETDURATION:x\n").is_err());
        assert!(parse("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nlo.m3u8\n").is_err());
    }
}
