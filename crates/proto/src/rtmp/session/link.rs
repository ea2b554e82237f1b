//! What both sessions share below the commands: the input path (handshake until it is
//! done, then the chunk decoder), the output buffer, the chunk size we send with, and
//! the control messages both sides answer alike (pings, window sizes).
//!
//! Each session plugs into this path through [`Endpoint`]: its handshake, its
//! [`Link`], and what it does with the messages only it handles. That keeps one copy
//! of the byte-level rules, so the server and the client cannot drift apart on them.
//!
//! # Acknowledgements
//! Once the peer announces its Window Acknowledgement Size, an Acknowledgement with
//! the byte count received so far (all bytes, handshake included, as librtmp counts,
//! modulo 2^32) is queued each time that many bytes arrived since the last
//! one. Before the peer announces a window nothing is acknowledged (spec 5.4.3/5.4.4).

use bytes::{Bytes, BytesMut};

use super::values::{encode_values, is_media_or_data};
use super::{SessionError, Tolerated};
use crate::amf0::Amf0Value;
use crate::rtmp::chunk::{self, ChunkDecoder, ChunkLimits, RawMessage, DEFAULT_CHUNK_SIZE};
use crate::rtmp::handshake::{ClientHandshake, HandshakeError, HandshakeProgress, ServerHandshake};
use crate::rtmp::message::{self, type_id, Message, UserControl};

/// Byte-level state both sessions share: the chunk decoder, the output buffer, the
/// chunk size we send with and the acknowledgement bookkeeping.
pub(super) struct Link {
    pub(super) decoder: ChunkDecoder,
    pub(super) out: BytesMut,
    /// Chunk size of our outgoing chunks: 128 until we send Set Chunk Size.
    pub(super) send_chunk_size: u32,
    pub(super) bytes_received: u64,
    /// The peer's Window Acknowledgement Size; 0 until it announces one (no acks).
    pub(super) peer_window: u32,
    /// `bytes_received` when we last acknowledged.
    pub(super) acked_at: u64,
    /// An input error ended the session; further input is refused.
    pub(super) failed: bool,
    /// Peer input let pass instead of failing (the chunk decoder keeps its own counts,
    /// merged in by [`Link::tolerated`]).
    pub(super) tolerated: Tolerated,
}

impl Link {
    pub(super) fn new(limits: ChunkLimits) -> Self {
        Link {
            decoder: ChunkDecoder::new(limits),
            out: BytesMut::new(),
            send_chunk_size: DEFAULT_CHUNK_SIZE,
            bytes_received: 0,
            peer_window: 0,
            acked_at: 0,
            failed: false,
            tolerated: Tolerated::default(),
        }
    }

    pub(super) fn ack_if_due(&mut self) {
        if self.peer_window > 0
            && self.bytes_received - self.acked_at >= u64::from(self.peer_window)
        {
            // The sequence number is the byte count modulo 2^32 (spec 5.4.3).
            let sequence = self.bytes_received as u32;
            self.send(&Message::Acknowledgement { sequence });
            self.acked_at = self.bytes_received;
        }
    }

    pub(super) fn send(&mut self, msg: &Message) {
        msg.encode(&mut self.out, self.send_chunk_size);
    }

    /// Announces `size` and uses it for everything queued after it.
    pub(super) fn set_chunk_size(&mut self, size: u32) {
        self.send(&Message::SetChunkSize(size));
        self.send_chunk_size = size;
    }

    pub(super) fn send_raw(
        &mut self,
        csid: u32,
        timestamp: u32,
        type_id: u8,
        stream_id: u32,
        payload: &[u8],
    ) {
        chunk::encode_message(
            &mut self.out,
            csid,
            timestamp,
            type_id,
            stream_id,
            payload,
            self.send_chunk_size,
        );
    }

    pub(super) fn send_command(
        &mut self,
        csid: u32,
        stream_id: u32,
        name: &str,
        transaction_id: f64,
        command_object: &Amf0Value,
        args: &[Amf0Value],
    ) {
        let payload = message::command_payload(name, transaction_id, command_object, args);
        self.send_raw(csid, 0, type_id::COMMAND_AMF0, stream_id, &payload);
    }

    pub(super) fn send_data(
        &mut self,
        csid: u32,
        stream_id: u32,
        timestamp: u32,
        values: &[Amf0Value],
    ) {
        let payload = encode_values(values);
        self.send_raw(csid, timestamp, type_id::DATA_AMF0, stream_id, &payload);
    }

    pub(super) fn take_output(&mut self) -> Option<Bytes> {
        if self.out.is_empty() {
            None
        } else {
            Some(self.out.split().freeze())
        }
    }

