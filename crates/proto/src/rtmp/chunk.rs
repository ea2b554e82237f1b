//! RTMP chunk stream (spec 5.3): chunks <-> messages.
//!
//! This module owns the incoming chunk size and the per-chunk-stream header state
//! (the "compression" of formats 1-3), and caps everything a peer can make us hold:
//!
//! * [`ChunkLimits::max_message_size`]: a header announcing a longer message is an
//!   error before a single byte of it is buffered (the length field alone could ask
//!   for 16 MiB per chunk stream).
//! * [`ChunkLimits::max_chunk_streams`]: every chunk stream id keeps a header and
//!   possibly a partial message; a peer could otherwise open 65598 of them.
//! * The bytes held in partial messages across all chunk streams are capped at
//!   twice `max_message_size` ([`ChunkError::TooMuchBuffered`]): a real encoder
//!   interleaves small audio/data messages into one large video message, it never
//!   keeps many large messages half-sent at once.
//! * Message buffers grow as chunks arrive; the announced length is only trusted up
//!   to [`INITIAL_RESERVE`] bytes of up-front reservation.
//!
//! It never does I/O and never reads a clock. [`ChunkDecoder`] is fed with
//! [`ChunkDecoder::push`] and drained with [`ChunkDecoder::poll_message`];
//! [`encode_message`] is a stateless encoder whose output can be shared by every
//! connection that uses the same outgoing chunk size (every message starts with a
//! type-0 header, so no state carries over between messages).
//!
//! ## Decisions where implementations differ
//! * **Type-3 chunk after a type-0 header, starting a new message**: the spec says a
//!   type-3 chunk reuses the preceding timestamp delta, but a type-0 header carries
//!   an absolute timestamp. Like ffmpeg, librtmp and SRS we treat the value of the
//!   type-0 timestamp field as the delta.
//! * **Extended timestamp on type-3 continuation chunks**: spec 5.3.1.3 says a type-3
//!   chunk carries the extended timestamp when the preceding header of its chunk
//!   stream did; ffmpeg and librtmp (used by OBS) write it on every continuation
//!   chunk, and SRS reads it there with a fallback. Some encoders omit it. We peek at
//!   the 4 bytes: when they equal the extended value of the message's header they
//!   are the extended timestamp and are skipped, otherwise they are payload (counted
//!   in [`ChunkDecoder::omitted_extended_timestamps`]). A compliant peer is always
//!   decoded correctly; an omitting peer is misread only if 4 payload bytes happen to
//!   equal the timestamp (a 2^-32 chance per continuation chunk). The decision waits
//!   until 4 bytes are buffered, so an omitting peer's final short chunk is delivered
//!   once its next bytes arrive. A type-3 chunk that starts a new message always
//!   reads the 4 bytes, as its new delta.
//! * **A type 0/1/2 header on a chunk stream with a partial message**: the partial
//!   message is dropped, as if aborted, and the new message starts.
//! * **Timestamps** are 32-bit and wrap (deltas are added modulo 2^32).

use std::collections::HashMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use thiserror::Error;

/// Default chunk size before any Set Chunk Size (spec 5.4.1).
pub const DEFAULT_CHUNK_SIZE: u32 = 128;
/// Largest chunk size the spec allows (31 bits).
pub const MAX_CHUNK_SIZE: u32 = 0x7FFF_FFFF;
/// Smallest and largest chunk stream ids that can be encoded (spec 5.3.1.1).
pub const MIN_CSID: u32 = 2;
/// See [`MIN_CSID`].
pub const MAX_CSID: u32 = 65599;
/// Most bytes reserved up front for a message buffer: the length field is peer
/// input, so larger messages grow their buffer as their chunks actually arrive.
pub const INITIAL_RESERVE: usize = 64 * 1024;
/// A message that arrives whole in one chunk is split out of the input buffer without
/// a copy when it is at least this long. Smaller ones are copied: a zero-copy slice
/// keeps the whole input allocation alive, which is a poor trade for a 40-byte
/// sequence header that a stream hub keeps for hours.
pub const ZERO_COPY_MIN: usize = 1024;

/// The timestamp field value that announces an extended timestamp.
const EXTENDED: u32 = 0xFF_FFFF;

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
        ChunkLimits {
            // 16 MiB: far above any real video frame (a 4K intra frame at high
            // quality is a few MiB) while bounding what one header can ask for.
            max_message_size: 16 * 1024 * 1024,
            // 64: encoders use a handful (2 control, 3 command, 4-8 media); a
            // client that plays many streams on one connection stays well below.
            max_chunk_streams: 64,
        }
    }
}

/// Why the chunk stream cannot be decoded. Every variant carries `offset`, the byte
/// offset of the offending chunk in the decoded stream (counted from the first byte
/// pushed, which for a session is the first byte after the handshake), and names the
/// chunk stream or message type where one is known, so that a log line points at the
/// chunk that failed.
#[derive(Debug, Error, PartialEq, Clone)]
pub enum ChunkError {
    #[error(
        "chunk size {size} out of range 1..=2147483647 \
         (Set Chunk Size in the chunk at byte {offset})"
    )]
    BadChunkSize { size: u32, offset: u64 },
    #[error(
        "message length {len} exceeds the limit {limit} \
         (message type {type_id} on chunk stream {csid}, chunk at byte {offset})"
    )]
    MessageTooLarge {
        len: u32,
        limit: u32,
        csid: u32,
        type_id: u8,
        offset: u64,
    },
    /// `csid` is the chunk stream that would have been one too many.
    #[error("more than {limit} chunk streams (a new one, {csid}, in the chunk at byte {offset})")]
    TooManyChunkStreams {
        limit: usize,
        csid: u32,
        offset: u64,
    },
    #[error(
        "chunk header format {fmt} on chunk stream {csid} with no previous header \
         (chunk at byte {offset})"
    )]
    NoPreviousHeader { fmt: u8, csid: u32, offset: u64 },
    /// A Set Chunk Size or Abort message whose payload is shorter than 4 bytes.
    #[error(
        "protocol control message type {type_id} with a {len}-byte payload \
         (chunk at byte {offset})"
    )]
    BadControlMessage {
        type_id: u8,
        len: usize,
        offset: u64,
    },
    /// Partial messages across all chunk streams would exceed `limit` bytes; `csid` is
    /// the chunk stream whose chunk would have gone over.
    #[error(
        "more than {limit} bytes held in partial messages \
         (chunk stream {csid}, chunk at byte {offset})"
    )]
    TooMuchBuffered {
        limit: usize,
        csid: u32,
        offset: u64,
    },
}

/// Header state of one chunk stream (the values later chunk formats inherit).
#[derive(Debug, Default)]
struct ChunkStream {
    /// Absolute timestamp of the current (or last) message.
    timestamp: u32,
    /// Value of the last timestamp field: the delta of a type 1/2 header, the absolute
    /// timestamp of a type 0 header. A type-3 chunk starting a new message adds it.
    delta: u32,
    /// Whether the last type 0/1/2 header carried an extended timestamp; then every
    /// type-3 chunk of this stream carries one too, equal to `delta`.
    extended: bool,
    length: u32,
    type_id: u8,
    stream_id: u32,
    /// The message being reassembled, if its first chunk has arrived.
    partial: Option<BytesMut>,
}

