//! The ffmpeg children: one supervisor task per job (a transcode or an ffmpeg
//! source) that runs ffmpeg ([`run_ffmpeg`]), watches its source, and restarts it
//! with back-off when it dies. The job's state ([`Job`]) is what the API lists; this
//! file owns every child process, and no child outlives its job.
//!
//! # Restarts and the renditions' streams
//! A rendition is restarted with back-off when ffmpeg dies while the source still
//! publishes. Its streams are then closed at once instead of waiting for
//! continue_push: a publisher that takes a stream over continues its timeline just
//! after the last message, which would move the rendition's clock away from the
//! source's; a fresh stream keeps ffmpeg's (the source's) timestamps.
//!
//! # When a transcode ends
//! A transcode ends, and frees its `max_concurrent` slot, when the source ends or has
//! not been publishing for [`SOURCE_GRACE`]. One started by the per-app hook
//! (`transcode.apps`) instead waits while the stream is in its continue_push window,
//! and resumes with the publisher. An ffmpeg source is restarted until it is deleted.
//!
//! # Children and their output
//! ffmpeg's stderr goes to `tracing::debug!` (target `ferrocast::transcode`, with the
//! stream or job key), its exit to info (status 0) or warn. Children are spawned with
//! `kill_on_drop`, and a stop kills and reaps the child before the job is gone.

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{ChildStderr, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::args::{plan_renditions, rtmp_url, transcode_args, Rendition};
use super::transcoder::{Inner, Source, Transcode, Trigger};
use crate::backoff::backoff;
use crate::config::TranscodeConfig;
use crate::hub::{Hub, StreamKey};

/// A source that has not been publishing for this long (a publisher gone, the stream
pub const SOURCE_GRACE: Duration = Duration::from_secs(2);
/// How long a new source may take to send its video sequence header (its size tells
/// which rungs to make) before the transcode goes on without it.
const SOURCE_INFO_WAIT: Duration = Duration::from_secs(5);
/// How often the source and the child are looked at.
pub(super) const POLL: Duration = Duration::from_millis(100);
/// A child that ran this long was fine: its next failure restarts it after the
/// initial delay again, not the last, doubled one.
const STABLE_RUN: Duration = Duration::from_secs(30);
/// After ffmpeg exits, how long to wait for the server to notice that its rendition
/// publishers are gone before closing those streams.
const RELEASE_WAIT: Duration = Duration::from_secs(1);
/// ffmpeg gives up on an input that delivers no data for this long (its
/// The longest stderr line kept as a job's last error.
const MAX_ERROR_LEN: usize = 400;

/// The delay before restart number `attempt` of a child.
fn restart_delay(config: &TranscodeConfig, attempt: u32) -> Duration {
    backoff(
        Duration::from_millis(config.restart_delay_ms),
        Duration::from_millis(config.restart_max_delay_ms),
        attempt,
    )
}

/// What a supervised ffmpeg is doing, as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    /// The source is not publishing yet (or, for an app's transcode, not again), or
    /// its video size is not known yet.
    WaitingForSource,
    /// ffmpeg is running.
    Running,
    /// ffmpeg died; it is started again after the back-off delay.
    Restarting,
    /// The source is not taller than any rung: nothing to make.
    Idle,
    Stopped,
}

impl JobStatus {
    pub fn label(self) -> &'static str {
        match self {
            JobStatus::WaitingForSource => "waiting for the source",
            JobStatus::Running => "running",
            JobStatus::Restarting => "restarting",
            JobStatus::Idle => "idle",
            JobStatus::Stopped => "stopped",
        }
    }
}

/// The mutable part of a job, shared with the API.
#[derive(Debug)]
pub(super) struct RunState {
    pub(super) status: JobStatus,
    pub(super) pid: Option<u32>,
    pub(super) restarts: u32,
    pub(super) last_error: Option<String>,
    /// The renditions of the current (or last) run.
    pub(super) renditions: Vec<Rendition>,
}

impl RunState {
    fn new(status: JobStatus) -> Self {
        RunState {
            status,
            pid: None,
            restarts: 0,
            last_error: None,
            renditions: Vec::new(),
        }
    }
}

