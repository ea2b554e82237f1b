//! `/streams.json`: what the player page lists, for anyone who may load the page.
//! No secret: a viewer is never asked for the admin secret. It shows only what a
//! viewer needs to pick a stream (name, codecs, size, viewers) in the shape of
//! getMediaList entries, so the page reads both alike, and never the publish URL's
//! parameters (tokens), the origin's address or URL. `http.public_stream_list =
//! false` turns it off (404), and so does any play policy other than open: a list
//! of names is a map for whoever tries to guess signed URLs or hook tokens.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::media::{media_json, schemas};
use super::{reply, ApiState};

/// The getMediaList fields a viewer may see.
const PUBLIC_FIELDS: &[&str] = &[
    "app",
    "stream",
    "vhost",
    "schema",
    "readerCount",
    "totalReaderCount",
    "bytesSpeed",
    "aliveSecond",
    "tracks",
    "hlsMaster",
];

pub(super) async fn streams(State(st): State<Arc<ApiState>>) -> Response {
    if !st.config.read().unwrap().http.public_stream_list || !st.auth.play_is_open() {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "the stream list is not public on this server\n",
        )
            .into_response();
    }
    let mut streams = st.hub.streams();
    streams.sort_by(|a, b| (&a.key.app, &a.key.stream).cmp(&(&b.key.app, &b.key.stream)));
    let mut data = Vec::new();
    for s in streams.iter().filter(|s| s.is_publishing()) {
        for schema in schemas(&st) {
            let Value::Object(full) = media_json(&st, s, schema) else {
                continue;
            };
            let public: Map<String, Value> = full
                .into_iter()
                .filter(|(k, _)| PUBLIC_FIELDS.contains(&k.as_str()))
                .collect();
            data.push(Value::Object(public));
        }
    }
    reply(json!({"code": 0, "data": data}))
}
