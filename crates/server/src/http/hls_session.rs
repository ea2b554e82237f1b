//! HLS viewer sessions: how an HLS viewer is authorized once, counted, reported and
//! kicked, although HTTP gives it no connection of its own.
//!
//! The first playlist request (`hls.m3u8` without `session=`) is asked of
//! [`Auth::play`] like any other play, and answered with a one-variant master
//! playlist whose URI is `hls.m3u8?session=TOKEN` (SRS does the same with its
//! `hls_ctx`). Every player (hls.js, Safari, ffmpeg, VLC) follows a master playlist
//! and reloads the variant's URI, so the token comes back with every reload, with no
//! cookie (ZLMediaKit's cookie sessions break behind proxies and in players that
//! drop cookies). The served media playlist appends a segment token to each segment
//! URI; a segment request needs one when playing is not open, and never calls a hook.
//!
//! Tokens are HMACs (`ferrocast_proto::sign::session_token`) naming the stream, the
//! session id and an expiry: a leaked segment URL stops working after
//! [`SEGMENT_TOKEN_TTL`]. A variant token is accepted while its session is alive (a
//! request within `hls.session_timeout_ms`), or before its expiry when it starts the
//! session; a session that timed out or was kicked cannot be revived with it.
//!
//! A live session is a viewer like any other: listed (getAllSession, kick_session)
//! with schema "hls", counted in the stream's readerCount (so on_stream_none_reader
//! sees HLS viewers), and reported to on_flow_report when it ends.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::auth::{unix_now, Auth, TokenKind};
use crate::hook::{Client, Hooks};
use crate::hub::{Hub, ReaderGuard, SessionGuard, StreamKey};

/// How long a segment URI's token is valid after the playlist that listed it (at
/// least; its expiry is rounded up to [`SEGMENT_TOKEN_STEP`]).
pub(crate) const SEGMENT_TOKEN_TTL: u64 = 120;

/// Segment token expiries are multiples of this, so a viewer's segment URIs stay the
/// same from one playlist reload to the next (a cache in front sees one URL).
const SEGMENT_TOKEN_STEP: u64 = 60;

fn segment_exp(now: u64) -> u64 {
    (now + SEGMENT_TOKEN_TTL).div_ceil(SEGMENT_TOKEN_STEP) * SEGMENT_TOKEN_STEP
}

/// Most live HLS sessions at once: each is a few hundred bytes (its query at most
/// [`MAX_QUERY`]), and a client could otherwise create them without end by asking
/// for playlists.
pub(crate) const MAX_SESSIONS: usize = 100_000;

/// Most live HLS sessions from one IP address: a whole venue behind one NAT fits,
/// one client cannot take every slot.
pub(crate) const MAX_SESSIONS_PER_IP: usize = 5_000;

/// Longest query kept as a session's `params`.
pub(crate) const MAX_QUERY: usize = 2048;

/// Why a token was not accepted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TokenRefused {
    #[error("bad or expired session token: {0}")]
    Bad(#[from] ferrocast_proto::sign::SignError),
    #[error("no session token (segments of a stream whose playing is not open need one)")]
    MissingToken,
    #[error("session {0} ended (timed out or kicked)")]
    Ended(u64),
    #[error("too many HLS sessions ({MAX_SESSIONS} in all, {MAX_SESSIONS_PER_IP} per address)")]
    Full,
    #[error("the token names another stream's session")]
    OtherStream,
}

struct Viewer {
    client: Client,
    _session: SessionGuard,
    /// Counted in the stream's readers; rebound when the stream is published anew.
    reader: Option<ReaderGuard>,
    last_seen: Instant,
    started: Instant,
    bytes: u64,
}

pub(crate) struct HlsSessions {
    hub: Arc<Hub>,
    auth: Arc<Auth>,
    hooks: Arc<Hooks>,
    timeout: Duration,
    local: SocketAddr,
    /// Live sessions, and how many per client address; both under one lock.
    live: Mutex<Live>,
    /// Sessions that ended, until every token they were given has expired (so none
    /// can start them again or fetch their segments). Taken after `live`, never
    /// before.
    ended: Mutex<HashMap<u64, u64>>,
}

#[derive(Default)]
struct Live {
    sessions: HashMap<u64, Viewer>,
    per_ip: HashMap<std::net::IpAddr, usize>,
}

