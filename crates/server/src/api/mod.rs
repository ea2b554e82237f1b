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
mod media;
mod params;
mod proxy;
mod record;
mod server;
mod snap;
mod transcode;

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::config::{Config, IpRanges};
use crate::hub::Hub;
use crate::proxy::manager::ProxyManager;
use crate::record::Recorder;
use crate::transcode::Transcoder;
pub(crate) use error::ApiFailure;
use params::{params, Params};

/// The OpenAPI 3 description of the API, served at `/index/api/openapi.json`.
pub(crate) const OPENAPI_JSON: &str = include_str!("openapi.json");

/// Longest request body the API reads (parameters are small).
pub(super) const MAX_BODY: usize = 64 * 1024;

/// The endpoint names of each group's module, in `getApiList` order.
const GROUPS: [&[&str]; 5] = [
    server::NAMES,
    media::NAMES,
    record::NAMES,
    proxy::NAMES,
    transcode::NAMES,
];

/// Every endpoint name, as `getApiList` reports them.
fn api_list() -> impl Iterator<Item = &'static str> {
    GROUPS.iter().flat_map(|g| g.iter().copied())
}

pub(crate) struct ApiState {
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
    pub(crate) fn new(
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

pub(crate) fn routes(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/index/api/{name}", any(handle))
        .with_state(state)
}

fn reply(v: Value) -> Response {
    ([(header::CACHE_CONTROL, "no-cache")], Json(v)).into_response()
}

fn fail(code: i32, msg: impl Into<String>) -> Response {
    reply(json!({"code": code, "msg": msg.into()}))
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

/// Routes a call to its group's module (one file per group, as mini-redis gives each
/// command its own file).
async fn dispatch(st: &ApiState, name: &str, p: &Params) -> Result<Response, Response> {
    if server::NAMES.contains(&name) {
        server::call(st, name, p).await
    } else if media::NAMES.contains(&name) {
        media::call(st, name, p).await
    } else if record::NAMES.contains(&name) {
        record::call(st, name, p).await
    } else if proxy::NAMES.contains(&name) {
        proxy::call(st, name, p).await
    } else if transcode::NAMES.contains(&name) {
        transcode::call(st, name, p).await
    } else {
        Err(fail(-500, format!("unknown API: {name}")))
    }
}

/// The answer to an add/start call that creates something with a key.
fn keyed<E: Into<ApiFailure>>(r: Result<String, E>) -> Response {
    match r {
        Ok(key) => reply(json!({"code": 0, "data": {"key": key}})),
        Err(e) => e.into().into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_endpoint_is_in_two_groups() {
        let mut names: Vec<&str> = api_list().collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "an endpoint is listed twice");
        assert!(n >= 31, "{n} endpoints");
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
