//! `ferrocast`: the server binary. Start-up, flags, the runtime, shutdown; and
//! `ferrocast sign`, which prints signed URLs (the signing itself is
//! `ferrocast_proto::sign`, shared with the server that checks them).
//!
//! The server runs when no subcommand is given, so `ferrocast --config x` keeps
//! working; `--config` is global so `ferrocast sign --config x ...` reads the same file
//! the server does.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use ferrocast::config::{self, Config};
use ferrocast_proto::sign;

#[derive(Debug, Parser)]
#[command(
    name = "ferrocast",
    version,
    about = "A live-streaming media server: RTMP in; RTMP, HTTP-FLV, WS-FLV, HTTP-TS and HLS out"
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// TOML config file; keys not in it keep their defaults (see --print-config).
    #[arg(long, value_name = "FILE", global = true)]
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

#[derive(Debug, Subcommand)]
enum Command {
    /// Print URL with an expiry and a signature by auth.secret (README "Signed URLs").
    Sign {
        /// What the URL may do.
        #[arg(value_enum)]
        action: SignAction,
        /// rtmp(s)://host/app/stream[?query], or an HTTP-FLV, WS-FLV, HTTP-TS, HLS,
        /// master playlist or /record URL.
        url: String,
        /// Seconds from now until the URL expires.
        #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
        ttl: u64,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SignAction {
    Publish,
    Play,
}

/// Shortest `auth.secret` accepted for signing: the config's rule for "signed"
/// policies (`config::validate`), so a URL signed here is one the server can check.
const MIN_SECRET_LEN: usize = 16;

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match load_config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ferrocast: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(Command::Sign { action, url, ttl }) = &args.command {
        return sign_url(&config, *action, url, *ttl);
    }
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

/// `ferrocast sign`: prints `url` signed for `action` until now + `ttl`; exit 2 when
/// there is no usable secret or the URL names no stream.
fn sign_url(config: &Config, action: SignAction, url: &str, ttl: u64) -> ExitCode {
    let secret = config.auth.secret.as_bytes();
    if secret.len() < MIN_SECRET_LEN {
        eprintln!(
            "ferrocast: cannot sign: auth.secret is {} (it must be at least {MIN_SECRET_LEN} \
             characters; set it in the file given with --config)",
            if secret.is_empty() {
                "empty"
            } else {
                "too short"
            }
        );
        return ExitCode::from(2);
    }
    let Some(target) = sign::stream_of_url(url) else {
        eprintln!(
            "ferrocast: cannot sign: {url} names no stream (expected rtmp(s)://host/app/stream, \
             http(s)|ws(s)://host/app/stream.live.flv, .live.ts, /app/stream/hls.m3u8, \
             /app/stream/master.m3u8 or /record/app/stream/...)"
        );
        return ExitCode::from(2);
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let exp = now.saturating_add(ttl);
    let action = match action {
        SignAction::Publish => sign::Action::Publish,
        SignAction::Play => sign::Action::Play,
    };
    let sig = sign::signature(
        secret,
        action,
        target.vhost_or_default(),
        &target.app,
        &target.stream,
        exp,
    );
    println!("{}", sign::with_signature(url, exp, &sig));
    ExitCode::SUCCESS
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
