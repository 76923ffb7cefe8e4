//! Shrink plans: the only way a tidal cluster gets smaller.
//!
//! Nothing shrinks because a node restarted or went quiet. An operator
//! creates a plan (its id, and the placements the cluster should end
//! with), reviews the exact list of moves it binds, and arms it; only one
//! plan is armed at a time.
//!
//! ```text
//!  Draft ──arm──> Armed ──> Completed
//!    │              └──cancel──> RolledBack
//!    └──cancel──> Cancelled
//! ```
//!
//! A plan names, for each PRG that stays, its members afterwards
//! ([`TargetPlacement`]). Of the tenants it names, the PRGs it does not
//! name are drained: their slots move to the named ones and they are
//! deleted. Tenants it does not name keep their PRGs and members. Nodes
//! that hold no replica of the resulting layout are drained and removed.
//!
//! Making a plan binds, against the cluster it was made from, every slot
//! move (in batches, each its own routing-epoch bump), every replica move
//! onto the target members, the PRGs deleted and the nodes removed, with
//! the bytes each move carries and an ETA. Arming runs exactly that list, and refuses when the
//! cluster has changed since.
//!
//! Plain data and pure functions; the control plane's commands change it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::cluster::{ClusterState, NodeState};
use crate::ids::{NodeId, PrgId};
use crate::operation::OpId;
use crate::planner::scale::{bytes_after_slots, slot_sizes, PlannedReplicaMove, PlannedSlotMove, ScalePlan, Sizes};
use crate::planner::slots::{balance, SlotStep};
use crate::planner::{place_replicas, PlanError, PlanNode, PlanPrg, ReplicaStep, REPLICAS};

/// Most characters in a plan id.
pub const MAX_PLAN_ID: usize = 64;

/// Most slots one slot move of a plan carries: each batch is fenced, moved
/// and published (an epoch bump) on its own, so a batch's fence stays short.
pub const SLOTS_PER_BATCH: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlanState {
    Draft,
    Armed,
    Completed,
    RolledBack,
    Cancelled,
}

impl PlanState {
    pub const ALL: [PlanState; 5] =
        [PlanState::Draft, PlanState::Armed, PlanState::Completed, PlanState::RolledBack, PlanState::Cancelled];

    /// The name the admin API uses (the seed runbook's spelling).
    pub fn name(self) -> &'static str {
        match self {
            PlanState::Draft => "Draft",
            PlanState::Armed => "Armed",
            PlanState::Completed => "Completed",
            PlanState::RolledBack => "RolledBack",
            PlanState::Cancelled => "Cancelled",
        }
    }

    pub fn is_finished(self) -> bool {
        matches!(self, PlanState::Completed | PlanState::RolledBack | PlanState::Cancelled)
    }

    /// Whether a plan in this state may go to `next`.
    pub fn may_become(self, next: PlanState) -> bool {
        use PlanState::*;
        matches!((self, next), (Draft, Armed) | (Draft, Cancelled) | (Armed, Completed) | (Armed, RolledBack))
    }
}

/// One PRG that stays, and its members once the plan has run (leader
/// first).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetPlacement {
    pub prg: PrgId,
    pub members: Vec<NodeId>,
    /// A routing epoch above the one the plan was made at: the operator's
    /// statement of which routing the plan was reviewed against.
    pub routing_epoch: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShrinkPlan {
    pub id: String,
    pub state: PlanState,
    pub targets: Vec<TargetPlacement>,
    /// The control-plane version the plan was made from (for display).
    pub version: u64,
    /// The routing epoch and the nodes (with their states) the plan was
    /// made from: arming refuses a cluster where either has changed.
    pub routing_epoch: u64,
    pub nodes: BTreeMap<NodeId, NodeState>,
    /// Replica moves onto the target members, in the order they run
    /// (after the slot moves).
    pub replica_moves: Vec<PlannedReplicaMove>,
    /// Slot moves into the target PRGs, in the order they run (first),
    /// each at most [`SLOTS_PER_BATCH`] slots.
    pub slot_moves: Vec<PlannedSlotMove>,
    /// Leaderships handed to each target's first member.
    pub leader_changes: Vec<(PrgId, NodeId)>,
    /// PRGs deleted once they own no slots.
    pub remove_prgs: Vec<PrgId>,
    /// Nodes drained and removed once they hold no replica.
    pub remove_nodes: Vec<NodeId>,
    pub total_bytes: u64,
    pub epoch_bumps: u64,
    pub eta_ms: u64,
    pub created_ms: u64,
    pub armed_ms: Option<u64>,
    pub finished_ms: Option<u64>,
    /// Every tenant's slot owners and every PRG's members when the plan was
    /// made: what a cancel of the armed plan puts back.
    pub before: Layout,
    /// The operation that runs the plan, once armed (or, while rolling
    /// back, the one that undoes it).
    pub operation: Option<OpId>,
    /// An operator cancelled the armed plan: it is being undone.
    pub rolling_back: bool,
    /// Operations started to undo the plan.
    pub undo_attempts: u32,
    pub error: Option<String>,
}

