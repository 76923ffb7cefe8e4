//! The autoscaling API, and how the autoscaler on the control-plane
//! leader acts through this node's scaling API.
//!
//! | request | answer |
//! |---|---|
//! | `PUT /api/v1/autoscale/policy` (the policy, JSON) | 200, the policy in force with every default filled in; 400 naming each wrong field |
//! | `DELETE /api/v1/autoscale/policy` | 200: autoscaling off (the journal stays) |
//! | `GET /api/v1/autoscale` | 200, `policy` (or null), `appliedMs`, `latest`: the last decision journaled |
//! | `GET /api/v1/autoscale/signals` | 200, what the recommender would read now, and the totals capacity planning starts from |
//! | `GET /api/v1/autoscale/resources?window=24h` | 200, CPU and memory requests and limits per node (the VPA's recommend mode) |
//! | `GET /api/v1/autoscale/forecast?lead=10m` | 200, the load expected then, from the recorded history |
//! | `GET /api/v1/indicators` | 200, each load indicator's figure, level (ok, warning, critical, unknown) and since when |
//! | `GET /api/v1/autoscale/decisions` | 200, `decisions`: the journal, oldest first, each with its inputs (`signals`), arithmetic (`decision`) and `outcome` |
//!
//! A policy is validated here (every wrong field named, nothing changed)
//! and again by the control plane when it applies it.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use tidal_control::{CpCommand, ScaleActions};
use tidal_core::autoscale::forecast::forecast;
use tidal_core::autoscale::history::STEP_MS;
use tidal_core::autoscale::indicators::Level;
use tidal_core::autoscale::journal::{parse_policy, policy_json};
use tidal_core::autoscale::resources::advise;
use tidal_core::autoscale::signals::signals;
use tidal_core::autoscale::PolicyError;
use tidal_core::operation::OpId;
use tidal_core::planner::scale::ScaleRequest;
use tidal_core::planner::PlanNode;
use tidal_core::shrink::ShrinkRequest;
use tidal_core::NodeState;
use tidal_raft::transport::BoxFuture;

use crate::moves_api::{fresh, ApiError};
use crate::node::Shared;
use crate::scale_api::RunOptions;
use crate::shrink_api::{arm_plan, draft, Ask};

type S = State<Arc<Shared>>;

