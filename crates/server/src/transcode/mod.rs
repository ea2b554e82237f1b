//! Adaptive bitrate: ffmpeg renditions of live streams, and ffmpeg-fed sources.
//!
//! The [`Transcoder`] supervises ffmpeg child processes. It owns no media path of its
//! own: ffmpeg is an ordinary RTMP player and publisher of this server.
//!
//! # One ffmpeg per transcoded source
//! A transcode of `{app}/{stream}` with a ladder is one ffmpeg process that plays
//! `rtmp://127.0.0.1:{port}/{app}/{stream}`, decodes once, splits the picture in a
//! `filter_complex` (`split`, then one `scale=-2:{height}` per rung) and writes one
//! FLV output per rung, published back to `rtmp://127.0.0.1:{port}/{app}/{stream}_{rung}`
//! ([`transcode_args`] builds the command). Decoding once and encoding every rung in
//! the same process costs one decoder instead of one per rung, and every rung sees
//! exactly the same frames with the same timestamps.
//!
//! # Why renditions are published back as streams
//! A rendition arriving through the RTMP listener is a stream like any other: it gets
//! its own GOP cache, HLS, HTTP-FLV, RTMP play, recording and API entry without any
//! code here, and the master playlist only has to list `{stream}_{rung}` next to the
//! source ([`Transcoder::renditions`]). The rendition keys are remembered so that the
//! per-app hook never transcodes a rendition again.
//!
//! # ffmpeg sources (ZLMediaKit's addFFmpegSource)
//! [`Transcoder::add_ffmpeg_source`] runs `ffmpeg [-re] -i {src_url} -c copy -f flv
//! {dst_url}` ([`ffmpeg_source_args`]), restarted with back-off until deleted.
//!
//! # Layout
//! * `args`: the ffmpeg command lines and the renditions a ladder makes (pure; the
//!   flags and why each is there).
//! * `supervisor`: the children: run, restart with back-off, watch the source.
//! * `transcoder`: the [`Transcoder`] handle and what its callers get back (typed
//!   values and [`TranscodeError`]; the API's codes and JSON are made in `api/`).
//!
//! This module needs ffmpeg 5.1 or later (`-fps_mode`, the `noise` filter's `drop`).

mod args;
mod supervisor;
mod transcoder;

pub use args::{
    ffmpeg_source_args, ffmpeg_source_key, local_stream_key, plan_renditions, rendition_key,
    rtmp_url, transcode_args, Rendition,
};
pub use supervisor::{JobStatus, SOURCE_GRACE};
pub use transcoder::{ladder_for, FfmpegSourceInfo, TranscodeError, TranscodeInfo, Transcoder};
