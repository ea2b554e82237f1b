//! The HTTP front end (axum): HLS, HTTP-FLV, WebSocket-FLV, HTTP-TS and the player
//! page, on the URLs ZLMediaKit uses (see `shared/reference/zlmediakit.md`):
//!
//! | path | what |
//! | --- | --- |
//! | `/{app}/{stream}/hls.m3u8` | live HLS playlist |
//! | `/{app}/{stream}/{n}.ts` | HLS segment (Range and HEAD supported) |
//! | `/{app}/{stream}.live.flv` | HTTP-FLV, or WebSocket-FLV on an upgrade |
//! | `/{app}/{stream}.live.ts` | HTTP-TS |
//! | `/` | the player page |
//!
//! Media paths are parsed by hand rather than by the router because ZLMediaKit's
//! names carry the stream inside a file name (`{stream}.live.flv`). Every path is
//! percent-decoded segment by segment and refused (400) if a segment is empty, `.`,
//! `..`, or decodes to something containing `/`, `\` or NUL: nothing here ever maps
//! a path to a file, but names must still be what they look like.

pub(crate) mod hls_session;
mod live;
pub(crate) mod master;
pub(crate) mod page;
pub(crate) mod serve;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use tokio::sync::watch;

use crate::hook::Client;
use crate::hub::{Hub, StreamKey};
use crate::live_hls::HlsStore;

/// Longest request path accepted (stream names are short; this only stops abuse).
pub(crate) const MAX_PATH_LEN: usize = 1024;

/// Largest WebSocket message (and frame) a WS-FLV viewer may send, and the read
/// buffer for it: a viewer sends pings, pongs and a close, never media, so 8 KiB is
/// ample where tungstenite's default would buffer 64 MiB from a hostile peer. A
/// frame announcing more is refused from its header and the viewer closed.
const WS_MAX_MESSAGE: usize = 8 * 1024;

#[derive(Clone)]
pub(crate) struct HttpState {
    /// Who may read `/metrics` (the API's allow-list and an optional bearer token).
    pub access: Arc<crate::config::Access>,
    pub hub: Arc<Hub>,
    pub hls: Arc<HlsStore>,
    pub flush_interval: Duration,
    /// A live viewer whose writes make no progress this long is closed
    /// (hub.slow_player_timeout_ms, as for RTMP players).
    pub slow_player_timeout: Duration,
    pub segment_max_age_s: u64,
    pub shutdown: watch::Receiver<bool>,
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// The address the HTTP listener is bound to (a live viewer's `local` address).
    pub local: std::net::SocketAddr,
    /// The transcoded renditions of a stream (for its master playlist).
    pub renditions: Renditions,
    /// Who may play.
    pub auth: Arc<crate::auth::Auth>,
    pub hooks: Arc<crate::hook::Hooks>,
    pub hls_sessions: Arc<hls_session::HlsSessions>,
    /// How long an HLS playlist request waits for a stream that is not live, when
    /// hook.on_stream_not_found may bring it (general.max_stream_wait_ms).
    pub max_stream_wait: Duration,
}

impl HttpState {
    /// How a live viewer on `conn` is written to.
    fn pace(&self, conn: Option<serve::ConnWatch>) -> live::Pace {
        live::Pace {
            flush_interval: self.flush_interval,
            slow_timeout: self.slow_player_timeout,
            conn,
        }
    }
}

/// Gives the rendition streams of a source stream, with their configured bitrate
/// (video + audio, bits/s).
pub(crate) type Renditions = Arc<dyn Fn(&StreamKey) -> Vec<(StreamKey, u64)> + Send + Sync>;

