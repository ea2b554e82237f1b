//! An HLS recording, done better than ZLMediaKit's (whose "HLS recording" is the live
//! muxer, whose segments rotate away): MPEG-TS segments that are never deleted and a
//! playlist of type EVENT, rewritten (by rename) after each segment, that gets
//! `#EXT-X-ENDLIST` when the recording ends, which makes it a complete VOD playlist.
//!
//! Layout: `{root}/{app}/{stream}/{YYYY-MM-DD}/{HH-MM-SS}/index.m3u8` and
//! `{n}.ts` beside it. It is independent of the live HLS window and settings.
//! A publisher that comes back (new codec headers after media) continues the same
//! recording after an `#EXT-X-DISCONTINUITY`.
//!
//! # What is decided where
//! Where segments are cut, their durations, the discontinuities and the playlist
//! text are the protocol's: this task runs the same [`Segmenter`] as the live HLS
//! muxer, made with [`Segmenter::new_event`] (see `ferrocast_proto::hls`, "Recordings:
//! EVENT, then VOD"). Segments are cut on a keyframe once they last
//! `record.hls_segment_ms` (audio-only streams: on time), and anywhere at twice that,
//! which is the playlist's fixed `#EXT-X-TARGETDURATION`. Its one
//! `#EXT-X-PROGRAM-DATE-TIME` is the second the recording's directory is named after.
//!
//! This file keeps only the I/O: feeding the segmenter from the hub, writing each
//! segment as it is finished, then the playlist (by rename, so a reader never sees a
//! segment listed that is not on disk, nor half a playlist), and the record events.
//! A segment or playlist that cannot be written (a full disk) ends the recording;
//! its final playlist then lists only the segments that were written.
//!
//! # Memory
//! What a recording holds: the open segment, which the segmenter closes at
//! [`ferrocast_proto::hls::MAX_SEGMENT_BYTES`] whatever the timestamps say (a
//! publisher whose clock stalls never reaches a cut by time), the newest finished
//! segment, and one listed entry per segment (about a hundred bytes). The list, and
//! the playlist rewritten after each segment, would grow without end in a recording
//! that never stops, or one segment per frame with timestamps that jump: after
//! [`MAX_SEGMENTS_PER_PLAYLIST`] segments the playlist is ended (VOD) and the
//! recording goes on in a new directory.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use ferrocast_proto::hls::{HlsConfig, Segmenter};
use ferrocast_proto::mpegts::TsMuxer;
use tokio::sync::watch;

use super::{now_unix, RecordEvent, RecordKind, TaskContext};
use crate::hub::{Packet, PacketKind, Subscription};

/// Segments in one recording directory: 11 hours of 4 s segments. Bounds the
/// segment list and the playlist's size (and its rewrite after each segment).
#[cfg(not(test))]
pub(crate) const MAX_SEGMENTS_PER_PLAYLIST: u64 = 10_000;
#[cfg(test)]
pub(crate) const MAX_SEGMENTS_PER_PLAYLIST: u64 = 3;

struct State {
    dir: PathBuf,
    seg: Segmenter,
    start_unix: u64,
    /// Sequence number of the next segment to write: every one below it is on disk.
    next_to_store: u64,
    total_ms: u64,
    total_bytes: u64,
}

impl State {
    /// After a cut, discontinuity or end: writes the segment it finished, if it
    /// finished one, then the playlist that lists it, and announces the segment.
    /// `Ok(false)` when there was no new segment (nothing written).
    async fn store_finished(&mut self, ctx: &TaskContext) -> std::io::Result<bool> {
        let Some(info) = self
            .seg
            .last_finished()
            .filter(|i| i.sequence >= self.next_to_store)
            .cloned()
        else {
            return Ok(false);
        };
        // The newest finished segment always has its bytes.
        let data = self.seg.segment(info.sequence).unwrap_or_default();
        let path = self.dir.join(&info.name);
        write_file(path.clone(), data).await?;
        self.next_to_store = info.sequence + 1;
        let duration_ms = u64::from(info.duration_ms);
        self.total_ms += duration_ms;
        self.total_bytes += info.size as u64;
        self.write_playlist().await?;
        ctx.emit(RecordEvent::FileFinished {
            kind: RecordKind::Hls,
            key: ctx.key.clone(),
            path,
            start_unix: self.start_unix + (self.total_ms - duration_ms) / 1000,
            duration_ms,
            size: info.size as u64,
        });
        Ok(true)
    }