/// Where slots and replicas are: each tenant's slot owners (PRG indices)
/// and each PRG's members, leader first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    pub owners: BTreeMap<String, Vec<u32>>,
    pub members: BTreeMap<PrgId, Vec<NodeId>>,
}

impl Layout {
    pub fn of(state: &ClusterState) -> Self {
        Layout {
            owners: state.tenants.iter().map(|(n, t)| (n.clone(), t.owner.clone())).collect(),
            members: state.placements.iter().map(|(p, pl)| (p.clone(), pl.members.clone())).collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShrinkError {
    #[error("invalid plan id {0:?}: use 1-{MAX_PLAN_ID} characters from [A-Za-z0-9_.-]")]
    BadId(String),
    #[error("a plan with id {0} already exists")]
    Duplicate(String),
    #[error("no shrink plan {0}")]
    NotFound(String),
    #[error("the plan has no target placements")]
    NoTargets,
    #[error("no PRG {0}")]
    UnknownPrg(PrgId),
    #[error("no tenant {0}")]
    UnknownTenant(String),
    #[error("PRG {0} is a target twice")]
    TargetTwice(PrgId),
    #[error("the target members of {prg} must be {REPLICAS} distinct nodes, not {members:?}")]
    Members { prg: PrgId, members: Vec<NodeId> },
    #[error("the target members of {prg} include node {node}, which is not an active node of the cluster")]
    NotInCluster { prg: PrgId, node: NodeId },
    #[error("the target routing epoch of {prg} is {given}, not above the current {current}")]
    StaleEpoch { prg: PrgId, given: u64, current: u64 },
    #[error("the plan shrinks nothing: its layout keeps all {nodes} nodes and {prgs} PRGs")]
    NothingShrinks { nodes: usize, prgs: usize },
    #[error("node {0} is to leave, but it is not in the cluster or the plan's layout keeps a replica on it")]
    KeepsReplica(NodeId),
    #[error("a shrink keeps at least {REPLICAS} nodes, not {0}")]
    TooFewNodes(u64),
    #[error("the cluster has {current} nodes; {wanted} is not fewer (growing is a scale-up)")]
    NotFewerNodes { current: u64, wanted: u64 },
    #[error("tenant {tenant} has {current} PRGs; {wanted} is not between 1 and {current} (growing is a scale-up)")]
    BadPrgCount { tenant: String, current: u32, wanted: u32 },
    #[error("plan {id} is {}, and cannot become {}", state.name(), wanted.name())]
    State { id: String, state: PlanState, wanted: PlanState },
    #[error("plan {0} is armed; one plan is armed at a time")]
    OtherArmed(String),
    #[error("operation {0} is running; a plan is armed when it has finished")]
    Busy(OpId),
    #[error("the cluster changed since plan {id} was made ({why}): make a new plan")]
    Stale { id: String, why: String },
    #[error(transparent)]
    Placement(#[from] PlanError),
}

/// A plan id as the API takes it.
pub fn validate_id(id: &str) -> Result<(), ShrinkError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_PLAN_ID
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(ShrinkError::BadId(id.to_string()))
    }
}

/// Make plan `id` that leads `state` to `targets`, with the moves it binds
/// (see the module's documentation), and removes the nodes `leaving` names
/// (by default, those the resulting layout leaves without a replica).
/// Validates everything that does not depend on other plans (the control
/// plane checks those).
pub fn make_plan(
    state: &ClusterState,
    id: &str,
    targets: Vec<TargetPlacement>,
    leaving: Option<&BTreeSet<NodeId>>,
    sizes: &Sizes,
    now_ms: u64,
) -> Result<ShrinkPlan, ShrinkError> {
    validate_id(id)?;
    if targets.is_empty() {
        return Err(ShrinkError::NoTargets);
    }
    let active: BTreeSet<NodeId> =
        state.nodes.values().filter(|n| n.state == NodeState::Active).map(|n| n.id).collect();
    let mut named = BTreeSet::new();
    for t in &targets {
        let current = state.placements.get(&t.prg).ok_or_else(|| ShrinkError::UnknownPrg(t.prg.clone()))?;
        if !named.insert(t.prg.clone()) {
            return Err(ShrinkError::TargetTwice(t.prg.clone()));
        }
        let distinct: BTreeSet<NodeId> = t.members.iter().copied().collect();
        if t.members.len() != REPLICAS || distinct.len() != REPLICAS {
            return Err(ShrinkError::Members { prg: t.prg.clone(), members: t.members.clone() });
        }
        // A member the PRG has now may stay even on a draining node only if
        // the operator names it; a new one must be active.
        if let Some(&node) = t.members.iter().find(|n| !active.contains(n) && !current.members.contains(n)) {
            return Err(ShrinkError::NotInCluster { prg: t.prg.clone(), node });
        }
        if let Some(&node) = t.members.iter().find(|n| !state.nodes.contains_key(n)) {
            return Err(ShrinkError::NotInCluster { prg: t.prg.clone(), node });
        }
        if t.routing_epoch <= state.routing_epoch {
            return Err(ShrinkError::StaleEpoch {
                prg: t.prg.clone(),
                given: t.routing_epoch,
                current: state.routing_epoch,
            });
        }
    }
    let tenants: BTreeSet<&str> = targets.iter().map(|t| t.prg.tenant.as_str()).collect();
    // The layout afterwards: the targets, and every PRG of a tenant the
    // plan does not name as it is.
    let remove_prgs: Vec<PrgId> = state
        .placements
        .keys()
        .filter(|p| tenants.contains(p.tenant.as_str()) && !named.contains(*p))
        .cloned()
        .collect();
    let mut after: BTreeMap<&PrgId, &[NodeId]> = targets.iter().map(|t| (&t.prg, t.members.as_slice())).collect();
    for p in state.placements.values().filter(|p| !tenants.contains(p.prg.tenant.as_str())) {
        after.insert(&p.prg, &p.members);
    }
    let used: BTreeSet<NodeId> = after.values().flat_map(|m| m.iter().copied()).collect();
    let remove_nodes: Vec<NodeId> = match leaving {
        None => state.nodes.keys().filter(|n| !used.contains(n)).copied().collect(),
        Some(leaving) => {
            if let Some(&node) = leaving.iter().find(|n| used.contains(n) || !state.nodes.contains_key(n)) {
                return Err(ShrinkError::KeepsReplica(node));
            }
            leaving.iter().copied().collect()
        }
    };
    if remove_prgs.is_empty() && remove_nodes.is_empty() {
        return Err(ShrinkError::NothingShrinks { nodes: state.nodes.len(), prgs: state.placements.len() });
    }

    // The slots of the drained PRGs go to the ones that stay, in batches;
    // then replicas move, each carrying its PRG as the slot moves left it
    // (the order the operation runs them in, as a scale-up does).
    let mut slot_moves = Vec::new();
    for tenant in &tenants {
        let t = state.tenants.get(*tenant).ok_or_else(|| ShrinkError::UnknownTenant(tenant.to_string()))?;
        let kept: Vec<u32> = targets.iter().filter(|x| x.prg.tenant == *tenant).map(|x| x.prg.index).collect();
        let bytes = slot_sizes(state, tenant, sizes);
        for SlotStep { from, to, slots, .. } in balance(&t.owner, &kept, Some(&bytes)) {
            slot_moves.extend(batches(tenant, from, to, &slots, |s| bytes[s as usize]));
        }
    }
    let prg_bytes = bytes_after_slots(sizes, &slot_moves);
    let (mut replica_moves, mut leader_changes) = (Vec::new(), Vec::new());
    for t in &targets {
        let now = &state.placements[&t.prg].members;
        member_moves(&t.prg, now, &t.members, prg_bytes(&t.prg), &mut replica_moves, &mut leader_changes);
    }
    let total_bytes =
        replica_moves.iter().map(|m| m.bytes).sum::<u64>() + slot_moves.iter().map(|m| m.bytes).sum::<u64>();
    let epoch_bumps = (replica_moves.len() + slot_moves.len() + remove_prgs.len()) as u64;
    let steps = epoch_bumps + leader_changes.len() as u64 + remove_nodes.len() as u64;
    let eta_ms = total_bytes.saturating_mul(1000) / sizes.rate.max(1) + steps * sizes.step_ms;
    Ok(ShrinkPlan {
        id: id.to_string(),
        state: PlanState::Draft,
        targets,
        version: state.version,
        routing_epoch: state.routing_epoch,
        nodes: node_states(state),
        replica_moves,
        slot_moves,
        leader_changes,
        remove_prgs,
        remove_nodes,
        total_bytes,
        epoch_bumps,
        eta_ms,
        created_ms: now_ms,
        armed_ms: None,
        finished_ms: None,
        before: Layout::of(state),
        operation: None,
        rolling_back: false,
        undo_attempts: 0,
        error: None,
    })
}

/// `slots` of `tenant` moving from its PRG `from` to `to`, in batches of at
/// most [`SLOTS_PER_BATCH`], each with the bytes `size` gives its slots.
fn batches<'a>(
    tenant: &'a str,
    from: u32,
    to: u32,
    slots: &'a [u32],
    size: impl Fn(u32) -> u64 + 'a,
) -> impl Iterator<Item = PlannedSlotMove> + 'a {
    slots.chunks(SLOTS_PER_BATCH).map(move |batch| PlannedSlotMove {
        tenant: tenant.to_string(),
        from: PrgId::new(tenant, from),
        to: PrgId::new(tenant, to),
        slots: batch.to_vec(),
        bytes: batch.iter().map(|s| size(*s)).sum(),
    })
}

