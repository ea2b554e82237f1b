//! An HLS recording, done better than ZLMediaKit's (whose "HLS recording" is the live
//! muxer, whose segments rotate away): MPEG-TS segments that are never deleted and a
//! playlist of type EVENT, rewritten (by rename) after each segment, that gets
//! `#EXT-X-ENDLIST` when the recording ends, which makes it a complete VOD playlist.
//!
//! Layout: `{root}/{app}/{stream}/{YYYY-MM-DD}/{HH-MM-SS}/index.m3u8` and
//! `{n}.ts` beside it. It is independent of the live HLS window and settings.
//! A publisher that comes back (new codec headers after media) continues the same
//! recording after an `#EXT-X-DISCONTINUITY`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use ferrocast_proto::mpegts::TsMuxer;
use tokio::sync::watch;

use super::{now_unix, RecordEvent, RecordKind, TaskContext};
use crate::hub::{Packet, PacketKind, Subscription};

/// One finished segment in the playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub name: String,
    pub duration_ms: u64,
    pub discontinuity: bool,
}

/// The recording playlist. `target_s` is fixed for the life of the playlist
/// (RFC 8216 forbids changing it); segments are cut by 2x the segment duration at
/// the latest, so it is that bound.
pub fn render_playlist(
    entries: &[Entry],
    target_s: u64,
    program_date_ms: i64,
    ended: bool,
) -> String {
    let mut s = String::new();
    s.push_str("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-PLAYLIST-TYPE:EVENT\n");
    let _ = writeln!(s, "#EXT-X-TARGETDURATION:{target_s}");
    s.push_str("#EXT-X-MEDIA-SEQUENCE:0\n");
    if program_date_ms > 0 {
        let secs = (program_date_ms / 1000) as u64;
        let (d, t) = super::date_time(secs);
        let _ = writeln!(
            s,
            "#EXT-X-PROGRAM-DATE-TIME:{d}T{}.{:03}Z",
            t.replace('-', ":"),
            program_date_ms % 1000
        );
    }
    for e in entries {
        if e.discontinuity {
            s.push_str("#EXT-X-DISCONTINUITY\n");
        }
        let _ = writeln!(
            s,
            "#EXTINF:{:.3},\n{}",
            e.duration_ms as f64 / 1000.0,
            e.name
        );
    }
    if ended {
        s.push_str("#EXT-X-ENDLIST\n");
    }
    s
}

struct State {
    dir: PathBuf,
    entries: Vec<Entry>,
    start_unix: u64,
    start_ms: i64,
    target_s: u64,
    /// Open segment: bytes, first dts, whether a discontinuity precedes it.
    buf: BytesMut,
    seg_start: Option<i64>,
    last_dts: i64,
    next_discontinuity: bool,
    total_ms: u64,
    total_bytes: u64,
}

impl State {
    async fn cut(&mut self, ctx: &TaskContext, end_dts: i64) -> std::io::Result<()> {
        let Some(start) = self.seg_start.take() else {
            return Ok(());
        };
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = self.buf.split().freeze();
        let name = format!("{}.ts", self.entries.len());
        let duration_ms = (end_dts - start).max(0) as u64;
        let path = self.dir.join(&name);
        write_file(path.clone(), data.clone()).await?;
        self.entries.push(Entry {
            name,
            duration_ms,
            discontinuity: std::mem::take(&mut self.next_discontinuity),
        });
        self.total_ms += duration_ms;
        self.total_bytes += data.len() as u64;
        self.write_playlist(false).await?;
        ctx.emit(RecordEvent::FileFinished {
            kind: RecordKind::Hls,
            key: ctx.key.clone(),
            path,
            start_unix: self.start_unix + (self.total_ms - duration_ms) / 1000,
            duration_ms,
            size: data.len() as u64,
        });
        Ok(())
    }

    async fn write_playlist(&self, ended: bool) -> std::io::Result<()> {
        let text = render_playlist(&self.entries, self.target_s, self.start_ms, ended);
        let tmp = self.dir.join("index.m3u8.tmp");
        let dst = self.dir.join("index.m3u8");
        tokio::task::spawn_blocking(move || {
            std::fs::write(&tmp, text)?;
            std::fs::rename(&tmp, &dst)
        })
        .await
        .map_err(std::io::Error::other)?
    }
}

async fn write_file(path: PathBuf, data: Bytes) -> std::io::Result<()> {
    tokio::task::spawn_blocking(move || std::fs::write(path, data))
        .await
        .map_err(std::io::Error::other)?
}

