//! An MP4 recording: drives [`ferrocast_proto::mp4::Mp4Recorder`] and its file.
//!
//! A file is opened on the first media frame (so a recording of a stream that never
//! sends anything leaves no empty file), rotated on the first keyframe after
//! `max_second` or near the recorder's sample limit (so the limit never drops
//! frames), and on a change of codec configuration (a publisher that came back
//! with other encoder settings: an MP4 track has one sample description). A
//! publisher that comes back with the same settings continues the same file.
//!
//! # Durability
//! Fragments are appended as they are cut and the file is synced to disk at most
//! every `record.fsync_interval_ms`, so a crash or power loss costs at most that
//! plus one fragment; the unfinished file is finished at the next start
//! ([`super::repair`]).
//!
//! # A write error (a full disk)
//! The file is cut back to its last whole fragment (by [`super::FileSink`]) and
//! the recording pauses, with one error line, a metric and the error shown by
//! isRecording: it keeps reading the stream (so the stream and its viewers never
//! wait on the disk) and drops what it reads, and every [`RESUME_RETRY`] tries a
//! new file. When one gets a fragment written, the recording has resumed (a log
//! line, `ferrocast_recordings_resumed_total`) and the files cut by the error are
//! finished in the background like crashed ones.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrocast_proto::mp4::{Mp4Error, Mp4Recorder};
use tokio::sync::watch;

use super::{now_unix, FileSink, RecordEvent, RecordKind, TaskContext};
use crate::hub::{Packet, PacketKind, Subscription};

/// How often a recording paused by a write error tries a new file: often enough
/// that little is lost once space is back, seldom enough that a full disk costs
/// nothing (an attempt that fails writes at most a file header, then removes it).
pub(crate) const RESUME_RETRY: Duration = Duration::from_secs(2);

struct OpenFile {
    rec: Mp4Recorder,
    sink: FileSink,
    start_unix: u64,
    last_sync: Instant,
    /// Appends that wrote something: the header, then one per fragment.
    appends: u32,
}

/// A recording paused by a write error.
struct Paused {
    retry_at: Instant,
    /// Files cut by the error, to finish once writing works again.
    cut: Vec<PathBuf>,
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
    let mut paused: Option<Paused> = None;
    let max_ms = ctx.opts.max_second.saturating_mul(1000);
    let fsync_every = Duration::from_millis(ctx.opts.fsync_interval_ms);
    // Files being finished in the background (rotation, codec change): writing the
    // index of an hour-long file takes a while on a slow disk, and the recording
    // must go on reading meanwhile, so the next file starts where this one ended.
    let mut finishing: Vec<tokio::task::JoinHandle<std::io::Result<()>>> = Vec::new();
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
            if paused.as_ref().is_some_and(|w| Instant::now() < w.retry_at) {
                continue;
            }
            if let Some(f) = &file {
                let rotate = is_video
                    && p.keyframe
                    && !p.sequence_header
                    && (f.rec.duration_ms() >= max_ms || f.rec.near_sample_limit());
                if rotate {
                    finishing.push(close_in_background(ctx, file.take()));
                }
            }
            if file.is_none() {
                if p.sequence_header {
                    continue;
                }
                match open(ctx, &video_header, &audio_header, &mut out).await {
                    Ok(f) => file = Some(f),
                    Err(e) => {
                        pause(ctx, &mut paused, None, &e);
                        continue;
                    }
                }
            }
            let Some(f) = file.as_mut() else { continue };
            match write(&mut f.rec, &p, is_video, &mut out) {
                Err(e @ (Mp4Error::ConfigChanged | Mp4Error::TooManySamples(_))) => {
                    tracing::info!(stream = %ctx.key, reason = %e, "MP4 recording: starting a new file");
                    finishing.push(close_in_background(ctx, file.take()));
                    match open(ctx, &video_header, &audio_header, &mut out).await {
                        Ok(mut f) => {
                            if !p.sequence_header {
                                if let Err(e) = write(&mut f.rec, &p, is_video, &mut out) {
                                    note(ctx, &mut warned, &e);
                                }
                            }
                            file = Some(f);
                        }
                        Err(e) => {
                            pause(ctx, &mut paused, None, &e);
                            continue;
                        }
                    }
                }
                Err(e) => note(ctx, &mut warned, &e),
                Ok(()) => {}
            }
            let Some(f) = file.as_mut() else { continue };
            let pieces = std::mem::take(&mut out);
            if pieces.is_empty() {
                continue;
            }
            let mut written = f.sink.append(pieces).await;
            if written.is_ok() && !fsync_every.is_zero() && f.last_sync.elapsed() >= fsync_every {
                f.last_sync = Instant::now();
                written = f.sink.sync().await;
            }
            match written {
                Ok(()) => {
                    f.appends += 1;
                    if f.appends >= 2 {
                        if let Some(w) = paused.take() {
                            resumed(ctx, &f.sink.path, w.cut);
                        }
                    }
                }
                Err(e) => pause(ctx, &mut paused, file.take(), &e),
            }
        }
    }
    let mut result = close(ctx, file.take(), &mut out).await;
    if let Err(e) = &result {
        tracing::warn!(stream = %ctx.key, error = %e, "MP4 recording: the last file could not be finished; it is finished at the next start");
    }
    if let Some(w) = paused {
        // Stopped while paused: the cut files are finished now if the disk allows,
        // else at the next start.
        finish_cut_files(ctx, w.cut).await;
    }
    for h in finishing {
        let finished = h.await.unwrap_or_else(|e| Err(std::io::Error::other(e)));
        if let (Ok(()), Err(e)) = (&result, finished) {
            result = Err(e);
        }
    }
    result
}

