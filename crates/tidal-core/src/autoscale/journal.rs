//! What the control plane keeps of autoscaling: the policy in force and a
//! bounded journal of decisions, each with its inputs, its arithmetic and
//! what came of it. A decision is journaled when it acts, or when it says
//! something other than the one before it, so a steady cluster writes
//! nothing.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::policy::{Policy, PolicyError};
use super::recommend::{Decision, Signals};

/// Decisions the control plane keeps; older ones are dropped.
pub const JOURNAL_LEN: usize = 64;

/// Autoscaling's part of the cluster state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AutoscaleState {
    /// The policy in force, as JSON (it validated when applied); `None`:
    /// autoscaling is off.
    pub policy: Option<String>,
    /// When it was applied.
    pub applied_ms: u64,
    /// The latest decisions, oldest first.
    pub decisions: Vec<DecisionRecord>,
    /// The id the next decision gets.
    pub next_decision: u64,
}

// The journal's figures are rates and counts, never NaN, so equality is
// total (the cluster state, which holds this, compares as `Eq`).
impl Eq for AutoscaleState {}

impl AutoscaleState {
    /// The policy in force, if any.
    pub fn policy(&self) -> Option<Policy> {
        self.policy.as_deref().and_then(|p| serde_json::from_str(p).ok())
    }

    /// Journal `record` (its id given here), dropping the oldest beyond
    /// [`JOURNAL_LEN`].
    pub fn record(&mut self, mut record: DecisionRecord) -> u64 {
        record.id = self.next_decision;
        self.next_decision += 1;
        self.decisions.push(record);
        let over = self.decisions.len().saturating_sub(JOURNAL_LEN);
        self.decisions.drain(..over);
        self.next_decision - 1
    }
}

/// A policy as a client sends it: parsed and validated, or every reason
/// it is not valid, each naming its field.
pub fn parse_policy(json: &str) -> Result<Policy, Vec<PolicyError>> {
    let policy: Policy =
        serde_json::from_str(json).map_err(|e| vec![PolicyError { field: "policy".into(), why: e.to_string() }])?;
    policy.validate()?;
    Ok(policy)
}

/// `policy` as the control plane stores it.
pub fn policy_json(policy: &Policy) -> String {
    serde_json::to_string(policy).expect("a policy always serializes")
}

/// What the control-plane leader did about a decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// The cluster is as the decision wants it.
    Steady,
    /// A scale-up operation started.
    ScaleUp { operation: u64 },
    /// A shrink plan was drafted; an operator arms it.
    Drafted { plan: String },
    /// A shrink plan was drafted and armed, as the policy's `autoArm` allows.
    Armed { plan: String, operation: u64 },
    /// A draft of the autoscaler's was cancelled: the load came back.
    DraftCancelled { plan: String },
    /// Nothing could be done yet (an operation runs, a plan awaits arming).
    Waiting { why: String },
    /// The action was refused or failed.
    Failed { why: String },
}

impl Outcome {
    /// Whether the leader changed something.
    pub fn acted(&self) -> bool {
        matches!(
            self,
            Outcome::ScaleUp { .. } | Outcome::Drafted { .. } | Outcome::Armed { .. } | Outcome::DraftCancelled { .. }
        )
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Steady => f.write_str("steady"),
            Outcome::ScaleUp { operation } => write!(f, "scale-up started: operation {operation}"),
            Outcome::Drafted { plan } => write!(f, "shrink plan {plan} drafted; arm it to shrink"),
            Outcome::Armed { plan, operation } => {
                write!(f, "shrink plan {plan} drafted and armed: operation {operation}")
            }
            Outcome::DraftCancelled { plan } => write!(f, "shrink plan {plan} cancelled: the load came back"),
            Outcome::Waiting { why } => write!(f, "waiting: {why}"),
            Outcome::Failed { why } => write!(f, "failed: {why}"),
        }
    }
}

// As for the state: the figures are never NaN.
impl Eq for DecisionRecord {}

/// One journaled decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    pub id: u64,
    /// What the recommender read.
    pub signals: Signals,
    /// What it decided, and why.
    pub decision: Decision,
    pub outcome: Outcome,
}

impl DecisionRecord {
    /// Whether this decision says what `last` said: same count, same
    /// hold, same PRGs, same outcome (then it is not journaled again; a
    /// metric's ask that moves while the count stays, at the maximum say,
    /// is not news).
    pub fn repeats(&self, last: &DecisionRecord) -> bool {
        let (a, b) = (&self.decision, &last.decision);
        let prgs = |d: &Decision| d.prgs.iter().map(|(t, p)| (t.clone(), p.prgs)).collect::<Vec<_>>();
        a.current == b.current
            && a.nodes == b.nodes
            && a.held.is_some() == b.held.is_some()
            && prgs(a) == prgs(b)
            && self.outcome == last.outcome
    }
}
