//! Transcode and FFmpeg source endpoints (adaptive bitrate renditions).

use axum::response::Response;
use serde_json::json;

use super::params::{int_param, key_of, required, Params};
use super::{fail, keyed, reply, ApiState};

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
    Ok(match name {
        "startTranscode" => {
            let key = key_of(p)?;
            let ladder = p
                .get("ladder")
                .filter(|v| !v.is_empty())
                .map(String::as_str)
                .unwrap_or("default");
            keyed(st.transcoder.start(&key, ladder))
        }
        "stopTranscode" => {
            let key = key_of(p)?;
            if st.transcoder.stop(&key).await {
                reply(json!({"code": 0, "result": true, "msg": "success"}))
            } else {
                reply(json!({"code": -1, "result": false, "msg": "not transcoding"}))
            }
        }
        "listTranscode" => reply(json!({"code": 0, "data": st.transcoder.list()})),
        "addFFmpegSource" => {
            let src = required(p, "src_url")?;
            let dst = required(p, "dst_url")?;
            let timeout_ms = int_param(p, "timeout_ms", 10_000)?.clamp(0, 600_000) as u64;
            keyed(st.transcoder.add_ffmpeg_source(src, dst, timeout_ms).await)
        }
        "delFFmpegSource" => {
            let flag = st.transcoder.del_ffmpeg_source(required(p, "key")?).await;
            reply(json!({"code": 0, "data": {"flag": flag}}))
        }
        "listFFmpegSource" => {
            reply(json!({"code": 0, "data": st.transcoder.list_ffmpeg_sources()}))
        }
        _ => return Err(fail(-500, format!("unknown API: {name}"))),
    })
}
