//! HLS segmenter and media playlists: decides where MPEG-TS segments are cut, holds
//! the finished segments, and renders either the sliding-window live `hls.m3u8` or
//! a recording's EVENT playlist that becomes VOD when it ends.
//!
//! This module owns segment boundaries, segment bytes, sequence numbers and the
//! playlist text. It never muxes (the caller feeds TS bytes it got from the TS
//! writer), never reads a clock (the caller passes the wall-clock time as unix
//! milliseconds where the playlist needs it), never does IO and never panics.
//!
//! # The run loop
//! The server runs one [`Segmenter`] per stream (not per viewer). For each media
//! frame, in decode order:
//!
//! 1. `if seg.should_cut(dts, keyframe, is_video, has_video) { expired = seg.cut(dts) }`
//!    and delete `expired` from wherever else the server keeps segments (disk, CDN
//!    purge list). When cutting, the TS writer should start the new segment with
//!    PAT/PMT so every segment decodes on its own.
//! 2. Mux the frame to TS bytes and `seg.push(dts, &ts_bytes, now_unix_ms)`.
//! 3. Serve [`Segmenter::playlist`] and [`Segmenter::segment`]; both return
//!    [`Bytes`] that the HTTP layer sends without copying. The playlist is rendered
//!    once per change (cut, end), not per request.
//!
//! When the publisher goes away and comes back (or the server otherwise knows the
//! timeline breaks) it calls [`Segmenter::discontinuity`]; when the stream ends for
//! good, [`Segmenter::end`]. Both close the open segment themselves.
//!
//! # Where segments are cut
//! * Streams with video: on a video keyframe once the segment has lasted at least
//!   `target_duration_ms`; never on a non-keyframe, so every segment starts with a
//!   keyframe. The server should start feeding at the first video keyframe (the hub's
//!   GOP cache does) so that the first segment starts with one too.
//! * Audio-only streams: on time, before the frame whose end would reach or pass
//!   `target_duration_ms` (the frame length is the mean dts step seen so far). Audio
//!   segments are thus at most the target long (a frame shorter at worst), which keeps
//!   `TARGETDURATION` at the configured value instead of one second more.
//! * Any stream: once a segment has lasted `max_segment_ms` (a stream without
//!   keyframes, or one whose GOP is far longer than the target), when the open
//!   segment holds [`MAX_SEGMENT_BYTES`], and when the timestamps jump (see below).
//!
//! # Timestamps that jump
//! The hub already hands out a continuous timeline, but the segmenter does not rely
//! on it. A frame whose dts lies more than [`BACK_TOLERANCE_MS`] before the largest
//! dts of the open segment (more than audio/video interleaving explains), or more than
//! `max_segment_ms` after it, is a jump: the open segment is cut right there, keyframe
//! or not, its duration ends one estimated frame after its last frame (never
//! negative), and the next segment carries `#EXT-X-DISCONTINUITY`. A segment that
//! opens far from where the previous one ended is marked the same way.
//!
//! # Playlist choices
//! * Rendered by hand. `m3u8-rs` (a dev-dependency) parses our output back in the
//!   tests, but it is not used to write: its `MediaPlaylist` takes the date as a
//!   `chrono::DateTime` (a dependency we would pull in for one field), writes
//!   `EXTINF` precision through a process-wide atomic (`WRITE_OPT_FLOAT_PRECISION`)
//!   from an `f32`, and leaves `#EXT-X-MEDIA-SEQUENCE` out when it is 0. Writing the
//!   dozen lines ourselves is shorter than working around that.
//! * `#EXT-X-VERSION:3`: version 3 is what decimal `EXTINF` durations need (RFC 8216
//!   section 7); nothing we write needs 4 (that is `EXT-X-BYTERANGE` and
//!   `EXT-X-I-FRAMES-ONLY`). ZLMediaKit writes 4 without using it.
//! * `#EXT-X-TARGETDURATION` is the ceiling of the longest segment ever listed, in
//!   seconds, and never goes down during a stream (RFC 8216 section 6.2.1 forbids
//!   changing it; we cannot know the future, so it only ever grows). Ceiling rather
//!   than the RFC's nearest-integer rounding: stricter players compare unrounded.
//! * The window is a fixed count of segments (`window`), as in ZLMediaKit. RFC 8216
//!   section 6.2.2 asks that a live playlist span three target durations; with
//!   segments at the target that holds for a window of 3, and we do not grow the
//!   window beyond it when a long segment raised the target (that costs latency).
//! * `#EXT-X-DISCONTINUITY-SEQUENCE` is always written (0 until a discontinuity tag
//!   slides out of the window), so players never have to guess it.
//! * `#EXT-X-PROGRAM-DATE-TIME` precedes every segment, as ISO 8601 UTC with
//!   milliseconds (`2023-11-14T22:13:20.123Z`), formatted here with our own
//!   days-to-civil-date conversion (no `chrono`/`time` for one function). The date is
//!   anchored on the wall clock when a stream (or a discontinuity) starts and then
//!   follows the media timestamps, so a segment's date plus its `EXTINF` is the next
//!   segment's date. When the media clock drifts more than [`PDT_RESYNC_MS`] from the
//!   wall clock (say, a GOP-cache burst or a publisher that sends too fast or too
//!   slowly) the anchor is reset to the wall clock at that segment's open.
//!
//! # Memory
//! A segment is one [`Bytes`] (a frozen `BytesMut`, copied once to its exact size if
//! growth left it much larger than its content). At most `window + retain_extra`
//! finished segments are kept (in an event playlist: the newest one), plus the open
//! one, which [`should_cut`] closes at [`MAX_SEGMENT_BYTES`] and [`push`] refuses to
//! grow beyond it.
//!
//! # Recordings: EVENT, then VOD
//! [`Segmenter::new_event`] makes the same segmenter (same cut rules, same durations,
//! same discontinuities) keep a recording instead of a live window: it is what the
//! server's HLS recorder runs, so the cut rules and the playlist text exist once.
//! * Every segment is listed, from `first_sequence` on, and nothing ever expires;
//!   `window` and `retain_extra` do not apply. Only the newest finished segment's
//!   bytes are kept ([`Segmenter::last_finished`], [`Segmenter::segment`]): the caller
//!   stores each segment as it is finished, so a recording of hours does not sit in
//!   memory. The listed [`SegmentInfo`]s (a hundred bytes each) stay.
//! * `#EXT-X-PLAYLIST-TYPE:EVENT` from the first rendering on: the playlist exists
//!   (with no segment yet) as soon as the segmenter does, so the caller can write it
//!   when the recording starts. [`Segmenter::end`] appends `#EXT-X-ENDLIST`, which
//!   makes it a complete VOD playlist (RFC 8216 section 6.2.1: an EVENT playlist
//!   with ENDLIST never changes again); the type line stays EVENT.
//! * `#EXT-X-TARGETDURATION` is fixed up front at `max_segment_ms` rounded up to
//!   seconds, since an EVENT playlist is read while it grows and RFC 8216 forbids
//!   changing the target. Only a segment the cut rules could not keep under that cap
//!   (a frame interval past it) raises it, as in the live playlist.
//! * One `#EXT-X-PROGRAM-DATE-TIME`, before the first segment: the wall-clock time
//!   the caller says the recording started (the server names the recording's
//!   directory after the same second), or none. Players derive the rest from the
//!   `EXTINF` durations. No `#EXT-X-DISCONTINUITY-SEQUENCE`: nothing slides out, so
//!   it would always be 0.
//! * [`Segmenter::end_truncated`] ends a recording whose storage failed, listing only
//!   what the caller managed to store.
//!
//! [`should_cut`]: Segmenter::should_cut
//! [`push`]: Segmenter::push

use std::collections::VecDeque;
use std::fmt::Write as _;

/// Re-exported because this module's API takes and returns them.
pub use bytes::{Bytes, BytesMut};
use thiserror::Error;

/// An open segment this large is cut at the next frame whatever the timestamps say:
/// 64 MiB is over four minutes of a 2 Mbit/s stream, far past any sane segment, and
/// with `window + retain_extra` (8 by default) segments kept it bounds a stream's HLS
/// memory even when a publisher sends no keyframes and nonsense timestamps.
pub const MAX_SEGMENT_BYTES: usize = 64 * 1024 * 1024;

