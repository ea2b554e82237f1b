//! Signed URLs and HLS session tokens: who may publish or play, proven by an HMAC
//! over what the URL names, with no hook server and no shared state.
//!
//! Pure: the caller passes the current time (`now`, Unix seconds) and the keys; nothing
//! here reads a clock or draws random bytes, and no input panics (fuzzed by
//! `fuzz/fuzz_targets/sign.rs`).
//!
//! ## The form (an operator reproduces it in a few lines; README "Signed URLs")
//! A signed URL carries `exp=<unix seconds>&sig=<64 lowercase hex>` in its query, next
//! to any other parameters, in any order, where
//!
//! ```text
//! sig = hex(HMAC-SHA256(key = auth.secret, message = "{action}/{vhost}/{app}/{stream}/{exp}"))
//! ```
//!
//! `action` is `publish` or `play`, `vhost` is the URL's `vhost=` parameter or
//! `__defaultVhost__`, and `exp` is written in decimal exactly as in the URL.
//!
//! ## Decisions
//! * **The whole right is in the message.** The action is signed so a viewer's URL
//!   cannot publish; the vhost, app and stream so it opens one stream only; the expiry
//!   so a leaked URL dies. Other query parameters are not signed: they do not widen
//!   what the URL grants (the vhost, the only one that names something, is signed).
//! * **`app/stream` is signed as the path text, not as two fields.** RTMP clients
//!   split a path differently: ffmpeg sends `rtmp://h/live/a/b` as app `live/a`,
//!   stream `b`; OBS with server `rtmp://h/live` and key `a/b` sends app `live`, stream
//!   `a/b`. Joining them with `/` makes one signed URL valid whichever split the client
//!   makes. The cost is that a signature for app `live/a` stream `b` is also one for
//!   app `live` stream `a/b`; both are the same URL text, which is what was granted.
//! * **Signature before expiry.** A tampered `exp` is `BadSignature`, so `Expired` in a
//!   log always means a genuine URL that ran out. `exp == now` is still valid.
//! * **Strict syntax.** `exp` is 1 to 20 decimal digits that fit a `u64`, `sig` exactly
//!   64 lowercase hex digits, each present once: no percent-decoding (a valid value
//!   never needs it) and no second reading of a duplicated parameter, which a proxy
//!   and the server might otherwise resolve differently.
//! * **Constant time.** Signatures are compared by `hmac`'s `verify_slice` /
//!   `verify_truncated_left`, never with `==`.
//!
//! ## HLS session tokens
//! A viewer's signed playlist request is checked once; the playlists and segment URIs
//! the server then serves carry a session token instead of the viewer's signature,
//! `{id:x}-{exp:x}-{mac}` where `mac` is the first 32 hex digits (128 bits) of
//! `HMAC-SHA256(key, "hls/{vhost}/{app}/{stream}/{id}/{exp}")` (`id`, `exp` decimal in
//! the message, lowercase hex without leading zeros in the token). The token names one
//! stream, one viewer session (`id`) and an expiry, so a leaked segment URL expires
//! too, and checking it needs no lookup. The key is the server's own (it never leaves
//! the server), so truncating the MAC to 128 bits costs nothing a forger could use.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The vhost of a URL that names none (ZLMediaKit's name for it).
pub const DEFAULT_VHOST: &str = "__defaultVhost__";

/// Hex digits of a URL signature: the whole HMAC-SHA256.
const SIG_HEX_LEN: usize = 64;
/// Decimal digits of `u64::MAX`; a longer `exp` cannot be a valid one.
const EXP_MAX_DIGITS: usize = 20;
/// Hex digits of a session token's MAC: 128 bits is beyond guessing, and the tokens
/// sit in every segment URI of a playlist, so they are kept short.
const TOKEN_MAC_HEX_LEN: usize = 32;
/// Longest session token: two `u64` in hex, two dashes and the MAC. Anything longer is
/// refused before it is split.
pub const MAX_SESSION_TOKEN_LEN: usize = 16 + 1 + 16 + 1 + TOKEN_MAC_HEX_LEN;

type HmacSha256 = Hmac<Sha256>;

