//! Pull and push proxy endpoints (ZLMediaKit's addStreamProxy family).

use axum::response::Response;
use serde_json::json;

use super::params::{flag, int_param, required, vhost_param, Params};
use super::{fail, keyed, reply, ApiState};
use crate::config::{PullSpec, PushSpec};

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
    Ok(match name {
        "addStreamProxy" => {
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
                    Some(_) => {
                        return Err(fail(-300, "invalid parameter rtp_type: 0 (TCP) or 1 (UDP)"))
                    }
                },
            };
            keyed(st.proxies.add_pull(spec, true))
        }
        "delStreamProxy" => {
            let flag = st.proxies.del_pull(required(p, "key")?).await;
            reply(json!({"code": 0, "data": {"flag": flag}}))
        }
        "listStreamProxy" => reply(json!({"code": 0, "data": st.proxies.list_pulls()})),
        "getProxyInfo" => match st.proxies.pull_info(required(p, "key")?) {
            Some(info) => reply(json!({"code": 0, "data": info})),
            None => fail(-500, "can not find the proxy"),
        },
        "addStreamPusherProxy" => {
            let spec = PushSpec {
                vhost: vhost_param(p),
                app: required(p, "app")?.to_owned(),
                stream: required(p, "stream")?.to_owned(),
                url: required(p, "dst_url")?.to_owned(),
                retry_count: int_param(p, "retry_count", -1)?,
                timeout_sec: int_param(p, "timeout_sec", 0)?.clamp(0, 3600) as u64,
            };
            keyed(st.proxies.add_push(spec, true))
        }
        "delStreamPusherProxy" => {
            let flag = st.proxies.del_push(required(p, "key")?).await;
            reply(json!({"code": 0, "data": {"flag": flag}}))
        }
        "listStreamPusherProxy" => reply(json!({"code": 0, "data": st.proxies.list_pushes()})),
        _ => return Err(fail(-500, format!("unknown API: {name}"))),
    })
}
