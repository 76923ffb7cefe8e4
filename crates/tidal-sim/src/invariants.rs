//! Invariants checked across the running nodes while a run goes on: what
//! must hold at every instant, not only in the history the clients saw.
//!
//! - At most one leader per term in every Raft group (the control plane's
//!   and every PRG's): two nodes that each believe they lead one group in
//!   one term would both commit.
//! - A node's routing epoch never goes backwards while it runs: a node that
//!   served under epoch 7 must not route by epoch 6 afterwards.
//! - One owner per slot per routing epoch: every node that routes by epoch
//!   e maps every slot to the same PRG, and a PRG that handed a slot away
//!   at epoch e handed it to the PRG that epoch names.
//! - One owner per slot now: of each PRG's most advanced replica, at most
//!   one serves writes for a slot.
//! - Each move takes effect once: a slot move either commits (the target
//!   adopts the slot) or rolls back (the source keeps it), never both, on
//!   any replica, at any time in the run.
//! - No fenced slot accepts a write: while a move holds a replica's slots
//!   fenced, their rows on that replica do not change.
//!
//! [`Invariants::converged`] says whether the cluster has settled: every
//! node running with a fresh cache at one routing epoch, no operation or
//! move in flight, every PRG with its voters, one leader and no learners.
//!
//! ```text
//!   node task (its runtime) ── register ──► live nodes ◄── sample (driver, between steps)
//!        └─ cache freshness every 25 ms          │
//!   host crash drops the task ── unregister ─────┘
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::ServerState;
use tidal_core::ids::CP_GROUP;
use tidal_core::ownership::{MoveId, Ownership, SlotState};
use tidal_core::{CacheState, ClusterState, NodeState};
use tidal_node::node::Shared;

/// How often the nodes are sampled, in simulated time.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(25);

/// A running node, as the samples see it.
struct Live {
    incarnation: u64,
    shared: Arc<Shared>,
    /// The highest routing epoch this incarnation has routed by.
    epoch: u64,
    /// The node's cache state, as its own runtime's clock last judged it.
    cache: CacheState,
    /// The cluster state whose slot table was last checked.
    state: Option<Arc<ClusterState>>,
    /// Each hosted PRG's ownership, and the applied index it was read at.
    owned: BTreeMap<String, (u64, Arc<Ownership>)>,
}

/// One replica of a PRG, as sampled.
struct Replica {
    node: u64,
    incarnation: u64,
    applied: u64,
    ownership: Arc<Ownership>,
    /// Whether it applied more since the last sample.
    changed: bool,
}

/// What the samples found over a run.
#[derive(Default)]
pub struct Invariants {
    live: BTreeMap<u64, Live>,
    incarnations: u64,
    /// The node that led each (group, term), as first seen.
    leaders: BTreeMap<(String, u64), u64>,
    /// Each routing epoch's slot → PRG index table, per tenant, as first seen.
    tables: BTreeMap<u64, BTreeMap<String, Vec<u32>>>,
    /// The PRG that served a slot after a move ended there: (tenant, slot, move) → group.
    takes: BTreeMap<(String, u32, MoveId), String>,
    /// The rows of a move's fenced slots on one replica: (incarnation, group, move) → digest.
    frozen: BTreeMap<(u64, String, MoveId), u64>,
    /// Each PRG's most advanced ownership seen: the applied index, the
    /// node, and the ownership at that index. Every replica's state is a
    /// prefix of the committed log, so this is the furthest the group's
    /// committed state is known to have gone, even once the replica that
    /// applied it is gone (crashed, or deleted with a drained PRG while a
    /// lagging replica waits to be).
    newest: BTreeMap<String, (u64, u64, Arc<Ownership>)>,
    next_sample: Duration,
    /// Samples taken, counted per node.
    pub checks: u64,
    /// Samples of a replica's fenced slots.
    pub fenced_samples: u64,
    pub violations: Vec<String>,
    /// Violations already reported, without their instant.
    reported: BTreeSet<String>,
}

/// Holds a node in the samples while it runs; dropped with the node's
/// tasks when its host crashes or stops.
pub struct Registration {
    invariants: Arc<Mutex<Invariants>>,
    node: u64,
    incarnation: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut inv = self.invariants.lock().unwrap_or_else(|e| e.into_inner());
        if inv.live.get(&self.node).is_some_and(|l| l.incarnation == self.incarnation) {
            inv.live.remove(&self.node);
        }
    }
}

