//! An MP4 recording: drives [`ferrocast_proto::mp4::Mp4Recorder`] and its file.
//!
//! A file is opened on the first media frame (so a recording of a stream that never
//! sends anything leaves no empty file), rotated on the first keyframe after
//! `max_second`, and on a change of codec configuration (a publisher that came back
//! with other encoder settings: an MP4 track has one sample description). A
//! publisher that comes back with the same settings continues the same file.

use std::sync::Arc;

use bytes::Bytes;
use ferrocast_proto::mp4::{Mp4Error, Mp4Recorder};
use tokio::sync::watch;

use super::{now_unix, FileSink, RecordEvent, RecordKind, TaskContext};
use crate::hub::{Packet, PacketKind, Subscription};

struct OpenFile {
    rec: Mp4Recorder,
    sink: FileSink,
    start_unix: u64,
}

pub(crate) async fn run(
    ctx: &TaskContext,
    mut sub: Subscription,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut batch: Vec<Arc<Packet>> = Vec::new();
    let mut video_header: Option<Arc<Packet>> = None;
    let mut audio_header: Option<Arc<Packet>> = None;
    let mut file: Option<OpenFile> = None;
    let mut out: Vec<Bytes> = Vec::new();
    let mut warned = 0u32;
    let max_ms = ctx.opts.max_second.saturating_mul(1000);
    // Files being finished in the background (rotation, codec change): writing the
    // index of an hour-long file takes a while on a slow disk, and the recording
    // must go on reading meanwhile, so the next file starts where this one ended.
    let mut finishing: Vec<tokio::task::JoinHandle<std::io::Result<()>>> = Vec::new();
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
                if p.sequence_header {
                    if is_video {
                        video_header = Some(p.clone());
                    } else {
                        audio_header = Some(p.clone());
                    }
                }
                if let Some(f) = &file {
                    let rotate = is_video
                        && p.keyframe
                        && !p.sequence_header
                        && f.rec.duration_ms() >= max_ms;
                    if rotate {
                        finishing.push(close_in_background(ctx, file.take()));
                    }
                }
                if file.is_none() {
                    if p.sequence_header {
                        continue;
                    }
                    file = Some(open(ctx, &video_header, &audio_header, &mut out).await?);
                }
                let Some(f) = file.as_mut() else { continue };
                match write(&mut f.rec, &p, is_video, &mut out) {
                    Err(Mp4Error::ConfigChanged) => {
                        tracing::info!(stream = %ctx.key, "MP4 recording: codec configuration changed; starting a new file");
                        finishing.push(close_in_background(ctx, file.take()));
                        let mut f = open(ctx, &video_header, &audio_header, &mut out).await?;
                        if !p.sequence_header {
                            if let Err(e) = write(&mut f.rec, &p, is_video, &mut out) {
                                note(ctx, &mut warned, &e);
                            }
                        }
                        file = Some(f);
                    }
                    Err(e) => note(ctx, &mut warned, &e),
                    Ok(()) => {}
                }
                if let Some(f) = file.as_mut() {
                    f.sink.append(std::mem::take(&mut out)).await?;
                }
            }
        }
        Ok(())
    }
    .await;
    let mut result = match result {
        Ok(()) => close(ctx, file.take(), &mut out).await,
        Err(e) => {
            // Best effort: the file keeps whatever fragments made it to disk.
            if let Some(f) = file.take() {
                ctx.emit(RecordEvent::FileFinished {
                    kind: RecordKind::Mp4,
                    key: ctx.key.clone(),
                    path: f.sink.path.clone(),
                    start_unix: f.start_unix,
                    duration_ms: f.rec.duration_ms(),
                    size: f.sink.written,
                });
            }
            Err(e)
        }
    };
    for h in finishing {
        let finished = h.await.unwrap_or_else(|e| Err(std::io::Error::other(e)));
        if let (Ok(()), Err(e)) = (&result, finished) {
            result = Err(e);
        }
    }
    result
}

/// Finishes `file` on its own task.
fn close_in_background(
    ctx: &TaskContext,
    file: Option<OpenFile>,
) -> tokio::task::JoinHandle<std::io::Result<()>> {
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let mut out = Vec::new();
        close(&ctx, file, &mut out).await
    })
}

fn note(ctx: &TaskContext, warned: &mut u32, e: &Mp4Error) {
    if *warned < 3 {
        *warned += 1;
        tracing::warn!(stream = %ctx.key, error = %e, "MP4 recording: frame not recorded");
    }
}

fn write(
    rec: &mut Mp4Recorder,
    p: &Packet,
    is_video: bool,
    out: &mut Vec<Bytes>,
) -> Result<(), Mp4Error> {
    if is_video {
        rec.write_video(p.timestamp, &p.payload, out)
    } else {
        rec.write_audio(p.timestamp, &p.payload, out)
    }
}

async fn open(
    ctx: &TaskContext,
    video_header: &Option<Arc<Packet>>,
    audio_header: &Option<Arc<Packet>>,
    out: &mut Vec<Bytes>,
) -> std::io::Result<OpenFile> {
    let start_unix = now_unix();
    let path = ctx.new_path(start_unix, ".mp4");
    let sink = FileSink::create(path.clone()).await?;
    let mut rec = Mp4Recorder::new(
        video_header.is_some(),
        audio_header.is_some(),
        ctx.opts.fragment_ms,
    );
    for (h, v) in [(video_header, true), (audio_header, false)] {
        if let Some(h) = h {
            if let Err(e) = write(&mut rec, h, v, out) {
                tracing::warn!(stream = %ctx.key, error = %e, "MP4 recording: codec configuration not usable");
            }
        }
    }
    ctx.emit(RecordEvent::FileStarted {
        kind: RecordKind::Mp4,
        key: ctx.key.clone(),
        path,
        start_unix,
    });
    Ok(OpenFile {
        rec,
        sink,
        start_unix,
    })
}

/// Finishes a file: pending samples, the index at the end, then the patches that
/// turn the fragment headers into `free` boxes.
async fn close(
    ctx: &TaskContext,
    file: Option<OpenFile>,
    out: &mut Vec<Bytes>,
) -> std::io::Result<()> {
    let Some(mut f) = file else { return Ok(()) };
    out.clear();
    let path = f.sink.path.clone();
    if !f.rec.started() {
        // Nothing playable was written (no keyframe came): no file.
        drop(f.sink);
        let _ = tokio::fs::remove_file(&path).await;
        return Ok(());
    }
    match f.rec.finish(out) {
        Ok(fin) => {
            out.push(fin.trailer);
            f.sink.append(std::mem::take(out)).await?;
            f.sink.patch_and_sync(fin.patches).await?;
        }
        Err(e) => {
            tracing::warn!(stream = %ctx.key, path = %path.display(), error = %e,
                "MP4 recording: could not write the final index; the file stays fragmented");
            f.sink.append(std::mem::take(out)).await?;
            f.sink.sync().await?;
        }
    }
    ctx.emit(RecordEvent::FileFinished {
        kind: RecordKind::Mp4,
        key: ctx.key.clone(),
        path,
        start_unix: f.start_unix,
        duration_ms: f.rec.duration_ms(),
        size: f.sink.written,
    });
    Ok(())
}