/// What one parsed chunk header says, before any state is changed.
struct ChunkHeader {
    csid: u32,
    /// Bytes of basic + message header + extended timestamp.
    header_len: usize,
    /// Bytes of payload in this chunk.
    body_len: usize,
    /// Length of the message this chunk belongs to.
    length: u32,
    /// Bytes already held for this chunk stream's partial message: the message this
    /// chunk continues, or the one a new header drops.
    buffered: usize,
    /// A continuation chunk whose extended timestamp the peer left out.
    omitted_ext: bool,
    /// `Some` when this chunk starts a new message.
    start: Option<MessageStart>,
}

struct MessageStart {
    timestamp: u32,
    delta: u32,
    extended: bool,
    type_id: u8,
    stream_id: u32,
}

enum Parsed {
    /// The buffer must hold at least this many bytes to parse the header.
    NeedMore(usize),
    Header(ChunkHeader),
}

enum Step {
    NeedMore,
    Chunk,
    Message(RawMessage),
}

/// Reassembles messages from a byte stream. Applies Set Chunk Size (type 1) and
/// Abort (type 2) itself, the moment they are decoded, and still returns them.
///
/// Input is kept in one buffer and a chunk is parsed only when its header and body
/// are both present, so feeding a byte at a time costs a header parse per call at
/// most, never a rescan of buffered payload. After an error the decoder stays failed
/// and returns the same error again.
#[derive(Debug)]
pub struct ChunkDecoder {
    limits: ChunkLimits,
    chunk_size: u32,
    buf: BytesMut,
    streams: HashMap<u32, ChunkStream>,
    /// Bytes held in partial messages, across all chunk streams.
    partial_bytes: usize,
    /// `buf` must hold at least this many bytes before parsing can make progress.
    need: usize,
    consumed: u64,
    omitted_ext: u64,
    /// Partial messages dropped by a new message header on their chunk stream.
    interrupted: u64,
    failed: Option<ChunkError>,
}

