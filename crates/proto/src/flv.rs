//! FLV tags <-> frames: the audio/video tag headers that RTMP media messages and
//! FLV files share, the FLV tag writer (HTTP-FLV, WS-FLV, recording) and a
//! zero-copy FLV file reader (the load generator replays files with it).
//!
//! Video tag headers come in two forms, told apart by the top bit of the first byte:
//!
//! * legacy (FLV 10.1 spec E.4.3.1): `FrameType:4 | CodecID:4`, then for AVC (7) and
//!   HEVC (12) an `AVCPacketType` byte and a signed 24-bit composition time. Codec id
//!   12 for HEVC is not in any Adobe spec: it is the convention of Chinese CDNs and
//!   the ffmpeg forks that serve them, and we accept it because publishers use it.
//! * Enhanced RTMP (veovera enhanced-rtmp v1/v2, "ExVideoTagHeader"):
//!   `IsExHeader:1 | FrameType:3 | PacketType:4`, then a FourCC (`avc1`, `hvc1`,
//!   `av01`, `vp09`), then for `CodedFrames` of `avc1`/`hvc1` a 24-bit composition time.
//!
//! Audio tags are `SoundFormat:4 | rate/size/type:4`, plus an `AACPacketType` byte
//! for AAC; Enhanced RTMP v2 reuses SoundFormat 9 as "ExHeader": the low nibble is
//! then an AudioPacketType and a FourCC follows.
//!
//! # Tag body writers
//! [`avc_sequence_header`], [`avc_frame`], [`hevc_sequence_header`], [`hevc_frame`],
//! [`aac_sequence_header`] and [`aac_frame`] build the tag bodies a source that is
//! not RTMP (the RTSP pull proxy) hands to the hub, from a decoder configuration
//! record or 4-byte length-prefixed NAL units. H.264 is written in the legacy form
//! (codec id 7), which every FLV player reads; H.265 in the Enhanced RTMP form
//! (`hvc1`), not the legacy codec id 12: it is the standard one, ffmpeg 6.1+, OBS and
//! our own muxers read it, and it needs no out-of-spec codec id. AAC's sound byte is
//! `0xaf` (AAC, 44 kHz, 16-bit, stereo), the values the FLV spec (E.4.2.1) requires
//! for AAC whatever the real format is: the AudioSpecificConfig says what it is.
//!
//! Nothing here allocates per tag except [`write_tag`] appending to the caller's
//! buffer and the body writers returning their one body, and no input panics.

