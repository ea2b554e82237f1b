//! MPEG-TS muxer (ISO/IEC 13818-1): FLV tag bodies in, 188-byte transport stream
//! packets out. It serves the HLS segmenter and HTTP-TS viewers; one [`TsMuxer`] per
//! output, since continuity counters and the PMT version are per output.
//!
//! Pure: no clock, no I/O, no panics. Every call appends whole packets to the caller's
//! `BytesMut` (so the output length is always a multiple of [`TS_PACKET_SIZE`]), and a
//! call that returns `Err` appends nothing and leaves the muxer as it was, so the
//! caller may log the error and carry on with the next tag.
//!
//! # Layout of the output
//! * One program (number 1) in a PAT on PID 0; its PMT on [`PMT_PID`] lists the
//!   tracks configured so far: video on [`VIDEO_PID`] (H.264 as stream type 0x1B,
//!   H.265 as 0x24) and AAC on [`AUDIO_PID`] (stream type 0x0F, ADTS). A stream may
//!   be audio-only or video-only. The PMT `version_number` is bumped (mod 32)
//!   whenever the set of stream types changes, e.g. when the first audio sequence
//!   header arrives after video started.
//! * PAT + PMT are written before the first frame and again before the next frame
//!   after the PMT changed; [`TsMuxer::write_tables`] writes them on demand (the HLS
//!   segmenter does it at the start of every segment).
//! * One PES per frame, starting in a new TS packet with payload_unit_start_indicator;
//!   the last packet of a PES is filled with adaptation-field stuffing (the only
//!   padding 13818-1 2.4.3.5 allows for PES data). Video PES have stream_id 0xE0 and
//!   PES_packet_length 0 (unbounded); audio PES have stream_id 0xC0 and their exact
//!   length (an ADTS frame is at most 8191 bytes, so it always fits).
//! * H.264 access units are converted from AVCC (length prefixes, `nal_length_size`
//!   from the avcC) to Annex B, behind an access unit delimiter (`09 F0`: any slice
//!   type), with the avcC's SPS and PPS in front of every random access point (IDR
//!   slice, or FLV keyframe flag) unless the frame already carries both. H.265 the
//!   same with AUD `46 01 50` and VPS/SPS/PPS in front of every IRAP (NAL types
//!   16..=23). AUDs that the encoder put in the frame are dropped in favour of ours,
//!   so there is exactly one, first. AAC frames get an ADTS header each, built from
//!   the AudioSpecificConfig (one frame per PES).
//!
//! # Timing
//! FLV timestamps are the decoding time in ms; composition time (PTS - DTS) comes from
//! the video tag header. In 90 kHz units:
//!
//! * `DTS = dts_ms * 90 + TIMESTAMP_OFFSET_90K` and `PTS = DTS + cts_ms * 90`, both
//!   written modulo 2^33. The constant offset of 1.4 s ([`TIMESTAMP_OFFSET_90K`], the
//!   value ffmpeg's muxer ends up with too) keeps every value, and the PCR below,
//!   positive from a stream's first frame at 0 ms. FLV cannot express PTS < DTS for a
//!   valid stream; a negative composition time from a broken publisher is clamped to 0.
//! * PCR (27 MHz, written with extension 0) is `(DTS - PCR_DELAY_90K) * 300`: the
//!   0.7 s delay ([`PCR_DELAY_90K`]) tells the decoder model that each frame's bytes
//!   arrive that long before they are decoded. It travels in the adaptation field of
//!   the first packet of every PES on the PCR PID: video when the PMT has video, else
//!   audio. When the PCR PID has had no PCR for 100 ms (13818-1 2.7.2) of another
//!   track's time, a PCR-only packet (adaptation field, no payload) is written on it,
//!   so sparse video (a slide show) with audio still keeps the PCR interval.
//! * The PCR never steps back by small amounts: audio and video DTS interleave with
//!   some jitter, so a PCR that would go back by up to 1 s repeats the previous value.
//!   A larger step back is a new time base (a publisher reset its clock); that PCR is
//!   written as is with the discontinuity_indicator set.
//! * random_access_indicator is set on the first packet of every video keyframe PES,
//!   and of every audio PES when the stream has no video.
//!
//! # For callers
//! * Frames are muxed in the order given; the muxer does not wait for a keyframe. A
//!   consumer that must start on a keyframe (an HLS segment, a new HTTP-TS viewer)
//!   decides that from the FLV header ([`crate::flv::parse_video_tag`]'s `keyframe`)
//!   *before* calling [`TsMuxer::write_video`], and calls [`TsMuxer::write_tables`]
//!   into the new buffer first.
//! * `Ok(None)` means nothing was written: a sequence header (config stored), a
//!   frame before its track's sequence header, an empty frame, or a codec TS output
//!   does not carry here (AV1, VP9, Opus, MP3, G.711, Speex are dropped).

use bytes::BufMut;
/// Re-exported because this module's API takes it.
pub use bytes::BytesMut;
use thiserror::Error;

use crate::codec::aac::AudioSpecificConfig;
use crate::codec::h264::{iter_avcc_nalus, AvcDecoderConfig};
use crate::codec::h265::HevcDecoderConfig;
use crate::codec::CodecError;
use crate::flv::{
    parse_audio_tag, parse_video_tag, AudioCodec, FlvError, VideoCodec, VideoPacketKind,
};

/// Size of every transport stream packet.
pub const TS_PACKET_SIZE: usize = 188;
/// PID of the program map table (ffmpeg's default).
pub const PMT_PID: u16 = 0x1000;
/// PID of the video elementary stream.
pub const VIDEO_PID: u16 = 0x100;
/// PID of the audio elementary stream.
pub const AUDIO_PID: u16 = 0x101;

/// Stream types in the PMT (13818-1 Table 2-34).
pub const STREAM_TYPE_H264: u8 = 0x1b;
pub const STREAM_TYPE_H265: u8 = 0x24;
pub const STREAM_TYPE_AAC_ADTS: u8 = 0x0f;

/// Added to every PTS and DTS (90 kHz ticks, 1.4 s): see the module doc.
pub const TIMESTAMP_OFFSET_90K: u64 = 126_000;
/// PCR runs this far behind DTS (90 kHz ticks, 0.7 s): see the module doc.
pub const PCR_DELAY_90K: u64 = 63_000;

/// Largest frame we mux, before or after conversion to Annex B. FLV tags are below
/// 16 MiB anyway (24-bit size); a 4K intra frame is a few MiB. The cap bounds the
/// scratch buffer a hostile publisher can make us hold.
pub const MAX_FRAME_SIZE: usize = 16 * 1024 * 1024;

const PAT_PID: u16 = 0;
const PROGRAM_NUMBER: u16 = 1;
const TRANSPORT_STREAM_ID: u16 = 1;
/// "No PCR" in a PMT without tracks (13818-1 2.4.4.9).
const NO_PCR_PID: u16 = 0x1fff;

const STREAM_ID_VIDEO: u8 = 0xe0;
const STREAM_ID_AUDIO: u8 = 0xc0;

/// Longest PCR interval 13818-1 2.7.2 allows: 100 ms.
const PCR_MAX_INTERVAL_90K: u64 = 9_000;
/// A PCR that would step back by at most this much (1 s) repeats the last one
/// instead (interleaving jitter); a larger step back is a discontinuity.
const PCR_HOLD_90K: u64 = 90_000;
/// PTS, DTS and PCR base are 33-bit fields.
const MASK_33: u64 = (1 << 33) - 1;

/// The Annex B scratch buffer keeps its capacity between frames up to this size, so a
/// single huge keyframe does not pin 16 MiB for the life of the stream.
const SCRATCH_KEEP: usize = 1024 * 1024;

/// Payload bytes of a TS packet without adaptation field.
const TS_PAYLOAD: usize = TS_PACKET_SIZE - 4;

const ANNEXB_START: [u8; 4] = [0, 0, 0, 1];
/// H.264 access unit delimiter, primary_pic_type 7 (any slice type).
const H264_AUD: [u8; 2] = [0x09, 0xf0];
/// H.265 access unit delimiter: NAL type 35, layer 0, TemporalId 0, pic_type 2 (I/P/B).
const H265_AUD: [u8; 3] = [0x46, 0x01, 0x50];

