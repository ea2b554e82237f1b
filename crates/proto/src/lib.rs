//! # ferrocast-proto: the sans-IO core of ferrocast
//!
//! Everything in this crate is pure: bytes go in, typed events and bytes come out.
//! There is no tokio, no socket, no clock read and no randomness source here; when a
//! protocol needs the time or random bytes (the RTMP handshake does), the caller passes
//! them in. That makes every protocol bug reproducible by feeding bytes to a function,
//! and lets the fuzz targets under `fuzz/` drive the same code the server runs.
//!
//! ## Invariants
//! * No input panics. Bad peer input is an `Err` value naming what was wrong; a panic
//!   is a bug in this crate. Every parser is fuzzed.
//! * Every size and count read from the wire is capped by an explicit limit before it
//!   is used to allocate.
//! * Media payloads are `bytes::Bytes`: parsed once, shared, never copied per viewer.
//!
//! ## The RTMP run loop (see [`rtmp::session`])
//! A driver owns the socket and one session value. For each read it calls
//! `handle_input(&bytes)`, then drains `poll_event()` until `None` (acting on each
//! event, e.g. asking the stream hub whether a publish may start and answering with
//! `accept_publish` / `reject_publish`), then drains `poll_output()` and writes those
//! bytes to the socket, in order. Media for players is chunked once per stream with
//! [`rtmp::chunk::encode_message`] and may be written between two `poll_output`
//! buffers: every message we send starts with a type-0 chunk header, so the outgoing
//! chunk stream carries no per-connection compression state.

#![forbid(unsafe_code)]

pub mod amf0;
pub mod codec;
pub mod flv;
pub mod hls;
pub mod mp4;
pub mod mpegts;
pub mod percent;
pub mod rtmp;
pub mod sign;
pub mod time;
