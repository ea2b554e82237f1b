//! getSnap: a JPEG of a live stream, taken by ffmpeg (as ZLMediaKit does), cached
//! per URL for `expire_sec`. One ffmpeg per URL at a time: concurrent requests for
//! the same URL wait for the first and share its picture; at most [`MAX_RUNNING`]
//! ffmpegs at once over all URLs. Only network URLs: ffmpeg would read a local file
//! (`file:`, a path, `concat:`, `pipe:`) as readily as a stream.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

/// URLs cached at most; beyond this, stale entries are dropped.
const MAX_ENTRIES: usize = 256;
/// Snapshot ffmpegs running at once; more is refused (each decodes a stream: on a
/// 2-core machine four already cost a core, and the API must not be a way to fork
/// without bound).
const MAX_RUNNING: usize = 4;
/// Largest JPEG accepted from ffmpeg.
const MAX_JPEG: usize = 16 * 1024 * 1024;

type Slot = Arc<tokio::sync::Mutex<Option<(Instant, Bytes)>>>;

pub(super) struct SnapCache {
    slots: Mutex<HashMap<String, Slot>>,
    running: Arc<tokio::sync::Semaphore>,
}

impl Default for SnapCache {
    fn default() -> Self {
        SnapCache {
            slots: Mutex::default(),
            running: Arc::new(tokio::sync::Semaphore::new(MAX_RUNNING)),
        }
    }
}

impl SnapCache {
    /// Returns a JPEG of `url`, taking a new one if the cached one is older than `expire`.
    pub(super) async fn get(
        &self,
        url: &str,
        timeout: Duration,
        expire: Duration,
    ) -> Result<Bytes, String> {
        let scheme_ok = ["rtmp://", "rtsp://", "http://", "https://"]
            .iter()
            .any(|s| {
                url.get(..s.len())
                    .is_some_and(|p| p.eq_ignore_ascii_case(s))
            });
        if !scheme_ok || url.len() > 2048 || url.chars().any(char::is_control) {
            return Err("url must be an rtmp://, rtsp:// or http(s):// URL".into());
        }
        let slot = {
            let mut slots = self.slots.lock().unwrap();
            if slots.len() >= MAX_ENTRIES && !slots.contains_key(url) {
                slots.retain(|_, s| {
                    s.try_lock()
                        .map(|g| g.as_ref().is_some_and(|(t, _)| t.elapsed() < expire))
                        .unwrap_or(true)
                });
                if slots.len() >= MAX_ENTRIES {
                    return Err("too many snapshot URLs in use".into());
                }
            }
            slots.entry(url.to_owned()).or_default().clone()
        };
        let mut cached = slot.lock().await;
        if let Some((at, jpeg)) = cached.as_ref() {
            if at.elapsed() < expire {
                return Ok(jpeg.clone());
            }
        }
        let Ok(_running) = self.running.clone().try_acquire_owned() else {
            return Err(format!(
                "too many snapshots being taken (at most {MAX_RUNNING} at once)"
            ));
        };
        let jpeg = take(url, timeout).await?;
        *cached = Some((Instant::now(), jpeg.clone()));
        Ok(jpeg)
    }
}

async fn take(url: &str, timeout: Duration) -> Result<Bytes, String> {
    let mut cmd = tokio::process::Command::new("ffmpeg");
    cmd.args(["-nostdin", "-hide_banner", "-v", "error", "-i", url])
        .args([
            "-frames:v",
            "1",
            "-q:v",
            "3",
            "-f",
            "image2",
            "-c:v",
            "mjpeg",
            "pipe:1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().map_err(|e| format!("cannot run ffmpeg: {e}"))?;
    let out = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| format!("no picture within {} s", timeout.as_secs()))?
        .map_err(|e| format!("ffmpeg failed: {e}"))?;
    let jpeg = out.stdout;
    if !out.status.success() || jpeg.len() < 4 || jpeg[..2] != [0xFF, 0xD8] || jpeg.len() > MAX_JPEG
    {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or("no picture");
        return Err(format!("ffmpeg could not take a picture: {last}"));
    }
    Ok(Bytes::from(jpeg))
}
