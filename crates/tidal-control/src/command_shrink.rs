//! How the commands of shrink plans change the cluster state (see
//! `tidal_core::shrink`). Arming starts the operation that runs a plan;
//! when that operation ends, [`advance`] completes the plan (deleting the
//! PRGs it drained) or, after a cancel or a failure, starts the operation
//! that puts the layout back as it was when the plan was made, and marks
//! the plan RolledBack once it is. The nodes a plan removes are Draining
//! while it is armed (no new replica goes there, and a control-plane vote
//! moves off them), removed from the cluster when it completes (once
//! their votes have moved), and Active again when it is rolled back.
//! Each checks everything first and changes nothing when it refuses.

use tidal_core::operation::{Budget, OpId, OpPhase, Operation};
use tidal_core::shrink::{self, forward_plan, layout_is_back, undo_plan, PlanState, ShrinkPlan, MAX_UNDO_ATTEMPTS};
use tidal_core::{ClusterState, NodeState, PrgId};

use super::{drain_ops, ops};

pub(super) fn arm(
    state: &mut ClusterState,
    now_ms: u64,
    id: &str,
    budget: Budget,
    gate_timeout_ms: u64,
) -> Result<OpId, String> {
    shrink::check_arm(state, id).map_err(|e| e.to_string())?;
    let plan = &state.shrink_plans[id];
    let op = Operation::new("scale_in", forward_plan(plan, state), budget, gate_timeout_ms, gate_timeout_ms);
    let mut scratch = state.clone();
    let op_id = ops::start(&mut scratch, now_ms, &op)?;
    // The nodes that leave take no new replica from here on.
    let leaving = plan.remove_nodes.clone();
    set_state(&mut scratch, &leaving, NodeState::Draining);
    let plan = scratch.shrink_plans.get_mut(id).expect("checked");
    plan.state = PlanState::Armed;
    plan.armed_ms = Some(now_ms);
    plan.operation = Some(op_id);
    *state = scratch;
    Ok(op_id)
}

/// Set `nodes` (those still in the cluster) to `to`.
fn set_state(state: &mut ClusterState, nodes: &[tidal_core::NodeId], to: NodeState) {
    for n in nodes {
        if let Some(info) = state.nodes.get_mut(n) {
            info.state = to;
        }
    }
}

/// Why a move an operator asks for, of `tenant`'s slots or of `prg`'s
/// replicas, must wait: an armed plan drains that tenant's PRGs (any of
/// them, for slots and new PRGs) or moves that PRG, and its placements
/// are frozen until it ends. The plan's own operation starts its moves
/// directly, not through this check.
pub(super) fn frozen(state: &ClusterState, tenant: &str, prg: Option<&PrgId>) -> Option<String> {
    let plan = state.shrink_plans.values().find(|p| p.state == PlanState::Armed)?;
    let touches = match prg {
        Some(prg) => plan.targets.iter().any(|t| t.prg == *prg) || plan.remove_prgs.contains(prg),
        None => {
            plan.targets.iter().any(|t| t.prg.tenant == tenant) || plan.remove_prgs.iter().any(|p| p.tenant == tenant)
        }
    };
    touches.then(|| {
        let what = prg.map_or_else(|| format!("tenant {tenant}"), |p| p.to_string());
        format!("shrink plan {} is armed: the placements of {what} are frozen until it ends", plan.id)
    })
}

/// Cancel plan `id`: a Draft is Cancelled; an armed plan is undone (its
/// running operation is stopped, and [`advance`] puts the layout back).
/// Cancelling a plan whose undo gave up tries the undo again.
pub(super) fn cancel(state: &mut ClusterState, now_ms: u64, id: &str) -> Result<(), String> {
    let plan = state.shrink_plans.get(id).ok_or_else(|| format!("no shrink plan {id}"))?;
    if plan.state == PlanState::Draft {
        return shrink::cancel_draft(state, id, now_ms).map_err(|e| e.to_string());
    }
    if plan.state != PlanState::Armed {
        return Err(format!("plan {id} is {}, and cannot be cancelled", plan.state.name()));
    }
    if plan.rolling_back {
        // An undo that gave up is tried again on the operator's word.
        let gave_up = plan.undo_attempts >= MAX_UNDO_ATTEMPTS && operation_ended(state, plan);
        if !gave_up {
            return Err(format!("plan {id} is already being rolled back"));
        }
        let plan = state.shrink_plans.get_mut(id).expect("checked");
        plan.undo_attempts = 0;
        return Ok(());
    }
    let running = plan.operation.filter(|o| state.operations.get(o).is_some_and(|o| !o.phase.is_finished()));
    if let Some(op) = running {
        let stopping = state.operations[&op].cancel_requested || state.operations[&op].phase == OpPhase::RollingBack;
        if !stopping {
            ops::cancel(state, now_ms, op)?;
        }
    }
    let plan = state.shrink_plans.get_mut(id).expect("checked");
    plan.rolling_back = true;
    plan.error = Some("cancelled by an operator".into());
    Ok(())
}

