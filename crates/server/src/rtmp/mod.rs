//! The RTMP listener: accepts connections and runs one [`conn`] task per peer.

pub mod conn;
pub mod writer;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::config::Config;
use crate::hub::Hub;

/// Settings the connection tasks need, resolved once from the config.
#[derive(Debug, Clone)]
pub struct RtmpSettings {
    pub session: ferrocast_proto::rtmp::session::SessionConfig,
    pub handshake_timeout: Duration,
    pub idle_timeout: Duration,
    pub flush_interval: Duration,
    pub tcp_nodelay: bool,
    pub write_timeout: Duration,
}

impl RtmpSettings {
    pub fn from_config(c: &Config) -> Self {
        use ferrocast_proto::amf0::Amf0Limits;
        use ferrocast_proto::rtmp::chunk::ChunkLimits;
        use ferrocast_proto::rtmp::session::SessionConfig;
        RtmpSettings {
            session: SessionConfig {
                chunk_limits: ChunkLimits {
                    max_message_size: c.rtmp.max_message_size,
                    max_chunk_streams: c.rtmp.max_chunk_streams,
                },
                amf0_limits: Amf0Limits::default(),
                out_chunk_size: c.rtmp.chunk_size,
                window_ack_size: c.rtmp.window_ack_size,
            },
            handshake_timeout: Duration::from_millis(c.rtmp.handshake_timeout_ms),
            idle_timeout: Duration::from_millis(c.rtmp.idle_timeout_ms),
            flush_interval: Duration::from_millis(c.hub.flush_interval_ms),
            tcp_nodelay: c.hub.tcp_nodelay,
            write_timeout: Duration::from_millis(c.hub.slow_player_timeout_ms),
        }
    }
}

/// Accepts until `shutdown` flips, then waits for the sessions to end.
pub async fn serve(
    listener: TcpListener,
    hub: Arc<Hub>,
    settings: Arc<RtmpSettings>,
    max_connections: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    let limit = Arc::new(Semaphore::new(max_connections));
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (socket, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "RTMP accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = limit.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, max_connections, "RTMP connection refused: too many connections");
                    continue;
                };
                let hub = hub.clone();
                let settings = settings.clone();
                let shutdown = shutdown.clone();
                tasks.spawn(async move {
                    conn::run(socket, peer, hub, settings, shutdown).await;
                    drop(permit);
                });
                // Reap finished tasks so the set does not grow with history.
                while tasks.try_join_next().is_some() {}
            }
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    while tasks.join_next().await.is_some() {}
}
