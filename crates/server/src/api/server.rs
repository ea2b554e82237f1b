//! Server endpoints: the API list, version, configuration (get/set with write-back),
//! statistics, worker load and snapshots.

use std::time::Duration;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::params::{required, Params};
use super::{api_list, fail, reply, ApiState};
use crate::config::Config;
use crate::record::RecordSettings;
use crate::redact::{redact, redact_key};

/// The endpoints of this group.
pub(super) const NAMES: &[&str] = &[
    "getApiList",
    "version",
    "getServerConfig",
    "setServerConfig",
    "getStatistic",
    "getThreadsLoad",
    "getSnap",
];

pub(super) async fn call(st: &ApiState, name: &str, p: &Params) -> Result<Response, Response> {
    Ok(match name {
        "getApiList" => reply(
            json!({"code": 0, "data": api_list().map(|n| format!("/index/api/{n}")).collect::<Vec<_>>()}),
        ),
        "version" => reply(json!({"code": 0, "data": {
            "version": env!("CARGO_PKG_VERSION"),
            "server": "ferrocast",
            "uptimeSecond": st.started.elapsed().as_secs(),
        }})),
        "getServerConfig" => {
            reply(json!({"code": 0, "data": [flat_config(&st.config.read().unwrap())]}))
        }
        "setServerConfig" => set_server_config(st, p).await?,
        "getStatistic" => {
            let streams = st.hub.streams();
            let readers: usize = streams.iter().map(|s| s.readers()).sum();
            reply(json!({"code": 0, "data": {
                "MediaSource": streams.len(),
                "Publishers": streams.iter().filter(|s| s.is_publishing()).count(),
                "Players": readers,
                "FramesDropped": streams.iter().map(|s| s.frames_dropped()).sum::<u64>(),
                "Recordings": st.recorder.in_progress(),
                "Sessions": st.hub.sessions().len(),
            }}))
        }
        "getThreadsLoad" => reply(json!({"code": 0, "data": *st.loads.lock().unwrap()})),
        "getSnap" => {
            let url = required(p, "url")?;
            let num = |name: &str, default: u64, max: u64| -> Result<u64, Response> {
                match p.get(name).filter(|v| !v.is_empty()) {
                    None => Ok(default),
                    Some(v) => v.trim().parse::<u64>().map(|n| n.min(max)).map_err(|_| {
                        fail(
                            -300,
                            format!("invalid parameter: {name} must be a number of seconds"),
                        )
                    }),
                }
            };
            let timeout = num("timeout_sec", 10, 60)?.max(1);
            let expire = num("expire_sec", 30, 3600)?;
            match st
                .snaps
                .get(
                    url,
                    Duration::from_secs(timeout),
                    Duration::from_secs(expire),
                )
                .await
            {
                Ok(jpeg) => (
                    [
                        (header::CONTENT_TYPE, "image/jpeg"),
                        (header::CACHE_CONTROL, "no-cache"),
                    ],
                    jpeg,
                )
                    .into_response(),
                Err(e) => fail(-1, e),
            }
        }
        _ => return Err(fail(-500, format!("unknown API: {name}"))),
    })
}

async fn set_server_config(st: &ApiState, p: &Params) -> Result<Response, Response> {
    let mut changes: Vec<(String, String)> = p
        .iter()
        .filter(|(k, _)| k.as_str() != "secret")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    changes.sort();
    if changes.is_empty() {
        return Err(fail(-300, "missing required parameter: section.key=value"));
    }
    let _one_at_a_time = st.config_edit.lock().await;
    let current = st.config.read().unwrap().clone();
    let (new, changed) =
        super::config_edit::apply(&current, &changes).map_err(|e| fail(-300, e))?;
    if changed.iter().any(|k| k.starts_with("record.")) {
        st.recorder.set_settings(RecordSettings::from_config(&new));
    }
    if changed
        .iter()
        .any(|k| k == "api.allow_ip_range" || k == "api.metrics_token")
    {
        st.access
            .set(&new.api.allow_ip_range, &new.api.metrics_token);
    }
    if changed.iter().any(|k| k == "api.secret") {
        // Never empty: config_edit refuses to empty it over the API.
        *st.secret.write().unwrap() = new.api.secret.clone();
    }
    *st.config.write().unwrap() = new.clone();
    let restart: Vec<&String> = changed
        .iter()
        .filter(|k| !super::config_edit::applies_live(k))
        .collect();
    tracing::info!(changed = ?changed, restart_required = ?restart, "setServerConfig");
    let mut v =
        json!({"code": 0, "changed": changed.len(), "keys": changed, "restart_required": restart});
    if let (Some(path), false) = (&st.config_path, changed.is_empty()) {
        let (path, keys) = (path.clone(), changed.clone());
        let saved =
            tokio::task::spawn_blocking(move || super::config_edit::write_back(&path, &new, &keys))
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
        match saved {
            Ok(()) => v["saved"] = Value::Bool(true),
            Err(e) => {
                tracing::error!(error = %e, "setServerConfig: applied in memory but not saved");
                v["saved"] = Value::Bool(false);
                v["msg"] = Value::String(e);
            }
        }
    } else {
        v["saved"] = Value::Bool(false);
    }
    Ok(reply(v))
}

/// The config as ZLMediaKit's flat `section.key` strings.
fn flat_config(c: &Config) -> Map<String, Value> {
    let mut out = Map::new();
    // Credentials inside URLs: passwords of pull sources, passwords and stream keys
    // of push targets.
    let mut c = c.clone();
    for p in &mut c.proxy.pull {
        p.url = redact(&p.url);
    }
    for p in &mut c.proxy.push {
        p.url = redact_key(&p.url);
    }
    // A hook receiver's URL may carry a password.
    for url in [
        &mut c.hook.on_publish,
        &mut c.hook.on_play,
        &mut c.hook.on_stream_changed,
        &mut c.hook.on_stream_none_reader,
        &mut c.hook.on_stream_not_found,
        &mut c.hook.on_record_mp4,
        &mut c.hook.on_record_ts,
        &mut c.hook.on_flow_report,
        &mut c.hook.on_server_started,
        &mut c.hook.on_server_exited,
        &mut c.hook.on_server_keepalive,
    ] {
        *url = redact(url);
    }
    let value = toml::Value::try_from(&c).unwrap_or(toml::Value::Table(Default::default()));
    fn walk(prefix: &str, v: &toml::Value, out: &mut Map<String, Value>) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            toml::Value::String(s) => {
                out.insert(prefix.to_owned(), Value::String(s.clone()));
            }
            other => {
                out.insert(prefix.to_owned(), Value::String(other.to_string()));
            }
        }
    }
    walk("", &value, &mut out);
    // Never hand a credential out.
    for key in ["api.secret", "api.metrics_token", "auth.secret"] {
        if out.contains_key(key) {
            out.insert(key.into(), Value::String(String::new()));
        }
    }
    out
}