#[derive(Debug, Error, PartialEq)]
pub enum TsError {
    #[error("FLV tag header: {0}")]
    Flv(#[from] FlvError),
    /// A sequence header that does not parse (the previous config, if any, is kept).
    #[error("{track} sequence header: {source}")]
    Config {
        track: &'static str,
        source: CodecError,
    },
    /// A coded frame whose payload is malformed (bad AVCC lengths, an AAC frame too
    /// long for ADTS).
    #[error("{track} frame at {dts_ms} ms: {source}")]
    Frame {
        track: &'static str,
        dts_ms: u32,
        source: CodecError,
    },
    #[error("{track} frame of {len} bytes exceeds the {MAX_FRAME_SIZE}-byte limit")]
    FrameTooLarge { track: &'static str, len: usize },
    /// A video frame of a codec other than the one the sequence header configured.
    #[error("video frame is {frame:?} but the sequence header was {config:?}")]
    CodecMismatch {
        frame: VideoCodec,
        config: VideoCodec,
    },
}

/// What [`TsMuxer::write_video`] / [`TsMuxer::write_audio`] wrote for one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TsFrameInfo {
    /// The PES carries a random access point (random_access_indicator set): a video
    /// keyframe (FLV keyframe flag, or an IDR/IRAP picture in the frame), or any
    /// audio frame of a stream without video.
    pub keyframe: bool,
    /// PTS as written: 90 kHz, offset included, modulo 2^33.
    pub pts_90k: u64,
    /// DTS as written (equal to `pts_90k` when the PES carries no separate DTS).
    pub dts_90k: u64,
}

#[derive(Debug, Clone)]
enum VideoConfig {
    H264(AvcDecoderConfig),
    H265(HevcDecoderConfig),
}

impl VideoConfig {
    fn codec(&self) -> VideoCodec {
        match self {
            VideoConfig::H264(_) => VideoCodec::H264,
            VideoConfig::H265(_) => VideoCodec::H265,
        }
    }

    fn stream_type(&self) -> u8 {
        match self {
            VideoConfig::H264(_) => STREAM_TYPE_H264,
            VideoConfig::H265(_) => STREAM_TYPE_H265,
        }
    }
}

/// What goes into the adaptation field of a PES's first packet.
#[derive(Debug, Clone, Copy, Default)]
struct PesStart {
    pcr: Option<Pcr>,
    random_access: bool,
}

#[derive(Debug, Clone, Copy)]
struct Pcr {
    /// PCR base in 90 kHz ticks, not yet wrapped to 33 bits.
    base: u64,
    discontinuity: bool,
}

/// The MPEG-TS muxer for one output. See the module documentation.
#[derive(Debug, Clone)]
pub struct TsMuxer {
    video: Option<VideoConfig>,
    audio: Option<AudioSpecificConfig>,
    pmt_version: u8,
    /// PAT + PMT must precede the next frame (start of output, or the PMT changed).
    tables_pending: bool,
    cc_pat: u8,
    cc_pmt: u8,
    cc_video: u8,
    cc_audio: u8,
    /// Last PCR base written (90 kHz, unwrapped).
    last_pcr: Option<u64>,
    /// Reused Annex B buffer for video frames.
    scratch: Vec<u8>,
}

impl Default for TsMuxer {
    fn default() -> Self {
        Self::new()
    }
}

impl TsMuxer {
    pub fn new() -> Self {
        TsMuxer {
            video: None,
            audio: None,
            pmt_version: 0,
            tables_pending: true,
            cc_pat: 0,
            cc_pmt: 0,
            cc_video: 0,
            cc_audio: 0,
            last_pcr: None,
            scratch: Vec::new(),
        }
    }

    /// Whether a video sequence header (H.264 or H.265) has configured a video track.
    pub fn has_video(&self) -> bool {
        self.video.is_some()
    }

    /// Whether an AAC sequence header has configured an audio track.
    pub fn has_audio(&self) -> bool {
        self.audio.is_some()
    }

    /// Feeds one FLV video tag body (legacy AVC / HEVC codec id 12, or Enhanced RTMP
    /// `avc1` / `hvc1`), `dts_ms` being the tag's timestamp. Sequence headers update
    /// the codec configuration (and the PMT if the codec changed) and return
    /// `Ok(None)`; coded frames are appended to `out` as one PES.
    pub fn write_video(
        &mut self,
        dts_ms: u32,
        flv_body: &[u8],
        out: &mut BytesMut,
    ) -> Result<Option<TsFrameInfo>, TsError> {
        let too_large = |len| TsError::FrameTooLarge {
            track: "video",
            len,
        };
        if flv_body.len() > MAX_FRAME_SIZE {
            return Err(too_large(flv_body.len()));
        }
        let header = parse_video_tag(flv_body)?;
        let payload = flv_body.get(header.header_len..).unwrap_or_default();
        match header.kind {
            VideoPacketKind::SequenceHeader => {
                self.set_video_config(header.codec, payload)?;
                return Ok(None);
            }
            VideoPacketKind::Frame => {}
            VideoPacketKind::SequenceEnd | VideoPacketKind::Other => return Ok(None),
        }
        if !matches!(header.codec, VideoCodec::H264 | VideoCodec::H265) {
            return Ok(None);
        }
        let Some(config) = &self.video else {
            return Ok(None);
        };
        if config.codec() != header.codec {
            return Err(TsError::CodecMismatch {
                frame: header.codec,
                config: config.codec(),
            });
        }

        let mut es = std::mem::take(&mut self.scratch);
        es.clear();
        let built = build_access_unit(config, payload, header.keyframe, &mut es);
        let result = match built {
            Err(source) => Err(TsError::Frame {
                track: "video",
                dts_ms,
                source,
            }),
            Ok(None) => Ok(None),
            Ok(Some(_)) if es.len() > MAX_FRAME_SIZE => Err(too_large(es.len())),
            Ok(Some(random_access)) => {
                let dts = u64::from(dts_ms) * 90 + TIMESTAMP_OFFSET_90K;
                let cts = u64::try_from(header.composition_time).unwrap_or(0);
                let pts = dts + cts * 90;
                Ok(Some(self.write_pes(
                    VIDEO_PID,
                    dts,
                    pts,
                    random_access,
                    &[],
                    &es,
                    out,
                )))
            }
        };
        if es.capacity() <= SCRATCH_KEEP {
            self.scratch = es;
        }
        result
    }

    /// Feeds one FLV audio tag body. An AAC sequence header (legacy or Enhanced RTMP
    /// `mp4a`) configures the audio track and returns `Ok(None)`; an AAC frame is
    /// appended to `out` as one PES holding one ADTS frame. Other codecs are dropped.
    pub fn write_audio(
        &mut self,
        dts_ms: u32,
        flv_body: &[u8],
        out: &mut BytesMut,
    ) -> Result<Option<TsFrameInfo>, TsError> {
        if flv_body.len() > MAX_FRAME_SIZE {
            return Err(TsError::FrameTooLarge {
                track: "audio",
                len: flv_body.len(),
            });
        }
        let header = parse_audio_tag(flv_body)?;
        if header.codec != AudioCodec::Aac {
            return Ok(None);
        }
        let payload = flv_body.get(header.header_len..).unwrap_or_default();
        if header.sequence_header {
            self.set_audio_config(payload)?;
            return Ok(None);
        }
        let Some(config) = &self.audio else {
            return Ok(None);
        };
        if payload.is_empty() {
            return Ok(None);
        }
        let adts = config
            .adts_header(payload.len())
            .map_err(|source| TsError::Frame {
                track: "audio",
                dts_ms,
                source,
            })?;
        let dts = u64::from(dts_ms) * 90 + TIMESTAMP_OFFSET_90K;
        let random_access = self.video.is_none();
        Ok(Some(self.write_pes(
            AUDIO_PID,
            dts,
            dts,
            random_access,
            &adts,
            payload,
            out,
        )))
    }

    /// Appends the PAT and the PMT (one packet each) describing the tracks configured
    /// so far. Call it at the start of every HLS segment or HTTP-TS response; the
    /// muxer also calls it before the first frame and after the PMT changes.
    pub fn write_tables(&mut self, out: &mut BytesMut) {
        self.tables_pending = false;
        let mut section = [0u8; 32];

        // PAT (13818-1 2.4.4.3): one program.
        let pat_len = {
            let s = &mut section;
            s[0] = 0x00; // table_id
            let section_length = 5 + 4 + 4; // header after length, one program, CRC
            put_section_length(s, section_length);
            s[3..5].copy_from_slice(&TRANSPORT_STREAM_ID.to_be_bytes());
            s[5] = 0xc1; // reserved '11', version 0, current_next_indicator 1
            s[6] = 0; // section_number
            s[7] = 0; // last_section_number
            s[8..10].copy_from_slice(&PROGRAM_NUMBER.to_be_bytes());
            s[10..12].copy_from_slice(&(0xe000 | PMT_PID).to_be_bytes());
            finish_section(s, 12)
        };
        write_section_packet(out, PAT_PID, &mut self.cc_pat, &section[..pat_len]);

        // PMT (13818-1 2.4.4.8): up to two elementary streams, no descriptors.
        let mut streams: [(u8, u16); 2] = [(0, 0); 2];
        let mut n = 0;
        if let Some(video) = &self.video {
            streams[n] = (video.stream_type(), VIDEO_PID);
            n += 1;
        }
        if self.audio.is_some() {
            streams[n] = (STREAM_TYPE_AAC_ADTS, AUDIO_PID);
            n += 1;
        }
        let pmt_len = {
            let s = &mut section;
            s[0] = 0x02; // table_id
            put_section_length(s, 9 + 5 * n + 4);
            s[3..5].copy_from_slice(&PROGRAM_NUMBER.to_be_bytes());
            s[5] = 0xc1 | ((self.pmt_version & 0x1f) << 1);
            s[6] = 0;
            s[7] = 0;
            s[8..10].copy_from_slice(&(0xe000 | self.pcr_pid()).to_be_bytes());
            s[10..12].copy_from_slice(&0xf000u16.to_be_bytes()); // program_info_length 0
            let mut at = 12;
            for &(stream_type, pid) in &streams[..n] {
                s[at] = stream_type;
                s[at + 1..at + 3].copy_from_slice(&(0xe000 | pid).to_be_bytes());
                s[at + 3..at + 5].copy_from_slice(&0xf000u16.to_be_bytes()); // ES_info_length 0
                at += 5;
            }
            finish_section(s, at)
        };
        write_section_packet(out, PMT_PID, &mut self.cc_pmt, &section[..pmt_len]);
    }

