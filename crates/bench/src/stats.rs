//! Summary statistics for the JSON reports: min / median / max, nearest-rank
//! percentiles, and the failure tally. Pure functions over collected samples; the
//! bench collects one sample per connection at the end of a run, never per message.

use std::collections::BTreeMap;

use serde::Serialize;

/// Sorts samples in place with a total order (a NaN, which the bench never produces,
/// would sort last instead of panicking).
fn sort(samples: &mut [f64]) {
    samples.sort_by(f64::total_cmp);
}

/// Nearest-rank percentile of sorted samples: the smallest sample such that at least
/// `p` percent of the samples are <= it. `p` is clamped to 0..=100; `None` when there
/// are no samples. Nearest rank (rather than interpolation) always reports a value
/// some connection actually saw, which is what "p95 time to first frame" should mean.
pub fn percentile_sorted(sorted: &[f64], p: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let p = p.clamp(0.0, 100.0);
    let rank = (p / 100.0 * n as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, n) - 1])
}

/// Median of sorted samples: the middle one, or the mean of the two middle ones
/// when the count is even.
pub fn median_sorted(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// Rounds for the report: nobody needs nanosecond digits in a kbps figure.
pub fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// `{"min", "median", "max"}`; all `null` when there were no samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    pub min: Option<f64>,
    pub median: Option<f64>,
    pub max: Option<f64>,
}

impl Spread {
    /// Summarises `samples` (reordered in place), rounded to `decimals`.
    pub fn of(samples: &mut [f64], decimals: i32) -> Spread {
        sort(samples);
        let r = |v: Option<f64>| v.map(|v| round(v, decimals));
        Spread {
            min: r(samples.first().copied()),
            median: r(median_sorted(samples)),
            max: r(samples.last().copied()),
        }
    }
}

/// `{"p50", "p95", "max"}`; all `null` when there were no samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub max: Option<f64>,
}

impl Percentiles {
    /// Summarises `samples` (reordered in place), rounded to `decimals`.
    pub fn of(samples: &mut [f64], decimals: i32) -> Percentiles {
        sort(samples);
        let r = |v: Option<f64>| v.map(|v| round(v, decimals));
        Percentiles {
            p50: r(percentile_sorted(samples, 50.0)),
            p95: r(percentile_sorted(samples, 95.0)),
            max: r(samples.last().copied()),
        }
    }
}

/// `{"min", "p50", "p95", "max"}` (nearest rank); all `null` without samples. For
/// latencies, where the best case matters as much as the tail.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub min: Option<f64>,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub max: Option<f64>,
}

impl Summary {
    /// Summarises `samples` (reordered in place), rounded to `decimals`.
    pub fn of(samples: &mut [f64], decimals: i32) -> Summary {
        sort(samples);
        let r = |v: Option<f64>| v.map(|v| round(v, decimals));
        Summary {
            min: r(samples.first().copied()),
            p50: r(percentile_sorted(samples, 50.0)),
            p95: r(percentile_sorted(samples, 95.0)),
            max: r(samples.last().copied()),
        }
    }
}

/// Share of `total` connections whose sample is at least `fraction` x `reference`.
/// Connections without a sample (they failed) and samples of 0 (nothing received)
/// count as below, so a run where nothing flowed scores 0, not 1. 0 when `total` is 0.
pub fn share_at_least(samples: &[f64], reference: f64, fraction: f64, total: usize) -> f64 {
    if total == 0 {
        return 0.0;
    }
    let threshold = reference * fraction;
    let hits = samples
        .iter()
        .filter(|&&s| s > 0.0 && s >= threshold)
        .count();
    hits as f64 / total as f64
}

/// Counts of named reasons (failures, early disconnects), with the first detailed
/// message seen for each so a run's stderr need not be read to know what happened.
#[derive(Debug, Default)]
pub struct Tally {
    pub counts: BTreeMap<String, u64>,
    pub examples: BTreeMap<String, String>,
}