    async fn write_playlist(&self) -> std::io::Result<()> {
        let Some(text) = self.seg.playlist() else {
            return Ok(());
        };
        let tmp = self.dir.join("index.m3u8.tmp");
        let dst = self.dir.join("index.m3u8");
        tokio::task::spawn_blocking(move || {
            std::fs::write(&tmp, text)?;
            std::fs::rename(&tmp, &dst)
        })
        .await
        .map_err(std::io::Error::other)?
    }

    /// Ends the playlist with only the segments on disk (after a write error).
    async fn end_with_stored(&mut self) -> std::io::Result<()> {
        self.seg.end_truncated(self.next_to_store);
        self.write_playlist().await
    }
}

async fn write_file(path: PathBuf, data: Bytes) -> std::io::Result<()> {
    tokio::task::spawn_blocking(move || std::fs::write(path, data))
        .await
        .map_err(std::io::Error::other)?
}

fn now_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
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
    let mut tables = BytesMut::new();
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
                        s.seg.discontinuity();
                        s.store_finished(ctx).await?;
                    }
                    media_since_headers = false;
                }
                if let Some(s) = st.as_mut() {
                    if !p.sequence_header
                        && s.seg.should_cut(dts, p.keyframe, is_video, mux.has_video())
                    {
                        s.seg.cut(dts);
                        s.store_finished(ctx).await?;
                        if s.next_to_store >= MAX_SEGMENTS_PER_PLAYLIST {
                            tracing::info!(stream = %ctx.key, dir = %s.dir.display(),
                                "HLS recording: playlist full; continuing in a new directory");
                            if let Some(s) = st.take() {
                                end(ctx, s, Ok(())).await?;
                            }
                        }
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
                    st = Some(open(ctx).await?);
                }
                let Some(s) = st.as_mut() else { continue };
                let now = now_unix_ms();
                let mut pushed = Ok(());
                if s.seg.open_len() == 0 {
                    // Every segment starts with PAT/PMT so it decodes on its own.
                    tables.clear();
                    mux.write_tables(&mut tables);
                    pushed = s.seg.push(dts, &tables, now);
                }
                if let Err(e) = pushed.and_then(|()| s.seg.push(dts, &frame, now)) {
                    if warned < 3 {
                        warned += 1;
                        tracing::warn!(stream = %ctx.key, error = %e, "HLS recording: frame not recorded");
                    }
                }
            }
        }
        Ok(())
    }
    .await;
    let Some(s) = st else { return result };
    end(ctx, s, result).await
}

