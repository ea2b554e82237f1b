//! Typed RTMP messages (spec 5.4 protocol control, 6.2 user control, 7 commands, data
//! and media) parsed from, and encoded to, [`RawMessage`]s.
//!
//! This module owns the message payload formats and the chunk stream ids we send
//! on; it does not own chunking (that is [`super::chunk`]) nor what a command means
//! (that is [`super::session`]). Media payloads are never copied: `Audio` / `Video`
//! hold a clone of the received `Bytes`. AMF0 is decoded with the default
//! [`Amf0Limits`] (nesting depth and entry counts), so a command cannot make us
//! build an unbounded value tree; the byte length of any message is already capped
//! by the chunk decoder's `max_message_size`.

use bytes::{Bytes, BytesMut};
use thiserror::Error;

use super::chunk::{encode_message, RawMessage, MAX_CSID, MIN_CSID};
use crate::amf0::{self, Amf0Error, Amf0Limits, Amf0Value};

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
    Abort {
        csid: u32,
    },
    Acknowledgement {
        sequence: u32,
    },
    UserControl(UserControl),
    WindowAckSize(u32),
    SetPeerBandwidth {
        size: u32,
        limit_type: u8,
    },
    /// FLV audio tag body, as received.
    Audio {
        timestamp: u32,
        stream_id: u32,
        payload: Bytes,
    },
    /// FLV video tag body, as received.
    Video {
        timestamp: u32,
        stream_id: u32,
        payload: Bytes,
    },
    /// AMF0 (or AMF3-wrapped, first byte skipped) data message such as @setDataFrame.
    /// `values` are decoded; `payload` is the original AMF0 bytes.
    Data {
        timestamp: u32,
        stream_id: u32,
        values: Vec<Amf0Value>,
        payload: Bytes,
    },
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

/// A message whose payload does not parse. Each variant names the message type, and
/// where it can the command and the byte offset in the payload, so that a log line
/// says where a peer's message went wrong, not only that it did.
#[derive(Debug, Error, PartialEq)]
pub enum MessageError {
    #[error("message type {type_id} payload too short ({len} bytes)")]
    TooShort { type_id: u8, len: usize },
    /// `offset` is where, in the message payload, the AMF0 that failed starts (a
    /// command's name, transaction id or object, its arguments, or a data message's
    /// values); the offset inside `source` counts from there. `command` is the
    /// command's name once it was decoded.
    #[error(
        "bad AMF0 in message type {type_id}{}, starting at byte {offset}: {source}",
        in_command(.command)
    )]
    Amf0 {
        type_id: u8,
        offset: usize,
        command: Option<String>,
        source: Amf0Error,
    },
    /// A command that does not start with a name (`name` is `None`), or whose name is
    /// not followed by a numeric transaction id.
    #[error("command message (type {type_id}) without a {}{}",
        if .name.is_some() { "transaction id" } else { "name" },
        in_command(.name)
    )]
    BadCommand { type_id: u8, name: Option<String> },
}

/// Longest peer-supplied name (a command, a stream) quoted back in an error or a
/// tolerated-input summary: the name is peer input and may be megabytes long.
pub(crate) const MAX_NAME_IN_ERROR: usize = 64;

/// A peer-supplied name, cut to [`MAX_NAME_IN_ERROR`] characters for quoting.
pub(crate) fn short_name(name: &str) -> &str {
    match name.char_indices().nth(MAX_NAME_IN_ERROR) {
        Some((end, _)) => &name[..end],
        None => name,
    }
}

/// ` (command 'name')`, or nothing when the name is not known.
fn in_command(name: &Option<String>) -> String {
    match name {
        Some(name) => format!(" (command '{}')", short_name(name)),
        None => String::new(),
    }
}

