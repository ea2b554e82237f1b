//! RTMP session state machines. INTERFACE STUB: being written; signatures are fixed.

use bytes::Bytes;
use thiserror::Error;

use super::chunk::{ChunkError, ChunkLimits};
use super::handshake::HandshakeError;
use super::message::MessageError;
use crate::amf0::{Amf0Limits, Amf0Value};

#[derive(Debug, Clone, Copy)]
pub struct SessionConfig {
    pub chunk_limits: ChunkLimits,
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
    Connect { app: String, tc_url: Option<String>, command_object: Amf0Value },
    /// publish received; answer with accept_publish or reject_publish.
    Publish { stream_id: u32, stream_name: String, params: String, publish_type: String },
    /// play received; answer with accept_play or play_not_found.
    Play { stream_id: u32, stream_name: String, params: String, start: f64, duration: f64, reset: bool },
    /// The publisher stopped (FCUnpublish, closeStream or deleteStream of its stream).
    Unpublish { stream_id: u32 },
    /// A player stopped (closeStream or deleteStream of its stream).
    StopPlay { stream_id: u32 },
    /// @setDataFrame/onMetaData from the publisher: `payload` is the AMF0 bytes of
    /// "onMetaData" + the metadata value, ready to forward to players.
    Metadata { timestamp: u32, payload: Bytes, values: Vec<Amf0Value> },
    Audio { timestamp: u32, payload: Bytes },
    Video { timestamp: u32, payload: Bytes },
}

pub struct ServerSession {}

impl ServerSession {
    pub fn new(_config: SessionConfig, _epoch: u32, _random: u64) -> Self {
        ServerSession {}
    }
    pub fn handle_input(&mut self, _data: &[u8]) -> Result<(), SessionError> {
        Ok(())
    }
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        None
    }
    pub fn poll_output(&mut self) -> Option<Bytes> {
        None
    }
    pub fn accept_publish(&mut self, _stream_id: u32) {}
    pub fn reject_publish(&mut self, _stream_id: u32, _code: &str, _description: &str) {}
    pub fn accept_play(&mut self, _stream_id: u32, _stream_name: &str, _reset: bool) {}
    pub fn play_not_found(&mut self, _stream_id: u32, _stream_name: &str) {}
    pub fn unpublish_notify(&mut self, _stream_id: u32, _stream_name: &str) {}
    pub fn out_chunk_size(&self) -> u32 {
        60000
    }
    pub fn app(&self) -> Option<&str> {
        None
    }
    pub fn bytes_received(&self) -> u64 {
        0
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
    Started { stream_id: u32 },
    /// Any onStatus (including the ones above), for logging and errors such as
    /// NetStream.Play.StreamNotFound, NetStream.Publish.BadName, UnpublishNotify.
    Status { level: String, code: String, description: String },
    /// `_error` answer to one of our commands.
    CommandError { command: String, description: String },
    Metadata { timestamp: u32, payload: Bytes, values: Vec<Amf0Value> },
    Audio { timestamp: u32, payload: Bytes },
    Video { timestamp: u32, payload: Bytes },
    /// Stream EOF user control or onStatus *.UnpublishNotify / *.Stop.
    StreamEnded,
}

/// Client state machine: handshake (digest form when `digest`), connect, then play or
/// publish per [`ClientTarget`], automatically. Answers pings, sends acknowledgements.
pub struct ClientSession {}

impl ClientSession {
    pub fn new(_config: SessionConfig, _target: ClientTarget, _epoch: u32, _random: u64, _digest: bool) -> Self {
        ClientSession {}
    }
    pub fn handle_input(&mut self, _data: &[u8]) -> Result<(), SessionError> {
        Ok(())
    }
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        None
    }
    pub fn poll_output(&mut self) -> Option<Bytes> {
        None
    }
    /// Publishing: queue one message (after Started). `@setDataFrame` is prepended to
    /// metadata by `send_metadata`.
    pub fn send_audio(&mut self, _timestamp: u32, _payload: &[u8]) {}
    pub fn send_video(&mut self, _timestamp: u32, _payload: &[u8]) {}
    pub fn send_metadata(&mut self, _values: &[Amf0Value]) {}
    /// Sends FCUnpublish/deleteStream (publish) or closeStream (play).
    pub fn close(&mut self) {}
}

/// Parses `rtmp://host[:port]/app[/inst]/stream[?q]` into (host, port, target).
/// The app is everything between the host and the last path segment.
pub fn parse_rtmp_url(_url: &str, _mode: ClientMode) -> Option<(String, u16, ClientTarget)> {
    None
}
