//! Stream and session endpoints: list, query and close streams; list and kick
//! sessions. ZLMediaKit's media JSON (originType numbers included) is built here.

use std::sync::Arc;

use axum::response::Response;
use serde_json::{json, Value};

use super::params::{flag, key_of, required, Params};
use super::{fail, reply, ApiState};

use crate::hook::{codec_id, origin_type};
use crate::hub::{Role, SessionInfo, Stream};
use crate::record::RecordKind;

/// The endpoints of this group.
pub(super) const NAMES: &[&str] = &[
    "getMediaList",
    "isMediaOnline",
    "close_streams",
    "close_stream",
    "getAllSession",
    "getMediaPlayerList",
    "kick_session",
];

pub(super) async fn call(st: &ApiState, name: &str, p: &Params) -> Result<Response, Response> {
    Ok(match name {
        "getMediaList" => {
            let mut data = Vec::new();
            for s in matching(st, p) {
                for schema in schemas(st) {
                    if p.get("schema")
                        .is_some_and(|want| !want.is_empty() && want != schema)
                    {
                        continue;
                    }
                    data.push(media_json(st, s.as_ref(), schema));
                }
            }
            reply(json!({"code": 0, "data": data}))
        }
        "isMediaOnline" => {
            let schema = required(p, "schema")?;
            let key = key_of(p)?;
            let online = schemas(st).contains(&schema)
                && st.hub.find(&key).is_some_and(|s| s.is_publishing());
            reply(json!({"code": 0, "online": online}))
        }
        "close_streams" => {
            let force = flag(p, "force");
            let (mut hit, mut closed) = (0, 0);
            for s in matching(st, p) {
                hit += 1;
                if force || s.readers() == 0 {
                    st.hub.close_stream(&s);
                    closed += 1;
                }
            }
            tracing::info!(count_hit = hit, count_closed = closed, "close_streams");
            reply(json!({"code": 0, "count_hit": hit, "count_closed": closed}))
        }
        "close_stream" => {
            required(p, "schema")?;
            let key = key_of(p)?;
            let Some(s) = st.hub.find(&key) else {
                return Err(fail(-500, "can not find the stream"));
            };
            if !flag(p, "force") && s.readers() > 0 {
                return Ok(reply(
                    json!({"code": 0, "result": -1, "msg": "can not close a stream with viewers without force=1"}),
                ));
            }
            st.hub.close_stream(&s);
            reply(json!({"code": 0, "result": 0, "msg": "success"}))
        }
        "getAllSession" => {
            let port = p.get("local_port").filter(|v| !v.is_empty());
            let ip = p.get("peer_ip").filter(|v| !v.is_empty());
            let data: Vec<Value> = st
                .hub
                .sessions()
                .iter()
                .filter(|s| port.is_none_or(|v| *v == s.local.port().to_string()))
                .filter(|s| ip.is_none_or(|v| *v == s.peer.ip().to_string()))
                .map(session_json)
                .collect();
            reply(json!({"code": 0, "data": data}))
        }
        "getMediaPlayerList" => {
            let key = key_of(p)?;
            let schema = p.get("schema").filter(|v| !v.is_empty());
            let data: Vec<Value> = st
                .hub
                .sessions()
                .iter()
                .filter(|s| s.role == Role::Player && s.key.as_ref() == Some(&key))
                .filter(|s| schema.is_none_or(|want| s.schema.starts_with(want.as_str())))
                .map(session_json)
                .collect();
            reply(json!({"code": 0, "data": data}))
        }
        "kick_session" => {
            let id: u64 = required(p, "id")?.trim().parse().map_err(|_| {
                fail(
                    -300,
                    "invalid parameter: id must be a session id (a number)",
                )
            })?;
            if st.hub.kick_session(id) {
                tracing::info!(session = id, "session kicked by the API");
                reply(json!({"code": 0, "msg": "success"}))
            } else {
                fail(-500, "can not find the session")
            }
        }
        _ => return Err(fail(-500, format!("unknown API: {name}"))),
    })
}

