//! The operation executor: carries scaling operations out, phase by phase,
//! on the control-plane leader.
//!
//! What an operation is and which of its steps may start is decided in
//! `tidal_core::operation`; the commands that change it are in
//! `command_ops`. This module waits on gates, proposes those commands and
//! watches the moves they start, which the move executor drives. It keeps
//! nothing of its own that matters: a new control-plane leader reads the
//! operation from the journal and carries on from its phase, and a step's
//! move, once started, is recorded on the step, so no move is started
//! twice.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tidal_core::health::{cluster_problems, short_of_replicas, HealthLimits, NodeHealth};
use tidal_core::operation::{OpId, OpPhase, Operation, StepState};
use tidal_core::planner::drain::plan_drain;
use tidal_core::{ClusterState, NodeId, NodeState};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::api::ControlPlane;
use crate::command::shrink_ops::wants_advance;
use crate::command::CpCommand;
use crate::executor::{MoveOps, Stop};
use crate::failpoint;
use crate::self_heal::{lost_nodes, report_sizes, HealConfig, HEAL};

pub struct OperationExecutor {
    cp: Arc<ControlPlane>,
    ops: Arc<dyn MoveOps>,
    limits: HealthLimits,
    running: Mutex<BTreeSet<OpId>>,
    /// Since when a move phase has found the cluster unhealthy, holding
    /// its next moves back.
    unhealthy_since: Mutex<Option<Instant>>,
    heal: HealConfig,
    /// Since when this node leads the control plane (reports it holds
    /// are no older).
    led_since: Mutex<Option<Instant>>,
    /// When a heal was last tried, per node: a heal that cannot start or
    /// fails is tried again a delay later, not in a loop.
    healed: Mutex<BTreeMap<tidal_core::NodeId, Instant>>,
    /// A step moving the control plane's votes is under way.
    voting: AtomicBool,
}

/// How often a waiting executor looks again.
const POLL: Duration = Duration::from_millis(200);

impl OperationExecutor {
    pub fn new(cp: Arc<ControlPlane>, ops: Arc<dyn MoveOps>, limits: HealthLimits, heal: HealConfig) -> Arc<Self> {
        Arc::new(Self {
            cp,
            ops,
            limits,
            running: Mutex::default(),
            unhealthy_since: Mutex::default(),
            heal,
            led_since: Mutex::default(),
            healed: Mutex::default(),
            voting: AtomicBool::new(false),
        })
    }

