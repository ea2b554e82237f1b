//! Crash-safe MP4 recording: FLV tag bodies in, the bytes of an `.mp4` file out.
//!
//! [`Mp4Recorder`] owns the layout of one recorded file and is its only writer; the
//! caller appends what it is given, in order, and never seeks except to apply the
//! patches of [`Finish`]. Pure: no I/O, no clock, no panics; every box is encoded
//! with the `mp4-atom` crate (the project rule: a well-kept crate rather than
//! hand-written boxes), only the sample bytes are ours, and those are the FLV tag
//! bodies' own `Bytes`, sliced, never copied.
//!
//! # The file while recording: fragmented
//! ```text
//! ftyp | moov (mvex, empty sample tables) | moof mdat | moof mdat | ...
//! ```
//! A file cut by `kill -9` or a full disk therefore plays up to its last complete
//! fragment (plus the whole frames of a cut `mdat`). A fragment holds one `moof`
//! with a `traf` per track that has samples (`tfhd` with default-base-is-moof,
//! `tfdt`, one `trun` with per-sample duration, size, flags and, for video,
//! composition offsets) and one `mdat` holding those samples, each track's
//! samples contiguous.
//!
//! One caveat, measured with ffmpeg 5.1: it reads every `moof` when it opens a
//! seekable file, and a file that ends inside a `trun` does not open at all. The
//! `moof` is a small part of a fragment (about 1% at 2 Mbit/s) and goes out in one
//! vectored write with its samples; the repair below cuts a file to the end of its
//! last complete `mdat`, which removes the case.
//!
//! # Finishing in place
//! [`Mp4Recorder::finish`] flushes the last fragment and returns a [`Finish`]: a
//! complete progressive `moov` (full `stbl`: `stsd`, `stts`, `ctts` when a
//! composition offset is nonzero, `stss` for video, `stsz`, `stsc`, `co64` pointing
//! at the sample bytes already inside the `mdat` boxes) to append at the end of the
//! file, and 4-byte patches `(absolute offset, *b"free")` that retype the initial
//! `moov` and every `moof` as `free` (same size). After appending and patching, the
//! file is an ordinary seekable MP4, without copying media:
//! ```text
//! ftyp | free | free mdat | free mdat | ... | moov
//! ```
//! Patch in any order; apply them only after the trailer is durably written, so a
//! crash in between leaves a file that still plays as fragmented MP4.
//!
//! # API and call order
//! * [`Mp4Recorder::new`]`(expect_video, expect_audio, fragment_ms)`.
//! * [`Mp4Recorder::write_video`] / [`Mp4Recorder::write_audio`] for every FLV tag
//!   body, sequence headers included, with its timestamp; each appends to `out`
//!   whatever the file must receive next (write the pieces in order, vectored).
//! * [`Mp4Recorder::flush`] now and then (e.g. when the stream goes quiet) to write
//!   the samples whose durations are known.
//! * [`Mp4Recorder::finish`] once, at stop or rotation; then append
//!   [`Finish::trailer`] and apply [`Finish::patches`]. If [`Mp4Recorder::started`]
//!   is false the file is empty (the trailer too) and can be deleted.
//! * On [`Mp4Error::ConfigChanged`] (a new sequence header, e.g. the encoder restarted
//!   with another resolution) nothing changed: finish this file, start a new recorder
//!   and feed it the sequence headers again, then the tag that failed.
//! * Any other `Err` is about that one tag (bad bytes, too large, wrong codec): it
//!   appended nothing, the recorder is unchanged and the caller may log and go on.
//!   Except [`Mp4Error::TooManySamples`], which asks for a rotation,
//!   [`Mp4Error::Finished`], and [`Mp4Error::Encode`] (a bug, not bad input: the
//!   sample was taken and its fragment is retried on the next cut).
//!
//! # Repair after a crash
//! [`Mp4Repair`] (and [`repair`] over bytes in memory) finishes a file the recorder
//! never finished: it walks the top-level boxes, takes the track descriptions from
//! the fragmented `moov` and the samples from every `moof` whose `mdat` is complete,
//! and returns the same kind of trailer and patches as [`Mp4Recorder::finish`],
//! plus the length to cut a torn last fragment at. The result is the file a clean
//! stop would have written, minus the samples that had not reached the disk.
//! [`needs_repair`] recognises such a file from its first bytes: a finished file
//! has `free` where an unfinished one has its fragmented `moov`. Sans-IO like the
//! recorder (the caller reads what it asks for): only box headers, the `moov` and
//! one `moof` at a time are read, never the media, and any bytes are accepted.
//!
//! # Rules
//! * The header (`ftyp` + `moov`) is written on the first video keyframe when video is
//!   expected, with the tracks whose configuration is known then (video first, track
//!   1; AAC next); earlier frames are dropped. Audio-only: on the first AAC frame. An
//!   audio sequence header that arrives after the header of a file without audio is
//!   ignored, and so is its audio.
//! * `ftyp`: major `isom`, compatible `isom`, `iso6`, `mp41` (+ `avc1` for H.264).
//! * Timeline: every file starts at 0, rebased to the dts of the first sample written.
//!   Video timescale 90 kHz, audio the AAC sample rate, movie 1 kHz. Durations come
//!   from absolute timestamps converted to the track timescale (`ts(next) - ts(this)`),
//!   so rounding does not accumulate; a timestamp going backwards gives a duration
//!   of 0. The last sample of each track is held back until the next one gives its
//!   duration; at finish it gets its predecessor's (1024 for a lone AAC frame, 3600
//!   = 40 ms for a lone video frame). A track that starts after 0 (audio behind the
//!   first keyframe) gets an empty edit in the final `moov`, as `tfdt` says in the
//!   fragmented file.
//! * Video samples are the AVCC (length-prefixed) payload after the FLV tag header,
//!   exactly as MP4 stores them; the FLV composition time becomes the `ctts` / `trun`
//!   offset. Sample entries: `avc1` + `avcC`, `hvc1` + `hvcC` (parameter sets out of
//!   band), `mp4a` + `esds` with the AudioSpecificConfig. Other codecs: video is an
//!   [`Mp4Error::UnsupportedCodec`], non-AAC audio is silently left out.
//! * A fragment is cut when a sync sample of the main track (video, else audio)
//!   arrives with at least `fragment_ms` pending, or when `2 * fragment_ms` are
//!   pending regardless (long GOPs), or when the pending bytes or sample count reach
//!   a cap ([`MAX_FRAGMENT_BYTES`], [`MAX_FRAGMENT_SAMPLES`]: a stalled clock must
//!   not grow memory).
//! * Memory: the pending fragment's `Bytes`, plus 12 bytes per written sample and 16
//!   per fragment and track for the final sample table. Caps: [`MAX_SAMPLE_SIZE`]
//!   per sample, [`MAX_SAMPLES_PER_FILE`] per file.

use bytes::{Bytes, BytesMut};
use mp4_atom::esds::{DecoderConfig, DecoderSpecific, EsDescriptor, SLConfig};
use mp4_atom::{
    Atom, Audio, Avc1, Avcc, AvccExt, Co64, Codec, Ctts, CttsEntry, Decode, Dinf, Dref, DrefEntry,
    Edts, Elst, ElstEntry, Encode, Esds, FixedPoint, FourCC, Ftyp, Hdlr, Header, Hvc1, HvcCArray,
    Hvcc, Mdhd, Mdia, Mfhd, Minf, Moof, Moov, Mp4a, Mvex, Mvhd, Smhd, Stbl, Stco, Stsc, StscEntry,
    Stsd, Stss, Stsz, StszSamples, Stts, SttsEntry, Tfdt, Tfhd, Tkhd, Traf, Trak, Trex, Trun,
    TrunEntry, TrunSamples, Url, Visual, Vmhd,
};
use thiserror::Error;

use crate::codec::aac::AudioSpecificConfig;
use crate::codec::h264::AvcDecoderConfig;
use crate::codec::h265::HevcDecoderConfig;
use crate::codec::CodecError;
use crate::flv::{
    parse_audio_tag, parse_video_tag, AudioCodec, FlvError, VideoCodec, VideoPacketKind,
};

/// Largest sample we record. FLV tags are below 16 MiB anyway (24-bit size); a 4K
/// intra frame is a few MiB. Also bounds one fragment's overshoot past its byte cap.
pub const MAX_SAMPLE_SIZE: usize = 16 * 1024 * 1024;

/// Samples per file, all tracks together: 4 million is about 16 hours of 25 fps video
/// with 44.1 kHz AAC. It bounds the sample table (12 bytes a sample) and keeps the
/// final `moov` far below the 4 GiB a 32-bit box size allows. Rotate before.
pub const MAX_SAMPLES_PER_FILE: u32 = 4_000_000;

/// [`Mp4Recorder::near_sample_limit`] says "rotate at the next keyframe" this many
/// samples before [`MAX_SAMPLES_PER_FILE`]: room for a GOP of any sane length (25
/// minutes of 25 fps video with 44.1 kHz AAC), so that the rotation starts the next
/// file on a keyframe and no frame is dropped.
pub const SAMPLE_LIMIT_MARGIN: u32 = 100_000;

/// A fragment is cut once its samples reach this many bytes, whatever their
/// duration: frames with a stalled clock would otherwise pile up in memory. With
/// [`MAX_SAMPLE_SIZE`] it keeps every `trun` data offset far inside `i32`.
pub const MAX_FRAGMENT_BYTES: usize = 64 * 1024 * 1024;

/// A fragment is cut once one track has this many samples pending (the `moof` grows
/// by 16 bytes a sample).
pub const MAX_FRAGMENT_SAMPLES: usize = 8192;

const VIDEO_TIMESCALE: u32 = 90_000;
const MOVIE_TIMESCALE: u32 = 1000;
/// Duration of a lone video sample at finish: 40 ms (one frame at 25 fps).
const LONE_VIDEO_DURATION: u32 = 3600;
/// Samples per AAC frame (the duration of a lone AAC sample at finish).
const AAC_FRAME_SAMPLES: u32 = 1024;

/// ISO/IEC 14496-12 8.8.3.1 sample flags: sample_depends_on = 2 (an I picture, or
/// audio), is_non_sync_sample = 0.
const FLAGS_SYNC: u32 = 0x0200_0000;
/// sample_depends_on = 1, is_non_sync_sample = 1.
const FLAGS_NON_SYNC: u32 = 0x0101_0000;

/// Objects in an `esds` DecoderConfigDescriptor: 0x40 MPEG-4 Audio, stream type 5
/// (audio).
const OBJECT_TYPE_MPEG4_AUDIO: u8 = 0x40;
const STREAM_TYPE_AUDIO: u8 = 5;

/// Set in [`SampleRecord::size_sync`] for sync samples; sizes stay below 2^24.
const SYNC_BIT: u32 = 1 << 31;

