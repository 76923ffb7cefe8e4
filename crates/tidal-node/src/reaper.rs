//! Active expiry: the leader of a PRG deletes keys whose TTL has passed,
//! so that keys nobody reads again do not stay on disk (and in DBSIZE)
//! for ever. Reads already treat an expired key as absent; this only
//! reclaims it.
//!
//! Every replica notes the deadline of each key it stores with a TTL
//! (`tidal_raft::kv_deadlines`). Every [`TICK`] the leader looks at the
//! noted keys whose deadline has passed, [`SAMPLE`] a look, and proposes a
//! `Reap` of the expired ones. Each applies on every replica at the
//! entry's time, so a key written again since the look stays. While a look
//! is full of expired keys the next follows at once, for at most
//! [`BUDGET`] a tick.
//!
//! Keys stored before the replica started, or brought in by a snapshot,
//! are not noted until the leader has walked through every key: while the
//! note is not whole, each tick also walks on from where the last look
//! stopped, [`SAMPLE`] keys a look, noting and reaping what it meets, and
//! going on at once while at least one key in ten it meets has expired
//! (Redis's active expiry cycle keeps going on the same rule). The walk
//! that ends makes the note whole, and the walks stop. A note over its cap
//! is dropped: the leader then walks for good, until a whole walk meets
//! few enough keys with a TTL to note again.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use tidal_core::kv::{Reply, WriteOp};
use tidal_raft::kv_deadlines::CAP;
use tidal_raft::kv_machine::{ExpirySample, KvMachine};

use crate::node::{KvGroup, Shared};

/// How often the leader looks for expired keys.
pub const TICK: Duration = Duration::from_millis(100);
/// Keys examined per look.
pub const SAMPLE: usize = 256;
/// Longest the looks of one tick go on while they keep finding expired keys.
pub const BUDGET: Duration = Duration::from_millis(25);

/// Reap `group`'s expired keys while this node leads it, until `machine`
/// is no longer the replica this node hosts under that name.
pub fn spawn(shared: Weak<Shared>, group: String, machine: Arc<KvMachine>) {
    tokio::spawn(async move {
        let mut walk = Walk::default();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(s) = shared.upgrade() else { return };
            let Some(kv) = s.kv_group(&group).filter(|kv| Arc::ptr_eq(&kv.machine, &machine)) else { return };
            if kv.group.raft.metrics().borrow_watched().current_leader != Some(s.config.node_id) {
                continue;
            }
            let started = tokio::time::Instant::now();
            while look_due(&s, &kv).await && started.elapsed() < BUDGET {}
            if !kv.machine.deadlines_whole() {
                while walk.look(&s, &kv).await && started.elapsed() < BUDGET {}
            }
        }
    });
}

/// One look at the noted keys whose deadline has passed: reap the expired
/// ones. Whether to look again now.
async fn look_due(s: &Shared, kv: &KvGroup) -> bool {
    match kv.machine.expiry_due(s.host.storage(), SAMPLE, s.clock.now_ms()) {
        Ok(sample) => {
            let full = sample.next.is_some();
            reap(s, kv, sample).await.is_some_and(|expired| full && expired > 0)
        }
        Err(e) => {
            tracing::debug!(group = %kv.group.name, error = %e, "the reaper could not read");
            false
        }
    }
}

/// Propose a `Reap` of the sample's expired keys: how many there were, or
/// `None` if the proposal failed.
async fn reap(s: &Shared, kv: &KvGroup, sample: ExpirySample) -> Option<usize> {
    let expired: usize = sample.expired.values().map(Vec::len).sum();
    if expired == 0 {
        return Some(0);
    }
    // One op per slot: a slot that is moving refuses its own op only, and
    // a later look finds its keys again.
    let ops = sample.expired.into_values().map(|keys| WriteOp::Reap { keys }).collect();
    match kv.proposer.propose_many(ops).await {
        Ok(outcomes) => {
            let reaped: i64 =
                outcomes.iter().filter_map(|o| if let Ok(Reply::Int(n)) = o { Some(*n) } else { None }).sum();
            s.reaped.fetch_add(reaped.max(0) as u64, Ordering::Relaxed);
            Some(expired)
        }
        Err(e) => {
            tracing::debug!(group = %kv.group.name, error = %e, "the reaper's proposal failed");
            None
        }
    }
}

/// Where a leader's walk through its keys stands.
#[derive(Default)]
struct Walk {
    /// The key to look after next; `None` at the start of a walk.
    after: Option<Vec<u8>>,
    /// The era of the note the walk began in.
    era: u64,
    /// Keys with a TTL met in this walk so far.
    with_ttl: usize,
    /// Keys with a TTL the last whole walk met.
    last_with_ttl: Option<usize>,
}

impl Walk {
    /// One look: note what it meets, reap what it finds expired. Whether
    /// to look again now.
    async fn look(&mut self, s: &Shared, kv: &KvGroup) -> bool {
        if self.after.is_none() {
            // A note dropped over its cap is taken up again once a whole
            // walk met at most half as many keys with a TTL.
            self.era = kv.machine.walk_begins(self.last_with_ttl.is_some_and(|n| n <= CAP / 2));
            self.with_ttl = 0;
        }
        let sample = match kv.machine.expiry_sample(s.host.storage(), self.after.as_deref(), SAMPLE, s.clock.now_ms()) {
            Ok(sample) => sample,
            Err(e) => {
                tracing::debug!(group = %kv.group.name, error = %e, "the reaper could not read");
                return false;
            }
        };
        self.with_ttl += sample.with_ttl;
        self.after = sample.next.clone();
        if self.after.is_none() {
            self.last_with_ttl = Some(self.with_ttl);
            kv.machine.walk_ended(self.era);
        }
        let examined = sample.examined.max(1);
        match reap(s, kv, sample).await {
            Some(expired) => self.after.is_some() && expired * 10 >= examined,
            None => false,
        }
    }
}
