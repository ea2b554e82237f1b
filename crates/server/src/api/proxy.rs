//! The pull and push proxy endpoints (addStreamProxy, delStreamProxy,
//! listStreamProxy, getProxyInfo, addStreamPusherProxy, delStreamPusherProxy,
//! listStreamPusherProxy): their parameters, and the JSON made of what the
//! [`ProxyManager`](crate::proxy::manager::ProxyManager) returns. The manager itself
//! knows nothing of this wire format.

use axum::response::Response;
use serde_json::{json, Value};

use super::params::{flag, int_param, required, vhost_param, Params};
use super::{fail, keyed, reply, ApiState};
use crate::config::{PullSpec, PushSpec};
use crate::proxy::manager::{ProxyState, PullInfo, PushInfo};

/// The endpoints of this group.
pub(super) const NAMES: &[&str] = &[
    "addStreamProxy",
    "delStreamProxy",
    "listStreamProxy",
    "getProxyInfo",
    "addStreamPusherProxy",
    "delStreamPusherProxy",
    "listStreamPusherProxy",
];

pub(super) async fn call(st: &ApiState, name: &str, p: &Params) -> Result<Response, Response> {
    match name {
        "addStreamProxy" => add_pull(st, p),
        "delStreamProxy" => del_pull(st, p).await,
        "listStreamProxy" => Ok(list_pulls(st)),
        "getProxyInfo" => pull_info(st, p),
        "addStreamPusherProxy" => add_push(st, p),
        "delStreamPusherProxy" => del_push(st, p).await,
        "listStreamPusherProxy" => Ok(list_pushes(st)),
        _ => Err(fail(-500, format!("unknown API: {name}"))),
    }
}

/// addStreamProxy: `rtp_type` 0 (TCP, the default) or 1 (UDP) for RTSP; HLS on
/// unless `enable_hls` says otherwise.
pub(super) fn add_pull(st: &ApiState, p: &Params) -> Result<Response, Response> {
    let spec = PullSpec {
        vhost: vhost_param(p),
        app: required(p, "app")?.to_owned(),
        stream: required(p, "stream")?.to_owned(),
        url: required(p, "url")?.to_owned(),
        retry_count: int_param(p, "retry_count", -1)?,
        timeout_sec: int_param(p, "timeout_sec", 0)?.clamp(0, 3600) as u64,
        on_demand: flag(p, "on_demand"),
        enable_hls: p.get("enable_hls").is_none_or(|_| flag(p, "enable_hls")),
        enable_mp4: flag(p, "enable_mp4"),
        rtsp_transport: match p.get("rtp_type").map(String::as_str) {
            None | Some("" | "0") => "tcp".to_owned(),
            Some("1") => "udp".to_owned(),
            Some(_) => return Err(fail(-300, "invalid parameter rtp_type: 0 (TCP) or 1 (UDP)")),
        },
    };
    Ok(keyed(st.proxies.add_pull(spec, true)))
}

pub(super) async fn del_pull(st: &ApiState, p: &Params) -> Result<Response, Response> {
    let flag = st.proxies.del_pull(required(p, "key")?).await;
    Ok(reply(json!({"code": 0, "data": {"flag": flag}})))
}

pub(super) fn list_pulls(st: &ApiState) -> Response {
    let data: Vec<Value> = st.proxies.list_pulls().iter().map(pull_json).collect();
    reply(json!({"code": 0, "data": data}))
}

pub(super) fn pull_info(st: &ApiState, p: &Params) -> Result<Response, Response> {
    Ok(match st.proxies.pull_info(required(p, "key")?) {
        Some(info) => reply(json!({"code": 0, "data": pull_json(&info)})),
        None => fail(-500, "can not find the proxy"),
    })
}

/// addStreamPusherProxy.
pub(super) fn add_push(st: &ApiState, p: &Params) -> Result<Response, Response> {
    let spec = PushSpec {
        vhost: vhost_param(p),
        app: required(p, "app")?.to_owned(),
        stream: required(p, "stream")?.to_owned(),
        url: required(p, "dst_url")?.to_owned(),
        retry_count: int_param(p, "retry_count", -1)?,
        timeout_sec: int_param(p, "timeout_sec", 0)?.clamp(0, 3600) as u64,
    };
    Ok(keyed(st.proxies.add_push(spec, true)))
}

pub(super) async fn del_push(st: &ApiState, p: &Params) -> Result<Response, Response> {
    let flag = st.proxies.del_push(required(p, "key")?).await;
    Ok(reply(json!({"code": 0, "data": {"flag": flag}})))
}

pub(super) fn list_pushes(st: &ApiState) -> Response {
    let data: Vec<Value> = st.proxies.list_pushes().iter().map(push_json).collect();
    reply(json!({"code": 0, "data": data}))
}

fn pull_json(info: &PullInfo) -> Value {
    let s = &info.spec;
    json!({
        "key": info.key, "vhost": s.vhost, "app": s.app, "stream": s.stream,
        "url": s.url, "retry_count": s.retry_count, "timeout_sec": s.timeout_sec,
        "on_demand": s.on_demand, "enable_hls": s.enable_hls, "enable_mp4": s.enable_mp4,
        "rtsp_transport": s.rtsp_transport, "persistent": info.persistent,
        "state": state_json(&info.state),
    })
}

fn push_json(info: &PushInfo) -> Value {
    let s = &info.spec;
    json!({
        "key": info.key, "vhost": s.vhost, "app": s.app, "stream": s.stream,
        "dst_url": s.url, "retry_count": s.retry_count,
        "persistent": info.persistent, "state": state_json(&info.state),
    })
}

fn state_json(st: &ProxyState) -> Value {
    json!({
        "status": st.status,
        "retries": st.retries,
        "total_failures": st.total_failures,
        "last_error": st.last_error,
        "since": st.since,
    })
}