/// A supervised ffmpeg: a transcode or an ffmpeg source.
pub(super) struct Job {
    pub(super) state: Mutex<RunState>,
    pub(super) stop: watch::Sender<bool>,
    pub(super) task: Mutex<Option<JoinHandle<()>>>,
    /// Set when the current child printed its `Output #` header: its output is open
    /// and the first packets are written.
    pub(super) output_opened: Arc<AtomicBool>,
}

impl Job {
    pub(super) fn new(status: JobStatus) -> Self {
        Job {
            state: Mutex::new(RunState::new(status)),
            stop: watch::channel(false).0,
            task: Mutex::new(None),
            output_opened: Arc::new(AtomicBool::new(false)),
        }
    }

    pub(super) fn update(&self, f: impl FnOnce(&mut RunState)) {
        f(&mut self.state.lock().unwrap());
    }

    /// Asks the supervisor to end and waits for it (child killed and reaped).
    pub(super) async fn stop_and_wait(&self) {
        self.stop.send_replace(true);
        let task = self.task.lock().unwrap().take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// Why a child run ended.
#[derive(Debug)]
enum Exit {
    /// Stop requested; the child was killed and reaped.
    Stopped,
    /// The watch said the run is pointless (the source left); killed and reaped.
    Abandoned,
    /// The child exited by itself: a description for the API.
    Exited { message: String },
}

/// Runs one ffmpeg child to its end: its stderr lines to debug logs, `job`'s pid and
/// status kept up to date. `keep_going` is asked every [`POLL`]; false kills the child.
async fn run_ffmpeg(
    program: &str,
    args: &[String],
    label: &str,
    job: &Job,
    stop: &mut watch::Receiver<bool>,
    mut keep_going: impl FnMut() -> bool,
) -> Exit {
    job.output_opened.store(false, Ordering::Relaxed);
    let spawned = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            return Exit::Exited {
                message: format!("cannot run {program}: {e}"),
            }
        }
    };
    let pid = child.id();
    job.update(|s| {
        s.pid = pid;
        s.status = JobStatus::Running;
    });
    tracing::info!(stream = label, pid, "ffmpeg started");
    tracing::debug!(stream = label, command = %format!("{program} {}", args.join(" ")), "ffmpeg command");
    let stderr = child
        .stderr
        .take()
        .map(|e| tokio::spawn(log_stderr(e, label.to_owned(), job.output_opened.clone())));
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ended = loop {
        tokio::select! {
            status = child.wait() => break Ok(status),
            _ = stop.wait_for(|s| *s) => break Err(Exit::Stopped),
            _ = tick.tick() => {
                if !keep_going() {
                    break Err(Exit::Abandoned);
                }
            }
        }
    };
    let status = match ended {
        Ok(status) => status,
        Err(exit) => {
            let _ = child.start_kill();
            let _ = child.wait().await;
            job.update(|s| s.pid = None);
            tracing::info!(stream = label, pid, "ffmpeg stopped");
            return exit;
        }
    };
    job.update(|s| s.pid = None);
    // ffmpeg has exited, so its stderr is at its end (or about to be).
    let last = match stderr {
        Some(h) => tokio::time::timeout(Duration::from_secs(1), h)
            .await
            .ok()
            .and_then(Result::ok)
            .flatten(),
        None => None,
    };
    let (status_text, success) = match &status {
        Ok(s) => (s.to_string(), s.success()),
        Err(e) => (format!("wait failed: {e}"), false),
    };
    let message = match last {
        Some(line) => format!("ffmpeg {status_text}: {line}"),
        None => format!("ffmpeg {status_text}"),
    };
    if success {
        tracing::info!(stream = label, pid, "ffmpeg exited");
    } else {
        tracing::warn!(stream = label, pid, error = %message, "ffmpeg failed");
    }
    Exit::Exited { message }
}

