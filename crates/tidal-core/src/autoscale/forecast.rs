//! Load forecasting: additive Holt-Winters (level, trend, and a season
//! of a day or a week) over the recorded load, so a policy can scale up
//! ahead of the load by the time a scale-up takes.
//!
//! The season is a week once two weeks are recorded, a day once two days
//! are, and none before (then it is Holt's linear trend). The smoothing
//! factors are fixed (level 0.2, trend 0.01, season 0.3): slow enough that
//! a single spike does not become the forecast, quick enough to follow a
//! drifting day.

use serde::{Deserialize, Serialize};

pub const DAY_MS: u64 = 86_400_000;
pub const WEEK_MS: u64 = 7 * DAY_MS;

const ALPHA: f64 = 0.2;
const BETA: f64 = 0.01;
const GAMMA: f64 = 0.3;

/// Additive Holt-Winters, fed one evenly spaced point at a time.
#[derive(Clone, Debug, PartialEq)]
pub struct HoltWinters {
    /// Points per season (0: no season).
    period: usize,
    level: f64,
    trend: f64,
    season: Vec<f64>,
    seen: usize,
    /// The first season's points, which set the starting level and season.
    first: Vec<f64>,
}

impl HoltWinters {
    pub fn new(period: usize) -> Self {
        HoltWinters { period, level: 0.0, trend: 0.0, season: vec![0.0; period], seen: 0, first: Vec::new() }
    }

    pub fn update(&mut self, x: f64) {
        let i = self.seen;
        self.seen += 1;
        if self.period > 0 && i < self.period {
            // The first season: only gathered.
            self.first.push(x);
            if self.seen == self.period {
                let mean = self.first.iter().sum::<f64>() / self.period as f64;
                self.level = mean;
                self.season = self.first.iter().map(|v| v - mean).collect();
            }
            return;
        }
        if self.period == 0 && i == 0 {
            self.level = x;
            return;
        }
        let s = if self.period > 0 { self.season[i % self.period] } else { 0.0 };
        let last = self.level;
        self.level = ALPHA * (x - s) + (1.0 - ALPHA) * (self.level + self.trend);
        self.trend = BETA * (self.level - last) + (1.0 - BETA) * self.trend;
        if self.period > 0 {
            self.season[i % self.period] = GAMMA * (x - self.level) + (1.0 - GAMMA) * s;
        }
    }

    /// The forecast `ahead` points past the last one fed; `None` until a
    /// whole season (or, without one, a point) has been seen.
    pub fn forecast(&self, ahead: usize) -> Option<f64> {
        let ready = if self.period > 0 { self.seen > self.period } else { self.seen > 0 };
        if !ready {
            return None;
        }
        let s = if self.period > 0 { self.season[(self.seen - 1 + ahead) % self.period] } else { 0.0 };
        Some((self.level + self.trend * ahead as f64 + s).max(0.0))
    }
}

/// What a forecast says, for the decision's record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// Operations a second expected `lead_ms` from now.
    pub ops: f64,
    pub lead_ms: u64,
    /// `week`, `day` or `trend`.
    pub season: String,
    /// Points of history it was fitted on.
    pub points: usize,
}

/// The season a history of `span_ms` supports, and its length in points
/// of `step_ms`.
pub fn season_for(span_ms: u64, step_ms: u64) -> (&'static str, usize) {
    let step = step_ms.max(1);
    if span_ms >= 2 * WEEK_MS {
        ("week", (WEEK_MS / step) as usize)
    } else if span_ms >= 2 * DAY_MS {
        ("day", (DAY_MS / step) as usize)
    } else {
        ("trend", 0)
    }
}

/// The forecast `lead_ms` past the last of `series`, points `step_ms`
/// apart; `None` with fewer than [`MIN_POINTS`] points.
pub fn forecast(series: &[f64], step_ms: u64, lead_ms: u64) -> Option<Forecast> {
    if series.len() < MIN_POINTS {
        return None;
    }
    let span = (series.len() as u64 - 1) * step_ms;
    let (season, period) = season_for(span, step_ms);
    let mut hw = HoltWinters::new(period);
    for x in series {
        hw.update(*x);
    }
    let ahead = lead_ms.div_ceil(step_ms.max(1)).max(1) as usize;
    Some(Forecast { ops: hw.forecast(ahead)?, lead_ms, season: season.to_string(), points: series.len() })
}

/// The fewest points a forecast is made from (an hour at 5 minutes).
pub const MIN_POINTS: usize = 12;

#[cfg(test)]
mod tests {
    use super::*;

    const STEP: u64 = 300_000;

    /// Three days of a daily wave on a slow rise, every 5 minutes.
    fn days(n: u64) -> Vec<f64> {
        (0..n * 288)
            .map(|i| {
                let hour = (i % 288) as f64 / 12.0;
                1000.0 + 600.0 * (std::f64::consts::TAU * hour / 24.0).sin() + i as f64 * 0.1
            })
            .collect()
    }

    #[test]
    fn a_daily_wave_is_forecast_a_while_ahead() {
        let series = days(3);
        let f = forecast(&series, STEP, 3_600_000).unwrap();
        assert_eq!((f.season.as_str(), f.points), ("day", 864));
        // What the wave will be an hour after the last point.
        let i = series.len() as f64 + 11.0;
        let hour = (i % 288.0) / 12.0;
        let truth = 1000.0 + 600.0 * (std::f64::consts::TAU * hour / 24.0).sin() + i * 0.1;
        assert!((f.ops - truth).abs() < 60.0, "forecast {} against {truth}", f.ops);
    }

    #[test]
    fn short_histories_follow_the_trend_or_say_nothing() {
        assert_eq!(forecast(&[5.0; 5], STEP, 600_000), None);
        let rising: Vec<f64> = (0..100).map(|i| 100.0 + 10.0 * i as f64).collect();
        let f = forecast(&rising, STEP, 600_000).unwrap();
        assert_eq!(f.season, "trend");
        assert!(f.ops > 1_000.0, "{f:?}");
        assert_eq!(season_for(15 * DAY_MS, STEP), ("week", 2016));
    }
}
