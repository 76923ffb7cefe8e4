//! Latency histograms (HDR, microsecond resolution, 3 significant digits)
//! and the summary a report prints from them.

use std::time::Duration;

use hdrhistogram::Histogram;

/// The largest latency recorded exactly: one hour. Longer ones are clamped.
const MAX_MICROS: u64 = 3_600_000_000;

/// A latency histogram in microseconds.
#[derive(Clone)]
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Latency(Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("static histogram bounds are valid"))
    }
}

impl std::fmt::Debug for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Latency(n={})", self.0.len())
    }
}

impl Latency {
    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(MAX_MICROS).clamp(1, MAX_MICROS);
        self.0.record(us).expect("value is clamped into the histogram's range");
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// Adds another histogram's samples to this one.
    pub fn merge(&mut self, other: &Latency) {
        self.0.add(&other.0).expect("histograms share the same bounds");
    }

    pub fn reset(&mut self) {
        self.0.reset();
    }

    /// The latency at quantile `q` (0..=1), in microseconds; 0 when empty.
    pub fn quantile_us(&self, q: f64) -> u64 {
        if self.0.is_empty() {
            0
        } else {
            self.0.value_at_quantile(q)
        }
    }

    pub fn summary(&self) -> LatencySummary {
        LatencySummary {
            count: self.count(),
            mean_us: if self.0.is_empty() { 0.0 } else { self.0.mean() },
            p50_us: self.quantile_us(0.50),
            p90_us: self.quantile_us(0.90),
            p99_us: self.quantile_us(0.99),
            p999_us: self.quantile_us(0.999),
            max_us: if self.0.is_empty() { 0 } else { self.0.max() },
        }
    }
}

/// Percentiles of one histogram, as reports print them.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

/// Formats microseconds for people: `412µs`, `3.21ms`, `1.50s`.
pub fn fmt_us(us: u64) -> String {
    match us {
        0..=999 => format!("{us}µs"),
        1_000..=999_999 => format!("{:.2}ms", us as f64 / 1e3),
        _ => format!("{:.2}s", us as f64 / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_sample() {
        let mut h = Latency::default();
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us));
        }
        let s = h.summary();
        assert_eq!(s.count, 1000);
        // HDR keeps 3 significant digits: values are exact to within 0.1%.
        for (got, want) in [(s.p50_us, 500), (s.p90_us, 900), (s.p99_us, 990), (s.p999_us, 999), (s.max_us, 1000)] {
            assert!(got.abs_diff(want) <= want / 1000 + 1, "{got} vs {want}");
        }
        assert!((s.mean_us - 500.5).abs() < 1.0);
    }

    #[test]
    fn merge_adds_samples_and_reset_empties() {
        let mut a = Latency::default();
        let mut b = Latency::default();
        a.record(Duration::from_millis(1));
        b.record(Duration::from_millis(100));
        b.record(Duration::from_millis(100));
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert!(a.summary().p50_us >= 99_000);
        a.reset();
        assert_eq!(a.summary(), LatencySummary::default());
    }

    #[test]
    fn extremes_are_clamped_not_lost() {
        let mut h = Latency::default();
        h.record(Duration::ZERO);
        h.record(Duration::from_secs(10 * 3600));
        assert_eq!(h.count(), 2);
        assert_eq!(h.summary().max_us, h.0.highest_equivalent(MAX_MICROS));
    }

    #[test]
    fn human_units() {
        assert_eq!(fmt_us(412), "412µs");
        assert_eq!(fmt_us(3_210), "3.21ms");
        assert_eq!(fmt_us(1_500_000), "1.50s");
    }
}