/// Logs ffmpeg's stderr lines; the last non-empty one is returned (for the API's
/// last_error). Sets `opened` on the `Output #` header.
async fn log_stderr(stderr: ChildStderr, label: String, opened: Arc<AtomicBool>) -> Option<String> {
    let mut reader = BufReader::new(stderr);
    let mut buf = Vec::new();
    let mut last = None;
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return last,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf);
        for part in line.split(['\r', '\n']) {
            let part = part.trim_end();
            if part.is_empty() {
                continue;
            }
            tracing::debug!(target: "ferrocast::transcode", stream = %label, "ffmpeg: {part}");
            if part.starts_with("Output #") {
                opened.store(true, Ordering::Relaxed);
            }
            let mut kept = part.trim().to_owned();
            if kept.len() > MAX_ERROR_LEN {
                let mut end = MAX_ERROR_LEN;
                while !kept.is_char_boundary(end) {
                    end -= 1;
                }
                kept.truncate(end);
            }
            last = Some(kept);
        }
    }
}

/// Tells when a source has been away for too long: gone from the hub, or not
/// publishing for more than [`SOURCE_GRACE`].
struct SourceWatch {
    away_since: Option<Instant>,
}

impl SourceWatch {
    fn new() -> Self {
        SourceWatch { away_since: None }
    }

    fn alive(&mut self, hub: &Hub, key: &StreamKey) -> bool {
        match hub.find(key) {
            None => false,
            Some(s) if s.is_publishing() => {
                self.away_since = None;
                true
            }
            Some(_) => self.away_since.get_or_insert_with(Instant::now).elapsed() <= SOURCE_GRACE,
        }
    }
}

/// What waiting for the source gave.
enum SourceReady {
    /// Publishing, with this video size (0x0: unknown).
    Ready(u32, u32),
    /// The transcode is over: why.
    Over(&'static str),
}

/// Sleeps `d`; false if a stop was asked meanwhile.
async fn sleep_unless_stopped(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = stop.wait_for(|s| *s) => false,
    }
}

/// Waits for the source to publish and to have told its video size.
async fn wait_for_source(
    inner: &Inner,
    t: &Transcode,
    stop: &mut watch::Receiver<bool>,
) -> SourceReady {
    t.job.update(|s| s.status = JobStatus::WaitingForSource);
    let mut watch = SourceWatch::new();
    let mut info_deadline: Option<Instant> = None;
    loop {
        let Some(stream) = inner.hub.find(&t.key) else {
            return SourceReady::Over("the source ended");
        };
        if stream.is_publishing() {
            watch.away_since = None;
            let video = stream.snapshot().info.video;
            match video {
                Some(v) if v.height > 0 => return SourceReady::Ready(v.width, v.height),
                video => {
                    if Instant::now()
                        >= *info_deadline.get_or_insert_with(|| Instant::now() + SOURCE_INFO_WAIT)
                    {
                        return match video {
                            Some(_) => SourceReady::Ready(0, 0),
                            None => SourceReady::Over("the source has no video track"),
                        };
                    }
                }
            }
        } else {
            info_deadline = None;
            if t.trigger == Trigger::Api && !watch.alive(&inner.hub, &t.key) {
                return SourceReady::Over("the source stopped publishing");
            }
        }
        if !sleep_unless_stopped(POLL, stop).await {
            return SourceReady::Over("stopped");
        }
    }
}

/// Ends the rendition streams left by a dead ffmpeg at once (see the module docs),
/// once the server has seen their publishers go. A stream someone else publishes is
/// left alone.
async fn close_renditions<'a>(hub: &Hub, keys: impl Iterator<Item = &'a StreamKey> + Clone) {
    let deadline = Instant::now() + RELEASE_WAIT;
    while Instant::now() < deadline
        && keys
            .clone()
            .any(|k| hub.find(k).is_some_and(|s| s.is_publishing()))
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for k in keys {
        if let Some(s) = hub.find(k) {
            if !s.is_publishing() {
                hub.close_stream(&s);
            }
        }
    }
}

