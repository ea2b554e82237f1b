//! RTMP chunk stream: chunks <-> messages.
//! INTERFACE STUB: the implementation is being written; signatures are fixed.

use bytes::{Bytes, BytesMut};
use thiserror::Error;

/// Default chunk size before any Set Chunk Size (spec 5.4.1).
pub const DEFAULT_CHUNK_SIZE: u32 = 128;
/// Largest chunk size the spec allows (31 bits).
pub const MAX_CHUNK_SIZE: u32 = 0x7FFF_FFFF;

/// A complete RTMP message as reassembled from chunks.
#[derive(Debug, Clone, PartialEq)]
pub struct RawMessage {
    pub csid: u32,
    /// Absolute timestamp in ms (deltas already applied, 32-bit wrapping).
    pub timestamp: u32,
    pub type_id: u8,
    pub stream_id: u32,
    pub payload: Bytes,
}

#[derive(Debug, Clone, Copy)]
pub struct ChunkLimits {
    /// Largest message length accepted (default 16 MiB).
    pub max_message_size: u32,
    /// Most chunk streams tracked at once (default 64).
    pub max_chunk_streams: usize,
}

impl Default for ChunkLimits {
    fn default() -> Self {
        ChunkLimits { max_message_size: 16 * 1024 * 1024, max_chunk_streams: 64 }
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum ChunkError {
    #[error("chunk size {0} out of range 1..=2147483647")]
    BadChunkSize(u32),
    #[error("message length {len} exceeds the limit {limit}")]
    MessageTooLarge { len: u32, limit: u32 },
    #[error("more than {0} chunk streams")]
    TooManyChunkStreams(usize),
    #[error("chunk header format {fmt} on chunk stream {csid} with no previous header")]
    NoPreviousHeader { fmt: u8, csid: u32 },
}

/// Reassembles messages from a byte stream. Applies Set Chunk Size (type 1) and
/// Abort (type 2) itself, the moment they are decoded, and still returns them.
#[derive(Debug)]
pub struct ChunkDecoder {
    _limits: ChunkLimits,
}

impl ChunkDecoder {
    pub fn new(limits: ChunkLimits) -> Self {
        ChunkDecoder { _limits: limits }
    }
    /// Appends received bytes.
    pub fn push(&mut self, _data: &[u8]) {}
    /// Returns the next complete message, `Ok(None)` when more bytes are needed.
    pub fn poll_message(&mut self) -> Result<Option<RawMessage>, ChunkError> {
        Ok(None)
    }
    /// The chunk size currently used for incoming chunks.
    pub fn chunk_size(&self) -> u32 {
        DEFAULT_CHUNK_SIZE
    }
}

/// Appends `payload` as one message, chunked at `chunk_size`, to `out`. The first chunk
/// has a type-0 header, the rest type-3 (with the extended timestamp repeated when
/// `timestamp >= 0xFFFFFF`). Stateless, so the bytes can be shared by every connection
/// that uses the same chunk size.
pub fn encode_message(
    _out: &mut BytesMut,
    _csid: u32,
    _timestamp: u32,
    _type_id: u8,
    _stream_id: u32,
    _payload: &[u8],
    _chunk_size: u32,
) {
}
