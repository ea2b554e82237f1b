//! The JSON bodies of the hooks and the reading of their answers: pure functions, no
//! I/O, so every field name is checked by a unit test against ZLMediaKit's
//! (`server/WebHook.cpp`: `make_json`, `dumpMediaTuple`, `getRecordInfo`,
//! `makeMediaSourceJson`). `mediaServerId` and `hook_index` are added when a body is
//! sent ([`stamp`]), as ZLMediaKit's `do_http_hook` adds them.

use serde_json::{json, Map, Value};

use super::{Client, RecordedFile};
use crate::hub::info::TrackCodec;
use crate::hub::{OriginKind, PublishOptions, Stream, StreamKey};
use ferrocast_proto::flv::{AudioCodec, VideoCodec};

pub(crate) type Body = Map<String, Value>;

/// ZLMediaKit's `schema` and `protocol` of a client of our `protocol`. The schema is
/// the muxer's: FLV (HTTP or WebSocket) is served from the RTMP muxer, so "rtmp";
/// HTTP-TS from the TS muxer, "ts"; HLS "hls". The protocol is the transport
/// (ZLMediaKit's `MediaInfo::protocol`: "rtmp"/"rtmps", "http"/"https", "ws"/"wss";
/// for HLS it sets none and sends the schema).
pub(crate) fn schema_of(protocol: &str) -> (&str, &str) {
    match protocol {
        "rtmp" => ("rtmp", "rtmp"),
        "rtmps" => ("rtmp", "rtmps"),
        "http-flv" => ("rtmp", "http"),
        "https-flv" => ("rtmp", "https"),
        "ws-flv" => ("rtmp", "ws"),
        "wss-flv" => ("rtmp", "wss"),
        "http-ts" => ("ts", "http"),
        "https-ts" => ("ts", "https"),
        "hls" | "https-hls" => ("hls", "hls"),
        other => (other, other),
    }
}

/// ZLMediaKit's originType number (`MediaOriginType`) and originTypeStr.
pub(crate) fn origin_type(kind: OriginKind) -> (i32, &'static str) {
    match kind {
        OriginKind::RtmpPush => (1, "rtmp_push"),
        OriginKind::Pull => (4, "pull"),
    }
}

/// `dumpMediaTuple`: vhost, app, stream, params.
fn tuple(body: &mut Body, key: &StreamKey, params: &str) {
    body.insert("vhost".into(), key.vhost.clone().into());
    body.insert("app".into(), key.app.clone().into());
    body.insert("stream".into(), key.stream.clone().into());
    body.insert("params".into(), params.into());
}

/// `make_json(MediaInfo)` plus the peer: on_play, on_stream_not_found, and the base
/// of on_publish and on_flow_report.
pub(crate) fn client(c: &Client) -> Body {
    let (schema, protocol) = schema_of(c.protocol);
    let mut b = Body::new();
    b.insert("schema".into(), schema.into());
    b.insert("protocol".into(), protocol.into());
    tuple(&mut b, &c.key, &c.params);
    b.insert("ip".into(), c.peer.ip().to_string().into());
    b.insert("port".into(), c.peer.port().into());
    b.insert("id".into(), c.session_id.to_string().into());
    b
}

pub(crate) fn publish(c: &Client, origin: OriginKind) -> Body {
    let mut b = client(c);
    let (n, s) = origin_type(origin);
    b.insert("originType".into(), n.into());
    b.insert("originTypeStr".into(), s.into());
    b
}

/// on_flow_report: `duration` in whole seconds, as ZLMediaKit sends it.
pub(crate) fn flow_report(
    c: &Client,
    player: bool,
    total_bytes: u64,
    duration: std::time::Duration,
) -> Body {
    let mut b = client(c);
    b.insert("totalBytes".into(), total_bytes.into());
    b.insert("duration".into(), duration.as_secs().into());
    b.insert("player".into(), player.into());
    b
}

/// `getRecordInfo`: on_record_mp4 and on_record_ts.
pub(crate) fn record(f: &RecordedFile) -> Body {
    let mut b = Body::new();
    b.insert("start_time".into(), f.start_time.into());
    b.insert("file_size".into(), f.file_size.into());
    b.insert("time_len".into(), f.time_len.into());
    b.insert(
        "file_path".into(),
        f.file_path.to_string_lossy().into_owned().into(),
    );
    b.insert(
        "file_name".into(),
        f.file_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
            .into(),
    );
    let mut folder = f.folder.to_string_lossy().into_owned();
    if !folder.ends_with('/') {
        folder.push('/');
    }
    b.insert("folder".into(), folder.into());
    // ZLMediaKit: "{record app}/{app}/{stream}/{date}/{file}", relative to the HTTP
    // root; ours is served under /record.
    b.insert("url".into(), format!("record/{}", f.url_path).into());
    tuple(&mut b, &f.key, "");
    b
}