pub(crate) fn router(state: HttpState, api: Router, allow_origin: &str) -> Router {
    let cors = if allow_origin.is_empty() {
        None
    } else {
        let origin = if allow_origin == "*" {
            tower_http::cors::AllowOrigin::any()
        } else {
            match HeaderValue::from_str(allow_origin) {
                Ok(v) => tower_http::cors::AllowOrigin::exact(v),
                Err(_) => tower_http::cors::AllowOrigin::any(),
            }
        };
        Some(
            tower_http::cors::CorsLayer::new()
                .allow_origin(origin)
                .allow_methods([Method::GET, Method::HEAD, Method::POST, Method::OPTIONS])
                .allow_headers(tower_http::cors::Any)
                .expose_headers([header::CONTENT_LENGTH, header::CONTENT_RANGE]),
        )
    };
    let router = page::routes()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics_text))
        .fallback(media)
        .with_state(state)
        .merge(api);
    match cors {
        Some(c) => router.layer(c),
        None => router,
    }
}

/// What a media path names.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Playlist(String, String),
    Master(String, String),
    Segment(String, String, String),
    LiveFlv(String, String),
    LiveTs(String, String),
}

#[derive(Debug, PartialEq, Eq)]
enum PathError {
    BadRequest(&'static str),
    NotFound,
}

/// Escapes a path segment (a stream name) for a relative URI.
fn percent_encode(seg: &str) -> String {
    let mut out = String::with_capacity(seg.len());
    for b in seg.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A URL path segment, decoded: strict, since it names a stream or a file. A bad
/// escape is refused (400) rather than kept as written, and so is a segment that is
/// not UTF-8 or could leave its directory.
fn percent_decode(seg: &str) -> Result<String, PathError> {
    let out = ferrocast_proto::percent::percent_decode(seg.as_bytes())
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| PathError::BadRequest("bad percent-encoding"))?;
    let s = String::from_utf8(out).map_err(|_| PathError::BadRequest("path is not UTF-8"))?;
    if s.is_empty() || s == "." || s == ".." || s.contains(['/', '\\', '\0']) {
        return Err(PathError::BadRequest("path segment not allowed"));
    }
    Ok(s)
}

fn parse_path(path: &str) -> Result<Target, PathError> {
    if path.len() > MAX_PATH_LEN {
        return Err(PathError::BadRequest("path too long"));
    }
    let segs = path
        .strip_prefix('/')
        .unwrap_or(path)
        .split('/')
        .map(percent_decode)
        .collect::<Result<Vec<_>, _>>()?;
    match segs.as_slice() {
        [app, file] => {
            if let Some(stream) = file.strip_suffix(".live.flv") {
                Ok(Target::LiveFlv(app.clone(), stream.to_owned()))
            } else if let Some(stream) = file.strip_suffix(".live.ts") {
                Ok(Target::LiveTs(app.clone(), stream.to_owned()))
            } else {
                Err(PathError::NotFound)
            }
        }
        [app, stream, file] => {
            if file == "hls.m3u8" {
                Ok(Target::Playlist(app.clone(), stream.clone()))
            } else if file == "master.m3u8" {
                Ok(Target::Master(app.clone(), stream.clone()))
            } else if file.ends_with(".ts") {
                Ok(Target::Segment(app.clone(), stream.clone(), file.clone()))
            } else {
                Err(PathError::NotFound)
            }
        }
        _ => Err(PathError::NotFound),
    }
}

/// `/metrics` lists every stream name: only for the API's callers (and, with
/// `api.metrics_token`, only with that bearer token).
async fn metrics_text(
    State(st): State<HttpState>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if !st.access.allows(peer.ip()) {
        tracing::warn!(%peer, "metrics refused: address not in api.allow_ip_range");
        return plain(StatusCode::FORBIDDEN, "forbidden: address not allowed\n");
    }
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !st.access.metrics_authorized(auth) {
        tracing::warn!(%peer, "metrics refused: missing or wrong bearer token");
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "unauthorized: bearer token required\n",
        )
            .into_response();
    }
    match &st.metrics {
        Some(h) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            crate::metrics::render(h, &st.hub),
        )
            .into_response(),
        None => plain(StatusCode::NOT_FOUND, "metrics recorder not installed\n"),
    }
}

fn plain(status: StatusCode, msg: &str) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-cache")],
        msg.to_owned(),
    )
        .into_response()
}