impl Invariants {
    /// Adds node `node` (a new incarnation of it) to the samples.
    pub fn register(invariants: &Arc<Mutex<Invariants>>, node: u64, shared: Arc<Shared>) -> Registration {
        let mut inv = invariants.lock().unwrap();
        inv.incarnations += 1;
        let incarnation = inv.incarnations;
        inv.live.insert(
            node,
            Live { incarnation, shared, epoch: 0, cache: CacheState::Expired, state: None, owned: BTreeMap::new() },
        );
        Registration { invariants: invariants.clone(), node, incarnation }
    }

    /// Samples every running node when [`SAMPLE_EVERY`] has passed since
    /// the last sample; `at` is the simulated time.
    pub fn sample_due(&mut self, at: Duration) {
        if at >= self.next_sample {
            self.sample(at);
            self.next_sample = at + SAMPLE_EVERY;
        }
    }

    fn violation(&mut self, at: Duration, what: String) {
        if self.reported.insert(what.clone()) {
            self.violations.push(format!("{:.3}s: {what}", at.as_secs_f64()));
        }
    }

    /// Samples every running node and checks the invariants across them.
    /// A replica's ownership is read again only when it has applied more
    /// of its log since the last sample (nothing else changes it), and a
    /// node's slot table only when its cache holds another state.
    pub fn sample(&mut self, at: Duration) {
        let mut found = Vec::new();
        let mut replicas: BTreeMap<String, Vec<Replica>> = BTreeMap::new();
        let mut states: Vec<(u64, Arc<ClusterState>)> = Vec::new();
        let mut fenced: Vec<(u64, String, MoveId, u64)> = Vec::new();
        for (&node, live) in &mut self.live {
            self.checks += 1;
            let shared = &live.shared;
            let state = shared.cache.get();
            if state.routing_epoch < live.epoch {
                found.push(format!(
                    "node {node} went back from routing epoch {} to {}",
                    live.epoch, state.routing_epoch
                ));
            }
            live.epoch = live.epoch.max(state.routing_epoch);
            if !live.state.as_ref().is_some_and(|s| Arc::ptr_eq(s, &state)) {
                live.state = Some(state.clone());
                states.push((node, state));
            }
            for g in shared.host.groups() {
                let (leader, term, applied) = {
                    let m = g.raft.metrics();
                    let m = m.borrow_watched();
                    (m.state == ServerState::Leader, m.current_term, m.last_applied.map_or(0, |l| l.index))
                };
                if leader {
                    found.extend(leads(&mut self.leaders, &g.name, term, node));
                }
                let name = g.name.to_string();
                let cached = live.owned.get(&name).filter(|(at, _)| *at == applied);
                let (ownership, changed) = match cached {
                    Some((_, o)) => (o.clone(), false),
                    None => {
                        let Some(kv) = shared.kv_group(&name) else { continue };
                        let o = Arc::new(kv.machine.ownership());
                        for m in moves_fenced(&o) {
                            if let Ok((rows, _)) = kv.machine.export_rows(shared.host.storage(), m, None, usize::MAX) {
                                let mut h = std::hash::DefaultHasher::new();
                                for row in &rows {
                                    (&row.key, &row.record).hash(&mut h);
                                }
                                fenced.push((live.incarnation, name.clone(), m, h.finish()));
                            }
                        }
                        live.owned.insert(name.clone(), (applied, o.clone()));
                        (o, true)
                    }
                };
                replicas.entry(name).or_default().push(Replica {
                    node,
                    incarnation: live.incarnation,
                    applied,
                    ownership,
                    changed,
                });
            }
        }
        for what in found {
            self.violation(at, what);
        }
        for (node, state) in states {
            self.table(at, node, &state);
        }
        self.fenced_samples += fenced.len() as u64;
        for (incarnation, group, m, digest) in fenced {
            let first = *self.frozen.entry((incarnation, group.clone(), m)).or_insert(digest);
            if first != digest {
                self.violation(at, format!("the fenced slots of move {m} changed on a replica of {group}"));
            }
        }
        self.ownership(at, &replicas);
    }

    /// `node` routes by `state`: its epoch's slot table must be the one
    /// every other node saw at that epoch.
    fn table(&mut self, at: Duration, node: u64, state: &ClusterState) {
        let table: BTreeMap<String, Vec<u32>> =
            state.tenants.iter().map(|(name, t)| (name.clone(), t.owner.clone())).collect();
        match self.tables.get(&state.routing_epoch) {
            None => {
                self.tables.insert(state.routing_epoch, table);
            }
            Some(first) if *first != table => {
                let what = format!(
                    "node {node} routes by another slot table than other nodes at epoch {}",
                    state.routing_epoch
                );
                self.violation(at, what);
            }
            Some(_) => {}
        }
    }

