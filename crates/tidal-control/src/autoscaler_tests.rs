use super::*;
use tidal_core::autoscale::data::PrgAsk;
use tidal_core::autoscale::hpa::Reason;
use tidal_core::autoscale::journal::parse_policy;
use tidal_core::autoscale::Recommendation;
use tidal_core::operation::{Budget, Operation};
use tidal_core::planner::scale::{ScalePlan, Sizes};
use tidal_core::shrink::{plan_shrink, ShrinkRequest};
use tidal_core::{NodeInfo, NodeState};

use crate::command::apply;

/// Four nodes, tenant `default` with 4 PRGs.
fn cluster() -> ClusterState {
    let mut s = ClusterState::default();
    for id in 1..=4 {
        let info = NodeInfo {
            id,
            peer_addr: format!("127.0.0.1:{}", 7000 + id),
            client_addr: String::new(),
            http_addr: String::new(),
            zone: String::new(),
            state: NodeState::Active,
        };
        apply(&mut s, 0, &CpCommand::RegisterNode(info));
    }
    apply(&mut s, 0, &CpCommand::CreateTenant { name: "default".into(), slots: 64, prgs: 4 });
    s
}

fn decision(current: u32, nodes: u32, prgs: Option<u32>) -> Decision {
    decision_at(0, current, nodes, prgs)
}

fn decision_at(at_ms: u64, current: u32, nodes: u32, prgs: Option<u32>) -> Decision {
    let recommendation = Recommendation {
        asked: nodes,
        stabilized: nodes,
        nodes,
        stabilization: Reason::DesiredWithinRange,
        reason: Reason::DesiredWithinRange,
    };
    let prgs = prgs
        .map(|n| [("default".to_string(), PrgAsk { prgs: n, by: "ops".into(), why: String::new() })].into())
        .unwrap_or_default();
    Decision { at_ms, current, nodes, asks: Vec::new(), desired: nodes, recommendation, held: None, prgs }
}

fn policy(auto_arm: bool) -> Policy {
    parse_policy(&format!(r#"{{"minNodes":3,"maxNodes":9,"autoArm":{auto_arm}}}"#)).unwrap()
}

/// `state` with a shrink plan `id` in `st`.
fn with_plan(mut state: ClusterState, id: &str, st: PlanState) -> ClusterState {
    let sizes = Sizes { prg_bytes: BTreeMap::new(), slot_bytes: BTreeMap::new(), rate: 1 << 20, step_ms: 1000 };
    let ask = ShrinkRequest { nodes: Some(3), prgs: BTreeMap::new() };
    let mut plan = plan_shrink(&state, id, &ask, &sizes, 0).unwrap();
    plan.state = st;
    state.shrink_plans.insert(id.to_string(), plan);
    state
}

fn running(mut state: ClusterState) -> ClusterState {
    let mut op = Operation::new("heal", ScalePlan::default(), Budget::default(), 1000, 1000);
    op.id = 7;
    state.operations.insert(7, op);
    state
}

#[test]
fn more_nodes_or_prgs_scale_up_once_nothing_runs() {
    let s = cluster();
    let p = policy(false);
    let up = Action::ScaleOut { nodes: 6, prgs: BTreeMap::new() };
    assert_eq!(action_for(&s, &p, &decision(4, 6, None)), up);
    // PRGs alone: the node count stays.
    let prgs = Action::ScaleOut { nodes: 4, prgs: [("default".to_string(), 6)].into() };
    assert_eq!(action_for(&s, &p, &decision(4, 4, Some(6))), prgs);
    // As many PRGs as now: nothing.
    assert_eq!(action_for(&s, &p, &decision(4, 4, Some(4))), Action::Steady);
    assert_eq!(
        action_for(&running(s.clone()), &p, &decision(4, 6, None)),
        Action::Wait("operation 7 (heal) runs".into())
    );
}

#[test]
fn fewer_nodes_draft_a_plan_armed_only_when_the_policy_says() {
    let s = cluster();
    let draft = |arm| Action::Draft { id: format!("autoscale-v{}", s.version), nodes: 3, prgs: BTreeMap::new(), arm };
    assert_eq!(action_for(&s, &policy(false), &decision(4, 3, None)), draft(false));
    assert_eq!(action_for(&s, &policy(true), &decision(4, 3, None)), draft(true));
    // Fewer PRGs at the same node count: a plan too.
    let merge = action_for(&s, &policy(false), &decision(4, 4, Some(2)));
    assert!(matches!(merge, Action::Draft { nodes: 4, ref prgs, arm: false, .. } if prgs["default"] == 2), "{merge:?}");
    // One plan at a time, the operator's too; none while an operation runs.
    let theirs = with_plan(s.clone(), "mine", PlanState::Draft);
    assert_eq!(
        action_for(&theirs, &policy(false), &decision(4, 3, None)),
        Action::Wait("shrink plan mine awaits arming".into())
    );
    assert!(matches!(action_for(&running(s), &policy(false), &decision(4, 3, None)), Action::Wait(_)));
}

#[test]
fn a_draft_of_its_own_is_cancelled_when_the_load_comes_back() {
    let own = with_plan(cluster(), "autoscale-v9", PlanState::Draft);
    let cancel = Action::CancelDraft { id: "autoscale-v9".into() };
    // Above the target: at once.
    assert_eq!(action_for(&own, &policy(false), &decision(4, 5, None)), cancel);
    // At the target: kept through the scale-down window (300 s by
    // default), so a load that hovers there does not flap the plan.
    assert!(matches!(action_for(&own, &policy(false), &decision_at(299_999, 4, 4, None)), Action::Wait(_)));
    assert_eq!(action_for(&own, &policy(false), &decision_at(300_000, 4, 4, None)), cancel);
    let short =
        parse_policy(r#"{"minNodes":3,"maxNodes":9,"behavior":{"scaleDown":{"stabilizationWindowSeconds":0}}}"#);
    assert_eq!(action_for(&own, &short.unwrap(), &decision(4, 4, None)), cancel);
    // An operator's draft is theirs to cancel.
    let theirs = with_plan(cluster(), "mine", PlanState::Draft);
    assert_eq!(action_for(&theirs, &policy(false), &decision(4, 4, None)), Action::Steady);
    assert_eq!(
        action_for(&theirs, &policy(false), &decision(4, 5, None)),
        Action::ScaleOut { nodes: 5, prgs: BTreeMap::new() }
    );
    // Armed, it runs: not cancelled.
    let armed = with_plan(cluster(), "autoscale-v9", PlanState::Armed);
    assert_eq!(action_for(&armed, &policy(false), &decision(4, 4, None)), Action::Steady);
}

#[test]
fn a_repeated_decision_is_not_journaled_again() {
    let signals = tidal_core::autoscale::Signals::default();
    let rec = |nodes, outcome| DecisionRecord {
        id: 0,
        signals: signals.clone(),
        decision: decision(4, nodes, None),
        outcome,
    };
    assert!(rec(4, Outcome::Steady).repeats(&rec(4, Outcome::Steady)));
    assert!(!rec(5, Outcome::Steady).repeats(&rec(4, Outcome::Steady)));
    assert!(!rec(4, Outcome::Waiting { why: "x".into() }).repeats(&rec(4, Outcome::Steady)));
}