async fn media(State(st): State<HttpState>, req: Request) -> Response {
    let method = req.method().clone();
    if method != Method::GET && method != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    let target = match parse_path(req.uri().path()) {
        Ok(t) => t,
        Err(PathError::BadRequest(why)) => {
            return plain(StatusCode::BAD_REQUEST, &format!("bad request: {why}\n"))
        }
        Err(PathError::NotFound) => return plain(StatusCode::NOT_FOUND, "not found\n"),
    };
    let query = req.uri().query().unwrap_or("").to_owned();
    if query.len() > hls_session::MAX_QUERY {
        return plain(StatusCode::URI_TOO_LONG, "query too long\n");
    }
    let vhost = query_param(&query, "vhost").map(str::to_owned);
    let key = |app: &str, stream: &str| StreamKey::new(vhost.as_deref(), app, stream);
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0)
        .unwrap_or(st.local);
    let client = |protocol: &'static str, key: &StreamKey, session_id: u64| Client {
        protocol,
        key: key.clone(),
        params: query.clone(),
        peer,
        session_id,
    };
    match target {
        Target::Playlist(app, stream) => {
            let key = key(&app, &stream);
            match query_param(&query, "session") {
                Some(token) => hls_media_playlist(&st, &method, &key, token, peer, &query),
                None => {
                    let c = client("hls", &key, 0);
                    if let Err(r) = authorize_play(&st, &c).await {
                        return r;
                    }
                    if !wait_for_hls(&st, &c).await {
                        return plain(StatusCode::NOT_FOUND, "no such live stream\n");
                    }
                    let uri = format!("hls.m3u8?session={}", st.hls_sessions.mint(&key));
                    let variants = master::variant(&st.hub, &key, uri.clone(), None)
                        .into_iter()
                        .collect::<Vec<_>>();
                    let variants = if variants.is_empty() {
                        // No media measured yet: a variant with a nominal bandwidth.
                        vec![master::Variant {
                            uri,
                            bandwidth: 1_000_000,
                            average_bandwidth: 0,
                            width: 0,
                            height: 0,
                            fps: 0.0,
                            codecs: None,
                        }]
                    } else {
                        variants
                    };
                    playlist_response(&method, Bytes::from(master::render(variants)))
                }
            }
        }
        Target::Master(app, stream) => {
            let source = key(&app, &stream);
            let c = client("hls", &source, 0);
            if let Err(r) = authorize_play(&st, &c).await {
                return r;
            }
            // Listed once their own playlists exist, so a player never gets a 404.
            // Each variant is its own HLS session (only the one played comes alive).
            let mut variants = Vec::new();
            if st.hls.playlist(&source).is_some() {
                let uri = format!("hls.m3u8?session={}", st.hls_sessions.mint(&source));
                variants.extend(master::variant(&st.hub, &source, uri, None));
                for (r, bps) in (st.renditions)(&source) {
                    if st.hls.playlist(&r).is_some() {
                        let uri = format!(
                            "../{}/hls.m3u8?session={}",
                            percent_encode(&r.stream),
                            st.hls_sessions.mint(&r)
                        );
                        variants.extend(master::variant(&st.hub, &r, uri, Some(bps)));
                    }
                }
            }
            if variants.is_empty() {
                return plain(StatusCode::NOT_FOUND, "no such live stream\n");
            }
            playlist_response(&method, Bytes::from(master::render(variants)))
        }
        Target::Segment(app, stream, file) => {
            let key = key(&app, &stream);
            // The token first: without one, a segment's existence is not told.
            let required = !st.auth.play_is_open_for(&key.app);
            let session = match st.hls_sessions.segment(
                &key,
                query_param(&query, "session"),
                required,
            ) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(%peer, stream = %key, segment = %file, error = %e, "HLS segment refused");
                    return plain(StatusCode::FORBIDDEN, "forbidden\n");
                }
            };
            let Some(bytes) = st.hls.segment(&key, &file) else {
                return plain(
                    StatusCode::NOT_FOUND,
                    "no such segment (expired or not yet written)\n",
                );
            };
            if let Some(id) = session {
                let served = if method == Method::HEAD {
                    0
                } else {
                    bytes.len() as u64
                };
                st.hls_sessions.add_bytes(id, served);
            }
            serve_bytes(
                &method,
                req.headers(),
                bytes,
                "video/mp2t",
                st.segment_max_age_s,
            )
        }
        Target::LiveFlv(app, stream) => {
            let key = key(&app, &stream);
            let (mut parts, _body) = req.into_parts();
            let conn = parts.extensions.get::<serve::ConnWatch>().cloned();
            let ws = WebSocketUpgrade::from_request_parts(&mut parts, &())
                .await
                .ok();
            let schema = if ws.is_some() { "ws-flv" } else { "http-flv" };
            let session = st.hub.register_session(peer, st.local, schema);
            let c = client(schema, &key, session.id());
            if let Err(r) = authorize_play(&st, &c).await {
                return r;
            }
            if st.hub.find(&key).is_none() {
                st.hooks.stream_not_found(&c);
            }
            let sub = match live::subscribe_viewer(&st.hub, &key, &session).await {
                Ok(s) => s,
                Err(e) => return plain(StatusCode::NOT_FOUND, &format!("{e}\n")),
            };
            tracing::info!(stream = %key, %peer, session = session.id(), websocket = ws.is_some(), "FLV viewer started");
            let flow = Some((st.hooks.clone(), c));
            match ws {
                Some(ws) => {
                    let shutdown = st.shutdown.clone();
                    // An upgraded connection is no longer hyper's: each send is timed.
                    let pace = st.pace(None);
                    ws.max_message_size(WS_MAX_MESSAGE)
                        .max_frame_size(WS_MAX_MESSAGE)
                        .read_buffer_size(WS_MAX_MESSAGE)
                        .on_upgrade(move |socket| {
                            live::ws_flv_session(socket, session, sub, shutdown, flow, pace)
                        })
                }
                None => live_response(
                    "video/x-flv",
                    &method,
                    live::flv_session_body(session, sub, st.shutdown.clone(), flow, st.pace(conn)),
                ),
            }
        }
        Target::LiveTs(app, stream) => {
            let key = key(&app, &stream);
            let conn = req.extensions().get::<serve::ConnWatch>().cloned();
            let session = st.hub.register_session(peer, st.local, "http-ts");
            let c = client("http-ts", &key, session.id());
            if let Err(r) = authorize_play(&st, &c).await {
                return r;
            }
            if st.hub.find(&key).is_none() {
                st.hooks.stream_not_found(&c);
            }
            let sub = match live::subscribe_viewer(&st.hub, &key, &session).await {
                Ok(s) => s,
                Err(e) => return plain(StatusCode::NOT_FOUND, &format!("{e}\n")),
            };
            tracing::info!(stream = %key, %peer, session = session.id(), "HTTP-TS viewer started");
            let flow = Some((st.hooks.clone(), c));
            live_response(
                "video/mp2t",
                &method,
                live::ts_session_body(session, sub, st.shutdown.clone(), flow, st.pace(conn)),
            )
        }
    }
}

