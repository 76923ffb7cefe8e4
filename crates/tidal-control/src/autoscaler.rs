//! The autoscaler's loop, on the control-plane leader: twice a second it
//! reads the policy in force and the nodes' latest reports, asks the pure
//! recommender (`tidal_core::autoscale`) for a decision, carries it out,
//! and journals it when it acted or changed its mind.
//!
//! ```text
//!   reports ──► signals ──► recommend (history kept here) ──► Decision
//!                                                               │ action_for
//!        ┌───────────────┬──────────────────┬──────────────────┼──────────────┐
//!     steady        scale-up op       Draft shrink plan    cancel own draft   wait
//!                  (ScaleActions)    (armed only with         (the load     (an operation
//!                                      policy autoArm)        came back)     or plan pending)
//! ```
//!
//! Scale-down is only ever a Draft shrink plan named `autoscale-v<version>`
//! that an operator arms, unless the policy sets `autoArm`. The history the
//! HPA's windows and policies look back on lives in this leader's memory:
//! a new leader starts it afresh, as a restarted HPA controller does (its
//! first decisions then move only as far as the policy's limits allow from
//! the current count).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tidal_core::autoscale::forecast::Forecast;
use tidal_core::autoscale::journal::{DecisionRecord, Outcome};
use tidal_core::autoscale::signals::signals;
use tidal_core::autoscale::{recommend, Change, Decision, Policy, Recommender};
use tidal_core::operation::OpId;
use tidal_core::shrink::PlanState;
use tidal_core::ClusterState;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::api::ControlPlane;
use crate::command::CpCommand;
use tidal_raft::transport::BoxFuture;

/// Where a shrink plan drafted by the autoscaler gets its name.
pub const PLAN_PREFIX: &str = "autoscale-v";

/// How the autoscaler changes the cluster (the node's scaling API does
/// the planning).
pub trait ScaleActions: Send + Sync + 'static {
    /// Start a scale-up to `nodes` nodes with `prgs` PRGs for the tenants
    /// named; the operation's id.
    fn scale_out(&self, nodes: u32, prgs: BTreeMap<String, u32>) -> BoxFuture<Result<OpId, String>>;
    /// Draft shrink plan `id` down to `nodes` nodes and `prgs` PRGs, and
    /// arm it when `arm`; the operation's id when armed.
    fn draft_shrink(
        &self,
        id: String,
        nodes: u32,
        prgs: BTreeMap<String, u32>,
        arm: bool,
    ) -> BoxFuture<Result<Option<OpId>, String>>;
    /// Cancel the Draft shrink plan `id`.
    fn cancel_plan(&self, id: String) -> BoxFuture<Result<(), String>>;
}

/// What the loop does about a decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Steady,
    ScaleOut { nodes: u32, prgs: BTreeMap<String, u32> },
    Draft { id: String, nodes: u32, prgs: BTreeMap<String, u32>, arm: bool },
    CancelDraft { id: String },
    Wait(String),
}

/// What to do about `decision` in `state`:
/// - more nodes or PRGs wanted: cancel a Draft of the autoscaler's first
///   (the load came back), then scale up, once no operation runs;
/// - fewer: draft a shrink plan, once no operation runs and no plan is
///   pending (one at a time; an operator's own Draft holds it too);
/// - neither: keep a Draft of the autoscaler's for the scale-down
///   stabilization window after it was drafted (a load that hovers at the
///   target would otherwise draft and cancel a plan every few seconds,
///   under the eyes of the operator asked to review it), then cancel it:
///   it no longer applies.
pub fn action_for(state: &ClusterState, policy: &Policy, decision: &Decision) -> Action {
    let current = decision.current;
    let prgs_now = |t: &str| state.placements.keys().filter(|p| p.tenant == t).count() as u32;
    let Change { grow, shrink, up, down } = decision.change(prgs_now);
    let pending = state.shrink_plans.values().find(|p| matches!(p.state, PlanState::Draft | PlanState::Armed));
    let own_draft = pending.filter(|p| p.state == PlanState::Draft && p.id.starts_with(PLAN_PREFIX));
    let running = state.running_operation();
    if up || !down {
        if let Some(p) = own_draft {
            let window_ms = u64::from(policy.behavior.down().stabilization_window_seconds.unwrap_or(0)) * 1000;
            if !up && decision.at_ms < p.created_ms.saturating_add(window_ms) {
                return Action::Wait(format!(
                    "shrink plan {} awaits arming; the load is back at the target, and the plan is kept for the \
                     scale-down window",
                    p.id
                ));
            }
            return Action::CancelDraft { id: p.id.clone() };
        }
        if !up {
            return Action::Steady;
        }
        if let Some(op) = running {
            return Action::Wait(format!("operation {} ({}) runs", op.id, op.kind));
        }
        return Action::ScaleOut { nodes: decision.nodes.max(current), prgs: grow };
    }
    if let Some(op) = running {
        return Action::Wait(format!("operation {} ({}) runs", op.id, op.kind));
    }
    if let Some(p) = pending {
        let what = if p.state == PlanState::Draft { "awaits arming" } else { "runs" };
        return Action::Wait(format!("shrink plan {} {what}", p.id));
    }
    Action::Draft {
        id: format!("{PLAN_PREFIX}{}", state.version),
        nodes: decision.nodes.min(current),
        prgs: shrink,
        arm: policy.auto_arm,
    }
}

