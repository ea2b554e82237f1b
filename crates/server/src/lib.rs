//! ferrocast: a live-streaming media server. This crate is the `ferrocast` binary's
//! body: the tokio glue that drives the sans-IO protocol code of `ferrocast-proto`.
//! This page is the map; each module's own doc says what it decided and why.
//!
//! # Data flow
//! Media moves one way, and every frame exists once:
//!
//! ```text
//! publisher socket ── rtmp::conn ── proto ServerSession ──┐      (RTMP publish)
//! remote rtmp(s)://, rtsp:// ── proxy::{rtmp, rtsp} ──────┤      (pull proxies)
//! ffmpeg renditions ── back in through rtmp::conn ────────┤      (transcode)
//!                                                         ▼
//!                        hub::Stream (GOP cache + bounded broadcast ring of Arc<Packet>)
//!                                                         │
//!   ┌──────────────┬───────────────┬──────────────┬───────┴────────┬─────────────┐
//!   ▼              ▼               ▼              ▼                ▼             ▼
//! RTMP players  HTTP-FLV/WS-FLV  HTTP-TS       live_hls muxer   record (MP4,  transcode
//! (rtmp::conn)  (http::live)     (http::live)  -> HlsStore      HLS files)    (ffmpeg plays
//!                                               -> http (HLS)                 it over RTMP),
//!                                                                             proxy pushers
//! ```
//!
//! A publisher hands each message to [`hub::Stream`], which stores it once as an
//! `Arc<Packet>` (payload: the publisher's `Bytes`) and sends it into a bounded
//! broadcast ring. Every subscriber, whether a socket or an internal service, reads
//! the same packets with its own cursor. Wire bytes are built once per stream, not
//! per viewer: a packet caches its RTMP chunks and its FLV tag on first use, and HLS
//! segments are muxed once by one task per stream. (One exception, for now: each
//! HTTP-TS viewer runs its own MPEG-TS muxer.) A new subscriber gets the GOP
//! cache (metadata, sequence headers, frames since the last keyframe) and then the
//! ring, taken under one lock so there is no gap and no duplicate.
//!
//! The publisher never waits for a viewer: a send into the ring cannot block. A
//! viewer overrun by the ring skips to the next keyframe; one that stays behind (or
//! whose socket takes no write) for `hub.slow_player_timeout_ms` is disconnected.
//! Internal subscribers (HLS muxer, recordings) are never disconnected, only skip.
//! Each socket viewer writes its batch in one vectored write at most once per
//! `hub.flush_interval_ms` (fan-out CPU is kernel time per write).
//!
//! # Who spawns what
//! * [`server::serve`] binds the listeners, builds the services on one [`hub::Hub`]
//!   and spawns two tasks: the RTMP listener ([`rtmp::serve`]) and the HTTP server
//!   ([`http::serve::serve`]: hyper's HTTP/1.1 with its timers, serving
//!   [`http::router`] plus the API routes of [`api::routes`]). With TLS configured,
//!   two more serve the same on TLS: the RTMPS listener ([`rtmp::serve_with`], whose
//!   connection tasks make the TLS handshake) and the HTTPS server (the same routes
//!   on an [`http::serve::Https`] listener, whose accept task spawns one handshake
//!   task per connection); and one task reloads the certificate on SIGHUP
//!   ([`tls::TlsCerts::reload_on_sighup`]).
//! * The RTMP listener spawns one task per connection ([`rtmp::conn`]) in a
//!   `JoinSet`, capped by a semaphore (`rtmp.max_connections`) and, when set, per
//!   peer address (`rtmp.max_connections_per_ip`). The HTTP server spawns one task
//!   per HTTP connection, capped by `http.max_connections`; a live FLV/TS viewer's
//!   response body is a stream that reads its hub subscription.
//! * The hub's new-stream hook spawns, per stream: the live HLS muxer task
//!   ([`live_hls::attach`]), the recording tasks of auto-recorded apps
//!   ([`record::Recorder::attach`]) and the transcode supervisor of transcoded apps
//!   ([`transcode::Transcoder::attach`]). A publisher that leaves spawns a
//!   continue_push timer that ends the stream unless a publisher returns.
//! * The proxy manager spawns one task per pull or push proxy
//!   ([`proxy::manager::ProxyManager`]); the transcoder one supervisor task per
//!   ffmpeg child; the recorder one task per recording (and one per MP4 file being
//!   finished at a rotation), a retention task, and at start-up a blocking task
//!   that finishes the MP4 files a crash left unfinished
//!   ([`record::Recorder::start_maintenance`]).
//! * The webhooks ([`hook::Hooks::start`]) spawn a queue dispatcher (which runs at
//!   most four senders at once), a keepalive timer, and one watcher per stream; a
//!   gate (on_publish, on_play) runs in the task of the client it decides on.
//!
//! # Hooks the hub offers
//! The hub knows none of the services above; they attach themselves at start-up:
//! * [`hub::Hub::add_on_new_stream`]: called outside the hub's locks for each new
//!   stream (live HLS, recorder, transcoder, and the webhooks' per-stream watcher,
//!   which sends on_stream_changed and on_stream_none_reader).
//! * [`hub::Hub::add_on_stream_end`]: called outside the hub's locks when a stream
//!   ended for good (the webhooks' watcher then sends the unregistrations).
//! * [`hub::Hub::add_on_demand`]: a player started waiting for a stream that is not
//!   published (on-demand pull proxies).
//! * [`hub::Hub::register_session`]: every client connection is listed (API
//!   `getAllSession`, `kick_session`); the guard unlists it when dropped.
//! * A player waits for a stream up to `general.max_stream_wait_ms` on the hub's
//!   publish counter (a `watch`), and a stream's `kicked` watch tells its publisher
//!   to leave (`close_streams`).
//!
//! # Access control
//! Every client that asks for a stream is asked about first: [`auth::Auth::publish`]
//! and [`auth::Auth::play`] apply the app's policy (open, a signed URL, the gate
//! hooks of [`hook::Hooks`]) before the hub sees the client; a refusal closes that
//! one session (RTMP `NetStream.*.Unauthorized`, HTTP 403) with the reason in the
//! log. Internal subscribers are never asked. HLS viewers have no connection, so
//! [`http::hls_session`] makes one: a token in the playlist URIs, a hub session and a
//! reader count per viewer. A publish the gate approved carries its options
//! ([`hub::PublishOptions`]: HLS, MP4, continue_push) into the stream, and a proven
//! publisher may take a live stream over ([`hub::Hub::publish_with`]).
//!
//! # Locks
//! Every lock here is a `std::sync` `Mutex` or `RwLock`, held for a few field updates
//! and never across an `.await` (so a tokio lock's queueing and cost buy nothing, and
//! a std lock cannot be held by a task parked on I/O). The important ones:
//! * `Hub::streams`: the registry map; taken to find, create or remove a stream.
//! * `Stream::state`: publisher id and generation, GOP cache, timeline, media info.
//!   A publish writes the GOP cache and sends into the ring under it, and a new
//!   subscriber copies the GOP cache and subscribes to the ring under it: that is
//!   what makes the hand-over gapless. Never take `Hub::streams` while holding it.
//! * Per service: the HLS store's segmenter per stream, the recorder's and proxy
//!   manager's and transcoder's job tables, the session registry.
//!
//! Two locks are tokio's, because they are held across an await on purpose: the API's
//! `setServerConfig` serializes its read-modify-write of the config file, and
//! `getSnap` holds a URL's slot while its ffmpeg runs so one URL runs one ffmpeg.
//!
//! # Layering
//! The top-level modules form a DAG; a module imports only modules above it in this
//! list (`scripts/check-layers.sh` checks it in the test script):
//! 1. [`config`]: settings and the value types more than one module validates
//!    (allow-lists, URL rules, the default vhost). Imports nothing of ours.
//! 2. [`backoff`] (the reconnection delay rule), [`redact`] (passwords out of URLs
//!    in logs and answers), [`files`] (crash-safe small files) and [`tls`] (the
//!    RTMPS/HTTPS certificate, its SIGHUP reload, the HTTPS handshakes): small rules
//!    several modules share. Import nothing of ours.
//! 3. [`hub`]: streams, fan-out, sessions.
//! 4. [`metrics`]: Prometheus counters and the scrape-time view of the hub; then
//!    [`hook`] (the ZLMediaKit webhooks: their JSON shapes live there, as the API's
//!    live in `api/`; gates before a publish or play, events after); then [`auth`]
//!    (who may publish and play: policies, signatures, the gates).
//! 5. Inputs and outputs: [`rtmp`], [`live_hls`], [`record`]; then [`http`] (serves
//!    live HLS), [`proxy`] (restarts live HLS and recordings of pulled streams); then
//!    [`transcode`] (publishes through the RTMP listener's address, proxies' URLs).
//! 6. [`api`]: the ZLMediaKit HTTP API. With [`hook`], the only place that knows
//!    ZLMediaKit's wire format (codes -100/-300/-400/-500/-1, JSON shapes; the
//!    originType and codec_id numbers are defined once, in `hook`); domain modules
//!    return typed values and `thiserror` errors, mapped here.
//! 7. [`server`]: the assembly. Nothing imports it.
//!
//! # Shutdown
//! On SIGINT or SIGTERM, [`server::serve`] runs everything under one deadline (the
//! process is gone within 5 s, or `record.finish_grace_ms` + 1 s when longer): recordings are first closed to new starts (so a proxy
//! or a new stream cannot begin a file that nobody finishes), then, together, the
//! recordings are finished (their MP4 index written), proxies and ffmpeg children
//! are stopped, and the listeners stop accepting while every session ends. Last,
//! within the same 5 s, the webhooks send what was queued (unregistrations, the
//! last on_record_mp4) and on_server_exited ([`hook::Hooks::shutdown`]).
//!
//! # Errors and panics
//! Every byte from the network is hostile. Bad input is an `Err` from the proto
//! layer that closes that one session with a log line naming the peer and the fault;
//! it never panics. A panic is a bug.

#![forbid(unsafe_code)]
// `pub(crate)` by default: the compiler then reports what nothing uses. Public are
// only `serve` and `config` (the binary's needs) and the modules the in-process
// end-to-end tests drive (`hub`, `rtmp`, `transcode`: tests/transcode_ffmpeg.rs).
#![warn(unreachable_pub)]
// This page is a manual of the crate's internals, meant to be read with
// `cargo doc --document-private-items`; its links to private items are on purpose.
#![allow(rustdoc::private_intra_doc_links)]

mod api;
mod auth;
mod backoff;
pub mod config;
mod files;
mod hook;
mod http;
pub mod hub;
mod live_hls;
mod metrics;
mod proxy;
mod record;
mod redact;
pub mod rtmp;
mod server;
mod tls;
pub mod transcode;

pub use server::serve;