impl Message {
    /// Parses a reassembled message. AMF0 is decoded with the default
    /// [`Amf0Limits`]; media payloads are shared with `raw`, not copied.
    pub fn parse(raw: &RawMessage) -> Result<Message, MessageError> {
        let p = &raw.payload;
        let t = raw.type_id;
        let short = || MessageError::TooShort {
            type_id: t,
            len: p.len(),
        };
        let u32_at = |at: usize| p.get(at..at + 4).map(be32).ok_or_else(short);
        Ok(match t {
            type_id::SET_CHUNK_SIZE => Message::SetChunkSize(u32_at(0)?),
            type_id::ABORT => Message::Abort { csid: u32_at(0)? },
            type_id::ACKNOWLEDGEMENT => Message::Acknowledgement {
                sequence: u32_at(0)?,
            },
            type_id::WINDOW_ACK_SIZE => Message::WindowAckSize(u32_at(0)?),
            type_id::SET_PEER_BANDWIDTH => Message::SetPeerBandwidth {
                size: u32_at(0)?,
                limit_type: *p.get(4).ok_or_else(short)?,
            },
            type_id::USER_CONTROL => Message::UserControl(parse_user_control(p)?),
            type_id::AUDIO => Message::Audio {
                timestamp: raw.timestamp,
                stream_id: raw.stream_id,
                payload: p.clone(),
            },
            type_id::VIDEO => Message::Video {
                timestamp: raw.timestamp,
                stream_id: raw.stream_id,
                payload: p.clone(),
            },
            type_id::DATA_AMF0 | type_id::DATA_AMF3 => {
                let payload = amf3_unwrap(raw)?;
                let values =
                    amf0::decode_all(&payload, &Amf0Limits::default()).map_err(|source| {
                        MessageError::Amf0 {
                            type_id: t,
                            offset: p.len() - payload.len(),
                            command: None,
                            source,
                        }
                    })?;
                Message::Data {
                    timestamp: raw.timestamp,
                    stream_id: raw.stream_id,
                    values,
                    payload,
                }
            }
            type_id::COMMAND_AMF0 | type_id::COMMAND_AMF3 => {
                let payload = amf3_unwrap(raw)?;
                parse_command(raw.stream_id, t, &payload, p.len() - payload.len())?
            }
            _ => Message::Other(raw.clone()),
        })
    }

    /// Chunks this message onto `out` with type-0 headers at `chunk_size`, on the csid
    /// conventional for its kind ([`csid`]).
    ///
    /// Protocol and user control messages go on csid 2, message stream 0, timestamp 0;
    /// commands on csid 3 with timestamp 0; data on csid 5, audio on 4 and video on 6
    /// with their own timestamps. `Data` sends its `payload`, or encodes `values` when
    /// the payload is empty. `Other` is sent as it was received (its csid included).
    pub fn encode(&self, out: &mut BytesMut, chunk_size: u32) {
        let control = |out: &mut BytesMut, t: u8, payload: &[u8]| {
            encode_message(out, csid::PROTOCOL_CONTROL, 0, t, 0, payload, chunk_size);
        };
        match self {
            Message::SetChunkSize(v) => control(out, type_id::SET_CHUNK_SIZE, &v.to_be_bytes()),
            Message::Abort { csid } => control(out, type_id::ABORT, &csid.to_be_bytes()),
            Message::Acknowledgement { sequence } => {
                control(out, type_id::ACKNOWLEDGEMENT, &sequence.to_be_bytes())
            }
            Message::WindowAckSize(v) => control(out, type_id::WINDOW_ACK_SIZE, &v.to_be_bytes()),
            Message::SetPeerBandwidth { size, limit_type } => {
                let s = size.to_be_bytes();
                control(
                    out,
                    type_id::SET_PEER_BANDWIDTH,
                    &[s[0], s[1], s[2], s[3], *limit_type],
                );
            }
            Message::UserControl(event) => {
                control(out, type_id::USER_CONTROL, &event.payload());
            }
            Message::Audio {
                timestamp,
                stream_id,
                payload,
            } => encode_message(
                out,
                csid::AUDIO,
                *timestamp,
                type_id::AUDIO,
                *stream_id,
                payload,
                chunk_size,
            ),
            Message::Video {
                timestamp,
                stream_id,
                payload,
            } => encode_message(
                out,
                csid::VIDEO,
                *timestamp,
                type_id::VIDEO,
                *stream_id,
                payload,
                chunk_size,
            ),
            Message::Data {
                timestamp,
                stream_id,
                values,
                payload,
            } => {
                let encoded;
                let bytes: &[u8] = if payload.is_empty() && !values.is_empty() {
                    let mut v = Vec::new();
                    for value in values {
                        amf0::encode(value, &mut v);
                    }
                    encoded = v;
                    &encoded
                } else {
                    payload
                };
                encode_message(
                    out,
                    csid::DATA,
                    *timestamp,
                    type_id::DATA_AMF0,
                    *stream_id,
                    bytes,
                    chunk_size,
                );
            }
            Message::Command {
                stream_id,
                name,
                transaction_id,
                command_object,
                args,
            } => {
                let payload = command_payload(name, *transaction_id, command_object, args);
                encode_message(
                    out,
                    csid::COMMAND,
                    0,
                    type_id::COMMAND_AMF0,
                    *stream_id,
                    &payload,
                    chunk_size,
                );
            }
            Message::Other(raw) => encode_message(
                out,
                raw.csid.clamp(MIN_CSID, MAX_CSID),
                raw.timestamp,
                raw.type_id,
                raw.stream_id,
                &raw.payload,
                chunk_size,
            ),
        }
    }
}