/// on_stream_changed with regist = true: `makeMediaSourceJson` of the stream for
/// `schema` (what getMediaList shows, less what only the API knows: recording state).
pub(crate) fn stream_registered(s: &Stream, schema: &str) -> Body {
    let snap = s.snapshot();
    let origin = snap.origin.as_ref();
    let mut b = Body::new();
    b.insert("regist".into(), true.into());
    b.insert("schema".into(), schema.into());
    tuple(
        &mut b,
        &s.key,
        origin.map(|o| o.params.as_str()).unwrap_or(""),
    );
    b.insert("createStamp".into(), s.created_unix.into());
    b.insert("aliveSecond".into(), s.created.elapsed().as_secs().into());
    b.insert("bytesSpeed".into(), s.bytes_speed().into());
    b.insert("totalBytes".into(), s.bytes_in().into());
    b.insert("readerCount".into(), s.readers().into());
    b.insert("totalReaderCount".into(), s.total_readers().into());
    let (n, name) = origin
        .map(|o| origin_type(o.kind))
        .unwrap_or((0, "unknown"));
    b.insert("originType".into(), n.into());
    b.insert("originTypeStr".into(), name.into());
    b.insert(
        "originUrl".into(),
        origin.map(|o| o.url.clone()).unwrap_or_default().into(),
    );
    let sock = origin
        .and_then(|o| o.peer.map(|p| (p, o.local)))
        .map(|(peer, local)| {
            json!({
                "identifier": peer.to_string(),
                "peer_ip": peer.ip().to_string(), "peer_port": peer.port(),
                "local_ip": local.map(|l| l.ip().to_string()), "local_port": local.map(|l| l.port()),
            })
        })
        .unwrap_or(Value::Null);
    b.insert("originSock".into(), sock);
    let mut tracks = Vec::new();
    if let Some(v) = &snap.info.video {
        let (id, name) = codec_id(v.codec);
        tracks.push(json!({
            "codec_type": 0, "codec_id": id, "codec_id_name": name,
            "ready": v.width > 0, "width": v.width, "height": v.height,
            "fps": (v.fps() * 100.0).round() / 100.0,
        }));
    }
    if let Some(a) = &snap.info.audio {
        let (id, name) = codec_id(a.codec);
        tracks.push(json!({
            "codec_type": 1, "codec_id": id, "codec_id_name": name,
            "ready": a.sample_rate > 0, "sample_rate": a.sample_rate,
            "channels": a.channels, "sample_bit": 16,
        }));
    }
    b.insert("tracks".into(), tracks.into());
    b
}

/// on_stream_changed with regist = false: schema and the media tuple only.
pub(crate) fn stream_unregistered(key: &StreamKey, params: &str, schema: &str) -> Body {
    let mut b = Body::new();
    b.insert("regist".into(), false.into());
    b.insert("schema".into(), schema.into());
    tuple(&mut b, key, params);
    b
}

/// on_stream_none_reader: schema and the media tuple.
pub(crate) fn none_reader(key: &StreamKey, params: &str) -> Body {
    let mut b = Body::new();
    b.insert("schema".into(), "rtmp".into());
    tuple(&mut b, key, params);
    b
}

/// on_server_keepalive: `{"data": {...}}`. ZLMediaKit's `data` counts its objects
/// (MediaSource, TcpSession, ...); ours counts what the hub has under the two names
/// that mean the same here, plus our own names.
pub(crate) fn keepalive(streams: usize, readers: usize, sessions: usize) -> Body {
    let mut b = Body::new();
    b.insert(
        "data".into(),
        json!({
            "MediaSource": streams,
            "TcpSession": sessions,
            "streams": streams,
            "sessions": sessions,
            "readers": readers,
        }),
    );
    b
}

/// Keys of the config that are credentials and never leave the server.
const SECRET_KEYS: [&str; 3] = ["api.secret", "api.metrics_token", "auth.secret"];

