//! A scaling operation: a plan, journaled in the control plane and carried
//! out step by step by its leader, with every phase gated on health.
//!
//! ```text
//!  Preflight ─> AddNodes ─> CreatePrgs ─> MoveSlots ─> MoveReplicas ─> Leaders ─> Validate ─> Done
//!      │            │            │             │              │
//!      └────────────┴────────────┴──── fails or cancelled ────┴─> RollingBack ─> RolledBack
//!                                              (after a slot moved)            ─> Failed / Cancelled
//! ```
//!
//! Slots move before replicas: an old PRG that has handed half its slots to
//! a new one is half the size when one of its replicas moves.
//!
//! The point of no return is the first slot move that commits: from there
//! the new PRGs own data, so a failure or a cancel stops the operation
//! where it is (moves in flight finish or roll back by their own protocol)
//! instead of undoing it. Before it, rolling back removes the PRGs the
//! operation created, which own nothing yet.
//!
//! Everything here is plain data and pure functions; the control plane's
//! commands change it and its leader's executor acts on it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cluster::ClusterState;
use crate::ids::NodeId;
use crate::ownership::MoveId;
use crate::planner::scale::ScalePlan;

pub type OpId = u64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum OpPhase {
    Preflight,
    AddNodes,
    CreatePrgs,
    MoveSlots,
    MoveReplicas,
    Leaders,
    Validate,
    Done,
    RollingBack,
    RolledBack,
    Cancelled,
    Failed,
}

impl OpPhase {
    /// Every phase: the forward ones, then those of stopping.
    pub const ALL: [OpPhase; 12] = [
        OpPhase::Preflight,
        OpPhase::AddNodes,
        OpPhase::CreatePrgs,
        OpPhase::MoveSlots,
        OpPhase::MoveReplicas,
        OpPhase::Leaders,
        OpPhase::Validate,
        OpPhase::Done,
        OpPhase::RollingBack,
        OpPhase::RolledBack,
        OpPhase::Cancelled,
        OpPhase::Failed,
    ];

    pub fn is_finished(self) -> bool {
        matches!(self, OpPhase::Done | OpPhase::RolledBack | OpPhase::Cancelled | OpPhase::Failed)
    }

    /// The phase after this one when all goes well.
    pub fn next(self) -> Option<OpPhase> {
        // The first eight of ALL, in order, are the forward phases.
        let i = Self::ALL[..8].iter().position(|p| *p == self)?;
        Self::ALL[..8].get(i + 1).copied()
    }

    /// Whether an operation in this phase may go to `next`.
    pub fn may_become(self, next: OpPhase) -> bool {
        use OpPhase::*;
        if self.is_finished() {
            return false;
        }
        match next {
            RollingBack => self != RollingBack,
            RolledBack | Cancelled | Failed => self == RollingBack,
            _ => self.next() == Some(next),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            OpPhase::Preflight => "preflight",
            OpPhase::AddNodes => "add-nodes",
            OpPhase::CreatePrgs => "create-prgs",
            OpPhase::MoveSlots => "move-slots",
            OpPhase::MoveReplicas => "move-replicas",
            OpPhase::Leaders => "leaders",
            OpPhase::Validate => "validate",
            OpPhase::Done => "done",
            OpPhase::RollingBack => "rolling-back",
            OpPhase::RolledBack => "rolled-back",
            OpPhase::Cancelled => "cancelled",
            OpPhase::Failed => "failed",
        }
    }
}

/// How many moves may be in flight at once: on any one node (a node
/// counts a move when it holds a replica of a PRG the move touches, or
/// receives the replica), and in the whole cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    pub per_node: u32,
    pub cluster: u32,
}

impl Default for Budget {
    fn default() -> Self {
        Self { per_node: 2, cluster: 4 }
    }
}

/// What one step of an operation does: an index into its plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepKind {
    /// `plan.slot_moves[i]`.
    Slots(usize),
    /// `plan.replica_moves[i]`.
    Replica(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepState {
    Pending,
    Running,
    Done,
    Failed,
    /// Not started: the operation stopped first.
    Skipped,
}

impl StepState {
    pub fn name(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Running => "running",
            StepState::Done => "done",
            StepState::Failed => "failed",
            StepState::Skipped => "skipped",
        }
    }
}