    /// Checks the PRGs' ownership, replica by replica and across PRGs.
    fn ownership(&mut self, at: Duration, replicas: &BTreeMap<String, Vec<Replica>>) {
        let mut found = Vec::new();
        // Slot → groups serving writes, per tenant, by each group's most advanced replica.
        let mut writers: BTreeMap<(String, u32), Vec<&str>> = BTreeMap::new();
        for (group, of_group) in replicas {
            let (tenant, index) = group.rsplit_once(':').unwrap_or((group.as_str(), ""));
            let index: Option<u32> = index.parse().ok();
            for r in of_group.iter().filter(|r| r.changed) {
                for (slot, state) in r.ownership.states() {
                    match state {
                        SlotState::Owned { .. } => {
                            let Some(mark) = r.ownership.mark(slot).filter(|m| m.ended) else { continue };
                            let key = (tenant.to_string(), slot, mark.move_id);
                            let first = self.takes.entry(key).or_insert_with(|| group.clone());
                            if first != group {
                                found.push(format!(
                                    "move {} took effect twice: slot {slot} of {tenant} served after it by {first} and by {group} (node {})",
                                    mark.move_id, r.node
                                ));
                            }
                        }
                        SlotState::Gone { to, epoch } => {
                            let named =
                                self.tables.get(&epoch).and_then(|t| t.get(tenant)).and_then(|o| o.get(slot as usize));
                            if let Some(&named) = named.filter(|&&n| n != to) {
                                found.push(format!(
                                    "{group} (node {}) handed slot {slot} to PRG {to} at epoch {epoch}, which routes it to PRG {named}",
                                    r.node
                                ));
                            }
                            if index == Some(to) {
                                found.push(format!("{group} handed slot {slot} to itself"));
                            }
                        }
                        _ => {}
                    }
                }
            }
            if let Some(best) = of_group.iter().max_by_key(|r| (r.applied, r.incarnation)) {
                let newest = self.newest.entry(group.clone()).or_insert((0, best.node, best.ownership.clone()));
                if best.applied > newest.0 {
                    *newest = (best.applied, best.node, best.ownership.clone());
                }
            }
        }
        for (group, (_, _, ownership)) in &self.newest {
            let tenant = group.rsplit_once(':').map_or(group.as_str(), |(t, _)| t);
            for (slot, state) in ownership.states() {
                if matches!(state, SlotState::Owned { .. }) {
                    writers.entry((tenant.to_string(), slot)).or_default().push(group);
                }
            }
        }
        for ((tenant, slot), groups) in writers {
            if groups.len() > 1 {
                found.push(format!("slot {slot} of {tenant} is served for writes by {}", groups.join(" and ")));
            }
        }
        for what in found {
            self.violation(at, what);
        }
    }

    /// The running node that leads `group` in the highest term, if any.
    pub fn leader_of(&self, group: &str) -> Option<u64> {
        let mut leader: Option<(u64, u64)> = None;
        for (&node, live) in &self.live {
            let Some(g) = live.shared.host.group(group) else { continue };
            let m = g.raft.metrics();
            let m = m.borrow_watched();
            if m.state == ServerState::Leader && leader.is_none_or(|(_, term)| m.current_term > term) {
                leader = Some((node, m.current_term));
            }
        }
        leader.map(|(node, _)| node)
    }

    /// Slot moves seen to end on some replica, counted per slot.
    pub fn moves_seen(&self) -> usize {
        self.takes.len()
    }