#[derive(Debug, Error, PartialEq)]
pub enum Mp4Error {
    /// A sequence header differs from the configuration in this file's header:
    /// finish the file and start a new recorder (nothing was changed).
    #[error("sequence header differs from the one in this file's header")]
    ConfigChanged,
    /// A video codec MP4 recording does not support (only H.264 and H.265).
    #[error("video codec {0:?} cannot be recorded to MP4")]
    UnsupportedCodec(VideoCodec),
    #[error("FLV tag header: {0}")]
    Flv(#[from] FlvError),
    /// A sequence header that does not parse (the previous config, if any, is kept).
    #[error("{track} sequence header: {source}")]
    Codec {
        track: &'static str,
        source: CodecError,
    },
    /// A video frame of a codec other than the one the sequence header configured.
    #[error("video frame is {frame:?} but the sequence header was {config:?}")]
    CodecMismatch {
        frame: VideoCodec,
        config: VideoCodec,
    },
    #[error("{track} sample of {len} bytes exceeds the {MAX_SAMPLE_SIZE}-byte limit")]
    SampleTooLarge { track: &'static str, len: usize },
    /// The file holds [`MAX_SAMPLES_PER_FILE`] samples: finish it and rotate.
    #[error("file reached its limit of {0} samples")]
    TooManySamples(u32),
    /// `mp4-atom` refused to encode a box (a value out of range for its field).
    #[error("MP4 encoding: {0}")]
    Encode(String),
    #[error("recorder already finished")]
    Finished,
    /// [`Mp4Repair`]: the file is not a fragmented recording.
    #[error("cannot repair: {0}")]
    NotRepairable(String),
}

/// What [`Mp4Recorder::finish`] hands back to complete the file in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish {
    /// The progressive `moov`, to append at the end of the file (after everything
    /// written to `out`). Empty if the recorder never started.
    pub trailer: Bytes,
    /// `(absolute file offset, bytes)` to overwrite once the trailer is written: the
    /// type field of the initial `moov` and of every `moof`, set to `free`.
    pub patches: Vec<(u64, [u8; 4])>,
    /// Duration of the movie in ms (the `mvhd` duration).
    pub duration_ms: u64,
}

/// A crash-safe MP4 writer for one file; see the module documentation.
#[derive(Debug)]
pub struct Mp4Recorder {
    expect_video: bool,
    expect_audio: bool,
    fragment_ms: u64,
    video_config: Option<VideoConfig>,
    audio_config: Option<AudioConfig>,
    /// Empty until the header is written; then video (if any) first.
    tracks: Vec<Track>,
    video_track: Option<usize>,
    audio_track: Option<usize>,
    started: bool,
    finished: bool,
    /// The dts (ms) of the first sample written: time 0 of the file.
    base_dts_ms: u32,
    /// Bytes handed out so far: the absolute offset of the next byte.
    file_pos: u64,
    /// Type fields of the initial `moov` and of every `moof`.
    patches: Vec<(u64, [u8; 4])>,
    sequence_number: u32,
    /// Samples accepted (written, pending or held), all tracks.
    sample_count: u32,
    max_samples: u32,
    final_duration_ms: Option<u64>,
}

#[derive(Debug)]
struct VideoConfig {
    codec: VideoCodec,
    /// The decoder configuration record as received (for change detection).
    raw: Bytes,
    entry: Codec,
    width: u16,
    height: u16,
}

#[derive(Debug)]
struct AudioConfig {
    raw: Bytes,
    entry: Codec,
    sample_rate: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TrackKind {
    Video,
    Audio,
}

/// The last sample of a track, waiting for the next to know its duration.
#[derive(Debug)]
struct Held {
    data: Bytes,
    decode_time: u64,
    cts: i32,
    sync: bool,
}

/// A sample with a known duration, waiting for its fragment.
#[derive(Debug)]
struct Pending {
    data: Bytes,
    duration: u32,
    cts: i32,
    sync: bool,
}

/// One written sample in the final sample table: 12 bytes.
#[derive(Debug, Clone, Copy)]
struct SampleRecord {
    /// Size in bytes, with [`SYNC_BIT`] set for sync samples.
    size_sync: u32,
    duration: u32,
    /// Composition offset in track timescale units.
    cts: i32,
}

/// One track's run of samples in one `mdat`: a chunk of the final `moov`.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    offset: u64,
    samples: u32,
}

#[derive(Debug)]
struct Track {
    kind: TrackKind,
    id: u32,
    timescale: u32,
    entry: Codec,
    width: u16,
    height: u16,
    /// Decode time of the track's first sample (> 0 for audio that starts late).
    first_decode_time: Option<u64>,
    held: Option<Held>,
    pending: Vec<Pending>,
    /// Decode time of `pending[0]`.
    pending_start: u64,
    pending_duration: u64,
    pending_bytes: usize,
    samples: Vec<SampleRecord>,
    chunks: Vec<Chunk>,
}

impl Track {
    fn new(kind: TrackKind, id: u32, timescale: u32, entry: Codec, size: (u16, u16)) -> Self {
        Track {
            kind,
            id,
            timescale,
            entry,
            width: size.0,
            height: size.1,
            first_decode_time: None,
            held: None,
            pending: Vec::new(),
            pending_start: 0,
            pending_duration: 0,
            pending_bytes: 0,
            samples: Vec::new(),
            chunks: Vec::new(),
        }
    }

    fn push_pending(&mut self, held: Held, duration: u32) {
        if self.pending.is_empty() {
            self.pending_start = held.decode_time;
        }
        self.pending_duration += u64::from(duration);
        self.pending_bytes += held.data.len();
        self.pending.push(Pending {
            data: held.data,
            duration,
            cts: held.cts,
            sync: held.sync,
        });
    }

    /// Duration for the held sample at finish: its predecessor's, else a default.
    fn last_duration(&self) -> u32 {
        let previous = self
            .pending
            .last()
            .map(|p| p.duration)
            .or_else(|| self.samples.last().map(|s| s.duration));
        match (previous, self.kind) {
            (Some(d), _) => d,
            (None, TrackKind::Video) => LONE_VIDEO_DURATION,
            (None, TrackKind::Audio) => AAC_FRAME_SAMPLES,
        }
    }

    /// Decode time of the newest sample (held, else the end of what was written).
    fn last_decode_time(&self) -> u64 {
        match &self.held {
            Some(h) => h.decode_time,
            None => self.pending_start + self.pending_duration,
        }
    }

    fn traf(&self) -> Traf {
        let video = self.kind == TrackKind::Video;
        let with_cts = video && self.pending.iter().any(|p| p.cts != 0);
        let entries = self
            .pending
            .iter()
            .map(|p| TrunEntry {
                duration: Some(p.duration),
                size: Some(p.data.len() as u32),
                flags: video.then_some(if p.sync { FLAGS_SYNC } else { FLAGS_NON_SYNC }),
                cts: with_cts.then_some(i64::from(p.cts)),
            })
            .collect();
        Traf {
            tfhd: Tfhd {
                track_id: self.id,
                // Audio: every sample is a sync sample.
                default_sample_flags: (!video).then_some(FLAGS_SYNC),
                default_base_is_moof: true,
                ..Default::default()
            },
            tfdt: Some(Tfdt {
                base_media_decode_time: self.pending_start,
            }),
            trun: vec![Trun {
                data_offset: Some(0),
                samples: TrunSamples::Explicit(entries),
            }],
            ..Default::default()
        }
    }

    /// The complete sample table of the final `moov`, and the media duration.
    fn final_stbl(&self) -> (Stbl, u64) {
        let mut stts: Vec<SttsEntry> = Vec::new();
        let mut ctts: Vec<CttsEntry> = Vec::new();
        let mut stss = Vec::new();
        let mut sizes = Vec::with_capacity(self.samples.len());
        let mut media_duration = 0u64;
        for (i, s) in self.samples.iter().enumerate() {
            media_duration += u64::from(s.duration);
            match stts.last_mut() {
                Some(e) if e.sample_delta == s.duration => e.sample_count += 1,
                _ => stts.push(SttsEntry {
                    sample_count: 1,
                    sample_delta: s.duration,
                }),
            }
            match ctts.last_mut() {
                Some(e) if e.sample_offset == i64::from(s.cts) => e.sample_count += 1,
                _ => ctts.push(CttsEntry {
                    sample_count: 1,
                    sample_offset: i64::from(s.cts),
                }),
            }
            if s.size_sync & SYNC_BIT != 0 {
                // Sample numbers are 1-based; the count is capped far below u32::MAX.
                stss.push(i as u32 + 1);
            }
            sizes.push(s.size_sync & !SYNC_BIT);
        }
        let mut stsc: Vec<StscEntry> = Vec::new();
        for (i, c) in self.chunks.iter().enumerate() {
            if stsc.last().map(|e| e.samples_per_chunk) != Some(c.samples) {
                stsc.push(StscEntry {
                    first_chunk: i as u32 + 1,
                    samples_per_chunk: c.samples,
                    sample_description_index: 1,
                });
            }
        }
        let stbl = Stbl {
            stsd: Stsd {
                codecs: vec![self.entry.clone()],
            },
            stts: Stts { entries: stts },
            ctts: ctts
                .iter()
                .any(|e| e.sample_offset != 0)
                .then_some(Ctts { entries: ctts }),
            stss: (self.kind == TrackKind::Video).then_some(Stss { entries: stss }),
            stsc: Stsc { entries: stsc },
            stsz: Stsz {
                samples: StszSamples::Different { sizes },
            },
            co64: Some(Co64 {
                entries: self.chunks.iter().map(|c| c.offset).collect(),
            }),
            ..Default::default()
        };
        (stbl, media_duration)
    }

    /// The `trak`: with empty sample tables for the fragmented header, or complete.
    fn trak(&self, complete: bool) -> (Trak, u64) {
        let (stbl, media_duration) = if complete {
            self.final_stbl()
        } else {
            let empty = Stbl {
                stsd: Stsd {
                    codecs: vec![self.entry.clone()],
                },
                stco: Some(Stco::default()),
                ..Default::default()
            };
            (empty, 0)
        };
        let media_ms = ts_to_ms(media_duration, self.timescale);
        let start_ms = ts_to_ms(self.first_decode_time.unwrap_or(0), self.timescale);
        // A track that starts after time 0 begins with an empty edit, so the
        // progressive file keeps the sync that tfdt gives the fragmented one.
        let edts = (complete && start_ms > 0).then(|| Edts {
            elst: Some(Elst {
                entries: vec![
                    ElstEntry {
                        segment_duration: start_ms,
                        media_time: None,
                        media_rate: FixedPoint::from(1),
                    },
                    ElstEntry {
                        segment_duration: media_ms,
                        media_time: Some(0),
                        media_rate: FixedPoint::from(1),
                    },
                ],
            }),
        });
        let track_ms = if complete { start_ms + media_ms } else { 0 };
        let video = self.kind == TrackKind::Video;
        let trak = Trak {
            tkhd: Tkhd {
                track_id: self.id,
                duration: track_ms,
                enabled: true,
                in_movie: true,
                volume: FixedPoint::from(u8::from(!video)),
                width: FixedPoint::from(self.width),
                height: FixedPoint::from(self.height),
                ..Default::default()
            },
            edts,
            mdia: Mdia {
                mdhd: Mdhd {
                    timescale: self.timescale,
                    duration: media_duration,
                    language: "und".into(),
                    ..Default::default()
                },
                hdlr: Hdlr {
                    handler: FourCC::new(if video { b"vide" } else { b"soun" }),
                    name: if video {
                        "VideoHandler"
                    } else {
                        "SoundHandler"
                    }
                    .into(),
                },
                minf: Minf {
                    vmhd: video.then(Vmhd::default),
                    smhd: (!video).then(Smhd::default),
                    dinf: Dinf {
                        dref: Dref {
                            // An empty URL: the media is in this file.
                            entries: vec![DrefEntry::Url(Url::default())],
                        },
                    },
                    stbl,
                    ..Default::default()
                },
            },
            ..Default::default()
        };
        (trak, track_ms)
    }
}

impl Mp4Recorder {
    /// `expect_video` / `expect_audio`: which tracks the stream has (the header waits
    /// for a video keyframe when video is expected). `fragment_ms`: target fragment
    /// duration, e.g. 1000.
    pub fn new(expect_video: bool, expect_audio: bool, fragment_ms: u32) -> Self {
        Mp4Recorder {
            expect_video,
            expect_audio,
            fragment_ms: u64::from(fragment_ms),
            video_config: None,
            audio_config: None,
            tracks: Vec::new(),
            video_track: None,
            audio_track: None,
            started: false,
            finished: false,
            base_dts_ms: 0,
            file_pos: 0,
            patches: Vec::new(),
            sequence_number: 1,
            sample_count: 0,
            max_samples: MAX_SAMPLES_PER_FILE,
            final_duration_ms: None,
        }
    }