impl UserControl {
    /// Event type numbers (spec 7.1.7).
    pub const STREAM_BEGIN: u16 = 0;
    pub const STREAM_EOF: u16 = 1;
    pub const STREAM_DRY: u16 = 2;
    pub const SET_BUFFER_LENGTH: u16 = 3;
    pub const STREAM_IS_RECORDED: u16 = 4;
    pub const PING_REQUEST: u16 = 6;
    pub const PING_RESPONSE: u16 = 7;

    /// The event type number of this event.
    pub fn event_type(&self) -> u16 {
        match self {
            UserControl::StreamBegin(_) => Self::STREAM_BEGIN,
            UserControl::StreamEof(_) => Self::STREAM_EOF,
            UserControl::StreamDry(_) => Self::STREAM_DRY,
            UserControl::SetBufferLength { .. } => Self::SET_BUFFER_LENGTH,
            UserControl::StreamIsRecorded(_) => Self::STREAM_IS_RECORDED,
            UserControl::PingRequest(_) => Self::PING_REQUEST,
            UserControl::PingResponse(_) => Self::PING_RESPONSE,
            UserControl::Other { event_type, .. } => *event_type,
        }
    }

    /// The message payload: event type, then the event data.
    pub fn payload(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(10);
        v.extend_from_slice(&self.event_type().to_be_bytes());
        match self {
            UserControl::StreamBegin(x)
            | UserControl::StreamEof(x)
            | UserControl::StreamDry(x)
            | UserControl::StreamIsRecorded(x)
            | UserControl::PingRequest(x)
            | UserControl::PingResponse(x) => v.extend_from_slice(&x.to_be_bytes()),
            UserControl::SetBufferLength {
                stream_id,
                buffer_ms,
            } => {
                v.extend_from_slice(&stream_id.to_be_bytes());
                v.extend_from_slice(&buffer_ms.to_be_bytes());
            }
            UserControl::Other { data, .. } => v.extend_from_slice(data),
        }
        v
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn parse_user_control(p: &Bytes) -> Result<UserControl, MessageError> {
    let short = || MessageError::TooShort {
        type_id: type_id::USER_CONTROL,
        len: p.len(),
    };
    let event_type = p
        .get(..2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or_else(short)?;
    let u32_at = |at: usize| p.get(at..at + 4).map(be32).ok_or_else(short);
    Ok(match event_type {
        UserControl::STREAM_BEGIN => UserControl::StreamBegin(u32_at(2)?),
        UserControl::STREAM_EOF => UserControl::StreamEof(u32_at(2)?),
        UserControl::STREAM_DRY => UserControl::StreamDry(u32_at(2)?),
        UserControl::SET_BUFFER_LENGTH => UserControl::SetBufferLength {
            stream_id: u32_at(2)?,
            buffer_ms: u32_at(6)?,
        },
        UserControl::STREAM_IS_RECORDED => UserControl::StreamIsRecorded(u32_at(2)?),
        UserControl::PING_REQUEST => UserControl::PingRequest(u32_at(2)?),
        UserControl::PING_RESPONSE => UserControl::PingResponse(u32_at(2)?),
        _ => UserControl::Other {
            event_type,
            data: p.slice(2..),
        },
    })
}

/// The AMF0 bytes of a data or command message: AMF3 variants (types 15 and 17)
/// start with one format byte (0x00, "AMF0 follows"), which is skipped.
fn amf3_unwrap(raw: &RawMessage) -> Result<Bytes, MessageError> {
    match raw.type_id {
        type_id::DATA_AMF3 | type_id::COMMAND_AMF3 => {
            if raw.payload.is_empty() {
                return Err(MessageError::TooShort {
                    type_id: raw.type_id,
                    len: 0,
                });
            }
            Ok(raw.payload.slice(1..))
        }
        _ => Ok(raw.payload.clone()),
    }
}

/// Name, transaction id, command object (Null when absent), then the arguments.
/// `skipped` is how many payload bytes precede `p` (the AMF3 format byte), so that
/// error offsets count from the start of the message payload.
fn parse_command(stream_id: u32, t: u8, p: &[u8], skipped: usize) -> Result<Message, MessageError> {
    let limits = Amf0Limits::default();
    let amf0_err = |pos: usize, command: Option<&str>, source| MessageError::Amf0 {
        type_id: t,
        offset: skipped + pos,
        command: command.map(str::to_string),
        source,
    };
    let next =
        |pos: &mut usize, command: Option<&str>| -> Result<Option<Amf0Value>, MessageError> {
            if *pos >= p.len() {
                return Ok(None);
            }
            let (v, used) =
                amf0::decode(&p[*pos..], &limits).map_err(|e| amf0_err(*pos, command, e))?;
            *pos += used.max(1);
            Ok(Some(v))
        };
    let mut pos = 0;
    let Some(Amf0Value::String(name)) = next(&mut pos, None)? else {
        return Err(MessageError::BadCommand {
            type_id: t,
            name: None,
        });
    };
    let Some(Amf0Value::Number(transaction_id)) = next(&mut pos, Some(&name))? else {
        return Err(MessageError::BadCommand {
            type_id: t,
            name: Some(name),
        });
    };
    let command_object = next(&mut pos, Some(&name))?.unwrap_or(Amf0Value::Null);
    let args = match p.get(pos..) {
        Some(rest) if !rest.is_empty() => {
            amf0::decode_all(rest, &limits).map_err(|e| amf0_err(pos, Some(&name), e))?
        }
        _ => Vec::new(),
    };
    Ok(Message::Command {
        stream_id,
        name,
        transaction_id,
        command_object,
        args,
    })
}

/// Builds the AMF0 payload of a command: name, transaction id, command object, args.
pub fn command_payload(
    name: &str,
    transaction_id: f64,
    command_object: &Amf0Value,
    args: &[Amf0Value],
) -> Bytes {
    let mut v = Vec::with_capacity(64);
    amf0::encode(&Amf0Value::String(name.to_owned()), &mut v);
    amf0::encode(&Amf0Value::Number(transaction_id), &mut v);
    amf0::encode(command_object, &mut v);
    for arg in args {
        amf0::encode(arg, &mut v);
    }
    Bytes::from(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtmp::chunk::{ChunkDecoder, ChunkLimits};

    fn raw(csid: u32, timestamp: u32, type_id: u8, stream_id: u32, payload: &[u8]) -> RawMessage {
        RawMessage {
            csid,
            timestamp,
            type_id,
            stream_id,
            payload: Bytes::copy_from_slice(payload),
        }
    }

    // Hand-written AMF0, independent of amf0::encode.
    fn s(v: &str) -> Vec<u8> {
        let mut b = vec![0x02];
        b.extend_from_slice(&(v.len() as u16).to_be_bytes());
        b.extend_from_slice(v.as_bytes());
        b
    }
    fn n(v: f64) -> Vec<u8> {
        let mut b = vec![0x00];
        b.extend_from_slice(&v.to_be_bytes());
        b
    }
    fn key(k: &str) -> Vec<u8> {
        let mut b = (k.len() as u16).to_be_bytes().to_vec();
        b.extend_from_slice(k.as_bytes());
        b
    }
    const NULL: u8 = 0x05;
    const OBJECT_END: [u8; 3] = [0, 0, 9];

    /// Encodes `m` and decodes it back through a chunk decoder.
    fn through_chunks(m: &Message, chunk_size: u32) -> RawMessage {
        let mut out = BytesMut::new();
        m.encode(&mut out, chunk_size);
        let mut d = ChunkDecoder::new(ChunkLimits::default());
        if chunk_size != 128 {
            let mut set = BytesMut::new();
            Message::SetChunkSize(chunk_size).encode(&mut set, 128);
            d.push(&set);
            assert!(d.poll_message().unwrap().is_some());
        }
        d.push(&out);
        let r = d.poll_message().unwrap().expect("one message");
        assert_eq!(d.poll_message(), Ok(None));
        r
    }

    #[test]
    fn protocol_control_messages() {
        let cases = [
            (1, vec![0, 0, 0x10, 0], Message::SetChunkSize(4096)),
            (2, vec![0, 0, 0, 6], Message::Abort { csid: 6 }),
            (
                3,
                vec![0, 0x26, 0x25, 0xA0],
                Message::Acknowledgement {
                    sequence: 2_500_000,
                },
            ),
            (
                5,
                vec![0, 0x4C, 0x4B, 0x40],
                Message::WindowAckSize(5_000_000),
            ),
            (
                6,
                vec![0, 0x4C, 0x4B, 0x40, 2],
                Message::SetPeerBandwidth {
                    size: 5_000_000,
                    limit_type: 2,
                },
            ),
        ];
        for (t, payload, expected) in cases {
            assert_eq!(
                Message::parse(&raw(2, 0, t, 0, &payload)),
                Ok(expected.clone())
            );
            let r = through_chunks(&expected, 128);
            assert_eq!(r, raw(2, 0, t, 0, &payload));
            let short = &payload[..payload.len() - 1];
            assert_eq!(
                Message::parse(&raw(2, 0, t, 0, short)),
                Err(MessageError::TooShort {
                    type_id: t,
                    len: short.len()
                })
            );
        }
    }

    #[test]
    fn user_control_events() {
        let cases = [
            (vec![0, 0, 0, 0, 0, 1], UserControl::StreamBegin(1)),
            (vec![0, 1, 0, 0, 0, 1], UserControl::StreamEof(1)),
            (vec![0, 2, 0, 0, 0, 1], UserControl::StreamDry(1)),
            (
                vec![0, 3, 0, 0, 0, 1, 0, 0, 0x0B, 0xB8],
                UserControl::SetBufferLength {
                    stream_id: 1,
                    buffer_ms: 3000,
                },
            ),
            (vec![0, 4, 0, 0, 0, 1], UserControl::StreamIsRecorded(1)),
            (vec![0, 6, 0, 1, 0, 0], UserControl::PingRequest(65536)),
            (vec![0, 7, 0, 1, 0, 0], UserControl::PingResponse(65536)),
            (
                vec![0, 0x1F, 9, 9],
                UserControl::Other {
                    event_type: 31,
                    data: Bytes::from_static(&[9, 9]),
                },
            ),
            (
                vec![0, 0x20],
                UserControl::Other {
                    event_type: 32,
                    data: Bytes::new(),
                },
            ),
        ];
        for (payload, event) in cases {
            let m = Message::UserControl(event.clone());
            assert_eq!(Message::parse(&raw(2, 0, 4, 0, &payload)), Ok(m.clone()));
            assert_eq!(event.payload(), payload);
            assert_eq!(through_chunks(&m, 128), raw(2, 0, 4, 0, &payload));
        }
        for short in [
            &[][..],
            &[0],
            &[0, 0, 0, 0, 1],
            &[0, 3, 0, 0, 0, 1, 0, 0, 0x0B],
        ] {
            assert_eq!(
                Message::parse(&raw(2, 0, 4, 0, short)),
                Err(MessageError::TooShort {
                    type_id: 4,
                    len: short.len()
                })
            );
        }
    }

    #[test]
    fn media_is_shared_not_copied() {
        let r = raw(6, 33, 9, 1, &[0x17, 0, 0, 0, 0, 1, 2, 3]);
        let Ok(Message::Video {
            timestamp: 33,
            stream_id: 1,
            payload,
        }) = Message::parse(&r)
        else {
            panic!("not video");
        };
        assert_eq!(payload.as_ptr(), r.payload.as_ptr());
        let r = raw(4, 0x0100_0000, 8, 1, &[0xAF, 0x01, 7]);
        let m = Message::parse(&r).unwrap();
        assert_eq!(
            m,
            Message::Audio {
                timestamp: 0x0100_0000,
                stream_id: 1,
                payload: r.payload.clone()
            }
        );
        assert_eq!(through_chunks(&m, 128), r);
        let v = Message::Video {
            timestamp: 7,
            stream_id: 1,
            payload: Bytes::from(vec![1u8; 10_000]),
        };
        assert_eq!(through_chunks(&v, 4096), raw(6, 7, 9, 1, &[1u8; 10_000]));
    }

    fn set_data_frame() -> Vec<u8> {
        let mut p = s("@setDataFrame");
        p.extend(s("onMetaData"));
        p.extend([0x08, 0, 0, 0, 1]); // ECMA array, 1 entry
        p.extend(key("width"));
        p.extend(n(1280.0));
        p.extend(OBJECT_END);
        p
    }

    #[test]
    fn data_messages() {
        let p = set_data_frame();
        let expected_values = vec![
            Amf0Value::String("@setDataFrame".into()),
            Amf0Value::String("onMetaData".into()),
            Amf0Value::EcmaArray(vec![("width".into(), Amf0Value::Number(1280.0))]),
        ];
        let r = raw(5, 0, 18, 1, &p);
        let m = Message::parse(&r).unwrap();
        assert_eq!(
            m,
            Message::Data {
                timestamp: 0,
                stream_id: 1,
                values: expected_values.clone(),
                payload: r.payload.clone()
            }
        );
        assert_eq!(through_chunks(&m, 128), r);

        // AMF3 data (type 15): one format byte, then AMF0.
        let mut p3 = vec![0];
        p3.extend_from_slice(&p);
        let Ok(Message::Data {
            values, payload, ..
        }) = Message::parse(&raw(5, 0, 15, 1, &p3))
        else {
            panic!("not data");
        };
        assert_eq!((values, &payload[..]), (expected_values.clone(), &p[..]));
        assert_eq!(
            Message::parse(&raw(5, 0, 15, 1, &[])),
            Err(MessageError::TooShort {
                type_id: 15,
                len: 0
            })
        );

        // With an empty payload, encode sends the values.
        let m = Message::Data {
            timestamp: 9,
            stream_id: 1,
            values: expected_values,
            payload: Bytes::new(),
        };
        assert_eq!(through_chunks(&m, 128), raw(5, 9, 18, 1, &p));

        // Empty data message: no values.
        assert_eq!(
            Message::parse(&raw(5, 0, 18, 1, &[])),
            Ok(Message::Data {
                timestamp: 0,
                stream_id: 1,
                values: vec![],
                payload: Bytes::new()
            })
        );
        assert!(matches!(
            Message::parse(&raw(5, 0, 18, 1, &[0x02, 0, 5, b'a'])),
            Err(MessageError::Amf0 { type_id: 18, .. })
        ));
    }

    /// connect as ffmpeg sends it (abridged command object).
    fn connect_payload() -> Vec<u8> {
        let mut p = s("connect");
        p.extend(n(1.0));
        p.push(0x03);
        for (k, v) in [
            ("app", "live"),
            ("type", "nonprivate"),
            ("flashVer", "FMLE/3.0 (compatible; Lavf61.7.100)"),
            ("tcUrl", "rtmp://127.0.0.1:1935/live"),
        ] {
            p.extend(key(k));
            p.extend(s(v));
        }
        p.extend(OBJECT_END);
        p
    }

    #[test]
    fn commands() {
        let p = connect_payload();
        let m = Message::parse(&raw(3, 0, 20, 0, &p)).unwrap();
        let Message::Command {
            stream_id: 0,
            name,
            transaction_id,
            command_object,
            args,
        } = &m
        else {
            panic!("not a command: {m:?}");
        };
        assert_eq!((name.as_str(), *transaction_id), ("connect", 1.0));
        assert_eq!(
            command_object.get("app").and_then(Amf0Value::as_str),
            Some("live")
        );
        assert_eq!(
            command_object.get("tcUrl").and_then(Amf0Value::as_str),
            Some("rtmp://127.0.0.1:1935/live")
        );
        assert!(args.is_empty());
        // Re-encoding gives the same bytes, on csid 3 at timestamp 0.
        assert_eq!(through_chunks(&m, 128), raw(3, 0, 20, 0, &p));

        // publish on message stream 1: Null command object, two string arguments.
        let mut p = s("publish");
        p.extend(n(5.0));
        p.push(NULL);
        p.extend(s("stream"));
        p.extend(s("live"));
        let m = Message::parse(&raw(8, 0, 20, 1, &p)).unwrap();
        let expected = Message::Command {
            stream_id: 1,
            name: "publish".into(),
            transaction_id: 5.0,
            command_object: Amf0Value::Null,
            args: vec!["stream".into(), "live".into()],
        };
        assert_eq!(m, expected);
        assert_eq!(through_chunks(&m, 60000), raw(3, 0, 20, 1, &p));
        assert_eq!(
            command_payload(
                "publish",
                5.0,
                &Amf0Value::Null,
                &["stream".into(), "live".into()]
            ),
            p
        );

        // AMF3 command (type 17): the first byte is skipped.
        let mut p3 = vec![0];
        p3.extend_from_slice(&p);
        assert_eq!(Message::parse(&raw(3, 0, 17, 1, &p3)), Ok(expected));

        // No command object at all: Null.
        let mut p = s("onStatus");
        p.extend(n(0.0));
        assert_eq!(
            Message::parse(&raw(3, 0, 20, 0, &p)),
            Ok(Message::Command {
                stream_id: 0,
                name: "onStatus".into(),
                transaction_id: 0.0,
                command_object: Amf0Value::Null,
                args: vec![],
            })
        );
    }

    #[test]
    fn bad_commands() {
        let connect = Some("connect".to_string());
        let bad = [
            (vec![], None),
            (n(1.0), None),                             // no name
            (s("connect"), connect.clone()),            // no transaction id
            ([s("connect"), s("1")].concat(), connect), // transaction id not a number
            ([n(1.0), s("connect")].concat(), None),    // name not a string
        ];
        for (p, name) in bad {
            assert_eq!(
                Message::parse(&raw(3, 0, 20, 0, &p)),
                Err(MessageError::BadCommand { type_id: 20, name }),
                "{p:?}"
            );
        }
        assert_eq!(
            MessageError::BadCommand {
                type_id: 20,
                name: None
            }
            .to_string(),
            "command message (type 20) without a name"
        );
        assert_eq!(
            MessageError::BadCommand {
                type_id: 17,
                name: Some("play".into())
            }
            .to_string(),
            "command message (type 17) without a transaction id (command 'play')"
        );
        assert_eq!(
            Message::parse(&raw(3, 0, 17, 0, &[])),
            Err(MessageError::TooShort {
                type_id: 17,
                len: 0
            })
        );
        // Malformed AMF0 anywhere is an AMF0 error naming the message type, and once
        // the name is known the command, with where the bad AMF0 starts.
        let mut p = s("connect");
        p.extend(n(1.0));
        p.push(NULL);
        p.push(0x20); // unknown marker
        let err = Message::parse(&raw(3, 0, 20, 0, &p)).unwrap_err();
        assert!(matches!(err, MessageError::Amf0 { type_id: 20, .. }));
        assert_eq!(
            err.to_string(),
            "bad AMF0 in message type 20 (command 'connect'), starting at byte 20: \
             unknown AMF0 type marker 0x20 at offset 0"
        );
        // In an AMF3 command the offset counts the format byte too.
        let mut p3 = vec![0];
        p3.extend_from_slice(&p);
        assert!(matches!(
            Message::parse(&raw(3, 0, 17, 0, &p3)),
            Err(MessageError::Amf0 {
                type_id: 17,
                offset: 21,
                ..
            })
        ));
        assert!(matches!(
            Message::parse(&raw(3, 0, 20, 0, &[0x02, 0, 9, b'c'])),
            Err(MessageError::Amf0 { type_id: 20, .. })
        ));
    }

    #[test]
    fn other_messages_pass_through() {
        for t in [16, 19, 22, 7, 0, 255] {
            let r = raw(9, 44, t, 1, &[1, 2, 3]);
            let m = Message::parse(&r).unwrap();
            assert_eq!(m, Message::Other(r.clone()));
            assert_eq!(through_chunks(&m, 128), r);
        }
    }

    #[test]
    fn chunk_streams_used_when_sending() {
        let msgs = [
            (Message::SetChunkSize(4096), 2, 0),
            (Message::UserControl(UserControl::StreamBegin(1)), 2, 0),
            (
                Message::Audio {
                    timestamp: 1,
                    stream_id: 1,
                    payload: Bytes::from_static(b"a"),
                },
                4,
                1,
            ),
            (
                Message::Video {
                    timestamp: 1,
                    stream_id: 1,
                    payload: Bytes::from_static(b"v"),
                },
                6,
                1,
            ),
            (
                Message::Data {
                    timestamp: 1,
                    stream_id: 1,
                    values: vec![Amf0Value::Null],
                    payload: Bytes::from_static(&[5]),
                },
                5,
                1,
            ),
            (
                Message::Command {
                    stream_id: 1,
                    name: "play".into(),
                    transaction_id: 0.0,
                    command_object: Amf0Value::Null,
                    args: vec![],
                },
                3,
                1,
            ),
        ];
        for (m, csid, stream_id) in msgs {
            let r = through_chunks(&m, 4096);
            assert_eq!((r.csid, r.stream_id), (csid, stream_id), "{m:?}");
            assert_eq!(Message::parse(&r), Ok(m));
        }
    }
}
