//! Value types and checks of settings that more than one module reads.
//!
//! They sit here, below every other module, so that validating a config file needs
//! nothing above `config` (the layering rule in `lib.rs`): the API checks callers
//! against an [`IpRanges`], the hub names streams under [`DEFAULT_VHOST`], and the
//! proxies accept the URLs [`check_pull_url`] / [`check_push_url`] accept, and each of
//! them uses these same definitions when a value arrives through the API instead.

use std::net::IpAddr;
use std::sync::RwLock;

/// ZLMediaKit's name of the default virtual host: a stream published without a
/// `vhost=` parameter lives under it.
pub const DEFAULT_VHOST: &str = "__defaultVhost__";

/// Who may use the operator surfaces (the API and `/metrics`), as it stands now:
/// `setServerConfig` changes it while the server runs, so the API and the HTTP
/// front end share one. Built from `api.allow_ip_range` and `api.metrics_token`.
#[derive(Debug, Default)]
pub struct Access {
    ranges: RwLock<IpRanges>,
    metrics_token: RwLock<String>,
}

impl Access {
    /// From a validated config: `allow_ip_range` was checked at load (and by
    /// setServerConfig before [`Access::set`]), so parsing cannot fail here.
    pub fn new(allow_ip_range: &str, metrics_token: &str) -> Self {
        Access {
            ranges: RwLock::new(IpRanges::parse(allow_ip_range).unwrap_or_default()),
            metrics_token: RwLock::new(metrics_token.to_owned()),
        }
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        self.ranges
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .allows(ip)
    }

    /// Whether an `Authorization` header value opens `/metrics` (always, when no
    /// token is configured). Constant time for a token of the right length.
    pub fn metrics_authorized(&self, authorization: Option<&str>) -> bool {
        let token = self.metrics_token.read().unwrap_or_else(|e| e.into_inner());
        if token.is_empty() {
            return true;
        }
        secret_eq(bearer_token(authorization).unwrap_or(""), &token)
    }

    pub fn set(&self, allow_ip_range: &str, metrics_token: &str) {
        *self.ranges.write().unwrap_or_else(|e| e.into_inner()) =
            IpRanges::parse(allow_ip_range).unwrap_or_default();
        *self
            .metrics_token
            .write()
            .unwrap_or_else(|e| e.into_inner()) = metrics_token.to_owned();
    }
}

/// The token of an `Authorization: Bearer TOKEN` header value, if it is one.
pub fn bearer_token(authorization: Option<&str>) -> Option<&str> {
    authorization?.strip_prefix("Bearer ").map(str::trim)
}

/// Whether `given` equals `secret`, taking the same time for every `given` of the
/// secret's length (the time of an answer does not tell how many leading characters
/// were right; the length is not secret). An empty secret matches nothing.
/// Hand-written: a few lines.
pub fn secret_eq(given: &str, secret: &str) -> bool {
    let (a, b) = (given.as_bytes(), secret.as_bytes());
    if b.is_empty() || a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Address ranges allowed to call the API (`api.allow_ip_range`).
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

/// The scheme of a URL, lower-cased, if it has one.
fn scheme(url: &str) -> Option<String> {
    let (s, rest) = url.split_once("://")?;
    (!s.is_empty() && !rest.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '+'))
        .then(|| s.to_ascii_lowercase())
}

/// A pull URL ferrocast can play: `rtmp://`, `rtmps://` or `rtsp://`.
pub fn check_pull_url(url: &str) -> Result<(), String> {
    match scheme(url).as_deref() {
        Some("rtmp" | "rtmps" | "rtsp")
            if url.len() <= 4096 && !url.chars().any(char::is_control) =>
        {
            Ok(())
        }
        Some(other) if !matches!(other, "rtmp" | "rtmps" | "rtsp") => Err(format!(
            "unsupported URL scheme {other}:// (rtmp://, rtmps:// or rtsp://)"
        )),
        _ => Err(format!(
            "{url:?} is not a valid rtmp://, rtmps:// or rtsp:// URL"
        )),
    }
}

/// A push URL: `rtmp://` or `rtmps://`.
pub fn check_push_url(url: &str) -> Result<(), String> {
    match scheme(url).as_deref() {
        Some("rtmp" | "rtmps") if url.len() <= 4096 && !url.chars().any(char::is_control) => Ok(()),
        Some(other) if !matches!(other, "rtmp" | "rtmps") => Err(format!(
            "unsupported URL scheme {other}:// (rtmp:// or rtmps://)"
        )),
        _ => Err(format!("{url:?} is not a valid rtmp:// or rtmps:// URL")),
    }
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
    fn secrets_compare_whole() {
        assert!(secret_eq("abcdef0123456789", "abcdef0123456789"));
        assert!(!secret_eq("abcdef0123456788", "abcdef0123456789"));
        assert!(!secret_eq("abcdef012345678", "abcdef0123456789"));
        assert!(!secret_eq("", ""), "an empty secret opens nothing");
        assert!(!secret_eq("x", ""));
        assert_eq!(bearer_token(Some("Bearer abc ")), Some("abc"));
        assert_eq!(bearer_token(Some("Basic abc")), None);
        assert_eq!(bearer_token(None), None);
    }

    #[test]
    fn metrics_token() {
        let open = Access::new("", "");
        assert!(open.metrics_authorized(None));
        let a = Access::new("127.0.0.1", "tok-123");
        assert!(a.allows("127.0.0.1".parse().unwrap()));
        assert!(!a.allows("10.0.0.1".parse().unwrap()));
        assert!(a.metrics_authorized(Some("Bearer tok-123")));
        assert!(!a.metrics_authorized(Some("Bearer tok-124")));
        assert!(!a.metrics_authorized(Some("tok-123")));
        assert!(!a.metrics_authorized(None));
        a.set("10.0.0.0-10.255.255.255", "");
        assert!(a.allows("10.0.0.1".parse().unwrap()));
        assert!(a.metrics_authorized(None));
    }

    #[test]
    fn urls() {
        assert!(check_pull_url("rtsp://10.0.0.1/cam").is_ok());
        assert!(check_pull_url("RTMP://h/live/s").is_ok());
        assert!(check_pull_url("http://h/x.flv")
            .unwrap_err()
            .contains("unsupported URL scheme http://"));
        assert!(check_pull_url("nonsense").is_err());
        assert!(check_push_url("rtsp://h/x")
            .unwrap_err()
            .contains("rtsp://"));
        assert!(check_push_url("rtmps://h/live/k").is_ok());
    }
}
