//! How the commands of scaling operations change the cluster state (see
//! `tidal_core::operation`). Each checks everything first and changes
//! nothing when it refuses.

use tidal_core::operation::{OpId, OpPhase, Operation, StepKind, StepState, STEP_ATTEMPTS};
use tidal_core::{ClusterState, Placement};

use super::{check_members, start_move, start_replica_move};

/// Finished operations the state keeps for `tidal operations`.
pub const KEEP_FINISHED_OPERATIONS: usize = 32;

fn op_mut(state: &mut ClusterState, id: OpId) -> Result<&mut Operation, String> {
    let op = state.operations.get_mut(&id).ok_or_else(|| format!("no operation {id}"))?;
    if op.phase.is_finished() {
        return Err(format!("operation {id} is {}", op.phase.name()));
    }
    Ok(op)
}

pub(super) fn start(state: &mut ClusterState, now_ms: u64, op: &Operation) -> Result<OpId, String> {
    if let Some(running) = state.running_operation() {
        return Err(format!(
            "operation {} is running ({}); wait for it to finish or cancel it",
            running.id,
            running.phase.name()
        ));
    }
    if op.plan.version != state.version {
        return Err(format!(
            "the cluster changed since the plan was made (plan of version {}, cluster at {}): plan again",
            op.plan.version, state.version
        ));
    }
    if op.phase != OpPhase::Preflight || op.budget.per_node == 0 || op.budget.cluster == 0 {
        return Err("a new operation starts at preflight, with a budget of at least one move".into());
    }
    let id = state.next_op_id.max(1);
    state.next_op_id = id + 1;
    let mut op = op.clone();
    op.id = id;
    op.created_ms = now_ms;
    op.phase_started_ms = now_ms;
    op.note(now_ms, format!("started at control-plane version {}", state.version));
    state.operations.insert(id, op);
    let finished: Vec<OpId> = state.operations.values().filter(|o| o.phase.is_finished()).map(|o| o.id).collect();
    for old in finished.iter().take(finished.len().saturating_sub(KEEP_FINISHED_OPERATIONS)) {
        state.operations.remove(old);
    }
    Ok(id)
}

pub(super) fn phase(
    state: &mut ClusterState,
    now_ms: u64,
    id: OpId,
    expect: OpPhase,
    next: OpPhase,
    note: Option<&str>,
    error: Option<&str>,
) -> Result<(), String> {
    let op = op_mut(state, id)?;
    if op.phase != expect {
        return Err(format!("operation {id} is {}, not {}", op.phase.name(), expect.name()));
    }
    if !expect.may_become(next) {
        return Err(format!("operation {id} cannot go from {} to {}", expect.name(), next.name()));
    }
    // Going forward leaves no step of the phase behind.
    if expect.next() == Some(next) {
        if let Some(s) = op.steps.iter().find(|s| s.phase() <= expect && s.state != StepState::Done) {
            return Err(format!("operation {id}: a step of {} is {}", s.phase().name(), s.state.name()));
        }
    }
    if let Some(n) = note {
        op.note(now_ms, n.to_string());
    }
    if let Some(e) = error {
        op.error = Some(e.to_string());
        op.note(now_ms, format!("error: {e}"));
    }
    op.enter(now_ms, next);
    Ok(())
}

pub(super) fn note(state: &mut ClusterState, now_ms: u64, id: OpId, text: &str) -> Result<(), String> {
    op_mut(state, id)?.note(now_ms, text.to_string());
    Ok(())
}

pub(super) fn create_prgs(state: &mut ClusterState, now_ms: u64, id: OpId) -> Result<(), String> {
    let op = state.operations.get(&id).ok_or_else(|| format!("no operation {id}"))?;
    if op.phase != OpPhase::CreatePrgs || op.prgs_created {
        return Err(format!("operation {id} is {} (PRGs created: {})", op.phase.name(), op.prgs_created));
    }
    let new = op.plan.new_prgs.clone();
    let epoch = state.routing_epoch + 1;
    let mut scratch = state.clone();
    for (prg, members) in &new {
        if !scratch.tenants.contains_key(&prg.tenant) {
            return Err(format!("tenant '{}' is gone", prg.tenant));
        }
        if scratch.next_prg_index(&prg.tenant) != prg.index {
            return Err(format!("{prg} is no longer the next PRG of tenant '{}'", prg.tenant));
        }
        check_members(&scratch, members)?;
        scratch.placements.insert(prg.clone(), Placement::new(prg.clone(), members.clone(), epoch, Vec::new()));
    }
    scratch.routing_epoch = epoch;
    let op = scratch.operations.get_mut(&id).expect("checked");
    op.prgs_created = true;
    op.note(now_ms, format!("created {} PRGs at routing epoch {epoch}", new.len()));
    *state = scratch;
    Ok(())
}