/// Attempts a step gets (a move that rolls back, say because its fence
/// ran over its budget under load, is tried again) before it fails.
pub const STEP_ATTEMPTS: usize = 3;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpStep {
    pub kind: StepKind,
    pub state: StepState,
    /// The moves started for this step, one per attempt, latest last.
    pub moves: Vec<MoveId>,
    pub started_ms: Option<u64>,
    pub finished_ms: Option<u64>,
}

impl OpStep {
    /// The phase this step belongs to.
    pub fn phase(&self) -> OpPhase {
        match self.kind {
            StepKind::Slots(_) => OpPhase::MoveSlots,
            StepKind::Replica(_) => OpPhase::MoveReplicas,
        }
    }
}

/// Something that happened to an operation, for `tidal operations ID`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpEvent {
    pub at_ms: u64,
    pub text: String,
}

/// Most events an operation keeps (the first ones and the latest).
pub const MAX_EVENTS: usize = 200;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    pub id: OpId,
    /// What was asked, in the words of the scaling API (`scale_out`).
    pub kind: String,
    pub plan: ScalePlan,
    pub budget: Budget,
    /// How long a gate may take to pass before its step fails.
    pub gate_timeout_ms: u64,
    /// How long new nodes may take to join and become ready.
    pub join_timeout_ms: u64,
    pub phase: OpPhase,
    pub steps: Vec<OpStep>,
    /// Whether the plan's new PRGs were created (and not removed since).
    pub prgs_created: bool,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub phase_started_ms: u64,
    pub finished_ms: Option<u64>,
    /// Each phase passed, with how long it took (ms).
    pub phase_times: Vec<(OpPhase, u64)>,
    pub cancel_requested: bool,
    pub error: Option<String>,
    pub events: Vec<OpEvent>,
}

impl Operation {
    /// A new operation that will run `plan`, one step per move in it.
    pub fn new(kind: &str, plan: ScalePlan, budget: Budget, gate_timeout_ms: u64, join_timeout_ms: u64) -> Self {
        let slots = (0..plan.slot_moves.len()).map(StepKind::Slots);
        let replicas = (0..plan.replica_moves.len()).map(StepKind::Replica);
        let steps = slots
            .chain(replicas)
            .map(|kind| OpStep {
                kind,
                state: StepState::Pending,
                moves: Vec::new(),
                started_ms: None,
                finished_ms: None,
            })
            .collect();
        Operation {
            id: 0,
            kind: kind.to_string(),
            plan,
            budget,
            gate_timeout_ms,
            join_timeout_ms,
            phase: OpPhase::Preflight,
            steps,
            prgs_created: false,
            created_ms: 0,
            updated_ms: 0,
            phase_started_ms: 0,
            finished_ms: None,
            phase_times: Vec::new(),
            cancel_requested: false,
            error: None,
            events: Vec::new(),
        }
    }

    /// Record `text` at `now_ms`, keeping the first half of the limit and
    /// the latest events.
    pub fn note(&mut self, now_ms: u64, text: String) {
        if self.events.len() >= MAX_EVENTS {
            self.events.remove(MAX_EVENTS / 2);
        }
        self.events.push(OpEvent { at_ms: now_ms, text });
        self.updated_ms = now_ms;
    }

    /// Go to `phase` at `now_ms`, timing the phase left.
    pub fn enter(&mut self, now_ms: u64, phase: OpPhase) {
        self.phase_times.push((self.phase, now_ms.saturating_sub(self.phase_started_ms)));
        self.note(now_ms, format!("{} -> {}", self.phase.name(), phase.name()));
        self.phase = phase;
        self.phase_started_ms = now_ms;
        if phase.is_finished() {
            self.finished_ms = Some(now_ms);
            for s in &mut self.steps {
                if s.state == StepState::Pending {
                    s.state = StepState::Skipped;
                }
            }
        }
    }