/// Gates `/record/{app}/{stream}/...` (mounted under `/record`, so the path seen
/// here starts at the app): a recording is played like its live stream, asked of
/// [`crate::auth::Auth::play`] (a signed URL, or hook.on_play with schema "http")
/// unless playing the app is open.
pub(crate) async fn record_gate(
    State(st): State<HttpState>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let path = req.uri().path().to_owned();
    let mut segs = path.trim_start_matches('/').split('/');
    let app = match segs.next().map(percent_decode) {
        Some(Ok(app)) => app,
        _ => return plain(StatusCode::NOT_FOUND, "not found\n"),
    };
    if st.auth.play_is_open_for(&app) {
        return next.run(req).await;
    }
    // `{app}/{stream}/{YYYY-MM-DD}/...`: the stream name (which may hold '/') is
    // everything up to the date directory. Anything else (a customized_path
    // recording, a bare directory) cannot be told apart from another stream's, so
    // it is not served while playing the app is not open.
    let rest: Vec<&str> = segs.collect();
    let Some(date) = rest.iter().position(|s| is_date(s)) else {
        return plain(StatusCode::FORBIDDEN, "forbidden\n");
    };
    let stream = match rest[..date]
        .iter()
        .map(|s| percent_decode(s))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(parts) if !parts.is_empty() => parts.join("/"),
        _ => return plain(StatusCode::FORBIDDEN, "forbidden\n"),
    };
    let query = req.uri().query().unwrap_or("").to_owned();
    if query.len() > hls_session::MAX_QUERY {
        return plain(StatusCode::URI_TOO_LONG, "query too long\n");
    }
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0)
        .unwrap_or(st.local);
    // Recordings are stored per app/stream, not per vhost: the default vhost's key
    // is the one asked about, whatever the query says.
    let c = Client {
        protocol: "http",
        key: StreamKey::new(None, &app, &stream),
        params: query.clone(),
        peer,
        session_id: st.hub.next_session_id(),
    };
    match authorize_play(&st, &c).await {
        Ok(()) => next.run(req).await,
        Err(r) => r,
    }
}