/// How long the loop leaves an action that failed before trying it again.
const RETRY_AFTER: Duration = Duration::from_secs(30);

/// The load expected a given number of ms from now, from the history
/// this node has recorded.
pub type ForecastSource = Arc<dyn Fn(u64) -> Option<Forecast> + Send + Sync>;

/// The autoscaler of one node, acting while it leads the control plane.
pub struct Autoscaler {
    cp: Arc<ControlPlane>,
    actions: Arc<dyn ScaleActions>,
    forecast: ForecastSource,
    /// A report older than this counts as none (the health check's limit).
    report_ms: u64,
    every: Duration,
}

/// The loop's memory while it leads.
#[derive(Default)]
struct Leading {
    history: Recommender,
    /// The last failure, and until when it stands instead of trying again.
    failed: Option<(Outcome, Instant)>,
}

impl Autoscaler {
    pub fn new(
        cp: Arc<ControlPlane>,
        actions: Arc<dyn ScaleActions>,
        forecast: ForecastSource,
        report_ms: u64,
        every: Duration,
    ) -> Self {
        Autoscaler { cp, actions, forecast, report_ms, every }
    }

    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut leading: Option<Leading> = None;
        loop {
            if self.cp.is_local_leader() {
                let l = leading.get_or_insert_with(Leading::default);
                self.tick(l).await;
            } else {
                leading = None;
            }
            tokio::select! {
                biased;
                _ = tokio::time::sleep(self.every) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// One decision: made, carried out, journaled if it says something new.
    async fn tick(&self, l: &mut Leading) {
        let Some(state) = self.cp.local_machine().map(|m| m.state()) else { return };
        let Some(policy) = state.autoscale.policy() else {
            *l = Leading::default();
            return;
        };
        let reports: BTreeMap<_, _> = self
            .cp
            .aged_reports()
            .into_iter()
            .map(|(n, (r, age_ms))| (n, r.reported(age_ms <= self.report_ms)))
            .collect();
        let now_ms = self.cp.now_ms();
        let mut signals = signals(&state, &reports, now_ms);
        if let Some(f) = &policy.forecast {
            signals.forecast = (self.forecast)(u64::from(f.lead_seconds) * 1000);
        }
        let decision = recommend(&policy, &signals, &mut l.history);
        let outcome = match &l.failed {
            Some((failure, until)) if Instant::now() < *until => failure.clone(),
            _ => self.act(&state, &policy, &decision, &mut l.history, now_ms).await,
        };
        if let Outcome::Failed { .. } = &outcome {
            if l.failed.as_ref().is_none_or(|(_, until)| Instant::now() >= *until) {
                l.failed = Some((outcome.clone(), Instant::now() + RETRY_AFTER));
            }
        } else {
            l.failed = None;
        }
        let record = DecisionRecord { id: 0, signals, decision, outcome };
        if state.autoscale.decisions.last().is_some_and(|last| record.repeats(last)) {
            return;
        }
        if let Err(e) = self.cp.propose_as_leader(CpCommand::RecordDecision(Box::new(record))).await {
            tracing::debug!(error = %e, "could not journal an autoscale decision");
        }
    }

    async fn act(
        &self,
        state: &ClusterState,
        policy: &Policy,
        decision: &Decision,
        history: &mut Recommender,
        now_ms: u64,
    ) -> Outcome {
        let failed = |why: String| Outcome::Failed { why };
        match action_for(state, policy, decision) {
            Action::Steady => Outcome::Steady,
            Action::Wait(why) => Outcome::Waiting { why },
            Action::CancelDraft { id } => match self.actions.cancel_plan(id.clone()).await {
                Ok(()) => Outcome::DraftCancelled { plan: id },
                Err(why) => failed(why),
            },
            Action::ScaleOut { nodes, prgs } => match self.actions.scale_out(nodes, prgs).await {
                Ok(operation) => {
                    tracing::info!(from = decision.current, to = nodes, operation, "autoscale: scaling up");
                    history.record_scale(now_ms, policy, decision.current, nodes);
                    Outcome::ScaleUp { operation }
                }
                Err(why) => failed(why),
            },
            Action::Draft { id, nodes, prgs, arm } => {
                match self.actions.draft_shrink(id.clone(), nodes, prgs, arm).await {
                    Ok(None) => {
                        tracing::info!(from = decision.current, to = nodes, plan = %id, "autoscale: shrink plan drafted");
                        Outcome::Drafted { plan: id }
                    }
                    Ok(Some(operation)) => {
                        tracing::info!(from = decision.current, to = nodes, plan = %id, operation, "autoscale: shrinking");
                        history.record_scale(now_ms, policy, decision.current, nodes);
                        Outcome::Armed { plan: id, operation }
                    }
                    Err(why) => failed(why),
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "autoscaler_tests.rs"]
mod tests;