/// The replica moves (each carrying `bytes`) that turn `prg`'s members
/// `now` into `wanted`, and the leadership handed to `wanted`'s first
/// member when it is not `now`'s.
fn member_moves(
    prg: &PrgId,
    now: &[NodeId],
    wanted: &[NodeId],
    bytes: u64,
    replica_moves: &mut Vec<PlannedReplicaMove>,
    leader_changes: &mut Vec<(PrgId, NodeId)>,
) {
    let leaving = now.iter().filter(|n| !wanted.contains(n));
    let joining = wanted.iter().filter(|n| !now.contains(n));
    for (&from, &to) in leaving.zip(joining) {
        replica_moves.push(PlannedReplicaMove { step: ReplicaStep { prg: prg.clone(), from, to }, bytes });
    }
    if now.first() != wanted.first() {
        leader_changes.push((prg.clone(), wanted[0]));
    }
}

fn node_states(state: &ClusterState) -> BTreeMap<NodeId, NodeState> {
    state.nodes.values().map(|n| (n.id, n.state)).collect()
}

impl ShrinkPlan {
    /// How `state` differs from the cluster the plan was made from, if it
    /// does: slots or replicas moved, PRGs were added or removed (each
    /// bumps the routing epoch), or nodes joined, left or began draining.
    pub fn changed_since(&self, state: &ClusterState) -> Option<String> {
        if state.routing_epoch != self.routing_epoch {
            return Some(format!("the routing epoch is {}, not {}", state.routing_epoch, self.routing_epoch));
        }
        let now = node_states(state);
        if now != self.nodes {
            let was: Vec<_> = self.nodes.keys().collect();
            let is: Vec<_> = now.keys().collect();
            return Some(if was == is {
                "a node began or stopped draining".to_string()
            } else {
                format!("the nodes are {is:?}, not {was:?}")
            });
        }
        None
    }
}

