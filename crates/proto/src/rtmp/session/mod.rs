//! RTMP session state machines: [`ServerSession`] (what a publisher or player talks
//! to) and [`ClientSession`] (what the load generator and the push/pull proxies use).
//!
//! Both are sans-IO, like `quinn-proto` and `str0m`: they own no socket, read no clock
//! and draw no random numbers. The driver passes received bytes to `handle_input`,
//! takes typed events from `poll_event` and bytes to write from `poll_output`. The
//! handshake time and randomness are passed to `new`.
//!
//! # The server state machine
//! ```text
//! connection:  Handshake --C0 C1 C2--> Connecting --connect--> Connected
//! each stream (createStream gives ids 1, 2, ...):
//!   Idle --publish--> PublishRequested --accept_publish--> Publishing --+
//!                                      `-reject_publish--> Idle         |
//!   Idle --play-----> PlayRequested ----accept_play-----> Playing ------+
//!                                      `-play_not_found--> Idle         |
//!   Idle <--FCUnpublish (publishing) / closeStream / deleteStream ------+
//! ```
//! * The handshake ([`ServerHandshake`]) comes first; the bytes left over after C2 go
//!   to the [`ChunkDecoder`], which applies Set Chunk Size and Abort itself.
//! * `connect` is answered at once (Window Acknowledgement Size, Set Peer Bandwidth,
//!   Set Chunk Size, then `_result`) and reported as [`ServerEvent::Connect`]. Any
//!   other command before `connect` is a [`SessionError::Protocol`].
//! * `createStream` hands out the lowest free message stream id, starting at 1: the
//!   server chunks media for players once per stream on message stream id 1 and
//!   shares those bytes between every player, so an ordinary player must get id 1.
//!   At most [`MAX_STREAMS`] streams exist at once.
//! * `publish` and `play` are *requests*: they become [`ServerEvent::Publish`] /
//!   [`ServerEvent::Play`], and the driver answers each with `accept_publish` /
//!   `reject_publish` or `accept_play` / `play_not_found`, which queue the matching
//!   `onStatus` messages.
//! * Every accepted publish is followed by exactly one [`ServerEvent::Unpublish`], and
//!   every accepted play by exactly one [`ServerEvent::StopPlay`], whether the peer
//!   closed the stream before or after the driver's answer. A stream closed while its
//!   request was still unanswered is remembered, and the late `accept_*` queues the
//!   closing event right away instead of output. So a driver that keeps a
//!   subscription per accepted play never leaks one.
//!
//! # The client state machine
//! Handshake ([`ClientHandshake`], digest form on request), `connect`, then on its
//! `_result` Set Chunk Size and Window Acknowledgement Size, then per [`ClientMode`]
//! `releaseStream` + `FCPublish` + `createStream` + `publish`, or `createStream` +
//! `play` + Set Buffer Length. All of that runs without the driver's help; the driver
//! sees [`ClientEvent::Connected`], then [`ClientEvent::Started`] once media may flow.
//!
//! # Driving a session
//! After each `handle_input`, drain `poll_event` until `None`, answering events as
//! they come (the answers queue output and, for a stream that was closed meanwhile,
//! further events: keep draining), then drain `poll_output` and write every buffer in
//! order. `poll_output` coalesces everything queued into one [`Bytes`], so one call
//! normally means one write. Media chunked elsewhere with
//! [`super::chunk::encode_message`] at [`ServerSession::out_chunk_size`] may be
//! written between two `poll_output` buffers, because every message this module sends
//! starts with a type-0 chunk header: there is no chunk-header compression state that
//! interleaved bytes could break. The client's first output (C0 + C1) is ready before
//! any input, so drain `poll_output` right after `new`.
//!
//! After `handle_input` returns an error the session is finished: close the
//! connection (after writing what `poll_output` still holds, if you want the peer to
//! see an error status). Further input is refused.
//!
//! # What is lenient, and why
//! Encoders and players differ in small ways; the session accepts what does not harm
//! the server and rejects what would leave its state ambiguous.
//! * Unknown commands, unknown user control events, shared objects, aggregate
//!   messages and data messages other than metadata are ignored: Flash-era clients
//!   send many optional calls (`onBWDone`, `receiveAudio`, `pause`...) and do not
//!   wait for an answer to them; refusing them would only cut such clients off.
//! * `releaseStream`, `FCPublish`, `FCUnpublish`, `_checkbw` and `getStreamLength`
//!   get an empty `_result` (with `0` for `getStreamLength`: a live stream has no
//!   length) when they carry a transaction id, because some encoders wait for it.
//! * Audio, video and data messages that fail to parse, or arrive on a stream that is
//!   not publishing, are dropped rather than fatal: a stray or truncated media
//!   message is not worth a publisher's connection, and a frame may still be in
//!   flight when FCUnpublish or closeStream arrives.
//! * A trailing `/` on the connect `app` is dropped and a `?query` on it (the SRS
//!   `?vhost=` form) is put aside ([`ServerSession::app_params`]).
//! * What stays an error: commands before `connect`, a second `connect`, `publish` or
//!   `play` on a stream `createStream` did not return, more than [`MAX_STREAMS`]
//!   streams, a second publish on one connection, a second `play` on a stream whose
//!   first `play` is still unanswered, malformed commands and control messages.
//!
//! # Acknowledgements
//! Once the peer announces its Window Acknowledgement Size, an Acknowledgement with
//! the byte count received so far (all bytes, handshake included, as librtmp counts,
//! modulo 2^32) is queued each time that many bytes arrived since the last
//! one. Before the peer announces a window nothing is acknowledged (spec 5.4.3/5.4.4).

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use thiserror::Error;

use super::chunk::{
    self, ChunkDecoder, ChunkError, ChunkLimits, RawMessage, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE,
};
use super::handshake::{ClientHandshake, HandshakeError, HandshakeProgress, ServerHandshake};
use super::message::{self, csid, type_id, Message, MessageError, UserControl};
use crate::amf0::{self, Amf0Limits, Amf0Value};

/// Most message streams one connection may have at once. A publisher needs one and a
/// player one; Flash clients that juggle several NetStreams rarely go past two or
/// three. Eight leaves room for those and bounds the per-connection state.
pub const MAX_STREAMS: u32 = 8;

/// Server version string in the connect `_result` (the value FMS 3 sent; some
/// clients parse it, none need it to be newer).
const FMS_VERSION: &str = "FMS/3,0,1,123";
/// Server capabilities in the connect `_result` (FMS sends 31).
const FMS_CAPABILITIES: f64 = 31.0;
/// Client flashVer: encoders identify as FMLE, which servers treat as a publisher
/// that knows `releaseStream` / `FCPublish`.
const CLIENT_FLASH_VER: &str = "FMLE/3.0 (compatible; ferrocast)";
/// Buffer length a playing client announces, as ffmpeg and Flash Player do (ms).
const PLAY_BUFFER_MS: u32 = 3000;
/// Longest command name quoted back in an error message.
const MAX_NAME_IN_ERROR: usize = 64;