    /// Feeds one FLV video tag body (legacy AVC codec id 7 / HEVC codec id 12, or
    /// Enhanced RTMP `avc1` / `hvc1`) with its dts in ms. A sequence header stores
    /// the decoder configuration; a frame becomes a sample. Whatever the file must
    /// receive next (the header when first written, then fragments) is appended to
    /// `out`. On `Err` nothing was appended and the recorder is unchanged.
    pub fn write_video(
        &mut self,
        dts_ms: u32,
        flv_body: &Bytes,
        out: &mut Vec<Bytes>,
    ) -> Result<(), Mp4Error> {
        if self.finished {
            return Err(Mp4Error::Finished);
        }
        if !self.expect_video {
            return Ok(());
        }
        let header = parse_video_tag(flv_body)?;
        let payload = match flv_body.get(header.header_len..) {
            Some(p) if !p.is_empty() => flv_body.slice(header.header_len..),
            _ => return Ok(()),
        };
        match header.kind {
            VideoPacketKind::SequenceHeader => {
                return self.set_video_config(header.codec, &payload)
            }
            VideoPacketKind::Frame => {}
            VideoPacketKind::SequenceEnd | VideoPacketKind::Other => return Ok(()),
        }
        let Some(config) = &self.video_config else {
            if !matches!(header.codec, VideoCodec::H264 | VideoCodec::H265) {
                return Err(Mp4Error::UnsupportedCodec(header.codec));
            }
            // No sequence header yet: nothing can be decoded.
            return Ok(());
        };
        if config.codec != header.codec {
            return Err(Mp4Error::CodecMismatch {
                frame: header.codec,
                config: config.codec,
            });
        }
        if payload.len() > MAX_SAMPLE_SIZE {
            return Err(Mp4Error::SampleTooLarge {
                track: "video",
                len: payload.len(),
            });
        }
        if !self.started {
            if !header.keyframe {
                return Ok(());
            }
            self.start(dts_ms, out)?;
        }
        let Some(track) = self.video_track else {
            return Ok(());
        };
        // Composition time in ms; the si24 range times 90 fits an i32.
        let cts = header.composition_time.saturating_mul(90);
        self.push_sample(track, dts_ms, payload, cts, header.keyframe, out)
    }

    /// Feeds one FLV audio tag body. AAC only (legacy or Enhanced RTMP `mp4a`); other
    /// codecs are ignored and the file has no audio track. Same contract as
    /// [`Mp4Recorder::write_video`].
    pub fn write_audio(
        &mut self,
        dts_ms: u32,
        flv_body: &Bytes,
        out: &mut Vec<Bytes>,
    ) -> Result<(), Mp4Error> {
        if self.finished {
            return Err(Mp4Error::Finished);
        }
        if !self.expect_audio {
            return Ok(());
        }
        let header = parse_audio_tag(flv_body)?;
        if header.codec != AudioCodec::Aac {
            return Ok(());
        }
        let payload = match flv_body.get(header.header_len..) {
            Some(p) if !p.is_empty() => flv_body.slice(header.header_len..),
            _ => return Ok(()),
        };
        if header.sequence_header {
            return self.set_audio_config(&payload);
        }
        if self.audio_config.is_none() {
            return Ok(());
        }
        if payload.len() > MAX_SAMPLE_SIZE {
            return Err(Mp4Error::SampleTooLarge {
                track: "audio",
                len: payload.len(),
            });
        }
        if !self.started {
            if self.expect_video {
                // The file starts with a video keyframe.
                return Ok(());
            }
            self.start(dts_ms, out)?;
        }
        let Some(track) = self.audio_track else {
            return Ok(());
        };
        self.push_sample(track, dts_ms, payload, 0, true, out)
    }

    /// Writes the samples whose durations are known as a fragment (each track's
    /// newest sample stays held until the next one arrives, or until finish).
    pub fn flush(&mut self, out: &mut Vec<Bytes>) -> Result<(), Mp4Error> {
        if self.finished {
            return Err(Mp4Error::Finished);
        }
        self.cut_fragment(out)
    }

    /// Duration recorded so far in ms, from the first sample to the newest one (after
    /// finish: the movie duration).
    pub fn duration_ms(&self) -> u64 {
        if let Some(d) = self.final_duration_ms {
            return d;
        }
        self.tracks
            .iter()
            .map(|t| ts_to_ms(t.last_decode_time(), t.timescale))
            .max()
            .unwrap_or(0)
    }

    /// Whether the file is within [`SAMPLE_LIMIT_MARGIN`] of its sample limit: the
    /// caller should rotate at the next keyframe.
    pub fn near_sample_limit(&self) -> bool {
        self.sample_count
            .saturating_add(SAMPLE_LIMIT_MARGIN.min(self.max_samples / 2))
            >= self.max_samples
    }

    /// Whether the header has been written (the file has content).
    pub fn started(&self) -> bool {
        self.started
    }

    /// Bytes handed out to `out` so far: the size of the file before the trailer.
    pub fn file_size(&self) -> u64 {
        self.file_pos
    }

    /// Writes every remaining sample (the held ones get their predecessor's
    /// duration) as a last fragment into `out`, then returns the trailer and the
    /// patches that finish the file in place. The recorder is done afterwards.
    pub fn finish(&mut self, out: &mut Vec<Bytes>) -> Result<Finish, Mp4Error> {
        if self.finished {
            return Err(Mp4Error::Finished);
        }
        if !self.started {
            self.finished = true;
            self.final_duration_ms = Some(0);
            return Ok(Finish {
                trailer: Bytes::new(),
                patches: Vec::new(),
                duration_ms: 0,
            });
        }
        for track in &mut self.tracks {
            if let Some(held) = track.held.take() {
                let duration = track.last_duration();
                track.push_pending(held, duration);
            }
        }
        self.cut_fragment(out)?;
        let (moov, duration_ms) = self.moov(true);
        let trailer = encode(&moov)?;
        self.finished = true;
        self.final_duration_ms = Some(duration_ms);
        Ok(Finish {
            trailer,
            patches: std::mem::take(&mut self.patches),
            duration_ms,
        })
    }

    fn set_video_config(&mut self, codec: VideoCodec, payload: &[u8]) -> Result<(), Mp4Error> {
        if let Some(old) = &self.video_config {
            if old.codec == codec && old.raw == payload {
                return Ok(());
            }
        }
        // Parse first: a broken header is its own error, not a reason to rotate.
        let config = video_config(codec, payload)?;
        if self.video_track.is_some() {
            return Err(Mp4Error::ConfigChanged);
        }
        self.video_config = Some(config);
        Ok(())
    }

    fn set_audio_config(&mut self, payload: &[u8]) -> Result<(), Mp4Error> {
        if let Some(old) = &self.audio_config {
            if old.raw == payload {
                return Ok(());
            }
        }
        let config = audio_config(payload)?;
        if self.audio_track.is_some() {
            return Err(Mp4Error::ConfigChanged);
        }
        if !self.started {
            self.audio_config = Some(config);
        }
        // Else the file has no audio track: audio that shows up late is left out.
        Ok(())
    }

    /// Writes the header (`ftyp` + fragmented `moov`) with the tracks known now.
    fn start(&mut self, dts_ms: u32, out: &mut Vec<Bytes>) -> Result<(), Mp4Error> {
        let mut tracks = Vec::new();
        let mut video_track = None;
        let mut audio_track = None;
        let mut brands: Vec<FourCC> = [b"isom", b"iso6", b"mp41"]
            .into_iter()
            .map(FourCC::new)
            .collect();
        if let (true, Some(c)) = (self.expect_video, &self.video_config) {
            if c.codec == VideoCodec::H264 {
                brands.push(FourCC::new(b"avc1"));
            }
            video_track = Some(tracks.len());
            let id = tracks.len() as u32 + 1;
            let size = (c.width, c.height);
            tracks.push(Track::new(
                TrackKind::Video,
                id,
                VIDEO_TIMESCALE,
                c.entry.clone(),
                size,
            ));
        }
        if let (true, Some(c)) = (self.expect_audio, &self.audio_config) {
            audio_track = Some(tracks.len());
            let id = tracks.len() as u32 + 1;
            let entry = c.entry.clone();
            tracks.push(Track::new(
                TrackKind::Audio,
                id,
                c.sample_rate,
                entry,
                (0, 0),
            ));
        }
        let ftyp = Ftyp {
            major_brand: FourCC::new(b"isom"),
            minor_version: 0x200,
            compatible_brands: brands,
        };
        let mut buf = BytesMut::new();
        ftyp.encode(&mut buf).map_err(encode_error)?;
        let moov_pos = buf.len() as u64;
        let previous = std::mem::replace(&mut self.tracks, tracks);
        let (moov, _) = self.moov(false);
        if let Err(e) = moov.encode(&mut buf) {
            self.tracks = previous;
            return Err(encode_error(e));
        }
        self.video_track = video_track;
        self.audio_track = audio_track;
        self.started = true;
        self.base_dts_ms = dts_ms;
        self.patches.push((moov_pos + 4, *b"free"));
        self.file_pos = buf.len() as u64;
        out.push(buf.freeze());
        Ok(())
    }

    /// The `moov`: fragmented header (empty tables, `mvex`) or the final one.
    fn moov(&self, complete: bool) -> (Moov, u64) {
        build_moov(&self.tracks, complete)
    }

    fn push_sample(
        &mut self,
        index: usize,
        dts_ms: u32,
        data: Bytes,
        cts: i32,
        sync: bool,
        out: &mut Vec<Bytes>,
    ) -> Result<(), Mp4Error> {
        if self.sample_count >= self.max_samples {
            return Err(Mp4Error::TooManySamples(self.max_samples));
        }
        let main = self.video_track.unwrap_or(0);
        let base = self.base_dts_ms;
        let Some(track) = self.tracks.get_mut(index) else {
            return Ok(());
        };
        let time = ms_to_ts(u64::from(dts_ms.saturating_sub(base)), track.timescale);
        // Composition offsets are in the track timescale; video's is 90 kHz already.
        let cts = if track.kind == TrackKind::Video {
            cts
        } else {
            0
        };
        let decode_time = match track.held.take() {
            Some(held) => {
                // Backwards timestamps give 0, never a negative duration.
                let duration =
                    u32::try_from(time.saturating_sub(held.decode_time)).unwrap_or(u32::MAX);
                let decode_time = held.decode_time + u64::from(duration);
                track.push_pending(held, duration);
                decode_time
            }
            None => {
                track.first_decode_time = Some(time);
                time
            }
        };
        track.held = Some(Held {
            data,
            decode_time,
            cts,
            sync,
        });
        self.sample_count += 1;

        let pending_ms = self
            .tracks
            .iter()
            .map(|t| ts_to_ms(t.pending_duration, t.timescale))
            .max()
            .unwrap_or(0);
        let full = self.tracks.iter().any(|t| {
            t.pending_bytes >= MAX_FRAGMENT_BYTES || t.pending.len() >= MAX_FRAGMENT_SAMPLES
        });
        let at_sync = index == main && sync;
        if (at_sync && pending_ms >= self.fragment_ms)
            || pending_ms >= self.fragment_ms.saturating_mul(2)
            || full
        {
            self.cut_fragment(out)?;
        }
        Ok(())
    }

