//! `ferrocast-bench play`: N RTMP players on one stream, and what they received.
//!
//! Each player is one task that owns its socket and session and keeps a handful of
//! counters; nothing is shared between players while the run lasts, so the bench
//! costs one read and a few additions per socket read, not per message. Results are
//! collected from the task handles when the run is over.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ferrocast_proto::flv::{parse_video_tag, VideoPacketKind};
use ferrocast_proto::rtmp::session::{ClientEvent, ClientTarget};
use serde::Serialize;
use tokio::time::{sleep_until, Instant};

use crate::conn::{epoch_ms, Conn, Failure, Input};
use crate::ramp::{spawn_ramped, stopped, Stop, START_TIMEOUT};
use crate::stats::{round, share_at_least, Percentiles, Spread, Tally};

/// What to run, from the command line.
pub struct PlayPlan {
    pub url: String,
    pub addr: SocketAddr,
    pub target: ClientTarget,
    pub players: u32,
    pub duration: Duration,
    pub ramp: f64,
    pub digest: bool,
    pub expect_kbps: Option<f64>,
}

/// What one player saw.
struct PlayerResult {
    /// Set when the player never reached Play.Start.
    failure: Option<Failure>,
    /// Set when the player started and then lost its connection before the end.
    lost: Option<Failure>,
    /// Received StreamEnded (publisher went away) at least once.
    stream_ended: bool,
    bytes_in: u64,
    /// Audio + video + metadata payload bytes.
    payload_bytes: u64,
    first_media: Option<Instant>,
    /// When this player stopped receiving (end of run, failure or disconnect).
    stopped: Instant,
    /// From TCP connect start to the first coded video frame, and its keyframe flag.
    first_video: Option<(Duration, bool)>,
    video_frames: u64,
}

impl PlayerResult {
    fn new() -> PlayerResult {
        PlayerResult {
            failure: None,
            lost: None,
            stream_ended: false,
            bytes_in: 0,
            payload_bytes: 0,
            first_media: None,
            stopped: Instant::now(),
            first_video: None,
            video_frames: 0,
        }
    }

    fn failed(mut self, failure: Failure) -> PlayerResult {
        self.failure = Some(failure);
        self.stopped = Instant::now();
        self
    }

    /// Payload kbit/s from the first media byte to when the player stopped.
    fn throughput_kbps(&self) -> f64 {
        match self.first_media {
            Some(first) => {
                let secs = self.stopped.saturating_duration_since(first).as_secs_f64();
                if secs > 0.0 {
                    self.payload_bytes as f64 * 8.0 / 1000.0 / secs
                } else {
                    0.0
                }
            }
            None => 0.0,
        }
    }
}

/// How far a player got before it started (for the timeout reason).
#[derive(Clone, Copy)]
enum Stage {
    Connecting,
    Handshake,
    Connected,
}

impl Stage {
    fn waiting_for(self) -> &'static str {
        match self {
            Stage::Connecting => "TCP connect",
            Stage::Handshake => "handshake / connect result",
            Stage::Connected => "Play.Start",
        }
    }
}

/// The failure of a player (or publisher) whose start deadline passed.
pub fn start_deadline_failure(stage: &str, run_ended: bool) -> Failure {
    if run_ended {
        Failure::new(
            "not started before the run ended",
            format!("still waiting for {stage} when the run ended"),
        )
    } else {
        Failure::new(
            format!("timeout (no Started within {} s)", START_TIMEOUT.as_secs()),
            format!("still waiting for {stage}"),
        )
    }
}

