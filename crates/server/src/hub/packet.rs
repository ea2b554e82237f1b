//! One media message as the hub holds it: stored once, shared by every subscriber.

use std::sync::OnceLock;

use bytes::{Bytes, BytesMut};
use ferrocast_proto::flv;
use ferrocast_proto::rtmp::chunk::try_encode_message;
use ferrocast_proto::rtmp::message::{csid, type_id};

/// The message stream id every RTMP player receives media on. The server session's
/// first createStream answers 1, so one chunked copy serves all players.
pub const PLAYER_STREAM_ID: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    Audio,
    Video,
    /// onMetaData (AMF0 "onMetaData" + value, @setDataFrame stripped).
    Metadata,
    /// The stream ended for good: subscribers finish (UnpublishNotify for RTMP).
    Eof,
}

#[derive(Debug)]
pub struct Packet {
    pub kind: PacketKind,
    /// Timestamp on the stream's output timeline (monotonic per track), ms.
    pub timestamp: u32,
    /// Video keyframe (coded frame, not a sequence header).
    pub keyframe: bool,
    /// Decoder configuration (AVC/HEVC sequence header, AAC AudioSpecificConfig).
    pub sequence_header: bool,
    /// The FLV tag body (= RTMP message payload) as the publisher sent it.
    pub payload: Bytes,
    /// The RTMP chunks of this message, built on first use and shared by all players.
    rtmp: OnceLock<Bytes>,
    /// The FLV tag of this message (HTTP-FLV, WS-FLV), built once, shared likewise.
    flv: OnceLock<Bytes>,
}

impl Packet {
    pub fn new(
        kind: PacketKind,
        timestamp: u32,
        keyframe: bool,
        sequence_header: bool,
        payload: Bytes,
    ) -> Self {
        Packet {
            kind,
            timestamp,
            keyframe,
            sequence_header,
            payload,
            rtmp: OnceLock::new(),
            flv: OnceLock::new(),
        }
    }

    pub fn eof() -> Self {
        Packet::new(PacketKind::Eof, 0, false, false, Bytes::new())
    }

    /// The RTMP chunk bytes of this message at `chunk_size`, on [`PLAYER_STREAM_ID`].
    /// Built once per stream (every connection uses the same chunk size), then shared.
    pub fn rtmp_chunks(&self, chunk_size: u32) -> &Bytes {
        self.rtmp.get_or_init(|| {
            let (cs, ty) = match self.kind {
                PacketKind::Audio => (csid::AUDIO, type_id::AUDIO),
                PacketKind::Video => (csid::VIDEO, type_id::VIDEO),
                PacketKind::Metadata | PacketKind::Eof => (csid::DATA, type_id::DATA_AMF0),
            };
            let mut out = BytesMut::new();
            // A payload over 2^24 - 1 bytes (possible only from a source that is not
            // RTMP) is not sent: a corrupt length would desynchronise every player.
            if let Err(e) = try_encode_message(
                &mut out,
                cs,
                self.timestamp,
                ty,
                PLAYER_STREAM_ID,
                &self.payload,
                chunk_size,
            ) {
                tracing::warn!(error = %e, "packet not sent to RTMP players");
            }
            out.freeze()
        })
    }

    /// The FLV tag (header, body, previous tag size) of this message, built once.
    pub fn flv_tag(&self) -> &Bytes {
        self.flv.get_or_init(|| {
            let tag_type = match self.kind {
                PacketKind::Audio => flv::TAG_AUDIO,
                PacketKind::Video => flv::TAG_VIDEO,
                PacketKind::Metadata | PacketKind::Eof => flv::TAG_SCRIPT,
            };
            let mut out = BytesMut::with_capacity(self.payload.len() + 15);
            if let Err(e) = flv::try_write_tag(&mut out, tag_type, self.timestamp, &self.payload) {
                tracing::warn!(error = %e, "packet not sent to FLV viewers");
            }
            out.freeze()
        })
    }

    /// Bytes this packet accounts for in limits and statistics.
    pub fn size(&self) -> usize {
        self.payload.len()
    }
}
