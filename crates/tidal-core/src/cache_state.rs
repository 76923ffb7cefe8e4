//! The state of a node's control-plane cache, by age since its last
//! confirmed sync with the control plane.
//!
//! ```text
//!   age < fresh      Fresh    all good
//!   age < cached     Cached   serving from a recent copy
//!   age < stale      Stale    serving, but the operator should look
//!   otherwise        Expired  strict fallback: serve only what we can prove
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheState {
    Fresh,
    Cached,
    Stale,
    Expired,
}

impl fmt::Display for CacheState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CacheState::Fresh => "fresh",
            CacheState::Cached => "cached",
            CacheState::Stale => "stale",
            CacheState::Expired => "expired",
        })
    }
}

/// Age thresholds in milliseconds; each must be larger than the one before.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheThresholds {
    pub fresh_ms: u64,
    pub cached_ms: u64,
    pub stale_ms: u64,
}

impl Default for CacheThresholds {
    /// Seconds, not minutes: a local cluster should notice a lost control
    /// plane quickly.
    fn default() -> Self {
        Self { fresh_ms: 3_000, cached_ms: 10_000, stale_ms: 30_000 }
    }
}

impl CacheThresholds {
    pub fn validate(&self) -> Result<(), String> {
        if self.fresh_ms == 0 || self.fresh_ms >= self.cached_ms || self.cached_ms >= self.stale_ms {
            return Err(format!(
                "cache thresholds must satisfy 0 < fresh ({}) < cached ({}) < stale ({})",
                self.fresh_ms, self.cached_ms, self.stale_ms
            ));
        }
        Ok(())
    }

    /// The state of a cache last confirmed `age_ms` ago; `None` = never synced.
    pub fn state(&self, age_ms: Option<u64>) -> CacheState {
        match age_ms {
            None => CacheState::Expired,
            Some(a) if a < self.fresh_ms => CacheState::Fresh,
            Some(a) if a < self.cached_ms => CacheState::Cached,
            Some(a) if a < self.stale_ms => CacheState::Stale,
            Some(_) => CacheState::Expired,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_follow_age_boundaries() {
        let t = CacheThresholds { fresh_ms: 10, cached_ms: 20, stale_ms: 30 };
        assert_eq!(t.state(None), CacheState::Expired);
        assert_eq!(t.state(Some(0)), CacheState::Fresh);
        assert_eq!(t.state(Some(9)), CacheState::Fresh);
        assert_eq!(t.state(Some(10)), CacheState::Cached);
        assert_eq!(t.state(Some(19)), CacheState::Cached);
        assert_eq!(t.state(Some(20)), CacheState::Stale);
        assert_eq!(t.state(Some(29)), CacheState::Stale);
        assert_eq!(t.state(Some(30)), CacheState::Expired);
        assert_eq!(t.state(Some(u64::MAX)), CacheState::Expired);
    }

    #[test]
    fn thresholds_must_grow() {
        assert!(CacheThresholds::default().validate().is_ok());
        assert!(CacheThresholds { fresh_ms: 0, cached_ms: 1, stale_ms: 2 }.validate().is_err());
        assert!(CacheThresholds { fresh_ms: 5, cached_ms: 5, stale_ms: 9 }.validate().is_err());
        assert!(CacheThresholds { fresh_ms: 1, cached_ms: 9, stale_ms: 9 }.validate().is_err());
    }
}
