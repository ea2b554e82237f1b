//! Passwords out of URLs before they reach a log line or an API answer. Operators
//! put credentials in pull, push and ffmpeg source URLs; every module that shows
//! such a URL goes through [`redact`]. Imports nothing from the crate.

/// The URL with any password replaced by `***`, for logs, the API and error
/// messages (also of URLs that did not parse). Works on the text, not a parsed URL,
/// so a URL is shown as it was given.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// A push target's URL for logs and getServerConfig: the password and also the
/// stream key (the last path segment, which is the credential of a platform such as
/// `rtmp://a.rtmp.youtube.com/live2/KEY`) and any query (tokens) become `***`.
pub(crate) fn redact_key(url: &str) -> String {
    let url = redact(url);
    let (base, query) = match url.split_once('?') {
        Some((b, _)) => (b, "?***"),
        None => (url.as_str(), ""),
    };
    let Some((scheme, rest)) = base.split_once("://") else {
        return format!("{base}{query}");
    };
    match rest.rsplit_once('/') {
        Some((head, key)) if !key.is_empty() => format!("{scheme}://{head}/***{query}"),
        _ => format!("{base}{query}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(redact("rtsp://u:secret@h:554/p"), "rtsp://u:***@h:554/p");
        assert_eq!(redact("rtmp://h/live/s"), "rtmp://h/live/s");
        assert_eq!(redact("/media/a.mp4"), "/media/a.mp4");
        // URLs that do not parse (the RTSP driver's error messages) lose it too.
        assert_eq!(redact("rtsp://u:p@h:99999/x"), "rtsp://u:***@h:99999/x");
        assert_eq!(redact("rtsp://u:secret@/cam"), "rtsp://u:***@/cam");
        assert_eq!(redact("rtsp://u:p%40ss@h/x@y"), "rtsp://u:***@h/x@y");
        assert_eq!(redact("not a url"), "not a url");
    }

    #[test]
    fn push_keys_are_hidden() {
        assert_eq!(
            redact_key("rtmp://a.rtmp.youtube.com/live2/abcd-efgh-ijkl"),
            "rtmp://a.rtmp.youtube.com/live2/***"
        );
        assert_eq!(
            redact_key("rtmps://u:pw@live.example/app/key?token=t"),
            "rtmps://u:***@live.example/app/***?***"
        );
        assert_eq!(redact_key("rtmp://host"), "rtmp://host");
        assert_eq!(redact_key("rtmp://host/app/"), "rtmp://host/app/");
    }
}
