//! The configuration: a TOML file with every key documented (`ferrocast.toml`,
//! embedded in the binary), overridden by `--config FILE` and then by flags.
//!
//! Unknown keys are rejected with the key's name: a typo in an operator's file must not
//! silently leave a default in force. Validation errors name the key too. Both exit
//! with code 2 (see `main.rs`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub mod values;
pub use values::{Access, IpRanges, DEFAULT_VHOST};

/// The documented default configuration, shipped inside the binary.
pub const DEFAULT_TOML: &str = include_str!("../../ferrocast.toml");

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config {origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("invalid config: key `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub threads: usize,
    pub data_dir: PathBuf,
    pub rtmp: RtmpConfig,
    pub http: HttpConfig,
    pub general: GeneralConfig,
    pub hub: HubConfig,
    pub hls: HlsConfig,
    pub api: ApiConfig,
    pub record: RecordConfig,
    pub proxy: ProxyConfig,
    pub transcode: TranscodeConfig,
    pub hook: HookConfig,
    pub auth: AuthConfig,
    pub publish: PublishConfig,
    pub tls: TlsConfig,
}

/// ZLMediaKit-compatible webhooks (`[hook]`): one URL per event, empty = off.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HookConfig {
    pub enable: bool,
    pub on_publish: String,
    pub on_play: String,
    pub on_stream_changed: String,
    pub on_stream_none_reader: String,
    pub on_stream_not_found: String,
    pub on_record_mp4: String,
    pub on_record_ts: String,
    pub on_flow_report: String,
    pub on_server_started: String,
    pub on_server_exited: String,
    pub on_server_keepalive: String,
    pub timeout_sec: u64,
    pub alive_interval_sec: u64,
    pub retry: u32,
    pub retry_delay_ms: u64,
    pub media_server_id: String,
    /// "deny" or "allow": what a gate decides when its receiver fails.
    pub on_error: String,
    pub max_concurrent: usize,
    pub queue_len: usize,
}

/// Who may publish and play (`[auth]`): "open", "signed" or "hook", per app.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub secret: String,
    pub publish: String,
    pub play: String,
    pub apps: std::collections::BTreeMap<String, AppAuth>,
}

/// Per-app override of `auth.publish` / `auth.play`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AppAuth {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub play: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PublishConfig {
    pub takeover: bool,
}

/// The certificate of the RTMPS and HTTPS listeners (PEM files).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: String,
    pub key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TranscodeConfig {
    pub max_concurrent: usize,
    pub ffmpeg: String,
    pub encoder: String,
    pub preset: String,
    pub extra_args: Vec<String>,
    pub restart_delay_ms: u64,
    pub restart_max_delay_ms: u64,
    /// app -> ladder name: every stream of the app is transcoded.
    pub apps: std::collections::BTreeMap<String, String>,
    pub ladders: std::collections::BTreeMap<String, Ladder>,
}

/// A transcoding ladder: the renditions made of a source.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Ladder {
    pub audio_kbps: u32,
    pub rungs: Vec<Rung>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rung {
    /// Suffix of the rendition's stream name: `{stream}_{name}`.
    pub name: String,
    pub height: u32,
    pub video_kbps: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    pub pull: Vec<PullSpec>,
    pub push: Vec<PushSpec>,
    pub retry_delay_ms: u64,
    pub retry_max_delay_ms: u64,
    pub timeout_ms: u64,
    pub stream_none_reader_delay_ms: u64,
    pub tls_ca_file: String,
}

fn default_vhost() -> String {
    values::DEFAULT_VHOST.to_owned()
}
fn forever() -> i64 {
    -1
}
fn yes() -> bool {
    true
}

