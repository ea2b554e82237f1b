//! The transcode endpoints (startTranscode, stopTranscode, listTranscode) and the
//! ffmpeg source ones (addFFmpegSource, delFFmpegSource, listFFmpegSource): their
//! parameters, and the JSON made of what the [`Transcoder`](crate::transcode::Transcoder)
//! returns. The transcoder itself knows nothing of this wire format.

use axum::response::Response;
use serde_json::{json, Value};

use super::params::{int_param, key_of, required, Params};
use super::{fail, keyed, reply, ApiState};
use crate::transcode::{FfmpegSourceInfo, TranscodeInfo};

/// The endpoints of this group.
pub(super) const NAMES: &[&str] = &[
    "startTranscode",
    "stopTranscode",
    "listTranscode",
    "addFFmpegSource",
    "delFFmpegSource",
    "listFFmpegSource",
];

pub(super) async fn call(st: &ApiState, name: &str, p: &Params) -> Result<Response, Response> {
    match name {
        "startTranscode" => start(st, p),
        "stopTranscode" => stop(st, p).await,
        "listTranscode" => Ok(list(st)),
        "addFFmpegSource" => add_ffmpeg_source(st, p).await,
        "delFFmpegSource" => del_ffmpeg_source(st, p).await,
        "listFFmpegSource" => Ok(list_ffmpeg_sources(st)),
        _ => Err(fail(-500, format!("unknown API: {name}"))),
    }
}

/// startTranscode: `ladder` defaults to `default`.
pub(super) fn start(st: &ApiState, p: &Params) -> Result<Response, Response> {
    let key = key_of(p)?;
    let ladder = p
        .get("ladder")
        .filter(|v| !v.is_empty())
        .map(String::as_str)
        .unwrap_or("default");
    Ok(keyed(st.transcoder.start(&key, ladder)))
}

pub(super) async fn stop(st: &ApiState, p: &Params) -> Result<Response, Response> {
    let key = key_of(p)?;
    Ok(if st.transcoder.stop(&key).await {
        reply(json!({"code": 0, "result": true, "msg": "success"}))
    } else {
        reply(json!({"code": -1, "result": false, "msg": "not transcoding"}))
    })
}

pub(super) fn list(st: &ApiState) -> Response {
    let data: Vec<Value> = st.transcoder.list().iter().map(transcode_json).collect();
    reply(json!({"code": 0, "data": data}))
}

/// addFFmpegSource: `timeout_ms` defaults to 10 s and is clamped to 0..=600 s.
/// Source schemes addFFmpegSource accepts unless `api.allow_unsafe_config`: network
/// protocols only. ffmpeg reads a local path, `file:`, `concat:`, `pipe:` or
/// `subfile:` as readily as a stream, and `tcp://`/`udp://` can be told to listen:
/// the API secret must not be a way to read the server's files or open ports.
const NETWORK_SCHEMES: &[&str] = &["rtmp", "rtmps", "rtsp", "rtsps", "http", "https", "srt"];

pub(super) async fn add_ffmpeg_source(st: &ApiState, p: &Params) -> Result<Response, Response> {
    let src = required(p, "src_url")?;
    let dst = required(p, "dst_url")?;
    let network = src.split_once("://").is_some_and(|(scheme, _)| {
        NETWORK_SCHEMES
            .iter()
            .any(|s| scheme.eq_ignore_ascii_case(s))
    });
    if !network && !st.config.read().unwrap().api.allow_unsafe_config {
        return Err(fail(
            -300,
            "invalid parameter src_url: a network URL (rtmp, rtmps, rtsp, rtsps, http, https, srt); \
             local files need api.allow_unsafe_config in the config file",
        ));
    }
    let timeout_ms = int_param(p, "timeout_ms", 10_000)?.clamp(0, 600_000) as u64;
    Ok(keyed(
        st.transcoder.add_ffmpeg_source(src, dst, timeout_ms).await,
    ))
}

pub(super) async fn del_ffmpeg_source(st: &ApiState, p: &Params) -> Result<Response, Response> {
    let flag = st.transcoder.del_ffmpeg_source(required(p, "key")?).await;
    Ok(reply(json!({"code": 0, "data": {"flag": flag}})))
}

pub(super) fn list_ffmpeg_sources(st: &ApiState) -> Response {
    let data: Vec<Value> = st
        .transcoder
        .list_ffmpeg_sources()
        .iter()
        .map(source_json)
        .collect();
    reply(json!({"code": 0, "data": data}))
}

fn transcode_json(t: &TranscodeInfo) -> Value {
    json!({
        "key": t.key.to_string(),
        "vhost": t.key.vhost,
        "app": t.key.app,
        "stream": t.key.stream,
        "ladder": t.ladder,
        "auto": t.auto,
        "renditions": t.renditions.iter().map(|r| json!({
            "name": r.name,
            "stream": r.key.stream,
            "width": r.width,
            "height": r.height,
            "video_kbps": r.video_kbps,
        })).collect::<Vec<_>>(),
        "pid": t.pid,
        "restarts": t.restarts,
        "status": t.status.label(),
        "last_error": t.last_error,
    })
}

fn source_json(s: &FfmpegSourceInfo) -> Value {
    json!({
        "key": s.key,
        "src_url": s.src_url,
        "dst_url": s.dst_url,
        "pid": s.pid,
        "restarts": s.restarts,
        "status": s.status.label(),
        "last_error": s.last_error,
    })
}
