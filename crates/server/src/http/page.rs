//! The player page and its scripts, embedded in the binary (see `build.rs`: hls.js
//! and mpegts.js come from npm at the versions pinned in `web/package-lock.json`).

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::HttpState;

macro_rules! asset {
    ($content_type:expr, $bytes:expr) => {
        get(|| async {
            (
                [
                    (header::CONTENT_TYPE, $content_type),
                    (header::CACHE_CONTROL, "no-cache"),
                ],
                &$bytes[..],
            )
                .into_response()
        })
    };
}

const INDEX: &[u8] = include_bytes!("../../../../web/index.html");
const PLAYER_JS: &[u8] = include_bytes!("../../../../web/player.js");
const PLAYER_CSS: &[u8] = include_bytes!("../../../../web/player.css");
const HLS_JS: &[u8] = include_bytes!(concat!(
    env!("OUT_DIR"),
    "/web/node_modules/hls.js/dist/hls.min.js"
));
const MPEGTS_JS: &[u8] = include_bytes!(concat!(
    env!("OUT_DIR"),
    "/web/node_modules/mpegts.js/dist/mpegts.js"
));

pub(crate) fn routes() -> Router<HttpState> {
    Router::new()
        .route("/", asset!("text/html; charset=utf-8", INDEX))
        .route("/index.html", asset!("text/html; charset=utf-8", INDEX))
        .route(
            "/player.js",
            asset!("text/javascript; charset=utf-8", PLAYER_JS),
        )
        .route("/player.css", asset!("text/css; charset=utf-8", PLAYER_CSS))
        .route(
            "/vendor/hls.min.js",
            asset!("text/javascript; charset=utf-8", HLS_JS),
        )
        .route(
            "/vendor/mpegts.js",
            asset!("text/javascript; charset=utf-8", MPEGTS_JS),
        )
}