/// A pull proxy: `url` (rtmp://, rtmps://, rtsp://) served as `{app}/{stream}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PullSpec {
    #[serde(default = "default_vhost")]
    pub vhost: String,
    pub app: String,
    pub stream: String,
    pub url: String,
    /// Reconnection attempts after a failure; -1: forever.
    #[serde(default = "forever")]
    pub retry_count: i64,
    /// No media for this long (or no connection within it): reconnect. 0: proxy.timeout_ms.
    #[serde(default)]
    pub timeout_sec: u64,
    /// Connect only while the stream has viewers.
    #[serde(default)]
    pub on_demand: bool,
    /// Live HLS of this stream (when hls.enabled).
    #[serde(default = "yes")]
    pub enable_hls: bool,
    /// Record it to MP4 while it plays.
    #[serde(default)]
    pub enable_mp4: bool,
    /// "tcp" (interleaved) or "udp", for rtsp:// URLs.
    #[serde(default = "default_transport")]
    pub rtsp_transport: String,
}

fn default_transport() -> String {
    "tcp".to_owned()
}

/// A push proxy: the local `{app}/{stream}` sent to `url` (rtmp://, rtmps://).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PushSpec {
    #[serde(default = "default_vhost")]
    pub vhost: String,
    pub app: String,
    pub stream: String,
    pub url: String,
    #[serde(default = "forever")]
    pub retry_count: i64,
    #[serde(default)]
    pub timeout_sec: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RecordConfig {
    pub max_second: u64,
    pub fragment_ms: u32,
    pub hls_segment_ms: u32,
    pub auto_mp4_apps: Vec<String>,
    pub auto_hls_apps: Vec<String>,
    pub serve_http: bool,
    pub fsync_interval_ms: u64,
    pub delete_after_s: u64,
    pub max_disk_bytes: u64,
    pub finish_grace_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RtmpConfig {
    pub listen: String,
    pub tls_listen: String,
    pub handshake_timeout_ms: u64,
    pub idle_timeout_ms: u64,
    pub chunk_size: u32,
    pub max_message_size: u32,
    pub max_chunk_streams: usize,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub window_ack_size: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub listen: String,
    pub tls_listen: String,
    pub allow_origin: String,
    pub public_stream_list: bool,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub header_timeout_ms: u64,
    pub max_header_bytes: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    pub secret: String,
    pub allow_ip_range: String,
    pub metrics_token: String,
    pub allow_unsafe_config: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HlsConfig {
    pub enabled: bool,
    pub segment_ms: u32,
    pub window: usize,
    pub retain: usize,
    pub keep_after_end_ms: u64,
    pub segment_max_age_s: u64,
    pub write_to_disk: bool,
    pub session_timeout_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GeneralConfig {
    pub max_stream_wait_ms: u64,
    pub continue_push_ms: u64,
    pub stream_none_reader_delay_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HubConfig {
    pub gop_cache: bool,
    pub gop_cache_max_frames: usize,
    pub gop_cache_max_bytes: usize,
    pub queue_len: usize,
    pub slow_player_timeout_ms: u64,
    pub flush_interval_ms: u64,
    pub tcp_nodelay: bool,
}

impl Default for Config {
    fn default() -> Self {
        // The embedded file is checked by a unit test, so this cannot fail at run time.
        toml::from_str(DEFAULT_TOML).expect("embedded ferrocast.toml is valid")
    }
}

impl Config {
    /// The embedded defaults, with the keys of `file` (if any) laid over them.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut merged: toml::Table =
            toml::from_str(DEFAULT_TOML).expect("embedded ferrocast.toml is valid");
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            let user: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Parse {
                origin: path.display().to_string(),
                message: e.to_string(),
            })?;
            overlay(&mut merged, user);
        }
        let config: Config =
            toml::Value::Table(merged)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    origin: file
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| "(embedded)".into()),
                    message: e.to_string(),
                })?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        fn addr(key: &'static str, v: &str) -> Result<(), ConfigError> {
            v.parse::<SocketAddr>()
                .map(|_| ())
                .map_err(|e| ConfigError::Invalid {
                    key,
                    message: format!("{v:?} is not an IP:port address ({e})"),
                })
        }
        fn range<T: PartialOrd + std::fmt::Display>(
            key: &'static str,
            v: T,
            lo: T,
            hi: T,
        ) -> Result<(), ConfigError> {
            if v < lo || v > hi {
                return Err(ConfigError::Invalid {
                    key,
                    message: format!("{v} is outside {lo}..={hi}"),
                });
            }
            Ok(())
        }
        addr("rtmp.listen", &self.rtmp.listen)?;
        addr("http.listen", &self.http.listen)?;
        range("threads", self.threads, 0, 1024)?;
        range("rtmp.chunk_size", self.rtmp.chunk_size, 128, 0xFF_FFFF)?;
        // The RTMP message length field has 24 bits: 16 MiB is "no further limit".
        range(
            "rtmp.max_message_size",
            self.rtmp.max_message_size,
            4096,
            1 << 24,
        )?;
        range(
            "rtmp.max_chunk_streams",
            self.rtmp.max_chunk_streams,
            4,
            65600,
        )?;
        range(
            "rtmp.max_connections",
            self.rtmp.max_connections,
            1,
            1_000_000,
        )?;
        range(
            "http.max_connections",
            self.http.max_connections,
            1,
            1_000_000,
        )?;
        range(
            "http.max_connections_per_ip",
            self.http.max_connections_per_ip,
            0,
            1_000_000,
        )?;
        range(
            "rtmp.max_connections_per_ip",
            self.rtmp.max_connections_per_ip,
            0,
            1_000_000,
        )?;
        range(
            "http.header_timeout_ms",
            self.http.header_timeout_ms,
            100,
            30_000,
        )?;
        // 1 KiB: a browser's request fits; 1 MiB: more would buffer too much per
        // connection (the read buffer is capped just above this).
        range(
            "http.max_header_bytes",
            self.http.max_header_bytes,
            1024,
            1 << 20,
        )?;
        range(
            "rtmp.window_ack_size",
            self.rtmp.window_ack_size,
            4096,
            0x7FFF_FFFF,
        )?;
        range(
            "rtmp.handshake_timeout_ms",
            self.rtmp.handshake_timeout_ms,
            100,
            3_600_000,
        )?;
        range(
            "rtmp.idle_timeout_ms",
            self.rtmp.idle_timeout_ms,
            100,
            3_600_000,
        )?;
        range(
            "general.max_stream_wait_ms",
            self.general.max_stream_wait_ms,
            0,
            3_600_000,
        )?;
        range(
            "general.continue_push_ms",
            self.general.continue_push_ms,
            0,
            3_600_000,
        )?;
        range(
            "hub.gop_cache_max_frames",
            self.hub.gop_cache_max_frames,
            1,
            1_000_000,
        )?;
        range(
            "hub.gop_cache_max_bytes",
            self.hub.gop_cache_max_bytes,
            1024,
            1 << 32,
        )?;
        range("hub.queue_len", self.hub.queue_len, 16, 1 << 20)?;
        range(
            "hub.slow_player_timeout_ms",
            self.hub.slow_player_timeout_ms,
            100,
            3_600_000,
        )?;
        range("hub.flush_interval_ms", self.hub.flush_interval_ms, 0, 1000)?;
        if let Err(e) = values::IpRanges::parse(&self.api.allow_ip_range) {
            return Err(ConfigError::Invalid {
                key: "api.allow_ip_range",
                message: e,
            });
        }
        range("hls.segment_ms", self.hls.segment_ms, 500, 60_000)?;
        range("hls.window", self.hls.window, 1, 100)?;
        range("hls.retain", self.hls.retain, 0, 1000)?;
        range(
            "hls.keep_after_end_ms",
            self.hls.keep_after_end_ms,
            0,
            3_600_000,
        )?;
        range(
            "hls.segment_max_age_s",
            self.hls.segment_max_age_s,
            0,
            86_400,
        )?;
        range("record.max_second", self.record.max_second, 10, 86_400)?;
        range(
            "transcode.max_concurrent",
            self.transcode.max_concurrent,
            0,
            1024,
        )?;
        range(
            "transcode.restart_max_delay_ms",
            self.transcode.restart_max_delay_ms,
            self.transcode.restart_delay_ms,
            3_600_000,
        )?;
        for (name, ladder) in &self.transcode.ladders {
            let bad = |message: String| ConfigError::Invalid {
                key: "transcode.ladders",
                message: format!("ladder {name:?}: {message}"),
            };
            if ladder.rungs.is_empty() {
                return Err(bad("has no rungs".into()));
            }
            for r in &ladder.rungs {
                if r.name.is_empty()
                    || !r
                        .name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-')
                {
                    return Err(bad(format!(
                        "rung name {:?} must be letters, digits or '-'",
                        r.name
                    )));
                }
                if !(64..=4320).contains(&r.height) || r.height % 2 != 0 {
                    return Err(bad(format!(
                        "rung {}: height {} must be even, 64..=4320",
                        r.name, r.height
                    )));
                }
                if !(50..=100_000).contains(&r.video_kbps) {
                    return Err(bad(format!(
                        "rung {}: video_kbps {} outside 50..=100000",
                        r.name, r.video_kbps
                    )));
                }
            }
        }
        for (app, ladder) in &self.transcode.apps {
            if !self.transcode.ladders.contains_key(ladder) {
                return Err(ConfigError::Invalid {
                    key: "transcode.apps",
                    message: format!("app {app:?} names ladder {ladder:?}, which is not defined"),
                });
            }
        }
        range(
            "proxy.retry_delay_ms",
            self.proxy.retry_delay_ms,
            10,
            3_600_000,
        )?;
        range(
            "proxy.retry_max_delay_ms",
            self.proxy.retry_max_delay_ms,
            self.proxy.retry_delay_ms,
            3_600_000,
        )?;
        range("proxy.timeout_ms", self.proxy.timeout_ms, 500, 3_600_000)?;
        range(
            "proxy.stream_none_reader_delay_ms",
            self.proxy.stream_none_reader_delay_ms,
            0,
            86_400_000,
        )?;
        for p in &self.proxy.pull {
            range("proxy.pull timeout_sec", p.timeout_sec, 0, 3600)?;
            values::check_pull_url(&p.url).map_err(|message| ConfigError::Invalid {
                key: "proxy.pull",
                message,
            })?;
            if !matches!(p.rtsp_transport.as_str(), "tcp" | "udp") {
                return Err(ConfigError::Invalid {
                    key: "proxy.pull",
                    message: format!("rtsp_transport {:?} is not tcp or udp", p.rtsp_transport),
                });
            }
        }
        for p in &self.proxy.push {
            range("proxy.push timeout_sec", p.timeout_sec, 0, 3600)?;
            values::check_push_url(&p.url).map_err(|message| ConfigError::Invalid {
                key: "proxy.push",
                message,
            })?;
        }
        range("record.fragment_ms", self.record.fragment_ms, 100, 10_000)?;
        range(
            "record.fsync_interval_ms",
            self.record.fsync_interval_ms,
            0,
            3_600_000,
        )?;
        range(
            "record.finish_grace_ms",
            self.record.finish_grace_ms,
            0,
            600_000,
        )?;
        for (key, v) in [
            ("rtmp.tls_listen", &self.rtmp.tls_listen),
            ("http.tls_listen", &self.http.tls_listen),
        ] {
            if !v.is_empty() {
                addr(key, v)?;
                if self.tls.cert.is_empty() || self.tls.key.is_empty() {
                    return Err(ConfigError::Invalid {
                        key,
                        message: "a TLS listener needs tls.cert and tls.key".into(),
                    });
                }
            }
        }
        range("hook.timeout_sec", self.hook.timeout_sec, 1, 300)?;
        range(
            "hook.alive_interval_sec",
            self.hook.alive_interval_sec,
            1,
            86_400,
        )?;
        range("hook.retry", self.hook.retry, 0, 10)?;
        range("hook.retry_delay_ms", self.hook.retry_delay_ms, 0, 600_000)?;
        range("hook.max_concurrent", self.hook.max_concurrent, 1, 100_000)?;
        range("hook.queue_len", self.hook.queue_len, 1, 1_000_000)?;
        if !matches!(self.hook.on_error.as_str(), "deny" | "allow") {
            return Err(ConfigError::Invalid {
                key: "hook.on_error",
                message: format!("{:?} is not \"deny\" or \"allow\"", self.hook.on_error),
            });
        }
        for (key, url) in self.hook.urls() {
            if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::Invalid {
                    key,
                    message: format!("{url:?} is not an http:// or https:// URL"),
                });
            }
        }
        let policies = [
            ("auth.publish", &self.auth.publish),
            ("auth.play", &self.auth.play),
        ]
        .into_iter()
        .chain(self.auth.apps.values().flat_map(|a| {
            a.publish
                .iter()
                .map(|p| ("auth.apps publish", p))
                .chain(a.play.iter().map(|p| ("auth.apps play", p)))
        }));
        for (key, p) in policies {
            if !matches!(p.as_str(), "open" | "signed" | "hook") {
                return Err(ConfigError::Invalid {
                    key,
                    message: format!("{p:?} is not \"open\", \"signed\" or \"hook\""),
                });
            }
            if p == "hook" {
                let (hook, url) = if key.contains("publish") {
                    ("hook.on_publish", &self.hook.on_publish)
                } else {
                    ("hook.on_play", &self.hook.on_play)
                };
                if !self.hook.enable || url.is_empty() {
                    return Err(ConfigError::Invalid {
                        key,
                        message: format!("\"hook\" needs hook.enable = true and {hook} set"),
                    });
                }
            }
            if p == "signed" && self.auth.secret.len() < 16 {
                return Err(ConfigError::Invalid {
                    key: "auth.secret",
                    message: "signed URLs need a secret of at least 16 characters".into(),
                });
            }
        }
        range(
            "hls.session_timeout_ms",
            self.hls.session_timeout_ms,
            1000,
            3_600_000,
        )?;
        range(
            "general.stream_none_reader_delay_ms",
            self.general.stream_none_reader_delay_ms,
            0,
            86_400_000,
        )?;
        range(
            "record.hls_segment_ms",
            self.record.hls_segment_ms,
            500,
            60_000,
        )?;
        Ok(())
    }

    /// The effective configuration as TOML (`--print-config`).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// Where recordings go.
    pub fn record_dir(&self) -> PathBuf {
        self.data_dir.join("record")
    }

    pub fn worker_threads(&self) -> usize {
        if self.threads == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        } else {
            self.threads
        }
    }
}