/// A write error: the file (cut back to its last whole fragment) is set aside to be
/// finished later, and the recording waits [`RESUME_RETRY`] before a new file.
fn pause(
    ctx: &TaskContext,
    paused: &mut Option<Paused>,
    file: Option<OpenFile>,
    e: &std::io::Error,
) {
    let w = paused.get_or_insert_with(|| {
        tracing::error!(stream = %ctx.key, error = %e,
            "MP4 recording paused by a write error; it resumes into a new file once writing works again");
        crate::metrics::recording_write_failed(RecordKind::Mp4.label());
        ctx.set_error(RecordKind::Mp4, Some(e.to_string()));
        Paused {
            retry_at: Instant::now(),
            cut: Vec::new(),
        }
    });
    if let Some(f) = file {
        tracing::debug!(stream = %ctx.key, path = %f.sink.path.display(), error = %e, "MP4 recording: file cut by a write error");
        w.cut.push(f.sink.path.clone());
    }
    w.retry_at = Instant::now() + RESUME_RETRY;
}

fn resumed(ctx: &TaskContext, path: &std::path::Path, cut: Vec<PathBuf>) {
    tracing::info!(stream = %ctx.key, path = %path.display(), "MP4 recording resumed into a new file after a write error");
    crate::metrics::recording_resumed(RecordKind::Mp4.label());
    ctx.set_error(RecordKind::Mp4, None);
    let ctx = ctx.clone();
    tokio::spawn(async move { finish_cut_files(&ctx, cut).await });
}

/// Finishes files cut by a write error like crashed ones (those without a whole
/// fragment are removed), then announces them.
async fn finish_cut_files(ctx: &TaskContext, cut: Vec<PathBuf>) {
    for path in cut {
        let p = path.clone();
        let r = tokio::task::spawn_blocking(move || super::repair::repair_file(&p))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        ctx.open_files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&path);
        match r {
            Ok(super::repair::Outcome::Repaired { duration_ms, .. }) => {
                let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                ctx.emit(RecordEvent::FileFinished {
                    kind: RecordKind::Mp4,
                    key: ctx.key.clone(),
                    path,
                    start_unix: now_unix().saturating_sub(duration_ms / 1000),
                    duration_ms,
                    size,
                });
            }
            Ok(super::repair::Outcome::Removed) => {}
            Err(e) => {
                tracing::warn!(stream = %ctx.key, path = %path.display(), error = %e,
                    "MP4 file cut by a write error not finished yet; it plays as fragmented MP4 and is finished at the next start")
            }
        }
    }
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
    out.clear();
    let start_unix = now_unix();
    let path = ctx.new_path(start_unix, ".mp4");
    let sink = FileSink::create(path.clone()).await?;
    ctx.open_files
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(path.clone());
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
        last_sync: Instant::now(),
        appends: 0,
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
    let result = finish_file(ctx, &mut f, out).await;
    ctx.open_files
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&path);
    result
}

async fn finish_file(
    ctx: &TaskContext,
    f: &mut OpenFile,
    out: &mut Vec<Bytes>,
) -> std::io::Result<()> {
    let path = f.sink.path.clone();
    if !f.rec.started() {
        // Nothing playable was written (no keyframe came): no file.
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
