//! The HTTP API, compatible with ZLMediaKit's `/index/api/...` (see
//! `shared/reference/zlmediakit.md`): every endpoint takes GET query parameters or a
//! POST form or JSON body; HTTP status is always 200 and the body is JSON with a
//! `code` (0 success, -100 auth failed, -300 invalid arguments, -500 not found,
//! -1 other failure) and a `msg` on failure.
//!
//! Auth: the caller's address must be in `api.allow_ip_range` and `secret` must equal
//! `api.secret`. There is no well-known default secret: with none configured a random
//! one is generated at start and logged once.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use crate::config::Config;
use crate::hub::{Hub, Stream, StreamKey};

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
    pub config: Config,
    secret: String,
    allowed: IpRanges,
    started: std::time::Instant,
}

impl ApiState {
    pub fn new(hub: Arc<Hub>, config: Config) -> Arc<Self> {
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
            config,
            secret,
            allowed,
            started: std::time::Instant::now(),
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
    if !st.allowed.allows(peer.ip()) {
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
    if p.get("secret").map(String::as_str) != Some(st.secret.as_str()) {
        tracing::warn!(%peer, api = %name, "API call refused: wrong or missing secret");
        return fail(-100, "Please login first: wrong or missing secret");
    }
    match dispatch(&st, &name, &p) {
        Ok(r) | Err(r) => r,
    }
}

fn dispatch(st: &ApiState, name: &str, p: &Params) -> Result<Response, Response> {
    Ok(match name {
        "getApiList" => reply(
            json!({"code": 0, "data": API_LIST.iter().map(|n| format!("/index/api/{n}")).collect::<Vec<_>>()}),
        ),
        "version" => reply(json!({"code": 0, "data": {
            "version": env!("CARGO_PKG_VERSION"),
            "server": "ferrocast",
            "uptimeSecond": st.started.elapsed().as_secs(),
        }})),
        "getServerConfig" => reply(json!({"code": 0, "data": [flat_config(&st.config)]})),
        "getStatistic" => {
            let streams = st.hub.streams();
            let readers: usize = streams.iter().map(|s| s.readers()).sum();
            reply(json!({"code": 0, "data": {
                "MediaSource": streams.len(),
                "Publishers": streams.iter().filter(|s| s.is_publishing()).count(),
                "Players": readers,
                "FramesDropped": streams.iter().map(|s| s.frames_dropped()).sum::<u64>(),
            }}))
        }
        "getMediaList" => {
            let mut data = Vec::new();
            for s in matching(st, p) {
                for schema in schemas(st) {
                    if p.get("schema")
                        .is_some_and(|want| !want.is_empty() && want != schema)
                    {
                        continue;
                    }
                    data.push(media_json(s.as_ref(), schema));
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
        _ => fail(-500, format!("unknown API: {name}")),
    })
}

fn key_of(p: &Params) -> Result<StreamKey, Response> {
    let app = required(p, "app")?;
    let stream = required(p, "stream")?;
    Ok(StreamKey::new(
        p.get("vhost").map(String::as_str),
        app,
        stream,
    ))
}

/// The output schemas every stream has (one getMediaList entry each).
fn schemas(st: &ApiState) -> Vec<&'static str> {
    let mut v = vec!["rtmp", "ts"];
    if st.config.hls.enabled {
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

fn media_json(s: &Stream, schema: &str) -> Value {
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
        "isRecordingMP4": false,
        "isRecordingHLS": false,
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
