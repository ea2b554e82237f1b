//! The session registry: every client connection (RTMP, HTTP-FLV, WS-FLV, HTTP-TS),
//! what it is doing, and a way to end it from outside (ZLMediaKit's getAllSession,
//! getMediaPlayerList and kick_session).
//!
//! A connection registers itself when it is accepted and gets a [`SessionGuard`];
//! dropping the guard removes the entry, so the registry never outlives what it
//! describes. Kicking only raises a flag: the connection task sees it through
//! [`SessionGuard::kicked`], ends itself, and logs why. The registry owns no sockets
//! and never closes anything itself.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use super::StreamKey;

/// The close reason of a kicked session, for its log line and the metrics.
pub const KICKED_REASON: &str = "kicked by the API";

/// What a session is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Handshaking, connected, or waiting: not (yet) publishing or playing.
    Unknown,
    Publisher,
    Player,
}

/// One client connection as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub id: u64,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// "rtmp", "http-flv", "ws-flv" or "http-ts".
    pub schema: &'static str,
    pub role: Role,
    /// The stream published or played, once there is one.
    pub key: Option<StreamKey>,
    /// Registration time, unix seconds.
    pub started_unix: u64,
}

struct Entry {
    info: SessionInfo,
    kick: watch::Sender<bool>,
}

/// The sessions of one hub, by id (so listings come out in id order).
///
/// A std `Mutex`: every critical section is a map operation with no `.await` in it,
/// and the map is touched on connect, on publish/play and on close, never per packet.
#[derive(Default)]
pub(super) struct SessionRegistry {
    sessions: Mutex<BTreeMap<u64, Entry>>,
}

impl SessionRegistry {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, Entry>> {
        // A panic elsewhere while holding the lock leaves the map consistent (each
        // operation is a single insert/remove/assign): keep serving it.
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn register(
        self: &Arc<Self>,
        id: u64,
        peer: SocketAddr,
        local: SocketAddr,
        schema: &'static str,
    ) -> SessionGuard {
        let (kick, kicked) = watch::channel(false);
        let info = SessionInfo {
            id,
            peer,
            local,
            schema,
            role: Role::Unknown,
            key: None,
            started_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        };
        self.lock().insert(id, Entry { info, kick });
        SessionGuard {
            registry: self.clone(),
            id,
            peer,
            schema,
            kicked,
        }
    }

    pub(super) fn list(&self) -> Vec<SessionInfo> {
        self.lock().values().map(|e| e.info.clone()).collect()
    }

    pub(super) fn kick(&self, id: u64) -> bool {
        match self.lock().get(&id) {
            Some(e) => {
                e.kick.send_replace(true);
                true
            }
            None => false,
        }
    }
}

/// A registered session; dropping it deregisters the session.
pub struct SessionGuard {
    registry: Arc<SessionRegistry>,
    id: u64,
    peer: SocketAddr,
    schema: &'static str,
    /// Its sender lives in the registry entry, which lives as long as this guard.
    kicked: watch::Receiver<bool>,
}

impl SessionGuard {
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The protocol it was registered with ("rtmp", "http-flv", ...).
    pub fn schema(&self) -> &'static str {
        self.schema
    }

    /// Records what the session now does: `(Publisher, Some(key))` once a publish is
    /// accepted, `(Player, Some(key))` once a play is, `(Unknown, None)` when it stops.
    pub fn set_stream(&self, role: Role, key: Option<StreamKey>) {
        if let Some(e) = self.registry.lock().get_mut(&self.id) {
            e.info.role = role;
            e.info.key = key;
        }
    }

    /// Whether the session has been kicked.
    pub fn is_kicked(&self) -> bool {
        *self.kicked.borrow()
    }

    /// Resolves once the session is kicked (at once if it already was).
    ///
    /// Cancel-safe: the kick is a level, not an event, so dropping this future (a
    /// `select!` taking another branch) loses nothing and a later call sees it.
    pub async fn kicked(&self) {
        let mut rx = self.kicked.clone();
        if rx.wait_for(|k| *k).await.is_err() {
            // Cannot happen while `self` lives (the entry holds the sender), but a
            // closed channel must not look like a kick.
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}

impl std::fmt::Debug for SessionGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionGuard")
            .field("id", &self.id)
            .field("kicked", &self.is_kicked())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::hub::{Hub, HubSettings};

    fn hub() -> Arc<Hub> {
        Hub::new(HubSettings {
            gop_cache: true,
            gop_cache_max_frames: 4,
            gop_cache_max_bytes: 1 << 20,
            queue_len: 16,
            slow_player_timeout: Duration::from_millis(200),
            continue_push: Duration::ZERO,
            max_stream_wait: Duration::from_millis(100),
        })
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn register_list_set_stream_and_drop() {
        let hub = hub();
        let a = hub.register_session(addr(5000), addr(1935), "rtmp");
        let b = hub.register_session(addr(5001), addr(8080), "http-flv");
        assert!(b.id() > a.id());
        let list = hub.sessions();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].id, a.id());
        assert_eq!(list[0].peer, addr(5000));
        assert_eq!(list[0].local, addr(1935));
        assert_eq!(list[0].schema, "rtmp");
        assert_eq!(list[0].role, Role::Unknown);
        assert_eq!(list[0].key, None);
        assert!(list[0].started_unix > 1_600_000_000);
        assert_eq!(list[1].schema, "http-flv");

        let key = StreamKey::new(None, "live", "cam");
        b.set_stream(Role::Player, Some(key.clone()));
        let list = hub.sessions();
        assert_eq!(list[1].role, Role::Player);
        assert_eq!(list[1].key.as_ref(), Some(&key));

        drop(a);
        let list = hub.sessions();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].id, b.id());
        drop(b);
        assert!(hub.sessions().is_empty());
    }

    #[test]
    fn ids_are_shared_with_other_session_ids() {
        let hub = hub();
        let a = hub.register_session(addr(1), addr(2), "rtmp");
        let n = hub.next_session_id();
        let b = hub.register_session(addr(1), addr(2), "rtmp");
        assert!(a.id() < n && n < b.id());
    }

    #[tokio::test]
    async fn kick_resolves_kicked_and_is_level_triggered() {
        let hub = hub();
        let s = hub.register_session(addr(5000), addr(1935), "ws-flv");
        let other = hub.register_session(addr(5001), addr(1935), "rtmp");
        // Not kicked: the future stays pending (and dropping it is harmless).
        assert!(tokio::time::timeout(Duration::from_millis(30), s.kicked())
            .await
            .is_err());
        assert!(!hub.kick_session(9_999));
        assert!(hub.kick_session(s.id()));
        tokio::time::timeout(Duration::from_secs(1), s.kicked())
            .await
            .expect("kicked() resolves after kick_session");
        // Again, and from a select! that is entered after the kick.
        tokio::select! {
            _ = s.kicked() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => panic!("kick lost"),
        }
        assert!(s.is_kicked());
        assert!(!other.is_kicked());
        // Kicking does not deregister: the session does that when it ends.
        assert_eq!(hub.sessions().len(), 2);
        drop(s);
        assert_eq!(hub.sessions().len(), 1);
        assert!(!hub.kick_session(hub.sessions()[0].id + 1));
    }

    #[tokio::test]
    async fn a_waiting_task_wakes_on_kick() {
        let hub = hub();
        let s = Arc::new(hub.register_session(addr(5000), addr(1935), "http-ts"));
        let waiter = {
            let s = s.clone();
            tokio::spawn(async move { s.kicked().await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(hub.kick_session(s.id()));
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("waiter woke")
            .unwrap();
    }
}
