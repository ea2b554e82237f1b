//! Pull and push proxies (ZLMediaKit's PlayerProxy and PusherProxy).
//!
//! A pull driver ([`rtmp::pull`], [`rtsp::pull`]) connects to a remote URL and sends
//! what it receives as [`Media`] (FLV tag bodies, the hub's currency) into a channel;
//! the proxy manager publishes that into the hub, watches for stalls, and reconnects
//! with back-off. A push driver ([`rtmp::push`]) sends a hub subscription to a remote
//! RTMP server.
//!
//! Drivers are cancel-safe: dropping the future closes the connection.

use bytes::Bytes;
use thiserror::Error;

pub(crate) mod rtmp;
pub(crate) mod rtsp;

/// What an FLV tag body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MediaKind {
    Video,
    Audio,
    /// An AMF0 `@setDataFrame`/`onMetaData` body.
    Metadata,
}

/// One message from a remote source, as an FLV tag body (the same bytes an RTMP
/// publisher sends): video and audio sequence headers first, then frames.
#[derive(Debug, Clone)]
pub(crate) struct Media {
    pub kind: MediaKind,
    /// Decode timestamp, milliseconds.
    pub timestamp: u32,
    pub body: Bytes,
}

/// Why a proxy connection failed. The message is what the API shows as the proxy's
/// last error, so it names the remote and the fault.
#[derive(Debug, Error)]
pub(crate) enum ProxyError {
    #[error("invalid URL: {0}")]
    BadUrl(String),
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("timeout: {0}")]
    Timeout(String),
    #[error("authentication failed: {0}")]
    Auth(String),
    #[error("refused by the remote: {0}")]
    Refused(String),
    #[error("stream not found on the remote: {0}")]
    NotFound(String),
    #[error("bad data from the remote: {0}")]
    Protocol(String),
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("the remote closed the connection")]
    Closed,
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

pub(crate) mod manager;

pub(crate) use crate::config::values::{check_pull_url, check_push_url};
