//! FLV tags <-> frames. INTERFACE STUB: the implementation is being written.

use bytes::BytesMut;
use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum FlvError {
    #[error("FLV tag body too short ({0} bytes)")]
    TooShort(usize),
    #[error("not an FLV file (bad signature)")]
    BadSignature,
    #[error("FLV tag of {0} bytes exceeds the limit")]
    TagTooLarge(u32),
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

pub fn parse_video_tag(_body: &[u8]) -> Result<VideoTagHeader, FlvError> {
    Err(FlvError::TooShort(0))
}

pub fn parse_audio_tag(_body: &[u8]) -> Result<AudioTagHeader, FlvError> {
    Err(FlvError::TooShort(0))
}

/// FLV tag types.
pub const TAG_AUDIO: u8 = 8;
pub const TAG_VIDEO: u8 = 9;
pub const TAG_SCRIPT: u8 = 18;

/// Appends one FLV tag (11-byte header, body, 4-byte previous tag size).
pub fn write_tag(_out: &mut BytesMut, _tag_type: u8, _timestamp: u32, _body: &[u8]) {}
