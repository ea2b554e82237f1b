//! `ferrocast`: the server binary. Start-up, flags, the runtime, shutdown.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ferrocast::config::{self, Config};

#[derive(Debug, Parser)]
#[command(
    name = "ferrocast",
    version,
    about = "A live-streaming media server: RTMP in; RTMP, HTTP-FLV, WS-FLV, HTTP-TS and HLS out"
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
    /// RTMPS listen address (overrides rtmp.tls_listen; needs [tls] cert and key).
    #[arg(long, value_name = "ADDR")]
    rtmps: Option<String>,
    /// HTTPS/WSS listen address (overrides http.tls_listen; needs [tls] cert and key).
    #[arg(long, value_name = "ADDR")]
    https: Option<String>,
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
    match runtime.block_on(ferrocast::serve(config, args.config.clone())) {
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
    if let Some(a) = &args.rtmps {
        config.rtmp.tls_listen = a.clone();
    }
    if let Some(a) = &args.https {
        config.http.tls_listen = a.clone();
    }
    if let Some(d) = &args.data_dir {
        config.data_dir = d.clone();
    }
    config.validate()?;
    Ok(config)
}