impl Tally {
    pub fn add(&mut self, reason: &str, detail: &str) {
        *self.counts.entry(reason.to_owned()).or_default() += 1;
        self.examples
            .entry(reason.to_owned())
            .or_insert_with(|| detail.to_owned());
    }

    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile_sorted(&v, 50.0), Some(50.0));
        assert_eq!(percentile_sorted(&v, 95.0), Some(95.0));
        assert_eq!(percentile_sorted(&v, 99.0), Some(99.0));
        assert_eq!(percentile_sorted(&v, 100.0), Some(100.0));
        assert_eq!(percentile_sorted(&v, 0.0), Some(1.0));
        assert_eq!(percentile_sorted(&v, 0.5), Some(1.0));
        assert_eq!(percentile_sorted(&v, 150.0), Some(100.0));
        assert_eq!(percentile_sorted(&v, -3.0), Some(1.0));

        // Ten samples: p95 needs rank ceil(9.5) = 10, the largest.
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile_sorted(&v, 95.0), Some(10.0));
        assert_eq!(percentile_sorted(&v, 50.0), Some(5.0));
        assert_eq!(percentile_sorted(&v, 90.0), Some(9.0));
        assert_eq!(percentile_sorted(&v, 91.0), Some(10.0));

        assert_eq!(percentile_sorted(&[7.0], 50.0), Some(7.0));
        assert_eq!(percentile_sorted(&[7.0], 95.0), Some(7.0));
        assert_eq!(percentile_sorted(&[], 50.0), None);
    }

    #[test]
    fn median_odd_even_empty() {
        assert_eq!(median_sorted(&[]), None);
        assert_eq!(median_sorted(&[3.0]), Some(3.0));
        assert_eq!(median_sorted(&[1.0, 3.0]), Some(2.0));
        assert_eq!(median_sorted(&[1.0, 2.0, 10.0]), Some(2.0));
        assert_eq!(median_sorted(&[1.0, 2.0, 4.0, 10.0]), Some(3.0));
    }

    #[test]
    fn spread_sorts_and_rounds() {
        let mut v = vec![5.0, 1.04, 3.0, 2000.26];
        assert_eq!(
            Spread::of(&mut v, 1),
            Spread {
                min: Some(1.0),
                median: Some(4.0),
                max: Some(2000.3)
            }
        );
        assert_eq!(v, vec![1.04, 3.0, 5.0, 2000.26]);
        assert_eq!(
            Spread::of(&mut [], 1),
            Spread {
                min: None,
                median: None,
                max: None
            }
        );
    }

    #[test]
    fn percentiles_of_unsorted() {
        let mut v: Vec<f64> = (1..=20).rev().map(|x| f64::from(x) * 10.0).collect();
        assert_eq!(
            Percentiles::of(&mut v, 0),
            Percentiles {
                p50: Some(100.0),
                p95: Some(190.0),
                max: Some(200.0)
            }
        );
        // A NaN does not panic the sort; it sorts last.
        let mut v = vec![f64::NAN, 1.0, 2.0];
        let p = Percentiles::of(&mut v, 0);
        assert_eq!(p.p50, Some(2.0));
        assert!(p.max.unwrap().is_nan());
    }

    #[test]
    fn summary_has_min_and_percentiles() {
        let mut v: Vec<f64> = (1..=20).rev().map(f64::from).collect();
        assert_eq!(
            Summary::of(&mut v, 0),
            Summary {
                min: Some(1.0),
                p50: Some(10.0),
                p95: Some(19.0),
                max: Some(20.0)
            }
        );
        assert_eq!(Summary::of(&mut [], 1).p50, None);
    }

    #[test]
    fn share_counts_failed_as_below() {
        let samples = [2000.0, 1900.0, 1800.0, 1700.0];
        // 0.9 x 2000 = 1800: three of four samples, out of five connections.
        assert_eq!(share_at_least(&samples, 2000.0, 0.9, 5), 0.6);
        assert_eq!(share_at_least(&samples, 2000.0, 0.9, 4), 0.75);
        assert_eq!(share_at_least(&[], 0.0, 0.9, 0), 0.0);
        // Nothing received: the median reference is 0, yet nobody is served.
        assert_eq!(share_at_least(&[0.0, 0.0], 0.0, 0.9, 2), 0.0);
        assert_eq!(share_at_least(&[0.0, 5.0, 6.0], 5.0, 0.9, 3), 2.0 / 3.0);
    }

    #[test]
    fn tally_keeps_first_example() {
        let mut t = Tally::default();
        t.add("connect refused", "first");
        t.add("connect refused", "second");
        t.add("timeout", "x");
        assert_eq!(t.total(), 3);
        assert_eq!(t.counts["connect refused"], 2);
        assert_eq!(t.examples["connect refused"], "first");
    }
}