    /// Writes every pending sample as one `moof` + `mdat`.
    fn cut_fragment(&mut self, out: &mut Vec<Bytes>) -> Result<(), Mp4Error> {
        let with: Vec<usize> = (0..self.tracks.len())
            .filter(|&i| !self.tracks[i].pending.is_empty())
            .collect();
        if with.is_empty() {
            return Ok(());
        }
        let mut moof = Moof {
            mfhd: Mfhd {
                sequence_number: self.sequence_number,
            },
            traf: with.iter().map(|&i| self.tracks[i].traf()).collect(),
        };
        let payload_len: usize = with.iter().map(|&i| self.tracks[i].pending_bytes).sum();
        let mut mdat_header = BytesMut::with_capacity(16);
        Header {
            kind: FourCC::new(b"mdat"),
            size: Some(payload_len),
        }
        .encode(&mut mdat_header)
        .map_err(encode_error)?;
        // trun data offsets count from the start of the moof; its size does not
        // depend on their values, so measure it with zeros, then fill them in.
        let moof_len = encode(&moof)?.len();
        let mut offset = moof_len + mdat_header.len();
        for (traf, &i) in moof.traf.iter_mut().zip(&with) {
            let data_offset = i32::try_from(offset)
                .map_err(|_| Mp4Error::Encode(format!("trun data offset {offset}")))?;
            if let Some(trun) = traf.trun.first_mut() {
                trun.data_offset = Some(data_offset);
            }
            offset += self.tracks[i].pending_bytes;
        }
        let moof_bytes = encode(&moof)?;
        if moof_bytes.len() != moof_len {
            return Err(Mp4Error::Encode(
                "moof size changed with its offsets".into(),
            ));
        }

        let moof_pos = self.file_pos;
        self.patches.push((moof_pos + 4, *b"free"));
        let mut pos = moof_pos + (moof_len + mdat_header.len()) as u64;
        out.push(moof_bytes);
        out.push(mdat_header.freeze());
        for &i in &with {
            let track = &mut self.tracks[i];
            track.chunks.push(Chunk {
                offset: pos,
                samples: track.pending.len() as u32,
            });
            track.pending_start += track.pending_duration;
            track.pending_duration = 0;
            track.pending_bytes = 0;
            track.samples.reserve(track.pending.len());
            for p in track.pending.drain(..) {
                let size = p.data.len() as u32;
                track.samples.push(SampleRecord {
                    size_sync: if p.sync { size | SYNC_BIT } else { size },
                    duration: p.duration,
                    cts: p.cts,
                });
                pos += u64::from(size);
                out.push(p.data);
            }
        }
        self.file_pos = pos;
        self.sequence_number = self.sequence_number.wrapping_add(1);
        Ok(())
    }
}

/// Largest `moov` or `moof` [`Mp4Repair`] reads into memory. Ours are far smaller:
/// a fragmented `moov` is a few hundred bytes, a `moof` at most
/// [`MAX_FRAGMENT_SAMPLES`] x 16 bytes per track.
pub const MAX_REPAIR_BOX: u64 = 4 * 1024 * 1024;

/// The header of a file that [`Mp4Repair`] can finish: `ftyp` then a `moov` (an
/// interrupted recording, whose header is still fragmented). A finished recording
/// has a `free` there. `head` is the first bytes of the file (64 are plenty).
pub fn needs_repair(head: &[u8]) -> bool {
    let Some((size, _, kind)) = box_header(head) else {
        return false;
    };
    if &kind != b"ftyp" {
        return false;
    }
    let Some(rest) = usize::try_from(size).ok().and_then(|s| head.get(s..)) else {
        return false;
    };
    matches!(box_header(rest), Some((_, _, k)) if &k == b"moov")
}

/// `(total size, header length, type)` of the box at the start of `b`. A size of 0
/// ("to the end of the file") is `u64::MAX`.
fn box_header(b: &[u8]) -> Option<(u64, u64, [u8; 4])> {
    let size = u32::from_be_bytes(b.get(0..4)?.try_into().ok()?);
    let kind: [u8; 4] = b.get(4..8)?.try_into().ok()?;
    match size {
        0 => Some((u64::MAX, 8, kind)),
        1 => {
            let large = u64::from_be_bytes(b.get(8..16)?.try_into().ok()?);
            (large >= 16).then_some((large, 16, kind))
        }
        s if s >= 8 => Some((u64::from(s), 8, kind)),
        _ => None,
    }
}

/// What [`Mp4Repair`] wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepairStep {
    /// Read `len` bytes at `offset` (fewer if the file ends) and pass them to
    /// [`Mp4Repair::feed`].
    Read { offset: u64, len: usize },
    /// The walk is over: call [`Mp4Repair::finish`].
    Done,
}

/// How to finish an interrupted recording in place: cut the file to
/// `truncate_to`, append `trailer`, make it durable, then apply `patches` (the
/// first one, the fragmented `moov` retyped `free`, is what makes the file no
/// longer [`needs_repair`]; a crash before it leaves a file that is repaired again
/// to the same result).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repaired {
    pub truncate_to: u64,
    pub trailer: Bytes,
    pub patches: Vec<(u64, [u8; 4])>,
    pub duration_ms: u64,
    /// Samples indexed, all tracks. 0: no fragment survived, the file holds no media.
    pub samples: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RepairState {
    /// Expecting the header of the top-level box at `pos`.
    Header,
    /// Expecting the whole box at `pos` (`ftyp` checked, `moov` or `moof`).
    Body {
        size: u64,
        kind: [u8; 4],
    },
    Done,
}

/// A fragment read but not yet backed by its `mdat`: per track, its runs.
#[derive(Debug)]
struct PendingFragment {
    moof_pos: u64,
    runs: Vec<(usize, u64, Option<u64>, Vec<SampleRecord>)>,
}

/// Finishes a recording cut by a crash (`kill -9`, power loss, a full disk): walks
/// the top-level boxes of the fragmented file, rebuilds the sample table from its
/// `moov` and every complete `moof` + `mdat`, and gives back what
/// [`Mp4Recorder::finish`] would have (a trailer and patches), plus where to cut a
/// torn last fragment. Sans-IO: the caller reads what [`Mp4Repair::step`] asks
/// for. Any bytes are accepted: a box that does not parse ends the walk there (what
/// came before is kept); only a file that is not a fragmented recording at all is
/// an `Err` from [`Mp4Repair::finish`]. Memory: one `moof` at a time plus 12 bytes
/// a sample, capped at [`MAX_SAMPLES_PER_FILE`].
#[derive(Debug)]
pub struct Mp4Repair {
    file_len: u64,
    pos: u64,
    state: RepairState,
    tracks: Vec<Track>,
    header_seen: bool,
    /// End of the last complete part (the header, then each fragment).
    end: u64,
    pending: Option<PendingFragment>,
    patches: Vec<(u64, [u8; 4])>,
    samples: u32,
    error: Option<String>,
}

impl Mp4Repair {
    pub fn new(file_len: u64) -> Self {
        Mp4Repair {
            file_len,
            pos: 0,
            state: RepairState::Header,
            tracks: Vec::new(),
            header_seen: false,
            end: 0,
            pending: None,
            patches: Vec::new(),
            samples: 0,
            error: None,
        }
    }

    pub fn step(&self) -> RepairStep {
        let left = self.file_len.saturating_sub(self.pos);
        match self.state {
            RepairState::Done => RepairStep::Done,
            _ if left == 0 => RepairStep::Done,
            RepairState::Header => RepairStep::Read {
                offset: self.pos,
                len: left.min(16) as usize,
            },
            RepairState::Body { size, .. } => RepairStep::Read {
                offset: self.pos,
                len: size.min(left) as usize,
            },
        }
    }

    /// The bytes [`Mp4Repair::step`] asked for.
    pub fn feed(&mut self, data: &[u8]) {
        match self.state {
            RepairState::Done => {}
            RepairState::Header => self.on_header(data),
            RepairState::Body { size, kind } => {
                if (data.len() as u64) < size {
                    return self.stop(None);
                }
                self.on_box(kind, size, data);
            }
        }
    }

    fn stop(&mut self, error: Option<String>) {
        if self.error.is_none() {
            self.error = error;
        }
        self.state = RepairState::Done;
    }

    fn on_header(&mut self, data: &[u8]) {
        let Some((size, _, kind)) = box_header(data) else {
            return self.stop(None);
        };
        if size > self.file_len - self.pos {
            // A torn box (or one "to the end of the file"): the file ends before it.
            return self.stop(None);
        }
        if !self.header_seen {
            let expected: &[u8; 4] = if self.pos == 0 { b"ftyp" } else { b"moov" };
            if &kind != expected || size > MAX_REPAIR_BOX {
                return self.stop(Some(format!(
                    "not a fragmented recording: {} at {}",
                    String::from_utf8_lossy(&kind),
                    self.pos
                )));
            }
            if &kind == b"ftyp" {
                self.pos += size;
                return;
            }
            self.state = RepairState::Body { size, kind };
            return;
        }
        match &kind {
            b"moof" if size <= MAX_REPAIR_BOX => self.state = RepairState::Body { size, kind },
            b"mdat" => self.on_mdat(size),
            // A trailer written by an earlier repair or finish that did not get to its
            // patches: what follows the fragments is rebuilt again.
            b"moov" => self.stop(None),
            b"moof" => self.stop(None),
            _ => {
                self.pending = None;
                self.pos += size;
            }
        }
    }

    fn on_box(&mut self, kind: [u8; 4], size: u64, data: &[u8]) {
        let mut buf = &data[..size as usize];
        if &kind == b"moov" {
            match Moov::decode(&mut buf) {
                Ok(moov) => self.on_moov(moov, size),
                Err(e) => self.stop(Some(format!("fragmented moov: {e}"))),
            }
            return;
        }
        match Moof::decode(&mut buf) {
            Ok(moof) => {
                self.pending = self.fragment(&moof);
                if self.pending.is_none() {
                    return self.stop(None);
                }
                self.pos += size;
                self.state = RepairState::Header;
            }
            Err(_) => self.stop(None),
        }
    }

    fn on_moov(&mut self, moov: Moov, size: u64) {
        let Some(mvex) = &moov.mvex else {
            return self.stop(Some("the moov is not fragmented (no mvex)".into()));
        };
        for trak in &moov.trak {
            let kind = match trak.mdia.hdlr.handler.as_ref() {
                b"vide" => TrackKind::Video,
                b"soun" => TrackKind::Audio,
                _ => continue,
            };
            let timescale = trak.mdia.mdhd.timescale;
            let (Some(entry), true) = (trak.mdia.minf.stbl.stsd.codecs.first(), timescale > 0)
            else {
                continue;
            };
            let id = trak.tkhd.track_id;
            if self.tracks.iter().any(|t| t.id == id) || !mvex.trex.iter().any(|t| t.track_id == id)
            {
                continue;
            }
            let size = (trak.tkhd.width.integer(), trak.tkhd.height.integer());
            self.tracks
                .push(Track::new(kind, id, timescale, entry.clone(), size));
        }
        if self.tracks.is_empty() {
            return self.stop(Some("the moov has no audio or video track".into()));
        }
        self.header_seen = true;
        self.patches.push((self.pos + 4, *b"free"));
        self.pos += size;
        self.end = self.pos;
        self.state = RepairState::Header;
    }

    /// The runs of a `moof`, checked for sizes and counts; `None` if unusable.
    fn fragment(&self, moof: &Moof) -> Option<PendingFragment> {
        let mut runs = Vec::new();
        let mut count = self.samples;
        for traf in &moof.traf {
            let index = self
                .tracks
                .iter()
                .position(|t| t.id == traf.tfhd.track_id)?;
            let base = traf.tfhd.base_data_offset.unwrap_or(self.pos);
            let decode_time = traf.tfdt.as_ref().map(|t| t.base_media_decode_time);
            let video = self.tracks[index].kind == TrackKind::Video;
            for trun in &traf.trun {
                let offset = base.checked_add_signed(i64::from(trun.data_offset?))?;
                let mut records = Vec::new();
                for (i, e) in trun.samples.iter().enumerate() {
                    count = count
                        .checked_add(1)
                        .filter(|c| *c <= MAX_SAMPLES_PER_FILE)?;
                    let size = e.size.or(traf.tfhd.default_sample_size)?;
                    if size as usize > MAX_SAMPLE_SIZE {
                        return None;
                    }
                    let duration = e.duration.or(traf.tfhd.default_sample_duration)?;
                    let flags = e
                        .flags
                        .or(if i == 0 {
                            None
                        } else {
                            traf.tfhd.default_sample_flags
                        })
                        .or(traf.tfhd.default_sample_flags)
                        .unwrap_or(FLAGS_SYNC);
                    let sync = !video || flags & 0x0001_0000 == 0;
                    let cts = i32::try_from(e.cts.unwrap_or(0)).ok()?;
                    records.push(SampleRecord {
                        size_sync: if sync { size | SYNC_BIT } else { size },
                        duration,
                        cts,
                    });
                }
                runs.push((index, offset, decode_time, records));
            }
        }
        Some(PendingFragment {
            moof_pos: self.pos,
            runs,
        })
    }

    fn on_mdat(&mut self, size: u64) {
        let mdat_end = self.pos + size;
        let Some(fragment) = self.pending.take() else {
            // Media no fragment describes: nothing to index.
            self.pos = mdat_end;
            return;
        };
        let inside = fragment.runs.iter().all(|(_, offset, _, records)| {
            let bytes: u64 = records
                .iter()
                .map(|r| u64::from(r.size_sync & !SYNC_BIT))
                .sum();
            *offset > self.pos && offset.saturating_add(bytes) <= mdat_end
        });
        if !inside {
            return self.stop(None);
        }
        for (index, offset, decode_time, records) in fragment.runs {
            let track = &mut self.tracks[index];
            if records.is_empty() {
                continue;
            }
            if track.first_decode_time.is_none() {
                track.first_decode_time = Some(decode_time.unwrap_or(0));
            }
            track.chunks.push(Chunk {
                offset,
                samples: records.len() as u32,
            });
            self.samples += records.len() as u32;
            track.samples.extend(records);
        }
        self.patches.push((fragment.moof_pos + 4, *b"free"));
        self.pos = mdat_end;
        self.end = mdat_end;
    }