/// Finished plans the control plane keeps for `tidal shrink-plan list`.
pub const KEEP_FINISHED_PLANS: usize = 32;

/// Record `plan` (a Draft just made) in `state`. Refused when its id is
/// taken, or when the cluster changed between making and recording it.
pub fn create(state: &mut ClusterState, plan: &ShrinkPlan) -> Result<(), ShrinkError> {
    validate_id(&plan.id)?;
    if state.shrink_plans.contains_key(&plan.id) {
        return Err(ShrinkError::Duplicate(plan.id.clone()));
    }
    if plan.state != PlanState::Draft || plan.operation.is_some() {
        return Err(ShrinkError::State { id: plan.id.clone(), state: plan.state, wanted: PlanState::Draft });
    }
    if let Some(why) = plan.changed_since(state) {
        return Err(ShrinkError::Stale { id: plan.id.clone(), why });
    }
    state.shrink_plans.insert(plan.id.clone(), plan.clone());
    let mut finished: Vec<(u64, String)> = state
        .shrink_plans
        .values()
        .filter(|p| p.state.is_finished())
        .map(|p| (p.finished_ms.unwrap_or(0), p.id.clone()))
        .collect();
    finished.sort();
    for (_, id) in finished.iter().take(finished.len().saturating_sub(KEEP_FINISHED_PLANS)) {
        state.shrink_plans.remove(id);
    }
    Ok(())
}