/// 400 with every wrong field.
fn invalid(errors: &[PolicyError]) -> Response {
    let each: Vec<String> = errors.iter().map(|e| format!("{}: {}", e.field, e.why)).collect();
    let body = json!({
        "error": format!("invalid autoscale policy: {}", each.join("; ")),
        "fields": errors.iter().map(|e| json!({"field": e.field, "why": e.why})).collect::<Vec<_>>(),
    });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

pub async fn put_policy(State(s): S, body: Bytes) -> Result<Response, ApiError> {
    let text = std::str::from_utf8(&body).map_err(|_| ApiError::BadRequest("the policy is not UTF-8".into()))?;
    let policy = match parse_policy(text) {
        Ok(p) => p,
        Err(errors) => return Ok(invalid(&errors)),
    };
    let json = policy_json(&policy);
    s.cp.propose(CpCommand::SetAutoscalePolicy { policy: Some(json) }).await?;
    Ok(Json(json!({ "policy": policy })).into_response())
}

pub async fn delete_policy(State(s): S) -> Result<Response, ApiError> {
    s.cp.propose(CpCommand::SetAutoscalePolicy { policy: None }).await?;
    Ok(Json(json!({ "policy": null })).into_response())
}

pub async fn show(State(s): S) -> Result<Response, ApiError> {
    let state = fresh(&s).await?;
    let a = &state.autoscale;
    Ok(Json(json!({
        "policy": a.policy(),
        "appliedMs": a.applied_ms,
        "nodes": state.nodes.values().filter(|n| n.state == NodeState::Active).count(),
        "latest": a.decisions.last(),
    }))
    .into_response())
}

/// The recommender's inputs as this node sees them now (the leader's
/// latest reports, shared with every node at each sync), with the totals
/// capacity planning starts from.
pub async fn live_signals(State(s): S) -> Result<Response, ApiError> {
    let state = fresh(&s).await?;
    let now = s.clock.now_ms();
    let reports = s.reported(now);
    let signals = signals(&state, &reports, now);
    let ops: f64 = signals.tenants.values().map(|t| t.ops).sum();
    Ok(Json(json!({
        "totals": {
            "ops": ops,
            "dataBytes": signals.data_bytes,
            "prgs": state.placements.len(),
            "nodes": signals.nodes,
            "nodeMemory": signals.node_memory,
        },
        "signals": signals,
    }))
    .into_response())
}

/// A duration given as `name=24h`, or `default` without it; 400 when it
/// does not read.
fn duration_param(name: &str, value: Option<&str>, default: Duration) -> Result<Duration, ApiError> {
    match value {
        None => Ok(default),
        Some(v) => humantime::parse_duration(v).map_err(|e| ApiError::BadRequest(format!("{name} '{v}': {e}"))),
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// `24h`, `7d`: how far back to look (default a day).
    window: Option<String>,
}

/// `GET /api/v1/autoscale/resources?window=24h`: CPU and memory requests
/// and limits per node and for the nodes together, from this node's
/// record of their usage (see `tidal_core::autoscale::resources`).
pub async fn resources(State(s): S, Query(q): Query<Window>) -> Result<Response, ApiError> {
    let window = duration_param("window", q.window.as_deref(), Duration::from_secs(86_400))?;
    let since = s.clock.now_ms().saturating_sub(window.as_millis() as u64);
    let history = s.history.lock().expect("history lock");
    let per_node: BTreeMap<String, _> = history
        .nodes
        .iter()
        .map(|(n, points)| (n.to_string(), advise(&points.iter().collect::<Vec<_>>(), since)))
        .collect();
    let all: Vec<_> = history.nodes.values().flatten().collect();
    let every = advise(&all, since);
    Ok(Json(json!({ "windowMs": window.as_millis() as u64, "nodes": per_node, "all": every })).into_response())
}

/// `GET /api/v1/autoscale/forecast?lead=10m`: the load expected then,
/// from this node's record of the cluster's load.
pub async fn forecast_view(State(s): S, Query(q): Query<Lead>) -> Result<Response, ApiError> {
    let lead = duration_param("lead", q.lead.as_deref(), Duration::from_secs(600))?;
    let series = s.history.lock().expect("history lock").ops_series();
    let f = forecast(&series, STEP_MS, lead.as_millis() as u64);
    Ok(Json(json!({ "points": series.len(), "stepMs": STEP_MS, "forecast": f })).into_response())
}

/// `GET /api/v1/indicators`: each load indicator's figure, its level and
/// since when it has been there (judged every 15 s from the shared
/// reports; a level shows once the figure has held past it for the
/// indicator's time).
pub async fn indicators(State(s): S) -> Result<Response, ApiError> {
    let list = s.indicators.lock().expect("indicators lock").1.clone();
    let worst = list.iter().map(|i| i.level).filter(|l| *l != Level::Unknown).max().unwrap_or(Level::Unknown);
    Ok(Json(json!({ "level": worst, "indicators": list })).into_response())
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lead {
    lead: Option<String>,
}

pub async fn decisions(State(s): S) -> Result<Response, ApiError> {
    let state = fresh(&s).await?;
    Ok(Json(json!({ "decisions": state.autoscale.decisions })).into_response())
}

/// The autoscaler's hands on this node: scale-ups and shrink plans made as
/// the scaling API makes them, with this node's defaults.
pub(crate) struct NodeScaleActions(pub Weak<Shared>);

impl NodeScaleActions {
    fn shared(&self) -> Result<Arc<Shared>, String> {
        self.0.upgrade().ok_or_else(|| "the node is stopping".to_string())
    }
}

impl ScaleActions for NodeScaleActions {
    fn scale_out(&self, nodes: u32, prgs: BTreeMap<String, u32>) -> BoxFuture<Result<OpId, String>> {
        let shared = self.shared();
        Box::pin(async move {
            let s = shared?;
            let make = |state: &tidal_core::ClusterState| {
                let active = state.nodes.values().filter(|n| n.state == NodeState::Active).count() as u64;
                let next = state.next_node_id();
                let add = u64::from(nodes).saturating_sub(active);
                let add_nodes = (next..next + add)
                    .map(|id| PlanNode { id, zone: String::new(), capacity: 1, draining: false })
                    .collect();
                Ok(ScaleRequest { add_nodes, prgs: prgs.clone() })
            };
            let (id, _) = crate::scale_api::start(&s, make, &RunOptions::default()).await.map_err(|e| e.to_string())?;
            Ok(id)
        })
    }

    fn draft_shrink(
        &self,
        id: String,
        nodes: u32,
        prgs: BTreeMap<String, u32>,
        arm: bool,
    ) -> BoxFuture<Result<Option<OpId>, String>> {
        let shared = self.shared();
        Box::pin(async move {
            let s = shared?;
            let ask = ShrinkRequest { nodes: Some(u64::from(nodes)), prgs };
            let plan = draft(&s, Some(id), Ask::Sizes(ask), false).await.map_err(|e| e.to_string())?;
            if !arm {
                return Ok(None);
            }
            Ok(Some(arm_plan(&s, &plan.id).await.map_err(|e| e.to_string())?))
        })
    }

    fn cancel_plan(&self, id: String) -> BoxFuture<Result<(), String>> {
        let shared = self.shared();
        Box::pin(async move {
            let s = shared?;
            s.cp.propose(CpCommand::CancelShrinkPlan { id }).await.map_err(|e| e.to_string())?;
            Ok(())
        })
    }
}
