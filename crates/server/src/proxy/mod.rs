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

pub mod rtmp;
pub mod rtsp;

/// What an FLV tag body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Video,
    Audio,
    /// An AMF0 `@setDataFrame`/`onMetaData` body.
    Metadata,
}

/// One message from a remote source, as an FLV tag body (the same bytes an RTMP
/// publisher sends): video and audio sequence headers first, then frames.
#[derive(Debug, Clone)]
pub struct Media {
    pub kind: MediaKind,
    /// Decode timestamp, milliseconds.
    pub timestamp: u32,
    pub body: Bytes,
}

/// Why a proxy connection failed. The message is what the API shows as the proxy's
/// last error, so it names the remote and the fault.
#[derive(Debug, Error)]
pub enum ProxyError {
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

pub mod manager;

/// The scheme of a URL, lower-cased, if it has one.
fn scheme(url: &str) -> Option<String> {
    let (s, rest) = url.split_once("://")?;
    (!s.is_empty() && !rest.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '+'))
        .then(|| s.to_ascii_lowercase())
}

/// A pull URL ferrocast can play: `rtmp://`, `rtmps://` or `rtsp://`.
pub fn check_pull_url(url: &str) -> Result<(), String> {
    match scheme(url).as_deref() {
        Some("rtmp" | "rtmps" | "rtsp")
            if url.len() <= 4096 && !url.chars().any(char::is_control) =>
        {
            Ok(())
        }
        Some(other) if !matches!(other, "rtmp" | "rtmps" | "rtsp") => Err(format!(
            "unsupported URL scheme {other}:// (rtmp://, rtmps:// or rtsp://)"
        )),
        _ => Err(format!(
            "{url:?} is not a valid rtmp://, rtmps:// or rtsp:// URL"
        )),
    }
}

/// A push URL: `rtmp://` or `rtmps://`.
pub fn check_push_url(url: &str) -> Result<(), String> {
    match scheme(url).as_deref() {
        Some("rtmp" | "rtmps") if url.len() <= 4096 && !url.chars().any(char::is_control) => Ok(()),
        Some(other) if !matches!(other, "rtmp" | "rtmps") => Err(format!(
            "unsupported URL scheme {other}:// (rtmp:// or rtmps://)"
        )),
        _ => Err(format!("{url:?} is not a valid rtmp:// or rtmps:// URL")),
    }
}

/// The URL with any password replaced by `***`, for logs, the API and error
/// messages (the RTSP driver's too, also for URLs that did not parse). Works on the
/// text, not a parsed URL, so a URL is shown as it was given.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(check_pull_url("rtsp://10.0.0.1/cam").is_ok());
        assert!(check_pull_url("RTMP://h/live/s").is_ok());
        assert!(check_pull_url("http://h/x.flv")
            .unwrap_err()
            .contains("unsupported URL scheme http://"));
        assert!(check_pull_url("nonsense").is_err());
        assert!(check_push_url("rtsp://h/x")
            .unwrap_err()
            .contains("rtsp://"));
        assert!(check_push_url("rtmps://h/live/k").is_ok());
        assert_eq!(redact("rtsp://u:secret@h:554/p"), "rtsp://u:***@h:554/p");
        assert_eq!(redact("rtmp://h/live/s"), "rtmp://h/live/s");
        // URLs that do not parse (the RTSP driver's error messages) lose it too.
        assert_eq!(redact("rtsp://u:p@h:99999/x"), "rtsp://u:***@h:99999/x");
        assert_eq!(redact("rtsp://u:secret@/cam"), "rtsp://u:***@/cam");
        assert_eq!(redact("rtsp://u:p%40ss@h/x@y"), "rtsp://u:***@h/x@y");
        assert_eq!(redact("not a url"), "not a url");
    }
}
