//! The one place where domain errors become ZLMediaKit's failure answers: a `code`
//! (-300 invalid arguments, -500 not found, -1 other failure) and a `msg`. The
//! domain modules return typed errors with their context; the codes and the exact
//! texts ZLMediaKit clients (and our end-to-end tests) match on are chosen here, so
//! a change of wording in a domain error's `Display` shows up in this file's tests.

use axum::response::{IntoResponse, Response};

use crate::proxy::manager::AddProxyError;
use crate::transcode::TranscodeError;

/// ZLMediaKit's code for invalid arguments.
pub(super) const INVALID_ARGS: i32 = -300;
/// ZLMediaKit's code for something that does not exist.
pub(super) const NOT_FOUND: i32 = -500;
/// ZLMediaKit's code for any other failure.
pub(super) const OTHER: i32 = -1;

/// A failed API call as ZLMediaKit answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiFailure {
    pub code: i32,
    pub msg: String,
}

impl From<TranscodeError> for ApiFailure {
    fn from(e: TranscodeError) -> Self {
        use TranscodeError as E;
        let (code, msg) = match &e {
            E::UnknownLadder { .. } | E::InvalidParameter { .. } => (INVALID_ARGS, e.to_string()),
            E::StreamNotFound { .. } => (NOT_FOUND, "can not find the stream".to_owned()),
            E::IsRendition { .. }
            | E::MaxConcurrent { .. }
            | E::TooManySources { .. }
            | E::AlreadyPublished { .. }
            | E::NotPublishing { .. } => (OTHER, e.to_string()),
        };
        ApiFailure { code, msg }
    }
}

impl From<AddProxyError> for ApiFailure {
    fn from(e: AddProxyError) -> Self {
        let (code, msg) = match &e {
            AddProxyError::InvalidParameter { .. } => (INVALID_ARGS, e.to_string()),
            AddProxyError::StreamExists { .. } => (OTHER, "This stream already exists".to_owned()),
            AddProxyError::PusherExists { .. } => (OTHER, "This pusher already exists".to_owned()),
        };
        ApiFailure { code, msg }
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        super::fail(self.code, self.msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::StreamKey;

    fn answer(e: impl Into<ApiFailure>) -> (i32, String) {
        let f = e.into();
        (f.code, f.msg)
    }

    #[test]
    fn transcode_errors_keep_their_codes_and_texts() {
        let key = StreamKey::new(None, "live", "a_480p");
        let cases: Vec<(TranscodeError, i32, &str)> = vec![
            (
                TranscodeError::UnknownLadder {
                    name: "nope".into(),
                },
                -300,
                "invalid parameter ladder: no ladder named nope",
            ),
            (
                TranscodeError::StreamNotFound { key: key.clone() },
                -500,
                "can not find the stream",
            ),
            (
                TranscodeError::IsRendition { key: key.clone() },
                -1,
                "__defaultVhost__/live/a_480p is a rendition of a transcoded stream; it is not transcoded again",
            ),
            (
                TranscodeError::MaxConcurrent { limit: 1 },
                -1,
                "too many transcodes: transcode.max_concurrent is 1",
            ),
            (
                TranscodeError::TooManySources { limit: 64 },
                -1,
                "too many ffmpeg sources: at most 64",
            ),
            (
                TranscodeError::InvalidParameter {
                    name: "src_url",
                    why: None,
                },
                -300,
                "invalid parameter src_url",
            ),
            (
                TranscodeError::InvalidParameter {
                    name: "dst_url",
                    why: Some("an rtmp://, rtmps:// or rtsp:// URL"),
                },
                -300,
                "invalid parameter dst_url: an rtmp://, rtmps:// or rtsp:// URL",
            ),
            (
                TranscodeError::AlreadyPublished { key: key.clone() },
                -1,
                "stream __defaultVhost__/live/a_480p is already being published",
            ),
            (
                TranscodeError::NotPublishing {
                    dst_url: "rtmp://u:***@h/live/a".into(),
                    timeout_ms: 300,
                    last_error: Some("Connection refused".into()),
                },
                -1,
                "ffmpeg did not start publishing to rtmp://u:***@h/live/a within 300 ms: Connection refused",
            ),
            (
                TranscodeError::NotPublishing {
                    dst_url: "rtmp://h/live/a".into(),
                    timeout_ms: 200,
                    last_error: None,
                },
                -1,
                "ffmpeg did not start publishing to rtmp://h/live/a within 200 ms",
            ),
        ];
        for (e, code, msg) in cases {
            assert_eq!(answer(e), (code, msg.to_owned()));
        }
    }

    #[test]
    fn proxy_errors_keep_their_codes_and_texts() {
        let cases: Vec<(AddProxyError, i32, &str)> = vec![
            (
                AddProxyError::InvalidParameter {
                    name: "rtp_type",
                    why: "0 (TCP) or 1 (UDP)".into(),
                },
                -300,
                "invalid parameter rtp_type: 0 (TCP) or 1 (UDP)",
            ),
            (
                AddProxyError::InvalidParameter {
                    name: "timeout_sec",
                    why: "at most 3600".into(),
                },
                -300,
                "invalid parameter timeout_sec: at most 3600",
            ),
            (
                AddProxyError::StreamExists {
                    key: "v/live/s".into(),
                },
                -1,
                "This stream already exists",
            ),
            (
                AddProxyError::PusherExists {
                    key: "rtmp/v/live/s/0".into(),
                },
                -1,
                "This pusher already exists",
            ),
        ];
        for (e, code, msg) in cases {
            assert_eq!(answer(e), (code, msg.to_owned()));
        }
    }
}
