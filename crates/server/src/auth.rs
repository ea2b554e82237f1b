//! Who may publish and who may play: the one decision every input and output asks
//! before it attaches a client to a stream.
//!
//! Each app has a policy per action (`auth.publish`, `auth.play`, `auth.apps`):
//! * `open`: anyone;
//! * `signed`: the URL's query carries `exp` and `sig`, an HMAC made with
//!   `auth.secret` over the action, vhost, app, stream and expiry
//!   ([`ferrocast_proto::sign`]); no hook server needed;
//! * `hook`: `hook.on_publish` / `hook.on_play` decide (config validation makes sure
//!   the hook is configured).
//!
//! As in ZLMediaKit, a configured and enabled gate hook is asked whatever the policy
//! says (an operator who sets `hook.on_play` expects it to gate): a signed URL is
//! checked first, then the hook. The reason for a refusal goes to the log, never to
//! the client (it would tell an attacker which part to forge); the client gets a
//! short refusal, or the hook receiver's own `msg`.
//!
//! Internal subscribers (the HLS muxer, recorders, push proxies, transcoders) are
//! not clients and are never asked: the operator configured them.
//!
//! HLS viewers are asked once per session, not per request: an authorized playlist
//! request gets a session token ([`Auth::hls_token`]) carried in the URIs of what it
//! is served. The token is an HMAC under a key of this process (or derived from
//! `auth.secret`, so a restart keeps sessions valid) and names its stream, so
//! segments need neither a hook call nor a cookie.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ferrocast_proto::sign::{self, Action, SignError};
use thiserror::Error;

use crate::config::Config;
use crate::hook::{Client, Hooks};
use crate::hub::{OriginKind, PublishOptions, StreamKey};

/// What a client is told when its signature is wrong (the details are logged).
const UNAUTHORIZED: &str = "unauthorized";

/// A refusal: `msg` for the client, `reason` for the log.
#[derive(Debug, Clone, Error)]
#[error("{reason}")]
pub(crate) struct Denied {
    pub msg: String,
    pub reason: String,
}

/// What an HLS session token opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// The media playlist (the variant URI of the session's master playlist).
    Variant,
    /// Segments listed by a playlist of the session.
    Segment,
}

/// A publish that may go on.
#[derive(Debug, Clone, Default)]
pub(crate) struct Grant {
    /// What the publish gate set for the stream.
    pub options: PublishOptions,
    /// The publisher proved a right to this very stream (a valid signature, or the
    /// hook's approval), so it may take over a live publish of it
    /// (`publish.takeover`). Never true for an open policy.
    pub proven: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    Open,
    Signed,
    Hook,
}

impl Policy {
    fn parse(s: &str) -> Policy {
        match s {
            "signed" => Policy::Signed,
            "hook" => Policy::Hook,
            _ => Policy::Open,
        }
    }
}

pub(crate) struct Auth {
    config: crate::config::AuthConfig,
    hooks: Arc<Hooks>,
    takeover: bool,
    /// Key of HLS session tokens.
    hls_key: [u8; 32],
}

