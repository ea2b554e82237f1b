//! The HTTP API, compatible with ZLMediaKit's `/index/api/...` (see
//! `shared/reference/zlmediakit.md`): every endpoint takes GET query parameters or a
//! POST form or JSON body; HTTP status is always 200 and the body is JSON with a
//! `code` (0 success, -100 auth failed, -300 invalid arguments, -500 not found,
//! -1 other failure) and a `msg` on failure.
//!
//! Auth: the caller's address must be in `api.allow_ip_range` and the secret
//! (`Authorization: Bearer`, or the `secret` parameter) must equal `api.secret`, or,
//! when none is configured, the one in `{data_dir}/api_secret` ([`secret`]). There is no
//! well-known default secret. The OpenAPI document of every endpoint is served
//! without auth at `/index/api/openapi.json`.

// Handlers return `Err(Response)` for the early exits of a request (a -300 or -500
// answer); it is built once per request, so boxing it would buy nothing.
#![allow(clippy::result_large_err)]

mod config_edit;
mod error;
mod load;
mod media;
mod params;
mod proxy;
mod public;
mod record;
mod secret;
mod server;
mod snap;
mod transcode;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::config::values::{bearer_token, secret_eq};
use crate::config::{Access, Config};
use crate::hub::Hub;
use crate::proxy::manager::ProxyManager;
use crate::record::Recorder;
use crate::transcode::Transcoder;
pub(crate) use error::ApiFailure;
use params::{params, Params};

/// The OpenAPI 3 description of the API, served at `/index/api/openapi.json`.
pub(crate) const OPENAPI_JSON: &str = include_str!("openapi.json");

/// How long the API waits for a request body (an allowed caller's: others are
/// answered before any body is read).
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

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
    /// Who may call: shared with `/metrics`, changed by setServerConfig.
    access: Arc<Access>,
    started: std::time::Instant,
    loads: load::Loads,
    snaps: snap::SnapCache,
    /// One setServerConfig at a time, from reading the config to saving the file.
    config_edit: tokio::sync::Mutex<()>,
    /// Who may play (the public stream list is served only when anyone may).
    auth: Arc<crate::auth::Auth>,
}

/// The services the API drives.
pub(crate) struct Services {
    pub hub: Arc<Hub>,
    pub recorder: Recorder,
    pub proxies: ProxyManager,
    pub transcoder: Transcoder,
}

impl ApiState {
    pub(crate) fn new(
        services: Services,
        config: Config,
        config_path: Option<PathBuf>,
        access: Arc<Access>,
        auth: Arc<crate::auth::Auth>,
    ) -> Result<Arc<Self>, String> {
        let secret = effective_secret(&config)?;
        let Services {
            hub,
            recorder,
            proxies,
            transcoder,
        } = services;
        Ok(Arc::new(ApiState {
            hub,
            recorder,
            proxies,
            transcoder,
            config: RwLock::new(config),
            config_path,
            secret: RwLock::new(secret),
            access,
            started: std::time::Instant::now(),
            loads: load::start_sampler(),
            snaps: snap::SnapCache::default(),
            config_edit: tokio::sync::Mutex::new(()),
            auth,
        }))
    }
}

/// The secret callers must give: `api.secret`, or when that is empty the one in
/// `{data_dir}/api_secret` (made on first start; see [`secret`]).
fn effective_secret(config: &Config) -> Result<String, String> {
    if !config.api.secret.is_empty() {
        return Ok(config.api.secret.clone());
    }
    let (s, path, made) = secret::load_or_create(&config.data_dir).map_err(|e| {
        format!(
            "cannot read or create the API secret file in {}: {e}",
            config.data_dir.display()
        )
    })?;
    if made {
        tracing::warn!(file = %path.display(), "api.secret is not configured: generated a secret into this file (mode 0600); pass it as secret= or Authorization: Bearer");
    } else {
        tracing::info!(file = %path.display(), "api.secret is not configured: using the secret in this file");
    }
    Ok(s)
}

pub(crate) fn routes(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/index/api/{name}", any(handle))
        .route("/streams.json", axum::routing::get(public::streams))
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
    body: Body,
) -> Response {
    if name == "openapi.json" {
        return ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON).into_response();
    }
    if !st.access.allows(peer.ip()) {
        tracing::warn!(%peer, api = %name, "API call refused: address not in api.allow_ip_range");
        return fail(
            -100,
            "Please login first: your address is not allowed (api.allow_ip_range)",
        );
    }
    // The body is read only now, from an allowed address, at most MAX_BODY bytes and
    // within BODY_TIMEOUT: a stranger cannot make us hold a connection or memory.
    let body = match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_BODY)).await
    {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => {
            tracing::warn!(%peer, api = %name, "API call refused: body larger than {MAX_BODY} bytes or unreadable");
            return fail(
                -300,
                format!("request body too large (at most {MAX_BODY} bytes) or unreadable"),
            );
        }
        Err(_) => {
            tracing::warn!(%peer, api = %name, "API call refused: body not received within {BODY_TIMEOUT:?}");
            return fail(
                -300,
                format!(
                    "request body not received within {} s",
                    BODY_TIMEOUT.as_secs()
                ),
            );
        }
    };
    let p = match params(query, &headers, &body) {
        Ok(p) => p,
        Err(e) => return fail(-300, e),
    };
    // `Authorization: Bearer` is preferred where the client allows (no secret in URLs
    // and proxy logs); `secret=` stays for ZLMediaKit scripts.
    let given = bearer_token(
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    )
    .or_else(|| p.get("secret").map(String::as_str))
    .unwrap_or("");
    let secret_ok = secret_eq(given, &st.secret.read().unwrap());
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
}