/// on_server_started: the configuration flattened to `"section.key": "value"` (as
/// ZLMediaKit sends its whole ini, every value a string), credentials removed and
/// passwords in URLs masked. Proxy lists are left out: their URLs carry stream keys.
pub(crate) fn server_started(config: &crate::config::Config) -> Body {
    let mut b = Body::new();
    if let Ok(v) = serde_json::to_value(config) {
        flatten("", &v, &mut b);
    }
    b
}

fn flatten(prefix: &str, v: &Value, out: &mut Body) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                if SECRET_KEYS.contains(&key.as_str()) || key == "proxy.pull" || key == "proxy.push"
                {
                    continue;
                }
                flatten(&key, v, out);
            }
        }
        Value::String(s) => {
            out.insert(prefix.into(), crate::redact::redact(s).into());
        }
        Value::Null => {
            out.insert(prefix.into(), "".into());
        }
        other => {
            out.insert(prefix.into(), other.to_string().into());
        }
    }
}

/// Adds what every body carries: `mediaServerId` and ZLMediaKit's `hook_index` (a
/// counter per request, so a receiver can tell a retry from a new event).
pub(crate) fn stamp(body: &Body, media_server_id: &str, index: u64) -> Body {
    let mut b = body.clone();
    b.insert("mediaServerId".into(), media_server_id.into());
    b.insert("hook_index".into(), index.into());
    b
}

/// ZLMediaKit's codec_id and codec_id_name (the API's getMediaList uses it too).
pub(crate) fn codec_id(codec: Option<TrackCodec>) -> (i32, &'static str) {
    match codec {
        Some(TrackCodec::Video(v)) => match v {
            VideoCodec::H264 => (0, "H264"),
            VideoCodec::H265 => (1, "H265"),
            VideoCodec::Av1 => (8, "AV1"),
            VideoCodec::Vp9 => (9, "VP9"),
            VideoCodec::Other(_) => (-1, "unknown"),
        },
        Some(TrackCodec::Audio(a)) => match a {
            AudioCodec::Aac => (2, "mpeg4-generic"),
            AudioCodec::G711A => (3, "PCMA"),
            AudioCodec::G711U => (4, "PCMU"),
            AudioCodec::Opus => (5, "opus"),
            AudioCodec::Mp3 => (7, "MP3"),
            AudioCodec::Speex | AudioCodec::Other(_) => (-1, "unknown"),
        },
        None => (-1, ""),
    }
}

/// A receiver's answer that is not an answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum AnswerError {
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("answer is not a JSON object: {0}")]
    NotJson(String),
    #[error("answer's code is not an integer: {0}")]
    BadCode(String),
}

/// A parsed answer: its `code` (`None` when absent) and the whole object.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Answer {
    pub code: Option<i64>,
    pub body: Body,
}

impl Answer {
    /// The receiver's `msg`, if a non-empty string.
    pub(crate) fn msg(&self) -> Option<&str> {
        self.body
            .get("msg")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
    }
}

/// Reads an answer as ZLMediaKit's `parse_http_response` does: 200 and a JSON object
/// whose `code`, if present, is an integer. (ZLMediaKit also fails a missing code;
/// the gates do too, see [`super::Hooks`], but an event answered `{"close":true}` is
/// taken as meant.)
pub(crate) fn parse_answer(status: u16, body: &[u8]) -> Result<Answer, AnswerError> {
    if status != 200 {
        return Err(AnswerError::Status(status));
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| AnswerError::NotJson(e.to_string()))?;
    let Value::Object(body) = v else {
        return Err(AnswerError::NotJson(format!("{v:.40}")));
    };
    let code = match body.get("code") {
        None | Some(Value::Null) => None,
        Some(c) => Some(
            c.as_i64()
                .ok_or_else(|| AnswerError::BadCode(c.to_string()))?,
        ),
    };
    Ok(Answer { code, body })
}

/// A flag as ZLMediaKit receivers send it: `true`, `1`, `"1"`, `"true"` (its options
/// pass through strings). `None` when absent or unreadable.
pub(crate) fn flag(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_f64().map(|f| f != 0.0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Some(true),
            "0" | "false" | "no" | "off" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A non-negative number as a number or a string.
fn number(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => s.trim().parse::<u64>().ok().or_else(|| {
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|f| *f >= 0.0)
                .map(|f| f as u64)
        }),
        _ => None,
    }
}

