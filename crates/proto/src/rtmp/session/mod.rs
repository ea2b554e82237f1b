//! RTMP session state machines: [`ServerSession`] (what a publisher or player talks
//! to) and [`ClientSession`] (what the load generator and the push/pull proxies use).
//!
//! Both are sans-IO, like `quinn-proto` and `str0m`: they own no socket, read no clock
//! and draw no random numbers. The driver passes received bytes to `handle_input`,
//! takes typed events from `poll_event` and bytes to write from `poll_output`. The
//! handshake time and randomness are passed to `new`.
//!
//! # Layout
//! One idea per file, as in quinn-proto's `connection/` and rml_rtmp's
//! `sessions/{server,client}/`:
//! * `server.rs`: the server state machine (its diagram is in that file's docs);
//! * `client.rs`: the client state machine, which runs on its own once started;
//! * `link.rs`: what both share below the commands: the handshake-then-chunks input
//!   path, the output buffer, pings and acknowledgements;
//! * `url.rs`: RTMP URLs, the connect `app` and the `name?query` of publish and play;
//! * `values.rs`: AMF0 helpers both machines use (metadata, ids, quoted names);
//! * `tolerated.rs`: [`Tolerated`], the peer quirks a session let pass;
//! * `tests.rs`: a client and a server wired back to back, and captured input.
//!
//! The modules are private and everything a driver needs is re-exported here, so the
//! paths `ferrocast_proto::rtmp::session::{ServerSession, ClientSession, ...}` are
//! the only ones.
//!
//! # Driving a session
//! After each `handle_input`, drain `poll_event` until `None`, answering events as
//! they come (the answers queue output and, for a stream that was closed meanwhile,
//! further events: keep draining), then drain `poll_output` and write every buffer in
//! order. `poll_output` coalesces everything queued into one [`Bytes`](bytes::Bytes),
//! so one call normally means one write. Media chunked elsewhere with
//! [`super::chunk::encode_message`] at [`ServerSession::out_chunk_size`] may be
//! written between two `poll_output` buffers, because every message this module sends
//! starts with a type-0 chunk header: there is no chunk-header compression state that
//! interleaved bytes could break. The client's first output (C0 + C1) is ready before
//! any input, so drain `poll_output` right after `new`.
//!
//! After `handle_input` returns an error the session is finished: close the
//! connection (after writing what `poll_output` still holds, if you want the peer to
//! see an error status). Further input is refused. When the connection ends, log
//! `tolerated()` if it is not empty (see below).
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
//! * `closeStream`, `deleteStream` and `FCUnpublish` with nothing to close are
//!   ignored: the end the peer asks for is already there.
//! * A trailing `/` on the connect `app` is dropped and a `?query` on it (the SRS
//!   `?vhost=` form) is put aside ([`ServerSession::app_params`]).
//! * What stays an error: commands before `connect`, a second `connect`, `publish` or
//!   `play` on a stream `createStream` did not return, more than [`MAX_STREAMS`]
//!   streams, a second publish on one connection, a second `play` on a stream whose
//!   first `play` is still unanswered, malformed commands and control messages.
//! * Also an error, because each is something a hostile peer could repeat or inflate
//!   without bound: a `connect` string over [`MAX_CONNECT_STRING`] (the error names
//!   the field), a stream name over [`MAX_STREAM_NAME`], more than
//!   [`MAX_PUBLISH_ATTEMPTS`] `publish` or [`MAX_PLAY_ATTEMPTS`] `play` requests on one
//!   connection. What needs a clock (a connection that never publishes or plays) is
//!   the driver's to bound.
//!
//! Lenient is not silent: every input ignored or worked around above (and the chunk
//! decoder's own workarounds: omitted extended timestamps, a partial message cut off
//! by a new header) is counted per kind in [`Tolerated`], which
//! [`ServerSession::tolerated`] and [`ClientSession::tolerated`] return. This crate
//! does not log; the driver prints the summary once, on its close line. Normalising
//! the connect `app` is not counted: it is how the `?vhost=` form is meant to be read.

mod client;
mod link;
mod server;
mod tolerated;
mod url;
mod values;

#[cfg(test)]
mod tests;

use thiserror::Error;

use super::chunk::{ChunkError, ChunkLimits};
use super::handshake::HandshakeError;
use super::message::MessageError;
use crate::amf0::Amf0Limits;

pub use client::{ClientEvent, ClientMode, ClientSession, ClientTarget};
pub use server::{
    ServerEvent, ServerSession, MAX_CONNECT_STRING, MAX_PLAY_ATTEMPTS, MAX_PUBLISH_ATTEMPTS,
    MAX_STREAMS, MAX_STREAM_NAME,
};
pub use tolerated::Tolerated;
pub use url::parse_rtmp_url;

/// What both sessions are built with.
#[derive(Debug, Clone, Copy)]
pub struct SessionConfig {
    pub chunk_limits: ChunkLimits,
    /// Note: [`Message::parse`](crate::rtmp::message::Message::parse) takes no limits
    /// and applies the AMF0 defaults, so this value is currently not consulted by the
    /// sessions.
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

/// Why a session ended, by layer. The chunk and message errors say where in the
/// input they failed (the chunk's byte offset, the message type, the command).
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
