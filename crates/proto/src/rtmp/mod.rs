//! RTMP: handshake, chunk stream, messages and the session state machines.
//! The specification is Adobe's "Real-Time Messaging Protocol (RTMP) specification" 1.0
//! (2012), with the digest handshake as used by Flash Player / FMS and the
//! Enhanced RTMP (v1/v2, Veovera) extensions for HEVC/AV1.

pub mod chunk;
pub mod handshake;
pub mod message;
pub mod session;
