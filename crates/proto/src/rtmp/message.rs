//! Typed RTMP messages (protocol control, user control, commands, data, media).
//! INTERFACE STUB: the implementation is being written; signatures are fixed.

use bytes::{Bytes, BytesMut};
use thiserror::Error;

use super::chunk::RawMessage;
use crate::amf0::{Amf0Error, Amf0Value};

/// Message type ids (spec 5.4 and 7.1).
pub mod type_id {
    pub const SET_CHUNK_SIZE: u8 = 1;
    pub const ABORT: u8 = 2;
    pub const ACKNOWLEDGEMENT: u8 = 3;
    pub const USER_CONTROL: u8 = 4;
    pub const WINDOW_ACK_SIZE: u8 = 5;
    pub const SET_PEER_BANDWIDTH: u8 = 6;
    pub const AUDIO: u8 = 8;
    pub const VIDEO: u8 = 9;
    pub const DATA_AMF3: u8 = 15;
    pub const SHARED_OBJECT_AMF3: u8 = 16;
    pub const COMMAND_AMF3: u8 = 17;
    pub const DATA_AMF0: u8 = 18;
    pub const SHARED_OBJECT_AMF0: u8 = 19;
    pub const COMMAND_AMF0: u8 = 20;
    pub const AGGREGATE: u8 = 22;
}

/// Chunk stream ids we use when sending.
pub mod csid {
    pub const PROTOCOL_CONTROL: u32 = 2;
    pub const COMMAND: u32 = 3;
    pub const AUDIO: u32 = 4;
    pub const DATA: u32 = 5;
    pub const VIDEO: u32 = 6;
}

/// User control events (spec 7.1.7).
#[derive(Debug, Clone, PartialEq)]
pub enum UserControl {
    StreamBegin(u32),
    StreamEof(u32),
    StreamDry(u32),
    SetBufferLength { stream_id: u32, buffer_ms: u32 },
    StreamIsRecorded(u32),
    PingRequest(u32),
    PingResponse(u32),
    Other { event_type: u16, data: Bytes },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    SetChunkSize(u32),
    Abort { csid: u32 },
    Acknowledgement { sequence: u32 },
    UserControl(UserControl),
    WindowAckSize(u32),
    SetPeerBandwidth { size: u32, limit_type: u8 },
    /// FLV audio tag body, as received.
    Audio { timestamp: u32, stream_id: u32, payload: Bytes },
    /// FLV video tag body, as received.
    Video { timestamp: u32, stream_id: u32, payload: Bytes },
    /// AMF0 (or AMF3-wrapped, first byte skipped) data message such as @setDataFrame.
    /// `values` are decoded; `payload` is the original AMF0 bytes.
    Data { timestamp: u32, stream_id: u32, values: Vec<Amf0Value>, payload: Bytes },
    /// AMF0 command (or AMF3 command, whose first byte is skipped).
    Command {
        stream_id: u32,
        name: String,
        transaction_id: f64,
        command_object: Amf0Value,
        args: Vec<Amf0Value>,
    },
    /// Anything else (shared objects, aggregate, unknown): passed through untyped.
    Other(RawMessage),
}

#[derive(Debug, Error, PartialEq)]
pub enum MessageError {
    #[error("message type {type_id} payload too short ({len} bytes)")]
    TooShort { type_id: u8, len: usize },
    #[error("bad AMF0 in message type {type_id}: {source}")]
    Amf0 { type_id: u8, source: Amf0Error },
    #[error("command message without a name or transaction id")]
    BadCommand,
}

impl Message {
    /// Parses a reassembled message.
    pub fn parse(_raw: &RawMessage) -> Result<Message, MessageError> {
        Err(MessageError::BadCommand)
    }

    /// Chunks this message onto `out` with type-0 headers at `chunk_size`, on the csid
    /// conventional for its kind ([`csid`]).
    pub fn encode(&self, _out: &mut BytesMut, _chunk_size: u32) {}
}

/// Builds the AMF0 payload of a command: name, transaction id, command object, args.
pub fn command_payload(name: &str, transaction_id: f64, command_object: &Amf0Value, args: &[Amf0Value]) -> Bytes {
    let _ = (name, transaction_id, command_object, args);
    Bytes::new()
}
