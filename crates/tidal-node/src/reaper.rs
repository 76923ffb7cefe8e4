//! Active expiry: the leader of a PRG deletes keys whose TTL has passed,
//! so that keys nobody reads again do not stay on disk (and in DBSIZE)
//! for ever. Reads already treat an expired key as absent; this only
//! reclaims it.
//!
//! Every [`TICK`] the leader walks on through its keys from where it
//! stopped, [`SAMPLE`] keys a look, and proposes a `Reap` of the expired
//! ones it found. Each applies on every replica at the entry's time, so a
//! key written again since the look stays. While a look finds at least one
//! expired key in ten, the next look follows at once, for at most
//! [`BUDGET`] a tick (Redis's active expiry cycle keeps going on the same
//! rule). A PRG whose last whole walk met no key with a TTL waits, without
//! reading, until a record with a TTL is stored again.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use tidal_core::kv::{Reply, WriteOp};
use tidal_raft::kv_machine::KvMachine;

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
            while walk.look(&s, &kv).await && started.elapsed() < BUDGET {}
        }
    });
}

/// Where a leader's walk through its keys stands.
#[derive(Default)]
struct Walk {
    /// The key to look after next; `None` at the start of a walk.
    after: Option<Vec<u8>>,
    /// Keys with a TTL met in this walk so far.
    with_ttl: usize,
    /// The last whole walk met no key with a TTL: wait for a hint.
    idle: bool,
}

impl Walk {
    /// One look: reap what it finds expired. Whether to look again now.
    async fn look(&mut self, s: &Shared, kv: &KvGroup) -> bool {
        if self.after.is_none() {
            // Taken as a walk starts: a TTL stored during the walk leaves
            // it set for the next.
            let hinted = kv.machine.take_expiry_hint();
            if self.idle && !hinted {
                return false;
            }
            self.idle = false;
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
        self.after = sample.next;
        if self.after.is_none() && self.with_ttl == 0 {
            self.idle = true;
        }
        let expired: usize = sample.expired.values().map(Vec::len).sum();
        if expired > 0 {
            // One op per slot: a slot that is moving refuses its own op
            // only, and the next walk finds its keys again.
            let ops = sample.expired.into_values().map(|keys| WriteOp::Reap { keys }).collect();
            match kv.proposer.propose_many(ops).await {
                Ok(outcomes) => {
                    let reaped: i64 =
                        outcomes.iter().filter_map(|o| if let Ok(Reply::Int(n)) = o { Some(*n) } else { None }).sum();
                    s.reaped.fetch_add(reaped.max(0) as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::debug!(group = %kv.group.name, error = %e, "the reaper's proposal failed");
                    return false;
                }
            }
        }
        self.after.is_some() && expired * 10 >= sample.examined.max(1)
    }
}