/// What a signed URL allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Publish,
    Play,
}

impl Action {
    /// The word in the signed message: `publish` or `play`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Publish => "publish",
            Action::Play => "play",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a signed URL or a session token is refused. For the log only: the client is
/// told that it was refused, not why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("no signature (exp and sig are both needed)")]
    Missing,
    #[error("malformed signature: {0}")]
    Malformed(&'static str),
    #[error("signature expired at {exp} (now {now})")]
    Expired { exp: u64, now: u64 },
    #[error("bad signature")]
    BadSignature,
}

/// The stream a URL names, as [`stream_of_url`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlStream {
    /// The `vhost=` query parameter, if present and not empty.
    pub vhost: Option<String>,
    pub app: String,
    pub stream: String,
}

impl UrlStream {
    /// The vhost, or [`DEFAULT_VHOST`].
    pub fn vhost_or_default(&self) -> &str {
        self.vhost.as_deref().unwrap_or(DEFAULT_VHOST)
    }
}

fn mac(key: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    // HMAC takes keys of any length (long ones are hashed): this cannot fail.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac
}

/// `action/vhost/app/stream/` as the HMAC input, without the expiry.
fn url_mac(secret: &[u8], action: Action, vhost: &str, app: &str, stream: &str) -> HmacSha256 {
    mac(
        secret,
        &[
            action.as_str().as_bytes(),
            b"/",
            vhost.as_bytes(),
            b"/",
            app.as_bytes(),
            b"/",
            stream.as_bytes(),
            b"/",
        ],
    )
}

/// The `sig` of a URL allowing `action` on `vhost/app/stream` until `exp` (Unix
/// seconds, inclusive): 64 lowercase hex digits.
pub fn signature(
    secret: &[u8],
    action: Action,
    vhost: &str,
    app: &str,
    stream: &str,
    exp: u64,
) -> String {
    let mut m = url_mac(secret, action, vhost, app, stream);
    m.update(exp.to_string().as_bytes());
    hex_lower(&m.finalize().into_bytes())
}

/// Checks the `exp` and `sig` parameters of `query` (the raw query string, without
/// its `?`) for `action` on `vhost/app/stream` at time `now`. Returns the
/// expiry on success.
pub fn verify(
    secret: &[u8],
    action: Action,
    vhost: &str,
    app: &str,
    stream: &str,
    query: &str,
    now: u64,
) -> Result<u64, SignError> {
    let mut exp_text = None;
    let mut sig_text = None;
    for param in query.split('&') {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        let slot = match key {
            "exp" => &mut exp_text,
            "sig" => &mut sig_text,
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(SignError::Malformed(if key == "exp" {
                "exp given twice"
            } else {
                "sig given twice"
            }));
        }
    }
    let (Some(exp_text), Some(sig_text)) = (exp_text, sig_text) else {
        return Err(SignError::Missing);
    };
    let exp = parse_exp(exp_text).ok_or(SignError::Malformed("exp is not a decimal u64"))?;
    let mut sig = [0u8; SIG_HEX_LEN / 2];
    if !decode_hex_lower(sig_text, &mut sig) {
        return Err(SignError::Malformed("sig is not 64 lowercase hex digits"));
    }
    let mut m = url_mac(secret, action, vhost, app, stream);
    // The digits as written: parse_exp accepted only canonical ones, so this is
    // `exp.to_string()`.
    m.update(exp_text.as_bytes());
    m.verify_slice(&sig).map_err(|_| SignError::BadSignature)?;
    if exp < now {
        return Err(SignError::Expired { exp, now });
    }
    Ok(exp)
}

/// The session token of HLS viewer session `id` on `vhost/app/stream`, valid until
/// `exp` (inclusive): `{id:x}-{exp:x}-{32 hex of the MAC}`.
pub fn session_token(
    key: &[u8],
    vhost: &str,
    app: &str,
    stream: &str,
    id: u64,
    exp: u64,
) -> String {
    let m = token_mac(key, vhost, app, stream, id, exp);
    let full = m.finalize().into_bytes();
    format!(
        "{id:x}-{exp:x}-{}",
        hex_lower(&full[..TOKEN_MAC_HEX_LEN / 2])
    )
}

