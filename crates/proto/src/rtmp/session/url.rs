//! The names RTMP carries in URL form: `rtmp://host[:port]/app[/inst]/stream[?q]`
//! as a client is given it, the connect `app` (with the SRS `?vhost=` form), and the
//! `name?query` of publish and play.
//!
//! Pure string work, with no knowledge of sessions: the client builds its
//! [`ClientTarget`] from a URL here, the server splits what `connect`, `publish` and
//! `play` carry. A URL this module refuses is `None`; the caller names the fault.

use super::{ClientMode, ClientTarget};

/// Parses `rtmp://host[:port]/app[/inst]/stream[?q]` into (host, port, target).
/// The app is everything between the host and the last path segment. `rtmps://`
/// is accepted too (default port 443); an IPv6 host is written `[addr]` and returned
/// without the brackets.
pub fn parse_rtmp_url(url: &str, mode: ClientMode) -> Option<(String, u16, ClientTarget)> {
    let (scheme, rest) = url.split_once("://")?;
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "rtmp" => 1935,
        "rtmps" => 443,
        _ => return None,
    };
    let (authority, path_and_query) = rest.split_once('/')?;
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']')?;
        let port = match after {
            "" => default_port,
            _ => after.strip_prefix(':')?.parse().ok()?,
        };
        (host, port)
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, port.parse().ok()?),
            None => (authority, default_port),
        }
    };
    if host.is_empty() || host.contains(['@', ' ', '[', ']']) || port == 0 {
        return None;
    }
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_and_query, None),
    };
    let (app, name) = path.rsplit_once('/')?;
    if app.is_empty() || name.is_empty() || app.split('/').any(str::is_empty) {
        return None;
    }
    let stream = match query {
        Some(query) => format!("{name}?{query}"),
        None => name.to_string(),
    };
    let tc_url = format!("{scheme}://{authority}/{app}");
    Some((
        host.to_string(),
        port,
        ClientTarget {
            app: app.to_string(),
            tc_url,
            stream,
            mode,
        },
    ))
}

/// Splits `name?query` into the name and the query without `?`.
pub(super) fn split_stream_name(raw: &str) -> (String, String) {
    match raw.split_once('?') {
        Some((name, query)) => (name.to_string(), query.to_string()),
        None => (raw.to_string(), String::new()),
    }
}

/// Splits the connect `app` into the app and its `?query` (without `?`, the SRS
/// `live?vhost=x` form), dropping a trailing `/` from the app (`rtmp://host/live/`
/// gives `live/` as the app).
pub(super) fn split_app(raw: &str) -> (String, Option<String>) {
    let (app, params) = match raw.split_once('?') {
        Some((app, query)) => (app, Some(query.to_string())),
        None => (raw, None),
    };
    (app.trim_end_matches('/').to_string(), params)
}