impl Live {
    fn remove(&mut self, id: u64) -> Option<Viewer> {
        let v = self.sessions.remove(&id)?;
        let ip = v.client.peer.ip();
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
        Some(v)
    }
}

impl HlsSessions {
    pub(crate) fn new(
        hub: Arc<Hub>,
        auth: Arc<Auth>,
        hooks: Arc<Hooks>,
        timeout: Duration,
        local: SocketAddr,
    ) -> Arc<Self> {
        Arc::new(HlsSessions {
            hub,
            auth,
            hooks,
            timeout,
            local,
            live: Mutex::new(Live::default()),
            ended: Mutex::new(HashMap::new()),
        })
    }

    /// Ends idle and kicked sessions once a second until `shutdown`.
    pub(crate) fn start_reaper(self: &Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = shutdown.changed() => {}
                }
                let Some(me) = me.upgrade() else { return };
                me.reap(*shutdown.borrow());
                if *shutdown.borrow() {
                    return;
                }
            }
        });
    }

    fn reap(&self, all: bool) {
        let now = Instant::now();
        let unix = unix_now();
        // Until the last segment token handed out can have expired.
        let keep_until = segment_exp(unix) + SEGMENT_TOKEN_STEP;
        let gone: Vec<(u64, Viewer, &'static str)> = {
            let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
            let ids: Vec<(u64, &'static str)> = live
                .sessions
                .iter()
                .filter_map(|(id, v)| {
                    if all {
                        Some((*id, "server shutting down"))
                    } else if v._session.is_kicked() {
                        Some((*id, crate::hub::KICKED_REASON))
                    } else if now.duration_since(v.last_seen) > self.timeout {
                        Some((*id, "no request within hls.session_timeout_ms"))
                    } else {
                        None
                    }
                })
                .collect();
            // Marked ended before the live lock is let go: a request in between
            // cannot start the session again.
            let mut ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
            ended.retain(|_, until| *until >= unix);
            ids.into_iter()
                .filter_map(|(id, why)| {
                    ended.insert(id, keep_until);
                    live.remove(id).map(|v| (id, v, why))
                })
                .collect()
        };
        for (id, v, why) in gone {
            crate::metrics::session_closed("hls", why);
            self.hooks
                .flow_report(&v.client, true, v.bytes, v.started.elapsed());
            tracing::info!(
                peer = %v.client.peer,
                session = id,
                stream = %v.client.key,
                protocol = "hls",
                bytes = v.bytes,
                duration_ms = v.started.elapsed().as_millis() as u64,
                reason = why,
                "HLS viewer closed"
            );
        }
    }

    /// A fresh session id and the token of its variant URI (valid for starting the
    /// session for one session timeout).
    pub(crate) fn mint(&self, key: &StreamKey) -> String {
        // Random, not a counter: ids must not repeat across restarts (tokens keyed
        // from auth.secret outlive one).
        let id = getrandom::u64().unwrap_or_else(|_| self.hub.next_session_id());
        let exp = unix_now() + self.timeout.as_secs().max(1);
        self.auth.hls_token(TokenKind::Variant, key, id, exp)
    }

    /// Accepts a playlist request carrying a variant token: the session is started
    /// (authorized already, when its token was minted) or kept alive. Returns the
    /// token for the segment URIs of the playlist served.
    pub(crate) fn playlist(
        &self,
        key: &StreamKey,
        token: &str,
        peer: SocketAddr,
        params: &str,
    ) -> Result<String, TokenRefused> {
        let now = unix_now();
        // Expiry is checked below: a live session outlives its variant token.
        let (id, exp) = self
            .auth
            .check_hls_token(TokenKind::Variant, key, token, 0)?;
        {
            let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(v) = live.sessions.get_mut(&id) {
                if v.client.key != *key {
                    return Err(TokenRefused::OtherStream);
                }
                v.last_seen = Instant::now();
                self.rebind(key, v);
                drop(live);
                return Ok(self.segment_token(key, id, now));
            }
            if exp < now {
                return Err(TokenRefused::Bad(
                    ferrocast_proto::sign::SignError::Expired { exp, now },
                ));
            }
            if self
                .ended
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(&id)
            {
                return Err(TokenRefused::Ended(id));
            }
            let ip = peer.ip();
            if live.sessions.len() >= MAX_SESSIONS
                || live.per_ip.get(&ip).copied().unwrap_or(0) >= MAX_SESSIONS_PER_IP
            {
                return Err(TokenRefused::Full);
            }
            let session = self.hub.register_session(peer, self.local, "hls");
            session.set_stream(crate::hub::Role::Player, Some(key.clone()));
            let mut params = strip_session(params);
            params.truncate(params.floor_char_boundary(MAX_QUERY));
            let mut v = Viewer {
                client: Client {
                    protocol: "hls",
                    key: key.clone(),
                    params,
                    peer,
                    session_id: session.id(),
                },
                _session: session,
                reader: None,
                last_seen: Instant::now(),
                started: Instant::now(),
                bytes: 0,
            };
            self.rebind(key, &mut v);
            live.sessions.insert(id, v);
            *live.per_ip.entry(ip).or_default() += 1;
        }
        tracing::info!(stream = %key, %peer, session = id, "HLS viewer started");
        Ok(self.segment_token(key, id, now))
    }

    fn segment_token(&self, key: &StreamKey, id: u64, now: u64) -> String {
        self.auth
            .hls_token(TokenKind::Segment, key, id, segment_exp(now))
    }

    /// Counts the viewer in the stream now live under `key` (a new publish after
    /// the old stream ended is another `Stream`).
    fn rebind(&self, key: &StreamKey, v: &mut Viewer) {
        let current = self.hub.find(key);
        let same = match (&v.reader, &current) {
            (Some(r), Some(s)) => Arc::ptr_eq(r.stream(), s),
            (None, None) => true,
            _ => false,
        };
        if !same {
            v.reader = current.map(|s| s.reader_guard());
        }
    }

    /// Checks a segment request's token (a refusal only when `required`): genuine,
    /// not expired, of this stream, of a session that has not ended. Returns the
    /// live session it belongs to, if any, for [`HlsSessions::add_bytes`].
    pub(crate) fn segment(
        &self,
        key: &StreamKey,
        token: Option<&str>,
        required: bool,
    ) -> Result<Option<u64>, TokenRefused> {
        let checked = match token {
            Some(t) => self
                .auth
                .check_hls_token(TokenKind::Segment, key, t, unix_now())
                .map_err(TokenRefused::from),
            None => Err(TokenRefused::MissingToken),
        };
        let checked = checked.and_then(|(id, _)| {
            let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
            match live.sessions.get(&id) {
                Some(v) if v.client.key == *key => Ok(Some(id)),
                Some(_) => Err(TokenRefused::OtherStream),
                None => {
                    let ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
                    if ended.contains_key(&id) {
                        Err(TokenRefused::Ended(id))
                    } else {
                        Ok(None)
                    }
                }
            }
        });
        match checked {
            Ok(id) => Ok(id),
            Err(e) if required => Err(e),
            Err(_) => Ok(None),
        }
    }

    /// Counts `bytes` served to session `id` and keeps it alive.
    pub(crate) fn add_bytes(&self, id: u64, bytes: u64) {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = live.sessions.get_mut(&id) {
            v.bytes += bytes;
            v.last_seen = Instant::now();
        }
    }
}