    fn pcr_pid(&self) -> u16 {
        if self.video.is_some() {
            VIDEO_PID
        } else if self.audio.is_some() {
            AUDIO_PID
        } else {
            NO_PCR_PID
        }
    }

    fn stream_types(&self) -> (Option<u8>, bool) {
        (
            self.video.as_ref().map(VideoConfig::stream_type),
            self.audio.is_some(),
        )
    }

    /// Bumps the PMT version if the stream types differ from `before`.
    fn tracks_changed(&mut self, before: (Option<u8>, bool)) {
        if self.stream_types() != before {
            self.pmt_version = (self.pmt_version + 1) & 0x1f;
            self.tables_pending = true;
        }
    }

    fn set_video_config(&mut self, codec: VideoCodec, payload: &[u8]) -> Result<(), TsError> {
        let config_err = |source| TsError::Config {
            track: "video",
            source,
        };
        let config = match codec {
            VideoCodec::H264 => {
                VideoConfig::H264(AvcDecoderConfig::parse(payload).map_err(config_err)?)
            }
            VideoCodec::H265 => {
                VideoConfig::H265(HevcDecoderConfig::parse(payload).map_err(config_err)?)
            }
            // A codec we do not carry: its frames are dropped.
            _ => return Ok(()),
        };
        let before = self.stream_types();
        self.video = Some(config);
        self.tracks_changed(before);
        Ok(())
    }

    fn set_audio_config(&mut self, payload: &[u8]) -> Result<(), TsError> {
        let config_err = |source| TsError::Config {
            track: "audio",
            source,
        };
        let config = AudioSpecificConfig::parse(payload).map_err(config_err)?;
        // Refuse what ADTS cannot describe now rather than failing every frame.
        config.adts_header(0).map_err(config_err)?;
        let before = self.stream_types();
        self.audio = Some(config);
        self.tracks_changed(before);
        Ok(())
    }

    /// The PCR for a PES or PCR-only packet whose DTS is `dts` (unwrapped 90 kHz).
    fn next_pcr(&mut self, dts: u64) -> Pcr {
        // dts >= TIMESTAMP_OFFSET_90K > PCR_DELAY_90K, so this cannot underflow.
        let candidate = dts.saturating_sub(PCR_DELAY_90K);
        let pcr = match self.last_pcr {
            Some(last) if candidate < last && last - candidate <= PCR_HOLD_90K => Pcr {
                base: last,
                discontinuity: false,
            },
            Some(last) if candidate < last => Pcr {
                base: candidate,
                discontinuity: true,
            },
            _ => Pcr {
                base: candidate,
                discontinuity: false,
            },
        };
        self.last_pcr = Some(pcr.base);
        pcr
    }

    /// Writes tables if pending, a PCR-only packet if the PCR PID needs one, then the
    /// PES: a header, then `prefix` (the ADTS header) and `body`.
    #[allow(clippy::too_many_arguments)]
    fn write_pes(
        &mut self,
        pid: u16,
        dts: u64,
        pts: u64,
        random_access: bool,
        prefix: &[u8],
        body: &[u8],
        out: &mut BytesMut,
    ) -> TsFrameInfo {
        if self.tables_pending {
            self.write_tables(out);
        }
        let pcr_pid = self.pcr_pid();
        let mut start = PesStart {
            pcr: None,
            random_access,
        };
        if pid == pcr_pid {
            start.pcr = Some(self.next_pcr(dts));
        } else {
            let due = match self.last_pcr {
                None => true,
                Some(last) => dts.saturating_sub(PCR_DELAY_90K) >= last + PCR_MAX_INTERVAL_90K,
            };
            if due {
                let pcr = self.next_pcr(dts);
                let cc = self.cc_mut(pcr_pid);
                write_pcr_only_packet(out, pcr_pid, *cc, pcr);
            }
        }

        let (stream_id, with_length) = if pid == VIDEO_PID {
            (STREAM_ID_VIDEO, false)
        } else {
            (STREAM_ID_AUDIO, true)
        };
        let pts_w = pts & MASK_33;
        let dts_w = dts & MASK_33;
        // PES header (13818-1 2.4.3.7) plus the prefix: at most 9 + 10 + 7 bytes.
        let mut head = [0u8; 32];
        head[..4].copy_from_slice(&[0, 0, 1, stream_id]);
        head[6] = 0x84; // '10', not scrambled, data_alignment_indicator 1
        let mut at = 9;
        if pts_w == dts_w {
            head[7] = 0x80; // PTS only
            put_timestamp(&mut head[at..at + 5], 0x2, pts_w);
            at += 5;
        } else {
            head[7] = 0xc0; // PTS and DTS
            put_timestamp(&mut head[at..at + 5], 0x3, pts_w);
            put_timestamp(&mut head[at + 5..at + 10], 0x1, dts_w);
            at += 10;
        }
        head[8] = (at - 9) as u8; // PES_header_data_length
        let prefix_len = prefix.len().min(head.len() - at);
        head[at..at + prefix_len].copy_from_slice(&prefix[..prefix_len]);
        at += prefix_len;
        // PES_packet_length counts the bytes after it; 0 means unbounded (video only).
        let pes_len = at - 6 + body.len();
        if with_length && pes_len <= usize::from(u16::MAX) {
            head[4..6].copy_from_slice(&(pes_len as u16).to_be_bytes());
        }

        let cc = self.cc_mut(pid);
        write_pes_packets(out, pid, cc, start, &head[..at], body);
        TsFrameInfo {
            keyframe: random_access,
            pts_90k: pts_w,
            dts_90k: dts_w,
        }
    }

