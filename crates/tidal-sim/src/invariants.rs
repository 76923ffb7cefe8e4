//! Invariants sampled on every simulated node while a run goes on, and
//! checked across nodes: what must hold at every instant, not only in the
//! history the clients saw.
//!
//! - At most one leader per term in every Raft group (the control plane's
//!   and every PRG's): two nodes that each believe they lead one group in
//!   one term would both commit.
//! - A node's routing epoch never goes backwards while it runs: a node that
//!   served under epoch 7 must not route by epoch 6 afterwards.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::ServerState;
use tidal_node::node::Shared;

/// How often each node is sampled, in simulated time.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(25);

/// What the samplers of every node found.
#[derive(Default)]
pub struct Invariants {
    /// The node that led each (group, term), as first seen.
    leaders: BTreeMap<(String, u64), u64>,
    /// Samples taken, over all nodes.
    pub checks: u64,
    pub violations: Vec<String>,
}

/// One node's sampler state: what it saw last in this run of the node.
struct Sampler {
    node: u64,
    epoch: u64,
}

impl Invariants {
    fn sample(&mut self, s: &mut Sampler, shared: &Shared, at: Duration) {
        self.checks += 1;
        for g in shared.host.groups() {
            let m = g.raft.metrics().borrow_watched().clone();
            if m.state == ServerState::Leader {
                self.leader(&g.name, m.current_term, s.node, at);
            }
        }
        self.epoch(s, shared.cache.get().routing_epoch, at);
    }

    /// `node` leads `group` in `term`.
    fn leader(&mut self, group: &str, term: u64, node: u64, at: Duration) {
        let first = *self.leaders.entry((group.to_string(), term)).or_insert(node);
        if first != node {
            self.violations.push(format!(
                "{:.3}s: group {group} has two leaders in term {term}: node {first} and node {node}",
                at.as_secs_f64()
            ));
        }
    }

    /// The node `s` samples routes by `epoch` now.
    fn epoch(&mut self, s: &mut Sampler, epoch: u64, at: Duration) {
        if epoch < s.epoch {
            self.violations.push(format!(
                "{:.3}s: node {} went back from routing epoch {} to {epoch}",
                at.as_secs_f64(),
                s.node,
                s.epoch
            ));
        }
        s.epoch = s.epoch.max(epoch);
    }
}

/// Sample `shared` (node `node`) every [`SAMPLE_EVERY`] until the task is
/// dropped with its host.
pub async fn watch(invariants: Arc<Mutex<Invariants>>, node: u64, shared: Arc<Shared>) {
    let mut sampler = Sampler { node, epoch: 0 };
    loop {
        let at = turmoil::sim_elapsed().unwrap_or_default();
        invariants.lock().unwrap().sample(&mut sampler, &shared, at);
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_leaders_in_one_term_are_caught_and_one_per_term_is_not() {
        let mut inv = Invariants::default();
        let t = Duration::from_secs(1);
        inv.leader("_cp", 1, 1, t);
        inv.leader("_cp", 1, 1, t);
        inv.leader("_cp", 2, 2, t);
        inv.leader("default:0", 2, 3, t);
        assert!(inv.violations.is_empty(), "{:?}", inv.violations);
        inv.leader("_cp", 2, 3, t);
        assert_eq!(inv.violations.len(), 1);
        assert!(
            inv.violations[0].contains("group _cp has two leaders in term 2: node 2 and node 3"),
            "{:?}",
            inv.violations
        );
    }

    #[test]
    fn a_routing_epoch_that_goes_back_is_caught() {
        let mut inv = Invariants::default();
        let mut s = Sampler { node: 2, epoch: 0 };
        let t = Duration::from_secs(1);
        for e in [0, 1, 1, 3] {
            inv.epoch(&mut s, e, t);
        }
        assert!(inv.violations.is_empty());
        inv.epoch(&mut s, 2, t);
        assert_eq!(inv.violations.len(), 1);
        assert!(inv.violations[0].contains("node 2 went back from routing epoch 3 to 2"), "{:?}", inv.violations);
        // A restarted node samples afresh (a new Sampler), from its own start.
    }
}
