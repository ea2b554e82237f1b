//! The server assembly: binds the listeners, builds every service on one hub, wires
//! their hooks, serves until a signal, and shuts down in order. The only module that
//! knows all the others (the top of the layering in `lib.rs`); nothing imports it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::{api, hook, http, hub, live_hls, metrics, proxy, record, rtmp, transcode};

/// How long shutdown waits for sessions to end before exiting anyway (the process
/// must be gone within 5 s of SIGTERM).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);

/// How long shutdown waits for recordings to be finished (their index written).
const RECORD_FINISH_GRACE: Duration = Duration::from_secs(3);

/// How long shutdown gives the webhooks (the last queued events, on_server_exited)
/// after the sessions ended; within the 5 s of SIGTERM with [`SHUTDOWN_GRACE`].
const HOOK_EXIT_GRACE: Duration = Duration::from_millis(800);

/// Binds the listeners and serves until SIGINT or SIGTERM. `config_path` is the
/// operator's file, where setServerConfig writes changes back.
pub async fn serve(config: Config, config_path: Option<PathBuf>) -> Result<(), String> {
    // A write past RLIMIT_FSIZE must fail with EFBIG (a recording then stops with a
    // logged error), not kill the server with SIGXFSZ.
    let _sigxfsz = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(25));
    let rtmp_listener = TcpListener::bind(&config.rtmp.listen)
        .await
        .map_err(|e| format!("cannot listen for RTMP on {}: {e}", config.rtmp.listen))?;
    let rtmp_addr = rtmp_listener.local_addr().map_err(|e| e.to_string())?;
    let http_listener = TcpListener::bind(&config.http.listen)
        .await
        .map_err(|e| format!("cannot listen for HTTP on {}: {e}", config.http.listen))?;
    let http_addr = http_listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(
        rtmp = %rtmp_addr,
        http = %http_addr,
        threads = config.worker_threads(),
        data_dir = %config.data_dir.display(),
        version = env!("CARGO_PKG_VERSION"),
        "ferrocast listening"
    );
    let hub = hub::Hub::new(hub::HubSettings::from_config(&config));
    let settings = Arc::new(rtmp::RtmpSettings::from_config(&config));
    let (stop_tx, stop_rx) = watch::channel(false);
    let hls_store = live_hls::HlsStore::new(live_hls::HlsSettings::from_config(&config));
    live_hls::attach(&hub, &hls_store);
    let hooks = hook::Hooks::new(&config, hub.clone());
    hooks.start();
    let recorder = record::Recorder::new(
        hub.clone(),
        record::RecordSettings::from_config(&config),
        Some(hooks.clone()),
    );
    recorder.attach();
    let proxies = proxy::manager::ProxyManager::new(
        hub.clone(),
        hls_store.clone(),
        recorder.clone(),
        proxy::manager::ProxySettings::from_config(&config),
    );
    proxies.start(&config);
    let transcoder = transcode::Transcoder::new(hub.clone(), config.transcode.clone(), rtmp_addr);
    transcoder.attach();
    let mut rtmp_task = tokio::spawn(rtmp::serve(
        rtmp_listener,
        hub.clone(),
        settings,
        config.rtmp.max_connections,
        stop_rx.clone(),
    ));
    // The API and /metrics share who may use them; setServerConfig changes it live.
    let access = Arc::new(crate::config::Access::new(
        &config.api.allow_ip_range,
        &config.api.metrics_token,
    ));
    let http_state = http::HttpState {
        access: access.clone(),
        hub: hub.clone(),
        hls: hls_store,
        flush_interval: Duration::from_millis(config.hub.flush_interval_ms),
        segment_max_age_s: config.hls.segment_max_age_s,
        shutdown: stop_rx.clone(),
        metrics: metrics::install(),
        local: http_addr,
        renditions: {
            let t = transcoder.clone();
            Arc::new(move |key| {
                t.renditions(key)
                    .into_iter()
                    .map(|r| (r.key, r.bandwidth_bps))
                    .collect()
            })
        },
    };
    let api_state = api::ApiState::new(
        hub.clone(),
        recorder.clone(),
        proxies.clone(),
        transcoder.clone(),
        config.clone(),
        config_path,
        access,
    )?;
    let mut extra = api::routes(api_state);
    if config.record.serve_http {
        // Recordings with Range (seeking), conditional requests and no path escapes.
        extra = extra.nest_service(
            "/record",
            tower_http::services::ServeDir::new(config.record_dir()),
        );
    }
    let app = http::router(http_state, extra, &config.http.allow_origin);
    let mut http_stop = stop_rx;
    let http_task = tokio::spawn(async move {
        let r = axum::serve(
            http_listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = http_stop.changed().await;
        })
        .await;
        if let Err(e) = r {
            tracing::error!(error = %e, "HTTP server failed");
        }
    });

    let signal = wait_for_signal();
    tokio::select! {
        s = signal => tracing::info!(signal = s, "shutting down: no new connections, ending sessions"),
        r = &mut rtmp_task => return r.map_err(|e| format!("RTMP listener failed: {e}")),
    }
    // Everything below shares one deadline (the process must be gone within 5 s).
    // Recordings are closed to new starts first, so a proxy or a new stream cannot
    // begin one that nobody would finish; the sources of media (proxies, ffmpeg
    // children, publishers) and the recordings then end together.
    let all = async {
        let recordings = async {
            if tokio::time::timeout(RECORD_FINISH_GRACE, recorder.shutdown())
                .await
                .is_err()
            {
                tracing::error!("recordings were not finished within {RECORD_FINISH_GRACE:?}");
            }
        };
        let sources = async {
            tokio::join!(proxies.shutdown(), transcoder.shutdown());
        };
        let _ = stop_tx.send(true);
        let sessions = async {
            let _ = rtmp_task.await;
            let _ = http_task.await;
        };
        tokio::join!(recordings, sources, sessions);
    };
    if tokio::time::timeout(SHUTDOWN_GRACE, all).await.is_err() {
        tracing::warn!("sessions did not end within {SHUTDOWN_GRACE:?}; exiting anyway");
    }
    // Last: the unregistrations and recordings just queued, then on_server_exited.
    if tokio::time::timeout(HOOK_EXIT_GRACE, hooks.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("webhooks not all sent within {HOOK_EXIT_GRACE:?}");
    }
    tracing::info!("ferrocast stopped");
    Ok(())
}

async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}