fn session_json(s: &SessionInfo) -> Value {
    let role = match s.role {
        Role::Publisher => "publisher",
        Role::Player => "player",
        _ => "unknown",
    };
    json!({
        "id": s.id.to_string(),
        "identifier": s.id.to_string(),
        "local_ip": s.local.ip().to_string(), "local_port": s.local.port(),
        "peer_ip": s.peer.ip().to_string(), "peer_port": s.peer.port(),
        "typeid": s.schema,
        "schema": s.schema,
        "role": role,
        "vhost": s.key.as_ref().map(|k| k.vhost.as_str()),
        "app": s.key.as_ref().map(|k| k.app.as_str()),
        "stream": s.key.as_ref().map(|k| k.stream.as_str()),
        "startStamp": s.started_unix,
    })
}

/// The output schemas every stream has (one getMediaList entry each).
pub(super) fn schemas(st: &ApiState) -> Vec<&'static str> {
    let mut v = vec!["rtmp", "ts"];
    if st.config.read().unwrap().hls.enabled {
        v.insert(1, "hls");
    }
    v
}

fn matching(st: &ApiState, p: &Params) -> Vec<Arc<Stream>> {
    let want = |k: &str| p.get(k).filter(|v| !v.is_empty());
    let mut v: Vec<_> = st
        .hub
        .streams()
        .into_iter()
        .filter(|s| want("vhost").is_none_or(|v| *v == s.key.vhost))
        .filter(|s| want("app").is_none_or(|v| *v == s.key.app))
        .filter(|s| want("stream").is_none_or(|v| *v == s.key.stream))
        .collect();
    v.sort_by(|a, b| (&a.key.app, &a.key.stream).cmp(&(&b.key.app, &b.key.stream)));
    v
}

pub(super) fn media_json(st: &ApiState, s: &Stream, schema: &str) -> Value {
    let snap = s.snapshot();
    let mut tracks = Vec::new();
    if let Some(v) = &snap.info.video {
        tracks.push(json!({
            "codec_type": 0, "codec_id": codec_id(v.codec).0, "codec_id_name": codec_id(v.codec).1, "codec_string": v.codec_string,
            "ready": v.width > 0, "frames": v.frames, "duration": v.duration_ms(),
            "width": v.width, "height": v.height, "fps": (v.fps() * 100.0).round() / 100.0,
            "gop_size": v.gop_size, "gop_interval_ms": v.gop_interval_ms, "key_frames": v.key_frames,
        }));
    }
    if let Some(a) = &snap.info.audio {
        tracks.push(json!({
            "codec_type": 1, "codec_id": codec_id(a.codec).0, "codec_id_name": codec_id(a.codec).1, "codec_string": a.codec_string,
            "ready": a.sample_rate > 0, "frames": a.frames, "duration": a.duration_ms(),
            "sample_rate": a.sample_rate, "channels": a.channels, "sample_bit": 16,
        }));
    }
    let origin = snap.origin.as_ref();
    json!({
        "schema": schema,
        "vhost": s.key.vhost, "app": s.key.app, "stream": s.key.stream,
        "params": origin.map(|o| o.params.as_str()).unwrap_or(""),
        "createStamp": s.created_unix,
        "aliveSecond": s.created.elapsed().as_secs(),
        "bytesSpeed": s.bytes_speed(),
        "totalBytes": s.bytes_in(),
        "readerCount": s.readers(),
        "totalReaderCount": s.total_readers(),
        "originType": origin.map(|o| origin_type(o.kind).0).unwrap_or(0),
        "originTypeStr": origin.map(|o| origin_type(o.kind).1).unwrap_or("unknown"),
        "originUrl": origin.map(|o| o.url.as_str()).unwrap_or(""),
        "isRecordingMP4": st.recorder.is_recording(&s.key, RecordKind::Mp4),
        "isRecordingHLS": st.recorder.is_recording(&s.key, RecordKind::Hls),
        "hlsMaster": format!("/{}/{}/master.m3u8", s.key.app, s.key.stream),
        "renditions": st.transcoder.renditions(&s.key).iter().map(|r| json!({
            "name": r.name, "stream": r.key.stream, "width": r.width, "height": r.height,
            "bandwidth": r.bandwidth_bps,
        })).collect::<Vec<_>>(),
        "originSock": origin.and_then(|o| o.peer.map(|peer| json!({
            "peer_ip": peer.ip().to_string(), "peer_port": peer.port(),
            "local_ip": o.local.map(|l| l.ip().to_string()), "local_port": o.local.map(|l| l.port()),
            "identifier": format!("{peer}"),
        }))),
        "publishing": snap.publishing,
        "tracks": tracks,
    })
}