pub(crate) async fn run(
    ctx: &TaskContext,
    mut sub: Subscription,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut batch: Vec<Arc<Packet>> = Vec::new();
    let mut st: Option<State> = None;
    let mut mux = TsMuxer::new();
    let mut media_since_headers = false;
    let mut frame = BytesMut::new();
    let seg_ms = i64::from(ctx.opts.hls_segment_ms);
    let mut warned = 0u32;
    let result: std::io::Result<()> = async {
        loop {
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                r = sub.next_batch(&mut batch, 256) => if r.is_err() { break },
            }
            for p in batch.drain(..) {
                let is_video = match p.kind {
                    PacketKind::Video => true,
                    PacketKind::Audio => false,
                    PacketKind::Metadata | PacketKind::Eof => continue,
                };
                let dts = i64::from(p.timestamp);
                if p.sequence_header && media_since_headers {
                    // A publisher came back: close the segment, mark the break.
                    if let Some(s) = st.as_mut() {
                        s.cut(ctx, s.last_dts).await?;
                        s.next_discontinuity = true;
                    }
                    media_since_headers = false;
                }
                if let Some(s) = st.as_mut() {
                    let elapsed = s.seg_start.map(|t| dts - t).unwrap_or(0);
                    // On a keyframe (or anywhere in audio-only streams) once the
                    // segment is long enough; anywhere at twice that (target bound).
                    let at_boundary = if mux.has_video() {
                        is_video && p.keyframe
                    } else {
                        true
                    };
                    let cut = !p.sequence_header
                        && s.seg_start.is_some()
                        && ((at_boundary && elapsed >= seg_ms) || elapsed >= 2 * seg_ms);
                    if cut {
                        s.cut(ctx, dts).await?;
                    }
                }
                frame.clear();
                let written = if is_video {
                    mux.write_video(p.timestamp, &p.payload, &mut frame)
                } else {
                    mux.write_audio(p.timestamp, &p.payload, &mut frame)
                };
                match written {
                    Ok(Some(_)) => {}
                    Ok(None) => continue,
                    Err(e) => {
                        if warned < 3 {
                            warned += 1;
                            tracing::warn!(stream = %ctx.key, error = %e, "HLS recording: frame not recorded");
                        }
                        continue;
                    }
                }
                // The first segment starts on a keyframe when there is video.
                if st.is_none() && mux.has_video() && !(is_video && p.keyframe) {
                    continue;
                }
                media_since_headers = true;
                if st.is_none() {
                    st = Some(open(ctx, dts).await?);
                }
                let Some(s) = st.as_mut() else { continue };
                if s.seg_start.is_none() {
                    s.seg_start = Some(dts);
                    mux.write_tables(&mut s.buf);
                }
                s.buf.extend_from_slice(&frame);
                s.last_dts = dts;
            }
        }
        Ok(())
    }
    .await;
    let Some(mut s) = st else { return result };
    let end = match &result {
        Ok(()) => {
            // The last frame's duration is unknown; count one frame interval.
            let last = s.last_dts + 40;
            s.cut(ctx, last).await.and(s.write_playlist(true).await)
        }
        Err(_) => s.write_playlist(true).await,
    };
    ctx.emit(RecordEvent::FileFinished {
        kind: RecordKind::Hls,
        key: ctx.key.clone(),
        path: s.dir.join("index.m3u8"),
        start_unix: s.start_unix,
        duration_ms: s.total_ms,
        size: s.total_bytes,
    });
    result.and(end)
}

async fn open(ctx: &TaskContext, dts: i64) -> std::io::Result<State> {
    let start_unix = now_unix();
    let dir = ctx.new_path(start_unix, "");
    let d = dir.clone();
    tokio::task::spawn_blocking(move || std::fs::create_dir_all(d))
        .await
        .map_err(std::io::Error::other)??;
    let target_s = (2 * u64::from(ctx.opts.hls_segment_ms)).div_ceil(1000);
    let st = State {
        dir: dir.clone(),
        entries: Vec::new(),
        start_unix,
        start_ms: start_unix as i64 * 1000,
        target_s,
        buf: BytesMut::new(),
        seg_start: None,
        last_dts: dts,
        next_discontinuity: false,
        total_ms: 0,
        total_bytes: 0,
    };
    st.write_playlist(false).await?;
    ctx.emit(RecordEvent::FileStarted {
        kind: RecordKind::Hls,
        key: ctx.key.clone(),
        path: dir.join("index.m3u8"),
        start_unix,
    });
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playlist_event_then_vod() {
        let e = vec![
            Entry {
                name: "0.ts".into(),
                duration_ms: 4000,
                discontinuity: false,
            },
            Entry {
                name: "1.ts".into(),
                duration_ms: 3960,
                discontinuity: true,
            },
        ];
        let live = render_playlist(&e, 8, 1_795_517_841_250, false);
        assert!(live.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n"));
        assert!(live.contains("#EXT-X-TARGETDURATION:8\n"));
        assert!(live.contains("#EXT-X-PROGRAM-DATE-TIME:2026-11-24T10:57:21.250Z\n"));
        assert!(live.contains("#EXTINF:4.000,\n0.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:3.960,\n1.ts\n"));
        assert!(!live.contains("ENDLIST"));
        let vod = render_playlist(&e, 8, 0, true);
        assert!(vod.ends_with("1.ts\n#EXT-X-ENDLIST\n"));
        let parsed = m3u8_rs::parse_media_playlist_res(vod.as_bytes()).unwrap();
        assert!(parsed.end_list);
        assert_eq!(parsed.segments.len(), 2);
        assert!(parsed.segments[1].discontinuity);
    }
}
