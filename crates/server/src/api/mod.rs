//! The HTTP API, compatible with ZLMediaKit's `/index/api/...` (see
//! `shared/reference/zlmediakit.md`): every endpoint takes GET query parameters or a
//! POST form or JSON body; HTTP status is always 200 and the body is JSON with a
//! `code` (0 success, -100 auth failed, -300 invalid arguments, -500 not found,
//! -1 other failure) and a `msg` on failure.
//!
//! Auth: the caller's address must be in `api.allow_ip_range` and `secret` must equal
//! `api.secret`. There is no well-known default secret: with none configured a random
//! one is generated at start and logged once. The OpenAPI document of every endpoint
//! is served without auth at `/index/api/openapi.json`.

// Handlers return `Err(Response)` for the early exits of a request (a -300 or -500
// answer); it is built once per request, so boxing it would buy nothing.
#![allow(clippy::result_large_err)]

mod config_edit;
mod error;
mod load;
mod proxy;
mod snap;
mod transcode;

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use crate::config::Config;
use crate::hub::{Hub, Role, SessionInfo, Stream, StreamKey};
use crate::proxy::manager::ProxyManager;
use crate::record::{RecordError, RecordKind, RecordSettings, Recorder};
use crate::transcode::Transcoder;
pub use error::ApiFailure;

/// The OpenAPI 3 description of the API, served at `/index/api/openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// Longest request body the API reads (parameters are small).
const MAX_BODY: usize = 64 * 1024;

/// Endpoint names, as `getApiList` reports them.
pub const API_LIST: &[&str] = &[
    "getApiList",
    "version",
    "getServerConfig",
    "getStatistic",
    "getMediaList",
    "isMediaOnline",
    "close_streams",
    "close_stream",
    "getMediaPlayerList",
    "getAllSession",
    "kick_session",
    "startRecord",
    "stopRecord",
    "isRecording",
    "getMP4RecordFile",
    "setServerConfig",
    "getThreadsLoad",
    "getSnap",
    "addStreamProxy",
    "delStreamProxy",
    "listStreamProxy",
    "getProxyInfo",
    "addStreamPusherProxy",
    "delStreamPusherProxy",
    "listStreamPusherProxy",
    "startTranscode",
    "stopTranscode",
    "listTranscode",
    "addFFmpegSource",
    "delFFmpegSource",
    "listFFmpegSource",
];

/// Address ranges allowed to call the API.
#[derive(Debug, Clone, Default)]
pub struct IpRanges(Vec<(IpAddr, IpAddr)>);

impl IpRanges {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut v = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            let a: IpAddr = a
                .trim()
                .parse()
                .map_err(|_| format!("{part:?} is not an IP address or range"))?;
            let b: IpAddr = b
                .trim()
                .parse()
                .map_err(|_| format!("{part:?} is not an IP address or range"))?;
            if a.is_ipv4() != b.is_ipv4() || a > b {
                return Err(format!("{part:?} is not a valid range"));
            }
            v.push((a, b));
        }
        Ok(IpRanges(v))
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.0.is_empty()
            || self
                .0
                .iter()
                .any(|(a, b)| a.is_ipv4() == ip.is_ipv4() && *a <= ip && ip <= *b)
    }
}

pub struct ApiState {
    pub hub: Arc<Hub>,
    pub recorder: Recorder,
    pub proxies: ProxyManager,
    pub transcoder: Transcoder,
    config: RwLock<Config>,
    /// The operator's config file, where setServerConfig writes changes back.
    config_path: Option<PathBuf>,
    secret: RwLock<String>,
    allowed: RwLock<IpRanges>,
    started: std::time::Instant,
    loads: load::Loads,
    snaps: snap::SnapCache,
    /// One setServerConfig at a time, from reading the config to saving the file.
    config_edit: tokio::sync::Mutex<()>,
}

impl ApiState {
    pub fn new(
        hub: Arc<Hub>,
        recorder: Recorder,
        proxies: ProxyManager,
        transcoder: Transcoder,
        config: Config,
        config_path: Option<PathBuf>,
    ) -> Arc<Self> {
        let secret = if config.api.secret.is_empty() {
            let s = random_secret();
            tracing::warn!(secret = %s, "api.secret is not configured: generated one for this run (set api.secret to keep it)");
            s
        } else {
            config.api.secret.clone()
        };
        let allowed = IpRanges::parse(&config.api.allow_ip_range).unwrap_or_default();
        Arc::new(ApiState {
            hub,
            recorder,
            proxies,
            transcoder,
            config: RwLock::new(config),
            config_path,
            secret: RwLock::new(secret),
            allowed: RwLock::new(allowed),
            started: std::time::Instant::now(),
            loads: load::start_sampler(),
            snaps: snap::SnapCache::default(),
            config_edit: tokio::sync::Mutex::new(()),
        })
    }
}