/// Whether plan `id` may be armed in `state` now: it is a Draft, no other
/// plan is armed, no operation runs, and the cluster is the one it was
/// made from.
pub fn check_arm(state: &ClusterState, id: &str) -> Result<(), ShrinkError> {
    let plan = state.shrink_plans.get(id).ok_or_else(|| ShrinkError::NotFound(id.to_string()))?;
    if !plan.state.may_become(PlanState::Armed) {
        return Err(ShrinkError::State { id: id.to_string(), state: plan.state, wanted: PlanState::Armed });
    }
    if let Some(other) = state.shrink_plans.values().find(|p| p.state == PlanState::Armed) {
        return Err(ShrinkError::OtherArmed(other.id.clone()));
    }
    if let Some(op) = state.running_operation() {
        return Err(ShrinkError::Busy(op.id));
    }
    if let Some(why) = plan.changed_since(state) {
        return Err(ShrinkError::Stale { id: id.to_string(), why });
    }
    Ok(())
}

/// Cancel plan `id`, a Draft: it becomes Cancelled and nothing else
/// changes. (An armed plan is cancelled through the operation that runs
/// it, which rolls the shrink back.)
pub fn cancel_draft(state: &mut ClusterState, id: &str, now_ms: u64) -> Result<(), ShrinkError> {
    let plan = state.shrink_plans.get_mut(id).ok_or_else(|| ShrinkError::NotFound(id.to_string()))?;
    if plan.state != PlanState::Draft {
        return Err(ShrinkError::State { id: id.to_string(), state: plan.state, wanted: PlanState::Cancelled });
    }
    plan.state = PlanState::Cancelled;
    plan.finished_ms = Some(now_ms);
    Ok(())
}

/// Operations a plan starts to undo itself before it gives up and waits
/// for an operator.
pub const MAX_UNDO_ATTEMPTS: u32 = 3;

/// The moves an armed plan's operation runs, as a scale plan of the
/// cluster at `state` (its version: the operation starts there).
pub fn forward_plan(plan: &ShrinkPlan, state: &ClusterState) -> ScalePlan {
    ScalePlan {
        version: state.version,
        add_nodes: Vec::new(),
        new_prgs: Vec::new(),
        replica_moves: plan.replica_moves.clone(),
        slot_moves: plan.slot_moves.clone(),
        leader_changes: plan.leader_changes.clone(),
        total_bytes: plan.total_bytes,
        epoch_bumps: (plan.replica_moves.len() + plan.slot_moves.len()) as u64,
        eta_ms: plan.eta_ms,
    }
}

/// Whether `state`'s slots and replicas are where `before` had them
/// (members compared as sets: a leader may have moved).
pub fn layout_is_back(before: &Layout, state: &ClusterState) -> bool {
    let now = Layout::of(state);
    let set = |m: &[NodeId]| m.iter().copied().collect::<BTreeSet<_>>();
    before.owners.iter().all(|(t, o)| now.owners.get(t) == Some(o))
        && before.members.iter().all(|(p, m)| now.members.get(p).is_some_and(|n| set(n) == set(m)))
}

/// The moves that put `state` back to `before`: every slot whose owner
/// changed goes back to its old owner (in batches), every PRG whose members
/// changed gets its replicas back, and its old leader its leadership.
/// Bytes are not known here and count as 0.
pub fn undo_plan(before: &Layout, state: &ClusterState) -> ScalePlan {
    let mut slot_moves = Vec::new();
    for (tenant, old) in &before.owners {
        let Some(t) = state.tenants.get(tenant) else { continue };
        let mut back: BTreeMap<(u32, u32), Vec<u32>> = BTreeMap::new();
        for (slot, (now, was)) in t.owner.iter().zip(old).enumerate() {
            if now != was {
                back.entry((*now, *was)).or_default().push(slot as u32);
            }
        }
        for ((from, to), slots) in back {
            slot_moves.extend(batches(tenant, from, to, &slots, |_| 0));
        }
    }
    let (mut replica_moves, mut leader_changes) = (Vec::new(), Vec::new());
    for (prg, was) in &before.members {
        let Some(p) = state.placements.get(prg) else { continue };
        member_moves(prg, &p.members, was, 0, &mut replica_moves, &mut leader_changes);
    }
    let epoch_bumps = (replica_moves.len() + slot_moves.len()) as u64;
    ScalePlan {
        version: state.version,
        add_nodes: Vec::new(),
        new_prgs: Vec::new(),
        replica_moves,
        slot_moves,
        leader_changes,
        total_bytes: 0,
        epoch_bumps,
        eta_ms: 0,
    }
}