    /// The trailer and patches that finish the file (see [`Repaired`]).
    pub fn finish(self) -> Result<Repaired, Mp4Error> {
        if !self.header_seen {
            return Err(Mp4Error::NotRepairable(
                self.error
                    .unwrap_or_else(|| "no fragmented header (ftyp + moov)".into()),
            ));
        }
        if self.samples == 0 {
            return Ok(Repaired {
                truncate_to: self.end,
                trailer: Bytes::new(),
                patches: Vec::new(),
                duration_ms: 0,
                samples: 0,
            });
        }
        let (moov, duration_ms) = build_moov(&self.tracks, true);
        Ok(Repaired {
            truncate_to: self.end,
            trailer: encode(&moov)?,
            patches: self.patches,
            duration_ms,
            samples: self.samples,
        })
    }
}

/// [`Mp4Repair`] over a whole file in memory.
pub fn repair(file: &[u8]) -> Result<Repaired, Mp4Error> {
    let mut r = Mp4Repair::new(file.len() as u64);
    while let RepairStep::Read { offset, len } = r.step() {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(file.len());
        let end = start.saturating_add(len).min(file.len());
        r.feed(&file[start..end]);
    }
    r.finish()
}

/// The `moov` of `tracks`: fragmented header (empty tables, `mvex`) or the final one.
fn build_moov(tracks: &[Track], complete: bool) -> (Moov, u64) {
    let mut duration_ms = 0;
    let mut traks = Vec::with_capacity(tracks.len());
    for track in tracks {
        let (trak, ms) = track.trak(complete);
        duration_ms = duration_ms.max(ms);
        traks.push(trak);
    }
    let mvex = (!complete).then(|| Mvex {
        mehd: None,
        trex: tracks
            .iter()
            .map(|t| Trex {
                track_id: t.id,
                default_sample_description_index: 1,
                ..Default::default()
            })
            .collect(),
    });
    let moov = Moov {
        mvhd: Mvhd {
            timescale: MOVIE_TIMESCALE,
            duration: duration_ms,
            rate: FixedPoint::from(1),
            volume: FixedPoint::from(1),
            next_track_id: tracks.len() as u32 + 1,
            ..Default::default()
        },
        mvex,
        trak: traks,
        ..Default::default()
    };
    (moov, duration_ms)
}

/// Parses an avcC / hvcC record and builds the sample entry around it.
fn video_config(codec: VideoCodec, record: &[u8]) -> Result<VideoConfig, Mp4Error> {
    let config_error = |source| Mp4Error::Codec {
        track: "video",
        source,
    };
    let dimension = |v: u32| u16::try_from(v).unwrap_or(0);
    let (entry, width, height) = match codec {
        VideoCodec::H264 => {
            let parsed = AvcDecoderConfig::parse(record).map_err(config_error)?;
            // mp4-atom reads the record (High-profile extension included); a record
            // it rejects is rebuilt from our own parse.
            let avcc = Avcc::decode_body(&mut &record[..]).unwrap_or_else(|_| avcc_from(&parsed));
            let (w, h) = (dimension(parsed.width), dimension(parsed.height));
            let entry = Codec::Avc1(Avc1 {
                visual: visual(w, h),
                avcc,
                ..Default::default()
            });
            (entry, w, h)
        }
        VideoCodec::H265 => {
            let parsed = HevcDecoderConfig::parse(record).map_err(config_error)?;
            let hvcc = Hvcc::decode_body(&mut &record[..]).unwrap_or_else(|_| hvcc_from(&parsed));
            let (w, h) = (dimension(parsed.width), dimension(parsed.height));
            let entry = Codec::Hvc1(Hvc1 {
                visual: visual(w, h),
                hvcc,
                ..Default::default()
            });
            (entry, w, h)
        }
        other => return Err(Mp4Error::UnsupportedCodec(other)),
    };
    // Fail on the sequence header, not later when the file header is written.
    entry.encode(&mut Vec::new()).map_err(encode_error)?;
    Ok(VideoConfig {
        codec,
        raw: Bytes::copy_from_slice(record),
        entry,
        width,
        height,
    })
}

fn visual(width: u16, height: u16) -> Visual {
    Visual {
        data_reference_index: 1,
        width,
        height,
        ..Default::default()
    }
}

fn avcc_from(c: &AvcDecoderConfig) -> Avcc {
    let high = matches!(c.profile_indication, 100 | 110 | 122 | 144);
    Avcc {
        configuration_version: 1,
        avc_profile_indication: c.profile_indication,
        profile_compatibility: c.profile_compatibility,
        avc_level_indication: c.level_indication,
        length_size: c.nal_length_size,
        sequence_parameter_sets: c.sps.iter().map(|s| s.to_vec()).collect(),
        picture_parameter_sets: c.pps.iter().map(|s| s.to_vec()).collect(),
        ext: high.then(AvccExt::default),
    }
}

fn hvcc_from(c: &HevcDecoderConfig) -> Hvcc {
    let constraints = c.general_constraint_indicator_flags.to_be_bytes();
    let array = |nal_unit_type, sets: &[Bytes]| HvcCArray {
        completeness: true,
        nal_unit_type,
        nalus: sets.iter().map(|s| s.to_vec()).collect(),
    };
    Hvcc {
        configuration_version: 1,
        general_profile_space: c.general_profile_space,
        general_tier_flag: c.general_tier_flag,
        general_profile_idc: c.general_profile_idc,
        general_profile_compatibility_flags: c.general_profile_compatibility_flags.to_be_bytes(),
        general_constraint_indicator_flags: [
            constraints[2],
            constraints[3],
            constraints[4],
            constraints[5],
            constraints[6],
            constraints[7],
        ],
        general_level_idc: c.general_level_idc,
        chroma_format_idc: c.chroma_format_idc,
        bit_depth_luma_minus8: c.bit_depth_luma.saturating_sub(8),
        bit_depth_chroma_minus8: c.bit_depth_chroma.saturating_sub(8),
        num_temporal_layers: 1,
        length_size_minus_one: c.nal_length_size.saturating_sub(1),
        arrays: vec![array(32, &c.vps), array(33, &c.sps), array(34, &c.pps)],
        ..Default::default()
    }
}

/// Parses an AudioSpecificConfig and builds the `mp4a` + `esds` sample entry.
fn audio_config(asc: &[u8]) -> Result<AudioConfig, Mp4Error> {
    let parsed = AudioSpecificConfig::parse(asc).map_err(|source| Mp4Error::Codec {
        track: "audio",
        source,
    })?;
    if parsed.sample_rate == 0 {
        return Err(Mp4Error::Codec {
            track: "audio",
            source: CodecError::InvalidValue {
                field: "AAC sampling frequency",
                value: 0,
            },
        });
    }
    // channelConfiguration 7 is 7.1; 0 (program config element) is most often stereo.
    let channel_count = match parsed.channel_configuration {
        c @ 1..=6 => u16::from(c),
        7 => 8,
        _ => 2,
    };
    let entry = Codec::Mp4a(Mp4a {
        audio: Audio {
            data_reference_index: 1,
            channel_count,
            sample_size: 16,
            // 16.16 fixed point: rates above 65535 Hz do not fit; mdhd has the rate.
            sample_rate: FixedPoint::from(u16::try_from(parsed.sample_rate).unwrap_or(0)),
        },
        esds: Esds {
            es_desc: EsDescriptor {
                // ISO/IEC 14496-14 3.1.2: ES_ID is 0 in a file.
                es_id: 0,
                dec_config: DecoderConfig {
                    object_type_indication: OBJECT_TYPE_MPEG4_AUDIO,
                    stream_type: STREAM_TYPE_AUDIO,
                    dec_specific: Some(DecoderSpecific {
                        profile: parsed.object_type,
                        freq_index: parsed.sampling_frequency_index,
                        chan_conf: parsed.channel_configuration,
                        raw: asc.to_vec(),
                    }),
                    ..Default::default()
                },
                sl_config: SLConfig::default(),
                ..Default::default()
            },
        },
        btrt: None,
        taic: None,
    });
    entry.encode(&mut Vec::new()).map_err(encode_error)?;
    Ok(AudioConfig {
        raw: Bytes::copy_from_slice(asc),
        entry,
        sample_rate: parsed.sample_rate,
    })
}

fn encode<T: Encode>(atom: &T) -> Result<Bytes, Mp4Error> {
    let mut buf = BytesMut::new();
    atom.encode(&mut buf).map_err(encode_error)?;
    Ok(buf.freeze())
}

fn encode_error(e: mp4_atom::Error) -> Mp4Error {
    Mp4Error::Encode(e.to_string())
}

/// ms -> track timescale. Both fit easily: ms < 2^32 and timescales < 2^24.
fn ms_to_ts(ms: u64, timescale: u32) -> u64 {
    ms * u64::from(timescale) / 1000
}