/// Audio and video of one stream interleave slightly out of dts order; a step back
/// larger than this is a jump, not interleaving (the hub's timeline uses the same).
pub const BACK_TOLERANCE_MS: i64 = 1_000;

/// How far the media-derived `PROGRAM-DATE-TIME` may drift from the wall clock
/// before it is re-anchored on the wall clock. One second hides network jitter and
/// the usual start-up burst while keeping the dates honest.
pub const PDT_RESYNC_MS: i64 = 1_000;

/// Frame length assumed when a segment holds a single frame and has to be closed
/// without knowing where the next one starts (40 ms: one frame at 25 fps).
const FALLBACK_FRAME_MS: i64 = 40;

/// The largest date ISO 8601 with a four-digit year can show, 9999-12-31T23:59:59.999Z.
const MAX_PDT_MS: i64 = 253_402_300_799_999;

/// Which playlist a [`Segmenter`] keeps; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaylistKind {
    /// A sliding window of `window` segments, `retain_extra` more served (live HLS).
    Live,
    /// A recording: every segment listed, `#EXT-X-PLAYLIST-TYPE:EVENT`, VOD once
    /// ended ([`Segmenter::new_event`]).
    Event,
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum HlsError {
    /// The caller kept pushing into a segment that [`Segmenter::should_cut`] asked to
    /// close, or pushed one buffer larger than a whole segment may be.
    #[error("HLS segment full: {open} bytes open, {pushed} more pushed (limit {MAX_SEGMENT_BYTES}); cut first")]
    SegmentFull { open: usize, pushed: usize },
    /// [`Segmenter::end`] was called; a new stream needs a new segmenter.
    #[error("HLS stream already ended")]
    Ended,
}

/// Segmenter settings. Values out of range are corrected by [`Segmenter::new`] and
/// [`Segmenter::new_event`] rather than rejected (see each field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HlsConfig {
    /// Wished segment length (ZLMediaKit `hls.segDur`). At least 1 ms.
    pub target_duration_ms: u32,
    /// Segments listed in the playlist (ZLMediaKit `hls.segNum`). At least 1.
    pub window: usize,
    /// Segments kept after they leave the playlist, so players that loaded an older
    /// playlist do not get a 404 (ZLMediaKit `hls.segRetain`).
    pub retain_extra: usize,
    /// Hard cap on a segment's length for streams without (timely) keyframes; also
    /// the forward gap between frames that counts as a timestamp jump. Raised to
    /// `target_duration_ms` if below it.
    pub max_segment_ms: u32,
    /// Sequence number of the first segment. A server that replaces the segmenter of
    /// a stream that is still being watched (say after [`Segmenter::end`] and a new
    /// publish under the same name) passes the old one's
    /// [`Segmenter::next_sequence`], so segment names (and HTTP caches keyed on
    /// them) never serve old media under a new URL.
    pub first_sequence: u64,
}

impl Default for HlsConfig {
    fn default() -> Self {
        HlsConfig {
            target_duration_ms: 2_000,
            window: 3,
            retain_extra: 5,
            max_segment_ms: 6_000,
            first_sequence: 0,
        }
    }
}

/// A finished segment as the playlist lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Media sequence number; consecutive segments have consecutive numbers.
    pub sequence: u64,
    /// Dts of the segment's first frame (ms, the caller's timeline).
    pub start_dts_ms: i64,
    pub duration_ms: u32,
    /// `#EXT-X-DISCONTINUITY` precedes this segment.
    pub discontinuity: bool,
    /// Wall-clock time of the segment's first frame, unix ms (`#EXT-X-PROGRAM-DATE-TIME`).
    pub program_date_time_ms: i64,
    /// Bytes of MPEG-TS.
    pub size: usize,
    /// The URI in the playlist, relative to it: `"{sequence}.ts"`, see [`segment_name`].
    pub name: String,
}

/// The playlist URI of segment `sequence`.
pub fn segment_name(sequence: u64) -> String {
    format!("{sequence}.ts")
}

/// The sequence number named by a segment URI from [`segment_name`]; `None` for any
/// other string (no sign, no leading zeros, no path), so one segment has one name.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".ts")?;
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
    {
        return None;
    }
    digits.parse().ok()
}

/// `unix_ms` as ISO 8601 UTC with milliseconds, e.g. `2023-11-14T22:13:20.123Z`,
/// as `#EXT-X-PROGRAM-DATE-TIME` wants it. Dates before 1970 or after 9999 are
/// clamped to those years.
pub fn format_program_date_time(unix_ms: i64) -> String {
    let mut s = String::with_capacity(24);
    write_program_date_time(&mut s, unix_ms);
    s
}

fn write_program_date_time(out: &mut String, unix_ms: i64) {
    let ms = unix_ms.clamp(0, MAX_PDT_MS);
    let days = ms / 86_400_000;
    let ms_of_day = ms % 86_400_000;
    let (year, month, day) = crate::time::civil_from_days(days);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000
    );
}

/// `#EXTINF:{s.mmm},` and the segment's URI, each on its line.
fn write_extinf(out: &mut String, info: &SegmentInfo) {
    let _ = write!(
        out,
        "#EXTINF:{}.{:03},\n{}\n",
        info.duration_ms / 1000,
        info.duration_ms % 1000,
        info.name
    );
}

/// `dts` is not a plausible next frame after a segment whose largest dts is `reference`.
fn is_jump(reference: i64, dts: i64, forward_limit_ms: i64) -> bool {
    dts < reference.saturating_sub(BACK_TOLERANCE_MS)
        || dts > reference.saturating_add(forward_limit_ms)
}

#[derive(Debug)]
struct OpenSegment {
    start_dts: i64,
    /// Largest dts pushed into this segment (audio may step back a little).
    max_dts: i64,
    /// How many pushes raised `max_dts`: frames seen after the first, roughly.
    steps: u32,
    discontinuity: bool,
    program_date_time_ms: i64,
    buf: BytesMut,
}

impl OpenSegment {
    /// Mean dts step so far, 0 if unknown (a single frame).
    fn frame_estimate(&self) -> i64 {
        if self.steps == 0 {
            0
        } else {
            self.max_dts.saturating_sub(self.start_dts) / i64::from(self.steps)
        }
    }

    /// Where the segment ends when the next segment's start is not known (or not
    /// usable): one estimated frame after its last frame.
    fn estimated_end(&self) -> i64 {
        let frame = match self.frame_estimate() {
            0 => FALLBACK_FRAME_MS,
            f => f,
        };
        self.max_dts.saturating_add(frame)
    }
}

#[derive(Debug)]
struct Stored {
    info: SegmentInfo,
    /// `None` once an event playlist's segment is no longer the newest (the caller
    /// has stored it); always `Some` in a live playlist.
    data: Option<Bytes>,
}

/// The HLS segmenter and playlist (live or event) of one stream; see the
/// [module docs](self).
#[derive(Debug)]
pub struct Segmenter {
    cfg: HlsConfig,
    kind: PlaylistKind,
    /// An event playlist's one `#EXT-X-PROGRAM-DATE-TIME` (the recording's start).
    event_start_unix_ms: Option<i64>,
    open: Option<OpenSegment>,
    /// Finished segments, oldest first, with consecutive sequence numbers. Live: the
    /// last `min(len, window)` are listed, the ones before are retained only. Event:
    /// all are listed.
    stored: VecDeque<Stored>,
    next_sequence: u64,
    discontinuity_sequence: u64,
    /// `#EXT-X-TARGETDURATION`, seconds; live: 0 until the first segment is
    /// finished; event: fixed up front.
    target_duration_s: u64,
    pending_discontinuity: bool,
    /// End dts of the last finished segment.
    prev_end_dts: Option<i64>,
    /// (dts, unix ms) the program date time is derived from.
    pdt_anchor: Option<(i64, i64)>,
    last_segment_size: usize,
    ended: bool,
    playlist: Option<Bytes>,
}

impl Segmenter {
    /// A live segmenter: sliding window, segments expire.
    pub fn new(cfg: HlsConfig) -> Self {
        Self::with_kind(cfg, PlaylistKind::Live, None)
    }