pub(super) async fn supervise_transcode(inner: Arc<Inner>, t: Arc<Transcode>) {
    let mut stop = t.job.stop.subscribe();
    let label = t.key.to_string();
    let ladder = inner.config.ladders.get(&t.ladder).cloned();
    let mut attempt = 0u32;
    let why = 'run: loop {
        let Some(ladder) = &ladder else {
            break "the ladder is gone";
        };
        let (width, height) = match wait_for_source(&inner, &t, &mut stop).await {
            SourceReady::Ready(w, h) => (w, h),
            SourceReady::Over(why) => break why,
        };
        let renditions = plan_renditions(&t.key, ladder, width, height);
        if renditions.is_empty() {
            // Nothing to make of this source; keep the slot while it publishes, and
            // look again if its size changes (a new publisher).
            t.job.update(|s| {
                s.status = JobStatus::Idle;
                s.renditions.clear();
            });
            tracing::info!(stream = %label, height, ladder = t.ladder, "no rung below the source's height: nothing to transcode");
            let mut watch = SourceWatch::new();
            loop {
                if !sleep_unless_stopped(POLL * 5, &mut stop).await {
                    break 'run "stopped";
                }
                let Some(s) = inner.hub.find(&t.key) else {
                    break 'run "the source ended";
                };
                if t.trigger == Trigger::Api && !watch.alive(&inner.hub, &t.key) {
                    break 'run "the source stopped publishing";
                }
                if s.snapshot().info.video.is_some_and(|v| v.height != height) {
                    continue 'run;
                }
            }
        }
        let input = rtmp_url(inner.rtmp_addr, &t.key);
        let args = transcode_args(&inner.config, &input, &renditions, inner.rtmp_addr);
        t.job.update(|s| s.renditions = renditions.clone());
        let started = Instant::now();
        let mut watch = SourceWatch::new();
        let exit = run_ffmpeg(
            &inner.config.ffmpeg,
            &args,
            &label,
            &t.job,
            &mut stop,
            || watch.alive(&inner.hub, &t.key),
        )
        .await;
        close_renditions(&inner.hub, renditions.iter().map(|r| &r.key)).await;
        match exit {
            Exit::Stopped => break "stopped",
            Exit::Abandoned => {
                if t.trigger == Trigger::Api {
                    break "the source stopped publishing";
                }
                // An app's transcode waits for the publisher to come back.
                continue;
            }
            Exit::Exited { message } => {
                if inner.hub.find(&t.key).is_none() {
                    break "the source ended";
                }
                if started.elapsed() >= STABLE_RUN {
                    attempt = 0;
                }
                attempt += 1;
                let delay = restart_delay(&inner.config, attempt);
                t.job.update(|s| {
                    s.status = JobStatus::Restarting;
                    s.restarts += 1;
                    s.last_error = Some(message);
                });
                tracing::warn!(stream = %label, delay_ms = delay.as_millis() as u64, "restarting ffmpeg");
                if !sleep_unless_stopped(delay, &mut stop).await {
                    break "stopped";
                }
            }
        }
    };
    t.job.update(|s| {
        s.status = JobStatus::Stopped;
        s.pid = None;
    });
    close_renditions(&inner.hub, t.reserved.iter()).await;
    {
        let mut keys = inner.rendition_keys.lock().unwrap();
        for k in &t.reserved {
            keys.remove(k);
        }
    }
    let mut transcodes = inner.transcodes.lock().unwrap();
    if transcodes.get(&t.key).is_some_and(|x| Arc::ptr_eq(x, &t)) {
        transcodes.remove(&t.key);
    }
    tracing::info!(stream = %label, reason = why, "transcode ended");
}

pub(super) async fn supervise_source(inner: Arc<Inner>, s: Arc<Source>) {
    let mut stop = s.job.stop.subscribe();
    let mut attempt = 0u32;
    loop {
        let started = Instant::now();
        let exit = run_ffmpeg(
            &inner.config.ffmpeg,
            &s.args,
            &s.key,
            &s.job,
            &mut stop,
            || true,
        )
        .await;
        let Exit::Exited { message } = exit else {
            break;
        };
        if started.elapsed() >= STABLE_RUN {
            attempt = 0;
        }
        attempt += 1;
        let delay = restart_delay(&inner.config, attempt);
        s.job.update(|st| {
            st.status = JobStatus::Restarting;
            st.restarts += 1;
            st.last_error = Some(message);
        });
        if !sleep_unless_stopped(delay, &mut stop).await {
            break;
        }
    }
    s.job.update(|st| {
        st.status = JobStatus::Stopped;
        st.pid = None;
    });
    tracing::info!(key = s.key, "ffmpeg source ended");
}
