//! Draining a node: every leadership it holds handed to another replica,
//! every replica it hosts moved to other nodes, its client connections
//! closed once their requests in flight are answered, then it exits.
//!
//! | request | answer |
//! |---|---|
//! | `POST /admin/drain` `{"node":4}` (no body: this node) | 202, the drain operation's id (`/api/v1/operations/{id}`) and its plan |
//! | the same, with `"dry_run":true` | 200, the plan; nothing changes |
//! | `POST /admin/drain/cancel` `{"node":4}` | 200: the node is Active again, its drain operation stopped |
//! | `GET /admin/drain` | 200, `{"nodes":[...]}`: each draining node, the replicas it still hosts, its operation |
//! | `POST /admin/remove-node` `{"node":4}` | 200, the cluster's `quorum` and `nodeCount` before and after |
//!
//! Removal takes a node that holds no replica out of the cluster for
//! good: its id never registers again, and the node, told so at its next
//! sync, stops. Refused (409, nothing changes) while the node holds
//! replicas or is being drained, when fewer than 3 active nodes would be
//! left, and for a control-plane voter (this version keeps the voters it
//! was bootstrapped with).
//!
//! Asking to drain a node already draining answers 202 with the running
//! operation. The control plane marks the node Draining (no replica is
//! placed there from then on, and it answers `/readyz` with 503 so load
//! balancers stop sending to it) and runs a scaling operation of kind
//! `drain` whose steps move the node's replicas, each gated on health and
//! within the disruption budget (`max_moves_per_node`, `max_moves`,
//! `gate_timeout_ms` as for a scale-up). The node hands off its
//! leaderships as soon as it sees itself Draining, and once its replicas
//! are gone the process that saw the drain begin exits. SIGTERM drains the
//! same way (see `Node::drain_and_stop`).
//!
//! Refused with 404 (an unknown node) or 409, changing nothing: a drain
//! that would leave fewer than 3 active nodes for a PRG's voters, or no
//! node that can take one of its replicas; a control-plane voter whose
//! drain would leave the voters that are up, or that are not draining,
//! short of a quorum; another operation running.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tidal_control::command::drain_ops::{check_remove, draining_now, in_cp, DRAIN};
use tidal_control::{CpCommand, CpError, CpReply};
use tidal_core::operation::{OpId, Operation};
use tidal_core::planner::drain::{plan_drain, DrainError};
use tidal_core::planner::scale::ScalePlan;
use tidal_core::{ClusterState, NodeId, NodeState};

use crate::moves_api::{fresh, parse_body, ApiError};
use crate::node::Shared;
use crate::operations_api::accepted;
use crate::scale_api::{plan_view, sizes, RunOptions, START_ATTEMPTS};

type S = State<Arc<Shared>>;

impl From<DrainError> for ApiError {
    fn from(e: DrainError) -> Self {
        match e {
            DrainError::UnknownNode(_) => ApiError::NotFound(e.to_string()),
            DrainError::NotEnoughNodes { .. } | DrainError::NoTarget { .. } => ApiError::Conflict(e.to_string()),
        }
    }
}

/// What a drain may change from the defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct DrainOptions {
    /// The node to drain (default: the node asked).
    pub node: Option<NodeId>,
    #[serde(default)]
    pub dry_run: bool,
    pub gate_timeout_ms: Option<u64>,
    pub max_moves_per_node: Option<u32>,
    pub max_moves: Option<u32>,
}

/// A drain under way.
pub struct Started {
    pub operation: OpId,
    pub plan: ScalePlan,
    /// It was already running: this request started nothing.
    pub already: bool,
}

