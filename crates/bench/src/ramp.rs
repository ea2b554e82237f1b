//! Starting connections at a fixed rate, and the stop signal they all watch.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};

/// How long a connection may take from TCP connect to Play.Start / Publish.Start
/// before it counts as failed: long enough for a loaded server to answer, short
/// enough that a wedged one shows up in the report, not as a hung bench.
pub const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Set to `true` once (Ctrl-C); every connection task watches it.
pub type Stop = watch::Receiver<bool>;

/// Resolves once stop was requested. The sender lives until the run ends, so
/// `changed` failing (sender gone) is treated like a stop as well.
pub async fn stopped(stop: &mut Stop) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// Connections that were never started and why.
pub struct NotStarted {
    pub count: u64,
    pub reason: &'static str,
}

/// Spawns `n` tasks, the i-th at `t0 + i / rate` seconds, none at or after `end`
/// and none after a stop. Returns the handles, in index order, and the count of
/// tasks left unstarted.
pub async fn spawn_ramped<R, F, Fut>(
    n: u32,
    rate: f64,
    t0: Instant,
    end: Option<Instant>,
    stop: &mut Stop,
    mut start: F,
) -> (Vec<JoinHandle<R>>, Option<NotStarted>)
where
    R: Send + 'static,
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = R> + Send + 'static,
{
    let mut handles = Vec::with_capacity(n as usize);
    for i in 0..n {
        let at = t0 + Duration::from_secs_f64(f64::from(i) / rate);
        let left = u64::from(n - i);
        if end.is_some_and(|end| at >= end) {
            let reason = "not started: ramp longer than the run";
            return (
                handles,
                Some(NotStarted {
                    count: left,
                    reason,
                }),
            );
        }
        tokio::select! {
            biased;
            _ = stopped(stop) => {
                let reason = "not started: interrupted";
                return (handles, Some(NotStarted { count: left, reason }));
            }
            _ = sleep_until(at) => {}
        }
        handles.push(tokio::spawn(start(i)));
    }
    (handles, None)
}