    /// Whether the cluster has settled, with `running` up and `replicas`
    /// voters per PRG; if not, what is still unsettled.
    pub fn converged(&self, running: &BTreeSet<u64>, replicas: usize) -> Result<(), String> {
        for &node in running {
            let Some(live) = self.live.get(&node) else { return Err(format!("node {node} is not running")) };
            if live.cache != CacheState::Fresh {
                return Err(format!("node {node}'s control-plane cache is {}", live.cache));
            }
        }
        let states: Vec<(u64, Arc<ClusterState>)> = self.live.iter().map(|(&n, l)| (n, l.shared.cache.get())).collect();
        let (_, state) = states.iter().max_by_key(|(_, s)| s.version).ok_or("no node is running")?;
        if let Some((node, s)) = states.iter().find(|(_, s)| s.routing_epoch != state.routing_epoch) {
            return Err(format!("node {node} routes by epoch {}, not {}", s.routing_epoch, state.routing_epoch));
        }
        if let Some(op) = state.running_operation() {
            return Err(format!("operation {} is still running", op.id));
        }
        self.cp_converged(state)?;
        if let Some(m) = state.moves.values().find(|m| !m.phase.is_finished()) {
            return Err(format!("slot move {} is at {:?}", m.id, m.phase));
        }
        if let Some(m) = state.replica_moves.values().find(|m| !m.phase.is_finished()) {
            return Err(format!("replica move {} is at {:?}", m.id, m.phase));
        }
        for p in state.placements.values() {
            let group = p.prg.to_string();
            if p.members.len() != replicas || !p.learners.is_empty() {
                return Err(format!("{group} is placed on {:?} with learners {:?}", p.members, p.learners));
            }
            for (&node, live) in &self.live {
                match (live.shared.host.group(&group).is_some(), p.members.contains(&node)) {
                    (false, true) => return Err(format!("node {node} does not host {group}, a member of it")),
                    (true, false) => return Err(format!("node {node} still hosts {group}, no member of it")),
                    _ => {}
                }
            }
            let Some(leader) = self.leader_of(&group) else { return Err(format!("{group} has no leader")) };
            let members: BTreeSet<u64> = p.members.iter().copied().collect();
            for &node in &p.members {
                let m = self.live[&node].shared.host.group(&group).expect("checked above").raft.metrics();
                let m = m.borrow_watched();
                if m.current_leader != Some(leader) {
                    return Err(format!("node {node} takes {:?} for {group}'s leader, not {leader}", m.current_leader));
                }
                if node == leader {
                    let voters: BTreeSet<u64> = m.membership_config.membership().voter_ids().collect();
                    let learners = m.membership_config.membership().learner_ids().count();
                    if voters != members || learners > 0 {
                        return Err(format!(
                            "{group}'s leader has voters {voters:?} and {learners} learners; placed on {members:?}"
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The control plane's votes have settled: the state names its leader's
    /// voters and no learner, exactly those nodes host a `_cp` replica,
    /// and a Draining node votes only when too few Active nodes could
    /// take its vote.
    fn cp_converged(&self, state: &ClusterState) -> Result<(), String> {
        let Some(leader) = self.leader_of(CP_GROUP) else { return Err("the control plane has no leader".into()) };
        let m = self.live[&leader].shared.host.group(CP_GROUP).ok_or("the control plane's leader hosts no _cp")?;
        let voters: Vec<u64> = m.raft.metrics().borrow_watched().membership_config.membership().voter_ids().collect();
        if state.cp_members != voters || !state.cp_learners.is_empty() {
            return Err(format!(
                "the control plane votes on {voters:?}, its state names {:?} and learners {:?}",
                state.cp_members, state.cp_learners
            ));
        }
        let hosting: Vec<u64> =
            self.live.iter().filter(|(_, l)| l.shared.host.group(CP_GROUP).is_some()).map(|(n, _)| *n).collect();
        if hosting != voters {
            return Err(format!("nodes {hosting:?} host a _cp replica; its voters are {voters:?}"));
        }
        let active = state.nodes.values().filter(|n| n.state == NodeState::Active).count();
        let draining = voters.iter().find(|v| state.nodes.get(v).is_some_and(|n| n.state != NodeState::Active));
        if let Some(v) = draining.filter(|_| active >= 3) {
            return Err(format!("node {v} still votes while Draining, with {active} active nodes to take its vote"));
        }
        Ok(())
    }
}

/// `node` leads `group` in `term`: a violation if another node led it in
/// that term.
fn leads(leaders: &mut BTreeMap<(String, u64), u64>, group: &str, term: u64, node: u64) -> Option<String> {
    let first = *leaders.entry((group.to_string(), term)).or_insert(node);
    (first != node).then(|| format!("group {group} has two leaders in term {term}: node {first} and node {node}"))
}

/// Moves whose exported slots are all fenced in `ownership`.
fn moves_fenced(ownership: &Ownership) -> Vec<MoveId> {
    let mut moves: BTreeMap<MoveId, bool> = BTreeMap::new();
    for (_, s) in ownership.states() {
        match s {
            SlotState::Fenced { move_id } => {
                moves.entry(move_id).or_insert(true);
            }
            SlotState::Owned { exporting: Some(m) } => {
                moves.insert(m, false);
            }
            _ => {}
        }
    }
    moves.into_iter().filter(|(_, all)| *all).map(|(m, _)| m).collect()
}

/// Keeps node `node` in `invariants`' samples while it runs, judging its
/// cache's age every [`SAMPLE_EVERY`] by its own runtime's clock. Runs
/// until the task is dropped with its host.
pub async fn watch(invariants: Arc<Mutex<Invariants>>, node: u64, shared: Arc<Shared>) {
    let registration = Invariants::register(&invariants, node, shared.clone());
    loop {
        let cache = shared.cache.cache_state(tokio::time::Instant::now());
        if let Some(live) = invariants.lock().unwrap().live.get_mut(&node) {
            if live.incarnation == registration.incarnation {
                live.cache = cache;
            }
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidal_core::ownership::SlotCommand;
    use tidal_core::Tenant;

    const T: Duration = Duration::from_secs(1);

    /// A PRG of an 8-slot tenant that owns `slots` from its creation.
    fn owning(slots: std::ops::Range<u32>) -> Ownership {
        Ownership::genesis(8, std::slice::from_ref(&slots))
    }

    fn replica(node: u64, applied: u64, ownership: &Ownership) -> Replica {
        Replica { node, incarnation: node, applied, ownership: Arc::new(ownership.clone()), changed: true }
    }

    fn apply(o: &mut Ownership, cmds: &[SlotCommand]) {
        for c in cmds {
            o.apply(c).unwrap();
        }
    }

    /// Move 5 of slot 3 from PRG 0 to PRG 1, committed or rolled back.
    fn moved(commit: bool) -> (Ownership, Ownership) {
        let mut src = owning(0..4);
        let mut dst = owning(4..8);
        let slots = vec![3];
        apply(&mut dst, &[SlotCommand::BeginImport { move_id: 5, slots: slots.clone() }]);
        apply(
            &mut src,
            &[
                SlotCommand::BeginExport { move_id: 5, slots: slots.clone() },
                SlotCommand::Fence { move_id: 5, slots: slots.clone() },
            ],
        );
        if commit {
            apply(&mut dst, &[SlotCommand::Adopt { move_id: 5, slots: slots.clone() }]);
            apply(&mut src, &[SlotCommand::Release { move_id: 5, slots, to: 1, epoch: 2 }]);
        } else {
            apply(&mut src, &[SlotCommand::Unfence { move_id: 5, slots: slots.clone() }]);
            apply(&mut dst, &[SlotCommand::DropImport { move_id: 5, slots }]);
        }
        (src, dst)
    }

    fn groups(src: &[Replica], dst: &[Replica]) -> BTreeMap<String, Vec<Replica>> {
        let copy = |rs: &[Replica]| rs.iter().map(|r| replica(r.node, r.applied, &r.ownership)).collect();
        BTreeMap::from([("default:0".to_string(), copy(src)), ("default:1".to_string(), copy(dst))])
    }

    #[test]
    fn two_leaders_in_one_term_are_caught_and_one_per_term_is_not() {
        let mut leaders = BTreeMap::new();
        assert_eq!(leads(&mut leaders, "_cp", 1, 1), None);
        assert_eq!(leads(&mut leaders, "_cp", 1, 1), None);
        assert_eq!(leads(&mut leaders, "_cp", 2, 2), None);
        assert_eq!(leads(&mut leaders, "default:0", 2, 3), None);
        let two = leads(&mut leaders, "_cp", 2, 3).expect("a second leader in term 2");
        assert!(two.contains("group _cp has two leaders in term 2: node 2 and node 3"), "{two}");
    }

    #[test]
    fn a_move_that_commits_or_rolls_back_passes() {
        for commit in [true, false] {
            let mut inv = Invariants::default();
            inv.tables.insert(2, BTreeMap::from([("default".to_string(), vec![0, 0, 0, 1, 1, 1, 1, 1])]));
            let (src, dst) = moved(commit);
            let before = owning(0..4);
            // Replicas at different points of the same log, sampled twice.
            let g = groups(&[replica(1, 9, &src), replica(2, 3, &before)], &[replica(3, 9, &dst)]);
            inv.ownership(T, &g);
            inv.ownership(T, &g);
            assert!(inv.violations.is_empty(), "commit {commit}: {:?}", inv.violations);
        }
    }

    #[test]
    fn a_move_that_both_commits_and_rolls_back_is_caught() {
        let mut inv = Invariants::default();
        let (_, adopted) = moved(true);
        let (unfenced, _) = moved(false);
        // The target adopted the slot on one replica; later the source
        // unfenced it on another: both served slot 3 after move 5.
        inv.ownership(T, &groups(&[], &[replica(3, 9, &adopted)]));
        inv.ownership(T, &groups(&[replica(1, 9, &unfenced)], &[]));
        assert!(
            inv.violations.iter().any(|v| v.contains("move 5 took effect twice: slot 3 of default")),
            "{:?}",
            inv.violations
        );
    }

    #[test]
    fn a_slot_served_for_writes_by_two_prgs_is_caught() {
        let mut inv = Invariants::default();
        let (_, adopted) = moved(true);
        let before = owning(0..4);
        // The source's most advanced replica never fenced slot 3, yet the
        // target adopted it.
        inv.ownership(T, &groups(&[replica(1, 9, &before), replica(2, 4, &before)], &[replica(3, 9, &adopted)]));
        assert_eq!(inv.violations.len(), 1, "{:?}", inv.violations);
        assert!(inv.violations[0].contains("slot 3 of default is served for writes by default:0 and default:1"));
    }

    /// A drained PRG is deleted while one of its replicas lags behind the
    /// release of its last slots: once the replicas that applied the
    /// release are gone, the lagging one is not a second writer (it is a
    /// prefix of a log that gave the slot away, and cannot be elected
    /// alone). A writer that the group's newest state names still is.
    #[test]
    fn a_lagging_replica_left_of_a_deleted_prg_is_not_a_second_writer() {
        let mut inv = Invariants::default();
        let (released, adopted) = moved(true);
        let before = owning(0..4);
        inv.ownership(T, &groups(&[replica(1, 9, &released), replica(2, 4, &before)], &[replica(3, 9, &adopted)]));
        inv.ownership(T, &groups(&[replica(2, 4, &before)], &[replica(3, 9, &adopted)]));
        assert!(inv.violations.is_empty(), "{:?}", inv.violations);
        // The source's newest state owning the slot is caught, whoever is left.
        let mut inv = Invariants::default();
        inv.ownership(T, &groups(&[replica(1, 12, &before)], &[replica(3, 9, &adopted)]));
        inv.ownership(T, &groups(&[], &[replica(3, 9, &adopted)]));
        assert!(
            inv.violations.iter().any(|v| v.contains("served for writes by default:0 and default:1")),
            "{:?}",
            inv.violations
        );
    }

    #[test]
    fn a_slot_handed_to_a_prg_its_epoch_does_not_name_is_caught() {
        let mut inv = Invariants::default();
        // Epoch 2 routes slot 3 to PRG 0, but the source released it to PRG 1 at epoch 2.
        inv.tables.insert(2, BTreeMap::from([("default".to_string(), vec![0, 0, 0, 0, 1, 1, 1, 1])]));
        let (src, dst) = moved(true);
        inv.ownership(T, &groups(&[replica(1, 9, &src)], &[replica(3, 9, &dst)]));
        assert!(
            inv.violations.iter().any(|v| v.contains("handed slot 3 to PRG 1 at epoch 2, which routes it to PRG 0")),
            "{:?}",
            inv.violations
        );
    }

    #[test]
    fn two_slot_tables_at_one_epoch_are_caught_once() {
        let mut inv = Invariants::default();
        let mut a = ClusterState { routing_epoch: 4, ..ClusterState::default() };
        a.tenants.insert("default".into(), Tenant::new("default", 8, 2));
        let mut b = a.clone();
        inv.table(T, 1, &a);
        inv.table(T, 2, &b);
        assert!(inv.violations.is_empty(), "{:?}", inv.violations);
        b.tenants.get_mut("default").unwrap().owner[0] = 1;
        inv.table(T, 3, &b);
        inv.table(T + T, 3, &b);
        assert_eq!(inv.violations.len(), 1, "reported once: {:?}", inv.violations);
        assert!(inv.violations[0].contains("node 3 routes by another slot table than other nodes at epoch 4"));
    }

    #[test]
    fn only_moves_with_every_slot_fenced_count_as_fenced() {
        let mut o = owning(0..8);
        apply(
            &mut o,
            &[
                SlotCommand::BeginExport { move_id: 1, slots: vec![0, 1] },
                SlotCommand::Fence { move_id: 1, slots: vec![0, 1] },
                SlotCommand::BeginExport { move_id: 2, slots: vec![2] },
            ],
        );
        assert_eq!(moves_fenced(&o), vec![1]);
    }
}