/// Checks a session token minted by [`session_token`] for `vhost/app/stream` at time
/// `now`; returns its `(id, exp)`.
pub fn verify_session_token(
    key: &[u8],
    vhost: &str,
    app: &str,
    stream: &str,
    token: &str,
    now: u64,
) -> Result<(u64, u64), SignError> {
    if token.is_empty() {
        return Err(SignError::Missing);
    }
    if token.len() > MAX_SESSION_TOKEN_LEN {
        return Err(SignError::Malformed("session token too long"));
    }
    let mut parts = token.split('-');
    let (Some(id), Some(exp), Some(mac_hex), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SignError::Malformed("session token is not id-exp-mac"));
    };
    let (Some(id), Some(exp)) = (parse_hex_u64(id), parse_hex_u64(exp)) else {
        return Err(SignError::Malformed("session token id or exp is not hex"));
    };
    let mut tag = [0u8; TOKEN_MAC_HEX_LEN / 2];
    if !decode_hex_lower(mac_hex, &mut tag) {
        return Err(SignError::Malformed(
            "session token mac is not 32 lowercase hex digits",
        ));
    }
    token_mac(key, vhost, app, stream, id, exp)
        .verify_truncated_left(&tag)
        .map_err(|_| SignError::BadSignature)?;
    if exp < now {
        return Err(SignError::Expired { exp, now });
    }
    Ok((id, exp))
}

fn token_mac(key: &[u8], vhost: &str, app: &str, stream: &str, id: u64, exp: u64) -> HmacSha256 {
    mac(
        key,
        &[
            b"hls/",
            vhost.as_bytes(),
            b"/",
            app.as_bytes(),
            b"/",
            stream.as_bytes(),
            b"/",
            id.to_string().as_bytes(),
            b"/",
            exp.to_string().as_bytes(),
        ],
    )
}

/// The stream a playback or publishing URL names, or `None` for a URL that names
/// none. Understood:
///
/// * `rtmp://` and `rtmps://host/app/stream[?query]`: the app is the first path
///   segment, the stream everything after it (it may contain `/`; see the module doc
///   on why the split does not change the signature). Taken as written, without
///   percent-decoding: RTMP clients send the name as typed.
/// * `http(s)://` and `ws(s)://host` with the paths the HTTP server serves:
///   `/app/stream.live.flv`, `/app/stream.live.ts`, `/app/stream/hls.m3u8`,
///   `/app/stream/master.m3u8`, and `/record/app/stream/...` (any file under a
///   stream's recordings). Each segment is percent-decoded and refused, as the server
///   refuses it, when the escape is bad, the result is not UTF-8, or it is empty, `.`,
///   `..` or holds `/`, `\` or NUL.
///
/// The vhost is the first `vhost=` query parameter (as written), `None` when absent or
/// empty.
pub fn stream_of_url(url: &str) -> Option<UrlStream> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let (authority, path_and_query) = rest.split_once('/')?;
    // `?` or `#` before the path would make the path part of the query or fragment.
    if authority.is_empty() || authority.contains(['?', '#']) {
        return None;
    }
    match scheme.as_str() {
        "rtmp" | "rtmps" => {
            let (path, query) = path_and_query
                .split_once('?')
                .unwrap_or((path_and_query, ""));
            let (app, stream) = path.split_once('/')?;
            if app.is_empty() || stream.is_empty() {
                return None;
            }
            Some(UrlStream {
                vhost: vhost_param(query),
                app: app.to_owned(),
                stream: stream.to_owned(),
            })
        }
        "http" | "https" | "ws" | "wss" => {
            let without_fragment = path_and_query
                .split_once('#')
                .map_or(path_and_query, |(before, _)| before);
            let (path, query) = without_fragment
                .split_once('?')
                .unwrap_or((without_fragment, ""));
            let segs = path
                .split('/')
                .map(decode_segment)
                .collect::<Option<Vec<String>>>()?;
            let (app, stream) = match segs.as_slice() {
                [record, app, stream, _, ..] if record == "record" => (app.clone(), stream.clone()),
                [app, file] => {
                    let stream = file
                        .strip_suffix(".live.flv")
                        .or_else(|| file.strip_suffix(".live.ts"))?;
                    (app.clone(), stream.to_owned())
                }
                [app, stream, file] if file == "hls.m3u8" || file == "master.m3u8" => {
                    (app.clone(), stream.clone())
                }
                _ => return None,
            };
            if stream.is_empty() {
                return None;
            }
            Some(UrlStream {
                vhost: vhost_param(query),
                app,
                stream,
            })
        }
        _ => None,
    }
}

