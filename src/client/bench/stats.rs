//! The bench's statistics: nearest-rank percentiles and per-figure summaries, pure so
//! they can be checked on known inputs.

use serde::Serialize;

/// Nearest-rank percentile of `sorted` (ascending): the smallest value with at least `p`
/// percent of the values at or below it. `None` for no values. Nearest rank (rather than
/// interpolation) keeps every reported figure one that was actually measured.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p.clamp(0.0, 100.0) / 100.0 * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// p50/p90/p99/max (and how many values) of one latency figure, in ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Values summarised.
    pub count: usize,
    /// Median.
    pub p50: Option<u64>,
    /// 90th percentile.
    pub p90: Option<u64>,
    /// 99th percentile.
    pub p99: Option<u64>,
    /// Largest value.
    pub max: Option<u64>,
}

impl Summary {
    /// Summarises `values` (any order).
    pub fn of(values: impl IntoIterator<Item = u64>) -> Self {
        let mut v: Vec<u64> = values.into_iter().collect();
        v.sort_unstable();
        Self {
            count: v.len(),
            p50: percentile(&v, 50.0),
            p90: percentile(&v, 90.0),
            p99: percentile(&v, 99.0),
            max: v.last().copied(),
        }
    }
}

/// Mean of `values`, `None` for none.
pub fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=10).map(|i| i * 100).collect();
        assert_eq!(percentile(&v, 50.0), Some(500));
        assert_eq!(percentile(&v, 90.0), Some(900));
        assert_eq!(percentile(&v, 99.0), Some(1000));
        assert_eq!(percentile(&v, 100.0), Some(1000));
        assert_eq!(percentile(&v, 0.0), Some(100));
        assert_eq!(percentile(&v, 10.0), Some(100));
        assert_eq!(percentile(&v, 11.0), Some(200));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[7], 99.0), Some(7));
        // 100 values: p99 is the 99th, not the maximum.
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 50.0), Some(50));
    }

    #[test]
    fn summary_sorts_and_counts() {
        let s = Summary::of([900, 100, 500, 300, 700]);
        assert_eq!(
            s,
            Summary {
                count: 5,
                p50: Some(500),
                p90: Some(900),
                p99: Some(900),
                max: Some(900)
            }
        );
        assert_eq!(Summary::of([]), Summary::default());
        assert_eq!(mean(&[]), None);
        assert_eq!(mean(&[0.5, 0.0, 0.25, 0.25]), Some(0.25));
    }
}