/// Ends a recording directory: the open segment, the final playlist, the event.
async fn end(ctx: &TaskContext, mut s: State, result: std::io::Result<()>) -> std::io::Result<()> {
    let end = match &result {
        Ok(()) => {
            // Closes the open segment (its last frame counted one frame interval).
            s.seg.end();
            match s.store_finished(ctx).await {
                Ok(true) => Ok(()),
                Ok(false) => s.write_playlist().await,
                Err(e) => s.end_with_stored().await.and(Err(e)),
            }
        }
        Err(_) => s.end_with_stored().await,
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

async fn open(ctx: &TaskContext) -> std::io::Result<State> {
    let start_unix = now_unix();
    let dir = ctx.new_path(start_unix, "");
    let d = dir.clone();
    tokio::task::spawn_blocking(move || std::fs::create_dir_all(d))
        .await
        .map_err(std::io::Error::other)??;
    let seg_ms = ctx.opts.hls_segment_ms;
    let seg = Segmenter::new_event(
        HlsConfig {
            target_duration_ms: seg_ms,
            max_segment_ms: seg_ms.saturating_mul(2),
            ..HlsConfig::default()
        },
        Some(start_unix as i64 * 1000),
    );
    let st = State {
        dir: dir.clone(),
        seg,
        start_unix,
        next_to_store: 0,
        total_ms: 0,
        total_bytes: 0,
    };
    st.write_playlist().await?;
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
    use crate::config::Config;
    use crate::hub::{Hub, HubSettings, Origin, OriginKind, StreamKey};
    use ferrocast_proto::flv::{read_file_header, read_tag, TAG_VIDEO};
    use ferrocast_proto::hls::MAX_SEGMENT_BYTES;

    /// A publisher, a recording of it into a fresh directory, and the recorder task.
    async fn setup(
        name: &str,
        hls_segment_ms: u32,
    ) -> (
        crate::hub::Publisher,
        PathBuf,
        watch::Sender<bool>,
        tokio::task::JoinHandle<std::io::Result<()>>,
    ) {
        let hub = Hub::new(HubSettings::from_config(&Config::default()));
        let origin = Origin {
            kind: OriginKind::RtmpPush,
            peer: None,
            local: None,
            params: String::new(),
            url: String::new(),
            options: Default::default(),
        };
        let key = StreamKey::new(None, "live", name);
        let publisher = hub.publish(key.clone(), origin).unwrap();
        let sub = hub.subscribe_internal(publisher.stream()).unwrap();
        let root =
            std::env::temp_dir().join(format!("ferrocast-hlsrec-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let ctx = TaskContext {
            key,
            opts: super::super::StartOptions {
                root: root.clone(),
                max_second: 3600,
                fragment_ms: 1000,
                hls_segment_ms,
                fsync_interval_ms: 0,
            },
            record_dir: root.clone(),
            hooks: None,
            errors: Default::default(),
            open_files: Default::default(),
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(async move { run(&ctx, sub, stop_rx).await });
        // The fixture's AVC sequence header.
        let flv = Bytes::from_static(include_bytes!("../../../proto/tests/fixtures/tiny.flv"));
        let mut offset = read_file_header(&flv).unwrap();
        while let Some((tag, next)) = read_tag(&flv, offset).unwrap() {
            if tag.tag_type == TAG_VIDEO && tag.body[1] == 0 {
                publisher.push_video(0, tag.body.clone());
                break;
            }
            offset = next;
        }
        (publisher, root, stop_tx, task)
    }

    /// An FLV H.264 frame of one NAL unit of `len` bytes.
    fn frame(key: bool, len: usize) -> Bytes {
        let mut b = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
        b.extend_from_slice(&(len as u32).to_be_bytes());
        b.push(if key { 0x65 } else { 0x41 });
        b.resize(5 + 4 + len, 0x11);
        Bytes::from(b)
    }

    fn files(root: &std::path::Path, ext: &str) -> Vec<(PathBuf, u64)> {
        let mut out = Vec::new();
        let mut dirs = vec![root.to_path_buf()];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.extension().is_some_and(|x| x == ext) {
                    out.push((p.clone(), e.metadata().unwrap().len()));
                }
            }
        }
        out.sort();
        out
    }

    #[tokio::test]
    async fn a_stalled_clock_still_cuts_segments_at_the_byte_bound() {
        let (publisher, root, stop, task) = setup("stall", 1000).await;
        // 1 MiB keyframes, all at the same timestamp: no cut by time ever comes.
        let frames = MAX_SEGMENT_BYTES / (1024 * 1024) * 2 + 4;
        for _ in 0..frames {
            publisher.push_video(40, frame(true, 1024 * 1024));
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let segments = files(&root, "ts");
        assert!(segments.len() >= 2, "{segments:?}");
        for (path, size) in &segments {
            assert!(
                *size <= (MAX_SEGMENT_BYTES + 2 * 1024 * 1024) as u64,
                "{}: {size}",
                path.display()
            );
        }
        stop.send_replace(true);
        task.await.unwrap().unwrap();
        let _ = std::fs::remove_dir_all(&root);
    }

    #[tokio::test]
    async fn a_full_playlist_continues_in_a_new_directory() {
        let (publisher, root, stop, task) = setup("rotate", 100).await;
        // A keyframe every 100 ms: one segment each.
        for i in 0..(MAX_SEGMENTS_PER_PLAYLIST as u32 * 2 + 2) {
            publisher.push_video(40 + i * 100, frame(true, 1000));
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        stop.send_replace(true);
        task.await.unwrap().unwrap();
        let playlists = files(&root, "m3u8");
        assert!(playlists.len() >= 2, "{playlists:?}");
        for (path, _) in &playlists {
            let text = std::fs::read_to_string(path).unwrap();
            assert!(text.contains("#EXT-X-ENDLIST"), "{text}");
            let listed = text.lines().filter(|l| l.ends_with(".ts")).count() as u64;
            assert!(listed <= MAX_SEGMENTS_PER_PLAYLIST, "{text}");
        }
        let _ = std::fs::remove_dir_all(&root);
    }
}
