//! Commands of the control-plane log and how each changes the cluster
//! state. Pure: [`apply`] is the whole meaning of a `_cp` entry.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use tidal_core::autoscale::journal::{parse_policy, policy_json, DecisionRecord};
use tidal_core::ids::validate_tenant;
use tidal_core::operation::{Budget, OpId, OpPhase, Operation};
use tidal_core::ownership::MoveId;
use tidal_core::placement::{place_new, REPLICAS};
use tidal_core::replica_move::{check_replica_move, ReplicaMove, ReplicaPhase};
use tidal_core::shrink::{self, ShrinkPlan};
use tidal_core::slot_move::{check_new_move, MovePhase, MoveProgress, SlotMove};
use tidal_core::{ClusterState, NodeId, NodeInfo, NodeState, PrgId, Registration, Tenant};

/// Largest slot count a tenant may have.
pub use tidal_core::slot::MAX_SLOTS;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CpCommand {
    /// Add a node, or update its addresses and zone. Idempotent.
    RegisterNode(NodeInfo),
    /// Create a tenant with `prgs` PRGs placed on the registered nodes, and
    /// publish the routing at a new epoch. Creating an existing tenant with
    /// the same shape is a no-op; with another shape it is refused.
    CreateTenant { name: String, slots: u32, prgs: u32 },
    /// Record which node leads a PRG (a hint for routers; no epoch bump).
    LeaderHint { prg: PrgId, leader: NodeId },
    /// Record the members of `_cp`.
    SetCpMembers(Vec<NodeId>),
    // Variants above are as they were before entries carried a version;
    // new ones go below, so entries of every version decode.
    /// Add `count` empty PRGs to a tenant, on `members` or where the
    /// placement rules put them, and publish them at a new epoch. With
    /// `expect_epoch`, refused unless the routing epoch is still that.
    AddPrgs { tenant: String, count: u32, members: Option<Vec<NodeId>>, expect_epoch: Option<u64> },
    /// Start moving `slots` of `tenant` to PRG `to` (from `from`, or from
    /// whichever PRG owns them all).
    StartMove { tenant: String, slots: Vec<u32>, from: Option<u32>, to: PrgId },
    /// Record a move's next phase (and progress), if it is still in `expect`;
    /// with `phase == expect`, only note `error` (a step that keeps failing).
    UpdateMove {
        id: MoveId,
        expect: MovePhase,
        phase: MovePhase,
        progress: Option<MoveProgress>,
        error: Option<String>,
    },
    /// Save a move's progress, if it is still in `expect`.
    MoveProgress { id: MoveId, expect: MovePhase, progress: MoveProgress },
    /// Bump the routing epoch with a fenced move's slots owned by its
    /// target: from here the move only rolls forward.
    CommitMove { id: MoveId },
    /// Ask a move to roll back; refused once it has committed.
    CancelMove { id: MoveId },
    /// Start moving `prg`'s replica from node `from` to node `to`.
    StartReplicaMove { prg: PrgId, from: NodeId, to: NodeId },
    /// Record a replica move's next phase, if it is still in `expect`.
    UpdateReplicaMove { id: MoveId, expect: ReplicaPhase, phase: ReplicaPhase, lag: Option<u64>, error: Option<String> },
    /// The voters changed: record the new member in the old one's place
    /// (and a new routing epoch); the move is done.
    CommitReplicaMove { id: MoveId },
    /// Register a node, or update what it serves, if no other data
    /// directory holds its id (see [`Registration`]). A Draining node stays
    /// Draining.
    Register(Registration),
    /// Record how far a replica move's learner has come, if the move is
    /// still in `expect`.
    ReplicaProgress { id: MoveId, expect: ReplicaPhase, lag: u64, bytes: u64 },
    /// Start a scaling operation; refused while another one runs, or once
    /// the state has left the version its plan was made from.
    StartOperation(Box<Operation>),
    /// Take operation `id` from phase `expect` to `phase`, noting why.
    OperationPhase { id: OpId, expect: OpPhase, phase: OpPhase, note: Option<String>, error: Option<String> },
    /// Note something that happened on operation `id`.
    OperationNote { id: OpId, text: String },
    /// Create the new PRGs of operation `id`'s plan, at one new routing epoch.
    OperationCreatePrgs { id: OpId },
    /// Remove the PRGs operation `id` created (they must own no slots), at
    /// a new routing epoch: a rolled-back operation leaves no trace.
    OperationRemovePrgs { id: OpId },
    /// Start step `step` of operation `id`: its move, recorded on the step,
    /// if the disruption budget has room.
    OperationStartStep { id: OpId, step: usize },
    /// Step `step` of operation `id` has its move finished: done, to try
    /// again, or failed, as the move ended.
    OperationStepEnded { id: OpId, step: usize },
    /// Ask operation `id` to stop, rolling back what it can.
    CancelOperation { id: OpId },
    /// Record a shrink plan, a Draft (see `tidal_core::shrink`).
    CreateShrinkPlan(Box<ShrinkPlan>),
    /// Cancel shrink plan `id`: a Draft is Cancelled, an armed plan undone.
    CancelShrinkPlan { id: String },
    /// Arm shrink plan `id`: start the operation that runs it.
    ArmShrinkPlan { id: String, budget: Budget, gate_timeout_ms: u64 },
    /// Take armed plan `id` on once its operation has ended: complete it,
    /// or undo it.
    AdvanceShrinkPlan { id: String },
    /// Mark `node` Draining and start `op`, the drain operation that moves
    /// every replica it hosts to other nodes (see `drain_ops`).
    DrainNode { node: NodeId, op: Box<Operation> },
    /// Make Draining `node` Active again, stopping its drain operation.
    UndrainNode { node: NodeId },
    /// Take `node`, which holds no replica, out of the cluster for good.
    RemoveNode { node: NodeId },
    /// Record `_cp`'s voters and the nodes to start a `_cp` replica on as
    /// learners (see `cp_votes`).
    SetCpVoters { voters: Vec<NodeId>, learners: Vec<NodeId> },
    /// Put an autoscale policy (JSON, validated here too) in force, or
    /// turn autoscaling off with `None`.
    SetAutoscalePolicy { policy: Option<String> },
    /// Journal one of the autoscaler's decisions.
    RecordDecision(Box<DecisionRecord>),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CpReply {
    Ok {
        version: u64,
        routing_epoch: u64,
    },
    Refused(String),
    /// A move was created with this id.
    MoveStarted {
        id: MoveId,
        version: u64,
    },
    /// PRGs were added, with these ids.
    PrgsAdded {
        prgs: Vec<PrgId>,
        routing_epoch: u64,
    },
    /// An operation was started with this id.
    OperationStarted {
        id: OpId,
    },
}

/// Put `policy` in force (stored as its canonical JSON), or none.
fn set_policy(state: &mut ClusterState, now_ms: u64, policy: Option<&str>) -> Result<(), String> {
    let Some(json) = policy else {
        state.autoscale.policy = None;
        state.autoscale.applied_ms = now_ms;
        return Ok(());
    };
    let parsed = parse_policy(json).map_err(|errors| {
        let each: Vec<String> = errors.iter().map(|e| format!("{}: {}", e.field, e.why)).collect();
        format!("invalid autoscale policy: {}", each.join("; "))
    })?;
    state.autoscale.policy = Some(policy_json(&parsed));
    state.autoscale.applied_ms = now_ms;
    Ok(())
}

/// Record `info`; Draining is the control plane's decision, not the node's.
fn register(state: &mut ClusterState, info: &NodeInfo) {
    let mut info = info.clone();
    if state.nodes.get(&info.id).is_some_and(|n| n.state == NodeState::Draining) {
        info.state = NodeState::Draining;
    }
    state.nodes.insert(info.id, info);
}

/// Apply `cmd` to `state` at `now_ms` (the proposing leader's clock). A
/// refused command changes nothing.
pub fn apply(state: &mut ClusterState, now_ms: u64, cmd: &CpCommand) -> CpReply {
    let mut created = None;
    let mut added = None;
    let mut op_started = None;
    let refused = match cmd {
        CpCommand::RegisterNode(info) | CpCommand::Register(Registration { info, .. })
            if state.removed_nodes.contains(&info.id) =>
        {
            Some(format!(
                "node {} was removed from the cluster; a node comes back with a new id and an empty data directory",
                info.id
            ))
        }
        CpCommand::RegisterNode(info) => {
            register(state, info);
            None
        }
        CpCommand::Register(r) => match state.instances.get(&r.info.id) {
            Some(held) if *held != r.instance && !r.replace => Some(format!(
                "node id {} is already registered by another data directory (instance {held:016x}; this one is \
                 {:016x}): give this node its own id, or pass --replace-node if that node's data is gone for good",
                r.info.id, r.instance
            )),
            _ => {
                register(state, &r.info);
                state.instances.insert(r.info.id, r.instance);
                None
            }
        },
        CpCommand::CreateTenant { name, slots, prgs } => create_tenant(state, name, *slots, *prgs).err(),
        CpCommand::LeaderHint { prg, leader } => {
            if let Some(p) = state.placements.get_mut(prg) {
                if p.members.contains(leader) {
                    p.leader_hint = Some(*leader);
                    p.bootstrapped = true;
                }
            }
            None
        }
        CpCommand::SetCpMembers(m) => {
            state.cp_members = m.clone();
            None
        }
        CpCommand::AddPrgs { tenant, count, members, expect_epoch } => {
            match shrink_ops::frozen(state, tenant, None)
                .map_or_else(|| add_prgs(state, tenant, *count, members.as_deref(), *expect_epoch), Err)
            {
                Ok(prgs) => {
                    added = Some(prgs);
                    None
                }
                Err(e) => Some(e),
            }
        }
        CpCommand::StartMove { tenant, slots, from, to } => match shrink_ops::frozen(state, tenant, None)
            .map_or_else(|| start_move(state, now_ms, tenant, slots, *from, to), Err)
        {
            Ok(id) => {
                created = Some(id);
                None
            }
            Err(e) => Some(e),
        },
        CpCommand::UpdateMove { id, expect, phase, progress, error } => {
            update_move(state, now_ms, *id, *expect, *phase, progress.as_ref(), error.as_deref()).err()
        }
        CpCommand::MoveProgress { id, expect, progress } => match moving(state, *id, *expect) {
            Ok(m) => {
                m.progress = progress.clone();
                m.updated_ms = now_ms;
                None
            }
            Err(e) => Some(e),
        },
        CpCommand::CommitMove { id } => commit_move(state, now_ms, *id).err(),
        CpCommand::CancelMove { id } if state.replica_moves.contains_key(id) => {
            let m = state.replica_moves.get_mut(id).expect("checked");
            if m.phase.is_committed() {
                Some(format!("move {id} has changed the voters of {}; it can only finish", m.prg))
            } else if m.phase.is_finished() || m.phase == ReplicaPhase::RollingBack {
                Some(format!("move {id} is already {}", m.phase.name()))
            } else {
                m.cancel_requested = true;
                m.updated_ms = now_ms;
                None
            }
        }
        CpCommand::StartReplicaMove { prg, from, to } => match shrink_ops::frozen(state, &prg.tenant, Some(prg))
            .map_or_else(|| start_replica_move(state, now_ms, prg, *from, *to), Err)
        {
            Ok(id) => {
                created = Some(id);
                None
            }
            Err(e) => Some(e),
        },
        CpCommand::UpdateReplicaMove { id, expect, phase, lag, error } => {
            update_replica_move(state, now_ms, *id, *expect, *phase, *lag, error.as_deref()).err()
        }
        CpCommand::CommitReplicaMove { id } => commit_replica_move(state, now_ms, *id).err(),
        CpCommand::ReplicaProgress { id, expect, lag, bytes } => match state.replica_moves.get_mut(id) {
            None => Some(format!("no move {id}")),
            Some(m) if m.phase != *expect => Some(format!("move {id} is {}, not {}", m.phase.name(), expect.name())),
            Some(m) => {
                m.lag = Some(*lag);
                m.bytes = *bytes;
                m.updated_ms = now_ms;
                None
            }
        },
        CpCommand::StartOperation(op) => match ops::start(state, now_ms, op) {
            Ok(id) => {
                op_started = Some(id);
                None
            }
            Err(e) => Some(e),
        },
        CpCommand::OperationPhase { id, expect, phase, note, error } => {
            ops::phase(state, now_ms, *id, *expect, *phase, note.as_deref(), error.as_deref()).err()
        }
        CpCommand::OperationNote { id, text } => ops::note(state, now_ms, *id, text).err(),
        CpCommand::OperationCreatePrgs { id } => ops::create_prgs(state, now_ms, *id).err(),
        CpCommand::OperationRemovePrgs { id } => ops::remove_prgs(state, now_ms, *id).err(),
        CpCommand::OperationStartStep { id, step } => ops::start_step(state, now_ms, *id, *step).err(),
        CpCommand::OperationStepEnded { id, step } => ops::step_ended(state, now_ms, *id, *step).err(),
        CpCommand::CancelOperation { id } => ops::cancel(state, now_ms, *id).err(),
        CpCommand::CreateShrinkPlan(plan) => shrink::create(state, plan).err().map(|e| e.to_string()),
        CpCommand::CancelShrinkPlan { id } => shrink_ops::cancel(state, now_ms, id).err(),
        CpCommand::ArmShrinkPlan { id, budget, gate_timeout_ms } => {
            match shrink_ops::arm(state, now_ms, id, *budget, *gate_timeout_ms) {
                Ok(id) => {
                    op_started = Some(id);
                    None
                }
                Err(e) => Some(e),
            }
        }
        CpCommand::AdvanceShrinkPlan { id } => shrink_ops::advance(state, now_ms, id).err(),
        CpCommand::DrainNode { node, op } => match drain_ops::drain(state, now_ms, *node, op) {
            Ok(id) => {
                op_started = Some(id);
                None
            }
            Err(e) => Some(e),
        },
        CpCommand::UndrainNode { node } => drain_ops::undrain(state, now_ms, *node).err(),
        CpCommand::RemoveNode { node } => drain_ops::remove(state, *node).err(),
        CpCommand::SetCpVoters { voters, learners } => crate::cp_votes::set(state, voters, learners).err(),
        CpCommand::SetAutoscalePolicy { policy } => set_policy(state, now_ms, policy.as_deref()).err(),
        CpCommand::RecordDecision(record) => match state.autoscale.policy {
            None => Some("no autoscale policy is in force".into()),
            Some(_) => {
                state.autoscale.record((**record).clone());
                None
            }
        },
        CpCommand::CancelMove { id } => match state.moves.get_mut(id) {
            None => Some(format!("no move {id}")),
            Some(m) if m.phase.is_committed() => {
                Some(format!("move {id} has committed (routing epoch {:?}); it can only finish", m.commit_epoch))
            }
            Some(m) if m.phase.is_finished() || m.phase == MovePhase::RollingBack => {
                Some(format!("move {id} is already {}", m.phase.name()))
            }
            Some(m) => {
                m.cancel_requested = true;
                m.updated_ms = now_ms;
                None
            }
        },
    };
    match refused {
        Some(why) => CpReply::Refused(why),
        None => {
            state.version += 1;
            prune_finished(state);
            if let Some(id) = created {
                return CpReply::MoveStarted { id, version: state.version };
            }
            if let Some(prgs) = added {
                return CpReply::PrgsAdded { prgs, routing_epoch: state.routing_epoch };
            }
            if let Some(id) = op_started {
                return CpReply::OperationStarted { id };
            }
            CpReply::Ok { version: state.version, routing_epoch: state.routing_epoch }
        }
    }
}

/// Finished moves (slot and replica, done or rolled back) the state keeps
/// for `tidal moves`; older ones are forgotten, oldest first.
pub const KEEP_FINISHED_MOVES: usize = 256;

fn prune_finished(state: &mut ClusterState) {
    let slot = state.moves.values().filter(|m| m.phase.is_finished()).map(|m| m.id);
    let replica = state.replica_moves.values().filter(|m| m.phase.is_finished()).map(|m| m.id);
    let mut finished: Vec<MoveId> = slot.chain(replica).collect();
    if finished.len() <= KEEP_FINISHED_MOVES {
        return;
    }
    finished.sort_unstable();
    for id in &finished[..finished.len() - KEEP_FINISHED_MOVES] {
        state.moves.remove(id);
        state.replica_moves.remove(id);
    }
}

/// Most PRGs one command adds.
pub const MAX_ADD_PRGS: u32 = 64;

fn add_prgs(
    state: &mut ClusterState,
    tenant: &str,
    count: u32,
    members: Option<&[NodeId]>,
    expect_epoch: Option<u64>,
) -> Result<Vec<PrgId>, String> {
    if !state.tenants.contains_key(tenant) {
        return Err(format!("unknown tenant '{tenant}'"));
    }
    if let Some(e) = expect_epoch {
        if e != state.routing_epoch {
            return Err(format!("routing epoch is {}, not the expected {e}", state.routing_epoch));
        }
    }
    if count == 0 || count > MAX_ADD_PRGS {
        return Err(format!("count must be in 1..={MAX_ADD_PRGS}, got {count}"));
    }
    let next = state.next_prg_index(tenant);
    let ids: Vec<PrgId> = (next..next + count).map(|i| PrgId::new(tenant, i)).collect();
    let epoch = state.routing_epoch + 1;
    let placed = match members {
        Some(m) => {
            check_members(state, m)?;
            ids.iter().map(|id| tidal_core::Placement::new(id.clone(), m.to_vec(), epoch, Vec::new())).collect()
        }
        None => place_new(&state.nodes, &state.placements, &ids, epoch).map_err(|e| e.to_string())?,
    };
    for p in placed {
        state.placements.insert(p.prg.clone(), p);
    }
    state.routing_epoch = epoch;
    Ok(ids)
}

/// Members named by an operator must follow the placement rules.
pub(crate) fn check_members(state: &ClusterState, members: &[NodeId]) -> Result<(), String> {
    let distinct: BTreeSet<NodeId> = members.iter().copied().collect();
    if members.len() != REPLICAS || distinct.len() != REPLICAS {
        return Err(format!("a PRG needs {REPLICAS} distinct members, got {members:?}"));
    }
    let mut zones = BTreeSet::new();
    for id in members {
        let n = state.nodes.get(id).ok_or_else(|| format!("unknown node {id}"))?;
        if n.state != NodeState::Active {
            return Err(format!("node {id} is {:?}: no new replicas go there", n.state));
        }
        zones.insert(n.zone.as_str());
    }
    let all_zones: BTreeSet<&str> =
        state.nodes.values().filter(|n| n.state == NodeState::Active).map(|n| n.zone.as_str()).collect();
    if all_zones.len() >= REPLICAS && zones.len() < REPLICAS {
        return Err(format!("members {members:?} share a zone while {} zones exist", all_zones.len()));
    }
    Ok(())
}

pub(crate) fn start_move(
    state: &mut ClusterState,
    now_ms: u64,
    tenant: &str,
    slots: &[u32],
    from: Option<u32>,
    to: &PrgId,
) -> Result<MoveId, String> {
    let mut slots = slots.to_vec();
    slots.sort_unstable();
    slots.dedup();
    let active: Vec<&SlotMove> = state.moves.values().filter(|m| !m.phase.is_finished()).collect();
    let source = check_new_move(state, tenant, &slots, from, to, &active).map_err(|e| e.to_string())?;
    for prg in [PrgId::new(tenant, source), to.clone()] {
        if let Some(m) = state.replica_moves.values().find(|m| !m.phase.is_finished() && m.prg == prg) {
            return Err(format!("{prg} is moving a replica in move {}; move its slots afterwards", m.id));
        }
    }
    let id = state.next_move_id.max(1);
    state.next_move_id = id + 1;
    state.moves.insert(
        id,
        SlotMove {
            id,
            tenant: tenant.to_string(),
            slots,
            from: source,
            to: to.index,
            phase: MovePhase::Copying,
            progress: MoveProgress::default(),
            planned_epoch: state.routing_epoch,
            commit_epoch: None,
            created_ms: now_ms,
            updated_ms: now_ms,
            fenced_ms: None,
            finished_ms: None,
            cancel_requested: false,
            error: None,
        },
    );
    Ok(id)
}

pub(crate) fn start_replica_move(
    state: &mut ClusterState,
    now_ms: u64,
    prg: &PrgId,
    from: NodeId,
    to: NodeId,
) -> Result<MoveId, String> {
    check_replica_move(state, prg, from, to, state.busy_with(prg)).map_err(|e| e.to_string())?;
    let id = state.next_move_id.max(1);
    state.next_move_id = id + 1;
    state.placements.get_mut(prg).expect("checked").learners.push(to);
    state.replica_moves.insert(id, ReplicaMove::new(id, prg.clone(), from, to, now_ms));
    Ok(id)
}

fn update_replica_move(
    state: &mut ClusterState,
    now_ms: u64,
    id: MoveId,
    expect: ReplicaPhase,
    phase: ReplicaPhase,
    lag: Option<u64>,
    error: Option<&str>,
) -> Result<(), String> {
    let m = state.replica_moves.get_mut(&id).ok_or_else(|| format!("no move {id}"))?;
    if m.phase != expect {
        return Err(format!("move {id} is {}, not {}", m.phase.name(), expect.name()));
    }
    if phase != expect && (phase == ReplicaPhase::Done || !expect.may_become(phase)) {
        return Err(format!("move {id} cannot go from {} to {}", expect.name(), phase.name()));
    }
    m.phase = phase;
    m.updated_ms = now_ms;
    if lag.is_some() {
        m.lag = lag;
    }
    if let Some(e) = error {
        m.error = Some(e.to_string());
    }
    if phase == ReplicaPhase::RolledBack {
        m.finished_ms = Some(now_ms);
        let (prg, to) = (m.prg.clone(), m.to);
        if let Some(p) = state.placements.get_mut(&prg) {
            p.learners.retain(|l| *l != to);
        }
    }
    Ok(())
}

fn commit_replica_move(state: &mut ClusterState, now_ms: u64, id: MoveId) -> Result<(), String> {
    let m = state.replica_moves.get(&id).ok_or_else(|| format!("no move {id}"))?;
    if m.phase != ReplicaPhase::Promoting {
        return Err(format!("move {id} is {}, not {}", m.phase.name(), ReplicaPhase::Promoting.name()));
    }
    let p = state.placements.get_mut(&m.prg).ok_or_else(|| format!("move {id}: {} is gone", m.prg))?;
    p.members = m.voters_after(&p.members);
    p.learners.retain(|l| *l != m.to);
    if p.leader_hint == Some(m.from) {
        p.leader_hint = None;
    }
    state.routing_epoch += 1;
    let m = state.replica_moves.get_mut(&id).expect("checked");
    m.phase = ReplicaPhase::Done;
    m.updated_ms = now_ms;
    m.finished_ms = Some(now_ms);
    Ok(())
}

fn moving(state: &mut ClusterState, id: MoveId, expect: MovePhase) -> Result<&mut SlotMove, String> {
    let m = state.moves.get_mut(&id).ok_or_else(|| format!("no move {id}"))?;
    if m.phase != expect {
        return Err(format!("move {id} is {}, not {}", m.phase.name(), expect.name()));
    }
    Ok(m)
}

fn update_move(
    state: &mut ClusterState,
    now_ms: u64,
    id: MoveId,
    expect: MovePhase,
    phase: MovePhase,
    progress: Option<&MoveProgress>,
    error: Option<&str>,
) -> Result<(), String> {
    let m = moving(state, id, expect)?;
    if phase == expect {
        // A note on a phase that keeps failing: the move stays where it is.
        let Some(e) = error else { return Err(format!("move {id}: nothing to note")) };
        m.error = Some(e.to_string());
        m.updated_ms = now_ms;
        return Ok(());
    }
    if phase == MovePhase::Committed || !expect.may_become(phase) {
        return Err(format!("move {id} cannot go from {} to {}", expect.name(), phase.name()));
    }
    m.phase = phase;
    m.updated_ms = now_ms;
    if let Some(p) = progress {
        m.progress = p.clone();
    }
    if let Some(e) = error {
        m.error = Some(e.to_string());
    }
    if phase == MovePhase::Fenced {
        m.fenced_ms = Some(now_ms);
    }
    if phase.is_finished() {
        m.finished_ms = Some(now_ms);
    }
    Ok(())
}

fn commit_move(state: &mut ClusterState, now_ms: u64, id: MoveId) -> Result<(), String> {
    let m = moving(state, id, MovePhase::Fenced)?;
    let (tenant, slots, from, to) = (m.tenant.clone(), m.slots.clone(), m.from, m.to);
    let t = state.tenants.get_mut(&tenant).ok_or_else(|| format!("move {id}: tenant '{tenant}' is gone"))?;
    if let Some(s) = slots.iter().find(|s| t.owner.get(**s as usize) != Some(&from)) {
        return Err(format!("move {id}: slot {s} is no longer owned by {tenant}:{from}"));
    }
    for s in &slots {
        t.owner[*s as usize] = to;
    }
    state.routing_epoch += 1;
    let epoch = state.routing_epoch;
    let m = state.moves.get_mut(&id).expect("checked above");
    m.phase = MovePhase::Committed;
    m.commit_epoch = Some(epoch);
    m.updated_ms = now_ms;
    Ok(())
}

fn create_tenant(state: &mut ClusterState, name: &str, slots: u32, prgs: u32) -> Result<(), String> {
    validate_tenant(name).map_err(|e| e.to_string())?;
    if slots == 0 || slots > MAX_SLOTS {
        return Err(format!("tenant slots must be in 1..={MAX_SLOTS}, got {slots}"));
    }
    if prgs == 0 || prgs > slots {
        return Err(format!("tenant PRGs must be in 1..={slots} (its slot count), got {prgs}"));
    }
    if let Some(t) = state.tenants.get(name) {
        let have = state.prgs_of(name).len() as u32;
        return if t.slots == slots && have == prgs {
            Ok(())
        } else {
            Err(format!("tenant '{name}' exists with {} slots and {have} PRGs", t.slots))
        };
    }
    let epoch = state.routing_epoch + 1;
    let ids: Vec<PrgId> = (0..prgs).map(|i| PrgId::new(name, i)).collect();
    let placed = place_new(&state.nodes, &state.placements, &ids, epoch).map_err(|e| e.to_string())?;
    for mut p in placed {
        p.genesis = vec![Tenant::initial_range(slots, prgs, p.prg.index)];
        state.placements.insert(p.prg.clone(), p);
    }
    state.tenants.insert(name.to_string(), Tenant::new(name, slots, prgs));
    state.routing_epoch = epoch;
    Ok(())
}

#[path = "command_ops.rs"]
pub(crate) mod ops;

#[path = "command_shrink.rs"]
pub mod shrink_ops;

#[path = "command_drain.rs"]
pub mod drain_ops;

#[cfg(test)]
#[path = "command_tests.rs"]
mod tests;
