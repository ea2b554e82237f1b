//! Request parameters: query, form and JSON bodies merged into one map, and the
//! typed readers every endpoint uses (missing or malformed is -300 naming the
//! parameter).

use std::collections::HashMap;

use axum::http::{header, HeaderMap};
use axum::response::Response;
use serde_json::{Map, Value};

use super::{fail, MAX_BODY};
use crate::hub::StreamKey;

pub(super) type Params = HashMap<String, String>;

/// Merges query parameters with a form or JSON body.
pub(super) fn params(
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

pub(super) fn required<'a>(p: &'a Params, name: &str) -> Result<&'a str, Response> {
    match p.get(name).map(String::as_str) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(fail(-300, format!("missing required parameter: {name}"))),
    }
}

pub(super) fn flag(p: &Params, name: &str) -> bool {
    matches!(p.get(name).map(String::as_str), Some("1" | "true" | "yes"))
}

/// An optional integer parameter.
pub(super) fn int_param(p: &Params, name: &str, default: i64) -> Result<i64, Response> {
    match p.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| fail(-300, format!("invalid parameter {name}: not an integer"))),
    }
}

/// `vhost`, or the default vhost when absent or empty.
pub(super) fn vhost_param(p: &Params) -> String {
    p.get("vhost")
        .filter(|v| !v.is_empty())
        .cloned()
        .unwrap_or_else(|| crate::hub::DEFAULT_VHOST.to_owned())
}

pub(super) fn key_of(p: &Params) -> Result<StreamKey, Response> {
    let app = required(p, "app")?;
    let stream = required(p, "stream")?;
    let key = StreamKey::new(p.get("vhost").map(String::as_str), app, stream);
    key.check_names()
        .map_err(|why| fail(-300, format!("invalid parameter app/stream: {why}")))?;
    Ok(key)
}