pub(super) fn remove_prgs(state: &mut ClusterState, now_ms: u64, id: OpId) -> Result<(), String> {
    let op = state.operations.get(&id).ok_or_else(|| format!("no operation {id}"))?;
    if op.phase != OpPhase::RollingBack || !op.prgs_created {
        return Err(format!("operation {id} is {} (PRGs created: {})", op.phase.name(), op.prgs_created));
    }
    let new: Vec<_> = op.plan.new_prgs.iter().map(|(p, _)| p.clone()).collect();
    for prg in &new {
        if state.tenants.get(&prg.tenant).is_some_and(|t| t.owner.contains(&prg.index)) {
            return Err(format!("{prg} owns slots: it can no longer be removed"));
        }
        if let Some(m) = state.busy_with(prg) {
            return Err(format!("{prg} is in move {m}"));
        }
    }
    for prg in &new {
        state.placements.remove(prg);
        state.retired_prgs.insert(prg.clone());
    }
    state.routing_epoch += 1;
    let epoch = state.routing_epoch;
    let op = state.operations.get_mut(&id).expect("checked");
    op.prgs_created = false;
    op.note(now_ms, format!("removed its {} new PRGs at routing epoch {epoch}", new.len()));
    Ok(())
}

pub(super) fn start_step(state: &mut ClusterState, now_ms: u64, id: OpId, step: usize) -> Result<(), String> {
    let op = op_mut(state, id)?;
    if op.cancel_requested {
        return Err(format!("operation {id} is being cancelled"));
    }
    let s = op.steps.get(step).ok_or_else(|| format!("operation {id} has no step {step}"))?;
    if s.state != StepState::Pending || s.phase() != op.phase {
        return Err(format!("operation {id} step {step} is {} in {}", s.state.name(), op.phase.name()));
    }
    let op = op.clone();
    if !op.startable(state).contains(&step) {
        return Err(format!("operation {id} step {step}: the disruption budget has no room"));
    }
    let move_id = match op.steps[step].kind {
        StepKind::Slots(i) => {
            let m = &op.plan.slot_moves[i];
            start_move(state, now_ms, &m.tenant, &m.slots, Some(m.from.index), &m.to)?
        }
        StepKind::Replica(i) => {
            let m = &op.plan.replica_moves[i].step;
            start_replica_move(state, now_ms, &m.prg, m.from, m.to)?
        }
    };
    let op = state.operations.get_mut(&id).expect("checked");
    let s = &mut op.steps[step];
    s.state = StepState::Running;
    s.moves.push(move_id);
    s.started_ms.get_or_insert(now_ms);
    op.note(now_ms, format!("step {step}: started move {move_id}"));
    Ok(())
}

pub(super) fn step_ended(state: &mut ClusterState, now_ms: u64, id: OpId, step: usize) -> Result<(), String> {
    let op = state.operations.get(&id).ok_or_else(|| format!("no operation {id}"))?;
    let s = op.steps.get(step).ok_or_else(|| format!("operation {id} has no step {step}"))?;
    let Some(&move_id) = s.moves.last().filter(|_| s.state == StepState::Running) else {
        return Err(format!("operation {id} step {step} is {}", s.state.name()));
    };
    let Some(ended) = state.move_ended(move_id) else {
        return Err(format!("move {move_id} has not finished"));
    };
    let op = state.operations.get_mut(&id).expect("checked");
    let attempts = op.steps[step].moves.len();
    let (next, text) = match ended {
        Ok(()) => (StepState::Done, format!("step {step}: move {move_id} done")),
        Err(why) if attempts < STEP_ATTEMPTS && !op.cancel_requested && op.steps[step].phase() == op.phase => {
            (StepState::Pending, format!("step {step}: move {move_id} rolled back ({why}); will try again"))
        }
        Err(why) => {
            (StepState::Failed, format!("step {step}: move {move_id} rolled back ({why}) after {attempts} attempts"))
        }
    };
    let s = &mut op.steps[step];
    s.state = next;
    if next != StepState::Pending {
        s.finished_ms = Some(now_ms);
    }
    op.note(now_ms, text);
    Ok(())
}

pub(super) fn cancel(state: &mut ClusterState, now_ms: u64, id: OpId) -> Result<(), String> {
    let op = op_mut(state, id)?;
    if op.phase == OpPhase::RollingBack || op.cancel_requested {
        return Err(format!("operation {id} is already stopping"));
    }
    op.cancel_requested = true;
    op.note(now_ms, "cancel requested".into());
    Ok(())
}

#[cfg(test)]
#[path = "command_ops_tests.rs"]
pub(crate) mod tests;