    /// A recording's segmenter: an EVENT playlist listing every segment, VOD after
    /// [`Segmenter::end`] (see the [module docs](self)). `window` and `retain_extra`
    /// are ignored. `start_unix_ms` is the playlist's one
    /// `#EXT-X-PROGRAM-DATE-TIME` (the recording's start on the wall clock); `None`
    /// writes none. The playlist exists, without segments, from here on.
    pub fn new_event(cfg: HlsConfig, start_unix_ms: Option<i64>) -> Self {
        let mut s = Self::with_kind(cfg, PlaylistKind::Event, start_unix_ms);
        s.target_duration_s = u64::from(s.cfg.max_segment_ms).div_ceil(1000);
        s.playlist = s.render();
        s
    }

    fn with_kind(cfg: HlsConfig, kind: PlaylistKind, event_start_unix_ms: Option<i64>) -> Self {
        let mut cfg = cfg;
        cfg.target_duration_ms = cfg.target_duration_ms.max(1);
        cfg.window = cfg.window.max(1);
        cfg.max_segment_ms = cfg.max_segment_ms.max(cfg.target_duration_ms);
        Segmenter {
            next_sequence: cfg.first_sequence,
            cfg,
            kind,
            event_start_unix_ms,
            open: None,
            stored: VecDeque::new(),
            discontinuity_sequence: 0,
            target_duration_s: 0,
            pending_discontinuity: false,
            prev_end_dts: None,
            pdt_anchor: None,
            last_segment_size: 0,
            ended: false,
            playlist: None,
        }
    }

    /// The configuration in force (after [`Segmenter::new`] corrected it).
    pub fn config(&self) -> &HlsConfig {
        &self.cfg
    }

    /// Live window or recording.
    pub fn kind(&self) -> PlaylistKind {
        self.kind
    }

    /// Asked before each frame is muxed: must the open segment be closed (with
    /// [`Segmenter::cut`]) so that this frame starts the next one? `has_video` says
    /// whether the stream has a video track at all; `keyframe` matters only for
    /// video frames. False when no segment is open.
    pub fn should_cut(&self, dts_ms: i64, keyframe: bool, is_video: bool, has_video: bool) -> bool {
        let Some(open) = &self.open else {
            return false;
        };
        let max_segment = i64::from(self.cfg.max_segment_ms);
        if open.buf.len() >= MAX_SEGMENT_BYTES || is_jump(open.max_dts, dts_ms, max_segment) {
            return true;
        }
        let elapsed = dts_ms.saturating_sub(open.start_dts);
        if elapsed >= max_segment {
            return true;
        }
        let target = i64::from(self.cfg.target_duration_ms);
        if has_video {
            is_video && keyframe && elapsed >= target
        } else {
            // Cut before the frame that would reach or pass the target.
            elapsed.saturating_add(open.frame_estimate()) >= target
        }
    }

    /// Appends muxed TS bytes for the frame at `dts_ms` to the open segment, opening
    /// one at `dts_ms` if none is open (at `now_unix_ms` on the wall clock). Empty
    /// `bytes` are ignored. Fails, appending nothing, after [`Segmenter::end`] and
    /// when the open segment is full (the caller skipped a cut).
    pub fn push(&mut self, dts_ms: i64, bytes: &[u8], now_unix_ms: i64) -> Result<(), HlsError> {
        if self.ended {
            return Err(HlsError::Ended);
        }
        if bytes.is_empty() {
            return Ok(());
        }
        let open = match self.open.take() {
            Some(open) => {
                if open.buf.len() >= MAX_SEGMENT_BYTES || bytes.len() > MAX_SEGMENT_BYTES {
                    let err = HlsError::SegmentFull {
                        open: open.buf.len(),
                        pushed: bytes.len(),
                    };
                    self.open = Some(open);
                    return Err(err);
                }
                open
            }
            None => {
                if bytes.len() > MAX_SEGMENT_BYTES {
                    return Err(HlsError::SegmentFull {
                        open: 0,
                        pushed: bytes.len(),
                    });
                }
                self.open_segment(dts_ms, now_unix_ms)
            }
        };
        let open = self.open.insert(open);
        open.buf.extend_from_slice(bytes);
        if dts_ms > open.max_dts {
            open.max_dts = dts_ms;
            open.steps = open.steps.saturating_add(1);
        }
        Ok(())
    }

    fn open_segment(&mut self, dts_ms: i64, now_unix_ms: i64) -> OpenSegment {
        let max_segment = i64::from(self.cfg.max_segment_ms);
        let jumped = self
            .prev_end_dts
            .is_some_and(|end| is_jump(end, dts_ms, max_segment));
        let discontinuity = std::mem::take(&mut self.pending_discontinuity) || jumped;
        let program_date_time_ms = self.program_date_time(dts_ms, now_unix_ms, discontinuity);
        // Most segments are about as large as the previous one: reserve that much
        // (plus an eighth) so the buffer rarely grows by doubling.
        let reserve = self
            .last_segment_size
            .saturating_add(self.last_segment_size / 8)
            .min(MAX_SEGMENT_BYTES);
        OpenSegment {
            start_dts: dts_ms,
            max_dts: dts_ms,
            steps: 0,
            discontinuity,
            program_date_time_ms,
            buf: BytesMut::with_capacity(reserve),
        }
    }

    fn program_date_time(&mut self, dts_ms: i64, now_unix_ms: i64, discontinuity: bool) -> i64 {
        if let (false, Some((anchor_dts, anchor_unix))) = (discontinuity, self.pdt_anchor) {
            let derived = anchor_unix.saturating_add(dts_ms.saturating_sub(anchor_dts));
            if derived.abs_diff(now_unix_ms) <= PDT_RESYNC_MS as u64 {
                return derived;
            }
        }
        self.pdt_anchor = Some((dts_ms, now_unix_ms));
        now_unix_ms
    }

    /// Closes the open segment at `end_dts_ms`, the dts of the frame that starts the
    /// next segment (the one `should_cut` was asked about), and lists it. Returns the
    /// segments that fell out of retention, oldest first: the server deletes them
    /// wherever else it stored them; [`Segmenter::segment`] no longer serves them.
    /// If `end_dts_ms` is a timestamp jump, the segment ends one estimated frame
    /// after its last frame instead, and the next segment is a discontinuity.
    /// Does nothing (returns nothing) when no segment is open.
    pub fn cut(&mut self, end_dts_ms: i64) -> Vec<SegmentInfo> {
        self.close(Some(end_dts_ms))
    }

    /// The timeline breaks before the next segment (the publisher came back, or the
    /// codec configuration changed): closes the open segment, if any, and marks the
    /// next one with `#EXT-X-DISCONTINUITY`. Returns the expired segments, as
    /// [`Segmenter::cut`] does.
    pub fn discontinuity(&mut self) -> Vec<SegmentInfo> {
        if self.ended {
            return Vec::new();
        }
        let expired = self.close(None);
        self.pending_discontinuity = true;
        expired
    }

    /// The stream ended: closes the open segment (ending one estimated frame after
    /// its last frame) and adds `#EXT-X-ENDLIST`. The playlist does not change after
    /// this, and [`Segmenter::push`] fails. Returns the expired segments.
    pub fn end(&mut self) -> Vec<SegmentInfo> {
        if self.ended {
            return Vec::new();
        }
        let expired = self.close(None);
        self.ended = true;
        self.playlist = self.render();
        expired
    }

    /// Ends the stream when the caller could not store everything (a full disk
    /// under a recording): drops the open segment and every finished segment from
    /// `first_unstored` on, then ends the playlist as [`Segmenter::end`] does, so it
    /// lists only segments the caller has. May follow [`Segmenter::end`], when
    /// storing the segment that `end` finished failed.
    pub fn end_truncated(&mut self, first_unstored: u64) {
        self.open = None;
        while self
            .stored
            .back()
            .is_some_and(|s| s.info.sequence >= first_unstored)
        {
            self.stored.pop_back();
        }
        self.ended = true;
        self.playlist = self.render();
    }