/// Drain `node`: start its drain operation, or find the one running.
pub async fn request(s: &Shared, node: NodeId, opts: DrainOptions) -> Result<Started, ApiError> {
    let run = RunOptions {
        gate_timeout_ms: opts.gate_timeout_ms,
        max_moves_per_node: opts.max_moves_per_node,
        max_moves: opts.max_moves,
        ..RunOptions::default()
    };
    let (budget, gate_timeout_ms, _) = run.settings(s)?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let state = fresh(s).await?;
        if let Some(op) = draining_now(&state, node) {
            return Ok(Started { operation: op.id, plan: op.plan.clone(), already: true });
        }
        let plan = plan(s, &state, node)?;
        let op = Operation::new(DRAIN, plan.clone(), budget, gate_timeout_ms, gate_timeout_ms);
        match s.cp.propose(CpCommand::DrainNode { node, op: Box::new(op) }).await {
            Ok(CpReply::OperationStarted { id }) => return Ok(Started { operation: id, plan, already: false }),
            Ok(other) => return Err(ApiError::Unavailable(format!("unexpected answer {other:?}"))),
            Err(CpError::Refused(why)) if why.starts_with("the cluster changed") && attempt < START_ATTEMPTS => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// The drain plan of `node` against `state`, if the node may be drained.
fn plan(s: &Shared, state: &ClusterState, node: NodeId) -> Result<ScalePlan, ApiError> {
    let plan = plan_drain(state, node, &sizes(s, state))?;
    cp_voters_up(s, state, node)?;
    Ok(plan)
}

/// Refuse to drain a control-plane voter when the other voters that are
/// up (reporting within the health limits, and not draining) are short
/// of a quorum: the control plane would stop with it.
fn cp_voters_up(s: &Shared, state: &ClusterState, node: NodeId) -> Result<(), ApiError> {
    if !state.cp_members.contains(&node) {
        return Ok(());
    }
    let reports = s.cp_reports.lock().expect("reports lock").clone();
    let now = s.clock.now_ms();
    let limit = s.health_limits().report_ms;
    let up: Vec<NodeId> = state
        .cp_members
        .iter()
        .copied()
        .filter(|m| *m != node)
        .filter(|m| state.nodes.get(m).is_some_and(|n| n.state == NodeState::Active))
        .filter(|m| reports.get(m).is_some_and(|r| r.health(now).age_ms <= limit))
        .collect();
    let quorum = state.cp_members.len() / 2 + 1;
    if up.len() < quorum {
        return Err(ApiError::Conflict(format!(
            "node {node} is a control-plane voter and only {} other voters are up ({up:?}); the control plane \
             needs {quorum} of its {}: bring a voter back first",
            up.len(),
            state.cp_members.len()
        )));
    }
    Ok(())
}

/// A request body that may be empty (all defaults).
fn optional_body<T: Default + serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    parse_body(body)
}

pub async fn drain(State(s): S, body: Bytes) -> Result<Response, ApiError> {
    let opts: DrainOptions = optional_body(&body)?;
    let node = opts.node.unwrap_or(s.config.node_id);
    if opts.dry_run {
        let plan = plan(&s, &fresh(&s).await?, node)?;
        return Ok(Json(json!({ "node": node, "plan": plan_view(&plan) })).into_response());
    }
    let d = request(&s, node, opts).await?;
    Ok(accepted(d.operation, json!({ "node": node, "plan": plan_view(&d.plan), "already_draining": d.already })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
struct NodeRef {
    node: Option<NodeId>,
}

pub async fn cancel(State(s): S, body: Bytes) -> Result<Response, ApiError> {
    let node = optional_body::<NodeRef>(&body)?.node.unwrap_or(s.config.node_id);
    let state = fresh(&s).await?;
    match state.nodes.get(&node) {
        None => return Err(ApiError::NotFound(format!("no node {node}"))),
        Some(n) if n.state != NodeState::Draining => {
            return Err(ApiError::Conflict(format!("node {node} is not draining")));
        }
        Some(_) => {}
    }
    s.cp.propose(CpCommand::UndrainNode { node }).await?;
    Ok(Json(json!({ "node": node, "state": "active" })).into_response())
}

pub async fn remove_node(State(s): S, body: Bytes) -> Result<Response, ApiError> {
    let node = parse_body::<NodeRef>(&body)?
        .node
        .ok_or_else(|| ApiError::BadRequest("name the node to remove: {\"node\": ID}".into()))?;
    let state = fresh(&s).await?;
    if !state.nodes.contains_key(&node) {
        return Err(ApiError::NotFound(format!("no node {node}")));
    }
    check_remove(&state, node).map_err(ApiError::Conflict)?;
    let before = crate::admin::health(&s);
    s.cp.propose(CpCommand::RemoveNode { node }).await?;
    fresh(&s).await?;
    let after = crate::admin::health(&s);
    let view = |h: &crate::admin::Health| json!({ "quorum": h.quorum, "nodeCount": h.node_count });
    Ok(Json(json!({ "node": node, "removed": true, "before": view(&before), "after": view(&after) })).into_response())
}

pub async fn list(State(s): S) -> Result<Response, ApiError> {
    let state = fresh(&s).await?;
    let nodes: Vec<Value> = state
        .nodes
        .values()
        .filter(|n| n.state == NodeState::Draining)
        .map(|n| {
            let replicas: Vec<String> = state.placements_hosted_on(n.id).map(|p| p.prg.to_string()).collect();
            let op = draining_now(&state, n.id).map(|o| o.id);
            let votes = in_cp(&state, n.id);
            let phase = if op.is_some() {
                "draining"
            } else if !replicas.is_empty() {
                "stopped"
            } else if votes {
                "moving-vote"
            } else {
                "drained"
            };
            json!({ "node": n.id, "state": phase, "replicas": replicas, "cpVote": votes, "operation": op })
        })
        .collect();
    Ok(Json(json!({ "nodes": nodes })).into_response())
}