#[derive(Debug, Clone, Copy)]
pub struct SessionConfig {
    pub chunk_limits: ChunkLimits,
    /// Note: [`Message::parse`] takes no limits and applies the AMF0 defaults, so
    /// this value is currently not consulted by the sessions.
    pub amf0_limits: Amf0Limits,
    /// Chunk size we announce and send with (shared media bytes must use the same).
    pub out_chunk_size: u32,
    /// Window Acknowledgement Size we announce; also the Set Peer Bandwidth value.
    pub window_ack_size: u32,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            chunk_limits: ChunkLimits::default(),
            amf0_limits: Amf0Limits::default(),
            out_chunk_size: 60000,
            window_ack_size: 5_000_000,
        }
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum SessionError {
    #[error("handshake: {0}")]
    Handshake(#[from] HandshakeError),
    #[error("chunk stream: {0}")]
    Chunk(#[from] ChunkError),
    #[error("message: {0}")]
    Message(#[from] MessageError),
    #[error("protocol violation: {0}")]
    Protocol(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// connect was received and answered with NetConnection.Connect.Success.
    Connect {
        app: String,
        tc_url: Option<String>,
        command_object: Amf0Value,
    },
    /// publish received; answer with accept_publish or reject_publish.
    Publish {
        stream_id: u32,
        stream_name: String,
        params: String,
        publish_type: String,
    },
    /// play received; answer with accept_play or play_not_found.
    Play {
        stream_id: u32,
        stream_name: String,
        params: String,
        start: f64,
        duration: f64,
        reset: bool,
    },
    /// The publisher stopped (FCUnpublish, closeStream or deleteStream of its stream).
    Unpublish {
        stream_id: u32,
    },
    /// A player stopped (closeStream or deleteStream of its stream).
    StopPlay {
        stream_id: u32,
    },
    /// @setDataFrame/onMetaData from the publisher: `payload` is the AMF0 bytes of
    /// "onMetaData" + the metadata value, ready to forward to players. `values` are
    /// the same two values decoded: `[String("onMetaData"), value]`.
    Metadata {
        timestamp: u32,
        payload: Bytes,
        values: Vec<Amf0Value>,
    },
    Audio {
        timestamp: u32,
        payload: Bytes,
    },
    Video {
        timestamp: u32,
        payload: Bytes,
    },
}

/// Byte-level state both sessions share: the chunk decoder, the output buffer, the
/// chunk size we send with and the acknowledgement bookkeeping.
struct Link {
    decoder: ChunkDecoder,
    out: BytesMut,
    /// Chunk size of our outgoing chunks: 128 until we send Set Chunk Size.
    send_chunk_size: u32,
    bytes_received: u64,
    /// The peer's Window Acknowledgement Size; 0 until it announces one (no acks).
    peer_window: u32,
    /// `bytes_received` when we last acknowledged.
    acked_at: u64,
    /// An input error ended the session; further input is refused.
    failed: bool,
}

impl Link {
    fn new(limits: ChunkLimits) -> Self {
        Link {
            decoder: ChunkDecoder::new(limits),
            out: BytesMut::new(),
            send_chunk_size: DEFAULT_CHUNK_SIZE,
            bytes_received: 0,
            peer_window: 0,
            acked_at: 0,
            failed: false,
        }
    }

    fn ack_if_due(&mut self) {
        if self.peer_window > 0
            && self.bytes_received - self.acked_at >= u64::from(self.peer_window)
        {
            // The sequence number is the byte count modulo 2^32 (spec 5.4.3).
            let sequence = self.bytes_received as u32;
            self.send(&Message::Acknowledgement { sequence });
            self.acked_at = self.bytes_received;
        }
    }

    fn send(&mut self, msg: &Message) {
        msg.encode(&mut self.out, self.send_chunk_size);
    }

    /// Announces `size` and uses it for everything queued after it.
    fn set_chunk_size(&mut self, size: u32) {
        self.send(&Message::SetChunkSize(size));
        self.send_chunk_size = size;
    }

    fn send_raw(&mut self, csid: u32, timestamp: u32, type_id: u8, stream_id: u32, payload: &[u8]) {
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

    fn send_command(
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

    fn send_data(&mut self, csid: u32, stream_id: u32, timestamp: u32, values: &[Amf0Value]) {
        let payload = encode_values(values);
        self.send_raw(csid, timestamp, type_id::DATA_AMF0, stream_id, &payload);
    }

    fn take_output(&mut self) -> Option<Bytes> {
        if self.out.is_empty() {
            None
        } else {
            Some(self.out.split().freeze())
        }
    }

    /// Parses `raw` and handles the messages both sides treat alike. Returns the
    /// message when it is not one of them; media and data that do not parse are
    /// dropped (see "What is lenient").
    fn receive(&mut self, raw: &RawMessage) -> Result<Option<Message>, SessionError> {
        let msg = match Message::parse(raw) {
            Ok(msg) => msg,
            Err(_) if is_media_or_data(raw.type_id) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(self.handle_common(msg))
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
trait Handshake {
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
trait Endpoint {
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
fn handle_input<E: Endpoint>(session: &mut E, data: &[u8]) -> Result<(), SessionError> {
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

/// What a server-side message stream is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamState {
    Idle,
    /// publish reported, accept_publish / reject_publish not yet called.
    PublishRequested,
    Publishing,
    /// play reported, accept_play / play_not_found not yet called.
    PlayRequested,
    Playing,
}

#[derive(Debug)]
struct ServerStream {
    id: u32,
    state: StreamState,
    /// Stream name of the publish or play, for onStatus `details`.
    name: String,
}

/// A request that the peer withdrew (closed its stream) before the driver answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Withdrawn {
    Publish(u32),
    Play(u32),
}

/// Server side of one RTMP connection. See the [module docs](self) for the state
/// machine and the order in which to call the methods.
pub struct ServerSession {
    config: SessionConfig,
    /// `Some` until the handshake is done.
    handshake: Option<ServerHandshake>,
    link: Link,
    events: VecDeque<ServerEvent>,
    connected: bool,
    app: Option<String>,
    app_params: Option<String>,
    streams: Vec<ServerStream>,
    withdrawn: Vec<Withdrawn>,
}

impl ServerSession {
    /// `epoch` and `random` seed the handshake's S1 (this crate reads no clock and no
    /// RNG).
    pub fn new(config: SessionConfig, epoch: u32, random: u64) -> Self {
        let mut config = config;
        config.out_chunk_size = config.out_chunk_size.clamp(1, MAX_CHUNK_SIZE);
        ServerSession {
            config,
            handshake: Some(ServerHandshake::new(epoch, random)),
            link: Link::new(config.chunk_limits),
            events: VecDeque::new(),
            connected: false,
            app: None,
            app_params: None,
            streams: Vec::new(),
            withdrawn: Vec::new(),
        }
    }

    /// Feeds bytes read from the socket. An error ends the session.
    pub fn handle_input(&mut self, data: &[u8]) -> Result<(), SessionError> {
        handle_input(self, data)
    }

    /// The next event, in the order the peer's messages arrived.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// Everything queued for the peer, as one buffer.
    pub fn poll_output(&mut self) -> Option<Bytes> {
        self.link.take_output()
    }

    /// Answers [`ServerEvent::Publish`]: onStatus NetStream.Publish.Start.
    pub fn accept_publish(&mut self, stream_id: u32) {
        if let Some(stream) = self.stream_in(stream_id, StreamState::PublishRequested) {
            stream.state = StreamState::Publishing;
            let details = stream.name.clone();
            self.on_status(
                stream_id,
                "status",
                "NetStream.Publish.Start",
                "Started publishing stream.",
                &details,
            );
        } else if self.take_withdrawn(Withdrawn::Publish(stream_id)) {
            self.events.push_back(ServerEvent::Unpublish { stream_id });
        }
    }

    /// Answers [`ServerEvent::Publish`] with an error onStatus (e.g.
    /// `NetStream.Publish.BadName` when the stream is already being published).
    pub fn reject_publish(&mut self, stream_id: u32, code: &str, description: &str) {
        if let Some(stream) = self.stream_in(stream_id, StreamState::PublishRequested) {
            stream.state = StreamState::Idle;
            let details = std::mem::take(&mut stream.name);
            self.on_status(stream_id, "error", code, description, &details);
        } else {
            self.take_withdrawn(Withdrawn::Publish(stream_id));
        }
    }

    /// Answers [`ServerEvent::Play`]: Stream Begin, NetStream.Play.Reset (when
    /// `reset`), NetStream.Play.Start and |RtmpSampleAccess, as nginx-rtmp sends them.
    /// No NetStream.Data.Start (FMS/SRS send one): ffmpeg's FLV demuxer turns that
    /// data message into an extra "unknown" data stream, which confuses players and
    /// remuxers (`ffprobe` would list three streams). Media may follow this output.
    pub fn accept_play(&mut self, stream_id: u32, stream_name: &str, reset: bool) {
        if let Some(stream) = self.stream_in(stream_id, StreamState::PlayRequested) {
            stream.state = StreamState::Playing;
            stream.name = stream_name.to_string();
            self.link
                .send(&Message::UserControl(UserControl::StreamBegin(stream_id)));
            if reset {
                let description = format!("Playing and resetting {stream_name}.");
                self.on_status(
                    stream_id,
                    "status",
                    "NetStream.Play.Reset",
                    &description,
                    stream_name,
                );
            }
            let description = format!("Started playing {stream_name}.");
            self.on_status(
                stream_id,
                "status",
                "NetStream.Play.Start",
                &description,
                stream_name,
            );
            let sample_access = [
                Amf0Value::String("|RtmpSampleAccess".into()),
                Amf0Value::Boolean(true),
                Amf0Value::Boolean(true),
            ];
            self.link
                .send_data(csid::DATA, stream_id, 0, &sample_access);
        } else if self.take_withdrawn(Withdrawn::Play(stream_id)) {
            self.events.push_back(ServerEvent::StopPlay { stream_id });
        }
    }

    /// Answers [`ServerEvent::Play`] with NetStream.Play.StreamNotFound.
    pub fn play_not_found(&mut self, stream_id: u32, stream_name: &str) {
        if let Some(stream) = self.stream_in(stream_id, StreamState::PlayRequested) {
            stream.state = StreamState::Idle;
            stream.name.clear();
            let description = format!("Failed to play {stream_name}; stream not found.");
            self.on_status(
                stream_id,
                "error",
                "NetStream.Play.StreamNotFound",
                &description,
                stream_name,
            );
        } else {
            self.take_withdrawn(Withdrawn::Play(stream_id));
        }
    }

    /// Tells a playing stream that its publisher left: NetStream.Play.UnpublishNotify
    /// then Stream EOF. The stream stays playing (the player may wait for a new
    /// publisher); ignored for a stream that is not playing.
    pub fn unpublish_notify(&mut self, stream_id: u32, stream_name: &str) {
        if self.stream_in(stream_id, StreamState::Playing).is_some() {
            let description = format!("{stream_name} is now unpublished.");
            self.on_status(
                stream_id,
                "status",
                "NetStream.Play.UnpublishNotify",
                &description,
                stream_name,
            );
            self.link
                .send(&Message::UserControl(UserControl::StreamEof(stream_id)));
        }
    }

    /// The chunk size of everything we send after the connect answer; media chunked
    /// for this connection elsewhere must use it.
    pub fn out_chunk_size(&self) -> u32 {
        self.config.out_chunk_size
    }

    /// The connect `app`, without a trailing `/` or `?query`; `None` before connect.
    pub fn app(&self) -> Option<&str> {
        self.app.as_deref()
    }

    /// The `?query` part of the connect `app` (without the `?`), e.g. `vhost=x`.
    pub fn app_params(&self) -> Option<&str> {
        self.app_params.as_deref()
    }

    /// All bytes received, handshake included.
    pub fn bytes_received(&self) -> u64 {
        self.link.bytes_received
    }

    fn stream_in(&mut self, stream_id: u32, state: StreamState) -> Option<&mut ServerStream> {
        self.streams
            .iter_mut()
            .find(|s| s.id == stream_id && s.state == state)
    }

    fn take_withdrawn(&mut self, request: Withdrawn) -> bool {
        match self.withdrawn.iter().position(|w| *w == request) {
            Some(pos) => {
                self.withdrawn.swap_remove(pos);
                true
            }
            None => false,
        }
    }

    fn is_publishing(&self, stream_id: u32) -> bool {
        self.streams.iter().any(|s| {
            s.id == stream_id
                && matches!(
                    s.state,
                    StreamState::PublishRequested | StreamState::Publishing
                )
        })
    }

    fn on_status(
        &mut self,
        stream_id: u32,
        level: &str,
        code: &str,
        description: &str,
        details: &str,
    ) {
        let info = status_object(level, code, description, details);
        // csid 5, on the stream's message stream id, like FMS and SRS.
        self.link.send_command(
            csid::DATA,
            stream_id,
            "onStatus",
            0.0,
            &Amf0Value::Null,
            &[info],
        );
    }
}

impl Endpoint for ServerSession {
    type Handshake = ServerHandshake;

    fn parts(&mut self) -> (&mut Option<Self::Handshake>, &mut Link) {
        (&mut self.handshake, &mut self.link)
    }

    fn handle_message(&mut self, msg: Message) -> Result<(), SessionError> {
        // Media and data count only on the publishing stream; elsewhere they are
        // dropped (see "What is lenient").
        match msg {
            Message::Audio {
                timestamp,
                stream_id,
                payload,
            } if self.is_publishing(stream_id) => {
                self.events
                    .push_back(ServerEvent::Audio { timestamp, payload });
            }
            Message::Video {
                timestamp,
                stream_id,
                payload,
            } if self.is_publishing(stream_id) => {
                self.events
                    .push_back(ServerEvent::Video { timestamp, payload });
            }
            Message::Data {
                timestamp,
                stream_id,
                values,
                ..
            } if self.is_publishing(stream_id) => {
                if let Some((payload, values)) = metadata_from_data(values) {
                    self.events.push_back(ServerEvent::Metadata {
                        timestamp,
                        payload,
                        values,
                    });
                }
            }
            Message::Command {
                stream_id,
                name,
                transaction_id,
                command_object,
                args,
            } => {
                self.handle_command(stream_id, &name, transaction_id, command_object, args)?;
            }
            _ => {}
        }
        Ok(())
    }
}

impl ServerSession {
    fn handle_command(
        &mut self,
        stream_id: u32,
        name: &str,
        transaction_id: f64,
        command_object: Amf0Value,
        args: Vec<Amf0Value>,
    ) -> Result<(), SessionError> {
        if name == "connect" {
            return self.on_connect(transaction_id, command_object);
        }
        if !self.connected {
            return Err(SessionError::Protocol(format!(
                "{} before connect",
                short(name)
            )));
        }
        match name {
            "createStream" => self.on_create_stream(transaction_id)?,
            "publish" => self.on_publish(stream_id, &args)?,
            "play" => self.on_play(stream_id, &args)?,
            "deleteStream" => {
                if let Some(id) = args
                    .first()
                    .and_then(Amf0Value::as_f64)
                    .and_then(f64_to_u32)
                {
                    self.stop_stream(id, true);
                }
            }
            "closeStream" => self.stop_stream(stream_id, false),
            "FCUnpublish" => {
                let publishing = self
                    .streams
                    .iter()
                    .find(|s| {
                        matches!(
                            s.state,
                            StreamState::PublishRequested | StreamState::Publishing
                        )
                    })
                    .map(|s| s.id);
                if let Some(id) = publishing {
                    self.stop_stream(id, false);
                }
                self.answer_empty_result(transaction_id, Amf0Value::Undefined);
            }
            "releaseStream" | "FCPublish" | "_checkbw" => {
                self.answer_empty_result(transaction_id, Amf0Value::Undefined);
            }
            // Live streams have no length; a plain 0 satisfies the Flash players
            // that ask before playing.
            "getStreamLength" => self.answer_empty_result(transaction_id, Amf0Value::Number(0.0)),
            _ => {}
        }
        Ok(())
    }

    fn answer_empty_result(&mut self, transaction_id: f64, value: Amf0Value) {
        if transaction_id != 0.0 {
            self.link.send_command(
                csid::COMMAND,
                0,
                "_result",
                transaction_id,
                &Amf0Value::Null,
                &[value],
            );
        }
    }

    fn on_connect(
        &mut self,
        transaction_id: f64,
        command_object: Amf0Value,
    ) -> Result<(), SessionError> {
        if self.connected {
            return Err(SessionError::Protocol("second connect".into()));
        }
        let raw_app = command_object
            .get("app")
            .and_then(Amf0Value::as_str)
            .ok_or_else(|| SessionError::Protocol("connect without an app".into()))?;
        let (app, params) = match raw_app.split_once('?') {
            Some((app, query)) => (app, Some(query.to_string())),
            None => (raw_app, None),
        };
        let app = app.trim_end_matches('/').to_string();
        let tc_url = command_object
            .get("tcUrl")
            .and_then(Amf0Value::as_str)
            .map(str::to_string);
        let object_encoding = command_object
            .get("objectEncoding")
            .and_then(Amf0Value::as_f64)
            .unwrap_or(0.0);

        let window = self.config.window_ack_size;
        self.link.send(&Message::WindowAckSize(window));
        // Limit type 2 (dynamic), as FMS and SRS send it.
        self.link.send(&Message::SetPeerBandwidth {
            size: window,
            limit_type: 2,
        });
        // Must precede every message larger than 128 bytes, starting with _result.
        self.link.set_chunk_size(self.config.out_chunk_size);
        let properties = Amf0Value::Object(vec![
            ("fmsVer".into(), Amf0Value::String(FMS_VERSION.into())),
            ("capabilities".into(), Amf0Value::Number(FMS_CAPABILITIES)),
        ]);
        let info = Amf0Value::Object(vec![
            ("level".into(), Amf0Value::String("status".into())),
            (
                "code".into(),
                Amf0Value::String("NetConnection.Connect.Success".into()),
            ),
            (
                "description".into(),
                Amf0Value::String("Connection succeeded.".into()),
            ),
            ("objectEncoding".into(), Amf0Value::Number(object_encoding)),
        ]);
        self.link.send_command(
            csid::COMMAND,
            0,
            "_result",
            transaction_id,
            &properties,
            &[info],
        );

        self.connected = true;
        self.app = Some(app.clone());
        self.app_params = params;
        self.events.push_back(ServerEvent::Connect {
            app,
            tc_url,
            command_object,
        });
        Ok(())
    }

    fn on_create_stream(&mut self, transaction_id: f64) -> Result<(), SessionError> {
        let in_use = |id: u32| {
            self.streams.iter().any(|s| s.id == id)
                || self
                    .withdrawn
                    .iter()
                    .any(|w| matches!(w, Withdrawn::Publish(i) | Withdrawn::Play(i) if *i == id))
        };
        let id = (1..=MAX_STREAMS).find(|id| !in_use(*id)).ok_or_else(|| {
            SessionError::Protocol(format!("more than {MAX_STREAMS} streams on one connection"))
        })?;
        self.streams.push(ServerStream {
            id,
            state: StreamState::Idle,
            name: String::new(),
        });
        self.link.send_command(
            csid::COMMAND,
            0,
            "_result",
            transaction_id,
            &Amf0Value::Null,
            &[Amf0Value::Number(f64::from(id))],
        );
        Ok(())
    }

    fn created_stream(&self, command: &str, stream_id: u32) -> Result<usize, SessionError> {
        self.streams
            .iter()
            .position(|s| s.id == stream_id)
            .ok_or_else(|| {
                SessionError::Protocol(format!(
                    "{command} on stream {stream_id}, which createStream did not return"
                ))
            })
    }

    fn on_publish(&mut self, stream_id: u32, args: &[Amf0Value]) -> Result<(), SessionError> {
        let index = self.created_stream("publish", stream_id)?;
        let publish_pending_or_active = self.streams.iter().any(|s| {
            matches!(
                s.state,
                StreamState::PublishRequested | StreamState::Publishing
            )
        }) || self
            .withdrawn
            .iter()
            .any(|w| matches!(w, Withdrawn::Publish(_)));
        if publish_pending_or_active {
            return Err(SessionError::Protocol(
                "second publish on one connection".into(),
            ));
        }
        if self.streams[index].state != StreamState::Idle {
            return Err(SessionError::Protocol(format!(
                "publish on stream {stream_id}, which is playing"
            )));
        }
        let raw_name = args.first().and_then(Amf0Value::as_str).unwrap_or("");
        let (stream_name, params) = split_stream_name(raw_name);
        if stream_name.is_empty() {
            self.on_status(
                stream_id,
                "error",
                "NetStream.Publish.BadName",
                "Missing stream name.",
                raw_name,
            );
            return Ok(());
        }
        let publish_type = args
            .get(1)
            .and_then(Amf0Value::as_str)
            .unwrap_or("live")
            .to_string();
        let stream = &mut self.streams[index];
        stream.state = StreamState::PublishRequested;
        stream.name = stream_name.clone();
        self.events.push_back(ServerEvent::Publish {
            stream_id,
            stream_name,
            params,
            publish_type,
        });
        Ok(())
    }

    fn on_play(&mut self, stream_id: u32, args: &[Amf0Value]) -> Result<(), SessionError> {
        let index = self.created_stream("play", stream_id)?;
        match self.streams[index].state {
            StreamState::Idle => {}
            StreamState::PublishRequested | StreamState::Publishing => {
                return Err(SessionError::Protocol(format!(
                    "play on stream {stream_id}, which is publishing"
                )));
            }
            StreamState::PlayRequested => {
                return Err(SessionError::Protocol(format!(
                    "second play on stream {stream_id} before the first was answered"
                )));
            }
            // Flash's NetStream.play() on a playing stream switches streams: stop the
            // old play, then request the new one.
            StreamState::Playing => self.stop_stream(stream_id, false),
        }
        let raw_name = args.first().and_then(Amf0Value::as_str).unwrap_or("");
        let (stream_name, params) = split_stream_name(raw_name);
        let start = args.get(1).and_then(Amf0Value::as_f64).unwrap_or(-2.0);
        let duration = args.get(2).and_then(Amf0Value::as_f64).unwrap_or(-1.0);
        let reset = match args.get(3) {
            Some(Amf0Value::Boolean(b)) => *b,
            // Old FMS clients send reset as a number (0 = do not flush).
            Some(Amf0Value::Number(n)) => *n != 0.0,
            _ => true,
        };
        let stream = &mut self.streams[index];
        stream.state = StreamState::PlayRequested;
        stream.name = stream_name.clone();
        self.events.push_back(ServerEvent::Play {
            stream_id,
            stream_name,
            params,
            start,
            duration,
            reset,
        });
        Ok(())
    }

    /// The peer closed (or deleted) a stream: report the end of what it was doing.
    fn stop_stream(&mut self, stream_id: u32, delete: bool) {
        let Some(index) = self.streams.iter().position(|s| s.id == stream_id) else {
            return;
        };
        let stream = &mut self.streams[index];
        match stream.state {
            StreamState::Idle => {}
            StreamState::Publishing => self.events.push_back(ServerEvent::Unpublish { stream_id }),
            StreamState::Playing => self.events.push_back(ServerEvent::StopPlay { stream_id }),
            StreamState::PublishRequested => self.withdrawn.push(Withdrawn::Publish(stream_id)),
            StreamState::PlayRequested => self.withdrawn.push(Withdrawn::Play(stream_id)),
        }
        stream.state = StreamState::Idle;
        stream.name.clear();
        if delete {
            self.streams.swap_remove(index);
        }
    }
}

/// What a client session does once connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMode {
    /// createStream + play(stream)
    Play,
    /// releaseStream + FCPublish + createStream + publish(stream, "live")
    Publish,
}

/// Where a client session connects: `rtmp://host[:port]/{app}/{stream}` gives
/// app, `tc_url` = `rtmp://host[:port]/{app}`, stream (with `?query` kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTarget {
    pub app: String,
    pub tc_url: String,
    pub stream: String,
    pub mode: ClientMode,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// NetConnection.Connect.Success received.
    Connected,
    /// NetStream.Play.Start or NetStream.Publish.Start received: media may flow.
    Started {
        stream_id: u32,
    },
    /// Any onStatus (including the ones above), for logging and errors such as
    /// NetStream.Play.StreamNotFound, NetStream.Publish.BadName, UnpublishNotify.
    Status {
        level: String,
        code: String,
        description: String,
    },
    /// `_error` answer to one of our commands.
    CommandError {
        command: String,
        description: String,
    },
    /// onMetaData (with or without @setDataFrame): `payload` is the AMF0 bytes of
    /// "onMetaData" + the value, `values` the same two values decoded.
    Metadata {
        timestamp: u32,
        payload: Bytes,
        values: Vec<Amf0Value>,
    },
    Audio {
        timestamp: u32,
        payload: Bytes,
    },
    Video {
        timestamp: u32,
        payload: Bytes,
    },
    /// Stream EOF user control or onStatus *.UnpublishNotify / *.Stop. Reported once
    /// until the stream starts (Started, Stream Begin) again.
    StreamEnded,
}

/// Client state machine: handshake (digest form when `digest`), connect, then play or
/// publish per [`ClientTarget`], automatically. Answers pings, sends acknowledgements.
pub struct ClientSession {
    config: SessionConfig,
    target: ClientTarget,
    /// `Some` until the handshake is done.
    handshake: Option<ClientHandshake>,
    link: Link,
    events: VecDeque<ClientEvent>,
    next_transaction: f64,
    /// Commands sent with a transaction id and not yet answered.
    pending: Vec<(f64, &'static str)>,
    /// The message stream id createStream returned.
    stream_id: Option<u32>,
    /// StreamEnded was reported and nothing restarted the stream since.
    ended: bool,
    closed: bool,
}

impl ClientSession {
    pub fn new(
        config: SessionConfig,
        target: ClientTarget,
        epoch: u32,
        random: u64,
        digest: bool,
    ) -> Self {
        let mut config = config;
        config.out_chunk_size = config.out_chunk_size.clamp(1, MAX_CHUNK_SIZE);
        let mut handshake = ClientHandshake::new(epoch, random, digest);
        let mut link = Link::new(config.chunk_limits);
        while let Some(bytes) = handshake.poll_output() {
            link.out.extend_from_slice(&bytes);
        }
        ClientSession {
            config,
            target,
            handshake: Some(handshake),
            link,
            events: VecDeque::new(),
            next_transaction: 1.0,
            pending: Vec::new(),
            stream_id: None,
            ended: false,
            closed: false,
        }
    }

    /// Feeds bytes read from the socket. An error ends the session.
    pub fn handle_input(&mut self, data: &[u8]) -> Result<(), SessionError> {
        handle_input(self, data)
    }

    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Everything queued for the peer, as one buffer (C0 + C1 right after `new`).
    pub fn poll_output(&mut self) -> Option<Bytes> {
        self.link.take_output()
    }

    /// The message stream id createStream returned, once it did.
    pub fn stream_id(&self) -> Option<u32> {
        self.stream_id
    }

    /// Publishing: queue one message (after Started). `@setDataFrame` is prepended to
    /// metadata by `send_metadata`. Dropped before createStream answered or after
    /// `close`.
    pub fn send_audio(&mut self, timestamp: u32, payload: &[u8]) {
        if let Some(stream_id) = self.open_stream() {
            self.link
                .send_raw(csid::AUDIO, timestamp, type_id::AUDIO, stream_id, payload);
        }
    }

    pub fn send_video(&mut self, timestamp: u32, payload: &[u8]) {
        if let Some(stream_id) = self.open_stream() {
            self.link
                .send_raw(csid::VIDEO, timestamp, type_id::VIDEO, stream_id, payload);
        }
    }

    /// `values` is `["onMetaData", object]` (a bare `[object]` gets the name added).
    pub fn send_metadata(&mut self, values: &[Amf0Value]) {
        let Some(stream_id) = self.open_stream() else {
            return;
        };
        let mut all = Vec::with_capacity(values.len() + 2);
        all.push(Amf0Value::String("@setDataFrame".into()));
        if !matches!(values.first(), Some(Amf0Value::String(_))) {
            all.push(Amf0Value::String("onMetaData".into()));
        }
        all.extend_from_slice(values);
        self.link.send_data(csid::DATA, stream_id, 0, &all);
    }

    /// Sends FCUnpublish + deleteStream (publish) or closeStream + deleteStream
    /// (play). Later calls, and sends after it, do nothing.
    pub fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        let Some(stream_id) = self.stream_id else {
            return;
        };
        match self.target.mode {
            ClientMode::Publish => {
                let stream = Amf0Value::String(self.target.stream.clone());
                self.send_tracked(0, "FCUnpublish", &[stream]);
            }
            ClientMode::Play => {
                self.link.send_command(
                    csid::COMMAND,
                    stream_id,
                    "closeStream",
                    0.0,
                    &Amf0Value::Null,
                    &[],
                );
            }
        }
        self.send_tracked(
            0,
            "deleteStream",
            &[Amf0Value::Number(f64::from(stream_id))],
        );
    }

    fn open_stream(&self) -> Option<u32> {
        if self.closed {
            None
        } else {
            self.stream_id
        }
    }

    /// Sends a command with a fresh transaction id and remembers it for the answer.
    fn send_tracked(&mut self, stream_id: u32, name: &'static str, args: &[Amf0Value]) {
        let transaction_id = self.next_transaction;
        self.next_transaction += 1.0;
        self.pending.push((transaction_id, name));
        self.link.send_command(
            csid::COMMAND,
            stream_id,
            name,
            transaction_id,
            &Amf0Value::Null,
            args,
        );
    }

    fn send_connect(&mut self) {
        let text = |s: &str| Amf0Value::String(s.to_string());
        let mut properties = vec![
            ("app".to_string(), text(&self.target.app)),
            ("flashVer".to_string(), text(CLIENT_FLASH_VER)),
            ("tcUrl".to_string(), text(&self.target.tc_url)),
        ];
        match self.target.mode {
            ClientMode::Publish => properties.push(("type".into(), text("nonprivate"))),
            ClientMode::Play => properties.extend([
                ("fpad".to_string(), Amf0Value::Boolean(false)),
                ("capabilities".to_string(), Amf0Value::Number(15.0)),
                // The codec bit masks Flash Player 10+ (and ffmpeg) announce.
                ("audioCodecs".to_string(), Amf0Value::Number(4071.0)),
                ("videoCodecs".to_string(), Amf0Value::Number(252.0)),
                ("videoFunction".to_string(), Amf0Value::Number(1.0)),
            ]),
        }
        let transaction_id = self.next_transaction;
        self.next_transaction += 1.0;
        self.pending.push((transaction_id, "connect"));
        self.link.send_command(
            csid::COMMAND,
            0,
            "connect",
            transaction_id,
            &Amf0Value::Object(properties),
            &[],
        );
    }
}

impl Endpoint for ClientSession {
    type Handshake = ClientHandshake;

    fn parts(&mut self) -> (&mut Option<Self::Handshake>, &mut Link) {
        (&mut self.handshake, &mut self.link)
    }

    fn on_handshake_done(&mut self) {
        self.send_connect();
    }

    fn handle_message(&mut self, msg: Message) -> Result<(), SessionError> {
        match msg {
            Message::UserControl(UserControl::StreamBegin(_)) => self.ended = false,
            Message::UserControl(UserControl::StreamEof(_)) => self.stream_ended(),
            Message::Audio {
                timestamp, payload, ..
            } => self
                .events
                .push_back(ClientEvent::Audio { timestamp, payload }),
            Message::Video {
                timestamp, payload, ..
            } => self
                .events
                .push_back(ClientEvent::Video { timestamp, payload }),
            Message::Data {
                timestamp, values, ..
            } => {
                if values.first().and_then(Amf0Value::as_str) == Some("onStatus") {
                    if let Some(info) = values.get(1) {
                        self.on_status(info);
                    }
                } else if let Some((payload, values)) = metadata_from_data(values) {
                    self.events.push_back(ClientEvent::Metadata {
                        timestamp,
                        payload,
                        values,
                    });
                }
            }
            Message::Command {
                name,
                transaction_id,
                command_object,
                args,
                ..
            } => match name.as_str() {
                "_result" => self.on_result(transaction_id, &command_object, &args)?,
                "_error" => self.on_error(transaction_id, &command_object, &args),
                "onStatus" => {
                    // The info object is the first argument; a few servers put it in
                    // the command object's place instead.
                    let info = args
                        .first()
                        .filter(|a| a.get("code").is_some())
                        .unwrap_or(&command_object);
                    self.on_status(info);
                }
                _ => {}
            },
            _ => {}
        }
        Ok(())
    }
}

impl ClientSession {
    fn take_pending(&mut self, transaction_id: f64) -> Option<&'static str> {
        let pos = self
            .pending
            .iter()
            .position(|(t, _)| *t == transaction_id)?;
        Some(self.pending.swap_remove(pos).1)
    }

    fn on_result(
        &mut self,
        transaction_id: f64,
        command_object: &Amf0Value,
        args: &[Amf0Value],
    ) -> Result<(), SessionError> {
        match self.take_pending(transaction_id) {
            Some("connect") => {
                self.events.push_back(ClientEvent::Connected);
                self.link.set_chunk_size(self.config.out_chunk_size);
                self.link
                    .send(&Message::WindowAckSize(self.config.window_ack_size));
                let stream = Amf0Value::String(self.target.stream.clone());
                if self.target.mode == ClientMode::Publish {
                    self.send_tracked(0, "releaseStream", std::slice::from_ref(&stream));
                    self.send_tracked(0, "FCPublish", &[stream]);
                }
                self.send_tracked(0, "createStream", &[]);
            }
            Some("createStream") => {
                let stream_id = args
                    .iter()
                    .chain(std::iter::once(command_object))
                    .find_map(Amf0Value::as_f64)
                    .and_then(f64_to_u32)
                    .ok_or_else(|| {
                        SessionError::Protocol("createStream _result without a stream id".into())
                    })?;
                self.stream_id = Some(stream_id);
                if self.closed {
                    return Ok(());
                }
                let stream = Amf0Value::String(self.target.stream.clone());
                match self.target.mode {
                    ClientMode::Publish => {
                        self.send_tracked(
                            stream_id,
                            "publish",
                            &[stream, Amf0Value::String("live".into())],
                        );
                    }
                    ClientMode::Play => {
                        // start -2: live if there is a live stream, else recorded
                        // (spec 7.2.2.1), the default Flash Player sends.
                        self.send_tracked(stream_id, "play", &[stream, Amf0Value::Number(-2.0)]);
                        self.link
                            .send(&Message::UserControl(UserControl::SetBufferLength {
                                stream_id,
                                buffer_ms: PLAY_BUFFER_MS,
                            }));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn on_error(&mut self, transaction_id: f64, command_object: &Amf0Value, args: &[Amf0Value]) {
        let command = self
            .take_pending(transaction_id)
            .unwrap_or("unknown")
            .to_string();
        let info = args.first().unwrap_or(command_object);
        let description = info
            .get("description")
            .or_else(|| info.get("code"))
            .and_then(Amf0Value::as_str)
            .unwrap_or("")
            .to_string();
        self.events.push_back(ClientEvent::CommandError {
            command,
            description,
        });
    }

    fn on_status(&mut self, info: &Amf0Value) {
        let field = |key: &str| {
            info.get(key)
                .and_then(Amf0Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let (level, code, description) = (field("level"), field("code"), field("description"));
        let started = code == "NetStream.Publish.Start" || code == "NetStream.Play.Start";
        let ended = code.ends_with(".UnpublishNotify") || code.ends_with(".Stop");
        self.events.push_back(ClientEvent::Status {
            level,
            code,
            description,
        });
        if started {
            self.ended = false;
            self.events.push_back(ClientEvent::Started {
                stream_id: self.stream_id.unwrap_or(0),
            });
        } else if ended {
            self.stream_ended();
        }
    }

    fn stream_ended(&mut self) {
        if !self.ended {
            self.ended = true;
            self.events.push_back(ClientEvent::StreamEnded);
        }
    }
}

/// Parses `rtmp://host[:port]/app[/inst]/stream[?q]` into (host, port, target).
/// The app is everything between the host and the last path segment. `rtmps://`
/// is accepted too (default port 443); an IPv6 host is written `[addr]` and returned
/// without the brackets.
pub fn parse_rtmp_url(url: &str, mode: ClientMode) -> Option<(String, u16, ClientTarget)> {
    let (scheme, rest) = url.split_once("://")?;
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "rtmp" => 1935,
        "rtmps" => 443,
        _ => return None,
    };
    let (authority, path_and_query) = rest.split_once('/')?;
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']')?;
        let port = match after {
            "" => default_port,
            _ => after.strip_prefix(':')?.parse().ok()?,
        };
        (host, port)
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, port.parse().ok()?),
            None => (authority, default_port),
        }
    };
    if host.is_empty() || host.contains(['@', ' ', '[', ']']) || port == 0 {
        return None;
    }
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_and_query, None),
    };
    let (app, name) = path.rsplit_once('/')?;
    if app.is_empty() || name.is_empty() || app.split('/').any(str::is_empty) {
        return None;
    }
    let stream = match query {
        Some(query) => format!("{name}?{query}"),
        None => name.to_string(),
    };
    let tc_url = format!("{scheme}://{authority}/{app}");
    Some((
        host.to_string(),
        port,
        ClientTarget {
            app: app.to_string(),
            tc_url,
            stream,
            mode,
        },
    ))
}

/// Splits `name?query` into the name and the query without `?`.
fn split_stream_name(raw: &str) -> (String, String) {
    match raw.split_once('?') {
        Some((name, query)) => (name.to_string(), query.to_string()),
        None => (raw.to_string(), String::new()),
    }
}

fn status_object(level: &str, code: &str, description: &str, details: &str) -> Amf0Value {
    Amf0Value::Object(vec![
        ("level".into(), Amf0Value::String(level.into())),
        ("code".into(), Amf0Value::String(code.into())),
        ("description".into(), Amf0Value::String(description.into())),
        ("details".into(), Amf0Value::String(details.into())),
    ])
}

/// Recognises metadata in a data message: `@setDataFrame, onMetaData, value` (as
/// encoders send it) or `onMetaData, value` (as servers forward it). Returns the
/// AMF0 bytes of `onMetaData, value` and those two values. Re-encoding, rather than
/// slicing the received payload, keeps the output independent of how the peer
/// encoded the strings; metadata arrives once per publish, so the copy is cheap.
fn metadata_from_data(mut values: Vec<Amf0Value>) -> Option<(Bytes, Vec<Amf0Value>)> {
    if values.first().and_then(Amf0Value::as_str) == Some("@setDataFrame") {
        values.remove(0);
    }
    if values.len() < 2 || values[0].as_str() != Some("onMetaData") {
        return None;
    }
    values.truncate(2);
    Some((encode_values(&values), values))
}

fn encode_values(values: &[Amf0Value]) -> Bytes {
    let mut out = Vec::new();
    for value in values {
        amf0::encode(value, &mut out);
    }
    Bytes::from(out)
}

fn is_media_or_data(type_id: u8) -> bool {
    matches!(
        type_id,
        type_id::AUDIO | type_id::VIDEO | type_id::DATA_AMF0 | type_id::DATA_AMF3
    )
}

/// A transaction or stream id from the wire, if it is a whole number that fits u32.
fn f64_to_u32(v: f64) -> Option<u32> {
    if v.is_finite() && v >= 0.0 && v <= f64::from(u32::MAX) && v.fract() == 0.0 {
        Some(v as u32)
    } else {
        None
    }
}

/// A peer-supplied name, cut for quoting in an error.
fn short(name: &str) -> &str {
    match name.char_indices().nth(MAX_NAME_IN_ERROR) {
        Some((end, _)) => &name[..end],
        None => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtmp::handshake::HANDSHAKE_SIZE;

    /// C0 + C1 + C2 (or S0 + S1 + S2).
    const HANDSHAKE_BYTES: usize = 1 + 2 * HANDSHAKE_SIZE;

    fn text(s: &str) -> Amf0Value {
        Amf0Value::String(s.to_string())
    }

    fn target(mode: ClientMode, stream: &str) -> ClientTarget {
        ClientTarget {
            app: "live".into(),
            tc_url: "rtmp://localhost/live".into(),
            stream: stream.into(),
            mode,
        }
    }

    /// How the test driver answers publish and play requests.
    #[derive(Clone, Copy, PartialEq)]
    enum Answer {
        Accept,
        Refuse,
    }

    /// A client and a server session wired back to back in memory.
    struct Pair {
        client: ClientSession,
        server: ServerSession,
        answer: Answer,
        byte_at_a_time: bool,
        server_events: Vec<ServerEvent>,
        client_events: Vec<ClientEvent>,
        /// Every byte the client sent, and every byte the server sent.
        to_server: Vec<u8>,
        to_client: Vec<u8>,
    }

    /// Feeds `bytes` to one side, whole or one byte at a time.
    fn deliver(
        bytes: &[u8],
        byte_at_a_time: bool,
        mut handle: impl FnMut(&[u8]) -> Result<(), SessionError>,
    ) {
        if byte_at_a_time {
            for byte in bytes {
                handle(std::slice::from_ref(byte)).unwrap();
            }
        } else {
            handle(bytes).unwrap();
        }
    }

    impl Pair {
        fn new(mode: ClientMode, stream: &str) -> Pair {
            Pair::with_configs(
                mode,
                stream,
                SessionConfig::default(),
                SessionConfig::default(),
            )
        }

        fn with_configs(
            mode: ClientMode,
            stream: &str,
            client: SessionConfig,
            server: SessionConfig,
        ) -> Pair {
            Pair {
                client: ClientSession::new(client, target(mode, stream), 1000, 0x1234_5678, true),
                server: ServerSession::new(server, 2000, 0x9abc_def0),
                answer: Answer::Accept,
                byte_at_a_time: false,
                server_events: Vec::new(),
                client_events: Vec::new(),
                to_server: Vec::new(),
                to_client: Vec::new(),
            }
        }

        /// Moves bytes both ways, answering requests, until nobody has output.
        fn pump(&mut self) {
            for _ in 0..1000 {
                let mut moved = false;
                while let Some(bytes) = self.client.poll_output() {
                    moved = true;
                    self.to_server.extend_from_slice(&bytes);
                    let server = &mut self.server;
                    deliver(&bytes, self.byte_at_a_time, |b| server.handle_input(b));
                }
                while let Some(event) = self.server.poll_event() {
                    self.answer(&event);
                    self.server_events.push(event);
                }
                while let Some(bytes) = self.server.poll_output() {
                    moved = true;
                    self.to_client.extend_from_slice(&bytes);
                    let client = &mut self.client;
                    deliver(&bytes, self.byte_at_a_time, |b| client.handle_input(b));
                }
                while let Some(event) = self.client.poll_event() {
                    self.client_events.push(event);
                }
                if !moved {
                    return;
                }
            }
            panic!("the sessions never went quiet");
        }

        fn answer(&mut self, event: &ServerEvent) {
            match (event, self.answer) {
                (ServerEvent::Publish { stream_id, .. }, Answer::Accept) => {
                    self.server.accept_publish(*stream_id)
                }
                (ServerEvent::Publish { stream_id, .. }, Answer::Refuse) => {
                    self.server.reject_publish(
                        *stream_id,
                        "NetStream.Publish.BadName",
                        "Stream already publishing.",
                    )
                }
                (
                    ServerEvent::Play {
                        stream_id,
                        stream_name,
                        reset,
                        ..
                    },
                    Answer::Accept,
                ) => self.server.accept_play(*stream_id, stream_name, *reset),
                (
                    ServerEvent::Play {
                        stream_id,
                        stream_name,
                        ..
                    },
                    Answer::Refuse,
                ) => self.server.play_not_found(*stream_id, stream_name),
                _ => {}
            }
        }

        fn status_codes(&self) -> Vec<&str> {
            self.client_events
                .iter()
                .filter_map(|e| match e {
                    ClientEvent::Status { code, .. } => Some(code.as_str()),
                    _ => None,
                })
                .collect()
        }
    }

    /// Decodes the messages in what one side sent, after its handshake bytes.
    fn messages(sent: &[u8]) -> Vec<Message> {
        let mut decoder = ChunkDecoder::new(ChunkLimits::default());
        decoder.push(&sent[HANDSHAKE_BYTES..]);
        let mut out = Vec::new();
        while let Some(raw) = decoder.poll_message().unwrap() {
            out.push(Message::parse(&raw).unwrap());
        }
        out
    }

    /// A server that completed a digest handshake with a real client handshake.
    fn handshaken_server() -> ServerSession {
        let mut server = ServerSession::new(SessionConfig::default(), 0, 7);
        let mut client = ClientHandshake::new(0, 9, true);
        for _ in 0..4 {
            while let Some(bytes) = client.poll_output() {
                server.handle_input(&bytes).unwrap();
            }
            match server.poll_output() {
                Some(bytes) => {
                    client.handle_input(&bytes).unwrap();
                }
                None => break,
            }
        }
        server
    }

    fn command(
        stream_id: u32,
        name: &str,
        transaction_id: f64,
        object: Amf0Value,
        args: &[Amf0Value],
    ) -> BytesMut {
        let payload = message::command_payload(name, transaction_id, &object, args);
        let mut out = BytesMut::new();
        chunk::encode_message(
            &mut out,
            csid::COMMAND,
            0,
            type_id::COMMAND_AMF0,
            stream_id,
            &payload,
            DEFAULT_CHUNK_SIZE,
        );
        out
    }

    fn connect_command(app: &str) -> BytesMut {
        let object = Amf0Value::Object(vec![
            ("app".into(), text(app)),
            ("tcUrl".into(), text(&format!("rtmp://localhost/{app}"))),
        ]);
        command(0, "connect", 1.0, object, &[])
    }

    fn drain_events(server: &mut ServerSession) -> Vec<ServerEvent> {
        std::iter::from_fn(|| server.poll_event()).collect()
    }

    /// Decodes one output buffer (type-0 headers, so a fresh decoder can read it as
    /// long as every message fits in `chunk_size`).
    fn decode_output(bytes: &[u8], chunk_size: u32) -> Vec<Message> {
        let mut decoder = ChunkDecoder::new(ChunkLimits::default());
        if chunk_size != DEFAULT_CHUNK_SIZE {
            let mut set = BytesMut::new();
            Message::SetChunkSize(chunk_size).encode(&mut set, DEFAULT_CHUNK_SIZE);
            decoder.push(&set);
        }
        decoder.push(bytes);
        let mut out = Vec::new();
        while let Some(raw) = decoder.poll_message().unwrap() {
            match Message::parse(&raw).unwrap() {
                Message::SetChunkSize(_) if chunk_size != DEFAULT_CHUNK_SIZE && out.is_empty() => {}
                msg => out.push(msg),
            }
        }
        out
    }

    fn publish_opening(p: &mut Pair) {
        p.pump();
        match &p.server_events[0] {
            ServerEvent::Connect {
                app,
                tc_url,
                command_object,
            } => {
                assert_eq!(app, "live");
                assert_eq!(tc_url.as_deref(), Some("rtmp://localhost/live"));
                assert_eq!(command_object.get("type"), Some(&text("nonprivate")));
                assert_eq!(
                    command_object.get("flashVer"),
                    Some(&text(CLIENT_FLASH_VER))
                );
            }
            other => panic!("expected Connect, got {other:?}"),
        }
        assert_eq!(
            p.server_events[1],
            ServerEvent::Publish {
                stream_id: 1,
                stream_name: "cam".into(),
                params: "key=1".into(),
                publish_type: "live".into()
            }
        );
        assert_eq!(p.server_events.len(), 2);
        assert_eq!(
            p.client_events,
            vec![
                ClientEvent::Connected,
                ClientEvent::Status {
                    level: "status".into(),
                    code: "NetStream.Publish.Start".into(),
                    description: "Started publishing stream.".into()
                },
                ClientEvent::Started { stream_id: 1 },
            ]
        );
        p.server_events.clear();
        p.client_events.clear();
    }

    #[test]
    fn publish_end_to_end() {
        let mut p = Pair::new(ClientMode::Publish, "cam?key=1");
        publish_opening(&mut p);

        // What the server said to connect, in this order: the chunk size goes out
        // before the first message larger than 128 bytes.
        let replies = messages(&p.to_client);
        assert_eq!(replies[0], Message::WindowAckSize(5_000_000));
        assert_eq!(
            replies[1],
            Message::SetPeerBandwidth {
                size: 5_000_000,
                limit_type: 2
            }
        );
        assert_eq!(replies[2], Message::SetChunkSize(60000));
        match &replies[3] {
            Message::Command {
                name,
                transaction_id,
                command_object,
                args,
                ..
            } => {
                assert_eq!((name.as_str(), *transaction_id), ("_result", 1.0));
                assert_eq!(command_object.get("fmsVer"), Some(&text(FMS_VERSION)));
                assert_eq!(
                    args[0].get("code"),
                    Some(&text("NetConnection.Connect.Success"))
                );
                assert_eq!(args[0].get("objectEncoding"), Some(&Amf0Value::Number(0.0)));
            }
            other => panic!("expected _result, got {other:?}"),
        }

        let metadata = vec![
            text("onMetaData"),
            Amf0Value::EcmaArray(vec![
                ("width".into(), Amf0Value::Number(640.0)),
                ("videocodecid".into(), Amf0Value::Number(7.0)),
            ]),
        ];
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        p.client.send_metadata(&metadata);
        p.client.send_video(40, &[0x17, 0, 0, 0, 0, 1, 2, 3]);
        p.client.send_video(80, &big);
        p.client.send_audio(41, &[0xaf, 1, 0x21]);
        p.pump();
        assert_eq!(
            p.server_events,
            vec![
                ServerEvent::Metadata {
                    timestamp: 0,
                    payload: encode_values(&metadata),
                    values: metadata.clone()
                },
                ServerEvent::Video {
                    timestamp: 40,
                    payload: Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 2, 3])
                },
                ServerEvent::Video {
                    timestamp: 80,
                    payload: Bytes::from(big)
                },
                ServerEvent::Audio {
                    timestamp: 41,
                    payload: Bytes::from_static(&[0xaf, 1, 0x21])
                },
            ]
        );
        p.server_events.clear();

        p.client.close();
        p.client.close();
        p.pump();
        assert_eq!(
            p.server_events,
            vec![ServerEvent::Unpublish { stream_id: 1 }]
        );
        // Nothing is sent after close.
        p.client.send_audio(50, &[0xaf, 1]);
        assert!(p.client.poll_output().is_none());
    }

    #[test]
    fn play_end_to_end() {
        let mut p = Pair::new(ClientMode::Play, "cam");
        p.pump();
        assert!(matches!(p.server_events[0], ServerEvent::Connect { .. }));
        assert_eq!(
            p.server_events[1],
            ServerEvent::Play {
                stream_id: 1,
                stream_name: "cam".into(),
                params: String::new(),
                start: -2.0,
                duration: -1.0,
                reset: true
            }
        );
        assert_eq!(p.client_events[0], ClientEvent::Connected);
        assert!(p
            .client_events
            .contains(&ClientEvent::Started { stream_id: 1 }));
        assert_eq!(
            p.status_codes(),
            ["NetStream.Play.Reset", "NetStream.Play.Start"]
        );
        assert_eq!(p.client.stream_id(), Some(1));
        let sent = messages(&p.to_server);
        assert!(
            sent.contains(&Message::UserControl(UserControl::SetBufferLength {
                stream_id: 1,
                buffer_ms: PLAY_BUFFER_MS
            }))
        );
        let server_sent = messages(&p.to_client);
        assert!(server_sent.contains(&Message::UserControl(UserControl::StreamBegin(1))));
        p.client_events.clear();

        // Media the server chunks once and shares: message stream id 1 at the
        // announced chunk size, written straight into the client's input.
        let chunk_size = p.server.out_chunk_size();
        let big: Vec<u8> = (0..150_000u32).map(|i| (i % 253) as u8).collect();
        let metadata = [
            text("onMetaData"),
            Amf0Value::Object(vec![("width".into(), Amf0Value::Number(320.0))]),
        ];
        let metadata_payload = encode_values(&metadata);
        let mut shared = BytesMut::new();
        chunk::encode_message(
            &mut shared,
            csid::DATA,
            0,
            type_id::DATA_AMF0,
            1,
            &metadata_payload,
            chunk_size,
        );
        chunk::encode_message(
            &mut shared,
            csid::VIDEO,
            1234,
            type_id::VIDEO,
            1,
            &big,
            chunk_size,
        );
        chunk::encode_message(
            &mut shared,
            csid::AUDIO,
            1240,
            type_id::AUDIO,
            1,
            &[0xaf, 1, 2],
            chunk_size,
        );
        p.client.handle_input(&shared).unwrap();
        p.pump();
        assert_eq!(
            p.client_events,
            vec![
                ClientEvent::Metadata {
                    timestamp: 0,
                    payload: metadata_payload,
                    values: metadata.to_vec()
                },
                ClientEvent::Video {
                    timestamp: 1234,
                    payload: Bytes::from(big)
                },
                ClientEvent::Audio {
                    timestamp: 1240,
                    payload: Bytes::from_static(&[0xaf, 1, 2])
                },
            ]
        );
        p.client_events.clear();

        // The publisher left: UnpublishNotify + Stream EOF make one StreamEnded.
        p.server.unpublish_notify(1, "cam");
        p.pump();
        assert_eq!(
            p.client_events,
            vec![
                ClientEvent::Status {
                    level: "status".into(),
                    code: "NetStream.Play.UnpublishNotify".into(),
                    description: "cam is now unpublished.".into()
                },
                ClientEvent::StreamEnded,
            ]
        );

        p.server_events.clear();
        p.client.close();
        p.pump();
        assert_eq!(
            p.server_events,
            vec![ServerEvent::StopPlay { stream_id: 1 }]
        );
    }

    #[test]
    fn play_not_found_is_reported() {
        let mut p = Pair::new(ClientMode::Play, "nothing");
        p.answer = Answer::Refuse;
        p.pump();
        assert!(p.client_events.contains(&ClientEvent::Status {
            level: "error".into(),
            code: "NetStream.Play.StreamNotFound".into(),
            description: "Failed to play nothing; stream not found.".into()
        }));
        assert!(!p
            .client_events
            .iter()
            .any(|e| matches!(e, ClientEvent::Started { .. })));
        // Closing a stream whose play was refused reports nothing.
        p.server_events.clear();
        p.client.close();
        p.pump();
        assert!(p.server_events.is_empty());
    }

    #[test]
    fn reject_publish_is_reported_and_not_unpublished() {
        let mut p = Pair::new(ClientMode::Publish, "cam");
        p.answer = Answer::Refuse;
        p.pump();
        assert_eq!(p.status_codes(), ["NetStream.Publish.BadName"]);
        assert!(p.client_events.contains(&ClientEvent::Status {
            level: "error".into(),
            code: "NetStream.Publish.BadName".into(),
            description: "Stream already publishing.".into()
        }));
        assert!(!p
            .client_events
            .iter()
            .any(|e| matches!(e, ClientEvent::Started { .. })));
        p.server_events.clear();
        p.client.close();
        p.pump();
        assert!(p.server_events.is_empty(), "{:?}", p.server_events);
    }

    #[test]
    fn empty_publish_name_is_a_bad_name() {
        let mut p = Pair::new(ClientMode::Publish, "?only=query");
        p.pump();
        assert_eq!(p.server_events.len(), 1, "{:?}", p.server_events);
        assert!(matches!(p.server_events[0], ServerEvent::Connect { .. }));
        assert_eq!(p.status_codes(), ["NetStream.Publish.BadName"]);
    }

    #[test]
    fn commands_before_connect_are_protocol_errors() {
        let mut server = handshaken_server();
        let err = server
            .handle_input(&command(1, "play", 0.0, Amf0Value::Null, &[text("cam")]))
            .unwrap_err();
        assert_eq!(err, SessionError::Protocol("play before connect".into()));
        // The session is finished.
        assert!(server.handle_input(&connect_command("live")).is_err());

        let mut server = handshaken_server();
        let err = server
            .handle_input(&command(0, "createStream", 2.0, Amf0Value::Null, &[]))
            .unwrap_err();
        assert_eq!(
            err,
            SessionError::Protocol("createStream before connect".into())
        );
    }

    #[test]
    fn second_connect_is_a_protocol_error() {
        let mut server = handshaken_server();
        server.handle_input(&connect_command("live")).unwrap();
        let err = server.handle_input(&connect_command("live")).unwrap_err();
        assert_eq!(err, SessionError::Protocol("second connect".into()));
    }

    #[test]
    fn connect_app_keeps_the_query_aside() {
        let mut server = handshaken_server();
        server.poll_output();
        server
            .handle_input(&connect_command("live/?vhost=example.com"))
            .unwrap();
        assert_eq!(server.app(), Some("live"));
        assert_eq!(server.app_params(), Some("vhost=example.com"));
        match drain_events(&mut server).as_slice() {
            [ServerEvent::Connect { app, .. }] => assert_eq!(app, "live"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn stream_ids_start_at_one_reuse_the_lowest_and_are_capped() {
        let mut server = handshaken_server();
        server.handle_input(&connect_command("live")).unwrap();
        server.poll_output();
        let created = |server: &mut ServerSession| -> Vec<f64> {
            let out = server.poll_output().unwrap();
            decode_output(&out, 60000)
                .into_iter()
                .filter_map(|m| match m {
                    Message::Command { name, args, .. } if name == "_result" => args[0].as_f64(),
                    _ => None,
                })
                .collect()
        };
        for _ in 0..MAX_STREAMS {
            server
                .handle_input(&command(0, "createStream", 2.0, Amf0Value::Null, &[]))
                .unwrap();
        }
        assert_eq!(
            created(&mut server),
            (1..=MAX_STREAMS).map(f64::from).collect::<Vec<_>>()
        );
        server
            .handle_input(&command(
                0,
                "deleteStream",
                0.0,
                Amf0Value::Null,
                &[Amf0Value::Number(1.0)],
            ))
            .unwrap();
        server
            .handle_input(&command(0, "createStream", 3.0, Amf0Value::Null, &[]))
            .unwrap();
        assert_eq!(created(&mut server), vec![1.0]);
        let err = server
            .handle_input(&command(0, "createStream", 4.0, Amf0Value::Null, &[]))
            .unwrap_err();
        assert_eq!(
            err,
            SessionError::Protocol(format!("more than {MAX_STREAMS} streams on one connection"))
        );
    }

    #[test]
    fn publish_on_a_stream_not_created_is_an_error() {
        let mut server = handshaken_server();
        server.handle_input(&connect_command("live")).unwrap();
        let err = server
            .handle_input(&command(1, "publish", 0.0, Amf0Value::Null, &[text("cam")]))
            .unwrap_err();
        assert_eq!(
            err,
            SessionError::Protocol("publish on stream 1, which createStream did not return".into())
        );
    }

    #[test]
    fn a_request_withdrawn_before_the_answer_still_ends_once() {
        let mut server = handshaken_server();
        let mut input = connect_command("live");
        input.extend_from_slice(&command(0, "createStream", 2.0, Amf0Value::Null, &[]));
        input.extend_from_slice(&command(1, "play", 0.0, Amf0Value::Null, &[text("cam")]));
        input.extend_from_slice(&command(
            0,
            "deleteStream",
            0.0,
            Amf0Value::Null,
            &[Amf0Value::Number(1.0)],
        ));
        server.handle_input(&input).unwrap();
        let events = drain_events(&mut server);
        assert!(matches!(
            events.as_slice(),
            [
                ServerEvent::Connect { .. },
                ServerEvent::Play { stream_id: 1, .. }
            ]
        ));
        // The driver answers late; the stream is already gone, so it learns at once.
        server.accept_play(1, "cam", true);
        assert_eq!(
            drain_events(&mut server),
            vec![ServerEvent::StopPlay { stream_id: 1 }]
        );
        server.accept_play(1, "cam", true);
        assert!(drain_events(&mut server).is_empty());

        // Same for a publish withdrawn with FCUnpublish.
        let mut server = handshaken_server();
        let mut input = connect_command("live");
        input.extend_from_slice(&command(0, "createStream", 2.0, Amf0Value::Null, &[]));
        input.extend_from_slice(&command(
            1,
            "publish",
            0.0,
            Amf0Value::Null,
            &[text("cam"), text("live")],
        ));
        input.extend_from_slice(&command(
            0,
            "FCUnpublish",
            5.0,
            Amf0Value::Null,
            &[text("cam")],
        ));
        input.extend_from_slice(&command(
            0,
            "deleteStream",
            6.0,
            Amf0Value::Null,
            &[Amf0Value::Number(1.0)],
        ));
        server.handle_input(&input).unwrap();
        assert_eq!(drain_events(&mut server).len(), 2);
        server.accept_publish(1);
        assert_eq!(
            drain_events(&mut server),
            vec![ServerEvent::Unpublish { stream_id: 1 }]
        );
    }

    #[test]
    fn second_publish_on_one_connection_is_an_error() {
        let mut server = handshaken_server();
        let mut input = connect_command("live");
        input.extend_from_slice(&command(0, "createStream", 2.0, Amf0Value::Null, &[]));
        input.extend_from_slice(&command(0, "createStream", 3.0, Amf0Value::Null, &[]));
        input.extend_from_slice(&command(1, "publish", 0.0, Amf0Value::Null, &[text("a")]));
        server.handle_input(&input).unwrap();
        drain_events(&mut server);
        server.accept_publish(1);
        let err = server
            .handle_input(&command(2, "publish", 0.0, Amf0Value::Null, &[text("b")]))
            .unwrap_err();
        assert_eq!(
            err,
            SessionError::Protocol("second publish on one connection".into())
        );
    }

    #[test]
    fn acknowledgements_follow_the_peer_window() {
        // The client announces a 4096-byte window, the server a 2000-byte one.
        let client_config = SessionConfig {
            window_ack_size: 4096,
            ..SessionConfig::default()
        };
        let server_config = SessionConfig {
            window_ack_size: 2000,
            ..SessionConfig::default()
        };
        let mut p = Pair::with_configs(
            ClientMode::Publish,
            "cam?key=1",
            client_config,
            server_config,
        );
        publish_opening(&mut p);
        p.client.send_video(0, &[0x27; 10_000]);
        p.pump();
        let server_acks: Vec<u32> = messages(&p.to_client)
            .into_iter()
            .filter_map(|m| match m {
                Message::Acknowledgement { sequence } => Some(sequence),
                _ => None,
            })
            .collect();
        assert_eq!(
            server_acks.last().copied(),
            Some(p.server.bytes_received() as u32)
        );
        assert!(server_acks.iter().all(|s| *s >= 4096), "{server_acks:?}");
        assert_eq!(p.server.bytes_received(), p.to_server.len() as u64);

        let client_acks = messages(&p.to_server)
            .into_iter()
            .filter(|m| matches!(m, Message::Acknowledgement { sequence } if *sequence >= 2000))
            .count();
        assert!(client_acks >= 1);

        // Without a window from the peer, nobody acknowledges.
        let mut p = Pair::new(ClientMode::Publish, "cam?key=1");
        p.server.config.window_ack_size = 0;
        publish_opening(&mut p);
        p.client.send_video(0, &[0x27; 10_000]);
        p.pump();
        assert!(messages(&p.to_server)
            .iter()
            .all(|m| !matches!(m, Message::Acknowledgement { .. })));
    }

    #[test]
    fn pings_are_answered_with_the_same_timestamp() {
        let mut p = Pair::new(ClientMode::Publish, "cam?key=1");
        publish_opening(&mut p);
        let mut ping = BytesMut::new();
        Message::UserControl(UserControl::PingRequest(777)).encode(&mut ping, DEFAULT_CHUNK_SIZE);
        p.server.handle_input(&ping).unwrap();
        let out = p.server.poll_output().unwrap();
        assert_eq!(
            decode_output(&out, 60000),
            vec![Message::UserControl(UserControl::PingResponse(777))]
        );

        p.client.handle_input(&ping).unwrap();
        let out = p.client.poll_output().unwrap();
        assert_eq!(
            decode_output(&out, 60000),
            vec![Message::UserControl(UserControl::PingResponse(777))]
        );
    }

    #[test]
    fn byte_at_a_time_delivery() {
        let mut p = Pair::new(ClientMode::Publish, "cam?key=1");
        p.byte_at_a_time = true;
        publish_opening(&mut p);
        let frame: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        p.client.send_video(33, &frame);
        p.client.send_audio(34, &[0xaf, 1, 7]);
        p.pump();
        assert_eq!(
            p.server_events,
            vec![
                ServerEvent::Video {
                    timestamp: 33,
                    payload: Bytes::from(frame)
                },
                ServerEvent::Audio {
                    timestamp: 34,
                    payload: Bytes::from_static(&[0xaf, 1, 7])
                },
            ]
        );

        let mut p = Pair::new(ClientMode::Play, "cam");
        p.byte_at_a_time = true;
        p.pump();
        assert!(p
            .client_events
            .contains(&ClientEvent::Started { stream_id: 1 }));
    }

    #[test]
    fn parse_rtmp_url_cases() {
        let (host, port, t) =
            parse_rtmp_url("rtmp://example.com/live/cam", ClientMode::Play).unwrap();
        assert_eq!((host.as_str(), port), ("example.com", 1935));
        assert_eq!(
            t,
            ClientTarget {
                app: "live".into(),
                tc_url: "rtmp://example.com/live".into(),
                stream: "cam".into(),
                mode: ClientMode::Play
            }
        );

        let (host, port, t) = parse_rtmp_url(
            "rtmp://10.0.0.1:1936/live/inst/cam?token=a/b&x=1",
            ClientMode::Publish,
        )
        .unwrap();
        assert_eq!((host.as_str(), port), ("10.0.0.1", 1936));
        assert_eq!(t.app, "live/inst");
        assert_eq!(t.tc_url, "rtmp://10.0.0.1:1936/live/inst");
        assert_eq!(t.stream, "cam?token=a/b&x=1");
        assert_eq!(t.mode, ClientMode::Publish);

        let (host, port, t) =
            parse_rtmp_url("rtmps://secure.example/app/s", ClientMode::Play).unwrap();
        assert_eq!(
            (host.as_str(), port, t.tc_url.as_str()),
            ("secure.example", 443, "rtmps://secure.example/app")
        );

        let (host, port, t) =
            parse_rtmp_url("rtmp://[::1]:19350/live/s", ClientMode::Play).unwrap();
        assert_eq!(
            (host.as_str(), port, t.tc_url.as_str()),
            ("::1", 19350, "rtmp://[::1]:19350/live")
        );

        for bad in [
            "",
            "rtmp://",
            "rtmp://host",
            "rtmp://host/",
            "rtmp://host/live",
            "rtmp://host/live/",
            "rtmp:///live/s",
            "rtmp://host:abc/live/s",
            "rtmp://host:0/live/s",
            "rtmp://host:70000/live/s",
            "rtmp://host//s",
            "http://host/live/s",
            "host/live/s",
            "rtmp://[::1/live/s",
            "rtmp://user@host/live/s",
        ] {
            assert_eq!(parse_rtmp_url(bad, ClientMode::Play), None, "{bad}");
        }
    }

    #[test]
    fn media_and_data_count_only_on_the_publishing_stream() {
        let mut server = handshaken_server();
        let mut input = connect_command("live");
        input.extend_from_slice(&command(0, "createStream", 2.0, Amf0Value::Null, &[]));
        input.extend_from_slice(&command(0, "createStream", 3.0, Amf0Value::Null, &[]));
        input.extend_from_slice(&command(1, "publish", 0.0, Amf0Value::Null, &[text("cam")]));
        server.handle_input(&input).unwrap();
        drain_events(&mut server);
        server.accept_publish(1);

        let metadata = [
            text("onMetaData"),
            Amf0Value::Object(vec![("fps".into(), Amf0Value::Number(25.0))]),
        ];
        let mut input = BytesMut::new();
        let mut data = |stream_id: u32, values: &[Amf0Value]| {
            let payload = encode_values(values);
            chunk::encode_message(
                &mut input,
                csid::DATA,
                5,
                type_id::DATA_AMF0,
                stream_id,
                &payload,
                DEFAULT_CHUNK_SIZE,
            );
        };
        // Bare onMetaData (no @setDataFrame) counts; other data messages do not.
        data(1, &metadata);
        data(1, &[text("onCuePoint"), Amf0Value::Null]);
        data(1, &[text("@setDataFrame"), text("onMetaData")]);
        // Stream 2 is not publishing.
        data(2, &metadata);
        chunk::encode_message(
            &mut input,
            csid::VIDEO,
            9,
            type_id::VIDEO,
            2,
            &[0x17, 1],
            DEFAULT_CHUNK_SIZE,
        );
        chunk::encode_message(
            &mut input,
            csid::VIDEO,
            10,
            type_id::VIDEO,
            1,
            &[0x27, 1],
            DEFAULT_CHUNK_SIZE,
        );
        server.handle_input(&input).unwrap();
        assert_eq!(
            drain_events(&mut server),
            vec![
                ServerEvent::Metadata {
                    timestamp: 5,
                    payload: encode_values(&metadata),
                    values: metadata.to_vec()
                },
                ServerEvent::Video {
                    timestamp: 10,
                    payload: Bytes::from_static(&[0x27, 1])
                },
            ]
        );
    }

    #[test]
    fn play_on_a_playing_stream_switches() {
        let mut server = handshaken_server();
        let mut input = connect_command("live");
        input.extend_from_slice(&command(0, "createStream", 2.0, Amf0Value::Null, &[]));
        input.extend_from_slice(&command(1, "play", 0.0, Amf0Value::Null, &[text("a")]));
        server.handle_input(&input).unwrap();
        drain_events(&mut server);
        server.accept_play(1, "a", true);
        server
            .handle_input(&command(1, "play", 0.0, Amf0Value::Null, &[text("b?x=1")]))
            .unwrap();
        assert_eq!(
            drain_events(&mut server),
            vec![
                ServerEvent::StopPlay { stream_id: 1 },
                ServerEvent::Play {
                    stream_id: 1,
                    stream_name: "b".into(),
                    params: "x=1".into(),
                    start: -2.0,
                    duration: -1.0,
                    reset: true
                },
            ]
        );
        // Unanswered, a second play is ambiguous: refused.
        let err = server
            .handle_input(&command(1, "play", 0.0, Amf0Value::Null, &[text("c")]))
            .unwrap_err();
        assert!(matches!(err, SessionError::Protocol(_)));
    }

    #[test]
    fn client_reports_command_errors() {
        let mut client = ClientSession::new(
            SessionConfig::default(),
            target(ClientMode::Play, "cam"),
            0,
            1,
            false,
        );
        let mut server = ServerSession::new(SessionConfig::default(), 0, 2);
        server.handle_input(&client.poll_output().unwrap()).unwrap();
        client.handle_input(&server.poll_output().unwrap()).unwrap();
        let sent = client.poll_output().unwrap();
        assert!(sent.len() > HANDSHAKE_SIZE, "C2 and connect");
        let info = status_object(
            "error",
            "NetConnection.Connect.Rejected",
            "No such app.",
            "",
        );
        client
            .handle_input(&command(0, "_error", 1.0, Amf0Value::Null, &[info]))
            .unwrap();
        assert_eq!(
            client.poll_event(),
            Some(ClientEvent::CommandError {
                command: "connect".into(),
                description: "No such app.".into()
            })
        );
        assert_eq!(client.poll_event(), None);
    }

    fn unhex(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn ffmpeg_publish_fixture() {
        let fixture = unhex(FFMPEG_PUBLISH);
        for piece in [fixture.len(), 1, 7, 1000] {
            let mut server = handshaken_server();
            let mut events = Vec::new();
            for part in fixture.chunks(piece) {
                server.handle_input(part).unwrap();
                while let Some(event) = server.poll_event() {
                    if let ServerEvent::Publish { stream_id, .. } = event {
                        server.accept_publish(stream_id);
                    }
                    events.push(event);
                }
            }
            match &events[0] {
                ServerEvent::Connect { app, tc_url, .. } => {
                    assert_eq!(app, "live");
                    assert_eq!(tc_url.as_deref(), Some("rtmp://127.0.0.1:19350/live"));
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(
                events[1],
                ServerEvent::Publish {
                    stream_id: 1,
                    stream_name: "cam".into(),
                    params: "key=abc".into(),
                    publish_type: "live".into()
                }
            );
            match &events[2] {
                ServerEvent::Metadata {
                    timestamp: 0,
                    values,
                    payload,
                } => {
                    assert_eq!(values[0], text("onMetaData"));
                    assert_eq!(values[1].get("width"), Some(&Amf0Value::Number(32.0)));
                    assert_eq!(values[1].get("encoder"), Some(&text("Lavf59.27.100")));
                    assert_eq!(
                        amf0::decode_all(payload, &Amf0Limits::default()).unwrap(),
                        *values
                    );
                }
                other => panic!("{other:?}"),
            }
            let video: Vec<_> = events
                .iter()
                .filter_map(|e| match e {
                    ServerEvent::Video { timestamp, payload } => {
                        Some((*timestamp, payload.clone()))
                    }
                    _ => None,
                })
                .collect();
            // AVC sequence header, two frames (the first a keyframe), end of sequence.
            assert_eq!(video.len(), 4);
            assert_eq!(&video[0].1[..2], &[0x17, 0x00]);
            assert_eq!(&video[1].1[..2], &[0x17, 0x01]);
            assert_eq!(&video[2].1[..2], &[0x27, 0x01]);
            assert_eq!(&video[3].1[..], &[0x17, 0x02, 0, 0, 0]);
            // ffmpeg starts video 128 ms in (fmt-1 delta), then 10 fps.
            assert_eq!((video[1].0, video[2].0), (128, 228));
            let audio: Vec<_> = events
                .iter()
                .filter_map(|e| match e {
                    ServerEvent::Audio { payload, .. } => Some(payload.clone()),
                    _ => None,
                })
                .collect();
            assert!(audio.len() >= 2, "{}", audio.len());
            assert_eq!(&audio[0][..2], &[0xaf, 0x00]);
            assert!(audio[1..].iter().all(|a| a[..2] == [0xaf, 0x01]));
            // FCUnpublish then deleteStream: one Unpublish, at the end.
            assert_eq!(
                events
                    .iter()
                    .filter(|e| matches!(e, ServerEvent::Unpublish { .. }))
                    .count(),
                1
            );
            assert_eq!(
                events.last(),
                Some(&ServerEvent::Unpublish { stream_id: 1 })
            );
            assert_eq!(
                server.bytes_received(),
                (HANDSHAKE_BYTES + fixture.len()) as u64
            );
        }
    }

    /// ffmpeg 5.1 (Lavf59.27.100) publishing `rtmp://127.0.0.1:19350/live/cam?key=abc`:
    /// every byte it sent after C2, captured against a minimal responder (2 H.264
    /// frames at 32x32, AAC audio, then FCUnpublish + deleteStream).
    const FFMPEG_PUBLISH: &str = concat!(
        "0300000000008c1400000000020007636f6e6e656374003ff00000000000000300036170700200046c69766500047479",
        "706502000a6e6f6e707269766174650008666c617368566572020024464d4c452f332e302028636f6d70617469626c65",
        "3b204c61766635392e32372e313030290005746355726c02001b72746d703a2f2f3132372e302e302e313a31c3393335",
        "302f6c69766500000902000000000004010000000000001000430000000000281402000d72656c656173655374726561",
        "6d0040000000000000000502000b63616d3f6b65793d616263430000000000241402000946435075626c697368004008",
        "0000000000000502000b63616d3f6b65793d616263430000000000191402000c63726561746553747265616d00401000",
        "0000000000050800000000002914010000000200077075626c6973680040140000000000000502000b63616d3f6b6579",
        "3d6162630200046c69766504000000000135120100000002000d40736574446174614672616d6502000a6f6e4d657461",
        "44617461080000000d00086475726174696f6e0000000000000000000005776964746800404000000000000000066865",
        "69676874004040000000000000000d766964656f646174617261746500000000000000000000096672616d6572617465",
        "004024000000000000000c766964656f636f646563696400401c000000000000000d617564696f646174617261746500",
        "402f400000000000000f617564696f73616d706c65726174650040bf400000000000000f617564696f73616d706c6573",
        "697a65004030000000000000000673746572656f0100000c617564696f636f6465636964004024000000000000000765",
        "6e636f64657202000d4c61766635392e32372e313030000866696c6573697a6500000000000000000000000906000000",
        "00002f0901000000170000000001f4000affe1001667f4000a9196896c0440000003004000000523c489a801000568ce",
        "0f1920fff8f800040000000000070801000000af00158856e500040000000001670801000000af01de02004c61766335",
        "392e33372e313030000234a75ae9c8e6aafd65f6fd3f5e172aaf6924724449170331661cc598731661f5af5df5af5df5",
        "efa8f7576af7576af7576afedbf6bfaefdaff1bfab4d5334d5b34d5b3169e6629e69aa6731669d8dad763736c5a7998a",
        "9db2b11cbd9878bbaa7ec5328e3add99dc7d1f8d7df94dae0d5ba6a9db2bdc7ad76deadd176ad772ac6e3ac372ca75ec",
        "a71d8db15c6c571b15c6c559ad566b51afd1afcfafcfaa94aa52a94aa52b94bf2954a552954494494494494494494494",
        "494494494494494494494494494494494494494494494494494494494494494494494494e0a70538732cb2cb2cb2cb2c",
        "b2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2c",
        "b2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb29932640c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0",
        "c0c0c0c0c0c0c0c0c0c0c0c0f84600008000054a091701000000000002520605ffff4edc45e9bde6d948b7962cd820d9",
        "23eeef78323634202d20636f7265203136342072333039352062616565343030202d20482e3236342f4d5045472d3420",
        "41564320636f646563202d20436f70796c65667420323030332d32303232202d20687474703a2f2f7777772e76696465",
        "6f6c616e2e6f72672f783236342e68746d6c202d206f7074696f6e733a2063616261633d30207265663d31206465626c",
        "6f636b3d303a303a3020616e616c7973653d303a30206d653d646961207375626d653d30207073793d31207073795f72",
        "643d312e30303a302e3030206d697865645f7265663d30206d655f72616e67653d3136206368726f6d615f6d653d3120",
        "7472656c6c69733d30203878386463743d302063716d3d3020646561647a6f6e653d32312c313120666173745f70736b",
        "69703d31206368726f6d615f71705f6f66667365743d3620746872656164733d31206c6f6f6b61686561645f74687265",
        "6164733d3120736c696365645f746872656164733d30206e723d3020646563696d6174653d3120696e7465726c616365",
        "643d3020626c757261795f636f6d7061743d3020636f6e73747261696e65645f696e7472613d3020626672616d65733d",
        "3020776569676874703d30206b6579696e743d3130206b6579696e745f6d696e3d31207363656e656375743d3020696e",
        "7472615f726566726573683d302072633d637266206d62747265653d30206372663d32332e302071636f6d703d302e36",
        "302071706d696e3d302071706d61783d3639207170737465703d342069705f726174696f3d312e34302061713d300080",
        "000002eb6588843a0840010d00807961bd7953005a4190b6a84f800536444c6fd0c8ee000e83288e624d352e15e555c0",
        "99a24fd4174d37f6603dfe0dc3df840000800000600a961ec000140039a6028d81d1f3c06400008058000803801f73f0",
        "004409086201d0e0bf51b7c131340046db7ca6c82e4afc3a52fe66000584ef0be8f7e10000540282e587fff000400010",
        "09280140dc94d145410d5955c3f8a000f9118d50844717d08e03297bf4460370a6bf66000089022120d447bf08914b0f",
        "ffe10801c0c2001e442681192241314dc08c07ebff070001001000e0172c0480adca1f10e5fd38c4c2d39a4377683023",
        "3323436e87467c00305335da943c0ef8a35fdbc304200010001025353192064d06f7ddf001c45210ac04e485e68c3409",
        "801e8700028010152c02d701132980325ba5fccd1c4625fb41814fcd73933fff800e000200e3079bf1444a240d64a31d",
        "4a51074ce58058b80212bd80ceb74bfa2320ca369ae35dbb4180b1910d14854713d280fc3e3a0038c1840f4f91d43a17",
        "a70892e194e3f001e088005d48f34412795f57bfc800010040001006032e15007dc00e8802700200565e2c1e2e0260f7",
        "2904ebad147b2ff12001b858f12cd0b4d41395bf8480016b4030323b0002e60cc005584e8874c018a84f6ff100584406",
        "0d0cf278052507a5d4e5ee146240058c634329ef73005b7efe6600fe1cfb9e00020083120526a26ad84671ad28ee91bf",
        "c400581000580303318689e012c2f98eea8e6502b1f84001616d832096babf303ffefd8804e3cb1d000400101520cb24",
        "0dc2dde93074956cdbabf800f61066a07aa40c3e6fd5e078000801300c00eb838406c4071b6ef0063b034d6280e2684e",
        "00370f3a1b80a131ca00efdda120006e400381f0d80008b3001c03029b7167499b02a8849fe24058645400368102233c",
        "0766411f081896f768531000580cc04c929b7dda24aa53c00040c1540072845421905e8a75a28a7fc4802c09001600d0",
        "1bc72e67815990078411145ba4240058705a4c007c3ee2019cdda2008c54b84400008000013808af0100f49ed9b16175",
        "c221d59913196632428fe33ffdbff6f6bd71c5cb4af7fcffe9ff9fdecbd4b937f6fb7ff87febfa8755ab8fdbf6ffb7fe",
        "7fac49a5eb49974628f032e8c49c72e8c51e1e1ed414d25f4e2340d141a8a375145146ea23c165f90b9c9faf05d82070",
        "8beb0ae719d70b8c375c1f0937c7d3f27a7d1e5eb2e6458cc5ae12b6a27d82f58ac86663e587b46066ac0c9967965af6",
        "cd9d97becd916f6cd9b08efa45c23689717fda7b08ecd9b23dafc8df78b646eba1a57c55ddcb39e65ca7d493d426e992",
        "d487a077807782d3cbd39fa73a4c47b12046c9bc60e02db05df66fbf76bbac23b6f23ae9739e79e79e7509d4a54f3cf3",
        "cf3a8df46fa28a5f9d4bd6943fe9e8e36bb06f89daa595a217a9cfee3faaa3a60d978ef64a5b1baa2d7d181818912bc4",
        "81953912107d9f2d9c78d6e4d3cbc04600006400001909270100000000000010419a20627c9174d2fbbfe48adb6beabc",
        "4400008000012208af0100f29fb632617663212a2ab84831f6f5ffe1ff9fd38938925e7bfe9ffd3ff3fc68bd4b935fb7",
        "e7ffdbff5fc44e2ed221974608f3977d1cf2383f3773dd6e7748d265a25a46e83741aadfbd878a1ef4d15a959a532d4d",
        "2a6940c0da181818181b4303031206941a52599b52b10606060606363ac96f57378caadf53d1ab134e95d0a15585ea42",
        "a5638c426315cd54cde50ddb6d75d5ba2899e4ce7af913d7de777a0ef685fef3fa07f431bbd7eb23c52af5f885fc98df",
        "f965ff2cb1451451459628a2891145145144fc440844482a8ea3d5155144110d553d1aad78122f3392702132579f3378",
        "f6b513ec2ce624c4afccba9975682eb05d615ce2b5059837a0cc8181caa03625940c0e5948dbabad7f233e0ae3d694eb",
        "7a8cc2334abf9706bb704400008000010108af0101029fb5a17032fc781f97bf7ff6ff4fbf1c757c48d73fd37ff8ffcb",
        "400064d6b566464647bcf79f2fd70fd55fa0b98cd2f3cf3cf3c1e63cc798f3cf3cf0631e79e4bcf3cf639a73d7adac4e",
        "692562b3b16489390e10975c363575b1b88700e0e4385708cf6450800201190295cb8a8064c0903a245dba015e38d126",
        "0027007f7fbb95dc4018187ea7f7aeca00ef3d8fc5d9880331db74dcf798adab6a7a00008bc1dd6d73d4f53d4180001a",
        "dad6d3c1a0d06830000274e9d3c1a0cea6a0000e5f2f4f3cf3f0bc2f0bc2f0bc2033cf3cf3cf3cfc2f0bc2f0bc2f0bc2",
        "f08033cf3cf3b91e1785e1785e1785d772b95ca00000e572b95cae572b95cae572800e46000000000005091702000000",
        "430000000000261402000b4643556e7075626c6973680040180000000000000502000b63616d3f6b65793d6162634300",
        "00000000221402000c64656c65746553747265616d00401c00000000000005003ff0000000000000",
    );
}
