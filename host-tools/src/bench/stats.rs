//! The arithmetic of a benchmark: percentiles of latency samples, medians of
//! repeated runs, rates from byte counts, and a CDF thinned for a chart.
//!
//! Everything here is a pure function of its input, so it is tested without a
//! device.

use std::time::Duration;

use serde::Serialize;

/// The `q`-quantile (0 ≤ q ≤ 1) of `sorted` (ascending) by the nearest-rank
/// method: the smallest sample with at least `q` of the samples at or below
/// it. `None` for no samples.
///
/// Nearest rank never invents a value between two samples, so `p99.9` of
/// 1 000 samples is the largest one, as a person counting would say.
pub fn quantile_sorted(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let q = q.clamp(0.0, 1.0);
    // Rank 1..=n; the tiny epsilon keeps 0.9 * 10 from becoming 9.000000000000002.
    let rank = ((q * sorted.len() as f64) - 1e-9).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

/// The median of `values` (the mean of the two middle ones for an even
/// count), ignoring NaNs. `None` for no values.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// The index of the run whose value is the median (the lower middle one for
/// an even count): the run to draw as "typical".
pub fn median_index(values: &[f64]) -> Option<usize> {
    let mut idx: Vec<usize> = (0..values.len()).filter(|&i| !values[i].is_nan()).collect();
    if idx.is_empty() {
        return None;
    }
    idx.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    Some(idx[(idx.len() - 1) / 2])
}

/// Bits per second for `bytes` moved in `elapsed`; 0 for no time.
pub fn bits_per_sec(bytes: u64, elapsed: Duration) -> f64 {
    per_sec(bytes as f64 * 8.0, elapsed)
}

/// `count` events in `elapsed`, per second; 0 for no time.
pub fn per_sec(count: f64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        count / secs
    } else {
        0.0
    }
}

/// `a / b`, or `None` when `b` is zero or either is not a number.
pub fn ratio(a: f64, b: f64) -> Option<f64> {
    let r = a / b;
    (b != 0.0 && r.is_finite()).then_some(r)
}

/// Percentiles of a set of latency samples, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// How many samples.
    pub count: usize,
    /// Smallest.
    pub min_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest.
    pub max_us: f64,
    /// Arithmetic mean.
    pub mean_us: f64,
}

impl Percentiles {
    /// Percentiles of `samples` in nanoseconds (sorted in place). All zero
    /// for no samples.
    pub fn of_nanos(samples: &mut [u64]) -> Self {
        samples.sort_unstable();
        let us = |q: f64| quantile_sorted(samples, q).map_or(0.0, |ns| ns as f64 / 1e3);
        let sum: u128 = samples.iter().map(|&s| u128::from(s)).sum();
        Percentiles {
            count: samples.len(),
            min_us: us(0.0),
            p50_us: us(0.5),
            p90_us: us(0.9),
            p99_us: us(0.99),
            p999_us: us(0.999),
            max_us: us(1.0),
            mean_us: if samples.is_empty() {
                0.0
            } else {
                sum as f64 / samples.len() as f64 / 1e3
            },
        }
    }
}

/// A CDF of sorted samples (ns) as at most about `points` (latency µs,
/// fraction) pairs: evenly spaced in fraction, plus the tail above 99 % in
/// finer steps so that the chart shows p99.9 and the maximum.
pub fn cdf_points(sorted: &[u64], points: usize) -> Vec<(f64, f64)> {
    let n = sorted.len();
    if n == 0 || points == 0 {
        return Vec::new();
    }
    let mut quantiles: Vec<f64> = (0..=points).map(|i| i as f64 / points as f64).collect();
    quantiles.extend([0.991, 0.993, 0.995, 0.997, 0.998, 0.999, 0.9995, 0.9999]);
    quantiles.sort_by(f64::total_cmp);
    quantiles.dedup();
    let mut out: Vec<(f64, f64)> = quantiles
        .into_iter()
        .filter_map(|q| {
            let v = quantile_sorted(sorted, q)?;
            Some((v as f64 / 1e3, q.max(1.0 / n as f64)))
        })
        .collect();
    out.dedup();
    out
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<u64> = (1..=10).collect();
        assert_eq!(quantile_sorted(&v, 0.0), Some(1));
        assert_eq!(quantile_sorted(&v, 0.1), Some(1));
        assert_eq!(quantile_sorted(&v, 0.11), Some(2));
        assert_eq!(quantile_sorted(&v, 0.5), Some(5));
        assert_eq!(quantile_sorted(&v, 0.9), Some(9));
        assert_eq!(quantile_sorted(&v, 0.99), Some(10));
        assert_eq!(quantile_sorted(&v, 1.0), Some(10));
        assert_eq!(quantile_sorted(&v, 7.0), Some(10), "clamped");
        assert_eq!(quantile_sorted(&[], 0.5), None);
        assert_eq!(quantile_sorted(&[42], 0.999), Some(42));
        let thousand: Vec<u64> = (1..=1000).collect();
        assert_eq!(quantile_sorted(&thousand, 0.999), Some(999));
        assert_eq!(quantile_sorted(&thousand, 0.99), Some(990));
    }

    #[test]
    fn percentiles_of_nanoseconds() {
        let mut samples: Vec<u64> = (1..=1000).rev().map(|i| i * 1000).collect();
        let p = Percentiles::of_nanos(&mut samples);
        assert_eq!(p.count, 1000);
        assert_eq!(p.min_us, 1.0);
        assert_eq!(p.p50_us, 500.0);
        assert_eq!(p.p90_us, 900.0);
        assert_eq!(p.p99_us, 990.0);
        assert_eq!(p.p999_us, 999.0);
        assert_eq!(p.max_us, 1000.0);
        assert!((p.mean_us - 500.5).abs() < 1e-9);
        assert_eq!(Percentiles::of_nanos(&mut []), Percentiles::default());
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN, 1.0, 5.0, 3.0]), Some(3.0));
        assert_eq!(median_index(&[5.0, 1.0, 3.0]), Some(2));
        assert_eq!(median_index(&[4.0, 1.0, 3.0, 2.0]), Some(3));
        assert_eq!(median_index(&[]), None);
    }

    #[test]
    fn rates() {
        assert_eq!(bits_per_sec(125_000_000, Duration::from_secs(1)), 1e9);
        assert_eq!(bits_per_sec(1_000, Duration::from_millis(500)), 16_000.0);
        assert_eq!(bits_per_sec(1_000, Duration::ZERO), 0.0);
        assert_eq!(per_sec(300.0, Duration::from_secs(2)), 150.0);
        assert_eq!(ratio(1.0, 4.0), Some(0.25));
        assert_eq!(ratio(1.0, 0.0), None);
        assert_eq!(ratio(f64::NAN, 1.0), None);
    }

    #[test]
    fn cdf_is_monotonic_and_reaches_the_maximum() {
        let sorted: Vec<u64> = (1..=10_000).map(|i| i * 10).collect();
        let cdf = cdf_points(&sorted, 50);
        assert!(cdf.len() >= 50 && cdf.len() < 70, "{}", cdf.len());
        for pair in cdf.windows(2) {
            assert!(pair[0].0 <= pair[1].0 && pair[0].1 <= pair[1].1, "{pair:?}");
        }
        assert_eq!(cdf.last(), Some(&(100.0, 1.0)));
        assert!(cdf.iter().any(|&(_, q)| q == 0.999));
        assert!(cdf_points(&[], 10).is_empty());
    }
}