    /// Parses `raw` and handles the messages both sides treat alike. Returns the
    /// message when it is not one of them; media and data that do not parse are
    /// dropped and counted (see "What is lenient").
    pub(super) fn receive(&mut self, raw: &RawMessage) -> Result<Option<Message>, SessionError> {
        let msg = match Message::parse(raw) {
            Ok(msg) => msg,
            Err(_) if is_media_or_data(raw.type_id) => {
                self.tolerated.undecodable_media += 1;
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        Ok(self.handle_common(msg))
    }

    /// What was tolerated so far, the chunk decoder's counts included.
    pub(super) fn tolerated(&self) -> Tolerated {
        Tolerated {
            omitted_extended_timestamps: self.decoder.omitted_extended_timestamps(),
            interrupted_messages: self.decoder.interrupted_messages(),
            ..self.tolerated.clone()
        }
    }

    /// Handles the messages both sides treat alike. Returns the message back when it
    /// is not one of them.
    fn handle_common(&mut self, msg: Message) -> Option<Message> {
        match msg {
            // The decoder already applied these; acknowledgements we receive need no
            // answer, and Set Peer Bandwidth only limits what a peer may send us
            // unacknowledged, which we do not track.
            Message::SetChunkSize(_)
            | Message::Abort { .. }
            | Message::Acknowledgement { .. }
            | Message::SetPeerBandwidth { .. } => None,
            Message::WindowAckSize(size) => {
                self.peer_window = size;
                None
            }
            Message::UserControl(UserControl::PingRequest(timestamp)) => {
                self.send(&Message::UserControl(UserControl::PingResponse(timestamp)));
                None
            }
            other => Some(other),
        }
    }
}

/// The server and client handshakes, as the shared input path drives them.
pub(super) trait Handshake {
    fn handle_input(&mut self, data: &[u8]) -> Result<HandshakeProgress, HandshakeError>;
    fn poll_output(&mut self) -> Option<Bytes>;
}

impl Handshake for ServerHandshake {
    fn handle_input(&mut self, data: &[u8]) -> Result<HandshakeProgress, HandshakeError> {
        ServerHandshake::handle_input(self, data)
    }
    fn poll_output(&mut self) -> Option<Bytes> {
        ServerHandshake::poll_output(self)
    }
}

impl Handshake for ClientHandshake {
    fn handle_input(&mut self, data: &[u8]) -> Result<HandshakeProgress, HandshakeError> {
        ClientHandshake::handle_input(self, data)
    }
    fn poll_output(&mut self) -> Option<Bytes> {
        ClientHandshake::poll_output(self)
    }
}

/// What a session plugs into the shared input path ([`handle_input`]): its
/// handshake, its [`Link`] and what it does with the messages only it handles.
pub(super) trait Endpoint {
    type Handshake: Handshake;
    /// The handshake (`Some` until it is done) and the link, borrowed together.
    fn parts(&mut self) -> (&mut Option<Self::Handshake>, &mut Link);
    /// Runs once when the handshake completes, before any chunk is decoded.
    fn on_handshake_done(&mut self) {}
    /// A message [`Link::receive`] did not handle itself.
    fn handle_message(&mut self, msg: Message) -> Result<(), SessionError>;
}

/// Feeds bytes read from the socket to `session`. The first error ends the session:
/// it is returned, and every later call refuses its input.
pub(super) fn handle_input<E: Endpoint>(session: &mut E, data: &[u8]) -> Result<(), SessionError> {
    if session.parts().1.failed {
        return Err(SessionError::Protocol(
            "input after the session failed".into(),
        ));
    }
    let result = pump_input(session, data);
    if result.is_err() {
        session.parts().1.failed = true;
    }
    result
}

/// The handshake until it is done, then the chunk decoder (starting with the bytes
/// that came after the handshake), then an acknowledgement if one is due.
fn pump_input<E: Endpoint>(session: &mut E, data: &[u8]) -> Result<(), SessionError> {
    let (handshake, link) = session.parts();
    link.bytes_received += data.len() as u64;
    if let Some(shake) = handshake {
        let progress = shake.handle_input(data)?;
        while let Some(bytes) = shake.poll_output() {
            link.out.extend_from_slice(&bytes);
        }
        match progress {
            HandshakeProgress::InProgress => return Ok(()),
            HandshakeProgress::Done { remaining, .. } => {
                *handshake = None;
                session.on_handshake_done();
                session.parts().1.decoder.push(&remaining);
            }
        }
    } else {
        link.decoder.push(data);
    }
    loop {
        let link = session.parts().1;
        let Some(raw) = link.decoder.poll_message()? else {
            break;
        };
        if let Some(msg) = link.receive(&raw)? {
            session.handle_message(msg)?;
        }
    }
    session.parts().1.ack_if_due();
    Ok(())
}