/// Track timescale -> ms (movie timescale), rounded to nearest, in u128 so no
/// duration overflows.
fn ts_to_ms(ts: u64, timescale: u32) -> u64 {
    let timescale = u128::from(timescale.max(1));
    let ms = (u128::from(ts) * u128::from(MOVIE_TIMESCALE) + timescale / 2) / timescale;
    u64::try_from(ms).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flv::{read_file_header, read_tag, TAG_AUDIO, TAG_VIDEO};
    use mp4_atom::{Decode, Trak};

    /// 160x90 Constrained Baseline + AAC LC 44.1 kHz mono, 0.2 s (see flv.rs tests).
    const TINY_FLV: &[u8] = include_bytes!("../tests/fixtures/tiny.flv");

    /// The hvcC of an ffmpeg 5.1.9 / libx265 3.5 640x360 encode (from codec/h265.rs).
    const HVCC_640X360: [u8; 111] = [
        0x01, 0x01, 0x60, 0x00, 0x00, 0x00, 0x90, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3f, 0xf0, 0x00,
        0xfc, 0xfd, 0xf8, 0xf8, 0x00, 0x00, 0x0f, 0x03, 0xa0, 0x00, 0x01, 0x00, 0x18, 0x40, 0x01,
        0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00,
        0x00, 0x03, 0x00, 0x3f, 0x95, 0x98, 0x09, 0xa1, 0x00, 0x01, 0x00, 0x2a, 0x42, 0x01, 0x01,
        0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x3f,
        0xa0, 0x05, 0x02, 0x01, 0x69, 0x65, 0x95, 0x9a, 0x49, 0x32, 0xbc, 0x05, 0xa0, 0x20, 0x00,
        0x00, 0x03, 0x00, 0x20, 0x00, 0x00, 0x03, 0x03, 0x21, 0xa2, 0x00, 0x01, 0x00, 0x07, 0x44,
        0x01, 0xc1, 0x72, 0xb4, 0x62, 0x40,
    ];

    struct Tag {
        tag_type: u8,
        ts: u32,
        body: Bytes,
    }

    fn tiny_tags() -> Vec<Tag> {
        let buf = Bytes::from_static(TINY_FLV);
        let mut offset = read_file_header(&buf).unwrap();
        let mut tags = vec![];
        while let Some((tag, next)) = read_tag(&buf, offset).unwrap() {
            tags.push(Tag {
                tag_type: tag.tag_type,
                ts: tag.timestamp,
                body: tag.body,
            });
            offset = next;
        }
        tags
    }

    fn feed(rec: &mut Mp4Recorder, tags: &[Tag], out: &mut Vec<Bytes>) {
        for t in tags {
            match t.tag_type {
                TAG_VIDEO => rec.write_video(t.ts, &t.body, out).unwrap(),
                TAG_AUDIO => rec.write_audio(t.ts, &t.body, out).unwrap(),
                _ => {}
            }
        }
    }

    /// Legacy AVC frame tag body: keyframe flag, composition time (ms), data.
    fn avc_frame(key: bool, cts_ms: i32, data: &[u8]) -> Bytes {
        let mut b = vec![if key { 0x17 } else { 0x27 }, 1];
        b.extend_from_slice(&cts_ms.to_be_bytes()[1..]);
        b.extend_from_slice(data);
        Bytes::from(b)
    }

    /// The AVC sequence header of tiny.flv.
    fn tiny_avc_header() -> Bytes {
        tiny_tags()
            .into_iter()
            .find(|t| t.tag_type == TAG_VIDEO)
            .unwrap()
            .body
    }

    /// The AAC sequence header of tiny.flv.
    fn tiny_aac_header() -> Bytes {
        tiny_tags()
            .into_iter()
            .find(|t| t.tag_type == TAG_AUDIO)
            .unwrap()
            .body
    }

    /// Appends the trailer and applies the patches, as the server does.
    fn finish_file(out: &[Bytes], finish: &Finish) -> Vec<u8> {
        let mut file = out.concat();
        file.extend_from_slice(&finish.trailer);
        for (at, bytes) in &finish.patches {
            let at = *at as usize;
            file[at..at + 4].copy_from_slice(bytes);
        }
        file
    }

    /// Top-level boxes: (offset, type, total size); they must tile the file.
    fn top_level(file: &[u8]) -> Vec<(usize, [u8; 4], usize)> {
        let mut boxes = vec![];
        let mut pos = 0;
        while pos < file.len() {
            let mut rest = &file[pos..];
            let before = rest.len();
            let header = Header::decode(&mut rest).unwrap();
            let size = before - rest.len() + header.size.unwrap();
            boxes.push((pos, *header.kind.as_ref(), size));
            pos += size;
        }
        assert_eq!(pos, file.len());
        boxes
    }

    fn moov_at(file: &[u8], kind: &[u8; 4]) -> Moov {
        let (pos, _, size) = *top_level(file).iter().find(|b| &b.1 == kind).unwrap();
        Moov::decode(&mut &file[pos..pos + size]).unwrap()
    }

    fn kinds(file: &[u8]) -> String {
        top_level(file)
            .iter()
            .map(|b| String::from_utf8_lossy(&b.1).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Each sample's bytes, found through stsc / co64 / stsz of a progressive trak.
    fn trak_samples<'a>(file: &'a [u8], trak: &Trak) -> Vec<&'a [u8]> {
        let stbl = &trak.mdia.minf.stbl;
        let StszSamples::Different { sizes } = &stbl.stsz.samples else {
            panic!("stsz with identical sizes")
        };
        let mut samples = vec![];
        for (i, &offset) in stbl.co64.as_ref().unwrap().entries.iter().enumerate() {
            let chunk = i as u32 + 1;
            let entry = stbl
                .stsc
                .entries
                .iter()
                .rev()
                .find(|e| e.first_chunk <= chunk);
            let mut pos = offset as usize;
            for _ in 0..entry.unwrap().samples_per_chunk {
                let size = sizes[samples.len()] as usize;
                samples.push(&file[pos..pos + size]);
                pos += size;
            }
        }
        assert_eq!(samples.len(), sizes.len());
        samples
    }

    /// A fragmented file's samples per track id, via moof / trun: (bytes, duration,
    /// flags, cts). Also checks that each tfdt continues the previous fragment.
    #[allow(clippy::type_complexity)]
    fn fragment_samples(file: &[u8]) -> Vec<(u32, Vec<(&[u8], u32, Option<u32>, i64)>)> {
        let mut tracks: Vec<(u32, Vec<_>)> = vec![];
        let mut next_time: Vec<(u32, u64)> = vec![];
        for (pos, kind, size) in top_level(file) {
            if &kind != b"moof" {
                continue;
            }
            let moof = Moof::decode(&mut &file[pos..pos + size]).unwrap();
            for traf in &moof.traf {
                let id = traf.tfhd.track_id;
                assert!(traf.tfhd.default_base_is_moof);
                let tfdt = traf.tfdt.as_ref().unwrap().base_media_decode_time;
                if let Some(t) = next_time.iter_mut().find(|t| t.0 == id) {
                    assert_eq!(tfdt, t.1, "tfdt of track {id} continues");
                } else {
                    next_time.push((id, tfdt));
                }
                if !tracks.iter().any(|t| t.0 == id) {
                    tracks.push((id, vec![]));
                }
                let samples = &mut tracks.iter_mut().find(|t| t.0 == id).unwrap().1;
                assert_eq!(traf.trun.len(), 1);
                let trun = &traf.trun[0];
                let mut at = pos + trun.data_offset.unwrap() as usize;
                for e in trun.samples.iter() {
                    let len = e.size.unwrap() as usize;
                    let flags = e.flags.or(traf.tfhd.default_sample_flags);
                    samples.push((
                        &file[at..at + len],
                        e.duration.unwrap(),
                        flags,
                        e.cts.unwrap_or(0),
                    ));
                    at += len;
                    next_time.iter_mut().find(|t| t.0 == id).unwrap().1 +=
                        u64::from(e.duration.unwrap());
                }
            }
        }
        tracks
    }

    #[test]
    fn sample_record_is_small() {
        assert!(std::mem::size_of::<SampleRecord>() <= 16);
        assert!(std::mem::size_of::<Chunk>() <= 16);
    }

    #[test]
    fn records_tiny_flv_fragmented_then_finished_in_place() {
        let tags = tiny_tags();
        // 30 ms fragments: 0.2 s of media makes several, cut by the 2x rule since
        // only the first frame is a keyframe.
        let mut rec = Mp4Recorder::new(true, true, 30);
        let mut out = vec![];
        feed(&mut rec, &tags, &mut out);
        assert!(rec.started());
        // The newest audio frame is at 209 ms.
        assert_eq!(rec.duration_ms(), 209 - 23);

        // What the recorder must keep: video from the first keyframe (23 ms), audio
        // tags that come after it.
        let first_key = tags
            .iter()
            .position(|t| t.tag_type == TAG_VIDEO && t.ts == 23)
            .unwrap();
        let video: Vec<&[u8]> = tags[first_key..]
            .iter()
            .filter(|t| t.tag_type == TAG_VIDEO && t.body[1] == 1)
            .map(|t| &t.body[5..])
            .collect();
        let audio: Vec<&[u8]> = tags[first_key..]
            .iter()
            .filter(|t| t.tag_type == TAG_AUDIO && t.body[1] == 1)
            .map(|t| &t.body[2..])
            .collect();
        assert_eq!((video.len(), audio.len()), (5, 9));

        // Zero copy: the mdat pieces are the tag bodies' own memory.
        let tiny = TINY_FLV.as_ptr_range();
        assert!(out.iter().any(|b| tiny.contains(&b.as_ptr())));

        // The fragmented file so far decodes: header, then moof + mdat pairs holding
        // every sample but each track's newest (held for its duration).
        let fragmented = out.concat();
        assert_eq!(fragmented.len() as u64, rec.file_size());
        assert!(
            kinds(&fragmented).starts_with("ftyp moov moof mdat moof mdat"),
            "{}",
            kinds(&fragmented)
        );
        let moov = moov_at(&fragmented, b"moov");
        assert_eq!(moov.mvex.as_ref().unwrap().trex.len(), 2);
        assert_eq!(moov.trak.len(), 2);
        let Codec::Avc1(avc1) = &moov.trak[0].mdia.minf.stbl.stsd.codecs[0] else {
            panic!("video sample entry")
        };
        assert_eq!((avc1.visual.width, avc1.visual.height), (160, 90));
        assert_eq!(moov.trak[0].tkhd.width, FixedPoint::from(160));
        assert!(matches!(
            &moov.trak[1].mdia.minf.stbl.stsd.codecs[0],
            Codec::Mp4a(_)
        ));
        assert_eq!(moov.trak[1].mdia.mdhd.timescale, 44100);
        let frags = fragment_samples(&fragmented);
        fn bytes<'a>(s: &[(&'a [u8], u32, Option<u32>, i64)]) -> Vec<&'a [u8]> {
            s.iter().map(|x| x.0).collect()
        }
        // A prefix of each track, minus at least the held newest sample.
        let (v, a) = (bytes(&frags[0].1), bytes(&frags[1].1));
        assert!(v.len() >= 2 && v.len() < video.len() && v == video[..v.len()]);
        assert!(a.len() >= 2 && a.len() < audio.len() && a == audio[..a.len()]);
        assert_eq!(frags[0].1[0].2, Some(FLAGS_SYNC));
        assert_eq!(frags[0].1[1].2, Some(FLAGS_NON_SYNC));
        assert_eq!(frags[1].1[0].2, Some(FLAGS_SYNC));
        // Durations from absolute timestamps: 23 -> 63 ms is 40 ms at 90 kHz.
        assert_eq!(frags[0].1[0].1, 3600);

        // Finish: the last fragment, then the trailer and patches.
        let finish = rec.finish(&mut out).unwrap();
        let fragmented = out.concat();
        let frags = fragment_samples(&fragmented);
        assert_eq!(frags[0].1.len(), 5);
        assert_eq!(frags[1].1.len(), 9);
        let file = finish_file(&out, &finish);
        let k = kinds(&file);
        assert!(k.starts_with("ftyp free free mdat free mdat"), "{k}");
        assert!(k.ends_with("free mdat moov"), "{k}");
        assert_eq!(finish.patches.len(), k.matches("free").count());
        let moov = moov_at(&file, b"moov");
        assert!(moov.mvex.is_none());
        let (v, a) = (&moov.trak[0], &moov.trak[1]);
        assert_eq!(trak_samples(&file, v), video);
        assert_eq!(trak_samples(&file, a), audio);
        let vstbl = &v.mdia.minf.stbl;
        assert_eq!(vstbl.stss.as_ref().unwrap().entries, vec![1]);
        assert!(vstbl.ctts.is_none(), "no B-frames, no ctts");
        // 23, 63, 103, 143, 183 ms: four 40 ms gaps, the last sample repeats 40 ms.
        assert_eq!(
            vstbl.stts.entries,
            vec![SttsEntry {
                sample_count: 5,
                sample_delta: 3600
            }]
        );
        assert_eq!(v.mdia.mdhd.duration, 5 * 3600);
        assert_eq!(v.tkhd.duration, 200);
        assert!(v.edts.is_none());
        // Audio durations: ts(next) - ts(this) at 44.1 kHz, summing to the absolute
        // span, plus the repeated last one.
        let astbl = &a.mdia.minf.stbl;
        assert!(astbl.stss.is_none());
        let total: u64 = astbl
            .stts
            .entries
            .iter()
            .map(|e| u64::from(e.sample_count) * u64::from(e.sample_delta))
            .sum();
        let last = astbl.stts.entries.last().unwrap().sample_delta;
        assert_eq!(total - u64::from(last), ms_to_ts(209 - 23, 44100));
        assert_eq!(moov.mvhd.duration, finish.duration_ms);
        // Audio is the longer track: 186 ms of spans plus its last frame's 23 ms.
        assert_eq!(finish.duration_ms, 209);
        assert_eq!(rec.duration_ms(), 209);

        // Done: everything else is refused.
        assert_eq!(rec.finish(&mut out), Err(Mp4Error::Finished));
        assert_eq!(rec.flush(&mut out), Err(Mp4Error::Finished));
        assert_eq!(
            rec.write_video(300, &video_key(), &mut out),
            Err(Mp4Error::Finished)
        );
    }

    fn video_key() -> Bytes {
        avc_frame(true, 0, &[0, 0, 0, 2, 0x65, 0x88])
    }

    /// Video samples per fragment (track 1), in file order.
    fn video_per_fragment(file: &[u8]) -> Vec<usize> {
        top_level(file)
            .into_iter()
            .filter(|b| &b.1 == b"moof")
            .map(|(pos, _, size)| {
                let moof = Moof::decode(&mut &file[pos..pos + size]).unwrap();
                moof.traf
                    .iter()
                    .filter(|t| t.tfhd.track_id == 1)
                    .map(|t| t.trun[0].samples.len())
                    .sum()
            })
            .collect()
    }

    #[test]
    fn fragments_start_at_keyframes_or_at_twice_the_target() {
        // 25 fps, a keyframe every 10 frames (400 ms), 1 s target: a fragment is cut
        // at the first keyframe with >= 1 s pending, so every 30 frames.
        let mut rec = Mp4Recorder::new(true, false, 1000);
        let mut out = vec![];
        rec.write_video(0, &tiny_avc_header(), &mut out).unwrap();
        for i in 0..100u32 {
            let body = avc_frame(i % 10 == 0, 0, &i.to_be_bytes());
            rec.write_video(i * 40, &body, &mut out).unwrap();
        }
        assert_eq!(video_per_fragment(&out.concat()), [30, 30, 30]);
        // flush writes what has a duration; finish the held last frame.
        rec.flush(&mut out).unwrap();
        assert_eq!(video_per_fragment(&out.concat()), [30, 30, 30, 9]);
        rec.flush(&mut out).unwrap();
        assert_eq!(video_per_fragment(&out.concat()), [30, 30, 30, 9]);
        let finish = rec.finish(&mut out).unwrap();
        assert_eq!(video_per_fragment(&out.concat()), [30, 30, 30, 9, 1]);
        let file = finish_file(&out, &finish);
        let moov = moov_at(&file, b"moov");
        let stbl = &moov.trak[0].mdia.minf.stbl;
        assert_eq!(
            stbl.stss.as_ref().unwrap().entries,
            (0..10).map(|k| k * 10 + 1).collect::<Vec<_>>()
        );
        assert_eq!(stbl.co64.as_ref().unwrap().entries.len(), 5);
        assert_eq!(
            stbl.stsc
                .entries
                .iter()
                .map(|e| (e.first_chunk, e.samples_per_chunk))
                .collect::<Vec<_>>(),
            [(1, 30), (4, 9), (5, 1)]
        );
        let samples = trak_samples(&file, &moov.trak[0]);
        assert!(samples
            .iter()
            .enumerate()
            .all(|(i, s)| *s == (i as u32).to_be_bytes()));
        assert_eq!(finish.duration_ms, 4000);

        // One keyframe only (a long GOP): cut when 2 s are pending.
        let mut rec = Mp4Recorder::new(true, false, 1000);
        let mut out = vec![];
        rec.write_video(0, &tiny_avc_header(), &mut out).unwrap();
        for i in 0..120u32 {
            let body = avc_frame(i == 0, 0, &i.to_be_bytes());
            rec.write_video(i * 40, &body, &mut out).unwrap();
        }
        assert_eq!(video_per_fragment(&out.concat()), [50, 50]);
    }

    #[test]
    fn a_stalled_clock_still_cuts_fragments() {
        let mut rec = Mp4Recorder::new(true, false, 1000);
        let mut out = vec![];
        rec.write_video(0, &tiny_avc_header(), &mut out).unwrap();
        for i in 0..MAX_FRAGMENT_SAMPLES as u32 + 10 {
            rec.write_video(7, &avc_frame(i == 0, 0, &[1]), &mut out)
                .unwrap();
        }
        assert_eq!(video_per_fragment(&out.concat()), [MAX_FRAGMENT_SAMPLES]);
    }

    #[test]
    fn audio_only_starts_on_the_first_aac_frame() {
        let tags = tiny_tags();
        let mut rec = Mp4Recorder::new(false, true, 100);
        let mut out = vec![];
        feed(&mut rec, &tags, &mut out);
        let header = out.concat();
        assert!(
            header.starts_with(b"\0\0\0\x1cftypisom"),
            "ftyp without avc1"
        );
        let moov = moov_at(&header, b"moov");
        assert_eq!(moov.trak.len(), 1);
        assert_eq!(moov.trak[0].tkhd.track_id, 1);
        assert!(matches!(
            moov.trak[0].mdia.minf.stbl.stsd.codecs[0],
            Codec::Mp4a(_)
        ));
        // Every AAC frame is a sync sample, so fragments are cut at the target.
        assert_eq!(kinds(&header), "ftyp moov moof mdat");
        let finish = rec.finish(&mut out).unwrap();
        let file = finish_file(&out, &finish);
        let moov = moov_at(&file, b"moov");
        let audio: Vec<&[u8]> = tags
            .iter()
            .filter(|t| t.tag_type == TAG_AUDIO && t.body[1] == 1)
            .map(|t| &t.body[2..])
            .collect();
        assert_eq!(audio.len(), 10);
        assert_eq!(trak_samples(&file, &moov.trak[0]), audio);
        let Codec::Mp4a(mp4a) = &moov.trak[0].mdia.minf.stbl.stsd.codecs[0] else {
            unreachable!()
        };
        let asc = &tiny_aac_header()[2..];
        let dec = mp4a.esds.es_desc.dec_config.dec_specific.as_ref().unwrap();
        assert_eq!(dec.raw, asc);
        assert_eq!(
            (mp4a.audio.channel_count, mp4a.audio.sample_rate.integer()),
            (1, 44100)
        );
    }

    #[test]
    fn sequence_headers_identical_are_ignored_different_change_the_config() {
        let tags = tiny_tags();
        let mut rec = Mp4Recorder::new(true, true, 1000);
        let mut out = vec![];
        feed(&mut rec, &tags, &mut out);
        let written = out.len();

        let avc = tiny_avc_header();
        assert_eq!(rec.write_video(300, &avc, &mut out), Ok(()));
        let mut other = avc.to_vec();
        other[5 + 3] += 1; // AVCLevelIndication
        let other = Bytes::from(other);
        assert_eq!(
            rec.write_video(300, &other, &mut out),
            Err(Mp4Error::ConfigChanged)
        );
        let mut hevc = vec![0x90];
        hevc.extend_from_slice(b"hvc1");
        hevc.extend_from_slice(&HVCC_640X360);
        assert_eq!(
            rec.write_video(300, &Bytes::from(hevc), &mut out),
            Err(Mp4Error::ConfigChanged)
        );

        let aac = tiny_aac_header();
        assert_eq!(rec.write_audio(300, &aac, &mut out), Ok(()));
        let other_aac = Bytes::from_static(&[0xaf, 0x00, 0x11, 0x90]); // LC 48 kHz stereo
        assert_eq!(
            rec.write_audio(300, &other_aac, &mut out),
            Err(Mp4Error::ConfigChanged)
        );
        assert_eq!(out.len(), written, "errors append nothing");

        // Nothing changed: frames still go in and the file finishes with the old config.
        rec.write_video(300, &video_key(), &mut out).unwrap();
        let finish = rec.finish(&mut out).unwrap();
        let moov = moov_at(&finish_file(&out, &finish), b"moov");
        let Codec::Avc1(avc1) = &moov.trak[0].mdia.minf.stbl.stsd.codecs[0] else {
            unreachable!()
        };
        assert_eq!(avc1.avcc.avc_level_indication, avc[8]);
        assert_eq!(
            moov.trak[0].mdia.minf.stbl.stsz.samples,
            StszSamples::Different {
                sizes: vec![4341, 1027, 1211, 1232, 1264, 6],
            }
        );

        // Before the header is written, a new sequence header simply replaces the old.
        let mut rec = Mp4Recorder::new(true, false, 1000);
        let mut out = vec![];
        rec.write_video(0, &avc, &mut out).unwrap();
        rec.write_video(0, &other, &mut out).unwrap();
        rec.write_video(0, &video_key(), &mut out).unwrap();
        let moov = moov_at(&out.concat(), b"moov");
        let Codec::Avc1(avc1) = &moov.trak[0].mdia.minf.stbl.stsd.codecs[0] else {
            unreachable!()
        };
        assert_eq!(avc1.avcc.avc_level_indication, avc[8] + 1);
        // An audio config after a header without audio is ignored, as is its audio.
        let mut rec = Mp4Recorder::new(true, true, 1000);
        rec.write_video(0, &avc, &mut out).unwrap();
        rec.write_video(0, &video_key(), &mut out).unwrap();
        assert_eq!(rec.write_audio(10, &aac, &mut out), Ok(()));
        assert_eq!(
            rec.write_audio(10, &Bytes::from_static(&[0xaf, 1, 0x21]), &mut out),
            Ok(())
        );
        let finish = rec.finish(&mut out).unwrap();
        assert_eq!(moov_at(&finish.trailer, b"moov").trak.len(), 1);
    }

    #[test]
    fn hevc_enhanced_rtmp_with_negative_composition_offsets() {
        let ex = |first: u8, cts: Option<i32>, data: &[u8]| {
            let mut b = vec![first];
            b.extend_from_slice(b"hvc1");
            if let Some(cts) = cts {
                b.extend_from_slice(&cts.to_be_bytes()[1..]);
            }
            b.extend_from_slice(data);
            Bytes::from(b)
        };
        let mut rec = Mp4Recorder::new(true, false, 1000);
        let mut out = vec![];
        rec.write_video(0, &ex(0x90, None, &HVCC_640X360), &mut out)
            .unwrap();
        let frames = [(0x91, 80), (0xa1, 200), (0xa1, -40), (0xa1, 40)];
        for (i, (first, cts)) in frames.into_iter().enumerate() {
            let body = ex(first, Some(cts), &[0, 0, 0, 1, i as u8]);
            rec.write_video(1000 + 40 * i as u32, &body, &mut out)
                .unwrap();
        }
        let finish = rec.finish(&mut out).unwrap();
        let fragmented = out.concat();
        assert!(!fragmented[..32].windows(4).any(|w| w == b"avc1"));
        let frags = fragment_samples(&fragmented);
        let cts: Vec<i64> = frags[0].1.iter().map(|s| s.3).collect();
        assert_eq!(cts, [7200, 18000, -3600, 3600]);

        let file = finish_file(&out, &finish);
        let moov = moov_at(&file, b"moov");
        let trak = &moov.trak[0];
        let Codec::Hvc1(hvc1) = &trak.mdia.minf.stbl.stsd.codecs[0] else {
            panic!("hvc1 sample entry")
        };
        assert_eq!((hvc1.visual.width, hvc1.visual.height), (640, 360));
        assert_eq!(trak.tkhd.width, FixedPoint::from(640));
        assert_eq!(
            hvc1.hvcc
                .arrays
                .iter()
                .map(|a| a.nal_unit_type)
                .collect::<Vec<_>>(),
            [32, 33, 34]
        );
        // The record goes into the file as received.
        let mut hvcc = Vec::new();
        hvc1.hvcc.encode(&mut hvcc).unwrap();
        assert_eq!(&hvcc[8..], &HVCC_640X360[..]);
        let ctts = trak.mdia.minf.stbl.ctts.as_ref().unwrap();
        let offsets: Vec<i64> = ctts.entries.iter().map(|e| e.sample_offset).collect();
        assert_eq!(offsets, [7200, 18000, -3600, 3600], "signed: version 1");
        assert_eq!(trak_samples(&file, trak)[2], [0, 0, 0, 1, 2]);
    }

    #[test]
    fn durations_lone_samples_and_backwards_timestamps() {
        let mut rec = Mp4Recorder::new(true, true, 1000);
        let mut out = vec![];
        rec.write_video(0, &tiny_avc_header(), &mut out).unwrap();
        rec.write_audio(0, &tiny_aac_header(), &mut out).unwrap();
        rec.write_video(1000, &video_key(), &mut out).unwrap();
        rec.write_audio(1010, &Bytes::from_static(&[0xaf, 1, 0x21]), &mut out)
            .unwrap();
        let finish = rec.finish(&mut out).unwrap();
        let moov = moov_at(&finish.trailer, b"moov");
        let delta = |t: &Trak| t.mdia.minf.stbl.stts.entries.clone();
        assert_eq!(
            delta(&moov.trak[0]),
            [SttsEntry {
                sample_count: 1,
                sample_delta: 3600
            }]
        );
        assert_eq!(
            delta(&moov.trak[1]),
            [SttsEntry {
                sample_count: 1,
                sample_delta: 1024
            }]
        );
        // Audio starts 10 ms after the keyframe: an empty edit keeps the sync.
        let elst = moov.trak[1].edts.as_ref().unwrap().elst.as_ref().unwrap();
        assert_eq!(elst.entries[0].media_time, None);
        assert_eq!(elst.entries[0].segment_duration, 10);
        assert_eq!(elst.entries[1].segment_duration, 23);
        assert_eq!(moov.trak[1].tkhd.duration, 33);
        assert_eq!(finish.duration_ms, 40);

        // 0, 40, 20 (backwards), 80 ms: the step back is a zero duration.
        let mut rec = Mp4Recorder::new(true, false, 1000);
        let mut out = vec![];
        rec.write_video(0, &tiny_avc_header(), &mut out).unwrap();
        for (i, ts) in [0, 40, 20, 80].into_iter().enumerate() {
            rec.write_video(ts, &avc_frame(i == 0, 0, &[1]), &mut out)
                .unwrap();
        }
        let finish = rec.finish(&mut out).unwrap();
        let moov = moov_at(&finish.trailer, b"moov");
        let deltas: Vec<(u32, u32)> = delta(&moov.trak[0])
            .iter()
            .map(|e| (e.sample_count, e.sample_delta))
            .collect();
        assert_eq!(deltas, [(1, 3600), (1, 0), (2, 3600)]);
    }

    #[test]
    fn unsupported_and_ignored_input() {
        let mut out = vec![];
        let mut rec = Mp4Recorder::new(true, true, 1000);
        let mut av1 = vec![0x90];
        av1.extend_from_slice(b"av01\x81\x00\x0c\x00");
        let av1 = Bytes::from(av1);
        assert_eq!(
            rec.write_video(0, &av1, &mut out),
            Err(Mp4Error::UnsupportedCodec(VideoCodec::Av1))
        );
        let mut av1_frame = vec![0x91];
        av1_frame.extend_from_slice(b"av01\x12\x00");
        assert_eq!(
            rec.write_video(0, &Bytes::from(av1_frame), &mut out),
            Err(Mp4Error::UnsupportedCodec(VideoCodec::Av1))
        );
        // MP3 audio is left out; the file is video-only.
        let mp3 = Bytes::from_static(&[0x2f, 0xff, 0xfb, 0x90, 0x00]);
        rec.write_audio(0, &mp3, &mut out).unwrap();
        rec.write_video(0, &tiny_avc_header(), &mut out).unwrap();
        rec.write_video(0, &video_key(), &mut out).unwrap();
        rec.write_audio(10, &mp3, &mut out).unwrap();
        assert_eq!(moov_at(&out.concat(), b"moov").trak.len(), 1);
        // A frame of another codec than the configured one.
        let mut hevc_frame = vec![0x91];
        hevc_frame.extend_from_slice(b"hvc1\0\0\0\0\0\0\x01\x26");
        assert_eq!(
            rec.write_video(40, &Bytes::from(hevc_frame), &mut out),
            Err(Mp4Error::CodecMismatch {
                frame: VideoCodec::H265,
                config: VideoCodec::H264
            })
        );
        // Garbage: errors, not panics.
        assert!(matches!(
            rec.write_video(40, &Bytes::new(), &mut out),
            Err(Mp4Error::Flv(_))
        ));
        assert!(matches!(
            rec.write_video(40, &Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 2]), &mut out),
            Err(Mp4Error::Codec { track: "video", .. })
        ));
        assert!(matches!(
            rec.write_audio(40, &Bytes::from_static(&[0xaf, 0, 0xf8]), &mut out),
            Err(Mp4Error::Codec { track: "audio", .. })
        ));
        // Video not expected: ignored entirely.
        let mut rec = Mp4Recorder::new(false, true, 1000);
        rec.write_video(0, &av1, &mut out).unwrap();
        rec.write_video(0, &video_key(), &mut out).unwrap();
        assert!(!rec.started());
        // Never started: an empty file, nothing to append.
        let finish = rec.finish(&mut out).unwrap();
        assert!(finish.trailer.is_empty() && finish.patches.is_empty());
    }

    #[test]
    fn limits_are_errors() {
        let mut out = vec![];
        let mut rec = Mp4Recorder::new(true, true, 1000);
        rec.write_video(0, &tiny_avc_header(), &mut out).unwrap();
        rec.write_audio(0, &tiny_aac_header(), &mut out).unwrap();
        let huge = avc_frame(true, 0, &vec![0; MAX_SAMPLE_SIZE + 1]);
        assert_eq!(
            rec.write_video(0, &huge, &mut out),
            Err(Mp4Error::SampleTooLarge {
                track: "video",
                len: MAX_SAMPLE_SIZE + 1
            })
        );
        assert!(!rec.started());
        let mut huge_audio = vec![0xaf, 1];
        huge_audio.resize(MAX_SAMPLE_SIZE + 3, 0);
        assert!(matches!(
            rec.write_audio(0, &Bytes::from(huge_audio), &mut out),
            Err(Mp4Error::SampleTooLarge { track: "audio", .. })
        ));

        rec.max_samples = 10;
        assert!(!rec.near_sample_limit());
        for i in 0..10 {
            // A rotation is asked for half-way (the margin is capped at half the limit).
            assert_eq!(rec.near_sample_limit(), i >= 5, "{i}");
            rec.write_video(i * 40, &avc_frame(i == 0, 0, &[1]), &mut out)
                .unwrap();
        }
        assert_eq!(
            rec.write_video(400, &avc_frame(false, 0, &[1]), &mut out),
            Err(Mp4Error::TooManySamples(10))
        );
        let finish = rec.finish(&mut out).unwrap();
        let moov = moov_at(&finish.trailer, b"moov");
        assert_eq!(
            trak_samples(&finish_file(&out, &finish), &moov.trak[0]).len(),
            10
        );
    }

    fn apply_repair(file: &[u8], r: &Repaired) -> Vec<u8> {
        let mut out = file[..r.truncate_to as usize].to_vec();
        out.extend_from_slice(&r.trailer);
        for (at, bytes) in &r.patches {
            let at = *at as usize;
            out[at..at + 4].copy_from_slice(bytes);
        }
        out
    }

    /// Per track: (sample bytes, duration, sync) as the final index has them.
    fn indexed(file: &[u8]) -> Vec<Vec<(Vec<u8>, u32, bool)>> {
        let moov = moov_at(file, b"moov");
        moov.trak
            .iter()
            .map(|trak| {
                let stbl = &trak.mdia.minf.stbl;
                let mut durations = stbl
                    .stts
                    .entries
                    .iter()
                    .flat_map(|e| std::iter::repeat_n(e.sample_delta, e.sample_count as usize));
                let sync = stbl.stss.as_ref().map(|s| s.entries.clone());
                trak_samples(file, trak)
                    .into_iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let is_sync = sync.as_ref().is_none_or(|v| v.contains(&(i as u32 + 1)));
                        (s.to_vec(), durations.next().unwrap(), is_sync)
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn an_interrupted_recording_is_repaired_to_what_finish_would_have_written() {
        let tags = tiny_tags();
        let mut rec = Mp4Recorder::new(true, true, 30);
        let mut out = vec![];
        feed(&mut rec, &tags, &mut out);
        rec.flush(&mut out).unwrap();
        let cut = out.concat();
        assert!(needs_repair(&cut[..64]));
        // What the crash left: every complete fragment. Finishing the recorder
        // (which also writes its held last samples) gives the reference.
        let mut finished_out = out.clone();
        let finish = rec.finish(&mut finished_out).unwrap();
        let finished = finish_file(&finished_out, &finish);
        assert!(!needs_repair(&finished[..64]));

        let r = repair(&cut).unwrap();
        assert_eq!(r.truncate_to, cut.len() as u64);
        let repaired = apply_repair(&cut, &r);
        assert!(!needs_repair(&repaired[..64]));
        assert!(kinds(&repaired).starts_with("ftyp free free mdat"));
        assert!(kinds(&repaired).ends_with("mdat moov"));
        assert!(!kinds(&repaired).contains("moof"));
        let got = indexed(&repaired);
        let want = indexed(&finished);
        assert_eq!(got.len(), 2);
        for (g, w) in got.iter().zip(&want) {
            // The repaired file lacks only the samples that were held (not on disk).
            assert_eq!(g.len() + 1, w.len());
            assert_eq!(g[..], w[..g.len()]);
        }
        let fin_moov = moov_at(&finished, b"moov");
        let rep_moov = moov_at(&repaired, b"moov");
        for (a, b) in fin_moov.trak.iter().zip(&rep_moov.trak) {
            assert_eq!(a.tkhd.track_id, b.tkhd.track_id);
            assert_eq!(a.mdia.minf.stbl.stsd, b.mdia.minf.stbl.stsd);
            assert_eq!(
                a.edts, b.edts,
                "audio that starts late keeps its empty edit"
            );
        }

        // A crash after the trailer and before the patches: repaired again, the same.
        let mut half = cut.clone();
        half.extend_from_slice(&r.trailer);
        assert!(needs_repair(&half));
        assert_eq!(repair(&half).unwrap(), r);

        // A torn last fragment is cut off; the earlier ones are kept.
        let fragments: Vec<usize> = top_level(&cut)
            .iter()
            .filter(|b| &b.1 == b"moof")
            .map(|b| b.0)
            .collect();
        assert!(fragments.len() >= 3);
        let last = *fragments.last().unwrap();
        for end in [last + 3, last + 20, cut.len() - 1] {
            let r = repair(&cut[..end]).unwrap();
            assert_eq!(r.truncate_to, last as u64);
            let repaired = apply_repair(&cut[..end], &r);
            assert!(indexed(&repaired)[0].len() < got[0].len());
        }
        // Killed before the first fragment: no media, nothing to index.
        let header_len = fragments[0];
        let r = repair(&cut[..header_len]).unwrap();
        assert_eq!((r.samples, r.truncate_to), (0, header_len as u64));
        // Every prefix: no panic; a prefix without the header is not repairable.
        for end in 0..cut.len() {
            let r = repair(&cut[..end]);
            assert_eq!(r.is_ok(), end >= header_len, "prefix {end}");
        }
        // A finished (progressive) file is not a recording to repair.
        assert!(matches!(repair(&finished), Err(Mp4Error::NotRepairable(_))));
    }

    fn first_byte() -> impl proptest::strategy::Strategy<Value = u8> {
        use proptest::prelude::*;
        prop_oneof![
            Just(0x17u8),
            Just(0x27),
            Just(0x1c),
            Just(0x90),
            Just(0x91),
            Just(0xa1),
            Just(0xaf),
            Just(0x9f),
            any::<u8>(),
        ]
    }

    proptest::proptest! {
        /// Arbitrary tags after a real start (or none): errors are fine, panics are
        /// not, and whatever finishes is a well-formed file whose sample tables point
        /// inside it.
        #[test]
        fn garbage_never_panics(
            prime in proptest::bool::ANY,
            fragment_ms in 0u32..300,
            tags in proptest::collection::vec(
                (proptest::bool::ANY, 0u32..2000, first_byte(),
                 proptest::collection::vec(proptest::num::u8::ANY, 0..48)),
                0..40,
            ),
        ) {
            let mut rec = Mp4Recorder::new(true, true, fragment_ms);
            let mut out = vec![];
            if prime {
                rec.write_video(0, &tiny_avc_header(), &mut out).unwrap();
                rec.write_audio(0, &tiny_aac_header(), &mut out).unwrap();
                rec.write_video(0, &video_key(), &mut out).unwrap();
            }
            for (video, ts, first, rest) in tags {
                let mut body = vec![first];
                body.extend_from_slice(&rest);
                let body = Bytes::from(body);
                let before = out.len();
                let result = if video {
                    rec.write_video(ts, &body, &mut out)
                } else {
                    rec.write_audio(ts, &body, &mut out)
                };
                if result.is_err() {
                    proptest::prop_assert_eq!(out.len(), before, "an Err appends nothing");
                }
            }
            let _ = rec.duration_ms();
            let finish = rec.finish(&mut out).unwrap();
            if rec.started() {
                let file = finish_file(&out, &finish);
                let k = kinds(&file);
                proptest::prop_assert!(k.starts_with("ftyp free") && k.ends_with("moov"), "{}", k);
                let moov = moov_at(&file, b"moov");
                for trak in &moov.trak {
                    trak_samples(&file, trak);
                }
                let fragmented = out.concat();
                let k = kinds(&fragmented);
                proptest::prop_assert!(k.starts_with("ftyp moov"), "{}", k);
                moov_at(&fragmented, b"moov");
                fragment_samples(&fragmented);
            } else {
                proptest::prop_assert!(out.is_empty());
            }
        }

        #[test]
        fn repair_never_panics_on_damaged_recordings(
            flips in proptest::collection::vec((0usize..4096, proptest::num::u8::ANY), 0..8),
            cut in 0usize..4096,
        ) {
            let mut rec = Mp4Recorder::new(true, true, 30);
            let mut out = vec![];
            feed(&mut rec, &tiny_tags(), &mut out);
            rec.flush(&mut out).unwrap();
            let mut file = out.concat();
            for (at, b) in flips {
                let n = file.len();
                file[at % n] = b;
            }
            file.truncate(cut.max(file.len() / 2));
            if let Ok(r) = repair(&file) {
                proptest::prop_assert!(r.truncate_to <= file.len() as u64);
                for (at, _) in &r.patches {
                    proptest::prop_assert!(at + 4 <= r.truncate_to);
                }
            }
        }
    }
}