    fn cc_mut(&mut self, pid: u16) -> &mut u8 {
        if pid == VIDEO_PID {
            &mut self.cc_video
        } else {
            &mut self.cc_audio
        }
    }
}

/// Converts one length-prefixed access unit to Annex B in `es`: AUD, parameter sets
/// when the frame is a random access point and does not carry them, then the frame's
/// NAL units (its own AUDs dropped). Returns whether the frame is a random access
/// point, or `None` when it holds no NAL unit.
fn build_access_unit(
    config: &VideoConfig,
    data: &[u8],
    keyframe_flag: bool,
    es: &mut Vec<u8>,
) -> Result<Option<bool>, CodecError> {
    let (nal_length_size, hevc) = match config {
        VideoConfig::H264(c) => (c.nal_length_size, false),
        VideoConfig::H265(c) => (c.nal_length_size, true),
    };
    let nal_type = |nal: &[u8]| {
        let b = nal.first().copied().unwrap_or(0);
        if hevc {
            (b >> 1) & 0x3f
        } else {
            b & 0x1f
        }
    };
    // First pass: validate the framing and see what the frame holds.
    let (mut count, mut irap, mut vps, mut sps, mut pps) = (0usize, false, false, false, false);
    for nal in iter_avcc_nalus(data, nal_length_size) {
        let t = nal_type(nal?);
        count += 1;
        if hevc {
            irap |= (16..=23).contains(&t);
            vps |= t == 32;
            sps |= t == 33;
            pps |= t == 34;
        } else {
            irap |= t == 5;
            sps |= t == 7;
            pps |= t == 8;
        }
    }
    if count == 0 {
        return Ok(None);
    }
    let random_access = keyframe_flag || irap;
    es.reserve(data.len() + 3 * count + 64);
    es.extend_from_slice(&ANNEXB_START);
    if hevc {
        es.extend_from_slice(&H265_AUD);
    } else {
        es.extend_from_slice(&H264_AUD);
    }
    if random_access {
        match config {
            VideoConfig::H264(c) if !(sps && pps) => c.write_annexb_parameter_sets(es),
            VideoConfig::H265(c) if !(vps && sps && pps) => c.write_annexb_parameter_sets(es),
            _ => {}
        }
    }
    let aud_type = if hevc { 35 } else { 9 };
    for nal in iter_avcc_nalus(data, nal_length_size) {
        let nal = nal?;
        if nal_type(nal) == aud_type {
            continue;
        }
        es.extend_from_slice(&ANNEXB_START);
        es.extend_from_slice(nal);
    }
    Ok(Some(random_access))
}

/// Writes the 5-byte PTS or DTS field: `prefix` (4 bits), then the 33-bit value in
/// three parts, each followed by a marker bit.
fn put_timestamp(dst: &mut [u8], prefix: u8, ts: u64) {
    let ts = ts & MASK_33;
    dst[0] = (prefix << 4) | (((ts >> 30) as u8 & 0x07) << 1) | 1;
    dst[1] = (ts >> 22) as u8;
    dst[2] = (((ts >> 15) as u8 & 0x7f) << 1) | 1;
    dst[3] = (ts >> 7) as u8;
    dst[4] = ((ts as u8 & 0x7f) << 1) | 1;
}

/// Appends the 6-byte PCR field: 33-bit base, 6 reserved bits, 9-bit extension (0).
fn put_pcr(out: &mut BytesMut, base: u64) {
    let base = base & MASK_33;
    out.put_u32((base >> 1) as u32);
    out.put_u8((((base & 1) as u8) << 7) | 0x7e);
    out.put_u8(0);
}

fn put_ts_header(
    out: &mut BytesMut,
    pid: u16,
    pusi: bool,
    adaptation: bool,
    payload: bool,
    cc: u8,
) {
    out.put_u8(0x47);
    out.put_u16((u16::from(pusi) << 14) | (pid & 0x1fff));
    let afc = (u8::from(adaptation) << 1) | u8::from(payload);
    out.put_u8((afc << 4) | (cc & 0x0f));
}

/// Splits one PES (`head` then `body`) into TS packets on `pid`, the first with
/// payload_unit_start_indicator and the adaptation field `start` asks for, the last
/// filled up with adaptation-field stuffing.
fn write_pes_packets(
    out: &mut BytesMut,
    pid: u16,
    cc: &mut u8,
    start: PesStart,
    head: &[u8],
    body: &[u8],
) {
    let total = head.len() + body.len();
    out.reserve((total / (TS_PAYLOAD - 8) + 2) * TS_PACKET_SIZE);
    let mut sent = 0;
    let mut first = true;
    while sent < total {
        let remaining = total - sent;
        let mut flags = 0u8;
        let mut pcr = None;
        if first {
            if let Some(p) = start.pcr {
                flags |= 0x10;
                if p.discontinuity {
                    flags |= 0x80;
                }
                pcr = Some(p.base);
            }
            if start.random_access {
                flags |= 0x40;
            }
        }
        // adaptation_field_length when the field holds only what it must.
        let mut af_len: Option<usize> =
            (flags != 0).then_some(1 + if pcr.is_some() { 6 } else { 0 });
        let space = TS_PAYLOAD - af_len.map_or(0, |l| l + 1);
        let take = remaining.min(space);
        let mut stuffing = 0;
        if take < space {
            let gap = space - take;
            match af_len {
                Some(l) => {
                    af_len = Some(l + gap);
                    stuffing = gap;
                }
                // A lone adaptation_field_length of 0 is one byte of stuffing.
                None if gap == 1 => af_len = Some(0),
                // Length byte, an all-zero flags byte, then 0xFF stuffing.
                None => {
                    af_len = Some(gap - 1);
                    stuffing = gap - 2;
                }
            }
        }
        put_ts_header(out, pid, first, af_len.is_some(), true, *cc);
        if let Some(len) = af_len {
            out.put_u8(len as u8);
            if len > 0 {
                out.put_u8(flags);
                if let Some(base) = pcr {
                    put_pcr(out, base);
                }
                out.put_bytes(0xff, stuffing);
            }
        }
        // Copy `take` bytes of head ++ body starting at `sent`.
        let mut from = sent;
        let mut n = take;
        if from < head.len() {
            let k = n.min(head.len() - from);
            out.put_slice(&head[from..from + k]);
            from += k;
            n -= k;
        }
        if n > 0 {
            let b = from - head.len();
            out.put_slice(&body[b..b + n]);
        }
        sent += take;
        first = false;
        *cc = (*cc + 1) & 0x0f;
    }
}

/// A packet with only an adaptation field carrying a PCR. Its continuity_counter
/// repeats the last payload packet's (`next_cc - 1`): 13818-1 2.4.3.3 does not
/// increment it for packets without payload.
fn write_pcr_only_packet(out: &mut BytesMut, pid: u16, next_cc: u8, pcr: Pcr) {
    out.reserve(TS_PACKET_SIZE);
    put_ts_header(out, pid, false, true, false, next_cc.wrapping_sub(1));
    out.put_u8(183);
    out.put_u8(if pcr.discontinuity { 0x90 } else { 0x10 });
    put_pcr(out, pcr.base);
    out.put_bytes(0xff, 183 - 7);
}

/// Fills in section_syntax_indicator, the reserved bits and section_length.
fn put_section_length(s: &mut [u8], section_length: usize) {
    s[1] = 0xb0 | ((section_length >> 8) as u8 & 0x0f);
    s[2] = section_length as u8;
}

/// Appends the CRC over `s[..len]` and returns the section's full length.
fn finish_section(s: &mut [u8], len: usize) -> usize {
    let crc = crc32_mpeg2(&s[..len]);
    s[len..len + 4].copy_from_slice(&crc.to_be_bytes());
    len + 4
}

/// One PSI section in one packet: pointer_field 0, the section, 0xFF filling
/// (the stuffing 13818-1 2.4.4 allows after a section).
fn write_section_packet(out: &mut BytesMut, pid: u16, cc: &mut u8, section: &[u8]) {
    out.reserve(TS_PACKET_SIZE);
    put_ts_header(out, pid, true, false, true, *cc);
    out.put_u8(0); // pointer_field
    out.put_slice(section);
    out.put_bytes(0xff, TS_PAYLOAD - 1 - section.len());
    *cc = (*cc + 1) & 0x0f;
}

/// CRC-32/MPEG-2 (13818-1 Annex A): polynomial 0x04C11DB7, initial value all ones,
/// no bit reflection, no final XOR; a section including its CRC checks to 0.
/// Written here because it is twenty lines, where a dependency would be a crate
/// plus a feature choice for one table.
pub fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for &b in data {
        crc = (crc << 8) ^ CRC_TABLE[usize::from((crc >> 24) as u8 ^ b)];
    }
    crc
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = (i as u32) << 24;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 0x8000_0000 != 0 {
                (c << 1) ^ 0x04c1_1db7
            } else {
                c << 1
            };
            bit += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flv::{read_file_header, read_tag, Bytes, TAG_AUDIO, TAG_VIDEO};
    use std::collections::HashMap;

    // ----------------------------------------------------------------------------
    // A small TS reader of our own. It asserts the structural rules while it reads
    // (sync byte, packet size, continuity counters, adaptation-field syntax and
    // stuffing, section CRCs, PES header markers), so every test that reads output
    // also checks them.
    // ----------------------------------------------------------------------------

    #[derive(Debug, Clone, PartialEq)]
    struct Pmt {
        version: u8,
        pcr_pid: u16,
        streams: Vec<(u8, u16)>,
    }

    #[derive(Debug, Clone)]
    struct Pes {
        pid: u16,
        stream_id: u8,
        packet_length: u16,
        pts: u64,
        dts: Option<u64>,
        data: Vec<u8>,
        random_access: bool,
        pcr: Option<u64>,
        /// TS packets this PES occupies.
        packets: usize,
    }

    #[derive(Debug, Default)]
    struct TsReader {
        packets: usize,
        last_cc: HashMap<u16, u8>,
        pat_pmt_pid: Option<u16>,
        pmts: Vec<Pmt>,
        pats: usize,
        open: HashMap<u16, Pes>,
        pes: Vec<Pes>,
        /// (pid, PCR base, whether the packet started a PES)
        pcrs: Vec<(u16, u64, bool)>,
        discontinuities: usize,
    }

    fn read_ts(data: &[u8]) -> TsReader {
        let mut r = TsReader::default();
        assert_eq!(data.len() % 188, 0, "output of {} bytes", data.len());
        for p in data.chunks(188) {
            r.packet(p);
        }
        let mut open: Vec<_> = r.open.drain().map(|(_, p)| p).collect();
        open.sort_by_key(|p| p.pid);
        for p in open {
            r.finish(p);
        }
        r
    }