async fn player(
    index: u32,
    plan: Arc<PlayPlan>,
    t0: std::time::Instant,
    end: Instant,
    mut stop: Stop,
) -> PlayerResult {
    let mut result = PlayerResult::new();
    let connect_start = Instant::now();
    let start_deadline = (connect_start + START_TIMEOUT).min(end);
    let run_ended = start_deadline == end;
    let mut stage = Stage::Connecting;

    let open = Conn::open(
        plan.addr,
        plan.target.clone(),
        plan.digest,
        epoch_ms(t0),
        u64::from(index),
    );
    let mut conn = tokio::select! {
        biased;
        _ = stopped(&mut stop) => {
            return result.failed(Failure::new("not started: interrupted", "stopped while connecting"));
        }
        _ = sleep_until(start_deadline) => {
            return result.failed(start_deadline_failure(stage.waiting_for(), run_ended));
        }
        opened = open => match opened {
            Ok(conn) => conn,
            Err(failure) => return result.failed(failure),
        },
    };
    stage = Stage::Handshake;

    let mut started = false;
    let timer = sleep_until(start_deadline);
    tokio::pin!(timer);
    loop {
        let input = tokio::select! {
            biased;
            _ = stopped(&mut stop) => {
                if !started {
                    result.bytes_in = conn.bytes_in;
                    return result.failed(Failure::new("not started: interrupted", "stopped before Play.Start"));
                }
                break;
            }
            _ = &mut timer => {
                if !started {
                    result.bytes_in = conn.bytes_in;
                    return result.failed(start_deadline_failure(stage.waiting_for(), run_ended));
                }
                break;
            }
            input = conn.read_input() => input,
        };
        let now = Instant::now();
        let failure = match input {
            Ok(Input::Data) => None,
            Ok(Input::Eof) => Some(Failure::new(
                "closed by server",
                if started {
                    "EOF after Play.Start"
                } else {
                    "EOF before Play.Start"
                },
            )),
            Err(failure) => Some(failure),
        };
        if let Some(failure) = failure {
            result.bytes_in = conn.bytes_in;
            if started {
                result.lost = Some(failure);
                result.stopped = now;
                return result;
            }
            return result.failed(failure);
        }

        let mut refusal = None;
        while let Some(event) = conn.session.poll_event() {
            match event {
                ClientEvent::Video { payload, .. } => {
                    result.payload_bytes += payload.len() as u64;
                    result.first_media.get_or_insert(now);
                    if let Ok(h) = parse_video_tag(&payload) {
                        if h.kind == VideoPacketKind::Frame {
                            result.video_frames += 1;
                            if result.first_video.is_none() {
                                result.first_video = Some((now - connect_start, h.keyframe));
                            }
                        }
                    }
                }
                ClientEvent::Audio { payload, .. } | ClientEvent::Metadata { payload, .. } => {
                    result.payload_bytes += payload.len() as u64;
                    result.first_media.get_or_insert(now);
                }
                ClientEvent::Connected => stage = Stage::Connected,
                ClientEvent::Started { .. } => {
                    if !started {
                        started = true;
                        timer.as_mut().reset(end);
                    }
                }
                ClientEvent::Status {
                    level,
                    code,
                    description,
                } => {
                    if !started && level == "error" && refusal.is_none() {
                        refusal = Some(Failure::new(format!("status {code}"), description));
                    }
                }
                ClientEvent::CommandError {
                    command,
                    description,
                } => {
                    if !started && refusal.is_none() {
                        refusal = Some(Failure::new(
                            format!("command error: {command}"),
                            description,
                        ));
                    }
                }
                ClientEvent::StreamEnded => result.stream_ended = true,
            }
        }
        if let Some(failure) = refusal {
            result.bytes_in = conn.bytes_in;
            conn.close().await;
            return result.failed(failure);
        }
        if let Err(e) = conn.flush().await {
            result.bytes_in = conn.bytes_in;
            let failure = Failure::io(&e);
            if started {
                result.lost = Some(failure);
                result.stopped = Instant::now();
                return result;
            }
            return result.failed(failure);
        }
    }
    result.stopped = Instant::now();
    result.bytes_in = conn.bytes_in;
    conn.close().await;
    result
}

#[derive(Debug, Serialize)]
pub struct KeyframeCount {
    /// Every player that got a video frame got a keyframe first (false if none did).
    pub all: bool,
    pub count_keyframe: u64,
    pub count_not: u64,
}

