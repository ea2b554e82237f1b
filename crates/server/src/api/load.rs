//! getThreadsLoad: per worker thread, the share of the last second it spent busy
//! (tokio's worker busy-time counters) and the scheduling delay of a probe task
//! (the time a freshly spawned task waits before it runs: the same for all workers,
//! since tokio does not pin tasks to workers).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub(super) struct ThreadLoad {
    /// Percent of the sampling interval spent busy, 0-100.
    pub load: u32,
    /// Milliseconds a new task waited before it ran.
    pub delay: u64,
}

pub(super) type Loads = Arc<Mutex<Vec<ThreadLoad>>>;

/// Starts the sampler (once a second) and returns its latest figures.
pub(super) fn start_sampler() -> Loads {
    let loads: Loads = Arc::default();
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return loads;
    };
    let out = loads.clone();
    handle.spawn(async move {
        let metrics = tokio::runtime::Handle::current().metrics();
        let n = metrics.num_workers();
        let mut prev: Vec<Duration> = (0..n)
            .map(|i| metrics.worker_total_busy_duration(i))
            .collect();
        let mut at = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let sent = Instant::now();
            let delay = tokio::spawn(async move { sent.elapsed() })
                .await
                .unwrap_or_default();
            let now = Instant::now();
            let wall = now.duration_since(at).as_secs_f64().max(1e-3);
            at = now;
            let mut v = Vec::with_capacity(n);
            for (i, p) in prev.iter_mut().enumerate() {
                let busy = metrics.worker_total_busy_duration(i);
                let d = busy.saturating_sub(*p).as_secs_f64();
                *p = busy;
                v.push(ThreadLoad {
                    load: ((d / wall) * 100.0).round().clamp(0.0, 100.0) as u32,
                    delay: delay.as_millis() as u64,
                });
            }
            *out.lock().unwrap() = v;
        }
    });
    loads
}
