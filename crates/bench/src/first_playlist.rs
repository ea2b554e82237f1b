//! `ferrocast-bench first-playlist`: how long after a publisher starts its HLS
//! playlist becomes playable.
//!
//! The publisher is a command of the caller's (`-- ffmpeg -re ...`): the clock starts
//! just before it is spawned, so the figure includes the publisher's own start-up
//! and connect, as a user would see it. The playlist is then requested every
//! `interval` (each poll starts `interval` after the previous one started, or right
//! after it if it took longer); it is playable at the first HTTP 200 that lists at
//! least one segment, and that segment is then downloaded (it must answer 200).
//! The publisher is killed when the run ends.

use std::process::Stdio;
use std::time::Duration;

use serde::Serialize;
use tokio::process::Command;
use tokio::time::{sleep_until, Instant};

use crate::http::{HttpConn, HttpUrl};
use crate::playlist;
use crate::ramp::{stopped, Stop};
use crate::stats::round;

pub struct FirstPlaylistPlan {
    pub url: String,
    pub http: HttpUrl,
    pub interval: Duration,
    pub timeout: Duration,
    pub command: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct FirstPlaylistReport {
    pub url: String,
    pub command: String,
    pub interval_ms: f64,
    /// From spawning the publisher to the first playlist listing a segment.
    pub playlist_ms: Option<f64>,
    /// ... and to that segment downloaded (HTTP 200, whole body).
    pub first_segment_ms: Option<f64>,
    pub polls: u64,
    /// Polls answered 404 (no playlist yet) and other statuses or errors.
    pub polls_not_found: u64,
    pub polls_failed: u64,
    pub target_duration_s: Option<u64>,
    pub first_segment_duration_s: Option<f64>,
    pub first_segment_bytes: Option<u64>,
    pub error: Option<String>,
}

pub async fn run(plan: FirstPlaylistPlan, mut stop: Stop) -> FirstPlaylistReport {
    let mut report = FirstPlaylistReport {
        url: plan.url.clone(),
        command: plan.command.join(" "),
        interval_ms: plan.interval.as_secs_f64() * 1000.0,
        playlist_ms: None,
        first_segment_ms: None,
        polls: 0,
        polls_not_found: 0,
        polls_failed: 0,
        target_duration_s: None,
        first_segment_duration_s: None,
        first_segment_bytes: None,
        error: None,
    };
    let ms = |since: Instant| round(since.elapsed().as_secs_f64() * 1000.0, 1);
    let start = Instant::now();
    let mut child = match Command::new(&plan.command[0])
        .args(&plan.command[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            report.error = Some(format!("cannot start `{}`: {e}", plan.command[0]));
            return report;
        }
    };
    let give_up = start + plan.timeout;
    let mut conn = HttpConn::new(&plan.http);
    loop {
        let poll_start = Instant::now();
        if poll_start >= give_up {
            report.error = Some(format!("no playable playlist within {:?}", plan.timeout));
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            report.error = Some(format!("the publisher exited first ({status})"));
            break;
        }
        report.polls += 1;
        match conn.get(&plan.http.path).await {
            Ok(r) if r.status == 200 => match playlist::parse(&String::from_utf8_lossy(&r.body)) {
                Ok(list) if !list.entries.is_empty() => {
                    report.playlist_ms = Some(ms(start));
                    report.target_duration_s = Some(list.target_duration_s);
                    let first = &list.entries[0];
                    report.first_segment_duration_s = Some(first.duration_s);
                    let got = match plan.http.join(&first.uri) {
                        Ok(path) => conn.get(&path).await,
                        Err(e) => Err(e),
                    };
                    match got {
                        Ok(r) if r.status == 200 => {
                            report.first_segment_ms = Some(ms(start));
                            report.first_segment_bytes = Some(r.body.len() as u64);
                        }
                        Ok(r) => report.error = Some(format!("first segment: HTTP {}", r.status)),
                        Err(e) => report.error = Some(format!("first segment: {e}")),
                    }
                    break;
                }
                Ok(_) => report.polls_not_found += 1,
                Err(_) => report.polls_failed += 1,
            },
            Ok(r) if r.status == 404 => report.polls_not_found += 1,
            Ok(_) | Err(_) => report.polls_failed += 1,
        }
        tokio::select! {
            biased;
            _ = stopped(&mut stop) => {
                report.error = Some("stopped".into());
                break;
            }
            _ = sleep_until(poll_start + plan.interval) => {}
        }
    }
    let _ = child.kill().await;
    report
}
