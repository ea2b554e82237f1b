//! Prometheus metrics, served as text at `/metrics`.
//!
//! Counters that change per packet live in the hub as atomics (bytes, drops) and are
//! read at scrape time, so the hot path pays no label lookups; events that are rare
//! (sessions, segments) are counted where they happen.
//!
//! The per-stream series are written here at each scrape from the streams that
//! exist then, not kept in the registry: a series of a stream that ended disappears
//! with it (a registry keeps every label set it has seen, so a server that saw a
//! million stream names would list them all, and /metrics would name streams long
//! gone).

use std::sync::Arc;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::hub::Hub;

/// Installs the global recorder; `None` if one is already installed.
pub(crate) fn install() -> Option<PrometheusHandle> {
    PrometheusBuilder::new().install_recorder().ok()
}

/// Renders the registry after refreshing the per-stream values from the hub.
pub(crate) fn render(handle: &PrometheusHandle, hub: &Arc<Hub>) -> String {
    let streams = hub.streams();
    gauge!("ferrocast_streams").set(streams.len() as f64);
    gauge!("ferrocast_publishers").set(streams.iter().filter(|s| s.is_publishing()).count() as f64);
    let mut out = handle.render();
    write_stream_series(&mut out, &streams);
    out
}

/// The per-stream series, in Prometheus text format, for the streams that exist now.
fn write_stream_series(out: &mut String, streams: &[Arc<crate::hub::Stream>]) {
    use std::fmt::Write;
    type Read = fn(&crate::hub::Stream) -> u64;
    let series: [(&str, &str, &str, Read); 4] = [
        (
            "ferrocast_stream_bytes_in_total",
            "counter",
            "Bytes received from the stream's publisher.",
            |s| s.bytes_in(),
        ),
        (
            "ferrocast_stream_bytes_out_total",
            "counter",
            "Bytes sent to the stream's players.",
            |s| s.bytes_out(),
        ),
        (
            "ferrocast_stream_frames_dropped_total",
            "counter",
            "Messages skipped by players of the stream that fell behind.",
            |s| s.frames_dropped(),
        ),
        (
            "ferrocast_stream_players",
            "gauge",
            "Players of the stream now.",
            |s| s.readers() as u64,
        ),
    ];
    if streams.is_empty() {
        return;
    }
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    for (name, kind, help, read) in series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for s in streams {
            let _ = writeln!(
                out,
                "{name}{{stream=\"{}\"}} {}",
                label_value(&s.key.to_string()),
                read(s)
            );
        }
    }
}

/// A label value escaped as the text format wants: backslash, double quote and
/// newline (stream names are peer input).
fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Protocols players use, for the `protocol` label.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Protocol {
    Rtmp,
    HttpFlv,
    WsFlv,
    HttpTs,
}

impl Protocol {
    fn label(self) -> &'static str {
        match self {
            Protocol::Rtmp => "rtmp",
            Protocol::HttpFlv => "http-flv",
            Protocol::WsFlv => "ws-flv",
            Protocol::HttpTs => "http-ts",
        }
    }
}

/// Counts a player of `protocol` while it lives.
pub(crate) struct PlayerGauge(Protocol);

impl PlayerGauge {
    pub(crate) fn new(protocol: Protocol) -> Self {
        gauge!("ferrocast_players", "protocol" => protocol.label()).increment(1.0);
        PlayerGauge(protocol)
    }
}

impl Drop for PlayerGauge {
    fn drop(&mut self) {
        gauge!("ferrocast_players", "protocol" => self.0.label()).decrement(1.0);
    }
}

/// A session ended; `reason` is the free-text reason of the log line, folded into a
/// small set of labels.
pub(crate) fn session_closed(protocol: &'static str, reason: &str) {
    counter!("ferrocast_sessions_closed_total", "protocol" => protocol, "reason" => reason_class(reason)).increment(1);
}

/// A recording of `kind` ("mp4", "hls") began.
pub(crate) fn recording_started(kind: &'static str) {
    gauge!("ferrocast_recordings_in_progress", "type" => kind).increment(1.0);
}

/// A write error (a full disk) stopped a file of a recording of `kind`; the
/// recording waits for space and resumes into a new file.
pub(crate) fn recording_write_failed(kind: &'static str) {
    counter!("ferrocast_recordings_failed_total", "type" => kind).increment(1);
}

/// A recording stopped by a write error wrote a new file.
pub(crate) fn recording_resumed(kind: &'static str) {
    counter!("ferrocast_recordings_resumed_total", "type" => kind).increment(1);
}

/// An MP4 recording interrupted by a crash was finished at start-up.
pub(crate) fn recording_repaired() {
    counter!("ferrocast_recordings_repaired_total").increment(1);
}

/// Retention deleted a recording file.
pub(crate) fn recording_deleted() {
    counter!("ferrocast_recordings_deleted_total").increment(1);
}

/// A recording ended; `failed` when a write error stopped it.
pub(crate) fn recording_ended(kind: &'static str, failed: bool) {
    gauge!("ferrocast_recordings_in_progress", "type" => kind).decrement(1.0);
    if failed {
        counter!("ferrocast_recordings_failed_total", "type" => kind).increment(1);
    }
}

/// A hook request ended: `result` is "ok", "refused", "error" or "timeout".
pub(crate) fn hook_request(hook: &'static str, result: &'static str, took: std::time::Duration) {
    counter!("ferrocast_hook_requests_total", "hook" => hook, "result" => result).increment(1);
    histogram!("ferrocast_hook_duration_seconds", "hook" => hook).record(took.as_secs_f64());
}

/// An event hook was dropped because its queue was full.
pub(crate) fn hook_dropped(hook: &'static str) {
    counter!("ferrocast_hook_dropped_total", "hook" => hook).increment(1);
}

pub(crate) fn hls_segment_produced() {
    counter!("ferrocast_hls_segments_total").increment(1);
}

fn reason_class(reason: &str) -> &'static str {
    let r = reason.to_ascii_lowercase();
    if r.contains("peer closed") {
        "peer_closed"
    } else if r.contains("bad input") {
        "bad_input"
    } else if r.contains("timeout") || r.contains("idle") {
        "timeout"
    } else if r.contains("refused") {
        "refused"
    } else if r.contains("too slow") || r.contains("stopped reading") {
        "too_slow"
    } else if r.contains("stream ended") {
        "stream_ended"
    } else if r.contains("kicked") {
        "kicked"
    } else if r.contains("operator") {
        "closed_by_api"
    } else if r.contains("shutting down") {
        "shutdown"
    } else if r.contains("error") {
        "io_error"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reasons_fold_into_few_labels() {
        use super::reason_class as c;
        assert_eq!(c("peer closed the connection"), "peer_closed");
        assert_eq!(
            c("bad input from peer: chunk stream: chunk size 0 out of range"),
            "bad_input"
        );
        assert_eq!(
            c("handshake timeout: no connect within 15000 ms"),
            "timeout"
        );
        assert_eq!(
            c("publish refused: stream x is already being published"),
            "refused"
        );
        assert_eq!(c("player too slow: behind for more than 10s"), "too_slow");
        assert_eq!(c("stream ended"), "stream_ended");
        assert_eq!(c("stream closed by the operator (API)"), "closed_by_api");
        assert_eq!(c("server shutting down"), "shutdown");
        assert_eq!(c("kicked by the API"), "kicked");
        assert_eq!(c("write error: broken pipe"), "io_error");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(
            super::label_value("__defaultVhost__/live/a"),
            "__defaultVhost__/live/a"
        );
        assert_eq!(super::label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