/// Whether armed plan `id` waits for [`advance`]: its operation has ended
/// (and, rolling back, it has not given up).
pub fn wants_advance(state: &ClusterState, id: &str) -> bool {
    let Some(plan) = state.shrink_plans.get(id).filter(|p| p.state == PlanState::Armed) else { return false };
    operation_ended(state, plan)
        && !(plan.rolling_back && plan.undo_attempts >= MAX_UNDO_ATTEMPTS && !layout_is_back(&plan.before, state))
}

/// Whether `plan`'s operation has ended (or is no longer recorded).
fn operation_ended(state: &ClusterState, plan: &ShrinkPlan) -> bool {
    plan.operation.and_then(|o| state.operations.get(&o)).is_none_or(|o| o.phase.is_finished())
}

/// Take armed plan `id` on once its operation has ended.
pub(super) fn advance(state: &mut ClusterState, now_ms: u64, id: &str) -> Result<(), String> {
    let plan = state.shrink_plans.get(id).ok_or_else(|| format!("no shrink plan {id}"))?;
    if plan.state != PlanState::Armed {
        return Err(format!("plan {id} is {}, not Armed", plan.state.name()));
    }
    let op = plan.operation.and_then(|o| state.operations.get(&o));
    if let Some(op) = op.filter(|o| !o.phase.is_finished()) {
        return Err(format!("plan {id}: operation {} is {}", op.id, op.phase.name()));
    }
    let (budget, gate) = op.map_or((Budget::default(), 60_000), |o| (o.budget, o.gate_timeout_ms));
    let done = op.is_some_and(|o| o.phase == OpPhase::Done);
    let why = op.and_then(|o| o.error.clone());
    if !plan.rolling_back && done {
        return complete(state, now_ms, id);
    }
    let mut scratch = state.clone();
    let plan = scratch.shrink_plans.get_mut(id).expect("checked");
    if !plan.rolling_back {
        // The operation failed on its own: undo what it did.
        plan.rolling_back = true;
        plan.error = Some(why.unwrap_or_else(|| "its operation did not finish".into()));
    }
    let (before, attempts) = (plan.before.clone(), plan.undo_attempts);
    if layout_is_back(&before, &scratch) {
        let plan = scratch.shrink_plans.get_mut(id).expect("checked");
        plan.state = PlanState::RolledBack;
        plan.finished_ms = Some(now_ms);
        let kept = plan.remove_nodes.clone();
        set_state(&mut scratch, &kept, NodeState::Active);
        *state = scratch;
        return Ok(());
    }
    if attempts >= MAX_UNDO_ATTEMPTS {
        return Err(format!("plan {id}: {MAX_UNDO_ATTEMPTS} operations could not put the layout back"));
    }
    let plan = scratch.shrink_plans.get_mut(id).expect("checked");
    plan.undo_attempts += 1;
    let undo = Operation::new("scale_in_undo", undo_plan(&before, &scratch), budget, gate, gate);
    let op_id = ops::start(&mut scratch, now_ms, &undo)?;
    scratch.shrink_plans.get_mut(id).expect("checked").operation = Some(op_id);
    *state = scratch;
    Ok(())
}

/// The plan's operation is done: delete the PRGs it drained (one routing
/// epoch bump), remove the nodes it emptied, and mark it Completed.
fn complete(state: &mut ClusterState, now_ms: u64, id: &str) -> Result<(), String> {
    let leaving = state.shrink_plans[id].remove_nodes.clone();
    let remove = state.shrink_plans[id].remove_prgs.clone();
    for prg in &remove {
        if state.tenants.get(&prg.tenant).is_some_and(|t| t.owner.contains(&prg.index)) {
            return Err(format!("plan {id}: {prg} still owns slots"));
        }
        if let Some(m) = state.busy_with(prg) {
            return Err(format!("plan {id}: {prg} is in move {m}"));
        }
    }
    let mut scratch = state.clone();
    for prg in &remove {
        scratch.placements.remove(prg);
        scratch.retired_prgs.insert(prg.clone());
    }
    if !remove.is_empty() {
        scratch.routing_epoch += 1;
    }
    // The nodes leave once the PRGs that stay hold nothing on them.
    for n in &leaving {
        if let Some(p) = scratch.placements_hosted_on(*n).next() {
            return Err(format!("plan {id}: node {n} still holds a replica of {}", p.prg));
        }
        if drain_ops::in_cp(&scratch, *n) {
            return Err(format!("plan {id}: node {n}'s control-plane vote has yet to move"));
        }
        drain_ops::forget(&mut scratch, *n);
    }
    let plan = scratch.shrink_plans.get_mut(id).expect("checked");
    plan.state = PlanState::Completed;
    plan.finished_ms = Some(now_ms);
    *state = scratch;
    Ok(())
}

#[cfg(test)]
#[path = "command_shrink_tests.rs"]
mod tests;