fn random_secret() -> String {
    let mut out = String::new();
    for i in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

pub fn routes(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/index/api/{name}", any(handle))
        .with_state(state)
}

type Params = HashMap<String, String>;

fn reply(v: Value) -> Response {
    ([(header::CACHE_CONTROL, "no-cache")], Json(v)).into_response()
}

fn fail(code: i32, msg: impl Into<String>) -> Response {
    reply(json!({"code": code, "msg": msg.into()}))
}

/// Merges query parameters with a form or JSON body.
fn params(
    query: HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Params, String> {
    let mut p = query;
    if body.is_empty() {
        return Ok(p);
    }
    if body.len() > MAX_BODY {
        return Err("request body too large".into());
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.starts_with("application/json") || body.first() == Some(&b'{') {
        let v: Map<String, Value> =
            serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))?;
        for (k, v) in v {
            let s = match v {
                Value::String(s) => s,
                Value::Null => continue,
                other => other.to_string(),
            };
            p.insert(k, s);
        }
    } else {
        let form: Vec<(String, String)> =
            serde_urlencoded::from_bytes(body).map_err(|e| format!("invalid form body: {e}"))?;
        p.extend(form);
    }
    Ok(p)
}

fn required<'a>(p: &'a Params, name: &str) -> Result<&'a str, Response> {
    match p.get(name).map(String::as_str) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(fail(-300, format!("missing required parameter: {name}"))),
    }
}

fn flag(p: &Params, name: &str) -> bool {
    matches!(p.get(name).map(String::as_str), Some("1" | "true" | "yes"))
}

async fn handle(
    State(st): State<Arc<ApiState>>,
    Path(name): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if name == "openapi.json" {
        return ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON).into_response();
    }
    if !st.allowed.read().unwrap().allows(peer.ip()) {
        tracing::warn!(%peer, api = %name, "API call refused: address not in api.allow_ip_range");
        return fail(
            -100,
            "Please login first: your address is not allowed (api.allow_ip_range)",
        );
    }
    let p = match params(query, &headers, &body) {
        Ok(p) => p,
        Err(e) => return fail(-300, e),
    };
    let secret_ok = p.get("secret").map(String::as_str) == Some(st.secret.read().unwrap().as_str());
    if !secret_ok {
        tracing::warn!(%peer, api = %name, "API call refused: wrong or missing secret");
        return fail(-100, "Please login first: wrong or missing secret");
    }
    match dispatch(&st, &name, &p).await {
        Ok(r) | Err(r) => r,
    }
}

async fn dispatch(st: &ApiState, name: &str, p: &Params) -> Result<Response, Response> {
    Ok(match name {
        "getApiList" => reply(
            json!({"code": 0, "data": API_LIST.iter().map(|n| format!("/index/api/{n}")).collect::<Vec<_>>()}),
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
            if let Some(e) = st.recorder.last_error(&key, kind).filter(|_| !status) {
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
        "addStreamProxy" => proxy::add_pull(st, p)?,
        "delStreamProxy" => proxy::del_pull(st, p).await?,
        "listStreamProxy" => proxy::list_pulls(st),
        "getProxyInfo" => proxy::pull_info(st, p)?,
        "addStreamPusherProxy" => proxy::add_push(st, p)?,
        "delStreamPusherProxy" => proxy::del_push(st, p).await?,
        "listStreamPusherProxy" => proxy::list_pushes(st),
        "startTranscode" => transcode::start(st, p)?,
        "stopTranscode" => transcode::stop(st, p).await?,
        "listTranscode" => transcode::list(st),
        "addFFmpegSource" => transcode::add_ffmpeg_source(st, p).await?,
        "delFFmpegSource" => transcode::del_ffmpeg_source(st, p).await?,
        "listFFmpegSource" => transcode::list_ffmpeg_sources(st),
        _ => fail(-500, format!("unknown API: {name}")),
    })
}

/// `vhost`, or the default vhost when absent or empty.
fn vhost_param(p: &Params) -> String {
    p.get("vhost")
        .filter(|v| !v.is_empty())
        .cloned()
        .unwrap_or_else(|| crate::hub::DEFAULT_VHOST.to_owned())
}

/// The answer to an add/start call that creates something with a key.
fn keyed<E: Into<ApiFailure>>(r: Result<String, E>) -> Response {
    match r {
        Ok(key) => reply(json!({"code": 0, "data": {"key": key}})),
        Err(e) => e.into().into_response(),
    }
}

/// An optional integer parameter.
fn int_param(p: &Params, name: &str, default: i64) -> Result<i64, Response> {
    match p.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| fail(-300, format!("invalid parameter {name}: not an integer"))),
    }
}