/// Unix seconds now.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Auth {
    pub(crate) fn new(config: &Config, hooks: Arc<Hooks>) -> Arc<Auth> {
        let mut hls_key = [0u8; 32];
        if config.auth.secret.is_empty() {
            // No secret: a key of this process (HLS sessions end with it).
            if getrandom::fill(&mut hls_key).is_err() {
                tracing::error!("no random bytes for the HLS session key; using the clock");
                let t = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0);
                hls_key[..16].copy_from_slice(&t.to_le_bytes());
            }
        } else {
            // Derived (not equal) so a session token never signs a URL.
            let derived = sign::signature(
                config.auth.secret.as_bytes(),
                Action::Play,
                "ferrocast-hls-session-key",
                "",
                "",
                0,
            );
            for (i, b) in derived.as_bytes().iter().take(32).enumerate() {
                hls_key[i] = *b;
            }
        }
        Arc::new(Auth {
            config: config.auth.clone(),
            hooks,
            takeover: config.publish.takeover,
            hls_key,
        })
    }

    fn policy(&self, app: &str, publish: bool) -> Policy {
        Policy::parse(self.config.policy(app, publish))
    }

    /// Whether anyone may play every app: no signed or hook policy for play, and no
    /// play hook. The public stream list is served only then.
    pub(crate) fn play_is_open(&self) -> bool {
        !self.hooks.gates_play()
            && Policy::parse(&self.config.play) == Policy::Open
            && self
                .config
                .apps
                .values()
                .all(|a| a.play.as_deref().is_none_or(|p| p == "open"))
    }

    /// Whether anyone may play streams of `app` (no signature, no play hook): HLS
    /// segments then need no session token.
    pub(crate) fn play_is_open_for(&self, app: &str) -> bool {
        !self.hooks.gates_play() && self.policy(app, false) == Policy::Open
    }

    /// Whether some app lets anyone publish (start-up warns on a public address).
    pub(crate) fn publish_is_open_somewhere(&self) -> bool {
        !self.hooks.gates_publish()
            && (Policy::parse(&self.config.publish) == Policy::Open
                || self
                    .config
                    .apps
                    .values()
                    .any(|a| a.publish.as_deref() == Some("open")))
    }

    fn check_signature(&self, action: Action, c: &Client) -> Result<(), Denied> {
        let k = &c.key;
        sign::verify(
            self.config.secret.as_bytes(),
            action,
            &k.vhost,
            &k.app,
            &k.stream,
            &c.params,
            unix_now(),
        )
        .map(|_| ())
        .map_err(|e: SignError| Denied {
            msg: UNAUTHORIZED.into(),
            reason: format!(
                "{} of {} refused: signed URL required: {e}",
                match action {
                    Action::Publish => "publish",
                    Action::Play => "play",
                },
                k
            ),
        })
    }

    /// May `c` publish? The grant carries the stream's options set by the hook.
    pub(crate) async fn publish(&self, c: &Client, origin: OriginKind) -> Result<Grant, Denied> {
        let policy = self.policy(&c.key.app, true);
        let mut grant = Grant::default();
        if policy == Policy::Signed {
            self.check_signature(Action::Publish, c)?;
            grant.proven = true;
        }
        if self.hooks.gates_publish() {
            grant.options = self.hooks.on_publish(c, origin).await.map_err(|r| Denied {
                msg: r.msg,
                reason: r.reason,
            })?;
            grant.proven = true;
        }
        grant.proven &= self.takeover;
        Ok(grant)
    }

    /// May `c` play?
    pub(crate) async fn play(&self, c: &Client) -> Result<(), Denied> {
        if self.policy(&c.key.app, false) == Policy::Signed {
            self.check_signature(Action::Play, c)?;
        }
        if self.hooks.gates_play() {
            self.hooks.on_play(c).await.map_err(|r| Denied {
                msg: r.msg,
                reason: r.reason,
            })?;
        }
        Ok(())
    }

    /// A token for HLS session `id` of `key`, valid until `exp` (unix seconds), of
    /// one `kind`: a variant token (reloads of the media playlist) and a segment
    /// token are keyed apart, so a leaked segment URL cannot start a session.
    pub(crate) fn hls_token(&self, kind: TokenKind, key: &StreamKey, id: u64, exp: u64) -> String {
        let k = self.token_key(kind);
        sign::session_token(&k, &key.vhost, &key.app, &key.stream, id, exp)
    }

    /// The session id and expiry a token of `kind` gives for `key`, if it is genuine
    /// and not expired at `now`.
    pub(crate) fn check_hls_token(
        &self,
        kind: TokenKind,
        key: &StreamKey,
        token: &str,
        now: u64,
    ) -> Result<(u64, u64), SignError> {
        let k = self.token_key(kind);
        sign::verify_session_token(&k, &key.vhost, &key.app, &key.stream, token, now)
    }

    fn token_key(&self, kind: TokenKind) -> [u8; 33] {
        let mut k = [0u8; 33];
        k[..32].copy_from_slice(&self.hls_key);
        k[32] = match kind {
            TokenKind::Variant => b'v',
            TokenKind::Segment => b's',
        };
        k
    }
}