    fn close(&mut self, next_start_dts: Option<i64>) -> Vec<SegmentInfo> {
        if self.ended {
            return Vec::new();
        }
        let Some(open) = self.open.take() else {
            return Vec::new();
        };
        let max_segment = i64::from(self.cfg.max_segment_ms);
        let end = match next_start_dts {
            Some(next) if !is_jump(open.max_dts, next, max_segment) => next,
            _ => open.estimated_end(),
        };
        // Interleaving may put the next segment's first frame a little before this
        // one's first frame: clamp rather than go negative.
        let end = end.max(open.start_dts);
        let duration_ms = u32::try_from(end.saturating_sub(open.start_dts)).unwrap_or(u32::MAX);
        self.prev_end_dts = Some(end);

        let size = open.buf.len();
        self.last_segment_size = size;
        let data = if open.buf.capacity() > size + size / 4 {
            // Growth left much unused capacity, which the frozen Bytes would keep
            // alive for as long as the segment is retained: copy to the exact size.
            Bytes::copy_from_slice(&open.buf)
        } else {
            open.buf.freeze()
        };
        let sequence = self.next_sequence;
        self.next_sequence = self.next_sequence.saturating_add(1);
        let info = SegmentInfo {
            sequence,
            start_dts_ms: open.start_dts,
            duration_ms,
            discontinuity: open.discontinuity,
            program_date_time_ms: open.program_date_time_ms,
            size,
            name: segment_name(sequence),
        };
        self.target_duration_s = self
            .target_duration_s
            .max(u64::from(duration_ms).div_ceil(1000))
            .max(1);
        if self.kind == PlaylistKind::Event {
            // The caller stored the previous newest segment when it was finished.
            if let Some(prev) = self.stored.back_mut() {
                prev.data = None;
            }
            self.stored.push_back(Stored {
                info,
                data: Some(data),
            });
            self.playlist = self.render();
            return Vec::new();
        }
        self.stored.push_back(Stored {
            info,
            data: Some(data),
        });

        // One segment slid out of the window; its discontinuity tag went with it.
        if let Some(slid) = self
            .stored
            .len()
            .checked_sub(self.cfg.window.saturating_add(1))
            .and_then(|i| self.stored.get(i))
        {
            if slid.info.discontinuity {
                self.discontinuity_sequence += 1;
            }
        }
        let keep = self.cfg.window.saturating_add(self.cfg.retain_extra);
        let mut expired = Vec::new();
        while self.stored.len() > keep {
            if let Some(old) = self.stored.pop_front() {
                expired.push(old.info);
            }
        }
        self.playlist = self.render();
        expired
    }

