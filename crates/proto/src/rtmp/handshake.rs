//! RTMP handshake: C0/C1/C2 and S0/S1/S2, simple and digest ("complex").
//! INTERFACE STUB: the implementation is being written; signatures are fixed.

use bytes::Bytes;
use thiserror::Error;

/// Size of C1/S1/C2/S2.
pub const HANDSHAKE_SIZE: usize = 1536;

#[derive(Debug, Error, PartialEq)]
pub enum HandshakeError {
    #[error("unsupported RTMP version byte 0x{0:02x} (not an RTMP client?)")]
    BadVersion(u8),
    #[error("S2 does not echo our C1 / digest mismatch")]
    BadResponse,
}

/// Which handshake the peer used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeKind {
    Simple,
    /// Digest found at the offset scheme 0 (digest after the time/version fields) or 1.
    Digest { scheme: u8 },
}

#[derive(Debug, Clone, PartialEq)]
pub enum HandshakeProgress {
    InProgress,
    /// Finished; `remaining` are bytes received after the handshake (chunk data).
    Done { kind: HandshakeKind, remaining: Bytes },
}

/// Server side. `random` seeds the random parts of S1 (the caller supplies entropy;
/// this crate reads no clock and no RNG). `epoch` is the S1 time field.
pub struct ServerHandshake {}

impl ServerHandshake {
    pub fn new(_epoch: u32, _random: u64) -> Self {
        ServerHandshake {}
    }
    pub fn handle_input(&mut self, _data: &[u8]) -> Result<HandshakeProgress, HandshakeError> {
        Ok(HandshakeProgress::InProgress)
    }
    /// Bytes to send (S0+S1+S2 once C1 is in). `None` when nothing is pending.
    pub fn poll_output(&mut self) -> Option<Bytes> {
        None
    }
}

/// Client side. Sends C0+C1 at once (digest form when `digest` is true, as Flash
/// Player does; some servers require it), checks S0/S1, answers C2.
pub struct ClientHandshake {}

impl ClientHandshake {
    pub fn new(_epoch: u32, _random: u64, _digest: bool) -> Self {
        ClientHandshake {}
    }
    pub fn handle_input(&mut self, _data: &[u8]) -> Result<HandshakeProgress, HandshakeError> {
        Ok(HandshakeProgress::InProgress)
    }
    pub fn poll_output(&mut self) -> Option<Bytes> {
        None
    }
}