use bytes::BufMut;
/// Re-exported because this module's API takes and returns them.
pub use bytes::{Bytes, BytesMut};
use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum FlvError {
    #[error("FLV tag body too short ({0} bytes)")]
    TooShort(usize),
    #[error("not an FLV file (bad signature)")]
    BadSignature,
    #[error("FLV tag of {0} bytes exceeds the limit")]
    TagTooLarge(u32),
    /// An FLV file ends in the middle of a header or tag.
    #[error("FLV file truncated at offset {offset}: {needed} more bytes needed")]
    Truncated { offset: usize, needed: usize },
    /// The FLV header's DataOffset points inside the header or past the data.
    #[error("FLV header data offset {0} is invalid")]
    BadDataOffset(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    H264,
    H265,
    Av1,
    Vp9,
    /// Legacy codec id (low nibble) or enhanced FourCC we do not know.
    Other(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoPacketKind {
    /// Decoder configuration (AVC sequence header / Enhanced RTMP SequenceStart).
    SequenceHeader,
    /// Coded frames (with or without composition time).
    Frame,
    SequenceEnd,
    /// Anything else (metadata packets, multitrack, info frames).
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoTagHeader {
    pub codec: VideoCodec,
    pub keyframe: bool,
    pub kind: VideoPacketKind,
    /// Composition time offset in ms (PTS - DTS); 0 when the packet carries none.
    pub composition_time: i32,
    /// Whether the Enhanced RTMP header form (IsExHeader bit) is used.
    pub enhanced: bool,
    /// Length of the tag header; codec data starts at this offset.
    pub header_len: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    Aac,
    Mp3,
    G711A,
    G711U,
    Speex,
    Opus,
    Other(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioTagHeader {
    pub codec: AudioCodec,
    /// AAC AudioSpecificConfig (AACPacketType 0).
    pub sequence_header: bool,
    pub header_len: usize,
}

/// FLV tag types.
pub const TAG_AUDIO: u8 = 8;
pub const TAG_VIDEO: u8 = 9;
pub const TAG_SCRIPT: u8 = 18;

/// Length of an FLV tag header (type, size, timestamp, stream id).
pub const TAG_HEADER_LEN: usize = 11;

/// Largest tag body [`read_tag`] accepts. The DataSize field is 24 bits, so this is
/// the format's own ceiling; it is checked explicitly so the bound is visible here.
pub const MAX_TAG_SIZE: u32 = 16 * 1024 * 1024;

/// Legacy video codec ids.
const CODEC_ID_AVC: u8 = 7;
const CODEC_ID_HEVC: u8 = 12;

/// VideoFrameType values.
const FRAME_TYPE_KEY: u8 = 1;
const FRAME_TYPE_INTER: u8 = 2;
const FRAME_TYPE_COMMAND: u8 = 5;

/// The top bit of an Enhanced RTMP video tag's first byte (IsExHeader).
const VIDEO_EX_HEADER: u8 = 0x80;

/// Legacy AVCPacketType values (also HEVC with codec id 12).
const AVC_SEQUENCE_HEADER: u8 = 0;
const AVC_NALU: u8 = 1;

/// AACPacketType values.
const AAC_SEQUENCE_HEADER: u8 = 0;
const AAC_RAW: u8 = 1;

/// The first byte of every AAC audio tag: SoundFormat 10, 44 kHz, 16-bit, stereo.
const AAC_SOUND_BYTE: u8 = SOUND_AAC << 4 | 0x0f;

/// Enhanced RTMP VideoPacketType values.
const VIDEO_SEQUENCE_START: u8 = 0;
const VIDEO_CODED_FRAMES: u8 = 1;
const VIDEO_SEQUENCE_END: u8 = 2;
const VIDEO_CODED_FRAMES_X: u8 = 3;
const VIDEO_METADATA: u8 = 4;
const VIDEO_MULTITRACK: u8 = 6;
const VIDEO_MOD_EX: u8 = 7;

/// Enhanced RTMP AudioPacketType values (v2).
const AUDIO_SEQUENCE_START: u8 = 0;
const AUDIO_CODED_FRAMES: u8 = 1;
const AUDIO_MOD_EX: u8 = 7;

/// AvMultitrackType whose tracks each carry their own FourCC.
const MULTITRACK_MANY_CODECS: u8 = 2;

/// Legacy SoundFormat values.
const SOUND_MP3: u8 = 2;
const SOUND_G711A: u8 = 7;
const SOUND_G711U: u8 = 8;
const SOUND_EX_HEADER: u8 = 9;
const SOUND_AAC: u8 = 10;
const SOUND_SPEEX: u8 = 11;
const SOUND_MP3_8K: u8 = 14;

const fn fourcc(s: &[u8; 4]) -> u32 {
    u32::from_be_bytes(*s)
}

fn video_codec_from_fourcc(cc: u32) -> VideoCodec {
    match &cc.to_be_bytes() {
        b"avc1" => VideoCodec::H264,
        b"hvc1" => VideoCodec::H265,
        b"av01" => VideoCodec::Av1,
        b"vp09" => VideoCodec::Vp9,
        _ => VideoCodec::Other(cc),
    }
}

/// Reads the 4-byte FourCC at `at`.
fn read_fourcc(body: &[u8], at: usize) -> Result<u32, FlvError> {
    match body.get(at..at + 4) {
        Some(&[a, b, c, d]) => Ok(u32::from_be_bytes([a, b, c, d])),
        _ => Err(FlvError::TooShort(body.len())),
    }
}

/// Reads a signed 24-bit big-endian composition time at `at`.
fn read_si24(body: &[u8], at: usize) -> Result<i32, FlvError> {
    match body.get(at..at + 3) {
        // Place the 24 bits at the top of an i32 and shift back to sign-extend.
        Some(&[a, b, c]) => Ok(i32::from_be_bytes([a, b, c, 0]) >> 8),
        _ => Err(FlvError::TooShort(body.len())),
    }
}

/// Walks an Enhanced RTMP v2 ModEx chain starting at `*pos` (just after the first
/// byte, whose packet type was ModEx) and returns the packet type that ends it.
/// Each entry is `modExDataSize` (UI8 + 1, or 0xFF then UI16 + 1), the data, and a
/// byte `modExType:4 | PacketType:4`. The only ModEx type defined so far is a
/// nanosecond timestamp offset, which millisecond FLV timing ignores. The loop ends
/// because every entry consumes at least three bytes. ModEx is packet type 7 for
/// both video and audio.
fn skip_mod_ex(body: &[u8], pos: &mut usize) -> Result<u8, FlvError> {
    let short = || FlvError::TooShort(body.len());
    loop {
        let mut size = usize::from(*body.get(*pos).ok_or_else(short)?) + 1;
        *pos += 1;
        if size == 256 {
            let wide = body.get(*pos..*pos + 2).ok_or_else(short)?;
            size = usize::from(u16::from_be_bytes([wide[0], wide[1]])) + 1;
            *pos += 2;
        }
        *pos += size;
        let next = *body.get(*pos).ok_or_else(short)?;
        *pos += 1;
        let packet_type = next & 0x0f;
        if packet_type != VIDEO_MOD_EX {
            return Ok(packet_type);
        }
    }
}

/// Parses the header of an FLV video tag body (an RTMP video message payload).
///
/// Errors only when the body is too short for the header its first byte announces.
/// Packets we do not interpret (video info/command frames, Enhanced RTMP metadata,
/// MPEG-2 TS sequence start, multitrack, unknown packet types) come back with
/// [`VideoPacketKind::Other`] so callers can pass them through or drop them.
///
/// Enhanced RTMP ModEx prefixes are skipped and the packet they wrap is reported;
/// multitrack packets report the shared FourCC's codec (or `Other(0)` for
/// many-codec multitrack) with `header_len` pointing at the first track.
pub fn parse_video_tag(body: &[u8]) -> Result<VideoTagHeader, FlvError> {
    let b0 = *body.first().ok_or(FlvError::TooShort(0))?;
    if b0 & 0x80 != 0 {
        parse_ex_video_tag(body, b0)
    } else {
        parse_legacy_video_tag(body, b0)
    }
}

fn parse_legacy_video_tag(body: &[u8], b0: u8) -> Result<VideoTagHeader, FlvError> {
    let frame_type = b0 >> 4;
    let codec_id = b0 & 0x0f;
    let codec = match codec_id {
        CODEC_ID_AVC => VideoCodec::H264,
        CODEC_ID_HEVC => VideoCodec::H265,
        other => VideoCodec::Other(u32::from(other)),
    };
    let mut header = VideoTagHeader {
        codec,
        keyframe: frame_type == FRAME_TYPE_KEY,
        kind: VideoPacketKind::Frame,
        composition_time: 0,
        enhanced: false,
        header_len: 1,
    };
    if frame_type == FRAME_TYPE_COMMAND {
        // Video info / command frame: a UI8 command instead of video data.
        header.kind = VideoPacketKind::Other;
        return Ok(header);
    }
    if matches!(codec, VideoCodec::H264 | VideoCodec::H265) {
        let packet_type = *body.get(1).ok_or(FlvError::TooShort(body.len()))?;
        header.composition_time = read_si24(body, 2)?;
        header.header_len = 5;
        header.kind = match packet_type {
            0 => VideoPacketKind::SequenceHeader,
            1 => VideoPacketKind::Frame,
            2 => VideoPacketKind::SequenceEnd,
            _ => VideoPacketKind::Other,
        };
        if header.kind != VideoPacketKind::Frame {
            // Only NALU packets carry a meaningful composition time.
            header.composition_time = 0;
        }
    }
    Ok(header)
}

fn parse_ex_video_tag(body: &[u8], b0: u8) -> Result<VideoTagHeader, FlvError> {
    let frame_type = (b0 >> 4) & 0x07;
    let mut packet_type = b0 & 0x0f;
    let mut header = VideoTagHeader {
        codec: VideoCodec::Other(0),
        keyframe: frame_type == FRAME_TYPE_KEY,
        kind: VideoPacketKind::Other,
        composition_time: 0,
        enhanced: true,
        header_len: 1,
    };
    let mut pos = 1;
    if packet_type == VIDEO_MOD_EX {
        packet_type = skip_mod_ex(body, &mut pos)?;
    }
    if frame_type == FRAME_TYPE_COMMAND && packet_type != VIDEO_METADATA {
        // A UI8 VideoCommand and no FourCC, no payload.
        if body.len() < pos + 1 {
            return Err(FlvError::TooShort(body.len()));
        }
        header.keyframe = false;
        header.header_len = pos + 1;
        return Ok(header);
    }
    if packet_type == VIDEO_MULTITRACK {
        let b = *body.get(pos).ok_or(FlvError::TooShort(body.len()))?;
        pos += 1;
        if b >> 4 != MULTITRACK_MANY_CODECS {
            header.codec = video_codec_from_fourcc(read_fourcc(body, pos)?);
            pos += 4;
        }
        header.header_len = pos;
        return Ok(header);
    }
    if packet_type > VIDEO_MOD_EX {
        // Reserved packet type: we cannot know whether a FourCC follows.
        header.header_len = pos;
        return Ok(header);
    }
    let cc = read_fourcc(body, pos)?;
    pos += 4;
    header.codec = video_codec_from_fourcc(cc);
    header.kind = match packet_type {
        VIDEO_SEQUENCE_START => VideoPacketKind::SequenceHeader,
        VIDEO_CODED_FRAMES | VIDEO_CODED_FRAMES_X => VideoPacketKind::Frame,
        VIDEO_SEQUENCE_END => VideoPacketKind::SequenceEnd,
        // 4 Metadata (AMF, e.g. HDR colour info) and 5 MPEG2TSSequenceStart.
        _ => VideoPacketKind::Other,
    };
    if packet_type == VIDEO_METADATA {
        header.keyframe = false;
    }
    // Only avc1 / hvc1 CodedFrames carry an SI24 composition time; CodedFramesX is the
    // same packet with the offset implicitly zero.
    if packet_type == VIDEO_CODED_FRAMES && (cc == fourcc(b"avc1") || cc == fourcc(b"hvc1")) {
        header.composition_time = read_si24(body, pos)?;
        pos += 3;
    }
    header.header_len = pos;
    Ok(header)
}

/// Parses the header of an FLV audio tag body (an RTMP audio message payload).
///
/// Legacy AAC has a second byte, the AACPacketType (0 = AudioSpecificConfig).
/// Enhanced RTMP v2 (`SoundFormat` 9) maps `mp4a` to [`AudioCodec::Aac`], `Opus` to
/// [`AudioCodec::Opus`] and `.mp3` to [`AudioCodec::Mp3`], with `sequence_header`
/// set for the SequenceStart packet type. Enhanced packets this struct cannot
/// describe as a sequence header or a coded frame (SequenceEnd, MultichannelConfig,
/// Multitrack, reserved types) and FourCCs without a variant (`fLaC`, `ac-3`, `ec-3`)
/// are reported as `AudioCodec::Other(9)` so callers pass them through or drop them.
pub fn parse_audio_tag(body: &[u8]) -> Result<AudioTagHeader, FlvError> {
    let b0 = *body.first().ok_or(FlvError::TooShort(0))?;
    let sound_format = b0 >> 4;
    let codec = match sound_format {
        SOUND_AAC => {
            let packet_type = *body.get(1).ok_or(FlvError::TooShort(body.len()))?;
            return Ok(AudioTagHeader {
                codec: AudioCodec::Aac,
                sequence_header: packet_type == 0,
                header_len: 2,
            });
        }
        SOUND_EX_HEADER => return parse_ex_audio_tag(body, b0),
        SOUND_MP3 | SOUND_MP3_8K => AudioCodec::Mp3,
        SOUND_G711A => AudioCodec::G711A,
        SOUND_G711U => AudioCodec::G711U,
        SOUND_SPEEX => AudioCodec::Speex,
        other => AudioCodec::Other(other),
    };
    Ok(AudioTagHeader {
        codec,
        sequence_header: false,
        header_len: 1,
    })
}

fn parse_ex_audio_tag(body: &[u8], b0: u8) -> Result<AudioTagHeader, FlvError> {
    let mut packet_type = b0 & 0x0f;
    let mut pos = 1;
    if packet_type == AUDIO_MOD_EX {
        packet_type = skip_mod_ex(body, &mut pos)?;
    }
    let other = AudioTagHeader {
        codec: AudioCodec::Other(SOUND_EX_HEADER),
        sequence_header: false,
        header_len: pos,
    };
    if packet_type != AUDIO_SEQUENCE_START && packet_type != AUDIO_CODED_FRAMES {
        return Ok(other);
    }
    let cc = read_fourcc(body, pos)?;
    let codec = match &cc.to_be_bytes() {
        b"mp4a" => AudioCodec::Aac,
        b"Opus" => AudioCodec::Opus,
        b".mp3" => AudioCodec::Mp3,
        _ => {
            return Ok(AudioTagHeader {
                header_len: pos + 4,
                ..other
            })
        }
    };
    Ok(AudioTagHeader {
        codec,
        sequence_header: packet_type == AUDIO_SEQUENCE_START,
        header_len: pos + 4,
    })
}

/// Longest tag body the 24-bit DataSize field can carry.
pub const MAX_TAG_BODY: usize = 0x00ff_ffff;

/// [`try_write_tag`] for bodies known to fit (an RTMP message body always does: its
/// length field is 24 bits too): a body over [`MAX_TAG_BODY`] is not written at all,
/// never written with a truncated size.
pub fn write_tag(out: &mut BytesMut, tag_type: u8, timestamp: u32, body: &[u8]) {
    let _ = try_write_tag(out, tag_type, timestamp, body);
}

/// Appends one FLV tag (11-byte header, body, 4-byte previous tag size).
///
/// The timestamp is written as 24 bits plus the 8-bit TimestampExtended (the upper
/// byte), so the full 32-bit value round-trips. A body longer than [`MAX_TAG_BODY`]
/// (the 24-bit DataSize) is refused with [`FlvError::TagTooLarge`] and nothing is
/// written, in every build: a size written modulo 2^24 would make every reader of
/// the file or stream lose sync.
pub fn try_write_tag(
    out: &mut BytesMut,
    tag_type: u8,
    timestamp: u32,
    body: &[u8],
) -> Result<(), FlvError> {
    if body.len() > MAX_TAG_BODY {
        return Err(FlvError::TagTooLarge(
            u32::try_from(body.len()).unwrap_or(u32::MAX),
        ));
    }
    let size = body.len() as u32;
    out.reserve(TAG_HEADER_LEN + body.len() + 4);
    out.put_u8(tag_type);
    out.put_uint(u64::from(size), 3);
    out.put_uint(u64::from(timestamp & 0x00ff_ffff), 3);
    out.put_u8((timestamp >> 24) as u8);
    out.put_uint(0, 3); // StreamID, always 0.
    out.put_slice(body);
    out.put_u32(TAG_HEADER_LEN as u32 + size);
    Ok(())
}

/// The legacy AVC sequence header body for an `avcC` record:
/// `17 00 000000 avcC`.
pub fn avc_sequence_header(avcc: &[u8]) -> Bytes {
    tag_body(
        &[
            FRAME_TYPE_KEY << 4 | CODEC_ID_AVC,
            AVC_SEQUENCE_HEADER,
            0,
            0,
            0,
        ],
        avcc,
    )
}

/// The legacy AVC body of one access unit (4-byte length-prefixed NAL units, no
/// parameter sets needed) with its composition time offset (PTS - DTS, ms; SI24, so
/// values outside -2^23..2^23 wrap): `17|27 01 cts24 NALUs`.
pub fn avc_frame(keyframe: bool, composition_time: i32, nalus: &[u8]) -> Bytes {
    let cts = si24(composition_time);
    tag_body(
        &[
            frame_type(keyframe) << 4 | CODEC_ID_AVC,
            AVC_NALU,
            cts[0],
            cts[1],
            cts[2],
        ],
        nalus,
    )
}

/// The Enhanced RTMP H.265 SequenceStart body for an `hvcC` record:
/// `90 'hvc1' hvcC`.
pub fn hevc_sequence_header(hvcc: &[u8]) -> Bytes {
    let [a, b, c, d] = *b"hvc1";
    tag_body(
        &[
            VIDEO_EX_HEADER | FRAME_TYPE_KEY << 4 | VIDEO_SEQUENCE_START,
            a,
            b,
            c,
            d,
        ],
        hvcc,
    )
}

/// The Enhanced RTMP H.265 CodedFrames body of one access unit (4-byte
/// length-prefixed NAL units) with its composition time offset (as in
/// [`avc_frame`]): `91|a1 'hvc1' cts24 NALUs`.
pub fn hevc_frame(keyframe: bool, composition_time: i32, nalus: &[u8]) -> Bytes {
    let [a, b, c, d] = *b"hvc1";
    let cts = si24(composition_time);
    tag_body(
        &[
            VIDEO_EX_HEADER | frame_type(keyframe) << 4 | VIDEO_CODED_FRAMES,
            a,
            b,
            c,
            d,
            cts[0],
            cts[1],
            cts[2],
        ],
        nalus,
    )
}

/// The AAC sequence header body for an AudioSpecificConfig: `af 00 ASC`.
pub fn aac_sequence_header(asc: &[u8]) -> Bytes {
    tag_body(&[AAC_SOUND_BYTE, AAC_SEQUENCE_HEADER], asc)
}

/// The AAC body of one raw access unit (no ADTS header): `af 01 frame`.
pub fn aac_frame(raw: &[u8]) -> Bytes {
    tag_body(&[AAC_SOUND_BYTE, AAC_RAW], raw)
}

fn frame_type(keyframe: bool) -> u8 {
    if keyframe {
        FRAME_TYPE_KEY
    } else {
        FRAME_TYPE_INTER
    }
}

/// SI24, big-endian: the low three bytes of the two's complement `i32`.
fn si24(v: i32) -> [u8; 3] {
    let [_, a, b, c] = v.to_be_bytes();
    [a, b, c]
}

/// A tag body: its header bytes, then the payload, in one allocation.
fn tag_body(header: &[u8], payload: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(header.len() + payload.len());
    b.put_slice(header);
    b.put_slice(payload);
    b.freeze()
}

/// The 9-byte FLV file header followed by PreviousTagSize0 (0): what an HTTP-FLV
/// response or an FLV recording starts with.
pub fn file_header(has_audio: bool, has_video: bool) -> [u8; 13] {
    let flags = (u8::from(has_audio) << 2) | u8::from(has_video);
    [b'F', b'L', b'V', 1, flags, 0, 0, 0, 9, 0, 0, 0, 0]
}

/// One tag read from an FLV file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlvTag {
    /// Tag type ([`TAG_AUDIO`], [`TAG_VIDEO`], [`TAG_SCRIPT`]), without the filter bit.
    pub tag_type: u8,
    /// Timestamp in ms, TimestampExtended included.
    pub timestamp: u32,
    /// The tag body, sharing the file's buffer.
    pub body: Bytes,
}

/// Checks the FLV file header and returns the offset of the first tag, past
/// PreviousTagSize0. The version byte and the audio/video flags are not checked:
/// writers get them wrong and the tags say what they are.
pub fn read_file_header(buf: &[u8]) -> Result<usize, FlvError> {
    if buf.len() >= 3 && &buf[..3] != b"FLV" {
        return Err(FlvError::BadSignature);
    }
    if buf.len() < 9 {
        return Err(FlvError::Truncated {
            offset: 0,
            needed: 9 - buf.len(),
        });
    }
    let data_offset = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]);
    if data_offset < 9 {
        return Err(FlvError::BadDataOffset(data_offset));
    }
    // DataOffset + PreviousTagSize0; only a 16-bit target could fail the conversion.
    let first = usize::try_from(u64::from(data_offset) + 4)
        .map_err(|_| FlvError::BadDataOffset(data_offset))?;
    if first > buf.len() {
        return Err(FlvError::Truncated {
            offset: 0,
            needed: first - buf.len(),
        });
    }
    Ok(first)
}

/// Reads the tag at `offset` (as returned by [`read_file_header`] or a previous
/// call) and returns it with the offset of the next tag, or `None` at a clean end of
/// file. The body is a zero-copy slice of `buf`. PreviousTagSize is skipped, not
/// verified: some writers get it wrong and the tag header alone frames the file.
pub fn read_tag(buf: &Bytes, offset: usize) -> Result<Option<(FlvTag, usize)>, FlvError> {
    if offset >= buf.len() {
        return Ok(None);
    }
    let header = match buf.get(offset..offset + TAG_HEADER_LEN) {
        Some(h) => h,
        None => {
            return Err(FlvError::Truncated {
                offset,
                needed: offset + TAG_HEADER_LEN - buf.len(),
            })
        }
    };
    let size = u32::from_be_bytes([0, header[1], header[2], header[3]]);
    if size > MAX_TAG_SIZE {
        return Err(FlvError::TagTooLarge(size));
    }
    let timestamp = u32::from_be_bytes([header[7], header[4], header[5], header[6]]);
    let body_start = offset + TAG_HEADER_LEN;
    let next = body_start + size as usize + 4;
    if next > buf.len() {
        return Err(FlvError::Truncated {
            offset,
            needed: next - buf.len(),
        });
    }
    let tag = FlvTag {
        // The top 3 bits are reserved (2) and the encryption "Filter" flag (1).
        tag_type: header[0] & 0x1f,
        timestamp,
        body: buf.slice(body_start..body_start + size as usize),
    };
    Ok(Some((tag, next)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(body: &[u8]) -> VideoTagHeader {
        parse_video_tag(body).unwrap()
    }

    #[test]
    fn legacy_avc_sequence_header_and_frames() {
        // First bytes of the video tags of the ffmpeg/libx264 file described in
        // codec::h264's tests.
        let h = video(&[0x17, 0x00, 0x00, 0x00, 0x00, 0x01, 0x64]);
        assert_eq!(
            h,
            VideoTagHeader {
                codec: VideoCodec::H264,
                keyframe: true,
                kind: VideoPacketKind::SequenceHeader,
                composition_time: 0,
                enhanced: false,
                header_len: 5,
            }
        );
        let h = video(&[0x17, 0x01, 0x00, 0x00, 0x50, 0x00]);
        assert_eq!(
            (h.kind, h.keyframe, h.composition_time),
            (VideoPacketKind::Frame, true, 80)
        );
        let h = video(&[0x27, 0x01, 0x00, 0x00, 0x78, 0x00]);
        assert_eq!(
            (h.kind, h.keyframe, h.composition_time),
            (VideoPacketKind::Frame, false, 120)
        );
        // Negative composition times are sign-extended.
        assert_eq!(video(&[0x27, 0x01, 0xff, 0xff, 0xd8]).composition_time, -40);
        assert_eq!(
            video(&[0x17, 0x02, 0, 0, 0]).kind,
            VideoPacketKind::SequenceEnd
        );
        assert_eq!(video(&[0x17, 0x09, 0, 0, 0]).kind, VideoPacketKind::Other);
    }

    #[test]
    fn legacy_hevc_codec_id_12() {
        let h = video(&[0x1c, 0x00, 0, 0, 0, 0x01]);
        assert_eq!(
            (h.codec, h.kind, h.header_len),
            (VideoCodec::H265, VideoPacketKind::SequenceHeader, 5)
        );
        let h = video(&[0x2c, 0x01, 0, 0, 0x28]);
        assert_eq!(
            (h.codec, h.keyframe, h.composition_time),
            (VideoCodec::H265, false, 40)
        );
    }

    #[test]
    fn legacy_other_codecs_and_command_frames() {
        // Sorenson H.263, inter frame.
        let h = video(&[0x22, 0xaa]);
        assert_eq!(
            (h.codec, h.kind, h.header_len),
            (VideoCodec::Other(2), VideoPacketKind::Frame, 1)
        );
        // Video info/command frame (frame type 5) for AVC.
        let h = video(&[0x57, 0x00]);
        assert_eq!((h.kind, h.keyframe), (VideoPacketKind::Other, false));
    }

    #[test]
    fn legacy_truncated_headers_error() {
        assert_eq!(parse_video_tag(&[]), Err(FlvError::TooShort(0)));
        assert_eq!(parse_video_tag(&[0x17]), Err(FlvError::TooShort(1)));
        assert_eq!(
            parse_video_tag(&[0x17, 0x01, 0x00, 0x00]),
            Err(FlvError::TooShort(4))
        );
    }

    #[test]
    fn enhanced_hevc_packets() {
        // KeyFrame | SequenceStart, 'hvc1', then the hvcC.
        let h = video(&[0x90, b'h', b'v', b'c', b'1', 0x01]);
        assert_eq!(
            h,
            VideoTagHeader {
                codec: VideoCodec::H265,
                keyframe: true,
                kind: VideoPacketKind::SequenceHeader,
                composition_time: 0,
                enhanced: true,
                header_len: 5,
            }
        );
        // KeyFrame | CodedFrames with SI24 composition time 0x000050.
        let h = video(&[0x91, b'h', b'v', b'c', b'1', 0, 0, 0x50, 0, 0, 0, 1]);
        assert_eq!(
            (h.kind, h.keyframe, h.composition_time, h.header_len),
            (VideoPacketKind::Frame, true, 80, 8)
        );
        // InterFrame | CodedFramesX: no composition time.
        let h = video(&[0xa3, b'h', b'v', b'c', b'1', 0, 0, 0, 1]);
        assert_eq!(
            (h.kind, h.keyframe, h.composition_time, h.header_len),
            (VideoPacketKind::Frame, false, 0, 5)
        );
        // SequenceEnd.
        let h = video(&[0x92, b'h', b'v', b'c', b'1']);
        assert_eq!((h.kind, h.header_len), (VideoPacketKind::SequenceEnd, 5));
        // CodedFrames without room for the composition time.
        assert_eq!(
            parse_video_tag(&[0x91, b'h', b'v', b'c', b'1', 0]),
            Err(FlvError::TooShort(6))
        );
        assert_eq!(
            parse_video_tag(&[0x90, b'h', b'v']),
            Err(FlvError::TooShort(3))
        );
    }

    #[test]
    fn enhanced_av1_vp9_and_avc() {
        // AV1 CodedFrames carries no composition time.
        let h = video(&[0x91, b'a', b'v', b'0', b'1', 0x12, 0x00]);
        assert_eq!(
            (h.codec, h.kind, h.composition_time, h.header_len),
            (VideoCodec::Av1, VideoPacketKind::Frame, 0, 5)
        );
        let h = video(&[0x90, b'v', b'p', b'0', b'9', 0x01]);
        assert_eq!(
            (h.codec, h.kind),
            (VideoCodec::Vp9, VideoPacketKind::SequenceHeader)
        );
        let h = video(&[0xa1, b'a', b'v', b'c', b'1', 0xff, 0xff, 0xff, 0x00]);
        assert_eq!(
            (h.codec, h.composition_time, h.header_len),
            (VideoCodec::H264, -1, 8)
        );
        let h = video(&[0x91, b'v', b'p', b'0', b'8']);
        assert_eq!(h.codec, VideoCodec::Other(u32::from_be_bytes(*b"vp08")));
    }

    #[test]
    fn enhanced_other_packet_types() {
        // Metadata: FrameType ignored, FourCC present, AMF follows.
        let h = video(&[0x94, b'h', b'v', b'c', b'1', 0x02]);
        assert_eq!(
            (h.kind, h.keyframe, h.codec, h.header_len),
            (VideoPacketKind::Other, false, VideoCodec::H265, 5)
        );
        // Command frame: a UI8 command, no FourCC.
        let h = video(&[0xd1, 0x00]);
        assert_eq!(
            (h.kind, h.header_len, h.codec),
            (VideoPacketKind::Other, 2, VideoCodec::Other(0))
        );
        assert_eq!(parse_video_tag(&[0xd1]), Err(FlvError::TooShort(1)));
        // MPEG-2 TS sequence start.
        assert_eq!(
            video(&[0x95, b'a', b'v', b'0', b'1']).kind,
            VideoPacketKind::Other
        );
        // Multitrack, OneTrack, CodedFrames of hvc1: codec known, kind Other.
        let h = video(&[0x96, 0x01, b'h', b'v', b'c', b'1', 0x00]);
        assert_eq!(
            (h.kind, h.codec, h.header_len, h.keyframe),
            (VideoPacketKind::Other, VideoCodec::H265, 6, true)
        );
        // Multitrack, ManyTracksManyCodecs: no shared FourCC.
        let h = video(&[0x96, 0x21, 0x00]);
        assert_eq!(
            (h.kind, h.codec, h.header_len),
            (VideoPacketKind::Other, VideoCodec::Other(0), 2)
        );
        // Reserved packet type 9.
        assert_eq!(video(&[0x99, 1, 2, 3]).kind, VideoPacketKind::Other);
    }

    #[test]
    fn enhanced_mod_ex_is_skipped() {
        // ModEx with 3 bytes of data (TimestampOffsetNano), then type 0 | CodedFrames.
        let h = video(&[
            0x97, 0x02, 0x00, 0x01, 0x00, 0x01, b'h', b'v', b'c', b'1', 0, 0, 0x28,
        ]);
        assert_eq!(
            (h.kind, h.keyframe, h.composition_time, h.header_len),
            (VideoPacketKind::Frame, true, 40, 13)
        );
        // Two chained entries, the second with the 16-bit size escape (2 bytes of data).
        let mut body = vec![0x97, 0x00, 0xaa, 0x07, 0xff, 0x00, 0x01, 0xbb, 0xcc, 0x03];
        body.extend_from_slice(b"av01");
        let h = video(&body);
        assert_eq!(
            (h.codec, h.kind, h.header_len),
            (VideoCodec::Av1, VideoPacketKind::Frame, 14)
        );
        // Truncated chains.
        assert!(parse_video_tag(&[0x97]).is_err());
        assert!(parse_video_tag(&[0x97, 0x05, 0, 0]).is_err());
        assert!(parse_video_tag(&[0x97, 0xff, 0x00]).is_err());
    }

    #[test]
    fn legacy_audio() {
        // The ffmpeg AAC sequence header (see codec::aac) and a raw frame.
        let h = parse_audio_tag(&[0xaf, 0x00, 0x12, 0x08, 0x56, 0xe5, 0x00]).unwrap();
        assert_eq!(
            h,
            AudioTagHeader {
                codec: AudioCodec::Aac,
                sequence_header: true,
                header_len: 2,
            }
        );
        let h = parse_audio_tag(&[0xaf, 0x01, 0xde, 0x02]).unwrap();
        assert_eq!(
            (h.codec, h.sequence_header, h.header_len),
            (AudioCodec::Aac, false, 2)
        );
        assert_eq!(parse_audio_tag(&[0xaf]), Err(FlvError::TooShort(1)));
        assert_eq!(parse_audio_tag(&[]), Err(FlvError::TooShort(0)));
        for (b0, codec) in [
            (0x2f, AudioCodec::Mp3),
            (0xef, AudioCodec::Mp3),
            (0x72, AudioCodec::G711A),
            (0x82, AudioCodec::G711U),
            (0xb6, AudioCodec::Speex),
            (0x6e, AudioCodec::Other(6)),
        ] {
            let h = parse_audio_tag(&[b0, 0x00]).unwrap();
            assert_eq!(
                (h.codec, h.sequence_header, h.header_len),
                (codec, false, 1),
                "{b0:#x}"
            );
        }
    }

    #[test]
    fn enhanced_audio() {
        let h = parse_audio_tag(&[0x90, b'm', b'p', b'4', b'a', 0x12, 0x10]).unwrap();
        assert_eq!(
            (h.codec, h.sequence_header, h.header_len),
            (AudioCodec::Aac, true, 5)
        );
        let h = parse_audio_tag(&[0x91, b'm', b'p', b'4', b'a', 0x21]).unwrap();
        assert_eq!(
            (h.codec, h.sequence_header, h.header_len),
            (AudioCodec::Aac, false, 5)
        );
        let h = parse_audio_tag(&[0x90, b'O', b'p', b'u', b's', b'O']).unwrap();
        assert_eq!((h.codec, h.sequence_header), (AudioCodec::Opus, true));
        let h = parse_audio_tag(&[0x91, b'.', b'm', b'p', b'3', 0xff]).unwrap();
        assert_eq!(h.codec, AudioCodec::Mp3);
        let h = parse_audio_tag(&[0x91, b'f', b'L', b'a', b'C']).unwrap();
        assert_eq!((h.codec, h.header_len), (AudioCodec::Other(9), 5));
        // ModEx, then CodedFrames of Opus.
        let h = parse_audio_tag(&[0x97, 0x02, 0, 0, 1, 0x01, b'O', b'p', b'u', b's']).unwrap();
        assert_eq!(
            (h.codec, h.sequence_header, h.header_len),
            (AudioCodec::Opus, false, 10)
        );
        // Multitrack and MultichannelConfig are not single-track frames.
        let h = parse_audio_tag(&[0x95, 0x00, b'O', b'p', b'u', b's']).unwrap();
        assert_eq!(h.codec, AudioCodec::Other(9));
        let h = parse_audio_tag(&[0x94, b'O', b'p', b'u', b's', 0x01]).unwrap();
        assert_eq!(h.codec, AudioCodec::Other(9));
        assert_eq!(
            parse_audio_tag(&[0x91, b'O', b'p']),
            Err(FlvError::TooShort(3))
        );
    }

    #[test]
    fn avc_body_writers_round_trip() {
        let avcc = [0x01, 0x42, 0xc0, 0x15, 0xff, 0xe1];
        let seq = avc_sequence_header(&avcc);
        assert_eq!(
            &seq[..],
            &[0x17, 0, 0, 0, 0, 0x01, 0x42, 0xc0, 0x15, 0xff, 0xe1]
        );
        let h = parse_video_tag(&seq).unwrap();
        assert_eq!(
            (h.codec, h.kind, h.keyframe, h.enhanced, h.header_len),
            (
                VideoCodec::H264,
                VideoPacketKind::SequenceHeader,
                true,
                false,
                5
            )
        );
        assert_eq!(&seq[h.header_len..], &avcc);

        let au = [0, 0, 0, 2, 0x65, 0x88];
        let key = avc_frame(true, 0, &au);
        assert_eq!(&key[..], &[0x17, 1, 0, 0, 0, 0, 0, 0, 2, 0x65, 0x88]);
        let inter = avc_frame(false, 80, &au);
        assert_eq!(&inter[..5], &[0x27, 1, 0, 0, 80]);
        let h = parse_video_tag(&inter).unwrap();
        assert_eq!(
            (
                h.codec,
                h.kind,
                h.keyframe,
                h.composition_time,
                h.header_len
            ),
            (VideoCodec::H264, VideoPacketKind::Frame, false, 80, 5)
        );
        assert_eq!(&inter[h.header_len..], &au);
    }

    #[test]
    fn hevc_body_writers_use_enhanced_rtmp() {
        let hvcc = [0x01, 0x01, 0x60];
        let seq = hevc_sequence_header(&hvcc);
        assert_eq!(&seq[..], b"\x90hvc1\x01\x01\x60");
        let h = parse_video_tag(&seq).unwrap();
        assert_eq!(
            (h.codec, h.kind, h.keyframe, h.enhanced, h.header_len),
            (
                VideoCodec::H265,
                VideoPacketKind::SequenceHeader,
                true,
                true,
                5
            )
        );

        let au = [0, 0, 0, 1, 0x26];
        let key = hevc_frame(true, 0, &au);
        assert_eq!(&key[..], b"\x91hvc1\0\0\0\0\0\0\x01\x26");
        let inter = hevc_frame(false, -40, &au);
        assert_eq!(&inter[..8], b"\xa1hvc1\xff\xff\xd8");
        let h = parse_video_tag(&inter).unwrap();
        assert_eq!(
            (
                h.codec,
                h.kind,
                h.keyframe,
                h.composition_time,
                h.header_len
            ),
            (VideoCodec::H265, VideoPacketKind::Frame, false, -40, 8)
        );
        assert_eq!(&inter[h.header_len..], &au);
    }

    #[test]
    fn frame_writers_carry_signed_24_bit_composition_times() {
        for cts in [0, 40, -40, 0x7f_ffff, -0x80_0000] {
            for body in [
                avc_frame(false, cts, &[0x41]),
                hevc_frame(false, cts, &[0x41]),
            ] {
                assert_eq!(parse_video_tag(&body).unwrap().composition_time, cts);
            }
        }
    }

    #[test]
    fn aac_body_writers_round_trip() {
        let seq = aac_sequence_header(&[0x12, 0x08]);
        assert_eq!(&seq[..], &[0xaf, 0x00, 0x12, 0x08]);
        let h = parse_audio_tag(&seq).unwrap();
        assert_eq!(
            (h.codec, h.sequence_header, h.header_len),
            (AudioCodec::Aac, true, 2)
        );
        let raw = [0x21, 0x10, 0x04];
        let frame = aac_frame(&raw);
        assert_eq!(&frame[..], &[0xaf, 0x01, 0x21, 0x10, 0x04]);
        let h = parse_audio_tag(&frame).unwrap();
        assert_eq!((h.codec, h.sequence_header), (AudioCodec::Aac, false));
        assert_eq!(&frame[h.header_len..], &raw);
        assert_eq!(&aac_frame(&[])[..], &[0xaf, 0x01]);
    }

    #[test]
    fn a_body_over_24_bits_is_refused_and_nothing_written() {
        let mut out = BytesMut::from(&b"x"[..]);
        let big = vec![0u8; MAX_TAG_BODY + 1];
        assert!(matches!(
            try_write_tag(&mut out, TAG_VIDEO, 0, &big),
            Err(FlvError::TagTooLarge(n)) if n as usize == MAX_TAG_BODY + 1
        ));
        write_tag(&mut out, TAG_VIDEO, 0, &big);
        assert_eq!(&out[..], b"x");
        try_write_tag(&mut out, TAG_VIDEO, 0, &big[1..]).unwrap();
        assert_eq!(out.len(), 1 + 11 + MAX_TAG_BODY + 4);
    }

    #[test]
    fn write_tag_layout() {
        let mut out = BytesMut::new();
        write_tag(&mut out, TAG_VIDEO, 0x1234_5678, &[0xaa, 0xbb, 0xcc]);
        assert_eq!(
            &out[..],
            &[
                0x09, 0x00, 0x00, 0x03, 0x34, 0x56, 0x78, 0x12, 0x00, 0x00, 0x00, 0xaa, 0xbb, 0xcc,
                0x00, 0x00, 0x00, 0x0e
            ]
        );
        let buf = Bytes::from([&file_header(true, true)[..], &out[..]].concat());
        let (tag, next) = read_tag(&buf, read_file_header(&buf).unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(
            (tag.tag_type, tag.timestamp, &tag.body[..]),
            (9, 0x1234_5678, &[0xaa, 0xbb, 0xcc][..])
        );
        assert_eq!(read_tag(&buf, next), Ok(None));
    }

    #[test]
    fn file_header_flags() {
        assert_eq!(
            file_header(true, true),
            *b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00"
        );
        assert_eq!(file_header(true, false)[4], 0x04);
        assert_eq!(file_header(false, true)[4], 0x01);
        assert_eq!(file_header(false, false)[4], 0x00);
    }

    /// A tiny file made with
    /// `ffmpeg -f lavfi -i testsrc2=size=160x90:rate=25 -f lavfi -i sine=frequency=440:sample_rate=44100
    ///  -t 0.2 -c:v libx264 -preset ultrafast -g 25 -c:a aac -b:a 32k -f flv tiny.flv`
    /// (ffmpeg 5.1.9): onMetaData, AVC and AAC sequence headers, 5 video and 10 audio
    /// frames and an AVC end-of-sequence tag; ffprobe reports 160x90 Constrained
    /// Baseline and AAC LC 44100 Hz mono.
    const TINY_FLV: &[u8] = include_bytes!("../tests/fixtures/tiny.flv");

    #[test]
    fn reads_ffmpeg_file() {
        use crate::codec::aac::AudioSpecificConfig;
        use crate::codec::h264::AvcDecoderConfig;

        let buf = Bytes::from_static(TINY_FLV);
        let mut offset = read_file_header(&buf).unwrap();
        assert_eq!(offset, 13);
        let mut tags = vec![];
        while let Some((tag, next)) = read_tag(&buf, offset).unwrap() {
            assert!(next > offset);
            tags.push(tag);
            offset = next;
        }
        assert_eq!(offset, buf.len());
        assert_eq!(tags.len(), 19);
        let count = |t| tags.iter().filter(|tag| tag.tag_type == t).count();
        assert_eq!(
            (count(TAG_SCRIPT), count(TAG_VIDEO), count(TAG_AUDIO)),
            (1, 7, 11)
        );
        assert_eq!(&tags[0].body[..13], b"\x02\x00\x0aonMetaData");

        // Zero-copy: the body points into the file buffer.
        let start = tags[1].body.as_ptr() as usize - buf.as_ptr() as usize;
        assert_eq!(start, 13 + 11 + 293 + 4 + 11);

        let v = parse_video_tag(&tags[1].body).unwrap();
        assert_eq!(
            (v.codec, v.kind, v.keyframe),
            (VideoCodec::H264, VideoPacketKind::SequenceHeader, true)
        );
        let avc = AvcDecoderConfig::parse(&tags[1].body[v.header_len..]).unwrap();
        assert_eq!((avc.width, avc.height), (160, 90));
        assert_eq!(avc.codec_string(), "avc1.42C00B");

        let a = parse_audio_tag(&tags[2].body).unwrap();
        assert!(a.sequence_header);
        let asc = AudioSpecificConfig::parse(&tags[2].body[a.header_len..]).unwrap();
        assert_eq!((asc.sample_rate, asc.channel_configuration), (44100, 1));

        let videos: Vec<_> = tags
            .iter()
            .filter(|t| t.tag_type == TAG_VIDEO)
            .map(|t| (t.timestamp, parse_video_tag(&t.body).unwrap()))
            .collect();
        assert_eq!(videos[1].0, 23);
        assert_eq!(
            (videos[1].1.kind, videos[1].1.keyframe),
            (VideoPacketKind::Frame, true)
        );
        assert!(!videos[2].1.keyframe);
        assert_eq!(videos.last().unwrap().1.kind, VideoPacketKind::SequenceEnd);

        // Re-writing every tag reproduces the file byte for byte.
        let mut out = BytesMut::from(&file_header(true, true)[..]);
        for t in &tags {
            write_tag(&mut out, t.tag_type, t.timestamp, &t.body);
        }
        assert_eq!(&out[..], TINY_FLV);
    }

    proptest::proptest! {
        /// Arbitrary bytes through every parser here: errors are fine, panics are not,
        /// and a parsed header never claims more bytes than the body has.
        #[test]
        fn parsers_never_panic(data in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            if let Ok(h) = parse_video_tag(&data) {
                proptest::prop_assert!(h.header_len <= data.len());
            }
            if let Ok(h) = parse_audio_tag(&data) {
                proptest::prop_assert!(h.header_len <= data.len());
            }
            let buf = Bytes::from(data);
            let mut offset = read_file_header(&buf).unwrap_or(0);
            while let Ok(Some((_, next))) = read_tag(&buf, offset) {
                proptest::prop_assert!(next > offset);
                offset = next;
            }
        }
    }

    #[test]
    fn reader_errors() {
        assert_eq!(
            read_file_header(b"FLX\x01\x05\0\0\0\x09\0\0\0\0"),
            Err(FlvError::BadSignature)
        );
        assert_eq!(
            read_file_header(b"FL"),
            Err(FlvError::Truncated {
                offset: 0,
                needed: 7
            })
        );
        assert_eq!(
            read_file_header(b"FLV\x01\x05\0\0\0\x09\0\0"),
            Err(FlvError::Truncated {
                offset: 0,
                needed: 2
            })
        );
        assert_eq!(
            read_file_header(b"FLV\x01\x05\0\0\0\x05\0\0\0\0"),
            Err(FlvError::BadDataOffset(5))
        );
        assert!(matches!(
            read_file_header(b"FLV\x01\x05\xff\xff\xff\xff\0\0\0\0"),
            Err(FlvError::Truncated { offset: 0, .. })
        ));
        // A larger DataOffset skips extra header bytes.
        assert_eq!(
            read_file_header(b"FLV\x01\x05\0\0\0\x0a\xee\0\0\0\0"),
            Ok(14)
        );

        let buf = Bytes::from_static(TINY_FLV);
        // Cut inside the second tag's header, body and previous tag size.
        let second = 13 + 11 + 293 + 4;
        for cut in [second + 5, second + 11 + 20, second + 11 + 44 + 2] {
            let short = buf.slice(..cut);
            assert!(
                matches!(read_tag(&short, second), Err(FlvError::Truncated { offset, .. }) if offset == second)
            );
        }
        assert_eq!(read_tag(&buf, buf.len() + 10), Ok(None));
    }
}