/// `YYYY-MM-DD`, the day directory of a recording.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// The value of `name` in a query string.
fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| {
        kv.split_once('=')
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v)
    })
}

/// Asks [`crate::auth::Auth::play`]; a refusal is a 403 whose body is the short
/// message (a hook receiver's `msg`), the reason goes to the log.
async fn authorize_play(st: &HttpState, c: &Client) -> Result<(), Response> {
    match st.auth.play(c).await {
        Ok(()) => Ok(()),
        Err(denied) => {
            tracing::warn!(peer = %c.peer, stream = %c.key, protocol = c.protocol, reason = %denied.reason, "play refused");
            Err(plain(
                StatusCode::FORBIDDEN,
                &format!("forbidden: {}\n", denied.msg),
            ))
        }
    }
}

/// Whether `c`'s stream has live HLS; when it has not and hook.on_stream_not_found
/// is configured (which may start a pull proxy), waits for it up to
/// general.max_stream_wait_ms.
async fn wait_for_hls(st: &HttpState, c: &Client) -> bool {
    if st.hls.playlist(&c.key).is_some() {
        return true;
    }
    if !st.hooks.handles_not_found() {
        return false;
    }
    st.hooks.stream_not_found(c);
    let deadline = tokio::time::Instant::now() + st.max_stream_wait;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if st.hls.playlist(&c.key).is_some() {
            return true;
        }
    }
    false
}

/// A session's media playlist: the segment URIs carry the session's segment token.
fn hls_media_playlist(
    st: &HttpState,
    method: &Method,
    key: &StreamKey,
    token: &str,
    peer: std::net::SocketAddr,
    query: &str,
) -> Response {
    let seg_token = match st.hls_sessions.playlist(key, token, peer, query) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(%peer, stream = %key, error = %e, "HLS playlist refused");
            return plain(
                StatusCode::FORBIDDEN,
                "forbidden: HLS session invalid or ended\n",
            );
        }
    };
    match st.hls.playlist(key) {
        Some(text) => playlist_response(method, hls_session::with_segment_token(&text, &seg_token)),
        None => plain(StatusCode::NOT_FOUND, "no such live stream\n"),
    }
}

fn playlist_response(method: &Method, text: Bytes) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/vnd.apple.mpegurl"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        if method == Method::HEAD {
            Bytes::new()
        } else {
            text
        },
    )
        .into_response()
}

fn live_response(content_type: &'static str, method: &Method, body: axum::body::Body) -> Response {
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::CACHE_CONTROL, "no-cache"),
    ];
    if method == Method::HEAD {
        return (headers, "").into_response();
    }
    (headers, body).into_response()
}