fn record_kind(p: &Params) -> Result<RecordKind, Response> {
    RecordKind::from_type(required(p, "type")?)
        .ok_or_else(|| fail(-300, "invalid parameter: type must be 0 (hls) or 1 (mp4)"))
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
    let (new, changed) = config_edit::apply(&current, &changes).map_err(|e| fail(-300, e))?;
    if changed.iter().any(|k| k.starts_with("record.")) {
        st.recorder.set_settings(RecordSettings::from_config(&new));
    }
    if changed.iter().any(|k| k == "api.allow_ip_range") {
        *st.allowed.write().unwrap() = IpRanges::parse(&new.api.allow_ip_range).unwrap_or_default();
    }
    if changed.iter().any(|k| k == "api.secret") {
        *st.secret.write().unwrap() = new.api.secret.clone();
    }
    *st.config.write().unwrap() = new.clone();
    let restart: Vec<&String> = changed
        .iter()
        .filter(|k| !config_edit::applies_live(k))
        .collect();
    tracing::info!(changed = ?changed, restart_required = ?restart, "setServerConfig");
    let mut v =
        json!({"code": 0, "changed": changed.len(), "keys": changed, "restart_required": restart});
    if let (Some(path), false) = (&st.config_path, changed.is_empty()) {
        let (path, keys) = (path.clone(), changed.clone());
        let saved =
            tokio::task::spawn_blocking(move || config_edit::write_back(&path, &new, &keys))
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

fn key_of(p: &Params) -> Result<StreamKey, Response> {
    let app = required(p, "app")?;
    let stream = required(p, "stream")?;
    let key = StreamKey::new(p.get("vhost").map(String::as_str), app, stream);
    key.check_names()
        .map_err(|why| fail(-300, format!("invalid parameter app/stream: {why}")))?;
    Ok(key)
}

/// The output schemas every stream has (one getMediaList entry each).
fn schemas(st: &ApiState) -> Vec<&'static str> {
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

fn media_json(st: &ApiState, s: &Stream, schema: &str) -> Value {
    let snap = s.snapshot();
    let mut tracks = Vec::new();
    if let Some(v) = &snap.info.video {
        tracks.push(json!({
            "codec_type": 0, "codec_id": v.codec_id, "codec_id_name": v.codec, "codec_string": v.codec_string,
            "ready": v.width > 0, "frames": v.frames, "duration": v.duration_ms(),
            "width": v.width, "height": v.height, "fps": (v.fps() * 100.0).round() / 100.0,
            "gop_size": v.gop_size, "gop_interval_ms": v.gop_interval_ms, "key_frames": v.key_frames,
        }));
    }
    if let Some(a) = &snap.info.audio {
        tracks.push(json!({
            "codec_type": 1, "codec_id": a.codec_id, "codec_id_name": a.codec, "codec_string": a.codec_string,
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
        "originType": origin.map(|o| o.kind).unwrap_or(0),
        "originTypeStr": origin.map(|o| o.kind_name).unwrap_or("unknown"),
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

/// The config as ZLMediaKit's flat `section.key` strings.
fn flat_config(c: &Config) -> Map<String, Value> {
    let mut out = Map::new();
    let value = toml::Value::try_from(c).unwrap_or(toml::Value::Table(Default::default()));
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
    // Never hand the secret out.
    if out.contains_key("api.secret") {
        out.insert("api.secret".into(), Value::String(String::new()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_ranges() {
        let r = IpRanges::parse("127.0.0.1, ::1,10.0.0.0-10.255.255.255").unwrap();
        assert!(r.allows("127.0.0.1".parse().unwrap()));
        assert!(r.allows("::1".parse().unwrap()));
        assert!(r.allows("10.1.2.3".parse().unwrap()));
        assert!(r.allows("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!r.allows("11.0.0.1".parse().unwrap()));
        assert!(!r.allows("192.168.1.1".parse().unwrap()));
        assert!(IpRanges::parse("")
            .unwrap()
            .allows("8.8.8.8".parse().unwrap()));
        assert!(IpRanges::parse("10.0.0.9-10.0.0.1").is_err());
        assert!(IpRanges::parse("localhost").is_err());
    }

    #[test]
    fn params_from_query_form_and_json() {
        let mut h = HeaderMap::new();
        let q: HashMap<String, String> = [("a".to_string(), "1".to_string())].into();
        h.insert(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        let p = params(q.clone(), &h, b"b=2&c=x%20y").unwrap();
        assert_eq!(
            (p["a"].as_str(), p["b"].as_str(), p["c"].as_str()),
            ("1", "2", "x y")
        );
        h.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        let p = params(q, &h, br#"{"b": 2, "force": true, "s": "z"}"#).unwrap();
        assert_eq!(
            (p["b"].as_str(), p["force"].as_str(), p["s"].as_str()),
            ("2", "true", "z")
        );
        assert!(params(HashMap::new(), &h, b"{nope").is_err());
    }

    #[test]
    fn secret_is_never_the_same_twice() {
        assert_ne!(random_secret(), random_secret());
        assert_eq!(random_secret().len(), 32);
    }
}