/// The per-stream options of an on_publish answer (ZLMediaKit's `ProtocolOption`
/// names; what we do not implement is ignored).
pub(crate) fn publish_options(answer: &Body) -> PublishOptions {
    PublishOptions {
        enable_hls: flag(answer.get("enable_hls")),
        enable_mp4: flag(answer.get("enable_mp4")),
        mp4_max_second: number(answer.get("mp4_max_second")).filter(|s| *s > 0),
        continue_push_ms: number(answer.get("continue_push_ms")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::time::Duration;

    fn key() -> StreamKey {
        StreamKey::new(None, "live", "cam")
    }

    fn player(protocol: &'static str) -> Client {
        Client {
            protocol,
            key: key(),
            params: "token=abc".into(),
            peer: "10.0.0.7:51234".parse().unwrap(),
            session_id: 42,
        }
    }

    fn keys(b: &Body) -> Vec<&str> {
        let mut v: Vec<&str> = b.keys().map(String::as_str).collect();
        v.sort();
        v
    }

    #[test]
    fn play_body_has_make_json_fields_and_the_peer() {
        let b = client(&player("http-flv"));
        assert_eq!(
            keys(&b),
            ["app", "id", "ip", "params", "port", "protocol", "schema", "stream", "vhost"]
        );
        assert_eq!(b["schema"], "rtmp");
        assert_eq!(b["protocol"], "http");
        assert_eq!(b["vhost"], "__defaultVhost__");
        assert_eq!(b["app"], "live");
        assert_eq!(b["stream"], "cam");
        assert_eq!(b["params"], "token=abc");
        assert_eq!(b["ip"], "10.0.0.7");
        assert_eq!(b["port"], 51234);
        assert_eq!(b["id"], "42");
    }

    #[test]
    fn schemas_are_the_muxers() {
        for (ours, schema, protocol) in [
            ("rtmp", "rtmp", "rtmp"),
            ("rtmps", "rtmp", "rtmps"),
            ("http-flv", "rtmp", "http"),
            ("ws-flv", "rtmp", "ws"),
            ("http-ts", "ts", "http"),
            ("hls", "hls", "hls"),
        ] {
            assert_eq!(schema_of(ours), (schema, protocol), "{ours}");
        }
    }

    #[test]
    fn publish_body_adds_origin_type() {
        let b = publish(&player("rtmp"), OriginKind::RtmpPush);
        assert_eq!(b["originType"], 1);
        assert_eq!(b["originTypeStr"], "rtmp_push");
        assert_eq!(b["schema"], "rtmp");
        let b = publish(&player("rtmp"), OriginKind::Pull);
        assert_eq!(
            (b["originType"].clone(), b["originTypeStr"].clone()),
            (json!(4), json!("pull"))
        );
    }

    #[test]
    fn flow_report_body() {
        let b = flow_report(&player("rtmp"), true, 123_456, Duration::from_millis(7_900));
        assert_eq!(b["totalBytes"], 123_456);
        assert_eq!(b["duration"], 7);
        assert_eq!(b["player"], true);
        assert_eq!(b["id"], "42");
    }

    #[test]
    fn record_body_is_record_info() {
        let f = RecordedFile {
            key: key(),
            file_path: PathBuf::from("/data/record/live/cam/2026-12-03/19-00-00.mp4"),
            file_size: 1000,
            start_time: 1_700_000_000,
            time_len: 12.5,
            url_path: "live/cam/2026-12-03/19-00-00.mp4".into(),
            folder: PathBuf::from("/data/record/live/cam"),
        };
        let b = record(&f);
        assert_eq!(
            keys(&b),
            [
                "app",
                "file_name",
                "file_path",
                "file_size",
                "folder",
                "params",
                "start_time",
                "stream",
                "time_len",
                "url",
                "vhost"
            ]
        );
        assert_eq!(b["file_name"], "19-00-00.mp4");
        assert_eq!(b["folder"], "/data/record/live/cam/");
        assert_eq!(b["url"], "record/live/cam/2026-12-03/19-00-00.mp4");
        assert_eq!(b["time_len"], 12.5);
        assert_eq!(b["start_time"], 1_700_000_000u64);
    }

    #[test]
    fn unregister_and_none_reader_bodies() {
        let b = stream_unregistered(&key(), "k=v", "ts");
        assert_eq!(
            keys(&b),
            ["app", "params", "regist", "schema", "stream", "vhost"]
        );
        assert_eq!(b["regist"], false);
        let b = none_reader(&key(), "");
        assert_eq!(keys(&b), ["app", "params", "schema", "stream", "vhost"]);
        assert_eq!(b["schema"], "rtmp");
    }

    #[test]
    fn register_body_is_media_source_json() {
        let hub = crate::hub::Hub::new(crate::hub::HubSettings::from_config(
            &crate::config::Config::default(),
        ));
        let origin = crate::hub::Origin {
            kind: OriginKind::RtmpPush,
            peer: Some("10.0.0.7:5000".parse().unwrap()),
            local: Some("10.0.0.1:1935".parse().unwrap()),
            params: "t=1".into(),
            url: "rtmp://10.0.0.1/live/cam".into(),
            options: PublishOptions::default(),
        };
        let p = hub.publish(key(), origin).unwrap();
        let b = stream_registered(p.stream(), "hls");
        for k in [
            "regist",
            "schema",
            "vhost",
            "app",
            "stream",
            "params",
            "createStamp",
            "aliveSecond",
            "bytesSpeed",
            "totalBytes",
            "readerCount",
            "totalReaderCount",
            "originType",
            "originTypeStr",
            "originUrl",
            "originSock",
            "tracks",
        ] {
            assert!(b.contains_key(k), "{k} missing");
        }
        assert_eq!(b["regist"], true);
        assert_eq!(b["schema"], "hls");
        assert_eq!(b["params"], "t=1");
        assert_eq!(b["originTypeStr"], "rtmp_push");
        assert_eq!(b["originSock"]["peer_ip"], "10.0.0.7");
        assert_eq!(b["originSock"]["local_port"], 1935);
    }

    #[test]
    fn server_started_hides_credentials() {
        let mut c = crate::config::Config::default();
        c.api.secret = "s3cret-api-value".into();
        c.api.metrics_token = "metrics-token-value".into();
        c.auth.secret = "auth-secret-of-16+chars".into();
        c.hook.on_play = "http://user:pw@hooks.local/play".into();
        c.hook.media_server_id = "edge-1".into();
        let b = server_started(&c);
        let text = serde_json::to_string(&b).unwrap();
        for secret in [
            "s3cret-api-value",
            "metrics-token-value",
            "auth-secret-of-16",
            ":pw@",
        ] {
            assert!(!text.contains(secret), "{secret} leaked");
        }
        assert_eq!(b["hook.on_play"], "http://user:***@hooks.local/play");
        assert_eq!(b["hook.media_server_id"], "edge-1");
        assert_eq!(b["hook.timeout_sec"], "10");
        assert!(b.values().all(Value::is_string));
    }

    #[test]
    fn stamp_adds_server_id_and_index() {
        let b = stamp(&Body::new(), "ms1", 9);
        assert_eq!(b["mediaServerId"], "ms1");
        assert_eq!(b["hook_index"], 9);
    }

    #[test]
    fn answers() {
        let a = parse_answer(200, br#"{"code":0,"msg":"ok"}"#).unwrap();
        assert_eq!(a.code, Some(0));
        assert_eq!(a.msg(), Some("ok"));
        assert_eq!(parse_answer(200, br#"{"close":true}"#).unwrap().code, None);
        assert_eq!(parse_answer(200, br#"{"code":-1}"#).unwrap().code, Some(-1));
        assert_eq!(parse_answer(500, b"{}"), Err(AnswerError::Status(500)));
        assert!(matches!(
            parse_answer(200, b"<html>"),
            Err(AnswerError::NotJson(_))
        ));
        assert!(matches!(
            parse_answer(200, b"[0]"),
            Err(AnswerError::NotJson(_))
        ));
        assert!(matches!(
            parse_answer(200, br#"{"code":"0"}"#),
            Err(AnswerError::BadCode(_))
        ));
    }

    #[test]
    fn publish_options_accept_zlm_spellings() {
        let b = |s: &str| -> Body { serde_json::from_str(s).unwrap() };
        let o = publish_options(&b(
            r#"{"code":0,"enable_hls":false,"enable_mp4":1,"mp4_max_second":"30","continue_push_ms":2000}"#,
        ));
        assert_eq!(
            o,
            PublishOptions {
                enable_hls: Some(false),
                enable_mp4: Some(true),
                mp4_max_second: Some(30),
                continue_push_ms: Some(2000),
            }
        );
        let o = publish_options(&b(
            r#"{"enable_hls":"1","enable_mp4":"false","mp4_max_second":0}"#,
        ));
        assert_eq!(o.enable_hls, Some(true));
        assert_eq!(o.enable_mp4, Some(false));
        assert_eq!(o.mp4_max_second, None);
        assert_eq!(
            publish_options(&b(r#"{"code":0}"#)),
            PublishOptions::default()
        );
        assert_eq!(flag(Some(&json!("maybe"))), None);
    }
}