/// The query without our `session=` parameter (what the hooks see as `params`).
fn strip_session(params: &str) -> String {
    params
        .split('&')
        .filter(|kv| !kv.starts_with("session=") && !kv.is_empty())
        .collect::<Vec<_>>()
        .join("&")
}

/// The media playlist with `?session=TOKEN` appended to every URI line.
pub(crate) fn with_segment_token(playlist: &Bytes, token: &str) -> Bytes {
    let text = String::from_utf8_lossy(playlist);
    let mut out = String::with_capacity(text.len() + 64 * 8);
    for line in text.lines() {
        out.push_str(line);
        if !line.is_empty() && !line.starts_with('#') {
            out.push_str(if line.contains('?') {
                "&session="
            } else {
                "?session="
            });
            out.push_str(token);
        }
        out.push('\n');
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_uris_get_the_token_and_tags_do_not() {
        let p = Bytes::from_static(
            b"#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:4\n#EXTINF:2.000,\n4.ts\n#EXTINF:2.000,\n5.ts\n",
        );
        let out = with_segment_token(&p, "ab-cd-ef");
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:4\n#EXTINF:2.000,\n4.ts?session=ab-cd-ef\n#EXTINF:2.000,\n5.ts?session=ab-cd-ef\n"
        );
    }

    #[test]
    fn hooks_see_the_query_without_the_session() {
        assert_eq!(strip_session("session=x&token=1&a=b"), "token=1&a=b");
        assert_eq!(strip_session("session=x"), "");
    }
}
