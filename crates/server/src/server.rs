//! The server assembly: binds the listeners, builds every service on one hub, wires
//! their hooks, serves until a signal, and shuts down in order. The only module that
//! knows all the others (the top of the layering in `lib.rs`); nothing imports it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::{api, auth, hook, http, hub, live_hls, metrics, proxy, record, rtmp, tls, transcode};

/// How long shutdown waits for sessions to end before exiting anyway (the process
/// must be gone within 5 s of SIGTERM).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);

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
    // TLS: the certificate is loaded (a bad file stops the start-up, naming it) when
    // a TLS listener is configured; config validation made sure both files are named.
    let rtmps_listener = bind_optional(&config.rtmp.tls_listen, "RTMPS").await?;
    let https_listener = bind_optional(&config.http.tls_listen, "HTTPS").await?;
    let tls_certs = if rtmps_listener.is_some() || https_listener.is_some() {
        let certs = tls::TlsCerts::load(
            std::path::Path::new(&config.tls.cert),
            std::path::Path::new(&config.tls.key),
        )
        .map_err(|e| e.to_string())?;
        tokio::spawn(certs.clone().reload_on_sighup());
        Some(certs)
    } else {
        None
    };
    let shown = |l: &Option<(TcpListener, SocketAddr)>| match l {
        Some((_, a)) => a.to_string(),
        None => "off".into(),
    };
    tracing::info!(
        rtmp = %rtmp_addr,
        http = %http_addr,
        rtmps = %shown(&rtmps_listener),
        https = %shown(&https_listener),
        threads = config.worker_threads(),
        data_dir = %config.data_dir.display(),
        version = env!("CARGO_PKG_VERSION"),
        "ferrocast listening"
    );
    let hub = hub::Hub::new(hub::HubSettings::from_config(&config));
    let hooks = hook::Hooks::new(&config, hub.clone());
    hooks.start();
    let auth = auth::Auth::new(&config, hooks.clone());
    warn_if_open(&auth, rtmp_addr, http_addr);
    let mut settings = rtmp::RtmpSettings::from_config(&config);
    settings.auth = Some(auth.clone());
    settings.hooks = Some(hooks.clone());
    let settings = Arc::new(settings);
    let (stop_tx, stop_rx) = watch::channel(false);
    let hls_store = live_hls::HlsStore::new(live_hls::HlsSettings::from_config(&config));
    live_hls::attach(&hub, &hls_store);
    let recorder = record::Recorder::new(
        hub.clone(),
        record::RecordSettings::from_config(&config),
        Some(hooks.clone()),
    );
    // Listed before anything can start a recording; finished once the metrics
    // recorder is installed (below), so the repairs are counted.
    let interrupted = recorder.start_maintenance().await;
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
    let rtmps_task = rtmps_listener
        .zip(tls_certs.clone())
        .map(|((l, _), certs)| {
            tokio::spawn(rtmp::serve_with(
                l,
                Some(certs),
                hub.clone(),
                settings.clone(),
                config.rtmp.max_connections,
                stop_rx.clone(),
            ))
        });
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
    let hls_sessions = http::hls_session::HlsSessions::new(
        hub.clone(),
        auth.clone(),
        hooks.clone(),
        Duration::from_millis(config.hls.session_timeout_ms),
        http_addr,
    );
    hls_sessions.start_reaper(stop_rx.clone());
    let http_state = http::HttpState {
        auth: auth.clone(),
        hooks: hooks.clone(),
        hls_sessions,
        max_stream_wait: Duration::from_millis(config.general.max_stream_wait_ms),
        access: access.clone(),
        hub: hub.clone(),
        hls: hls_store,
        flush_interval: Duration::from_millis(config.hub.flush_interval_ms),
        slow_player_timeout: Duration::from_millis(config.hub.slow_player_timeout_ms),
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
    recorder.repair_interrupted(interrupted);
    let api_state = api::ApiState::new(
        api::Services {
            hub: hub.clone(),
            recorder: recorder.clone(),
            proxies: proxies.clone(),
            transcoder: transcoder.clone(),
        },
        config.clone(),
        config_path,
        access,
        auth.clone(),
    )?;
    let mut extra = api::routes(api_state);
    if config.record.serve_http {
        // Recordings with Range (seeking), conditional requests and no path escapes.
        // Recordings are played like live streams: asked of auth first.
        let files = axum::Router::new()
            .fallback_service(tower_http::services::ServeDir::new(config.record_dir()))
            .layer(axum::middleware::from_fn_with_state(
                http_state.clone(),
                http::record_gate,
            ));
        extra = extra.nest_service("/record", files);
    }
    // The HTTPS listener serves the same routes; its state differs only in the local
    // address a viewer's session lists. Both listeners share one connection cap.
    let http_limits = http::serve::HttpLimits::from_config(&config);
    let admission = http::serve::Admission::new(http_limits.clone());
    let https_task = match https_listener.zip(tls_certs) {
        Some(((l, addr), certs)) => {
            let app = http::router(
                http::HttpState {
                    local: addr,
                    ..http_state.clone()
                },
                extra.clone(),
                &config.http.allow_origin,
            );
            let listener = http::serve::Https::new(l, certs, admission.clone());
            let (limits, stop) = (http_limits.clone(), stop_rx.clone());
            Some(tokio::spawn(async move {
                http::serve::serve(listener, app, &limits, stop, "HTTPS").await
            }))
        }
        None => None,
    };
    let app = http::router(http_state, extra, &config.http.allow_origin);
    let plain = http::serve::Plain {
        listener: http_listener,
        admission,
    };
    let http_task =
        tokio::spawn(
            async move { http::serve::serve(plain, app, &http_limits, stop_rx, "HTTP").await },
        );

    let signal = wait_for_signal();
    tokio::select! {
        s = signal => tracing::info!(signal = s, "shutting down: no new connections, ending sessions"),
        r = &mut rtmp_task => return r.map_err(|e| format!("RTMP listener failed: {e}")),
    }
    // Everything below shares one deadline (the process must be gone within 5 s, or
    // within record.finish_grace_ms + 1 s when that is longer).
    let record_grace = Duration::from_millis(config.record.finish_grace_ms);
    let shutdown_grace = SHUTDOWN_GRACE.max(record_grace);
    // Recordings are closed to new starts first, so a proxy or a new stream cannot
    // begin one that nobody would finish; the sources of media (proxies, ffmpeg
    // children, publishers) and the recordings then end together.
    let all = async {
        let recordings = async {
            if tokio::time::timeout(record_grace, recorder.shutdown())
                .await
                .is_err()
            {
                tracing::error!("recordings were not finished within {record_grace:?} (record.finish_grace_ms); they are repaired at the next start");
            }
        };
        let sources = async {
            tokio::join!(proxies.shutdown(), transcoder.shutdown());
        };
        let _ = stop_tx.send(true);
        let sessions = async {
            let _ = rtmp_task.await;
            let _ = http_task.await;
            for task in [rtmps_task, https_task].into_iter().flatten() {
                let _ = task.await;
            }
        };
        tokio::join!(recordings, sources, sessions);
    };
    if tokio::time::timeout(shutdown_grace, all).await.is_err() {
        tracing::warn!("sessions did not end within {shutdown_grace:?}; exiting anyway");
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

/// Says loudly when anyone who can reach a public address may publish: fine on a
/// laptop (`cargo run --release` just works), not on the internet.
fn warn_if_open(auth: &auth::Auth, rtmp: std::net::SocketAddr, http: std::net::SocketAddr) {
    let public = |a: std::net::SocketAddr| !a.ip().is_loopback();
    if auth.publish_is_open_somewhere() && public(rtmp) {
        tracing::warn!(
            rtmp = %rtmp,
            "publishing is open to anyone who can reach this address: set auth.publish = \"signed\" or \"hook\" (see README, Access control)"
        );
    }
    if auth.play_is_open() && (public(http) || public(rtmp)) {
        tracing::info!("playing is open to anyone (auth.play = \"open\")");
    }
}

/// Binds `addr` unless it is empty (that listener is off).
async fn bind_optional(
    addr: &str,
    what: &str,
) -> Result<Option<(TcpListener, SocketAddr)>, String> {
    if addr.is_empty() {
        return Ok(None);
    }
    let l = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen for {what} on {addr}: {e}"))?;
    let a = l.local_addr().map_err(|e| e.to_string())?;
    Ok(Some((l, a)))
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
