//! The restart delay shared by everything that retries on its own: proxies
//! reconnecting to a remote, ffmpeg children started again. One function, so both
//! back off the same way; it imports nothing from the crate (any layer may use it).

use std::time::Duration;

/// Delay before retry number `attempt` (1, 2, ...): doubling from `base`, at most
/// `max` (and never less than `base`, should `max` be smaller). The doubling stops
/// after 16 steps, so a large attempt count cannot overflow the shift.
pub(crate) fn backoff(base: Duration, max: Duration, attempt: u32) -> Duration {
    let factor = 1u32 << attempt.saturating_sub(1).min(16);
    base.saturating_mul(factor).min(max.max(base))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_maximum() {
        let (b, m) = (Duration::from_millis(1000), Duration::from_millis(10_000));
        let d: Vec<u64> = (1..=6)
            .map(|a| backoff(b, m, a).as_millis() as u64)
            .collect();
        assert_eq!(d, [1000, 2000, 4000, 8000, 10_000, 10_000]);
        assert_eq!(backoff(b, m, 100), m);
        assert_eq!(backoff(b, m, 1000), m);
        assert_eq!(backoff(b, m, 0), b, "attempt 0 is treated as the first");
        assert_eq!(backoff(b, Duration::ZERO, 3), b, "never below base");
    }
}