/// The JSON report of a play run; field meanings are in main.rs's module doc.
#[derive(Debug, Serialize)]
pub struct PlayReport {
    pub url: String,
    pub players: u32,
    pub connected: u64,
    pub failed: u64,
    pub failures: BTreeMap<String, u64>,
    pub failure_examples: BTreeMap<String, String>,
    pub duration_s: f64,
    pub bytes_total: u64,
    pub payload_bytes_total: u64,
    pub throughput_kbps: Spread,
    pub throughput_reference_kbps: Option<f64>,
    pub first_video_frame_ms: Percentiles,
    pub first_video_is_keyframe: KeyframeCount,
    pub players_at_ge_90pct: f64,
    pub video_frames: Spread,
    pub disconnected_early: u64,
    pub disconnect_reasons: BTreeMap<String, u64>,
    pub stream_ended: u64,
}

pub async fn run(plan: PlayPlan, mut stop: Stop) -> PlayReport {
    let plan = Arc::new(plan);
    let clock = std::time::Instant::now();
    let t0 = Instant::now();
    let end = t0 + plan.duration;
    let task_stop = stop.clone();
    let (handles, not_started) =
        spawn_ramped(plan.players, plan.ramp, t0, Some(end), &mut stop, |i| {
            player(i, plan.clone(), clock, end, task_stop.clone())
        })
        .await;

    let mut results = Vec::with_capacity(handles.len());
    let mut failures = Tally::default();
    for handle in handles {
        match handle.await {
            Ok(result) => results.push(result),
            Err(e) => failures.add("bench task panicked", &e.to_string()),
        }
    }
    if let Some(ns) = &not_started {
        for _ in 0..ns.count {
            failures.add(ns.reason, ns.reason);
        }
    }
    let last_stop = results.iter().map(|r| r.stopped).max().unwrap_or(t0);
    summarize(
        &plan,
        results,
        failures,
        last_stop.saturating_duration_since(t0),
    )
}

fn summarize(
    plan: &PlayPlan,
    results: Vec<PlayerResult>,
    mut failures: Tally,
    elapsed: Duration,
) -> PlayReport {
    let mut lost = Tally::default();
    let mut throughputs = Vec::with_capacity(results.len());
    let mut frames = Vec::with_capacity(results.len());
    let mut first_video = Vec::with_capacity(results.len());
    let (mut keyframe, mut not_keyframe, mut ended) = (0, 0, 0);
    let (mut bytes_total, mut payload_total) = (0, 0);
    for r in &results {
        bytes_total += r.bytes_in;
        payload_total += r.payload_bytes;
        if let Some(f) = &r.failure {
            failures.add(&f.reason, &f.detail);
            continue;
        }
        if let Some(f) = &r.lost {
            lost.add(&f.reason, &f.detail);
        }
        ended += u64::from(r.stream_ended);
        throughputs.push(r.throughput_kbps());
        frames.push(r.video_frames as f64);
        if let Some((t, key)) = r.first_video {
            first_video.push(t.as_secs_f64() * 1000.0);
            if key {
                keyframe += 1;
            } else {
                not_keyframe += 1;
            }
        }
    }
    let connected = throughputs.len() as u64;
    let throughput_kbps = Spread::of(&mut throughputs, 1);
    let reference = plan.expect_kbps.or(throughput_kbps.median);
    let share = match reference {
        Some(reference) => share_at_least(&throughputs, reference, 0.9, plan.players as usize),
        None => 0.0,
    };
    PlayReport {
        url: plan.url.clone(),
        players: plan.players,
        connected,
        failed: failures.total(),
        failures: failures.counts,
        failure_examples: failures.examples,
        duration_s: round(elapsed.as_secs_f64(), 3),
        bytes_total,
        payload_bytes_total: payload_total,
        throughput_kbps,
        throughput_reference_kbps: reference.map(|r| round(r, 1)),
        first_video_frame_ms: Percentiles::of(&mut first_video, 1),
        first_video_is_keyframe: KeyframeCount {
            all: keyframe > 0 && not_keyframe == 0,
            count_keyframe: keyframe,
            count_not: not_keyframe,
        },
        players_at_ge_90pct: round(share, 4),
        video_frames: Spread::of(&mut frames, 0),
        disconnected_early: lost.total(),
        disconnect_reasons: lost.counts,
        stream_ended: ended,
    }
}
