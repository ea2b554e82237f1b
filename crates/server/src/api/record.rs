//! Recording endpoints: start, stop and query MP4 and HLS recordings, list MP4 files.

use axum::response::Response;
use serde_json::{json, Value};

use super::params::{key_of, required, Params};
use super::{fail, reply, ApiState};
use crate::record::{RecordError, RecordKind};

/// The endpoints of this group.
pub(super) const NAMES: &[&str] = &[
    "startRecord",
    "stopRecord",
    "isRecording",
    "getMP4RecordFile",
];

pub(super) async fn call(st: &ApiState, name: &str, p: &Params) -> Result<Response, Response> {
    Ok(match name {
        "startRecord" => {
            let kind = record_kind(p)?;
            let key = key_of(p)?;
            let max_second = match p.get("max_second").filter(|v| !v.is_empty()) {
                Some(v) => Some(v.trim().parse::<u64>().map_err(|_| {
                    fail(
                        -300,
                        "invalid parameter: max_second must be a number of seconds",
                    )
                })?),
                None => None,
            };
            match st.recorder.start(
                &key,
                kind,
                p.get("customized_path").map(String::as_str),
                max_second,
            ) {
                Ok(_) => reply(json!({"code": 0, "result": true, "msg": "success"})),
                Err(RecordError::StreamNotFound) => fail(-500, "can not find the stream"),
                Err(e @ RecordError::BadPath(_)) => fail(-300, e.to_string()),
            }
        }
        "stopRecord" => {
            let kind = record_kind(p)?;
            let key = key_of(p)?;
            if st.recorder.stop(&key, kind).await {
                reply(json!({"code": 0, "result": true, "msg": "success"}))
            } else {
                reply(json!({"code": -1, "result": false, "msg": "not recording"}))
            }
        }
        "isRecording" => {
            let kind = record_kind(p)?;
            let key = key_of(p)?;
            let status = st.recorder.is_recording(&key, kind);
            let mut v = json!({"code": 0, "status": status});
            // While recording too: a recording paused by a full disk says why.
            if let Some(e) = st.recorder.last_error(&key, kind) {
                v["error"] = Value::String(e);
            }
            reply(v)
        }
        "getMP4RecordFile" => {
            let key = key_of(p)?;
            let period = p.get("period").map(String::as_str);
            let custom = p.get("customized_path").map(String::as_str);
            match st.recorder.list_mp4(&key, period, custom) {
                Ok((paths, root)) => {
                    let base = st.recorder.settings().root;
                    let urls: Vec<String> =
                        match (period.filter(|d| !d.is_empty()), root.strip_prefix(&base)) {
                            (Some(_), Ok(rel)) => paths
                                .iter()
                                .map(|f| format!("/record/{}/{f}", rel.display()))
                                .collect(),
                            _ => Vec::new(),
                        };
                    reply(json!({"code": 0, "data": {
                        "paths": paths, "rootPath": root.display().to_string(), "urls": urls,
                    }}))
                }
                Err(e) => fail(-300, e.to_string()),
            }
        }
        _ => return Err(fail(-500, format!("unknown API: {name}"))),
    })
}

fn record_kind(p: &Params) -> Result<RecordKind, Response> {
    RecordKind::from_type(required(p, "type")?)
        .ok_or_else(|| fail(-300, "invalid parameter: type must be 0 (hls) or 1 (mp4)"))
}