/// Serves an in-memory object with HEAD and single-range `Range` support.
fn serve_bytes(
    method: &Method,
    headers: &HeaderMap,
    bytes: Bytes,
    content_type: &'static str,
    max_age: u64,
) -> Response {
    let len = bytes.len() as u64;
    let cache = format!("public, max-age={max_age}, immutable");
    let mut status = StatusCode::OK;
    let mut body = bytes;
    let mut content_range = None;
    if let Some(range) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        match parse_range(range, len) {
            Some((start, end)) => {
                status = StatusCode::PARTIAL_CONTENT;
                body = body.slice(start as usize..=end as usize);
                content_range = Some(format!("bytes {start}-{end}/{len}"));
            }
            None => {
                return (
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    [(header::CONTENT_RANGE, format!("bytes */{len}"))],
                    "",
                )
                    .into_response();
            }
        }
    }
    let mut resp = if method == Method::HEAD {
        let mut r = Response::new(axum::body::Body::empty());
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len() as u64));
        r
    } else {
        Response::new(axum::body::Body::from(body))
    };
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&cache) {
        h.insert(header::CACHE_CONTROL, v);
    }
    if let Some(cr) = content_range.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert(header::CONTENT_RANGE, cr);
    }
    resp
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` (one range) -> inclusive (start, end).
fn parse_range(v: &str, len: u64) -> Option<(u64, u64)> {
    let spec = v.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || len == 0 {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        if n == 0 {
            return None;
        }
        (len.saturating_sub(n), len - 1)
    } else {
        let start: u64 = a.parse().ok()?;
        let end = if b.is_empty() {
            len - 1
        } else {
            b.parse::<u64>().ok()?.min(len - 1)
        };
        (start, end)
    };
    (start <= end && start < len).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            parse_path("/live/cam.live.flv"),
            Ok(Target::LiveFlv("live".into(), "cam".into()))
        );
        assert_eq!(
            parse_path("/live/cam.live.ts"),
            Ok(Target::LiveTs("live".into(), "cam".into()))
        );
        assert_eq!(
            parse_path("/live/cam/hls.m3u8"),
            Ok(Target::Playlist("live".into(), "cam".into()))
        );
        assert_eq!(
            parse_path("/live/cam/12.ts"),
            Ok(Target::Segment("live".into(), "cam".into(), "12.ts".into()))
        );
        assert_eq!(
            parse_path("/live/c%20am.live.flv"),
            Ok(Target::LiveFlv("live".into(), "c am".into()))
        );
        assert_eq!(parse_path("/live/cam/x.mp4"), Err(PathError::NotFound));
        assert_eq!(parse_path("/a/b/c/d"), Err(PathError::NotFound));
    }

    #[test]
    fn traversal_and_abuse_are_refused() {
        for p in [
            "/../etc/passwd.live.flv",
            "/live/../hls.m3u8",
            "/live/%2e%2e/hls.m3u8",
            "/live/%2E%2E/hls.m3u8",
            "/live/a%2fb/hls.m3u8",
            "/live/a%5cb/hls.m3u8",
            "/live/a%00/hls.m3u8",
            "/live//hls.m3u8",
            "/live/%zz/hls.m3u8",
            "/live/%4/hls.m3u8",
            "/live/%+1/hls.m3u8",
        ] {
            assert!(
                matches!(parse_path(p), Err(PathError::BadRequest(_))),
                "{p}"
            );
        }
        let long = format!("/live/{}.live.flv", "a".repeat(MAX_PATH_LEN));
        assert!(matches!(parse_path(&long), Err(PathError::BadRequest(_))));
    }

    #[test]
    fn record_day_directories() {
        assert!(is_date("2026-12-03"));
        for bad in [
            "2026-12-3",
            "20261203",
            "2026-12-0x",
            "12-03-2026x",
            "",
            "...",
        ] {
            assert!(!is_date(bad), "{bad}");
        }
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-99", 1000), Some((0, 99)));
        assert_eq!(parse_range("bytes=900-", 1000), Some((900, 999)));
        assert_eq!(parse_range("bytes=-100", 1000), Some((900, 999)));
        assert_eq!(parse_range("bytes=0-5000", 1000), Some((0, 999)));
        assert_eq!(parse_range("bytes=1000-", 1000), None);
        assert_eq!(parse_range("bytes=5-1", 1000), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 1000), None);
        assert_eq!(parse_range("items=0-1", 1000), None);
    }
}