    /// The nodes a step's move touches, against `state`.
    pub fn step_nodes(&self, state: &ClusterState, step: &OpStep) -> Vec<NodeId> {
        let mut nodes: Vec<NodeId> = match step.kind {
            StepKind::Slots(i) => {
                let m = &self.plan.slot_moves[i];
                [&m.from, &m.to]
                    .iter()
                    .filter_map(|p| state.placements.get(*p))
                    .flat_map(|p| p.members.iter().copied())
                    .collect()
            }
            StepKind::Replica(i) => {
                let m = &self.plan.replica_moves[i].step;
                let mut n: Vec<NodeId> = state.placements.get(&m.prg).map(|p| p.members.clone()).unwrap_or_default();
                n.push(m.to);
                n
            }
        };
        nodes.sort_unstable();
        nodes.dedup();
        nodes
    }

    /// Whether a slot move of this operation has committed: its new PRGs
    /// own data, and rolling back can no longer remove them.
    pub fn past_no_return(&self, state: &ClusterState) -> bool {
        self.steps
            .iter()
            .filter(|s| matches!(s.kind, StepKind::Slots(_)))
            .flat_map(|s| &s.moves)
            .any(|id| state.moves.get(id).is_none_or(|m| m.phase.is_committed()))
    }

    /// The PRGs step `i` touches, each with the node whose replica it
    /// moves away (if it does): a slot move's two PRGs, a replica move's.
    pub fn step_prgs(&self, i: usize) -> Vec<(crate::ids::PrgId, Option<NodeId>)> {
        match self.steps.get(i).map(|s| s.kind) {
            Some(StepKind::Slots(k)) => self
                .plan
                .slot_moves
                .get(k)
                .map(|m| vec![(m.from.clone(), None), (m.to.clone(), None)])
                .unwrap_or_default(),
            Some(StepKind::Replica(k)) => self
                .plan
                .replica_moves
                .get(k)
                .map(|m| vec![(m.step.prg.clone(), Some(m.step.from))])
                .unwrap_or_default(),
            None => Vec::new(),
        }
    }

    /// Pending steps of the current phase that may start now without
    /// going over the budget, given the moves in flight in `state`.
    /// A replica move waits while its PRG has any move in flight, or one
    /// started in the same round: a PRG changes its voters one move at a
    /// time, and a start that broke that rule would be refused.
    pub fn startable(&self, state: &ClusterState) -> Vec<usize> {
        let (mut per_node, mut total) = moves_in_flight(state);
        let mut claimed = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            if step.state != StepState::Pending || step.phase() != self.phase {
                continue;
            }
            if total >= self.budget.cluster {
                break;
            }
            let prgs = self.step_prgs(i);
            let busy = |p: &crate::ids::PrgId| claimed.contains(p) || state.busy_with(p).is_some();
            if matches!(step.kind, StepKind::Replica(_)) && prgs.iter().any(|(p, _)| busy(p)) {
                continue;
            }
            let nodes = self.step_nodes(state, step);
            if nodes.iter().any(|n| per_node.get(n).copied().unwrap_or(0) >= self.budget.per_node) {
                continue;
            }
            for n in nodes {
                *per_node.entry(n).or_default() += 1;
            }
            claimed.extend(prgs.into_iter().map(|(p, _)| p));
            total += 1;
            out.push(i);
        }
        out
    }
}

/// Moves in flight in `state`: per node (see [`Budget`]), and in all.
pub fn moves_in_flight(state: &ClusterState) -> (BTreeMap<NodeId, u32>, u32) {
    let mut per_node: BTreeMap<NodeId, u32> = BTreeMap::new();
    let mut total = 0;
    let members = |p: &crate::ids::PrgId| state.placements.get(p).map(|p| p.members.clone()).unwrap_or_default();
    for m in state.moves.values().filter(|m| !m.phase.is_finished()) {
        let mut nodes = members(&m.source());
        nodes.extend(members(&m.target()));
        nodes.sort_unstable();
        nodes.dedup();
        for n in nodes {
            *per_node.entry(n).or_default() += 1;
        }
        total += 1;
    }
    for m in state.replica_moves.values().filter(|m| !m.phase.is_finished()) {
        let mut nodes = members(&m.prg);
        nodes.push(m.to);
        nodes.sort_unstable();
        nodes.dedup();
        for n in nodes {
            *per_node.entry(n).or_default() += 1;
        }
        total += 1;
    }
    (per_node, total)
}

#[cfg(test)]
#[path = "operation_tests.rs"]
mod tests;