impl HookConfig {
    /// Every event's URL key (`hook.on_*`) with its value.
    pub fn urls(&self) -> [(&'static str, &str); 11] {
        [
            ("hook.on_publish", &self.on_publish),
            ("hook.on_play", &self.on_play),
            ("hook.on_stream_changed", &self.on_stream_changed),
            ("hook.on_stream_none_reader", &self.on_stream_none_reader),
            ("hook.on_stream_not_found", &self.on_stream_not_found),
            ("hook.on_record_mp4", &self.on_record_mp4),
            ("hook.on_record_ts", &self.on_record_ts),
            ("hook.on_flow_report", &self.on_flow_report),
            ("hook.on_server_started", &self.on_server_started),
            ("hook.on_server_exited", &self.on_server_exited),
            ("hook.on_server_keepalive", &self.on_server_keepalive),
        ]
    }
}

impl AuthConfig {
    /// The policy ("open", "signed", "hook") for publishing (`publish`) or playing
    /// (`!publish`) in `app`: the app's override, else the default.
    pub fn policy(&self, app: &str, publish: bool) -> &str {
        let over = self.apps.get(app).and_then(|a| {
            if publish {
                a.publish.as_deref()
            } else {
                a.play.as_deref()
            }
        });
        over.unwrap_or(if publish { &self.publish } else { &self.play })
    }
}

/// Lays `user` over `base`, table by table, so a file may set any subset of keys.
/// Keys absent from `base` are kept and then rejected by `deny_unknown_fields`.
fn overlay(base: &mut toml::Table, user: toml::Table) {
    for (key, value) in user {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(u)) => overlay(b, u),
            (_, v) => {
                base.insert(key, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str) -> Result<Config, ConfigError> {
        // One directory per call: tests run in parallel, and two texts of one
        // length (the key this used) raced for the same file.
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("ferrocast-cfg-{}-{call}", std::process::id(),));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(&path, text).unwrap();
        let r = Config::load(Some(&path));
        std::fs::remove_dir_all(&dir).ok();
        r
    }

    #[test]
    fn embedded_defaults_parse_and_validate() {
        let c = Config::load(None).unwrap();
        assert_eq!(c.rtmp.listen, "0.0.0.0:1935");
        assert_eq!(c.http.listen, "0.0.0.0:8080");
        assert_eq!(c.general.max_stream_wait_ms, 15000);
        assert_eq!(c.general.continue_push_ms, 15000);
        assert_eq!(c, Config::default());
    }

    #[test]
    fn partial_file_overrides_only_its_keys() {
        let c = load_str("[general]\ncontinue_push_ms = 2000\n").unwrap();
        assert_eq!(c.general.continue_push_ms, 2000);
        assert_eq!(c.general.max_stream_wait_ms, 15000);
    }

    #[test]
    fn unknown_key_is_named() {
        let e = load_str("[rtmp]\nchunk_sise = 4096\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("chunk_sise"), "{e}");
    }

    #[test]
    fn bad_value_is_named() {
        let e = load_str("[rtmp]\nchunk_size = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("rtmp.chunk_size"), "{e}");
        let e = load_str("[http]\nlisten = \"nowhere\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("http.listen"), "{e}");
        let e = load_str("threads = \"many\"\n").unwrap_err().to_string();
        assert!(e.contains("threads"), "{e}");
    }

    #[test]
    fn record_durability_keys() {
        let c = Config::default();
        assert_eq!(c.record.fsync_interval_ms, 1000);
        assert_eq!(c.record.finish_grace_ms, 3000);
        assert_eq!((c.record.delete_after_s, c.record.max_disk_bytes), (0, 0));
        let e = load_str("[record]\nfinish_grace_ms = 3600000\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("record.finish_grace_ms"), "{e}");
        let c = load_str("[record]\ndelete_after_s = 86400\nmax_disk_bytes = 1000000\n").unwrap();
        assert_eq!(c.record.delete_after_s, 86400);
        assert_eq!(c.record.max_disk_bytes, 1_000_000);
    }

    #[test]
    fn access_policies_are_checked() {
        let e = load_str("[auth]\nplay = \"signed\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("auth.secret"), "{e}");
        let e = load_str("[auth]\npublish = \"hook\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("hook.on_publish"), "{e}");
        let e = load_str("[auth]\nplay = \"closed\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("auth.play"), "{e}");
        let e = load_str("[hook]\non_error = \"maybe\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("hook.on_error"), "{e}");
        let c = load_str(
            "[auth]\npublish = \"hook\"\nsecret = \"0123456789abcdef\"\napps = { open = { publish = \"open\" }, s = { play = \"signed\" } }\n[hook]\nenable = true\non_publish = \"http://127.0.0.1:9/p\"\n",
        )
        .unwrap();
        assert_eq!(c.auth.policy("live", true), "hook");
        assert_eq!(c.auth.policy("open", true), "open");
        assert_eq!(c.auth.policy("s", false), "signed");
        assert_eq!(c.auth.policy("live", false), "open");
    }

    #[test]
    fn print_config_round_trips() {
        let c = Config::default();
        let back: Config = toml::from_str(&c.to_toml()).unwrap();
        assert_eq!(back, c);
    }
}