/// `url` with `exp` and `sig` appended to its query (`?` or `&`), replacing any
/// `exp`/`sig` it already had (so re-signing a signed URL gives a valid one, not a
/// duplicate that [`verify`] refuses). A `#fragment` stays last.
pub fn with_signature(url: &str, exp: u64, sig: &str) -> String {
    let (before_fragment, fragment) = match url.split_once('#') {
        Some((b, f)) if !is_rtmp(url) => (b, Some(f)),
        _ => (url, None),
    };
    let (base, query) = before_fragment
        .split_once('?')
        .unwrap_or((before_fragment, ""));
    let mut out = String::with_capacity(url.len() + 90);
    out.push_str(base);
    let mut sep = '?';
    for param in query.split('&').filter(|p| !p.is_empty()) {
        let key = param.split_once('=').map_or(param, |(k, _)| k);
        if key == "exp" || key == "sig" {
            continue;
        }
        out.push(sep);
        out.push_str(param);
        sep = '&';
    }
    out.push(sep);
    out.push_str("exp=");
    out.push_str(&exp.to_string());
    out.push_str("&sig=");
    out.push_str(sig);
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// RTMP URLs have no fragment: a `#` there is part of a stream key.
fn is_rtmp(url: &str) -> bool {
    url.get(..4).is_some_and(|s| s.eq_ignore_ascii_case("rtmp"))
}

fn vhost_param(query: &str) -> Option<String> {
    query
        .split('&')
        .find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == "vhost"))
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// A path segment percent-decoded under the HTTP server's rules (see `stream_of_url`).
fn decode_segment(seg: &str) -> Option<String> {
    let bytes = crate::percent::percent_decode(seg.as_bytes())
        .collect::<Result<Vec<u8>, _>>()
        .ok()?;
    let s = String::from_utf8(bytes).ok()?;
    if s.is_empty() || s == "." || s == ".." || s.contains(['/', '\\', '\0']) {
        return None;
    }
    Some(s)
}

