//! Fuzzes signed-URL checking (`ferrocast_proto::sign`): the query of `verify`, the
//! session token of `verify_session_token` and the URL of `stream_of_url`, all
//! attacker-written text.
//!
//! Any input may be refused, none may panic. What is accepted must be consistent: a
//! verified URL has not expired; a verified session token is the one `session_token`
//! mints for its id and expiry (tokens are canonical); a URL that names a stream still
//! names the same stream once `with_signature` has signed it, and that signature
//! verifies.
//!
//! The first byte picks a prefix (a scheme and host, a path, the start of a query or
//! of a token) put before the rest, so the URL and token paths are reached from an
//! empty corpus rather than after the fuzzer has guessed `rtmp://`.

#![no_main]

use ferrocast_proto::sign::{
    session_token, signature, stream_of_url, verify, verify_session_token, with_signature, Action,
    DEFAULT_VHOST,
};

const SECRET: &[u8] = b"fuzzing-secret-0123456789";

const PREFIXES: [&str; 8] = [
    "",
    "rtmp://h/live/",
    "rtmps://h:443/",
    "http://h/live/",
    "https://h/record/live/cam/",
    "ws://h/",
    "exp=1700000060&sig=",
    "2a-6553f11e-",
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let text = format!(
        "{}{}",
        PREFIXES[usize::from(pick) % PREFIXES.len()],
        String::from_utf8_lossy(rest)
    );
    let now = 1_700_000_000;

    if let Ok(exp) = verify(
        SECRET,
        Action::Play,
        DEFAULT_VHOST,
        "live",
        "cam",
        &text,
        now,
    ) {
        assert!(exp >= now, "accepted an expired URL");
    }

    if let Ok((id, exp)) = verify_session_token(SECRET, DEFAULT_VHOST, "live", "cam", &text, now) {
        assert!(exp >= now, "accepted an expired token");
        assert_eq!(
            session_token(SECRET, DEFAULT_VHOST, "live", "cam", id, exp),
            text
        );
    }

    if let Some(s) = stream_of_url(&text) {
        assert!(!s.app.is_empty() && !s.stream.is_empty());
        let exp = now + 60;
        let sig = signature(
            SECRET,
            Action::Publish,
            s.vhost_or_default(),
            &s.app,
            &s.stream,
            exp,
        );
        let signed = with_signature(&text, exp, &sig);
        let again = stream_of_url(&signed).expect("signing lost the stream");
        assert_eq!(again, s, "signing changed the stream: {signed}");
        let query = signed.split_once('?').map(|(_, q)| q).unwrap_or("");
        // A fragment ends the query, except in RTMP URLs (which have none).
        let query = match query.split_once('#') {
            Some((q, _))
                if !text
                    .get(..4)
                    .is_some_and(|s| s.eq_ignore_ascii_case("rtmp")) =>
            {
                q
            }
            _ => query,
        };
        assert_eq!(
            verify(
                SECRET,
                Action::Publish,
                again.vhost_or_default(),
                &again.app,
                &again.stream,
                query,
                now
            ),
            Ok(exp),
            "signed URL does not verify: {signed}"
        );
    }
});