/// What the easy form asks for: the nodes to keep, and the PRG count per
/// tenant (tenants not listed keep theirs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShrinkRequest {
    pub nodes: Option<u64>,
    pub prgs: BTreeMap<String, u32>,
}

/// Plan `id`, the shrink of `state` that `req` asks for (the easy form).
/// The nodes removed are the draining ones first, then those that are not
/// control-plane voters, then those whose replicas carry the fewest bytes,
/// then the newest (highest id); the
/// PRGs drained are each tenant's smallest, then its newest. The PRGs that
/// stay are placed over the nodes that stay by the placement planner (the
/// fewest replica moves), and the target epochs are the routing epoch the
/// plan ends at.
pub fn plan_shrink(
    state: &ClusterState,
    id: &str,
    req: &ShrinkRequest,
    sizes: &Sizes,
    now_ms: u64,
) -> Result<ShrinkPlan, ShrinkError> {
    let prg_bytes = |p: &PrgId| sizes.prg_bytes.get(p).copied().unwrap_or(0);
    // The PRGs that stay.
    let mut drained: BTreeSet<PrgId> = BTreeSet::new();
    for (tenant, &wanted) in &req.prgs {
        if !state.tenants.contains_key(tenant) {
            return Err(ShrinkError::UnknownTenant(tenant.clone()));
        }
        let mut prgs: Vec<&PrgId> = state.prgs_of(tenant).into_iter().map(|p| &p.prg).collect();
        let current = prgs.len() as u32;
        if wanted == 0 || wanted > current {
            return Err(ShrinkError::BadPrgCount { tenant: tenant.clone(), current, wanted });
        }
        prgs.sort_by_key(|p| (prg_bytes(p), std::cmp::Reverse(p.index)));
        drained.extend(prgs.into_iter().take((current - wanted) as usize).cloned());
    }
    let kept: Vec<&PrgId> = state.placements.keys().filter(|p| !drained.contains(*p)).collect();
    // The nodes that go.
    let current = state.nodes.len() as u64;
    let wanted = req.nodes.unwrap_or(current);
    if wanted < REPLICAS as u64 {
        return Err(ShrinkError::TooFewNodes(wanted));
    }
    if wanted > current {
        return Err(ShrinkError::NotFewerNodes { current, wanted });
    }
    let held = |n: NodeId| -> u64 {
        kept.iter().filter(|p| state.placements[**p].members.contains(&n)).map(|p| prg_bytes(p)).sum()
    };
    let voter = |n: NodeId| state.cp_members.contains(&n);
    let mut order: Vec<(bool, bool, u64, std::cmp::Reverse<NodeId>)> = state
        .nodes
        .values()
        .map(|n| (n.state == NodeState::Active, voter(n.id), held(n.id), std::cmp::Reverse(n.id)))
        .collect();
    order.sort();
    let leaving: BTreeSet<NodeId> = order.iter().take((current - wanted) as usize).map(|o| o.3 .0).collect();
    let nodes: Vec<PlanNode> = state
        .nodes
        .values()
        .map(|n| PlanNode {
            id: n.id,
            zone: n.zone.clone(),
            capacity: 1,
            draining: leaving.contains(&n.id) || n.state != NodeState::Active,
        })
        .collect();
    let prgs: Vec<PlanPrg> =
        kept.iter().map(|p| PlanPrg { id: (*p).clone(), members: state.placements[*p].members.clone() }).collect();
    let layout = place_replicas(&nodes, &prgs)?;
    // Every PRG that stays is a target, so the plan names every tenant;
    // each target's epoch is the one the plan ends at.
    let targets: Vec<TargetPlacement> = kept
        .iter()
        .map(|p| TargetPlacement {
            prg: (*p).clone(),
            members: layout.members[*p].clone(),
            routing_epoch: state.routing_epoch + 1,
        })
        .collect();
    let mut plan = make_plan(state, id, targets, Some(&leaving), sizes, now_ms)?;
    let end = state.routing_epoch + plan.epoch_bumps.max(1);
    for t in &mut plan.targets {
        t.routing_epoch = end;
    }
    Ok(plan)
}

#[cfg(test)]
#[path = "shrink_tests.rs"]
mod tests;