/// A canonical decimal `u64`: 1 to 20 ASCII digits, no leading zero unless it is `0`,
/// no overflow. Canonical so that the digits signed are `exp.to_string()`.
fn parse_exp(s: &str) -> Option<u64> {
    if s.is_empty()
        || s.len() > EXP_MAX_DIGITS
        || !s.bytes().all(|b| b.is_ascii_digit())
        || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

/// A canonical lowercase hex `u64`: 1 to 16 digits, no leading zero unless it is `0`.
/// Canonical so that each `(id, exp)` has exactly one token.
fn parse_hex_u64(s: &str) -> Option<u64> {
    if s.is_empty()
        || s.len() > 16
        || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// Fills `out` from exactly `2 * out.len()` lowercase hex digits; false otherwise.
fn decode_hex_lower(s: &str, out: &mut [u8]) -> bool {
    let s = s.as_bytes();
    if s.len() != out.len() * 2 {
        return false;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    for (byte, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let (Some(hi), Some(lo)) = (digit(pair[0]), digit(pair[1])) else {
            return false;
        };
        *byte = hi << 4 | lo;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef-secret";
    const EXP: u64 = 1_700_000_000;
    // Computed independently with Python:
    //   hmac.new(b"0123456789abcdef-secret",
    //            b"publish/__defaultVhost__/live/cam1/1700000000", hashlib.sha256).hexdigest()
    // (and the same by `openssl dgst -sha256 -hmac`).
    const SIG_PUBLISH_CAM1: &str =
        "63f8f3764c0df5d7e43070e1464382e335fdac523e4affc24aef9387105aa0d9";
    // hmac.new(b"0123456789abcdef-secret", b"play/example.com/live/a/b/1700000000", ...)
    const SIG_PLAY_VHOST_AB: &str =
        "6890486a4e8393d00c990e7f26de584e61d9482c664b2bba897bbf635a87c8a5";
    // hmac.new(b"session-key", b"hls/__defaultVhost__/live/cam1/42/1700000030",
    //          hashlib.sha256).hexdigest()[:32]
    const TOKEN_MAC: &str = "61e0c86fecc15147baeb28685823d5dc";

    fn q(exp: u64, sig: &str) -> String {
        format!("exp={exp}&sig={sig}")
    }

    #[test]
    fn signature_matches_an_independent_computation() {
        assert_eq!(
            signature(SECRET, Action::Publish, DEFAULT_VHOST, "live", "cam1", EXP),
            SIG_PUBLISH_CAM1
        );
        assert_eq!(
            signature(SECRET, Action::Play, "example.com", "live", "a/b", EXP),
            SIG_PLAY_VHOST_AB
        );
        // The app/stream split does not matter (module doc): live/a + b is the same text.
        assert_eq!(
            signature(SECRET, Action::Play, "example.com", "live/a", "b", EXP),
            SIG_PLAY_VHOST_AB
        );
    }

    #[test]
    fn a_valid_url_verifies_with_other_params_in_any_order() {
        let v = |query: &str| {
            verify(
                SECRET,
                Action::Publish,
                DEFAULT_VHOST,
                "live",
                "cam1",
                query,
                EXP - 5,
            )
        };
        assert_eq!(v(&q(EXP, SIG_PUBLISH_CAM1)), Ok(EXP));
        assert_eq!(v(&format!("sig={SIG_PUBLISH_CAM1}&exp={EXP}")), Ok(EXP));
        assert_eq!(
            v(&format!("a=1&sig={SIG_PUBLISH_CAM1}&b&exp={EXP}&c=")),
            Ok(EXP)
        );
    }

    #[test]
    fn every_field_is_covered() {
        let query = q(EXP, SIG_PUBLISH_CAM1);
        let now = EXP - 1;
        let cases = [
            (Action::Play, DEFAULT_VHOST, "live", "cam1"),
            (Action::Publish, "other", "live", "cam1"),
            (Action::Publish, DEFAULT_VHOST, "live2", "cam1"),
            (Action::Publish, DEFAULT_VHOST, "live", "cam2"),
            (Action::Publish, DEFAULT_VHOST, "live", "cam1 "),
        ];
        for (action, vhost, app, stream) in cases {
            assert_eq!(
                verify(SECRET, action, vhost, app, stream, &query, now),
                Err(SignError::BadSignature),
                "{action} {vhost}/{app}/{stream}"
            );
        }
        // Another key.
        assert_eq!(
            verify(
                b"another secret!!",
                Action::Publish,
                DEFAULT_VHOST,
                "live",
                "cam1",
                &query,
                now
            ),
            Err(SignError::BadSignature)
        );
        // A later exp with the old sig.
        assert_eq!(
            verify(
                SECRET,
                Action::Publish,
                DEFAULT_VHOST,
                "live",
                "cam1",
                &q(EXP + 1, SIG_PUBLISH_CAM1),
                now
            ),
            Err(SignError::BadSignature)
        );
        // Each hex digit of sig flipped.
        for i in 0..SIG_HEX_LEN {
            let mut sig = SIG_PUBLISH_CAM1.as_bytes().to_vec();
            sig[i] = if sig[i] == b'0' { b'1' } else { b'0' };
            let sig = String::from_utf8(sig).unwrap();
            assert_eq!(
                verify(
                    SECRET,
                    Action::Publish,
                    DEFAULT_VHOST,
                    "live",
                    "cam1",
                    &q(EXP, &sig),
                    now
                ),
                Err(SignError::BadSignature),
                "digit {i}"
            );
        }
    }

    #[test]
    fn expiry_boundary() {
        let v = |now| {
            verify(
                SECRET,
                Action::Publish,
                DEFAULT_VHOST,
                "live",
                "cam1",
                &q(EXP, SIG_PUBLISH_CAM1),
                now,
            )
        };
        assert_eq!(v(0), Ok(EXP));
        assert_eq!(v(EXP), Ok(EXP));
        assert_eq!(
            v(EXP + 1),
            Err(SignError::Expired {
                exp: EXP,
                now: EXP + 1
            })
        );
        assert_eq!(
            v(u64::MAX),
            Err(SignError::Expired {
                exp: EXP,
                now: u64::MAX
            })
        );
        // A far expiry signs and verifies like any other.
        let sig = signature(SECRET, Action::Play, DEFAULT_VHOST, "a", "b", u64::MAX);
        assert_eq!(
            verify(
                SECRET,
                Action::Play,
                DEFAULT_VHOST,
                "a",
                "b",
                &q(u64::MAX, &sig),
                u64::MAX
            ),
            Ok(u64::MAX)
        );
    }

    #[test]
    fn tampered_and_expired_is_a_bad_signature() {
        // Signature is checked first: Expired only ever names a genuine URL.
        assert_eq!(
            verify(
                SECRET,
                Action::Play,
                DEFAULT_VHOST,
                "live",
                "cam1",
                &q(EXP, SIG_PUBLISH_CAM1),
                EXP + 10
            ),
            Err(SignError::BadSignature)
        );
    }

    #[test]
    fn missing_and_malformed() {
        let v = |query: &str| {
            verify(
                SECRET,
                Action::Publish,
                DEFAULT_VHOST,
                "live",
                "cam1",
                query,
                0,
            )
        };
        for query in [
            "",
            "?",
            "a=b",
            &format!("exp={EXP}"),
            &format!("sig={SIG_PUBLISH_CAM1}"),
            "&&&",
        ] {
            assert_eq!(v(query), Err(SignError::Missing), "{query:?}");
        }
        let upper = SIG_PUBLISH_CAM1.to_ascii_uppercase();
        let short = &SIG_PUBLISH_CAM1[..63];
        let long = format!("{SIG_PUBLISH_CAM1}0");
        let bad_hex = format!("g{}", &SIG_PUBLISH_CAM1[1..]);
        let escaped = format!("%36{}", &SIG_PUBLISH_CAM1[1..]);
        let multibyte = format!("é{}", &SIG_PUBLISH_CAM1[2..]);
        for sig in [
            upper.as_str(),
            short,
            &long,
            &bad_hex,
            &escaped,
            &multibyte,
            "",
        ] {
            assert!(
                matches!(v(&q(EXP, sig)), Err(SignError::Malformed(_))),
                "sig {sig:?}"
            );
        }
        for exp in [
            "",
            "-1",
            "+1",
            "01700000000",
            "1e9",
            "18446744073709551616",
            "１",
            " 1",
            "0x10",
            "99999999999999999999999",
        ] {
            assert!(
                matches!(
                    v(&format!("exp={exp}&sig={SIG_PUBLISH_CAM1}")),
                    Err(SignError::Malformed(_))
                ),
                "exp {exp:?}"
            );
        }
        // A parameter without `=` is an empty value, not an absent one.
        assert!(matches!(
            v(&format!("exp&sig={SIG_PUBLISH_CAM1}")),
            Err(SignError::Malformed(_))
        ));
        // Duplicates, even identical ones.
        let good = q(EXP, SIG_PUBLISH_CAM1);
        assert_eq!(
            v(&format!("{good}&exp={EXP}")),
            Err(SignError::Malformed("exp given twice"))
        );
        assert_eq!(
            v(&format!("{good}&sig={SIG_PUBLISH_CAM1}")),
            Err(SignError::Malformed("sig given twice"))
        );
        assert_eq!(
            v(&format!("exp=1&{good}")),
            Err(SignError::Malformed("exp given twice"))
        );
    }

    #[test]
    fn session_token_vector_and_checks() {
        let key = b"session-key";
        let exp = EXP + 30;
        let token = session_token(key, DEFAULT_VHOST, "live", "cam1", 42, exp);
        assert_eq!(token, format!("2a-6553f11e-{TOKEN_MAC}"));
        let v =
            |token: &str, now| verify_session_token(key, DEFAULT_VHOST, "live", "cam1", token, now);
        assert_eq!(v(&token, 0), Ok((42, exp)));
        assert_eq!(v(&token, exp), Ok((42, exp)));
        assert_eq!(
            v(&token, exp + 1),
            Err(SignError::Expired { exp, now: exp + 1 })
        );

        // Another stream, vhost, app or key.
        for (vh, app, stream) in [
            ("x", "live", "cam1"),
            (DEFAULT_VHOST, "live2", "cam1"),
            (DEFAULT_VHOST, "live", "cam2"),
        ] {
            assert_eq!(
                verify_session_token(key, vh, app, stream, &token, 0),
                Err(SignError::BadSignature)
            );
        }
        assert_eq!(
            verify_session_token(b"other", DEFAULT_VHOST, "live", "cam1", &token, 0),
            Err(SignError::BadSignature)
        );
        // Tampered id, exp, mac.
        assert_eq!(
            v(&format!("2b-6553f11e-{TOKEN_MAC}"), 0),
            Err(SignError::BadSignature)
        );
        assert_eq!(
            v(&format!("2a-6553f11f-{TOKEN_MAC}"), 0),
            Err(SignError::BadSignature)
        );
        for i in 0..TOKEN_MAC_HEX_LEN {
            let mut t = token.clone().into_bytes();
            let at = t.len() - TOKEN_MAC_HEX_LEN + i;
            t[at] = if t[at] == b'0' { b'1' } else { b'0' };
            assert_eq!(
                v(&String::from_utf8(t).unwrap(), 0),
                Err(SignError::BadSignature),
                "digit {i}"
            );
        }
        // Malformed: non-canonical numbers, case, shape, length.
        assert_eq!(v("", 0), Err(SignError::Missing));
        for bad in [
            format!("02a-6553f11e-{TOKEN_MAC}"),
            format!("2A-6553f11e-{TOKEN_MAC}"),
            format!("2a-6553F11E-{TOKEN_MAC}"),
            format!("2a-6553f11e-{}", TOKEN_MAC.to_ascii_uppercase()),
            format!("2a-6553f11e-{}", &TOKEN_MAC[1..]),
            format!("2a-6553f11e-{TOKEN_MAC}-"),
            "2a-6553f11e".to_string(),
            format!("-6553f11e-{TOKEN_MAC}"),
            format!("2a--{TOKEN_MAC}"),
            format!("10000000000000000-1-{TOKEN_MAC}"),
            format!("2a-6553f11e-{TOKEN_MAC}{}", "0".repeat(100)),
            "é".repeat(40),
        ] {
            assert!(
                matches!(v(&bad, 0), Err(SignError::Malformed(_))),
                "{bad:?}"
            );
        }
        // Extremes round-trip.
        let t = session_token(key, "v", "a", "s", u64::MAX, u64::MAX);
        assert_eq!(t.len(), MAX_SESSION_TOKEN_LEN);
        assert_eq!(
            verify_session_token(key, "v", "a", "s", &t, u64::MAX),
            Ok((u64::MAX, u64::MAX))
        );
        let t = session_token(key, "v", "a", "s", 0, 0);
        assert_eq!(verify_session_token(key, "v", "a", "s", &t, 0), Ok((0, 0)));
    }

    fn us(vhost: Option<&str>, app: &str, stream: &str) -> Option<UrlStream> {
        Some(UrlStream {
            vhost: vhost.map(str::to_owned),
            app: app.into(),
            stream: stream.into(),
        })
    }

    #[test]
    fn streams_of_rtmp_urls() {
        assert_eq!(
            stream_of_url("rtmp://h/live/cam1"),
            us(None, "live", "cam1")
        );
        assert_eq!(
            stream_of_url("RTMPS://h:443/live/cam1?a=b"),
            us(None, "live", "cam1")
        );
        assert_eq!(
            stream_of_url("rtmp://h:1935/live/a/b?vhost=x&c=d"),
            us(Some("x"), "live", "a/b")
        );
        assert_eq!(
            stream_of_url("rtmp://h/live/cam1?vhost="),
            us(None, "live", "cam1")
        );
        // As written: RTMP clients do not decode.
        assert_eq!(
            stream_of_url("rtmp://h/live/c%20am"),
            us(None, "live", "c%20am")
        );
        for bad in [
            "rtmp://h/live",
            "rtmp://h/live/",
            "rtmp://h//cam",
            "rtmp:///live/cam",
            "rtmp://h",
            "rtmp:/h/live/x",
            "live/cam",
        ] {
            assert_eq!(stream_of_url(bad), None, "{bad}");
        }
    }

    #[test]
    fn streams_of_http_urls() {
        assert_eq!(
            stream_of_url("http://h:8080/live/cam1.live.flv"),
            us(None, "live", "cam1")
        );
        assert_eq!(
            stream_of_url("wss://h/live/cam1.live.flv?vhost=v"),
            us(Some("v"), "live", "cam1")
        );
        assert_eq!(
            stream_of_url("https://h/live/cam1.live.ts"),
            us(None, "live", "cam1")
        );
        assert_eq!(
            stream_of_url("http://h/live/c%20am/hls.m3u8#t"),
            us(None, "live", "c am")
        );
        assert_eq!(
            stream_of_url("ws://h/live/cam1/master.m3u8"),
            us(None, "live", "cam1")
        );
        assert_eq!(
            stream_of_url("http://h/record/live/cam1/2024-01-02/10-00-00.mp4"),
            us(None, "live", "cam1")
        );
        assert_eq!(
            stream_of_url("http://h/record/live/cam1/2024-01-02/10-00-00/index.m3u8?vhost=v"),
            us(Some("v"), "live", "cam1")
        );
        for bad in [
            "http://h/live/cam1",
            "http://h/live/cam1.flv",
            "http://h/live/.live.flv",
            "http://h/live/cam1/1.ts",
            "http://h/live/cam1/x/hls.m3u8",
            "http://h/record/live/cam1",
            "http://h/live/..%2f/hls.m3u8",
            "http://h/live/%2e%2e/hls.m3u8",
            "http://h/live/a%2fb/hls.m3u8",
            "http://h/live/%zz.live.flv",
            "http://h/live/%ff.live.flv",
            "http://h//cam1.live.flv",
            "ftp://h/live/cam1.live.flv",
        ] {
            assert_eq!(stream_of_url(bad), None, "{bad}");
        }
    }

    #[test]
    fn with_signature_appends_or_replaces() {
        assert_eq!(
            with_signature("rtmp://h/live/a", 5, "ab"),
            "rtmp://h/live/a?exp=5&sig=ab"
        );
        assert_eq!(
            with_signature("rtmp://h/live/a?", 5, "ab"),
            "rtmp://h/live/a?exp=5&sig=ab"
        );
        assert_eq!(
            with_signature("rtmp://h/live/a?vhost=x", 5, "ab"),
            "rtmp://h/live/a?vhost=x&exp=5&sig=ab"
        );
        assert_eq!(
            with_signature("http://h/live/a/hls.m3u8?exp=1&x=2&sig=zz#f", 5, "ab"),
            "http://h/live/a/hls.m3u8?x=2&exp=5&sig=ab#f"
        );
    }

    #[test]
    fn a_signed_url_verifies_end_to_end() {
        for url in [
            "rtmp://h/live/a/b?vhost=example.com",
            "http://h/live/cam1/hls.m3u8",
            "ws://h/live/x.live.flv?token=1",
        ] {
            let s = stream_of_url(url).unwrap();
            let sig = signature(
                SECRET,
                Action::Play,
                s.vhost_or_default(),
                &s.app,
                &s.stream,
                EXP,
            );
            let signed = with_signature(url, EXP, &sig);
            let again = stream_of_url(&signed).unwrap();
            assert_eq!(again, s);
            let query = signed.split_once('?').unwrap().1;
            assert_eq!(
                verify(
                    SECRET,
                    Action::Play,
                    again.vhost_or_default(),
                    &again.app,
                    &again.stream,
                    query,
                    EXP
                ),
                Ok(EXP),
                "{signed}"
            );
        }
    }
}
