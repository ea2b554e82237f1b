//! ZLMediaKit-compatible webhooks. (Skeleton: the interface the rest of the server
//! calls; the hook helper implements the bodies.)

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

use crate::config::HookConfig;
use crate::hub::{Hub, OriginKind, PublishOptions, StreamKey};

/// A client about to publish or play, or whose session ended.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    /// Our protocol name: "rtmp", "rtmps", "http-flv", "ws-flv", "http-ts", "hls".
    pub protocol: &'static str,
    pub key: StreamKey,
    /// The URL's query, without the `?`.
    pub params: String,
    pub peer: SocketAddr,
    /// The session id (the hub's session registry id; an HLS session's id).
    pub session_id: u64,
}

/// A gate refused, or failed with `hook.on_error = "deny"`.
#[derive(Debug, Clone, Error)]
#[error("{reason}")]
pub(crate) struct Refused {
    /// What the client is told (the receiver's `msg`, or a generic line).
    pub msg: String,
    /// What the log says: the hook, the stream, the cause.
    pub reason: String,
}

/// A recording file that was finished (on_record_mp4 / on_record_ts).
#[derive(Debug, Clone)]
pub(crate) struct RecordedFile {
    pub key: StreamKey,
    pub file_path: std::path::PathBuf,
    pub file_size: u64,
    /// Unix seconds of the first frame.
    pub start_time: u64,
    /// Seconds of media.
    pub time_len: f64,
    /// The file's path under the record directory (for the `/record/...` URL).
    pub url_path: String,
}

pub(crate) struct Hooks {
    config: HookConfig,
}

impl Hooks {
    pub(crate) fn new(config: &HookConfig, _hub: Arc<Hub>) -> Arc<Hooks> {
        Arc::new(Hooks {
            config: config.clone(),
        })
    }

    pub(crate) fn start(self: &Arc<Self>) {}

    pub(crate) async fn shutdown(&self) {}

    pub(crate) fn gates_publish(&self) -> bool {
        self.config.enable && !self.config.on_publish.is_empty()
    }

    pub(crate) fn gates_play(&self) -> bool {
        self.config.enable && !self.config.on_play.is_empty()
    }

    pub(crate) async fn on_publish(
        &self,
        _client: &Client,
        _origin: OriginKind,
    ) -> Result<PublishOptions, Refused> {
        Ok(PublishOptions::default())
    }

    pub(crate) async fn on_play(&self, _client: &Client) -> Result<(), Refused> {
        Ok(())
    }

    pub(crate) fn stream_not_found(&self, _client: &Client) {}

    /// Whether on_stream_not_found is configured (a receiver may then start the
    /// stream, so a viewer waits for it).
    pub(crate) fn handles_not_found(&self) -> bool {
        self.config.enable && !self.config.on_stream_not_found.is_empty()
    }

    pub(crate) fn flow_report(
        &self,
        _client: &Client,
        _player: bool,
        _total_bytes: u64,
        _duration: Duration,
    ) {
    }

    pub(crate) fn record_mp4(&self, _file: &RecordedFile) {}

    pub(crate) fn record_ts(&self, _file: &RecordedFile) {}
}