impl ChunkDecoder {
    pub fn new(limits: ChunkLimits) -> Self {
        ChunkDecoder {
            limits,
            chunk_size: DEFAULT_CHUNK_SIZE,
            buf: BytesMut::new(),
            streams: HashMap::new(),
            partial_bytes: 0,
            need: 1,
            consumed: 0,
            omitted_ext: 0,
            interrupted: 0,
            failed: None,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Returns the next complete message, `Ok(None)` when more bytes are needed.
    /// Call it until `Ok(None)` after every [`push`](Self::push).
    pub fn poll_message(&mut self) -> Result<Option<RawMessage>, ChunkError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        loop {
            match self.step() {
                Ok(Step::NeedMore) => return Ok(None),
                Ok(Step::Chunk) => {}
                Ok(Step::Message(m)) => return Ok(Some(m)),
                Err(e) => {
                    self.failed = Some(e.clone());
                    return Err(e);
                }
            }
        }
    }

    /// The chunk size currently used for incoming chunks.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Total bytes of complete chunks decoded so far (what an Acknowledgement
    /// counts, minus the handshake).
    pub fn bytes_consumed(&self) -> u64 {
        self.consumed
    }

    /// Bytes pushed but not yet decoded (at most one incomplete chunk once
    /// [`poll_message`](Self::poll_message) has returned `Ok(None)`).
    pub fn buffered_len(&self) -> usize {
        self.buf.len()
    }

    /// How many type-3 continuation chunks omitted the extended timestamp their
    /// message's header announced (a peer quirk worth a log line, once: the sessions
    /// report it in their `Tolerated` counts).
    pub fn omitted_extended_timestamps(&self) -> u64 {
        self.omitted_ext
    }

    /// How many partial messages a new type 0/1/2 header on their chunk stream cut
    /// off and dropped (see "Decisions"; Abort is not counted, it is the spec's way).
    pub fn interrupted_messages(&self) -> u64 {
        self.interrupted
    }

    /// Most bytes held in partial messages across all chunk streams.
    fn max_buffered(&self) -> usize {
        (self.limits.max_message_size as usize).saturating_mul(2)
    }

    /// Parses the chunk header at the front of `buf` without changing any state.
    fn parse_header(&self) -> Result<Parsed, ChunkError> {
        let buf = &self.buf[..];
        let Some(&b0) = buf.first() else {
            return Ok(Parsed::NeedMore(1));
        };
        let fmt = b0 >> 6;
        let (csid, mut pos) = match b0 & 0x3F {
            0 => match buf.get(1) {
                Some(&b1) => (64 + u32::from(b1), 2),
                None => return Ok(Parsed::NeedMore(2)),
            },
            1 => match buf.get(1..3) {
                Some(b) => (64 + u32::from(b[0]) + 256 * u32::from(b[1]), 3),
                None => return Ok(Parsed::NeedMore(3)),
            },
            n => (u32::from(n), 1),
        };
        let message_header_len = [11, 7, 3, 0][usize::from(fmt)];
        let Some(mh) = buf.get(pos..pos + message_header_len) else {
            return Ok(Parsed::NeedMore(pos + message_header_len));
        };
        pos += message_header_len;

        let new_stream = ChunkStream::default();
        let prev = match self.streams.get(&csid) {
            Some(prev) => prev,
            None if fmt != 0 => {
                return Err(ChunkError::NoPreviousHeader {
                    fmt,
                    csid,
                    offset: self.consumed,
                })
            }
            None if self.streams.len() >= self.limits.max_chunk_streams => {
                return Err(ChunkError::TooManyChunkStreams {
                    limit: self.limits.max_chunk_streams,
                    csid,
                    offset: self.consumed,
                });
            }
            // Type 0 carries every field, so nothing is read from this.
            None => &new_stream,
        };

        // A type-3 chunk continuing a partial message.
        if let (3, Some(partial)) = (fmt, &prev.partial) {
            let mut omitted_ext = false;
            if prev.extended {
                let Some(ext) = buf.get(pos..pos + 4) else {
                    return Ok(Parsed::NeedMore(pos + 4));
                };
                if be32(ext) == prev.delta {
                    pos += 4;
                } else {
                    omitted_ext = true;
                }
            }
            let remaining = (prev.length as usize).saturating_sub(partial.len());
            return Ok(Parsed::Header(ChunkHeader {
                csid,
                header_len: pos,
                body_len: remaining.min(self.chunk_size as usize),
                length: prev.length,
                buffered: partial.len(),
                omitted_ext,
                start: None,
            }));
        }

        // The chunk starts a new message.
        let ts_field = if fmt < 3 { be24(&mh[0..3]) } else { prev.delta };
        let extended = if fmt < 3 {
            ts_field == EXTENDED
        } else {
            prev.extended
        };
        let (length, type_id, stream_id) = match fmt {
            0 => (be24(&mh[3..6]), mh[6], le32(&mh[7..11])),
            1 => (be24(&mh[3..6]), mh[6], prev.stream_id),
            _ => (prev.length, prev.type_id, prev.stream_id),
        };
        let delta = if extended {
            let Some(ext) = buf.get(pos..pos + 4) else {
                return Ok(Parsed::NeedMore(pos + 4));
            };
            pos += 4;
            be32(ext)
        } else {
            ts_field
        };
        let timestamp = if fmt == 0 {
            delta
        } else {
            prev.timestamp.wrapping_add(delta)
        };
        if length > self.limits.max_message_size {
            return Err(ChunkError::MessageTooLarge {
                len: length,
                limit: self.limits.max_message_size,
                csid,
                type_id,
                offset: self.consumed,
            });
        }
        Ok(Parsed::Header(ChunkHeader {
            csid,
            header_len: pos,
            body_len: (length as usize).min(self.chunk_size as usize),
            length,
            buffered: prev.partial.as_ref().map_or(0, BytesMut::len),
            omitted_ext: false,
            start: Some(MessageStart {
                timestamp,
                delta,
                extended,
                type_id,
                stream_id,
            }),
        }))
    }

    /// Decodes one chunk if it is all there.
    fn step(&mut self) -> Result<Step, ChunkError> {
        if self.buf.len() < self.need {
            return Ok(Step::NeedMore);
        }
        let h = match self.parse_header()? {
            Parsed::Header(h) => h,
            Parsed::NeedMore(need) => {
                self.need = need;
                return Ok(Step::NeedMore);
            }
        };
        let chunk_len = h.header_len + h.body_len;

        // A message not complete after this chunk stays buffered: check the aggregate
        // cap now, before waiting for the body, so the outcome does not depend on how
        // the input was split.
        let (have, dropped) = if h.start.is_some() {
            (0, h.buffered)
        } else {
            (h.buffered, 0)
        };
        let completes = have + h.body_len == h.length as usize;
        if !completes && self.partial_bytes - dropped + h.body_len > self.max_buffered() {
            return Err(ChunkError::TooMuchBuffered {
                limit: self.max_buffered(),
                csid: h.csid,
                offset: self.consumed,
            });
        }
        if self.buf.len() < chunk_len {
            self.need = chunk_len;
            return Ok(Step::NeedMore);
        }

        // The whole chunk is here: commit.
        let offset = self.consumed;
        self.need = 1;
        self.consumed += chunk_len as u64;
        self.omitted_ext += u64::from(h.omitted_ext);
        self.buf.advance(h.header_len);
        let stream = self.streams.entry(h.csid).or_default();
        if let Some(start) = h.start {
            // A new header while a message was partial drops that message.
            if let Some(p) = stream.partial.take() {
                self.partial_bytes -= p.len();
                self.interrupted += 1;
            }
            stream.timestamp = start.timestamp;
            stream.delta = start.delta;
            stream.extended = start.extended;
            stream.length = h.length;
            stream.type_id = start.type_id;
            stream.stream_id = start.stream_id;
        }
        let body = &self.buf[..h.body_len];
        if !completes {
            let partial = stream.partial.get_or_insert_with(|| {
                BytesMut::with_capacity((h.length as usize).min(INITIAL_RESERVE))
            });
            partial.extend_from_slice(body);
            self.partial_bytes += h.body_len;
            self.buf.advance(h.body_len);
            return Ok(Step::Chunk);
        }
        let payload = match stream.partial.take() {
            Some(mut partial) => {
                self.partial_bytes -= partial.len();
                partial.extend_from_slice(body);
                self.buf.advance(h.body_len);
                partial.freeze()
            }
            // The whole message is in this one chunk.
            None if h.body_len >= ZERO_COPY_MIN => self.buf.split_to(h.body_len).freeze(),
            None => {
                let payload = Bytes::copy_from_slice(body);
                self.buf.advance(h.body_len);
                payload
            }
        };
        let msg = RawMessage {
            csid: h.csid,
            timestamp: stream.timestamp,
            type_id: stream.type_id,
            stream_id: stream.stream_id,
            payload,
        };
        self.complete(msg, offset).map(Step::Message)
    }

    /// Applies Set Chunk Size and Abort as soon as they are decoded. `offset` is where
    /// the message's last chunk starts, for errors.
    fn complete(&mut self, msg: RawMessage, offset: u64) -> Result<RawMessage, ChunkError> {
        const SET_CHUNK_SIZE: u8 = 1;
        const ABORT: u8 = 2;
        if msg.type_id == SET_CHUNK_SIZE || msg.type_id == ABORT {
            let Some(v) = msg.payload.get(..4) else {
                return Err(ChunkError::BadControlMessage {
                    type_id: msg.type_id,
                    len: msg.payload.len(),
                    offset,
                });
            };
            let value = be32(v);
            if msg.type_id == SET_CHUNK_SIZE {
                if value == 0 || value > MAX_CHUNK_SIZE {
                    return Err(ChunkError::BadChunkSize {
                        size: value,
                        offset,
                    });
                }
                self.chunk_size = value;
            } else if let Some(s) = self.streams.get_mut(&value) {
                if let Some(p) = s.partial.take() {
                    self.partial_bytes -= p.len();
                }
            }
        }
        Ok(msg)
    }
}

fn be24(b: &[u8]) -> u32 {
    u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Bytes of the basic header for `csid` (1, 2 or 3).
fn basic_header_len(csid: u32) -> usize {
    match csid {
        0..=63 => 1,
        64..=319 => 2,
        _ => 3,
    }
}

fn put_basic_header(out: &mut BytesMut, fmt: u8, csid: u32) {
    let fmt = fmt << 6;
    match csid {
        0..=63 => out.put_u8(fmt | csid as u8),
        64..=319 => out.put_slice(&[fmt, (csid - 64) as u8]),
        _ => {
            let v = csid - 64;
            out.put_slice(&[fmt | 1, v as u8, (v >> 8) as u8]);
        }
    }
}

/// The csid and chunk size `encode_message` actually uses. Both are our own
/// values, never peer input, so out-of-range ones are bugs: caught in debug builds,
/// clamped in release builds rather than written as a corrupt stream.
fn sanitize(csid: u32, chunk_size: u32) -> (u32, usize) {
    debug_assert!(
        (MIN_CSID..=MAX_CSID).contains(&csid),
        "csid {csid} out of range"
    );
    debug_assert!(
        (1..=MAX_CHUNK_SIZE).contains(&chunk_size),
        "chunk size {chunk_size}"
    );
    (
        csid.clamp(MIN_CSID, MAX_CSID),
        chunk_size.clamp(1, MAX_CHUNK_SIZE) as usize,
    )
}

/// The exact number of bytes [`encode_message`] appends for these arguments.
pub fn encoded_len(payload_len: usize, chunk_size: u32, csid: u32, timestamp: u32) -> usize {
    let (csid, chunk_size) = sanitize(csid, chunk_size);
    let chunks = payload_len.div_ceil(chunk_size).max(1);
    let ext = if timestamp >= EXTENDED { 4 } else { 0 };
    // Type-0 message header (11 bytes) once, then a basic header (and the
    // extended timestamp) per chunk.
    11 + chunks * (basic_header_len(csid) + ext) + payload_len
}

/// Longest message payload the 24-bit message length field can carry.
pub const MAX_MESSAGE_LEN: usize = 0xFF_FFFF;

/// A payload that does not fit the 24-bit message length field.
#[derive(Debug, Error, PartialEq, Eq, Clone, Copy)]
#[error("message of {len} bytes exceeds the 24-bit RTMP length field ({MAX_MESSAGE_LEN} bytes)")]
pub struct MessageTooLong {
    pub len: usize,
}

/// [`try_encode_message`] for payloads known to fit (our own commands and control
/// messages, a peer's message being echoed): a payload over [`MAX_MESSAGE_LEN`] is
/// not written at all, so the output is never a corrupt chunk stream. Media from a
/// source other than an RTMP peer goes through [`try_encode_message`], whose error
/// the caller logs.
pub fn encode_message(
    out: &mut BytesMut,
    csid: u32,
    timestamp: u32,
    type_id: u8,
    stream_id: u32,
    payload: &[u8],
    chunk_size: u32,
) {
    let _ = try_encode_message(
        out, csid, timestamp, type_id, stream_id, payload, chunk_size,
    );
}

/// Appends `payload` as one message, chunked at `chunk_size`, to `out`. The first chunk
/// has a type-0 header, the rest type-3 (with the extended timestamp repeated when
/// `timestamp >= 0xFFFFFF`). Stateless, so the bytes can be shared by every connection
/// that uses the same chunk size.
///
/// A payload longer than [`MAX_MESSAGE_LEN`] (the message length field is 24 bits) is
/// refused with nothing written, in every build: writing its length modulo 2^24 would
/// desynchronise every player of the stream. `csid` must be in 2..=65599 and
/// `chunk_size` in 1..=0x7FFFFFFF; these are our own values, clamped (see
/// `sanitize`).
pub fn try_encode_message(
    out: &mut BytesMut,
    csid: u32,
    timestamp: u32,
    type_id: u8,
    stream_id: u32,
    payload: &[u8],
    chunk_size: u32,
) -> Result<(), MessageTooLong> {
    if payload.len() > MAX_MESSAGE_LEN {
        return Err(MessageTooLong { len: payload.len() });
    }
    out.reserve(encoded_len(payload.len(), chunk_size, csid, timestamp));
    let (csid, chunk_size) = sanitize(csid, chunk_size);
    let extended = timestamp >= EXTENDED;
    let ts_field = if extended { EXTENDED } else { timestamp };

    put_basic_header(out, 0, csid);
    out.put_slice(&ts_field.to_be_bytes()[1..]);
    out.put_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.put_u8(type_id);
    out.put_u32_le(stream_id);
    if extended {
        out.put_u32(timestamp);
    }
    let mut chunks = payload.chunks(chunk_size);
    if let Some(first) = chunks.next() {
        out.put_slice(first);
    }
    for chunk in chunks {
        put_basic_header(out, 3, csid);
        if extended {
            out.put_u32(timestamp);
        }
        out.put_slice(chunk);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_payload_over_24_bits_is_refused_and_nothing_written() {
        let mut out = BytesMut::from(&b"before"[..]);
        let big = vec![0u8; MAX_MESSAGE_LEN + 1];
        assert_eq!(
            try_encode_message(&mut out, 6, 0, 9, 1, &big, 4096),
            Err(MessageTooLong {
                len: MAX_MESSAGE_LEN + 1
            })
        );
        encode_message(&mut out, 6, 0, 9, 1, &big, 4096);
        assert_eq!(&out[..], b"before");
        // The largest payload that fits is written and decodes back whole.
        let most = vec![7u8; MAX_MESSAGE_LEN];
        let limits = ChunkLimits {
            max_message_size: MAX_MESSAGE_LEN as u32,
            ..ChunkLimits::default()
        };
        let mut out = BytesMut::new();
        try_encode_message(&mut out, 6, 0, 9, 1, &most, DEFAULT_CHUNK_SIZE).unwrap();
        let got = decode_with(limits, &out).unwrap();
        assert_eq!(got[0].payload.len(), MAX_MESSAGE_LEN);
    }

    fn decode_with(limits: ChunkLimits, input: &[u8]) -> Result<Vec<RawMessage>, ChunkError> {
        let mut d = ChunkDecoder::new(limits);
        d.push(input);
        let mut out = Vec::new();
        while let Some(m) = d.poll_message()? {
            out.push(m);
        }
        assert_eq!(d.buffered_len(), 0, "input left over");
        Ok(out)
    }

    fn decode(input: &[u8]) -> Vec<RawMessage> {
        decode_with(ChunkLimits::default(), input).unwrap()
    }

    /// Feeds `input` in pieces whose sizes cycle through `splits`.
    fn decode_split(input: &[u8], splits: &[usize]) -> Result<Vec<RawMessage>, ChunkError> {
        let mut d = ChunkDecoder::new(ChunkLimits::default());
        let mut out = Vec::new();
        let mut rest = input;
        let mut i = 0;
        while !rest.is_empty() {
            let n = splits[i % splits.len()].clamp(1, rest.len());
            i += 1;
            d.push(&rest[..n]);
            rest = &rest[n..];
            while let Some(m) = d.poll_message()? {
                out.push(m);
            }
        }
        assert_eq!(d.bytes_consumed(), input.len() as u64);
        Ok(out)
    }

    fn msg(csid: u32, timestamp: u32, type_id: u8, stream_id: u32, payload: &[u8]) -> RawMessage {
        RawMessage {
            csid,
            timestamp,
            type_id,
            stream_id,
            payload: Bytes::copy_from_slice(payload),
        }
    }

    fn encode(m: &RawMessage, chunk_size: u32) -> BytesMut {
        let mut out = BytesMut::new();
        encode_message(
            &mut out,
            m.csid,
            m.timestamp,
            m.type_id,
            m.stream_id,
            &m.payload,
            chunk_size,
        );
        out
    }

    fn payload(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + 3) as u8).collect()
    }

    // Spec 5.3.2.1, example 1: four audio messages of 32 bytes on one chunk stream,
    // sent with a type-0, a type-2 and two type-3 headers.
    #[test]
    fn formats_0_2_3_spec_example_1() {
        let body = payload(32);
        let mut input = vec![
            0x03, 0x00, 0x03, 0xE8, 0x00, 0x00, 0x20, 0x08, 0x39, 0x30, 0, 0,
        ];
        input.extend_from_slice(&body);
        input.extend_from_slice(&[0x83, 0x00, 0x00, 0x21]); // type 2, delta 33
        input.extend_from_slice(&body);
        input.push(0xC3); // type 3: same delta
        input.extend_from_slice(&body);
        input.push(0xC3);
        input.extend_from_slice(&body);
        let got = decode(&input);
        let ts: Vec<u32> = got.iter().map(|m| m.timestamp).collect();
        assert_eq!(ts, [1000, 1033, 1066, 1099]);
        for m in &got {
            assert_eq!((m.csid, m.type_id, m.stream_id), (3, 8, 12345));
            assert_eq!(&m.payload[..], &body[..]);
        }
    }

    // Spec 5.3.2.2, example 2: a 307-byte message at chunk size 128 (type 0 + 2 x type 3).
    #[test]
    fn message_spanning_chunks_spec_example_2() {
        let body = payload(307);
        let mut input = vec![
            0x04, 0x00, 0x03, 0xE8, 0x00, 0x01, 0x33, 0x09, 0x39, 0x30, 0, 0,
        ];
        input.extend_from_slice(&body[..128]);
        input.push(0xC4);
        input.extend_from_slice(&body[128..256]);
        input.push(0xC4);
        input.extend_from_slice(&body[256..]);
        assert_eq!(&input[..], &encode(&msg(4, 1000, 9, 12345, &body), 128)[..]);
        assert_eq!(decode(&input), [msg(4, 1000, 9, 12345, &body)]);
    }

    #[test]
    fn format_1_keeps_stream_id_and_changes_length_and_type() {
        let mut input = encode(&msg(5, 100, 18, 7, b"abc"), 128).to_vec();
        input.extend_from_slice(&[0x45, 0x00, 0x00, 0x28, 0x00, 0x00, 0x02, 0x09]);
        input.extend_from_slice(b"xy");
        // Type 2 then keeps length 2 and type 9.
        input.extend_from_slice(&[0x85, 0x00, 0x00, 0x01]);
        input.extend_from_slice(b"zw");
        assert_eq!(
            decode(&input),
            [
                msg(5, 100, 18, 7, b"abc"),
                msg(5, 140, 9, 7, b"xy"),
                msg(5, 141, 9, 7, b"zw")
            ]
        );
    }

    // A type-3 header right after a type-0 one reuses the type-0 timestamp as the
    // delta (ffmpeg, librtmp and SRS agree).
    #[test]
    fn format_3_new_message_after_format_0() {
        let mut input = encode(&msg(3, 40, 8, 1, b"a"), 128).to_vec();
        input.extend_from_slice(&[0xC3, b'b']);
        assert_eq!(
            decode(&input),
            [msg(3, 40, 8, 1, b"a"), msg(3, 80, 8, 1, b"b")]
        );
    }

    #[test]
    fn extended_timestamp_on_format_0_and_every_continuation() {
        let body = payload(300);
        let ts = 0x0100_0000u32;
        let mut input = vec![0x06, 0xFF, 0xFF, 0xFF, 0x00, 0x01, 0x2C, 0x09, 1, 0, 0, 0];
        input.extend_from_slice(&ts.to_be_bytes());
        input.extend_from_slice(&body[..128]);
        input.push(0xC6);
        input.extend_from_slice(&ts.to_be_bytes());
        input.extend_from_slice(&body[128..256]);
        input.push(0xC6);
        input.extend_from_slice(&ts.to_be_bytes());
        input.extend_from_slice(&body[256..]);
        let expected = msg(6, ts, 9, 1, &body);
        assert_eq!(&encode(&expected, 128)[..], &input[..]);
        assert_eq!(encoded_len(300, 128, 6, ts), input.len());
        let mut d = ChunkDecoder::new(ChunkLimits::default());
        d.push(&input);
        assert_eq!(d.poll_message(), Ok(Some(expected)));
        assert_eq!(d.omitted_extended_timestamps(), 0);
        assert_eq!(d.bytes_consumed(), input.len() as u64);
    }

    // Some encoders leave the extended timestamp out of continuation chunks.
    #[test]
    fn extended_timestamp_omitted_on_continuations_is_tolerated() {
        let body = payload(300);
        let ts = 0x0100_0000u32;
        let mut input = vec![0x06, 0xFF, 0xFF, 0xFF, 0x00, 0x01, 0x2C, 0x09, 1, 0, 0, 0];
        input.extend_from_slice(&ts.to_be_bytes());
        input.extend_from_slice(&body[..128]);
        input.push(0xC6);
        input.extend_from_slice(&body[128..256]);
        input.push(0xC6);
        input.extend_from_slice(&body[256..]);
        // A following message, so the decoder can look 4 bytes past the last chunk.
        input.extend_from_slice(&encode(&msg(2, 0, 3, 0, &[0, 0, 0, 1]), 128));
        let mut d = ChunkDecoder::new(ChunkLimits::default());
        d.push(&input);
        assert_eq!(d.poll_message(), Ok(Some(msg(6, ts, 9, 1, &body))));
        assert_eq!(d.poll_message(), Ok(Some(msg(2, 0, 3, 0, &[0, 0, 0, 1]))));
        assert_eq!(d.omitted_extended_timestamps(), 2);
    }

    #[test]
    fn extended_delta_on_format_1_and_2_and_format_3_new_message() {
        let mut input = encode(&msg(4, 0x00FF_FFF0, 8, 1, b"a"), 128).to_vec();
        // Type 1 with an extended delta of 0x01000000.
        input.extend_from_slice(&[0x44, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x01, 0x08]);
        input.extend_from_slice(&0x0100_0000u32.to_be_bytes());
        input.push(b'b');
        // Type 3 starting a new message: the extended delta is present again.
        input.push(0xC4);
        input.extend_from_slice(&0x0100_0000u32.to_be_bytes());
        input.push(b'c');
        // Type 2 with an extended delta that wraps the timestamp past 2^32.
        input.extend_from_slice(&[0x84, 0xFF, 0xFF, 0xFF]);
        input.extend_from_slice(&0xFE00_0020u32.to_be_bytes());
        input.push(b'd');
        // Type 2 with a small delta: no extended field.
        input.extend_from_slice(&[0x84, 0x00, 0x00, 0x05, b'e']);
        assert_eq!(
            decode(&input),
            [
                msg(4, 0x00FF_FFF0, 8, 1, b"a"),
                msg(4, 0x01FF_FFF0, 8, 1, b"b"),
                msg(4, 0x02FF_FFF0, 8, 1, b"c"),
                msg(4, 0x0100_0010, 8, 1, b"d"),
                msg(4, 0x0100_0015, 8, 1, b"e"),
            ]
        );
    }

    #[test]
    fn timestamp_wraps() {
        let mut input = encode(&msg(4, 0xFFFF_FFF0, 8, 1, b"a"), 128).to_vec();
        input.extend_from_slice(&[0x84, 0x00, 0x00, 0x20, b'b']);
        assert_eq!(decode(&input)[1].timestamp, 0x10);
    }

    #[test]
    fn interleaved_chunk_streams() {
        let video = payload(200);
        let v = encode(&msg(6, 1000, 9, 1, &video), 128);
        let a = encode(&msg(4, 1010, 8, 1, b"audio"), 128);
        // Video chunk 1 (12 + 128 bytes), the audio message, video chunk 2.
        let mut input = v[..140].to_vec();
        input.extend_from_slice(&a);
        input.extend_from_slice(&v[140..]);
        assert_eq!(
            decode(&input),
            [msg(4, 1010, 8, 1, b"audio"), msg(6, 1000, 9, 1, &video)]
        );
    }

    #[test]
    fn set_chunk_size_applies_to_the_next_chunk() {
        let big = payload(3000);
        let mut input = encode(&msg(2, 0, 1, 0, &4096u32.to_be_bytes()), 128).to_vec();
        input.extend_from_slice(&encode(&msg(6, 0, 9, 1, &big), 4096));
        assert_eq!(input.len(), 16 + 12 + 3000);
        let mut d = ChunkDecoder::new(ChunkLimits::default());
        d.push(&input);
        assert_eq!(d.chunk_size(), DEFAULT_CHUNK_SIZE);
        assert_eq!(d.poll_message().unwrap().unwrap().type_id, 1);
        assert_eq!(d.chunk_size(), 4096);
        assert_eq!(d.poll_message(), Ok(Some(msg(6, 0, 9, 1, &big))));
        assert_eq!(d.poll_message(), Ok(None));
    }

    #[test]
    fn set_chunk_size_on_any_chunk_stream() {
        let mut input = encode(&msg(3, 0, 1, 0, &200u32.to_be_bytes()), 128).to_vec();
        input.extend_from_slice(&encode(&msg(6, 0, 9, 1, &payload(150)), 200));
        assert_eq!(decode(&input)[1].payload.len(), 150);
    }

    #[test]
    fn abort_drops_the_partial_message() {
        let v = encode(&msg(6, 0, 9, 1, &payload(200)), 128);
        let mut input = v[..140].to_vec();
        input.extend_from_slice(&encode(&msg(2, 0, 2, 0, &6u32.to_be_bytes()), 128));
        // A type-3 chunk now starts a new 200-byte message with the old header.
        input.push(0xC6);
        input.extend_from_slice(&payload(128));
        input.push(0xC6);
        input.extend_from_slice(&payload(72));
        let got = decode(&input);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], msg(2, 0, 2, 0, &[0, 0, 0, 6]));
        assert_eq!((got[1].csid, got[1].payload.len()), (6, 200));
        let mut expected = payload(128);
        expected.extend_from_slice(&payload(72));
        assert_eq!(&got[1].payload[..], &expected[..]);
    }

    #[test]
    fn a_new_header_drops_the_partial_message_and_counts_it() {
        // 140 of 200 bytes, then a whole new type-0 message on the same chunk stream.
        let mut input = encode(&msg(6, 0, 9, 1, &payload(200)), 128)[..140].to_vec();
        input.extend_from_slice(&encode(&msg(6, 40, 9, 1, &payload(50)), 128));
        let mut d = ChunkDecoder::new(ChunkLimits::default());
        d.push(&input);
        assert_eq!(d.poll_message(), Ok(Some(msg(6, 40, 9, 1, &payload(50)))));
        assert_eq!(d.poll_message(), Ok(None));
        assert_eq!(d.interrupted_messages(), 1);
        // Abort is the spec's way to drop a partial message: not counted.
        let mut d = ChunkDecoder::new(ChunkLimits::default());
        let mut input = encode(&msg(6, 0, 9, 1, &payload(200)), 128)[..140].to_vec();
        input.extend_from_slice(&encode(&msg(2, 0, 2, 0, &6u32.to_be_bytes()), 128));
        d.push(&input);
        assert!(d.poll_message().unwrap().is_some());
        assert_eq!(d.interrupted_messages(), 0);
    }

    #[test]
    fn abort_of_an_unknown_chunk_stream_is_ignored() {
        let input = encode(&msg(2, 0, 2, 0, &[0, 0, 1, 0]), 128);
        assert_eq!(decode(&input).len(), 1);
    }

    #[test]
    fn basic_header_forms() {
        // csid 100: 2-byte form; csid 400: 3-byte form (400 - 64 = 0x0150, little end first).
        let m = encode(&msg(100, 0, 8, 1, b"x"), 128);
        assert_eq!(&m[..2], &[0x00, 36]);
        let m = encode(&msg(400, 0, 8, 1, &payload(130)), 128);
        assert_eq!(&m[..3], &[0x01, 0x50, 0x01]);
        assert_eq!(&m[3 + 11 + 128..3 + 11 + 128 + 3], &[0xC1, 0x50, 0x01]);
        assert_eq!(decode(&m), [msg(400, 0, 8, 1, &payload(130))]);
        for csid in [2, 3, 63, 64, 65, 319, 320, 321, 400, 65599] {
            let m = msg(csid, 5, 8, 1, &payload(300));
            let bytes = encode(&m, 128);
            assert_eq!(bytes.len(), encoded_len(300, 128, csid, 5), "csid {csid}");
            assert_eq!(decode(&bytes), [m], "csid {csid}");
        }
    }

    #[test]
    fn zero_length_messages() {
        let mut input = encode(&msg(3, 7, 20, 0, b""), 128).to_vec();
        assert_eq!(input.len(), 12);
        assert_eq!(encoded_len(0, 128, 3, 7), 12);
        input.push(0xC3); // Type 3 new message: again empty, timestamp + 7.
        assert_eq!(
            decode(&input),
            [msg(3, 7, 20, 0, b""), msg(3, 14, 20, 0, b"")]
        );
    }

    #[test]
    fn message_too_large() {
        let limits = ChunkLimits {
            max_message_size: 1000,
            max_chunk_streams: 8,
        };
        assert_eq!(
            decode_with(limits, &encode(&msg(6, 0, 9, 1, &payload(1000)), 128))
                .unwrap()
                .len(),
            1
        );
        // The header alone is enough to refuse it.
        let header = &encode(&msg(6, 0, 9, 1, &payload(1001)), 128)[..12];
        assert_eq!(
            decode_with(limits, header),
            Err(ChunkError::MessageTooLarge {
                len: 1001,
                limit: 1000,
                csid: 6,
                type_id: 9,
                offset: 0
            })
        );
        // Type 1 headers are checked too.
        let mut input = encode(&msg(6, 0, 9, 1, b"a"), 128).to_vec();
        input.extend_from_slice(&[0x46, 0, 0, 0, 0xFF, 0xFF, 0xFF, 9]);
        assert_eq!(
            decode_with(limits, &input),
            Err(ChunkError::MessageTooLarge {
                len: 0xFF_FFFF,
                limit: 1000,
                csid: 6,
                type_id: 9,
                offset: 13
            })
        );
    }

    #[test]
    fn too_many_chunk_streams() {
        let limits = ChunkLimits {
            max_message_size: 1000,
            max_chunk_streams: 2,
        };
        let mut input = encode(&msg(3, 0, 8, 1, b"a"), 128).to_vec();
        input.extend_from_slice(&encode(&msg(4, 0, 8, 1, b"b"), 128));
        input.extend_from_slice(&encode(&msg(3, 0, 8, 1, b"c"), 128));
        let mut d = ChunkDecoder::new(limits);
        d.push(&input);
        d.push(&encode(&msg(5, 0, 8, 1, b"d"), 128));
        for _ in 0..3 {
            assert!(d.poll_message().unwrap().is_some());
        }
        let too_many = ChunkError::TooManyChunkStreams {
            limit: 2,
            csid: 5,
            offset: 3 * 13,
        };
        assert_eq!(d.poll_message(), Err(too_many.clone()));
        // Errors are sticky.
        assert_eq!(d.poll_message(), Err(too_many.clone()));
        assert_eq!(
            too_many.to_string(),
            "more than 2 chunk streams (a new one, 5, in the chunk at byte 39)"
        );
    }

    #[test]
    fn too_much_buffered_in_partial_messages() {
        // Cap is 2 x 100 bytes; each stream holds a 50-byte partial of a 100-byte message.
        let limits = ChunkLimits {
            max_message_size: 100,
            max_chunk_streams: 8,
        };
        let mut input = encode(&msg(2, 0, 1, 0, &50u32.to_be_bytes()), 128).to_vec();
        for csid in 3..8 {
            input.extend_from_slice(&encode(&msg(csid, 0, 9, 1, &payload(100)), 50)[..12 + 50]);
        }
        let mut d = ChunkDecoder::new(limits);
        d.push(&input);
        assert!(d.poll_message().unwrap().is_some());
        assert_eq!(
            d.poll_message(),
            Err(ChunkError::TooMuchBuffered {
                limit: 200,
                csid: 7,
                offset: 16 + 4 * 62
            })
        );
        assert_eq!(d.bytes_consumed(), 16 + 4 * 62);
    }

    #[test]
    fn bad_chunk_sizes() {
        for size in [0, 0x8000_0000, 0xFFFF_FFFF] {
            let input = encode(&msg(2, 0, 1, 0, &u32::to_be_bytes(size)), 128);
            assert_eq!(
                decode_with(ChunkLimits::default(), &input),
                Err(ChunkError::BadChunkSize { size, offset: 0 })
            );
        }
        let input = encode(&msg(2, 0, 1, 0, &[0, 1]), 128);
        assert_eq!(
            decode_with(ChunkLimits::default(), &input),
            Err(ChunkError::BadControlMessage {
                type_id: 1,
                len: 2,
                offset: 0
            })
        );
        let input = encode(&msg(2, 0, 1, 0, &MAX_CHUNK_SIZE.to_be_bytes()), 128);
        assert_eq!(decode(&input).len(), 1);
    }

    #[test]
    fn no_previous_header() {
        for (fmt, first) in [(1, 0x43), (2, 0x83), (3, 0xC3)] {
            assert_eq!(
                decode_with(ChunkLimits::default(), &[first, 0, 0, 0, 0, 0, 0, 0]),
                Err(ChunkError::NoPreviousHeader {
                    fmt,
                    csid: 3,
                    offset: 0
                })
            );
        }
    }

    /// A publisher opening in the shape ffmpeg sends it (hand-built; chunk stream ids
    /// as ffmpeg uses them: 3 for commands, 2 for control, 4/6 for media,
    /// 8 for the stream's data and commands).
    fn publisher_opening() -> Vec<u8> {
        let mut s = Vec::new();
        // connect (a 200-byte command) at the default chunk size of 128: type 0 + type 3.
        s.extend_from_slice(&encode(&msg(3, 0, 20, 0, &payload(200)), 128));
        // Window Acknowledgement Size 2500000, then Set Chunk Size 4096.
        s.extend_from_slice(&encode(&msg(2, 0, 5, 0, &2_500_000u32.to_be_bytes()), 128));
        s.extend_from_slice(&encode(&msg(2, 0, 1, 0, &4096u32.to_be_bytes()), 128));
        // releaseStream, FCPublish and createStream reuse csid 3's stream id with type 1.
        for len in [40u8, 36, 25] {
            s.extend_from_slice(&[0x43, 0, 0, 0, 0, 0, len, 20]);
            s.extend_from_slice(&payload(len.into()));
        }
        // publish on csid 8, message stream 1.
        s.extend_from_slice(&encode(&msg(8, 0, 20, 1, &payload(34)), 4096));
        // @setDataFrame on csid 8: type 1 header (stream id inherited).
        s.extend_from_slice(&[0x48, 0, 0, 0, 0, 1, 0x80, 18]);
        s.extend_from_slice(&payload(384));
        // AVC sequence header (video csid 6), AAC sequence header (audio csid 4).
        s.extend_from_slice(&encode(&msg(6, 0, 9, 1, &payload(48)), 4096));
        s.extend_from_slice(&encode(&msg(4, 0, 8, 1, &payload(4)), 4096));
        // A 10000-byte keyframe at ts 0, then audio at 23 ms, then video at 33 ms
        // with a type-1 header (new length).
        s.extend_from_slice(&encode(&msg(6, 0, 9, 1, &payload(10000)), 4096));
        s.extend_from_slice(&[0x84, 0, 0, 23]);
        s.extend_from_slice(&payload(4));
        s.extend_from_slice(&[0x46, 0, 0, 33, 0, 0x03, 0xE8, 9]);
        s.extend_from_slice(&payload(1000));
        s
    }

    #[test]
    fn ffmpeg_shaped_publisher_opening() {
        let got = decode(&publisher_opening());
        let summary: Vec<(u32, u32, u8, u32, usize)> = got
            .iter()
            .map(|m| (m.csid, m.timestamp, m.type_id, m.stream_id, m.payload.len()))
            .collect();
        assert_eq!(
            summary,
            [
                (3, 0, 20, 0, 200),
                (2, 0, 5, 0, 4),
                (2, 0, 1, 0, 4),
                (3, 0, 20, 0, 40),
                (3, 0, 20, 0, 36),
                (3, 0, 20, 0, 25),
                (8, 0, 20, 1, 34),
                (8, 0, 18, 1, 384),
                (6, 0, 9, 1, 48),
                (4, 0, 8, 1, 4),
                (6, 0, 9, 1, 10000),
                (4, 23, 8, 1, 4),
                (6, 33, 9, 1, 1000),
            ]
        );
    }

    #[test]
    fn byte_at_a_time_gives_the_same_messages() {
        let mut input = publisher_opening();
        input.extend_from_slice(&encode(&msg(6, 0x0100_0000, 9, 1, &payload(9000)), 4096));
        let whole = decode(&input);
        assert_eq!(decode_split(&input, &[1]).unwrap(), whole);
        assert_eq!(
            decode_split(&input, &[3, 1, 4, 1, 5, 9, 2, 6]).unwrap(),
            whole
        );
    }

    #[test]
    fn round_trip_at_common_chunk_sizes() {
        for chunk_size in [128u32, 4096, 60000] {
            let messages = [
                msg(3, 0, 20, 0, &payload(300)),
                msg(6, 0x00FF_FFFE, 9, 1, &payload(150_000)),
                msg(6, 0x00FF_FFFF, 9, 1, &payload(70_000)),
                msg(4, 0xFFFF_FFFF, 8, 1, &payload(1)),
                msg(5, 12, 18, 1, b""),
                msg(65599, 1, 9, 0xFFFF_FFFF, &payload(4096)),
            ];
            let mut input = encode(&msg(2, 0, 1, 0, &chunk_size.to_be_bytes()), 128);
            for m in &messages {
                let before = input.len();
                let len = encoded_len(m.payload.len(), chunk_size, m.csid, m.timestamp);
                encode_message(
                    &mut input,
                    m.csid,
                    m.timestamp,
                    m.type_id,
                    m.stream_id,
                    &m.payload,
                    chunk_size,
                );
                assert_eq!(input.len() - before, len);
            }
            let got = decode(&input);
            assert_eq!(got.len(), messages.len() + 1);
            assert_eq!(&got[1..], &messages[..], "chunk size {chunk_size}");
            assert_eq!(decode_split(&input, &[1000, 1, 7]).unwrap(), got);
        }
    }

    /// A header-compressing encoder in the manner of ffmpeg's, for the property test:
    /// type 1/2/3 headers whenever the previous header on the chunk stream allows.
    #[derive(Default)]
    struct CompressingEncoder {
        prev: HashMap<u32, (u32, u32, usize, u8, u32, bool)>,
        omit_continuation_ext: bool,
    }

    impl CompressingEncoder {
        /// Writes the first chunk's header; returns the extended value continuation
        /// chunks repeat.
        fn header(&mut self, out: &mut Vec<u8>, m: &RawMessage) -> Option<u32> {
            let len = m.payload.len();
            let (fmt, delta, ext) = match self.prev.get(&m.csid) {
                Some(&(ts, pdelta, plen, ptype, psid, pext))
                    if psid == m.stream_id && m.timestamp >= ts =>
                {
                    let d = m.timestamp - ts;
                    if plen != len || ptype != m.type_id {
                        (1, d, d >= EXTENDED)
                    } else if d != pdelta {
                        (2, d, d >= EXTENDED)
                    } else {
                        (3, d, pext)
                    }
                }
                _ => (0, m.timestamp, m.timestamp >= EXTENDED),
            };
            let mut b = BytesMut::new();
            put_basic_header(&mut b, fmt, m.csid);
            out.extend_from_slice(&b);
            if fmt < 3 {
                out.extend_from_slice(&(if ext { EXTENDED } else { delta }).to_be_bytes()[1..]);
            }
            if fmt < 2 {
                out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
                out.push(m.type_id);
            }
            if fmt == 0 {
                out.extend_from_slice(&m.stream_id.to_le_bytes());
            }
            if ext {
                out.extend_from_slice(&delta.to_be_bytes());
            }
            self.prev.insert(
                m.csid,
                (m.timestamp, delta, len, m.type_id, m.stream_id, ext),
            );
            ext.then_some(delta)
        }

        fn continuation(&self, out: &mut Vec<u8>, csid: u32, ext: Option<u32>) {
            let mut b = BytesMut::new();
            put_basic_header(&mut b, 3, csid);
            out.extend_from_slice(&b);
            if let (Some(v), false) = (ext, self.omit_continuation_ext) {
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
    }

    /// Interleaves the chunks of `messages` (in the order `choices` picks), with Set
    /// Chunk Size messages on csid 2 at random points. Returns the bytes, the
    /// messages in the order they complete and the final chunk size.
    fn interleave(
        messages: &[RawMessage],
        choices: &[u32],
        chunk_sizes: &[u32],
        omit_ext: bool,
    ) -> (Vec<u8>, Vec<RawMessage>, u32) {
        struct InFlight {
            m: RawMessage,
            sent: usize,
            ext: Option<u32>,
        }
        let mut enc = CompressingEncoder {
            omit_continuation_ext: omit_ext,
            ..Default::default()
        };
        let mut out = Vec::new();
        let mut done = Vec::new();
        let mut chunk_size = DEFAULT_CHUNK_SIZE as usize;
        let mut queue = messages
            .iter()
            .cloned()
            .collect::<std::collections::VecDeque<_>>();
        let mut flying: Vec<InFlight> = Vec::new();
        let mut sizes = chunk_sizes.iter();
        let mut step = 0;
        while !queue.is_empty() || !flying.is_empty() {
            let choice = choices[step % choices.len()];
            step += 1;
            if choice % 17 == 16 {
                if let Some(&size) = sizes.next() {
                    let m = msg(2, 0, 1, 0, &size.to_be_bytes());
                    let ext = enc.header(&mut out, &m);
                    let mut sent = 0;
                    loop {
                        let n = (4 - sent).min(chunk_size);
                        out.extend_from_slice(&m.payload[sent..sent + n]);
                        sent += n;
                        if sent == 4 {
                            break;
                        }
                        enc.continuation(&mut out, 2, ext);
                    }
                    chunk_size = size as usize;
                    done.push(m);
                    continue;
                }
            }
            let can_start = queue
                .front()
                .is_some_and(|m| flying.iter().all(|f| f.m.csid != m.csid));
            let options = flying.len() + usize::from(can_start);
            let pick = choice as usize % options;
            if pick == flying.len() {
                let m = queue.pop_front().unwrap();
                let ext = enc.header(&mut out, &m);
                flying.push(InFlight { m, sent: 0, ext });
            } else {
                let f = &flying[pick];
                enc.continuation(&mut out, f.m.csid, f.ext);
            }
            let f = &mut flying[pick];
            let n = (f.m.payload.len() - f.sent).min(chunk_size);
            out.extend_from_slice(&f.m.payload[f.sent..f.sent + n]);
            f.sent += n;
            if f.sent == f.m.payload.len() {
                done.push(flying.remove(pick).m);
            }
        }
        (out, done, chunk_size as u32)
    }

    fn arb_message() -> impl Strategy<Value = RawMessage> {
        (
            prop_oneof![3u32..=10, 3u32..=65599],
            prop_oneof![
                Just(0u32),
                Just(33),
                Just(0x00FF_FFFE),
                Just(0x00FF_FFFF),
                Just(0x0100_0000),
                any::<u32>()
            ],
            prop_oneof![Just(8u8), Just(9), Just(18), Just(20), 3u8..=255],
            prop_oneof![Just(0u32), Just(1), any::<u32>()],
            prop_oneof![
                prop::collection::vec(any::<u8>(), 0..300),
                prop::collection::vec(any::<u8>(), 0..20_000)
            ],
        )
            .prop_map(|(csid, ts, type_id, stream_id, payload)| {
                msg(csid, ts, type_id, stream_id, &payload)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// encode_message at any chunk size, fed in random pieces, decodes to the same
        /// messages.
        #[test]
        fn encode_decode_round_trip(
            messages in prop::collection::vec(arb_message(), 1..8),
            chunk_size in 1u32..=70_000,
            splits in prop::collection::vec(1usize..5000, 1..8),
        ) {
            let mut input = encode(&msg(2, 0, 1, 0, &chunk_size.to_be_bytes()), 128);
            for m in &messages {
                input.extend_from_slice(&encode(m, chunk_size));
            }
            let got = decode_split(&input, &splits).unwrap();
            prop_assert_eq!(got.len(), messages.len() + 1);
            prop_assert_eq!(&got[1..], &messages[..]);
        }

        /// Header compression (types 1-3), interleaving, chunk size changes and the
        /// omitted-extended-timestamp quirk, fed in random pieces.
        #[test]
        fn interleaved_compressed_streams_decode(
            messages in prop::collection::vec(arb_message(), 1..12),
            choices in prop::collection::vec(any::<u32>(), 1..64),
            chunk_sizes in prop::collection::vec(prop_oneof![1u32..=16, 1u32..=70_000], 0..4),
            omit_ext in any::<bool>(),
            splits in prop::collection::vec(1usize..3000, 1..8),
        ) {
            // Timestamps per chunk stream go up by the generated amount, so deltas
            // repeat and types 2 and 3 occur.
            let mut last: HashMap<u32, u32> = HashMap::new();
            let messages: Vec<RawMessage> = messages
                .into_iter()
                .map(|mut m| {
                    let t = last.entry(m.csid).or_insert(0);
                    *t = t.wrapping_add(m.timestamp);
                    m.timestamp = *t;
                    m
                })
                .collect();
            let (mut input, mut expected, chunk_size) = interleave(&messages, &choices, &chunk_sizes, omit_ext);
            // A last message so the decoder can always look 4 bytes ahead.
            let sentinel = msg(2, 0, 3, 0, &[0, 0, 0, 0]);
            input.extend_from_slice(&encode(&sentinel, chunk_size));
            expected.push(sentinel);
            prop_assert_eq!(decode_split(&input, &splits).unwrap(), expected);
        }
    }
}