    impl TsReader {
        fn packet(&mut self, p: &[u8]) {
            let n = self.packets;
            self.packets += 1;
            assert_eq!(p[0], 0x47, "sync byte of packet {n}");
            assert_eq!(p[1] & 0x80, 0, "transport_error_indicator");
            let pusi = p[1] & 0x40 != 0;
            let pid = u16::from_be_bytes([p[1] & 0x1f, p[2]]);
            assert_eq!(p[3] >> 6, 0, "scrambling");
            let afc = (p[3] >> 4) & 3;
            assert_ne!(afc, 0, "reserved adaptation_field_control");
            let cc = p[3] & 0x0f;
            let has_payload = afc & 1 != 0;
            if let Some(&last) = self.last_cc.get(&pid) {
                let expected = if has_payload { (last + 1) & 0x0f } else { last };
                assert_eq!(cc, expected, "CC on PID {pid:#x}, packet {n}");
            }
            self.last_cc.insert(pid, cc);

            let mut at = 4;
            let mut random_access = false;
            let mut pcr = None;
            if afc & 2 != 0 {
                let len = usize::from(p[4]);
                if has_payload {
                    assert!(len <= 182, "adaptation_field_length {len}");
                } else {
                    assert_eq!(len, 183, "adaptation-only packet");
                }
                let af = &p[5..5 + len];
                if let Some((&flags, rest)) = af.split_first() {
                    assert_eq!(flags & 0x2f, 0, "only discontinuity/RAI/PCR flags used");
                    if flags & 0x80 != 0 {
                        self.discontinuities += 1;
                    }
                    random_access = flags & 0x40 != 0;
                    let mut rest = rest;
                    if flags & 0x10 != 0 {
                        let b = &rest[..6];
                        let base = (u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])) << 1)
                            | u64::from(b[4] >> 7);
                        assert_eq!(b[4] & 0x7e, 0x7e, "PCR reserved bits");
                        let ext = (u16::from(b[4] & 1) << 8) | u16::from(b[5]);
                        assert_eq!(ext, 0);
                        pcr = Some(base);
                        self.pcrs.push((pid, base, pusi));
                        rest = &rest[6..];
                    }
                    assert!(rest.iter().all(|&b| b == 0xff), "stuffing bytes are 0xFF");
                }
                at = 5 + len;
            }
            if !has_payload {
                assert!(!pusi);
                return;
            }
            let payload = &p[at..];
            assert!(!payload.is_empty(), "payload packet without payload");
            if pid == 0 || Some(pid) == self.pat_pmt_pid {
                assert!(pusi, "one section per packet");
                assert_eq!(payload[0], 0, "pointer_field");
                let section_length =
                    usize::from(u16::from_be_bytes([payload[2], payload[3]]) & 0x0fff);
                let section = &payload[1..4 + section_length];
                assert_eq!(crc32_mpeg2(section), 0, "section CRC on PID {pid:#x}");
                assert_eq!(section[1] & 0xf0, 0xb0);
                assert!(payload[4 + section_length..].iter().all(|&b| b == 0xff));
                if pid == 0 {
                    self.pat(section);
                } else {
                    self.pmt(section);
                }
                return;
            }
            if pusi {
                if let Some(done) = self.open.remove(&pid) {
                    self.finish(done);
                }
                self.open.insert(
                    pid,
                    Pes {
                        pid,
                        stream_id: 0,
                        packet_length: 0,
                        pts: 0,
                        dts: None,
                        data: payload.to_vec(),
                        random_access,
                        pcr,
                        packets: 1,
                    },
                );
            } else {
                assert!(
                    pcr.is_none() && !random_access,
                    "AF flags only at PES start"
                );
                let pes = self
                    .open
                    .get_mut(&pid)
                    .expect("continuation without PES start");
                pes.data.extend_from_slice(payload);
                pes.packets += 1;
            }
        }

        fn pat(&mut self, s: &[u8]) {
            assert_eq!(s[0], 0, "PAT table_id");
            assert_eq!(s.len(), 3 + 13);
            assert_eq!(u16::from_be_bytes([s[8], s[9]]), 1, "program_number");
            self.pat_pmt_pid = Some(u16::from_be_bytes([s[10], s[11]]) & 0x1fff);
            self.pats += 1;
        }

        fn pmt(&mut self, s: &[u8]) {
            assert_eq!(s[0], 2, "PMT table_id");
            assert_eq!(s[5] & 1, 1, "current_next_indicator");
            let version = (s[5] >> 1) & 0x1f;
            let pcr_pid = u16::from_be_bytes([s[8], s[9]]) & 0x1fff;
            assert_eq!(u16::from_be_bytes([s[10], s[11]]) & 0x0fff, 0);
            let mut streams = vec![];
            let mut at = 12;
            while at < s.len() - 4 {
                let pid = u16::from_be_bytes([s[at + 1], s[at + 2]]) & 0x1fff;
                assert_eq!(u16::from_be_bytes([s[at + 3], s[at + 4]]) & 0x0fff, 0);
                streams.push((s[at], pid));
                at += 5;
            }
            self.pmts.push(Pmt {
                version,
                pcr_pid,
                streams,
            });
        }

        fn finish(&mut self, mut pes: Pes) {
            let d = std::mem::take(&mut pes.data);
            assert_eq!(&d[..3], &[0, 0, 1], "PES start code");
            pes.stream_id = d[3];
            pes.packet_length = u16::from_be_bytes([d[4], d[5]]);
            assert_eq!(d[6] & 0xc0, 0x80);
            let flags = d[7] >> 6;
            let header_len = usize::from(d[8]);
            let ts = |b: &[u8], prefix: u8| {
                assert_eq!(b[0] >> 4, prefix, "PTS/DTS prefix");
                assert_eq!(b[0] & 1, 1);
                assert_eq!(b[2] & 1, 1);
                assert_eq!(b[4] & 1, 1);
                (u64::from((b[0] >> 1) & 7) << 30)
                    | (u64::from(b[1]) << 22)
                    | (u64::from(b[2] >> 1) << 15)
                    | (u64::from(b[3]) << 7)
                    | u64::from(b[4] >> 1)
            };
            match flags {
                2 => {
                    assert_eq!(header_len, 5);
                    pes.pts = ts(&d[9..14], 2);
                }
                3 => {
                    assert_eq!(header_len, 10);
                    pes.pts = ts(&d[9..14], 3);
                    pes.dts = Some(ts(&d[14..19], 1));
                }
                f => panic!("PTS_DTS_flags {f}"),
            }
            if pes.packet_length != 0 {
                assert_eq!(
                    usize::from(pes.packet_length),
                    d.len() - 6,
                    "exact PES length"
                );
            }
            pes.data = d[9 + header_len..].to_vec();
            self.pes.push(pes);
        }

        fn pes_on(&self, pid: u16) -> Vec<&Pes> {
            self.pes.iter().filter(|p| p.pid == pid).collect()
        }
    }

    /// Splits Annex B data into NAL units (4-byte start codes, as we write them).
    fn annexb_nalus(es: &[u8]) -> Vec<&[u8]> {
        let mut starts = vec![];
        let mut i = 0;
        while i + 4 <= es.len() {
            if es[i..i + 4] == ANNEXB_START {
                starts.push(i);
                i += 4;
            } else {
                i += 1;
            }
        }
        assert_eq!(starts.first(), Some(&0), "ES starts with a start code");
        let mut nalus = vec![];
        for (k, &s) in starts.iter().enumerate() {
            let end = starts.get(k + 1).copied().unwrap_or(es.len());
            nalus.push(&es[s + 4..end]);
        }
        nalus
    }

    // ----------------------------------------------------------------------------
    // Inputs
    // ----------------------------------------------------------------------------

    /// The avcC of `tiny.flv` (160x90 Constrained Baseline, ffmpeg 5.1.9 / x264).
    fn tiny_tags() -> Vec<crate::flv::FlvTag> {
        let buf = Bytes::from_static(include_bytes!("../tests/fixtures/tiny.flv"));
        let mut offset = read_file_header(&buf).unwrap();
        let mut tags = vec![];
        while let Some((tag, next)) = read_tag(&buf, offset).unwrap() {
            tags.push(tag);
            offset = next;
        }
        tags
    }

    fn tiny_avc_sequence_header() -> Vec<u8> {
        let tags = tiny_tags();
        tags.iter()
            .find(|t| t.tag_type == TAG_VIDEO)
            .unwrap()
            .body
            .to_vec()
    }

    /// Legacy AVC NALU tag body with 4-byte length prefixes.
    fn avc_frame(keyframe: bool, cts: i32, nalus: &[&[u8]]) -> Vec<u8> {
        let mut v = vec![if keyframe { 0x17 } else { 0x27 }, 1];
        v.extend_from_slice(&cts.to_be_bytes()[1..]);
        for n in nalus {
            v.extend_from_slice(&(n.len() as u32).to_be_bytes());
            v.extend_from_slice(n);
        }
        v
    }

    /// AAC LC 44100 Hz mono (ffmpeg's ASC with its SBR sync extension).
    const AAC_SEQ: [u8; 7] = [0xaf, 0x00, 0x12, 0x08, 0x56, 0xe5, 0x00];

    fn aac_frame(len: usize) -> Vec<u8> {
        let mut v = vec![0xaf, 0x01];
        v.extend((0..len).map(|i| (i * 7 + 1) as u8));
        v
    }

    /// hvcC of a 640x360 libx265 stream, the fixture of `codec::h265`'s tests.
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

    fn hevc_tag(packet_type: u8, keyframe: bool, payload: &[u8]) -> Vec<u8> {
        let frame_type = if keyframe { 0x10 } else { 0x20 };
        let mut v = vec![0x80 | frame_type | packet_type];
        v.extend_from_slice(b"hvc1");
        if packet_type == 1 {
            v.extend_from_slice(&[0, 0, 0]);
        }
        v.extend_from_slice(payload);
        v
    }

    fn length_prefixed(nalus: &[&[u8]]) -> Vec<u8> {
        let mut v = vec![];
        for n in nalus {
            v.extend_from_slice(&(n.len() as u32).to_be_bytes());
            v.extend_from_slice(n);
        }
        v
    }

    const IDR: &[u8] = &[0x65, 0x88, 0x84, 0x00, 0x10];
    const NON_IDR: &[u8] = &[0x41, 0x9a, 0x02, 0x03];

    // ----------------------------------------------------------------------------
    // Unit tests
    // ----------------------------------------------------------------------------

    #[test]
    fn crc32_mpeg2_check_value() {
        // The CRC catalogue's check value for CRC-32/MPEG-2.
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_e6e7);
        assert_eq!(crc32_mpeg2(b""), u32::MAX);
    }

    #[test]
    fn tables_list_configured_tracks_and_bump_the_version() {
        let mut m = TsMuxer::new();
        let mut out = BytesMut::new();
        m.write_tables(&mut out);
        assert!(!m.has_video() && !m.has_audio());
        assert_eq!(m.write_audio(0, &AAC_SEQ, &mut out), Ok(None));
        assert!(m.has_audio());
        m.write_audio(0, &aac_frame(20), &mut out).unwrap().unwrap();
        assert_eq!(
            m.write_video(0, &tiny_avc_sequence_header(), &mut out),
            Ok(None)
        );
        assert!(m.has_video());
        // The same config again changes nothing.
        m.write_video(0, &tiny_avc_sequence_header(), &mut out)
            .unwrap();
        m.write_video(40, &avc_frame(true, 0, &[IDR]), &mut out)
            .unwrap()
            .unwrap();
        m.write_video(40, &hevc_tag(0, true, &HVCC_640X360), &mut out)
            .unwrap();
        let r = read_ts(&out);
        assert_eq!(r.pat_pmt_pid, Some(PMT_PID));
        assert_eq!(r.pats, 3);
        assert_eq!(
            r.pmts,
            vec![
                Pmt {
                    version: 0,
                    pcr_pid: NO_PCR_PID,
                    streams: vec![]
                },
                Pmt {
                    version: 1,
                    pcr_pid: AUDIO_PID,
                    streams: vec![(0x0f, AUDIO_PID)]
                },
                Pmt {
                    version: 2,
                    pcr_pid: VIDEO_PID,
                    streams: vec![(0x1b, VIDEO_PID), (0x0f, AUDIO_PID)]
                },
            ]
        );
        // The switch to H.265 is announced before the next frame.
        let mut out2 = BytesMut::new();
        let nalus = length_prefixed(&[&[0x26, 0x01, 0xaf, 0x00]]);
        m.write_video(80, &hevc_tag(1, true, &nalus), &mut out2)
            .unwrap()
            .unwrap();
        let mut r = TsReader {
            pat_pmt_pid: Some(PMT_PID),
            ..TsReader::default()
        };
        for p in out2.chunks(188) {
            r.packet(p);
        }
        assert_eq!(
            r.pmts,
            vec![Pmt {
                version: 3,
                pcr_pid: VIDEO_PID,
                streams: vec![(0x24, VIDEO_PID), (0x0f, AUDIO_PID)]
            }]
        );
    }

    #[test]
    fn h264_keyframe_gets_aud_and_parameter_sets() {
        let mut m = TsMuxer::new();
        let mut out = BytesMut::new();
        m.write_video(0, &tiny_avc_sequence_header(), &mut out)
            .unwrap();
        let sei: &[u8] = &[0x06, 0x05, 0x01, 0xaa, 0x80];
        let aud: &[u8] = &[0x09, 0x10];
        let k = m
            .write_video(0, &avc_frame(true, 0, &[aud, sei, IDR]), &mut out)
            .unwrap()
            .unwrap();
        assert!(k.keyframe);
        let p = m
            .write_video(40, &avc_frame(false, 80, &[NON_IDR]), &mut out)
            .unwrap()
            .unwrap();
        assert!(!p.keyframe);
        // IDR without the FLV keyframe flag still gets the parameter sets.
        m.write_video(80, &avc_frame(false, 0, &[IDR]), &mut out)
            .unwrap()
            .unwrap();
        // A keyframe that carries its own SPS and PPS does not get them twice.
        let sps: &[u8] = &[0x67, 0x42, 0xc0, 0x0b];
        let pps: &[u8] = &[0x68, 0xce, 0x3c, 0x80];
        m.write_video(120, &avc_frame(true, 0, &[sps, pps, IDR]), &mut out)
            .unwrap()
            .unwrap();

        let r = read_ts(&out);
        let video = r.pes_on(VIDEO_PID);
        assert_eq!(video.len(), 4);
        let types = |pes: &Pes| -> Vec<u8> {
            annexb_nalus(&pes.data)
                .iter()
                .map(|n| n[0] & 0x1f)
                .collect()
        };
        assert_eq!(types(video[0]), vec![9, 7, 8, 6, 5]);
        assert_eq!(annexb_nalus(&video[0].data)[0], &[0x09, 0xf0]);
        assert_eq!(annexb_nalus(&video[0].data)[4], IDR);
        assert_eq!(types(video[1]), vec![9, 1]);
        assert_eq!(types(video[2]), vec![9, 7, 8, 5]);
        assert_eq!(types(video[3]), vec![9, 7, 8, 5]);
        assert_eq!(annexb_nalus(&video[3].data)[1], sps);
        for (pes, rai) in video.iter().zip([true, false, true, true]) {
            assert_eq!(pes.stream_id, 0xe0);
            assert_eq!(pes.packet_length, 0);
            assert_eq!(pes.random_access, rai);
            assert!(pes.pcr.is_some(), "PCR on every video PES start");
        }
    }

    #[test]
    fn h265_irap_gets_aud_and_parameter_sets() {
        let mut m = TsMuxer::new();
        let mut out = BytesMut::new();
        m.write_video(0, &hevc_tag(0, true, &HVCC_640X360), &mut out)
            .unwrap();
        // IDR_W_RADL (19) and a TRAIL_R (1) slice.
        let idr: &[u8] = &[0x26, 0x01, 0xaf, 0x06];
        let trail: &[u8] = &[0x02, 0x01, 0xd0, 0x09];
        let aud: &[u8] = &[0x46, 0x01, 0x10];
        m.write_video(
            0,
            &hevc_tag(1, true, &length_prefixed(&[aud, idr])),
            &mut out,
        )
        .unwrap();
        m.write_video(
            40,
            &hevc_tag(1, false, &length_prefixed(&[trail])),
            &mut out,
        )
        .unwrap();
        // CRA (21) without the keyframe flag.
        let cra: &[u8] = &[0x2a, 0x01, 0xac, 0x00];
        let info = m
            .write_video(80, &hevc_tag(1, false, &length_prefixed(&[cra])), &mut out)
            .unwrap();
        assert!(info.unwrap().keyframe);

        let r = read_ts(&out);
        assert_eq!(r.pmts[0].streams, vec![(0x24, VIDEO_PID)]);
        let video = r.pes_on(VIDEO_PID);
        let types = |pes: &Pes| -> Vec<u8> {
            annexb_nalus(&pes.data)
                .iter()
                .map(|n| (n[0] >> 1) & 0x3f)
                .collect()
        };
        assert_eq!(types(video[0]), vec![35, 32, 33, 34, 19]);
        assert_eq!(annexb_nalus(&video[0].data)[0], &H265_AUD[..]);
        assert_eq!(types(video[1]), vec![35, 1]);
        assert_eq!(types(video[2]), vec![35, 32, 33, 34, 21]);
        assert!(video[0].random_access && !video[1].random_access && video[2].random_access);
    }

    #[test]
    fn timestamps_with_b_frames_and_the_offset() {
        let mut m = TsMuxer::new();
        let mut out = BytesMut::new();
        m.write_video(0, &tiny_avc_sequence_header(), &mut out)
            .unwrap();
        // Decode order I P B B with composition times as x264 writes them.
        let frames = [
            (0u32, 80i32, true),
            (40, 160, false),
            (80, 40, false),
            (120, 40, false),
        ];
        let mut infos = vec![];
        for (dts, cts, key) in frames {
            let nal = if key { IDR } else { NON_IDR };
            infos.push(
                m.write_video(dts, &avc_frame(key, cts, &[nal]), &mut out)
                    .unwrap()
                    .unwrap(),
            );
        }
        // cts 0: PTS only.
        let i = m
            .write_video(160, &avc_frame(false, 0, &[NON_IDR]), &mut out)
            .unwrap()
            .unwrap();
        assert_eq!(i.pts_90k, i.dts_90k);
        // A negative composition time is clamped to 0.
        let i = m
            .write_video(200, &avc_frame(false, -40, &[NON_IDR]), &mut out)
            .unwrap()
            .unwrap();
        assert_eq!(i.pts_90k, 200 * 90 + 126_000);
        assert_eq!(i.pts_90k, i.dts_90k);

        let r = read_ts(&out);
        let video = r.pes_on(VIDEO_PID);
        for (k, (dts, cts, _)) in frames.iter().enumerate() {
            let dts90 = u64::from(*dts) * 90 + TIMESTAMP_OFFSET_90K;
            let pts90 = dts90 + *cts as u64 * 90;
            assert_eq!(video[k].pts, pts90);
            assert_eq!(video[k].dts, Some(dts90));
            assert!(video[k].pts >= dts90);
            assert_eq!((infos[k].pts_90k, infos[k].dts_90k), (pts90, dts90));
            assert_eq!(video[k].pcr, Some(dts90 - PCR_DELAY_90K));
        }
        assert_eq!(video[4].dts, None);
        assert_eq!(video[5].dts, None);
    }

    #[test]
    fn timestamps_wrap_at_33_bits() {
        let mut m = TsMuxer::new();
        let mut out = BytesMut::new();
        m.write_audio(0, &AAC_SEQ, &mut out).unwrap();
        let dts_ms = u32::MAX;
        let info = m
            .write_audio(dts_ms, &aac_frame(10), &mut out)
            .unwrap()
            .unwrap();
        let expected = (u64::from(dts_ms) * 90 + TIMESTAMP_OFFSET_90K) & MASK_33;
        assert_eq!(info.pts_90k, expected);
        let r = read_ts(&out);
        assert_eq!(r.pes[0].pts, expected);
        assert_eq!(
            r.pes[0].pcr,
            Some((u64::from(dts_ms) * 90 + TIMESTAMP_OFFSET_90K - PCR_DELAY_90K) & MASK_33)
        );
    }

    #[test]
    fn aac_pes_has_adts_and_exact_length() {
        let mut m = TsMuxer::new();
        let mut out = BytesMut::new();
        m.write_audio(0, &AAC_SEQ, &mut out).unwrap();
        let asc = AudioSpecificConfig::parse(&AAC_SEQ[2..]).unwrap();
        // Sizes around every packet boundary, including the 1- and 2-byte gaps.
        let sizes: Vec<usize> = (0..420).chain([1000, 8184]).collect();
        for (k, &len) in sizes.iter().enumerate() {
            let info = m
                .write_audio(k as u32 * 23, &aac_frame(len), &mut out)
                .unwrap();
            assert_eq!(info.is_some(), len > 0, "len {len}");
        }
        assert!(
            m.write_audio(0, &aac_frame(8185), &mut out).is_err(),
            "too long for ADTS"
        );
        let r = read_ts(&out);
        let audio = r.pes_on(AUDIO_PID);
        assert_eq!(audio.len(), sizes.len() - 1);
        for (pes, &len) in audio.iter().zip(&sizes[1..]) {
            assert_eq!(pes.stream_id, 0xc0);
            assert_eq!(&pes.data[..7], &asc.adts_header(len).unwrap());
            assert_eq!(&pes.data[7..], &aac_frame(len)[2..], "len {len}");
            assert_eq!(usize::from(pes.packet_length), 8 + 7 + len);
            assert_eq!(pes.dts, None);
            assert!(
                pes.random_access && pes.pcr.is_some(),
                "audio-only: RAI and PCR on audio"
            );
            // No wasted packets: the PES takes the fewest packets its size allows
            // (8 bytes of PCR adaptation field in the first).
            let total = 14 + 7 + len + 8;
            assert_eq!(pes.packets, total.div_ceil(184), "len {len}");
        }
    }

    #[test]
    fn video_stuffing_at_packet_boundaries() {
        // Every ES size from a few bytes to three packets: the reassembled ES must be
        // exactly what went in (so all padding was adaptation-field stuffing).
        let mut m = TsMuxer::new();
        let mut out = BytesMut::new();
        m.write_video(0, &tiny_avc_sequence_header(), &mut out)
            .unwrap();
        let mut expected = vec![];
        for len in 2..600usize {
            let mut nal = vec![0x41u8];
            nal.extend((1..len).map(|i| (i % 251) as u8 | 1));
            m.write_video(len as u32, &avc_frame(false, 0, &[&nal]), &mut out)
                .unwrap()
                .unwrap();
            expected.push(nal);
        }
        let r = read_ts(&out);
        for (pes, nal) in r.pes_on(VIDEO_PID).iter().zip(&expected) {
            let nalus = annexb_nalus(&pes.data);
            assert_eq!(nalus.len(), 2);
            assert_eq!(nalus[1], &nal[..]);
        }
    }

    #[test]
    fn pcr_rules() {
        let mut m = TsMuxer::new();
        let mut out = BytesMut::new();
        m.write_video(0, &tiny_avc_sequence_header(), &mut out)
            .unwrap();
        m.write_audio(0, &AAC_SEQ, &mut out).unwrap();
        // Audio first: a PCR-only packet on the video PID precedes it.
        m.write_audio(0, &aac_frame(100), &mut out).unwrap();
        m.write_video(0, &avc_frame(true, 0, &[IDR]), &mut out)
            .unwrap();
        // Audio within 100 ms of the last PCR: no PCR-only packet.
        m.write_audio(23, &aac_frame(100), &mut out).unwrap();
        // 1 fps video with audio every 23 ms: PCR-only packets keep the interval.
        for k in 2..87u32 {
            m.write_audio(k * 23, &aac_frame(100), &mut out).unwrap();
        }
        m.write_video(1000, &avc_frame(false, 0, &[NON_IDR]), &mut out)
            .unwrap();
        // Video slightly behind audio: PCR held, not stepped back.
        m.write_audio(1100, &aac_frame(100), &mut out).unwrap();
        m.write_video(1040, &avc_frame(false, 0, &[NON_IDR]), &mut out)
            .unwrap();
        // Publisher clock reset: PCR goes back with the discontinuity_indicator.
        m.write_video(0, &avc_frame(true, 0, &[IDR]), &mut out)
            .unwrap();

        let r = read_ts(&out);
        assert!(r.pcrs.iter().all(|&(pid, _, _)| pid == VIDEO_PID));
        assert_eq!(
            r.pcrs[0],
            (VIDEO_PID, TIMESTAMP_OFFSET_90K - PCR_DELAY_90K, false)
        );
        let bases: Vec<u64> = r.pcrs.iter().map(|p| p.1).collect();
        let (last, before) = bases.split_last().unwrap();
        assert!(
            before.windows(2).all(|w| w[0] <= w[1]),
            "monotonic: {bases:?}"
        );
        assert!(before
            .windows(2)
            .all(|w| w[1] - w[0] <= PCR_MAX_INTERVAL_90K + 23 * 90));
        assert_eq!(*last, TIMESTAMP_OFFSET_90K - PCR_DELAY_90K);
        assert_eq!(r.discontinuities, 1);
        let video = r.pes_on(VIDEO_PID);
        assert!(video.iter().all(|p| p.pcr.is_some()));
        assert_eq!(video[2].pcr, video[1].pcr.map(|_| before[before.len() - 2]));
        assert!(r
            .pes_on(AUDIO_PID)
            .iter()
            .all(|p| p.pcr.is_none() && !p.random_access));
    }

    #[test]
    fn bad_input_is_an_error_or_dropped_and_writes_nothing() {
        let mut m = TsMuxer::new();
        let mut out = BytesMut::new();
        // Frames before any config are dropped.
        assert_eq!(
            m.write_video(0, &avc_frame(true, 0, &[IDR]), &mut out),
            Ok(None)
        );
        assert_eq!(m.write_audio(0, &aac_frame(10), &mut out), Ok(None));
        // Codecs TS output does not carry here.
        assert_eq!(m.write_audio(0, &[0x2f, 0xff, 0xfb], &mut out), Ok(None));
        assert_eq!(
            m.write_video(0, &[0x91, b'a', b'v', b'0', b'1', 0x12], &mut out),
            Ok(None)
        );
        assert!(out.is_empty());
        // Truncated headers and bad configs.
        assert!(matches!(
            m.write_video(0, &[0x17], &mut out),
            Err(TsError::Flv(_))
        ));
        assert!(matches!(
            m.write_audio(0, &[], &mut out),
            Err(TsError::Flv(_))
        ));
        assert!(matches!(
            m.write_video(0, &[0x17, 0, 0, 0, 0, 1, 2], &mut out),
            Err(TsError::Config { track: "video", .. })
        ));
        // USAC (object type 42) cannot be framed as ADTS.
        assert!(matches!(
            m.write_audio(0, &[0xaf, 0, 0xf9, 0x46, 0x1a, 0x80, 0x10], &mut out),
            Err(TsError::Config { track: "audio", .. })
        ));
        assert!(out.is_empty() && !m.has_video() && !m.has_audio());

        m.write_video(0, &tiny_avc_sequence_header(), &mut out)
            .unwrap();
        // A NAL length running past the end.
        let mut bad = avc_frame(true, 0, &[IDR]);
        bad[8] = 0xff;
        assert!(matches!(
            m.write_video(0, &bad, &mut out),
            Err(TsError::Frame { track: "video", .. })
        ));
        assert!(matches!(
            m.write_video(0, &hevc_tag(1, true, &[0, 0, 0, 1, 0x26]), &mut out),
            Err(TsError::CodecMismatch { .. })
        ));
        let huge = vec![0u8; MAX_FRAME_SIZE + 1];
        assert!(matches!(
            m.write_video(0, &huge, &mut out),
            Err(TsError::FrameTooLarge { .. })
        ));
        assert!(matches!(
            m.write_audio(0, &huge, &mut out),
            Err(TsError::FrameTooLarge { .. })
        ));
        // An empty frame and a frame of zero-length NAL units are dropped.
        assert_eq!(
            m.write_video(0, &avc_frame(true, 0, &[]), &mut out),
            Ok(None)
        );
        assert_eq!(
            m.write_video(0, &avc_frame(true, 0, &[&[]]), &mut out),
            Ok(None)
        );
        assert!(out.is_empty(), "nothing written on Err or drop");
        // The muxer carries on after errors.
        assert!(m
            .write_video(0, &avc_frame(true, 0, &[IDR]), &mut out)
            .unwrap()
            .is_some());
        read_ts(&out);
    }

    proptest::proptest! {
        /// Arbitrary tag bodies, after valid configs or none: whole packets out,
        /// nothing on error, never a panic, and the output always reads back.
        #[test]
        fn arbitrary_tags_never_panic(
            configured in proptest::bool::ANY,
            tags in proptest::collection::vec(
                (0u8..3, 0u32..100_000, proptest::collection::vec(proptest::num::u8::ANY, 0..400)),
                0..20,
            ),
        ) {
            let mut m = TsMuxer::new();
            let mut out = BytesMut::new();
            if configured {
                m.write_video(0, &tiny_avc_sequence_header(), &mut out).unwrap();
                m.write_audio(0, &AAC_SEQ, &mut out).unwrap();
            }
            for (kind, ts, mut body) in tags {
                let before = out.len();
                // Make most bodies look like frames of the configured codecs.
                if configured && kind == 0 && body.len() > 1 {
                    body[0] = 0x17;
                    body[1] = 1;
                }
                let result = match kind {
                    0 | 1 => m.write_video(ts, &body, &mut out),
                    _ => m.write_audio(ts, &body, &mut out),
                };
                if result.is_err() {
                    proptest::prop_assert_eq!(out.len(), before);
                }
                proptest::prop_assert_eq!(out.len() % TS_PACKET_SIZE, 0);
            }
            read_ts(&out);
        }
    }

    // ----------------------------------------------------------------------------
    // Real files, checked by ffprobe and ffmpeg
    // ----------------------------------------------------------------------------

    /// Runs a tool and returns (stdout, stderr); a missing tool fails the test with
    /// instructions rather than skipping it.
    fn run(tool: &str, args: &[&str]) -> (String, String) {
        let out = std::process::Command::new(tool).args(args).output().unwrap_or_else(|e| {
            panic!("cannot run {tool} ({e}): these tests need ffmpeg and ffprobe on PATH (apt-get install ffmpeg)")
        });
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(std::path::PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("ferrocast-mpegts-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn path(&self, file: &str) -> String {
            self.0.join(file).to_str().unwrap().to_owned()
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// What one FLV file muxed to TS looked like on the way in.
    struct Muxed {
        ts: BytesMut,
        /// (dts_ms, cts_ms) of each video frame written.
        video: Vec<(u32, i32)>,
        audio: Vec<u32>,
    }

    fn mux_flv(buf: &Bytes) -> Muxed {
        let mut m = TsMuxer::new();
        let mut muxed = Muxed {
            ts: BytesMut::new(),
            video: vec![],
            audio: vec![],
        };
        let mut offset = read_file_header(buf).unwrap();
        while let Some((tag, next)) = read_tag(buf, offset).unwrap() {
            offset = next;
            let (ts, body) = (tag.timestamp, &tag.body);
            match tag.tag_type {
                TAG_VIDEO if m.write_video(ts, body, &mut muxed.ts).unwrap().is_some() => {
                    let cts = crate::flv::parse_video_tag(body).unwrap().composition_time;
                    muxed.video.push((ts, cts));
                }
                TAG_AUDIO if m.write_audio(ts, body, &mut muxed.ts).unwrap().is_some() => {
                    muxed.audio.push(ts);
                }
                _ => {}
            }
        }
        muxed
    }

    /// `ffprobe -of compact` output as (section, key -> value) rows.
    fn ffprobe(file: &str) -> Vec<(String, HashMap<String, String>)> {
        let (stdout, stderr) = run(
            "ffprobe",
            &[
                "-v",
                "error",
                "-show_streams",
                "-show_packets",
                "-of",
                "compact",
                file,
            ],
        );
        assert_eq!(stderr, "", "ffprobe complained");
        stdout
            .lines()
            .filter_map(|line| {
                let mut fields = line.split('|');
                let section = fields.next()?.to_owned();
                let map = fields
                    .filter_map(|f| f.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                Some((section, map))
            })
            .collect()
    }

    /// Checks a muxed file with our reader, ffprobe and an ffmpeg decode; returns the
    /// ffprobe rows.
    fn check_with_ffmpeg(
        muxed: &Muxed,
        name: &str,
        width: &str,
        height: &str,
    ) -> Vec<(String, HashMap<String, String>)> {
        let r = read_ts(&muxed.ts);
        assert_eq!(r.pes_on(VIDEO_PID).len(), muxed.video.len());
        assert_eq!(r.pes_on(AUDIO_PID).len(), muxed.audio.len());
        let pcrs: Vec<_> = r.pcrs.iter().map(|p| p.1).collect();
        assert!(pcrs.windows(2).all(|w| w[0] <= w[1]));

        let dir = TempDir::new(name);
        let file = dir.path("out.ts");
        std::fs::write(&file, &muxed.ts).unwrap();
        let rows = ffprobe(&file);
        let streams: Vec<_> = rows
            .iter()
            .filter(|(s, _)| s == "stream")
            .map(|(_, m)| m)
            .collect();
        assert_eq!(streams.len(), 2, "{streams:?}");
        let video = streams.iter().find(|s| s["codec_type"] == "video").unwrap();
        let audio = streams.iter().find(|s| s["codec_type"] == "audio").unwrap();
        assert_eq!(video["codec_name"], "h264");
        assert_eq!(
            (video["width"].as_str(), video["height"].as_str()),
            (width, height)
        );
        assert_eq!(audio["codec_name"], "aac");
        let count = |kind: &str| {
            rows.iter()
                .filter(|(s, m)| s == "packet" && m["codec_type"] == kind)
                .count()
        };
        assert_eq!(count("video"), muxed.video.len());
        assert_eq!(count("audio"), muxed.audio.len());

        let (_, stderr) = run("ffmpeg", &["-v", "error", "-i", &file, "-f", "null", "-"]);
        assert_eq!(stderr, "", "ffmpeg decode errors");
        rows
    }

    #[test]
    fn tiny_flv_muxes_to_a_clean_ts() {
        let muxed = mux_flv(&Bytes::from_static(include_bytes!(
            "../tests/fixtures/tiny.flv"
        )));
        assert_eq!((muxed.video.len(), muxed.audio.len()), (5, 10));
        check_with_ffmpeg(&muxed, "tiny", "160", "90");
        let r = read_ts(&muxed.ts);
        // The keyframe PES: AUD, SPS, PPS, then (after x264's SEI) the IDR slice.
        let first = r.pes_on(VIDEO_PID)[0];
        let types: Vec<u8> = annexb_nalus(&first.data)
            .iter()
            .map(|n| n[0] & 0x1f)
            .collect();
        assert_eq!(&types[..3], &[9, 7, 8]);
        assert_eq!(types.iter().filter(|&&t| t == 5).count(), 1);
        assert!(first.random_access);
        // AAC PES start with a valid ADTS header.
        for pes in r.pes_on(AUDIO_PID) {
            assert_eq!(&pes.data[..2], &[0xff, 0xf1]);
            let len = (usize::from(pes.data[3] & 3) << 11)
                | (usize::from(pes.data[4]) << 3)
                | usize::from(pes.data[5] >> 5);
            assert_eq!(len, pes.data.len());
        }
    }

    #[test]
    fn b_frame_flv_from_ffmpeg_keeps_its_timestamps() {
        let dir = TempDir::new("bframes");
        let flv = dir.path("a.flv");
        run(
            "ffmpeg",
            &[
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=320x240:rate=25",
                "-f",
                "lavfi",
                "-i",
                "sine",
                "-t",
                "1",
                "-c:v",
                "libx264",
                "-bf",
                "2",
                "-g",
                "25",
                "-c:a",
                "aac",
                "-f",
                "flv",
                "-y",
                &flv,
            ],
        );
        let muxed = mux_flv(&Bytes::from(std::fs::read(&flv).unwrap()));
        assert_eq!(muxed.video.len(), 25);
        assert!(
            muxed.video.iter().any(|&(_, cts)| cts > 0),
            "the encoder made B-frames"
        );
        let rows = check_with_ffmpeg(&muxed, "bframes-ts", "320", "240");
        let video: Vec<_> = rows
            .iter()
            .filter(|(s, m)| s == "packet" && m["codec_type"] == "video")
            .map(|(_, m)| {
                (
                    m["pts"].parse::<u64>().unwrap(),
                    m["dts"].parse::<u64>().unwrap(),
                )
            })
            .collect();
        for (&(pts, dts), &(dts_ms, cts)) in video.iter().zip(&muxed.video) {
            let want_dts = u64::from(dts_ms) * 90 + TIMESTAMP_OFFSET_90K;
            assert_eq!(dts, want_dts);
            assert_eq!(pts, want_dts + cts as u64 * 90);
            assert!(pts >= dts);
        }
    }
}