    /// Watch for an unfinished operation while this node leads the control
    /// plane, and drive it; stops when `stop` turns true.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            let leads = self.cp.is_local_leader();
            {
                let mut since = self.led_since.lock().expect("led lock");
                match (leads, *since) {
                    (true, None) => *since = Some(Instant::now()),
                    (false, Some(_)) => *since = None,
                    _ => {}
                }
            }
            if leads {
                self.move_votes();
                self.advance_shrink_plans().await;
                let running = self.cp.local_machine().and_then(|m| m.state().running_operation().map(|o| o.id));
                if running.is_none() {
                    self.heal_lost_nodes().await;
                }
                if let Some(id) = running {
                    if self.running.lock().expect("running lock").insert(id) {
                        let me = self.clone();
                        tokio::spawn(async move {
                            me.drive(id).await;
                            me.running.lock().expect("running lock").remove(&id);
                        });
                    }
                }
            }
            tokio::select! {
                biased;
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Take on every armed shrink plan whose operation has ended: complete
    /// it, or start undoing it (see `command_shrink`).
    async fn advance_shrink_plans(&self) {
        let Some(state) = self.state() else { return };
        for id in state.shrink_plans.keys().filter(|id| wants_advance(&state, id)) {
            match self.cp.propose_as_leader(CpCommand::AdvanceShrinkPlan { id: id.clone() }).await {
                Ok(_) => tracing::info!(plan = %id, "shrink plan advanced"),
                Err(e) => tracing::warn!(plan = %id, error = %e, "shrink plan cannot advance"),
            }
        }
    }

    /// Take the next step moving the control plane's votes (see
    /// `cp_votes`), in the background: adding a learner waits for it to
    /// catch up. Only once this leader has led long enough to have heard
    /// from every node that is up.
    fn move_votes(self: &Arc<Self>) {
        let Some(since) = *self.led_since.lock().expect("led lock") else { return };
        if since.elapsed() < Duration::from_millis(self.limits.report_ms) {
            return;
        }
        if self.voting.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            if let Some(state) = me.state() {
                let limit = me.limits.report_ms;
                let fresh: BTreeSet<_> =
                    me.health().into_iter().filter(|(_, h)| h.age_ms <= limit).map(|(n, _)| n).collect();
                match crate::cp_votes::step(&me.cp, &state, &fresh).await {
                    Ok(Some(done)) => tracing::info!("{done}"),
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "control-plane votes cannot move yet"),
                }
            }
            me.voting.store(false, Ordering::Release);
        });
    }

    /// Start healing the node silent longest past the delay, if any (see
    /// `self_heal`); one at a time, each tried at most once a delay.
    async fn heal_lost_nodes(&self) {
        let Some(state) = self.state() else { return };
        let Some(since) = *self.led_since.lock().expect("led lock") else { return };
        let reports = self.cp.node_reports();
        let led_for = since.elapsed().as_millis() as u64;
        let lost = lost_nodes(&state, &self.health(), led_for, self.heal.delay_ms);
        let retry = Duration::from_millis(self.heal.delay_ms.max(10_000));
        let node = {
            let healed = self.healed.lock().expect("healed lock");
            lost.into_iter().find(|n| healed.get(n).is_none_or(|at| at.elapsed() > retry))
        };
        let Some(node) = node else { return };
        self.healed.lock().expect("healed lock").insert(node, Instant::now());
        let plan = match plan_drain(&state, node, &report_sizes(&reports)) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(node, error = %e, "node lost, but its replicas cannot be re-created elsewhere");
                return;
            }
        };
        let op = Operation::new(HEAL, plan, self.heal.budget, self.heal.gate_timeout_ms, self.heal.gate_timeout_ms);
        match self.cp.propose_as_leader(CpCommand::DrainNode { node, op: Box::new(op) }).await {
            Ok(_) => tracing::warn!(node, "node unreachable past the self-heal delay: re-creating its replicas"),
            Err(e) => tracing::warn!(node, error = %e, "node lost, but healing it cannot start"),
        }
    }

    fn state(&self) -> Option<Arc<ClusterState>> {
        Some(self.cp.local_machine()?.state())
    }

    async fn drive(&self, id: OpId) {
        loop {
            if !self.cp.is_local_leader() {
                return;
            }
            if self.cp.local_barrier().await.is_err() {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            let Some(state) = self.state() else { return };
            let Some(op) = state.operations.get(&id).cloned() else { return };
            if op.phase.is_finished() {
                tracing::info!(operation = id, phase = op.phase.name(), "operation finished");
                return;
            }
            match self.step(&state, &op).await {
                Ok(()) => {}
                Err(Stop::Reread) => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(Stop::Failed(why)) => {
                    tracing::warn!(operation = id, phase = op.phase.name(), error = %why, "operation step failed");
                    if op.phase == OpPhase::RollingBack {
                        // Rolling back only waits and retries.
                        let _ = self.note(id, format!("rolling back: {why}")).await;
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    } else {
                        let _ = self.become_(&op, OpPhase::RollingBack, None, Some(why)).await;
                    }
                }
            }
        }
    }

    async fn become_(
        &self,
        op: &Operation,
        phase: OpPhase,
        note: Option<String>,
        error: Option<String>,
    ) -> Result<(), Stop> {
        let cmd = CpCommand::OperationPhase { id: op.id, expect: op.phase, phase, note, error };
        self.cp.propose_as_leader(cmd).await?;
        tracing::info!(operation = op.id, from = op.phase.name(), to = phase.name(), "operation phase");
        Ok(())
    }

    async fn note(&self, id: OpId, text: String) -> Result<(), Stop> {
        self.cp.propose_as_leader(CpCommand::OperationNote { id, text }).await?;
        Ok(())
    }

    /// Take `op` one step further from its phase.
    async fn step(&self, state: &ClusterState, op: &Operation) -> Result<(), Stop> {
        if op.cancel_requested && op.phase != OpPhase::RollingBack {
            return self.become_(op, OpPhase::RollingBack, Some("cancelled by an operator".into()), None).await;
        }
        let next = op.phase.next().unwrap_or(OpPhase::Done);
        match op.phase {
            OpPhase::Preflight => {
                self.gate(op, "pre-flight", |_| Vec::new()).await?;
            }
            OpPhase::AddNodes => {
                if !op.plan.add_nodes.is_empty() {
                    self.join(op).await?;
                }
                self.gate(op, "nodes joined", |_| Vec::new()).await?;
            }
            OpPhase::CreatePrgs => {
                if !op.prgs_created && !op.plan.new_prgs.is_empty() {
                    self.cp.propose_as_leader(CpCommand::OperationCreatePrgs { id: op.id }).await?;
                    return Ok(());
                }
                let new: Vec<_> = op.plan.new_prgs.iter().map(|(p, _)| p.clone()).collect();
                self.gate(op, "new PRGs led and published", |s| {
                    new.iter()
                        .filter(|p| s.placements.get(*p).is_none_or(|p| p.leader_hint.is_none()))
                        .map(|p| format!("{p} has no leader yet"))
                        .collect()
                })
                .await?;
            }
            OpPhase::MoveSlots | OpPhase::MoveReplicas => {
                if !self.moves(state, op).await? {
                    tokio::time::sleep(POLL).await;
                    return Ok(());
                }
                self.gate(op, "moves done and published", |_| Vec::new()).await?;
            }
            OpPhase::Leaders => {
                for (prg, to) in &op.plan.leader_changes {
                    if let Err(e) = self.ops.transfer_leader(prg.clone(), *to).await {
                        // Balance of leaders is a preference, not a rule.
                        let _ = self.note(op.id, format!("{prg}: leadership stays where it is ({e})")).await;
                    }
                }
            }
            OpPhase::Validate => {
                self.gate(op, "validation", |s| validate(s, op)).await?;
            }
            OpPhase::RollingBack => return self.roll_back(state, op).await,
            OpPhase::Done | OpPhase::RolledBack | OpPhase::Cancelled | OpPhase::Failed => return Ok(()),
        }
        failpoint::check(after(op.phase))?;
        self.become_(op, next, None, None).await
    }

    /// Wait for the nodes the plan adds to join, be Active and report ready.
    async fn join(&self, op: &Operation) -> Result<(), Stop> {
        let waiting = |state: &ClusterState| {
            let health = self.health();
            let fresh = |h: &NodeHealth| h.ready && h.age_ms <= self.limits.report_ms;
            op.plan
                .add_nodes
                .iter()
                .filter_map(|n| match (state.nodes.get(&n.id), health.get(&n.id)) {
                    (None, _) => Some(format!("node {} has not joined", n.id)),
                    (Some(i), _) if i.state != NodeState::Active => Some(format!("node {} is {:?}", n.id, i.state)),
                    (Some(_), Some(r)) if fresh(r) => None,
                    (Some(_), _) => Some(format!("node {} has joined but is not ready", n.id)),
                })
                .collect()
        };
        self.wait(op, "new nodes joined", op.join_timeout_ms, waiting).await
    }

    /// Wait until the cluster is healthy, every active node has applied the
    /// current routing epoch, and `extra` finds nothing wrong.
    async fn gate(&self, op: &Operation, what: &str, extra: impl Fn(&ClusterState) -> Vec<String>) -> Result<(), Stop> {
        let problems = |state: &ClusterState| {
            let mut problems = self.problems(state);
            problems.extend(extra(state));
            if failpoint::check("operation/gate").is_err() {
                problems.push("fail point operation/gate".into());
            }
            problems
        };
        self.wait(op, what, op.gate_timeout_ms, problems).await
    }

    /// Wait until `check` finds nothing wrong, noting on the operation what
    /// it waits on (once); fail with every reason after `timeout_ms`.
    async fn wait(
        &self,
        op: &Operation,
        what: &str,
        timeout_ms: u64,
        check: impl Fn(&ClusterState) -> Vec<String>,
    ) -> Result<(), Stop> {
        let deadline = Instant::now() + Duration::from_millis(timeout_ms);
        let mut noted = false;
        loop {
            let state = self.state().ok_or(Stop::Reread)?;
            let problems = check(&state);
            if problems.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Stop::Failed(format!(
                    "gate '{what}' did not pass within {timeout_ms} ms: {}",
                    problems.join("; ")
                )));
            }
            if !noted {
                noted = true;
                self.note(op.id, format!("gate '{what}' waits: {}", problems.join("; "))).await?;
            }
            self.still_ours(op)?;
            tokio::time::sleep(POLL).await;
        }
    }

    /// Stop waiting when this node no longer leads, or an operator cancelled.
    fn still_ours(&self, op: &Operation) -> Result<(), Stop> {
        let cancelled = self.state().and_then(|s| s.operations.get(&op.id).map(|o| o.cancel_requested));
        if !self.cp.is_local_leader() || cancelled != Some(op.cancel_requested) {
            return Err(Stop::Reread);
        }
        Ok(())
    }

    /// The steps of `startable` that keep every PRG they touch at the
    /// disruption budget's floor of serving replicas, and why the others
    /// wait (the first of which is noted on the operation, once).
    async fn within_availability(
        &self,
        state: &ClusterState,
        op: &Operation,
        startable: Vec<usize>,
    ) -> (Vec<usize>, Vec<String>) {
        let health = self.health();
        let mut held = Vec::new();
        let ok: Vec<usize> = startable
            .into_iter()
            .filter(|i| {
                let short = short_of_replicas(state, &health, self.limits, &op.step_prgs(*i));
                held.extend(short.iter().map(|why| format!("step {i} waits: {why}")));
                short.is_empty()
            })
            .collect();
        if let Some(text) = held.first().filter(|t| op.events.last().is_none_or(|e| e.text != **t)) {
            let _ = self.note(op.id, text.clone()).await;
        }
        (ok, held)
    }

    /// What each node last reported of its health, as of now.
    fn health(&self) -> BTreeMap<NodeId, NodeHealth> {
        self.cp.node_health()
    }

    /// Every reason the cluster is not healthy, and every active node that
    /// has not yet applied the current routing epoch.
    fn problems(&self, state: &ClusterState) -> Vec<String> {
        let mut out = cluster_problems(state, &self.health(), self.cp.now_ms(), self.limits);
        let reports = self.cp.node_reports();
        for n in state.nodes.values().filter(|n| n.state == NodeState::Active) {
            if let Some(r) = reports.get(&n.id).filter(|r| r.applied_epoch < state.routing_epoch) {
                out.push(format!(
                    "node {} has applied routing epoch {}, not {}",
                    n.id, r.applied_epoch, state.routing_epoch
                ));
            }
        }
        out
    }

    /// One round of a move phase: record the steps whose moves ended, fail
    /// on a failed step, and start what the budget allows while the
    /// cluster is healthy. True once every step of the phase is done.
    async fn moves(&self, state: &ClusterState, op: &Operation) -> Result<bool, Stop> {
        let mut changed = false;
        for (i, s) in op.steps.iter().enumerate() {
            if s.state == StepState::Running && s.moves.last().is_some_and(|m| state.move_ended(*m).is_some()) {
                self.cp.propose_as_leader(CpCommand::OperationStepEnded { id: op.id, step: i }).await?;
                changed = true;
            }
        }
        if changed {
            return Err(Stop::Reread);
        }
        let mine: Vec<_> = op.steps.iter().enumerate().filter(|(_, s)| s.phase() == op.phase).collect();
        if let Some((i, _)) = mine.iter().find(|(_, s)| s.state == StepState::Failed) {
            let last = op.events.iter().rev().find(|e| e.text.starts_with(&format!("step {i}:")));
            return Err(Stop::Failed(last.map_or_else(|| format!("step {i} failed"), |e| e.text.clone())));
        }
        if mine.iter().all(|(_, s)| s.state == StepState::Done) {
            return Ok(true);
        }
        let mut problems = self.problems(state);
        let (startable, held) = self.within_availability(state, op, op.startable(state)).await;
        if startable.is_empty() {
            // Held back by the floor alone counts as unhealthy too: a
            // replica that never comes back must not hold an operation
            // forever.
            problems.extend(held);
        }
        let since = {
            let mut since = self.unhealthy_since.lock().expect("health lock");
            if problems.is_empty() {
                *since = None;
                None
            } else {
                Some(*since.get_or_insert_with(Instant::now))
            }
        };
        if since.is_some_and(|s| s.elapsed() > Duration::from_millis(op.gate_timeout_ms)) {
            return Err(Stop::Failed(format!(
                "the cluster stayed unhealthy for {} ms between moves: {}",
                op.gate_timeout_ms,
                problems.join("; ")
            )));
        }
        if !startable.is_empty() && problems.is_empty() {
            for i in startable {
                match self.cp.propose_as_leader(CpCommand::OperationStartStep { id: op.id, step: i }).await {
                    Ok(_) => {}
                    Err(crate::api::CpError::Refused(why)) => {
                        if self.step_moved_on(op.id, i).await {
                            return Err(Stop::Reread);
                        }
                        return Err(Stop::Failed(format!("step {i} cannot start: {why}")));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            return Err(Stop::Reread);
        }
        Ok(false)
    }

    /// Whether step `step` of operation `id` has left Pending in the
    /// current state (or the state cannot be read as current): its start
    /// was refused because this round acted on a state a newer leader had
    /// moved past (this node was cut off while it asked the nodes about
    /// their health), not because the step cannot start.
    async fn step_moved_on(&self, id: OpId, step: usize) -> bool {
        if self.cp.local_barrier().await.is_err() {
            return true;
        }
        let Some(state) = self.state() else { return true };
        state.operations.get(&id).and_then(|o| o.steps.get(step)).is_none_or(|s| s.state != StepState::Pending)
    }

    /// Stop the operation: cancel its moves that can still roll back, wait
    /// for the others, then remove its new PRGs if nothing moved into them.
    async fn roll_back(&self, state: &ClusterState, op: &Operation) -> Result<(), Stop> {
        let mut waiting = false;
        for (i, s) in op.steps.iter().enumerate().filter(|(_, s)| s.state == StepState::Running) {
            let Some(&m) = s.moves.last() else { continue };
            if state.move_ended(m).is_some() {
                self.cp.propose_as_leader(CpCommand::OperationStepEnded { id: op.id, step: i }).await?;
                return Ok(());
            }
            waiting = true;
            let cancellable = state.moves.get(&m).is_some_and(|m| !m.phase.is_committed() && !m.cancel_requested)
                || state.replica_moves.get(&m).is_some_and(|m| !m.phase.is_committed() && !m.cancel_requested);
            if cancellable {
                let _ = self.cp.propose_as_leader(CpCommand::CancelMove { id: m }).await;
            }
        }
        if waiting {
            tokio::time::sleep(POLL).await;
            return Ok(());
        }
        if op.prgs_created && !op.past_no_return(state) {
            self.cp.propose_as_leader(CpCommand::OperationRemovePrgs { id: op.id }).await?;
            return Ok(());
        }
        let changed = op.prgs_created || op.steps.iter().any(|s| s.state == StepState::Done);
        let end = match (changed, op.cancel_requested) {
            (false, _) => OpPhase::RolledBack,
            (true, true) => OpPhase::Cancelled,
            (true, false) => OpPhase::Failed,
        };
        self.become_(op, end, None, None).await
    }
}

/// The fail point after `phase`.
fn after(phase: OpPhase) -> &'static str {
    match phase {
        OpPhase::Preflight => "operation/after-preflight",
        OpPhase::AddNodes => "operation/after-add-nodes",
        OpPhase::CreatePrgs => "operation/after-create-prgs",
        OpPhase::MoveSlots => "operation/after-move-slots",
        OpPhase::MoveReplicas => "operation/after-move-replicas",
        OpPhase::Leaders => "operation/after-leaders",
        _ => "operation/after-validate",
    }
}

/// What should hold once `op` has run: its new PRGs placed as planned,
/// and every slot and replica move of the plan in place.
fn validate(state: &ClusterState, op: &Operation) -> Vec<String> {
    let mut out = Vec::new();
    for (prg, _) in &op.plan.new_prgs {
        if !state.placements.contains_key(prg) {
            out.push(format!("{prg} is not placed"));
        }
    }
    for m in &op.plan.slot_moves {
        let owner = state.tenants.get(&m.tenant).map(|t| &t.owner);
        if let Some(s) = m.slots.iter().find(|s| owner.and_then(|o| o.get(**s as usize)) != Some(&m.to.index)) {
            out.push(format!("slot {s} of {} is not owned by {}", m.tenant, m.to));
        }
    }
    for m in &op.plan.replica_moves {
        let members = state.placements.get(&m.step.prg).map(|p| p.members.clone()).unwrap_or_default();
        if !members.contains(&m.step.to) || members.contains(&m.step.from) {
            out.push(format!("{} has members {members:?}, not {} in place of {}", m.step.prg, m.step.to, m.step.from));
        }
    }
    out
}