    fn listed_stored(&self) -> impl Iterator<Item = &Stored> + '_ {
        let window = match self.kind {
            PlaylistKind::Live => self.cfg.window,
            PlaylistKind::Event => usize::MAX,
        };
        self.stored
            .iter()
            .skip(self.stored.len().saturating_sub(window))
    }

    fn render(&self) -> Option<Bytes> {
        match self.kind {
            PlaylistKind::Live => self.render_live(),
            PlaylistKind::Event => Some(self.render_event()),
        }
    }

    fn render_event(&self) -> Bytes {
        let mut out = String::with_capacity(160 + 40 * self.stored.len());
        let _ = write!(
            out,
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:{}\n",
            self.target_duration_s,
            self.stored
                .front()
                .map_or(self.cfg.first_sequence, |s| s.info.sequence)
        );
        if let Some(start) = self.event_start_unix_ms {
            out.push_str("#EXT-X-PROGRAM-DATE-TIME:");
            write_program_date_time(&mut out, start);
            out.push('\n');
        }
        for s in &self.stored {
            if s.info.discontinuity {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            write_extinf(&mut out, &s.info);
        }
        if self.ended {
            out.push_str("#EXT-X-ENDLIST\n");
        }
        Bytes::from(out)
    }

    fn render_live(&self) -> Option<Bytes> {
        let first = self.listed_stored().next()?;
        let listed = self.stored.len().min(self.cfg.window);
        let mut out = String::with_capacity(160 + 96 * listed);
        let _ = write!(
            out,
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:{}\n#EXT-X-DISCONTINUITY-SEQUENCE:{}\n",
            self.target_duration_s, first.info.sequence, self.discontinuity_sequence
        );
        for s in self.listed_stored() {
            let info = &s.info;
            if info.discontinuity {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            out.push_str("#EXT-X-PROGRAM-DATE-TIME:");
            write_program_date_time(&mut out, info.program_date_time_ms);
            out.push('\n');
            write_extinf(&mut out, info);
        }
        if self.ended {
            out.push_str("#EXT-X-ENDLIST\n");
        }
        Some(Bytes::from(out))
    }

    /// The media playlist; live: `None` until a segment is finished; event: always
    /// there. Cheap: it is rendered when it changes, and this hands out a shared
    /// reference to it.
    pub fn playlist(&self) -> Option<Bytes> {
        self.playlist.clone()
    }

    /// A finished segment's TS bytes, while it is listed or retained (event: while it
    /// is the newest); `None` for the open segment, expired ones and ones not made yet.
    pub fn segment(&self, sequence: u64) -> Option<Bytes> {
        let first = self.stored.front()?.info.sequence;
        let index = usize::try_from(sequence.checked_sub(first)?).ok()?;
        self.stored.get(index)?.data.clone()
    }

    /// The newest finished segment: after a cut, discontinuity or end, the one it
    /// finished, if it finished one (compare its sequence with what was stored).
    pub fn last_finished(&self) -> Option<&SegmentInfo> {
        self.stored.back().map(|s| &s.info)
    }

    /// The segments the playlist lists, oldest first.
    pub fn listed(&self) -> impl Iterator<Item = &SegmentInfo> + '_ {
        self.listed_stored().map(|s| &s.info)
    }

    /// Every finished segment still served (retained, then listed), oldest first.
    pub fn segments(&self) -> impl Iterator<Item = &SegmentInfo> + '_ {
        self.stored.iter().map(|s| &s.info)
    }

    /// The sequence number the next segment will get.
    pub fn next_sequence(&self) -> u64 {
        self.next_sequence
    }

    /// `#EXT-X-TARGETDURATION` in seconds (0 before the first segment).
    pub fn target_duration_s(&self) -> u64 {
        self.target_duration_s
    }

    /// `#EXT-X-DISCONTINUITY-SEQUENCE`.
    pub fn discontinuity_sequence(&self) -> u64 {
        self.discontinuity_sequence
    }

    /// Bytes in the open segment (0 if none is open).
    pub fn open_len(&self) -> usize {
        self.open.as_ref().map_or(0, |o| o.buf.len())
    }

    /// [`Segmenter::end`] was called.
    pub fn is_ended(&self) -> bool {
        self.ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: i64 = 1_700_000_000_000; // 2023-11-14T22:13:20.000Z

    fn seg() -> Segmenter {
        Segmenter::new(HlsConfig::default())
    }

    /// What the server does for one frame; returns the expired segments. The TS
    /// "bytes" are the dts, so tests can tell segments apart.
    fn frame(s: &mut Segmenter, dts: i64, key: bool, is_video: bool, has_video: bool) -> Vec<u64> {
        let mut expired = Vec::new();
        if s.should_cut(dts, key, is_video, has_video) {
            expired = s.cut(dts).into_iter().map(|i| i.sequence).collect();
        }
        s.push(dts, &dts.to_be_bytes(), T0 + dts).unwrap();
        expired
    }

    /// A 25 fps video-only stream from `from` (inclusive) to `to` (exclusive) with a
    /// keyframe every `gop` ms.
    fn video(s: &mut Segmenter, from: i64, to: i64, gop: i64) -> Vec<u64> {
        let mut expired = Vec::new();
        let mut dts = from;
        while dts < to {
            expired.extend(frame(s, dts, (dts - from) % gop == 0, true, true));
            dts += 40;
        }
        expired
    }

    fn text(s: &Segmenter) -> String {
        String::from_utf8(s.playlist().expect("playlist").to_vec()).unwrap()
    }

    fn listed_seqs(s: &Segmenter) -> Vec<u64> {
        s.listed().map(|i| i.sequence).collect()
    }

    #[test]
    fn first_segment_appears_only_after_a_cut() {
        let mut s = seg();
        video(&mut s, 0, 2000, 2000);
        assert_eq!(s.playlist(), None);
        assert_eq!(s.segment(0), None, "the open segment is not served");
        assert!(s.open_len() > 0);
        video(&mut s, 2000, 2040, 2000); // the keyframe at 2000 cuts
        assert_eq!(
            text(&s),
            "#EXTM3U\n\
             #EXT-X-VERSION:3\n\
             #EXT-X-TARGETDURATION:2\n\
             #EXT-X-MEDIA-SEQUENCE:0\n\
             #EXT-X-DISCONTINUITY-SEQUENCE:0\n\
             #EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z\n\
             #EXTINF:2.000,\n\
             0.ts\n"
        );
        let bytes = s.segment(0).unwrap();
        assert_eq!(bytes.len(), 50 * 8);
        assert_eq!(&bytes[..8], &0i64.to_be_bytes());
        assert_eq!(&bytes[bytes.len() - 8..], &1960i64.to_be_bytes());
        assert_eq!(s.segment(1), None);
    }

    #[test]
    fn sliding_window_advances_media_sequence_without_gaps() {
        let mut s = seg();
        for n in 1..=10u64 {
            let from = (n as i64 - 1) * 2000;
            video(&mut s, from, from + 2000, 2000); // its first keyframe cut the previous
            if n == 1 {
                assert_eq!(s.playlist(), None);
                continue;
            }
            let first = (n - 1).saturating_sub(3);
            assert_eq!(listed_seqs(&s), (first..n - 1).collect::<Vec<_>>());
            assert!(text(&s).contains(&format!("#EXT-X-MEDIA-SEQUENCE:{first}\n")));
        }
        s.cut(20_000);
        assert_eq!(
            text(&s),
            "#EXTM3U\n\
             #EXT-X-VERSION:3\n\
             #EXT-X-TARGETDURATION:2\n\
             #EXT-X-MEDIA-SEQUENCE:7\n\
             #EXT-X-DISCONTINUITY-SEQUENCE:0\n\
             #EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:34.000Z\n\
             #EXTINF:2.000,\n\
             7.ts\n\
             #EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:36.000Z\n\
             #EXTINF:2.000,\n\
             8.ts\n\
             #EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:38.000Z\n\
             #EXTINF:2.000,\n\
             9.ts\n"
        );
    }

    #[test]
    fn target_duration_is_the_ceiling_and_never_lowered() {
        let mut s = seg();
        video(&mut s, 0, 2000, 2000);
        s.cut(2000);
        assert_eq!(s.target_duration_s(), 2);
        // A 2.5 s GOP: 2.500 -> 3.
        video(&mut s, 2000, 4500, 2500);
        s.cut(4500);
        assert_eq!(s.listed().last().unwrap().duration_ms, 2500);
        assert_eq!(s.target_duration_s(), 3);
        // Back to 2 s; the 2.5 s segment slides out, the target stays.
        for n in 0..5 {
            video(&mut s, 4500 + n * 2000, 6500 + n * 2000, 2000);
            s.cut(6500 + n * 2000);
        }
        assert_eq!(listed_seqs(&s), [4, 5, 6]);
        assert!(s.listed().all(|i| i.duration_ms == 2000));
        assert_eq!(s.target_duration_s(), 3);
        assert!(text(&s).contains("#EXT-X-TARGETDURATION:3\n"));

        // 2.001 s is 3 too.
        let mut s = seg();
        video(&mut s, 0, 2001, 2001);
        s.cut(2001);
        assert_eq!(s.target_duration_s(), 3);
    }

    #[test]
    fn discontinuity_tags_and_sequence_count_as_they_slide_out() {
        let mut s = seg();
        video(&mut s, 0, 4000, 2000); // segment 0 finished, 1 open
        let expired = s.discontinuity(); // closes 1 at 3960 + 40
        assert!(expired.is_empty());
        assert_eq!(s.listed().last().unwrap().duration_ms, 2000);
        // The new publisher's timeline continues (the hub rebases it).
        video(&mut s, 4001, 6001, 2000);
        s.cut(6001);
        let t = text(&s);
        assert!(
            t.contains("1.ts\n#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:"),
            "{t}"
        );
        assert_eq!(t.matches("#EXT-X-DISCONTINUITY\n").count(), 1);
        assert!(t.contains("#EXT-X-DISCONTINUITY-SEQUENCE:0\n"));
        let flags: Vec<_> = s.listed().map(|i| i.discontinuity).collect();
        assert_eq!(flags, [false, false, true]);

        // Slide segment 2 (the one with the tag) out: 3 more segments.
        let mut dts = 6001;
        for _ in 0..2 {
            video(&mut s, dts, dts + 2000, 2000);
            dts += 2000;
            s.cut(dts);
        }
        assert_eq!(listed_seqs(&s), [2, 3, 4]);
        assert!(text(&s).contains(
            "#EXT-X-MEDIA-SEQUENCE:2\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n#EXT-X-DISCONTINUITY\n"
        ));
        video(&mut s, dts, dts + 2000, 2000);
        s.cut(dts + 2000);
        assert_eq!(listed_seqs(&s), [3, 4, 5]);
        let t = text(&s);
        assert!(!t.contains("#EXT-X-DISCONTINUITY\n"), "{t}");
        assert!(t.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"), "{t}");
        assert_eq!(s.discontinuity_sequence(), 1);
    }

    #[test]
    fn discontinuity_before_any_segment_and_twice_in_a_row() {
        let mut s = seg();
        assert!(s.discontinuity().is_empty());
        assert!(s.discontinuity().is_empty());
        video(&mut s, 0, 2000, 2000);
        s.cut(2000);
        assert!(s.listed().next().unwrap().discontinuity);
    }

    #[test]
    fn endlist_after_end_and_nothing_changes_after() {
        let mut s = seg();
        video(&mut s, 0, 3000, 2000);
        assert!(s.end().is_empty());
        let t = text(&s);
        // The final segment ends one frame (40 ms) after its last frame at 2960.
        assert_eq!(
            t,
            "#EXTM3U\n\
             #EXT-X-VERSION:3\n\
             #EXT-X-TARGETDURATION:2\n\
             #EXT-X-MEDIA-SEQUENCE:0\n\
             #EXT-X-DISCONTINUITY-SEQUENCE:0\n\
             #EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z\n\
             #EXTINF:2.000,\n\
             0.ts\n\
             #EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:22.000Z\n\
             #EXTINF:1.000,\n\
             1.ts\n\
             #EXT-X-ENDLIST\n"
        );
        assert!(s.is_ended());
        assert_eq!(s.push(3000, b"x", T0), Err(HlsError::Ended));
        assert!(!s.should_cut(9000, true, true, true));
        assert!(s.cut(9000).is_empty());
        assert!(s.discontinuity().is_empty());
        assert!(s.end().is_empty());
        assert_eq!(text(&s), t);
        assert!(s.segment(1).is_some());
    }

    #[test]
    fn end_without_any_segment_has_no_playlist() {
        let mut s = seg();
        s.end();
        assert_eq!(s.playlist(), None);
    }

    #[test]
    fn audio_only_cuts_on_time_at_most_the_target() {
        let mut s = seg();
        // AAC at 44.1 kHz: 1024 samples = 23.22 ms, with ms timestamps.
        for k in 0..1000i64 {
            let dts = k * 1024 * 1000 / 44_100;
            frame(&mut s, dts, k % 7 == 0, false, false);
        }
        let segs: Vec<_> = s.segments().cloned().collect();
        assert!(segs.len() >= 8, "{segs:?}");
        for i in &segs {
            assert!(
                (1_970..=2_000).contains(&i.duration_ms),
                "audio segment of {} ms",
                i.duration_ms
            );
        }
        assert_eq!(s.target_duration_s(), 2);
    }

    #[test]
    fn audio_in_a_video_stream_does_not_cut() {
        let mut s = seg();
        video(&mut s, 0, 1000, 1000);
        assert!(
            !s.should_cut(2500, true, false, true),
            "audio never cuts a video stream"
        );
        assert!(s.should_cut(2500, true, true, true));
    }

    #[test]
    fn video_cuts_only_on_keyframes_until_max_segment() {
        let mut s = seg();
        frame(&mut s, 0, true, true, true);
        let mut dts = 40;
        while dts < 6000 {
            assert!(!s.should_cut(dts, false, true, true), "cut at {dts}");
            assert!(!s.should_cut(dts, true, false, true));
            frame(&mut s, dts, false, true, true);
            dts += 40;
        }
        assert!(s.should_cut(6000, false, true, true), "max_segment_ms cuts");
        assert!(s.should_cut(6000, false, false, true));
        frame(&mut s, 6000, false, true, true);
        assert_eq!(s.listed().next().unwrap().duration_ms, 6000);
        // A keyframe before the target does not cut either.
        assert!(!s.should_cut(7000, true, true, true));
        assert!(s.should_cut(8000, true, true, true));
    }

    #[test]
    fn retention_expires_oldest_and_serves_retained_segments() {
        let cfg = HlsConfig {
            window: 3,
            retain_extra: 2,
            ..HlsConfig::default()
        };
        let mut s = Segmenter::new(cfg);
        let mut expired = Vec::new();
        for n in 0..8i64 {
            expired.extend(video(&mut s, n * 2000, (n + 1) * 2000, 2000));
        }
        // 7 segments finished; closing 5 and 6 expired 0 and 1.
        assert_eq!(expired, [0, 1]);
        let dropped = s.cut(16_000);
        assert_eq!(dropped.iter().map(|i| i.sequence).collect::<Vec<_>>(), [2]);
        assert_eq!(listed_seqs(&s), [5, 6, 7]);
        let kept: Vec<_> = s.segments().map(|i| i.sequence).collect();
        assert_eq!(kept, [3, 4, 5, 6, 7], "window + retain_extra");
        assert!((0..3).all(|q| s.segment(q).is_none()));
        let retained = s.segment(3).expect("retained but unlisted");
        assert_eq!(&retained[..8], &6000i64.to_be_bytes());
        assert!(!text(&s).contains("3.ts"));
        assert!(s.segment(7).is_some());
        assert!(s.segment(8).is_none(), "not made yet");
        assert!(s.segment(u64::MAX).is_none());
        // The cut's return value names what it dropped.
        video(&mut s, 16_000, 18_000, 2000);
        assert!(s.segment(8).is_none(), "open segment");
        let dropped = s.cut(18_000);
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].sequence, 3);
        assert_eq!(dropped[0].name, "3.ts");
        assert!(s.segment(3).is_none());
    }

    #[test]
    fn program_date_time_format() {
        assert_eq!(
            format_program_date_time(1_700_000_000_123),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(format_program_date_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_program_date_time(951_782_400_000),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(
            format_program_date_time(951_868_799_999),
            "2000-02-29T23:59:59.999Z"
        );
        assert_eq!(
            format_program_date_time(951_868_800_000),
            "2000-03-01T00:00:00.000Z"
        );
        assert_eq!(
            format_program_date_time(1_709_164_800_000),
            "2024-02-29T00:00:00.000Z"
        );
        assert_eq!(
            format_program_date_time(4_102_444_800_000),
            "2100-01-01T00:00:00.000Z"
        );
        assert_eq!(
            format_program_date_time(1_735_689_599_999),
            "2024-12-31T23:59:59.999Z"
        );
        assert_eq!(format_program_date_time(-5), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_program_date_time(i64::MAX),
            "9999-12-31T23:59:59.999Z"
        );
        assert_eq!(
            format_program_date_time(i64::MIN),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn program_date_time_follows_media_time_and_resyncs() {
        let mut s = seg();
        let push = |s: &mut Segmenter, dts: i64, now: i64, key: bool| {
            if s.should_cut(dts, key, true, true) {
                s.cut(dts);
            }
            s.push(dts, b"ts", now).unwrap();
        };
        // The first GOP arrives in a burst (the hub's GOP cache), then live.
        push(&mut s, 0, T0, true);
        push(&mut s, 1000, T0 + 1, false);
        push(&mut s, 2000, T0 + 300, true); // media ahead of wall by 1.7 s: resync
        push(&mut s, 4000, T0 + 2_350, true); // 50 ms jitter: follows media time
        push(&mut s, 6000, T0 + 4_250, true);
        let pdt: Vec<_> = s.listed().map(|i| i.program_date_time_ms - T0).collect();
        assert_eq!(pdt, [0, 300, 2_300]);
        // A discontinuity re-anchors on the wall clock.
        s.discontinuity();
        push(&mut s, 6100, T0 + 9_000, true);
        push(&mut s, 8100, T0 + 11_000, true);
        assert_eq!(s.listed().last().unwrap().program_date_time_ms - T0, 9_000);
        assert!(text(&s).contains("#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:29.000Z\n"));
    }

    #[test]
    fn backwards_timestamps_cut_with_a_discontinuity_and_no_negative_duration() {
        let mut s = seg();
        video(&mut s, 10_000, 11_000, 2000);
        // The publisher restarted at 0 mid-GOP, not on a keyframe.
        assert!(s.should_cut(0, false, true, true));
        let expired = s.cut(0);
        assert!(expired.is_empty());
        let first = s.listed().next().unwrap().clone();
        assert_eq!(first.duration_ms, 1000, "ends one frame after 10 960");
        s.push(0, b"x", T0).unwrap();
        video(&mut s, 40, 2000, 2000);
        frame(&mut s, 2000, true, true, true);
        let flags: Vec<_> = s.listed().map(|i| i.discontinuity).collect();
        assert_eq!(flags, [false, true]);
        assert_eq!(s.listed().nth(1).unwrap().duration_ms, 2000);

        // Small steps back (audio after video) are interleaving, not jumps.
        let mut s = seg();
        frame(&mut s, 1000, true, true, true);
        assert!(!s.should_cut(980, false, false, true));
        frame(&mut s, 980, false, false, true);
        assert!(s.should_cut(3000, true, true, true));
        // A cut whose next start is a little before this segment's start clamps to 0.
        assert_eq!(s.cut(990).first(), None);
        assert_eq!(s.listed().next().unwrap().duration_ms, 0);
    }

    #[test]
    fn forward_jump_cuts_with_a_discontinuity() {
        let mut s = seg();
        video(&mut s, 0, 1000, 2000);
        assert!(s.should_cut(500_000, false, true, true));
        frame(&mut s, 500_000, false, true, true);
        assert_eq!(s.listed().next().unwrap().duration_ms, 1000);
        video(&mut s, 500_040, 502_000, 2000);
        frame(&mut s, 502_000, true, true, true);
        assert!(s.listed().nth(1).unwrap().discontinuity);
        assert_eq!(s.target_duration_s(), 2);
    }

    #[test]
    fn open_segment_size_is_capped() {
        let mut s = seg();
        let big = vec![0x47u8; MAX_SEGMENT_BYTES / 2];
        s.push(0, &big, T0).unwrap();
        assert!(!s.should_cut(40, false, true, true));
        s.push(40, &big, T0).unwrap();
        assert!(
            s.should_cut(80, false, true, true),
            "full segment cuts anywhere"
        );
        assert_eq!(
            s.push(80, b"more", T0),
            Err(HlsError::SegmentFull {
                open: MAX_SEGMENT_BYTES,
                pushed: 4
            })
        );
        assert_eq!(s.open_len(), MAX_SEGMENT_BYTES);
        s.cut(80);
        assert_eq!(s.segment(0).unwrap().len(), MAX_SEGMENT_BYTES);
        s.push(80, b"more", T0).unwrap();
        let huge = vec![0u8; MAX_SEGMENT_BYTES + 1];
        assert!(matches!(
            s.push(120, &huge, T0),
            Err(HlsError::SegmentFull { .. })
        ));
    }

    #[test]
    fn empty_pushes_open_nothing() {
        let mut s = seg();
        s.push(0, &[], T0).unwrap();
        assert_eq!(s.open_len(), 0);
        assert!(!s.should_cut(5000, true, true, true));
        assert!(s.cut(5000).is_empty());
        assert_eq!(s.playlist(), None);
    }

    #[test]
    fn first_sequence_and_config_correction() {
        let mut s = Segmenter::new(HlsConfig {
            target_duration_ms: 0,
            window: 0,
            retain_extra: 0,
            max_segment_ms: 0,
            first_sequence: 41,
        });
        assert_eq!(s.config().window, 1);
        assert_eq!(s.config().max_segment_ms, 1);
        frame(&mut s, 0, true, true, true);
        frame(&mut s, 1, true, true, true);
        let expired = frame(&mut s, 2, true, true, true);
        assert_eq!(expired, [41]);
        assert_eq!(listed_seqs(&s), [42]);
        assert!(text(&s).contains("#EXT-X-MEDIA-SEQUENCE:42\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n"));
        assert!(text(&s).contains("\n42.ts\n"));
        assert_eq!(s.next_sequence(), 43);
    }

    #[test]
    fn extreme_config_and_timestamps_do_not_panic() {
        let mut s = Segmenter::new(HlsConfig {
            target_duration_ms: u32::MAX,
            window: usize::MAX,
            retain_extra: usize::MAX,
            max_segment_ms: u32::MAX,
            first_sequence: u64::MAX - 1,
        });
        for dts in [i64::MIN, 0, i64::MAX, i64::MIN, -1, i64::MAX] {
            if s.should_cut(dts, true, true, true) {
                s.cut(dts);
            }
            s.push(dts, b"ts", i64::MIN).unwrap();
        }
        s.discontinuity();
        s.end();
        assert!(text(&s).ends_with("#EXT-X-ENDLIST\n"));
        assert!(s.listed().all(|i| i.program_date_time_ms == i64::MIN));
        assert!(text(&s).contains("1970-01-01T00:00:00.000Z"));
    }

    /// A recording's settings as the server's HLS recorder passes them.
    fn event(target_ms: u32, start: Option<i64>) -> Segmenter {
        Segmenter::new_event(
            HlsConfig {
                target_duration_ms: target_ms,
                max_segment_ms: 2 * target_ms,
                ..HlsConfig::default()
            },
            start,
        )
    }

    const EVENT_HEAD: &str = "#EXTM3U\n\
        #EXT-X-VERSION:3\n\
        #EXT-X-PLAYLIST-TYPE:EVENT\n\
        #EXT-X-TARGETDURATION:8\n\
        #EXT-X-MEDIA-SEQUENCE:0\n\
        #EXT-X-PROGRAM-DATE-TIME:2026-11-24T10:57:21.250Z\n";

    #[test]
    fn event_playlist_exists_before_any_segment() {
        let s = event(4000, Some(1_795_517_841_250));
        assert_eq!(text(&s), EVENT_HEAD);
        assert_eq!(s.kind(), PlaylistKind::Event);
        assert_eq!(s.target_duration_s(), 8, "fixed up front at max_segment_ms");
        assert!(s.last_finished().is_none());
    }

    #[test]
    fn event_playlist_then_vod_byte_for_byte() {
        let cfg = HlsConfig {
            target_duration_ms: 3000,
            max_segment_ms: 8000,
            ..HlsConfig::default()
        };
        let mut s = Segmenter::new_event(cfg, Some(1_795_517_841_250));
        video(&mut s, 0, 4000, 4000); // 0 .. 3960, one GOP
        assert!(s.discontinuity().is_empty()); // closes 0.ts at 3960 + 40
        video(&mut s, 4000, 7960, 4000); // 4000 .. 7920
        assert!(s.should_cut(7960, true, true, true));
        assert!(s.cut(7960).is_empty()); // 1.ts: 3.960 s
        assert_eq!(
            text(&s),
            format!(
                "{EVENT_HEAD}\
                 #EXTINF:4.000,\n\
                 0.ts\n\
                 #EXT-X-DISCONTINUITY\n\
                 #EXTINF:3.960,\n\
                 1.ts\n"
            )
        );
        assert!(s.end().is_empty());
        let vod = text(&s);
        assert_eq!(
            vod,
            format!(
                "{EVENT_HEAD}\
                 #EXTINF:4.000,\n\
                 0.ts\n\
                 #EXT-X-DISCONTINUITY\n\
                 #EXTINF:3.960,\n\
                 1.ts\n\
                 #EXT-X-ENDLIST\n"
            )
        );
        let pl = m3u8_rs::parse_media_playlist_res(vod.as_bytes()).unwrap();
        assert!(pl.end_list);
        assert_eq!(pl.playlist_type, Some(m3u8_rs::MediaPlaylistType::Event));
        assert_eq!(pl.target_duration, 8);
        assert_eq!(pl.media_sequence, 0);
        assert_eq!(pl.segments.len(), 2);
        assert!(pl.segments[1].discontinuity);
        assert_eq!(
            pl.segments[0].program_date_time.unwrap().timestamp_millis(),
            1_795_517_841_250
        );
        assert!(pl.segments[1].program_date_time.is_none());
    }

    #[test]
    fn event_lists_everything_and_keeps_only_the_newest_bytes() {
        let mut s = event(2000, None);
        let mut expired = Vec::new();
        for n in 0..12i64 {
            expired.extend(video(&mut s, n * 2000, (n + 1) * 2000, 2000));
            if let Some(last) = s.last_finished() {
                // What the recorder does after each cut: store the newest segment.
                assert!(s.segment(last.sequence).is_some());
            }
        }
        assert!(expired.is_empty(), "a recording never expires a segment");
        assert_eq!(listed_seqs(&s), (0..11).collect::<Vec<_>>());
        assert_eq!(s.segments().count(), 11);
        assert_eq!(s.last_finished().unwrap().sequence, 10);
        assert!(
            (0..10).all(|q| s.segment(q).is_none()),
            "stored by the caller"
        );
        assert_eq!(&s.segment(10).unwrap()[..8], &20_000i64.to_be_bytes());
        let t = text(&s);
        assert!(t.starts_with("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:2.000,\n0.ts\n"), "{t}");
        assert!(!t.contains("PROGRAM-DATE-TIME") && !t.contains("DISCONTINUITY-SEQUENCE"));
        assert_eq!(t.matches("#EXTINF:2.000,\n").count(), 11);
    }

    #[test]
    fn event_target_is_raised_only_past_the_cap() {
        let mut s = event(1000, None);
        assert_eq!(s.target_duration_s(), 2);
        // No keyframes, 70 ms frames: the cap cuts at the first frame at or past
        // 2000 ms, which is 2030 ms after the segment's start.
        let mut dts = 0;
        while dts <= 2030 {
            frame(&mut s, dts, dts == 0, true, true);
            dts += 70;
        }
        assert_eq!(s.last_finished().unwrap().duration_ms, 2030);
        assert_eq!(s.target_duration_s(), 3);
        assert!(text(&s).contains("#EXT-X-TARGETDURATION:3\n"));
    }

    #[test]
    fn event_end_truncated_lists_only_what_was_stored() {
        let mut s = event(2000, None);
        video(&mut s, 0, 6040, 2000); // 0.ts, 1.ts, 2.ts finished, 3 open
        assert_eq!(s.last_finished().unwrap().sequence, 2);
        // Storing 2.ts failed: the recording ends with 0.ts and 1.ts.
        s.end_truncated(2);
        let t = text(&s);
        assert!(
            t.ends_with("0.ts\n#EXTINF:2.000,\n1.ts\n#EXT-X-ENDLIST\n"),
            "{t}"
        );
        assert!(s.is_ended());
        assert_eq!(s.push(9000, b"x", T0), Err(HlsError::Ended));
        s.end();
        s.end_truncated(2);
        assert_eq!(text(&s), t);
        // After end: storing the segment that end finished failed.
        s.end_truncated(1);
        assert!(
            text(&s).ends_with("#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:2.000,\n0.ts\n#EXT-X-ENDLIST\n")
        );
        // Truncating before anything was finished leaves the empty VOD playlist.
        let mut s = event(2000, None);
        video(&mut s, 0, 1000, 2000);
        s.end_truncated(0);
        assert!(text(&s).ends_with("#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-ENDLIST\n"));
    }

    #[test]
    fn segment_names_round_trip() {
        assert_eq!(segment_name(17), "17.ts");
        assert_eq!(parse_segment_name("17.ts"), Some(17));
        assert_eq!(parse_segment_name("0.ts"), Some(0));
        assert_eq!(parse_segment_name(&segment_name(u64::MAX)), Some(u64::MAX));
        for bad in [
            "",
            ".ts",
            "017.ts",
            "+1.ts",
            "-1.ts",
            "1.TS",
            "1.ts/",
            "../1.ts",
            "a.ts",
            "18446744073709551616.ts",
            "1",
        ] {
            assert_eq!(parse_segment_name(bad), None, "{bad}");
        }
    }

    /// Parses our playlist with m3u8-rs and checks it against the segmenter's state.
    fn check_with_m3u8_rs(s: &Segmenter) -> Result<(), TestCaseError> {
        let Some(bytes) = s.playlist() else {
            return Ok(());
        };
        let pl = m3u8_rs::parse_media_playlist_res(&bytes)
            .map_err(|e| TestCaseError::fail(format!("m3u8-rs rejects our playlist: {e:?}")))?;
        let listed: Vec<_> = s.listed().collect();
        prop_assert_eq!(pl.version, Some(3));
        prop_assert_eq!(pl.target_duration, s.target_duration_s());
        prop_assert_eq!(pl.media_sequence, listed[0].sequence);
        prop_assert_eq!(pl.discontinuity_sequence, s.discontinuity_sequence());
        prop_assert_eq!(pl.end_list, s.is_ended());
        prop_assert_eq!(pl.segments.len(), listed.len());
        for (p, i) in pl.segments.iter().zip(&listed) {
            prop_assert_eq!(&p.uri, &i.name);
            prop_assert_eq!(p.discontinuity, i.discontinuity);
            prop_assert!((p.duration as f64 * 1000.0 - f64::from(i.duration_ms)).abs() < 2.0);
            prop_assert!(p.duration >= 0.0);
            prop_assert!(u64::from(i.duration_ms).div_ceil(1000) <= pl.target_duration);
            let pdt = p.program_date_time.expect("PDT on every segment");
            prop_assert_eq!(
                pdt.timestamp_millis(),
                i.program_date_time_ms.clamp(0, MAX_PDT_MS)
            );
        }
        Ok(())
    }

    #[test]
    fn m3u8_rs_reads_our_playlist() {
        let mut s = seg();
        video(&mut s, 0, 6000, 2000);
        s.discontinuity();
        video(&mut s, 6000, 12_000, 2000);
        s.discontinuity();
        video(&mut s, 12_000, 14_000, 2000);
        s.end();
        check_with_m3u8_rs(&s).unwrap();
        let pl = m3u8_rs::parse_media_playlist_res(&s.playlist().unwrap()).unwrap();
        assert!(pl.end_list);
        assert_eq!(pl.media_sequence, 4);
        assert_eq!(pl.discontinuity_sequence, 1);
        assert_eq!(pl.segments.len(), 3);
        assert_eq!(pl.segments[2].uri, "6.ts");
        assert!(pl.segments[2].discontinuity);
        assert_eq!(
            pl.segments[0].program_date_time.unwrap().timestamp_millis(),
            T0 + 8000
        );
    }

    #[derive(Debug, Clone)]
    enum Op {
        Frame {
            step: i64,
            key: bool,
            video: bool,
            len: usize,
            wall_step: i64,
        },
        Discontinuity,
        End,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            40 => (
                prop_oneof![
                    8 => 0i64..80,
                    1 => -1500i64..0,
                    1 => any::<i64>(),
                    1 => 0i64..20_000
                ],
                prop::bool::weighted(0.1),
                any::<bool>(),
                0usize..400,
                prop_oneof![4 => 0i64..100, 1 => any::<i64>()]
            )
                .prop_map(|(step, key, video, len, wall_step)| Op::Frame { step, key, video, len, wall_step }),
            1 => Just(Op::Discontinuity),
            1 => Just(Op::End),
        ]
    }

    proptest! {
        /// The same hostile frame sequences under a recording: every segment stays
        /// listed from 0 without gaps, only the newest keeps its bytes, the target
        /// never drops below its fixed start, and m3u8-rs reads every rendering.
        #[test]
        fn random_frame_sequences_keep_the_event_playlist_valid(
            has_video in any::<bool>(),
            start in any::<i64>(),
            target in 0u32..3000,
            ops in prop::collection::vec(op(), 0..300),
        ) {
            let mut s = Segmenter::new_event(
                HlsConfig { target_duration_ms: target, max_segment_ms: target.saturating_mul(2), ..HlsConfig::default() },
                Some(T0),
            );
            let first_target = s.target_duration_s();
            let (mut dts, mut wall) = (start, T0);
            for op in ops {
                let expired = match op {
                    Op::Frame { step, key, video, len, wall_step } => {
                        dts = dts.wrapping_add(step);
                        wall = wall.wrapping_add(wall_step);
                        let mut expired = Vec::new();
                        if s.should_cut(dts, key, video, has_video) {
                            expired = s.cut(dts);
                        }
                        let r = s.push(dts, &vec![0x47; len], wall);
                        prop_assert_eq!(r.is_err(), s.is_ended());
                        expired
                    }
                    Op::Discontinuity => s.discontinuity(),
                    Op::End => s.end(),
                };
                prop_assert!(expired.is_empty());
                let all: Vec<_> = s.listed().map(|i| i.sequence).collect();
                prop_assert_eq!(&all, &(0..all.len() as u64).collect::<Vec<_>>());
                prop_assert_eq!(s.segments().count(), all.len());
                for q in &all {
                    prop_assert_eq!(s.segment(*q).is_some(), Some(q) == all.last());
                }
                prop_assert!(s.target_duration_s() >= first_target);
                let bytes = s.playlist().expect("an event playlist always exists");
                let pl = m3u8_rs::parse_media_playlist_res(&bytes)
                    .map_err(|e| TestCaseError::fail(format!("m3u8-rs rejects our playlist: {e:?}")))?;
                prop_assert_eq!(pl.playlist_type, Some(m3u8_rs::MediaPlaylistType::Event));
                prop_assert_eq!(pl.target_duration, s.target_duration_s());
                prop_assert_eq!(pl.end_list, s.is_ended());
                prop_assert_eq!(pl.segments.len(), all.len());
                for (p, i) in pl.segments.iter().zip(s.listed()) {
                    prop_assert_eq!(&p.uri, &i.name);
                    prop_assert_eq!(p.discontinuity, i.discontinuity);
                    prop_assert!(u64::from(i.duration_ms).div_ceil(1000) <= pl.target_duration);
                }
            }
        }

        /// Random (including hostile) frame sequences: no panic, the listed
        /// sequence numbers are contiguous and follow MEDIA-SEQUENCE, the target never
        /// drops, retention holds, and m3u8-rs reads every playlist we render.
        #[test]
        fn random_frame_sequences_keep_the_playlist_valid(
            has_video in any::<bool>(),
            start in any::<i64>(),
            window in 1usize..5,
            retain_extra in 0usize..4,
            target in 0u32..3000,
            max_segment in 0u32..10_000,
            ops in prop::collection::vec(op(), 0..300),
        ) {
            let mut s = Segmenter::new(HlsConfig {
                target_duration_ms: target,
                window,
                retain_extra,
                max_segment_ms: max_segment,
                first_sequence: 0,
            });
            let (mut dts, mut wall) = (start, T0);
            let mut target_s = 0;
            let mut disc_seq = 0;
            let mut expired_upto = 0u64; // every sequence below this has expired
            for op in ops {
                let expired = match op {
                    Op::Frame { step, key, video, len, wall_step } => {
                        dts = dts.wrapping_add(step);
                        wall = wall.wrapping_add(wall_step);
                        let mut expired = Vec::new();
                        if s.should_cut(dts, key, video, has_video) {
                            expired = s.cut(dts);
                        }
                        let r = s.push(dts, &vec![0x47; len], wall);
                        prop_assert_eq!(r.is_err(), s.is_ended());
                        expired
                    }
                    Op::Discontinuity => s.discontinuity(),
                    Op::End => s.end(),
                };
                for e in &expired {
                    prop_assert_eq!(e.sequence, expired_upto);
                    expired_upto += 1;
                    prop_assert!(s.segment(e.sequence).is_none());
                }
                let all: Vec<_> = s.segments().map(|i| i.sequence).collect();
                prop_assert!(all.len() <= window + retain_extra);
                prop_assert_eq!(all.first().copied().unwrap_or(expired_upto), expired_upto);
                let listed: Vec<_> = s.listed().cloned().collect();
                prop_assert!(listed.len() <= window);
                for pair in listed.windows(2) {
                    prop_assert_eq!(pair[1].sequence, pair[0].sequence + 1);
                }
                if let Some(last) = listed.last() {
                    prop_assert_eq!(last.sequence + 1, s.next_sequence());
                    prop_assert_eq!(s.segment(last.sequence).map(|b| b.len()), Some(last.size));
                }
                prop_assert!(s.target_duration_s() >= target_s);
                prop_assert!(s.discontinuity_sequence() >= disc_seq);
                target_s = s.target_duration_s();
                disc_seq = s.discontinuity_sequence();
                prop_assert_eq!(s.playlist().is_some(), !listed.is_empty());
                check_with_m3u8_rs(&s)?;
            }
        }
    }
}
