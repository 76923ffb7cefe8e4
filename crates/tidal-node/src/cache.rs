//! The node's copy of the control plane's cluster state, and how old it is.
//!
//! The sync loop replaces the copy after every confirmed (linearizable) read
//! of the control plane. The age since that read decides the
//! [`CacheState`]; at `Expired` the node is in strict fallback.

use std::sync::{Arc, Mutex, RwLock};

use tidal_core::{CacheState, CacheThresholds, ClusterState};
use tokio::sync::watch;
use tokio::time::Instant;

pub struct CpCache {
    state: RwLock<Arc<ClusterState>>,
    last_sync: Mutex<Option<Instant>>,
    thresholds: CacheThresholds,
    /// Bumped with the routing epoch / version whenever the copy changes.
    changed: watch::Sender<u64>,
}

impl CpCache {
    /// A cache holding `initial` (e.g. this node's own `_cp` replica), never
    /// confirmed: it starts Expired until the first sync.
    pub fn new(initial: Arc<ClusterState>, thresholds: CacheThresholds) -> Self {
        let (changed, _) = watch::channel(initial.version);
        Self { state: RwLock::new(initial), last_sync: Mutex::new(None), thresholds, changed }
    }

    pub fn get(&self) -> Arc<ClusterState> {
        self.state.read().expect("cache lock").clone()
    }

    /// Record a confirmed read of the control plane at `at`.
    pub fn confirm(&self, state: ClusterState, at: Instant) {
        let version = state.version;
        {
            let mut cur = self.state.write().expect("cache lock");
            if state.version >= cur.version || state.routing_epoch > cur.routing_epoch {
                *cur = Arc::new(state);
            }
        }
        *self.last_sync.lock().expect("sync lock") = Some(at);
        self.changed.send_if_modified(|v| {
            let changed = *v != version;
            *v = version;
            changed
        });
    }

    /// Record at `at` a confirmed read that found the copy current.
    pub fn touch(&self, at: Instant) {
        *self.last_sync.lock().expect("sync lock") = Some(at);
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub fn age_ms(&self, now: Instant) -> Option<u64> {
        self.last_sync.lock().expect("sync lock").map(|t| now.saturating_duration_since(t).as_millis() as u64)
    }

    pub fn cache_state(&self, now: Instant) -> CacheState {
        self.thresholds.state(self.age_ms(now))
    }

    /// Strict fallback: the cache is too old to route with.
    pub fn strict_fallback(&self, now: Instant) -> bool {
        self.cache_state(now) == CacheState::Expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn age_drives_the_state_and_confirm_resets_it() {
        let t = CacheThresholds { fresh_ms: 100, cached_ms: 200, stale_ms: 300 };
        let cache = CpCache::new(Arc::new(ClusterState::default()), t);
        let t0 = Instant::now();
        assert_eq!(cache.cache_state(t0), CacheState::Expired);
        assert!(cache.strict_fallback(t0));
        cache.confirm(ClusterState { version: 3, ..Default::default() }, t0);
        assert_eq!(cache.cache_state(t0 + Duration::from_millis(50)), CacheState::Fresh);
        assert_eq!(cache.cache_state(t0 + Duration::from_millis(150)), CacheState::Cached);
        assert_eq!(cache.cache_state(t0 + Duration::from_millis(250)), CacheState::Stale);
        assert_eq!(cache.cache_state(t0 + Duration::from_millis(350)), CacheState::Expired);
        assert_eq!(cache.get().version, 3);
    }

    #[test]
    fn an_older_state_never_replaces_a_newer_one() {
        let cache = CpCache::new(Arc::new(ClusterState::default()), CacheThresholds::default());
        let now = Instant::now();
        cache.confirm(ClusterState { version: 9, routing_epoch: 2, ..Default::default() }, now);
        cache.confirm(ClusterState { version: 4, routing_epoch: 1, ..Default::default() }, now);
        assert_eq!(cache.get().version, 9);
    }
}
