//! `ferrocast`: the server binary. Start-up, flags, the runtime, shutdown.

mod config;
mod hub;
mod rtmp;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tokio::net::TcpListener;
use tokio::sync::watch;

use config::Config;

/// How long shutdown waits for sessions to end before exiting anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);

#[derive(Debug, Parser)]
#[command(
    name = "ferrocast",
    version,
    about = "A live-streaming media server: RTMP in, RTMP out (HTTP-FLV and HLS next)"
)]
struct Args {
    /// TOML config file; keys not in it keep their defaults (see --print-config).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// RTMP listen address (overrides rtmp.listen).
    #[arg(long, value_name = "ADDR")]
    rtmp: Option<String>,
    /// HTTP listen address (overrides http.listen).
    #[arg(long, value_name = "ADDR")]
    http: Option<String>,
    /// Directory for everything ferrocast writes (overrides data_dir).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    print_config: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match load_config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ferrocast: {e}");
            return ExitCode::from(2);
        }
    };
    if args.print_config {
        print!("{}", config.to_toml());
        return ExitCode::SUCCESS;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.worker_threads())
        .thread_name("ferrocast-worker")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ferrocast: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(args: &Args) -> Result<Config, config::ConfigError> {
    let mut config = Config::load(args.config.as_deref())?;
    if let Some(a) = &args.rtmp {
        config.rtmp.listen = a.clone();
    }
    if let Some(a) = &args.http {
        config.http.listen = a.clone();
    }
    if let Some(d) = &args.data_dir {
        config.data_dir = d.clone();
    }
    config.validate()?;
    Ok(config)
}

async fn serve(config: Config) -> Result<(), String> {
    let rtmp_listener = TcpListener::bind(&config.rtmp.listen)
        .await
        .map_err(|e| format!("cannot listen for RTMP on {}: {e}", config.rtmp.listen))?;
    let rtmp_addr = rtmp_listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(
        rtmp = %rtmp_addr,
        threads = config.worker_threads(),
        data_dir = %config.data_dir.display(),
        version = env!("CARGO_PKG_VERSION"),
        "ferrocast listening"
    );
    let hub = hub::Hub::new(hub::HubConfig::from_config(&config));
    let settings = Arc::new(rtmp::RtmpSettings::from_config(&config));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut rtmp_task = tokio::spawn(rtmp::serve(
        rtmp_listener,
        hub.clone(),
        settings,
        config.rtmp.max_connections,
        stop_rx,
    ));

    let signal = wait_for_signal();
    tokio::select! {
        s = signal => tracing::info!(signal = s, "shutting down: no new connections, ending sessions"),
        r = &mut rtmp_task => return r.map_err(|e| format!("RTMP listener failed: {e}")),
    }
    let _ = stop_tx.send(true);
    if tokio::time::timeout(SHUTDOWN_GRACE, rtmp_task)
        .await
        .is_err()
    {
        tracing::warn!("sessions did not end within {SHUTDOWN_GRACE:?}; exiting anyway");
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
